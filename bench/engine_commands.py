"""``spkemb-engine`` as the bench scripts run it: a subprocess of this Python, its stdout returned,
and a failure ended with the command's name and the tail of what it said."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def engine(*args: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "engine", *args], cwd=cwd, text=True,
                          capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"spkemb-engine {args[0]} failed:\n{done.stderr[-2000:]}")
    return done.stdout
