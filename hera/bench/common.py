"""Helpers every ``hera bench`` command shares: writing the figure with provenance, the core plan, a tenant's
node, the study config and the SLA of the study's T1 table."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hera.errors import HeraError, NotBuiltError


def emit(name: str, scale: str, figure: dict[str, Any], out: Path | None, config: dict[str, Any]) -> int:
    """Write the figure with provenance and print it as the last line. ``out`` is a file, or a folder that gets
    ``<name>.json``; the figure is printed even when the file cannot be written (a measurement is never lost)."""
    from hera.paths import results_dir
    from hera.provenance import provenance

    path = out or results_dir(scale) / "bench" / f"{name}.json"
    if path.is_dir():
        path = path / f"{name}.json"
    line = json.dumps(figure, sort_keys=True, default=float)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"bench": name, "figure": figure, **provenance(config)}, indent=2,
                                   sort_keys=True, default=str) + "\n")
    except OSError as e:
        print(f"hera bench: error: cannot write {path}: {e.strerror or e}", file=sys.stderr)
        print(line)
        return 1
    print(line)
    return 0


def core_plan(arg: str | None):
    """The core plan (:mod:`hera.topology`) over ``--cores`` ('all' or a comma-separated CPU list): worker
    cores one per physical core, harness cores (load generator, node) reserved where the plan has them."""
    from hera.errors import ConfigError
    from hera.topology import study_plan

    try:
        cores = "auto" if arg in (None, "all") else [int(x) for x in arg.split(",")]
    except ValueError:
        raise ConfigError(f"--cores must be 'all' or comma-separated CPU ids, not {arg!r}") from None
    return study_plan({"cores": cores})


def worker_cores(arg: str | None) -> list[int]:
    return list(core_plan(arg).worker_cpus)


@contextlib.contextmanager
def on_harness(arg: str | None) -> Iterator[None]:
    """Run this process (node dispatch, load generator) on the plan's harness cores, if it has any."""
    harness = core_plan(arg).harness_cpus
    if not harness:
        yield
        return
    from hera.topology import pinned

    with pinned(harness):
        yield


def require_built(model: str, scale: str) -> None:
    from hera.paths import build_dir, datasets_dir

    if not (build_dir(scale) / model / "meta.json").is_file():
        raise NotBuiltError(f"model {model!r} is not built at scale {scale!r}: run `hera models build --scale "
                            f"{scale} --models {model}`")
    if not (datasets_dir(scale) / model / "library.json").is_file():
        raise NotBuiltError(f"sample library of {model!r} at scale {scale!r} is missing: run `hera workload "
                            f"library --scale {scale} --models {model}`")


def tenant_node(model: str, scale: str, cores: list[int], batch_size: int, *, sla_ms: float | None = None,
          share: bool = False, queue_limit: int = 100_000):
    from hera.server.node import Node

    return Node({"scale": scale, "allow_core_sharing": share, "tenants": [
        {"name": model, "model": model, "cores": list(cores), "batch_size": batch_size,
         "queue_limit": queue_limit, "sla_ms": sla_ms}]}).start()


def library_items(model: str, scale: str) -> int:
    """Items in the model's sample library (read from its memory-mapped files)."""
    from hera.paths import datasets_dir
    from hera.workload.library import SampleLibrary

    return int(SampleLibrary.open(datasets_dir(scale) / model).n_items)


def load_study(scale: str, path: Path | None) -> dict[str, Any]:
    from hera import config as cfg
    from hera.paths import repo_root

    study = cfg.load(path or repo_root() / "workflow" / "config" / f"{scale}.yaml")
    if study["scale"] != scale:
        raise HeraError(f"--scale {scale} does not match the config's scale {study['scale']}")
    return study


def t1_path(scale: str) -> Path:
    """The study's T1 table, whose SLAs the benchmarks use when it exists."""
    from hera.paths import results_dir

    return results_dir(scale) / "tables" / "T1.csv"


def t1_sla(model: str, scale: str) -> float | None:
    """The model's SLA from the study's T1 table when there is one (benchmarks then use the study's SLA)."""
    import pandas as pd

    t1 = t1_path(scale)
    if t1.is_file():
        df = pd.read_csv(t1)
        row = df[df["model"] == model]
        if len(row) and "headroom" in df.columns:
            return float(row["sla_ms"].iloc[0])
    return None


