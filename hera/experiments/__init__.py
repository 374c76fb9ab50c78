"""Experiments on the real server under load (layer 5½: uses the server, load generator, policies, managers).

- :mod:`~hera.experiments.plans` — read ``policy/plans.json`` and choose what each experiment deploys;
- :mod:`~hera.experiments.serving` — nodes from plans, load streams, the managers' control API over a node;
- :mod:`~hera.experiments.latency_vs_load` — F6: tail latency vs offered load per policy;
- :mod:`~hera.experiments.load_change` — F7 / C5: changing load with Hera's manager, PARTIES, and static;
- :mod:`~hera.experiments.cli` — ``hera experiment latency-vs-load | load-change``.

The policy comparisons on profiles (``hera policy evaluate``, ``hera cluster provision``) live in
:mod:`hera.policy_cli`. The report layer reads the tables these write; it never imports this package.
"""
