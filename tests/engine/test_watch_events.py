"""What validate sees of a training run recorded in TRN_DIR/events.jsonl only (a network filesystem).

A real event file written by the engine's EventWriter, beside real weight files, read by the
watcher with no database: the records say which checkpoints are committed and when training ended.
"""

from __future__ import annotations

from pathlib import Path

from engine.layout import TrainingDir
from engine.records import Checkpoint
from engine.store import EventWriter
from engine.validation.watch import CheckpointWatcher


def weights(trn: TrainingDir, name: int | str) -> Path:
    path = trn.checkpoint(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"weights")
    return path


def start_run(writer: EventWriter, out_dir: Path) -> int:
    return writer.create_run(kind="train", exp_dir=out_dir.parent, out_dir=out_dir, protocol="P", subset="train",
                             config={}, command=["train"], device="cpu", target_epoch=3)


def test_the_records_say_which_checkpoints_are_committed_and_when_training_ended(tmp_path: Path) -> None:
    trn = TrainingDir(tmp_path / "exp" / "train" / "P.train")
    watcher = CheckpointWatcher(trn)
    with EventWriter(trn.events) as writer:
        other = start_run(writer, tmp_path / "elsewhere")  # another run's records in the same file
        writer.add_checkpoint(other, Checkpoint(epoch=9, step=90, path=str(weights(trn, 9)), partial=False))
        run = start_run(writer, trn.root)
        writer.add_checkpoint(run, Checkpoint(epoch=1, step=10, path=str(weights(trn, 1)), partial=False))
        # a file of a later epoch on disk, not recorded yet: not committed
        weights(trn, 2)
        snapshot = watcher.poll()
        assert snapshot.source == "events" and not snapshot.ended
        assert snapshot.checkpoints == {1: trn.checkpoint(1)}

        writer.add_checkpoint(run, Checkpoint(epoch=2, step=15, path=str(trn.checkpoint(2)), partial=True))
        averaged = weights(trn, "avg-top5")
        writer.add_checkpoint(run, Checkpoint(epoch=1, step=10, path=str(averaged), partial=False, name="avg-top5",
                                              averaged=[1]))
        snapshot = watcher.poll()
        assert snapshot.checkpoints == {1: trn.checkpoint(1)}  # neither a mid-epoch file nor averaged weights
        assert snapshot.named == {"avg-top5": averaged}

        writer.add_checkpoint(run, Checkpoint(epoch=2, step=20, path=str(trn.checkpoint(2)), partial=False))
        writer.set_status(run, "completed")
    snapshot = watcher.poll()
    assert snapshot.ended and snapshot.checkpoints == {1: trn.checkpoint(1), 2: trn.checkpoint(2)}


def test_an_event_file_without_this_runs_records_falls_back_to_settled_files(tmp_path: Path) -> None:
    trn = TrainingDir(tmp_path / "P.train")
    with EventWriter(trn.events) as writer:
        start_run(writer, tmp_path / "elsewhere")
    weights(trn, 1)
    snapshot = CheckpointWatcher(trn).poll()
    assert snapshot.source == "files" and snapshot.ended
    assert snapshot.checkpoints == {} and snapshot.pending  # just written: not settled yet
