"""What the pair prediction's mean |EMU error| would be with its systematic parts taken out (``hera bench
emu-floor``), from the ``point_errors`` that ``hera bench pair-prediction`` keeps in its figure.

A run's EMU errors (predicted − measured, one per measured point) are split three ways:

- ``even_extra``: the balanced ray's (``share_a`` 0.5) mean signed error minus the uneven rays' — the even split's
  over-prediction (docs/DESIGN.md, "The even split is over-predicted");
- ``level``: the uneven rays' mean signed error — the whole run served faster (< 0) or slower (> 0) than the
  prediction, mostly the machine's change of speed between F2 and F4;
- what is left around each ray's mean: the points' own scatter, pair by pair and minute by minute.

``without_even_extra`` scores the run with the balanced ray moved by ``even_extra`` (a perfect model of the even
split); ``ray_centred`` with every ray's mean error removed (no systematic error at all, by ray or by run): a
prediction can only get below what the points scatter by knowing, pair by pair, what the machine did while each
was measured.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from hera.errors import HeraError

#: the balanced ray's share
EVEN = 0.5


def split(point_errors: list[dict[str, Any]]) -> dict[str, float | int | None]:
    """The three-way split of one run's EMU errors (module doc); needs measured points on the balanced ray and on
    at least one other."""
    pts = [p for p in point_errors if p.get("emu") is not None and p.get("predicted_emu") is not None
           and math.isfinite(float(p["emu"])) and math.isfinite(float(p["predicted_emu"]))]
    if not pts:
        raise HeraError("no measured point with a predicted and a measured EMU")
    e = np.array([float(p["predicted_emu"]) - float(p["emu"]) for p in pts])
    share = np.round(np.array([float(p["share_a"]) for p in pts]), 3)
    even = share == EVEN
    if not even.any() or even.all():
        raise HeraError("the split needs measured points on the balanced ray (share 0.5) and on another ray")
    extra = float(e[even].mean() - e[~even].mean())
    moved = e.copy()
    moved[even] -= extra
    centred = e.copy()
    for s in np.unique(share):
        centred[share == s] -= e[share == s].mean()
    return {"points": int(e.size), "mean_abs_emu_error": round(float(np.abs(e).mean()), 4),
            "even_extra": round(extra, 4), "level": round(float(e[~even].mean()), 4),
            "without_even_extra": round(float(np.abs(moved).mean()), 4),
            "ray_centred": round(float(np.abs(centred).mean()), 4)}


def from_figure(path: str | Path) -> dict[str, float | int | None]:
    """:func:`split` of a ``hera bench pair-prediction`` output file."""
    p = Path(path)
    if not p.is_file():
        raise HeraError(f"{p} does not exist")
    doc = json.loads(p.read_text())
    pts = (doc.get("figure") or {}).get("point_errors")
    if pts is None:
        raise HeraError(f"{p} has no figure.point_errors: not a `hera bench pair-prediction` output")
    return split(pts)


def summary(runs: dict[str, dict[str, Any]], bar: float) -> dict[str, Any]:
    """Median and range of each score over the runs, and in how many it meets ``bar``."""
    out: dict[str, Any] = {"runs": len(runs), "bar": bar}
    for key in ("mean_abs_emu_error", "without_even_extra", "ray_centred", "even_extra", "level"):
        v = np.array([r[key] for r in runs.values()], dtype=float)
        out[key] = {"median": round(float(np.median(v)), 4), "min": round(float(v.min()), 4),
                    "max": round(float(v.max()), 4)}
        if key in ("mean_abs_emu_error", "without_even_extra", "ray_centred"):
            out[key]["bar_met"] = int((v <= bar).sum())
    out["even_extra"]["positive"] = int(sum(r["even_extra"] > 0 for r in runs.values()))
    return out
