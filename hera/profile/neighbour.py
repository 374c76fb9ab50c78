"""The neighbour profile: how much a *loaded neighbour tenant* raises a model's tail, beyond what the memory
profiles and the harness's CPU share predict (``hera profile neighbour``; docs/DESIGN.md, "The neighbour channel").

O(N), one job per model: the model (the *victim*) on the study's first core at ``load`` × its one-worker QPS*,
a fixed *reference neighbour* (``interference.neighbour.reference``: the first of its models that is not the
victim) on the second core at each of ``fractions`` × its own one-worker QPS*, through the serving path — both
tenants' load generators, the node's dispatch and collectors, as in a measured pair. ``blocks`` randomised blocks,
every fraction once per block; within a block the victim's stream (arrivals, sizes, samples) is the same at every
fraction (common random numbers), so a block's ratio of the victim's p-quantile latency at a fraction over the
lightest one is the neighbour's effect, not a different draw of arrivals. Each window lasts long enough for
``min_queries`` of the victim's queries (at least ``min_seconds``).

What the prediction needs is an *inflation*, on the same footing as the memory sensitivities: the extra factor
``e(u)`` on every service time of the victim that makes the prediction's own model of it (its calibrated node-model
curve, with the memory inflation and harness share the prediction already gives for this neighbour at this load)
reproduce the measured tail ratio (:func:`extra_inflation`). ``u`` is the neighbour's utilisation (its rate over its
calibrated capacity), the pressure every partner exerts at its own load — so the profile transfers from the
reference to any partner as the busy core does (a partner at utilisation u raises the victim's tail as a neighbour
at u did). ``e`` at the lightest fraction is 1 by construction; below 1 it is kept as measured in the table and
read as 1 by the prediction (a neighbour does not speed a tenant up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from hera.errors import ConfigError, HeraError
from hera.profile.pair_prediction import NEIGHBOUR, NeighbourInterference, read_neighbour_profiles

__all__ = ["NEIGHBOUR", "NeighbourInterference", "NeighbourSettings", "read_neighbour_profiles", "run"]

#: Seconds of the unrecorded window that warms the node before the blocks.
WARMUP_S = 3.0
#: Columns of the profile table (one row per measured fraction; the lightest one is the reference, e = 1).
COLUMNS = ("model", "reference", "workers", "load", "tenant_qps", "fraction", "neighbour_qps", "utilisation",
           "blocks", "window_s", "queries", "p_latency_ratio", "p_latency_ratio_min", "p_latency_ratio_max",
           "service_ratio", "predicted_ratio", "predicted_inflation", "extra_inflation", "percentile", "note")


class NeighbourError(HeraError):
    """A neighbour profile cannot be measured or read (a reference without a QPS*, a table that lacks a column)."""


@dataclass(frozen=True)
class NeighbourSettings:
    """``interference.neighbour``: ``enabled``, the reference models (the first that is not the victim is its
    neighbour), the victim's ``load`` and the neighbour's ``fractions`` of their one-worker QPS*, ``blocks``, and
    each window's length (``min_queries`` of the victim's, at least ``min_seconds``)."""

    enabled: bool
    reference: tuple[str, ...]
    load: float
    fractions: tuple[float, ...]
    blocks: int
    min_queries: int
    min_seconds: float

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "NeighbourSettings":
        n = dict((config.get("interference") or {}).get("neighbour") or {})
        fr = tuple(sorted({float(f) for f in n.get("fractions", (0.02, 0.35, 0.85))}))
        s = cls(bool(n.get("enabled", False)), tuple(n.get("reference", ("ncf", "dlrm_rmc1"))),
                float(n.get("load", 0.85)), fr, int(n.get("blocks", 2)), int(n.get("min_queries", 300)),
                float(n.get("min_seconds", 3.0)))
        if len(s.reference) < 2 or len(set(s.reference)) != len(s.reference):
            raise ConfigError(f"config key interference.neighbour.reference: two distinct models are needed (the "
                              f"second is the first's own neighbour), not {list(s.reference)}")
        if len(s.fractions) < 2 or not all(0 < f <= 1.5 for f in s.fractions):
            raise ConfigError(f"config key interference.neighbour.fractions: at least two distinct fractions in "
                              f"(0, 1.5], not {list(n.get('fractions'))}")
        return s

    def reference_for(self, model: str) -> str:
        """The victim's neighbour: the first reference model that is not the victim itself."""
        return next(r for r in self.reference if r != model)

    def window_s(self, tenant_qps: float) -> float:
        return max(self.min_seconds, self.min_queries / max(tenant_qps, 1e-9))


