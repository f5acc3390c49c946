"""Real training subprocesses on the demo corpus: loss goes down, signals, resume, torchrun."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import torch

from engine.process.checkpoints import load_checkpoint
from engine.store import open_store
from tests import children
from tests.conftest import TINY_CONFIG
from tests.engine.engine_runner import engine_env, run_engine, run_in_process, start_engine, torchrun_argv, wait_for
from tests.engine.test_numbers_checked import one_line_error

PROTOCOL = "Demo.SpeakerVerification.Voices"


def trn_dir(exp: Path) -> Path:
    return exp / "train" / f"{PROTOCOL}.train"


def train_runs(db: Path) -> list[dict]:
    if not db.exists():
        return []
    return open_store(db, readonly=True).runs(kind="train")


def make_exp(root: Path, name: str, per_epoch: float = 0.0002) -> Path:
    exp = root / name
    exp.mkdir(parents=True)
    (exp / "config.yml").write_text(TINY_CONFIG.replace("per_epoch: 0.0002", f"per_epoch: {per_epoch}"))
    return exp


@pytest.mark.slow
def test_train_lowers_the_loss_and_records_everything(tmp_path: Path, demo_corpus: Path) -> None:
    exp, db = make_exp(tmp_path, "exp", per_epoch=0.0015), tmp_path / "runs.db"
    done = run_engine("train", "--to", "4", "--parallel", "1", "--device", "cpu", "--log-every", "0",
                      str(exp), PROTOCOL, db=db, database=demo_corpus)
    assert done.returncode == 0, done.stderr
    # stderr is a pipe here, as it is a log file under the TUI: plain lines, no progress bar
    # where the run is recorded (a database made now), the index (listed, or loaded from the session's
    # cache), as lines too; then training; last, where the run was recorded
    first, second = done.stderr.splitlines()[:2]
    assert first == f"train: run #1 recorded in {db}, a new runs database (runs recorded elsewhere are not in " \
                    "it: --db FILE or SPKEMB_DB names another)"
    assert second.startswith(("listing Demo.SpeakerVerification.Voices train: ", "index: "))
    assert done.stderr.splitlines()[-1] == f"train: run #1 completed, recorded in {db}"
    assert "\ntrain: up to epoch 4, " in done.stderr and "epoch 4/4  loss" in done.stderr
    assert sorted(p.name for p in (trn_dir(exp) / "weights").glob("*.pt")) == [
        "0000.pt", "0001.pt", "0002.pt", "0003.pt", "0004.pt"]
    store = open_store(db, readonly=True)
    (run,) = store.runs(kind="train")
    assert run["status"] == "completed" and run["epoch"] == 4 and run["target_epoch"] == 4
    assert run["out_dir"] == str(trn_dir(exp))
    epochs = store.epochs(run["id"])
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4]
    assert epochs[-1]["loss"] < epochs[0]["loss"]
    steps = store.steps(run["id"])
    assert [s["step"] for s in steps] == list(range(1, len(steps) + 1))
    assert all(s["lr"] == pytest.approx(0.01) and s["chunks_per_s"] > 0 for s in steps)
    assert [c["epoch"] for c in store.checkpoints(run["id"]) if not c["partial"]] == [0, 1, 2, 3, 4]
    saved = load_checkpoint(trn_dir(exp) / "weights" / "0004.pt")
    assert saved["epoch"] == 4 and saved["config"]["task"]["params"]["per_label"] == 2


@pytest.mark.slow
def test_a_stopped_run_resumes_into_the_uninterrupted_one_with_true_records(
        tmp_path: Path, demo_corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stop and resume, one test for the capability: the records of a stop (SLURM's warning, mid-epoch)
    and of its resume, the resumed run equal to the uninterrupted one, a resume below the last
    completed epoch refused. (A SIGTERM to the group of a run with loader workers: test_group_stop.py.)"""
    args = ["--parallel", "0", "--device", "cpu", "--seed", "3", "--log-every", "0"]
    whole, db_whole = make_exp(tmp_path, "whole", per_epoch=0.001), tmp_path / "whole.db"
    # the uninterrupted run, the refusal and the resume through engine.cli.main in this process; the
    # stop is a real engine process's
    done = run_in_process("train", "--to", "2", *args, str(whole), PROTOCOL, db=db_whole, database=demo_corpus)
    assert done.returncode == 0, done.stderr
    refused = run_in_process("train", "--resume", "--to", "1", *args, str(whole), PROTOCOL, db=db_whole,
                             database=demo_corpus)
    line = one_line_error(refused, "train")
    assert "--to 1 is below" in line and "epoch 2 completed" in line and "--to 2 or more" in line, line
    (run,) = open_store(db_whole, readonly=True).runs(kind="train")
    assert run["status"] == "completed" and run["epoch"] == 2 and run["target_epoch"] == 2

    cut, db_cut = make_exp(tmp_path, "cut", per_epoch=0.001), tmp_path / "cut.db"
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    proc = start_engine("train", "--to", "2", *args, str(cut), PROTOCOL, db=db_cut, database=demo_corpus,
                        log=tmp_path / "cut.log")
    wait_for(lambda: any((r["step"] or 0) >= 2 for r in train_runs(db_cut)), what="two steps")
    # a second training of the folder while it trains (r twice in the TUI, a requeue beside the old job)
    # wrote the same checkpoints and step rows twice: refused before it records anything
    twice = run_in_process("train", "--resume", "--to", "2", *args, str(cut), PROTOCOL, db=db_cut,
                           database=demo_corpus)
    line = one_line_error(twice, "train")
    assert f"is being trained by another process ({os.uname().nodename} pid {proc.pid}): two trainings" in line, line
    assert len(train_runs(db_cut)) == 1
    proc.send_signal(signal.SIGUSR1)  # SLURM's warning before the time limit
    assert proc.wait(timeout=120) == 0, (tmp_path / "cut.log").read_text()
    store = open_store(db_cut, readonly=True)
    (stopped,) = store.runs(kind="train")
    assert stopped["status"] == "stopped"
    assert stopped["reason"] == f"stopped by SIGUSR1 at epoch 1 step {stopped['step']} (SLURM job 4242)"
    (partial,) = [c for c in store.checkpoints(stopped["id"]) if c["partial"]]  # a mid-epoch stop
    assert load_checkpoint(Path(partial["path"]))["step"] == stopped["step"] == partial["step"] >= 2
    assert not list((trn_dir(cut) / "weights").glob(".tmp-*"))

    monkeypatch.delenv("SLURM_JOB_ID")
    # without --seed, as the TUI's `r` resumes: the run goes on with its own (seed 0's batches before)
    unseeded = ["--parallel", "0", "--device", "cpu", "--log-every", "0"]
    resumed = run_in_process("train", "--resume", "--to", "2", *unseeded, str(cut), PROTOCOL, db=db_cut,
                             database=demo_corpus)
    assert resumed.returncode == 0, resumed.stderr
    assert (f"train: run #{stopped['id']} resumed from {Path(partial['path'])}, epoch 1 at batch "
            f"{partial['step']}/") in resumed.stderr, resumed.stderr
    run = store.run(stopped["id"])
    assert run["status"] == "completed" and run["reason"] is None and run["epoch"] == 2
    # resume.pt is superseded by weights/0001.pt: neither its row nor its file stays
    assert [(c["epoch"], c["partial"]) for c in store.checkpoints(run["id"])] == [
        (0, False), (1, False), (2, False)]
    assert not Path(partial["path"]).exists()
    # each epoch's summary covers all its steps, before and after the stop
    steps = store.steps(run["id"])
    assert [s["step"] for s in steps] == list(range(1, run["step"] + 1)) and run["step"] > partial["step"]
    for epoch in store.epochs(run["id"]):
        losses = [s["loss"] for s in steps if s["epoch"] == epoch["epoch"]]
        assert epoch["loss"] == pytest.approx(sum(losses) / len(losses), rel=1e-9)

    def losses(db: Path) -> dict[int, float]:
        store = open_store(db, readonly=True)
        return {s["step"]: s["loss"] for r in store.runs(kind="train") for s in store.steps(r["id"])}

    assert losses(db_cut) == pytest.approx(losses(db_whole), rel=1e-6)
    a = load_checkpoint(trn_dir(whole) / "weights" / "0002.pt")["model"]
    b = load_checkpoint(trn_dir(cut) / "weights" / "0002.pt")["model"]
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


