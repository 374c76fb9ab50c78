"""Headline numbers of several complete runs side by side, with their spread (``hera bench runs``).

A run is the results folder of one pipeline run (``results/<scale>`` of a clone, or ``results/reference``), or one
run of an earlier summary (:func:`from_summary`: the folders of old runs are not kept, their numbers are). Each
headline number is computed from that run's own result files by the same functions the report uses — the node
model's agreement (:func:`hera.report.claims.model_agreement`), the pair prediction's errors
(:func:`hera.policy.accuracy.prediction_summary`), C5's violated windows
(:func:`hera.report.claims.violation_windows`) — and the F2 stage's seconds from the per-job benchmark files
Snakemake wrote beside it. Across runs every number gets its values, median, min and max, and every QPS* its
between-run coefficient of variation: within a run a QPS* is the median of 3 repeats, so this is the spread a
reader sees when re-running the whole study on the same machine.

Co-location: each tenant's *service drift* in a measured pair (its served over its predicted query span,
``service_drift_a/b`` of ``colocation/pairs.csv``) is kept per (victim, partner), the median over the pair's rays.
Across runs the question is whether a pair's drift repeats: a high between-run correlation of the log drifts
over the pairs would be interference the O(N) profiles systematically miss for those pairs; a correlation near
zero says the drift is the machine's speed at the time the pair was measured.

Service refresh: per F2 point, how much slower the service profile re-measured on the confirming node served than
the service stage's profile of the same worker count — what the refresh (``model.service: refresh``) corrected,
run by run (:func:`refresh_ratios`). Stage drift: per F2 point, how much slower the node served at the operating
point than the service stage's profile said (:func:`stage_drifts`) — what the model's start was off by, whichever
profile the run started from.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hera.errors import HeraError


@dataclass(frozen=True)
class RunHeadline:
    """The headline numbers of one run (NaN where the run lacks the file)."""

    path: str
    commits: tuple[str, ...]
    f2_stage_s: float
    model_median_abs_rel_error: float
    model_max_abs_rel_error: float
    pair_median_abs_rel_error: float
    pair_mean_abs_emu_error: float
    c5_violation_frac: float
    # the same errors with the service times as served in the trials (NaN for runs before the columns)
    model_served_median_abs_rel_error: float = math.nan
    model_served_max_abs_rel_error: float = math.nan
    pair_served_median_abs_rel_error: float = math.nan
    pair_served_mean_abs_emu_error: float = math.nan
    # the model on the service profile alone (before the operating-point probe; = the headline in older runs)
    model_profile_median_abs_rel_error: float = math.nan
    model_profile_max_abs_rel_error: float = math.nan
    qps_star: dict[str, float] = field(default_factory=dict)  # "model/workers" -> measured QPS*
    pair_drift: dict[str, float] = field(default_factory=dict)  # "victim|partner" -> median service drift
    fingerprint: str = ""  # sha256 of the scalability table: the same run under two names is caught
    # "model/workers" -> how much slower the profile refreshed before the confirmation served than the stage's
    refresh_ratio: dict[str, float] = field(default_factory=dict)
    # "model/workers" -> how much slower the node served at the operating point than the stage's profile said
    stage_drift: dict[str, float] = field(default_factory=dict)
    # the pair prediction anchored to each tenant's speed alone right before its pair (NaN for runs before it)
    pair_anchored_median_abs_rel_error: float = math.nan
    pair_anchored_mean_abs_emu_error: float = math.nan
    # the model at the speed of the probe before the trials alone (= the headline in runs without a probe after)
    model_before_median_abs_rel_error: float = math.nan
    model_before_max_abs_rel_error: float = math.nan
    # the pair prediction refreshed by each model's anchors in the pass's other sittings (NaN for runs before it)
    pair_refreshed_median_abs_rel_error: float = math.nan
    pair_refreshed_mean_abs_emu_error: float = math.nan

    METRICS = ("f2_stage_s", "model_median_abs_rel_error", "model_max_abs_rel_error", "pair_median_abs_rel_error",
               "pair_mean_abs_emu_error", "c5_violation_frac", "model_served_median_abs_rel_error",
               "model_served_max_abs_rel_error", "pair_served_median_abs_rel_error",
               "pair_served_mean_abs_emu_error", "model_profile_median_abs_rel_error",
               "model_profile_max_abs_rel_error", "pair_anchored_median_abs_rel_error",
               "pair_anchored_mean_abs_emu_error", "model_before_median_abs_rel_error",
               "model_before_max_abs_rel_error", "service_refresh_ratio_median", "stage_drift_median",
               "pair_refreshed_median_abs_rel_error", "pair_refreshed_mean_abs_emu_error")

    @property
    def service_refresh_ratio_median(self) -> float:
        """The median of :attr:`refresh_ratio` over the run's points (NaN without any)."""
        return _median(self.refresh_ratio)

    @property
    def stage_drift_median(self) -> float:
        """The median of :attr:`stage_drift` over the run's points (NaN without any)."""
        return _median(self.stage_drift)


