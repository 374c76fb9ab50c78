"""Where things live on disk, relative to the repository root (overridable with ``HERA_ROOT``)."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The repository root: ``$HERA_ROOT`` if set, else the parent of the ``hera`` package."""
    env = os.environ.get("HERA_ROOT")
    return Path(env).resolve() if env else Path(__file__).resolve().parent.parent


def models_dir() -> Path:
    """Tracked model specs: ``models/<id>.yaml``."""
    return repo_root() / "models"


def build_dir(scale: str) -> Path:
    """Built (ignored) model weights and metadata: ``models/build/<scale>/``."""
    return models_dir() / "build" / scale


def datasets_dir(scale: str) -> Path:
    """Generated (ignored) sample libraries and traces: ``datasets/<scale>/``."""
    return repo_root() / "datasets" / scale


def results_dir(scale: str) -> Path:
    """Run results (ignored except ``results/reference``): ``results/<scale>/``."""
    return repo_root() / "results" / scale


def meta_locality_dir() -> Path:
    """Tracked third-party reference data: Meta's 2021 embedding-row reuse statistics with their licence and
    provenance, ``datasets/meta-locality-2021/``."""
    return repo_root() / "datasets" / "meta-locality-2021"
