"""A runs database this process cannot write: listed without leaving a file, refused to writers in one line.

Read-only media is a real read-only mount (a tmpfs remounted ``ro``); a read-only file or
folder is ``chmod``-ed for a user and bind-mounted read-only for root, since permission bits
do not stop root. Where that cannot be arranged the test is skipped, saying why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.errors import StoreError
from engine.store import open_store
from tests.engine.engine_runner import engine_env, run_engine
from tests.engine.test_store import new_run

def _files(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir())}


def _mount(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)


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
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


def _fill(path: Path, name: str = "first") -> None:
    with open_store(path) as store:
        new_run(store, name=name)


def _listed(done: subprocess.CompletedProcess) -> list[str]:
    assert done.returncode == 0, done.stdout + done.stderr
    return [run["name"] for run in json.loads(done.stdout)]


def test_runs_lists_a_database_on_read_only_media_leaving_no_file(media: Media, tmp_path: Path) -> None:
    clean = media.folder / "clean" / "runs.db"
    _fill(clean)
    # a copy taken while a writer had it open: the last run is only in its -wal
    live = media.folder / "live" / "runs.db"
    live.parent.mkdir()
    source = tmp_path / "source" / "runs.db"
    with open_store(source) as writer:
        new_run(writer, name="in the db")
        writer.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        new_run(writer, name="in the wal")
        for suffix in ("", "-wal", "-shm"):
            shutil.copy(f"{source}{suffix}", f"{live}{suffix}")
    media.make_read_only()
    before = {p: _files(p.parent) for p in (clean, live)}

    assert _listed(run_engine("runs", "--db", str(clean), "--format", "json", timeout=120)) == ["first"]
    assert _listed(run_engine("runs", "--db", str(live), "--format", "json", timeout=120)) == [
        "in the wal", "in the db"]
    assert {p: _files(p.parent) for p in (clean, live)} == before  # no -wal, no -shm, nothing


def test_train_into_a_database_on_read_only_media_stops_with_one_line(media: Media, tmp_path: Path,
                                                                       tiny_exp: Path, demo_corpus: Path) -> None:
    db = media.folder / "runs.db"
    _fill(db)
    media.make_read_only()
    before = _files(media.folder)
    done = run_engine("train", str(tiny_exp), "Demo.SpeakerVerification.Voices", "--db", str(db), "--device", "cpu",
                      database=demo_corpus, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if ": error: " in line]
    assert errors == [done.stderr.strip().splitlines()[-1]], done.stderr
    assert errors[0].startswith(f"spkemb-engine train: error: runs database {db} is read-only ("), errors
    assert "--db" in errors[0] and "permissions" in errors[0]
    assert _files(media.folder) == before


@pytest.fixture
def unwritable(tmp_path: Path) -> Iterator:
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
        subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=30)
    for p in [tmp_path, *tmp_path.rglob("*")]:
        if p.is_dir() and not os.access(p, os.W_OK):
            p.chmod(0o755)


@pytest.mark.parametrize("read_only", ["file", "folder"])
def test_runs_lists_a_read_only_file_or_folder_leaving_no_file(tmp_path: Path, unwritable, read_only: str) -> None:
    db = tmp_path / "db" / "runs.db"
    _fill(db)
    unwritable(db if read_only == "file" else db.parent)  # the file: its folder stays writable
    before = _files(db.parent)
    assert _listed(run_engine("runs", "--db", str(db), "--format", "json", timeout=120)) == ["first"]
    assert _files(db.parent) == before  # no -wal, no -shm left behind


def test_a_writer_refuses_a_read_only_file_in_one_line(tmp_path: Path, unwritable) -> None:
    db = tmp_path / "db" / "runs.db"
    _fill(db)
    unwritable(db)
    before = _files(db.parent)
    with pytest.raises(StoreError) as refused:
        open_store(db)
    assert str(refused.value).startswith(f"runs database {db} is read-only (") and "\n" not in str(refused.value)
    assert _files(db.parent) == before
