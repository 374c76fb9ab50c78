"""Interference profiles, O(N): each model's *sensitivity* to memory pressure and the *pressure* it exerts, on
one scale (the Bubble-Up method of Mars et al., MICRO 2011, extended to the cache dimension and to the worker
count), measured through the serving path.

- :mod:`~hera.profile.interference.sensitivity`: sub-batch service-time inflation next to each antagonist kind
  and intensity (light and saturated regimes), against bracketing baselines;
- :mod:`~hera.profile.interference.pressure`: a fixed reporter's slowdown next to the model's w workers at
  load fraction u, converted to an *equivalent intensity* by the study's calibration curve;
- :mod:`~hera.profile.interference.calibration`: that curve (reporter slowdown vs antagonist intensity), once
  per study;
- :mod:`~hera.profile.interference.table`: the table schemas and the pure reader the pair predictor uses
  (:func:`~hera.profile.interference.table.inflation`,
  :func:`~hera.profile.interference.table.equivalent_intensity`);
- :mod:`~hera.profile.interference.stats`: the estimators (stratified cluster bootstrap, isotonic calibration
  and its inverse); :mod:`~hera.profile.interference.load`: background load and the reporter;
  :mod:`~hera.profile.interference.settings`: settings and cores; :mod:`~hera.profile.interference.stage`: the
  per-model stage.

:func:`load_interference` (paths of tables, optional calibration) gives the pair predictor
(:mod:`hera.profile.pair_prediction`) an :class:`InterferenceProfiles`. Importing this package imports pandas and
numpy only (no torch, no server).
"""

from hera.profile.interference.table import InterferenceProfiles, load_interference

__all__ = ["InterferenceProfiles", "load_interference"]
