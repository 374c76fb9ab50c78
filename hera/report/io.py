"""Read a results directory (``results/<scale>/``) into validated tables, each with its provenance.

Every table of ``docs/DESIGN.md`` ("Result tables") has a :class:`TableSchema` in :data:`SCHEMAS`, keyed by
its path relative to the results directory. :func:`read_table` checks that the file exists, has rows and
the required columns (numeric where numbers are expected), and reads the ``<file>.meta.json`` sidecar
written by :func:`hera.provenance.write_table`. Problems raise :class:`ResultError` (a
:class:`~hera.errors.HeraError`) with a one-line message naming the file and the column.

Conventions the report relies on beyond DESIGN.md (all optional unless said otherwise):

- any table may carry a ``note`` column (texts joined by ``"; "``): notes explaining a missing effect
  (:data:`IMPORTANT_NOTE`, e.g. "not observable on this machine: ...") and caveats shared by at least half the
  rows are printed under the figure, so an effect that could not be measured is explained, not drawn empty;
  per-row measurement details are only counted;
- ``profile/interference.csv`` (:mod:`hera.profile.interference.table`): rows of ``part == "sensitivity"``
  with ``metric == "mean_inflation"`` are drawn against ``intensity`` per ``kind`` and ``regime`` (with
  ``value_lo``/``value_hi`` as error bars and ``drift`` checked); rows of ``part == "pressure"`` give
  ``equivalent_intensity`` (NaN when the calibration shows nothing on this machine; the reporter's slowdown is
  drawn instead);
- ``colocation/pairs.csv`` (measured points, several per split: one per ray ``share_a``) and
  ``colocation/predicted.csv`` (predicted points of every pair, split and ray): ``best`` is a boolean
  (``True``/``False``/``1``/``0``) flagging each pair's best point (measured) or best split (predicted); a pair
  is shown at its highest ``emu`` among flagged rows (else among all); a measured point carries the prediction
  of the same point beside it (``predicted_emu``);
- ``policy/emu.csv`` and ``cluster/servers.csv``: ``decided_on`` (measured | predicted) says what a policy's
  plan was decided on, ``evaluated_on`` where its capacities come from (``measured``, ``measured, nearest
  split``, ``predicted``); ``predicted_emu`` / ``servers_planned`` what the decision data promised;
- ``serving/load_change.csv`` may carry a ``policy`` column (F7 and C5 then use ``hera``'s rows); a window
  counts as an SLA violation when ``p95_ms > sla_ms`` (the ``violations`` column is carried, not re-derived);
- ``serving/moves.csv`` may have no rows (the manager made no move); every other table must have rows.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hera.errors import HeraError


#: Notes that explain a missing effect; they are shown before measurement details.
IMPORTANT_NOTE = re.compile(r"not observable|unavailable|not measured|cannot|no rate|meets no|not counted|"
                            r"fail|only \d+ (usable )?core", re.IGNORECASE)


class ResultError(HeraError):
    """A result file is missing, unreadable, empty, or lacks a column the report needs."""


@dataclass(frozen=True)
class TableSchema:
    """What the report needs from one result table."""

    path: str                      # relative to the results directory
    columns: tuple[str, ...]       # required columns
    numeric: tuple[str, ...] = ()  # required columns that must hold numbers (NaN allowed)
    allow_empty: bool = False      # a header-only file is valid


SCHEMAS: dict[str, TableSchema] = {s.path: s for s in (
    TableSchema("tables/T1.csv",
                ("model", "params", "embedding_bytes", "mlp_flops_per_item", "emb_bytes_gathered_per_item",
                 "latency_ms_b1", "latency_ms_b64", "latency_ms_b256", "sla_ms", "sla_rule", "class"),
                ("params", "embedding_bytes", "mlp_flops_per_item", "emb_bytes_gathered_per_item", "sla_ms")),
    TableSchema("profile/latency.csv",
                ("model", "batch_size", "n_samples", "latency_ms_p50", "latency_ms_p95", "latency_ms_mean"),
                ("batch_size", "n_samples", "latency_ms_p50", "latency_ms_p95", "latency_ms_mean")),
    TableSchema("profile/scalability.csv",
                ("model", "workers", "qps_star", "qps_star_lo", "qps_star_hi", "qps_star_ci_level", "repeats",
                 "qps_star_model", "qps_star_model_lo", "qps_star_model_hi", "sla_ms", "percentile"),
                ("workers", "qps_star", "qps_star_lo", "qps_star_hi", "qps_star_model", "sla_ms")),
    TableSchema("profile/scalability_trials.csv",
                ("model", "workers", "repeat", "rate_qps", "latency_ms_pct", "latency_ms_pct_adjusted", "verdict",
                 "sla_ms"),
                ("workers", "rate_qps", "latency_ms_pct", "latency_ms_pct_adjusted", "sla_ms")),
    TableSchema("profile/scalability_curve.csv",
                ("model", "workers", "rate_qps", "latency_ms_model", "latency_ms_model_lo", "latency_ms_model_hi",
                 "sla_ms"),
                ("workers", "rate_qps", "latency_ms_model", "latency_ms_model_lo", "latency_ms_model_hi", "sla_ms")),
    TableSchema("profile/interference.csv",
                ("model", "part", "kind", "intensity", "regime", "workers", "load_frac", "metric", "value",
                 "value_lo", "value_hi", "drift"),
                ("intensity", "workers", "load_frac", "value", "value_lo", "value_hi", "drift")),
    TableSchema("profile/interference_calibration.csv",
                ("kind", "intensity", "metric", "value", "value_lo", "value_hi", "usable"),
                ("intensity", "value", "value_lo", "value_hi")),
    TableSchema("colocation/predicted.csv",
                ("model_a", "model_b", "cores_a", "cores_b", "ways_a", "ways_b", "llc", "share_a", "qps_star_a",
                 "qps_star_b", "emu", "emu_lo", "emu_hi", "best"),
                ("cores_a", "cores_b", "share_a", "qps_star_a", "qps_star_b", "emu", "emu_lo", "emu_hi")),
    TableSchema("colocation/pairs.csv",
                ("model_a", "model_b", "cores_a", "cores_b", "ways_a", "ways_b", "share_a", "qps_star_a",
                 "qps_star_b", "qps_alone_a", "qps_alone_b", "emu", "best", "predicted_qps_star_a",
                 "predicted_qps_star_b", "predicted_emu"),
                ("cores_a", "cores_b", "share_a", "emu", "predicted_qps_star_a", "predicted_qps_star_b",
                 "predicted_emu")),
    TableSchema("policy/emu.csv", ("policy", "mix", "node", "tenants", "emu", "decided_on", "evaluated_on",
                                   "predicted_emu"), ("emu", "predicted_emu")),
    TableSchema("serving/latency_vs_load.csv",
                ("policy", "group", "tenant", "load_frac", "offered_qps", "achieved_qps", "p95_ms", "sla_ms",
                 "n_queries"),
                ("load_frac", "offered_qps", "achieved_qps", "p95_ms", "sla_ms")),
    TableSchema("serving/load_change.csv",
                ("t_s", "tenant", "p95_ms", "sla_ms", "violations", "offered_qps"),
                ("t_s", "p95_ms", "sla_ms", "offered_qps")),
    TableSchema("serving/moves.csv", ("t_s", "tenant", "resource", "delta", "reason"), ("t_s", "delta"),
                allow_empty=True),
    TableSchema("cluster/servers.csv", ("mix", "policy", "servers", "assignment", "decided_on", "evaluated_on",
                                        "servers_planned"), ("servers", "servers_planned")),
)}

def sidecar(path: Path) -> Path:
    """Path of the provenance sidecar of a result file: ``<file>.meta.json``."""
    return Path(str(path) + ".meta.json")


@dataclass
class MachineInfo:
    """The parts of a provenance machine description that figures and T2 talk about."""

    cpu_model: str = "unknown CPU"
    usable_cores: int | None = None
    llc_bytes: int | None = None
    llc_ways: int | None = None
    resctrl: bool | None = None
    resctrl_reason: str | None = None
    perf: bool | None = None
    perf_reason: str | None = None
    known: bool = False

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> MachineInfo:
        """Build from a provenance dict (``{"machine": {...}, "config": {...}}``); unknown if absent."""
        m = meta.get("machine") or {}
        if not m:
            return cls()
        usable = len(m.get("usable_cpus") or []) or m.get("logical_cpus")
        cores_cfg = (meta.get("config") or {}).get("cores")
        if isinstance(cores_cfg, list) and cores_cfg:
            usable = min(len(cores_cfg), usable) if usable else len(cores_cfg)
        llc = m.get("llc") or {}
        resctrl = m.get("resctrl") or {}
        perf = m.get("perf") or {}
        return cls(
            cpu_model=m.get("cpu_model") or "unknown CPU",
            usable_cores=int(usable) if usable else None,
            llc_bytes=m.get("llc_bytes") or llc.get("size_bytes"),
            llc_ways=llc.get("ways"),
            resctrl=bool(resctrl.get("available")) if resctrl else m.get("llc_partitioning") == "available",
            resctrl_reason=resctrl.get("reason"),
            perf=bool(perf.get("available")) if perf else None,
            perf_reason=perf.get("reason"),
            known=True,
        )

    def summary(self) -> str:
        """One line: CPU, usable cores, LLC, whether LLC partitioning (resctrl) is available."""
        if not self.known:
            return "machine unknown (no provenance sidecar)"
        llc = "LLC ?"
        if self.llc_bytes:
            llc = f"LLC {self.llc_bytes / 2**20:.0f} MiB" + (f" {self.llc_ways}-way" if self.llc_ways else "")
        part = "LLC partitioning available" if self.resctrl else "LLC partitioning unavailable (no resctrl)"
        cores = f"{self.usable_cores} usable cores" if self.usable_cores else "cores ?"
        return f"{self.cpu_model}, {cores}, {llc}, {part}"


@dataclass
class Table:
    """One result table: the validated DataFrame, its file, and its provenance sidecar (``{}`` if absent)."""

    path: Path
    df: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def machine(self) -> MachineInfo:
        return MachineInfo.from_meta(self.meta)

    @property
    def scale(self) -> str:
        """The study scale from the provenance config, else the results directory's name."""
        scale = (self.meta.get("config") or {}).get("scale") or self.meta.get("scale")
        return str(scale) if scale else self.path.parent.parent.name

    @property
    def notes(self) -> list[tuple[str, int]]:
        """Distinct parts (split at ``"; "``) of the optional ``note`` column with their row counts, ranked:
        notes saying that something was not observable first (:data:`IMPORTANT_NOTE`), then most frequent."""
        if "note" not in self.df.columns:
            return []
        counts = Counter(part.strip() for text in self.df["note"].dropna().astype(str)
                         for part in split_note(text) if part.strip())
        return sorted(counts.items(), key=lambda kv: (not IMPORTANT_NOTE.search(kv[0]), -kv[1]))


