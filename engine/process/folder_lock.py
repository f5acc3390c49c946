"""One process per run folder: ``train`` holds an flock of ``TRN_DIR/.train.lock`` while it runs,
``validate`` one of ``VAL_DIR/.validate.lock``.

Two trainings of one folder (``r`` pressed twice in the TUI, a SLURM requeue while the old job still
runs) would each write the folder's checkpoints and the run's step rows; two validations of one
VAL_DIR (a job script started twice, AS-norm beside plain scores) would write the same score files and
each pick its own best epoch into params.yml. The second is refused before it records anything. On
a local disk the kernel drops the lock however the holder ends (a SIGKILL too); on NFS the lock of
a machine that crashed lasts until its lease ends (a minute or two on NFSv4), which the refusal
says. A filesystem that refuses flock gets no lock: the work goes on as before, and says so. Under
torchrun the main rank locks and every rank learns the outcome, so that all of them stop together.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from engine.console import say
from engine.errors import FolderBusy
from engine.process.distributed import World, agree


@dataclass(frozen=True)
class Job:
    """What a folder's lock keeps to one process, as the refusal says it."""

    command: str        # train
    doing: str          # trained
    several: str        # trainings
    writes: str         # the same checkpoints


TRAINING = Job("train", "trained", "trainings", "the same checkpoints")
VALIDATION = Job("validate", "validated", "validations", "the same score files and params.yml")


@contextmanager
def held(folder: Path, lock: Path, job: Job, world: World | None = None) -> Iterator[None]:
    """``folder`` made and ``lock`` (a file in it) locked by the main rank for the block.

    Raises
    ------
    FolderBusy
        Another process holds it (named by the host and pid it wrote there), on every rank.
    """
    world = world or World()
    fd, refusal = None, None
    if world.is_main:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            fd = _hold(folder, lock, job)
        except FolderBusy as e:
            refusal = e
    try:
        if agree(refusal is not None, world):
            raise refusal or FolderBusy(f"{folder} is being {job.doing} by another process (see rank 0's line)")
        yield
    finally:
        if fd is not None:
            os.close(fd)


def _hold(folder: Path, lock: Path, job: Job) -> int | None:
    """The lock's descriptor; None where the filesystem refuses flock or the file cannot be opened."""
    try:  # 0o666 less the umask: another user of a shared folder opens it too
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:  # another user's file (or a read-only one): a read-only descriptor locks as well
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        try:
            fd = os.open(lock, os.O_RDONLY)
        except OSError as e:
            _unlocked(lock, job, e)
            return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
        os.close(fd)
        if e.errno not in (errno.EWOULDBLOCK, errno.EACCES):
            _unlocked(lock, job, e)
            return None
        elsewhere = holder and holder.split()[0] != socket.gethostname()
        raise FolderBusy(
            f"{folder} is being {job.doing} by another process ({holder or 'pid unknown'}): two {job.several} "
            f"of one folder would write {job.writes} — wait for it to end, or stop it (`spkemb-engine runs` lists "
            f"it), then {job.command} here"
            + ("; if that machine is down, its lock ends with its NFS lease (a minute or two)" if elsewhere else "")
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{socket.gethostname()} pid {os.getpid()}\n".encode(), 0)
    except OSError:  # a read-only descriptor: the lock holds, the file does not name us
        pass
    return fd


def _unlocked(lock: Path, job: Job, error: OSError) -> None:
    say(f"{job.command}: warning: {lock} cannot be locked ({error.strerror}): nothing keeps "
        f"two {job.several} of this folder apart")
