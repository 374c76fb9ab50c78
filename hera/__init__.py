"""Hera artifact: a heterogeneity-aware multi-tenant inference server for recommendation models.

A reimplementation of Choi, Kim, Rhu, "Hera" (arXiv 2302.11750) on TorchRec. See README.md and docs/DESIGN.md.
"""

__version__ = "0.1.0"
