"""A runs database this process cannot write: listed without leaving a file, refused to writers in one line.

Read-only media is a real read-only mount (a tmpfs remounted ``ro``); a read-only file or
folder is ``chmod``-ed for a user and bind-mounted read-only for root, since permission bits
do not stop root. Where that cannot be arranged the test is skipped, saying why.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from engine.errors import StoreError
from engine.store import open_store
from tests.engine.engine_runner import run_engine, run_in_process
from tests.engine.read_only import Media, files, media, unwritable  # noqa: F401 - fixtures
from tests.engine.test_store import new_run


def _fill(path: Path, name: str = "first") -> None:
    with open_store(path) as store:
        new_run(store, name=name)


def _listed(done: subprocess.CompletedProcess) -> list[str]:
    assert done.returncode == 0, done.stdout + done.stderr
    return [run["name"] for run in json.loads(done.stdout)]


def test_runs_lists_a_database_on_read_only_media_leaving_no_file(media: Media, tmp_path: Path) -> None:  # noqa: F811 - a fixture imported above
    clean = media.folder / "clean" / "runs.db"
    _fill(clean)
    # a copy taken while a writer had it open: the last run is only in its -wal
    live = media.folder / "live" / "runs.db"
    live.parent.mkdir()
    source = tmp_path / "source" / "runs.db"
    with open_store(source) as writer:
        new_run(writer, name="in the db")
        writer.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        new_run(writer, name="in the wal")
        for suffix in ("", "-wal", "-shm"):
            shutil.copy(f"{source}{suffix}", f"{live}{suffix}")
    media.make_read_only()
    before = {p: files(p.parent) for p in (clean, live)}

    assert _listed(run_engine("runs", "--db", str(clean), "--format", "json", timeout=120)) == ["first"]
    assert _listed(run_engine("runs", "--db", str(live), "--format", "json", timeout=120)) == [
        "in the wal", "in the db"]
    assert {p: files(p.parent) for p in (clean, live)} == before  # no -wal, no -shm, nothing


def test_train_into_a_database_on_read_only_media_stops_with_one_line(media: Media, tmp_path: Path,  # noqa: F811 - a fixture imported above
                                                                       tiny_exp: Path, demo_corpus: Path) -> None:
    db = media.folder / "runs.db"
    _fill(db)
    media.make_read_only()
    before = files(media.folder)
    done = run_in_process("train", str(tiny_exp), "Demo.SpeakerVerification.Voices", "--db", str(db), "--device",
                          "cpu", database=demo_corpus)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if ": error: " in line]
    assert errors == [done.stderr.strip().splitlines()[-1]], done.stderr
    assert errors[0].startswith(f"spkemb-engine train: error: runs database {db} is read-only ("), errors
    assert "--db" in errors[0] and "permissions" in errors[0]
    assert files(media.folder) == before


@pytest.mark.parametrize("read_only", ["file", "folder"])
def test_runs_lists_a_read_only_file_or_folder_leaving_no_file(tmp_path: Path, unwritable, read_only: str) -> None:  # noqa: F811 - a fixture imported above
    db = tmp_path / "db" / "runs.db"
    _fill(db)
    unwritable(db if read_only == "file" else db.parent)  # the file: its folder stays writable
    before = files(db.parent)
    assert _listed(run_engine("runs", "--db", str(db), "--format", "json", timeout=120)) == ["first"]
    assert files(db.parent) == before  # no -wal, no -shm left behind


def test_a_writer_refuses_a_read_only_file_in_one_line(tmp_path: Path, unwritable) -> None:  # noqa: F811 - a fixture imported above
    db = tmp_path / "db" / "runs.db"
    _fill(db)
    unwritable(db)
    before = files(db.parent)
    with pytest.raises(StoreError) as refused:
        open_store(db)
    assert str(refused.value).startswith(f"runs database {db} is read-only (") and "\n" not in str(refused.value)
    assert files(db.parent) == before


def _dead_running_run(path: Path) -> int:
    """A run recorded running whose process is gone and whose heartbeat is ten minutes old."""
    import sqlite3

    from tests import children

    with open_store(path) as store:
        run = new_run(store, name="ghost")
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE runs SET pid = ?, heartbeat_at = heartbeat_at - 600 WHERE id = ?",
                     (children.dead_pid(), run))
    conn.close()
    return run


def test_a_dead_run_of_a_database_we_may_only_read_is_listed_lost_not_running(tmp_path: Path,
                                                                               unwritable) -> None:  # noqa: F811
    """It stayed `running`, its duration growing, for as long as nobody could write the database."""
    db = tmp_path / "shared" / "runs.db"
    db.parent.mkdir()
    _dead_running_run(db)
    unwritable(db.parent)
    (run,) = json.loads(run_engine("runs", "--db", str(db), "--format", "json", timeout=120).stdout)
    assert (run["name"], run["status"]) == ("ghost", "lost") and "is gone" in run["reason"]
    with open_store(db, readonly=True) as store:
        assert store.runs()[0]["status"] == "running"  # shown lost, not written


def test_a_database_that_cannot_get_its_shared_memory_file_names_the_full_disk(tmp_path: Path) -> None:
    """A closed WAL database on a disk that filled up since: reading it makes runs.db-shm, which failed,
    and the line told to move a healthy database aside as if it were another program's file."""
    import sys

    from tests import children

    db = tmp_path / "runs.db"
    with open_store(db) as store:
        new_run(store)
    assert not db.with_name("runs.db-shm").exists()
    done = children.run([sys.executable, "-m", "tests.engine.faults", "runs", "--db", str(db)],
                        env={"SPKEMB_FAULT_NO_WRITES": "1"}, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"cannot open the runs database {db}: disk I/O error; SQLite could not write beside it" in done.stderr
    assert "as on a full disk: free some space" in done.stderr and "move it aside" not in done.stderr
