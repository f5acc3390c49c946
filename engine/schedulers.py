"""Learning rate as a pure function of the step, so that resuming needs no scheduler state."""

from __future__ import annotations

import math
from typing import Any


def learning_rate(scheduler: Any, step: int, batches_per_epoch: int) -> float:
    """The learning rate of ``step`` (0-based) under the config's scheduler.

    ``ConstantScheduler`` keeps ``learning_rate``. ``CyclicScheduler`` follows
    pyannote.audio 1.x: a cosine cycle from ``min_lr`` up to ``max_lr`` and back
    every ``epochs_per_cycle`` epochs (Smith, "Cyclical Learning Rates", 2017).
    """
    if scheduler.name == "ConstantScheduler":
        return float(scheduler.learning_rate)
    cycle = max(1, int(round(scheduler.epochs_per_cycle * batches_per_epoch)))
    phase = (step % cycle) / cycle
    low, high = float(scheduler.min_lr), float(scheduler.max_lr)
    return low + (high - low) * 0.5 * (1.0 - math.cos(2.0 * math.pi * phase))
