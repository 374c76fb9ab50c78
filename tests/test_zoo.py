"""Model zoo: specs and their validation, scales, inputs, the 8 models (shape, determinism, int8),
memory-mapped loading, resource refusal and the ``hera models`` CLI. All at ``ci`` scale in tmp dirs."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import yaml

from hera.errors import NotBuiltError, ResourceError, SpecError, UnknownModelError
from hera.paths import models_dir
from hera.zoo import spec as zspec

MODELS = ["dien", "din", "dlrm_rmc1", "dlrm_rmc2", "dlrm_rmc3", "mtwnd", "ncf", "wnd"]
#: Measured: max |score_fp32 - score_int8| <= 1.8e-4 over 5 x 256 uniform items per model at ci scale
#: (pooled embeddings differ by <= 0.4% of their magnitude, i.e. one int8 step of 1/255). Bounds below
#: leave ~5x / 2.5x headroom.
SCORE_TOL = 1e-3
POOLED_REL_TOL = 0.01


@pytest.fixture(scope="module")
def torch1():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def built(tmp_path_factory, torch1):
    """All 8 models built at ci scale (fp32 twice with seed 0, int8 once, fp32 with seed 1)."""
    from hera.zoo.build import build_model_files

    roots = {k: tmp_path_factory.mktemp(k) for k in ("a", "b", "seed1")}
    for m in MODELS:
        build_model_files(m, "ci", seed=0, out_root=roots["a"])
        build_model_files(m, "ci", quantized=True, seed=0, out_root=roots["a"])
        build_model_files(m, "ci", seed=0, out_root=roots["b"])
        build_model_files(m, "ci", seed=1, out_root=roots["seed1"])
    return roots


def _scores(model_id, root, quantized=False, n=64, seed=0):
    import torch

    from hera.zoo.inputs import make_inputs, random_inputs
    from hera.zoo.load import built_spec, load_model

    spec = built_spec(model_id, "ci", quantized, root)
    model = load_model(model_id, "ci", quantized, root)
    dense, ids = random_inputs(spec, n, np.random.default_rng(seed))
    with torch.inference_mode():
        return model(*make_inputs(spec, dense, ids)), model, spec, (dense, ids)


# ------------------------------------------------------------------------------------------- specs
def test_every_model_has_a_valid_spec_at_every_scale():
    assert zspec.list_models() == MODELS
    for m in MODELS:
        for scale in zspec.SCALES:
            s = zspec.load_spec(m, scale)
            assert s.model_id == m and s.lookups_per_item == sum(t.lookups for t in s.tables)


def test_paper_scale_matches_spec_section_3():
    gb = {m: zspec.load_spec(m, "paper").embedding_bytes() / 1e9 for m in MODELS}
    expected = {"dlrm_rmc1": 4.1, "dlrm_rmc2": 4.1, "dlrm_rmc3": 2.6, "wnd": 3.5, "mtwnd": 3.9, "dien": 3.9,
                "din": 2.7, "ncf": 0.09}
    for m, v in expected.items():
        assert gb[m] == pytest.approx(v, abs=0.06), m
    assert sum(gb.values()) == pytest.approx(25, rel=0.02)
    r1 = zspec.load_spec("dlrm_rmc1", "paper")
    t0 = r1.tables[0]
    assert (len(r1.tables), t0.rows, t0.dim, t0.lookups) == (8, 4_000_000, 32, 80)
    assert (r1.dense_in, r1.bottom_mlp, r1.top_mlp, r1.interaction) == (128, [64, 32], [256, 64, 1], "cat")
    mt = zspec.load_spec("mtwnd", "paper")
    assert mt.n_outputs == 3 and [t.rows for t in mt.tables].count(5_000_000) == 2 and len(mt.tables) == 43
    din = zspec.load_spec("din", "paper")
    assert [(t.name, t.rows, t.lookups, t.pooled) for t in din.tables] == [
        ("profile", 1_000_000, 3, True), ("behaviour", 100_000, 250, False),
        ("candidate", 10_000_000, 3, True), ("context", 10_000_000, 3, True)]
    dien = zspec.load_spec("dien", "paper")
    assert len(dien.sequence_tables) == 40 and len(dien.tables) == 43


def test_scale_rules():
    assert zspec.scale_rows(4_000_000, "ci") == 2000 and zspec.scale_rows(1500, "ci") == 1500
    assert zspec.scale_rows(4_000_000, "default") == 200_000 and zspec.scale_rows(28_000, "default") == 2000
    assert zspec.scale_rows(123_457, "paper") == 123_457
    total_default = sum(zspec.load_spec(m, "default").embedding_bytes() for m in MODELS)
    assert total_default == pytest.approx(1.25e9, rel=0.02)
    assert zspec.load_spec("din", "ci").extra["history"] == 20
    assert zspec.load_spec("din", "ci").tables[1].lookups == 20
    assert zspec.load_spec("din", "default").tables[1].lookups == 250
    assert len(zspec.load_spec("dien", "ci").sequence_tables) == 20
    with pytest.raises(SpecError, match="unknown scale"):
        zspec.load_spec("ncf", "huge")


def test_unknown_model_lists_known_ids():
    with pytest.raises(UnknownModelError) as e:
        zspec.load_spec("dlrm_rmc9", "ci")
    msg = str(e.value)
    assert "\n" not in msg and "'dlrm_rmc9'" in msg and "dlrm_rmc1, dlrm_rmc2" in msg


def _write_spec(tmp_path, model_id="tiny", **changes):
    raw = yaml.safe_load((models_dir() / "dlrm_rmc1.yaml").read_text())
    raw["model_id"] = model_id
    raw.update(changes)
    (tmp_path / f"{model_id}.yaml").write_text(yaml.safe_dump(raw))
    return tmp_path


@pytest.mark.parametrize("changes, pattern", [
    ({"colour": "red"}, r"unknown key 'colour'"),
    ({"dense_in": "many"}, r"key dense_in: 'many' is not of type 'integer'"),
    ({"dense_in": True}, r"key dense_in: True is not of type 'integer'"),
    ({"top_mlp": [256, 0, 1]}, r"key top_mlp\.1: 0 is less than the minimum of 1"),
    ({"tables": [{"name": "t", "rows": -5, "dim": 32, "lookups": 1}]},
     r"key tables\.0\.rows: -5 is less than"),
    ({"tables": [{"name": "t", "rows": 5, "dim": 32, "lookups": 1, "size": 3}]},
     r"unknown key 'size' in tables\.0"),
    ({"tables": [{"name": "t", "rows": 5, "dim": 32, "lookups": "many"}]},
     r"key tables\.0\.lookups: 'many' must be"),
    ({"tables": [{"name": "t", "rows": 5, "dim": 32}]}, r"'lookups' is a required property"),
    ({"kind": "transformer"}, r"key kind: 'transformer' is not one of"),
    ({"interaction": "dot", "bottom_mlp": [64, 16]}, r"key interaction: 'dot' needs every table dim"),
    ({"tasks": 2}, r"key tasks: only valid for kind mtwnd"),
    ({"top_mlp": [256, 64, 2]}, r"key top_mlp: the last layer of kind dlrm must have 1 unit"),
    ({"tables": [{"name": "t", "rows": 5, "dim": 32, "lookups": "history"}]}, r"'history' needs a top-level"),
])
def test_spec_validation_errors_name_file_and_key(tmp_path, changes, pattern):
    d = _write_spec(tmp_path, **changes)
    with pytest.raises(SpecError, match=pattern) as e:
        zspec.load_spec("tiny", "ci", specs_dir=d)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(d / "tiny.yaml"))


def test_history_model_rules(tmp_path):
    din = yaml.safe_load((models_dir() / "din.yaml").read_text())
    din["model_id"] = "d1"
    din["tables"][2]["name"] = "ad"
    (tmp_path / "d1.yaml").write_text(yaml.safe_dump(din))
    with pytest.raises(SpecError, match="key tables: kind din needs a pooled table named 'candidate'"):
        zspec.load_spec("d1", "ci", specs_dir=tmp_path)
    dien = yaml.safe_load((models_dir() / "dien.yaml").read_text())
    dien["model_id"] = "d2"
    del dien["gru_hidden"]
    (tmp_path / "d2.yaml").write_text(yaml.safe_dump(dien))
    with pytest.raises(SpecError, match="key gru_hidden: required for kind dien"):
        zspec.load_spec("d2", "ci", specs_dir=tmp_path)
    del dien["history"]
    (tmp_path / "d2.yaml").write_text(yaml.safe_dump(dien))
    with pytest.raises(SpecError, match="key history: required for kind dien"):
        zspec.load_spec("d2", "ci", specs_dir=tmp_path)


def test_spec_model_id_must_match_file_and_yaml_errors(tmp_path):
    d = _write_spec(tmp_path, model_id="tiny")
    (d / "other.yaml").write_text((d / "tiny.yaml").read_text())
    with pytest.raises(SpecError, match="key model_id: 'tiny' does not match the file name 'other'"):
        zspec.load_spec("other", "ci", specs_dir=d)
    (d / "broken.yaml").write_text("model_id: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        zspec.load_spec("broken", "ci", specs_dir=d)
    (d / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(SpecError, match="must hold a mapping"):
        zspec.load_spec("list", "ci", specs_dir=d)


def test_overrides():
    s = zspec.load_spec("dlrm_rmc1", "ci", overrides={"rows": 777, "interaction": "dot"})
    assert {t.rows for t in s.tables} == {777} and s.interaction == "dot"
    assert zspec.load_spec("mtwnd", "ci", overrides={"tasks": 5}).n_outputs == 5
    with pytest.raises(SpecError, match="override key 'kind' is not allowed"):
        zspec.load_spec("ncf", "ci", overrides={"kind": "dlrm"})
    with pytest.raises(SpecError, match="override key 'rows' must be a positive integer"):
        zspec.load_spec("ncf", "ci", overrides={"rows": 0})
    with pytest.raises(SpecError, match="key interaction: 'dot' is only available for kind dlrm"):
        zspec.load_spec("wnd", "ci", overrides={"interaction": "dot"})


def test_spec_round_trips_through_dict():
    s = zspec.load_spec("dien", "ci")
    assert zspec.ModelSpec.from_dict(json.loads(json.dumps(s.to_dict()))) == s


# ------------------------------------------------------------------------------------------ inputs
@pytest.mark.slow
def test_make_inputs_layout_and_errors(torch1):
    from hera.zoo.inputs import InputError, make_inputs, table_major_ids

    s = zspec.load_spec("din", "ci")  # lookups 3, 20, 3, 3 (non-uniform)
    n, width = 5, s.lookups_per_item
    ids = np.arange(n * width, dtype=np.int64).reshape(n, width)
    dense = np.zeros((n, s.dense_in), dtype=np.float32)
    d, kjt = make_inputs(s, dense, ids)
    assert kjt.keys() == ["profile", "behaviour", "candidate", "context"]
    assert kjt.lengths().tolist() == [3] * n + [20] * n + [3] * n + [3] * n
    jt = kjt.to_dict()
    for i, (name, a, b) in enumerate([("profile", 0, 3), ("behaviour", 3, 23), ("candidate", 23, 26),
                                      ("context", 26, 29)]):
        assert jt[name].values().tolist() == ids[:, a:b].reshape(-1).tolist()
    u = zspec.load_spec("dlrm_rmc1", "ci")  # uniform lookups: reshape/transpose path
    ids_u = np.arange(3 * u.lookups_per_item, dtype=np.int64).reshape(3, -1)
    expect = np.concatenate([ids_u[:, k * 80:(k + 1) * 80].reshape(-1) for k in range(8)])
    assert np.array_equal(table_major_ids(u, ids_u), expect)
    ro = np.zeros((3, u.dense_in), dtype=np.float32)
    ro.flags.writeable = False  # sample libraries are read-only memmaps
    assert make_inputs(u, ro, ids_u % 2000)[0].shape == (3, 128)
    with pytest.raises(InputError, match=r"ids must have shape \[n, 29\]"):
        make_inputs(s, dense, ids[:, :-1])
    with pytest.raises(InputError, match=r"dense must have shape \[5, 1\]"):
        make_inputs(s, np.zeros((5, 2), np.float32), ids)
    with pytest.raises(InputError, match="outside table rows 0..1999"):
        make_inputs(s, dense, ids + 5000, check_ids=True)


# ------------------------------------------------------------------------------------------ models
@pytest.mark.parametrize("model_id", MODELS)
def test_model_shape_determinism_and_int8(built, model_id):
    torch = pytest.importorskip("torch")
    a, model, spec, (dense, ids) = _scores(model_id, built["a"])
    b, *_ = _scores(model_id, built["b"])
    c, *_ = _scores(model_id, built["seed1"])
    q, qmodel, *_ = _scores(model_id, built["a"], quantized=True)
    assert a.shape == (64, spec.n_outputs) and a.dtype == torch.float32
    assert bool(((a >= 0) & (a <= 1)).all()) and torch.isfinite(a).all()
    assert torch.equal(a, b)               # same seed, separate builds: identical scores
    assert not torch.equal(a, c)           # another seed: other weights
    assert q.shape == a.shape and not torch.equal(a, q)
    assert float((a - q).abs().max()) <= SCORE_TOL
    from hera.zoo.inputs import make_inputs

    with torch.inference_mode():
        _, kjt = make_inputs(spec, dense, ids)
        pa, pq = model.ebc(kjt).values(), qmodel.ebc(kjt).values()
    assert type(qmodel.ebc).__module__ == "torchrec.quant.embedding_modules"
    assert float((pa - pq).abs().max() / pa.abs().max()) <= POOLED_REL_TOL


def test_pooled_lookup_matches_table_rows(built, torch1):
    """The first table's pooled output is the sum of the rows its ids name (layout sanity)."""
    out, model, spec, (dense, ids) = _scores("dlrm_rmc3", built["a"], n=4)
    from hera.zoo.inputs import make_inputs

    with torch1.inference_mode():
        pooled = model.ebc(make_inputs(spec, dense, ids)[1]).values()
    w = model.ebc.embedding_bags["t_00"].weight
    assert torch1.allclose(pooled[:, :32], w[torch1.from_numpy(ids[:, :20])].sum(1), atol=1e-6)


