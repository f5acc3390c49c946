"""The processes of the queue: its children (train, validate) started detached on a slot, found again by
their claim after the queue itself died, and stopped through the stop path (SIGTERM, pid + start time)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from engine.errors import SpkembError
from engine.process import cuda_visible
from engine.store import liveness
from engine.store.sweeps import CLAIM_VAR
from engine.sweeps.slots import Slot


@dataclass
class Child:
    """A process of the queue: one it started (``proc``) or one a previous queue started (pid + start)."""

    pid: int
    start: float | None
    proc: subprocess.Popen | None = None

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return bool(liveness.is_alive(None, self.pid, self.start))

    @property
    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def stop(self) -> bool:
        """SIGTERM, as the TUI's stop does: the engine stops at a step boundary and records ``stopped``."""
        if not self.alive():
            return False
        try:
            os.kill(self.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            return False
        return True


def engine_command(argv: list[str]) -> list[str]:
    """``python -m engine ARGV`` with this interpreter."""
    return [sys.executable, "-m", "engine", *argv]


def child_env(slot: Slot | None, claim: str | None, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a queue's child: the slot's GPU alone (none for a CPU slot), and the claim of the
    run it is to take (a validation gets none)."""
    env = dict(os.environ if base is None else base)
    env.pop(CLAIM_VAR, None)
    env["PYTHONUNBUFFERED"] = "1"
    if slot is not None:
        env[cuda_visible.VARIABLE] = _entry(slot, env)
    if claim is not None:
        env[CLAIM_VAR] = claim
    return env


def _entry(slot: Slot, env: dict[str, str]) -> str:
    """What the child's ``CUDA_VISIBLE_DEVICES`` holds: the queue's own entry for the slot's GPU, so that
    ``cuda:0`` under ``CUDA_VISIBLE_DEVICES=2,3`` is GPU 2 for the child too ("" for a CPU slot)."""
    if not slot.visible:
        return ""
    entry = cuda_visible.entry_for(int(slot.visible), env)
    if entry is None:
        raise SpkembError(f"slot {slot.name}: this queue sees no such GPU ({cuda_visible.VARIABLE}="
                          f"{env.get(cuda_visible.VARIABLE)!r}); stop the queue and start it with other --slots")
    return entry


def start(argv: list[str], log: Path, slot: Slot | None, *, claim: str | None = None) -> Child:
    """Start an engine command in a session of its own (closing a terminal or the queue does not reach it),
    its output appended to ``log``, seeing only the slot's GPU."""
    env = child_env(slot, claim)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(engine_command(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True, close_fds=True)
    return Child(proc.pid, liveness.process_start_time(proc.pid), proc)


def _ppid(pid: int) -> int | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(raw[raw.rfind(")") + 2:].split()[1])


def find_claimed(token: str) -> Child | None:
    """The live process of this user started with claim ``token`` (a queue died before recording its pid);
    not its loader workers, which inherit the token: the one whose parent does not carry it."""
    wanted = f"{CLAIM_VAR}={token}".encode()
    uid = os.getuid()
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != uid:
                continue
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted in environ:
            found.append(int(entry))
    for pid in found:
        start = liveness.process_start_time(pid)
        if _ppid(pid) not in found and liveness.is_alive(None, pid, start):
            return Child(pid, start)
    return None


def detach(argv: list[str], log: Path) -> int:
    """Start ``argv`` (an engine command) detached: own session, no terminal; returns its pid."""
    return start(argv, log, None).pid
