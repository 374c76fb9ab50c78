"""F4: co-location of a model pair — co-located QPS* and EMU for every split of cores (and LLC ways).

Method, per split (``c_a + c_b`` = the study's cores, each ≥ 1, tenant a on the first ``c_a`` cores; and, where
resctrl exposes L3 CAT and ``colocation.llc_splits`` is on, each way split ``w_a + w_b = W`` of
:func:`way_splits`; otherwise the way columns stay empty and ``llc_partitioning = unavailable``):

1. one two-tenant node serves the pair; splits after the first are applied with the node's run-time
   ``resize`` / ``set_llc_ways`` (no restart);
2. both tenants are offered Poisson load at ``f × QPS*_i(alone, c_i workers)`` (from the scalability table, F2)
   through one merged open-loop schedule (:func:`hera.loadgen.driver.run`); a *joint trial* at ``f`` passes when
   BOTH tenants meet their SLA (``sla_ms`` from T1 at ``sla.percentile``) under MLPerf's early-stopping rule —
   the trial rule of :mod:`hera.loadgen.search` (``max(search.min_queries, rate · search.min_duration_s)``
   measured queries, undecided trials re-run with twice the queries up to ``search.max_queries``, then counted
   as fails) applied to the tenant with the lower rate, while the other tenant's stream spans the same time
   (so the two interfere for the whole trial);
3. the highest passing ``f`` is searched like QPS*: f = 1 first, then up by factors of ``1 + rel_tolerance``
   while trials pass (at most :data:`F_MAX`) or down by halving while they fail (at least :data:`F_MIN`, else
   f = 0), then bisection until ``(hi − lo)/lo ≤ search.rel_tolerance``; ``search.repeats`` repeats with other
   arrival seeds, ``f`` = their mean;
4. ``QPS*_i(co) = f × QPS*_i(alone, c_i)`` and ``EMU = Σ_i QPS*_i(co) / QPS*_i(alone, whole node)`` where the whole
   node value is the best worker count of the scalability table. ``best`` marks the split with the highest EMU.

Rows are appended to ``<out stem>.partial.csv`` as each split finishes; a rerun after an interruption skips the
splits already there and finally writes ``out`` (with provenance) and removes the partial file.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from hera.profile import common

COLUMNS = ["model_a", "model_b", "cores_a", "cores_b", "ways_a", "ways_b", "qps_star_a", "qps_star_b",
           "qps_alone_a", "qps_alone_b", "emu", "best", "f", "f_lo", "f_hi", "n_queries", "n_trials",
           "sla_ms_a", "sla_ms_b", "percentile", "qps_whole_a", "qps_whole_b", "latency_ms_pct_a",
           "latency_ms_pct_b", "cpus_a", "cpus_b", "repeats", "rel_tol", "llc_partitioning", "scale", "note"]
KEY = ["cores_a", "cores_b", "ways_a", "ways_b"]
F_MAX = 2.0
F_MIN = 1.0 / 32  # as the QPS* search (min_qps = start / 32): lower loads are not tried


@dataclass(frozen=True)
class Split:
    """One resource split of the node between tenants a and b."""

    cpus_a: tuple[int, ...]
    cpus_b: tuple[int, ...]
    ways_a: int | None = None
    ways_b: int | None = None

    def key(self) -> dict[str, Any]:
        return {"cores_a": len(self.cpus_a), "cores_b": len(self.cpus_b), "ways_a": self.ways_a,
                "ways_b": self.ways_b}


def way_splits(total_ways: int, min_bits: int = 1) -> list[tuple[int, int]]:
    """Way splits tried per core split: a quarter, half and three quarters of the ways to tenant a."""
    out = []
    for wa in (total_ways // 4, total_ways // 2, total_ways - total_ways // 4):
        wb = total_ways - wa
        if wa >= min_bits and wb >= min_bits and (wa, wb) not in out:
            out.append((wa, wb))
    return out


def plan_splits(cores: list[int], resctrl: dict[str, Any], llc_splits: bool) -> tuple[list[Split], str]:
    """Every core split of the plan (:meth:`hera.topology.CorePlan.splits`: tenant a the first k) and, where
    resctrl is verified and ``llc_splits`` asks for it, the shared LLC beside each LLC-way split of the ways
    the harness leaves (:func:`hera.server.resctrl.tenant_ways`)."""
    from hera.server.resctrl import tenant_ways
    from hera.topology import CorePlan

    core_splits = CorePlan.from_cpus(cores).splits()
    if llc_splits and resctrl.get("available") and resctrl.get("l3_ways"):
        ways = [(None, None)] + way_splits(tenant_ways(resctrl), int(resctrl.get("min_cbm_bits") or 1))
        return [Split(a, b, wa, wb) for a, b in core_splits for wa, wb in ways], "available"
    return [Split(a, b) for a, b in core_splits], "unavailable"


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ joint search
def joint_trial(sut: Any, bases: dict[str, Any], rates: dict[str, float], library: dict[str, int],
                config: dict[str, Any], log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Offer every tenant its rate at once; pass only when all meet their SLA (early stopping, as in the
    loadgen search: undecided → twice the queries, up to ``search.max_queries``, then fail).

    All streams span the same time, so the tenants interfere for the whole trial: the slowest tenant gets
    ``max(search.min_queries, rate · search.min_duration_s)`` queries (doubled on undecided, up to
    ``search.max_queries``) and every other tenant as many as its rate brings in that time (≥ ``min_queries``).
    """
    from hera.loadgen import driver

    s = config["search"]
    mq, cap, md = int(s["min_queries"]), int(s["max_queries"]), float(s["min_duration_s"])
    cap = max(cap, mq)
    slow = min(rates, key=lambda t: rates[t])
    n_slow = min(max(mq, int(math.ceil(rates[slow] * md))), cap)
    total = 0
    while True:
        span_s = max(n_slow / rates[slow], md)
        n = {t: max(mq, int(math.ceil(rates[t] * span_s))) for t in rates}
        n[slow] = n_slow
        idle = getattr(sut, "wait_idle", None)
        if idle is not None:  # the previous (possibly overloaded) trial's backlog must not leak in
            idle()
        streams = {t: bases[t].replace(target_qps=float(rates[t]), n_queries=int(n[t]), duration_s=None,
                                       min_queries=0, min_duration_s=0.0) for t in rates}
        res = driver.run(sut, streams, library, abort_on_fail=True, abort_budget_queries=cap)
        aborted = bool(res.summary["aborted"])
        verdicts = {t: ("fail" if aborted else res.tenants[t]["early_stopping_verdict"]) for t in rates}
        total += int(sum(res.tenants[t]["n_measured"] for t in rates))
        pct = {t: res.tenants[t].get(f"latency_ms_{common.percentile_tag(bases[t].percentile)}") for t in rates}
        if log:
            log("  joint trial " + ", ".join(f"{t} {rates[t]:.1f} qps p={pct[t] if pct[t] is None else round(pct[t], 2)}"
                                             f" ms ({verdicts[t]})" for t in rates))
        if any(v == "fail" for v in verdicts.values()):
            return {"passed": False, "n_queries": total, "pct": pct, "verdicts": verdicts}
        if all(v == "pass" for v in verdicts.values()):
            return {"passed": True, "n_queries": total, "pct": pct, "verdicts": verdicts}
        if n_slow >= cap:  # undecided at max_queries: not proven → fail
            return {"passed": False, "n_queries": total, "pct": pct, "verdicts": verdicts}
        n_slow = min(2 * n_slow, cap)


