"""Criteo TSV reader: mapping to DLRM inputs, missing values, gzip, streaming, malformed lines, libraries."""

import gzip
from dataclasses import dataclass, field

import numpy as np
import pytest

from hera.errors import ConfigError, HeraError
from hera.workload import criteo
from hera.workload.criteo import CriteoFormatError, criteo_to_library, load_criteo, read_criteo
from hera.workload.library import SampleLibrary


@dataclass
class Table:
    name: str
    rows: int
    lookups: int


@dataclass
class Spec:
    model_id: str = "toy"
    dense_in: int = 16
    tables: list = field(default_factory=lambda: [Table("t0", 1000, 20), Table("t1", 97, 10)])


def make_line(rng, label=None, missing=0.2):
    dense = [("" if rng.random() < missing else str(int(rng.integers(-3, 5000)))) for _ in range(13)]
    cats = [("" if rng.random() < missing else f"{int(rng.integers(0, 2**32)):08x}") for _ in range(26)]
    lab = str(int(rng.integers(0, 2))) if label is None else label
    return "\t".join([lab] + dense + cats)


def write(path, lines, gz=False):
    data = ("\n".join(lines) + "\n").encode()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def test_mapping_by_hand(tmp_path):
    fields = ["1", "0", "", "7", "-2"] + ["10"] * 9 + ["68fd1e64", ""] + ["ff"] * 24
    p = write(tmp_path / "one.tsv", ["\t".join(fields)])
    dense, ids, labels = load_criteo(p, Spec())
    assert labels.tolist() == [1] and dense.shape == (1, 16) and ids.shape == (1, 30)
    expect = np.log1p([0, 0, 7, 0] + [10] * 9)
    assert np.allclose(dense[0, :13], expect) and np.all(dense[0, 13:] == 0)  # padded to dense_in
    assert ids[0, 0] == 0x68FD1E64 % 1000 and ids[0, 1] == 0  # missing categorical -> hash 0
    assert ids[0, 2] == 0xFF % 1000
    assert np.all(ids[0, 20:] < 97) and ids[0, 20] == 0xFF % 97
    # slot 26 reuses C1 mixed with k=1: different from slot 0 but deterministic
    assert ids[0, 26] == int(criteo._mix(np.array([0x68FD1E64], dtype=np.uint64), 1)[0] % np.uint64(97))
    small = Spec(dense_in=4, tables=[Table("t", 10, 1)])
    d2, i2, _ = load_criteo(p, small)
    assert d2.shape == (1, 4) and np.allclose(d2[0], expect[:4]) and i2.tolist() == [[0x68FD1E64 % 10]]


def test_generated_file_missing_values_gzip_and_chunks(tmp_path):
    rng = np.random.default_rng(0)
    lines = [make_line(rng) for _ in range(1000)]
    plain = write(tmp_path / "day.tsv", lines)
    gz = write(tmp_path / "day.tsv.gz", lines, gz=True)
    d1, i1, l1 = load_criteo(plain, Spec(), chunk_lines=128)
    d2, i2, l2 = load_criteo(gz, Spec(), chunk_lines=1000)
    assert np.array_equal(i1, i2) and np.array_equal(d1, d2) and np.array_equal(l1, l2)
    assert d1.dtype == np.float32 and i1.dtype == np.int64 and l1.dtype == np.int8
    assert d1.min() >= 0 and i1[:, :20].max() < 1000 and i1[:, 20:].max() < 97
    chunks = list(read_criteo(plain, Spec(), chunk_lines=300))
    assert [c.ids.shape[0] for c in chunks] == [300, 300, 300, 100]
    assert [c.first_line for c in chunks] == [1, 301, 601, 901]
    d3, _, _ = load_criteo(plain, Spec(), max_lines=10)
    assert d3.shape[0] == 10


@pytest.mark.parametrize("bad, needle", [
    (lambda line: line + "\textra", "expected 40 tab-separated fields"),
    (lambda line: line.rsplit("\t", 1)[0], "found 39"),
    (lambda line: "2" + line[1:], "label '2' is not 0 or 1"),
    (lambda line: "\t".join([line.split("\t")[0], "abc"] + line.split("\t")[2:]), "dense feature I1 'abc'"),
    (lambda line: "\t".join([line.split("\t")[0], "1.5"] + line.split("\t")[2:]), "is not an integer"),
    (lambda line: "\t".join(line.split("\t")[:14] + ["zz12"] + line.split("\t")[15:]),
     "C1 'zz12' is not a hexadecimal"),
    (lambda line: "", "line 7: expected 40"),
])
def test_malformed_line_names_the_line(tmp_path, bad, needle):
    rng = np.random.default_rng(1)
    lines = [make_line(rng, missing=0.0) for _ in range(10)]
    lines[6] = bad(lines[6])
    p = write(tmp_path / "bad.tsv", lines)
    with pytest.raises(CriteoFormatError) as exc:
        load_criteo(p, Spec(), chunk_lines=4)  # line 7 is in the second chunk
    msg = str(exc.value)
    assert "line 7" in msg and needle in msg and "\n" not in msg and isinstance(exc.value, HeraError)


def test_missing_file_and_bad_spec(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_criteo(tmp_path / "none.tsv", Spec())
    p = write(tmp_path / "x.tsv", [make_line(np.random.default_rng(2))])
    with pytest.raises(ConfigError, match="spec lacks"):
        load_criteo(p, object())
    (tmp_path / "empty.tsv").write_text("")
    with pytest.raises(CriteoFormatError, match="no lines"):
        load_criteo(tmp_path / "empty.tsv", Spec())
    (tmp_path / "bin.tsv").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(CriteoFormatError, match="not UTF-8"):
        load_criteo(tmp_path / "bin.tsv", Spec())


def test_parse_hex():
    v, bad = criteo.parse_hex(np.array(["", "0", "ff", "FFFFFFFF", "ffffffffffffffff", "g1", "12345678901234567"]))
    assert v[:5].tolist() == [0, 0, 255, 2**32 - 1, 2**64 - 1]
    assert bad.tolist() == [False] * 5 + [True, True]


def test_criteo_library_matches_reader(tmp_path):
    rng = np.random.default_rng(3)
    p = write(tmp_path / "day.tsv.gz", [make_line(rng) for _ in range(700)], gz=True)
    criteo_to_library(p, Spec(), tmp_path / "lib", chunk_lines=256, scale="ci")
    lib = SampleLibrary.open(tmp_path / "lib", check_ids=True)
    dense, ids, labels = load_criteo(p, Spec())
    assert lib.n_items == 700 and np.array_equal(lib.ids, ids) and np.array_equal(lib.dense, dense)
    assert np.array_equal(np.load(tmp_path / "lib" / "labels.npy"), labels)
    assert lib.meta["source"]["kind"] == "criteo" and lib.meta["scale"] == "ci"
    criteo_to_library(p, Spec(), tmp_path / "lib2", max_lines=100)
    assert SampleLibrary.open(tmp_path / "lib2").n_items == 100
