"""The recorder every command reports through, in-process on a real runs database and a real event file:
how a run's block ends (completed, stopped, failed), fatal input files, and what the user reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.data.audio_checks import Problem
from engine.errors import AudioError, TrainingError
from engine.process.recording import Recorder
from engine.process.stopping import Interrupted, StopRequest
from engine.records.runs import progress_text
from engine.store import EventWriter, open_store
from engine.store.runs import Store


def _recorder(store: Store, tmp_path: Path, kind: str = "validate", **kwargs) -> Recorder:
    run_id = store.create_run(kind=kind, exp_dir=tmp_path, out_dir=tmp_path / "out", protocol="P", subset="test",
                              config=None, command=[kind], device="cpu")
    return Recorder(store, run_id, kind=kind, store=store, **kwargs)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """The runs database the recorder writes to (and closes when the run ends)."""
    return open_store(tmp_path / "runs.db")


def _read(tmp_path: Path) -> Store:
    """The same file, opened again: what the TUI and ``runs`` read back."""
    return open_store(tmp_path / "runs.db", readonly=True)


def test_a_block_that_ends_is_completed_and_says_where_it_is_recorded(store: Store, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    recorder = _recorder(store, tmp_path)
    with recorder.ended(StopRequest()) as ending:
        assert ending.status == "completed"
    assert _read(tmp_path).run(recorder.run_id)["status"] == "completed"
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        f"validate: run #{recorder.run_id} completed, recorded in {tmp_path / 'runs.db'}"


def test_a_requested_stop_ends_the_block_quietly_as_stopped(store: Store, tmp_path: Path) -> None:
    recorder = _recorder(store, tmp_path)
    with recorder.ended(StopRequest()):
        raise Interrupted("SIGTERM")
    run = _read(tmp_path).run(recorder.run_id)
    assert (run["status"], run["reason"]) == ("stopped", "stopped by SIGTERM")


def test_a_stop_while_indexing_says_there_is_nothing_to_resume(store: Store, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    recorder = _recorder(store, tmp_path, kind="train", indexing=True)
    with recorder.ended(StopRequest()):
        raise Interrupted("SIGINT")
    assert _read(tmp_path).run(recorder.run_id)["reason"].startswith("stopped by SIGINT before the first step")
    assert "nothing to resume from yet" in capsys.readouterr().err


def test_a_block_stopped_early_keeps_its_own_reason(store: Store, tmp_path: Path) -> None:
    recorder = _recorder(store, tmp_path, kind="train")
    with recorder.ended(StopRequest()) as ending:
        ending.stopped("stopped by SIGUSR1 at epoch 3 step 40")
    run = _read(tmp_path).run(recorder.run_id)
    assert (run["status"], run["reason"]) == ("stopped", "stopped by SIGUSR1 at epoch 3 step 40")


def test_an_error_is_recorded_as_the_failure_and_raised(store: Store, tmp_path: Path) -> None:
    recorder = _recorder(store, tmp_path, kind="train")
    with pytest.raises(TrainingError), recorder.ended(StopRequest()):
        raise TrainingError("the loss became nan at step 7 (epoch 1)")
    run = _read(tmp_path).run(recorder.run_id)
    assert (run["status"], run["reason"]) == ("failed", "the loss became nan at step 7 (epoch 1)")
    with pytest.raises(ZeroDivisionError), _recorder(open_store(tmp_path / "runs.db"), tmp_path).ended(StopRequest()):
        raise ZeroDivisionError("division by zero")  # a bug of ours: named with its type
    assert _read(tmp_path).runs(kind="validate")[0]["reason"] == "ZeroDivisionError: division by zero"


def test_unusable_files_are_recorded_fatal_and_the_first_is_named(store: Store, tmp_path: Path) -> None:
    recorder = _recorder(store, tmp_path, kind="apply")
    recorder.refuse([], "P test")  # nothing unusable: nothing recorded, nothing raised
    assert store.run(recorder.run_id)["status"] == "running"
    bad = [Problem("/a.wav", "/a.wav: not audio"), Problem("/b.wav", "/b.wav: empty")]
    with pytest.raises(AudioError) as refused:
        recorder.refuse(bad, "P test")
    assert str(refused.value) == "2 file(s) of P test cannot be used; first: /a.wav: not audio"
    assert refused.value.path == "/a.wav"
    read = _read(tmp_path)
    assert [(p["path"], bool(p["fatal"])) for p in read.problems(recorder.run_id)] == [("/a.wav", True),
                                                                                        ("/b.wav", True)]
    assert read.run(recorder.run_id)["status"] == "failed"


def test_a_run_of_an_event_file_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "events.jsonl"
    writer = EventWriter(events)
    run_id = writer.create_run(kind="train", exp_dir=str(tmp_path), out_dir=str(tmp_path), protocol="P",
                               subset="train", config=None, command=["train"], device="cpu")
    recorder = Recorder(writer, run_id, kind="train")
    with recorder.ended(StopRequest()):
        pass
    # no number: the event file's is its own, and `import` gives the run the next number of a database
    assert capsys.readouterr().err.strip().endswith(f"train: run completed, recorded in {events}")
    assert '"status": "completed"' in events.read_text().splitlines()[-1]


def test_the_unusable_training_files_are_said_twenty_lines_at_most(store: Store, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """20,000 missing files (a conversion half done) were 20,000 warning lines in train.log."""
    from engine.process.recording import SAID_AT_MOST

    recorder = _recorder(store, tmp_path, kind="train")
    recorder.indexed([Problem(path=f"/d/{i}.wav", problem=f"audio file /d/{i}.wav does not exist")
                      for i in range(SAID_AT_MOST + 5)], "P train")
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("train: warning:")]
    assert len(warnings) == SAID_AT_MOST + 1 and "/d/19.wav" in warnings[-2]
    assert warnings[-1] == (f"train: warning: skipped {SAID_AT_MOST + 5} unusable file(s) and 0 speaker(s) while "
                            f"preparing P train (the first {SAID_AT_MOST} listed above, all in the run's data "
                            "problems); --strict stops at the first instead")


def test_a_training_stopped_mid_epoch_reads_the_epochs_it_trained_to_their_end(store: Store, tmp_path: Path) -> None:
    """Stopped at step 74 of 144, in epoch 2 of 2, `runs` read `stopped 2/2 74`: a run that looked done."""
    recorder = _recorder(store, tmp_path, kind="train", target=2, indexing=True)
    with recorder.ended(StopRequest()) as ending:
        recorder.started(epoch=1, step=72, batches=72, chunks=4)
        recorder.heartbeat(epoch=2, step=74)  # as the loop has it: the epoch being trained
        assert _read(tmp_path).run(recorder.run_id)["epoch"] == 2
        ending.stopped("stopped by SIGTERM at epoch 2 step 74")
    run = _read(tmp_path).run(recorder.run_id)
    assert (run["status"], run["epoch"], run["step"]) == ("stopped", 1, 74)
    assert progress_text(run["kind"], run["status"], run["epoch"], 2, None, None) == "1/2"  # `runs`' epoch column
