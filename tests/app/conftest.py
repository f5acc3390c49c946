"""Fixtures of the TUI tests: runs databases filled through engine.store, a fixed clock."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from engine.records import Checkpoint, EpochSummary, ValidationResult
from engine.store import open_store

if TYPE_CHECKING:
    from app.screens.configs import ConfigsScreen

#: the clock of every TUI test: 2024-05-01 12:00:00 UTC
NOW = 1714564800.0


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> None:
    """Times print the same everywhere."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


def fill_db(path: Path, root: Path) -> dict[str, int]:
    """Two finished training runs with steps, epochs, checkpoints and validations; one failed."""
    ids = {}
    with open_store(path) as store:
        for i, (name, margin, status) in enumerate([("aam-m0.2", 0.2, "completed"),
                                                    ("aam-m0.1", 0.1, "completed"),
                                                    ("softmax", None, "failed")]):
            exp = root / "experiments" / name
            trn = exp / "train" / "Demo.SpeakerVerification.Voices.train"
            config = {"task": {"name": "AdditiveAngularMarginLoss" if margin else "Softmax",
                               "params": {"margin": margin} if margin else {}},
                      "scheduler": {"name": "ConstantScheduler", "params": {"learning_rate": 0.01}}}
            start = NOW - 7200 + 600 * i
            run = store.create_run(kind="train", exp_dir=exp, out_dir=trn,
                                   protocol="Demo.SpeakerVerification.Voices", subset="train",
                                   config=config, command=["spkemb-engine", "train"], device="cpu",
                                   target_epoch=3, name=name, _at=start)
            ids[name] = run
            rows = [{"step": s, "epoch": s // 20, "loss": 10.0 / (1 + s / (10 + i)) + 0.01 * (s % 3),
                     "lr": 0.01, "chunks_per_s": 100.0, "time": start + s} for s in range(60)]
            store.add_steps(run, rows, _at=start + 60)
            for epoch in range(3 if status == "completed" else 1):
                store.add_epoch(run, EpochSummary(epoch=epoch + 1, loss=rows[20 * epoch + 19]["loss"], lr=0.01,
                                chunks_per_s=100.0, seconds=20.0))
                store.add_checkpoint(run, Checkpoint(epoch=epoch + 1, step=20 * (epoch + 1),
                                     path=str(trn / "weights" / f"{epoch + 1:04d}.pt"), partial=False))
            store.heartbeat(run, epoch=3, step=59)
            store.set_status(run, status, reason=None if status == "completed" else "NaN loss")
            if status == "completed":
                val_dir = trn / "validate_equal_error_rate" / "Demo.SpeakerVerification.Voices.development"
                val = store.create_run(kind="validate", exp_dir=exp, out_dir=val_dir,
                                       protocol="Demo.SpeakerVerification.Voices", subset="development",
                                       config=config, command=["spkemb-engine", "validate"], device="cpu",
                                       target_epoch=3, parent_id=run, name=f"{name} validate",
                                       _at=start + 30)
                for epoch, eer in [(1, 0.30 + 0.02 * i), (2, 0.21 + 0.02 * i), (3, 0.24 + 0.02 * i)]:
                    store.add_validation(val, ValidationResult(epoch=epoch, eer=eer, eer_low=eer - 0.03,
                                         eer_high=eer + 0.03, mindcf_01=0.9 - 0.1 * epoch,
                                         mindcf_005=0.8, threshold=0.5, n_trials=400,
                                         scores_path=str(val_dir / "scores" / f"{epoch:04d}.txt")), train_run_id=run)
                store.set_best(val, epoch=2, eer=0.21 + 0.02 * i, how="lowest-eer")
                store.set_status(val, "completed")
                ids[f"{name} validate"] = val
    fix_times(path)
    return ids


