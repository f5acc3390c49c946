"""DET view: the DET curve and score histograms of one validated epoch, or two overlaid.

Opened with ``d`` from the run detail (the epoch under the cursor, with the picked one) and from
Compare (the picked epoch of every compared run, overlaid). Below the plots, a table of the miss rate
of each at 1 % and 0.1 % false alarms. The score files are read in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from app.views.plain import safe
from app.widgets.det_plots import COLORS, DetPlot, ScoreHistogramPlot, Shown
from app.widgets.keys_footer import KeysFooter
from app.widgets.plain_table import PlainTable
from engine.errors import SpkembError
from engine.layout import CheckpointName, ValidationDir
from engine.validation.det import FA_RATES, load_epoch, miss_at_false_alarm


@dataclass(frozen=True)
class DetSource:
    """One epoch to draw: a label, the VAL_DIR that scored it, and its checkpoint name."""

    label: str
    val_dir: str
    name: CheckpointName


def summary_line(index: int, shown: Shown) -> str:
    curve = shown.epoch.curve
    color = COLORS[index % len(COLORS)][0]
    return (f"[{color}]■[/] {safe(shown.label)}: EER {100 * curve.eer:.2f} % at threshold {curve.eer_threshold:.3f}"
            f"  minDCF({curve.p_target:g}) {curve.min_dcf:.3f}"
            f"  {curve.n_target} target / {curve.n_nontarget} non-target trials")


class DetScreen(Screen):
    DEFAULT_CSS = """
    DetScreen #det-summary { height: auto; padding: 0 1; }
    DetScreen #det-plots { height: 1fr; }
    DetScreen #det-table { height: auto; max-height: 10; }
    """
    BINDINGS = [("escape", "app.pop_screen", "Back")]

    def __init__(self, sources: list[DetSource]) -> None:
        super().__init__()
        self.sources = sources
        self.shown: list[Shown] = []
        self.problems: list[str] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("reading scores…", id="det-summary")
        with Horizontal(id="det-plots"):
            yield DetPlot(id="det")
            yield ScoreHistogramPlot(id="histogram")
        yield PlainTable(id="det-table", zebra_stripes=True, cursor_type="row")
        yield KeysFooter()

    def on_mount(self) -> None:
        self._load(self.sources)

    @work(thread=True, exclusive=True, group="det")
    def _load(self, sources: list[DetSource]) -> None:
        shown, problems = [], []
        for source in sources:
            try:
                shown.append(Shown(source.label, load_epoch(ValidationDir(Path(source.val_dir)), source.name)))
            except SpkembError as e:
                problems.append(f"{source.label}: {e}")
        self.app.call_from_thread(self._show, shown, problems)

    def _show(self, shown: list[Shown], problems: list[str]) -> None:
        self.shown, self.problems = shown, problems
        lines = [summary_line(i, s) for i, s in enumerate(shown)]
        lines += [f"[red]{safe(p)}[/red]" for p in problems]
        self.query_one("#det-summary", Static).update("\n".join(lines) or "nothing to draw")
        self.query_one(DetPlot).show(shown)
        self.query_one(ScoreHistogramPlot).show(shown)
        self._table(shown)

    def _table(self, shown: list[Shown]) -> None:
        """EER, minDCF and the miss rate at each of ``FA_RATES``, one row per curve drawn."""
        table = self.query_one("#det-table", DataTable)
        table.clear(columns=True)
        table.add_columns("system", "EER %", "minDCF(0.01)", *(f"miss % @ FA {100 * r:g} %" for r in FA_RATES))
        for s in shown:
            misses = miss_at_false_alarm(s.epoch.curve)
            table.add_row(s.label, f"{100 * s.epoch.curve.eer:.2f}", f"{s.epoch.curve.min_dcf:.3f}",
                          *("—" if m is None else f"{100 * m:.2f}" for m in misses))
