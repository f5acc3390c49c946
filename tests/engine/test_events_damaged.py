"""Event files damaged line by line: each bad record is named as FILE:LINE, what came before is kept."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.errors import StoreError
from engine.records import Checkpoint, ValidationResult
from engine.store import EventWriter, import_events, open_store
from tests.engine.engine_runner import run_in_process
from tests.engine.test_events import write_training


def _set(key: str, value) -> Callable[[dict], None]:
    return lambda record: record["args"].__setitem__(key, value)


#: (op of the line to damage, damage, what the message names)
DAMAGE = [
    ("add_steps", lambda r: r.__setitem__("seq", "x"), "seq must be an integer"),
    ("add_steps", _set("rows", "1,2,3"), "rows must be a list"),
    ("add_steps", lambda r: r["args"]["rows"][3].__setitem__("step", "13"), "rows[3]: step must be an integer"),
    ("add_steps", lambda r: r["args"]["rows"][0].pop("step"), "rows[0]: missing argument 'step'"),
    ("add_epoch", _set("momentum", 0.9), "unknown argument 'momentum'"),
    ("add_epoch", lambda r: r["args"].pop("loss"), "missing argument 'loss'"),
    ("add_epoch", _set("_at", 0), "unknown argument '_at'"),
    ("heartbeat", _set("step", 1.5), "step must be an integer or null"),
    ("add_checkpoint", _set("partial", "no"), "partial must be true or false"),
    ("add_checkpoint", _set("path", 7), "path must be a string or a path"),
    ("add_problem", _set("fatal", None), "fatal must be true or false"),
    ("set_status", _set("status", "done"), "status must be one of running, indexing, completed"),
    ("set_status", lambda r: r.__setitem__("args", ["completed"]), "args must be an object"),
    ("set_status", lambda r: r.__setitem__("op", "drop_table"), "unknown op 'drop_table'"),
    ("set_status", lambda r: r.pop("run"), "no 'run' field"),
    ("set_status", lambda r: r.__setitem__("t", "yesterday"), "t must be a number"),
    # imported, a time beyond any clock failed every `runs` after it ("timestamp out of range")
    ("set_status", lambda r: r.__setitem__("t", 1e300), "t must be a Unix time (seconds since 1970"),
    ("heartbeat", lambda r: r.__setitem__("t", -5), "t must be a Unix time"),
    ("add_steps", lambda r: r["args"]["rows"][1].__setitem__("time", 1e300), "rows[1]: time must be a Unix time"),
    # imported, one inf loss ended the TUI when its plot labelled its axis
    ("add_steps", lambda r: r["args"]["rows"][2].__setitem__("loss", float("inf")),
     "rows[2]: loss must be a finite number, not Infinity"),
    ("add_steps", lambda r: r["args"]["rows"][0].__setitem__("loss", float("nan")), "rows[0]: loss must be a finite"),
    ("add_epoch", _set("loss", float("-inf")), "loss must be a finite number, not -Infinity"),
    ("add_epoch", lambda r: r.update(op="add_validation", args={"epoch": 2, "eer": float("inf")}),
     "add_validation args: eer must be a finite number, not Infinity"),
    ("add_epoch", lambda r: r.update(op="add_validation", args={"epoch": 2, "eer": 0.1, "asnorm": {
        "eer": float("nan"), "cohort_size": 10}}), "asnorm: eer must be a finite number, not NaN"),
    ("add_epoch", lambda r: r.update(op="set_best", args={"epoch": 2, "eer": float("inf"),
                                                                   "how": "lowest-eer"}),
     "set_best args: eer must be a finite number"),
]


@pytest.fixture()
def event_file(tmp_path: Path) -> Path:
    """A real event file: two epochs of a training run, then its end."""
    trn_dir = tmp_path / "exp/train/P.train"
    with EventWriter(trn_dir / "events.jsonl") as writer:
        run_id = write_training(writer, trn_dir, range(1, 3))
        writer.set_status(run_id, "completed")
    return trn_dir / "events.jsonl"


def _damage(path: Path, op: str, how: Callable[[dict], None]) -> int:
    """Damage the last line of ``op`` in place; returns its line number."""
    lines = path.read_text().splitlines()
    number = max(i for i, line in enumerate(lines, 1) if json.loads(line)["op"] == op)
    record = json.loads(lines[number - 1])
    how(record)
    lines[number - 1] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")
    return number


@pytest.mark.parametrize("op, how, named", DAMAGE, ids=[f"{op}:{named}" for op, _, named in DAMAGE])
def test_a_bad_record_is_named_and_what_came_before_is_imported(event_file: Path, op, how, named) -> None:
    number = _damage(event_file, op, how)
    lines = event_file.read_text().splitlines()
    mended = lines[:number - 1] + lines[number:]
    steps_before, steps_after = (sum(len(json.loads(line)["args"]["rows"]) for line in part
                                     if json.loads(line)["op"] == "add_steps")
                                 for part in (lines[:number - 1], mended))
    with open_store(event_file.parent / "runs.db") as store:
        with pytest.raises(StoreError) as bad:
            import_events(event_file, store)
        message = str(bad.value)
        assert message.startswith(f"{event_file}:{number}: ") and named in message, message
        (run,) = store.runs()
        assert len(store.steps(run["id"])) == steps_before

        # the line mended (here: deleted), the rest comes in once
        event_file.write_text("\n".join(mended) + "\n")
        assert import_events(event_file, store)["records"] == len(lines) - number
        assert import_events(event_file, store)["records"] == 0
        assert len(store.runs()) == 1 and len(store.steps(run["id"])) == steps_after



def test_bytes_that_are_not_utf8_are_named_not_imported_as_replacement_characters(event_file: Path) -> None:
    """A run's name with a byte of another encoding was imported as "ex\ufffd\ufffdp", silently."""
    lines = event_file.read_bytes().split(b"\n")
    number = len(lines) - 1  # the last record: the run's end
    lines[number - 1] = lines[number - 1].replace(b'"completed"', b'"compl\xe9ted"')
    event_file.write_bytes(b"\n".join(lines))
    with open_store(event_file.parent / "runs.db") as store:
        with pytest.raises(StoreError) as bad:
            import_events(event_file, store)
        offset = lines[number - 1].index(b"\xe9")
        assert str(bad.value).startswith(f"{event_file}:{number}: not a spkemb event record (not UTF-8 text "
                                         f"(byte 0xe9 at offset {offset}))"), bad.value
        (run,) = store.runs()
        assert run["status"] == "running"  # what came before the line is imported


