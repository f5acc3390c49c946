"""Compare: overlay the loss and EER curves of several runs, list their config differences."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from app.data import reader
from app.data.reader import RunCurves, StepRow
from app.widgets.plots import EerPlot, EerSeries, LossPlot, LossSeries
from engine.config import config_diff

if TYPE_CHECKING:
    from app.screens.det import DetSource


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
    BINDINGS = [("escape", "app.pop_screen", "Back"), ("d", "det", "DET")]

    def __init__(self, run_ids: list[int]) -> None:
        super().__init__()
        self.run_ids = run_ids
        #: every step read so far, by run (each refresh reads only the steps after these)
        self.steps: dict[int, list[StepRow]] = {i: [] for i in run_ids}
        self._shown: tuple | None = None
        #: the latest read of each run (its validations and validate runs, for the DET view)
        self.runs: list[RunCurves] = []

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
        self._poll()
        # runs still training keep growing their curves here too
        self.set_interval(self.app.refresh_interval, self._poll)

    def _poll(self) -> None:
        self._load({i: int(s[-1]["step"]) for i, s in self.steps.items() if s})

    @work(thread=True, exclusive=True, group="compare")
    def _load(self, since: dict[int, int]) -> None:
        try:
            runs = reader.read_curves(self.app.db_path, self.run_ids, since)
        except Exception as e:  # noqa: BLE001 - reported
            self.app.call_from_thread(self.app.error, f"cannot read the runs: {e}")
            return
        self.app.call_from_thread(self._show, runs, since)

    def _show(self, runs: list[RunCurves], since: dict[int, int]) -> None:
        self.runs = runs
        for r in runs:
            steps = self.steps.setdefault(r.run.id, [])
            last = int(steps[-1]["step"]) if steps else -1
            if last == since.get(r.run.id, -1):  # not a stale read
                steps.extend(s for s in r.steps if s["step"] > last)
        shown = tuple((len(self.steps.get(r.run.id, [])), tuple((v.epoch, v.eer) for v in r.validations))
                      for r in runs)
        if shown == self._shown:
            return
        first = self._shown is None
        self._shown = shown
        labels = [_label(r) for r in runs]
        self.query_one(LossPlot).set_series([LossSeries(label, self.steps.get(r.run.id, []))
                                             for label, r in zip(labels, runs, strict=True)])
        self.query_one(EerPlot).set_series([EerSeries(label, r.validations)
                                            for label, r in zip(labels, runs, strict=True)])
        if first:
            self._show_differences(labels, [r.config for r in runs])

    def _show_differences(self, labels: list[str], configs: list[dict]) -> None:
        table = self.query_one("#diff", DataTable)
        table.clear(columns=True)
        table.add_columns("key", *labels)
        rows = config_differences(configs)
        for key, values in rows:
            table.add_row(key, *["—" if v is None else str(v) for v in values])
        if not rows:
            table.add_row("(same config)", *["" for _ in labels])

    def action_det(self) -> None:
        """DET curves and score histograms of the picked epoch of the first two runs, overlaid."""
        from app.screens.det import DetScreen

        sources = [source for r in self.runs if (source := det_source(r)) is not None][:2]
        if not sources:
            self.app.notify("None of these runs has a validated epoch yet.", severity="warning")
            return
        self.app.push_screen(DetScreen(sources))


def _label(read: RunCurves) -> str:
    """``#3 aam (ResNet34)``: a run's legend and column label, naming the network it trained."""
    run = read.run
    label = f"#{run.id} {run.name or ''}".strip()
    return f"{label} ({read.network})" if read.network else label


def det_source(read: RunCurves) -> DetSource | None:
    """The picked epoch of one compared run (else its lowest-EER one) and the VAL_DIR that scored it."""
    from app.screens.det import DetSource

    validators = [v for v in read.validators if v.out_dir]
    by_id = {v.id: v for v in validators}
    picked = [v for v in validators if v.best_epoch is not None]
    label = _label(read)
    if picked:
        best = min(picked, key=lambda v: v.best_eer if v.best_eer is not None else 1.0)
        return DetSource(f"{label} @{best.best_epoch}", best.out_dir, int(best.best_epoch))
    scored = [v for v in read.validations if v.eer is not None and v.run_id in by_id]
    if not scored:
        return None
    row = min(scored, key=lambda v: (v.eer, v.epoch))
    return DetSource(f"{label} @{row.epoch}", by_id[row.run_id].out_dir, int(row.epoch))
