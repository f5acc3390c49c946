"""Faults under training: one clear line, nothing half-written left, the run never stuck.

A full disk, and audio files damaged after the index was built (skipped where they are read).

The engine runs as a real subprocess through ``tests.engine.faults``, which makes the OS
calls fail as on a full disk (ENOSPC at a checkpoint write; optionally no file may grow).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.config import load_config
from engine.data.batches import SpeakerBatches
from engine.data.speech_index import derive_index
from engine.data.training_index import IndexRequest, training_table
from engine.process.checkpoints import load_checkpoint
from engine.progress import Progress
from engine.store import open_store
from engine.store.liveness import LOST_AFTER
from tests import children
from tests.engine.engine_runner import engine_env, run_engine
from tests.engine.test_bad_input import copy_corpus
from tests.engine.test_train import PROTOCOL, make_exp, trn_dir

#: each test trains for real in an engine process, a fault injected on its way
pytestmark = pytest.mark.slow


def run_faulty(*args: str, db: Path, database: Path | None = None,
               **faults: str) -> subprocess.CompletedProcess:
    env = {**engine_env(db, database), **{f"SPKEMB_FAULT_{k.upper()}": v for k, v in faults.items()}}
    if "db_full" in faults or "no_writes" in faults:
        # no file may grow in that process: coverage's own data file (make test) could not be written
        # either, and its error at exit would be the process's; such a process is not measured
        env.pop("COVERAGE_PROCESS_CONFIG", None)
        env.pop("COVERAGE_PROCESS_START", None)
    return children.run([sys.executable, "-m", "tests.engine.faults", *args], env=env, timeout=300)


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


def _damage_audio(path: Path, how: str) -> None:
    """Damage one wav file after the index was built, as a cut copy, a bad disk or a rewrite would."""
    st = path.stat()
    if how == "truncated":
        with open(path, "r+b") as f:
            f.truncate(st.st_size // 3)
    elif how == "garbage":  # same size, same mtime: only opening it tells
        path.write_bytes(np.random.default_rng(0).integers(0, 256, st.st_size, dtype=np.uint8).tobytes())
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    elif how == "shortened":  # a valid wav, a third as long
        audio, rate = sf.read(path, dtype="float32")
        sf.write(path, audio[:len(audio) // 3], rate, subtype="PCM_16")
    else:
        raise AssertionError(how)


def _indexed_then_damaged(tmp_path: Path, demo_corpus: Path, how: str) -> tuple[Path, Path, Path]:
    """A copied corpus whose index is cached, then the file of the first chunk of the first batch damaged."""
    database = copy_corpus(demo_corpus, tmp_path)
    exp = make_exp(tmp_path, "exp")
    config = load_config(exp / "config.yml")
    table = training_table(IndexRequest(PROTOCOL, "train", str(database)), Progress(quiet=True))
    task = config.task
    index = derive_index(table, task.duration, label_min_duration=task.label_min_duration)
    batches = SpeakerBatches(index, per_fold=task.per_fold, per_label=task.per_label, per_epoch=task.per_epoch,
                             sample_rate=config.sample_rate, seed=0)
    path = Path(index.paths[batches.plan(0, 0).files[0]])
    del table, index, batches
    _damage_audio(path, how)
    return database, exp, path


@pytest.mark.parametrize("how", ["truncated", "garbage", "shortened"])
def test_audio_damaged_after_indexing_is_skipped_with_a_warning_and_recorded(tmp_path: Path, demo_corpus: Path,
                                                                               how: str) -> None:
    database, exp, path = _indexed_then_damaged(tmp_path, demo_corpus, how)
    db = tmp_path / "runs.db"
    done = run_engine("train", "--to", "1", "--parallel", "1", "--device", "cpu", str(exp), PROTOCOL,
                      db=db, database=database)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "DataLoader worker" not in done.stderr
    assert "from the cache" in done.stderr  # the index was not built again: the damage came after it
    warnings = [line for line in done.stderr.splitlines() if line.startswith("train: warning:")]
    assert len([w for w in warnings if str(path) in w]) == 1, warnings
    # a new size is seen by the look at every file at the start; the same size and mtime, where it is read
    summary = ("1 training file(s) found unusable while reading" if how == "garbage"
               else "skipped 1 unusable file(s) and 0 speaker(s)")
    assert len([w for w in warnings if summary in w]) == 1, warnings
    store = open_store(db, readonly=True)
    (run,) = store.runs(kind="train")
    assert run["status"] == "completed"
    (problem,) = store.problems(run["id"])
    assert problem["path"] == str(path) and not problem["fatal"]


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_audio_damaged_after_indexing_stops_a_strict_run_in_one_line(tmp_path: Path, demo_corpus: Path,
                                                                    how: str) -> None:
    database, exp, path = _indexed_then_damaged(tmp_path, demo_corpus, how)
    db = tmp_path / "runs.db"
    done = run_engine("train", "--to", "1", "--parallel", "1", "--strict", "--device", "cpu", str(exp), PROTOCOL,
                      db=db, database=database)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (error,) = [line for line in done.stderr.splitlines() if ": error: " in line]
    assert done.stderr.strip().splitlines()[-1] == error
    assert error.startswith("spkemb-engine train: error: ")
    assert (f"audio file {path} changed since the training index" if how == "truncated"
            else f"audio file {path} cannot be read as audio") in error
    store = open_store(db, readonly=True)
    (run,) = store.runs(kind="train")
    assert run["status"] == "failed"
    (problem,) = store.problems(run["id"])
    assert problem["path"] == str(path) and problem["fatal"]