def _median(per_point: dict[str, float]) -> float:
    return float(np.median(list(per_point.values()))) if per_point else math.nan


def benchmarks_dir(results: Path) -> Path | None:
    """Where Snakemake's per-job benchmark files of ``results`` are: ``<results>/benchmarks`` (a curated copy such
    as ``results/reference``) or ``<clone>/benchmarks/<scale>`` beside ``<clone>/results/<scale>``."""
    for cand in (results / "benchmarks", results.parent.parent / "benchmarks" / results.name):
        if cand.is_dir():
            return cand
    return None


def f2_stage_seconds(results: Path) -> float:
    """Wall seconds of the F2 stage: the sum over its per-model jobs (they run one at a time)."""
    bench = benchmarks_dir(results)
    files = sorted((bench / "profile" / "scalability").glob("*.tsv")) if bench is not None else []
    if not files:
        return math.nan
    return float(sum(pd.read_csv(f, sep="\t")["s"].iloc[0] for f in files))


def stage_drifts(scal: pd.DataFrame, refresh: dict[str, float]) -> dict[str, float]:
    """``"model/workers"`` → the operating-point probe's drift against the service stage's profile: the F2 rows'
    ``operating_drift`` where the model started from that profile (``service_source`` stage), and the probe's
    drift against the refreshed profile times the refresh ratio (``refresh``, :func:`refresh_ratios`) where it
    started from a refreshed one; points without a probe or a ratio are left out."""
    if "operating_drift" not in scal.columns:
        return {}
    source = scal.get("service_source", pd.Series("stage", index=scal.index)).fillna("stage").astype(str)
    out: dict[str, float] = {}
    for m, w, d, src in zip(scal["model"], scal["workers"], pd.to_numeric(scal["operating_drift"], errors="coerce"),
                            source):
        key = f"{m}/{int(w)}"
        factor = refresh.get(key, math.nan) if src == "refresh" else 1.0
        if math.isfinite(d) and math.isfinite(factor):
            out[key] = float(d * factor)
    return out


def refresh_ratios(results: Path, scal: pd.DataFrame) -> dict[str, float]:
    """``"model/workers"`` → how much slower (> 1) the service profile refreshed on the confirming node served than
    the service stage's profile (:func:`hera.profile.service.speed_ratio`): the F2 rows' ``service_refresh_ratio``,
    else, for runs before that column, computed from the two profiles' raw samples where the run kept them
    (``profile/service/<model>.parquet`` and ``profile/scalability/<model>.service.parquet``); empty otherwise
    (the curated reference keeps no raw samples)."""
    if "service_refresh_ratio" in scal.columns:
        ratio = pd.to_numeric(scal["service_refresh_ratio"], errors="coerce")
        return {f"{m}/{int(w)}": float(r) for m, w, r in zip(scal["model"], scal["workers"], ratio)
                if math.isfinite(r)}
    from hera.profile.service import speed_ratio

    out: dict[str, float] = {}
    for model, rows in scal.groupby("model"):
        stage = results / "profile" / "service" / f"{model}.parquet"
        fresh = results / "profile" / "scalability" / f"{model}.service.parquet"
        if not (stage.is_file() and fresh.is_file()):
            continue
        old, new = pd.read_parquet(stage), pd.read_parquet(fresh)
        for w in rows["workers"]:
            r = speed_ratio(new, old, int(w))
            if math.isfinite(r):
                out[f"{model}/{int(w)}"] = r
    return out


def pair_drifts(pairs: pd.DataFrame) -> dict[str, float]:
    """``"victim|partner"`` → the median over the pair's measured rays of the victim's service drift (served over
    predicted query span); empty for a table without the drift columns (runs before they were measured)."""
    if not {"service_drift_a", "service_drift_b"} <= set(pairs.columns):
        return {}
    sides = [pairs[["model_a", "model_b", "service_drift_a"]].set_axis(["victim", "partner", "drift"], axis=1),
             pairs[["model_b", "model_a", "service_drift_b"]].set_axis(["victim", "partner", "drift"], axis=1)]
    both = pd.concat(sides, ignore_index=True)
    both["drift"] = pd.to_numeric(both["drift"], errors="coerce")
    both = both[np.isfinite(both["drift"]) & (both["drift"] > 0)]
    med = both.groupby(["victim", "partner"])["drift"].median()
    return {f"{v}|{p}": float(d) for (v, p), d in med.items()}