def test_dot_interaction_variant(tmp_path, torch1):
    from hera.zoo.build import build_model_files

    meta = json.loads(build_model_files("dlrm_rmc1", "ci", seed=0, out_root=tmp_path,
                                        overrides={"interaction": "dot"}).read_text())
    assert meta["spec"]["interaction"] == "dot"
    out, model, spec, _ = _scores("dlrm_rmc1", tmp_path)
    assert out.shape == (64, 1) and model.top.in_features == 32 + 9 * 8 // 2


def test_metadata_fields(built):
    meta = json.loads((built["a"] / "dlrm_rmc2" / "meta.json").read_text())
    for key in ("model_id", "scale", "quantized", "params", "embedding_bytes", "mlp_flops_per_item",
                "emb_bytes_gathered_per_item", "dense_in", "lookups_per_item", "n_outputs", "build_seconds",
                "seed", "files"):
        assert key in meta, key
    assert meta["embedding_bytes"] == 32 * 2000 * 64 * 4
    assert meta["emb_bytes_gathered_per_item"] == 32 * 120 * 64 * 4
    assert meta["lookups_per_item"] == 3840 and meta["files"]["embeddings.f32"] >= meta["embedding_bytes"]
    # bottom 256-128-64, top (64 + 32*64)-128-64-1, 2 FLOPs per multiply-add
    assert meta["mlp_flops_per_item"] == 2 * (256 * 128 + 128 * 64 + 2112 * 128 + 128 * 64 + 64)
    q = json.loads((built["a"] / "dlrm_rmc2-q8" / "meta.json").read_text())
    assert q["quantized"] and q["emb_bytes_gathered_per_item"] == 32 * 120 * (64 + 4)
    assert q["embedding_bytes"] == 32 * 2000 * 80 and set(q["files"]) == {"model.pt"}


