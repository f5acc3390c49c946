"""A full disk under training: one clear line, nothing half-written left, the run never stuck.

The engine runs as a real subprocess through ``tests.engine.faults``, which makes the OS
calls fail as on a full disk (ENOSPC at a checkpoint write; optionally no file may grow).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from engine.process.checkpoints import load_checkpoint
from engine.store import open_store
from engine.store.liveness import LOST_AFTER
from tests.engine.engine_runner import engine_env
from tests.engine.test_train import PROTOCOL, make_exp, trn_dir


def run_faulty(*args: str, db: Path, database: Path | None = None,
               **faults: str) -> subprocess.CompletedProcess:
    env = {**engine_env(db, database), **{f"SPKEMB_FAULT_{k.upper()}": v for k, v in faults.items()}}
    return subprocess.run([sys.executable, "-m", "tests.engine.faults", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def train_until_disk_full(tmp_path: Path, demo_corpus: Path,
                          **faults: str) -> tuple[subprocess.CompletedProcess, Path, Path]:
    exp, db = make_exp(tmp_path, "exp"), tmp_path / "runs.db"
    # the second checkpoint (weights/0001.pt, after weights/0000.pt) hits the full disk
    done = run_faulty("train", "--to", "2", "--parallel", "0", "--device", "cpu", "--log-every", "0",
                      str(exp), PROTOCOL, db=db, database=demo_corpus, enospc_at="2", **faults)
    return done, exp, db


def test_full_disk_at_a_checkpoint_is_one_line_and_keeps_earlier_checkpoints(tmp_path: Path,
                                                                            demo_corpus: Path) -> None:
    done, exp, db = train_until_disk_full(tmp_path, demo_corpus)
    weights = trn_dir(exp) / "weights"
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (error,) = [line for line in done.stderr.splitlines() if "error" in line]
    assert error.startswith("spkemb-engine train: error: no space left") and str(weights) in error
    assert sorted(p.name for p in weights.iterdir()) == ["0000.pt"]  # no .tmp-… left on the full disk
    assert load_checkpoint(weights / "0000.pt")["step"] == 0
    (run,) = open_store(db, readonly=True).runs(kind="train")
    assert run["status"] == "failed"
    assert run["reason"].startswith("no space left") and str(weights) in run["reason"]
    assert [c["epoch"] for c in open_store(db, readonly=True).checkpoints(run["id"])] == [0]


def test_full_disk_under_the_database_too_is_said_and_the_run_ends_lost(tmp_path: Path,
                                                                        demo_corpus: Path) -> None:
    done, exp, db = train_until_disk_full(tmp_path, demo_corpus, db_full="1")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "could not record the run as failed" in done.stderr and "no space left" in done.stderr
    assert not list((trn_dir(exp) / "weights").glob(".tmp-*"))
    # the process is gone and its `failed` never reached the file: the next reader sees it lost
    (run,) = open_store(db, readonly=True).runs(kind="train")
    assert run["status"] == "running"
    with sqlite3.connect(db) as conn:  # three heartbeat intervals pass
        conn.execute("UPDATE runs SET heartbeat_at = heartbeat_at - ?", (LOST_AFTER + 1,))
    conn.close()
    # ... even when that reader cannot write either (the disk is still full)
    listed = run_faulty("runs", "--format", "json", db=db, no_writes="1")
    assert listed.returncode == 0, listed.stderr
    assert '"status": "lost"' in listed.stdout and "cannot record" in listed.stderr
    assert open_store(db, readonly=True).run(run["id"])["status"] == "running"
    with open_store(db) as store:
        assert store.mark_lost(now=time.time()) == [run["id"]]
        assert store.run(run["id"])["status"] == "lost"