@pytest.mark.parametrize("how, named", [
    (_set("status", "completed"), "status of a new run must be one of running, indexing, not 'completed'"),
    (_set("tags", ["bad tag!"]), "tag 'bad tag!' is not one word"),
    (_set("run_group", "two words"), "group 'two words' is not one word"),
    # imported as /etc: the TUI's actions on the run would then read and write there
    (_set("out_dir", "../../../etc"), "out_dir '../../../etc' is not an absolute path without `..`"),
    (_set("exp_dir", "/data/exp/../../etc"), "exp_dir '/data/exp/../../etc' is not an absolute path"),
    (_set("log_path", "/etc/shadow"), "log_path '/etc/shadow' is outside the run's folder")])
def test_a_new_runs_status_and_labels_are_checked_line_by_line(event_file: Path, how, named) -> None:
    """The writer refused them after the line checks: a message without FILE:LINE."""
    number = _damage(event_file, "create_run", how)
    with open_store(event_file.parent / "runs.db") as store:
        with pytest.raises(StoreError) as bad:
            import_events(event_file, store)
        assert str(bad.value).startswith(f"{event_file}:{number}: ") and named in str(bad.value)
        assert store.runs() == []


def _apply_events(path: Path, files: list, result: ValidationResult | None = None) -> None:
    """An apply run's event file with one diarization check (and a validate run's validation)."""
    with EventWriter(path) as writer:
        run_id = writer.create_run(kind="apply", exp_dir=path.parent, out_dir=path.parent, protocol="P",
                                   subset="test", config=None, command=["apply"], device="cpu")
        writer.add_diarization(run_id, out_dir=path.parent, epoch=1, protocol="P", subset="test", collar=0.0,
                               skip_overlap=False, num_speakers="oracle", threshold=0.5, tuned_on=None,
                               linkage="average", frame_rule="centre", der=0.1, missed=1.0, false_alarm=0.0,
                               confusion=0.0, total=10.0, files=files)
        if result is not None:
            writer.add_validation(run_id, result)


