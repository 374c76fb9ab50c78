"""Shared helpers for the load-generator tests (no tests here).

``ensure_workload()`` installs a small stand-in for each of ``hera.workload.sizes`` /
``hera.workload.arrivals`` (the DESIGN.md interface) that is still missing; real modules are used as
soon as they exist.
"""

from __future__ import annotations

import importlib
import sys
import types

import numpy as np


class _QuerySizes:
    def __init__(self, kind, max_items, **params):
        self.kind, self.max_items, self.params = kind, max_items, params

    def sample(self, n, rng):
        if self.kind == "fixed":
            v = np.full(n, self.params.get("items", self.params.get("n_items", 200)))
        elif self.kind == "production":
            q = np.array([100, 100] + [200] * 12 + [300, 300, 400, 500, 600, 700])
            v = q[rng.integers(0, 20, n)]
        else:
            raise ValueError(self.kind)
        return np.minimum(v, self.max_items).astype(np.int64)


def _poisson(rate_qps, n, rng):
    return np.cumsum(rng.exponential(1.0 / rate_qps, n))


def _time_varying(rate_fn, duration_s, rng):
    lmax = float(np.max(rate_fn(np.linspace(0, duration_s, 1001))))
    t = np.cumsum(rng.exponential(1.0 / lmax, int(lmax * duration_s * 2 + 20)))
    t = t[t <= duration_s]
    return t[rng.random(t.size) < rate_fn(t) / lmax]


def ensure_workload() -> list[str]:
    """Names of the modules that had to be stood in for."""
    try:
        pkg = importlib.import_module("hera.workload")
    except ImportError:
        pkg = types.ModuleType("hera.workload")
        pkg.__path__ = []
        sys.modules["hera.workload"] = pkg
    stubbed = []
    for name, attrs in (("sizes", {"QuerySizes": _QuerySizes}),
                        ("arrivals", {"poisson": _poisson, "time_varying": _time_varying})):
        full = f"hera.workload.{name}"
        try:
            importlib.import_module(full)
            continue
        except ImportError:
            pass
        mod = types.ModuleType(full)
        for k, v in attrs.items():
            setattr(mod, k, v)
        sys.modules[full] = mod
        setattr(pkg, name, mod)
        stubbed.append(full)
    return stubbed


FIXED1 = {"kind": "fixed", "items": 1}
