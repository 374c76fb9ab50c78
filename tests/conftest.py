"""Shared fixtures. Tests never write into the repository's models/build, datasets/ or results/."""

from __future__ import annotations

import os

import fakes
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture()
def fake_sys(tmp_path):
    """A fake sysfs tree: 4 logical CPUs on 2 cores (SMT), 1 socket, a 16-way 32 MiB L3."""
    return fakes.sysfs(tmp_path / "sys", sockets=1, cores=2, smt=2, llc_ways=16)


@pytest.fixture()
def fake_resctrl(tmp_path):
    """A fake mounted resctrl tree with 11 L3 ways, 16 CLOSIDs and memory-bandwidth allocation (Intel:
    percent, granularity 10)."""
    return fakes.resctrl(tmp_path / "resctrl", "intel")
