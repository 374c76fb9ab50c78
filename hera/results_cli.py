"""``hera results``: small operations on tidy result files (concatenate per-model/per-pair parts)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hera.errors import HeraError


def concat(out: Path, parts: list[Path]) -> Path:
    """Concatenate tidy CSV parts into ``out``; its ``.meta.json`` is the first part's provenance plus
    ``parts`` (each part's path, git commit and creation time), so figures can still name the machine."""
    import pandas as pd

    if not parts:
        raise HeraError("results concat needs at least one input file")
    frames, metas = [], []
    for p in parts:
        if not p.is_file():
            raise HeraError(f"result file {p} does not exist")
        try:
            frames.append(pd.read_csv(p))
        except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
            raise HeraError(f"result file {p} is not a readable CSV table: {exc}") from None
        meta_path = Path(str(p) + ".meta.json")
        metas.append(json.loads(meta_path.read_text()) if meta_path.is_file() else {})
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(frames, ignore_index=True).to_csv(out, index=False)
    meta = dict(metas[0])
    meta["parts"] = [{"path": str(p), "git_commit": m.get("git_commit"), "created_utc": m.get("created_utc")}
                     for p, m in zip(parts, metas)]
    Path(str(out) + ".meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
    return out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("results", help="operations on tidy result files")
    rsub = p.add_subparsers(dest="results_command", metavar="ACTION", required=True)
    c = rsub.add_parser("concat", help="concatenate CSV result parts (keeps provenance)")
    c.add_argument("--out", type=Path, required=True, help="output CSV")
    c.add_argument("parts", type=Path, nargs="+", help="input CSV files")
    c.set_defaults(func=lambda args: print(concat(args.out, args.parts)) or 0)