def search_factor(trial: Callable[[float], bool], rel_tol: float, f_max: float = F_MAX,
                  f_min: float = F_MIN, flat: Callable[[float, float], bool] | None = None) -> float:
    """The highest f in (0, f_max] for which ``trial(f)`` passes (0.0 if none down to ``f_min``).

    ``flat(f_hi, f)``, asked after ``f = f_hi / 2`` failed too, says halving the load did not help (a
    tenant's tail stayed above its SLA, service-time bound); after ``FLAT_TAIL_HALVINGS`` such halvings in a
    row the search stops with 0.0, as :meth:`hera.loadgen.search._Searcher.down` does.
    """
    from hera.loadgen.search import FLAT_TAIL_HALVINGS

    step = 1.0 + max(rel_tol, 0.05)
    lo, hi = 0.0, math.inf
    if trial(1.0):
        lo = 1.0
        while lo < f_max:
            f = min(lo * step, f_max)
            if trial(f):
                lo = f
            else:
                hi = f
                break
    else:
        hi, n_flat = 1.0, 0
        while lo == 0.0:
            f = hi / 2
            if f < f_min:
                return 0.0
            if trial(f):
                lo = f
                break
            n_flat = n_flat + 1 if flat is not None and flat(hi, f) else 0
            if n_flat >= FLAT_TAIL_HALVINGS:
                return 0.0
            hi = f
    while math.isfinite(hi) and (hi - lo) / lo > rel_tol:
        mid = (lo + hi) / 2
        if trial(mid):
            lo = mid
        else:
            hi = mid
    return lo


