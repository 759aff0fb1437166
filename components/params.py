"""Typed hyperparameters: a frozen dataclass per topic, overridden as ``name=value`` strings.

Each field carries its help text and, for a number, its range (declared beside the default in
``help_field``) in its metadata, so `dlx list` shows both and every way a value arrives (a flag,
a pipeline's JSON, a SageMaker hyperparameter) is checked against the same range. Supported
field types: int, float, str, bool, Literal[...] choices and tuple[T, ...] (written ``512,512``;
a range applies to each item). A dataclass checks what spans several fields in ``__post_init__``
by raising ValueError; that becomes a DlxError naming the parameter.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from components.errors import DlxError

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def help_field(default: Any, help: str, *, factory: bool = False, at_least: float | None = None,
               above: float | None = None, at_most: float | None = None, below: float | None = None) -> Any:
    """A dataclass field with a default, a one-line help text and, for numbers, the values it
    accepts: ``at_least``/``at_most`` are inclusive bounds, ``above``/``below`` exclusive ones."""
    bounds = {name: value for name, value in (("at_least", at_least), ("above", above), ("at_most", at_most),
                                              ("below", below)) if value is not None}
    metadata = {"help": help, **({"range": bounds} if bounds else {})}
    if factory:
        return dataclasses.field(default_factory=default, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def range_text(bounds: Mapping[str, float]) -> str:
    """A range as `dlx list` shows it: ``>= 1``, ``> 0``, ``[0, 1)``; empty when unbounded."""
    low = ("[", bounds["at_least"]) if "at_least" in bounds else ("(", bounds["above"]) if "above" in bounds else None
    high = (bounds["at_most"], "]") if "at_most" in bounds else (bounds["below"], ")") if "below" in bounds else None
    if low and high:
        return f"{low[0]}{_number(low[1])}, {_number(high[0])}{high[1]}"
    if low:
        return f"{'>=' if low[0] == '[' else '>'} {_number(low[1])}"
    if high:
        return f"{'<=' if high[1] == ']' else '<'} {_number(high[0])}"
    return ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _in_range(value: Any, bounds: Mapping[str, float]) -> bool:
    items = value if isinstance(value, (tuple, list)) else (value,)
    checks = {"at_least": lambda v, b: v >= b, "above": lambda v, b: v > b, "at_most": lambda v, b: v <= b,
              "below": lambda v, b: v < b}
    return all(checks[kind](item, bound) for item in items for kind, bound in bounds.items())


def type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "|".join(str(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"{type_name(typing.get_args(tp)[0])},..."
    return getattr(tp, "__name__", str(tp))


def parse_value(text: str, tp: Any) -> Any:
    """Parse one command-line string to ``tp``; raises ValueError with a readable reason."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        if text not in choices:
            raise ValueError(f"choose one of {', '.join(map(str, choices))}")
        return text
    if origin is tuple:
        item_type = typing.get_args(tp)[0]
        items = [part.strip() for part in text.split(",") if part.strip()]
        if not items:
            raise ValueError("expected a comma-separated list")
        return tuple(parse_value(item, item_type) for item in items)
    if tp is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError("expected true or false")
    if tp in (int, float, str):
        try:
            value = tp(text)
        except ValueError:
            raise ValueError(f"expected {tp.__name__}") from None
        return _finite(value)
    raise TypeError(f"unsupported parameter type {tp!r}")


def _fields(cls: type) -> dict[str, tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls, include_extras=False)
    return {f.name: (f, hints[f.name]) for f in dataclasses.fields(cls)}


def parameter_types(cls: type) -> dict[str, Any]:
    """Each parameter's type, by name."""
    return {name: tp for name, (_, tp) in _fields(cls).items()}


def _build(cls: type, values: dict[str, Any], what: str) -> Any:
    fields = _fields(cls)
    for name, value in values.items():
        bounds = fields[name][0].metadata.get("range")
        if bounds and not _in_range(value, bounds):
            shown = format_value(value)
            each = "each item " if isinstance(value, (tuple, list)) else ""
            raise DlxError(f"bad value {shown} for parameter {name} of {what}: {each}must be {range_text(bounds)}; "
                           "see `dlx list` for every parameter's range")
    try:
        return cls(**values)
    except ValueError as exc:
        raise DlxError(f"bad parameter for {what}: {exc}") from None


