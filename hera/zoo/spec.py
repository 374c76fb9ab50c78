"""Declarative model specs: ``models/<id>.yaml`` → validated, scaled :class:`ModelSpec`.

A spec file describes one DeepRecSys model at ``paper`` scale (docs/METHOD.md §3). It is validated strictly
against :data:`SCHEMA` (JSON schema: unknown keys, wrong types and non-positive sizes are errors) and
then against per-kind rules; every problem raises :class:`hera.errors.SpecError` with a one-line
message naming the file and the key. Scale presets (docs/DESIGN.md "Scales") shrink only the rows of
each table and, at ``ci``, the history length of DIN/DIEN:

========  ================================  ================
scale     rows of each table                history (DIN/DIEN)
========  ================================  ================
ci        ``min(rows, 2000)``               ``min(history, 20)``
default   ``max(2000, round(rows * 0.05))`` as paper
paper     exact                             exact
========  ================================  ================

Table entries may use ``count: N`` (N identical tables named ``<name>_00 ..``) and the word
``history`` in place of a number for ``count`` or ``lookups``: DIN's behaviour table has
``lookups: history`` (one sequence feature of ``history`` ids), DIEN's behaviour is ``count:
history`` step tables of one id each, exactly as DeepRecSys' DIEN (one table per step).

This module imports neither torch nor torchrec.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from hera.errors import SpecError, UnknownModelError
from hera.paths import models_dir

SCALES = ("ci", "default", "paper")
KINDS = ("dlrm", "ncf", "wnd", "mtwnd", "din", "dien")
INTERACTIONS = ("cat", "dot")
CI_MAX_ROWS = 2000
CI_HISTORY = 20
DEFAULT_ROW_FRACTION = 0.05
DEFAULT_MIN_ROWS = 2000

_POSINT = {"type": "integer", "minimum": 1}
_POSINT_OR_HISTORY = {"oneOf": [_POSINT, {"const": "history"}]}
_LAYERS = {"type": "array", "items": _POSINT}

#: JSON schema of one ``models/<id>.yaml`` file.
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["model_id", "kind", "dense_in", "top_mlp", "tables"],
    "properties": {
        "model_id": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
        "kind": {"enum": list(KINDS)},
        "description": {"type": "string"},
        "source": {"type": "string"},
        "dense_in": {"type": "integer", "minimum": 0},
        "bottom_mlp": _LAYERS,
        "top_mlp": {**_LAYERS, "minItems": 1},
        "interaction": {"enum": list(INTERACTIONS)},
        "history": _POSINT,
        "tasks": _POSINT,
        "task_mlp": {**_LAYERS, "minItems": 1},
        "attention_mlp": {**_LAYERS, "minItems": 1},
        "gru_hidden": _POSINT,
        "tables": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "rows", "dim", "lookups"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                    "rows": _POSINT,
                    "dim": _POSINT,
                    "lookups": _POSINT_OR_HISTORY,
                    "count": _POSINT_OR_HISTORY,
                    "pooled": {"type": "boolean"},
                },
            },
        },
    },
}

#: Keys that only make sense for some kinds.
_KIND_ONLY = {
    "history": ("din", "dien"),
    "tasks": ("mtwnd",),
    "task_mlp": ("mtwnd",),
    "attention_mlp": ("din",),
    "gru_hidden": ("dien",),
}
#: Keys a caller may override in :func:`load_spec` (``rows`` replaces every table's scaled rows).
OVERRIDABLE = ("interaction", "history", "tasks", "dense_in", "bottom_mlp", "top_mlp", "task_mlp",
               "attention_mlp", "gru_hidden", "rows")


@dataclass(frozen=True)
class TableSpec:
    """One embedding table: ``rows x dim`` float32, ``lookups`` ids per item.

    ``pooled`` tables are summed per item (``EmbeddingBagCollection``); sequence tables
    (``pooled=False``) keep one vector per id (``EmbeddingCollection``).
    """

    name: str
    rows: int
    dim: int
    lookups: int
    pooled: bool = True

    def bytes(self, bytes_per_row: int | None = None) -> int:
        """Bytes of the table (fp32 rows unless ``bytes_per_row`` is given)."""
        return self.rows * (self.dim * 4 if bytes_per_row is None else bytes_per_row)


@dataclass(frozen=True)
class ModelSpec:
    """A validated model at one scale (rows already scaled).

    ``extra`` holds kind-specific settings: ``history`` (DIN/DIEN), ``tasks`` and ``task_mlp``
    (MT-WnD), ``attention_mlp`` (DIN), ``gru_hidden`` (DIEN), ``description`` and ``source``.
    """

    model_id: str
    kind: str
    dense_in: int
    bottom_mlp: list[int]
    top_mlp: list[int]
    tables: list[TableSpec]
    interaction: str
    n_outputs: int
    extra: dict[str, Any] = field(default_factory=dict)
    scale: str = "paper"

    # ------------------------------------------------------------------ derived quantities
    @property
    def pooled_tables(self) -> list[TableSpec]:
        return [t for t in self.tables if t.pooled]

    @property
    def sequence_tables(self) -> list[TableSpec]:
        return [t for t in self.tables if not t.pooled]

    @property
    def feature_names(self) -> list[str]:
        """KeyedJaggedTensor keys: one feature per table, named like the table, in spec order."""
        return [t.name for t in self.tables]

    @property
    def lookups_per_item(self) -> int:
        """``L``: width of the ids array of a sample library (sum of lookups over tables)."""
        return sum(t.lookups for t in self.tables)

    def id_limits(self) -> list[int]:
        """Exclusive upper bound of each ids column (the rows of the column's table)."""
        return [t.rows for t in self.tables for _ in range(t.lookups)]

    def embedding_bytes(self, bytes_per_row: Mapping[str, int] | None = None) -> int:
        """Bytes of all tables (fp32 unless per-table row sizes are given)."""
        return sum(t.bytes(None if bytes_per_row is None else bytes_per_row[t.name]) for t in self.tables)

    def emb_bytes_gathered_per_item(self, bytes_per_row: Mapping[str, int] | None = None) -> int:
        """Embedding bytes read per item: ``sum(lookups * row bytes)``."""
        return sum(t.lookups * (t.dim * 4 if bytes_per_row is None else bytes_per_row[t.name])
                   for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (stored in build metadata; :meth:`from_dict` inverts it)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelSpec":
        d = dict(d)
        d["tables"] = [TableSpec(**t) for t in d["tables"]]
        return cls(**d)


# ---------------------------------------------------------------------------------- scales
def scale_rows(rows: int, scale: str) -> int:
    """Rows of a table at a scale preset (docs/DESIGN.md "Scales")."""
    if scale == "paper":
        return rows
    if scale == "ci":
        return min(rows, CI_MAX_ROWS)
    if scale == "default":
        return max(DEFAULT_MIN_ROWS, int(rows * DEFAULT_ROW_FRACTION + 0.5))
    raise SpecError(f"unknown scale {scale!r}; known: {', '.join(SCALES)}")


def scale_history(history: int, scale: str) -> int:
    """DIN/DIEN history length at a scale preset (only ``ci`` shortens it)."""
    if scale not in SCALES:
        raise SpecError(f"unknown scale {scale!r}; known: {', '.join(SCALES)}")
    return min(history, CI_HISTORY) if scale == "ci" else history


# ---------------------------------------------------------------------------------- loading
def list_models(specs_dir: str | Path | None = None) -> list[str]:
    """Ids of every model spec (``models/*.yaml``), sorted."""
    root = Path(specs_dir) if specs_dir else models_dir()
    return sorted(p.stem for p in root.glob("*.yaml"))


def spec_path(model_id: str, specs_dir: str | Path | None = None) -> Path:
    """Path of ``models/<model_id>.yaml``; :class:`UnknownModelError` (listing known ids) if absent."""
    root = Path(specs_dir) if specs_dir else models_dir()
    path = root / f"{model_id}.yaml"
    if not path.is_file():
        known = ", ".join(list_models(root)) or "(none)"
        raise UnknownModelError(f"unknown model {model_id!r}; known: {known}")
    return path


@functools.lru_cache(maxsize=64)
def _read_yaml(path: str, mtime_ns: int) -> Any:
    try:
        return yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None


def load_spec(model_id: str, scale: str, *, overrides: Mapping[str, Any] | None = None,
              specs_dir: str | Path | None = None) -> ModelSpec:
    """Load, validate and scale ``models/<model_id>.yaml``.

    ``overrides`` replaces top-level keys before validation (see :data:`OVERRIDABLE`); the special
    key ``rows`` sets the rows of every table after scaling (tests and custom sizes).
    """
    path = spec_path(model_id, specs_dir)
    raw = _read_yaml(str(path), path.stat().st_mtime_ns)
    return parse_spec(copy.deepcopy(raw), scale, source=str(path), overrides=overrides)


def _where(err) -> str:
    return ".".join(str(p) for p in err.absolute_path) or "<top level>"


def _schema_message(err) -> str:
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        where = _where(err)
        return f"unknown key {extra[0]!r}" + ("" if where == "<top level>" else f" in {where}") + \
            f"; allowed: {', '.join(sorted(err.schema.get('properties', {})))}"
    if err.validator == "required":
        return f"{err.message} (at {_where(err)})"
    if err.validator == "oneOf":
        return f"key {_where(err)}: {err.instance!r} must be a positive integer or 'history'"
    return f"key {_where(err)}: {err.message}"


def parse_spec(raw: Any, scale: str, source: str = "<spec>",
               overrides: Mapping[str, Any] | None = None) -> ModelSpec:
    """Validate a spec mapping (as read from YAML) and return it scaled to ``scale``."""
    import jsonschema

    if scale not in SCALES:
        raise SpecError(f"unknown scale {scale!r}; known: {', '.join(SCALES)}")
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: must hold a mapping, not {type(raw).__name__}")
    rows_override = None
    if overrides:
        bad = sorted(set(overrides) - set(OVERRIDABLE))
        if bad:
            raise SpecError(f"{source}: override key {bad[0]!r} is not allowed; "
                            f"allowed: {', '.join(OVERRIDABLE)}")
        overrides = dict(overrides)
        rows_override = overrides.pop("rows", None)
        if rows_override is not None and (isinstance(rows_override, bool)
                                          or not isinstance(rows_override, int) or rows_override < 1):
            raise SpecError(f"{source}: override key 'rows' must be a positive integer, "
                            f"not {rows_override!r}")
        raw.update(overrides)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = sorted(validator.iter_errors(raw), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    if errors:
        raise SpecError(f"{source}: {_schema_message(errors[0])}")

    def fail(key: str, msg: str) -> SpecError:
        return SpecError(f"{source}: key {key}: {msg}")

    stem = Path(source).stem
    if source.endswith(".yaml") and raw["model_id"] != stem:
        raise fail("model_id", f"{raw['model_id']!r} does not match the file name {stem!r}")
    kind = raw["kind"]
    for key, kinds in _KIND_ONLY.items():
        if key in raw and kind not in kinds:
            raise fail(key, f"only valid for kind {' or '.join(kinds)}, not {kind}")
    if kind in ("din", "dien") and "history" not in raw:
        raise fail("history", f"required for kind {kind}")
    history = scale_history(raw["history"], scale) if "history" in raw else None

    tables: list[TableSpec] = []
    for i, t in enumerate(raw["tables"]):
        def value(key: str) -> int:
            v = t.get(key, 1)
            if v == "history":
                if history is None:
                    raise fail(f"tables.{i}.{key}", "'history' needs a top-level history key")
                return history
            return v

        count, lookups = value("count"), value("lookups")
        rows = scale_rows(t["rows"], scale) if rows_override is None else rows_override
        pooled = t.get("pooled", True)
        names = [t["name"]] if "count" not in t else [f"{t['name']}_{k:02d}" for k in range(count)]
        tables += [TableSpec(name, rows, t["dim"], lookups, pooled) for name in names]
    seen: set[str] = set()
    for t in tables:
        if t.name in seen:
            raise fail("tables", f"duplicate table name {t.name!r}")
        seen.add(t.name)

    extra = {k: raw[k] for k in ("description", "source", "tasks", "task_mlp", "attention_mlp", "gru_hidden")
             if k in raw}
    if history is not None:
        extra["history"] = history
    interaction = raw.get("interaction", "cat")
    bottom = list(raw.get("bottom_mlp", []))
    top = list(raw["top_mlp"])
    n_outputs = 1
    _check_kind(kind, raw, tables, bottom, top, interaction, fail)
    if kind == "mtwnd":
        extra.setdefault("tasks", 3)
        n_outputs = extra["tasks"]
    return ModelSpec(model_id=raw["model_id"], kind=kind, dense_in=raw["dense_in"], bottom_mlp=bottom,
                     top_mlp=top, tables=tables, interaction=interaction, n_outputs=n_outputs, extra=extra,
                     scale=scale)


def _check_kind(kind: str, raw: dict, tables: list[TableSpec], bottom: list[int], top: list[int],
                interaction: str, fail) -> None:
    """Per-kind architectural rules (shapes that must agree for the module to be buildable)."""
    pooled = [t for t in tables if t.pooled]
    seq = [t for t in tables if not t.pooled]
    if interaction == "dot" and kind != "dlrm":
        raise fail("interaction", f"'dot' is only available for kind dlrm, not {kind}")
    if seq and kind not in ("din", "dien"):
        raise fail("tables", f"sequence tables (pooled: false) are only valid for din/dien, not {kind}")
    if kind != "dlrm" and bottom:
        raise fail("bottom_mlp", f"kind {kind} has no bottom MLP (dense features join the top MLP)")
    if kind == "dlrm":
        if not bottom:
            raise fail("bottom_mlp", "kind dlrm needs a bottom MLP")
        if raw["dense_in"] < 1:
            raise fail("dense_in", "kind dlrm needs dense features")
        if interaction == "dot" and any(t.dim != bottom[-1] for t in tables):
            raise fail("interaction",
                       f"'dot' needs every table dim equal to the bottom MLP output {bottom[-1]}")
    if kind in ("dlrm", "wnd", "ncf") and top[-1] != 1:
        raise fail("top_mlp", f"the last layer of kind {kind} must have 1 unit, not {top[-1]}")
    if kind == "ncf":
        if len(tables) != 4 or len({t.dim for t in tables}) != 1:
            raise fail("tables",
                       "kind ncf needs exactly 4 tables of equal dim (GMF user/item, MLP user/item)")
        if raw["dense_in"] != 0:
            raise fail("dense_in", "kind ncf has no dense features (use 0)")
        if len(top) < 3:
            raise fail("top_mlp", "kind ncf needs tower layers, a fusion layer and a 1-unit output")
    if kind == "mtwnd":
        if raw.get("task_mlp", [1])[-1] != 1:
            raise fail("task_mlp", "the last layer of each task head must have 1 unit")
        if "task_mlp" not in raw:
            raise fail("task_mlp", "required for kind mtwnd")
    if kind in ("din", "dien"):
        if top[-1] != 2:
            raise fail("top_mlp", f"kind {kind} ends in a 2-way softmax (last layer 2 units), not {top[-1]}")
        names = [t.name for t in pooled]
        if "candidate" not in names:
            raise fail("tables", f"kind {kind} needs a pooled table named 'candidate' (the candidate item)")
        cand = next(t for t in pooled if t.name == "candidate")
        if not seq:
            raise fail("tables", f"kind {kind} needs a behaviour history (a table with pooled: false)")
        if any(t.dim != cand.dim for t in seq):
            raise fail("tables", "history tables must have the dim of the candidate table")
        if kind == "din" and len(seq) != 1:
            raise fail("tables", "kind din has exactly one history table (lookups: history)")
        if kind == "dien" and any(t.lookups != 1 for t in seq):
            raise fail("tables", "kind dien has one id per history step table (lookups: 1, count: history)")
        if kind == "dien" and "gru_hidden" not in raw:
            raise fail("gru_hidden", "required for kind dien")
        if kind == "din" and "attention_mlp" not in raw:
            raise fail("attention_mlp", "required for kind din")
