"""One plotting style for every figure: readable fonts, a fixed colour per policy and per model, a footer
naming the machine and scale, and a note box for effects that could not be observed.

Colours are fixed by name (not by order of appearance), so Hera is the same colour in F5, F6 and F8 and
DLRM-RMC1 the same colour in F1, F2 and F3. Names outside the known lists get stable extra colours.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.text import Annotation  # noqa: E402

#: Policies of docs/METHOD.md §6, in the order figures show them, with display names.
POLICY_LABELS = {"single_tenant": "single-tenant", "random": "random", "greedy": "greedy",
                 "parties": "PARTIES", "hera": "Hera", "oracle": "oracle"}
#: Okabe-Ito colours (colour-blind safe); the baseline is grey, Hera the strongest colour.
POLICY_COLORS = {"single_tenant": "#7f7f7f", "random": "#E69F00", "greedy": "#56B4E9",
                 "parties": "#CC79A7", "hera": "#D55E00", "oracle": "#009E73"}

#: Models of docs/METHOD.md §3 with display names; colours from seaborn's colour-blind palette, fixed per model.
MODEL_LABELS = {"dlrm_rmc1": "DLRM-RMC1", "dlrm_rmc2": "DLRM-RMC2", "dlrm_rmc3": "DLRM-RMC3", "ncf": "NCF",
                "wnd": "WnD", "mtwnd": "MT-WnD", "din": "DIN", "dien": "DIEN"}
MODEL_COLORS = dict(zip(MODEL_LABELS, sns.color_palette("colorblind", 10).as_hex()))

#: Resources the node manager moves (F7) and antagonist kinds (F3).
RESOURCE_COLORS = {"cores": "#0072B2", "core": "#0072B2", "llc_ways": "#D55E00", "llc_way": "#D55E00",
                   "ways": "#D55E00", "mem_bw": "#009E73", "bandwidth": "#0072B2", "cache": "#D55E00"}

_EXTRA = sns.color_palette("dark", 10).as_hex()
_COLORS = {"policy": POLICY_COLORS, "model": MODEL_COLORS, "resource": RESOURCE_COLORS}
_LABELS = {"policy": POLICY_LABELS, "model": MODEL_LABELS, "resource": {}}

FOOTER_SIZE = 7.5
NOTE_COLOR = "#8B0000"


def apply() -> None:
    """Set the common theme (call at the top of every figure function; cheap and idempotent)."""
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.25)
    plt.rcParams.update({
        "figure.dpi": 100, "savefig.dpi": 150, "savefig.bbox": "tight",
        "pdf.fonttype": 42, "ps.fonttype": 42,            # editable text in PDFs
        "axes.titleweight": "bold", "legend.frameon": False,
    })
    np.random.seed(0)  # seaborn's strip-plot jitter draws from the global RNG: same files -> same figure


def order(kind: str, names) -> list[str]:
    """``names`` (unique) in the canonical order of ``kind`` (policy/model), unknown ones after, sorted."""
    names = list(dict.fromkeys(str(n) for n in names))
    known = [n for n in _COLORS[kind] if n in names]
    return known + sorted(n for n in names if n not in known)


def palette(kind: str, names) -> dict[str, str]:
    """Fixed colour per name of ``kind`` (``policy``, ``model`` or ``resource``)."""
    fixed = _COLORS[kind]
    extra = iter(c for c in _EXTRA if c not in fixed.values())
    return {n: fixed[n] if n in fixed else next(extra, "#333333") for n in order(kind, names)}


def label(kind: str, name: str) -> str:
    """Display name (``hera`` → ``Hera``, ``dlrm_rmc1`` → ``DLRM-RMC1``); unknown names unchanged."""
    return _LABELS[kind].get(str(name), str(name))


def relabel_legend(ax, kind: str, title: str | None = None, **kwargs) -> None:
    """Replace ids by display names in ``ax``'s legend (and place it), if it has one."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, [label(kind, t) for t in labels], title=title, **kwargs)


def footer(fig, text: str, notes: list[str] = ()) -> None:
    """Small grey provenance line under the figure, then dark-red notes (e.g. 'not observable: ...')."""
    line = fig.text(0.01, 0.0, text, ha="left", va="top", fontsize=FOOTER_SIZE, color="#555555")
    if notes:
        wrapped = "\n".join(textwrap.fill("note: " + t, 120) for t in notes)
        # a figure-level artist: kept out of constrained layout, but inside the saved (tight) bounding box
        fig.add_artist(Annotation(wrapped, xy=(0, 0), xycoords=line, xytext=(0, -3),
                                  textcoords="offset points", ha="left", va="top",
                                  fontsize=FOOTER_SIZE + 0.5, color=NOTE_COLOR))


def message(ax, text: str) -> None:
    """Replace an empty plot by a centred explanation of why there is nothing to show."""
    ax.set_axis_off()
    ax.text(0.5, 0.5, textwrap.fill(text, 45), ha="center", va="center", transform=ax.transAxes,
            fontsize=11, color=NOTE_COLOR, bbox={"boxstyle": "round", "fc": "#fff5f5", "ec": NOTE_COLOR})


def save(fig, out_dir: str | Path, fig_id: str) -> list[Path]:
    """Write ``<out_dir>/<fig_id>.pdf`` and ``.png``, close the figure, return both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{fig_id}.pdf", out / f"{fig_id}.png"]
    for p in paths:  # no creation date in the PDF: same result files -> same bytes
        fig.savefig(p, metadata={"CreationDate": None} if p.suffix == ".pdf" else None)
    plt.close(fig)
    return paths