def split_note(text: str) -> list[str]:
    """The parts of a ``note`` cell: split at ``"; "`` outside parentheses (a part may say "(a; b)")."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if depth <= 0 and text.startswith("; ", i):
            parts.append(text[start:i])
            start = i + 2
    return parts + [text[start:]]


def _read_frame(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ResultError(f"result file {path} is empty (not even a header)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise ResultError(f"result file {path} is not a readable table: {str(exc).splitlines()[0]}") from None


def read_meta(path: Path) -> dict[str, Any]:
    """The provenance sidecar of ``path`` (``{}`` when there is none; invalid JSON is an error)."""
    meta_path = sidecar(path)
    if not meta_path.is_file():
        return {}
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise ResultError(f"provenance sidecar {meta_path} is not valid JSON ({exc.msg})") from None
    if not isinstance(meta, dict):
        raise ResultError(f"provenance sidecar {meta_path} is not a JSON object")
    return meta


def validate(df: pd.DataFrame, schema: TableSchema, path: Path) -> pd.DataFrame:
    """Check the required and numeric columns of ``df``; return it with numeric columns as floats."""
    missing = [c for c in schema.columns if c not in df.columns]
    if missing:
        raise ResultError(f"result file {path} lacks column(s) {', '.join(missing)} "
                          f"(expected at least: {', '.join(schema.columns)})")
    if df.empty and not schema.allow_empty:
        raise ResultError(f"result file {path} has no rows")
    df = df.copy()
    for col in schema.numeric:
        converted = pd.to_numeric(df[col], errors="coerce")
        bad = converted.isna() & df[col].notna()
        if bad.any():
            raise ResultError(f"result file {path} column {col!r} is not numeric "
                              f"(e.g. {df[col][bad].iloc[0]!r})")
        df[col] = converted.astype(float)
    return df


def locate(results_dir: str | Path, rel: str) -> Path:
    """Path of result table ``rel`` under ``results_dir`` (its ``.parquet`` twin if the CSV is absent)."""
    path = Path(results_dir) / rel
    if not path.is_file() and path.suffix == ".csv" and path.with_suffix(".parquet").is_file():
        return path.with_suffix(".parquet")
    return path


def exists(results_dir: str | Path, rel: str) -> bool:
    return locate(results_dir, rel).is_file()


def read_table(results_dir: str | Path, rel: str) -> Table:
    """Read and validate result table ``rel`` (a key of :data:`SCHEMAS`) under ``results_dir``."""
    if rel not in SCHEMAS:
        raise ResultError(f"unknown result table {rel!r}; known: {', '.join(SCHEMAS)}")
    path = locate(results_dir, rel)
    if not path.is_file():
        raise ResultError(f"result file {path} does not exist")
    df = validate(_read_frame(path), SCHEMAS[rel], path)
    return Table(path=path, df=df, meta=read_meta(path))


def as_bool(series: pd.Series) -> pd.Series:
    """Booleans from a column written as True/False, true/false, 1/0 or yes/no (anything else is False)."""
    if series.dtype == bool:
        return series
    return series.astype(str).str.strip().str.lower().isin({"true", "1", "1.0", "yes", "y"})


def machine_of(tables: list[Table]) -> MachineInfo:
    """The machine of the first table that has a provenance sidecar (unknown if none has)."""
    for t in tables:
        if t.meta.get("machine"):
            return t.machine
    return MachineInfo()