def drift_correlations(runs: list[RunHeadline]) -> dict[str, object] | None:
    """Pearson correlation of the log service drift over the (victim, partner) keys two runs share, for every
    two runs (``"a~b"`` by their labels; at least 3 shared keys), and their median; None when no two runs have
    drifts."""
    corr: dict[str, float] = {}
    for i in range(len(runs)):
        for j in range(i + 1, len(runs)):
            keys = sorted(set(runs[i].pair_drift) & set(runs[j].pair_drift))
            if len(keys) < 3:
                continue
            x = np.log([runs[i].pair_drift[k] for k in keys])
            y = np.log([runs[j].pair_drift[k] for k in keys])
            if x.std() == 0 or y.std() == 0:
                continue
            corr[f"{runs[i].path}~{runs[j].path}"] = round(float(np.corrcoef(x, y)[0, 1]), 4)
    if not corr:
        return None
    return {"pairs_of_runs": corr, "median": round(float(np.median(list(corr.values()))), 4)}


def headline(results: str | Path, label: str | None = None) -> RunHeadline:
    """The headline numbers of the run in ``results`` (its ``profile/scalability.csv`` at least), named ``label``
    (default: the folder)."""
    from hera.policy.accuracy import prediction_errors, prediction_summary
    from hera.report.claims import hera_timeline, model_agreement, violation_windows

    results = Path(results)
    scal_path = results / "profile" / "scalability.csv"
    if not scal_path.is_file():
        raise HeraError(f"{results} is not a run's results folder: {scal_path} does not exist")
    scal = pd.read_csv(scal_path)
    fingerprint = hashlib.sha256(scal_path.read_bytes()).hexdigest()
    commits = set(scal.get("git_commit", pd.Series(dtype=str)).dropna().astype(str))
    agree = model_agreement(scal, noise=False)  # the headline errors only
    pair_med = pair_emu = c5 = math.nan
    summary: dict = {}
    drifts: dict[str, float] = {}
    pairs_path = results / "colocation" / "pairs.csv"
    if pairs_path.is_file():
        pairs = pd.read_csv(pairs_path)
        commits |= set(pairs.get("git_commit", pd.Series(dtype=str)).dropna().astype(str))
        summary = prediction_summary(prediction_errors(pairs))
        drifts = pair_drifts(pairs)
        pair_med, pair_emu = summary["median_abs_rel_error"], summary["mean_abs_emu_error"]
    lc_path = results / "serving" / "load_change.csv"
    if lc_path.is_file():
        bad, total = violation_windows(hera_timeline(pd.read_csv(lc_path))[0])
        c5 = bad / total if total else math.nan
    qps = {f"{r.model}/{int(r.workers)}": float(r.qps_star) for r in scal.itertuples()}
    refresh = refresh_ratios(results, scal)
    nan = math.nan
    return RunHeadline(label or str(results), tuple(sorted(c[:7] for c in commits)), f2_stage_seconds(results),
                       agree["median_abs_rel_error"], agree["max_abs_rel_error"], pair_med, pair_emu, c5,
                       agree.get("served_median_abs_rel_error", nan), agree.get("served_max_abs_rel_error", nan),
                       summary.get("served_median_abs_rel_error", nan), summary.get("served_mean_abs_emu_error", nan),
                       agree.get("profile_median_abs_rel_error", agree["median_abs_rel_error"]),
                       agree.get("profile_max_abs_rel_error", agree["max_abs_rel_error"]), qps, drifts, fingerprint,
                       refresh_ratio=refresh, stage_drift=stage_drifts(scal, refresh),
                       pair_anchored_median_abs_rel_error=summary.get("anchored_median_abs_rel_error", nan),
                       pair_anchored_mean_abs_emu_error=summary.get("anchored_mean_abs_emu_error", nan),
                       model_before_median_abs_rel_error=agree.get("before_median_abs_rel_error",
                                                                   agree["median_abs_rel_error"]),
                       model_before_max_abs_rel_error=agree.get("before_max_abs_rel_error", agree["max_abs_rel_error"]),
                       pair_refreshed_median_abs_rel_error=summary.get("refreshed_median_abs_rel_error", nan),
                       pair_refreshed_mean_abs_emu_error=summary.get("refreshed_mean_abs_emu_error", nan))


