"""The version of spkemb (``--version``), and the software a run ran with (recorded on each run).

Torch-free: the versions are read from the installed packages' metadata and the commit from the
checkout's ``.git`` files, without importing torch or running git.
"""

from __future__ import annotations

import functools
import platform
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from engine.regular_files import read_regular

try:
    VERSION = version("spkemb")
except PackageNotFoundError:  # a checkout on sys.path that pip never installed
    VERSION = "unknown (not installed)"

#: what ``.git``'s small files (HEAD, a ref) and its packed refs (every branch and tag) may hold
_MAX_GIT_FILE = 64 * 1024
_MAX_PACKED_REFS = 64 * 1024 * 1024
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


@functools.cache
def software() -> dict[str, str]:
    """spkemb's version, the commit of its source when it runs from a git checkout (an editable
    install of a clone: which code made a run), and Python's, torch's and torchaudio's versions."""
    found = {"spkemb": VERSION}
    commit = source_commit(Path(__file__).resolve().parents[1])
    if commit is not None:
        found["git"] = commit
    found["python"] = platform.python_version()
    for package in ("torch", "torchaudio"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


def source_commit(root: Path) -> str | None:
    """The commit checked out in ``root`` (a clone, or a worktree of one), read from its ``.git``;
    None where there is none or it cannot be read."""
    try:
        git = root / ".git"
        if git.is_file():  # a worktree: "gitdir: PATH"
            git = (root / _read(git).removeprefix("gitdir:").strip()).resolve()
        head = _read(git / "HEAD")
        if not head.startswith("ref:"):
            return head if _SHA.fullmatch(head) else None  # a detached HEAD
        ref = head.removeprefix("ref:").strip()
        common = (git / _read(git / "commondir")).resolve() if (git / "commondir").is_file() else git
        if (common / ref).is_file():
            sha = _read(common / ref)
            return sha if _SHA.fullmatch(sha) else None
        for line in _read(common / "packed-refs", _MAX_PACKED_REFS).splitlines():
            sha, _, name = line.partition(" ")
            if name == ref and _SHA.fullmatch(sha):
                return sha
    except (OSError, UnicodeDecodeError, ValueError):
        pass
    return None


def _read(path: Path, limit: int = _MAX_GIT_FILE) -> str:
    # a regular file only: a pipe put there would block the command that records its run
    return read_regular(path, limit).decode("utf-8").strip()


def software_text(found: object) -> str:
    """A run's recorded software on one line (``spkemb 0.1.0 (git c458d46), Python 3.11.7, torch 2.14.1``);
    ``not recorded`` for a run recorded before the column, or a value of another shape."""
    if not isinstance(found, dict) or not found:
        return "not recorded"
    named = {str(k): str(v) for k, v in found.items()}
    spkemb = named.pop("spkemb", "?")
    commit = named.pop("git", None)
    names = {"python": "Python"}
    return ", ".join([f"spkemb {spkemb}" + (f" (git {commit[:12]})" if commit else ""),
                      *(f"{names.get(k, k)} {v}" for k, v in named.items())])
