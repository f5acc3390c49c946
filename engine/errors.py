"""The one error hierarchy of the engine.

Every error carries the message a user needs: what was wrong, where (file, key,
line, path) and the fix. The CLI turns them into one stderr line and exit code 2
in one place (``engine.cli.main``); library code only raises.
"""

from __future__ import annotations

import os


class SpkembError(Exception):
    """Base class: ``str(error)`` is the whole message shown to the user."""

    exit_code: int = 2


class ConfigError(SpkembError):
    """A config.yml that cannot be used: names the key, its line and what is accepted."""

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None,
                 line: int | None = None) -> None:
        where = ""
        if source is not None:
            where = source + (f":{line}" if line is not None else "")
            where += f": {key}: " if key else ": "
        elif key:
            where = f"{key}: "
        super().__init__(where + message)
        self.source, self.key, self.line = source, key, line


class ProtocolError(SpkembError):
    """A pyannote.database protocol or database.yml that cannot be resolved."""


class AudioError(SpkembError):
    """An audio file that is missing, unreadable, empty or of an unusable format."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class StoreError(SpkembError):
    """The runs database cannot be opened or used (corrupt, newer schema, locked)."""


class QueryStopped(StoreError):
    """A read-only SQL query stopped before its end: its time limit passed, or it was interrupted.

    ``seconds`` is the limit that passed, or how long it ran before the interruption.
    """

    def __init__(self, message: str, *, seconds: float, interrupted: bool) -> None:
        super().__init__(message)
        self.seconds, self.interrupted = seconds, interrupted


class CheckpointError(SpkembError):
    """A checkpoint that is missing, half-written or from another model."""


class CacheError(SpkembError):
    """A cache entry (the training index) that is damaged or altered: names the folder and what is
    wrong with it. The cache's user builds the entry again; the message reaches a user only if the
    rebuilt entry is damaged too."""

    def __init__(self, message: str, *, folder: str | os.PathLike | None = None) -> None:
        super().__init__(f"the cached index {folder} is damaged: {message}" if folder is not None else message)
        self.folder = None if folder is None else str(folder)
        self.reason = message


class TrainingError(SpkembError):
    """Training cannot go on (non-finite loss, no usable speaker, ...)."""


class FolderBusy(SpkembError):
    """A run folder another process is working in (its lock is held): names the holder's host and pid."""


class PathError(SpkembError):
    """A name read from a file or typed by a user that would become a path outside its folder."""


class FileAccessError(SpkembError):
    """A file or folder the command needs cannot be read or written: a missing or read-only
    folder, permissions, a full disk. The CLI makes one from any ``OSError`` that reaches it."""

    @classmethod
    def from_os_error(cls, error: OSError) -> FileAccessError:
        where = " -> ".join(str(f) for f in (error.filename, error.filename2) if f is not None)
        what = error.strerror or str(error) or type(error).__name__
        return cls(f"{where + ': ' if where else ''}{what} — check that the path exists, that you may "
                   "read and write there, and that its disk has space")


class DiskFull(SpkembError):
    """A write found no space left (ENOSPC, EDQUOT): names the folder; what was there is kept."""

    def __init__(self, folder: str, *, writing: str) -> None:
        super().__init__(f"no space left on the device of {folder} while writing {writing}; the earlier "
                         "files are intact: free some space there (`spkemb-engine clean EXP_DIR` lists the epoch "
                         "checkpoints no result needs; or move the experiment), then run the command again (a "
                         "training run that wrote checkpoints goes on with train --resume)")
        self.folder = folder


def yaml_problem(error: Exception, *, with_file: bool = False) -> str:
    """A YAML parse error in one line, ``line 1, column 17: expected ',' or ']', but got '<stream end>'``
    (PyYAML's own message spans several lines and quotes the text); ``with_file`` starts it with the
    file the parser read, when it read one. Any other error: its first line."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = (getattr(error, "problem", None) or getattr(error, "context", None)
               or (str(error).splitlines() or [type(error).__name__])[0])
    if mark is None:
        return problem
    name = str(getattr(mark, "name", "") or "")
    where = f"{name}, " if with_file and name and not name.startswith("<") else ""
    return f"{where}line {mark.line + 1}, column {mark.column + 1}: {problem}"
