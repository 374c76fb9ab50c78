"""Shared plumbing of the profiling commands: inputs, nodes, measurement loops, resumable tables.

- inputs: :func:`check_model`, :func:`parse_pair`, :func:`read_scalability`;
- nodes, streams and study inputs come from the measurement harness :mod:`hera.harness` (re-exported here:
  :class:`NodeOptions`, :class:`TenantPlan`, :func:`start_node`, :func:`loadgen_settings`, :func:`read_t1`,
  :func:`study_cores`, …), which the serving experiments share;
- measurements: :func:`service_latencies` (closed loop, one query at a time: service time at low load),
  :class:`Saturator` (closed loop keeping every worker busy: "full load");
- :class:`ResumableTable`: rows appended to ``<out stem>.partial.csv`` as each unit of work finishes, skipped on
  a rerun, renamed (written with provenance) to the final file at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hera.errors import HeraError, ResourceError, UnknownModelError
from hera.harness import (  # noqa: F401  (re-exported: the profiling modules use them as common.<name>)
    RUNNERS,
    NodeOptions,
    ProfileError,
    TenantPlan,
    derived_seed,
    loadgen_settings,
    node_config,
    percentile_tag,
    query_sizes,
    read_t1,
    start_node,
    study_cores,
    study_plan,
    tenant_name,
)
from hera.topology import pinned  # noqa: F401  (re-exported: memory profile)
from hera.harness.inputs import read_csv_table as _read_csv


# ------------------------------------------------------------------------------------------------ inputs
def check_model(model: str, runner: str = "zoo") -> str:
    """Raise :class:`UnknownModelError` for a model id the zoo does not know (any name is fine for
    the ``synthetic`` runner)."""
    if runner == "synthetic":
        if not model or not isinstance(model, str):
            raise UnknownModelError(f"model id must be a non-empty string, not {model!r}")
        return model
    from hera.zoo.spec import list_models

    known = list_models()
    if model not in known:
        raise UnknownModelError(f"unknown model {model!r}; known: {', '.join(known) or '(none)'}")
    return model


def parse_pair(text: str, runner: str = "zoo") -> tuple[str, str]:
    """``"a__b"`` → ``("a", "b")``; :class:`ProfileError` when malformed, :class:`UnknownModelError` for an
    unknown member."""
    parts = str(text).split("__")
    if len(parts) != 2 or not all(parts):
        raise ProfileError(f"malformed model pair {text!r}: expected 'model_a__model_b' (two model ids joined by '__')")
    a, b = parts
    if a == b:
        raise ProfileError(f"model pair {text!r} names the same model twice")
    return check_model(a, runner), check_model(b, runner)


def read_scalability(path: str | Path, models: list[str]):
    """The rows of the scalability table (F2) for ``models``: ``model, workers, qps_star`` at least."""
    df = _read_csv(path, "scalability table")
    missing_cols = sorted({"model", "workers", "qps_star"} - set(df.columns))
    if missing_cols:
        raise ProfileError(f"scalability table {path} has no column {missing_cols[0]!r}")
    for m in models:
        if not (df["model"] == m).any():
            raise ProfileError(f"scalability table {path} has no row for model {m!r}")
    return df[df["model"].isin(models)].copy()


def qps_alone(scal, model: str, workers: int, path: str | Path = "scalability table") -> float:
    """QPS* of ``model`` alone with ``workers`` workers, from the scalability table."""
    rows = scal[(scal["model"] == model) & (scal["workers"] == workers)]
    if rows.empty:
        raise ProfileError(f"{path} has no row for model {model!r} with {workers} worker(s)")
    return float(rows["qps_star"].iloc[0])


def qps_whole_node(scal, model: str) -> float:
    """QPS* of ``model`` alone on the whole node: its best worker count (max over the scalability table)."""
    return float(scal[scal["model"] == model]["qps_star"].max())


def per_repeat_values(text: Any) -> list[float]:
    """The repeats' values of a result row's ``per_repeat`` (';'-joined; a single value may read back as a
    number; empty or NaN: none)."""
    import numbers

    if not isinstance(text, (str, numbers.Number)) or (isinstance(text, float) and math.isnan(text)):
        return []
    return [float(x) for x in str(text).split(";") if x.strip()]


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-able inputs (used to refuse resuming from rows of different inputs)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------------- nodes
def harness_off_workers(config: dict[str, Any], worker_cores: list[int] | tuple[int, ...]):
    """``(context, cores text)`` keeping this process's threads (dispatch, collection, load generator) off the
    cores that run workers: the core plan's reserved harness cores where it has them (``start_node`` pins there
    already: nothing more to do), else the study cores that run no worker of this measurement, else nothing
    (every core runs a worker: ``"shared"``)."""
    reserved = list(study_plan(config).harness_cpus)
    if reserved:
        return contextlib.nullcontext(), " ".join(map(str, reserved))
    spare = [c for c in study_cores(config) if c not in set(worker_cores)]
    if spare:
        return pinned(spare), " ".join(map(str, spare))
    return contextlib.nullcontext(), "shared"


def worker_pids(node: Any, tenant: str) -> list[int]:
    """PIDs of the tenant's ready workers."""
    return [int(p) for p in node.stats()[tenant].worker_pids if p]


