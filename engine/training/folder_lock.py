"""One training process per TRN_DIR: ``train`` holds an flock of ``TRN_DIR/.train.lock`` while it runs.

Two trainings of one folder (``r`` pressed twice in the TUI, a SLURM requeue while the old job still
runs) would each write the folder's checkpoints and the run's step rows: the second is refused
before it records anything. On a local disk the kernel drops the lock however the holder ends (a
SIGKILL too); on NFS the lock of a machine that crashed lasts until its lease ends (a minute or two
on NFSv4), which the refusal says. A filesystem that refuses flock gets no lock: training goes on as
before, and says so. Under torchrun the main rank locks and every rank learns the outcome, so that
all of them stop together.
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
from engine.process.distributed import World, agree


@contextmanager
def held(trn: TrainingDir, world: World) -> Iterator[None]:
    """``trn`` made and locked by the main rank for the block.

    Raises
    ------
    TrainingError
        Another process holds it (named by the host and pid it wrote there), on every rank.
    """
    fd, refusal = None, None
    if world.is_main:
        trn.root.mkdir(parents=True, exist_ok=True)
        try:
            fd = _hold(trn)
        except TrainingError as e:
            refusal = e
    try:
        if agree(refusal is not None, world):
            raise refusal or TrainingError(f"{trn.root} is being trained by another process (see rank 0's line)")
        yield
    finally:
        if fd is not None:
            os.close(fd)


def _hold(trn: TrainingDir) -> int | None:
    """The lock's descriptor; None where the filesystem refuses flock or the file cannot be opened."""
    try:  # 0o666 less the umask: another user of a shared folder opens it too
        fd = os.open(trn.lock, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:  # another user's file (or a read-only one): a read-only descriptor locks as well
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        try:
            fd = os.open(trn.lock, os.O_RDONLY)
        except OSError as e:
            _unlocked(trn, e)
            return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
        os.close(fd)
        if e.errno not in (errno.EWOULDBLOCK, errno.EACCES):
            _unlocked(trn, e)
            return None
        elsewhere = holder and holder.split()[0] != socket.gethostname()
        raise TrainingError(
            f"{trn.root} is being trained by another process ({holder or 'pid unknown'}): two trainings of one "
            "folder would write the same checkpoints — wait for it to end, or stop it (`spkemb-engine runs` lists "
            "it), then train here" + ("; if that machine is down, its lock ends with its NFS lease (a minute or two)"
                                      if elsewhere else "")) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{socket.gethostname()} pid {os.getpid()}\n".encode(), 0)
    except OSError:  # a read-only descriptor: the lock holds, the file does not name us
        pass
    return fd


def _unlocked(trn: TrainingDir, error: OSError) -> None:
    say(f"train: warning: {trn.lock} cannot be locked ({error.strerror}): nothing keeps a second training of "
        "this folder out")
