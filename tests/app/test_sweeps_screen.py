"""The Sweeps screen: the sweeps, the queue process, each trial's parameters, state and best EER, the plot of
EER against each parameter, the best trial one key from a new run or a fork; a sweep launched from the config
form keeps going after the TUI quits."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static

from app.dialogs import ConfirmDialog
from app.dialogs.clean import CleanDialog
from app.screens.launch import LaunchScreen
from app.screens.sweeps import SweepsScreen
from app.views.sweeps_view import TRIAL_COLUMNS
from app.widgets.sweep_plot import SweepPlot
from engine.records import ValidationResult
from engine.store import open_store
from engine.store.sweeps import NewTrial
from tests import children
from tests.app.conftest import make, notified, showing, wait_for
from tests.engine.engine_runner import wait_for as wait_until

PROTOCOL = "Demo.SpeakerVerification.Voices"


def _sweep_db(root: Path) -> Path:
    """A sweep of four trials: two ended (one validated best), one pruned, one running, one queued."""
    db = root / "runs.db"
    store = open_store(db)
    sweep = store.create_sweep(name="m-sweep", method="grid", base_config=str(root / "config.yml"),
                               sweep_dir=str(root / "sweeps" / "m-sweep"), protocol=PROTOCOL, subset="train",
                               space={"task.params.margin": [0.1, 0.2, 0.3, 0.4]}, seeds=1, epochs=3, planned=5,
                               slots="cpu*2", prune="median", prune_after=1, run_group="m-sweep", command=[])
    ids = []
    for number, margin in enumerate((0.1, 0.2, 0.3, 0.4, 0.5)):
        exp = root / "sweeps" / "m-sweep" / f"trial-{number:03d}"
        exp.mkdir(parents=True)
        (exp / "config.yml").write_text("task:\n  name: AdditiveAngularMarginLoss\n")
        store.add_trial(sweep, NewTrial(number=number, exp_dir=str(exp), out_dir=str(exp / "train" / "t"),
                                        params={"task.params.margin": margin}, seed=0, diff=[], config={},
                                        train=["train", str(exp), PROTOCOL], validate=None, target_epoch=3),
                        run_group="m-sweep", protocol=PROTOCOL, subset="train")
    ids = [t["run_id"] for t in store.sweep_trials(sweep)]
    for run_id, eer in zip(ids[:3], (0.20, 0.12, 0.35), strict=True):
        val = store.create_run(kind="validate", exp_dir=root, out_dir=root / f"v{run_id}", protocol=PROTOCOL,
                               subset="development", config=None, command=["validate"], device="cpu",
                               parent_id=run_id)
        store.add_validation(val, ValidationResult(epoch=1, eer=eer), train_run_id=run_id)
    store.set_status(ids[0], "completed")
    store.set_status(ids[1], "completed")
    (third,) = [t for t in store.sweep_trials(sweep) if t["run_id"] == ids[2]]
    store.set_pruned(third["id"], epoch=1, reason="pruned at epoch 1: EER 35.0 % > median 16.0 %")
    store.set_status(ids[2], "stopped", "stopped by SIGTERM")
    claim = store.claim("cpu/1", 1, run_id=ids[3])
    assert claim is not None
    store.adopt_queued(claim.token, command=["train"], device="cpu", target_epoch=3, config=None)
    store.close()
    return db


def _workspace(tmp_path: Path) -> tuple[Path, Path]:
    """A workspace folder and its runs database holding ``_sweep_db``'s sweep."""
    root = tmp_path / "ws"
    root.mkdir()
    return root, _sweep_db(root)


async def _open_sweeps(pilot) -> None:
    """From the Runs screen, the Sweeps screen once it shows what it read."""
    await pilot.press("w")
    await wait_for(pilot, lambda: showing(pilot.app, SweepsScreen) and pilot.app.screen.shown > 0)


