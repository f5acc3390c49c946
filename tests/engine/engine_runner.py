"""Run the real engine as a subprocess, the way the TUI and users do.

Every engine process starts through ``tests.children``: in a session of its own, dying with
its parent, and killed with all it started when its test ends (see ``tests/children.py``).
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from engine.process.stopping import STOP_SIGNALS
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


def run_in_process(*args: str, db: Path | None = None, database: Path | None = None,
                   env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``spkemb-engine ARGS`` through ``engine.cli.main`` in this process, as ``run_engine`` reports it.

    For the tests of what a command answers to a request (a refusal, an error line, a small result):
    a subprocess each would spend seconds importing torch. What a subprocess alone shows (signals,
    the exit of the process, loader workers, one end-to-end per command) stays with ``run_engine``.
    An exception escaping ``main`` is what a user would see as a traceback: it is put on stderr
    with exit status 1, as Python does. ``cwd``: the working folder for the call (this process's is
    put back after it).
    """
    from engine.cli import main

    extra = dict(env or {})
    if db is not None:
        extra["SPKEMB_DB"] = str(db)
    if database is not None:
        extra["PYANNOTE_DATABASE_CONFIG"] = str(database)
    saved = {name: os.environ.get(name) for name in extra}
    # a command that stops on a signal installs its handlers; one refused before its run ended
    # leaves them installed, which in this process would swallow the next SIGTERM or Ctrl-C
    handlers = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    out, err = io.StringIO(), io.StringIO()
    os.environ.update(extra)
    try:
        with contextlib.chdir(cwd or os.getcwd()), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except Exception:  # noqa: BLE001 - the traceback is the answer a user would see
                traceback.print_exc()
                code = 1
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return subprocess.CompletedProcess(["spkemb-engine", *args], code, out.getvalue(), err.getvalue())
