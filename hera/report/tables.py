"""Tables T1 (model zoo, Markdown rendering of ``tables/T1.csv``) and T2 (claims vs this run).

T2 is written with :func:`hera.provenance.write_table` (CSV + ``.meta.json`` carrying the thresholds), and
as Markdown with the machine the results ran on.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from hera.provenance import write_table
from hera.report import claims, io

#: Columns added by ``write_table`` for traceability; left out of the Markdown renderings.
_TRACE_COLUMNS = ("git_commit", "machine_id")


def fmt(value) -> str:
    """Human-readable cell: 3 significant digits, k/M/G suffixes for large numbers, '-' for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    for threshold, div, suffix in ((1e9, 1e9, " G"), (1e6, 1e6, " M"), (1e4, 1e3, " k")):
        if abs(value) >= threshold:
            return f"{value / div:.3g}{suffix}"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of ``df`` (cells through :func:`fmt`, pipes escaped)."""
    def cell(v) -> str:
        return fmt(v.item() if hasattr(v, "item") else v).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "|".join("---" for _ in df.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def t1_markdown(table: io.Table) -> str:
    """T1 as Markdown: the model zoo with the machine and scale underneath."""
    df = table.df.drop(columns=[c for c in _TRACE_COLUMNS if c in table.df.columns])
    return (f"# T1 Model zoo (scale {table.scale})\n\n{markdown_table(df)}\n"
            f"Machine: {table.machine.summary()}.\n")


def write_t1_md(results_dir, out_dir, force: bool = False) -> Path | None:
    """Write ``<out_dir>/T1.md`` from ``<results_dir>/tables/T1.csv`` if it is missing (or ``force``)."""
    out = Path(out_dir) / "T1.md"
    if out.exists() and not force:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(t1_markdown(io.read_table(results_dir, "tables/T1.csv")))
    return out


def t2_markdown(df: pd.DataFrame) -> str:
    """T2 as Markdown: one row per claim, then the machine and the thresholds that decide verdicts."""
    machines = list(dict.fromkeys(df["machine"]))
    body = df.drop(columns=[c for c in ("machine", *_TRACE_COLUMNS) if c in df.columns])
    rules = ", ".join(f"{k} = {v}" for k, v in claims.THRESHOLDS.items())
    return (f"# T2 Paper claims vs this run\n\n{markdown_table(body)}\n"
            f"Machine: {'; '.join(machines)}.\n\nThresholds (hera/report/claims.py): {rules}.\n")


def write_t2(results_dir, out_dir) -> list[Path]:
    """Evaluate C1..C5 from ``results_dir`` and write ``T2.csv`` (+ sidecar) and ``T2.md`` into ``out_dir``;
    also ``T1.md`` when it is missing there."""
    out = Path(out_dir)
    df = claims.to_frame(claims.evaluate(results_dir))
    scale = io.read_table(results_dir, "tables/T1.csv").scale
    csv = write_table(df, out / "T2.csv",
                      config={"scale": scale, "results": str(results_dir), "thresholds": claims.THRESHOLDS})
    md = out / "T2.md"
    md.write_text(t2_markdown(df))
    t1 = write_t1_md(results_dir, out)
    return [csv, md] + ([t1] if t1 else [])
