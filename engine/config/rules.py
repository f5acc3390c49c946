"""Rules between the parameters of one component, and the values they derive.

A parameter's own type and range live in its row of the spec table
(:mod:`engine.config.specs`); what involves two of them is here. Each rule takes the
component's values keyed by config dataclass field and the set of fields the config wrote, and
returns the values the dataclass gets, or raises :class:`RuleBroken` naming the parameter to fix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Values = dict[str, Any]


class RuleBroken(ValueError):
    """Two parameters that do not go together; ``key`` is the one the message points at."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key, self.message = key, message


def _blame(written: set[str], first: str, second: str) -> str:
    """The parameter to point at: ``first`` if the config wrote it, else ``second``."""
    return first if first in written else second


def _add_noise(v: Values, written: set[str]) -> Values:
    if v["snr_min"] > v["snr_max"]:
        raise RuleBroken(_blame(written, "snr_max", "snr_min"),
                         f"empty SNR range: snr_min ({v['snr_min']:g}) is above snr_max "
                         f"({v['snr_max']:g}); make snr_min <= snr_max")
    return v


def _exponential_decrease(v: Values, written: set[str]) -> Values:
    if v["final_lr"] > v["initial_lr"]:
        raise RuleBroken(_blame(written, "final_lr", "initial_lr"),
                         f"final_lr ({v['final_lr']:g}) is above initial_lr ({v['initial_lr']:g}): "
                         "ExponentialDecrease decays; lower final_lr")
    return v


def _constant(v: Values, written: set[str]) -> Values:
    # a constant rate is a cycle from the rate to itself (SchedulerConfig's min_lr, max_lr)
    return {**v, "min_lr": v["learning_rate"], "max_lr": v["learning_rate"]}


def _cyclic(v: Values, written: set[str]) -> Values:
    lr = v["learning_rate"]
    if "max_lr" in written:
        if "learning_rate" in written and v["max_lr"] != lr:
            raise RuleBroken("max_lr", f"max_lr ({v['max_lr']:g}) differs from learning_rate ({lr:g}), which is "
                                       "the same thing for CyclicScheduler; keep one of them")
        lr = v["max_lr"]
    # pyannote.audio 1.x cycles from 0.1 x the base rate up to it (train/schedulers.py).
    min_lr = v["min_lr"] if "min_lr" in written else lr / 10
    if min_lr > lr:
        raise RuleBroken("min_lr", f"min_lr ({min_lr:g}) is above the peak learning rate ({lr:g}); lower it")
    return {**v, "learning_rate": lr, "min_lr": min_lr, "max_lr": lr}


def _sgd(v: Values, written: set[str]) -> Values:
    if v["nesterov"] and v["momentum"] == 0:
        raise RuleBroken(_blame(written, "nesterov", "momentum"),
                         "Nesterov momentum needs momentum > 0; set nesterov: false or a momentum such as 0.9")
    return v


RULES: dict[str, Callable[[Values, set[str]], Values]] = {
    "AddNoise": _add_noise,
    "ExponentialDecrease": _exponential_decrease,
    "ConstantScheduler": _constant,
    "CyclicScheduler": _cyclic,
    "SGD": _sgd,
}


def apply_rules(name: str, values: Values, written: set[str]) -> Values:
    """The values component ``name`` gives its config dataclass (raises :class:`RuleBroken`)."""
    rule = RULES.get(name)
    return rule(values, written) if rule else values
