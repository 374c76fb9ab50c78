"""A queueing model of one node (pure functions: numpy only, no server, no torch).

- :mod:`hera.queueing.service`: :class:`ServiceLaw`, the measured sub-batch service times of one tenant (per
  sub-batch size, at light load and at saturation), the dispatch delay and the gap between sub-batches;
- :mod:`hera.queueing.des`: a discrete-event simulation of exactly what the node does — arrivals (Poisson or
  any trace), queries split into sub-batches of ``batch_size`` items, FCFS onto ``w`` workers, a query done at
  its last sub-batch — vectorised over many *lanes* (rates × bootstrap replicates) at once;
- :mod:`hera.queueing.qps`: latency quantiles vs rate and a modelled QPS* with a bootstrap confidence interval;
- :mod:`hera.queueing.closed_forms`: M/D/1 and M/M/c formulas the simulation is tested against.
"""
