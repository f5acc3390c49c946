"""What each run ran with (``runs.software``): spkemb's version, its source's git commit, Python's and
torch's versions, recorded by the process that ran it, carried by event files, refused when damaged."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
from importlib.metadata import version
from pathlib import Path

import pytest

from engine.errors import StoreError
from engine.store import EventWriter, import_events, open_store
from engine.version import VERSION, software, source_commit
from tests import children

ROOT = Path(__file__).resolve().parents[2]


def create(writer) -> int:
    return writer.create_run(kind="train", exp_dir="/e", out_dir="/e/train/P.train", protocol="P", subset="train",
                             config=None, command=["train"], device="cpu")


def test_a_run_records_the_software_of_the_process_that_ran_it(tmp_path: Path) -> None:
    with open_store(tmp_path / "runs.db") as store:
        run = store.run(create(store))
    assert run["software"] == software()
    assert run["software"]["spkemb"] == VERSION == version("spkemb")
    assert run["software"]["python"] == platform.python_version()
    assert run["software"]["torch"] == version("torch")
    if (ROOT / ".git").exists():  # this checkout (CI clones it): the commit it stands on
        head = children.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], timeout=30).stdout.strip()
        assert run["software"]["git"] == head


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x"}
    done = children.run(["git", "-C", str(cwd), *args], timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_commit_is_read_as_git_says_it_in_a_clone_a_worktree_packed_refs_and_a_detached_head(
        tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "a").write_text("a")
    git(repo, "add", "a")
    git(repo, "commit", "-q", "-m", "a")
    first = git(repo, "rev-parse", "HEAD")
    assert source_commit(repo) == first
    (repo / "a").write_text("b")
    git(repo, "commit", "-q", "-am", "b")
    git(repo, "worktree", "add", "-q", str(tmp_path / "tree"), "-b", "side", first)
    assert source_commit(tmp_path / "tree") == first
    git(repo, "pack-refs", "--all")  # the branches' files gone into packed-refs
    assert source_commit(repo) == git(repo, "rev-parse", "HEAD") != first
    assert source_commit(tmp_path / "tree") == first
    git(repo, "checkout", "-q", "--detach", first)
    assert source_commit(repo) == first
    assert source_commit(tmp_path) is None  # no checkout


def test_a_damaged_git_folder_is_no_commit_and_a_pipe_does_not_block(tmp_path: Path) -> None:
    for name, head in [("garbage", "ref: refs/heads/none"), ("short", "1234"), ("binary", None)]:
        root = tmp_path / name
        (root / ".git").mkdir(parents=True)
        if head is None:
            (root / ".git" / "HEAD").write_bytes(b"\xff\xfe" * 10)
        else:
            (root / ".git" / "HEAD").write_text(head)
        assert source_commit(root) is None, name
    piped = tmp_path / "piped"
    (piped / ".git").mkdir(parents=True)
    os.mkfifo(piped / ".git" / "HEAD")  # nothing writes it: an open that waited would hang here
    assert source_commit(piped) is None


def test_an_event_file_carries_the_software_and_an_older_one_imports_as_null(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    with EventWriter(events) as writer:
        create(writer)
    older = tmp_path / "older.jsonl"
    record = json.loads(events.read_text())
    del record["args"]["_origin"]["software"]  # as a release before 2026-12-06 wrote it
    record["run"] = "0" * 32  # another run
    older.write_text(json.dumps(record) + "\n")
    with open_store(tmp_path / "runs.db") as store:
        import_events(events, store)
        import_events(older, store)
        imported, old = sorted(store.runs(), key=lambda r: r["id"])
    assert imported["software"] == software()
    assert old["software"] is None  # not the software of the process that imported it


@pytest.mark.parametrize("value", ["0.1.0", {"spkemb": 1}, ["torch"]])
def test_a_software_of_the_wrong_shape_is_refused_as_file_and_line(tmp_path: Path, value) -> None:
    events = tmp_path / "events.jsonl"
    with EventWriter(events) as writer:
        create(writer)
    record = json.loads(events.read_text())
    record["args"]["_origin"]["software"] = value
    events.write_text(json.dumps(record) + "\n")
    with open_store(tmp_path / "runs.db") as store:
        with pytest.raises(StoreError, match=f"^{events}:1: .*software"):
            import_events(events, store)
        assert store.runs() == []


def test_a_hand_edited_software_reads_as_none_and_says_why(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    with open_store(db) as store:
        run_id = create(store)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE runs SET software = '{not json' WHERE id = ?", (run_id,))
    conn.commit()
    conn.close()
    with open_store(db, readonly=True) as store:
        run = store.run(run_id)
    assert run["software"] is None and "software" in run["_damaged"]
