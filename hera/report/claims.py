"""T2: the paper's claims C1..C5 (docs/METHOD.md §8) checked against this run's result files.

Each claim gets the paper's number, ours (computed here from the result tables), a verdict in
:data:`VERDICTS` with a plain reason, and the machine the results came from. The numbers that figures
annotate (F5's EMU gain, F8's server reduction) come from the same functions, so figure and table agree.

Thresholds are explicit constants below; a difference smaller than them is treated as no difference,
because QPS* itself is only known to the search's relative tolerance (10% by default, 20% at ``ci``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from hera.policy.accuracy import headline, prediction_errors, prediction_summary, signed_error
from hera.policy.profiles import memory_class
from hera.report import io
from hera.report.conditioning import describe as describe_conditioning
from hera.report.conditioning import summary as conditioning

# ---------------------------------------------------------------------------------------------- thresholds
#: Below this many usable cores, worker scalability and co-location cannot be shown meaningfully: a curve
#: over w = 1..3 workers cannot show a saturating shared resource, and a 2-core node has only the split 1+1
#: (a 3-core node only 1+2), so there is nothing for a policy to choose between.
MIN_CORES_FOR_COLOCATION = 4
#: C1: mean normalised scalability at max workers of memory-leaning models must be at most this fraction of
#: the compute-leaning models' (a 10% gap is the default QPS* search tolerance).
C1_MAX_RATIO = 0.90
#: C2: heterogeneous pairs' mean EMU must exceed alike pairs' by at least this relative margin.
C2_MIN_GAIN = 0.05
#: C3: Hera's mean EMU must exceed single-tenant's by at least this relative margin (paper: +37.3%).
C3_MIN_GAIN = 0.05
#: C4: Hera must need at least this fraction fewer servers than single-tenant on average (paper: 26%).
C4_MIN_REDUCTION = 0.05
#: C5: at most this fraction of (tenant, interval) windows may have p95 above the SLA; the p95 target itself
#: allows 5% late queries, and a window right after a load step may miss before the manager reacts.
C5_MAX_VIOLATION_FRAC = 0.05

THRESHOLDS = {"MIN_CORES_FOR_COLOCATION": MIN_CORES_FOR_COLOCATION, "C1_MAX_RATIO": C1_MAX_RATIO,
              "C2_MIN_GAIN": C2_MIN_GAIN, "C3_MIN_GAIN": C3_MIN_GAIN, "C4_MIN_REDUCTION": C4_MIN_REDUCTION,
              "C5_MAX_VIOLATION_FRAC": C5_MAX_VIOLATION_FRAC}

REPRODUCED, NOT_REPRODUCED, NOT_OBSERVABLE = "reproduced", "not reproduced", "not observable on this machine"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, NOT_OBSERVABLE)

#: Result tables T2 is computed from (the Snakemake rule ``t2_table`` lists the same files).
T2_INPUTS = ["tables/T1.csv", "profile/scalability.csv", "colocation/pairs.csv", "policy/emu.csv",
             "cluster/servers.csv", "serving/load_change.csv"]

HERA, BASELINE, ORACLE = "hera", "single_tenant", "oracle"
#: ``evaluated_on`` of a node whose chosen split was not measured (hera.policy.base.EVALUATIONS).
NEAREST = "measured, nearest split"


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str
    paper: str


CLAIMS = {c.id: c for c in (
    Claim("C1", "Embedding-dominated models scale worse with workers than MLP-dominated ones", "qualitative"),
    Claim("C2", "Co-locating heterogeneous models gives higher EMU than co-locating alike ones",
          "qualitative"),
    Claim("C3", "Hera raises EMU over the baseline (single-tenant) server", "+37.3% EMU on average"),
    Claim("C4", "Hera needs fewer servers than the baseline server", "-26% servers"),
    Claim("C5", "Hera keeps tenants within their SLA under changing load", "SLA kept"),
    Claim("M", "The queueing model of the node predicts the measured QPS* (method check of this artifact)",
          "not in the paper"),
    Claim("P", "The pair predictor, from per-model profiles only, predicts the measured co-location (method check "
          "of this artifact)", "not in the paper"),
)}


@dataclass
class ClaimResult:
    """One row of T2."""

    claim: str
    statement: str
    paper: str
    ours: str
    verdict: str
    reason: str
    machine: str


def _result(cid: str, ours: str, verdict: str, reason: str, machine: io.MachineInfo) -> ClaimResult:
    c = CLAIMS[cid]
    return ClaimResult(cid, c.statement, c.paper, ours, verdict, reason, machine.summary())


# ---------------------------------------------------------------------------------------------- numbers
def signed_pct(x: float, digits: int = 0) -> str:
    """``x`` (a fraction) as a signed percentage; zero after rounding is ``0%``, never ``-0%``."""
    r = round(float(x) * 100, digits)
    return f"{0:.{digits}f}%" if r == 0 else f"{r:+.{digits}f}%"


def normalise_class(label: str) -> str:
    """``memory`` for embedding/memory-leaning class labels, ``compute`` for MLP/compute-leaning, else the
    label itself (lower-cased), e.g. ``mixed``."""
    return memory_class(label) or str(label).strip().lower()


def model_classes(t1: pd.DataFrame) -> dict[str, str]:
    """Model id → normalised class from T1."""
    return {str(m): normalise_class(c) for m, c in zip(t1["model"], t1["class"])}


def normalised_scalability(scal: pd.DataFrame) -> pd.DataFrame:
    """Per (model, workers): QPS* and its CI, raw and divided by ``workers × QPS*(1 worker)``.

    A model whose one-worker QPS* is 0 (no rate met the SLA) has no normalised scalability (NaN, not inf).
    """
    df = scal.groupby(["model", "workers"], as_index=False)[["qps_star", "qps_star_lo", "qps_star_hi"]].mean()
    one = df[df["workers"] == 1].set_index("model")["qps_star"]
    one = one.where(one > 0)
    ideal = df["workers"] * df["model"].map(one)
    for col in ("qps_star", "qps_star_lo", "qps_star_hi"):
        df[col.replace("qps_star", "norm")] = df[col] / ideal
    return df


#: Model vs measurement (F9, T2 row "M"): the queueing model of the node must predict the measured QPS* within
#: these (median and largest absolute relative error over every model and worker count).
MODEL_MEDIAN_MAX_ERROR = 0.15
MODEL_MAX_ERROR = 0.30
#: Pair prediction (`hera bench pair-prediction`): median |relative error| of the tenants' co-located QPS* and
#: mean |EMU error| over the measured points.
PAIR_MEDIAN_MAX_ERROR = 0.20
PAIR_EMU_MAX_ERROR = 0.10
#: A point's trials were served at the profiled speed when its median service drift (measured over modelled query
#: span for the same arrivals, :func:`hera.loadgen.confirm.service_drift`) is within this factor of 1; the points
#: outside it are named (``drifted``).
STABLE_DRIFT = 1.15


def model_errors(scal: pd.DataFrame, modelled: str = "qps_star_model") -> pd.DataFrame:
    """Per (model, workers): modelled (column ``modelled``) and measured QPS* and ``error`` = (modelled − measured)
    / measured; where the measured QPS* is 0 the error is the absolute difference in queries/s (``relative``
    False), never a division."""
    df = scal.dropna(subset=[modelled, "qps_star"]).copy()
    df["error"], df["relative"] = signed_error(df[modelled], df["qps_star"])
    return df


def model_agreement(scal: pd.DataFrame, noise: bool = True) -> dict[str, float]:
    """``median_abs_rel_error``, ``max_abs_rel_error`` (relative rows only) and the number of points; with a
    ``qps_star_model_served`` column also the same for the node model on the service times as served in the
    trials (``served_*``: the queueing model's own error, the machine's change of speed since the profile taken
    out), with a ``qps_star_model_profile`` column for the model on the service profile alone, before the
    operating-point probe rescaled it (``profile_*``), with a ``qps_star_model_before`` column for the model from
    the probe before the trials alone, before the probe after them bracketed the speed (``before_*``), with a ``service_drift`` column the points whose drift was outside :data:`STABLE_DRIFT`
    (``drifted``), and with a ``per_repeat`` column and ``noise`` the measurement's noise floor (``noise_floor``:
    :func:`hera.report.noise.noise_floor`)."""
    df = model_errors(scal)
    rel = df.loc[df["relative"], "error"].abs()
    out = {"median_abs_rel_error": float(rel.median()) if len(rel) else float("nan"),
           "max_abs_rel_error": float(rel.max()) if len(rel) else float("nan"), "points": int(len(df)),
           "zero_measured": int((~df["relative"]).sum())}
    for prefix, col in (("served", "qps_star_model_served"), ("profile", "qps_star_model_profile"),
                        ("before", "qps_star_model_before")):
        if col in scal.columns and scal[col].notna().any():
            sv = model_errors(scal, col)
            srel = sv.loc[sv["relative"], "error"].abs()
            out.update({f"{prefix}_points": len(srel),
                        f"{prefix}_median_abs_rel_error": float(srel.median()) if len(srel) else float("nan"),
                        f"{prefix}_max_abs_rel_error": float(srel.max()) if len(srel) else float("nan")})
    if noise and "per_repeat" in scal.columns:  # what a perfect model would score on these repeats
        from hera.report.noise import noise_floor

        out["noise_floor"] = noise_floor(scal, MODEL_MEDIAN_MAX_ERROR, MODEL_MAX_ERROR)
    if "service_drift" in df.columns and df["service_drift"].notna().any():
        d = pd.to_numeric(df["service_drift"], errors="coerce")
        off = d.notna() & ~((d <= STABLE_DRIFT) & (d >= 1 / STABLE_DRIFT))
        out["drifted"] = [f"{m}/{int(w)} ({x:.2f}x)" for m, w, x in
                          zip(df.loc[off, "model"], df.loc[off, "workers"], d[off])]
    return out


def no_rate_with_one_worker(scal: pd.DataFrame) -> list[str]:
    """Models whose one-worker QPS* is 0 (no rate met the SLA): they have no normalised scalability."""
    return sorted(set(scal.loc[(scal["workers"] == 1) & (scal["qps_star"] <= 0), "model"].astype(str)))


def scalability_at_max(scal: pd.DataFrame) -> pd.DataFrame:
    """One row per model: its largest worker count and normalised scalability there."""
    df = normalised_scalability(scal).dropna(subset=["norm"])
    return df.loc[df.groupby("model")["workers"].idxmax(), ["model", "workers", "norm"]]


def best_splits(pairs: pd.DataFrame) -> pd.DataFrame:
    """One row per unordered model pair: its flagged best split (``best``), else its highest EMU."""
    df = pairs.dropna(subset=["emu"]).copy()
    df["_best"] = io.as_bool(df["best"])
    df["_key"] = [tuple(sorted((str(a), str(b)))) for a, b in zip(df["model_a"], df["model_b"])]
    df = df.sort_values(["_best", "emu"], ascending=False).drop_duplicates("_key")
    return df.drop(columns=["_best", "_key"]).reset_index(drop=True)


def _mean_per_mix(df: pd.DataFrame, value: str, policy: str) -> pd.Series:
    return df[df["policy"] == policy].groupby("mix")[value].mean()


def emu_gains(emu: pd.DataFrame) -> pd.Series:
    """Per mix (``all`` included): Hera's mean node EMU / single-tenant's - 1 (empty if either is absent)."""
    hera, base = _mean_per_mix(emu, "emu", HERA), _mean_per_mix(emu, "emu", BASELINE)
    common = hera.index.intersection(base.index)
    return (hera[common] / base[common] - 1).rename("gain")


def emu_gain(emu: pd.DataFrame) -> float | None:
    """Mean over mixes of :func:`emu_gains` (None without a mix holding both Hera and single-tenant)."""
    gains = emu_gains(emu)
    return None if gains.empty else float(gains.mean())


def oracle_gaps(emu: pd.DataFrame) -> pd.Series:
    """Per mix: Hera's mean node EMU / the oracle's - 1 (≤ 0 on the same measurements; empty if either is
    absent)."""
    hera, oracle = _mean_per_mix(emu, "emu", HERA), _mean_per_mix(emu, "emu", ORACLE)
    common = hera.index.intersection(oracle.index)
    return (hera[common] / oracle[common] - 1).rename("gap")


def server_gaps(servers: pd.DataFrame) -> pd.Series:
    """Per mix: servers(Hera) / servers(oracle) - 1 (≥ 0 on the same measurements; empty if either is absent)."""
    hera, oracle = _mean_per_mix(servers, "servers", HERA), _mean_per_mix(servers, "servers", ORACLE)
    common = hera.index.intersection(oracle.index)
    return (hera[common] / oracle[common] - 1).rename("gap")


def hera_decision(df: pd.DataFrame) -> str | None:
    """How Hera's rows of ``policy/emu.csv`` or ``cluster/servers.csv`` were decided and evaluated, in words
    (None without Hera rows): e.g. "Hera decided from pair predictions (O(N) profiles); evaluated on measured
    points: 10 of 12 nodes on the chosen split, 2 on the nearest measured split"."""
    rows = df[df["policy"].astype(str) == HERA]
    if rows.empty or "decided_on" not in rows:
        return None
    src = sorted(set(rows["decided_on"].astype(str)))
    what = "pair predictions (O(N) profiles)" if src == ["predicted"] else " and ".join(
        "pair predictions" if x == "predicted" else f"{x} points" for x in src)
    unit = "mixes"
    if "tenants" in rows:
        rows, unit = rows[rows["tenants"].astype(str).str.contains("+", regex=False)], "co-located nodes"
        if rows.empty:
            return f"Hera decided from {what}; it co-located no models"
    counts = rows["evaluated_on"].astype(str).value_counts()
    parts = [f"{counts.get('measured', 0)} of {len(rows)} {unit} on the chosen split"
             + ("s" if unit == "mixes" else "")]
    if counts.get(NEAREST, 0):
        parts.append(f"{counts[NEAREST]} on the nearest measured split")
    if counts.get("predicted", 0):
        parts.append(f"{counts['predicted']} on predictions only (pair not measured)")
    return f"Hera decided from {what}; evaluated on measured points: " + ", ".join(parts)