def override(cls: type, overrides: Iterable[str] | Mapping[str, str], what: str) -> Any:
    """Defaults of ``cls`` with ``name=value`` overrides applied; ``what`` names the topic in errors."""
    pairs = overrides.items() if isinstance(overrides, Mapping) else map(split_pair, overrides)
    known = _fields(cls)
    values: dict[str, Any] = {}
    for name, text in pairs:
        if name not in known:
            raise DlxError(f"unknown parameter '{name}' for {what}; valid parameters: {', '.join(known)}")
        tp = known[name][1]
        try:
            values[name] = parse_value(text, tp)
        except ValueError as exc:
            raise DlxError(f"bad value '{text}' for parameter {name} ({type_name(tp)}) of {what}: {exc}") from None
    return _build(cls, values, what)


def split_pair(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name.strip():
        raise DlxError(f"bad --param '{item}': write it as NAME=VALUE, e.g. epochs=5")
    return name.strip(), value.strip()


def format_value(value: Any) -> str:
    """A parameter's value as the command-line string ``parse_value`` reads back."""
    if isinstance(value, (tuple, list)):
        return ",".join(map(format_value, value))
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def from_values(cls: type, base: Any, values: Mapping[str, Any], what: str) -> Any:
    """``base`` with some parameters replaced by name; each value is a command-line string (as
    SageMaker passes hyperparameters) or a JSON value (as a pipeline argument)."""
    types = parameter_types(cls)
    given = {}
    for name, value in values.items():
        if isinstance(value, str) and name in types:
            try:
                value = parse_value(value, types[name])
            except ValueError as exc:
                raise DlxError(f"bad value '{value}' for parameter {name} ({type_name(types[name])}) of {what}: "
                               f"{exc}") from None
        given[name] = list(value) if isinstance(value, tuple) else value
    return from_dict(cls, {**to_dict(base), **given}, what)


def to_dict(params: Any) -> dict[str, Any]:
    """JSON-ready values (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(params).items()}


def from_dict(cls: type, data: Mapping[str, Any], what: str) -> Any:
    """Rebuild params from JSON (params.json or a pipeline argument), checking names and types."""
    known = _fields(cls)
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise DlxError(f"unknown parameter '{unknown[0]}' for {what}; valid parameters: {', '.join(known)}")
    values = {}
    for name, value in data.items():
        tp = known[name][1]
        try:
            values[name] = _from_json(value, tp)
        except ValueError as exc:
            raise DlxError(f"bad value {value!r} for parameter {name} ({type_name(tp)}) of {what}: {exc}") from None
    return _build(cls, values, what)


def _from_json(value: Any, tp: Any) -> Any:
    """A JSON value as ``tp``; ints may stand for floats, nothing else is converted."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ValueError(f"choose one of {', '.join(map(str, typing.get_args(tp)))}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError("expected a non-empty list")
        return tuple(_from_json(item, typing.get_args(tp)[0]) for item in value)
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)  # a pipeline's JSON numbers lose the difference (protobuf has one number type)
    accepted = (int, float) if tp is float else (tp,)
    if not isinstance(value, accepted) or (isinstance(value, bool) and tp is not bool):
        raise ValueError(f"expected {tp.__name__}")
    return _finite(float(value)) if tp is float else value


def _finite(value: Any) -> Any:
    """nan and inf are floats, but no parameter means them: refused where every value is parsed."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


def describe(cls: type) -> list[tuple[str, str, str, str, str]]:
    """(name, type, range, default, help) for every field, for listings."""
    defaults = cls()
    rows = []
    for name, (f, tp) in _fields(cls).items():
        value = getattr(defaults, name)
        rows.append((name, type_name(tp), range_text(f.metadata.get("range", {})), format_value(value),
                     f.metadata.get("help", "")))
    return rows


def differences(defaults: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` (a params dict) that differ from the ``defaults`` params."""
    reference = to_dict(defaults)
    return {k: v for k, v in values.items() if reference.get(k) != v}
