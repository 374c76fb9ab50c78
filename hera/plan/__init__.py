"""Cost estimator: how long the pipeline of a study config takes on a described machine (``hera plan``).

The estimate is a pure function of three inputs known before anything runs:

- the **machine description** (:mod:`hera.plan.inputs`): the file ``hera machine --out`` writes (cores, sockets,
  SMT siblings, memory, verified resctrl and LLC ways), turned into the study's real core plan by
  :mod:`hera.topology` — so the worker counts, the co-location splits and the cores of every stage are the ones
  the pipeline will use;
- the **study config** (validated by :mod:`hera.config`) and the **model specs** (FLOPs and embedding bytes
  gathered per item, table bytes, lookups: :mod:`hera.zoo`);
- **calibration constants** (:mod:`hera.plan.calibration`) measured on the development machine and documented
  there: per-kind compute rates and sub-batch overheads, gather bandwidth, process and node start-up, trials per
  confirmation.

:mod:`hera.plan.rates` turns a model spec into sub-batch service times, light-load latencies, capacity and an
expected QPS* per worker count (which sets how long a trial of ``confirm.min_queries`` queries lasts);
:mod:`hera.plan.stages` adds up each pipeline stage's jobs; :mod:`hera.plan.compare` reads Snakemake's
per-job benchmark files (``benchmarks/<scale>/``) and sets measured stage times beside the estimate.
"""

from hera.plan.calibration import Calibration
from hera.plan.inputs import MachineInfo, ModelCost, PlanError
from hera.plan.stages import Plan, StageEstimate, estimate

__all__ = ["Calibration", "MachineInfo", "ModelCost", "Plan", "PlanError", "StageEstimate", "estimate"]