@pytest.mark.slow(seconds=20)
def test_torchrun_two_processes_on_cpu(tmp_path: Path, demo_corpus: Path) -> None:
    exp, db = make_exp(tmp_path, "exp"), tmp_path / "runs.db"
    done = children.run(torchrun_argv(2, "train", "--to", "1", "--parallel", "0", "--device", "cpu", str(exp),
                                      PROTOCOL), env=engine_env(db, demo_corpus), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in (trn_dir(exp) / "weights").glob("*.pt")) == ["0000.pt", "0001.pt"]
    (run,) = train_runs(db)
    assert run["status"] == "completed"
    assert load_checkpoint(trn_dir(exp) / "weights" / "0001.pt")["world_size"] == 2
    # each step's loss is the whole batch's, as one process records it: rank 0's half of the batch was
    # recorded (3.570 for one process, 4.112 on two ranks, 4.130 on three at the first step)
    alone, db_alone = make_exp(tmp_path, "alone"), tmp_path / "alone.db"
    done = run_engine("train", "--to", "1", "--parallel", "0", "--device", "cpu", str(alone), PROTOCOL,
                      db=db_alone, database=demo_corpus)
    assert done.returncode == 0, done.stderr[-3000:]
    with open_store(db, readonly=True) as two, open_store(db_alone, readonly=True) as one:
        (run_alone,) = one.runs(kind="train")
        steps = [[s["loss"] for s in store.steps(r["id"])] for store, r in ((two, run), (one, run_alone))]
    assert len(steps[0]) == len(steps[1]) > 0 and steps[0] == pytest.approx(steps[1], rel=1e-4)


