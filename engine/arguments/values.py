"""What an option's value may be: the checked types of numbers, labels and checkpoint names."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

from engine.records.labels import check_label
from engine.safe_paths import unsafe_reason

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


#: what ``--device`` takes: the CPU, the first (or this rank's) GPU, or GPU N
_DEVICE = re.compile(r"^(?:cpu|cuda(?::[0-9]{1,3})?)$")


def device_name(text: str) -> str:
    """``--device``: ``cpu``, ``cuda`` or ``cuda:N`` (torch would name any other with a traceback, or
    ``mps`` only once the data is listed and the run recorded)."""
    if not _DEVICE.match(text):
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not accepted: expected cpu, cuda or cuda:N (a GPU's "
                                         "number, e.g. cuda:0)")
    return text


device_name.__name__ = "device"


def label(what: str) -> Callable[[str], str]:
    """A group's or a tag's word (``engine.records.labels.check_label``)."""
    def parse(text: str) -> str:
        try:
            return check_label(text, what)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return parse


#: a SLURM partition (or list of them): what sbatch accepts and nothing bash would read in a batch script
_SLURM_NAME = re.compile(r"[A-Za-z0-9_\-.,:+=@]{1,256}")
#: SLURM's time limits: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S
_SLURM_TIME = re.compile(r"[0-9]{1,7}(:[0-9]{1,2}){0,2}|[0-9]{1,5}-[0-9]{1,2}(:[0-9]{1,2}){0,2}")


def slurm_name(what: str) -> Callable[[str], str]:
    """A value written into an ``#SBATCH`` line: a line break or a ``$(...)`` there is a command bash runs."""

    def parse(text: str) -> str:
        if not _SLURM_NAME.fullmatch(text):
            raise argparse.ArgumentTypeError(f"{_shown(text)} is not accepted: expected {what}, letters, digits "
                                             "and _ - . , : + = @ only (e.g. gpu or gpu,a100)")
        return text

    parse.__name__ = what
    return parse


def slurm_time(text: str) -> str:
    """``--time``: a SLURM time limit, in one of the forms sbatch reads."""
    if not _SLURM_TIME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not accepted: expected a SLURM time limit, MINUTES, "
                                         "MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS (e.g. 2-00:00:00)")
    return text


def sweep_name(text: str) -> str:
    """``sweep --name``: the sweep's group and the one folder its trials go in, below the base experiment."""
    try:
        word = check_label(text, "sweep name")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    # a group may hold '/', a folder name may not: `../x` or `/abs` would put the trials elsewhere
    if "/" in word or unsafe_reason(word) or word.startswith(("-", ".")):
        raise argparse.ArgumentTypeError(f"sweep name {_shown(text)} is not one folder name: use letters, digits "
                                         "and . _ - + : @ = without '/', not starting with '.' or '-' "
                                         "(e.g. margin-sweep)")
    return word


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
