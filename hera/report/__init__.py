"""Figures and tables from result files only (layer 6): pandas in, files out.

- :mod:`hera.report.io`      read a results directory into validated tables (+ provenance sidecars)
- :mod:`hera.report.style`   one plotting style: fonts, a fixed colour per policy and per model, footers
- :mod:`hera.report.figures` one function per figure, F1..F8 (PDF + PNG)
- :mod:`hera.report.claims`  the T2 claims C1..C5 and their verdicts
- :mod:`hera.report.tables`  Markdown/CSV rendering of T1 and T2
- :mod:`hera.report.check`   ``python -m hera.report.check --scale S``: is every figure and table there?
- :mod:`hera.report.cli`     ``hera report figure|all|t2``

This package never imports torch, the zoo, the server, the load generator or the profiler: every figure
is a pure function of result files (tests/test_report_hygiene.py checks it).
"""
