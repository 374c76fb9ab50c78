"""Where a built model lives and what its metadata says: the on-disk layout shared by building
(:mod:`hera.zoo.build`) and loading (:mod:`hera.zoo.load`), so neither imports the other's internals.

``<root>/<model_id>[-q8]/meta.json`` (``root`` defaults to ``models/build/<scale>``); a build of another
:data:`FORMAT_VERSION` counts as not built.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hera.errors import NotBuiltError
from hera.paths import build_dir
from hera.zoo.spec import ModelSpec

FORMAT_VERSION = 1


def model_dir(model_id: str, scale: str, quantized: bool = False, root: str | Path | None = None) -> Path:
    """``<root>/<model_id>[-q8]`` with ``root`` defaulting to ``models/build/<scale>``."""
    base = Path(root) if root is not None else build_dir(scale)
    return base / (model_id + ("-q8" if quantized else ""))


def read_metadata(model_id: str, scale: str, quantized: bool = False, root: str | Path | None = None
                  ) -> dict[str, Any] | None:
    """The ``meta.json`` of a build, or ``None`` when it is not built."""
    path = model_dir(model_id, scale, quantized, root) / "meta.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def is_built(model_id: str, scale: str, quantized: bool = False, seed: int | None = None,
             root: str | Path | None = None, spec: ModelSpec | None = None) -> bool:
    """Whether a build exists (with this seed and spec, when given)."""
    meta = read_metadata(model_id, scale, quantized, root)
    if meta is None or meta.get("format_version") != FORMAT_VERSION:
        return False
    if seed is not None and meta.get("seed") != seed:
        return False
    return spec is None or meta.get("spec") == json.loads(json.dumps(spec.to_dict()))


def read_built_metadata(model_id: str, scale: str, quantized: bool = False, root: str | Path | None = None
                        ) -> dict[str, Any]:
    """``meta.json`` of a build; :class:`NotBuiltError` when missing or from another format version."""
    d = model_dir(model_id, scale, quantized, root)
    path = d / "meta.json"
    variant = "int8" if quantized else "fp32"
    if not path.is_file():
        raise NotBuiltError(
            f"model {model_id} ({variant}, scale {scale}) is not built in {d.parent}; run "
            f"`hera models build --scale {scale} --models {model_id}{' --quantized' if quantized else ''}`"
        )
    meta = json.loads(path.read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise NotBuiltError(f"model {model_id} ({variant}, scale {scale}) was built by another version of "
                            f"hera (format {meta.get('format_version')}, need {FORMAT_VERSION}); "
                            "rebuild it with --force")
    return meta


def built_spec(model_id: str, scale: str, quantized: bool = False,
               root: str | Path | None = None) -> ModelSpec:
    """The spec a build was made from (rows as built, including any overrides)."""
    return ModelSpec.from_dict(read_built_metadata(model_id, scale, quantized, root)["spec"])
