"""What the run detail shows of validations: raw or AS-norm figures, and averages against the best epoch.

Rows are the validations of the runs database (``RecordedValidation``); averaged weights
(``avg-top5``) carry a ``checkpoint_name`` and, as ``epoch``, the last epoch they average.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from engine.records import Run, ValidationResult

V = TypeVar("V", bound=ValidationResult)


def figures(validations: list[V], asnorm: bool) -> list[V]:
    """The rows with their raw figures, or with the AS-norm ones in their place (rows without any dropped)."""
    if not asnorm:
        return list(validations)
    return [n for v in validations if (n := v.normalised()) is not None]  # type: ignore[misc]


def has_asnorm(validations: list[V]) -> bool:
    """Whether any row has AS-norm figures (validated with ``--score-norm asnorm``)."""
    return any(v.asnorm is not None for v in validations)


def is_named(v: ValidationResult) -> bool:
    return bool(v.checkpoint_name)


def best_epoch_row(rows: Sequence[V]) -> V | None:
    """The epoch of lowest EER (the earlier on a tie), averages aside."""
    epochs = [v for v in rows if not is_named(v) and v.eer is not None]
    return min(epochs, key=lambda v: (v.eer, v.epoch)) if epochs else None


def _interval(v: ValidationResult) -> str:
    if v.eer_low is None or v.eer_high is None:
        return ""
    return f" [{100 * v.eer_low:.2f}, {100 * v.eer_high:.2f}]"


def verdict(average: ValidationResult, best: ValidationResult) -> str:
    """Is the average better than the best single epoch? Judged by their 95 % intervals."""
    if average.eer_low is None or average.eer_high is None or best.eer_low is None or best.eer_high is None:
        return "no intervals to judge by"
    if average.eer_high < best.eer_low:
        return "better (intervals apart)"
    if average.eer_low > best.eer_high:
        return "worse (intervals apart)"
    return "no clear difference (intervals overlap)"


def versus_best(rows: Sequence[V]) -> dict[str, str]:
    """For each averaged checkpoint: its EER minus the best epoch's and the verdict, in a few words."""
    best = best_epoch_row(rows)
    out: dict[str, str] = {}
    for v in rows:
        if v.checkpoint_name and best is not None and best.eer is not None and v.eer is not None:
            delta = 100 * (v.eer - best.eer)
            out[v.checkpoint_name] = f"{delta:+.2f} vs {best.epoch}: {verdict(v, best).split(' (')[0]}"
    return out


def comparison_lines(rows: Sequence[V]) -> list[str]:
    """One sentence per averaged checkpoint: its EER and interval next to the best epoch's, and the verdict."""
    best = best_epoch_row(rows)
    if best is None or best.eer is None:
        return []
    return [f"{v.checkpoint_name}: EER {v.eer_text}{_interval(v)} vs best epoch {best.epoch}: "
            f"{best.eer_text}{_interval(best)} — {verdict(v, best)}"
            for v in rows if is_named(v) and v.eer is not None]


def best_marker(run: Run) -> int | str | None:
    """What a validate run points at: averaged weights by name, else an epoch."""
    if run.best_checkpoint:
        return str(run.best_checkpoint)
    return None if run.best_epoch is None else int(run.best_epoch)


def picked(validators: list[Run]) -> tuple[int | str | None, bool]:
    """What the first of a training's validate runs that points at a checkpoint points at, and whether
    it was picked by hand (not the lowest EER); (None, False) when none does."""
    chosen = next((v for v in validators if best_marker(v) is not None), None)
    return (None, False) if chosen is None else (best_marker(chosen), chosen.best_how != "lowest-eer")
