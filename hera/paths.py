"""Where things live on disk, relative to the repository root (overridable with ``HERA_ROOT``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


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


def read_json(path: str | Path, what: str, error: type[Exception], hint: str = "") -> Any:
    """The JSON document at ``path``; ``error`` with one line naming ``what`` and the path when the file is
    missing (plus ``hint``, e.g. the command that writes it) or not valid JSON."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} does not exist" + (f" ({hint})" if hint else ""))
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise error(f"{what} {path} is not valid JSON: {str(exc).splitlines()[0]}") from None
