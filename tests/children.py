"""Child processes of the test session: started so that none outlives its test, and the /proc view
that finds the ones that would.

Every child the helpers start runs in its own session (a signal to the test's terminal never
reaches it; a whole tree is killed at once), dies with its parent (``PR_SET_PDEATHSIG``, so a
killed pytest or test driver takes its children along), and carries a token in its environment
that all its descendants inherit, even those that start sessions of their own (torchrun's ranks)
or were re-parented to init when their parent died: ``kill_tree`` finds them all by it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: environment variable holding the token of the helper call that started a process
CHILD_VAR = "SPKEMB_TEST_CHILD"
#: environment variable holding the token of the running test (set by the leak guard in conftest)
OWNER_VAR = "SPKEMB_TEST_OWNER"

_PR_SET_PDEATHSIG = 1
# resolved before any fork: the preexec function then only calls it
_prctl = ctypes.CDLL(None, use_errno=True).prctl

#: children started by ``spawn`` that ``stop_all`` has not stopped yet
_LIVE: list[tuple[subprocess.Popen, str]] = []


@dataclass(frozen=True)
class Proc:
    """One process as ``/proc/PID/stat`` shows it; (pid, start) names it across pid reuse."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str
    start: int  # clock ticks after boot

    @property
    def alive(self) -> bool:
        return self.state not in ("Z", "X")

    @property
    def command(self) -> str:
        try:
            raw = Path(f"/proc/{self.pid}/cmdline").read_bytes()
        except OSError:
            return "?"
        return raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace") or "?"

    def environ_holds(self, var: str, token: str) -> bool:
        """Whether ``token`` is one of the space-separated words of ``var`` in its environment."""
        try:
            environ = Path(f"/proc/{self.pid}/environ").read_bytes().split(b"\0")
        except OSError:  # another user's process, or gone
            return False
        prefix = f"{var}=".encode()
        return any(e.startswith(prefix) and token.encode() in e[len(prefix):].split() for e in environ)


def _read(pid: int) -> Proc | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: the fields after it follow the last ")"
    fields = text[text.rindex(")") + 2:].split()
    return Proc(pid=pid, ppid=int(fields[1]), pgid=int(fields[2]), sid=int(fields[3]), state=fields[0],
                start=int(fields[19]))


def processes() -> dict[int, Proc]:
    """Every process of the machine, by pid."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (proc := _read(int(entry))) is not None:
            table[proc.pid] = proc
    return table


def descendants(root: int, table: dict[int, Proc] | None = None) -> list[Proc]:
    """The processes below ``root`` in the parent chain (not ``root`` itself)."""
    table = processes() if table is None else table
    below: dict[int, list[Proc]] = {}
    for proc in table.values():
        below.setdefault(proc.ppid, []).append(proc)
    found, todo = [], [root]
    while todo:
        for child in below.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def carrying(var: str, token: str, table: dict[int, Proc] | None = None) -> list[Proc]:
    """This user's processes whose environment holds ``token`` in ``var`` (inherited by all descendants)."""
    table = processes() if table is None else table
    uid, me = os.getuid(), os.getpid()
    mine = []
    for proc in table.values():
        with contextlib.suppress(OSError):
            if proc.pid != me and os.stat(f"/proc/{proc.pid}").st_uid == uid and proc.environ_holds(var, token):
                mine.append(proc)
    return mine


def _die_with_parent() -> None:
    """In the child between fork and exec: SIGTERM when the parent dies (kept across exec).

    Strictly, when the thread that started it ends: the helpers are called from a test's own thread.
    """
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def spawn(argv: Sequence[str], *, env: dict[str, str] | None = None, **popen: Any) -> subprocess.Popen:
    """Start ``argv`` in a session of its own, dying with this process, tagged for ``kill_tree``.

    The child stays registered until ``stop_all`` (the guard in conftest calls it after each
    test), so that a test that fails half-way leaves nothing running.
    """
    token = uuid.uuid4().hex
    env = dict(os.environ if env is None else env)
    # added to the tokens of the helpers above: a child started by a child is found by both
    env[CHILD_VAR] = f"{env.get(CHILD_VAR, '')} {token}".strip()
    proc = subprocess.Popen(list(argv), env=env, start_new_session=True, preexec_fn=_die_with_parent, **popen)
    _LIVE.append((proc, token))
    return proc


def _tree(proc: subprocess.Popen, token: str) -> list[Proc]:
    table = processes()
    found = {p.pid: p for p in carrying(CHILD_VAR, token, table)}
    found.update((p.pid, p) for p in descendants(proc.pid, table))
    found.update((p.pid, p) for p in table.values() if p.sid == proc.pid)
    if proc.pid in table:
        found[proc.pid] = table[proc.pid]
    return [p for p in found.values() if p.alive]


def _signal(procs: Iterable[Proc], sig: int) -> None:
    for p in procs:
        current = _read(p.pid)
        if current is not None and current.start == p.start and current.alive:  # not a reused pid
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(p.pid, sig)


def kill(procs: Sequence[Proc], grace: float) -> None:
    """SIGTERM to ``procs``; SIGKILL to those still alive ``grace`` seconds later."""
    _signal(procs, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and still_alive(procs):
        time.sleep(0.05)
    _signal(procs, signal.SIGKILL)


def still_alive(procs: Iterable[Proc]) -> list[Proc]:
    alive = []
    for p in procs:
        current = _read(p.pid)
        if current is not None and current.start == p.start and current.alive:
            alive.append(p)
    return alive


def kill_tree(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """Stop ``proc`` and everything it started (SIGTERM, then SIGKILL after ``grace`` seconds)."""
    token = next((t for p, t in _LIVE if p is proc), None)
    if token is not None and (tree := _tree(proc, token)):
        kill(tree, grace)
        kill(_tree(proc, token), 0.0)  # the ones started while we waited
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    _LIVE[:] = [(p, t) for p, t in _LIVE if p is not proc]


def stop_all(grace: float = 5.0) -> None:
    """``kill_tree`` every child ``spawn`` started and nobody stopped yet."""
    for proc, _ in list(_LIVE):
        kill_tree(proc, grace)


@contextlib.contextmanager
def started(argv: Sequence[str], *, grace: float = 5.0, **popen: Any) -> Iterator[subprocess.Popen]:
    """``spawn`` for the block; its whole tree is killed when the block ends, however it ends."""
    proc = spawn(argv, **popen)
    try:
        yield proc
    finally:
        kill_tree(proc, grace)


def run(argv: Sequence[str], *, timeout: float, env: dict[str, str] | None = None,
        cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """``subprocess.run(capture_output=True, text=True)``; on timeout the whole tree is killed and
    the test fails with the end of the child's stderr."""
    with started(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_tree(proc, grace=5.0)
            out, err = "", ""
            with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
                out, err = proc.communicate(timeout=10)
            raise AssertionError(f"timed out after {timeout} s, killed with its children: {' '.join(argv)}\n"
                                 f"{(err or '')[-3000:]}") from None
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


def dead_pid() -> int:
    """The pid of a process that has just ended: one no process of this machine holds now."""
    done = run([sys.executable, "-c", "import os; print(os.getpid())"], timeout=60)
    return int(done.stdout)