def test_a_diarizations_files_are_checked_and_a_line_the_writer_refuses_is_named(tmp_path: Path) -> None:
    """`files: [{"der": 1}]` was a KeyError's traceback; a line the writer refused rolled back the whole
    file with a message naming no line."""
    events = tmp_path / "events.jsonl"
    _apply_events(events, [{"der": 1}])
    with open_store(tmp_path / "runs.db") as store:
        with pytest.raises(StoreError, match=rf"^{events}:2: .*files\[0\]: missing argument 'uri'"):
            import_events(events, store)
    events.unlink()
    row = {"uri": "a", "der": 0.1, "missed": 1.0, "false_alarm": 0.0, "confusion": 0.0, "total": 10.0}
    _apply_events(events, [row], ValidationResult(epoch=None, checkpoint_name="avg-top2", eer=0.1))  # no epoch
    done = run_in_process("import", str(events), "--db", str(tmp_path / "cli.db"))
    assert done.returncode == 2 and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert f"{events}:3: add_validation cannot be recorded (the validation of avg-top2 names no epoch" \
        in done.stderr and "nothing of it is imported" in done.stderr
    with open_store(tmp_path / "cli.db", readonly=True) as store:
        assert store.runs() == []


def test_a_resumed_writer_cuts_the_line_a_killed_one_tore(event_file: Path) -> None:
    """A resumed run's records were glued to the torn line: `not JSON`, and no import ever after."""
    whole = event_file.read_bytes()
    with open(event_file, "ab") as f:
        f.write(b'{"v": 1, "run": "abc", "seq": 3, "t": 17')
    with EventWriter(event_file) as writer:
        writer.set_status(writer.create_run(kind="validate", exp_dir=event_file.parent, out_dir=event_file.parent,
                                            protocol="P", subset="dev", config=None, command=["validate"],
                                            device="cpu"), "completed")
    assert event_file.read_bytes().startswith(whole + b'{"v": 1, "run": "')
    with open_store(event_file.parent / "runs.db") as store:
        assert import_events(event_file, store)["runs"] == 2
    # a whole record that lost only its newline (a file saved by an editor) is kept, and ended
    kept = event_file.read_bytes().rstrip(b"\n")
    event_file.write_bytes(kept)
    with EventWriter(event_file) as writer:
        writer.create_run(kind="validate", exp_dir=event_file.parent, out_dir=event_file.parent, protocol="P",
                          subset="test", config=None, command=["validate"], device="cpu")
    assert event_file.read_bytes().startswith(kept + b"\n")

def test_a_bad_origin_cannot_name_columns(event_file: Path) -> None:
    number = _damage(event_file, "create_run", lambda r: r["args"]["_origin"].__setitem__(
        "status) VALUES (1); DROP TABLE runs; --", 1))
    with open_store(event_file.parent / "runs.db") as store:
        with pytest.raises(StoreError, match=f"^{event_file}:{number}: .*unknown argument 'status"):
            import_events(event_file, store)
        assert store.runs() == []


def test_import_command_exits_2_with_one_line(event_file: Path) -> None:
    number = _damage(event_file, "add_epoch", _set("seconds", "2.0"))
    db = event_file.parent / "local.db"
    done = run_in_process("import", str(event_file), "--db", str(db))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith(f"spkemb-engine import: error: {event_file}:{number}: ")
    assert "seconds must be a number" in done.stderr
    with open_store(db, readonly=True) as store:
        assert len(store.runs()) == 1