def measured_only(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """``df`` without the mixes where a Hera row was evaluated on predictions only (a claim that needs measured
    values cannot use them), and the mixes left out."""
    if "evaluated_on" not in df:
        return df, []
    bad = df[(df["policy"].astype(str) == HERA) & (df["evaluated_on"].astype(str) == "predicted")]["mix"]
    out = sorted(set(bad.astype(str)))
    return df[~df["mix"].astype(str).isin(out)], out


def server_reductions(servers: pd.DataFrame) -> pd.Series:
    """Per mix: 1 - servers(Hera) / servers(single-tenant) (empty if either policy is absent)."""
    hera, base = _mean_per_mix(servers, "servers", HERA), _mean_per_mix(servers, "servers", BASELINE)
    common = hera.index.intersection(base.index)
    return (1 - hera[common] / base[common]).rename("reduction")


def hera_timeline(load_change: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """Hera's rows of the load-change timeline (all rows if there is no ``policy`` column) and the policy."""
    if "policy" not in load_change.columns:
        return load_change, None
    pols = list(dict.fromkeys(load_change["policy"].astype(str)))
    pol = HERA if HERA in pols else pols[0]
    return load_change[load_change["policy"].astype(str) == pol], pol


def violation_windows(load_change: pd.DataFrame) -> tuple[int, int]:
    """(windows with p95 above SLA, windows with a p95) over all tenants."""
    df = load_change.dropna(subset=["p95_ms", "sla_ms"])
    return int((df["p95_ms"] > df["sla_ms"]).sum()), len(df)


# ---------------------------------------------------------------------------------------------- verdicts
def core_gate(machine: io.MachineInfo, what: str = "this effect") -> str | None:
    """Why ``what`` (a worker-scalability or co-location effect) cannot be shown on this machine, or None."""
    n = machine.usable_cores
    if n is None or n >= MIN_CORES_FOR_COLOCATION:
        return None
    splits = " or ".join(f"{a}+{n - a}" for a in range(1, n // 2 + 1)) or "none"
    return (f"only {n} usable core(s): a scalability curve has {n} point(s) and a {n}-core node has only the "
            f"split {splits}, so {what} cannot be shown meaningfully "
            f"(needs >= {MIN_CORES_FOR_COLOCATION} cores)")


#: Cores below which a node has only the split 1+1, so a manager can move no core (C5).
MIN_CORES_TO_MOVE = 3


def move_gate(machine: io.MachineInfo) -> str | None:
    """Why no manager can react to a load change on this machine (no core and no LLC way can move), or None."""
    n = machine.usable_cores
    if n is None or n >= MIN_CORES_TO_MOVE or not machine.known or machine.resctrl:
        return None
    return (f"no resource can move on this machine: a {n}-core node has only the split 1+1 (a core move needs "
            f">= {MIN_CORES_TO_MOVE} cores) and without resctrl no LLC way can move, so no manager can absorb the "
            f"step beyond the initial split's capacity; the windows over the SLA are the load step itself")


def llc_note(machine: io.MachineInfo) -> str:
    """Suffix saying that the LLC-way part of Hera was not exercised, when resctrl is unavailable."""
    if machine.known and not machine.resctrl:
        return "; LLC-way partitioning not observable (no resctrl): Hera split cores only"
    return ""


def _decide(cid: str, ours: str, ok: bool, why: str, machine: io.MachineInfo, gate: str | None,
            suffix: str = "") -> ClaimResult:
    if gate:
        return _result(cid, ours, NOT_OBSERVABLE, gate + suffix, machine)
    return _result(cid, ours, REPRODUCED if ok else NOT_REPRODUCED, why + suffix, machine)


def c1_scalability(t1: pd.DataFrame, scal: pd.DataFrame, machine: io.MachineInfo) -> ClaimResult:
    """C1: normalised scalability at max workers, memory-leaning vs compute-leaning models."""
    at_max = scalability_at_max(scal)
    at_max["class"] = at_max["model"].map(model_classes(t1))
    mem = at_max.loc[at_max["class"] == "memory", "norm"]
    comp = at_max.loc[at_max["class"] == "compute", "norm"]
    if mem.empty or comp.empty:
        which = "memory-leaning" if mem.empty else "compute-leaning"
        return _result("C1", "n/a", NOT_OBSERVABLE, f"no {which} model with a scalability curve (T1 classes: "
                       f"{', '.join(sorted(set(at_max['class'].dropna())))}) so there is nothing to contrast",
                       machine)
    w = int(at_max["workers"].max())
    if w < 2:
        return _result("C1", "n/a", NOT_OBSERVABLE, "scalability was measured at 1 worker only", machine)
    ratio = mem.mean() / comp.mean()
    ours = (f"normalised QPS* at {w} workers: memory-leaning {mem.mean():.2f} (n={len(mem)}) "
            f"vs compute-leaning {comp.mean():.2f} (n={len(comp)})")
    zero = no_rate_with_one_worker(scal)
    if zero:
        ours += f"; left out, QPS* = 0 at 1 worker: {', '.join(zero)}"
    why = (f"memory-leaning models reach {ratio:.0%} of the compute-leaning models' normalised scalability "
           f"(reproduced if <= {C1_MAX_RATIO:.0%})")
    return _decide("C1", ours, ratio <= C1_MAX_RATIO, why, machine,
                   core_gate(machine, "a difference in worker scalability"))


def c2_heterogeneity(t1: pd.DataFrame, pairs: pd.DataFrame, machine: io.MachineInfo) -> ClaimResult:
    """C2: mean best-point EMU of pairs of different class vs pairs of the same class, on measured pairs only
    (``colocation/pairs.csv``; predicted pairs never count)."""
    best = best_splits(pairs)
    cls = model_classes(t1)
    ca, cb = best["model_a"].astype(str).map(cls), best["model_b"].astype(str).map(cls)
    known = ca.notna() & cb.notna()
    hetero, alike = best.loc[known & (ca != cb), "emu"], best.loc[known & (ca == cb), "emu"]
    if hetero.empty or alike.empty:
        which = "heterogeneous" if hetero.empty else "alike"
        return _result("C2", "n/a", NOT_OBSERVABLE, f"no {which} model pair among the measured pairs",
                       machine)
    gain = hetero.mean() / alike.mean() - 1
    ours = (f"mean measured EMU at each measured pair's best point: heterogeneous pairs {hetero.mean():.2f} "
            f"(n={len(hetero)}) vs alike pairs {alike.mean():.2f} (n={len(alike)}), {signed_pct(gain, 1)}")
    why = (f"heterogeneous pairs' EMU is {signed_pct(gain, 1)} vs alike pairs "
           f"(reproduced if >= {C2_MIN_GAIN:+.0%})")
    return _decide("C2", ours, gain >= C2_MIN_GAIN, why, machine,
                   core_gate(machine, "the benefit of pairing heterogeneous models"))


def _oracle_text(gaps: pd.Series, what: str) -> str:
    return f"; Hera vs oracle {signed_pct(float(gaps.mean()), 1)} {what}" if len(gaps) else ""


def _left_out(mixes: list[str]) -> str:
    return (f"; left out, Hera evaluated on predictions only (a pair not measured): mix(es) {', '.join(mixes)}"
            if mixes else "")


def c3_emu(emu: pd.DataFrame, machine: io.MachineInfo) -> ClaimResult:
    """C3: mean EMU gain of Hera over single-tenant, on mixes where every Hera node is evaluated on measured
    co-location points (:func:`measured_only`); the gap to the oracle on the same mixes beside."""
    emu, dropped = measured_only(emu)
    gain = emu_gain(emu)
    if gain is None:
        why = f"policy/emu.csv lacks a mix with rows for both '{HERA}' and '{BASELINE}'"
        return _result("C3", "n/a", NOT_OBSERVABLE, why + _left_out(dropped), machine)
    why = (f"Hera's mean EMU is {signed_pct(gain, 1)} vs single-tenant "
           f"(paper +37.3%; reproduced if >= {C3_MIN_GAIN:+.0%})")
    ours = (f"{signed_pct(gain, 1)} EMU (mean over {len(emu_gains(emu))} mixes)"
            + _oracle_text(oracle_gaps(emu), "EMU") + _left_out(dropped))
    decision = hera_decision(emu)
    return _decide("C3", ours, gain >= C3_MIN_GAIN, why + (f"; {decision}" if decision else ""), machine,
                   core_gate(machine, "an EMU gain from co-location"), llc_note(machine))


def c4_servers(servers: pd.DataFrame, machine: io.MachineInfo) -> ClaimResult:
    """C4: server reduction of Hera vs single-tenant, averaged over mixes where Hera's cluster is evaluated on
    measured co-location points; the gap to the oracle beside."""
    servers, dropped = measured_only(servers)
    red = server_reductions(servers)
    if red.empty:
        why = f"cluster/servers.csv lacks a mix with both '{HERA}' and '{BASELINE}'"
        return _result("C4", "n/a", NOT_OBSERVABLE, why + _left_out(dropped), machine)
    mean = float(red.mean())
    ours = (f"{signed_pct(-mean, 1)} servers (mean over {len(red)} mixes)"
            + _oracle_text(server_gaps(servers), "servers") + _left_out(dropped))
    why = (f"Hera needs {signed_pct(-mean, 1)} servers vs single-tenant on average (paper -26%; reproduced if "
           f"<= -{C4_MIN_REDUCTION:.0%})")
    decision = hera_decision(servers)
    why += f"; {decision}" if decision else ""
    return _decide("C4", ours, mean >= C4_MIN_REDUCTION, why, machine,
                   core_gate(machine, "a server reduction from co-location"), llc_note(machine))


def c5_sla(load_change: pd.DataFrame, machine: io.MachineInfo) -> ClaimResult:
    """C5: share of Hera's (tenant, interval) windows whose p95 exceeded the SLA."""
    df, _ = hera_timeline(load_change)
    bad, total = violation_windows(df)
    if total == 0:
        return _result("C5", "n/a", NOT_OBSERVABLE, "the load-change run has no window with a p95", machine)
    frac = bad / total
    ours = f"{frac:.1%} of windows above SLA ({bad}/{total}, {df['tenant'].nunique()} tenants)"
    why = f"{frac:.1%} of tenant windows missed the SLA (reproduced if <= {C5_MAX_VIOLATION_FRAC:.0%})"
    return _decide("C5", ours, frac <= C5_MAX_VIOLATION_FRAC, why, machine, move_gate(machine))


def m_model_agreement(scal: pd.DataFrame, machine: io.MachineInfo) -> ClaimResult:
    """M: modelled vs confirmed-measured QPS* over every model and worker count."""
    if "qps_star_model" not in scal.columns:
        return _result("M", "n/a", NOT_OBSERVABLE, "the scalability table has no modelled QPS*", machine)
    a = model_agreement(scal)
    if not a["points"] or a["points"] == a["zero_measured"]:
        return _result("M", "n/a", NOT_OBSERVABLE, "no point with a measured QPS* > 0 to compare", machine)
    ours = (f"median |modelled - measured| / measured {a['median_abs_rel_error']:.1%}, max "
            f"{a['max_abs_rel_error']:.1%} over {a['points'] - a['zero_measured']} (model, workers) points")
    if a["zero_measured"]:
        ours += f"; {a['zero_measured']} with measured QPS* = 0 (absolute errors, F9)"
    if a.get("profile_points") and "operating_drift" in scal.columns and scal["operating_drift"].notna().any():
        ours += (f"; on the service profile alone (before the operating-point probe): "
                 f"{a['profile_median_abs_rel_error']:.1%} / {a['profile_max_abs_rel_error']:.1%}")
    if a.get("before_points") and "operating_drift_after" in scal.columns and scal["operating_drift_after"].notna().any():
        ours += (f"; at the speed of the probe before the trials alone (the model that started the search): "
                 f"{a['before_median_abs_rel_error']:.1%} / {a['before_max_abs_rel_error']:.1%}")
    if a.get("served_points"):
        ours += (f"; given the service times as served in the trials (profile x measured drift): "
                 f"{a['served_median_abs_rel_error']:.1%} / {a['served_max_abs_rel_error']:.1%}")
    if a.get("drifted"):
        ours += f"; served off the profiled speed by > {STABLE_DRIFT:g}x: {', '.join(a['drifted'])}"
    cond = describe_conditioning(conditioning(scal, MODEL_MAX_ERROR))
    if cond:
        ours += f"; {cond}"
    nf = a.get("noise_floor")
    if nf:
        ours += (f"; a perfect model on this run's repeat scatter: {nf['perfect_model_median_abs_rel_error']:.1%} / "
                 f"{nf['perfect_model_max_abs_rel_error']:.1%} (max bar met in "
                 f"{nf['p_perfect_model_meets_max_bar']:.0%} of simulated runs)")
    ok = a["median_abs_rel_error"] <= MODEL_MEDIAN_MAX_ERROR and a["max_abs_rel_error"] <= MODEL_MAX_ERROR
    why = (f"the model is within {MODEL_MEDIAN_MAX_ERROR:.0%} (median) and {MODEL_MAX_ERROR:.0%} (max) of the "
           "measurement" if ok else f"the model misses the measurement by more than {MODEL_MEDIAN_MAX_ERROR:.0%} "
           f"(median) or {MODEL_MAX_ERROR:.0%} (max): read F9 before trusting modelled numbers")
    return _result("M", ours, REPRODUCED if ok else NOT_REPRODUCED, why, machine)


def p_pair_prediction(pairs: pd.DataFrame, machine: io.MachineInfo) -> ClaimResult:
    """P: predicted vs measured co-location over every measured point (``hera bench pair-prediction``'s headline,
    with the anchored prediction, the prediction on the service as served and the noise floor beside)."""
    if "predicted_emu" not in pairs.columns or not pairs["predicted_emu"].notna().any():
        return _result("P", "n/a", NOT_OBSERVABLE, "the co-location table has no predicted values", machine)
    s = prediction_summary(prediction_errors(pairs))
    if not s["points"]:
        return _result("P", "n/a", NOT_OBSERVABLE, "no measured co-location point to compare", machine)
    h = headline(s)
    which = {"refreshed": "the refreshed prediction (each model's speed from its anchors in the pass's other "
                          "sittings)", "apriori": "the a-priori prediction"}[str(h["headline"])]
    ours = (f"{which}: median |predicted - measured| / measured co-located QPS* {h['median_abs_rel_error']:.1%} (per "
            f"tenant), mean |EMU error| {h['mean_abs_emu_error']:.3f} over {s['points']} points of {s['pairs']} pairs")
    if s["zero_measured"]:
        ours += f"; {s['zero_measured']} tenant values with measured QPS* = 0 (absolute errors)"
    if h["headline"] != "apriori":
        ours += (f"; a-priori (F2's speeds, before any pair ran): {s['median_abs_rel_error']:.1%} / "
                 f"{s['mean_abs_emu_error']:.3f}")
    if s.get("anchored_points"):
        ours += (f"; anchored (each tenant probed alone right before its pair): "
                 f"{s['anchored_median_abs_rel_error']:.1%} / {s['anchored_mean_abs_emu_error']:.3f}")
    if s.get("served_points"):
        ours += (f"; given the service times as served in the pair's trials: {s['served_median_abs_rel_error']:.1%} / "
                 f"{s['served_mean_abs_emu_error']:.3f}")
    if "per_repeat" in pairs.columns and "emu" in pairs.columns:
        from hera.report.noise import pair_noise_floor

        nf = pair_noise_floor(pairs.reset_index(drop=True), PAIR_MEDIAN_MAX_ERROR, PAIR_EMU_MAX_ERROR)
        if nf:
            ours += (f"; a perfect prediction on the rays' repeat scatter: {nf['perfect_median_abs_rel_error']:.1%} / "
                     f"{nf['perfect_mean_abs_emu_error']:.3f} (EMU bar met in {nf['p_perfect_meets_emu_bar']:.0%} of "
                     "simulated runs)")
    ok = h["median_abs_rel_error"] <= PAIR_MEDIAN_MAX_ERROR and h["mean_abs_emu_error"] <= PAIR_EMU_MAX_ERROR
    why = (f"the prediction is within {PAIR_MEDIAN_MAX_ERROR:.0%} (median tenant error) and {PAIR_EMU_MAX_ERROR:g} "
           "(mean |EMU error|) of the measurement" if ok else
           f"the prediction misses the measurement by more than {PAIR_MEDIAN_MAX_ERROR:.0%} (median tenant error) or "
           f"{PAIR_EMU_MAX_ERROR:g} (mean |EMU error|): Hera's plans are scored on measured points, read F4 before "
           "trusting predicted ones")
    return _result("P", ours, REPRODUCED if ok else NOT_REPRODUCED, why, machine)


def evaluate(results_dir: str | Path) -> list[ClaimResult]:
    """All claims from the tables in :data:`T2_INPUTS` under ``results_dir`` (each must exist)."""
    t = {rel: io.read_table(results_dir, rel) for rel in T2_INPUTS}
    machine = io.machine_of(list(t.values()))
    t1 = t["tables/T1.csv"].df
    return [
        c1_scalability(t1, t["profile/scalability.csv"].df, machine),
        c2_heterogeneity(t1, t["colocation/pairs.csv"].df, machine),
        c3_emu(t["policy/emu.csv"].df, machine),
        c4_servers(t["cluster/servers.csv"].df, machine),
        c5_sla(t["serving/load_change.csv"].df, machine),
        m_model_agreement(t["profile/scalability.csv"].df, machine),
        p_pair_prediction(t["colocation/pairs.csv"].df, machine),
    ]


def to_frame(results: list[ClaimResult]) -> pd.DataFrame:
    """T2 as a DataFrame: claim, statement, paper, ours, verdict, reason, machine."""
    return pd.DataFrame([asdict(r) for r in results])
