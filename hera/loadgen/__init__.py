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

from hera.loadgen.driver import RunResult, build_schedule, run
from hera.loadgen.search import SearchResult, find_qps_star
from hera.loadgen.settings import LoadgenSettings
from hera.loadgen.sut import NodeSUT, NullSUT, SleepSUT

__all__ = [
    "LoadgenSettings", "RunResult", "SearchResult", "build_schedule", "run", "find_qps_star",
    "NodeSUT", "NullSUT", "SleepSUT",
]
