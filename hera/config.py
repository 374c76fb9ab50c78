"""Study configuration: one YAML file per scale, validated against ``workflow/schemas/config.schema.yaml``.

The same schema is used by Snakemake (``snakemake.utils.validate`` in ``workflow/rules/common.smk``) and by
the ``hera`` commands, so a wrong key fails at start with a message naming it, whichever entry point is used.
Defaults are filled in from the schema.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

import yaml

from hera.errors import ConfigError
from hera.paths import repo_root


def schema_path() -> Path:
    return repo_root() / "workflow" / "schemas" / "config.schema.yaml"


@functools.lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return yaml.safe_load(schema_path().read_text())


def _fill_defaults(schema: dict[str, Any], value: Any) -> Any:
    if schema.get("type") != "object" or not isinstance(value, dict):
        return value
    for key, sub in schema.get("properties", {}).items():
        if key not in value and "default" in sub:
            value[key] = copy.deepcopy(sub["default"])
        if key in value:
            value[key] = _fill_defaults(sub, value[key])
    return value


def _message(err) -> str:
    where = ".".join(str(p) for p in err.absolute_path) or "<top level>"
    if err.validator == "additionalProperties":
        return f"config key {where}: {err.message}"
    return f"config key {where}: {err.message}"


def validate(config: dict[str, Any]) -> dict[str, Any]:
    """Validate a study config and return a copy with defaults filled in; raise :class:`ConfigError`."""
    import jsonschema

    config = copy.deepcopy(config)
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError(_message(errors[0]))
    config = _fill_defaults(_schema(), config)
    check_model_ids(config)
    visit_repeats(config, point_visits(config))
    return config


def point_visits(config: dict[str, Any]) -> int:
    """How many independent visits each measured F4 point takes (``colocation.visits``; 1: one sitting)."""
    return int((config.get("colocation") or {}).get("visits", 1))


def point_repeats(config: dict[str, Any]) -> int:
    """The repeats of one measured F4 ray point, over all its visits: ``colocation.repeats``, else
    ``confirm.repeats``."""
    n = (config.get("colocation") or {}).get("repeats")
    return int(config["confirm"]["repeats"] if n is None else n)


def visit_repeats(config: dict[str, Any], visits: int) -> int:
    """The repeats one of ``visits`` visits takes of each F4 point (:mod:`hera.profile.visits`): the point's
    repeats split evenly; a :class:`ConfigError` naming the keys where they do not split."""
    n = point_repeats(config)
    if visits < 1 or n % visits:
        key = "colocation.repeats" if (config.get("colocation") or {}).get("repeats") is not None else "confirm.repeats"
        raise ConfigError(f"config key colocation.visits: {visits} visits cannot split {key} = {n} repeats of a "
                          "point evenly (give a divisor of it)")
    return n // visits


def check_model_ids(config: dict[str, Any]) -> None:
    """Every id in ``models`` and ``colocation.models`` names a model spec in ``models/*.yaml`` (the zoo is
    the one list of model ids; the schema only checks the shape); :class:`ConfigError` naming the known ones."""
    from hera.zoo.spec import list_models

    known = list_models()
    lists = [("models", config.get("models") or [])]
    lists.append(("colocation.models", (config.get("colocation") or {}).get("models") or []))
    for key, ids in lists:
        for m in ids:
            if m not in known:
                raise ConfigError(f"config key {key}: unknown model {m!r}; known: {', '.join(known)}")


_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?")


def _scalar(types: list[str], text: str) -> Any:
    """``text`` as the first of the schema ``types`` it spells (integer, number, boolean), else unchanged."""
    t = text.strip()
    if "integer" in types and _INT.fullmatch(t):
        return int(t)
    if "number" in types and _FLOAT.fullmatch(t):
        return float(t) if not _INT.fullmatch(t) else int(t)
    if "boolean" in types and t.lower() in ("true", "false"):
        return t.lower() == "true"
    return text


def coerce_strings(config: dict[str, Any], schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """Turn strings into the numbers/booleans the schema expects, in place; return ``config``.

    Snakemake parses nested ``--config key='{...}'`` values with YAML's BaseLoader, so every scalar inside
    arrives as a string (``search='{"max_queries": 400}'`` gives ``"400"``); this undoes that where the
    schema asks for an integer, number or boolean, and leaves every other string alone.
    """

    def walk(node: dict[str, Any], value: Any) -> Any:
        alternatives = node.get("oneOf") or node.get("anyOf")
        if alternatives:  # e.g. cores: "auto" or a list of integers
            kind = "array" if isinstance(value, list) else "object" if isinstance(value, dict) else None
            if kind is not None:
                alt = next((a for a in alternatives if a.get("type") == kind), None)
                return walk(alt, value) if alt is not None else value
            node = {"type": [t for a in alternatives for t in ([a["type"]] if isinstance(a.get("type"), str)
                                                                  else a.get("type", []))]}
        types = node.get("type", [])
        types = [types] if isinstance(types, str) else list(types)
        if isinstance(value, str):
            return _scalar(types, value)
        if isinstance(value, dict):
            props = node.get("properties", {})
            extra = node.get("additionalProperties")
            for k in list(value):
                sub = props.get(k, extra if isinstance(extra, dict) else None)
                if sub is not None:
                    value[k] = walk(sub, value[k])
            return value
        if isinstance(value, list) and isinstance(node.get("items"), dict):
            return [walk(node["items"], v) for v in value]
        return value

    return walk(schema if schema is not None else _schema(), config)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=value`` → (["a", "b"], value parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value")
    key, raw = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(raw)


def load(path: str | Path | None = None, overrides: list[str] | None = None,
         base: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load a YAML/JSON study config, apply ``key.sub=value`` overrides, validate, fill defaults."""
    config: dict[str, Any] = copy.deepcopy(base) if base else {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping, not {type(loaded).__name__}")
        config.update(loaded)
    for item in overrides or []:
        keys, value = parse_override(item)
        node = config
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return validate(config)


def resolve_cores(config: dict[str, Any]) -> list[int]:
    """The study's worker CPUs, in plan order (:func:`hera.topology.study_plan`): one thread per physical
    core of the chosen socket(s), harness cores left out; ``cores: auto`` means every usable CPU."""
    from hera.topology import study_plan

    return list(study_plan(config).worker_cpus)


def dump(config: dict[str, Any], path: str | Path) -> Path:
    """Write a resolved config as JSON (what result files store as their config)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return path


# ---------------------------------------------------------------------------------------------- CLI
def register(sub) -> None:
    import argparse

    p = sub.add_parser("config", help="study configs: validate, fill defaults, write")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    w = csub.add_parser("write", help="validate a config given as JSON (as Snakemake passes it) and write it")
    w.add_argument("--json", required=True, help="the config as one JSON object")
    w.add_argument("--out", type=Path, required=True)
    w.set_defaults(func=_cmd_write)
    s = csub.add_parser("show", help="validate a config file (+ key=value overrides); print it with defaults")
    s.add_argument("configfile", type=Path)
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    s.set_defaults(func=_cmd_show)
    del argparse


def _cmd_write(args) -> int:
    try:
        raw = json.loads(args.json)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--json is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError("--json must hold a JSON object")
    print(dump(validate(raw), args.out))
    return 0


def _cmd_show(args) -> int:
    print(json.dumps(load(args.configfile, args.overrides), indent=2, sort_keys=True))
    return 0
