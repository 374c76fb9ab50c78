"""Is every figure and table (docs/METHOD.md §7) there and non-empty?

``python -m hera.report.check --scale S [--results DIR] [--figures DIR]`` checks ``<figures>/F1..F8.pdf|png``
(defaults ``figures/<scale>``) and ``<results>/tables/T1|T2.csv|md`` (default ``results/<scale>``): each must
exist, be non-empty, and PNG/PDF files must start with their format's signature. Exit status 0 when all
are there, 1 with one line per problem otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hera.paths import repo_root, results_dir
from hera.report.catalog import FIGURE_IDS, TABLE_IDS

_SIGNATURES = {".png": b"\x89PNG\r\n\x1a\n", ".pdf": b"%PDF"}


def expected(results: Path, figures: Path) -> list[Path]:
    """Every output the pipeline must produce."""
    return ([figures / f"{f}.{ext}" for f in FIGURE_IDS for ext in ("pdf", "png")]
            + [results / "tables" / f"{t}.{ext}" for t in TABLE_IDS for ext in ("csv", "md")])


def problem(path: Path) -> str | None:
    """Why ``path`` is not a usable output (missing, empty, wrong format), or None if it is."""
    if not path.is_file():
        return "missing"
    if path.stat().st_size == 0:
        return "empty"
    sig = _SIGNATURES.get(path.suffix)
    if sig:
        with path.open("rb") as fh:
            if fh.read(len(sig)) != sig:
                return f"not a {path.suffix[1:].upper()} file"
    return None


def check(results: Path, figures: Path) -> list[str]:
    """One line per unusable output; empty when everything is there."""
    return [f"{p}: {why}" for p in expected(results, figures) if (why := problem(p))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hera.report.check", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", required=True, help="study scale (ci, default, paper, reference)")
    parser.add_argument("--results", type=Path, help="results directory (default results/<scale>)")
    parser.add_argument("--figures", type=Path, help="figures directory (default figures/<scale>)")
    args = parser.parse_args(argv)
    results = args.results or results_dir(args.scale)
    figures = args.figures or repo_root() / "figures" / args.scale
    problems = check(results, figures)
    if problems:
        print(f"{len(problems)} of {len(expected(results, figures))} outputs missing or unusable:")
        print("\n".join("  " + p for p in problems))
        return 1
    n = len(expected(results, figures))
    print(f"all {n} figures and tables present in {figures} and {results}/tables")
    return 0


if __name__ == "__main__":
    sys.exit(main())
