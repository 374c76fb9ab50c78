"""Figures F1..F9 of docs/METHOD.md §7: each a pure function ``fN_…(results_dir, out_dir) -> [pdf, png]``.

Every figure reads its result tables through :mod:`hera.report.io`, draws with seaborn in the common
:mod:`hera.report.style`, puts a footer naming the machine and scale (from the provenance sidecars), and
shows as text what could not be observed (a ``note`` column, too few cores, no resctrl) instead of an
empty plot. :data:`hera.report.catalog.FIGURE_INPUTS` (also read by the pipeline) lists each figure's inputs.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, MaxNLocator

from hera.errors import HeraError
from hera.report import claims, io, style
from hera.report.catalog import FIGURE_IDS, FIGURE_INPUTS
from hera.report.conditioning import describe as describe_conditioning
from hera.report.conditioning import summary as conditioning

#: F3 flags a model whose two baselines bracketing an antagonist kind's points (antagonist idle) differ by more
#: than this (relative): the machine moved during its profile (a shared VM's noise), so its curve does not
#: measure the antagonist alone.
DRIFT_TOL = 0.25
#: At most this many notes from result files are printed under a figure (the rest are counted).
MAX_NOTES = 4


# ---------------------------------------------------------------------------------------------- helpers
def _finish(fig, fig_id: str, out_dir, tables: list[io.Table], notes: list[str] = ()) -> list[Path]:
    """Footer (machine, scale, commit), notes from the tables' ``note`` columns and the caller, save."""
    machine = io.machine_of(tables)
    commit = next((str(t.meta["git_commit"]) for t in tables if t.meta.get("git_commit")), None)
    text = f"{fig_id} | machine: {machine.summary()} | scale: {tables[0].scale}"
    text += f" | results commit {commit[:12]}" if commit else ""
    style.footer(fig, text, [n for n in notes if n] + _table_notes(tables))
    return style.save(fig, out_dir, fig_id)


def _table_notes(tables: list[io.Table]) -> list[str]:
    """Notes of the tables' ``note`` columns worth printing under a figure: those explaining a missing effect
    (:data:`hera.report.io.IMPORTANT_NOTE`) and caveats shared by at least half the rows, at most
    :data:`MAX_NOTES`; per-row measurement details are only counted."""
    shown, hidden, seen = [], {}, set()
    for t in tables:
        for text, n in t.notes:
            if text in seen:  # the same sentence from another table (e.g. a calibration and its users)
                continue
            seen.add(text)
            if (io.IMPORTANT_NOTE.search(text) or n >= 0.5 * len(t.df)) and len(shown) < MAX_NOTES:
                text = text if len(text) <= 220 else text[:217] + "..."
                shown.append(text + (f" ({n} rows)" if n > 1 else ""))
            else:
                hidden[t.path.name] = hidden.get(t.path.name, 0) + 1
    if hidden:
        where = ", ".join(f"{k} ({v})" for k, v in hidden.items())
        shown.append(f"more notes in the note column of {where}")
    return shown


def _machine_notes(tables: list[io.Table], cores: bool = False, llc: bool = False) -> list[str]:
    machine = io.machine_of(tables)
    out = []
    gate = claims.core_gate(machine, "worker scalability and co-location effects")
    if cores and gate:
        out.append("not observable on this machine: " + gate)
    if llc and machine.known and not machine.resctrl:
        why = machine.resctrl_reason or "not mounted"
        out.append(f"LLC ways not partitioned (resctrl unavailable: {why}); "
                   "tenants share the whole LLC and only cores are split")
    return out


def _plain(ax, *axes: str) -> None:
    """Plain numbers (0.5, 1, 10) instead of powers of ten on log axes."""
    for name in axes:
        axis = getattr(ax, f"{name}axis")
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else ""))


def _model_ticks(ax, axis: str = "x", rotation: int = 30) -> None:
    labels = [style.label("model", t.get_text()) for t in getattr(ax, f"get_{axis}ticklabels")()]
    if axis == "x":
        ax.set_xticks(ax.get_xticks(), labels, rotation=rotation, ha="right" if rotation else "center")
    else:
        ax.set_yticks(ax.get_yticks(), labels)


def _fig_legend(fig, ax, kind: str, title: str) -> None:
    """Move ``ax``'s legend to the right of the figure, with display names."""
    handles, labels = ax.get_legend_handles_labels()
    if ax.get_legend():
        ax.get_legend().remove()
    if handles:
        fig.legend(handles, [style.label(kind, t) for t in labels], title=title, loc="outside right upper")


