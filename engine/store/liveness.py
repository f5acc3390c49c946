"""Is the process behind a run still there? pid + start time, so a reused pid does not fool us.

A run records its host, pid and the pid's start time. On the run's own host the
process is gone when ``/proc/PID`` is missing, is a zombie, or started at another
time (the pid was reused). On another host we cannot look: such a run is only
declared lost when its heartbeat is much older (``REMOTE_LOST_AFTER``), since a
process on a compute node that has not written for five minutes while it beats
every ten seconds is dead or cut off; if it comes back, its next heartbeat sets
the run to ``running`` again.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

#: seconds between the heartbeats of a live run (writers beat at least this often)
HEARTBEAT_INTERVAL = 10.0

#: a run on this host is lost when its heartbeat is this old and its process is gone
LOST_AFTER = 3 * HEARTBEAT_INTERVAL

#: a run on another host (whose process we cannot see) is lost after this much silence
REMOTE_LOST_AFTER = 30 * HEARTBEAT_INTERVAL

#: start times computed from /proc are whole-second-boot-time based: allow for drift
START_TIME_TOLERANCE = 2.0


def hostname() -> str:
    """This machine's name as runs record it."""
    return socket.gethostname()


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # field 2 (comm) is in parentheses and may hold spaces: split after the last ')'
    rest = raw[raw.rfind(")") + 2:].split()
    return rest  # rest[0] is field 3 (state)


def process_start_time(pid: int) -> float | None:
    """Unix time at which process ``pid`` started, from field 22 of ``/proc/PID/stat``.

    Parameters
    ----------
    pid
        A process id on this host.

    Returns
    -------
    float | None
        Seconds since the epoch; ``None`` when the process does not exist or
        ``/proc`` is not available.
    """
    fields = _stat_fields(pid)
    boot = _boot_time()
    if fields is None or boot is None or len(fields) < 20:
        return None
    # field 22 (starttime) is rest[19]: clock ticks after boot
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def is_alive(host: str | None, pid: int | None, start: float | None) -> bool | None:
    """Whether the process that ran a run still runs.

    Parameters
    ----------
    host
        The run's host; a different host than this one cannot be checked.
    pid
        The run's process id.
    start
        The start time recorded with the pid (``process_start_time``), if any.

    Returns
    -------
    bool | None
        True or False on this host; ``None`` (unknown) for another host.
    """
    if host is not None and host != hostname():
        return None
    if pid is None:
        return False
    fields = _stat_fields(pid)
    if fields is None:
        if Path("/proc/self/stat").exists():
            return False
        try:  # no /proc (not Linux): existence is all we can know
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    if fields[0] in ("Z", "X"):  # zombie or dead: exited, not yet reaped
        return False
    if start is not None:
        now_start = process_start_time(pid)
        if now_start is not None and abs(now_start - start) > START_TIME_TOLERANCE:
            return False
    return True
