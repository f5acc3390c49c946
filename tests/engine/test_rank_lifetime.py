"""torchrun's ranks end with whoever started them: no rank trains on, unseen, after its parent died."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests import children
from tests.engine.engine_runner import engine_env, torchrun_argv, wait_for
from tests.engine.test_train import PROTOCOL, make_exp, train_runs

REPO = Path(__file__).resolve().parents[2]

#: a test driver: starts torchrun the way the suite's helpers do, then waits to be killed
DRIVER = """
import subprocess, sys, time
from tests import children
from tests.engine.engine_runner import torchrun_argv

with open(sys.argv[1], "w") as log:
    children.spawn(torchrun_argv(2, *sys.argv[2:]), stdout=log, stderr=subprocess.STDOUT)
time.sleep(3600)
"""


def _train_args(exp: Path) -> list[str]:
    # 50 epochs of 0.05 days: far more than any test waits for
    return ["train", "--to", "50", "--parallel", "0", "--device", "cpu", "--log-every", "0.1", str(exp), PROTOCOL]


def _training(db: Path, proc: subprocess.Popen, log: Path) -> bool:
    """Whether the run has done two steps; fails at once, with torchrun's output, if ``proc`` ended."""
    if proc.poll() is not None:
        raise AssertionError(f"ended early (rc {proc.returncode}):\n{log.read_text()[-3000:]}")
    return any((r["step"] or 0) >= 2 and r["status"] == "running" for r in train_runs(db))


def _children_of(pid: int) -> list[children.Proc]:
    return [p for p in children.descendants(pid) if p.ppid == pid and p.alive]


def _first_steps(db: Path, proc: subprocess.Popen, log: Path) -> None:
    """Until the run has done two steps: torch's import and the gloo set-up in two ranks take minutes on
    a loaded 2-core machine; a timeout says what torchrun printed."""
    try:
        wait_for(lambda: _training(db, proc, log), timeout=400, what="the first steps")
    except AssertionError as e:
        raise AssertionError(f"{e}; torchrun's output:\n{log.read_text()[-3000:]}") from None


def _stopped_by_sigterm(db: Path) -> None:
    (run,) = train_runs(db)
    assert run["status"] == "stopped" and run["reason"].startswith("stopped by SIGTERM"), run


@pytest.mark.slow
def test_ranks_stop_when_their_torchrun_is_killed(tmp_path: Path, demo_corpus: Path) -> None:
    """SIGKILL to torchrun's agent: it cannot stop its workers, they stop by themselves (and checkpoint)."""
    exp, db, log = make_exp(tmp_path, "exp", per_epoch=0.05), tmp_path / "runs.db", tmp_path / "torchrun.log"
    with open(log, "w") as out, children.started(torchrun_argv(2, *_train_args(exp)), stdout=out,
                                                 stderr=subprocess.STDOUT, env=engine_env(db, demo_corpus)) as proc:
        _first_steps(db, proc, log)
        ranks = wait_for(lambda: r if len(r := _children_of(proc.pid)) == 2 else None, timeout=30,
                         what="the two ranks")
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        wait_for(lambda: not children.still_alive(ranks), timeout=120, what="the orphaned ranks to end")
    _stopped_by_sigterm(db)
    assert (exp / "train" / f"{PROTOCOL}.train" / "weights" / "resume.pt").exists(), log.read_text()[-3000:]


@pytest.mark.slow
def test_killing_the_parent_of_torchrun_leaves_no_rank(tmp_path: Path, demo_corpus: Path) -> None:
    """SIGKILL to the process that started torchrun: torchrun, its ranks, all end."""
    exp, db, log = make_exp(tmp_path, "exp", per_epoch=0.05), tmp_path / "runs.db", tmp_path / "torchrun.log"
    with children.started([sys.executable, "-c", DRIVER, str(log), *_train_args(exp)], cwd=REPO,
                          env=engine_env(db, demo_corpus)) as driver:
        _first_steps(db, driver, log)
        (torchrun,) = wait_for(lambda: _children_of(driver.pid), timeout=30, what="torchrun")
        wait_for(lambda: len(_children_of(torchrun.pid)) == 2, timeout=30, what="the two ranks")
        tree = children.descendants(driver.pid)
        os.kill(driver.pid, signal.SIGKILL)
        assert driver.wait(timeout=30) == -signal.SIGKILL
        wait_for(lambda: not children.still_alive(tree), timeout=120,
                 what="torchrun and its ranks to end: " + ", ".join(p.command for p in children.still_alive(tree)))
    _stopped_by_sigterm(db)