# ---------------------------------------------------------------------------------------------- figures
def f1_latency_vs_batch(results_dir, out_dir) -> list[Path]:
    """F1: latency of one sub-batch vs its size, per model, one worker (log-log; p50 line, p50-p95 band)."""
    style.apply()
    t = io.read_table(results_dir, "profile/latency.csv")
    df = t.df.groupby(["model", "batch_size"], as_index=False)[["latency_ms_p50", "latency_ms_p95"]].mean()
    pal = style.palette("model", df["model"])
    fig, ax = plt.subplots(figsize=(8, 4.8), layout="constrained")
    sns.lineplot(df, x="batch_size", y="latency_ms_p50", hue="model", hue_order=list(pal), palette=pal,
                 marker="o", ax=ax)
    for model, g in df.groupby("model"):
        ax.fill_between(g["batch_size"], g["latency_ms_p50"], g["latency_ms_p95"], color=pal[model],
                        alpha=0.2, lw=0)
    ax.set(xscale="log", yscale="log", xlabel="sub-batch size (items)", ylabel="sub-batch latency (ms)",
           title="F1  Latency vs sub-batch size, one worker (line: p50, band: p50-p95)")
    _plain(ax, "x", "y")
    _fig_legend(fig, ax, "model", "model")
    return _finish(fig, "F1", out_dir, [t])


def _yerr(g: pd.DataFrame, col: str) -> list[pd.Series]:
    """Asymmetric error bars from ``<col>_lo``/``<col>_hi`` (never negative)."""
    return [(g[col] - g[f"{col}_lo"]).clip(lower=0), (g[f"{col}_hi"] - g[col]).clip(lower=0)]


def f2_worker_scalability(results_dir, out_dir) -> list[Path]:
    """F2: QPS* vs workers (CI error bars) and normalised by ``w x QPS*(1)`` with the ideal-linear line."""
    style.apply()
    t = io.read_table(results_dir, "profile/scalability.csv")
    df = claims.normalised_scalability(t.df)
    pal = style.palette("model", df["model"])
    fig, (raw, norm) = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
    notes = _machine_notes([t], cores=True)
    if df["workers"].max() < 2:
        style.message(raw, "QPS* was measured at 1 worker only: no scalability curve on this machine")
        style.message(norm, "normalised scalability needs at least 2 workers")
        return _finish(fig, "F2", out_dir, [t], notes)
    for model in pal:
        g = df[df["model"] == model]
        kw = dict(color=pal[model], marker="o", capsize=3, label=model)
        raw.errorbar(g["workers"], g["qps_star"], yerr=_yerr(g, "qps_star"), **kw)
        norm.errorbar(g["workers"], g["norm"], yerr=_yerr(g, "norm"), **kw)
    norm.axhline(1.0, color="black", ls="--", lw=1.2, label="ideal (linear)")
    raw.set(xlabel="workers (one core each)", ylabel="QPS* (queries/s within SLA)", title="QPS* vs workers")
    norm.set(xlabel="workers (one core each)", ylabel="QPS*(w) / (w x QPS*(1))", ylim=(0, None),
             title="normalised scalability")
    for ax in (raw, norm):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    missing = sorted(set(df["model"]) - set(df.loc[df["workers"] == 1, "model"]))
    if missing:
        notes.append(f"no 1-worker QPS* for {', '.join(missing)}: not normalised")
    zero = claims.no_rate_with_one_worker(df)
    if zero:
        names = ", ".join(style.label("model", m) for m in zero)
        notes.append(f"QPS*(1 worker) = 0 (no rate met the SLA) for {names}: not normalised")
    fig.suptitle("F2  Worker scalability (error bars: QPS* confidence interval)", fontweight="bold")
    _fig_legend(fig, norm, "model", "model")
    raw.get_legend() and raw.get_legend().remove()
    return _finish(fig, "F2", out_dir, [t], notes)


def drifted_models(sens: pd.DataFrame, tol: float = DRIFT_TOL) -> dict[str, float]:
    """Models whose bracketing baselines (``drift``, after/before) are off 1 by more than ``tol`` in any kind
    or regime, with the worst such ratio: the machine moved during their profile, so their curves show noise."""
    d = sens.dropna(subset=["drift"])
    worst = d.groupby("model")["drift"].agg(lambda v: v.iloc[(v - 1).abs().argmax()])
    return {str(m): float(v) for m, v in worst.items() if abs(v - 1) > tol}


def _sensitivity_panel(ax, sens: pd.DataFrame, kind: str, pal: dict[str, str]) -> None:
    """Mean sub-batch service-time inflation vs antagonist intensity: light regime solid, saturated dashed."""
    for model in pal:
        for regime, ls in (("light", "-"), ("saturated", "--")):
            g = sens[(sens["model"] == model) & (sens["kind"] == kind) & (sens["regime"] == regime)]
            if g.empty:
                continue
            g = g.sort_values("intensity").assign(value_lo=lambda d: d["value_lo"].fillna(d["value"]),
                                                  value_hi=lambda d: d["value_hi"].fillna(d["value"]))
            ax.errorbar(g["intensity"], g["value"], yerr=_yerr(g, "value"), color=pal[model], ls=ls,
                        marker="o", ms=4, capsize=2, label=model if regime == "light" else None)
    ax.axhline(1.0, color="grey", ls=":", lw=1)
    ax.set(title=f"sensitivity: {kind} antagonist", xlabel="antagonist intensity (0-1)",
           ylabel="mean sub-batch service time (x intensity 0)")