@pytest.mark.slow
def test_the_sweeps_screen_shows_trials_their_state_and_best_and_opens_the_best(tmp_path: Path) -> None:
    root, db = _workspace(tmp_path)

    async def drive() -> None:
        app = make(root, db=db)
        async with app.run_test(size=(160, 50)) as pilot:
            await _open_sweeps(pilot)
            screen = app.screen
            sweeps = screen.query_one("#sweeps", DataTable)
            assert [str(c) for c in sweeps.get_row_at(0)][:8] == ["1", "m-sweep", "grid", "5/5", "1", "1", "1", "2"]
            trials = screen.query_one("#trials", DataTable)
            rows = [[str(c) for c in trials.get_row_at(i)] for i in range(trials.row_count)]
            column = {key: i for i, (key, _) in enumerate(TRIAL_COLUMNS)}
            assert [r[column["state"]] for r in rows] == ["completed", "completed",
                                                          "pruned at epoch 1: EER 35.0 % > median 16.0 %",
                                                          "indexing on cpu/1", "queued"]
            assert rows[1][column["params"]] == "margin=0.2"
            assert rows[1][column["eer"]] == "12.00 %" and rows[4][column["eer"]] == ""
            assert column["eer"] < column["state"]  # in sight at 80 columns, before a pruned trial's long status
            assert "queue: not running" in str(screen.query_one("#queue", Static).render())
            plot = screen.query_one(SweepPlot)
            assert plot.sweep is not None and plot.sweep.best().number == 1  # type: ignore[union-attr]
            await pilot.press("n")  # a new run of the best trial's config
            await wait_for(pilot, lambda: showing(app, LaunchScreen))
            assert app.screen.exp_dir == str(root / "sweeps" / "m-sweep" / "trial-001")

    asyncio.run(drive())


def test_n_and_f_without_any_sweep_say_there_is_none(workspace: Path) -> None:
    """They said "No trial of this sweep has been validated yet." with no sweep in the database."""

    async def drive() -> None:
        app = make(workspace)
        async with app.run_test(size=(160, 50)) as pilot:
            await _open_sweeps(pilot)
            for key in ("n", "f"):
                await pilot.press(key)
                await wait_for(pilot, lambda: notified(app, "No sweep yet: make one from the Configs screen or "
                                                            "with spkemb-engine sweep.", "warning"))
            assert isinstance(app.screen, SweepsScreen)

    asyncio.run(drive())


@pytest.mark.slow
def test_a_database_it_cannot_read_is_said_not_shown_as_no_sweep(workspace: Path) -> None:
    """A runs.db replaced by another file read as "queue: not running" and no sweep."""

    async def drive() -> None:
        app = make(workspace, refresh_interval=0.2)
        async with app.run_test(size=(160, 50)) as pilot:
            await _open_sweeps(pilot)
            # replaced, not written over: a runs.db-wal left beside it would still hold the pages SQLite reads
            other = workspace / "other.db"
            other.write_bytes(b"not a database " * 100)
            for leftover in ("runs.db-wal", "runs.db-shm"):
                (workspace / leftover).unlink(missing_ok=True)
            other.replace(workspace / "runs.db")
            queue = app.screen.query_one("#queue", Static)
            await wait_for(pilot, lambda: "cannot read the sweeps: " in str(queue.render()))
            # SQLite's words depend on where its read met the new bytes: either is a database it cannot read
            said = str(queue.render())
            assert ("file is not a database" in said or "database disk image is malformed" in said) and app.is_running

    asyncio.run(drive())


def test_the_best_trial_forks_once_its_checkpoint_is_there_and_stop_needs_a_running_queue(tmp_path: Path) -> None:
    from app.screens.configs import ConfigsScreen

    root, db = _workspace(tmp_path)
    best = root / "sweeps" / "m-sweep" / "trial-001"

    async def drive() -> None:
        app = make(root, db=db)
        async with app.run_test(size=(160, 50)) as pilot:
            await _open_sweeps(pilot)
            await pilot.press("s")
            await wait_for(pilot, lambda: notified(app, "No queue is running."))
            await pilot.press("f")  # the best trial (margin 0.2, epoch 1) has no checkpoint file yet
            await wait_for(pilot, lambda: notified(app, "trial 1 has no checkpoint file of its best epoch."))
            assert isinstance(app.screen, SweepsScreen)
            checkpoint = best / "train" / "t" / "weights" / "0001.pt"
            checkpoint.parent.mkdir(parents=True)
            checkpoint.write_bytes(b"weights")
            await pilot.press("f")
            await wait_for(pilot, lambda: showing(app, ConfigsScreen))
            fork = app.screen.fork
            assert fork is not None and fork.init_from == str(checkpoint)
            assert fork.folder == best.parent / "trial-001-fork-e1" and fork.what == "fork of trial 1, epoch 1"
            assert fork.config == {"task": {"name": "AdditiveAngularMarginLoss"}}

    asyncio.run(drive())


