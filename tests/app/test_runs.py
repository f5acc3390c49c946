"""Runs screen: rows, filter, sort, empty and corrupt databases, lost runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.screens.runs import RunsScreen
from app.widgets.runs_table import RunsTable
from tests import children
from tests.app.conftest import make, open_run, runs_cell, wait_for
from tests.engine.read_only import unwritable  # noqa: F401 - a fixture


async def test_runs_table_shows_every_run(workspace: Path) -> None:
    app = make(workspace)
    async with app.run_test(size=(140, 36)) as pilot:
        table = app.screen.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == 5)
        cells = [table.get_row_at(i) for i in range(table.row_count)]
        names = {str(c[1]) for c in cells}
        assert {"aam-m0.2", "aam-m0.1", "softmax", "aam-m0.2 validate"} <= names
        train = cells.index(next(c for c in cells if str(c[1]) == "aam-m0.2"))
        assert [runs_cell(table, train, key) for key in ("status", "eer", "epoch")] == ["completed", "21.00 % @ 2",
                                                                                        "3/3"]


@pytest.mark.slow
async def test_filter_by_text_and_status(workspace: Path) -> None:
    app = make(workspace)
    async with app.run_test(size=(140, 36)) as pilot:
        table = app.screen.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == 5)
        await pilot.press("slash")
        await pilot.press(*"softmax")
        await wait_for(pilot, lambda: table.row_count == 1)
        assert str(table.get_row_at(0)[1]) == "softmax"
        assert str(app.screen.query_one("#message").render()).startswith("1 of 5 runs shown by the filter (0 running)")
        # escape leaves the filter box for the table, the filter kept: a key typed next is no filter text
        await pilot.press("escape")
        await wait_for(pilot, lambda: table.has_focus)
        await pilot.press("o")
        assert app.screen.query_one("#filter").value == "softmax" and table.row_count == 1
        app.screen.query_one("#filter").value = ""
        app.screen.query_one("#status").value = "completed"
        await wait_for(pilot, lambda: table.row_count == 4)
        assert all(runs_cell(table, i, "status") == "completed" for i in range(4))


async def test_sort_by_loss_column(workspace: Path) -> None:
    app = make(workspace)
    async with app.run_test(size=(140, 36)) as pilot:
        table = app.screen.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == 5)
        table.sort_by("loss")
        losses = [runs_cell(table, i, "loss") for i in range(table.row_count)]
        numbers = [float(x) for x in losses if x]
        assert numbers == sorted(numbers) and len(numbers) == 3
        table.sort_by("loss")
        again = [float(runs_cell(table, i, "loss")) for i in range(table.row_count) if runs_cell(table, i, "loss")]
        assert again == sorted(numbers, reverse=True)


async def test_missing_database_explains_what_to_do(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SPKEMB_DB", raising=False)
    monkeypatch.delenv("PYANNOTE_DATABASE_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    for has_data in (False, True):
        if has_data:
            (tmp_path / "database.yml").write_text("Protocols: {}\n")
        app = make(tmp_path)
        async with app.run_test(size=(140, 36)) as pilot:
            screen = app.screen
            assert isinstance(screen, RunsScreen)
            await wait_for(pilot, lambda screen=screen: screen.loaded)
            text = str(screen.query_one("#message").render())
            assert "No runs yet" in text and "launch" in text
            # where data comes from is said only when there is no database.yml to train on
            assert ("demo-workspace" in text) is not has_data
    assert not (tmp_path / "experiments" / "runs.db").exists()


async def test_corrupt_database_is_reported_and_left_alone(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "runs.db"
    garbage = b"this is not a sqlite file" * 100
    db.write_bytes(garbage)
    app = make(tmp_path)
    async with app.run_test(size=(140, 36)) as pilot:
        # the dialog becomes the screen before its widgets are mounted: wait for both
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ErrorDialog"
                       and bool(app.screen.query("#title")))
        assert "Runs database unreadable" in str(app.screen.query_one("#title").render())
        await pilot.press("escape")
    assert db.read_bytes() == garbage


async def test_dead_process_turns_lost(workspace: Path) -> None:
    from engine.store import open_store

    dead = children.dead_pid()
    with open_store(workspace / "runs.db") as store:
        run = store.create_run(kind="train", exp_dir=workspace, out_dir=workspace / "t", protocol="P",
                               subset="train", config={}, command=["x"], device="cpu", name="ghost")
    conn = __import__("sqlite3").connect(workspace / "runs.db")
    conn.execute("UPDATE runs SET pid = ?, heartbeat_at = heartbeat_at - 600 WHERE id = ?", (dead, run))
    conn.commit()
    conn.close()
    app = make(workspace)
    async with app.run_test(size=(140, 36)) as pilot:
        table = app.screen.query_one(RunsTable)
        await wait_for(pilot, lambda: any(str(table.get_row_at(i)[1]) == "ghost" and
                                          runs_cell(table, i, "status") == "lost"
                                          for i in range(table.row_count)))


async def test_a_dead_run_of_a_database_we_may_only_read_shows_lost(tmp_path: Path, unwritable) -> None:  # noqa: F811
    """It showed `running` for ever, its duration growing, on someone else's database."""
    from tests.engine.test_readonly_db import _dead_running_run

    root = tmp_path / "ws"
    root.mkdir()
    db = root / "shared" / "runs.db"
    db.parent.mkdir()
    _dead_running_run(db)
    unwritable(db.parent)
    app = make(root, db=db)
    async with app.run_test(size=(140, 36)) as pilot:
        table = app.screen.query_one(RunsTable)
        await wait_for(pilot, lambda: [(str(table.get_row_at(i)[1]), runs_cell(table, i, "status"))
                                       for i in range(table.row_count)] == [("ghost", "lost")])


