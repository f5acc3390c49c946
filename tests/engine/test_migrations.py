"""Schema migrations: older files upgrade without losing rows; newer files are refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine.errors import StoreError
from engine.records import EpochSummary
from engine.store import open_store
from engine.store.db import connect
from engine.store.migrations import known_migrations
from engine.store.runs import Store
from engine.store.upgrade import migrate


def make_old_file(path: Path) -> int:
    """A file with only the first migration applied, holding a run with steps (rows of that release)."""
    db = connect(path)
    assert migrate(db, path, stop_before="m002_indexes_and_event_imports") == ["m001_initial"]
    store = Store(db, path)
    with store.transaction() as conn:
        run_id = int(conn.execute(
            "INSERT INTO runs (kind, status, exp_dir, out_dir, protocol, subset, config, command, device) "
            "VALUES ('train', 'running', 'e', 'o', 'P', 'train', '{\"a\": 1}', '[\"train\"]', 'cpu')").lastrowid)
        conn.executemany("INSERT INTO train_steps (run_id, step, loss) VALUES (?, ?, ?)",
                         [(run_id, s, 1.0 / (s + 1)) for s in range(25)])
    store.add_epoch(run_id, EpochSummary(epoch=1, loss=0.5, lr=0.01, chunks_per_s=10.0, seconds=3.0))
    store.close()
    return run_id


def test_old_file_migrates_without_losing_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    run_id = make_old_file(path)
    conn = sqlite3.connect(path)
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "event_imports" not in tables
    conn.close()

    with open_store(path) as store:
        assert store.run(run_id)["config"] == {"a": 1}
        assert len(store.steps(run_id)) == 25
        assert store.epochs(run_id)[0]["loss"] == 0.5
        _, applied = store.query("SELECT name FROM _sqlite_migrations ORDER BY id")
        assert [name for (name,) in applied] == known_migrations()
        _, indexes = store.query("SELECT name FROM sqlite_master WHERE type = 'index' "
                                 "AND tbl_name = 'train_steps'")
        assert ("idx_train_steps_run_id_step",) in indexes
        assert store.query("PRAGMA user_version")[1] == [(len(known_migrations()),)]
        store.add_steps(run_id, [{"step": 25, "loss": 0.01, "margin": 0.2}])  # and it keeps working
        assert len(store.steps(run_id)) == 26 and store.steps(run_id)[-1]["margin"] == 0.2
        assert store.steps(run_id)[0]["margin"] is None  # rows of the old release have none
        assert store.run(run_id)["init_from"] is None
        # the old run has a change counter, and writes move it past every earlier change
        rows, newest, count = store.runs_changed_since(0)
        assert count == 1 and rows[0]["changed"] == newest and rows[0]["last_loss"] == 0.01


def test_readonly_open_upgrades_an_old_file(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    run_id = make_old_file(path)
    with open_store(path, readonly=True) as reader:
        assert len(reader.steps(run_id)) == 25
        assert reader.imported("nothing") is None  # the table of the second migration exists


def test_file_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    open_store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
                 "VALUES ('spkemb', 'm099_from_the_future', '2030-01-01')")
    conn.commit()
    conn.close()
    for readonly in (False, True):
        with pytest.raises(StoreError) as error:
            open_store(path, readonly=readonly)
        message = str(error.value)
        assert str(path) in message and "newer spkemb" in message
        assert "m099_from_the_future" in message and "upgrade spkemb" in message


def test_migrations_are_applied_once(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    open_store(path).close()
    db = connect(path)
    assert migrate(db, path) == []
    db.close()
    with open_store(path) as store:
        _, rows = store.query("SELECT COUNT(*) FROM _sqlite_migrations")
    assert rows == [(len(known_migrations()),)]


def test_another_programs_sqlite_file_is_refused_and_left_byte_for_byte(tmp_path: Path) -> None:
    """``runs --db other.db`` added 38 schema objects to another program's database and switched it to WAL."""
    from tests.engine.engine_runner import run_in_process

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE foo (x)")
        conn.execute("PRAGMA user_version = -1")
    conn.close()
    before = other.read_bytes()
    for readonly in (False, True):
        with pytest.raises(StoreError, match=r"is not a spkemb runs database: .* other tables \(foo\), left as it"):
            open_store(other, readonly=readonly)
    done = run_in_process("runs", "--db", str(other))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "(foo)" in done.stderr
    assert other.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]
    with pytest.raises(StoreError, match="no regular file"):
        open_store(tmp_path)  # a folder (and /dev/null, where SQLite made /dev/null-journal)


def test_a_runs_database_whose_migration_records_are_gone_is_named_damaged(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    open_store(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM _sqlite_migrations")
    conn.close()
    with pytest.raises(StoreError, match=r"has its runs but no record of its schema \(the _sqlite_migrations"):
        open_store(db)
