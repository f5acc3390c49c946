"""``spkemb-engine`` as the bench scripts run it: a subprocess of this Python importing this checkout's
engine, its stdout returned, and a failure ended with the command's name and the tail of what it said."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

#: the checkout these scripts belong to. A command started from another folder would import the engine
#: the virtualenv installed (an editable install: the main checkout's), so that a bench run from a
#: worktree of another commit, to compare the two, would time and score the same code twice
CHECKOUT = Path(__file__).resolve().parents[1]


def checkout_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with this checkout first on ``PYTHONPATH``."""
    out = dict(os.environ if env is None else env)
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(CHECKOUT), out.get("PYTHONPATH", "")) if p)
    return out


def engine(*args: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "engine", *args], cwd=cwd, text=True,
                          capture_output=True, env=checkout_env())
    if done.returncode != 0:
        raise SystemExit(f"spkemb-engine {args[0]} failed:\n{done.stderr[-2000:]}")
    return done.stdout