@pytest.mark.slow
async def test_runs_written_to_event_files_are_ingested(workspace: Path) -> None:
    """A run whose database sat on a network filesystem wrote events.jsonl: the TUI imports it."""
    from engine.store.events import EventWriter
    from tests.conftest import TINY_CONFIG

    exp = workspace / "nfs-exp"
    trn = exp / "train" / "Demo.SpeakerVerification.Voices.train"
    trn.mkdir(parents=True)
    (exp / "config.yml").write_text(TINY_CONFIG)
    with EventWriter(trn / "events.jsonl") as events:
        run = events.create_run(kind="train", exp_dir=exp, out_dir=trn, protocol="Demo.SpeakerVerification.Voices",
                                subset="train", config={}, command=["train"], device="cpu", name="from-nfs")
        events.add_steps(run, [{"step": 1, "epoch": 1, "loss": 2.5}])
        events.set_status(run, "completed")
    app = make(workspace, refresh_interval=0.2)
    async with app.run_test(size=(140, 36)) as pilot:
        await wait_for(pilot, lambda: any(r.name == "from-nfs" for r in app.screen.runs), timeout=60)
        (row,) = [r for r in app.screen.runs if r.name == "from-nfs"]
        assert row.status == "completed" and row.last_loss == 2.5


def test_feed_reads_changes_and_notices_deleted_runs_and_another_file(workspace: Path) -> None:
    import shutil
    import sqlite3

    from app.data.reader import RunsFeed, read_runs
    from engine.store import open_store

    db = workspace / "runs.db"
    feed = RunsFeed(db)
    assert feed.read() == read_runs(db)
    with open_store(db) as store:
        train = next(r for r in store.runs(kind="train") if r["name"] == "aam-m0.1")
        store.add_steps(train["id"], [{"step": 60, "epoch": 3, "loss": 0.125}])
        val = next(r for r in store.runs(kind="validate") if r["parent_id"] == train["id"])
        store.set_best(val["id"], epoch=3, eer=0.05, how="manual")
    runs = {r.id: r for r in feed.read()}
    assert runs[train["id"]].last_loss == 0.125
    assert (runs[train["id"]].best_eer, runs[train["id"]].best_epoch) == (0.05, 3)
    assert list(runs.values()) == read_runs(db)

    # a run deleted by hand: the feed reads the whole table again
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("DELETE FROM runs WHERE name = 'softmax'")
    conn.commit()
    conn.close()
    assert "softmax" not in {r.name for r in feed.read()}
    assert feed.read() == read_runs(db)

    # another file moved to the path: read whole, even though its counter is further on
    other = workspace / "other.db"
    with open_store(other) as store:
        for _ in range(30):
            run = store.create_run(kind="train", exp_dir="e", out_dir="o", protocol="P", subset="train",
                                   config={}, command=["train"], device="cpu", name="elsewhere")
            store.heartbeat(run, epoch=1)
    shutil.copy(other, workspace / "moved.db")
    (workspace / "moved.db").replace(db)
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    assert {r.name for r in feed.read()} == {"elsewhere"}


async def test_database_of_a_newer_release_is_reported_and_left_alone(tmp_path: Path, monkeypatch) -> None:
    import hashlib
    import sqlite3

    from engine.store import open_store

    monkeypatch.chdir(tmp_path)
    db = tmp_path / "runs.db"
    with open_store(db) as store:
        store.create_run(kind="train", exp_dir="e", out_dir="o", protocol="P", subset="train", config={},
                         command=["train"], device="cpu")
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
                 "VALUES ('spkemb', 'm099_from_the_future', '2030-01-01')")
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    app = make(tmp_path)
    async with app.run_test(size=(140, 36)) as pilot:
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ErrorDialog"
                       and bool(app.screen.query("#title")))
        text = str(app.screen.query_one("#message").render()) if app.screen.query("#message") else ""
        assert "newer spkemb" in text and "m099_from_the_future" in text
        await pilot.press("escape")
        assert app.screen.query_one(RunsTable).row_count == 0
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def _log_of_softmax(workspace: Path, log: Path) -> None:
    """The workspace's run `softmax` records ``log`` as its log."""
    import sqlite3

    conn = sqlite3.connect(workspace / "runs.db")
    with conn:
        conn.execute("UPDATE runs SET log_path = ? WHERE name = 'softmax'", (str(log),))
    conn.close()


