"""Several real processes on one database file: writers, a fresh-file migration race, lost runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.store import open_store
from engine.store.liveness import LOST_AFTER, REMOTE_LOST_AFTER
from engine.store.migrations import known_migrations
from tests import children

#: waits for the go file so that every process starts its work at the same moment
WAIT_FOR_GO = """
import json, os, sys, time
db, go = sys.argv[1], sys.argv[2]
while not os.path.exists(go):
    time.sleep(0.005)
"""

WRITER = WAIT_FOR_GO + """
from engine.store import open_store
runs, batches, rows = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
store = open_store(db)
written = {}
for r in range(runs):
    run_id = store.create_run(kind="train", exp_dir="e", out_dir=f"o/{os.getpid()}/{r}", protocol="P",
                              subset="train", config={}, command=["w"], device="cpu")
    for b in range(batches):
        store.add_steps(run_id, [{"step": b * rows + i, "epoch": 0, "loss": 1.0} for i in range(rows)])
        store.heartbeat(run_id, step=(b + 1) * rows)
    store.set_status(run_id, "completed")
    written[run_id] = batches * rows
print(json.dumps(written))
"""

#: opens the fresh files FOLDER/0.db, FOLDER/1.db, ... (db is the folder), each at its own moment after
#: the go file was made, so that the processes race on every one of them
OPENER = WAIT_FOR_GO + """
from pathlib import Path
from engine.store import open_store
start, found = os.stat(go).st_mtime + 0.2, []
for i in range(int(sys.argv[3])):
    time.sleep(max(0.0, start + 0.1 * i - time.time()))
    found.append(len(open_store(Path(db, f"{i}.db")).runs()))
print(found)
"""


def start_together(script: str, db: Path, n: int, *args: str) -> list[subprocess.CompletedProcess]:
    go = db.parent / "go"
    procs = [children.spawn([sys.executable, "-c", script, str(db), str(go), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(n)]
    time.sleep(1.0)  # let every interpreter reach its wait loop
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


@pytest.mark.slow
def test_eight_writers_lose_no_row(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    open_store(db).close()
    results = start_together(WRITER, db, 8, "2", "15", "100")
    written: dict[int, int] = {}
    for result in results:
        assert result.returncode == 0, result.stderr
        written.update({int(k): v for k, v in json.loads(result.stdout).items()})
    assert len(written) == 16
    with open_store(db) as store:
        for run_id, rows in written.items():
            steps = store.steps(run_id)
            assert len(steps) == rows == 1500
            assert [s["step"] for s in steps] == list(range(1500))
            assert store.run(run_id)["status"] == "completed"
        _, total = store.query("SELECT COUNT(*) FROM train_steps")
    assert total == [(8 * 2 * 15 * 100,)]


@pytest.mark.slow
def test_eight_processes_opening_a_fresh_file_together(tmp_path: Path) -> None:
    """Each of them switches the file to WAL mode, and SQLite answered some "database is locked" at once,
    without waiting (on about one fresh file in twenty): the processes open 25 at the same moments."""
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    files = 25
    results = start_together(OPENER, fresh, 8, str(files))
    for result in results:
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == str([0] * files)
    for i in range(files):
        with open_store(fresh / f"{i}.db") as store:
            _, rows = store.query("SELECT name FROM _sqlite_migrations ORDER BY id")
            assert [name for (name,) in rows] == known_migrations()
            assert store.query("PRAGMA journal_mode")[1] == [("wal",)]


def test_mark_lost_needs_a_dead_process_and_an_old_heartbeat(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    child_code = ("import sys, time; from engine.store import open_store; "
                  "s = open_store(sys.argv[1]); "
                  "print(s.create_run(kind='train', exp_dir='e', out_dir='o', protocol='P', "
                  "subset='train', config={}, command=['c'], device='cpu'), flush=True); "
                  "time.sleep(600)")
    child = children.spawn([sys.executable, "-c", child_code, str(db)], stdout=subprocess.PIPE,
                           text=True)
    try:
        dead_run = int(child.stdout.readline())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    child.stdout.close()

    with open_store(db) as store:
        live_run = store.create_run(kind="validate", exp_dir="e", out_dir="v", protocol="P",
                                    subset="test", config={}, command=["v"], device="cpu")
        # the dead process' heartbeat is still fresh: not lost yet
        assert store.mark_lost() == []
        old = time.time() - LOST_AFTER - 5
        store.heartbeat(dead_run, _at=old)
        store.heartbeat(live_run, _at=old)
        assert store.mark_lost() == [dead_run]
        dead, live = store.run(dead_run), store.run(live_run)
        assert dead["status"] == "lost" and dead["ended_at"] == old
        assert f"process {dead['pid']}" in dead["reason"]
        assert live["status"] == "running"
        assert store.mark_lost() == []
        # a run that beats again after being declared lost is running again
        store.heartbeat(dead_run)
        assert store.run(dead_run)["status"] == "running" and store.run(dead_run)["ended_at"] is None


def test_a_reused_pid_does_not_keep_a_run_alive(tmp_path: Path) -> None:
    with open_store(tmp_path / "runs.db") as store:
        # our own pid, but a start time that is not ours: the pid was reused
        run_id = store.create_run(kind="train", exp_dir="e", out_dir="o", protocol="P", subset="train",
                                  config={}, command=["c"], device="cpu",
                                  _origin={"pid": os.getpid(), "pid_start": 1000.0})
        remote = store.create_run(kind="train", exp_dir="e", out_dir="o", protocol="P", subset="train",
                                  config={}, command=["c"], device="cpu",
                                  _origin={"host": "another-node", "pid": 1})
        store.heartbeat(run_id, _at=time.time() - LOST_AFTER - 1)
        store.heartbeat(remote, _at=time.time() - LOST_AFTER - 1)
        assert store.mark_lost() == [run_id]
        store.heartbeat(remote, _at=time.time() - REMOTE_LOST_AFTER - 1)
        assert store.mark_lost() == [remote]


def test_a_migration_committed_between_two_reads_of_the_schema_is_not_taken_for_a_damaged_file(
        tmp_path: Path) -> None:
    """The race eight processes met at times: an opener read "no migration applied", another committed its
    migrations, and the first then read "runs exists" and refused the file as damaged. Here the other
    opener's migration is made to land right there (between the two reads, on a real file)."""
    from engine.store.db import connect
    from engine.store.upgrade import migrate

    path = tmp_path / "fresh.db"
    first, other = connect(path), connect(path)
    looks: list[str] = []
    applied_by_other: list[list[str]] = []

    def between(statement: str) -> None:
        looks.append(statement)
        tables_read = [s for s in looks if "sqlite_master" in s and "'table'" in s]
        if len(tables_read) == 2 and not applied_by_other:  # its second look at the tables is about to run
            applied_by_other.append(migrate(other, path))

    first.conn.set_trace_callback(between)
    try:
        assert migrate(first, path) == []   # the other opener did it: nothing left, nothing refused
    finally:
        first.conn.set_trace_callback(None)
        first.close()
        other.close()
    assert applied_by_other == [known_migrations()]
