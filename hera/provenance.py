"""Provenance attached to every result: config, seed, machine, package versions, git commit.

Results are written as a tidy table plus a sidecar ``<file>.meta.json`` holding :func:`provenance`;
each row also carries the short columns ``git_commit`` and ``machine_id`` so that rows stay
traceable after tables are concatenated.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from hera.paths import repo_root

PACKAGES = ("torch", "torchrec", "fbgemm-gpu-cpu", "numpy", "pandas", "mlcommons-loadgen", "snakemake")


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """Commit of the working tree, with ``-dirty`` if it has uncommitted changes; ``unknown`` outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo_root(), capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo_root(), capture_output=True, text=True, check=True,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """Installed versions of the packages that decide results."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def machine_id(machine: dict[str, Any]) -> str:
    """A short stable id of a machine description (CPU model, cores, memory, LLC)."""
    key = json.dumps(
        {k: machine.get(k) for k in ("cpu_model", "logical_cpus", "memory_bytes", "llc_bytes", "hostname")},
        sort_keys=True,
    )
    return hashlib.sha1(key.encode()).hexdigest()[:10]


def provenance(config: dict[str, Any] | None = None, seed: int | None = None) -> dict[str, Any]:
    """Everything needed to trace a result back to how it was produced."""
    from hera.machine import describe

    machine = describe()
    return {
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "packages": package_versions(),
        "machine": machine,
        "machine_id": machine_id(machine),
        "seed": seed,
        "config": config or {},
    }


def write_table(df, path: str | Path, config: dict[str, Any] | None = None, seed: int | None = None) -> Path:
    """Write a tidy pandas table (CSV, or Parquet by suffix) plus ``<path>.meta.json`` provenance.

    Adds the columns ``git_commit`` and ``machine_id`` to every row.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prov = provenance(config, seed)
    df = df.copy()
    df["git_commit"] = prov["git_commit"]
    df["machine_id"] = prov["machine_id"]
    tmp = path.with_suffix(path.suffix + ".tmp")
    if path.suffix == ".parquet":
        df.to_parquet(tmp, index=False)
    else:
        df.to_csv(tmp, index=False)
    tmp.replace(path)
    Path(str(path) + ".meta.json").write_text(json.dumps(prov, indent=2, sort_keys=True, default=str))
    return path
