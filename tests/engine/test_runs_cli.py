"""`spkemb-engine runs`: table, JSON, CSV, filters, lost runs, errors; in a real subprocess where the terminal's
width, the working folder or a pipe matter."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.store import open_store
from engine.store.liveness import LOST_AFTER
from tests import children
from tests.engine.engine_runner import run_in_process


def engine(*args: str, env_db: Path | None = None) -> subprocess.CompletedProcess:
    """The command in-process (the tests below that need a process of its own start one)."""
    return run_in_process(*args, db=env_db, env={"COLUMNS": "200"})


@pytest.fixture
def filled_db(tmp_path: Path) -> Path:
    db = tmp_path / "runs.db"
    with open_store(db) as store:
        train = store.create_run(kind="train", exp_dir="e", out_dir="e/train/P.train", protocol="P",
                                 subset="train", config={"k": [1, 2]}, command=["spkemb-engine", "train"],
                                 device="cpu", target_epoch=10, name="baseline")
        store.heartbeat(train, epoch=3, step=120)
        val = store.create_run(kind="validate", exp_dir="e", out_dir="e/val", protocol="P", subset="test",
                               config={}, command=["spkemb-engine", "validate"], device="cpu",
                               parent_id=train)
        store.set_best(val, epoch=3, eer=0.0425, how="lowest-eer")
        store.set_status(val, "completed")
        gone = store.create_run(kind="apply", exp_dir="e", out_dir="e/apply", protocol="P", subset="test",
                                config={}, command=["spkemb-engine", "apply"], device="cpu",
                                _origin={"pid": 2 ** 22 + 17, "pid_start": 1.0})
        store.heartbeat(gone, _at=time.time() - LOST_AFTER - 10)
    return db


def test_runs_json(filled_db: Path) -> None:
    out = engine("runs", "--format", "json", "--db", str(filled_db))
    assert out.returncode == 0, out.stderr
    runs = json.loads(out.stdout)
    assert [(r["id"], r["kind"], r["status"]) for r in runs] == [
        (3, "apply", "lost"), (2, "validate", "completed"), (1, "train", "running")]
    assert runs[2]["config"] == {"k": [1, 2]} and runs[2]["step"] == 120
    assert runs[1]["best_eer"] == 0.0425


def test_runs_filters_and_env_db(filled_db: Path) -> None:
    out = engine("runs", "--format", "json", "--status", "completed", env_db=filled_db)
    assert out.returncode == 0, out.stderr
    assert [r["id"] for r in json.loads(out.stdout)] == [2]
    out = engine("runs", "--format", "json", "--kind", "train", env_db=filled_db)
    assert [r["id"] for r in json.loads(out.stdout)] == [1]


def test_runs_csv(filled_db: Path) -> None:
    out = engine("runs", "--format", "csv", "--db", str(filled_db))
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["id"] for r in rows] == ["3", "2", "1"]
    assert {"kind", "status", "heartbeat_at", "best_eer", "log_path"} <= set(rows[0])
    assert json.loads(rows[2]["command"]) == ["spkemb-engine", "train"]


def test_runs_table(filled_db: Path) -> None:
    out = engine("runs", "--db", str(filled_db))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # a training run shows its newest validation's pick, as the TUI's list does (its row was blank)
    assert any("baseline" in line and "running" in line and "3/10" in line and "4.25% @3" in line for line in lines)
    assert any("validate" in line and "4.25% @3" in line for line in lines)
    assert any("apply" in line and "lost" in line for line in lines)
    alone = engine("runs", "--kind", "train", "--db", str(filled_db)).stdout  # its validation not listed
    assert any("baseline" in line and "4.25% @3" in line for line in alone.splitlines()), alone


def test_a_filter_that_matches_nothing_says_so_not_that_the_database_is_empty(filled_db: Path,
                                                                             tmp_path: Path) -> None:
    out = engine("runs", "--status", "failed", "--group", "sinc", "--db", str(filled_db))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == ("no run matches --status failed --group sinc (the database holds "
                                           "3 runs: `spkemb-engine runs` lists them all)")
    empty = tmp_path / "empty.db"
    open_store(empty).close()
    for filtered in ((), ("--status", "failed")):
        out = engine("runs", *filtered, "--db", str(empty))
        assert out.stdout.splitlines()[-1] == "no runs yet"


def test_runs_without_a_database(tmp_path: Path) -> None:
    out = engine("runs", "--db", str(tmp_path / "none.db"))
    assert out.returncode == 2
    assert f"no runs database at {tmp_path / 'none.db'}" in out.stderr
    assert not (tmp_path / "none.db").exists()


def test_runs_table_at_80_columns_elides_the_protocol_in_the_middle(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    protocol = "VoxCeleb.SpeakerVerification.VoxCeleb2"
    with open_store(db) as store:
        train = store.create_run(kind="train", exp_dir="e", out_dir="e/train/x", protocol=protocol,
                                 subset="train", config={}, command=["spkemb-engine", "train"],
                                 device="cpu", target_epoch=10, name="baseline")
        store.heartbeat(train, epoch=3, step=120)
        val = store.create_run(kind="validate", exp_dir="e", out_dir="e/val", protocol=protocol,
                               subset="test", config={}, command=["spkemb-engine", "validate"],
                               device="cpu", parent_id=train)
        store.set_best(val, epoch=3, eer=0.0425, how="lowest-eer")
    env = dict(os.environ, COLUMNS="80")
    out = children.run([sys.executable, "-m", "engine", "runs", "--db", str(db)], env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    rows = [line for line in lines if line.lstrip().startswith(("1 ", "2 "))]
    assert len(rows) == 2  # one line per run: nothing folded onto a second line
    train_row = next(r for r in rows if "train " in r).split()
    val_row = next(r for r in rows if "validate" in r).split()
    elided = [cell for cell in train_row + val_row if "…" in cell]
    assert len(elided) == 2
    assert elided[0].startswith("VoxCeleb.Spe") and elided[0].endswith("Celeb2.train")
    assert elided[1].startswith("VoxCeleb.Spe") and elided[1].endswith("leb2.test")
    assert "4.25%" in val_row and "running" in train_row


def test_runs_inside_a_workspace_reads_its_runs_db(filled_db: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SPKEMB_DB"}
    out = children.run([sys.executable, "-m", "engine", "runs", "--format", "json"], env=env, cwd=filled_db.parent,
                       timeout=120)
    assert out.returncode == 0, out.stderr
    assert {run["name"] for run in json.loads(out.stdout)} >= {"baseline"}


def test_runs_into_a_pipe_keeps_every_column(filled_db: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    out = children.run([sys.executable, "-m", "engine", "runs", "--db", str(filled_db)], env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    header = next(line for line in out.stdout.splitlines() if line.lstrip().startswith("id"))
    for column in ("best EER", "protocol.subset", "host:pid", "out_dir"):
        assert column in header
    assert "4.25% @3" in out.stdout
    assert [line for line in out.stdout.splitlines() if line != line.rstrip()] == []  # no padding to the width


def test_a_name_holding_escape_sequences_or_markup_is_shown_as_it_is(tmp_path: Path) -> None:
    """A run's name or folder comes from an event file or another tool: printed raw, an escape sequence
    would clear or retitle the terminal, and brackets would be read as rich markup."""
    db = tmp_path / "runs.db"
    name = "\x1b[2J\x1b]0;TITLE\x07[red]owned[/]"
    with open_store(db) as store:
        store.create_run(kind="train", exp_dir="e", out_dir="e/\x1b[31mred", protocol="P", subset="train",
                         config={}, command=["spkemb-engine", "train"], device="cpu", name=name)
    for fmt in ("table", "csv"):
        done = engine("runs", "--db", str(db), "--format", fmt)
        assert done.returncode == 0, done.stderr
        assert "\x1b" not in done.stdout and "\x07" not in done.stdout
        assert "\\x1b[2J\\x1b]0;TITLE\\x07[red]owned[/]" in done.stdout and "e/\\x1b[31mred" in done.stdout
    json_out = engine("runs", "--db", str(db), "--format", "json").stdout
    assert "\x1b" not in json_out and json.loads(json_out)[0]["name"] == name  # JSON escapes them itself


def test_a_mark_that_reorders_text_is_shown_as_an_escape(tmp_path: Path) -> None:
    """A config key holding U+202E (right-to-left override) made the rest of the error line read backwards."""
    config = tmp_path / "config.yml"
    config.write_text("architecture:\n  name: SincTDNN\ntask:\n  name: AdditiveAngularMarginLoss\n"
                      "  params:\n    marg\u202ein: 0.1\n", encoding="utf-8")
    done = run_in_process("config", "check", str(config))
    assert done.returncode == 2 and "\u202e" not in done.stderr
    assert "task.params.marg\\u202ein: unknown parameter" in done.stderr


def test_the_epoch_column_says_what_each_kind_has_done() -> None:
    from engine.records.runs import progress_text

    assert progress_text("train", "running", 3, 10, None, None) == "3/10"
    assert progress_text("apply", "completed", None, 2, 12, 12) == "12/12 files"  # not "/2"
    # scored newest first, a finished validation's epoch is 0: the count of checkpoints scored says more
    assert progress_text("validate", "completed", 0, None, 11, None) == "11 scored"
    assert progress_text("train", "indexing", None, 10, 1000, 1_092_009) == "1000/1092009 files"
    assert progress_text("validate", "running", None, None, None, None) == ""
    assert progress_text("train", "queued", None, 2, None, None) == "0/2"  # not "/2"
    assert progress_text("validate", "running", 3, 3, 0, None) == ""  # nothing scored yet: not "3/3"


def test_a_row_edited_to_times_and_counts_no_process_writes_is_listed(filled_db: Path) -> None:
    """A time past any clock failed every `runs` ("timestamp out of range for platform time_t")."""
    import sqlite3

    with sqlite3.connect(filled_db) as conn:
        conn.execute("UPDATE runs SET started_at = 1e300, progress = 9e999, progress_total = 9e999 WHERE id = 3")
    conn.close()
    out = engine("runs", "--db", str(filled_db))
    assert out.returncode == 0, out.stderr
    (row,) = [line for line in out.stdout.splitlines() if line.lstrip().startswith("3 ")]
    assert "?/? files" in row and " ? " in row