def from_summary(path: str | Path) -> list[RunHeadline]:
    """The runs of an earlier ``hera bench runs`` output (its JSON file), rebuilt from the per-run values it
    stores: every headline number, QPS*, pair drift, refresh ratio and stage drift, rounded as stored. Runs
    whose folders are gone (raw results are never committed) so still enter a new spread beside new runs."""
    import json

    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise HeraError(f"{path}: not a readable `hera bench runs` output ({e})") from None
    fig = doc.get("figure") if isinstance(doc, dict) else None
    if not isinstance(fig, dict) or doc.get("bench") != "runs" or not isinstance(fig.get("runs"), list):
        raise HeraError(f"{path} is not a `hera bench runs` output (its \"bench\" is {doc.get('bench')!r}, "
                        "expected 'runs')" if isinstance(doc, dict) else f"{path} is not a `hera bench runs` output")

    def value(entry: object, i: int) -> float:
        v = entry.get("values", [])[i] if isinstance(entry, dict) else None
        return math.nan if v is None else float(v)

    def per_key(name: str, i: int) -> dict[str, float]:
        out = {k: value(e, i) for k, e in (fig.get(name) or {}).items()}
        return {k: v for k, v in out.items() if math.isfinite(v)}

    scalars = [m for m in RunHeadline.METRICS if m not in ("service_refresh_ratio_median", "stage_drift_median")]
    # a summary written before the probe after the trials: its headline is the model from before them
    alias = {f"model_before_{k}": f"model_{k}" for k in ("median_abs_rel_error", "max_abs_rel_error")}
    runs = []
    for i, label in enumerate(fig["runs"]):
        commits = fig.get("commits", [[]] * len(fig["runs"]))[i]
        runs.append(RunHeadline(str(label), tuple(commits),
                                **{m: value(fig.get(m) if m in fig else fig.get(alias.get(m, m)), i) for m in scalars},
                                qps_star=per_key("qps_star", i), pair_drift=per_key("pair_service_drift", i),
                                refresh_ratio=per_key("service_refresh_ratio", i),
                                stage_drift=per_key("stage_drift", i), fingerprint=f"{path.name}#{label}"))
    return runs


def _spread(values: list[float]) -> dict[str, object]:
    x = np.asarray(values, float)
    ok = x[np.isfinite(x)]
    if ok.size == 0:
        return {"values": [None] * len(values), "median": None, "min": None, "max": None}
    return {"values": [round(float(v), 4) if math.isfinite(v) else None for v in x],
            "median": round(float(np.median(ok)), 4), "min": round(float(ok.min()), 4),
            "max": round(float(ok.max()), 4)}


def _qps_key(r: RunHeadline) -> str:
    """A run's QPS* table at the precision a summary stores (4 decimals)."""
    return "qps:" + ";".join(f"{k}={round(v, 4)}" for k, v in sorted(r.qps_star.items()))


def compare(runs: list[RunHeadline]) -> dict[str, object]:
    """Every headline number of ``runs`` with its spread, and every QPS* with its between-run CoV."""
    if len(runs) < 2:
        raise HeraError(f"a spread between runs needs at least 2 runs, got {len(runs)}")
    seen: dict[str, str] = {}
    for r in runs:
        # the same run twice: identical scalability tables, or (a run from a summary) identical QPS* everywhere
        same = [seen[k] for k in (r.fingerprint, _qps_key(r)) if k in seen]
        if same:
            raise HeraError(f"{r.path} and {same[0]} hold the same run (identical scalability tables or QPS*): "
                            "a spread between runs needs independent runs")
        seen[r.fingerprint] = r.path
        if r.qps_star:
            seen[_qps_key(r)] = r.path
    out: dict[str, object] = {"runs": [r.path for r in runs], "commits": [list(r.commits) for r in runs]}
    for m in RunHeadline.METRICS:
        out[m] = _spread([getattr(r, m) for r in runs])
    points = sorted(set().union(*(r.qps_star for r in runs)))
    qps = {}
    for p in points:
        v = np.array([r.qps_star.get(p, math.nan) for r in runs], float)
        ok = v[np.isfinite(v)]
        cov = float(ok.std(ddof=1) / ok.mean()) if ok.size > 1 and ok.mean() > 0 else math.nan
        qps[p] = {**_spread(list(v)), "cov": round(cov, 4) if math.isfinite(cov) else None}
    out["qps_star"] = qps
    covs = [q["cov"] for q in qps.values() if q["cov"] is not None]
    out["qps_star_between_run_cov"] = _spread(covs) if covs else None
    keys = sorted(set().union(*(r.pair_drift for r in runs)))
    out["pair_service_drift"] = {k: _spread([r.pair_drift.get(k, math.nan) for r in runs]) for k in keys}
    out["pair_drift_between_run_correlation"] = drift_correlations(runs)
    keys = sorted(set().union(*(r.refresh_ratio for r in runs)))
    out["service_refresh_ratio"] = {k: _spread([r.refresh_ratio.get(k, math.nan) for r in runs]) for k in keys}
    keys = sorted(set().union(*(r.stage_drift for r in runs)))
    out["stage_drift"] = {k: _spread([r.stage_drift.get(k, math.nan) for r in runs]) for k in keys}
    return out
