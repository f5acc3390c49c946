"""Hostile files read by the engine (params.yml, config.yml, event files, the runs database,
database.yml): one line naming the file and the fix, exit 2 (or a warning and the rest shown),
never a traceback, and nothing already written lost."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from engine.layout import CONFIG, EVENTS, PARAMS
from engine.store import EventWriter, open_store
from tests.engine.engine_runner import run_in_process
from tests.engine.test_events import write_training

VAL_DIR = ("exp/train/Demo.SpeakerVerification.Voices.train/validate_equal_error_rate/"
           "Demo.SpeakerVerification.Voices.test")


def one_error(done, command: str) -> str:
    """The one error line of a refused command (exit 2, no traceback)."""
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"spkemb-engine {command}: error: "), line
    return line


# params.yml

@pytest.mark.parametrize("data, says", [
    (b"\xffepoch: 3\n", "not UTF-8 text (byte 0xff at offset 0); save it as UTF-8"),
    (b"epoch: 3\nequal_error_rate: 0.1\nepoch: 4\n", ":3: epoch: written twice (first on line 1); keep one"),
    (b"epoch: &x [*x]\n", "epoch[0]: an alias (*name) inside the value its anchor (&name) names"),
], ids=["not utf-8", "key twice", "alias in itself"])
@pytest.mark.parametrize("command", ["apply", "export"])
def test_a_hostile_params_yml_is_one_line_naming_it(tmp_path: Path, demo_corpus: Path, command: str,
                                                    data: bytes, says: str) -> None:
    val_dir = tmp_path / VAL_DIR
    val_dir.mkdir(parents=True)
    (val_dir / PARAMS).write_bytes(data)
    argv = ([command, str(val_dir), "Demo.SpeakerVerification.Voices"] if command == "apply"
            else [command, str(val_dir), "-o", str(tmp_path / "model.onnx")])
    done = run_in_process(*argv, database=demo_corpus, db=tmp_path / "runs.db")
    line = one_error(done, command)
    assert f"{val_dir / PARAMS}:" in line and says in line and f"spkemb-engine pick {val_dir}" in line, line
    assert sorted(p.name for p in val_dir.iterdir()) == [PARAMS] and not (tmp_path / "model.onnx").exists()
    assert (val_dir / PARAMS).read_bytes() == data


# config.yml

#: ten anchors, each a list of ten aliases of the one before: 10**10 values once expanded
BOMB_LISTS = ["&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"] + [
    f"&a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
ALIAS_BOMB = "".join(f"a{i}: {text}\n" for i, text in enumerate(BOMB_LISTS)) + "architecture: *a9\n"
HOSTILE_CONFIGS = {
    "alias in itself": ("architecture: &x [*x]\n", f"{CONFIG}:1: architecture[0]: an alias (*name) inside the value"),
    "mapping in itself": ("task: &x\n  name: *x\n", f"{CONFIG}:2: task.name: an alias (*name) inside the value"),
    "deeper in itself": ("task: &x {params: [1, {a: *x}]}\n", f"{CONFIG}:1: task.params[1].a: an alias (*name) inside"),
    "billion laughs": (ALIAS_BOMB, f"{CONFIG}: its aliases (*name) repeat more than 10,000 values"),
    "5000 levels": ("architecture: " + "[" * 5000 + "]" * 5000 + "\n", f"{CONFIG}: values nested too deeply to read"),
    # the key's repr alone would be 10**10 words long
    "billion laughs as a key": (f"? [{', '.join(BOMB_LISTS)}]\n: 1\n",
                                f"{CONFIG}:1: a key that is a list is not a name"),
}


@pytest.mark.slow
@pytest.mark.parametrize("text, says", HOSTILE_CONFIGS.values(), ids=HOSTILE_CONFIGS.keys())
@pytest.mark.parametrize("command", ["config check", "model-summary"])
def test_a_recursive_or_exploding_config_is_one_line_naming_it(tmp_path: Path, command: str, text: str,
                                                               says: str) -> None:
    (tmp_path / CONFIG).write_text(text)
    done = run_in_process(*command.split(), str(tmp_path))
    line = one_error(done, command)
    assert says in line and str(tmp_path / CONFIG) in line, line


def test_a_config_yml_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    (tmp_path / CONFIG).write_bytes(b"architecture:\n  name: caf\xe9\n")
    line = one_error(run_in_process("config", "check", str(tmp_path)), "config check")
    assert f"{tmp_path / CONFIG}:2: not UTF-8 text (byte 0xe9 at offset 25); save it as UTF-8" in line, line


def test_a_pipe_or_a_device_for_a_config_is_one_line_not_a_hang(tmp_path: Path) -> None:
    """A named pipe no one writes to would block the open; /dev/zero would be read without end."""
    os.mkfifo(tmp_path / CONFIG)
    line = one_error(run_in_process("config", "check", str(tmp_path)), "config check")
    assert f"{tmp_path / CONFIG}: the config is empty" in line, line
    (tmp_path / CONFIG).unlink()
    (tmp_path / CONFIG).symlink_to("/dev/zero")
    line = one_error(run_in_process("config", "check", str(tmp_path)), "config check")
    assert f"{tmp_path / CONFIG}: larger than 16 MiB" in line, line


def test_a_pipe_with_a_writer_is_read_whole(tmp_path: Path) -> None:
    """What a shell's ``<(…)`` hands a command: a pipe whose writer is there, read to its end."""
    from engine.config import template_text

    read_end, write_end = os.pipe()
    text = template_text("demo").encode()
    writer = threading.Thread(target=lambda: (os.write(write_end, text), os.close(write_end)))
    writer.start()
    try:
        done = run_in_process("config", "check", f"/proc/self/fd/{read_end}")
    finally:
        writer.join()
        os.close(read_end)
    assert done.returncode == 0, done.stderr
    assert "SincTDNN" in done.stdout


