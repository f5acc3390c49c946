"""Quitting the TUI leaves its runs going, and starts what waited on them: a validation launched beside a
training that had not recorded its run yet was started only once the run showed up, which no TUI saw."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from tests.app.conftest import make


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
        deadline = time.monotonic() + 30
        while not started.exists():
            assert time.monotonic() < deadline, "the waiting validation was never started"
            time.sleep(0.05)
    finally:
        if training is not None:  # its own session
            try:
                os.killpg(training, signal.SIGKILL)
            except ProcessLookupError:
                pass