def test_tables_are_memory_mapped_from_the_build_files(built, torch1):
    from hera.zoo.load import load_model, mapped_file_memory, prefault

    model = load_model("wnd", "ci", False, built["a"])
    w = model.ebc.embedding_bags["t_00"].weight
    assert not w.requires_grad
    prefault(model)
    f = built["a"] / "wnd" / "embeddings.f32"
    assert mapped_file_memory(os.getpid(), f)["rss_bytes"] >= 27 * 2000 * 32 * 4 * 0.9
    qmodel = load_model("wnd", "ci", True, built["a"])
    prefault(qmodel)
    q8_file = built["a"] / "wnd-q8" / "model.pt"
    assert mapped_file_memory(os.getpid(), q8_file)["rss_bytes"] >= 27 * 2000 * 48 * 0.9


def test_not_built_and_rebuild(tmp_path, torch1):
    from hera.zoo.build import build_model_files
    from hera.zoo.load import load_model

    with pytest.raises(NotBuiltError, match=r"model ncf \(fp32, scale ci\) is not built .*hera models build"):
        load_model("ncf", "ci", root=tmp_path)
    with pytest.raises(NotBuiltError, match=r"\(int8, scale ci\).*--quantized"):
        load_model("ncf", "ci", quantized=True, root=tmp_path)
    build_model_files("ncf", "ci", quantized=True, seed=3, out_root=tmp_path)  # builds its fp32 privately
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ncf-q8"]
    build_model_files("ncf", "ci", seed=3, out_root=tmp_path)
    build_model_files("ncf", "ci", seed=3, out_root=tmp_path)  # replacing a build leaves no debris
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ncf", "ncf-q8"]


