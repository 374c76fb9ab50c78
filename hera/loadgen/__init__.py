"""The load generator (layer 3): open-loop driver, QPS* search with early stopping, MLPerf LoadGen adapter.

It knows no model and no server internals (as MLPerf LoadGen): it sees a sample-library size and a
*SUT* with ``issue(tenant, sample_start, n_items, on_done)`` (see :mod:`hera.loadgen.sut`).

- :mod:`~hera.loadgen.settings` — :class:`LoadgenSettings` (strict ``from_dict``)
- :mod:`~hera.loadgen.driver` — :func:`build_schedule`, :func:`run` → :class:`RunResult`
- :mod:`~hera.loadgen.stats` — percentile CIs, MLPerf early stopping
- :mod:`~hera.loadgen.search` — :func:`find_qps_star` → :class:`SearchResult`
- :mod:`~hera.loadgen.sut` — ``NodeSUT``, ``NullSUT``, ``SleepSUT`` and queueing formulas
- :mod:`~hera.loadgen.mlperf` — MLPerf LoadGen adapter and :func:`compare`
"""

import importlib
from typing import Any

_EXPORTS = {
    "RunResult": "driver", "build_schedule": "driver", "run": "driver",
    "SearchResult": "search", "find_qps_star": "search",
    "LoadgenSettings": "settings",
    "NodeSUT": "sut", "NullSUT": "sut", "SleepSUT": "sut",
}

__all__ = [
    "LoadgenSettings", "RunResult", "SearchResult", "build_schedule", "run", "find_qps_star",
    "NodeSUT", "NullSUT", "SleepSUT",
]


def __getattr__(name: str) -> Any:
    """The public names, imported on first use: the load-generator process (:mod:`hera.loadgen.process`) starts
    in a fraction of a second because it needs neither pandas nor scipy."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"hera.loadgen.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hera.loadgen' has no attribute {name!r}")
