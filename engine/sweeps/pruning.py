"""Pruning a grid's trials on validated EER: "worse than the median of the other trials at the same epoch".

Each validated epoch's EER is the trial's intermediate value. A running trial is judged at its newest
validated epoch, from ``prune_after`` on (never epoch 0, the untrained network), and pruned where its
EER is above the median of the other trials' EERs at that epoch, once at least ``MIN_OTHERS`` of them
have one (as Optuna's MedianPruner, which judges a trial's latest step, after a few startup trials,
here counted per epoch): a trial that leads now is not stopped for an early epoch that later trials
beat. ``--optuna`` sweeps ask the study's own pruner instead.
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
    """Whether ``own`` at its newest validated epoch (from ``prune_after`` on) is worse than the others' median.

    Parameters
    ----------
    own
        The trial's validated EER by epoch.
    others
        The other trials' (of the same sweep, running or ended).
    """
    epoch = max(own, default=0)
    if epoch < max(prune_after, 1):
        return None
    values = [o[epoch] for o in others if epoch in o]
    if len(values) < MIN_OTHERS:
        return None
    median = statistics.median(values)
    return Pruned(epoch, own[epoch], median) if own[epoch] > median else None