def _pressure_frame(t: pd.DataFrame) -> tuple[pd.DataFrame, str, str]:
    """Pressure bars: each model's equivalent intensity at its highest load with the largest worker count all
    models have (or, when no calibration is usable, the reporter's slowdown); the y label and panel title."""
    press = t[t["part"].astype(str) == "pressure"]
    w = press.groupby("model")["workers"].max().min() if not press.empty else 1
    press = press[(press["workers"] == w)]
    press = press[press["load_frac"] == press.groupby("model")["load_frac"].transform("max")]
    eq = press[press["metric"].astype(str) == "equivalent_intensity"]
    u = press["load_frac"].max() if not press.empty else 1.0
    what = f"{w:.0f} worker(s) at load {u:g}"
    if eq["value"].notna().any():
        return eq, "equivalent antagonist intensity", f"pressure exerted ({what})"
    slow = press[press["metric"].astype(str) == "reporter_slowdown"]
    return slow, "reporter slowdown (x; no usable calibration)", f"pressure exerted on a reporter ({what})"


def _any_true(v: pd.Series) -> bool:
    return bool(v.astype(str).str.lower().isin(["true", "1", "1.0"]).any())


def _pressure_bars(ax, press: pd.DataFrame) -> None:
    """Grouped bars (one per kind) per model with interval whiskers; a kind whose values are all NaN (not
    observable) draws no bars — its reason is in the notes."""
    kinds = [k for k in dict.fromkeys(press["kind"]) if press.loc[press["kind"] == k, "value"].notna().any()]
    order = style.order("model", press["model"])
    pal = style.palette("resource", kinds)
    width = 0.8 / max(len(kinds), 1)
    for j, kind in enumerate(kinds):
        g = press[press["kind"] == kind].groupby("model")[["value", "value_lo", "value_hi"]].mean().reindex(order)
        g = g.assign(value_lo=g["value_lo"].fillna(g["value"]), value_hi=g["value_hi"].fillna(g["value"]))
        x = np.arange(len(order)) + (j - (len(kinds) - 1) / 2) * width
        g = g.join(press[press["kind"] == kind].groupby("model")["extrapolated"].agg(_any_true)
                   if "extrapolated" in press else pd.Series(False, index=order, name="extrapolated"))
        ax.bar(x, g["value"], width, color=pal[kind], label=kind,
               hatch=[("//" if e else "") for e in g["extrapolated"].fillna(False)])
        ax.errorbar(x, g["value"], yerr=_yerr(g, "value"), fmt="none", ecolor="black", capsize=2, lw=1)
    ax.set_xticks(np.arange(len(order)), [style.label("model", m) for m in order], rotation=30, ha="right")


def f3_memory_behaviour(results_dir, out_dir) -> list[Path]:
    """F3: per model, the inflation of its sub-batch service time next to each antagonist kind vs intensity
    (sensitivity), and the pressure its workers exert as an equivalent antagonist intensity (calibrated)."""
    style.apply()
    t = io.read_table(results_dir, "profile/interference.csv")
    cal = io.read_table(results_dir, "profile/interference_calibration.csv")
    df = t.df.assign(kind=t.df["kind"].astype(str))
    sens = df[(df["part"].astype(str) == "sensitivity") & (df["metric"].astype(str) == "mean_inflation")]
    kinds = [k for k in ("bandwidth", "cache") if k in set(sens["kind"])]
    kinds += sorted(set(sens["kind"]) - set(kinds))
    pal = style.palette("model", df["model"])
    n = max(len(kinds), 1) + 1
    fig, axes = plt.subplots(1, n, figsize=(4.8 * n, 4.6), layout="constrained")
    for ax, kind in zip(axes, kinds):
        _sensitivity_panel(ax, sens, kind, pal)
    if kinds:
        for ax in axes[1:len(kinds)]:
            ax.sharey(axes[0])
        _fig_legend(fig, axes[0], "model", "model")
        for ax in axes[1:len(kinds)]:
            ax.set_ylabel("")
    else:
        style.message(axes[0], "no sensitivity measurements in profile/interference.csv")
    press, ylabel, title = _pressure_frame(df)
    ax = axes[-1]
    if press.empty or press["value"].isna().all():
        style.message(ax, "pressure exerted was not measured on this machine")
    else:
        _pressure_bars(ax, press)
        ax.set(title=title, xlabel="", ylabel=ylabel)
        top = np.nanmax(press[["value", "value_hi"]].to_numpy(float))
        if top > 0:
            ax.set_ylim(0, 1.3 * top)
        ax.legend(title="on resource", loc="upper right", ncols=2, fontsize=9, title_fontsize=9)
    fig.suptitle("F3  Interference: sensitivity to antagonists and pressure exerted (error bars: bootstrap "
                 "intervals)", fontweight="bold")
    notes = ["sensitivity lines: solid = light load (one query at a time), dashed = saturation (closed loop); "
             "hatched pressure bars: past the last calibrated intensity (extrapolated)"]
    notes += [f"unreliable: {style.label('model', m)}'s baselines around the antagonist points differ "
              f"{v:.2f}x (machine noise, not the antagonist)" for m, v in drifted_models(sens).items()]
    return _finish(fig, "F3", out_dir, [t, cal], notes)


