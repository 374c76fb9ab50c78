"""Sample libraries: layout, seeding, views without copies, validation on open."""

import json
from dataclasses import dataclass, field

import numpy as np
import pytest

from hera.errors import ConfigError, HeraError, NotBuiltError
from hera.workload.library import SampleLibrary, SliceError, build_library, default_items, library_dir


@dataclass
class Table:
    name: str
    rows: int
    lookups: int


@dataclass
class Spec:
    model_id: str = "toy"
    dense_in: int = 3
    tables: list = field(default_factory=lambda: [Table("a", 50, 2), Table("b", 7, 1), Table("c", 1000, 4)])


@pytest.fixture()
def lib_dir(tmp_path):
    build_library(Spec(), 500, "production", 7, tmp_path / "toy", scale="ci", chunk_items=64)
    return tmp_path / "toy"


def test_layout_and_metadata(lib_dir):
    meta = json.loads((lib_dir / "library.json").read_text())
    assert meta["model_id"] == "toy" and meta["scale"] == "ci" and meta["n_items"] == 500
    assert meta["dense_in"] == 3 and meta["lookups_per_item"] == 7 and meta["seed"] == 7
    assert meta["sparse"] == {"kind": "production"}
    assert [(t["name"], t["rows"], t["lookups"], t["column_start"]) for t in meta["tables"]] == \
        [("a", 50, 2, 0), ("b", 7, 1, 2), ("c", 1000, 4, 3)]
    assert {"created_utc", "git_commit", "numpy", "build_seconds"} <= set(meta["created"])
    lib = SampleLibrary.open(lib_dir, check_ids=True)
    assert lib.dense.dtype == np.float32 and lib.dense.shape == (500, 3)
    assert lib.ids.dtype == np.int64 and lib.ids.shape == (500, 7)
    for t, hi in (("a", 50), ("b", 7), ("c", 1000)):
        block = lib.table_ids(t)
        assert block.min() >= 0 and block.max() < hi
    assert lib.table_ids("b").shape == (500, 1) and lib.table_ids(2).shape == (500, 4)
    counts = np.sort(np.bincount(np.asarray(lib.table_ids("c")).ravel(), minlength=1000))[::-1]
    assert counts[:10].sum() > 0.4 * counts.sum()  # production ids: the hottest 1 % of rows dominate
    assert abs(float(lib.dense.mean())) < 0.1 and 0.9 < float(lib.dense.std()) < 1.1  # standard normal
    assert lib.directory == lib_dir and lib.model_id == "toy" and lib.n_items == 500


def test_slices_are_read_only_views(lib_dir):
    lib = SampleLibrary.open(lib_dir)
    dense, ids = lib.slice(10, 100)
    assert dense.shape == (100, 3) and ids.shape == (100, 7)
    assert np.shares_memory(dense, lib.dense) and np.shares_memory(ids, lib.ids)
    assert ids.base is lib.ids or ids.base is lib.ids.base
    assert not ids.flags.writeable and not dense.flags.writeable
    assert isinstance(lib.ids, np.memmap)
    assert np.array_equal(ids, np.load(lib_dir / "ids.npy")[10:110])
    with pytest.raises(ValueError):
        ids[0, 0] = 1


@pytest.mark.parametrize("start, n", [(-1, 5), (0, 0), (496, 5), (500, 1), (0, 501), (1.5, 2)])
def test_slice_out_of_range(lib_dir, start, n):
    with pytest.raises(SliceError) as exc:
        SampleLibrary.open(lib_dir).slice(start, n)
    assert isinstance(exc.value, HeraError) and "\n" not in str(exc.value)


def test_same_seed_same_library_and_chunking_does_not_matter(tmp_path):
    build_library(Spec(), 300, {"kind": "zipf", "alpha": 1.1}, 3, tmp_path / "x", chunk_items=7)
    build_library(Spec(), 300, {"kind": "zipf", "alpha": 1.1}, 3, tmp_path / "y", chunk_items=300)
    build_library(Spec(), 300, {"kind": "zipf", "alpha": 1.1}, 4, tmp_path / "z")
    x, y, z = (SampleLibrary.open(tmp_path / d) for d in "xyz")
    assert np.array_equal(x.ids, y.ids) and np.array_equal(x.dense, y.dense)
    assert not np.array_equal(x.ids, z.ids)
    assert x.meta["sparse"] == {"kind": "zipf", "alpha": 1.1}


