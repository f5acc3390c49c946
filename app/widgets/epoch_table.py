"""Per-epoch table of a training run: loss, EER with its interval, minDCF, checkpoint.

Averaged weights (``avg-top5``) come first, each with its EER next to the best epoch's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from textual.widgets import DataTable

from app.views.validation_view import versus_best
from engine.records import Checkpoint, EpochSummary, ValidationResult


def _f(value: float | None, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


@dataclass
class _Row:
    """What one row gathers of an epoch (or of averaged weights): loss, validation, checkpoint file."""

    loss: float | None = None
    val: ValidationResult | None = None
    ckpt: str = ""


class EpochTable(DataTable):
    DEFAULT_CSS = """
    EpochTable { height: 1fr; min-height: 5; border: round $primary-darken-2; }
    """

    #: times ``set_rows`` filled the table (the tests read it)
    fills = 0

    def on_mount(self) -> None:
        self.border_title = "epochs"
        self.cursor_type = "row"
        self.zebra_stripes = True
        # the pick (★) in its epoch's cell: in a column of its own, last, an 80-column terminal never showed
        # it; second, the interval after it was cut (`4.00–22` of 4.00–22.73 in the 40 columns it has there)
        self.add_columns("epoch", "loss", "EER %", "95% CI", "minDCF 0.01", "file", "vs best")

    def set_rows(self, epochs: list[EpochSummary], validations: Sequence[ValidationResult],
                 checkpoints: list[Checkpoint], best_epoch: int | str | None) -> None:
        """One row per epoch and per averaged checkpoint (named ones first, then epochs newest first)."""
        by_epoch: dict[int | str, _Row] = {}
        for e in epochs:
            by_epoch.setdefault(e.epoch, _Row()).loss = e.loss
        for validation in validations:
            by_epoch.setdefault(validation.checkpoint, _Row()).val = validation
        for c in checkpoints:
            if not c.partial:
                by_epoch.setdefault(c.name or c.epoch, _Row()).ckpt = Path(c.path).name
        versus = versus_best(validations)
        cursor = self.cursor_row
        self.fills += 1
        self.clear()
        names = sorted(k for k in by_epoch if isinstance(k, str))
        for epoch in names + sorted((k for k in by_epoch if isinstance(k, int)), reverse=True):
            row = by_epoch[epoch]
            v = row.val
            eer = None if v is None else v.eer
            ci = (f"{100 * v.eer_low:.2f}–{100 * v.eer_high:.2f}"
                  if v is not None and v.eer_low is not None and v.eer_high is not None else "")
            # a validated epoch without an EER (a NULL in the database) shows a dash, an unvalidated one nothing
            eer_cell = "—" if v is not None and eer is None else _f(None if eer is None else 100 * eer, ".2f")
            picked = best_epoch is not None and epoch == best_epoch
            self.add_row(f"{epoch} ★" if picked else str(epoch), _f(row.loss, ".4f"), eer_cell, ci,
                         _f(None if v is None else v.mindcf_01, ".4f"), row.ckpt,
                         versus.get(epoch, "") if isinstance(epoch, str) else "", key=str(epoch))
        if self.row_count:
            self.move_cursor(row=min(cursor, self.row_count - 1))
