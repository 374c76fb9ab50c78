"""``hera models``: list the zoo and build model files.

``hera models list [--scale S]`` prints one row per model (parameters, embedding bytes, lookups,
gathered bytes and FLOPs per item, whether it is built) and a JSON object as the last line.
``hera models build --scale S [--quantized] [--models a,b] [--seed N] [--force]`` builds the weights
under ``models/build/<scale>/`` (skipping models already built with the same seed and spec) and prints
a JSON summary with per-model build seconds as the last line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from hera.zoo.spec import SCALES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="the model zoo: list specs, build weights",
                       description="The DeepRecSys model zoo (models/*.yaml) built with TorchRec.")
    msub = p.add_subparsers(dest="models_command", metavar="SUBCOMMAND", required=True)

    lp = msub.add_parser("list", help="list models with their sizes at a scale",
                         description="Table of model ids with parameters, embedding bytes, lookups, "
                                     "gathered bytes and FLOPs per item; JSON object as the last line.")
    lp.add_argument("--scale", choices=SCALES, default="ci", help="scale preset (default: ci)")
    lp.add_argument("--root", type=Path, help="build directory to check (default: models/build/<scale>)")
    lp.set_defaults(func=_cmd_list)

    bp = msub.add_parser("build", help="build model weights and metadata",
                         description="Build deterministic weights (memory-mappable) and meta.json per model "
                                     "under models/build/<scale>/<id>[-q8]/; JSON summary as the last line.")
    bp.add_argument("--scale", choices=SCALES, required=True, help="scale preset")
    bp.add_argument("--quantized", action="store_true", help="build the int8-row (TorchRec/FBGEMM) variant")
    bp.add_argument("--models", help="comma-separated model ids (default: all)")
    bp.add_argument("--seed", type=int, default=0, help="weight seed (default: 0)")
    bp.add_argument("--force", action="store_true", help="rebuild models that are already built")
    bp.add_argument("--root", type=Path, help="output directory (default: models/build/<scale>)")
    bp.set_defaults(func=_cmd_build)


def _selected(text: str | None) -> list[str]:
    from hera.errors import UnknownModelError
    from hera.zoo.spec import list_models

    known = list_models()
    if not text:
        return known
    ids = [m.strip() for m in text.split(",") if m.strip()]
    for m in ids:
        if m not in known:
            raise UnknownModelError(f"unknown model {m!r}; known: {', '.join(known)}")
    return ids


def _human(n: float, unit: str = "") -> str:
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.2f} {suffix}{unit}"
    return f"{n:.0f} {unit}".rstrip()


def model_summary(model_id: str, scale: str) -> dict:
    """Sizes of a model at a scale, computed from its spec (module built on the meta device)."""
    from hera.zoo.models import build_module, embedding_weight_names
    from hera.zoo.spec import load_spec

    spec = load_spec(model_id, scale)
    model = build_module(spec, emb_device="meta")
    emb = set(embedding_weight_names(model))
    dense = sum(int(v.numel()) for k, v in model.state_dict().items() if k not in emb)
    return {
        "model": model_id, "kind": spec.kind, "tables": len(spec.tables),
        "params": sum(t.rows * t.dim for t in spec.tables) + dense,
        "embedding_bytes": spec.embedding_bytes(), "lookups_per_item": spec.lookups_per_item,
        "emb_bytes_gathered_per_item": spec.emb_bytes_gathered_per_item(),
        "mlp_flops_per_item": int(model.flops_per_item()),
    }


def _cmd_list(args: argparse.Namespace) -> int:
    from hera.zoo.layout import read_metadata

    rows = []
    for m in _selected(None):
        row = model_summary(m, args.scale)
        row["built"] = "+".join(v for v, q in (("fp32", False), ("q8", True))
                                if read_metadata(m, args.scale, q, args.root)) or "-"
        rows.append(row)
    header = f"{'model':<10} {'kind':<6} {'tables':>6} {'params':>11} {'emb bytes':>11} {'lookups':>7} " \
             f"{'gathered/item':>13} {'FLOPs/item':>11} built"
    print(f"scale {args.scale}")
    print(header)
    for r in rows:
        print(f"{r['model']:<10} {r['kind']:<6} {r['tables']:>6} {_human(r['params']):>11} "
              f"{_human(r['embedding_bytes'], 'B'):>11} {r['lookups_per_item']:>7} "
              f"{_human(r['emb_bytes_gathered_per_item'], 'B'):>13} {_human(r['mlp_flops_per_item']):>11} "
              f"{r['built']}")
    total = sum(r["embedding_bytes"] for r in rows)
    print(f"total embedding bytes: {_human(total, 'B')}")
    print(json.dumps({"scale": args.scale, "models": rows, "total_embedding_bytes": total}))
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from hera.paths import build_dir
    from hera.machine import check_fits
    from hera.zoo.build import build_model_files, weights_bytes
    from hera.zoo.layout import is_built
    from hera.zoo.spec import load_spec

    root = args.root if args.root is not None else build_dir(args.scale)
    todo, summary = [], {}
    for m in _selected(args.models):
        spec = load_spec(m, args.scale)
        if not args.force and is_built(m, args.scale, args.quantized, args.seed, root, spec):
            summary[m] = {"status": "skipped", "build_seconds": 0.0}
            print(f"{m}: already built (use --force to rebuild)")
        else:
            todo.append((m, spec))
    needed = sum(weights_bytes(s, args.quantized) for _, s in todo)
    if todo:
        check_fits(needed, f"building {', '.join(m for m, _ in todo)} at scale {args.scale}", root)
    t0 = time.perf_counter()
    for m, _ in todo:
        t = time.perf_counter()
        meta_path = build_model_files(m, args.scale, quantized=args.quantized, seed=args.seed, out_root=root)
        meta = json.loads(meta_path.read_text())
        summary[m] = {"status": "built", "build_seconds": round(time.perf_counter() - t, 3),
                      "embedding_bytes": meta["embedding_bytes"], "meta": str(meta_path)}
        print(f"{m}: built in {summary[m]['build_seconds']:.2f} s ({_human(meta['embedding_bytes'], 'B')})")
    print(json.dumps({"scale": args.scale, "quantized": args.quantized, "seed": args.seed, "root": str(root),
                      "models": summary, "total_build_seconds": round(time.perf_counter() - t0, 3)}))
    return 0