def _split(cores_a, cores_b, ways_a, ways_b) -> str:
    """``8+8c`` or ``8+8c 5+6w`` when LLC ways were split."""
    text = f"{cores_a:.0f}+{cores_b:.0f}c"
    ways = pd.to_numeric(pd.Series([ways_a, ways_b]), errors="coerce")
    return text + (f" {ways[0]:.0f}+{ways[1]:.0f}w" if ways.notna().all() and ways.gt(0).all() else "")


def pair_cells(measured: pd.DataFrame, predicted: pd.DataFrame) -> pd.DataFrame:
    """One row per unordered model pair for F4: the measured best point where the pair was measured (``source``
    measured, with the prediction of that same point in ``predicted_emu``), else the predicted best point
    (``source`` predicted); columns model_a, model_b, cores_a, cores_b, ways_a, ways_b, emu, predicted_emu,
    source."""
    cols = ["model_a", "model_b", "cores_a", "cores_b", "ways_a", "ways_b", "emu", "predicted_emu", "source"]
    meas = claims.best_splits(measured).assign(source="measured")
    pred = claims.best_splits(predicted).assign(source="predicted")
    pred["predicted_emu"] = pred["emu"]
    meas["_key"] = [tuple(sorted((str(a), str(b)))) for a, b in zip(meas["model_a"], meas["model_b"])]
    pred["_key"] = [tuple(sorted((str(a), str(b)))) for a, b in zip(pred["model_a"], pred["model_b"])]
    pred = pred[~pred["_key"].isin(set(meas["_key"]))]
    return pd.concat([meas[cols], pred[cols]], ignore_index=True)


def f4_emu_heatmap(results_dir, out_dir) -> list[Path]:
    """F4: EMU of every model pair at its best point: measured where the pair was measured (annotated with the
    prediction of that point), predicted (hatched) where it was not."""
    style.apply()
    t = io.read_table(results_dir, "colocation/pairs.csv")
    tp = io.read_table(results_dir, "colocation/predicted.csv")
    cells = pair_cells(t.df, tp.df)
    notes = _machine_notes([t], cores=True, llc=True)
    if cells.empty:
        fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
        style.message(ax, "no model pair has a measured or predicted EMU in colocation/pairs.csv, predicted.csv")
        return _finish(fig, "F4", out_dir, [t, tp], notes)
    models = style.order("model", pd.concat([cells["model_a"], cells["model_b"]]).astype(str))
    emu = pd.DataFrame(np.nan, index=models, columns=models)
    annot = pd.DataFrame("", index=models, columns=models)
    hatched = []
    for r in cells.itertuples():
        a, b = str(r.model_a), str(r.model_b)
        emu.loc[a, b] = emu.loc[b, a] = r.emu
        if r.source == "measured":
            pred = "" if pd.isna(r.predicted_emu) else f" ({r.predicted_emu:.2f})"
            text = f"{r.emu:.2f}{pred}"
        else:
            text = f"~{r.emu:.2f}"
            hatched += [(models.index(a), models.index(b)), (models.index(b), models.index(a))]
        annot.loc[a, b] = f"{text}\n{_split(r.cores_a, r.cores_b, r.ways_a, r.ways_b)}"
        annot.loc[b, a] = f"{text}\n{_split(r.cores_b, r.cores_a, r.ways_b, r.ways_a)}"
    span = max(float(np.nanmax(np.abs(emu.to_numpy() - 1.0))), 0.05)
    fig, ax = plt.subplots(figsize=(1.15 * len(models) + 3.5, 0.9 * len(models) + 2.8), layout="constrained")
    with warnings.catch_warnings():  # seaborn 0.13 calls Colormap.set_bad, deprecated in matplotlib 3.11
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        sns.heatmap(emu, annot=annot, fmt="", mask=emu.isna(), cmap="PiYG", center=1.0, vmin=1 - span,
                    vmax=1 + span, square=True, linewidths=0.5, annot_kws={"fontsize": 7.5}, ax=ax,
                    cbar_kws={"label": "EMU (1.0 = one model alone)"})
    for row, col in hatched:
        ax.add_patch(Rectangle((col, row), 1, 1, fill=False, hatch="//", edgecolor="0.55", lw=0, zorder=2))
    ax.set_xticks(ax.get_xticks(), [style.label("model", m) for m in models], rotation=30, ha="right")
    ax.set_yticks(ax.get_yticks(), [style.label("model", m) for m in models], rotation=0)
    ax.grid(False)
    n_meas = int((cells["source"] == "measured").sum())
    ax.set(xlabel="co-runner", ylabel="model",
           title="F4  EMU of model pairs at their best point\n"
                 "(measured: EMU (predicted); hatched ~EMU: predicted, pair not measured;\n"
                 "cores c and LLC ways w, row+column)")
    err = cells.loc[cells["source"] == "measured"].dropna(subset=["predicted_emu"])
    summary = f"{n_meas} of {len(cells)} pairs measured at their best measured point"
    if len(err):
        summary += (f"; |predicted - measured| EMU there: mean {(err['predicted_emu'] - err['emu']).abs().mean():.3f}, "
                    f"max {(err['predicted_emu'] - err['emu']).abs().max():.3f}")
    if n_meas < len(cells):
        summary += f"; {len(cells) - n_meas} predicted from O(N) profiles only (hatched)"
    return _finish(fig, "F4", out_dir, [t, tp], [summary, *notes])