async def test_unreadable_log_is_reported_in_the_log_panel(workspace: Path) -> None:
    from app.widgets.log_tail import LogTail

    log = workspace / "a-folder-not-a-log"
    log.mkdir()
    _log_of_softmax(workspace, log)
    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        await open_run(pilot, "softmax")
        tail = app.screen.query_one(LogTail)
        await wait_for(pilot, lambda: any("[log unreadable]" in line for line in tail.lines))
        assert any(str(log) in line and "Is a directory" in line for line in tail.lines)
        assert str(app.screen.query_one("#summary").render()).startswith("#5 softmax")


async def test_a_log_that_is_a_named_pipe_is_said_unreadable_without_blocking(workspace: Path) -> None:
    """open() of a FIFO with no writer blocked the log tail's worker thread for good."""
    import os

    from app.widgets.log_tail import LogTail

    log = workspace / "train.log"
    os.mkfifo(log)
    _log_of_softmax(workspace, log)
    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        try:
            await open_run(pilot, "softmax")
            tail = app.screen.query_one(LogTail)
            await wait_for(pilot, lambda: any("[log unreadable]" in line for line in tail.lines), timeout=20)
            assert any(str(log) in line and "not a regular file" in line for line in tail.lines)
        finally:  # a reader blocked in open() is let go, so that a regression fails instead of hanging
            try:
                os.close(os.open(log, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass  # no reader waits: nothing to let go


@pytest.mark.slow
async def test_a_log_not_there_is_said_once_then_followed_when_it_comes(workspace: Path) -> None:
    """The panel stayed blank for a run started by hand (no train.log beside it)."""
    from app.widgets.log_tail import LogTail

    log = workspace / "train.log"
    _log_of_softmax(workspace, log)
    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        await open_run(pilot, "softmax")
        tail = app.screen.query_one(LogTail)
        await wait_for(pilot, lambda: any("(no train.log yet: the TUI writes it for the commands it starts" in line
                                          for line in tail.lines))
        tail.follow(str(log))  # as each refresh of the screen does: the same file, not started again
        log.write_text("epoch 1/3: 36 batches\n")
        await wait_for(pilot, lambda: any("epoch 1/3: 36 batches" in line for line in tail.lines))
        assert sum("no train.log yet" in line for line in tail.lines) == 1


def test_a_training_runs_best_is_its_newest_validations_pick(tmp_path: Path) -> None:
    """The runs list showed the lowest EER of all a run's validate runs: an older pick (or another list's)
    while params.yml, the run detail and the report named another."""
    from app.data.reader import read_runs
    from engine.store import open_store
    from tests.engine.report_db import make_compared, validate_again

    made = make_compared(tmp_path, asnorm=False, diarized=False)
    validate_again(made, "sinc", (3,), best=3)  # newer; epoch 3 scores lower than the first run's pick (2)
    with open_store(made.db) as store:
        picked = store.validation_results(made.ids["sinc val"])
        again = store.find_runs(kind="validate")[0]
        store.set_best(again["id"], epoch=2, eer=next(r.eer for r in picked if r.epoch == 2), how="manual")
        store.set_best(made.ids["sinc val"], epoch=3, eer=next(r.eer for r in picked if r.epoch == 3), how="manual")
    (sinc,) = [r for r in read_runs(made.db) if r.id == made.ids["sinc"]]
    assert (sinc.best_epoch, sinc.best_eer) == (2, next(r.eer for r in picked if r.epoch == 2))


def test_the_run_detail_shows_one_val_dir_and_one_row_per_checkpoint(tmp_path: Path) -> None:
    """Every validation of every validate run: epochs of two trial lists mixed, a checkpoint twice."""
    from app.data.reader import read_detail
    from engine.records import ValidationResult
    from engine.store import open_store
    from tests.engine.report_db import PROTOCOL as DEMO
    from tests.engine.report_db import make_compared, validate_again

    made = make_compared(tmp_path, asnorm=False, diarized=False)
    sinc = made.ids["sinc"]
    with open_store(made.db) as store:  # another list of the run, scored once
        other = store.create_run(kind="validate", exp_dir=tmp_path / "sinc", out_dir=tmp_path / "sinc" / "other",
                                 protocol=DEMO, subset="test", config={}, command=["validate"], device="cpu",
                                 parent_id=sinc)
        store.add_validation(other, ValidationResult(epoch=1, eer=0.9), train_run_id=sinc)
    again = validate_again(made, "sinc", (3,), best=2)
    detail = read_detail(made.db, sinc, -1)
    assert detail is not None and len(detail.validations) == 3 + 1 + 1
    shown = detail.shown_validations
    assert [(v.epoch, v.run_id) for v in shown] == [(1, made.ids["sinc val"]), (2, made.ids["sinc val"]), (3, again)]