def test_memory_and_disk_refusal(tmp_path):
    from hera.machine import check_fits
    from hera.zoo.build import build_model_files

    needed = zspec.load_spec("dlrm_rmc2", "ci").embedding_bytes()  # 16384000 bytes
    with pytest.raises(ResourceError) as e:
        build_model_files("dlrm_rmc2", "ci", out_root=tmp_path, available_memory_bytes=needed)
    msg = str(e.value)
    assert "\n" not in msg and f"needs {needed} bytes" in msg and "60%" in msg
    assert f"only {needed} bytes" in msg
    with pytest.raises(ResourceError, match=r"only 1000000 bytes .* of disk are free"):
        build_model_files("ncf", "ci", out_root=tmp_path, available_memory_bytes=10**12,
                          free_disk_bytes=10**6)
    assert not any(tmp_path.iterdir())  # nothing written
    # the paper-scale check alone (nothing is built): 4.1 GB of RMC1 tables vs 60% of 5 GB
    with pytest.raises(ResourceError, match="needs 4096000000 bytes"):
        check_fits(zspec.load_spec("dlrm_rmc1", "paper").embedding_bytes(), "x", tmp_path,
                   available_memory_bytes=5 * 10**9, free_disk_bytes=10**13)
    check_fits(needed, "x", tmp_path, available_memory_bytes=2 * needed, free_disk_bytes=2 * needed)


