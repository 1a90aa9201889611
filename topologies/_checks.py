"""Strict scalar checks shared by the configuration dataclasses.

Each helper returns the normalised value or raises :class:`TopologyError`
naming the field (wrap it in :meth:`Collector.check` to gather them all).  Booleans are never accepted as numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .errors import TopologyError, join_field


def _fmt(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def as_int(value: Any, field: str, *, min_value: int | None = None,
           max_value: int | None = None) -> int:
    """An integer (floats with an integral value are accepted)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TopologyError(f"must be an integer, got {_fmt(value)}", field)
    if isinstance(value, float):
        if not value.is_integer():
            raise TopologyError(f"must be an integer, got {value}", field)
        value = int(value)
    value = int(value)
    if min_value is not None and value < min_value:
        raise TopologyError(f"must be >= {min_value}, got {value}", field)
    if max_value is not None and value > max_value:
        raise TopologyError(f"must be <= {max_value}, got {value}", field)
    return value


def as_float(value: Any, field: str, *, gt: float | None = None,
             ge: float | None = None, le: float | None = None,
             lt: float | None = None) -> float:
    """A finite float within the given bounds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TopologyError(f"must be a number, got {_fmt(value)}", field)
    value = float(value)
    if not math.isfinite(value):
        raise TopologyError(f"must be finite, got {value}", field)
    if gt is not None and not value > gt:
        raise TopologyError(f"must be > {gt:g}, got {value:g}", field)
    if ge is not None and not value >= ge:
        raise TopologyError(f"must be >= {ge:g}, got {value:g}", field)
    if le is not None and not value <= le:
        raise TopologyError(f"must be <= {le:g}, got {value:g}", field)
    if lt is not None and not value < lt:
        raise TopologyError(f"must be < {lt:g}, got {value:g}", field)
    return value


def as_str(value: Any, field: str, *, choices: Mapping | tuple | None = None,
           nonempty: bool = True) -> str:
    """A string, optionally one of ``choices`` (a tuple or a registry dict)."""
    if not isinstance(value, str):
        raise TopologyError(f"must be a string, got {_fmt(value)}", field)
    if nonempty and not value.strip():
        raise TopologyError("must not be empty", field)
    if choices is not None and value not in choices:
        known = ", ".join(sorted(choices))
        raise TopologyError(f"unknown value {value!r} (known: {known})", field)
    return value


def as_bool(value: Any, field: str) -> bool:
    """A real boolean (no 0/1, no strings)."""
    if not isinstance(value, bool):
        raise TopologyError(f"must be true or false, got {_fmt(value)}", field)
    return value


def as_mapping(value: Any, field: str) -> Mapping:
    """A mapping with string keys."""
    if not isinstance(value, Mapping):
        raise TopologyError(f"must be a table/dict, got {type(value).__name__}", field)
    for key in value:
        if not isinstance(key, str):
            raise TopologyError(f"keys must be strings, got {key!r}", field)
    return value


def reject_unknown(data: Mapping, known, where: str | None) -> None:
    """Raise if ``data`` has keys outside ``known`` (one problem per unknown key)."""
    unknown = sorted(set(data) - set(known), key=str)
    if unknown:
        text = f"unknown key (known keys: {', '.join(sorted(known))})"
        raise TopologyError(problems=[(join_field(where, str(key)), text) for key in unknown])
