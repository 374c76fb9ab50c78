"""``hera report``: figures and tables from a results directory.

- ``hera report figure F3 --results DIR --out DIR``  one figure (PDF + PNG); a missing input is an error
- ``hera report all --results DIR --out DIR [--tables DIR]``  every figure whose inputs exist, T2 (and T1.md)
  when theirs do; says which were skipped and why
- ``hera report t2 --results DIR --out DIR``  T2.csv, T2.md (and T1.md if missing)

Each prints one JSON object as its last line. Plotting libraries are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hera.errors import HeraError


def _cmd_figure(args: argparse.Namespace) -> int:
    from hera.report import figures

    fid = figures.figure_id(args.fig)
    paths = figures.build(fid, args.results, args.out)
    print(json.dumps({"figure": fid, "files": [str(p) for p in paths]}))
    return 0


def _cmd_t2(args: argparse.Namespace) -> int:
    from hera.report import tables

    paths = tables.write_t2(args.results, args.out)
    print(json.dumps({"table": "T2", "files": [str(p) for p in paths]}))
    return 0


def _cmd_all(args: argparse.Namespace) -> int:
    from hera.report import claims, figures, io, tables

    built: dict[str, list[str]] = {}
    skipped: dict[str, str] = {}
    failed: dict[str, str] = {}
    for fid in figures.FIGURES:
        missing = figures.missing_inputs(fid, args.results)
        if missing:
            skipped[fid] = "missing " + ", ".join(missing)
            continue
        try:
            built[fid] = [str(p) for p in figures.build(fid, args.results, args.out)]
        except HeraError as exc:
            failed[fid] = str(exc)
    tables_out = args.tables or Path(args.results) / "tables"
    missing = [rel for rel in claims.T2_INPUTS if not io.exists(args.results, rel)]
    if missing:
        skipped["T2"] = "missing " + ", ".join(missing)
        if io.exists(args.results, "tables/T1.csv"):
            t1 = tables.write_t1_md(args.results, tables_out)
            if t1:
                built["T1"] = [str(t1)]
    else:
        try:
            built["T2"] = [str(p) for p in tables.write_t2(args.results, tables_out)]
        except HeraError as exc:
            failed["T2"] = str(exc)
    for name, files in built.items():
        print(f"{name}: built {', '.join(Path(f).name for f in files)}")
    for name, why in skipped.items():
        print(f"{name}: skipped ({why})")
    for name, why in failed.items():
        print(f"{name}: FAILED ({why})")
    print(json.dumps({"built": built, "skipped": skipped, "failed": failed}))
    if failed:
        details = "; ".join(f"{k}: {v}" for k, v in failed.items())
        raise HeraError(f"{len(failed)} output(s) failed: {details}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="figures F1-F8 and tables T1/T2 from result files")
    rsub = p.add_subparsers(dest="report_command", metavar="ACTION", required=True)

    f = rsub.add_parser("figure", help="draw one figure (PDF + PNG) from a results directory")
    f.add_argument("fig", metavar="FIG", help="figure id, F1..F8")
    f.add_argument("--results", type=Path, required=True, help="results directory (results/<scale>)")
    f.add_argument("--out", type=Path, required=True, help="output directory for <FIG>.pdf and <FIG>.png")
    f.set_defaults(func=_cmd_figure)

    a = rsub.add_parser("all", help="every figure (and T2) whose inputs exist; lists what was skipped")
    a.add_argument("--results", type=Path, required=True, help="results directory (results/<scale>)")
    a.add_argument("--out", type=Path, required=True, help="output directory for figures")
    a.add_argument("--tables", type=Path, help="output directory for T2/T1.md (default <results>/tables)")
    a.set_defaults(func=_cmd_all)

    t = rsub.add_parser("t2", help="claims table T2 (CSV + Markdown; T1.md too if missing)")
    t.add_argument("--results", type=Path, required=True, help="results directory (results/<scale>)")
    t.add_argument("--out", type=Path, required=True, help="output directory (results/<scale>/tables)")
    t.set_defaults(func=_cmd_t2)