def flat_tenants(pct_hi: dict[str, Any], pct_lo: dict[str, Any], sla_ms: dict[str, float]) -> list[str]:
    """Tenants whose tail at the halved load (``pct_lo``) is above their SLA and not lower than at the
    previous load (``pct_hi``) by ``FLAT_TAIL_GAIN`` (:func:`hera.loadgen.search.tail_flat`)."""
    from hera.loadgen.search import tail_flat

    def ms(v: Any) -> float:
        return math.nan if v is None else float(v)

    return [t for t, sla_t in sla_ms.items() if tail_flat(ms(pct_hi.get(t)), ms(pct_lo.get(t)), sla_t)]


# ---------------------------------------------------------------------------------------------- running
class _PairNode:
    """The pair's node, started lazily on the first split and re-split in place afterwards."""

    def __init__(self, config: dict[str, Any], names: tuple[str, str], models: tuple[str, str],
                 opts: common.NodeOptions):
        self.config, self.names, self.models, self.opts = config, names, models, opts
        self._cm = None
        self.node = None

    def apply(self, split: Split) -> Any:
        batch, max_items = int(self.config["batch_size"]), int(self.config["queries"]["max_items"])
        na, nb = self.names
        if self.node is None:
            plans = [common.TenantPlan(na, self.models[0], split.cpus_a, batch, max_items, split.ways_a),
                     common.TenantPlan(nb, self.models[1], split.cpus_b, batch, max_items, split.ways_b)]
            self._cm = common.start_node(self.config, plans, self.opts)
            self.node = self._cm.__enter__()
            return self.node
        node = self.node
        cur_a = tuple(node.stats()[na].cores)
        if cur_a != split.cpus_a:  # shrink first so that the two core sets never overlap
            if len(split.cpus_a) > len(cur_a):
                node.resize(nb, list(split.cpus_b))
                node.resize(na, list(split.cpus_a))
            else:
                node.resize(na, list(split.cpus_a))
                node.resize(nb, list(split.cpus_b))
        if split.ways_a is None:  # the shared LLC (after a way split: back to the shared block)
            node.set_llc_ways(na, None)
            node.set_llc_ways(nb, None)
        else:
            cur = node.stats()[na].llc_ways_requested
            if cur is not None and split.ways_a > cur:
                node.set_llc_ways(nb, split.ways_b)
                node.set_llc_ways(na, split.ways_a)
            else:
                node.set_llc_ways(na, split.ways_a)
                node.set_llc_ways(nb, split.ways_b)
        return node

    def close(self) -> None:
        if self._cm is not None:
            self._cm.__exit__(None, None, None)
            self._cm = self.node = None


def measure_split(node: Any, split: Split, names: tuple[str, str], models: tuple[str, str],
                  sla: dict[str, dict[str, Any]], scal, config: dict[str, Any]) -> dict[str, Any]:
    """One row: the co-located QPS* of both tenants under ``split`` (see the module docstring)."""
    from hera.loadgen.sut import NodeSUT

    s = config["search"]
    rel_tol, repeats = float(s["rel_tolerance"]), int(s["repeats"])
    (na, nb), (ma, mb) = names, models
    alone = {na: common.qps_alone(scal, ma, len(split.cpus_a)), nb: common.qps_alone(scal, mb, len(split.cpus_b))}
    whole = {na: common.qps_whole_node(scal, ma), nb: common.qps_whole_node(scal, mb)}
    active = [t for t in (na, nb) if alone[t] > 0]
    lib = {t: node.library_size(t) for t in (na, nb)}
    sut = NodeSUT(node)
    per_f, total_q, n_trials, last_pct = [], 0, 0, {na: math.nan, nb: math.nan}
    notes = []
    for t in (na, nb):
        if alone[t] <= 0:
            notes.append(f"{t} meets no rate alone on {len(split.cpus_a if t == na else split.cpus_b)} core(s): "
                         "QPS*(co) = 0")
    for r in range(repeats if active else 0):
        bases = {t: common.loadgen_settings(config, sla[models[names.index(t)]]["sla_ms"], alone[t],
                                            stream=f"colocation/{ma}__{mb}/{t}", repeat=r) for t in active}
        seen: dict[float, bool] = {}
        pct_at: dict[float, dict[str, Any]] = {}

        def trial(f: float) -> bool:
            nonlocal total_q, n_trials
            if f in seen:
                return seen[f]
            out = joint_trial(sut, bases, {t: f * alone[t] for t in active}, lib, config, log=_log)
            total_q += out["n_queries"]
            n_trials += 1
            if out["passed"]:
                last_pct.update({t: out["pct"][t] for t in active})
            seen[f], pct_at[f] = out["passed"], out["pct"]
            _log(f"  f = {f:.3f}: {'pass' if out['passed'] else 'fail'}")
            return out["passed"]

        sla_active = {t: sla[models[names.index(t)]]["sla_ms"] for t in active}

        def flat(f_hi: float, f: float) -> bool:
            stuck = flat_tenants(pct_at.get(f_hi, {}), pct_at.get(f, {}), sla_active)
            if stuck:
                notes.append(f"f = {f:.3f}: halving the load left the tail of {', '.join(stuck)} above the SLA")
            return bool(stuck)

        per_f.append(search_factor(trial, rel_tol, flat=flat))
    f = sum(per_f) / len(per_f) if per_f else 0.0
    co = {t: f * alone[t] if t in active else 0.0 for t in (na, nb)}
    emu = sum(co[t] / whole[t] for t in (na, nb) if whole[t] > 0)
    notes.append(f"joint search over f (rel_tol {rel_tol:g}, {repeats} repeat(s)); early-stopping trials of "
                 f"{s['min_queries']}-{s['max_queries']} queries per tenant, far shorter than MLPerf's 600 s")
    return {
        "model_a": ma, "model_b": mb, **split.key(), "qps_star_a": co[na], "qps_star_b": co[nb],
        "qps_alone_a": alone[na], "qps_alone_b": alone[nb], "emu": emu, "best": False, "f": f,
        "f_lo": min(per_f) if per_f else 0.0, "f_hi": max(per_f) if per_f else 0.0, "n_queries": total_q,
        "n_trials": n_trials, "sla_ms_a": sla[ma]["sla_ms"], "sla_ms_b": sla[mb]["sla_ms"],
        "percentile": float(config["sla"]["percentile"]), "qps_whole_a": whole[na], "qps_whole_b": whole[nb],
        "latency_ms_pct_a": last_pct[na], "latency_ms_pct_b": last_pct[nb],
        "cpus_a": " ".join(map(str, split.cpus_a)), "cpus_b": " ".join(map(str, split.cpus_b)),
        "repeats": repeats, "rel_tol": rel_tol, "llc_partitioning": node.llc_partitioning,
        "scale": config["scale"], "note": "; ".join(notes),
    }