def fix_times(path: Path) -> None:
    """Pin the times that the store takes from the clock, so snapshots do not move."""
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("UPDATE runs SET heartbeat_at = started_at + 1800, "
                 "ended_at = CASE WHEN status = 'running' THEN NULL ELSE started_at + 1800 END, "
                 "host = 'testhost', pid = 4242")
    conn.commit()
    conn.close()


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace folder (cwd) with a filled runs.db."""
    root = tmp_path / "ws"
    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.delenv("SPKEMB_DB", raising=False)
    fill_db(root / "runs.db", root)
    return root


def make(root: Path, **kwargs):
    from app.app import make_app

    return make_app(root, now=lambda: NOW, **kwargs)


def _holds(predicate) -> bool:
    """``predicate()``, False while a widget it reads is not mounted yet (a rebuilt form mounts
    its fields after the screen's state names them)."""
    from textual.css.query import NoMatches

    try:
        return bool(predicate())
    except NoMatches:
        return False


def notified(app, text: str, severity: str | None = None) -> bool:
    """Whether the app has shown a notification holding ``text`` (of ``severity``, when given)."""
    return any(text in str(n.message) and severity in (None, n.severity) for n in app._notifications)


def showing(app, screen_type: type) -> bool:
    """Whether the app shows a ``screen_type`` whose children are mounted: a screen is on top as soon as
    it is pushed, before it is composed, and a loaded machine has shown the one without the other."""
    return isinstance(app.screen, screen_type) and app.screen.is_mounted


async def wait_for(pilot, predicate, timeout: float = 60.0) -> None:
    """Let the app run until ``predicate()`` is true (workers report through messages); the timeout
    is for a 2-core machine under load, where building the config form alone has taken over 10 s."""
    deadline = time.monotonic() + timeout
    while not _holds(predicate):
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached within the timeout")
        await pilot.pause(0.05)


async def settled(pilot, timeout: float = 30.0) -> None:
    """Let the app run until two pictures of its screen taken 0.3 s apart are the same: workers,
    column widths and plots that finish late on a loaded machine are then all in the picture."""
    deadline = time.monotonic() + timeout
    before = pilot.app.export_screenshot()
    while True:
        await pilot.pause(0.3)
        now = pilot.app.export_screenshot()
        if now == before:
            return
        if time.monotonic() > deadline:
            raise AssertionError("the screen still changes after the timeout")
        before = now


def columns_sized(table) -> bool:
    """Whether a DataTable has measured every row it holds: it widens its columns when idle, after
    the rows are in, so a picture taken between the two shows header-wide columns."""
    from rich.cells import cell_len

    return all(cell_len(str(cell)) <= column.content_width
               for key in table.rows for column, cell in zip(table.ordered_columns, table.get_row(key), strict=False))


async def open_run(pilot, name: str, runs: int = 5) -> None:
    """From the Runs screen, once its ``runs`` rows are shown, open the run called ``name``."""
    from app.screens.run_detail import RunDetailScreen
    from app.views.runs_view import name_cell
    from app.widgets.runs_table import RunsTable

    table = pilot.app.screen.query_one(RunsTable)
    await wait_for(pilot, lambda: table.row_count == runs)
    table.move_cursor(row=next(i for i in range(table.row_count) if str(table.get_row_at(i)[1]) == name_cell(name)))
    await pilot.press("enter")
    await wait_for(pilot, lambda: showing(pilot.app, RunDetailScreen))


async def compare_runs(pilot, names: tuple[str, ...], runs: int = 5) -> None:
    """From the Runs screen, once its ``runs`` rows are shown, mark the runs called ``names`` and
    open the Compare screen on them."""
    from app.screens.compare import CompareScreen
    from app.views.runs_view import name_cell
    from app.widgets.runs_table import RunsTable

    table = pilot.app.screen.query_one(RunsTable)
    await wait_for(pilot, lambda: table.row_count == runs)
    for name in names:
        table.move_cursor(row=next(i for i in range(table.row_count) if str(table.get_row_at(i)[1]) == name_cell(name)))
        await pilot.press("space")
    await pilot.press("c")
    await wait_for(pilot, lambda: showing(pilot.app, CompareScreen)
                   and len(pilot.app.screen.runs) == len(names))


os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")


async def open_configs(pilot) -> ConfigsScreen:
    """The Configs screen (``n``), once its form is built."""
    from app.screens.configs import ConfigsScreen

    await pilot.press("n")
    await wait_for(pilot, lambda: showing(pilot.app, ConfigsScreen) and getattr(pilot.app.screen, "keys", []))
    return pilot.app.screen


async def open_launch(pilot, workspace: Path, protocol: str = "Demo.SpeakerVerification.Voices"):
    """The Launch screen (``l``) on the workspace's experiment ``experiments/aam-m0.2``, ``protocol`` chosen."""
    from textual.widgets import Select

    from app.screens.launch import LaunchScreen

    config = workspace / "experiments" / "aam-m0.2" / "config.yml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("x: 1\n")
    await pilot.press("l")
    await wait_for(pilot, lambda: showing(pilot.app, LaunchScreen))
    launch = pilot.app.screen
    await wait_for(pilot, lambda: launch.query_one("#exp").value is not Select.BLANK)
    launch.query_one("#protocol").set_options([(protocol, protocol)])
    launch.query_one("#protocol").value = protocol
    return launch


async def open_query(pilot):
    """The Query screen (``s``)."""
    from app.screens.query import QueryScreen

    await pilot.press("s")
    await wait_for(pilot, lambda: showing(pilot.app, QueryScreen))
    return pilot.app.screen


def write_random_scores(val_dir: Path, epoch: int | str, seed: int) -> None:
    """A score file of 50 target and 150 non-target trials, drawn from ``seed``, for ``epoch``."""
    import numpy as np

    from engine.layout import ValidationDir
    from engine.validation.score_files import write_scores

    rng = np.random.default_rng(seed)
    val = ValidationDir(val_dir)
    val.scores.mkdir(parents=True, exist_ok=True)
    rows = [(1, float(s), f"t{i}", f"u{i}") for i, s in enumerate(rng.normal(0.6, 0.2, 50))]
    rows += [(0, float(s), f"n{i}", f"m{i}") for i, s in enumerate(rng.normal(0.1, 0.2, 150))]
    write_scores(val.score_file(epoch), rows)


def runs_cell(table, row: int, column: str) -> str:
    """The text of a run's cell in the runs table, by the column's key (``status``, ``loss``)."""
    from app.views.runs_view import COLUMNS

    return str(table.get_row_at(row)[[key for key, _ in COLUMNS].index(column)])
