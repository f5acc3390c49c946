"""The kinds of value a config parameter may hold: how each is read, typed and range-checked.

The modern recipe's entries (SpeedPerturb ``factors``, a ``margin_scheduler`` ramp) are kinds too:
:class:`MarginSchedule` is the typed value of the latter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

#: a pyannote.database Collection protocol, e.g. MUSAN.Collection.BackgroundNoise
COLLECTION_PATTERN = re.compile(r"^[A-Za-z0-9_-]+\.Collection\.[A-Za-z0-9_-]+$")

FACTORS_WORDS = "a list of speed factors, e.g. [0.9, 1.0, 1.1]"
SCHEDULE_WORDS = ("nothing (null: a constant margin) or a mapping such as {increase_start_epoch: 20, "
                  "fix_start_epoch: 40, increase_type: exp}")

TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "stride": "a list of 3 positive integers, e.g. [5, 1, 1]",
    "protocols": "a Collection protocol name or a list of them, e.g. [MUSAN.Collection.Music]",
    "choice": "a name",
    "window": "hamming or povey",
    "pooling": "TSTP, TAP, TSDP or ASTP",
    "factors": FACTORS_WORDS,
    "margin_schedule": SCHEDULE_WORDS,
}

#: the Python type of each kind, as the config dataclasses' fields are annotated
KIND_TYPES = {
    "int": "int",
    "float": "float",
    "bool": "bool",
    "stride": "tuple[int, int, int]",
    "protocols": "tuple[str, ...]",
    "factors": "tuple[float, ...]",
    "margin_schedule": "MarginSchedule | None",
    "window": "str",
    "pooling": "str",
}

#: the analysis windows of the Fbank front end
WINDOWS = ("hamming", "povey")
#: the statistics pooling layers of the ResNet and CAM++ backbones (WeSpeaker's pooling_layers names)
POOLINGS = ("TSTP", "TAP", "TSDP", "ASTP")


class Invalid(ValueError):
    """A value that breaks its parameter's rule; the message says what is expected."""


@dataclass(frozen=True)
class MarginSchedule:
    """WeSpeaker's ``MarginScheduler``: margin 0 before ``increase_start_epoch``, rising to the
    task's margin until ``fix_start_epoch`` (exponentially or linearly), then fixed (1-based epochs)."""

    increase_start_epoch: int = 20
    fix_start_epoch: int = 40
    increase_type: str = "exp"


#: the keys of a margin_scheduler mapping and the increase types it accepts (WeSpeaker's names)
MARGIN_SCHEDULE_KEYS = tuple(f.name for f in fields(MarginSchedule))
INCREASE_TYPES = ("exp", "linear")


