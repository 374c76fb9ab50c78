"""Synthetic result files in the DESIGN.md schemas, for the report tests (no measurement involved).

:func:`write_results` writes a complete ``results/<scale>/`` tree with provenance sidecars describing a
fake machine; the numbers are invented to have the paper's shape (memory-leaning models scale worse,
Hera beats single-tenant) and only exercise the plotting and claim logic. Every pair of the eight models is
predicted (``colocation/predicted.csv``), the pairs of the first six are measured (``colocation/pairs.csv``).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd

from hera.report import io

MODELS = ["dlrm_rmc1", "dlrm_rmc2", "dlrm_rmc3", "ncf", "wnd", "mtwnd", "din", "dien"]
CLASSES = {"dlrm_rmc1": "memory-leaning", "dlrm_rmc2": "memory-leaning", "dlrm_rmc3": "compute-leaning",
           "ncf": "compute-leaning", "wnd": "compute-leaning", "mtwnd": "memory-leaning",
           "din": "memory-leaning", "dien": "compute-leaning"}
#: Models whose pairs are measured (colocation.models); every pair of MODELS is predicted.
MEASURED = MODELS[:6]
POLICIES = ["single_tenant", "random", "greedy", "parties", "hera", "oracle"]
MIXES = ["balanced", "embedding_heavy", "mlp_heavy", "skewed"]
EMU_LEVEL = {"single_tenant": 1.0, "random": 1.04, "greedy": 1.1, "parties": 1.2, "hera": 1.36,
             "oracle": 1.42}
SERVERS = {"single_tenant": 12, "random": 11, "greedy": 11, "parties": 10, "hera": 9, "oracle": 8}


def machine(cores: int = 16, resctrl: bool = True) -> dict:
    """A fake ``hera.machine.describe()`` result."""
    return {
        "cpu_model": "Synthetic Xeon 8380", "logical_cpus": cores, "physical_cores": cores, "sockets": 1,
        "usable_cpus": list(range(cores)), "llc": {"level": 3, "size_bytes": 32 * 2**20, "ways": 11},
        "llc_bytes": 32 * 2**20, "llc_partitioning": "available" if resctrl else "unavailable",
        "resctrl": {"available": resctrl,
                    "reason": None if resctrl else "no resctrl filesystem at /sys/fs/resctrl"},
        "perf": {"available": False, "reason": "perf cannot count hardware events here (virtualised PMU?)"},
    }


def write(root: Path, rel: str, df: pd.DataFrame, meta: dict | None) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    if meta is not None:
        io.sidecar(path).write_text(json.dumps(meta))
    return path


def tables(cores: int = 16, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Every result table of DESIGN.md, with invented numbers of the paper's shape."""
    rng = np.random.default_rng(seed)
    mem = {m: CLASSES[m] == "memory-leaning" for m in MODELS}
    t1 = pd.DataFrame({
        "model": MODELS, "params": [4.1e9 / 4 * (1 + i) for i in range(8)],
        "embedding_bytes": [4.1e9 if mem[m] else 2e8 for m in MODELS], "mlp_flops_per_item": 1e6,
        "emb_bytes_gathered_per_item": [1e5 if mem[m] else 1e3 for m in MODELS], "latency_ms_b1": 0.5,
        "latency_ms_b64": 3.0, "latency_ms_b256": 9.0, "sla_ms": 40.0, "sla_rule": "5 x median query latency",
        "class": [CLASSES[m] for m in MODELS]})
    lat = pd.DataFrame([{"model": m, "batch_size": b, "n_samples": 20,
                         "latency_ms_p50": (i + 1) * 0.2 + 0.02 * b,
                         "latency_ms_p95": ((i + 1) * 0.2 + 0.02 * b) * 1.3,
                         "latency_ms_mean": (i + 1) * 0.2 + 0.021 * b}
                        for i, m in enumerate(MODELS) for b in (1, 16, 64, 256)])
    scal = []
    for i, m in enumerate(MODELS):
        for w in range(1, cores + 1):
            q = (80 + 10 * i) * w * ((0.9 + 0.01 * i) ** (w - 1) if mem[m] else (0.99 + 0.001 * i) ** (w - 1))
            qm = q * (1 + 0.08 * np.sin(i + w))  # the model within 8% of the measurement
            scal.append({"model": m, "workers": w, "qps_star": q, "qps_star_lo": q * 0.93,
                         "qps_star_hi": q * 1.05, "qps_star_ci_level": 0.75, "repeats": 3,
                         "qps_star_model": qm, "qps_star_model_lo": qm * 0.95, "qps_star_model_hi": qm * 1.04,
                         "sla_ms": 40.0, "percentile": 0.95})
    trials, curve = [], []
    for m in MODELS:
        for w in (1, 2):
            q = next(r["qps_star"] for r in scal if r["model"] == m and r["workers"] == w)
            for f in np.linspace(0.05, 1.0, 12):
                tail = 10.0 / (1.05 - f)
                curve.append({"model": m, "workers": w, "rate_qps": f * q / 0.8, "latency_ms_model": tail,
                              "latency_ms_model_lo": tail * 0.9, "latency_ms_model_hi": tail * 1.1,
                              "percentile": 0.95, "sla_ms": 40.0})
            for r, f in itertools.product(range(3), (0.9, 1.1)):
                tail = 40.0 * f ** 3
                trials.append({"model": m, "workers": w, "repeat": r, "rate_qps": q * f,
                               "latency_ms_pct": tail * 1.1, "latency_ms_pct_adjusted": tail,
                               "verdict": "pass" if f < 1 else "fail", "sla_ms": 40.0})
    interference, calibration = [], []
    for i, m in enumerate(MODELS):
        for k in ("bandwidth", "cache"):
            for regime in ("light", "saturated"):
                for x in (0.0, 0.5, 1.0):
                    slope = (0.6 + 0.05 * i) if mem[m] else 0.1 + 0.02 * i
                    v = 1 + x * slope * (1.3 if k == "bandwidth" else 1)
                    v *= 1.1 if regime == "saturated" and x else 1
                    interference.append({
                        "model": m, "part": "sensitivity", "kind": k, "intensity": x, "regime": regime,
                        "workers": 1, "metric": "mean_inflation", "value": v, "drift": 1.02, "baseline": 2.0,
                        "value_lo": v - 0.05 if x else np.nan, "value_hi": v + 0.05 if x else np.nan,
                        "note": f"{20 + i} queries" if x else "intensity 0: the bracketing baselines, pooled"})
            for u in (0.5, 1.0):
                x = u * ((0.7 if mem[m] else 0.15) + 0.03 * i * (k == "cache"))
                for metric, v in (("reporter_slowdown", 1 + x), ("equivalent_intensity", x)):
                    interference.append({
                        "model": m, "part": "pressure", "kind": k, "workers": 1, "load_frac": u,
                        "metric": metric, "value": v, "value_lo": v * 0.9, "value_hi": v * 1.1, "drift": np.nan,
                        "note": f"reporter alone {5 + i} GB/s"})
    for k in ("bandwidth", "cache"):
        for x in (0.0, 0.5, 1.0):
            calibration.append({"kind": k, "intensity": x, "metric": "reporter_slowdown", "value": 1 + x,
                                "value_lo": 0.95 + x, "value_hi": 1.05 + x, "usable": True})
    pairs, predicted = [], []
    for a, b in itertools.combinations(MODELS, 2):
        hetero = mem[a] != mem[b]
        level = (1.3 if hetero else 1.02) + rng.normal(0, 0.03)
        for ca, share in itertools.product((cores // 4, cores // 2), (0.25, 0.5, 0.75)):
            pred = level - (0.1 if ca != cores // 2 else 0) - 0.2 * abs(share - 0.5)
            key = {"model_a": a, "model_b": b, "cores_a": ca, "cores_b": cores - ca, "ways_a": 5, "ways_b": 6,
                   "llc": "5/6", "share_a": share}
            qa, qb = 500.0 * share * pred, 400.0 * (1 - share) * pred
            predicted.append(key | {"qps_star_a": qa, "qps_star_b": qb, "emu": pred, "emu_lo": pred - 0.08,
                                    "emu_hi": pred + 0.08, "best": ca == cores // 2, "qps_alone_a": 500.0,
                                    "qps_alone_b": 400.0})
            if a in MEASURED and b in MEASURED:
                emu = pred + rng.normal(0, 0.05)
                pairs.append(key | {"qps_star_a": qa * emu / pred, "qps_star_b": qb * emu / pred,
                                    "qps_alone_a": 500.0, "qps_alone_b": 400.0, "emu": emu, "best": False,
                                    "predicted_qps_star_a": qa, "predicted_qps_star_b": qb,
                                    "predicted_emu": pred, "predicted_emu_lo": pred - 0.08,
                                    "predicted_emu_hi": pred + 0.08, "selected_as": "predicted best"})
    pairs = pd.DataFrame(pairs)
    pairs.loc[pairs.groupby(["model_a", "model_b"])["emu"].idxmax(), "best"] = True
    emu = pd.DataFrame([{"policy": p, "mix": x, "node": n, "tenants": "dlrm_rmc1+dlrm_rmc3",
                         "emu": 1.0 if p == "single_tenant" else EMU_LEVEL[p] + rng.normal(0, 0.04),
                         "decided_on": "predicted" if p == "hera" else "measured",
                         "evaluated_on": "measured",
                         "predicted_emu": EMU_LEVEL[p] + 0.05 if p == "hera" else np.nan}
                        for p in POLICIES for x in ["all", *MIXES] for n in range(3)])
    lvl = []
    for p in POLICIES:
        for g, (a, b) in enumerate([("dlrm_rmc1", "dlrm_rmc3"), ("dlrm_rmc2", "wnd")]):
            for tenant in (a, b):
                for f in (0.25, 0.5, 0.75, 1.0, 1.25):
                    slope = 2.2 * (0.8 if p in ("hera", "oracle") else 1.0)
                    ratio = 0.1 * np.exp(slope * f) + rng.uniform(0, .05)
                    lvl.append({"policy": p, "group": f"g{g}", "tenant": tenant, "load_frac": f,
                                "offered_qps": 200 * f, "achieved_qps": 200 * min(f, 1.1),
                                "p95_ms": 40 * ratio,
                                "sla_ms": 40.0, "n_queries": 300})
    lc = []
    for t in np.arange(0, 12, 0.5):
        for tenant, base in (("dlrm_rmc1", 150.0), ("dlrm_rmc3", 90.0)):
            load = base * (1.8 if 4 <= t < 8 and tenant == "dlrm_rmc1" else 1.0)
            p95 = 48.0 if t == 4.0 and tenant == "dlrm_rmc1" else 20.0 + rng.uniform(0, 8)
            lc.append({"t_s": t, "tenant": tenant, "p95_ms": p95, "sla_ms": 40.0, "violations": int(p95 > 40),
                       "offered_qps": load})
    moves = pd.DataFrame([
        {"t_s": 4.5, "tenant": "dlrm_rmc1", "resource": "cores", "delta": 1, "reason": "slack < 0.05"},
        {"t_s": 4.5, "tenant": "dlrm_rmc3", "resource": "cores", "delta": -1, "reason": "slack > 0.2"},
        {"t_s": 5.0, "tenant": "dlrm_rmc1", "resource": "llc_ways", "delta": 1, "reason": "slack < 0.05"},
        {"t_s": 8.5, "tenant": "dlrm_rmc1", "resource": "cores", "delta": -1, "reason": "slack > 0.2"},
    ])
    servers = pd.DataFrame([{"mix": x, "policy": p, "servers": SERVERS[p] + i, "assignment": "[]",
                             "decided_on": "predicted" if p == "hera" else "measured", "evaluated_on": "measured",
                             "servers_planned": SERVERS[p] + i - (p == "hera")}
                            for i, x in enumerate(MIXES) for p in POLICIES])
    return {"tables/T1.csv": t1, "profile/latency.csv": lat, "profile/scalability.csv": pd.DataFrame(scal),
            "profile/scalability_trials.csv": pd.DataFrame(trials),
            "profile/scalability_curve.csv": pd.DataFrame(curve),
            "profile/interference.csv": pd.DataFrame(interference),
            "profile/interference_calibration.csv": pd.DataFrame(calibration),
            "colocation/pairs.csv": pairs, "colocation/predicted.csv": pd.DataFrame(predicted),
            "policy/emu.csv": emu, "serving/latency_vs_load.csv": pd.DataFrame(lvl),
            "serving/load_change.csv": pd.DataFrame(lc), "serving/moves.csv": moves,
            "cluster/servers.csv": servers}


def write_results(root: Path, cores: int = 16, resctrl: bool = True, scale: str = "ci",
                  sidecars: bool = True, only: list[str] | None = None) -> Path:
    """Write the synthetic tables (all, or ``only`` these) under ``root`` with provenance sidecars."""
    meta = {"machine": machine(cores, resctrl), "config": {"scale": scale, "cores": "auto"},
            "git_commit": "0123456789abcdef", "seed": 0} if sidecars else None
    for rel, df in tables(cores).items():
        if only is None or rel in only:
            write(root, rel, df, meta)
    return root


def test_synthetic_results_match_every_schema(tmp_path):
    root = write_results(tmp_path / "results" / "ci")
    for rel in io.SCHEMAS:
        t = io.read_table(root, rel)
        assert not t.df.empty and t.machine.usable_cores == 16 and t.scale == "ci"