# ------------------------------------------------------------------------------------------ measurements
def service_latencies(node: Any, tenant: str, n_items: int, repeats: int, warmup: int = 2,
                      seed: int = 0, min_duration_s: float = 0.0,
                      max_repeats: int = 100_000) -> dict[str, np.ndarray]:
    """Closed loop, one query of ``n_items`` at a time (low load, no queueing): per repeat
    ``latency_ms`` (submit → end of last sub-batch) and ``service_ms`` (worker start → end).

    Runs ``warmup`` unrecorded queries, then at least ``repeats`` queries and at least ``min_duration_s``
    seconds (at most ``max_repeats``). Sample starts are drawn at random over the library so that repeats do
    not reuse the same items.
    """
    lib = node.library_size(tenant)
    rng = np.random.default_rng(seed)
    lat, svc = [], []
    i, t_end = 0, None
    while True:
        if i == warmup:
            t_end = time.perf_counter() + min_duration_s
        if i >= warmup and (len(lat) >= max_repeats
                            or (len(lat) >= repeats and time.perf_counter() >= t_end)):
            break
        start = int(rng.integers(0, max(1, lib - n_items + 1)))
        res = node.submit(tenant, start, int(n_items)).result()
        if not res.ok:
            raise ProfileError(f"tenant {tenant!r}: a query of {n_items} items failed: {res.error}")
        if i >= warmup:
            lat.append(res.latency_ms)
            svc.append((res.t_end_ns - res.t_start_ns) / 1e6)
        i += 1
    return {"latency_ms": np.asarray(lat, float), "service_ms": np.asarray(svc, float)}


class Saturator:
    """Full load: keeps ``depth`` queries of ``n_items`` in flight for ``tenant`` (closed loop) from a
    background thread, so every worker is always busy. Counts completed queries and items."""

    def __init__(self, node: Any, tenant: str, n_items: int, depth: int, seed: int = 0):
        self.node, self.tenant, self.n_items, self.depth = node, tenant, int(n_items), max(1, int(depth))
        self._sem = threading.Semaphore(self.depth)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.completed = self.failed = self.in_flight = 0
        self.errors: list[str] = []
        self._rng = np.random.default_rng(seed)
        self._lib = node.library_size(tenant)
        self._thread = threading.Thread(target=self._loop, name=f"saturator-{tenant}", daemon=True)

    def _done(self, res: Any) -> None:
        with self._lock:
            self.in_flight -= 1
            if res.ok:
                self.completed += 1
            else:
                self.failed += 1
                if len(self.errors) < 5:
                    self.errors.append(str(res.error))
        self._sem.release()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self._sem.acquire(timeout=0.05):
                continue
            if self._stop.is_set():
                self._sem.release()
                return
            start = int(self._rng.integers(0, max(1, self._lib - self.n_items + 1)))
            with self._lock:
                self.in_flight += 1
            try:
                self.node.submit(self.tenant, start, self.n_items, on_done=self._done)
            except HeraError as exc:
                with self._lock:
                    self.in_flight -= 1
                    self.failed += 1
                    self.errors.append(str(exc))
                self._sem.release()
                time.sleep(0.001)

    def counts(self) -> tuple[int, int]:
        with self._lock:
            return self.completed, self.failed

    def __enter__(self) -> "Saturator":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(5.0)
        deadline = time.monotonic() + 30.0  # let queries in flight finish so the next measurement is clean
        while time.monotonic() < deadline:
            with self._lock:
                if self.in_flight <= 0:
                    break
            time.sleep(0.005)


