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
from typing import TYPE_CHECKING

from engine.console import say
from engine.errors import FolderBusy

if TYPE_CHECKING:  # torch's: a process of one rank (clean, pick) locks without importing it
    from engine.process.distributed import World


@dataclass(frozen=True)
class Job:
    """What a folder's lock keeps to one process, as the refusal says it."""

    command: str        # train
    doing: str          # trained
    several: str        # two trainings
    writes: str         # write the same checkpoints
    #: how the lock file names its holder beside its host and pid (train and validate: by their pid alone)
    holder: str = ""


TRAINING = Job("train", "trained", "two trainings", "write the same checkpoints")
VALIDATION = Job("validate", "validated", "two validations", "write the same score files and params.yml")
#: ``clean`` deletes checkpoints: it holds a TRN_DIR's lock, and each of its VAL_DIRs'
CLEANING_TRAINING = Job("clean", "trained", "a training and a clean", "write and delete the same checkpoints",
                        holder="spkemb-engine clean")
CLEANING_VALIDATION = Job("clean", "validated", "a validation and a clean", "read and delete the same checkpoints",
                          holder="spkemb-engine clean")


def is_held(lock: Path) -> bool:
    """Whether a live process holds the lock file ``lock`` (a training of its folder under way, say)."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False  # never locked here, or unreadable: nobody known to hold it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as e:
        return e.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    finally:
        os.close(fd)  # and with it the shared lock just taken
    return False


@contextmanager
def held(folder: Path, lock: Path, job: Job, world: World | None = None) -> Iterator[None]:
    """``folder`` made and ``lock`` (a file in it) locked by the main rank for the block.

    Raises
    ------
    FolderBusy
        Another process holds it (named by the host and pid it wrote there), on every rank.
    """
    fd, refusal = None, None
    if world is None or world.is_main:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            fd = _hold(folder, lock, job)
        except FolderBusy as e:
            refusal = e
    try:
        refused = refusal is not None
        if world is not None and world.distributed:
            from engine.process.distributed import agree

            refused = agree(refused, world)
        if refused:
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
            f"{folder} is being {job.doing} by another process ({holder or 'pid unknown'}): {job.several} "
            f"of one folder would {job.writes} — wait for it to end, or stop it (`spkemb-engine runs` lists "
            f"it), then {job.command} here"
            + ("; if that machine is down, its lock ends with its NFS lease (a minute or two)" if elsewhere else "")
        ) from None
    try:
        os.ftruncate(fd, 0)
        named = f"{socket.gethostname()} pid {os.getpid()}" + (f", {job.holder}" if job.holder else "")
        os.pwrite(fd, f"{named}\n".encode(), 0)
    except OSError:  # a read-only descriptor: the lock holds, the file does not name us
        pass
    return fd


def _unlocked(lock: Path, job: Job, error: OSError) -> None:
    say(f"{job.command}: warning: {lock} cannot be locked ({error.strerror}): nothing keeps "
        f"{job.several} of this folder apart")
