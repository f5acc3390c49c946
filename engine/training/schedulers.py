"""Learning rate and margin as pure functions of the step, so that resuming needs no scheduler state."""

from __future__ import annotations

import math
from typing import Any

#: WeSpeaker's exponential margin ramp covers 1 - 1e-3 of the way (wespeaker/utils/schedulers.py)
_RAMP_FLOOR = 1e-3


def learning_rate(scheduler: Any, step: int, batches_per_epoch: int, epochs: int = 1) -> float:
    """The learning rate of ``step`` (0-based) under the config's scheduler.

    ``ConstantScheduler`` keeps ``learning_rate``. ``CyclicScheduler`` (pyannote.audio 1.x's
    name and parameters): a raised-cosine cycle from ``min_lr`` up to ``max_lr`` and back
    every ``epochs_per_cycle`` epochs (Smith, "Cyclical Learning Rates", 2017), at the
    optimizer's momentum (pyannote's is triangular and cycles the momentum too).
    ``ExponentialDecrease`` is WeSpeaker's (``warm_from_zero``): the rate decays
    exponentially from ``initial_lr`` at step 0 to ``final_lr`` after ``epochs`` epochs
    (the run's ``--to``: the only schedule that depends on it), and is multiplied by
    ``step / warm-up steps`` during the first ``warm_up_epoch`` epochs.
    """
    if scheduler.name == "ConstantScheduler":
        return float(scheduler.learning_rate)
    if scheduler.name == "ExponentialDecrease":
        total = max(1, epochs * batches_per_epoch)
        warm_up = scheduler.warm_up_epoch * batches_per_epoch
        coeff = step / warm_up if step < warm_up else 1.0
        initial, final = float(scheduler.initial_lr), float(scheduler.final_lr)
        return coeff * initial * math.exp(step / total * math.log(final / initial))
    cycle = max(1, int(round(scheduler.epochs_per_cycle * batches_per_epoch)))
    phase = (step % cycle) / cycle
    low, high = float(scheduler.min_lr), float(scheduler.max_lr)
    return low + (high - low) * 0.5 * (1.0 - math.cos(2.0 * math.pi * phase))


def margin_at(task: Any, step: int, batches_per_epoch: int) -> float | None:
    """The margin in force at ``step`` (0-based); None for a loss without a margin.

    Without ``margin_scheduler`` the task's margin is constant. With it, WeSpeaker's
    ``MarginScheduler`` (initial margin 0): 0 before the first step of epoch
    ``increase_start_epoch``, then rising to ``task.margin`` at the first step of epoch
    ``fix_start_epoch`` — linearly, or as ``1 - 1e-3 ** progress`` (``exp``) — and fixed after.
    """
    if task.loss == "Softmax":
        return None
    final = float(task.margin)
    ramp = task.margin_scheduler
    if ramp is None:
        return final
    start = (ramp.increase_start_epoch - 1) * batches_per_epoch
    fix = (ramp.fix_start_epoch - 1) * batches_per_epoch
    if step >= fix:
        return final
    if step < start:
        return 0.0
    progress = (step - start) / (fix - start)
    if ramp.increase_type == "linear":
        return final * progress
    return final * (1.0 - math.exp(progress * math.log(_RAMP_FLOOR)))
