"""Files read from disk that must be regular files: opened without waiting, read within a bound.

A named pipe given where a file is expected blocks ``open`` until a writer comes (for ever, in a
command or a TUI worker), and a device such as ``/dev/zero`` never ends: neither is read here.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


class NotRegularFile(OSError):
    """A pipe, a device or a socket where a regular file is read."""


class FileTooLarge(OSError):
    """A regular file larger than its reader's bound."""


def open_regular(path: str | Path) -> int:
    """A read-only descriptor of the regular file ``path`` (the caller closes it).

    Raises
    ------
    FileNotFoundError, IsADirectoryError, NotRegularFile, OSError
        When it is missing, a folder, no regular file, or cannot be opened.
    """
    # O_NONBLOCK: a pipe's open does not wait for a writer (a regular file ignores the flag)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    mode = os.fstat(fd).st_mode
    if stat.S_ISREG(mode):
        return fd
    os.close(fd)
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    raise NotRegularFile(errno.EINVAL, "not a regular file (a pipe or a device)", str(path))


def read_regular(path: str | Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    Raises
    ------
    FileTooLarge
        When it holds more than ``limit`` bytes (read up to one past them: a file that grows
        meanwhile is still bounded).
    OSError
        As :func:`open_regular`, or when it cannot be read.
    """
    with open(open_regular(path), "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(errno.EFBIG, f"larger than {limit:,} bytes", str(path))
    return data


def read_tail(path: str | Path, limit: int, since: int = 0) -> bytes:
    """The last ``limit`` bytes (or fewer) of the regular file ``path``, none before byte ``since``.

    Raises
    ------
    OSError
        As :func:`open_regular`, or when it cannot be read.
    """
    fd = open_regular(path)
    try:
        size = os.fstat(fd).st_size
        start = max(0, since, size - limit)
        return os.pread(fd, max(0, size - start), start)
    finally:
        os.close(fd)
