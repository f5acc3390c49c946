"""Compare: overlay the loss and EER curves of several runs, list their config differences."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from app import reader
from app.widgets.plots import EerPlot, EerSeries, LossPlot, LossSeries
from engine.config import config_diff


def config_differences(configs: list[dict]) -> list[tuple[str, list]]:
    """(key, value in each config) for every key on which any two configs differ."""
    keys: dict[str, None] = {}
    for other in configs[1:]:
        for key, _, _ in config_diff(configs[0], other):
            keys[key] = None
    rows = []
    for key in keys:
        values = []
        for cfg in configs:
            diff = {k: b for k, _, b in config_diff({}, cfg)}
            values.append(diff.get(key))
        rows.append((key, values))
    return rows


class CompareScreen(Screen):
    DEFAULT_CSS = """
    CompareScreen #plots { height: 2fr; }
    CompareScreen #diff { height: 1fr; border: round $primary-darken-2; }
    """
    BINDINGS = [("escape", "app.pop_screen", "Back")]

    def __init__(self, run_ids: list[int]) -> None:
        super().__init__()
        self.run_ids = run_ids

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"comparing runs {', '.join('#' + str(i) for i in self.run_ids)}", classes="hint")
        with Horizontal(id="plots"):
            yield LossPlot(id="loss")
            yield EerPlot(id="eer")
        yield DataTable(id="diff", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#diff").border_title = "config differences"
        self._load()

    @work(thread=True)
    def _load(self) -> None:
        try:
            runs = reader.read_curves(self.app.db_path, self.run_ids)
        except Exception as e:  # noqa: BLE001 - reported
            self.app.call_from_thread(self.app.error, f"cannot read the runs: {e}")
            return
        self.app.call_from_thread(self._show, runs)

    def _show(self, runs: list[dict]) -> None:
        labels = [f"#{r['run']['id']} {r['run'].get('name') or ''}".strip() for r in runs]
        self.query_one(LossPlot).set_series([LossSeries(label, r["steps"]) for label, r in zip(labels, runs)])
        self.query_one(EerPlot).set_series([EerSeries(label, r["validations"]) for label, r in zip(labels, runs)])
        table = self.query_one("#diff", DataTable)
        table.clear(columns=True)
        table.add_columns("key", *labels)
        rows = config_differences([r["config"] for r in runs])
        for key, values in rows:
            table.add_row(key, *["—" if v is None else str(v) for v in values])
        if not rows:
            table.add_row("(same config)", *["" for _ in labels])
