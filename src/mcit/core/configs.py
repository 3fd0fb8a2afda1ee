"""Typed configuration: dataclasses are the single source of defaults.

Every configurable part of mcit is a dataclass whose fields carry a type, a default and help text
(`option(...)`). This module turns plain data (parsed YAML, `key=value` strings from the command
line) into those dataclasses and back, refusing unknown keys, wrong types and out-of-range values
with one message that names the key and what is allowed.

Supported field types: bool, int, float, str, `Literal[...]`, `X | None`, `list[X]`,
`tuple[X, ...]`, unions of a scalar and a list (`float | list[float]`) and nested dataclasses.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from mcit.core.errors import UserError

_MISSING = dataclasses.MISSING


def option(default: Any = _MISSING, help: str = "", *, default_factory: Any = _MISSING,
           min: float | None = None, max: float | None = None, unconfirmed: bool = False) -> Any:
    """A dataclass field with help text and optional numeric bounds.

    `unconfirmed` marks a default that the method's paper does not pin down; `mcit methods` says so.
    """
    metadata = {"help": help, "min": min, "max": max, "unconfirmed": unconfirmed}
    if default_factory is not _MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


class ConfigError(UserError):
    """A configuration value that cannot be accepted."""


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return f"a list of {_type_name(args[0])}" if args else "a list"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _coerce_scalar(value: Any, tp: Any, key: str) -> Any:
    """Convert `value` (already parsed data or a command-line string) to the scalar type `tp`."""
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("false", "no", "off", "0"):
            return False
        raise ConfigError(f"config key '{key}': expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"config key '{key}': expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"config key '{key}': expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"config key '{key}': expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"config key '{key}': expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"config key '{key}': expected a string, got {value!r}")
    raise TypeError(f"unsupported config type {tp!r} for {key}")


def _split_list(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            parsed = yaml.safe_load(text)
            if isinstance(parsed, list):
                return parsed
        return [part.strip() for part in text.split(",") if part.strip()]
    return [value]


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert and validate `value` against the annotated type `tp`; `key` names it in errors."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}': expected a mapping of options, got {value!r}")
        return from_dict(tp, value, prefix=key)
    if origin is Literal:
        allowed = typing.get_args(tp)
        for choice in allowed:
            if value == choice or (isinstance(value, str) and str(choice) == value.strip()):
                return choice
        raise ConfigError(
            f"config key '{key}': {value!r} is not allowed; choose one of "
            + ", ".join(repr(a) for a in allowed))
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
            if type(None) in args:
                return None
        # Prefer a scalar reading of "0.1" over a one-element list; lists are tried afterwards.
        non_null = [a for a in args if a is not type(None)]
        ordered = sorted(non_null, key=lambda a: typing.get_origin(a) in (list, tuple))
        for arg in ordered:
            is_list = typing.get_origin(arg) in (list, tuple)
            if is_list and isinstance(value, str) and "," not in value and not value.strip().startswith("["):
                continue
            try:
                return coerce(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")
    if origin in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        items = _split_list(value)
        converted = [coerce(item, args[0], f"{key}[{i}]") if args else item for i, item in enumerate(items)]
        return tuple(converted) if origin is tuple else converted
    if tp is Any:
        return value
    return _coerce_scalar(value, tp, key)


def _check_bounds(field: dataclasses.Field, value: Any, key: str) -> None:
    lo, hi = field.metadata.get("min"), field.metadata.get("max")
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if lo is not None and v < lo:
                raise ConfigError(f"config key '{key}': {v} is below the minimum {lo}")
            if hi is not None and v > hi:
                raise ConfigError(f"config key '{key}': {v} is above the maximum {hi}")


def fields_of(cls: type) -> dict[str, dataclasses.Field]:
    """The dataclass fields of `cls` by name, with their annotations resolved to real types."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        f.type = hints[f.name]
        out[f.name] = f
    return out


def from_dict(cls: type, data: dict[str, Any] | None, prefix: str = "") -> Any:
    """Build the dataclass `cls` from `data`, refusing unknown keys and invalid values."""
    data = dict(data or {})
    fields = fields_of(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"'{prefix}.{unknown[0]}'" if prefix else f"'{unknown[0]}'"
        raise ConfigError(f"unknown config key {where}; allowed keys{' under ' + repr(prefix) if prefix else ''}: "
                          + ", ".join(sorted(fields)))
    kwargs = {}
    for name, field in fields.items():
        if name not in data:
            continue
        key = f"{prefix}.{name}" if prefix else name
        value = coerce(data[name], field.type, key)
        _check_bounds(field, value, key)
        kwargs[name] = value
    try:
        obj = cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"config section '{prefix or cls.__name__}': {exc}") from None
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate()
    return obj


def to_dict(obj: Any) -> Any:
    """The plain-data form of a config dataclass (for YAML and JSON)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def parse_override(text: str) -> tuple[list[str], str]:
    """Split a command-line `a.b.c=value` into its key path and its raw value string."""
    if "=" not in text:
        raise ConfigError(f"cannot read the override {text!r}: write it as key=value, e.g. train.lr=0.001")
    key, value = text.split("=", 1)
    key = key.strip()
    if not key or any(not part.strip() for part in key.split(".")):
        raise ConfigError(f"cannot read the override {text!r}: the key before '=' is empty or malformed")
    return key.split("."), value


def set_path(data: dict[str, Any], path: list[str], value: Any) -> None:
    """Set `data[path[0]][path[1]]... = value`, creating mappings on the way."""
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {} if child is None or not isinstance(child, dict) else child
            node[part] = child
        node = child
    node[path[-1]] = value


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping safely (no object construction), with a clear error on bad files."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: config file not found; check the path") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: config file is not UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read the config file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise UserError(f"{path}: malformed YAML{where}: {problem}; fix the file's syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of config keys at the top level, got {type(data).__name__}")
    return data


def describe_fields(cls: type) -> list[tuple[str, str, Any, str]]:
    """(name, type, default, help) for each field of a config dataclass, for listings."""
    rows = []
    for name, field in fields_of(cls).items():
        if field.default is not _MISSING:
            default = field.default
        elif field.default_factory is not _MISSING:  # type: ignore[misc]
            default = field.default_factory()  # type: ignore[misc]
        else:
            default = None
        help_text = field.metadata.get("help", "")
        if field.metadata.get("unconfirmed"):
            help_text += " (default unconfirmed by the paper)"
        rows.append((name, _type_name(field.type), to_dict(default), help_text))
    return rows