def test_dense_in_zero_and_uniform_dense(tmp_path):
    build_library(Spec(dense_in=0), 100, "uniform", 0, tmp_path / "n")
    lib = SampleLibrary.open(tmp_path / "n")
    assert lib.dense.shape == (100, 0) and lib.slice(3, 4)[0].shape == (4, 0)
    build_library(Spec(), 100, "uniform", 0, tmp_path / "u", dense_dist="uniform")
    d = SampleLibrary.open(tmp_path / "u").dense
    assert d.min() >= 0 and d.max() < 1


def test_random_start(lib_dir):
    lib = SampleLibrary.open(lib_dir)
    rng = np.random.default_rng(0)
    starts = [lib.random_start(100, rng) for _ in range(200)]
    assert min(starts) >= 0 and max(starts) <= 400
    with pytest.raises(SliceError):
        lib.random_start(501, rng)


def test_defaults_and_paths(tmp_path):
    assert default_items("ci") == 4096 and default_items("default") == 65536
    with pytest.raises(ConfigError, match="unknown scale"):
        default_items("huge")
    assert library_dir("ci", "ncf", tmp_path) == tmp_path / "ncf"


def test_open_failures(tmp_path, lib_dir):
    with pytest.raises(NotBuiltError, match="does not exist"):
        SampleLibrary.open(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotBuiltError, match="library.json is missing"):
        SampleLibrary.open(tmp_path / "empty")
    (lib_dir / "ids.npy").rename(lib_dir / "ids.bak")
    with pytest.raises(NotBuiltError, match="ids.npy is missing"):
        SampleLibrary.open(lib_dir)
    (lib_dir / "ids.bak").rename(lib_dir / "ids.npy")
    data = (lib_dir / "ids.npy").read_bytes()
    (lib_dir / "ids.npy").write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(HeraError, match="ids.npy cannot be mapped"):
        SampleLibrary.open(lib_dir)


def test_open_detects_inconsistent_metadata(lib_dir):
    meta_path = lib_dir / "library.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text("{not json")
    with pytest.raises(HeraError, match="not valid JSON"):
        SampleLibrary.open(lib_dir)
    meta_path.write_text(json.dumps({**meta, "n_items": 499}))
    with pytest.raises(HeraError, match="library.json says"):
        SampleLibrary.open(lib_dir)
    bad_tables = [dict(t, rows=2) if t["name"] == "c" else t for t in meta["tables"]]
    meta_path.write_text(json.dumps({**meta, "tables": bad_tables}))
    with pytest.raises(HeraError, match="table 'c' has ids outside"):
        SampleLibrary.open(lib_dir)
    meta_path.write_text(json.dumps({k: v for k, v in meta.items() if k != "tables"}))
    with pytest.raises(HeraError, match="lacks tables"):
        SampleLibrary.open(lib_dir)
    meta_path.write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(HeraError, match="rebuild it"):
        SampleLibrary.open(lib_dir)


def test_rebuild_replaces_and_bad_inputs(tmp_path):
    out = tmp_path / "r"
    build_library(Spec(), 50, "uniform", 0, out)
    build_library(Spec(), 80, "uniform", 0, out)
    assert SampleLibrary.open(out).n_items == 80 and not list(out.glob("tmp-*"))
    for kwargs, needle in [
        (dict(n_items=0), "n_items"), (dict(seed=-1), "seed"), (dict(sparse_cfg="gauss"), "unknown generator"),
        (dict(spec=Spec(tables=[])), "no tables"), (dict(spec=Spec(tables=[Table("a", 0, 1)])), "rows"),
        (dict(spec=Spec(tables=[Table("a", 5, 1), Table("a", 5, 1)])), "duplicate table"),
        (dict(spec=object()), "lacks model_id"), (dict(dense_dist="cauchy"), "dense distribution"),
    ]:
        args = dict(spec=Spec(), n_items=10, sparse_cfg="uniform", seed=0, out_dir=tmp_path / "bad")
        args.update(kwargs)
        with pytest.raises(ConfigError, match=needle):
            build_library(**args)