# --------------------------------------------------------------------------------------------- CLI
@pytest.fixture()
def hera_root(tmp_path, monkeypatch):
    root = tmp_path / "root"
    (root / "models").mkdir(parents=True)
    for p in models_dir().glob("*.yaml"):
        os.symlink(p, root / "models" / p.name)
    monkeypatch.setenv("HERA_ROOT", str(root))
    return root


def _last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.slow
def test_cli_models_list_and_build(hera_root, capsys, torch1):
    from hera.cli import main

    assert main(["models", "list", "--scale", "paper"]) == 0
    listing = _last_json(capsys)
    assert [r["model"] for r in listing["models"]] == MODELS
    paper_total = sum(zspec.load_spec(m, "paper").embedding_bytes() for m in MODELS)
    assert listing["total_embedding_bytes"] == paper_total

    assert main(["models", "build", "--scale", "ci"]) == 0
    out = _last_json(capsys)
    assert set(out["models"]) == set(MODELS) and all(v["status"] == "built" for v in out["models"].values())
    assert all(v["build_seconds"] > 0 for v in out["models"].values())
    assert (hera_root / "models/build/ci/dien/meta.json").is_file()

    assert main(["models", "build", "--scale", "ci", "--models", "ncf,din"]) == 0
    assert {v["status"] for v in _last_json(capsys)["models"].values()} == {"skipped"}
    assert main(["models", "build", "--scale", "ci", "--models", "ncf", "--seed", "2"]) == 0
    assert _last_json(capsys)["models"]["ncf"]["status"] == "built"  # other seed: not the same build
    assert main(["models", "build", "--scale", "ci", "--models", "ncf", "--quantized", "--force"]) == 0
    assert _last_json(capsys)["models"]["ncf"]["status"] == "built"
    assert main(["models", "list", "--scale", "ci"]) == 0
    built = {r["model"]: r["built"] for r in _last_json(capsys)["models"]}
    assert built["ncf"] == "fp32+q8" and built["wnd"] == "fp32"

    assert main(["models", "build", "--scale", "ci", "--models", "nope"]) == 2
    expected = "hera: error: unknown model 'nope'; known: " + ", ".join(MODELS) + "\n"
    assert capsys.readouterr().err == expected


def test_cli_help_for_every_models_command():
    from hera.cli import build_parser

    parser = build_parser()
    for argv in (["models", "--help"], ["models", "list", "--help"], ["models", "build", "--help"]):
        with pytest.raises(SystemExit) as e:
            parser.parse_args(argv)
        assert e.value.code == 0
