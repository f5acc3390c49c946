"""Per-epoch table of a training run: loss, EER with its interval, minDCF, checkpoint.

Averaged weights (``avg-top5``) come first, each with its EER next to the best epoch's.
"""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from app.validation_view import versus_best


def _f(value, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


class EpochTable(DataTable):
    DEFAULT_CSS = """
    EpochTable { height: 1fr; min-height: 5; border: round $primary-darken-2; }
    """

    def on_mount(self) -> None:
        self.border_title = "epochs"
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns("epoch", "loss", "EER %", "95% CI", "minDCF 0.01", "checkpoint", "vs best epoch", "best")

    def set_rows(self, epochs: list[dict], validations: list[dict], checkpoints: list[dict],
                 best_epoch: int | str | None) -> None:
        by_epoch: dict[int | str, dict] = {}
        for e in epochs:
            by_epoch.setdefault(int(e["epoch"]), {})["loss"] = e.get("loss")
        for v in validations:
            by_epoch.setdefault(v.get("checkpoint_name") or int(v["epoch"]), {})["val"] = v
        for c in checkpoints:
            if not c.get("partial"):
                by_epoch.setdefault(c.get("name") or int(c["epoch"]), {})["ckpt"] = Path(c["path"]).name
        versus = versus_best(validations)
        cursor = self.cursor_row
        self.clear()
        names = sorted(k for k in by_epoch if isinstance(k, str))
        for epoch in names + sorted((k for k in by_epoch if isinstance(k, int)), reverse=True):
            row = by_epoch[epoch]
            v = row.get("val") or {}
            eer = v.get("eer")
            ci = (f"{100 * v['eer_low']:.2f}–{100 * v['eer_high']:.2f}"
                  if v.get("eer_low") is not None and v.get("eer_high") is not None else "")
            self.add_row(str(epoch), _f(row.get("loss"), ".4f"), _f(None if eer is None else 100 * eer, ".2f"),
                         ci, _f(v.get("mindcf_01"), ".4f"), row.get("ckpt", ""),
                         versus.get(epoch, "") if isinstance(epoch, str) else "",
                         "★" if best_epoch is not None and epoch == best_epoch else "", key=str(epoch))
        if self.row_count:
            self.move_cursor(row=min(cursor, self.row_count - 1))
