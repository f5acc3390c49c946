"""One training process per TRN_DIR: ``train`` holds an flock of ``TRN_DIR/.train.lock`` while it runs.

Two trainings of one folder (``r`` pressed twice in the TUI, a SLURM requeue while the old job still
runs) would each write the folder's checkpoints and the run's step rows: the second is refused
before it records anything. The kernel drops the lock however the holder ends (a SIGKILL too), so
a stale lock cannot keep anybody out. A filesystem that refuses flock (some NFS mounts) gets no
lock: training goes on as before, and says so.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from engine.console import say
from engine.errors import TrainingError
from engine.layout import TrainingDir


@contextmanager
def held(trn: TrainingDir, *, main: bool) -> Iterator[None]:
    """``trn`` made and locked by the main process for the block (other ranks share its lock).

    Raises
    ------
    TrainingError
        Another process holds it (named by the host and pid it wrote there).
    """
    if not main:
        yield
        return
    trn.root.mkdir(parents=True, exist_ok=True)
    fd = _hold(trn)
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)


def _hold(trn: TrainingDir) -> int | None:
    """The lock's descriptor; None where the filesystem refuses flock."""
    fd = os.open(trn.lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EACCES):
            raise TrainingError(f"{trn.root} is being trained by another process ({holder or 'pid unknown'}): "
                                "two trainings of one folder would write the same checkpoints — wait for it to "
                                "end, or stop it (`spkemb-engine runs` lists it), then train here") from None
        say(f"train: warning: {trn.lock} cannot be locked ({e.strerror}): nothing keeps a second training of "
            "this folder out")
        return None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{socket.gethostname()} pid {os.getpid()}\n".encode(), 0)
    return fd
