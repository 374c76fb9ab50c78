"""``hera bench``: benchmark commands that print their figure (last line: one JSON object) and write it to
``results/<scale>/bench/<name>.json`` with provenance. Benchmarks measure; tests never assert wall time.
One module per kind (:mod:`hera.bench.serving`, :mod:`hera.bench.node`, :mod:`hera.bench.qps`,
:mod:`hera.bench.partner`, :mod:`hera.bench.conditioning`), the arguments in :mod:`hera.bench.cli`, shared helpers
in :mod:`hera.bench.common`.

- ``build``: time to build every model and its sample library at a scale (fresh, into a scratch dir).
- ``serving``: the server vs the same model called in-process on the same cores, at saturation and as QPS*
  under the SLA (against an ideal FCFS server replaying in-process service times).
- ``dispatch``: added latency of the in-node path for a 1-item query (round trip minus model time).
- ``dispatch-ceiling``: completed sub-batches/s of the whole harness (load generator, node, dispatch) with
  null workers, for several worker counts.
- ``memory``: RSS/PSS of N workers of one model: one copy of the tables plus a per-worker overhead.
- ``loadgen-agreement``: p95 from our open-loop driver vs MLPerf LoadGen at the same arrival rate.
- ``qps-repeatability``: the coefficient of variation of QPS* over independent complete determinations
  (service profile, model, confirmation), each with its own seeds.
- ``allocator``: one-worker service profiles in fresh processes, glibc's default heap against the steady one.
- ``des``: what the node model costs where the pipeline calls it (compiled event loop against the interpreter).
- ``model-agreement``: modelled vs confirmed-measured QPS* for every model at 1 and 2 workers, with its
  conditioning (how far QPS* moves per 1% of service time, and the error the trials' drift explains).
- ``conditioning``: the same conditioning over several finished runs' F2 points, and how often the model's max
  bar can be met given the pooled drifts, with no drift, and with a wall-like tail
  (:mod:`hera.report.conditioning`).
- ``sla-conditioning``: the node model's QPS* at the SLA each multiplier of the run's rule gives, its elasticity
  to the service time and its share of the saturation throughput (:mod:`hera.bench.conditioning`).
- ``pair-prediction``: predicted vs measured co-located QPS* per tenant, and EMU, over measured pairs (and the
  mean signed EMU error of each measured ray).
- ``runs``: the headline numbers of several complete pipeline runs and their spread (:mod:`hera.report.runs`).
- ``service-source``: F2 points of finished runs re-modelled from the stage's or a refreshed service profile,
  with and without the operating-point probe (:mod:`hera.report.service_source`).
- ``sla-rules``: the SLA's base by rule (pooled p99 vs the sizes' medians) in finished runs' service samples,
  and its spread between runs (:mod:`hera.report.sla_rules`).
"""

from hera.bench.cli import register

__all__ = ["register"]
