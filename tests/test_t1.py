"""T1 (model zoo table): CLI end to end in a tmp HERA_ROOT, config handling, classification, pinning."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
import yaml

from hera.cli import main
from hera.errors import HeraError
from hera.paths import models_dir

MODELS = ["dien", "din", "dlrm_rmc1", "dlrm_rmc2", "dlrm_rmc3", "mtwnd", "ncf", "wnd"]
T1_COLUMNS = ["model", "params", "embedding_bytes", "mlp_flops_per_item", "emb_bytes_gathered_per_item",
              "latency_ms_b1", "latency_ms_b64", "latency_ms_b256", "sla_ms", "sla_rule", "class"]


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


def service_summaries(root, models, p95_ms=10.0, p99_ms=12.0, dispatch_ms=0.2) -> list[str]:
    """Service-profile quantile tables (hera.profile.service) with given unloaded mix latencies, one per model."""
    paths = []
    for i, m in enumerate(models):
        rows = [{"model": m, "workers": 1, "statistic": "mix_latency", "regime": "light", "n": 50,
                 "p50_ms": p95_ms / 2, "p95_ms": p95_ms + i, "p99_ms": p99_ms + i},
                {"model": m, "workers": 1, "statistic": "dispatch_delay", "regime": "light", "n": 50,
                 "p50_ms": dispatch_ms / 2, "p95_ms": dispatch_ms, "p99_ms": dispatch_ms}]
        path = root / f"{m}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(path, index=False)
        paths.append(str(path))
    return paths


@pytest.mark.slow
def test_t1_cli_end_to_end(hera_root, capsys):
    import torch

    threads, affinity = torch.get_num_threads(), os.sched_getaffinity(0)
    assert main(["models", "build", "--scale", "ci"]) == 0
    capsys.readouterr()
    svc = service_summaries(hera_root / "service", MODELS)
    assert main(["table", "t1", "--scale", "ci", "--repeats", "2", "--service", *svc]) == 0
    summary = _last_json(capsys)
    assert set(summary["models"]) == set(MODELS)
    csv = hera_root / "results/ci/tables/T1.csv"
    assert summary["csv"] == str(csv) and csv.is_file() and (hera_root / "results/ci/tables/T1.md").is_file()
    assert (hera_root / "results/ci/tables/T1.csv.meta.json").is_file()
    df = pd.read_csv(csv)
    assert list(df["model"]) == MODELS and set(T1_COLUMNS) <= set(df.columns)
    assert {"git_commit", "machine_id"} <= set(df.columns)
    for c in ("latency_ms_b1", "latency_ms_b64", "latency_ms_b256", "sla_ms"):
        assert (df[c] > 0).all(), c
    # default rule: 3 x the served unloaded p99 of the mix (12 ms + i here), above 20 x the 0.2 ms dispatch p95
    assert list(df["sla_ms"]) == pytest.approx([3 * (12.0 + MODELS.index(m)) for m in df["model"]])
    assert (df["headroom"] >= 2).all() and (df["latency_ms_p95_unloaded"] > 0).all()
    assert df["sla_rule"].str.contains("3 x p99 of the unloaded 1-worker latency of the query mix").all()
    cls = dict(zip(df["model"], df["class"]))
    assert cls["dlrm_rmc1"] == cls["dlrm_rmc2"] == "memory-leaning"
    assert cls["dlrm_rmc3"] == cls["wnd"] == cls["mtwnd"] == "compute-leaning"
    meta = json.loads((hera_root / "models/build/ci/dlrm_rmc2/meta.json").read_text())
    row = df[df["model"] == "dlrm_rmc2"].iloc[0]
    assert row["emb_bytes_gathered_per_item"] == meta["emb_bytes_gathered_per_item"]
    assert row["mlp_flops_per_item"] == meta["mlp_flops_per_item"] and row["params"] == meta["params"]
    md = (hera_root / "results/ci/tables/T1.md").read_text()
    assert md.startswith("# T1 Model zoo (scale ci)") and "| dlrm_rmc1 | memory-leaning |" in md
    assert "SLA rule:" in md and "headroom" in md
    prov = json.loads((hera_root / "results/ci/tables/T1.csv.meta.json").read_text())
    assert prov["config"]["t1"]["repeats"] == 2
    # the command restores the process' threads and affinity
    assert torch.get_num_threads() == threads and os.sched_getaffinity(0) == affinity


@pytest.mark.slow
def test_t1_with_study_config_and_explicit_dirs(tmp_path, capsys):
    from hera.zoo.build import build_model_files

    root = tmp_path / "build"
    build_model_files("ncf", "ci", seed=0, out_root=root)
    cfg = tmp_path / "ci.yaml"
    cfg.write_text(yaml.safe_dump({"scale": "ci", "models": ["ncf"], "sla": {"multiplier": 2.5},
                                   "queries": {"max_items": 100}, "profile": {"latency_repeats": 3}}))
    out = tmp_path / "tables"
    svc = service_summaries(tmp_path / "service", ["ncf"], p95_ms=1.0, p99_ms=1.2, dispatch_ms=0.3)
    assert main(["table", "t1", "--scale", "ci", "--config", str(cfg), "--root", str(root),
                 "--out", str(out), "--service", *svc]) == 0
    df = pd.read_csv(out / "T1.csv")
    assert list(df["model"]) == ["ncf"] and int(df["repeats"][0]) == 3
    assert df["sla_ms"][0] == pytest.approx(20 * 0.3)  # the jitter floor is above 2.5 x 1.2 ms here
    assert df["headroom"][0] == pytest.approx(6.0)
    capsys.readouterr()
    assert main(["table", "t1", "--scale", "default", "--config", str(cfg), "--root", str(root),
                 "--service", *svc]) == 2
    assert "does not match the config's scale ci" in capsys.readouterr().err


def test_sla_without_headroom_is_refused_naming_both_numbers(tmp_path, capsys):
    from hera.profile.sla import SlaError, decide, read_summaries

    svc = read_summaries(service_summaries(tmp_path, ["ncf"], p95_ms=10.0, p99_ms=12.0, dispatch_ms=0.01))
    rule = {"rule": "mix_p99", "multiplier": 1.5, "jitter_floor_multiple": 20}
    with pytest.raises(SlaError) as e:
        decide(rule, "ncf", svc)
    msg = str(e.value)
    assert "'ncf'" in msg and "18 ms" in msg and "10 ms" in msg and "no headroom" in msg and "\n" not in msg
    with pytest.raises(SlaError, match="no target for model 'ncf'"):
        decide({"rule": "targets", "targets_ms": {"wnd": 50.0}}, "ncf", svc)
    assert decide({"rule": "targets", "targets_ms": {"ncf": 50.0}}, "ncf", svc).sla_ms == 50.0
    with pytest.raises(SlaError, match="no SLA for model 'wnd'"):
        decide(rule, "wnd", svc)
    with pytest.raises(HeraError, match="does not exist"):
        read_summaries([str(tmp_path / "nope.csv")])


def test_t1_errors_are_one_line(tmp_path, capsys):
    svc = service_summaries(tmp_path / "service", ["ncf"])
    assert main(["table", "t1", "--scale", "ci", "--root", str(tmp_path), "--models", "ncf",
                 "--out", str(tmp_path / "t"), "--service", *svc]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hera: error: model ncf (fp32, scale ci) is not built") and err.count("\n") == 1
    assert main(["table", "t1", "--scale", "ci", "--models", "nope", "--service", *svc]) == 2
    assert "unknown model 'nope'; known: dien" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_classify_and_pinning():
    from hera.errors import ResourceError
    from hera.profile.t1 import CLASS_THRESHOLD_FLOPS_PER_BYTE, classify, pinned

    assert classify(200_832, 81_920) == ("memory-leaning", pytest.approx(2.45, abs=0.01))
    assert classify(6_406_656, 25_600)[0] == "compute-leaning"
    assert classify(CLASS_THRESHOLD_FLOPS_PER_BYTE * 100, 100)[0] == "compute-leaning"
    before = os.sched_getaffinity(0)
    with pinned(None) as cpu:
        assert os.sched_getaffinity(0) == {cpu} == {min(before)}
    assert os.sched_getaffinity(0) == before
    with pytest.raises(ResourceError, match="T1 asks for core 100000"):
        with pinned(100000):
            pass


def test_table_help():
    from hera.cli import build_parser

    for argv in (["table", "--help"], ["table", "t1", "--help"]):
        with pytest.raises(SystemExit) as e:
            build_parser().parse_args(argv)
        assert e.value.code == 0
