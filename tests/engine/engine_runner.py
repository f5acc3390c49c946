"""Run the real engine as a subprocess, the way the TUI and users do.

Every engine process starts through ``tests.children``: in a session of its own, dying with
its parent, and killed with all it started when its test ends (see ``tests/children.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests import children


def engine_env(db: Path | None = None, database: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    if db is not None:
        env["SPKEMB_DB"] = str(db)
    if database is not None:
        env["PYANNOTE_DATABASE_CONFIG"] = str(database)
    return env


def run_engine(*args: str, db: Path | None = None, database: Path | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess:
    return children.run([sys.executable, "-m", "engine", *args], env=engine_env(db, database), timeout=timeout)


def start_engine(*args: str, db: Path | None = None, database: Path | None = None,
                 log: Path | None = None) -> subprocess.Popen:
    out = open(log, "w") if log else subprocess.DEVNULL
    return children.spawn([sys.executable, "-m", "engine", *args], stdout=out, stderr=subprocess.STDOUT,
                          env=engine_env(db, database))


def torchrun_argv(nproc: int, *args: str) -> list[str]:
    """``torchrun … -m engine ARGS`` with ``nproc`` ranks on this machine.

    ``--standalone``: torchrun's rendezvous binds a port the kernel picks free, so that two test
    sessions (two worktrees on one machine) never meet on a fixed port and wait for each other.
    """
    torchrun = Path(sys.executable).with_name("torchrun")
    return [str(torchrun), "--standalone", "--nproc_per_node", str(nproc), "-m", "engine", *args]


def wait_for(predicate: Callable[[], object], timeout: float = 120, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