def run(config: dict[str, Any], pair: str, t1: str | Path, scalability: str | Path, out: str | Path,
        opts: common.NodeOptions | None = None, on_split: Callable[[dict[str, Any]], None] | None = None,
        measure: Callable[..., dict[str, Any]] = measure_split) -> pd.DataFrame:
    """Profile every split of ``pair`` (``"a__b"``), resumably; write ``out``; return its rows.

    ``on_split(row)`` is called after each split's row is on disk (tests interrupt through it).
    """
    from hera.machine import resctrl_info

    opts = opts or common.NodeOptions()
    ma, mb = common.parse_pair(pair, opts.runner)
    sla = common.read_t1(t1, [ma, mb])
    scal = common.read_scalability(scalability, [ma, mb])
    cores = common.study_cores(config)
    resctrl = resctrl_info(Path(opts.resctrl_root or "/sys/fs/resctrl"))
    splits, partitioning = plan_splits(cores, resctrl, bool(config["colocation"]["llc_splits"]))
    for m, c in [(ma, len(sp.cpus_a)) for sp in splits] + [(mb, len(sp.cpus_b)) for sp in splits]:
        common.qps_alone(scal, m, c, scalability)  # fail early, before any measurement
    names = (common.tenant_name(ma, mb, "a"), common.tenant_name(mb, ma, "b"))
    scal_fp = scal[["model", "workers", "qps_star"]].sort_values(["model", "workers"]).to_dict("records")
    fp = common.fingerprint("colocation", ma, mb, config, sla, scal_fp, cores, opts.runner, partitioning)
    table = common.ResumableTable(out, COLUMNS, KEY, fp)
    todo = [sp for sp in splits if not table.done(**sp.key())]
    if todo:
        pn = _PairNode(config, names, (ma, mb), opts)
        try:
            for sp in todo:
                _log(f"[colocation] {ma} on cores {list(sp.cpus_a)} + {mb} on cores {list(sp.cpus_b)}"
                     + (f", LLC ways {sp.ways_a}/{sp.ways_b}" if sp.ways_a is not None else ""))
                node = pn.apply(sp)
                row = measure(node, sp, names, (ma, mb), sla, scal, config)
                if partitioning == "unavailable":
                    row["llc_partitioning"] = "unavailable"
                    why = resctrl.get("reason") or "colocation.llc_splits is off"
                    row["note"] += f"; LLC ways not split: {why}"
                table.append([row])
                _log(f"[colocation] f = {row['f']:.3f}, EMU = {row['emu']:.3f}")
                if on_split is not None:
                    on_split(row)
        finally:
            pn.close()
    df = table.frame()
    if len(df):
        emu = pd.to_numeric(df["emu"], errors="coerce")
        df["best"] = False
        df.loc[emu.idxmax(), "best"] = True
    table.finish(df, config, config["seed"])
    return df
