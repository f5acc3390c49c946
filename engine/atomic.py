"""Replacing a file so that a reader sees the old one or the new one, never half of either.

Write a temporary file in the same folder, fsync it, rename it over the target, fsync the
folder (so the rename itself survives a crash). torch-free.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

#: prefix of the temporary files, so that a sweep can find those of a killed writer
TMP_PREFIX = ".tmp-"


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[IO], None], mode: str = "w") -> Path:
    """Replace ``path`` by what ``write(file)`` writes, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{TMP_PREFIX}{os.getpid()}-{path.name}")
    with open(tmp, mode) as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Replace ``path`` by ``text`` atomically."""
    return atomic_write(path, lambda f: f.write(text))
