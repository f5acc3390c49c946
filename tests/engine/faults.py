"""Run the real engine with an operating-system fault injected: ``python -m tests.engine.faults ARGS``.

A small tmpfs cannot be mounted without root, so the disk fills up here instead: the
``SPKEMB_FAULT_ENOSPC_AT``-th checkpoint temporary file opened for writing (``.tmp-*.pt``;
another suffix with ``SPKEMB_FAULT_ENOSPC_SUFFIX``, e.g. ``.npy``) takes its first bytes, then
every write to it fails with ``OSError(ENOSPC)``, as on a full disk. With
``SPKEMB_FAULT_DB_FULL=1`` every other file stops growing at that moment too (``RLIMIT_FSIZE``
= 0), so that SQLite cannot write the runs database either; with ``SPKEMB_FAULT_NO_WRITES=1``
that holds from the start. Only the OS calls fail; the
engine's own code runs unchanged.
"""

from __future__ import annotations

import builtins
import errno
import os
import resource
import signal
import sys
from pathlib import Path
from typing import Any

from engine.atomic import TMP_PREFIX

_open = builtins.open
_opened = 0


class _FillingFile:
    """A real file on a device that fills up after ``room`` bytes."""

    def __init__(self, file: Any, room: int) -> None:
        self._file, self._room = file, room

    def write(self, data: bytes) -> int:
        if len(data) > self._room:
            self._file.write(bytes(data[:self._room]))
            self._file.flush()
            self._room = 0
            _disk_full()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return self._file.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    def __enter__(self) -> _FillingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


def _disk_full(now: bool = False) -> None:
    if now or os.environ.get("SPKEMB_FAULT_DB_FULL") == "1":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def _faulty_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
    global _opened
    f = _open(file, mode, *args, **kwargs)
    name = Path(os.fspath(file)).name if isinstance(file, (str, os.PathLike)) else ""
    suffix = os.environ.get("SPKEMB_FAULT_ENOSPC_SUFFIX", ".pt")
    if "w" in mode and name.startswith(TMP_PREFIX) and name.endswith(suffix):
        _opened += 1
        if _opened == int(os.environ.get("SPKEMB_FAULT_ENOSPC_AT", "0")):
            return _FillingFile(f, room=4096)
    return f


if __name__ == "__main__":
    from engine.cli import main

    builtins.open = _faulty_open
    if os.environ.get("SPKEMB_FAULT_NO_WRITES") == "1":
        _disk_full(now=True)
    sys.argv[0] = "spkemb-engine"
    sys.exit(main(sys.argv[1:]))