def test_aliases_that_repeat_a_little_are_read() -> None:
    from engine.config.yamlsrc import read_yaml

    src = read_yaml("base: &b {name: Adam, params: {lr: 0.01}}\noptimizer: *b\nother: *b\n", "c")
    assert src.data["optimizer"] == src.data["other"] == {"name": "Adam", "params": {"lr": 0.01}}
    assert src.line("optimizer.params.lr") == 1  # where it is written: the anchor's line


# event files

@pytest.fixture()
def event_file(tmp_path: Path) -> Path:
    trn_dir = tmp_path / "exp/train/P.train"
    with EventWriter(trn_dir / EVENTS) as writer:
        run_id = write_training(writer, trn_dir, range(1, 3))
        writer.set_status(run_id, "completed")
    return trn_dir / EVENTS


@pytest.mark.parametrize("deep", ["[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000],
                         ids=["lists", "objects"])
def test_an_event_line_nested_too_deeply_is_a_damaged_line(event_file: Path, deep: str) -> None:
    lines = event_file.read_text().splitlines()
    event_file.write_text("\n".join([*lines[:-1], deep, lines[-1]]) + "\n")
    db = event_file.parent / "local.db"
    line = one_error(run_in_process("import", str(event_file), "--db", str(db)), "import")
    assert f"{event_file}:{len(lines)}: not a spkemb event record (nested more than 32 levels deep)" in line
    assert f"the {len(lines) - 1} new records before it are imported" in line
    with open_store(db, readonly=True) as store:
        (run,) = store.runs()
        assert run["status"] == "running" and len(store.checkpoints(run["id"])) == 2


def test_a_config_in_an_event_line_nested_hundreds_deep_is_refused(event_file: Path) -> None:
    """Python's JSON reader would take it, and hand it to every later reader of the run (the
    database's writer, `runs`, the TUI), each one nearer the end of its stack."""
    lines = event_file.read_text().splitlines()
    record = json.loads(lines[0])
    record["args"]["config"]["task"] = json.loads("[" * 900 + "]" * 900)
    event_file.write_text("\n".join([json.dumps(record), *lines[1:]]) + "\n")
    db = event_file.parent / "local.db"
    line = one_error(run_in_process("import", str(event_file), "--db", str(db)), "import")
    assert f"{event_file}:1: not a spkemb event record (nested more than 32 levels deep)" in line
    with open_store(db, readonly=True) as store:
        assert store.runs() == []


# the runs database

@pytest.fixture()
def damaged_db(tmp_path: Path) -> Path:
    """Two runs; the config of the first is not JSON (edited by hand), the command of the second nests too deeply."""
    db = tmp_path / "runs.db"
    with open_store(db) as store:
        for name in ("edited", "deep"):
            store.create_run(kind="train", exp_dir=tmp_path, out_dir=tmp_path / name, protocol="P", subset="train",
                             config={"a": 1}, command=["spkemb-engine", "train"], device="cpu", name=name)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET config = '{not json' WHERE id = 1")
        conn.execute("UPDATE runs SET command = ? WHERE id = 2", ("[" * 100_000 + "]" * 100_000,))
    conn.close()
    return db


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_runs_lists_a_run_whose_json_column_is_damaged_with_a_warning(damaged_db: Path, fmt: str) -> None:
    before = damaged_db.read_bytes()
    done = run_in_process("runs", "--db", str(damaged_db), "--format", fmt, env={"COLUMNS": "200"})
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    warnings = done.stderr.strip().splitlines()
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith(f"runs: warning: run 2: its command in {damaged_db} is JSON nested too deeply")
    assert warnings[1].startswith(f"runs: warning: run 1: its config in {damaged_db} is not JSON (Expecting")
    assert all(w.endswith("; shown without it") for w in warnings)
    if fmt == "json":
        rows = json.loads(done.stdout)
        assert [(r["id"], r["name"], r["config"], r["command"]) for r in rows] == [
            (2, "deep", {"a": 1}, None), (1, "edited", None, ["spkemb-engine", "train"])]
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(done.stdout)))
        assert [(r["id"], r["config"], r["command"]) for r in rows] == [
            ("2", '{"a": 1}', ""), ("1", "", '["spkemb-engine", "train"]')]
    else:
        assert "edited" in done.stdout and "deep" in done.stdout
    assert damaged_db.read_bytes() == before  # read, never mended behind the user's back


def test_the_tui_reads_a_run_whose_config_is_damaged(damaged_db: Path) -> None:
    from app.data.reader import read_curves

    edited, deep = read_curves(damaged_db, [1, 2])
    assert edited.config == {} and edited.run.name == "edited" and edited.run.command == ["spkemb-engine", "train"]
    assert deep.config == {"a": 1} and deep.run.command is None


def test_tags_nested_too_deeply_read_as_none(damaged_db: Path) -> None:
    with sqlite3.connect(damaged_db) as conn:
        conn.execute("UPDATE runs SET tags = ? WHERE id = 1", ("[" * 100_000 + "]" * 100_000,))
    conn.close()
    done = run_in_process("runs", "--db", str(damaged_db))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr


# database.yml (a database named X: test_bad_input.py's test_validate_names_a_database_yml_it_cannot_use)


def test_a_real_meta_protocol_passes_the_check(tmp_path: Path) -> None:
    from engine.data.database_yml import check_shape

    database = tmp_path / "database.yml"
    database.write_text("Protocols:\n  X:\n    SpeakerVerification:\n      Both:\n        scope: global\n"
                        "        train:\n          Demo.SpeakerVerification.Voices: [train]\n")
    check_shape(database)