def f5_emu_per_policy(results_dir, out_dir) -> list[Path]:
    """F5: mean node EMU per mix and policy (bars; dots: nodes), Hera's gain over single-tenant annotated."""
    style.apply()
    t = io.read_table(results_dir, "policy/emu.csv")
    df = t.df.assign(policy=t.df["policy"].astype(str), mix=t.df["mix"].astype(str))
    pols, mixes = style.order("policy", df["policy"]), list(dict.fromkeys(df["mix"]))
    fig, ax = plt.subplots(figsize=(1.7 * len(mixes) + 4, 4.8), layout="constrained")
    kw = dict(x="mix", y="emu", order=mixes, hue="policy", hue_order=pols)
    sns.barplot(df, **kw, palette=style.palette("policy", pols), errorbar=None, alpha=0.9, ax=ax)
    sns.stripplot(df, **kw, dodge=True, palette=["black"] * len(pols), size=3, alpha=0.5, legend=False, ax=ax)
    ax.axhline(1.0, color="grey", ls="--", lw=1)
    gains, title = claims.emu_gains(df), "F5  EMU per policy and model mix"
    gaps = claims.oracle_gaps(df)
    if not gains.empty:
        ax.bar_label(ax.containers[pols.index(claims.HERA)], padding=3, fontsize=9, fontweight="bold",
                     labels=[claims.signed_pct(gains[m]) if m in gains else "" for m in mixes],
                     color=style.POLICY_COLORS[claims.HERA])
        ax.set_ylim(top=ax.get_ylim()[1] * 1.08)
        title += f"\n(Hera vs single-tenant: {claims.signed_pct(gains.mean(), 1)} mean EMU"
        title += f"; vs oracle: {claims.signed_pct(gaps.mean(), 1)})" if len(gaps) else ")"
    ax.set(xlabel="model mix ('all': every model, no demand)", ylabel="EMU per node (mean; dots: nodes)",
           title=title)
    _fig_legend(fig, ax, "policy", "policy")
    return _finish(fig, "F5", out_dir, [t], _hera_notes(df, gaps, "mean EMU") + _machine_notes([t], cores=True,
                                                                                               llc=True))


def _hera_notes(df: pd.DataFrame, gaps: pd.Series, what: str) -> list[str]:
    """What Hera decided from and how it was evaluated, and its gap to the oracle per mix (F5, F8)."""
    out = []
    decision = claims.hera_decision(df)
    if decision:
        out.append(decision)
    if len(gaps):
        per = ", ".join(f"{m} {claims.signed_pct(g, 1)}" for m, g in gaps.items())
        out.append(f"Hera vs oracle ({what}, same measurements): {per}")
    return out


def f6_tail_latency_vs_load(results_dir, out_dir) -> list[Path]:
    """F6: p95/SLA vs offered load per policy (line: median tenant; band: best to worst tenant); SLA at 1."""
    style.apply()
    t = io.read_table(results_dir, "serving/latency_vs_load.csv")
    df = t.df.assign(policy=t.df["policy"].astype(str), ratio=t.df["p95_ms"] / t.df["sla_ms"])
    pols = style.order("policy", df["policy"])
    fig, ax = plt.subplots(figsize=(8.5, 4.8), layout="constrained")
    sns.lineplot(df.dropna(subset=["ratio"]), x="load_frac", y="ratio", hue="policy", hue_order=pols,
                 palette=style.palette("policy", pols), estimator="median", errorbar=("pi", 100), marker="o",
                 ax=ax)
    ax.axhline(1.0, color="black", ls="--", lw=1.3, label="SLA")
    if (df["ratio"].dropna() > 0).all():
        ax.set_yscale("log")
        _plain(ax, "y")
    ax.set(xlabel="offered load (fraction of the plan's QPS*)",
           ylabel="p95 latency / SLA (each tenant's own)",
           title="F6  Tail latency vs load (line: median tenant; band: best-worst tenant)")
    _fig_legend(fig, ax, "policy", "policy")
    return _finish(fig, "F6", out_dir, [t], _machine_notes([t], llc=True) + [shared_measurements(df)])


def shared_measurements(df: pd.DataFrame) -> str:
    """F6's note on policies whose node another policy served identically (one run, drawn under both names;
    tables before ``measured_with`` existed: none)."""
    if "measured_with" not in df.columns:
        return ""
    shared = df.loc[df["measured_with"].notna() & (df["measured_with"].astype(str) != df["policy"]),
                    ["policy", "measured_with"]].drop_duplicates()
    if shared.empty:
        return ""
    per = "; ".join(f"{', '.join(g['policy'])} = {w}'s" for w, g in shared.groupby("measured_with", sort=False))
    return f"one run per distinct node (same CPUs, LLC ways, capacities): {per} (their lines coincide)"


