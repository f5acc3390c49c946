"""Read-only places for tests: a real read-only mount, and files or folders this process cannot write.

Permission bits do not stop root, so for root a path is made read-only with a read-only bind
mount of just that path; a test that cannot arrange it is skipped, saying why.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import children


def files(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir())}


def _mount(args: list[str]) -> subprocess.CompletedProcess:
    return children.run(["mount", *args], timeout=30)


class Media:
    """A tmpfs of its own, filled while writable, then remounted read-only."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def make_read_only(self) -> None:
        done = _mount(["-o", "remount,ro", str(self.folder)])
        assert done.returncode == 0, done.stderr


@pytest.fixture
def media(tmp_path: Path) -> Iterator[Media]:
    folder = tmp_path / "media"
    folder.mkdir()
    try:
        done = _mount(["-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)])
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"no read-only media: cannot run mount ({e}); needs root or CAP_SYS_ADMIN")
    if done.returncode != 0:
        pytest.skip(f"no read-only media: mount -t tmpfs failed ({done.stderr.strip()}); needs root or "
                    "CAP_SYS_ADMIN")
    try:
        yield Media(folder)
    finally:
        children.run(["umount", "-l", str(folder)], timeout=30)


@pytest.fixture
def unwritable(tmp_path: Path) -> Iterator[Callable[[Path], None]]:
    """Makes a file or folder one this process cannot write: ``chmod`` for a user, a read-only
    bind mount of just that path for root (whom permission bits do not stop)."""
    mounted: list[Path] = []

    def make(target: Path) -> None:
        if os.geteuid() != 0:
            target.chmod(0o555 if target.is_dir() else 0o444)
            return
        try:
            done = _mount(["--bind", str(target), str(target)])
        except (OSError, subprocess.SubprocessError) as e:
            pytest.skip(f"root, and cannot run mount to make {target.name} read-only ({e})")
        if done.returncode != 0:
            pytest.skip(f"root, and mount --bind failed ({done.stderr.strip()}): chmod does not stop root")
        mounted.append(target)
        done = _mount(["-o", "remount,bind,ro", str(target)])
        assert done.returncode == 0, done.stderr

    yield make
    for target in reversed(mounted):
        children.run(["umount", "-l", str(target)], timeout=30)
    for p in [tmp_path, *tmp_path.rglob("*")]:
        if p.is_dir() and not os.access(p, os.W_OK):
            p.chmod(0o755)