def require_t1_sla(model: str, scale: str) -> float:
    """:func:`t1_sla`, or a clear error naming the table and the command that writes it."""
    sla = t1_sla(model, scale)
    if sla is None:
        raise NotBuiltError(f"no SLA for {model!r} at scale {scale!r}: {t1_path(scale)} has no row for it; run "
                            f"`hera table t1 --scale {scale}` first")
    return sla


def t1_source(scale: str) -> str:
    """Where :func:`_t1_sla` takes an SLA from: the study's T1 table and when it was written (its provenance
    sidecar), so a benchmark says which stage's measurement set its SLA."""
    import json

    t1 = t1_path(scale)
    meta = t1.with_name(t1.name + ".meta.json")
    try:
        created = json.loads(meta.read_text()).get("created_utc", "") if meta.is_file() else ""
    except (OSError, ValueError):
        created = ""
    return str(t1) + (f" (written {created})" if created else "")


def cov(x: Any) -> float | None:
    """Sample coefficient of variation; None where it is undefined (no positive mean, or a missing value)."""
    import numpy as np

    return float(x.std(ddof=1) / x.mean()) if x.size > 1 and np.isfinite(x).all() and x.mean() > 0 else None


#: Confidence level of the intervals on a coefficient of variation (:func:`cov_interval`, :func:`pooled_cov`).
COV_LEVEL = 0.95
#: The QPS* repeatability bar: the CoV of complete determinations (`hera bench qps-repeatability`).
COV_BAR = 0.10


def _vangel(k: float, nu: float, level: float) -> tuple[float, float]:
    """Vangel's modified McKay interval for a normal coefficient of variation (Vangel 1996, *The American
    Statistician* 50(1)): sample CoV ``k`` with ``nu`` degrees of freedom; the upper end is inf where the
    formula's bracket is not positive."""
    from scipy.stats import chi2

    a = 1.0 - float(level)
    u_hi, u_lo = float(chi2.ppf(1 - a / 2, nu)), float(chi2.ppf(a / 2, nu))

    def end(u: float) -> float:
        d = ((u + 2) / (nu + 1) - 1) * k * k + u / nu
        return k / d ** 0.5 if d > 0 else float("inf")

    return end(u_hi), end(u_lo)


def cov_interval(x: Any, level: float = COV_LEVEL) -> tuple[float, float] | None:
    """Interval at ``level`` for the coefficient of variation of the population ``x`` was drawn from (normal
    data; :func:`_vangel`); None where :func:`cov` is undefined. With 3 values it is wide — a sample CoV of
    0.032 gives [0.017, 0.20] — so a 3-run CoV neither meets nor misses a bar of 0.10 with confidence."""
    import numpy as np

    x = np.asarray(x, float)
    k = cov(x)
    return None if k is None else _vangel(k, x.size - 1, level)


def pooled_cov(groups: list[tuple[float, int]], level: float = COV_LEVEL) -> dict[str, Any]:
    """Pooled coefficient of variation of independent groups ``(cov, n)`` that share one (``sqrt(Σ ν_i k_i² /
    Σ ν_i)``, ν_i = n_i − 1), with :func:`_vangel`'s interval on Σ ν_i degrees of freedom. Where the groups'
    true CoVs differ it estimates their root mean square, and the interval is too narrow."""
    nu = [int(n) - 1 for _, n in groups]
    if not groups or min(nu) < 1:
        raise HeraError("a pooled CoV needs at least one group, each of at least 2 values")
    total = sum(nu)
    k = (sum(v * float(c) ** 2 for (c, _), v in zip(groups, nu)) / total) ** 0.5
    lo, hi = _vangel(k, total, level)
    return {"pooled_cov": k, "pooled_cov_ci": [lo, hi], "cov_ci_level": level, "degrees_of_freedom": total,
            "groups": len(groups)}


def best_of(fn, repeats: int) -> float:
    """Shortest wall time (s) of ``repeats`` calls (the least disturbed by the rest of the machine)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run_labels(args, sources: list | None = None, flag: str = "--from-results") -> list[str]:
    """The names of the runs given by ``sources`` (default ``args.from_results``, the ``flag`` the error names):
    ``--labels`` (one per run), else the paths themselves."""
    sources = args.from_results if sources is None else sources
    labels = [x.strip() for x in args.labels.split(",")] if args.labels else [str(d) for d in sources]
    if len(labels) != len(sources):
        raise HeraError(f"--labels names {len(labels)} runs, {flag} gives {len(sources)}")
    return labels


def vars_of(args: argparse.Namespace) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"}
