"""The Textual application: screens, key bindings, the command palette."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import App
from textual.command import Hit, Hits, Provider

from app.workspace import Workspace, resolve_workspace

if TYPE_CHECKING:
    from app.processes import PendingLaunch

#: seconds a query of the Query screen may run unless ``spkemb-tui --query-time-limit`` says otherwise
QUERY_TIME_LIMIT_S = 5.0


class SpkembCommands(Provider):
    """Command palette entries: every screen and the main actions."""

    COMMANDS = [
        ("Runs", "show every run", "go_runs"),
        ("Configs", "create or edit an experiment config", "go_configs"),
        ("Launch", "start a training run (and its validation)", "go_launch"),
        ("Query", "read-only SQL over the runs database", "go_query"),
        ("Compare", "overlay the curves of the marked runs", "go_compare"),
    ]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, action in self.COMMANDS:
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), partial(self.app.run_action, action), help=help_text)


class SpkembApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "spkemb"
    COMMANDS = App.COMMANDS | {SpkembCommands}
    BINDINGS = [("ctrl+q", "quit", "Quit")]

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
        self.sub_title = workspace.show(workspace.db_path)

    @property
    def db_path(self) -> Path:
        return self.workspace.db_path

    def on_mount(self) -> None:
        from app.screens.runs import RunsScreen

        self.push_screen(RunsScreen())

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

    def action_go_launch(self, exp_dir: str | None = None, init_from: str | None = None) -> None:
        from app.screens.launch import LaunchScreen

        self.push_screen(LaunchScreen(exp_dir=exp_dir, init_from=init_from))

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

    def error(self, message: str) -> None:
        """A transient problem: a red notification."""
        self.notify(message, severity="error", timeout=8)

    def blocking_error(self, title: str, message: str) -> None:
        """A problem the user must read before going on."""
        from app.dialogs import ErrorDialog

        self.push_screen(ErrorDialog(title, message))


def make_app(workspace: str | Path | None = None, db: str | Path | None = None,
             database: str | Path | None = None, *, now: Callable[[], float] = time.time,
             refresh_interval: float = 1.0, query_time_limit: float | None = QUERY_TIME_LIMIT_S) -> SpkembApp:
    """The TUI for a workspace; shared by ``spkemb-tui`` and the tests (which fix ``now``)."""
    ws = resolve_workspace(workspace, None if db is None else str(db),
                           None if database is None else str(database))
    return SpkembApp(ws, now=now, refresh_interval=refresh_interval, query_time_limit=query_time_limit)
