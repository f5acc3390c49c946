"""Values of the modern recipe's config entries (issue 13): SpeedPerturb factors, a margin ramp.

Each reader returns the typed value or raises ValueError saying what is expected; the config
table (:mod:`engine.config.values`) turns that into its ``Invalid``. ``MarginSchedule`` is the
typed value of a ``margin_scheduler`` entry.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from engine.config.values import FACTORS_WORDS, SCHEDULE_WORDS, describe


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


def speed_factors(value: Any) -> tuple[float, ...]:
    """SpeedPerturb ``factors``: a non-empty list of distinct numbers in [0.5, 2]."""
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"expected {FACTORS_WORDS}, got {describe(value)}")
    factors = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not 0.5 <= item <= 2.0:
            raise ValueError(f"expected {FACTORS_WORDS} (each in [0.5, 2]), got {describe(item)} among them")
        factors.append(float(item))
    if len(set(factors)) != len(factors):
        raise ValueError(f"a factor appears twice in {factors}; list each once")
    return tuple(factors)


def margin_schedule(value: Any) -> MarginSchedule | None:
    """``margin_scheduler``: null, or a mapping of WeSpeaker's keys (missing ones at their defaults)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"expected {SCHEDULE_WORDS}, got {describe(value)}")
    unknown = [k for k in value if k not in MARGIN_SCHEDULE_KEYS]
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} of margin_scheduler; "
                         f"accepted: {', '.join(MARGIN_SCHEDULE_KEYS)}")
    default = MarginSchedule()
    start = value.get("increase_start_epoch", default.increase_start_epoch)
    fix = value.get("fix_start_epoch", default.fix_start_epoch)
    for key, epoch in (("increase_start_epoch", start), ("fix_start_epoch", fix)):
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
            raise ValueError(f"margin_scheduler {key} must be an epoch number (1 or more), "
                             f"got {describe(epoch)}")
    if fix < start:
        raise ValueError(f"margin_scheduler fix_start_epoch ({fix}) is before increase_start_epoch ({start}); "
                         "the ramp must end after it starts")
    kind = value.get("increase_type", default.increase_type)
    if kind not in INCREASE_TYPES:
        raise ValueError(f"margin_scheduler increase_type must be one of {', '.join(INCREASE_TYPES)}, "
                         f"got {describe(kind)}")
    return MarginSchedule(increase_start_epoch=start, fix_start_epoch=fix, increase_type=kind)
