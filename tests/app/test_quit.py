"""Quitting the TUI leaves its runs going, and starts what waited on them: a validation launched beside a
training that had not recorded its run yet was started only once the run showed up, which no TUI saw."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import children
from tests.app.conftest import make

REPO = Path(__file__).resolve().parents[2]


def _wait_started(marker: Path) -> None:
    """Until the waiting validation (a child writing ``marker``) has started."""
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline, "the waiting validation was never started"
        time.sleep(0.05)


async def test_quitting_starts_the_validation_waiting_for_its_training(workspace: Path, tmp_path: Path) -> None:
    started = tmp_path / "validate-started"
    app = make(workspace)
    training = None
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            # a training still starting (torch importing, data checked): its run is not recorded yet
            training = app.launcher.launch([sys.executable, "-c", "import time; time.sleep(60)"],
                                           tmp_path / "train.log")
            app.launcher.record_launch(app.pending, [sys.executable, "-c", f"open({str(started)!r}, 'w')"],
                                       tmp_path / "validate.log", kind="validate", what="validate beside",
                                       protocol="P", subset="test", device=None, now=time.time(), after=training)
            await pilot.pause(0.3)
            assert not started.exists() and app.pending[0].pid is None  # it waits for the training's run
            await pilot.press("q")
        _wait_started(started)
    finally:
        if training is not None:  # its own session
            try:
                os.killpg(training, signal.SIGKILL)
            except ProcessLookupError:
                pass


#: a TUI driven by its pilot that launches a training and a validation waiting on it, then hangs up
HANGUP = """
import asyncio, os, signal, sys, time
from pathlib import Path
from tests.app.conftest import fill_db, make

workspace, started = Path(sys.argv[1]), sys.argv[2]
fill_db(workspace / "runs.db", workspace)
signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as a terminal's session has it (a suite under nohup ignores it)

async def main():
    app = make(workspace)
    async with app.run_test(size=(100, 30)) as pilot:
        training = app.launcher.launch([sys.executable, "-c", "import time; time.sleep(60)"], workspace / "t.log")
        print(training, flush=True)
        app.launcher.record_launch(app.pending, [sys.executable, "-c", f"open({started!r}, 'w')"],
                                   workspace / "v.log", kind="validate", what="validate beside", protocol="P",
                                   subset="test", device=None, now=time.time(), after=training)
        await pilot.pause(0.3)
        os.kill(os.getpid(), signal.SIGHUP)
        await pilot.pause(30)

asyncio.run(main())
"""


@pytest.mark.slow
def test_a_hangup_starts_the_validation_waiting_for_its_training(tmp_path: Path) -> None:
    """An SSH session that dropped ended the TUI at once: the validation it had launched beside a training
    still starting was never started, and nothing said so."""
    workspace, started = tmp_path / "ws", tmp_path / "validate-started"
    workspace.mkdir()
    # spawned, not run: run kills what the child started as soon as it ends, the validation included
    hung = children.spawn([sys.executable, "-c", HANGUP, str(workspace), str(started)], cwd=REPO, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "TZ": "UTC"})
    out, err = hung.communicate(timeout=120)
    training = int(out.split()[0]) if out.strip() else None
    try:
        assert hung.returncode == -signal.SIGHUP, err[-2000:]
        _wait_started(started)
    finally:
        if training is not None:  # its own session
            with contextlib.suppress(ProcessLookupError):
                os.killpg(training, signal.SIGKILL)
