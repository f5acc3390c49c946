"""Names from files and users become paths only inside the folder they belong in.

A uri of a protocol list, a protocol or subset name, an experiment name typed in the TUI:
each is joined below a folder the command owns (``VAL_DIR/apply/EPOCH``, ``EXP_DIR/train``,
the workspace). ``contained_path`` is the one place that joins them, and it refuses any name
that could leave that folder, so that no input can make a command write anywhere else.
torch-free: the TUI uses it.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

__all__ = ["contained", "contained_path", "unsafe_reason"]

#: what a safe name is, for the messages
SAFE = "a relative path without '..', empty parts or NUL"


def unsafe_reason(relative: str) -> str | None:
    """Why ``relative`` cannot be joined below a folder safely, or None when it can."""
    if not relative:
        return "it is empty"
    if "\0" in relative:
        return "it holds a NUL character"
    if relative.startswith(("/", "~")):  # PurePosixPath's is_absolute, without a path object per name
        return "it is absolute"
    # a '.', '..' or empty part shows as one of these: a million names of a list are passed over at once
    if not (relative.startswith(".") or "/." in relative or "//" in relative or relative.endswith("/")):
        return None
    parts = relative.split("/")
    if ".." in parts:
        return "it climbs out with '..'"
    if "" in parts or "." in parts:
        return "it has an empty part ('//', a trailing '/' or '.')"
    return None


def contained_path(root: str | os.PathLike[str], relative: str | os.PathLike[str], *,
                   what: str = "name", fix: str = "") -> Path:
    """``root / relative``, refusing a ``relative`` that could lead outside ``root``.

    Parameters
    ----------
    root
        The folder the command owns.
    relative
        A name from a file or a user (``a/b/c.npy`` is fine: nested names become folders).
    what
        How the message names the input, e.g. ``"uri '../x' of protocol P (test)"``.
    fix
        What the user should do, appended to the message.

    Raises
    ------
    PathError
        Naming ``what``, why it is refused and where it would have been written.
    """
    from engine.errors import PathError

    text = os.fspath(relative)
    reason = unsafe_reason(text)
    if reason is not None:
        raise PathError(f"{what} is refused: {reason}, so it could be written outside {root} "
                        f"(a name must be {SAFE})" + (f" — {fix}" if fix else ""))
    path = Path(root) / text
    # a nested name passes through folders that may be symbolic links already there (a flat one is
    # replaced by the atomic rename, never followed)
    if "/" in text and not _below(_resolved(path.parent), _resolved(Path(root))):
        raise PathError(f"{what} is refused: {path.parent} is a symbolic link out of {root}, so it would be "
                        "written outside it — remove the link" + (f", or {fix}" if fix else ""))
    return path


def _below(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


@functools.lru_cache(maxsize=4096)
def _resolved(folder: Path) -> Path:
    """``folder`` with its links followed; cached: the files of a protocol share few folders."""
    return folder.resolve()


def contained(root: Path, relative: str) -> Path | None:
    """``root/relative`` when it stays inside ``root`` (a safe name holding no backslash), else None."""
    return None if unsafe_reason(relative) or "\\" in relative else Path(root) / relative