@pytest.mark.slow
def test_a_sweep_launched_from_the_config_form_goes_on_after_the_tui_quits(tmp_path: Path,
                                                                            demo_corpus: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    db = root / "runs.db"

    async def drive() -> None:
        app = make(root, db=db, database=demo_corpus)
        async with app.run_test(size=(160, 50)) as pilot:
            await pilot.press("n")  # Configs
            await wait_for(pilot, lambda: app.screen.query("#exp-dir"))
            app.screen.query_one("#exp-dir", Input).value = "exp"
            await pilot.press("ctrl+r")  # save & sweep
            await wait_for(pilot, lambda: app.screen.query("#sets"))
            app.screen.query_one("#sets", Input).value = "task.params.margin=0.1,0.2,0.3"
            app.screen.query_one("#slots", Input).value = "cpu*2"
            app.screen.query_one("#epochs", Input).value = "1"
            assert app.screen.query_one("#protocol", Input).value == PROTOCOL
            await pilot.click("#ok")
            await wait_for(pilot, lambda: showing(app, SweepsScreen))
            await wait_for(pilot, lambda: app.screen.state.sweeps, timeout=120)
        # the app has quit here

    asyncio.run(drive())
    store = open_store(db, readonly=True)
    try:
        started = wait_until(lambda: [r for r in store.runs(kind="train") if r["status"] != "queued"], timeout=300,
                             what="a queued trial to start after the TUI quit")
        assert started and store.live_queue() is not None
        assert {r["run_group"] for r in store.runs(kind="train")} == {"exp-sweep1"}
    finally:  # the queue and its trials run detached: this test stops them
        queue = store.live_queue()
        if queue is not None:
            os.kill(queue["pid"], signal.SIGTERM)
            # gone before its children are listed: a queue still looking could start a validation after the list
            wait_until(lambda: store.live_queue() is None, timeout=60, what="the queue to end on SIGTERM")
        mine = children.carrying(children.OWNER_VAR, os.environ[children.OWNER_VAR])
        children.kill(mine, grace=10.0)


def _run_id(db: Path, name: str) -> int:
    (run,) = [r for r in open_store(db, readonly=True).runs(kind="train") if r["name"] == name]
    return run["id"]


async def _select(pilot, table, run_id: int, name: str) -> None:
    """The cursor on run ``name``, found by its row's name and checked by its id."""
    names = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
    table.move_cursor(row=names.index(name))
    await wait_for(pilot, lambda: table.current_run_id == run_id)


@pytest.mark.slow
def test_a_queued_run_is_taken_off_the_queue_from_the_runs_screen(tmp_path: Path) -> None:
    from app.widgets.runs_table import RunsTable

    root, db = _workspace(tmp_path)

    async def drive() -> None:
        app = make(root, db=db)
        async with app.run_test(size=(160, 50)) as pilot:
            table = app.screen.query_one(RunsTable)
            await wait_for(pilot, lambda: table.row_count == 8)
            queued_id, started_id = (_run_id(db, name) for name in ("trial-004", "trial-003"))
            # each key only once the cursor, then the dialog, is there: a refresh of the list between
            # two keys must not make them land elsewhere
            await _select(pilot, table, queued_id, "trial-004")
            await pilot.press("x")
            await wait_for(pilot, lambda: showing(app, ConfirmDialog))
            await pilot.press("y")
            await wait_for(pilot, lambda: notified(app, "taken off the queue"))
            await _select(pilot, table, started_id, "trial-003")  # claimed and started: not cancelled
            await pilot.press("x")
            await wait_for(pilot, lambda: showing(app, ConfirmDialog))
            await pilot.press("escape")

    asyncio.run(drive())
    store = open_store(db, readonly=True)
    (queued,) = [r for r in store.runs(kind="train") if r["name"] == "trial-004"]
    assert (queued["status"], queued["reason"]) == ("stopped", "cancelled while queued")
    assert not [e for e in store.queue_entries() if e["run_id"] == queued["id"]]  # its entry is closed
    (started,) = [r for r in store.runs(kind="train") if r["name"] == "trial-003"]
    assert started["status"] == "indexing"


@pytest.mark.slow
def test_e_ends_the_chosen_sweep_once_asked(tmp_path: Path) -> None:
    """A sweep could be ended only from a shell (`queue --cancel-sweep`): its queued trial is taken off, the
    one a queue started goes on."""
    root, db = _workspace(tmp_path)

    async def drive() -> None:
        app = make(root, db=db)
        async with app.run_test(size=(160, 50)) as pilot:
            await _open_sweeps(pilot)
            await pilot.press("e")
            await wait_for(pilot, lambda: showing(app, ConfirmDialog))
            await pilot.press("y")
            await wait_for(pilot, lambda: notified(app, "sweep m-sweep makes no more trials (5 made)"), timeout=120)

    asyncio.run(drive())
    store = open_store(db, readonly=True)
    (queued,) = [r for r in store.runs(kind="train") if r["name"] == "trial-004"]
    assert (queued["status"], queued["reason"]) == ("stopped", "cancelled while queued")
    (started,) = [r for r in store.runs(kind="train") if r["name"] == "trial-003"]
    assert started["status"] == "indexing"


@pytest.mark.slow
def test_c_cleans_the_sweeps_trials_once_the_listing_is_confirmed(tmp_path: Path) -> None:
    from engine.layout import TrainingDir

    root, db = _workspace(tmp_path)
    trn = TrainingDir(root / "sweeps" / "m-sweep" / "trial-001" / "train" / "t")
    val = trn.validation(PROTOCOL, "development")
    val.score_file(0).parent.mkdir(parents=True)
    trn.weights.mkdir(parents=True)
    for epoch in range(12):
        trn.checkpoint(epoch).write_bytes(b"w" * 10)
        # epochs 0 and 1 score every trial the wrong way round: the ten best are the ten newest
        val.score_file(epoch).write_text("1 0.1 a b\n0 0.9 c d\n" if epoch < 2 else "1 0.9 a b\n0 0.1 c d\n")

    async def drive() -> None:
        app = make(root, db=db)
        async with app.run_test(size=(160, 50)) as pilot:
            await _open_sweeps(pilot)
            await pilot.press("C")
            await wait_for(pilot, lambda: showing(app, CleanDialog))
            app.screen.query_one("#keep-last", Input).value = "2"
            app.screen.query_one("#keep-best", Input).value = "1"
            await pilot.click("#ok")
            await wait_for(pilot, lambda: showing(app, ConfirmDialog))
            question = app.screen.question
            # kept: 10-11 the newest, 2 the best (the earliest of the ten that score every trial right)
            assert f"{trn.root.resolve()}: delete 9 epoch checkpoint(s): 0-1, 3-9 (90 bytes)" in question
            assert question.endswith("Delete these checkpoints and free 90 bytes? (their scores and EERs stay)")
            assert trn.epochs() == list(range(12))
            await pilot.press("y")
            await wait_for(pilot, lambda: notified(app, "sweep m-sweep: freed 90 bytes"))

    asyncio.run(drive())
    assert trn.epochs() == [2, 10, 11]


def test_the_confirmation_of_a_long_listing_keeps_its_first_lines_and_says_how_many_more() -> None:
    from app.screens.host import CLEAN_LINES, clean_question

    listing = "\n".join([f"trial {n}: delete 3 epoch checkpoint(s): 0-2 (3.0 MiB)" for n in range(40)]
                        + ["nothing deleted: add --yes to delete them and free 120.0 MiB"])
    lines = clean_question(listing).splitlines()
    assert lines[:CLEAN_LINES - 1] == [f"trial {n}: delete 3 epoch checkpoint(s): 0-2 (3.0 MiB)"
                                       for n in range(CLEAN_LINES - 1)]
    assert lines[CLEAN_LINES - 1] == f"… and {40 - CLEAN_LINES + 1} more lines (`spkemb-engine clean` lists them all)"
    assert lines[-1] == "Delete these checkpoints and free 120.0 MiB? (their scores and EERs stay)"
