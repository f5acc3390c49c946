"""Pruning a grid's trials on validated EER: "worse than the median of the other trials at the same epoch".

Each validated epoch's EER is the trial's intermediate value. A running trial is pruned at the first
epoch from ``prune_after`` on (never epoch 0, the untrained network) where its EER is above the median
of the other trials' EERs at that epoch, once at least ``MIN_OTHERS`` of them have one (as Optuna's
MedianPruner after a few startup trials, here counted per epoch). ``--optuna`` sweeps ask the study's
own pruner instead.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

#: other trials that must have validated an epoch before it is compared
MIN_OTHERS = 2


@dataclass(frozen=True)
class Pruned:
    """Why a trial stops: the epoch, its EER and the median it is worse than (fractions)."""

    epoch: int
    eer: float
    median: float

    @property
    def reason(self) -> str:
        return f"pruned at epoch {self.epoch}: EER {100 * self.eer:.1f} % > median {100 * self.median:.1f} %"


def median_rule(own: dict[int, float], others: list[dict[int, float]], *, prune_after: int) -> Pruned | None:
    """The first epoch (from ``prune_after`` on) at which ``own`` is worse than the others' median, if any.

    Parameters
    ----------
    own
        The trial's validated EER by epoch.
    others
        The other trials' (of the same sweep, running or ended).
    """
    for epoch in sorted(e for e in own if e >= max(prune_after, 1)):
        values = [o[epoch] for o in others if epoch in o]
        if len(values) < MIN_OTHERS:
            continue
        median = statistics.median(values)
        if own[epoch] > median:
            return Pruned(epoch, own[epoch], median)
    return None