# ------------------------------------------------------------------------------------- resumable tables
class ResumableTable:
    """Rows of one result file, appended to ``<stem>.partial.csv`` as each unit of work finishes.

    A rerun with the same inputs (``fingerprint``) skips units whose key is already present; with other
    inputs the stale partial file is discarded (with a note on stderr). :meth:`finish` writes the final file
    with provenance and removes the partial file and its ``.json`` sidecar.
    """

    def __init__(self, out: str | Path, columns: list[str], key: list[str], fingerprint_: str):
        self.out = Path(out)
        self.columns, self.key, self.fp = list(columns), list(key), fingerprint_
        self.partial = self.out.with_name(self.out.stem + ".partial.csv")
        self.sidecar = Path(str(self.partial) + ".json")
        self.rows: list[dict[str, Any]] = []
        self._load()

    def _load(self) -> None:
        import pandas as pd

        if not self.partial.is_file():
            return
        meta = {}
        try:
            meta = json.loads(self.sidecar.read_text())
        except (OSError, ValueError):
            pass
        try:
            df = pd.read_csv(self.partial)
        except (pd.errors.EmptyDataError, pd.errors.ParserError):
            df = None
        if meta.get("fingerprint") != self.fp or df is None or list(df.columns) != self.columns:
            print(f"hera: note: discarding {self.partial} (made from other inputs or unreadable)", file=sys.stderr)
            self.partial.unlink(missing_ok=True)
            self.sidecar.unlink(missing_ok=True)
            return
        self.rows = df.to_dict("records")

    @staticmethod
    def _norm(v: Any) -> Any:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return None
        if isinstance(v, (np.integer,)):
            return int(v)
        if isinstance(v, float) and v.is_integer():
            return int(v)
        return v

    def key_of(self, row: dict[str, Any]) -> tuple:
        return tuple(self._norm(row.get(k)) for k in self.key)

    def done(self, **key: Any) -> bool:
        """True when a row with this key was already written (by this run or an interrupted one)."""
        want = self.key_of(key)
        return any(self.key_of(r) == want for r in self.rows)

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Append rows (one unit of work) to the partial file, flushed to disk."""
        import pandas as pd

        self.partial.parent.mkdir(parents=True, exist_ok=True)
        new = not self.partial.is_file()
        if new:
            self.sidecar.write_text(json.dumps({"fingerprint": self.fp, "out": str(self.out)}))
        df = pd.DataFrame(rows).reindex(columns=self.columns)
        with open(self.partial, "a", newline="") as f:
            df.to_csv(f, header=new, index=False)
            f.flush()
        self.rows.extend(df.to_dict("records"))

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns)

    def finish(self, df, config: dict[str, Any], seed: int | None) -> Path:
        """Write ``df`` (normally :meth:`frame`, post-processed) as the final table; drop the partial file."""
        from hera.provenance import write_table

        path = write_table(df, self.out, config=config, seed=seed)
        self.partial.unlink(missing_ok=True)
        self.sidecar.unlink(missing_ok=True)
        return path


def summary_json(**kw: Any) -> str:
    """The one-line JSON a command prints last (DESIGN.md: machine-read output)."""
    return json.dumps(kw, sort_keys=True, default=str)


def require_cores(cores: list[int], n: int, what: str) -> None:
    if len(cores) < n:
        raise ResourceError(f"{what} needs at least {n} usable core(s); this study has {len(cores)}: {cores}")


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0
