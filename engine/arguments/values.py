"""What an option's value may be: the checked types of numbers, labels and checkpoint names."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from engine.records.labels import check_label

#: the largest epoch number an option takes: far beyond any run, small enough for SQLite's integers
MAX_EPOCH = 1_000_000
#: the most windows in one embedding batch
MAX_BATCH = 65_536


def whole(low: int, high: int, what: str) -> Callable[[str], int]:
    """An option's type: a whole number from ``low`` to ``high``; ``what`` says what it counts."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{_shown(text)} is not accepted: expected {what}, "
                                             f"a whole number from {low:,} to {high:,}")
        return value

    parse.__name__ = "whole number"
    return parse


def number(low: float, high: float, what: str, *, above: bool = False) -> Callable[[str], float]:
    """An option's type: a finite number from ``low`` (exclusive when ``above``) to ``high``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and (value > low if above else value >= low) and value <= high):
            bound = f"above {low:g}" if above else f"from {low:g}"
            raise argparse.ArgumentTypeError(f"{_shown(text)} is not accepted: expected {what}, "
                                             f"a number {bound} to {high:g}")
        return value

    parse.__name__ = "number"
    return parse


def label(what: str) -> Callable[[str], str]:
    """A group's or a tag's word (``engine.records.labels.check_label``)."""
    def parse(text: str) -> str:
        try:
            return check_label(text, what)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return parse


def _shown(text: str) -> str:
    """The value as typed, cut short if huge, on one line."""
    text = text if len(text) <= 40 else text[:37] + "..."
    return repr(text) if not text.strip() or not text.isprintable() else text


def checkpoint_name(text: str) -> int | str:
    """``--epoch``: an epoch number, or averaged weights by name (avg-lastN, avg-topK)."""
    from engine.layout import parse_checkpoint_name

    name = parse_checkpoint_name(text)
    if name is None:
        raise argparse.ArgumentTypeError(f"{text!r} is neither an epoch number nor averaged weights "
                                         "(avg-lastN, avg-topK)")
    return name