def describe(value: Any) -> str:
    """How a YAML value reads in an error message."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, list):
        return "an empty list" if not value else "a list"   # "expected a list …, got a list" said nothing
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)


def named(value: Any) -> str:
    """A value given where a name goes, as an error message quotes it: ``'ArcFace'`` for a text (not
    ``the text 'ArcFace'``: a name is text), what it is otherwise (``a list``, ``5``)."""
    return repr(value) if isinstance(value, str) else describe(value)


def unknown_name(value: Any) -> str:
    """The start of the line refusing a section's ``name``: ``unknown name 'ArcFace'``, or
    ``expected a name, got a list`` when it is no text."""
    return f"unknown name {value!r}" if isinstance(value, str) else f"expected a name, got {describe(value)}"


def _number(value: Any, kind: str) -> Any:
    # bool is a subclass of int in Python; in a config `true` is never a number.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid(f"expected {TYPE_WORDS[kind]}, got {describe(value)}")
    if isinstance(value, int) and value.bit_length() > 63:
        # beyond any size a config means, and beyond a float (or, past 4,300 digits, even its repr)
        raise Invalid(f"expected {TYPE_WORDS[kind]} of a sensible size, got an integer of "
                      f"{len(str(abs(value) >> (value.bit_length() - 60)))}+ digits")
    if kind == "int":
        if not isinstance(value, int):
            raise Invalid(f"expected an integer, got {value!r}")
        return value
    if not math.isfinite(value):
        raise Invalid(f"expected a finite number, got {value!r}")
    return float(value)


def _stride(value: Any) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise Invalid(f"expected {TYPE_WORDS['stride']}, got {describe(value)}"
                      + (f" of {len(value)} items" if isinstance(value, (list, tuple)) else ""))
    items = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or item < 1:
            raise Invalid(f"expected {TYPE_WORDS['stride']}, got {describe(item)} among them")
        items.append(item)
    return tuple(items)


def _protocols(value: Any) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not names:
        raise Invalid(f"expected {TYPE_WORDS['protocols']}, got {describe(value)}")
    for name in names:
        if not isinstance(name, str) or not COLLECTION_PATTERN.match(name):
            raise Invalid(f"{named(name)} is not a Collection protocol name: write "
                          "Database.Collection.Name, e.g. MUSAN.Collection.BackgroundNoise")
    return tuple(names)


def speed_factors(value: Any) -> tuple[float, ...]:
    """SpeedPerturb ``factors`` (the modern recipe): a non-empty list of distinct numbers in [0.5, 2]."""
    if not isinstance(value, (list, tuple)) or not value:
        raise Invalid(f"expected {FACTORS_WORDS}, got {describe(value)}")
    factors = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not 0.5 <= item <= 2.0:
            raise Invalid(f"expected {FACTORS_WORDS} (each in [0.5, 2]), got {describe(item)} among them")
        factors.append(float(item))
    if len(set(factors)) != len(factors):
        raise Invalid(f"a factor appears twice in {factors}; list each once")
    return tuple(factors)


def margin_schedule(value: Any) -> MarginSchedule | None:
    """``margin_scheduler``: null, or a mapping of WeSpeaker's keys (missing ones at their defaults)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Invalid(f"expected {SCHEDULE_WORDS}, got {describe(value)}")
    unknown = [k for k in value if k not in MARGIN_SCHEDULE_KEYS]
    if unknown:
        raise Invalid(f"unknown key {unknown[0]!r} of margin_scheduler; "
                      f"accepted: {', '.join(MARGIN_SCHEDULE_KEYS)}")
    default = MarginSchedule()
    start = value.get("increase_start_epoch", default.increase_start_epoch)
    fix = value.get("fix_start_epoch", default.fix_start_epoch)
    for key, epoch in (("increase_start_epoch", start), ("fix_start_epoch", fix)):
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
            raise Invalid(f"margin_scheduler {key} must be an epoch number (1 or more), "
                          f"got {describe(epoch)}")
    if fix < start:
        raise Invalid(f"margin_scheduler fix_start_epoch ({fix}) is before increase_start_epoch ({start}); "
                      "the ramp must end after it starts")
    kind = value.get("increase_type", default.increase_type)
    if kind not in INCREASE_TYPES:
        raise Invalid(f"margin_scheduler increase_type must be one of {', '.join(INCREASE_TYPES)}, "
                      f"got {describe(kind)}")
    return MarginSchedule(increase_start_epoch=start, fix_start_epoch=fix, increase_type=kind)


def coerce(kind: str, value: Any) -> Any:
    """``value`` as the Python value of ``kind``, or :class:`Invalid` saying what is expected."""
    if kind in ("int", "float"):
        return _number(value, kind)
    if kind == "bool":
        if not isinstance(value, bool):
            raise Invalid(f"expected true or false, got {describe(value)}")
        return value
    if kind == "stride":
        return _stride(value)
    if kind in ("window", "pooling"):
        if value not in (WINDOWS if kind == "window" else POOLINGS):
            raise Invalid(f"expected {TYPE_WORDS[kind]}, got {describe(value)}")
        return value
    if kind == "protocols":
        return _protocols(value)
    if kind == "factors":
        return speed_factors(value)
    if kind == "margin_schedule":
        return margin_schedule(value)
    raise AssertionError(kind)


def positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def multiple_of(n: int) -> Callable[[int], str | None]:
    return lambda value: None if value > 0 and value % n == 0 else f"must be a positive multiple of {n}"


def at_least(low: float) -> Callable[[float], str | None]:
    return lambda value: None if value >= low else f"must be at least {low}"


def at_most(high: float) -> Callable[[float], str | None]:
    return lambda value: None if value <= high else f"must be at most {high:,}"


def within(low: Callable[[float], str | None], high: float) -> Callable[[float], str | None]:
    """The check ``low`` (positive, at_least(n)), then at most ``high``: a range in two messages."""
    top = at_most(high)

    def check(value: float) -> str | None:
        return low(value) or top(value)
    return check


def in_range(low: float, high: float, high_open: bool = True,
             high_text: str | None = None) -> Callable[[float], str | None]:
    top = high_text or str(high)

    def check(value: float) -> str | None:
        if value < low or value > high or (high_open and value == high):
            return f"must be in [{low}, {top}{')' if high_open else ']'}"
        return None
    return check
