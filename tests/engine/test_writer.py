"""One writer protocol: the database, the event file and a silent rank take the same records."""

import inspect

from engine.store import open_store
from engine.store.events import EventWriter
from engine.store.importing import read_events
from engine.store.writer import NullWriter, RunWriter

WRITER_METHODS = [name for name, _ in inspect.getmembers(RunWriter, inspect.isfunction) if not name.startswith("_")]


def test_every_writer_is_a_run_writer(tmp_path):
    with open_store(tmp_path / "runs.db") as store, EventWriter(tmp_path / "events.jsonl") as events:
        for writer in (store, events, NullWriter()):
            assert isinstance(writer, RunWriter)
            missing = [m for m in WRITER_METHODS if not callable(getattr(type(writer), m, None))]
            assert not missing, f"{type(writer).__name__} lacks {missing}"
        assert store.reads_back and not events.reads_back and not NullWriter.reads_back


def test_only_the_database_reads_back(tmp_path):
    with open_store(tmp_path / "runs.db") as store, EventWriter(tmp_path / "events.jsonl") as events:
        for writer in (store, events):
            run = writer.create_run(kind="train", exp_dir=tmp_path, out_dir=tmp_path / "trn", protocol="P",
                                    subset="train", config=None, command=["x"], device="cpu")
            writer.set_status(run, "completed")
        assert [r["kind"] for r in store.find_runs(out_dir=tmp_path / "trn")] == ["train"]
        assert events.find_runs(out_dir=tmp_path / "trn") == []
    assert [r["op"] for r in read_events(tmp_path / "events.jsonl")] == ["create_run", "set_status"]