# ------------------------------------------------------------------------------------------- measurement
def run_window(sut: Any, bases: dict[str, Any], lib: dict[str, int], rates: dict[str, float], seconds: float,
               seeds: dict[str, int]) -> Any:
    """One window of open-loop Poisson load for every tenant of ``rates`` (tenant → queries/s), each stream seeded
    by ``seeds[tenant]`` (arrivals, sizes and samples derived from it); the driver's result."""
    from hera.loadgen import driver

    streams = {}
    for t, r in rates.items():
        n = max(20, int(math.ceil(r * seconds)))
        s = int(seeds[t])
        streams[t] = bases[t].replace(
            target_qps=float(r), n_queries=n, duration_s=None, min_queries=0, min_duration_s=0.0,
            warmup_queries=max(2, int(math.ceil(r * 0.25))), arrival="poisson", arrival_trace=None,
            arrival_formula=None, arrival_seed=s % (2**31 - 1), size_seed=(s + 1) % (2**31 - 1),
            sample_seed=(s + 2) % (2**31 - 1), max_outstanding=max(1000, 4 * n))
    return driver.run(sut, streams, lib)


def window_record(res: Any, tenant: str, partner: str, percentile: float) -> dict[str, Any]:
    """The victim's numbers of one window (its measured, non-warm-up, successful queries)."""
    rows = res.rows[~res.rows["warmup"] & res.rows["ok"]]
    mine, other = rows[rows["tenant"] == tenant], rows[rows["tenant"] == partner]
    wall = float(res.summary.get("wall_s", math.nan))
    return {"queries": int(len(mine)), "service_ms_mean": float(mine["service_ms"].mean()),
            "latency_ms_mean": float(mine["latency_ms"].mean()),
            "latency_ms_p": float(mine["latency_ms"].quantile(percentile)) if len(mine) else math.nan,
            "latency_ms_p95": float(mine["latency_ms"].quantile(0.95)) if len(mine) else math.nan,
            "latency_ms_p99": float(mine["latency_ms"].quantile(0.99)) if len(mine) else math.nan,
            "partner_latency_ms_p95": float(other["latency_ms"].quantile(0.95)) if len(other) else math.nan,
            "harness_cores": float(res.summary.get("harness_cpu_s", math.nan)) / wall if wall > 0 else math.nan}


