"""One run lifecycle: ``open_run`` records every kind of run, in the database or an event file, and
``Recorder.ended`` records how it ended."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.layout import ExperimentDir, TrainingDir
from engine.process.lifecycle import find_parent, open_run
from engine.process.stopping import Interrupted, StopRequest
from engine.records import Checkpoint, ValidationResult
from engine.requests import ApplyRequest, TrainRequest, ValidateRequest
from engine.store import EventWriter, Store, import_events, open_store
from engine.store.importing import read_events

PROTOCOL = "Debug.SpeakerVerification.Debug"


def _trn(tmp_path: Path) -> TrainingDir:
    trn = ExperimentDir(tmp_path / "exp").training(PROTOCOL, "train")
    trn.root.mkdir(parents=True)
    return trn


def _train(tmp_path: Path, **options: object) -> TrainRequest:
    return TrainRequest(exp_dir=str(tmp_path / "exp"), protocol=PROTOCOL, db=str(tmp_path / "runs.db"), **options)


def test_every_kind_of_run_is_opened_from_its_folder(tmp_path: Path) -> None:
    trn = _trn(tmp_path)
    train = open_run("train", trn, _train(tmp_path, seed=3, group="g", tag=("a",)), device="cpu", target_epoch=4,
                     config={"task": {"name": "AAM"}}, status="indexing")
    val = trn.validation(PROTOCOL, "development")
    validate = open_run("validate", val, ValidateRequest(trn_dir=str(trn.root), protocol=PROTOCOL,
                                                         subset="development", db=str(tmp_path / "runs.db")),
                        device="cpu", target_epoch=None)
    apply_request = ApplyRequest(val_dir=str(val.root), protocol=PROTOCOL, db=str(tmp_path / "runs.db"))
    extraction = val.extraction(2)
    apply = open_run("apply", extraction, apply_request, device="cpu", target_epoch=2)
    for recorder in (train, validate, apply):
        assert isinstance(recorder.writer, Store) and recorder.store is recorder.writer
        with recorder.ended(StopRequest()):
            pass
    with open_store(tmp_path / "runs.db") as store:
        t, v, a = (store.run_record(r.run_id) for r in (train, validate, apply))
        assert t is not None and v is not None and a is not None
        assert (t.kind, t.status, t.name, t.out_dir, t.target_epoch) == ("train", "completed", "exp",
                                                                         str(trn.root.resolve()), 4)
        assert (t.seed, t.run_group, t.tags, t.parent_id) == (3, "g", ("a",), None)
        assert (v.kind, v.parent_id, v.config, v.name, v.out_dir) == ("validate", t.id, {"task": {"name": "AAM"}},
                                                                      "exp validate", str(val.root))
        assert (v.run_group, v.exp_dir) == ("g", str((tmp_path / "exp").resolve()))
        assert (a.kind, a.parent_id, a.config, a.name, a.target_epoch) == ("apply", v.id, None,
                                                                           f"apply {PROTOCOL}.test", 2)
        # what a validate run hangs off, read before it is recorded (the AS-norm cohort needs it)
        assert find_parent("validate", val, apply_request.db) == t
        assert validate.parent is not None and validate.parent.id == t.id
        assert find_parent("apply", extraction, apply_request.db) == v
        assert find_parent("train", trn, apply_request.db) is None


def test_a_resumed_run_is_reopened_once_from_its_step(tmp_path: Path) -> None:
    trn = _trn(tmp_path)
    first = open_run("train", trn, _train(tmp_path), device="cpu", target_epoch=3, status="indexing")
    first.started(epoch=0, step=0, batches=4, chunks=8)
    first.steps([{"step": s, "epoch": 1 + (s - 1) // 4, "loss": 1.0, "chunks_per_s": 1.0} for s in range(1, 8)])
    first.checkpoint(Checkpoint(epoch=1, step=4, path=trn.checkpoint(1), partial=False))
    first.finish("stopped", "stopped by SIGTERM")

    again = open_run("train", trn, _train(tmp_path, resume=True, to=6, note="more"), device="cuda:0 x2",
                     target_epoch=6, status="indexing", resume_from=4)
    assert again.run_id == first.run_id and again.recorded_epochs() == {1}
    with open_store(tmp_path / "runs.db") as store:
        run = store.run_record(again.run_id)
        assert run is not None
        # the steps recorded after the checkpoint by the stopped process are about to be trained again
        assert [s["step"] for s in store.steps(run.id)] == [1, 2, 3, 4]
        assert (run.status, run.reason, run.step, run.target_epoch, run.device, run.note) == (
            "indexing", None, 4, 6, "cuda:0 x2", "more")
    again.started(epoch=1, step=4, batches=4, chunks=8)
    with open_store(tmp_path / "runs.db") as store:
        assert store.run(again.run_id)["status"] == "running"
        assert len(store.runs()) == 1


def test_an_event_file_records_a_run_and_a_resume_as_a_new_one(tmp_path: Path) -> None:
    trn = _trn(tmp_path)
    for resume_from in (None, 4):
        recorder = open_run("train", trn, _train(tmp_path, events=True), device="cpu", target_epoch=5,
                            status="indexing", resume_from=resume_from)
        assert isinstance(recorder.writer, EventWriter) and recorder.store is None
        assert recorder.recorded_epochs() is None
        with recorder.ended(StopRequest()):
            recorder.started(epoch=0, step=0, batches=1, chunks=1)
    records = read_events(trn.events)
    assert [r["op"] for r in records] == ["create_run", "set_status", "heartbeat", "set_status"] * 2
    assert len({r["run"] for r in records}) == 2
    assert records[0]["args"]["target_epoch"] == 5 and records[-1]["args"]["status"] == "completed"
    assert not (tmp_path / "runs.db").exists()


def test_ended_says_how_the_run_ended(tmp_path: Path) -> None:
    trn = _trn(tmp_path)
    indexing = open_run("train", trn, _train(tmp_path), device="cpu", target_epoch=5, status="indexing")
    with indexing.ended(StopRequest()):
        raise Interrupted("SIGTERM")
    stopped = open_run("train", trn, _train(tmp_path), device="cpu", target_epoch=5)
    with stopped.ended(StopRequest()) as ending:
        ending.stopped("stopped by SIGTERM at epoch 1 step 3")
    failed = open_run("train", trn, _train(tmp_path), device="cpu", target_epoch=5)
    with pytest.raises(ZeroDivisionError), failed.ended(StopRequest()):
        _ = 1 / 0
    with open_store(tmp_path / "runs.db") as store:
        ends = [(r["status"], r["reason"]) for r in (store.run(x.run_id) for x in (indexing, stopped, failed))]
    assert ends == [("stopped", "stopped by SIGTERM before the first step"),
                    ("stopped", "stopped by SIGTERM at epoch 1 step 3"),
                    ("failed", "ZeroDivisionError: division by zero")]


def test_averaged_weights_picked_without_an_epoch_are_recorded_and_imported(tmp_path: Path) -> None:
    """set_best's epoch may be None (averaged weights read from scores alone): in the database and
    through an event file alike."""
    result = ValidationResult(epoch=None, checkpoint_name="avg-top2", eer=0.1)
    with open_store(tmp_path / "runs.db") as store:
        run = store.create_run(kind="validate", exp_dir=None, out_dir=tmp_path / "v", protocol="P", subset="test",
                               config=None, command=["validate"], device="cpu")
        store.set_best(run, epoch=result.epoch, eer=result.eer, how="manual", checkpoint=result.checkpoint_name)
        assert store.run_record(run).best_epoch is None  # type: ignore[union-attr]
    with EventWriter(tmp_path / "events.jsonl") as events:
        run = events.create_run(kind="validate", exp_dir=None, out_dir=tmp_path / "w", protocol="P",
                                subset="test", config=None, command=["validate"], device="cpu")
        events.set_best(run, epoch=None, eer=0.1, how="manual", checkpoint="avg-top2")
    with open_store(tmp_path / "runs.db") as store:
        assert import_events(tmp_path / "events.jsonl", store) == {"records": 2, "runs": 1}
        imported = store.newest_run(out_dir=tmp_path / "w", kind="validate")
        assert imported is not None
        assert (imported.best_epoch, imported.best_checkpoint, imported.best_eer) == (None, "avg-top2", 0.1)
