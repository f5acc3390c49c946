"""Records that must end right after kills, stops and resumes: a kill is a real engine process's;
what no signal reaches (a resume, a run whose rows a test took away) runs through
``engine.cli.main`` in this process."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import pytest

from engine.layout import TrainingDir
from engine.store import open_store
from engine.validation.watch import CheckpointWatcher
from tests.engine.engine_runner import run_in_process, start_engine, wait_for
from tests.engine.test_train import PROTOCOL, make_exp, train_runs, trn_dir

ARGS = ("--parallel", "0", "--device", "cpu", "--log-every", "0")


def test_resume_records_checkpoints_whose_row_was_never_written(tmp_path: Path, demo_corpus: Path) -> None:
    exp, db = make_exp(tmp_path, "exp"), tmp_path / "runs.db"
    done = run_in_process("train", "--to", "2", *ARGS, str(exp), PROTOCOL, db=db, database=demo_corpus)
    assert done.returncode == 0, done.stderr
    weights = trn_dir(exp) / "weights"
    # killed between rename and row, twice; and one of the two files got damaged since
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM checkpoints WHERE epoch IN (1, 2)")
    conn.close()
    (weights / "0001.pt").write_bytes((weights / "0001.pt").read_bytes()[:1000])

    resumed = run_in_process("train", "--resume", "--to", "2", *ARGS, str(exp), PROTOCOL, db=db,
                             database=demo_corpus)
    assert resumed.returncode == 0, resumed.stderr
    assert "epoch 1" in resumed.stderr and str(weights / "0001.pt") in resumed.stderr
    store = open_store(db, readonly=True)
    (run,) = store.runs(kind="train")
    rows = store.checkpoints(run["id"])
    assert sorted((c["epoch"], c["step"]) for c in rows) == [(0, 0), (2, run["step"])]
    snapshot = CheckpointWatcher(TrainingDir(trn_dir(exp)), store).poll()   # what validate sees
    assert sorted(snapshot.checkpoints) == [0, 2]

    # resumed again, the target reached: nothing to train, and said so (a job requeued after its end)
    again = run_in_process("train", "--resume", *ARGS, str(exp), PROTOCOL, db=db, database=demo_corpus)
    assert again.returncode == 0, again.stderr
    assert "train: epoch 2 is this run's target and is trained already: nothing to do; pass --to 12" in again.stderr


@pytest.mark.slow
def test_resume_from_step_0_keeps_the_untrained_checkpoint(tmp_path: Path, demo_corpus: Path) -> None:
    exp, db = make_exp(tmp_path, "exp", per_epoch=0.001), tmp_path / "runs.db"
    proc = start_engine("train", "--to", "1", *ARGS, str(exp), PROTOCOL, db=db, database=demo_corpus)
    wait_for(lambda: any((r["step"] or 0) >= 1 for r in train_runs(db)), what="a step after weights/0000.pt")
    proc.send_signal(signal.SIGKILL)  # no resume.pt: the run resumes from weights/0000.pt, step 0
    proc.wait(timeout=60)
    untrained = trn_dir(exp) / "weights" / "0000.pt"
    before = untrained.stat().st_mtime_ns, untrained.read_bytes()

    resumed = run_in_process("train", "--resume", "--to", "1", *ARGS, str(exp), PROTOCOL, db=db,
                             database=demo_corpus)
    assert resumed.returncode == 0, resumed.stderr
    assert (untrained.stat().st_mtime_ns, untrained.read_bytes()) == before
    store = open_store(db, readonly=True)
    (run,) = store.runs(kind="train")
    assert f"train: run #{run['id']} resumed from {untrained}, the end of epoch 0 (step 0)\n" in resumed.stderr
    assert sorted(c["epoch"] for c in store.checkpoints(run["id"])) == [0, 1]


# the records of a stop and of its resume: test_train.py's
# test_a_stopped_run_resumes_into_the_uninterrupted_one_with_true_records