def f7_load_change(results_dir, out_dir) -> list[Path]:
    """F7: per-tenant offered load, p95/SLA with violation marks, and the node manager's moves over time."""
    style.apply()
    lc = io.read_table(results_dir, "serving/load_change.csv")
    mv = io.read_table(results_dir, "serving/moves.csv")
    df, policy = claims.hera_timeline(lc.df)
    df = df.assign(tenant=df["tenant"].astype(str), ratio=df["p95_ms"] / df["sla_ms"])
    moves = mv.df if "policy" not in mv.df.columns or policy is None else mv.df[mv.df["policy"] == policy]
    pal = style.palette("model", df["tenant"])
    fig, (load, lat, act) = plt.subplots(3, 1, sharex=True, figsize=(9.5, 8), height_ratios=[1, 1.3, 0.8],
                                         layout="constrained")
    sns.lineplot(df, x="t_s", y="offered_qps", hue="tenant", hue_order=list(pal), palette=pal,
                 drawstyle="steps-post", ax=load)
    sns.lineplot(df, x="t_s", y="ratio", hue="tenant", hue_order=list(pal), palette=pal, marker=".",
                 legend=False, ax=lat)
    lat.axhline(1.0, color="black", ls="--", lw=1.3, label="SLA")
    viol = df[df["ratio"] > 1]
    lat.scatter(viol["t_s"], viol["ratio"], marker="x", s=45, color=style.NOTE_COLOR, zorder=5,
                label=f"SLA violation ({len(viol)} of {df['ratio'].notna().sum()} windows)")
    lat.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, fontsize=9, frameon=False)  # off the data
    if (df["ratio"].dropna() > 0).all():
        lat.set_yscale("log")
        _plain(lat, "y")
    _moves_panel(act, moves, [load, lat])
    load.set(ylabel="offered load (QPS)",
             title="F7  Load changes over time" + (f" ({policy})" if policy else ""))
    lat.set(ylabel="p95 / SLA")
    act.set(xlabel="time (s)")
    _fig_legend(fig, load, "model", "tenant")
    return _finish(fig, "F7", out_dir, [lc, mv], _machine_notes([lc], llc=True))


def _moves_panel(ax, moves: pd.DataFrame, others) -> None:
    """Manager moves: a row per tenant, ^ for +delta, v for -delta, colour per resource; grey lines above."""
    ax.set_ylabel("manager moves")
    if moves.empty:
        ax.set_yticks([])
        ax.text(0.5, 0.5, "the node manager made no resource move", transform=ax.transAxes, ha="center",
                va="center", color=style.NOTE_COLOR)
        return
    moves = moves.assign(tenant=moves["tenant"].astype(str), resource=moves["resource"].astype(str),
                         direction=np.where(moves["delta"] >= 0, "grow", "shrink"))
    resources = list(dict.fromkeys(moves["resource"]))
    sns.scatterplot(moves, x="t_s", y="tenant", hue="resource", hue_order=resources, style="direction",
                    markers={"grow": "^", "shrink": "v"}, palette=style.palette("resource", resources), s=80,
                    ax=ax)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=9)
    ax.margins(y=0.25)
    _model_ticks(ax, axis="y")
    for other in others:
        for x in moves["t_s"].unique():
            other.axvline(x, color="#999999", lw=0.7, alpha=0.5, zorder=0)


def f8_servers_needed(results_dir, out_dir) -> list[Path]:
    """F8: servers needed per mix and policy (grouped bars), Hera's reduction vs single-tenant annotated."""
    style.apply()
    t = io.read_table(results_dir, "cluster/servers.csv")
    df = t.df.assign(policy=t.df["policy"].astype(str), mix=t.df["mix"].astype(str))
    pols, mixes = style.order("policy", df["policy"]), list(dict.fromkeys(df["mix"]))
    fig, ax = plt.subplots(figsize=(1.6 * len(mixes) + 4, 4.8), layout="constrained")
    sns.barplot(df, x="mix", y="servers", order=mixes, hue="policy", hue_order=pols,
                palette=style.palette("policy", pols), errorbar=None, ax=ax)
    red = claims.server_reductions(df)
    gaps = claims.server_gaps(df)
    title = "F8  Servers needed per model mix"
    if not red.empty:
        bars = ax.containers[pols.index(claims.HERA)]
        ax.bar_label(bars, labels=[claims.signed_pct(-red[m]) if m in red else "" for m in mixes], padding=2,
                     fontsize=9, fontweight="bold", color=style.POLICY_COLORS[claims.HERA])
        title += f"\n(Hera vs single-tenant: {claims.signed_pct(-red.mean(), 1)} on average"
        title += f"; vs oracle: {claims.signed_pct(gaps.mean(), 1)})" if len(gaps) else ")"
    ax.set(xlabel="model mix", ylabel="servers needed (nodes)", title=title)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _fig_legend(fig, ax, "policy", "policy")
    notes = _hera_notes(df, gaps, "servers")
    hera = df[df["policy"] == claims.HERA]
    if "servers_planned" in hera and len(hera):
        promised = ", ".join(f"{r.mix} {r.servers_planned:.0f} -> {r.servers:.0f}" for r in hera.itertuples())
        notes.append(f"Hera's servers as its decision data promised -> as evaluated: {promised}")
    return _finish(fig, "F8", out_dir, [t], notes + _machine_notes([t], cores=True, llc=True))


