"""The engine commands this TUI starts as detached child processes, and their stopping.

Each child runs in its own session so that closing the TUI sends it no hang-up (docs/tui.md),
with its output in a log file beside the run. Progress comes back through the runs database only.
The table of children is the app's state (``SpkembApp.launcher``), not this module's.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from engine.process import cuda_visible
from engine.records import Run
from engine.regular_files import read_tail


@dataclass
class PendingLaunch:
    """A command this TUI launched whose run is not in the database yet (the runs list shows it
    as ``starting``). Mutable: a deferred launch gets its ``pid`` when it starts."""

    argv: list[str]
    log: str
    kind: str
    #: what the user reads about it (``resume of #3``)
    what: str
    protocol: str
    subset: str
    device: str | None
    started_at: float
    #: its process; None while it waits for ``after``
    pid: int | None = None
    #: the process whose run must be recorded before this one starts
    after: int | None = None
    #: the log's size when it was launched: what it wrote comes after
    log_from: int = 0


@dataclass
class Launcher:
    """The children one TUI started: launched, polled, and stopped through it."""

    #: children still running; polled so that an exited child does not linger as a zombie
    #: (a zombie still has a /proc entry and would look alive to the lost-run check)
    children: list[subprocess.Popen] = field(default_factory=list)
    #: exit codes of children that ended, by pid
    exit_codes: dict[int, int] = field(default_factory=dict)

    def launch(self, argv: list[str], log_path: str | Path, *, cwd: str | Path | None = None) -> int:
        """Start ``argv`` detached, appending its output to ``log_path``; returns its pid."""
        log_path = Path(log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            # its --device is one the TUI offered from nvidia-smi: numbered as nvidia-smi numbers them
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    cwd=cwd, env=cuda_visible.in_bus_order(os.environ), start_new_session=True,
                                    close_fds=True)
        self.children.append(proc)
        return proc.pid

    def reap(self) -> None:
        """Collect the exit status of children that ended."""
        for proc in list(self.children):
            code = proc.poll()
            if code is not None:
                self.children.remove(proc)
                self.exit_codes[proc.pid] = code

    def exited(self, pid: int) -> bool:
        """Whether a child this TUI started has ended (it is reaped as a side effect)."""
        self.reap()
        return pid in self.exit_codes

    def stop(self, run: Run) -> str | None:
        """Send SIGTERM to a run's process; returns why not, or None when sent.

        The run's pid start time is checked first, so a pid the system reused for another
        program is never signalled; children of this TUI are reaped first, so that one that
        ended is not taken for alive.
        """
        if not run.pid:
            return "the run has no process id recorded"
        return self.stop_pid(int(run.pid), run.pid_start, run.host)

    def stop_pid(self, pid: int, started: float | None, host: str | None) -> str | None:
        """SIGTERM to process ``pid`` of ``host`` started at ``started`` (a run's, the queue's); returns why
        not, or None when sent."""
        if host and host != socket.gethostname():
            return f"the run is on host {host}; stop it there (kill -TERM {pid})"
        self.reap()
        now_started = _start_time(int(pid))
        if now_started is None:
            return f"process {pid} is gone"
        if started and abs(float(started) - now_started) > 2.0:
            return f"process {pid} is another program now (the run's process is gone)"
        try:
            os.kill(int(pid), signal.SIGTERM)
        except ProcessLookupError:
            return f"process {pid} is gone"
        except PermissionError:
            return f"not allowed to signal process {pid}"
        return None

    def record_launch(self, pending: list[PendingLaunch], argv: list[str], log_path: Path, *, kind: str,
                      what: str, protocol: str, subset: str, device: str | None, now: float,
                      after: int | None = None) -> int | None:
        """Launch ``argv`` and remember it in ``pending`` until its run shows up in the database.

        With ``after`` (a pid), the launch waits until that process has recorded its run: a
        validation watcher started before its training run exists would find nothing to watch.
        """
        size = log_size(log_path)
        pid = None if after is not None else self.launch(argv, log_path)
        pending.append(PendingLaunch(argv=argv, log=str(log_path), kind=kind, what=what, protocol=protocol,
                                     subset=subset, device=device, started_at=now, pid=pid, after=after,
                                     log_from=size))
        return pid

    def start_deferred(self, entry: PendingLaunch, recorded_pids: set[int | None]) -> str | None:
        """Start a deferred launch once the run it waits for is recorded; returns why it was dropped."""
        after = entry.after
        if entry.pid is not None or after is None:
            return None
        if after in recorded_pids:
            entry.log_from = log_size(entry.log)
            entry.pid = self.launch(entry.argv, entry.log)
        elif self.exited(after):
            return f"{entry.what} not started: the process it waited for ended first"
        return None


    def start_waiting(self, pending: list[PendingLaunch]) -> None:
        """Start now the deferred launches whose process still runs (the TUI quits): nothing would start
        them once it is gone, and a validation waits for its training's folder by itself."""
        for entry in pending:
            if entry.pid is None and entry.after is not None and not self.exited(entry.after):
                entry.pid = self.launch(entry.argv, entry.log)


#: how much of a child's log is read for its last line: an engine's refusal is one line
LAST_LINE_READ = 4096


#: an engine command's refusal: ``spkemb-engine train: error: …``
_ENGINE_ERROR = re.compile(r"spkemb-engine [a-z-]+: error: ")


def log_size(path: str | Path) -> int:
    """How long a log is now (0 when it is not there yet): where a child launched now starts writing."""
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def last_log_line(path: str | Path, since: int = 0) -> str | None:
    """Why a child ended, from its log (an engine command's refusal, when it exited before recording its
    run): the last engine error line written after byte ``since`` (the log's size at its launch), else the
    last line; cut to 300 characters; None when nothing was written, or the log is unreadable or no
    regular file. Another process may write the same log: a resume refused while another resume of that
    run trains wrote its refusal amid the training's lines, and the last of those was shown as why."""
    try:
        tail = read_tail(path, LAST_LINE_READ, since)
    except OSError:
        return None
    lines = [line.strip() for line in tail.decode("utf-8", errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if _ENGINE_ERROR.match(line)]
    return (errors or lines)[-1][:300] if lines else None


def run_captured(argv: list[str], timeout: float = 120.0) -> tuple[int, str, str]:
    """Run a short engine command to completion; returns (exit code, stdout, stderr), stripped. One that
    cannot start or outlives ``timeout`` is exit 1 with why on stderr: the screens say it, never raise it."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as e:
        return 1, "", str(e)
    return out.returncode, out.stdout.strip(), out.stderr.strip()


def run_quick(argv: list[str], timeout: float = 120.0) -> tuple[int, str]:
    """:func:`run_captured` of a command that says one thing (``pick``): (exit code, stderr or stdout)."""
    code, stdout, stderr = run_captured(argv, timeout)
    return code, stderr or stdout


def _start_time(pid: int) -> float | None:
    from engine.store.liveness import process_start_time

    return process_start_time(pid)
