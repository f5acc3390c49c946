"""Sweeps: every sweep, the queue process, the chosen sweep's trials and their EER against each parameter."""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.css.query import NoMatches
from textual.widgets import DataTable, Header, Static
from textual.worker import Worker

from app.data.sweeps import Sweep, SweepsState, Trial, read_sweeps
from app.launching import commands
from app.screens.host import SpkembScreen, reading
from app.views.plain import plain
from app.views.sweeps_view import SWEEP_COLUMNS, TRIAL_COLUMNS, queue_text, sweep_row, trial_row
from app.widgets.keys_footer import KeysFooter
from app.widgets.plain_table import PlainTable
from app.widgets.sweep_plot import SweepPlot
from engine.config.yamlsrc import read_yaml_file
from engine.errors import ConfigError
from engine.layout import ExperimentDir
from engine.requests import QueueRequest


class SweepsScreen(SpkembScreen):
    DEFAULT_CSS = """
    SweepsScreen #queue { height: auto; padding: 0 1; }
    SweepsScreen #sweeps { height: auto; max-height: 10; }
    SweepsScreen #trials { height: 1fr; min-height: 6; }
    """
    BINDINGS = [("escape", "app.pop_screen", "Back"), ("s", "stop_queue", "Stop queue"),
                ("g", "start_queue", "Start queue"), ("e", "end_sweep", "End sweep"),
                ("n", "new_run", "New run of best"), ("f", "fork", "Fork from best"),
                ("C", "clean", "Clean checkpoints")]

    def __init__(self) -> None:
        super().__init__()
        self.state = SweepsState((), None)
        self.chosen: int | None = None
        #: refreshes shown so far (the tests wait on it)
        self.shown = 0
        #: the read in flight, if any (polls wait for it: ``reading``)
        self._reading: Worker | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("queue: …", id="queue")
        yield PlainTable(id="sweeps", cursor_type="row")
        yield PlainTable(id="trials", cursor_type="row")
        yield SweepPlot(id="plot")
        yield KeysFooter()

    def on_mount(self) -> None:
        for table_id, columns in (("#sweeps", SWEEP_COLUMNS), ("#trials", TRIAL_COLUMNS)):
            table = self.query_one(table_id, DataTable)
            for key, header in columns:
                table.add_column(header, key=key)
        self._poll()
        self.set_interval(self.spkemb.refresh_interval, self._poll)

    def _poll(self) -> None:
        if not reading(self._reading):
            self._reading = self.reload()

    @work(thread=True, exclusive=True, group="sweeps")
    def reload(self) -> None:
        try:
            state = read_sweeps(self.spkemb.db_path)
        except Exception as e:  # noqa: BLE001 - a read that fails is said on the screen, never raised
            state = SweepsState((), None, error=str(e))
        self.app.call_from_thread(self._show, state)

    def _show(self, state: SweepsState) -> None:
        if not self.is_attached:  # the screen was left (or the app quit) while the read ran
            return
        try:
            queue = self.query_one("#queue", Static)
        except NoMatches:  # attached still, its widgets already taken down as the app quits
            return
        self.state = state
        queue.update(
            plain(f"cannot read the sweeps: {state.error}", "red") if state.error is not None
            else plain(queue_text(state.queue, self.spkemb.now())))
        table = self.query_one("#sweeps", DataTable)
        table.clear()
        for sweep in state.sweeps:
            row = sweep_row(sweep)
            table.add_row(*(row[k] for k, _ in SWEEP_COLUMNS), key=str(sweep.id))
        if state.sweeps and self.chosen not in {s.id for s in state.sweeps}:
            self.chosen = state.sweeps[0].id
        if self.chosen is not None:
            index = next((i for i, s in enumerate(state.sweeps) if s.id == self.chosen), 0)
            table.move_cursor(row=index)
        self._show_trials()
        self.shown += 1

    @on(DataTable.RowHighlighted, "#sweeps")
    def _chosen(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None and int(event.row_key.value) != self.chosen:
            self.chosen = int(event.row_key.value)
            self._show_trials()

    def sweep(self) -> Sweep | None:
        return next((s for s in self.state.sweeps if s.id == self.chosen), None)

    def _show_trials(self) -> None:
        sweep = self.sweep()
        table = self.query_one("#trials", DataTable)
        table.clear()
        for trial in sweep.trials if sweep else ():
            row = trial_row(trial)
            table.add_row(*(row[k] for k, _ in TRIAL_COLUMNS), key=str(trial.number))
        self.query_one(SweepPlot).set_sweep(sweep)

    # -- the queue process -------------------------------------------------------------------
    def action_stop_queue(self) -> None:
        queue = self.state.queue
        if queue is None:
            self.app.notify("No queue is running.", severity="warning")
            return
        why = self.spkemb.launcher.stop_pid(queue.pid, queue.pid_start, queue.host)
        if why:
            self.spkemb.error(f"cannot stop the queue: {why}")
        else:
            self.app.notify(f"asked the queue (pid {queue.pid}) to stop; the runs it started go on")

    def action_start_queue(self) -> None:
        from engine.sweeps.queue import log_path
        from engine.sweeps.slots import default_slots

        if self.state.queue is not None:
            self.app.notify(f"The queue runs already (pid {self.state.queue.pid}).")
            return
        sweep = self.sweep()
        request = QueueRequest(slots=sweep.slots if sweep else default_slots(), db=str(self.spkemb.db_path))
        pid = self.spkemb.launcher.launch(commands.request_argv(request), log_path(self.spkemb.db_path))
        self.app.notify(f"started the queue (pid {pid}, slots {request.slots})")

    def action_end_sweep(self) -> None:
        """End the chosen sweep once the user says yes: no more trials, its queued runs off the queue
        (``queue --cancel-sweep``); its running trials go on."""
        from app.dialogs import ConfirmDialog

        sweep = self.sweep()
        if sweep is None:
            self.app.notify("No sweep yet.", severity="warning")
            return
        argv = commands.request_argv(QueueRequest(cancel_sweep=sweep.name, db=str(self.spkemb.db_path)))

        def answer(yes: bool | None) -> None:
            if yes:
                self._end_sweep(argv)

        self.app.push_screen(ConfirmDialog(f"End sweep {sweep.name}? It makes no more trials and its queued runs are "
                                           "taken off the queue; its running trials go on."), answer)

    @work(thread=True, group="sweeps-end")
    def _end_sweep(self, argv: list[str]) -> None:
        from app.launching.children import run_quick

        code, said = run_quick(argv)
        line = said.splitlines()[-1] if said else f"exit {code}"
        if code == 0:
            self.app.call_from_thread(self.app.notify, line.removeprefix("queue: "))
        else:
            self.app.call_from_thread(self.spkemb.error, line)
        self.reload()

    def action_clean(self) -> None:
        """The epoch checkpoints no result needs of the chosen sweep's trials: listed, deleted once confirmed."""
        sweep = self.sweep()
        folders = [t.exp_dir for t in sweep.trials if t.exp_dir and Path(t.exp_dir).is_dir()] if sweep else []
        if sweep is None or not folders:
            self.app.notify("No trial folder to clean yet.", severity="warning")
            return
        self.ask_clean(folders, f"sweep {sweep.name}")

    # -- the best trial -----------------------------------------------------------------------
    def _best(self) -> Trial | None:
        sweep = self.sweep()
        best = sweep.best() if sweep else None
        if sweep is None:
            self.app.notify("No sweep yet: make one from the Configs screen or with spkemb-engine sweep.",
                            severity="warning")
        elif best is None:
            self.app.notify("No trial of this sweep has been validated yet.", severity="warning")
        return best

    def action_new_run(self) -> None:
        best = self._best()
        if best is not None:
            self.spkemb.action_go_launch(best.exp_dir)

    def action_fork(self) -> None:
        from app.data.experiments import fork_folder
        from app.data.forks import ForkPlan
        from app.screens.configs import ConfigsScreen

        best = self._best()
        if best is None:
            return
        checkpoint = best.best_checkpoint()
        if checkpoint is None or best.best_epoch is None or not checkpoint.is_file():
            self.app.notify(f"trial {best.number} has no checkpoint file of its best epoch.", severity="warning")
            return
        try:
            config = read_yaml_file(ExperimentDir(Path(best.exp_dir)).config).data
        except (OSError, ConfigError) as e:
            self.spkemb.error(f"cannot fork trial {best.number}: {e}")
            return
        folder = fork_folder(self.spkemb.workspace.root, Path(best.exp_dir), best.best_epoch)
        self.app.push_screen(ConfigsScreen(fork=ForkPlan(config, folder, str(checkpoint),
                                                         f"fork of trial {best.number}, epoch {best.best_epoch}")))
