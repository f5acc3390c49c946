"""Event files (databases on network filesystems): write, import, import again."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from engine.errors import StoreError
from engine.records import AsNormFigures, Checkpoint, EpochSummary, Extraction, ValidationResult, as_args
from engine.store import EventWriter, Store, import_events, open_store, open_writer
from tests import children
from tests.engine.engine_runner import run_in_process


def write_training(writer, trn_dir: Path, epochs: range) -> int:
    run_id = writer.create_run(kind="train", exp_dir=trn_dir.parent, out_dir=trn_dir, protocol="P",
                               subset="train", config={"task": {"s": 30}}, command=["train"],
                               device="cpu", target_epoch=4, name="nfs")
    for epoch in epochs:
        writer.add_steps(run_id, [{"step": epoch * 10 + i, "epoch": epoch, "loss": 1.0 / (i + 1)}
                                  for i in range(10)])
        writer.heartbeat(run_id, epoch=epoch, step=epoch * 10 + 9)
        writer.add_epoch(run_id, EpochSummary(epoch=epoch, loss=0.3, lr=0.01, chunks_per_s=50.0, seconds=2.0))
        weights = trn_dir / f"weights/{epoch:04d}.pt"  # on disk before its record, as train does
        weights.parent.mkdir(parents=True, exist_ok=True)
        weights.write_bytes(b"weights of epoch %d" % epoch)
        writer.add_checkpoint(run_id, Checkpoint(epoch=epoch, step=epoch * 10 + 9, path=weights, partial=False))
    writer.add_problem(run_id, path="/data/x.wav", problem="empty", fatal=False)
    return run_id


def test_event_file_round_trip_is_idempotent(tmp_path: Path) -> None:
    trn_dir = tmp_path / "exp/train/P.train"
    events = trn_dir / "events.jsonl"
    with EventWriter(events) as writer:
        local_id = write_training(writer, trn_dir, range(1, 3))
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert lines[0]["op"] == "create_run" and [r["seq"] for r in lines] == list(range(1, len(lines) + 1))

    with open_store(tmp_path / "runs.db") as store:
        assert import_events(events, store) == {"records": len(lines), "runs": 1}
        (run,) = store.runs()
        assert run["name"] == "nfs" and run["config"] == {"task": {"s": 30}}
        assert run["out_dir"] == str(trn_dir) and run["started_at"] == lines[0]["t"]
        assert len(store.steps(run["id"])) == 20
        assert [c["path"] for c in store.checkpoints(run["id"])] == [
            str(trn_dir / "weights/0001.pt"), str(trn_dir / "weights/0002.pt")]
        assert [e["epoch"] for e in store.epochs(run["id"])] == [1, 2]
        assert run["step"] == 29 and run["status"] == "running"

        assert import_events(events, store) == {"records": 0, "runs": 0}
        assert len(store.steps(run["id"])) == 20 and len(store.runs()) == 1

        # the run goes on in the same file: only the new lines come in
        with EventWriter(events) as writer:
            writer._uids[local_id] = lines[0]["run"]
            writer._seq[lines[0]["run"]] = len(lines)
            writer.add_steps(local_id, [{"step": 30, "epoch": 3, "loss": 0.1}])
            writer.set_status(local_id, "completed")
        assert import_events(events, store) == {"records": 2, "runs": 1}
        assert len(store.steps(run["id"])) == 21
        assert store.run(run["id"])["status"] == "completed"
        assert import_events(events, store)["records"] == 0


def test_two_runs_in_one_file_and_a_torn_last_line(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    with EventWriter(events) as writer:
        first = write_training(writer, tmp_path, range(1, 2))
        writer.set_status(first, "stopped", reason="SIGTERM")
    with EventWriter(events) as writer:  # a resumed run appends to the same file
        write_training(writer, tmp_path, range(2, 3))
    with events.open("a") as f:
        f.write('{"v": 1, "run": "half-writ')  # the writer was killed mid-line
    with open_store(tmp_path / "runs.db") as store:
        assert import_events(events, store)["runs"] == 2
        runs = store.runs()
        assert [r["status"] for r in runs] == ["running", "stopped"]
        assert [len(store.steps(r["id"])) for r in runs] == [10, 10]


def test_damaged_event_file_names_the_line(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    with EventWriter(events) as writer:
        write_training(writer, tmp_path, range(1, 2))
    with events.open("a") as f:
        f.write("garbage\n")
    n = len(events.read_text().splitlines())
    with open_store(tmp_path / "runs.db") as store:
        with pytest.raises(StoreError, match=f"{events}:{n}: not a spkemb event record"):
            import_events(events, store)
        (run,) = store.runs()  # the lines before the damaged one are in
        assert len(store.steps(run["id"])) == 10

def test_open_writer_chooses_the_writer(tmp_path: Path) -> None:
    events = tmp_path / "trn/events.jsonl"
    rec = open_writer(tmp_path / "runs.db", events_path=events)
    assert isinstance(rec, Store)
    rec.close()
    rec = open_writer(tmp_path / "runs.db", events_path=events, events=True)
    assert isinstance(rec, EventWriter)
    run_id = rec.create_run(kind="apply", exp_dir=None, out_dir=tmp_path, protocol="P", subset="test",
                            config=None, command=["apply"], device="cpu")
    rec.set_status(run_id, "failed", reason="no audio")
    rec.close()
    assert [json.loads(line)["op"] for line in events.read_text().splitlines()] == ["create_run", "set_status"]
    with pytest.raises(StoreError, match="not created by this event writer"):
        EventWriter(events).heartbeat(7)


def test_import_command(tmp_path: Path) -> None:
    trn_dir = tmp_path / "exp/train/P.train"
    with EventWriter(trn_dir / "events.jsonl") as writer:
        write_training(writer, trn_dir, range(1, 2))
    db = tmp_path / "local/runs.db"
    cmd = [sys.executable, "-m", "engine", "import", str(tmp_path / "exp"), "--db", str(db)]
    first = children.run(cmd, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "new records, 1 run updated" in first.stdout
    again = run_in_process(*cmd[3:])
    assert again.returncode == 0 and "0 new records, 0 runs updated" in again.stdout
    with open_store(db) as store:
        assert len(store.runs()) == 1
    missing = run_in_process("import", str(tmp_path / "nope"), "--db", str(db))
    assert missing.returncode == 2 and "no such event file or folder" in missing.stderr


def test_typed_records_cross_an_event_file_unchanged(tmp_path: Path) -> None:
    """A validation with AS-norm figures and an extraction, written to an event file and imported,
    read back as the records that were written; a line in the earlier spelling of AS-norm (by
    database column) still imports."""
    val_dir = tmp_path / "val"
    result = ValidationResult(epoch=3, checkpoint_name="avg-top2", eer=0.2, eer_low=0.15, eer_high=0.25,
                              mindcf_01=0.5, mindcf_005=0.4, threshold=0.1, n_trials=40,
                              scores_path=str(val_dir / "scores/avg-top2.txt"),
                              asnorm=AsNormFigures(cohort_size=5, eer=0.1, eer_low=0.05, eer_high=0.15,
                                                   mindcf_01=0.3, mindcf_005=0.2, threshold=0.4))
    extraction = Extraction(epoch=3, checkpoint_name="avg-top2", protocol="P", subset="test",
                            out_dir=str(val_dir / "apply/avg-top2"), mode="exact", step=0.1, duration=2.0,
                            files=2, audio_seconds=60.0, wall_seconds=3.0)
    events = val_dir / "events.jsonl"
    with EventWriter(events) as writer:
        run_id = writer.create_run(kind="validate", exp_dir=tmp_path, out_dir=val_dir, protocol="P",
                                   subset="test", config=None, command=["validate"], device="cpu")
        writer.add_validation(run_id, result, train_run_id=None)
        writer.add_extraction(run_id, extraction)
    old = json.loads(events.read_text().splitlines()[1])
    old["args"]["asnorm"] = {"cohort_size": 5, "eer_asnorm": 0.1, "mindcf_01_asnorm": 0.3}
    old["args"]["epoch"], old["args"]["checkpoint_name"], old["seq"] = 4, None, 4
    with events.open("a") as f:
        f.write(json.dumps(old) + "\n")

    with open_store(tmp_path / "runs.db") as store:
        assert import_events(events, store) == {"records": 4, "runs": 1}
        (run,) = store.runs()
        named, upgraded = sorted(store.validation_results(run["id"]), key=lambda r: r.epoch or 0)
        assert named == result
        assert upgraded.asnorm == AsNormFigures(cohort_size=5, eer=0.1, mindcf_01=0.3)
        (row,) = store.extractions(run["id"])
        assert {k: row[k] for k in as_args(extraction)} == as_args(extraction)


def test_a_record_with_a_wrong_nested_field_is_refused_by_line(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    with EventWriter(events) as writer:
        run_id = writer.create_run(kind="validate", exp_dir=tmp_path, out_dir=tmp_path, protocol="P",
                                   subset="test", config=None, command=["validate"], device="cpu")
        writer.add_validation(run_id, ValidationResult(epoch=1, eer=0.2,
                                                       asnorm=AsNormFigures(cohort_size=3, eer=0.1)))
    lines = events.read_text().splitlines()
    bad = json.loads(lines[1])
    bad["args"]["asnorm"]["eer"] = "low"
    events.write_text(lines[0] + "\n" + json.dumps(bad) + "\n")
    with open_store(tmp_path / "runs.db") as store:
        with pytest.raises(StoreError, match=r"events.jsonl:2: .*asnorm: eer must be a number"):
            import_events(events, store)
