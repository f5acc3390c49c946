"""The Textual application: screens, key bindings, the command palette."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.command import DiscoveryHit, Hits
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.system_commands import SystemCommandsProvider

from app.data.workspace import Workspace, resolve_workspace
from app.launching.children import Launcher
from engine.console import printable

if TYPE_CHECKING:
    from app.data.forks import ForkPlan
    from app.launching.children import PendingLaunch
    from app.screens.host import Spkemb
    from engine.requests import SweepRequest

#: seconds a query of the Query screen may run unless ``spkemb-tui --query-time-limit`` says otherwise
QUERY_TIME_LIMIT_S = 5.0


#: the app's own commands, first in the palette: (name, help, action)
APP_COMMANDS = [
    ("Runs", "show every run", "go_runs"),
    ("Configs", "create or edit an experiment config", "go_configs"),
    ("Launch", "start a training run (and its validation)", "go_launch"),
    ("Query", "read-only SQL over the runs database", "go_query"),
    ("Compare", "overlay the curves of the marked runs", "go_compare"),
    ("Sweeps", "sweeps, their trials and the device queue", "go_sweeps"),
    ("Help", "the keys of this screen (?)", "help"),
]


class AppCommandsFirst(SystemCommandsProvider):
    """The palette before anything is typed: the app's commands in their order, then Textual's."""

    async def discover(self) -> Hits:
        for name, help_text, callback, discover in self.app.get_system_commands(self.screen):
            if discover:
                yield DiscoveryHit(name, callback, help=help_text)


class SpkembApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "spkemb"
    COMMANDS = {AppCommandsFirst}
    BINDINGS = [
        # every screen's footer shows its own way out (q or escape); ctrl+q works everywhere, unshown
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
        Binding("question_mark", "help", "Help", show=True),
        # where `?` is text (the Query screen's SQL, a form's field), F1 opens Help all the same
        Binding("f1", "help", "Help", show=False),
    ]

    def __init__(self, workspace: Workspace, *, now: Callable[[], float] = time.time,
                 refresh_interval: float = 1.0, query_time_limit: float | None = QUERY_TIME_LIMIT_S) -> None:
        super().__init__()
        self.workspace = workspace
        self.now = now
        self.refresh_interval = refresh_interval
        #: seconds a query of the Query screen may run (None: no limit)
        self.query_time_limit = query_time_limit
        #: launches not yet seen in the database
        self.pending: list[PendingLaunch] = []
        #: the children this TUI started (launched, polled, stopped through it)
        self.launcher = Launcher()
        self.sub_title = workspace.show(workspace.db_path)

    @property
    def db_path(self) -> Path:
        return self.workspace.db_path

    async def action_quit(self) -> None:
        """Quit; the runs go on, and a validation launched beside a training that has not recorded its
        run yet is started first (it was started once the run showed up, which no TUI would see now).
        A query still running is stopped first: the exit waits for its thread, up to its time limit."""
        from app.screens.query import QueryScreen

        self.launcher.start_waiting(self.pending)
        for screen in self.screen_stack:
            if isinstance(screen, QueryScreen):
                screen.stop_query()
        await super().action_quit()

    def on_mount(self) -> None:
        from app.screens.runs import RunsScreen

        if signal.getsignal(signal.SIGHUP) != signal.SIG_IGN:  # nohup's stays ignored
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._hung_up)
        self.push_screen(RunsScreen())

    def on_unmount(self) -> None:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)

    def _hung_up(self) -> None:
        """The terminal closed (an SSH session dropped): what waited on a training is started, as quitting
        starts it (a validation launched beside it was lost), and the TUI ends as a hangup ends it."""
        try:
            self.launcher.start_waiting(self.pending)
        finally:  # a launch that failed leaves no TUI running on a terminal that is gone
            signal.signal(signal.SIGHUP, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGHUP)

    def _runs_screen(self):
        from app.screens.runs import RunsScreen

        while len(self.screen_stack) > 2 and not isinstance(self.screen, RunsScreen):
            self.pop_screen()
        return self.screen

    def action_go_runs(self) -> None:
        self._runs_screen()

    def action_go_configs(self) -> None:
        from app.screens.configs import ConfigsScreen

        self.push_screen(ConfigsScreen())

    def action_go_launch(self, exp_dir: str | None = None, fork: ForkPlan | None = None) -> None:
        from app.screens.launch import LaunchScreen

        self.push_screen(LaunchScreen(exp_dir=exp_dir, fork=fork))

    def action_go_sweeps(self) -> None:
        from app.screens.sweeps import SweepsScreen

        self.push_screen(SweepsScreen())

    def launch_sweep(self, request: SweepRequest) -> None:
        """Run ``spkemb-engine sweep`` (which starts the queue, detached) and show the Sweeps screen."""
        from app.launching.commands import request_argv

        log = Path(f"{self.db_path}-sweep.log")
        try:
            pid = self.launcher.launch(request_argv(request), log)
        except OSError as e:
            self.blocking_error("Cannot launch the sweep", str(e))
            return
        self.notify(f"sweep launched (pid {pid}); log {self.workspace.show(log)}")
        self.action_go_sweeps()

    def action_go_query(self) -> None:
        from app.screens.query import QueryScreen

        self.push_screen(QueryScreen())

    def action_go_compare(self) -> None:
        from app.screens.runs import RunsScreen

        screen = self._runs_screen()
        if isinstance(screen, RunsScreen):
            screen.action_compare()

    def action_open_run(self, run_id: int) -> None:
        from app.screens.run_detail import RunDetailScreen

        self.push_screen(RunDetailScreen(run_id))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette: the app's own commands first, then Textual's (theme, screenshot, …)."""
        for name, help_text, action in APP_COMMANDS:
            yield SystemCommand(name, help_text, partial(self.run_action, action))
        yield from super().get_system_commands(screen)

    def action_help(self) -> None:
        from app.dialogs import HelpScreen, screen_keys, screen_name

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
            return
        self.push_screen(HelpScreen(screen_name(self.screen), screen_keys(self.screen)))

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """A notification whose text is shown as it is: ours hold paths, run names and engine errors,
        never markup (``markup`` is Textual's parameter, ignored)."""
        super().notify(printable(message), title=title, severity=severity, timeout=timeout, markup=False)

    def error(self, message: str) -> None:
        """A transient problem: a red notification."""
        self.notify(message, severity="error", timeout=8)

    def blocking_error(self, title: str, message: str) -> None:
        """A problem the user must read before going on."""
        from app.dialogs import ErrorDialog

        self.push_screen(ErrorDialog(title, message))


if TYPE_CHECKING:
    # mypy checks here that the application offers what the screens use of it
    _HOST: type[Spkemb] = SpkembApp


def make_app(workspace: str | Path | None = None, db: str | Path | None = None,
             database: str | Path | None = None, *, now: Callable[[], float] = time.time,
             refresh_interval: float = 1.0, query_time_limit: float | None = QUERY_TIME_LIMIT_S) -> SpkembApp:
    """The TUI for a workspace; shared by ``spkemb-tui`` and the tests (which fix ``now``)."""
    ws = resolve_workspace(workspace, None if db is None else str(db),
                           None if database is None else str(database))
    return SpkembApp(ws, now=now, refresh_interval=refresh_interval, query_time_limit=query_time_limit)
