"""Profiling: isolated, co-located and antagonist (bubble) measurements → tidy tables.

- :mod:`hera.profile.t1`: T1, the model zoo table (sizes, analytical class, single-worker latency, SLA);
- :mod:`hera.profile.common`, :mod:`~hera.profile.latency`, :mod:`~hera.profile.service`,
  :mod:`~hera.profile.scalability`, :mod:`~hera.profile.interference` (F3),
  :mod:`~hera.profile.antagonist`, :mod:`~hera.profile.memory` (older F3 with hardware counters),
  :mod:`~hera.profile.colocation`: the node-based profiles (F1-F4).

Importing this package imports nothing heavy; each module imports torch/the server itself.
"""