def test_missing_or_outside_checkpoints_become_no_rows(event_file: Path, tmp_path: Path) -> None:
    trn_dir = event_file.parent
    (trn_dir / "weights/0002.pt").unlink()  # recorded, then lost
    outside = tmp_path / "elsewhere.pt"
    outside.write_bytes(b"not this run's")
    lines = event_file.read_text().splitlines()
    uid = json.loads(lines[0])["run"]
    with EventWriter(event_file) as writer:  # the same run goes on in the same file
        writer._uids[1], writer._seq[uid] = uid, len(lines)
        writer.add_checkpoint(1, Checkpoint(epoch=3, step=39, path=outside, partial=False))
        writer.add_checkpoint(1, Checkpoint(epoch=4, step=49, path=trn_dir / "weights/../../../../elsewhere.pt",
                              partial=False))
    numbers = [i for i, line in enumerate(event_file.read_text().splitlines(), 1)
               if json.loads(line)["op"] == "add_checkpoint"]
    db = tmp_path / "local.db"
    done = run_in_process("import", str(event_file), "--db", str(db))
    assert done.returncode == 0, done.stderr
    warnings = done.stderr.strip().splitlines()
    assert [w.split(": ")[1] for w in warnings] == [f"{event_file}:{n}" for n in numbers[1:]]
    assert "does not exist" in warnings[0] and "outside" in warnings[1] and "outside" in warnings[2]
    with open_store(db, readonly=True) as store:
        (run,) = store.runs()
        assert [c["epoch"] for c in store.checkpoints(run["id"])] == [1]
        assert run["status"] == "completed" and len(store.steps(run["id"])) == 20
    again = run_in_process("import", str(event_file), "--db", str(db))
    assert again.returncode == 0 and again.stderr == "" and "0 new records" in again.stdout


def test_a_copied_line_is_named_and_not_replayed_twice(event_file: Path) -> None:
    lines = event_file.read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if json.loads(line)["op"] == "add_epoch")
    event_file.write_text("\n".join([*lines, lines[number - 1]]) + "\n")  # a line spliced in twice
    with open_store(event_file.parent / "runs.db") as store:
        with pytest.raises(StoreError, match=f"^{event_file}:{len(lines) + 1}: seq {number} of run .* is also "
                                             f"on line {number}; the file is damaged"):
            import_events(event_file, store)
        assert store.runs() == []  # refused before anything was written


@pytest.mark.parametrize("ending", [b"\n", b""], ids=["ended", "torn"])
def test_a_line_too_long_is_named_without_being_read_whole(event_file: Path, ending: bytes) -> None:
    from engine.store.importing import MAX_LINE_BYTES

    lines = event_file.read_bytes().splitlines(keepends=True)
    # a line of one more byte than any record may hold, after the first two: what came before is kept
    event_file.write_bytes(b"".join(lines[:2]) + b"[" * (MAX_LINE_BYTES + 1) + ending + b"".join(lines[2:]))
    with open_store(event_file.parent / "runs.db") as store:
        with pytest.raises(StoreError) as bad:
            import_events(event_file, store)
        assert str(bad.value).startswith(f"{event_file}:3: not a spkemb event record (a line longer than 64 MiB)")
        (run,) = store.runs()
        assert run["status"] == "running"


def test_a_pipe_or_a_device_is_no_event_file(tmp_path: Path) -> None:
    """A pipe named events.jsonl would block the import until a writer came, a device never end."""
    import os

    folder = tmp_path / "exp/train/P.train"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "events.jsonl")
    os.symlink("/dev/zero", tmp_path / "zero.jsonl")
    db = tmp_path / "local.db"
    for given in (folder / "events.jsonl", tmp_path / "exp", tmp_path / "zero.jsonl"):
        done = run_in_process("import", str(given), "--db", str(db))
        assert done.returncode == 2, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith("spkemb-engine import: error: ") and "is not a regular file" in line, line


def test_a_full_database_during_an_import_is_said_as_such(tmp_path: Path) -> None:
    """The disk filling up (SQLite's page limit, here) was "the file is damaged" naming a line, or a raw
    `cannot rollback - no transaction is active`."""
    from engine.records import EpochSummary

    events = tmp_path / "trn" / "events.jsonl"
    with EventWriter(events) as writer:
        run_id = writer.create_run(kind="train", exp_dir=tmp_path, out_dir=tmp_path / "trn", protocol="P",
                                   subset="train", config={"x": "y" * 100}, command=["train"], device="cpu")
        for epoch in range(1, 3000):
            writer.add_epoch(run_id, EpochSummary(epoch=epoch, loss=1.0, lr=0.01, chunks_per_s=1.0, seconds=1.0))
    with open_store(tmp_path / "runs.db") as store:
        pages = store.db.conn.execute("PRAGMA page_count").fetchone()[0]
        store.db.conn.execute(f"PRAGMA max_page_count = {pages + 2}")
        with pytest.raises(StoreError) as full:
            import_events(events, store)
        assert "no space left on its device" in str(full.value) and "damaged" not in str(full.value)
        assert store.runs() == []