def f9_model_vs_measurement(results_dir, out_dir) -> list[Path]:
    """F9: modelled vs measured QPS* per model and worker count (intervals on both axes), and the modelled
    latency-vs-rate curves with every measured trial on them, one panel per model."""
    style.apply()
    t = io.read_table(results_dir, "profile/scalability.csv")
    tr = io.read_table(results_dir, "profile/scalability_trials.csv")
    cu = io.read_table(results_dir, "profile/scalability_curve.csv")
    err = claims.model_errors(t.df)
    agree = claims.model_agreement(t.df)
    models = style.order("model", err["model"].unique())
    pal = style.palette("model", models)
    ncol = 4
    nrow = max(1, -(-len(models) // ncol))
    fig = plt.figure(figsize=(16, 3.2 * nrow + 0.8), layout="constrained")
    grid = fig.add_gridspec(nrow, ncol + 2)
    ax = fig.add_subplot(grid[:, :2])
    wmark = {1: "o", 2: "s", 3: "^", 4: "D"}
    for m in models:
        g = err[err["model"] == m]
        for _, r in g.iterrows():
            ax.errorbar(r["qps_star_model"], r["qps_star"],
                        xerr=[[max(r["qps_star_model"] - r["qps_star_model_lo"], 0)],
                              [max(r["qps_star_model_hi"] - r["qps_star_model"], 0)]],
                        yerr=[[max(r["qps_star"] - r["qps_star_lo"], 0)], [max(r["qps_star_hi"] - r["qps_star"], 0)]],
                        color=pal[m], marker=wmark.get(int(r["workers"]), "P"), ms=7, capsize=2, ls="none",
                        label=style.label("model", m) if int(r["workers"]) == int(g["workers"].min()) else None)
    steady = t.df[["model", "workers", "qps_star", "qps_star_model_steady"]].dropna() \
        if "qps_star_model_steady" in t.df else pd.DataFrame()
    # the long-run model beside the trial-shaped one (docs/DESIGN.md, "QPS*")
    for i, (_, r) in enumerate(steady.iterrows()):
        ax.scatter(r["qps_star_model_steady"], r["qps_star"], marker="x", s=22, lw=1,
                   color=pal.get(r["model"], "0.4"), zorder=3, label="steady-state model" if i == 0 else None)
    served = t.df[["model", "workers", "qps_star", "qps_star_model_served"]].dropna() \
        if "qps_star_model_served" in t.df else pd.DataFrame()
    # the model on the service times as served in the trials (the machine's change of speed taken out)
    for i, (_, r) in enumerate(served.iterrows()):
        ax.scatter(r["qps_star_model_served"], r["qps_star"], marker=wmark.get(int(r["workers"]), "P"), s=30,
                   facecolors="none", edgecolors=pal.get(r["model"], "0.4"), lw=1, zorder=3,
                   label="model on the service as served" if i == 0 else None)
    probed = t.df["operating_drift"].notna() if "operating_drift" in t.df else pd.Series(False, index=t.df.index)
    profile = t.df.loc[probed, ["model", "workers", "qps_star", "qps_star_model_profile"]].dropna() \
        if "qps_star_model_profile" in t.df else pd.DataFrame()
    # the model on the service profile alone, where the operating-point probe rescaled it (docs/DESIGN.md)
    for i, (_, r) in enumerate(profile.iterrows()):
        ax.scatter(r["qps_star_model_profile"], r["qps_star"], marker="+", s=30, lw=1,
                   color=pal.get(r["model"], "0.4"), zorder=3,
                   label="model on the profile alone (before the probe)" if i == 0 else None)
    pos = err[(err["qps_star"] > 0) & (err["qps_star_model"] > 0)]
    if len(pos):
        lo, hi = min(pos["qps_star"].min(), pos["qps_star_model"].min()) / 1.5, \
            max(pos["qps_star"].max(), pos["qps_star_model"].max()) * 1.5
        x = np.geomspace(lo, hi, 50)
        ax.plot(x, x, color="black", lw=1, label="model = measurement")
        band = claims.MODEL_MEDIAN_MAX_ERROR
        ax.fill_between(x, x * (1 - band), x * (1 + band), color="0.85", zorder=0, label=f"within {band:.0%}")
        ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi))
        _plain(ax, "x", "y")
    ax.set(xlabel="modelled QPS* (queries/s; bar: bootstrap interval)",  # the other markers: the legend
           ylabel="measured QPS* (queries/s; bar: interval of the median)",
           title=f"model vs measurement: median |error| {agree['median_abs_rel_error']:.1%}, "
                 f"max {agree['max_abs_rel_error']:.1%} ({agree['points']} points)")
    ax.legend(fontsize=8, loc="upper left", title="marker: workers " + ", ".join(
        f"{w}={wmark.get(w, 'P')}" for w in sorted(err["workers"].astype(int).unique())), title_fontsize=8)
    for k, m in enumerate(models):
        sub = fig.add_subplot(grid[k // ncol, 2 + k % ncol])
        c, p = cu.df[cu.df["model"] == m], tr.df[tr.df["model"] == m]
        for w, cw in c.groupby("workers"):
            cw = cw.sort_values("rate_qps")
            line, = sub.plot(cw["rate_qps"], cw["latency_ms_model"], lw=1.4, label=f"{int(w)} w model")
            sub.fill_between(cw["rate_qps"], cw["latency_ms_model_lo"], cw["latency_ms_model_hi"],
                             color=line.get_color(), alpha=0.2, lw=0)
            pw = p[p["workers"] == w]
            sub.scatter(pw["rate_qps"], pw["latency_ms_pct_adjusted"], s=14, color=line.get_color(), zorder=3,
                        label=f"{int(w)} w trials")
            sub.scatter(pw["rate_qps"], pw["latency_ms_pct"], s=14, facecolors="none", edgecolors=line.get_color(),
                        lw=0.8, zorder=3)
        if len(c):
            sla = float(c["sla_ms"].iloc[0])
            sub.axhline(sla, color="black", ls="--", lw=1)
            top = max(3 * sla, 1.0)
            sub.set_ylim(0, top)
        sub.set_title(style.label("model", m), fontsize=10, color=pal[m])
        sub.set_xlabel("rate (queries/s)", fontsize=8)
        sub.set_ylabel(f"p{float(t.df['percentile'].iloc[0]) * 100:g} latency (ms)", fontsize=8)
        sub.tick_params(labelsize=7)
        if k == 0:
            sub.legend(fontsize=6, loc="upper left")
    fig.suptitle("F9  Model vs measurement: QPS* and tail latency vs rate (dashed: SLA; filled dots: measured "
                 "trials adjusted by the control variate, hollow: raw)", fontweight="bold")
    notes = _machine_notes([t], cores=True)
    if agree["zero_measured"]:
        notes.append(f"{agree['zero_measured']} point(s) with measured QPS* = 0: absolute errors, not in the medians")
    if agree.get("profile_points") and "operating_drift" in t.df.columns and t.df["operating_drift"].notna().any():
        notes.append(f"the model on the service profile alone, before the operating-point probe: median |error| "
                     f"{agree['profile_median_abs_rel_error']:.1%}, max {agree['profile_max_abs_rel_error']:.1%}")
    if agree.get("before_points") and "operating_drift_after" in t.df.columns \
            and t.df["operating_drift_after"].notna().any():
        notes.append(f"at the speed of the probe before the trials alone (the model that started the search): median "
                     f"|error| {agree['before_median_abs_rel_error']:.1%}, max {agree['before_max_abs_rel_error']:.1%}")
    if agree.get("served_points"):
        notes.append(f"the model on the service times as served in the trials (profile x measured drift): median "
                     f"|error| {agree['served_median_abs_rel_error']:.1%}, max {agree['served_max_abs_rel_error']:.1%}"
                     + (f"; served off the profiled speed by > {claims.STABLE_DRIFT:g}x at "
                        f"{', '.join(agree['drifted'])}" if agree.get("drifted") else ""))
    cond = describe_conditioning(conditioning(t.df, claims.MODEL_MAX_ERROR))
    if cond:
        notes.append(f"conditioning: {cond}")
    nf = agree.get("noise_floor")
    if nf:
        notes.append(f"noise floor: a perfect model on this run's repeat scatter ({nf['repeat_log_sd']:.3f} in log) "
                     f"would score {nf['perfect_model_median_abs_rel_error']:.1%} / "
                     f"{nf['perfect_model_max_abs_rel_error']:.1%} (median / max; the max bar in "
                     f"{nf['p_perfect_model_meets_max_bar']:.0%} of simulated runs)")
    return _finish(fig, "F9", out_dir, [t, tr, cu], notes)


FIGURES = dict(zip(FIGURE_IDS, (f1_latency_vs_batch, f2_worker_scalability, f3_memory_behaviour, f4_emu_heatmap,
                                f5_emu_per_policy, f6_tail_latency_vs_load, f7_load_change, f8_servers_needed,
                                f9_model_vs_measurement),
                   strict=True))


def figure_id(name: str) -> str:
    """Normalise ``f3``/``F3``; raise :class:`HeraError` for an unknown figure id."""
    fid = str(name).strip().upper()
    if fid not in FIGURES:
        raise HeraError(f"unknown figure {name!r}; known: {', '.join(FIGURES)}")
    return fid


def build(fig_id: str, results_dir, out_dir) -> list[Path]:
    """Draw one figure (PDF + PNG) into ``out_dir``."""
    return FIGURES[figure_id(fig_id)](Path(results_dir), Path(out_dir))


def missing_inputs(fig_id: str, results_dir) -> list[str]:
    """Input files of a figure that do not exist under ``results_dir``."""
    return [rel for rel in FIGURE_INPUTS[figure_id(fig_id)] if not io.exists(results_dir, rel)]
