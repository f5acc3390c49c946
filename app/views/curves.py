"""Shaping metric series for plotting: smoothing and downsampling, so long runs stay fast."""

from __future__ import annotations

import math
from collections.abc import Sequence

MAX_POINTS = 1000


def smooth(values: Sequence[float], weight: float = 0.9) -> list[float]:
    """Exponential moving average with bias correction (the TensorBoard smoothing)."""
    out, avg = [], 0.0
    for i, v in enumerate(values, start=1):
        avg = weight * avg + (1.0 - weight) * v
        out.append(avg / (1.0 - weight ** i))
    return out


def downsample(xs: Sequence[float], ys: Sequence[float],
               max_points: int = MAX_POINTS) -> tuple[list[float], list[float]]:
    """Average consecutive points into at most ``max_points`` buckets."""
    n = len(xs)
    if n <= max_points:
        return list(xs), list(ys)
    out_x, out_y = [], []
    for b in range(max_points):
        lo, hi = b * n // max_points, (b + 1) * n // max_points
        if hi > lo:
            out_x.append(sum(xs[lo:hi]) / (hi - lo))
            out_y.append(sum(ys[lo:hi]) / (hi - lo))
    return out_x, out_y


def loss_curve(steps: Sequence[dict], max_points: int = MAX_POINTS,
               weight: float = 0.9) -> tuple[list[float], list[float]]:
    """Smoothed, downsampled (step, loss) of a run's step rows; a non-finite loss is left out.

    An imported event file or a hand edit can hold an inf or NaN loss: smoothed, one such step
    would make every later point inf or NaN, and plotext cannot label an axis that reaches them.
    """
    rows = [r for r in steps if r.get("loss") is not None and math.isfinite(float(r["loss"]))]
    xs = [float(r["step"]) for r in rows]
    ys = smooth([float(r["loss"]) for r in rows], weight)
    return downsample(xs, ys, max_points)


def epoch_marks(steps: Sequence[dict]) -> list[tuple[float, int]]:
    """(first step of the epoch, epoch) for each epoch boundary in the step rows."""
    marks, last = [], None
    for r in steps:
        e = r.get("epoch")
        if e is not None and e != last:
            if last is not None:
                marks.append((float(r["step"]), int(e)))
            last = e
    return marks


def margin_curve(steps: Sequence[dict], max_points: int = MAX_POINTS) -> tuple[list[float], list[float]]:
    """Downsampled (step, margin in force) of a run's step rows; empty when none is recorded."""
    rows = [r for r in steps if r.get("margin") is not None and math.isfinite(float(r["margin"]))]
    return downsample([float(r["step"]) for r in rows], [float(r["margin"]) for r in rows], max_points)


def integer_ticks(values: Sequence[int], max_ticks: int = 10) -> list[int]:
    """Whole-number ticks over ``values`` (epochs), every 1, 2, 5, 10, 20, 50... epochs, at most ``max_ticks``."""
    if not values:
        return []
    low, high = min(values), max(values)
    step, scale = 1, 1
    while (high - low) // step + 1 > max_ticks:
        step = next((m * scale for m in (2, 5, 10) if (high - low) // (m * scale) + 1 <= max_ticks), 10 * scale)
        scale *= 10
    first = -(-low // step) * step  # the first multiple of step at or after low
    return list(range(first, high + 1, step)) or [low]
