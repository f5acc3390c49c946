"""Replacing a file so that a reader sees the old one or the new one, never half of either.

Write a temporary file in the same folder, fsync it, rename it over the target, fsync the
folder (so the rename itself survives a crash). torch-free.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from engine.errors import DiskFull

#: prefix of the temporary files, so that a sweep can find those of a killed writer
TMP_PREFIX = ".tmp-"


#: a temporary file untouched this long whose writer is no process of this machine is a dead writer's
#: (a writer of another machine sharing the folder keeps its file younger while it writes)
STALE_TMP_AFTER = 60.0


def sweep_dead_temps(folder: Path, now: float | None = None) -> list[Path]:
    """Delete the temporary files (``.tmp-PID-NAME``) a killed writer left in ``folder``; return them."""
    now = time.time() if now is None else now
    removed = []
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(TMP_PREFIX) and e.is_file(follow_symlinks=False)]
    except OSError:  # no folder yet, or one we cannot list: nothing of ours to sweep
        return []
    for entry in entries:
        pid = entry.name[len(TMP_PREFIX):].partition("-")[0]
        try:
            stale = now - entry.stat(follow_symlinks=False).st_mtime > STALE_TMP_AFTER
            if stale and not (pid.isdigit() and pid_alive(int(pid))):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a process of this machine (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's content, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path: str | Path, write: Callable[[IO], object], mode: str = "w") -> Path:
    """Replace ``path`` by what ``write(file)`` writes, atomically."""
    path = Path(path)
    atomic_write_together([(path, write, mode)])
    return path


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
#: numpy's ``tofile`` (np.save of an array) on a short write: an OSError without an errno
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")


def no_space(error: BaseException) -> bool:
    """Whether ``error`` comes from a full disk or quota, however deeply wrapped.

    torch.save turns the OSError of a failed write into a RuntimeError ("unexpected pos"),
    keeping the OSError only as its ``__context__``: walk the whole chain. numpy's short write
    (``130560 requested and 17376 written``) carries no errno: a write to a regular file stops short
    when the disk or the quota is full (or at a file size limit, which this names the same way).
    """
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and (e.errno in _NO_SPACE or (e.errno is None and _SHORT_WRITE.fullmatch(str(e)))):
            return True
        todo += [e.__cause__, e.__context__]
    return False


def atomic_write_together(writes: list[tuple[Path, Callable[[IO], object], str]]) -> None:
    """Replace several files (``(path, write, mode)`` each, in one folder or several) at once:
    every one is written and synced before the first is renamed, so that a failed write (a full
    disk) leaves all of them as they were. Only a crash between the renames, back to back, could
    leave some replaced and others not."""
    temps: list[Path] = []
    try:
        for path, write, mode in writes:
            path.parent.mkdir(parents=True, exist_ok=True)
            temps.append(tmp := path.with_name(f"{TMP_PREFIX}{os.getpid()}-{path.name}"))
            with open(tmp, mode) as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
        for tmp, (path, _, _) in zip(temps, writes, strict=True):
            os.replace(tmp, path)
    except BaseException as e:
        for tmp in temps:  # those not renamed yet
            tmp.unlink(missing_ok=True)
        if no_space(e):
            raise DiskFull(str(writes[len(temps) - 1][0].parent), writing=writes[len(temps) - 1][0].name) from e
        raise
    for folder in {path.parent for path, _, _ in writes}:
        fsync_dir(folder)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Replace ``path`` by ``text`` atomically."""
    return atomic_write(path, lambda f: f.write(text))