def measure_windows(config: dict[str, Any], model: str, partner: str, qps: dict[str, float],
                    sla: dict[str, float], load: float, fractions: list[float], blocks: int, seconds: float,
                    opts: Any, common_streams: bool = True, tag: str = "neighbour",
                    log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """The victim ``model`` at ``load`` × its QPS* beside ``partner`` at each of ``fractions`` × its own, in
    ``blocks`` seeded random orders, after one unrecorded warm-up window; one record per window. With
    ``common_streams`` the victim's stream is seeded per block (the same queries at every fraction of a block),
    else per window. ``qps``/``sla``: each model's one-worker QPS* and SLA."""
    from hera.harness import study_cores
    from hera.harness.nodes import TenantPlan, start_node, tenant_name
    from hera.loadgen.sut import NodeSUT
    from hera.profile.common import derived_seed
    from hera.profile.scalability import confirm_settings

    for m in (model, partner):
        if not (m in qps and qps[m] > 0 and m in sla and sla[m] > 0):
            raise NeighbourError(f"model {m!r} has no one-worker QPS* and SLA to load it by (run the pipeline's "
                                 f"F2 first)")
    cores = study_cores(config)
    if len(cores) < 2:
        raise NeighbourError(f"a neighbour needs two study cores (the tenant's and its neighbour's), this study has "
                             f"{cores}")
    pct = float(config["sla"]["percentile"])
    seed = int(config["seed"])
    names = (tenant_name(model, partner, "a"), tenant_name(partner, model, "b"))
    batch, max_items = int(config["batch_size"]), int(config["queries"]["max_items"])
    plans = [TenantPlan(names[0], model, (cores[0],), batch, max_items),
             TenantPlan(names[1], partner, (cores[1],), batch, max_items)]
    rng = np.random.default_rng(derived_seed(seed, f"{tag}-order", f"{model}/{partner}"))
    order = [[fractions[i] for i in rng.permutation(len(fractions))] for _ in range(int(blocks))]
    windows: list[dict[str, Any]] = []
    with start_node(config, plans, opts) as node:
        sut = NodeSUT(node)
        lib = {t: node.library_size(t) for t in names}
        bases = {t: confirm_settings(config, sla[m], qps[m], f"{tag}/{t}") for t, m in zip(names, (model, partner))}
        warm = {names[0]: derived_seed(seed, f"{tag}-warmup", model),
                names[1]: derived_seed(seed, f"{tag}-warmup", partner)}
        run_window(sut, bases, lib, {names[0]: load * qps[model],
                                     names[1]: fractions[len(fractions) // 2] * qps[partner]},
                   min(seconds, WARMUP_S), warm)
        for b, block in enumerate(order):
            for f in block:
                rates = {names[0]: load * qps[model], names[1]: f * qps[partner]}
                own = f"{model}/{partner}/{b}" if common_streams else f"{model}/{partner}/{b}/{f:g}"
                seeds = {names[0]: derived_seed(seed, tag, own),
                         names[1]: derived_seed(seed, f"{tag}-neighbour", f"{model}/{partner}/{b}/{f:g}")}
                res = run_window(sut, bases, lib, rates, seconds, seeds)
                w = {"block": b, "fraction": float(f), "partner_qps": round(rates[names[1]], 3),
                     "tenant_qps": round(rates[names[0]], 3), **window_record(res, names[0], names[1], pct)}
                windows.append(w)
                if log:
                    log(f"[{tag}] block {b}: {partner} at {f:g} x its QPS*: {model} mean sub-batch "
                        f"{w['service_ms_mean']:.3f} ms, p{pct * 100:g} {w['latency_ms_p']:.2f} ms (SLA "
                        f"{sla[model]:.1f}), harness {w['harness_cores']:.3f} of a core")
    return windows


def block_ratios(windows: pd.DataFrame, column: str) -> dict[float, np.ndarray]:
    """Per fraction, each block's ``column`` over the same block's value at the lightest fraction."""
    lightest = windows["fraction"].min()
    base = windows[windows["fraction"] == lightest].set_index("block")[column]
    out = {}
    for f, g in windows.groupby("fraction"):
        r = (g.set_index("block")[column] / base.reindex(g["block"].to_numpy()).to_numpy()).to_numpy(float)
        out[float(f)] = r[np.isfinite(r) & (r > 0)]
    return out


# ------------------------------------------------------------------------------------------- conversion
def tail_ms(curve: Any, rate_qps: float, inflation: np.ndarray | float) -> np.ndarray:
    """``float[R]``: the curve's modelled latency quantile at ``rate_qps`` with every service time × ``inflation``
    (and × its ``service_scale``): ``f · Q(f · λ)``, the uniform-inflation reading the prediction uses; ∞ past the
    curve's last rate (saturated)."""
    f = np.broadcast_to(np.asarray(inflation, float) * np.asarray(curve.service_scale, float), (curve.replicates,))
    q = curve._monotone()
    out = np.empty(curve.replicates)
    for j in range(curve.replicates):
        r = f[j] * float(rate_qps)
        out[j] = f[j] * np.interp(r, curve.rates_qps, q[:, j]) if r <= curve.rates_qps[-1] else np.inf
    return out


def extra_inflation(curve: Any, rate_qps: float, f_light: np.ndarray, f_loaded: np.ndarray, ratio: float,
                    lo: float = 0.5, hi: float = 4.0, iterations: int = 40) -> tuple[float, float]:
    """``(e, predicted ratio)``: the median over replicates of the factor ``e`` that makes the modelled tail at
    ``rate_qps`` with inflation ``f_loaded · e`` equal ``ratio`` × the modelled tail with ``f_light`` (bisection in
    [lo, hi]), and the ratio the model gives without it (``e`` = 1)."""
    t0 = tail_ms(curve, rate_qps, f_light)
    a, b = np.full(curve.replicates, float(lo)), np.full(curve.replicates, float(hi))
    for _ in range(iterations):
        mid = np.sqrt(a * b)
        over = tail_ms(curve, rate_qps, np.asarray(f_loaded) * mid) / t0 > ratio
        a, b = np.where(over, a, mid), np.where(over, mid, b)
    with np.errstate(invalid="ignore"):
        pred = float(np.median(tail_ms(curve, rate_qps, f_loaded) / t0))
    return float(np.median(np.sqrt(a * b))), pred


def profile_table(windows: list[dict[str, Any]], model: str, reference: str, settings: NeighbourSettings,
                  percentile: float, curves: dict, alone: dict, split: Any, interference: Any,
                  seconds: float) -> pd.DataFrame:
    """The profile's rows (:data:`COLUMNS`) from the measured windows, on the prediction's own curves (``curves``
    and ``alone`` of :func:`hera.profile.pair_prediction.pair_curves`, one worker; ``split``: the 1 + 1 split)."""
    from hera.profile import pair_prediction as pp

    df = pd.DataFrame(windows)
    cv, cp = curves[(model, 1)], curves[(reference, 1)]
    r = min(cv.replicates, cp.replicates)
    lam_v = float(df["tenant_qps"].iloc[0])
    lv = np.full(r, lam_v)
    p_ratio, s_ratio = block_ratios(df, "latency_ms_p"), block_ratios(df, "service_ms_mean")
    fr = sorted(p_ratio)

    def predicted(f: float) -> tuple[np.ndarray, np.ndarray]:
        lam_p = np.full(r, f * alone[(reference, 1)])
        u = lam_p / cp.effective_capacity[:r]
        g = pp.harness_steal(cv, cp, split, lv, lam_p)
        return g * pp.inflation(model, reference, 1, u, split.cache_intensity_on("a"), interference), u

    f_light, _ = predicted(fr[0])
    rows = []
    for f in fr:
        f_loaded, u = predicted(f)
        ratios = p_ratio[f]
        note = ""
        if f == fr[0]:
            e, pred, ratio = 1.0, 1.0, 1.0
            note = "the lightest fraction: the reference point (e = 1)"
        elif len(ratios) == 0:
            e, pred, ratio = math.nan, math.nan, math.nan
            note = "no block with a finite tail at this fraction and the lightest"
        else:
            ratio = float(np.median(ratios))
            e, pred = extra_inflation(cv, lam_v, f_light, f_loaded, ratio)
        g = df[df["fraction"] == f]
        rows.append({"model": model, "reference": reference, "workers": 1, "load": settings.load,
                     "tenant_qps": lam_v, "fraction": f, "neighbour_qps": float(g["partner_qps"].iloc[0]),
                     "utilisation": float(np.median(u)), "blocks": int(len(g)), "window_s": float(seconds),
                     "queries": int(g["queries"].sum()), "p_latency_ratio": ratio,
                     "p_latency_ratio_min": float(ratios.min()) if len(ratios) else math.nan,
                     "p_latency_ratio_max": float(ratios.max()) if len(ratios) else math.nan,
                     "service_ratio": float(np.median(s_ratio[f])) if len(s_ratio.get(f, [])) else math.nan,
                     "predicted_ratio": pred,
                     "predicted_inflation": float(np.median(f_loaded / f_light)), "extra_inflation": e,
                     "percentile": percentile, "note": note})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def run(config: dict[str, Any], model: str, t1: str | Path, scalability: str | Path, services: dict[str, str],
        interference: Any, out: str | Path, opts: Any, log: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Measure ``model``'s neighbour profile and write it (``out``, with provenance; the windows beside it as
    ``<out stem>.windows.csv``)."""
    from hera.harness import read_t1
    from hera.profile import common
    from hera.profile import pair_prediction as pp
    from hera.provenance import write_table

    st = NeighbourSettings.from_config(config)
    ref = st.reference_for(model)
    for m in (model, ref):
        if m not in services:
            raise NeighbourError(f"no service profile given for model {m!r} (the victim and its reference "
                                 f"neighbour {ref!r} both need one)")
    sla = read_t1(t1, [model, ref])
    scal = common.read_scalability(scalability, [model, ref])
    curves, alone, _, _ = pp.pair_curves(config, [model, ref], sla, scal, services, [1])
    splits, _ = pp.node_splits(config)
    one = [s for s in splits if s.cores_a == 1 and s.cores_b == 1 and s.ways_a is None]
    split = one[0] if one else pp.PairSplit(1, 1, harness_shared=False)
    qps = {m: float(alone[(m, 1)]) for m in (model, ref)}
    rate = st.load * qps[model]
    seconds = st.window_s(rate)
    windows = measure_windows(config, model, ref, qps, {m: sla[m]["sla_ms"] for m in (model, ref)}, st.load,
                              list(st.fractions), st.blocks, seconds, opts, log=log)
    df = profile_table(windows, model, ref, st, float(config["sla"]["percentile"]), curves, alone, split,
                       interference, seconds)
    out = Path(out)
    write_table(pd.DataFrame(windows).assign(model=model, reference=ref), out.with_suffix(".windows.csv"),
                config=config, seed=config["seed"])
    write_table(df, out, config=config, seed=config["seed"])
    return df
