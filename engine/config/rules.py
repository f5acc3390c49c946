"""Rules between the parameters of one component, and the values they derive.

A parameter's own type and range live in its row of the spec table
(:mod:`engine.config.specs`); what involves two of them is here. Each rule takes the
component's values keyed by config dataclass field and the set of fields the config wrote, and
returns the values the dataclass gets, or raises :class:`RuleBroken` naming the parameter to fix.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from engine.config.frames import frame_samples

Values = dict[str, Any]

#: the most batches an epoch may hold: an epoch is where training checkpoints and validation
#: looks, and a million steps already take days on any hardware
MAX_BATCHES_PER_EPOCH = 1_000_000


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


#: CyclicScheduler's lowest rate is its peak divided by this, where min_lr is not written
CYCLIC_MIN_DIVISOR = 10


def _cyclic(v: Values, written: set[str]) -> Values:
    lr = v["learning_rate"]
    if "max_lr" in written:
        if "learning_rate" in written and v["max_lr"] != lr:
            raise RuleBroken("max_lr", f"max_lr ({v['max_lr']:g}) differs from learning_rate ({lr:g}), which is "
                                       "the same thing for CyclicScheduler; keep one of them")
        lr = v["max_lr"]
    # pyannote.audio 1.x cycles from 0.1 x the base rate up to it (train/schedulers.py).
    min_lr = v["min_lr"] if "min_lr" in written else lr / CYCLIC_MIN_DIVISOR
    if min_lr > lr:
        raise RuleBroken("min_lr", f"min_lr ({min_lr:g}) is above the peak learning rate ({lr:g}); lower it")
    return {**v, "learning_rate": lr, "min_lr": min_lr, "max_lr": lr}


def _task(v: Values, written: set[str]) -> Values:
    # the count of engine.data.batches.batches_per_epoch, which this torch-free layer cannot import
    batches = math.ceil(v["per_epoch"] * 24 * 3600 / (v["duration"] * v["per_fold"] * v["per_label"]))
    if batches > MAX_BATCHES_PER_EPOCH:
        raise RuleBroken(_blame(written, "per_epoch", "duration"),
                         f"an epoch of {v['per_epoch']:g} days in batches of {v['per_fold']} x {v['per_label']} "
                         f"chunks of {v['duration']:g} s is {batches:,} batches, more than "
                         f"{MAX_BATCHES_PER_EPOCH:,}: lower per_epoch (days of audio per epoch, e.g. 5)")
    return v


def _fbank(v: Values, written: set[str]) -> Values:
    rate = v["sample_rate"]
    for key, fewest, what, usual in (("frame_length", 2, "a window", 25), ("frame_shift", 1, "a hop", 10)):
        if frame_samples(rate, v[key]) < fewest:
            enough = math.ceil(fewest * 1e6 / rate + 1e-6) / 1000  # ms, rounded up past the truncation
            raise RuleBroken(key, f"{v[key]:g} ms is {frame_samples(rate, v[key])} samples at {rate} Hz: {what} "
                                  f"needs at least {fewest}; set {key} to {enough:g} ms or more ({usual} in Kaldi "
                                  "and WeSpeaker)")
    return v


def _campplus(v: Values, written: set[str]) -> Values:
    if v["growth_rate"] * v["bn_size"] < 2:
        raise RuleBroken(_blame(written, "bn_size", "growth_rate"),
                         f"a CAM layer halves its growth_rate x bn_size bottleneck channels, here "
                         f"{v['growth_rate']} x {v['bn_size']}: make their product at least 2 (32 x 4 in CAM++)")
    return v


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
    "Fbank": _fbank,
    "CAMPPlus": _campplus,
    "AdditiveAngularMarginLoss": _task,
    "AdditiveMarginLoss": _task,
    "SubCenterInterTopKLoss": _task,
    "Softmax": _task,
}


def apply_rules(name: str, values: Values, written: set[str]) -> Values:
    """The values component ``name`` gives its config dataclass (raises :class:`RuleBroken`)."""
    rule = RULES.get(name)
    return rule(values, written) if rule else values
