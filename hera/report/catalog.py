"""The ids of every figure and table, and the result files each figure is drawn from: the one list that the
report (:mod:`hera.report.figures`, :mod:`hera.report.check`) and the pipeline (``workflow/rules/common.smk``)
read. Standard library only, so Snakemake can import it cheaply when it builds the DAG.
"""

from __future__ import annotations

#: Figures, in order (docs/METHOD.md §7).
FIGURE_IDS: tuple[str, ...] = ("F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8", "F9")
#: Tables, in order (T1: the model zoo; T2: the claims).
TABLE_IDS: tuple[str, ...] = ("T1", "T2")

#: Result files each figure is drawn from (relative to the results directory ``results/<scale>/``).
FIGURE_INPUTS: dict[str, tuple[str, ...]] = {
    "F1": ("profile/latency.csv",),
    "F2": ("profile/scalability.csv",),
    "F3": ("profile/interference.csv", "profile/interference_calibration.csv"),
    "F4": ("colocation/pairs.csv", "colocation/predicted.csv"),
    "F5": ("policy/emu.csv",),
    "F6": ("serving/latency_vs_load.csv",),
    "F7": ("serving/load_change.csv", "serving/moves.csv"),
    "F8": ("cluster/servers.csv",),
    "F9": ("profile/scalability.csv", "profile/scalability_trials.csv", "profile/scalability_curve.csv"),
}
