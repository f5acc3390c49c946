"""A SIGTERM to the whole process group (``timeout``, ``kill -- -PGID``, SLURM at the end of a job
step) stops a command as a SIGTERM to its main process does: the loader workers ignore it, and the
main process checkpoints, records the run ``stopped`` and ends them."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from engine.layout import TrainingDir
from engine.process.checkpoints import load_checkpoint
from engine.store import open_store
from tests.conftest import TINY_CONFIG
from tests.engine.engine_runner import start_engine, wait_for

PROTOCOL = "Demo.SpeakerVerification.Voices"


def runs(db: Path, kind: str) -> list[dict]:
    if not db.exists():
        return []
    return open_store(db, readonly=True).runs(kind=kind)


def stop_group(proc: subprocess.Popen, log: Path, sig: signal.Signals = signal.SIGTERM) -> None:
    """``sig`` to the child's whole group; it must end by itself, with status 0 and no traceback."""
    os.killpg(proc.pid, sig)
    try:
        code = proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    text = log.read_text()
    assert code == 0, text
    assert "Traceback" not in text and "killed by signal" not in text, text
    wait_for(lambda: not group_alive(proc.pid), timeout=60, what="the workers to end with the main process")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def group_reaper() -> list[subprocess.Popen]:
    """Children (each in its own session) killed with their group if the test fails half-way."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@pytest.mark.slow
def test_sigterm_to_the_group_of_train_with_workers_stops_and_resumes(
        tmp_path: Path, demo_corpus: Path, group_reaper: list) -> None:
    # (a SIGINT to the group, a terminal's Ctrl-C, always worked: torch's workers ignore SIGINT)
    sig = signal.SIGTERM
    exp, db = tmp_path / "exp", tmp_path / "runs.db"
    exp.mkdir()
    (exp / "config.yml").write_text(TINY_CONFIG.replace("per_epoch: 0.0002", "per_epoch: 0.05"))
    trn_dir = exp / "train" / f"{PROTOCOL}.train"
    args = ["--to", "50", "--parallel", "2", "--device", "cpu", "--log-every", "0", str(exp), PROTOCOL]

    log = tmp_path / "train.log"
    group_reaper.append(proc := start_engine("train", *args, db=db, database=demo_corpus, log=log))
    run = wait_for(lambda: next((r for r in runs(db, "train") if (r["step"] or 0) >= 2), None),
                   what="two training steps")
    stop_group(proc, log, sig)
    stopped = open_store(db, readonly=True).run(run["id"])
    assert stopped["status"] == "stopped", stopped
    assert stopped["reason"].startswith(f"stopped by {sig.name} at epoch 1 step"), stopped["reason"]
    assert TrainingDir(trn_dir).resume.is_file()
    (partial,) = [c for c in open_store(db, readonly=True).checkpoints(run["id"]) if c["partial"]]
    assert load_checkpoint(Path(partial["path"]))["step"] == stopped["step"] == partial["step"] >= 2
    assert not list((trn_dir / "weights").glob(".tmp-*"))

    # --resume goes on from there (with workers again), and stops again the same way
    log2 = tmp_path / "resumed.log"
    group_reaper.append(proc := start_engine("train", "--resume", *args, db=db, database=demo_corpus, log=log2))
    wait_for(lambda: next((r for r in runs(db, "train") if r["status"] == "running"
                           and (r["step"] or 0) > stopped["step"]), None), what="a step after the resume")
    stop_group(proc, log2, sig)
    (again,) = runs(db, "train")
    assert again["id"] == run["id"] and again["status"] == "stopped" and again["step"] > stopped["step"]
    assert TrainingDir(trn_dir).resume.is_file()


@pytest.mark.slow
def test_sigterm_to_the_group_of_validate_records_it_stopped(
        tmp_path: Path, demo_corpus: Path, db_path: Path, group_reaper: list) -> None:
    # a training run still indexing (no checkpoint yet): validate waits for its checkpoints
    trn_dir = tmp_path / "exp" / "train" / f"{PROTOCOL}.train"
    trn_dir.mkdir(parents=True)
    open_store(db_path).create_run(kind="train", exp_dir=trn_dir.parent.parent, out_dir=trn_dir,
                                   protocol=PROTOCOL, subset="train", config=None, command=["train"],
                                   device="cpu", status="indexing")
    log = tmp_path / "validate.log"
    group_reaper.append(proc := start_engine("validate", "--poll", "0.2", str(trn_dir), PROTOCOL,
                                             db=db_path, database=demo_corpus, log=log))
    wait_for(lambda: "validate: " in log.read_text() and runs(db_path, "validate"), what="validate waiting")
    stop_group(proc, log)
    (run,) = runs(db_path, "validate")
    assert run["status"] == "stopped" and run["reason"] == "stopped by SIGTERM", run


@pytest.mark.slow
def test_sigterm_to_the_group_of_apply_records_it_stopped(
        tmp_path: Path, demo_corpus: Path, db_path: Path, group_reaper: list) -> None:
    from tests.engine.test_apply import write_model_dir

    val_dir = write_model_dir(tmp_path, duration=1.0)
    log = tmp_path / "apply.log"
    # one window per batch, a window every 10 ms: slow enough to be stopped between two files
    group_reaper.append(proc := start_engine("apply", "--batch", "1", "--step", "0.01", "--device", "cpu",
                                             str(val_dir), PROTOCOL, db=db_path, database=demo_corpus, log=log))
    wait_for(lambda: next((r for r in runs(db_path, "apply") if (r["progress"] or 0) >= 1), None),
             what="a first file embedded")
    stop_group(proc, log)
    (run,) = runs(db_path, "apply")
    assert run["status"] == "stopped" and run["reason"] == "stopped by SIGTERM", run