def _rank_pid(torchrun_pid: int, rank: int) -> int | None:
    """The pid of the worker of ``rank`` that torchrun started (from /proc: its children's RANK)."""
    for child in Path(f"/proc/{torchrun_pid}/task/{torchrun_pid}/children").read_text().split():
        try:
            environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ:
            return int(child)
    return None


@pytest.mark.slow
def test_a_signal_to_one_rank_stops_both_at_the_same_step(tmp_path: Path, demo_corpus: Path) -> None:
    """SIGTERM reaching rank 1 alone: the ranks agree, rank 0 checkpoints mid-epoch and records why."""
    exp, db = make_exp(tmp_path, "exp", per_epoch=0.05), tmp_path / "runs.db"
    argv = torchrun_argv(2, "train", "--to", "3", "--parallel", "0", "--device", "cpu", "--log-every", "0.1",
                         str(exp), PROTOCOL)
    with children.started(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=engine_env(db, demo_corpus)) as proc:
        wait_for(lambda: any((r["step"] or 0) >= 2 and r["status"] == "running" for r in train_runs(db)),
                 timeout=240, what="the first steps")
        worker = wait_for(lambda: _rank_pid(proc.pid, 1), timeout=30, what="rank 1's process")
        os.kill(worker, signal.SIGTERM)
        _, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-3000:]
    (run,) = train_runs(db)
    assert run["status"] == "stopped" and "a signal on another rank" in run["reason"], run["reason"]
    saved = load_checkpoint(trn_dir(exp) / "weights" / "resume.pt")
    assert saved["world_size"] == 2 and 0 < saved["batch"] and saved["step"] == run["step"]


def test_corrupt_wav_is_named(tmp_path: Path, demo_corpus: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(demo_corpus.parent, corpus)
    victim = sorted((corpus / "voxceleb").rglob("*.wav"))[0]
    victim.write_bytes(b"RIFF\x00\x00garbage, not a wav file at all")
    exp, db = make_exp(tmp_path, "exp"), tmp_path / "runs.db"
    strict = run_in_process("train", "--to", "1", "--parallel", "0", "--strict", str(exp), PROTOCOL,
                        db=db, database=corpus / "database.yml")
    assert strict.returncode == 2
    assert str(victim) in strict.stderr
    assert not (trn_dir(exp) / "weights").exists() or not list((trn_dir(exp) / "weights").glob("*.pt"))


def test_bad_config_is_one_clear_error(tmp_path: Path, demo_corpus: Path) -> None:
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yml").write_text(TINY_CONFIG.replace("margin: 0.05", "margin: -1"))
    done = run_in_process("train", "--to", "1", str(exp), PROTOCOL, db=tmp_path / "runs.db", database=demo_corpus)
    assert done.returncode == 2
    assert "margin" in done.stderr and "Traceback" not in done.stderr
