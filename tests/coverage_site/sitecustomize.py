"""Under ``make test``, every Python process of the suite imports the libraries untraced.

``make test`` puts this folder on PYTHONPATH, so Python runs this module at start-up. Coverage
records ``engine/`` and ``app/`` only, yet on Python 3.11 its tracer is still called for every
function of every library: importing torch took 0.5 s more CPU in each engine process of the
suite. The first import of such a library now runs with this thread's tracer paused, then resumed
where it stood (the same tracer, which still knows the frames below); our own code is measured as
before, and other threads go on being traced.

Without coverage in the thread (``make test-fast``, a plain ``python``) it changes nothing.
"""

from __future__ import annotations

import builtins
import sys
from typing import Any

# our top-level packages; every other one (the standard library's, torch, numpy, pyannote, textual…)
# is a library, which never imports ours back
OURS = frozenset({"app", "bench", "engine", "tests"})


def _coverage_tracer() -> Any:
    """This thread's coverage tracer (coverage's C tracer pauses with stop() and resumes with start())."""
    tracer = sys.gettrace()
    kind = type(tracer)
    return tracer if (kind.__module__, kind.__name__) == ("coverage", "CTracer") else None


def _install() -> None:
    real_import = builtins.__import__
    paused = False

    def untraced_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (),
                        level: int = 0) -> Any:
        nonlocal paused
        if (paused or level or name in sys.modules or name.partition(".")[0] in OURS
                or (tracer := _coverage_tracer()) is None):
            return real_import(name, globals, locals, fromlist, level)
        paused = True
        tracer.stop()
        try:
            return real_import(name, globals, locals, fromlist, level)
        finally:
            tracer.start()
            paused = False

    builtins.__import__ = untraced_import


_install()
