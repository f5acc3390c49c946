"""Compare: overlay the loss and EER curves of several runs, tabulate their figures (the pivot of
systems x trial lists x score back-end, sortable), say whether the first two systems (runs, or groups
of seeds) differ for real (a paired bootstrap), list their config differences, write a report."""

from __future__ import annotations

import time
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable, Header, Static
from textual.worker import Worker

from app.data import reader
from app.data.reader import RunCurves, StepRow, thin_steps
from app.launching.children import run_quick
from app.launching.commands import request_argv
from app.screens.compare_systems import SignificancePanel, det_source, run_label, shared_trials, systems
from app.screens.host import reading
from app.views.validation_view import picked
from app.widgets.keys_footer import KeysFooter
from app.widgets.plain_table import PlainTable
from app.widgets.plots import EerPlot, EerSeries, LossPlot, LossSeries
from engine.compare.pivot import COLUMNS, Pivot, build_pivot, cell_text, sweeps_as_runs
from engine.compare.report import HTML_FILE
from engine.config import config_diff
from engine.requests import ReportRequest


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


class CompareScreen(SignificancePanel):
    DEFAULT_CSS = """
    CompareScreen #plots { height: 2fr; }
    CompareScreen #tables { height: 1fr; }
    CompareScreen #pivot { width: 3fr; height: 100%; border: round $primary-darken-2; }
    CompareScreen #diff { width: 2fr; height: 100%; border: round $primary-darken-2; }
    CompareScreen #significance { height: auto; padding: 0 1; }
    """
    BINDINGS = [("escape", "app.pop_screen", "Back"), ("d", "det", "DET"), ("s", "sort", "Sort"),
                ("g", "groups", "Groups"), ("r", "report", "Report")]

    def __init__(self, run_ids: list[int]) -> None:
        super().__init__()
        self.run_ids = run_ids
        #: the steps read so far, by run (each refresh reads only the steps after these), ``STEP_POINTS``
        #: evenly spaced ones of a long run (``thin_steps``)
        self.steps: dict[int, list[StepRow]] = {i: [] for i in run_ids}
        self._shown: tuple | None = None
        #: the validations the figures were last read for
        self._validated: tuple | None = None
        #: the latest read of each run (its validations and validate runs, for the DET view)
        self.runs: list[RunCurves] = []
        #: the figures of the compared runs (None until read), as shown: sorted on ``sort``
        self.pivot: Pivot | None = None
        #: the pivot's sort: a column key and whether descending (None: as read)
        self.sort: tuple[str, bool] | None = None
        #: the folder of the last report written from here
        self.report_dir: Path | None = None
        #: the figures of each compared run's group (mean ± std over its runs) instead of the run's own
        self.by_group = False
        #: the curves' read in flight, if any (polls wait for it: ``reading``)
        self._reading: Worker | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"comparing runs {', '.join('#' + str(i) for i in self.run_ids)}", classes="hint")
        with Horizontal(id="plots"):
            yield LossPlot(id="loss")
            yield EerPlot(id="eer")
        yield Static("", id="significance")
        with Horizontal(id="tables"):
            yield PlainTable(id="pivot", zebra_stripes=True, cursor_type="column")
            yield PlainTable(id="diff", zebra_stripes=True)
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one("#diff").border_title = "config differences"
        self.query_one("#pivot").border_title = self._pivot_title()
        self._poll()
        # runs still training keep growing their curves here too
        self.set_interval(self.spkemb.refresh_interval, self._poll)

    def _poll(self) -> None:
        if reading(self._reading):
            return
        self._reading = self._load({i: int(s[-1]["step"]) for i, s in self.steps.items() if s})

    @work(thread=True, exclusive=True, group="compare")
    def _load(self, since: dict[int, int]) -> None:
        try:
            runs = reader.read_curves(self.spkemb.db_path, self.run_ids, since)
        except Exception as e:  # noqa: BLE001 - reported
            self.app.call_from_thread(self.spkemb.error, f"cannot read the runs: {e}")
            return
        self.app.call_from_thread(self._show, runs, since)

    def _show(self, runs: list[RunCurves], since: dict[int, int]) -> None:
        self.runs = runs
        for r in runs:
            steps = self.steps.setdefault(r.run.id, [])
            last = int(steps[-1]["step"]) if steps else -1
            if last == since.get(r.run.id, -1):  # not a stale read
                steps.extend(s for s in r.steps if s["step"] > last)
                self.steps[r.run.id] = thin_steps(steps)
        # the last step too: thinning may leave as many steps as before, later ones
        shown = tuple((len(held := self.steps.get(r.run.id, [])), held[-1]["step"] if held else None,
                       tuple((v.epoch, v.eer) for v in r.validations)) for r in runs)
        # the figures change with validations and picks (a pick alone changes no curve), not with steps
        validated = tuple((v, tuple((p.id, p.best_epoch, p.best_checkpoint) for p in r.validators))
                          for (_, _, v), r in zip(shown, runs, strict=True))
        if validated != self._validated:
            self._validated = validated
            self._load_pivot(*self._systems())
        if shown == self._shown:
            return
        first = self._shown is None
        self._shown = shown
        labels = [run_label(r) for r in runs]
        self.query_one(LossPlot).set_series([LossSeries(label, self.steps.get(r.run.id, []))
                                             for label, r in zip(labels, runs, strict=True)])
        banded: set[str] = set()   # each group's band drawn once, with its first run
        series = []
        for label, r in zip(labels, runs, strict=True):
            group = r.run.run_group if r.group_epochs and r.run.run_group not in banded else None
            banded.add(group or "")
            best, by_hand = picked(r.validators)  # marked where the run detail marks it: its pick
            series.append(EerSeries(label, r.validations, best, band=r.group_epochs if group else (),
                                    band_label=group or "", picked=by_hand))
        self.query_one(EerPlot).set_series(series)
        if first:
            self._show_differences(labels, [r.config for r in runs])
        self._significance(systems(runs))

    def _show_differences(self, labels: list[str], configs: list[dict]) -> None:
        rows = [[key, *["—" if v is None else str(v) for v in values]] for key, values in config_differences(configs)]
        self.query_one("#diff", PlainTable).fill(["key", *labels], rows or [["(same config)", *["" for _ in labels]]])

    @work(thread=True, exclusive=True, group="compare-pivot")
    def _load_pivot(self, run_ids: list[int], groups: list[str]) -> None:
        try:
            with reader.store_at(self.spkemb.db_path) as store:
                run_ids, groups = sweeps_as_runs(store, run_ids, groups)
                pivot = build_pivot(store, run_ids, groups) if run_ids or groups else Pivot((), (), {})
        except Exception as e:  # noqa: BLE001 - reported
            self.app.call_from_thread(self.spkemb.error, f"cannot read the figures: {e}")
            return
        self.app.call_from_thread(self._show_pivot, pivot)

    def _show_pivot(self, pivot: Pivot) -> None:
        self.pivot = pivot
        if self.sort is not None:
            pivot = pivot.sorted_by(self.sort[0], descending=self.sort[1])
        table = self.query_one("#pivot", PlainTable)
        column = table.cursor_column
        rows = [[cell_text(cell, c) for c in SHOWN_COLUMNS] for cell in pivot.cells]
        table.fill([c.title + self._arrow(c.key) for c in SHOWN_COLUMNS],
                   rows or [["(no validation yet)", *["" for _ in SHOWN_COLUMNS[1:]]]])
        table.move_cursor(column=column)

    def _arrow(self, key: str) -> str:
        if self.sort is None or self.sort[0] != key:
            return ""
        return " ▼" if self.sort[1] else " ▲"

    def action_sort(self) -> None:
        """Sort the figures on the column under the cursor; again on the same column, the other way."""
        self._sort_on(SHOWN_COLUMNS[self.query_one("#pivot", DataTable).cursor_column].key)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        if event.data_table.id == "pivot":
            event.data_table.move_cursor(column=event.column_index)
            self._sort_on(SHOWN_COLUMNS[event.column_index].key)

    def _sort_on(self, key: str) -> None:
        descending = self.sort is not None and self.sort == (key, False)
        self.sort = (key, descending)
        if self.pivot is not None:
            self._show_pivot(self.pivot)

    def _systems(self) -> tuple[list[int], list[str]]:
        """The runs and groups the figures compare: each training or validate run (apply runs have no
        figures of their own), or with ``by_group`` the group of each run that has one."""
        runs = [r.run for r in self.runs if r.run.kind in ("train", "validate")]
        if not self.by_group:
            return [r.id for r in runs], []
        return [r.id for r in runs if not r.run_group], list(dict.fromkeys(r.run_group for r in runs if r.run_group))

    def _pivot_title(self) -> str:
        return f"figures{' by group' if self.by_group else ''} (s: sort on the column, g: runs/groups, r: report)"

    def action_groups(self) -> None:
        """Show each run's group as one system (mean ± std over its runs), or each run again."""
        self.by_group = not self.by_group
        self.query_one("#pivot").border_title = self._pivot_title()
        self._load_pivot(*self._systems())

    def action_report(self) -> None:
        """Write ``spkemb-engine report`` of the compared runs (or groups) into WORKSPACE/reports/compare-TIME."""
        # the table's systems: a sweep's group is its runs there
        run_ids, groups = self.pivot.named() if self.pivot is not None else self._systems()
        if not run_ids and not groups:
            self.app.notify("None of these runs has figures to report (training or validate runs).",
                            severity="warning")
            return
        folder = report_folder(self.spkemb.workspace.root, self.spkemb.now())
        self.app.notify(f"Writing the report into {self.spkemb.workspace.show(folder)}…")
        self._write_report(request_argv(ReportRequest(run_id=tuple(run_ids), group=tuple(groups) or None,
                                                      out=str(folder), db=str(self.spkemb.db_path))), folder)

    @work(thread=True, group="compare-report")
    def _write_report(self, argv: list[str], folder: Path) -> None:
        code, said = run_quick(argv, timeout=REPORT_TIMEOUT_S)
        if code != 0:
            self.app.call_from_thread(self.spkemb.error, f"report failed: {said.splitlines()[-1] if said else code}")
            return
        self.app.call_from_thread(self._reported, folder)

    def _reported(self, folder: Path) -> None:
        self.report_dir = folder
        page = self.spkemb.workspace.show(folder / HTML_FILE)
        self.query_one("#pivot").border_subtitle = f"report: {page}"
        self.app.notify(f"Report written: {page} (tables, figures in PNG/SVG/PDF)", timeout=10)

    def action_det(self) -> None:
        """DET curves and score histograms of the picked epoch of every compared run, overlaid."""
        from app.screens.det import DetScreen

        trials = shared_trials(self.runs)
        sources = [source for r in self.runs if (source := det_source(r, trials)) is not None]
        if trials is None and len(sources) > 1:
            self.app.notify("These runs share no trial list: validate them on one to overlay their DET curves.",
                            severity="warning")
            return
        if not sources:
            self.app.notify("None of these runs has a validated epoch yet.", severity="warning")
            return
        self.app.push_screen(DetScreen(sources))


#: seconds a report may take (matplotlib draws every figure in three formats)
REPORT_TIMEOUT_S = 600.0


#: the pivot's columns as this screen shows them: the figures before the long trial list's name
SHOWN_COLUMNS = tuple([c for c in COLUMNS if c.key not in ("runs", "trials")]
                      + [c for c in COLUMNS if c.key in ("runs", "trials")])


def report_folder(root: Path, now: float) -> Path:
    """``ROOT/reports/compare-20240501-120000`` (``-2``, ``-3`` … when taken): a report's own new folder."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    folder = root / "reports" / f"compare-{stamp}"
    n = 1
    while folder.exists():
        n += 1
        folder = root / "reports" / f"compare-{stamp}-{n}"
    return folder
