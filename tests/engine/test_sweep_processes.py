"""A queue's children found again by their claim after the queue died, and stopped by pid.

Real processes: a claimed "run" that starts a "loader worker" of its own, which inherits the claim
in its environment as the engine's workers do.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from engine.store import liveness
from engine.store.sweeps import CLAIM_VAR
from engine.sweeps.processes import find_claimed
from tests import children

#: a run that starts a worker (inheriting its environment), prints the worker's pid, then waits
RUN = ("import subprocess, sys, time; "
       "w = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
       "print(w.pid, flush=True); time.sleep(120)")


def test_the_claimed_run_is_found_and_not_its_worker_then_stopped_by_pid() -> None:
    token = uuid.uuid4().hex
    env = {**os.environ, CLAIM_VAR: token}
    with children.started([sys.executable, "-c", RUN], env=env, stdout=subprocess.PIPE, text=True) as run:
        worker = int(run.stdout.readline())  # the worker carries the claim too
        found = find_claimed(token)
        assert found is not None and found.pid == run.pid != worker
        assert found.start == liveness.process_start_time(run.pid)
        assert found.alive() and found.exit_code is None  # adopted: no exit code to read
        assert found.stop()  # SIGTERM, by pid and start time
        assert run.wait(timeout=30) == -15
        assert not found.alive() and not found.stop()


def test_a_claim_no_process_carries_finds_nothing() -> None:
    assert find_claimed(uuid.uuid4().hex) is None


def test_the_error_a_trial_ended_its_log_with_is_its_failure(tmp_path) -> None:
    """A trial that failed before recording its end (a slot's GPU that is not there) read `see its
    train.log`: the line that says why is in that log's tail."""
    from engine.sweeps.queue import last_error

    log = tmp_path / "train.log"
    assert last_error(log) is None
    log.write_text("x" * 20000 + "\nlisting…\nspkemb-engine train: error: --device cuda:0: no CUDA GPU is visible "
                   "here; use --device cpu\n")
    assert last_error(log) == "--device cuda:0: no CUDA GPU is visible here; use --device cpu"
    log.write_text("train: epoch 1/2\n")
    assert last_error(log) is None
