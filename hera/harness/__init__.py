"""The measurement harness shared by profiling (``hera.profile``) and the serving experiments
(``hera.experiments``): it sits below both, so neither borrows the other's plumbing.

- :mod:`~hera.harness.nodes` — :class:`NodeOptions` (runner and data locations), :class:`TenantPlan` (one
  tenant of a node) and :func:`start_node` (a started :class:`hera.server.Node`, stopped on exit);
- :mod:`~hera.harness.streams` — one tenant's open-loop stream from the study config (:func:`loadgen_settings`)
  with one seed per source of randomness (:func:`derived_seed`);
- :mod:`~hera.harness.inputs` — study inputs: the SLAs from T1 (:func:`read_t1`), the study's cores
  (:func:`study_cores`) and core plan (:func:`study_plan`, :mod:`hera.topology`);
- :mod:`~hera.harness.cli` — the command-line options of every command that starts a node.
"""

from hera.harness.inputs import ProfileError, percentile_tag, read_csv_table, read_t1, study_cores, study_plan
from hera.harness.nodes import RUNNERS, NodeOptions, TenantPlan, node_config, start_node, tenant_name
from hera.harness.streams import derived_seed, loadgen_settings, query_sizes

__all__ = ["RUNNERS", "NodeOptions", "ProfileError", "TenantPlan", "derived_seed", "loadgen_settings",
           "node_config", "percentile_tag", "query_sizes", "read_csv_table", "read_t1", "start_node", "study_cores",
           "study_plan", "tenant_name"]
