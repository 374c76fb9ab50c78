"""Workloads: query sizes, arrivals, sparse ids, sample libraries and the Criteo reader (docs/METHOD.md §4).

Submodules (import them directly; this package imports nothing heavy):

* :mod:`hera.workload.sizes` — ``QuerySizes(kind, max_items, **params).sample(n, rng)``
* :mod:`hera.workload.arrivals` — ``poisson(rate_qps, n, rng)``, ``time_varying(rate, duration_s, rng)``
* :mod:`hera.workload.sparse` — ``make_generator(kind, **params).generate(rows, size, rng)``
* :mod:`hera.workload.locality` — Meta's reuse statistics, reuse histograms, calibration
* :mod:`hera.workload.library` — ``build_library(...)``, ``SampleLibrary.open(dir)``
* :mod:`hera.workload.criteo` — Criteo display-advertising TSV → DLRM inputs

``hera.workload`` never imports ``hera.zoo`` (docs/DESIGN.md); model specs are passed in duck-typed.
"""
