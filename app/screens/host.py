"""What the screens use of the application (``app.app.SpkembApp``), typed for them.

The screens sit below ``app.app`` (tests/test_architecture.py) and so cannot name ``SpkembApp``;
Textual types ``self.app`` as ``App[Any]``. ``Spkemb`` spells the part the screens read, and
``app.app`` has mypy check that ``SpkembApp`` offers it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from textual import work
from textual.screen import Screen
from textual.worker import Worker

if TYPE_CHECKING:
    from app.data.forks import ForkPlan
    from app.data.workspace import Workspace
    from app.dialogs.clean import CleanChoice
    from app.launching.children import Launcher, PendingLaunch
    from engine.records import Run
    from engine.requests import SweepRequest


class Spkemb(Protocol):
    """The application's state and actions that the screens use."""

    workspace: Workspace
    #: the clock (the tests fix it)
    now: Callable[[], float]
    refresh_interval: float
    query_time_limit: float | None
    pending: list[PendingLaunch]
    launcher: Launcher

    @property
    def db_path(self) -> Path: ...

    def error(self, message: str) -> None: ...

    def blocking_error(self, title: str, message: str) -> None: ...

    def launch_sweep(self, request: SweepRequest) -> None: ...

    def action_go_launch(self, exp_dir: str | None = None, fork: ForkPlan | None = None) -> None: ...

    def action_open_run(self, run_id: int) -> None: ...


def reading(worker: Worker | None) -> bool:
    """Whether the read started by ``worker`` is still running (not yet done, failed or cancelled).

    A screen's timer skips its read while the one before runs: a thread cannot be cancelled, so a read
    slower than the interval (a million steps, a lab's runs) was started again every tick, each new one
    reading what the last had not delivered yet, their threads and rows piling up.
    """
    return worker is not None and not worker.is_finished


class SpkembScreen(Screen):
    """A screen of the application, with the application typed as ``Spkemb``."""

    @property
    def spkemb(self) -> Spkemb:
        # Textual types .app as App[Any]; these screens only ever run in the SpkembApp
        return cast("Spkemb", self.app)

    def ask_to_stop(self, run: Run) -> None:
        """Stop ``run`` (SIGTERM: it checkpoints) once the user says yes: a key pressed by mistake on
        the Runs screen or a run's own screen must not end days of training."""
        from app.dialogs import ConfirmDialog

        def answer(yes: bool | None) -> None:
            if not yes:
                return
            why = self.spkemb.launcher.stop(run)
            if why:
                self.spkemb.error(f"run #{run.id} not stopped: {why}")
            else:
                self.app.notify(f"SIGTERM sent to run #{run.id}: it checkpoints and stops.")

        self.app.push_screen(ConfirmDialog(f"Stop run #{run.id} ({run.name or run.kind})? "
                                           "It writes a checkpoint and can be resumed."), answer)

    def ask_clean(self, dirs: list[str], what: str) -> None:
        """Ask what ``spkemb-engine clean`` keeps of ``dirs`` (TRN_DIRs, EXP_DIRs), list what it would delete,
        then delete it once the user says yes; ``what`` names them in the messages (``run #12``, ``sweep lr``)."""
        from app.dialogs.clean import CleanDialog

        def chosen(choice: CleanChoice | None) -> None:
            if choice is not None:
                self._clean_listing(dirs, what, choice)

        self.app.push_screen(CleanDialog(what), chosen)

    @work(thread=True, group="clean")
    def _clean_listing(self, dirs: list[str], what: str, choice: CleanChoice) -> None:
        from app.dialogs import ConfirmDialog
        from app.launching import commands
        from app.launching.children import run_quick

        db = self.spkemb.db_path

        def argv(yes: bool) -> list[str]:
            return commands.clean_argv(dirs, keep_last=choice.keep_last, keep_best=choice.keep_best,
                                       skipped=choice.skipped, yes=yes, db=db)

        code, listing = run_quick(argv(False))
        if code != 0:
            self.app.call_from_thread(self.spkemb.error, f"clean of {what} failed: {listing}")
            return
        if listing.splitlines()[-1] == "nothing to delete":
            self.app.call_from_thread(self.app.notify, f"Nothing to clean in {what}: every epoch checkpoint is needed.")
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._clean(argv(True), what)

        self.app.call_from_thread(self.app.push_screen, ConfirmDialog(clean_question(listing)), answer)

    @work(thread=True, group="clean")
    def _clean(self, argv: list[str], what: str) -> None:
        from app.launching.children import run_quick

        code, said = run_quick(argv)
        if code == 0:
            self.app.call_from_thread(self.app.notify, f"{what}: {said.splitlines()[-1]}")
        else:
            self.app.call_from_thread(self.spkemb.error, f"clean of {what} failed: {said}")


#: lines of ``clean``'s listing that the confirmation shows (a sweep's lists a few lines per trial)
CLEAN_LINES = 16


def clean_question(listing: str) -> str:
    """``clean``'s listing (cut to CLEAN_LINES lines), then the question with the space it frees."""
    *lines, total = listing.splitlines()
    if len(lines) > CLEAN_LINES:
        lines = lines[:CLEAN_LINES - 1] + [f"… and {len(lines) - CLEAN_LINES + 1} more lines "
                                            "(`spkemb-engine clean` lists them all)"]
    freed = total.rpartition(" free ")[2]
    return "\n".join(lines) + f"\n\nDelete these checkpoints and free {freed}? (their scores and EERs stay)"
