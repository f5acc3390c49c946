"""How a record crosses a boundary: from a database row, to and from an event file's arguments."""

from __future__ import annotations

import dataclasses
import functools
import os
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

#: a path as records carry it (written as text)
PathText = str | os.PathLike[str]

R = TypeVar("R", bound="DataclassInstance")


@functools.cache
def field_names(cls: type[DataclassInstance]) -> tuple[str, ...]:
    """The field names of a record class (cached: rows are converted by the thousand)."""
    return tuple(f.name for f in dataclasses.fields(cls))


def row_record(cls: type[R], row: Mapping[str, Any]) -> R:
    """The record of class ``cls`` from a database row: its columns by field name, others left out."""
    return cls(**{name: row[name] for name in field_names(cls) if name in row})


def as_args(record: Any) -> dict[str, Any]:
    """A record as the keyword arguments of an event-file line (nested records as objects)."""
    return {f.name: _as_value(getattr(record, f.name)) for f in dataclasses.fields(record)}


def _as_value(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return as_args(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


@functools.cache
def _hints(cls: type[DataclassInstance]) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_args(cls: type[R], args: dict[str, Any]) -> R:
    """The record of class ``cls`` from the arguments ``as_args`` wrote (already checked)."""
    hints = _hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in args:
            continue
        value, nested = args[f.name], record_class(hints[f.name])
        values[f.name] = from_args(nested, value) if nested is not None and isinstance(value, dict) else value
    return cls(**values)


def record_class(hint: Any) -> type | None:
    """The record class an annotation names (``AsNormFigures | None`` -> AsNormFigures), if any."""
    for candidate in (hint, *typing.get_args(hint)):
        if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
            return candidate
    return None
