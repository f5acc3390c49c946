"""The runs database on real SQLite files: schema, writers, readers, example queries."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from engine.errors import StoreError
from engine.records import (
    AsNormFigures,
    Checkpoint,
    EpochSummary,
    Extraction,
    ValidationResult,
)
from engine.store import EXAMPLE_QUERIES, default_db_path, open_store
from engine.store.liveness import process_start_time
from engine.store.netfs import is_network_fs

EXPECTED_COLUMNS = {
    "runs": ["id", "name", "kind", "status", "exp_dir", "out_dir", "protocol", "subset", "config",
             "command", "parent_id", "host", "pid", "pid_start", "slurm_job_id", "device",
             "started_at", "ended_at", "heartbeat_at", "epoch", "target_epoch", "step", "progress",
             "progress_total", "best_epoch", "best_eer", "best_how", "reason", "log_path", "changed",
             "init_from", "init_epoch", "init_run_id", "best_checkpoint", "init_sha256", "seed", "run_group",
             "tags", "note", "software"],
    "train_steps": ["id", "run_id", "step", "epoch", "loss", "lr", "chunks_per_s", "time", "margin"],
    "train_epochs": ["id", "run_id", "epoch", "loss", "lr", "chunks_per_s", "seconds", "time"],
    "checkpoints": ["id", "run_id", "epoch", "step", "path", "partial", "time", "name", "averaged", "sha256"],
    "validations": ["id", "run_id", "train_run_id", "epoch", "eer", "eer_low", "eer_high",
                    "mindcf_01", "mindcf_005", "threshold", "n_trials", "scores_path", "time",
                    "checkpoint_name", "cohort_size", "eer_asnorm", "eer_asnorm_low", "eer_asnorm_high",
                    "mindcf_01_asnorm", "mindcf_005_asnorm", "threshold_asnorm",
                    "min_cllr", "cllr", "actual_dcf_01", "actual_dcf_005", "calibration_list"],
    "extractions": ["id", "run_id", "epoch", "protocol", "subset", "out_dir", "mode", "step",
                    "duration", "files", "audio_seconds", "wall_seconds", "time", "checkpoint_name",
                    "checkpoint", "checkpoint_sha256", "validate_run_id", "chosen_by"],
    "diarizations": ["id", "run_id", "extraction_id", "out_dir", "epoch", "protocol", "subset", "collar",
                     "skip_overlap", "num_speakers", "threshold", "tuned_on", "linkage", "frame_rule",
                     "files", "der", "missed", "false_alarm", "confusion", "total", "time"],
    "diarization_files": ["id", "diarization_id", "uri", "der", "missed", "false_alarm", "confusion",
                          "total", "speakers", "speakers_found", "rttm_path"],
    "data_problems": ["id", "run_id", "path", "problem", "fatal", "time"],
    "event_imports": ["uid", "run_id", "path", "seq", "imported_at"],
    "_sqlite_migrations": ["id", "migration_set", "name", "applied_at"],
    "sweeps": ["id", "name", "method", "base_config", "sweep_dir", "protocol", "subset", "space", "seeds", "epochs",
               "planned", "slots", "prune", "prune_after", "run_group", "command", "script", "slurm_job_id",
               "created_at"],
    "sweep_trials": ["id", "sweep_id", "number", "exp_dir", "out_dir", "params", "seed", "diff", "run_id",
                     "optuna_trial", "pruned_epoch", "prune_reason", "created_at"],
    "queue_entries": ["run_id", "validate", "slot", "claim", "queue_id", "child_pid", "child_start", "validate_pid",
                      "validate_start", "queued_at", "started_at", "ended_at"],
    "queues": ["id", "host", "pid", "pid_start", "slots", "started_at", "heartbeat_at", "ended_at", "reason"],
}


def new_run(store, kind: str = "train", out_dir: str = "exp/train/P.train", **extra) -> int:
    fields = dict(kind=kind, exp_dir="exp", out_dir=out_dir, protocol="Demo.SpeakerVerification.Voices",
                  subset="train", config={"task": {"margin": 0.2}}, command=["spkemb-engine", kind],
                  device="cpu")
    fields.update(extra)
    return store.create_run(**fields)


def test_blank_file_has_the_exact_schema(tmp_path: Path) -> None:
    with open_store(tmp_path / "runs.db") as store:
        _, tables = store.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        assert sorted(t for (t,) in tables) == sorted(EXPECTED_COLUMNS)
        for table, expected in EXPECTED_COLUMNS.items():
            _, info = store.query(f"PRAGMA table_info({table})")
            assert [row[1] for row in info] == expected, table
        assert store.query("PRAGMA journal_mode")[1] == [("wal",)]
        assert store.query("PRAGMA busy_timeout")[1][0][0] >= 30_000
        assert store.query("PRAGMA user_version")[1] == [(13,)]
        # a run's children are found by index (a sweep reads them for each validation of its trials)
        assert ("idx_runs_parent_id_kind",) in store.query("SELECT name FROM sqlite_master WHERE type = 'index'")[1]


def test_default_db_path_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SPKEMB_DB", raising=False)
    assert default_db_path() == Path("experiments/runs.db")
    monkeypatch.setenv("SPKEMB_DB", str(tmp_path / "env.db"))
    assert default_db_path() == tmp_path / "env.db"
    assert default_db_path(str(tmp_path / "flag.db")) == tmp_path / "flag.db"


def test_create_run_records_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.chdir(tmp_path)
    with open_store(tmp_path / "runs.db") as store:
        before = time.time()
        run_id = new_run(store, target_epoch=5, name="first", log_path="train.log")
        run = store.run(run_id)
    assert run["status"] == "running" and run["kind"] == "train" and run["name"] == "first"
    assert run["pid"] == os.getpid()
    assert run["pid_start"] == pytest.approx(process_start_time(os.getpid()), abs=2)
    assert run["slurm_job_id"] == "4242"
    assert run["config"] == {"task": {"margin": 0.2}}
    assert run["command"] == ["spkemb-engine", "train"]
    assert run["out_dir"] == str(tmp_path / "exp/train/P.train")
    assert run["log_path"] == str(tmp_path / "train.log")
    assert run["started_at"] >= before and run["heartbeat_at"] == run["started_at"]
    assert run["ended_at"] is None and run["target_epoch"] == 5


def test_training_records_round_trip(tmp_path: Path) -> None:
    with open_store(tmp_path / "runs.db") as store:
        run_id = new_run(store)
        store.add_steps(run_id, [{"step": s, "epoch": 0, "loss": 10.0 - s, "lr": 0.01, "margin": 0.1 * s,
                                  "chunks_per_s": 100.0, "time": 1000.0 + s} for s in range(10)])
        store.add_steps(run_id, [{"step": 10, "epoch": 1, "loss": 0.5}])
        assert [r["step"] for r in store.steps(run_id, since_step=7)] == [8, 9, 10]
        assert store.steps(run_id)[3] == {"step": 3, "epoch": 0, "loss": 7.0, "lr": 0.01,
                                          "margin": pytest.approx(0.3), "chunks_per_s": 100.0, "time": 1003.0}
        assert store.run(run_id)["step"] == 10 and store.run(run_id)["epoch"] == 1

        store.add_epoch(run_id, EpochSummary(epoch=1, loss=2.0, lr=0.01, chunks_per_s=90.0, seconds=30.0))
        store.add_epoch(run_id, EpochSummary(epoch=1, loss=1.5, lr=0.01, chunks_per_s=95.0, seconds=29.0))
        assert [(e["epoch"], e["loss"]) for e in store.epochs(run_id)] == [(1, 1.5)]

        store.add_checkpoint(run_id, Checkpoint(epoch=1, step=10, path=tmp_path / "weights/0001.pt", partial=False))
        store.add_checkpoint(run_id, Checkpoint(epoch=1, step=12, path=tmp_path / "weights/resume.pt", partial=True))
        assert [(c["path"], c["partial"]) for c in store.checkpoints(run_id)] == [
            (str(tmp_path / "weights/0001.pt"), False), (str(tmp_path / "weights/resume.pt"), True)]

        store.heartbeat(run_id, epoch=2, step=20, progress=3.0, progress_total=8.0)
        run = store.run(run_id)
        assert (run["epoch"], run["step"], run["progress"], run["progress_total"]) == (2, 20, 3.0, 8.0)
        store.heartbeat(run_id)
        assert store.run(run_id)["step"] == 20

        store.add_problem(run_id, path="/data/a.wav", problem="unreadable", fatal=False)
        assert store.problems(run_id)[0]["path"] == "/data/a.wav"

        store.set_status(run_id, "stopped", reason="SIGTERM")
        run = store.run(run_id)
        assert run["status"] == "stopped" and run["reason"] == "SIGTERM" and run["ended_at"] is not None
        with pytest.raises(StoreError, match="unknown run status 'done'"):
            store.set_status(run_id, "done")
        with pytest.raises(StoreError, match="no run 999"):
            store.set_status(999, "failed")


def test_validation_records_and_best(tmp_path: Path) -> None:
    with open_store(tmp_path / "runs.db") as store:
        train_id = new_run(store)
        val_id = new_run(store, kind="validate", out_dir="exp/train/P.train/validate", parent_id=train_id)
        for epoch, eer in [(1, 0.20), (2, 0.12), (3, 0.15)]:
            store.add_validation(val_id, ValidationResult(epoch=epoch, eer=eer, eer_low=eer - 0.01,
                                 eer_high=eer + 0.01, mindcf_01=0.5, mindcf_005=0.6, threshold=0.3,
                                 n_trials=40, scores_path=f"scores/{epoch:04d}.txt"), train_run_id=train_id)
        store.set_best(val_id, epoch=2, eer=0.12, how="lowest-eer")
        assert [v["epoch"] for v in store.validations(val_id)] == [1, 2, 3]
        assert [v["eer"] for v in store.validations(train_run_id=train_id)] == [0.20, 0.12, 0.15]
        assert (store.run(val_id)["best_epoch"], store.run(val_id)["best_how"]) == (2, "lowest-eer")
        assert [r["id"] for r in store.find_runs(out_dir="exp/train/P.train", kind="train")] == [train_id]
        assert [r["id"] for r in store.runs()] == [val_id, train_id]
        assert [r["id"] for r in store.runs(kind="validate")] == [val_id]
        store.add_extraction(val_id, Extraction(epoch=2, protocol="P", subset="test", out_dir="apply/2", mode="exact",
                             step=0.1, duration=2.0, files=3, audio_seconds=60.0, wall_seconds=4.0))
        assert store.extractions(val_id)[0]["files"] == 3


def test_named_checkpoints_and_asnorm_figures(tmp_path: Path) -> None:
    """An average (avg-top2) is recorded beside the epoch it ends on without replacing it."""
    with open_store(tmp_path / "runs.db") as store:
        train_id = new_run(store)
        val_id = new_run(store, kind="validate", out_dir="val", parent_id=train_id)
        store.add_checkpoint(train_id, Checkpoint(epoch=3, step=30, path="w/0003.pt", partial=False))
        store.add_checkpoint(train_id, Checkpoint(epoch=3, step=None, path="w/avg-top2.pt", partial=False,
                             name="avg-top2", averaged=[2, 3]))
        named = [c for c in store.checkpoints(train_id) if c["name"]]
        assert [(c["epoch"], c["name"], c["averaged"]) for c in named] == [(3, "avg-top2", "[2, 3]")]
        figures = dict(eer_low=None, eer_high=None, mindcf_01=0.5, mindcf_005=0.4, threshold=0.1,
                       n_trials=10, scores_path=None)
        store.add_validation(val_id, ValidationResult(epoch=3, eer=0.2, **figures), train_run_id=train_id)
        for eer in (0.3, 0.1):  # validated twice: the second replaces the first, not the epoch's row
            store.add_validation(val_id, ValidationResult(epoch=3, eer=eer, checkpoint_name="avg-top2",
                                 asnorm=AsNormFigures(cohort_size=5, eer=eer / 2, mindcf_01=0.3),
                                 **figures), train_run_id=train_id)
        rows = store.validations(val_id)
        assert [(r["checkpoint_name"], r["eer"]) for r in rows] == [(None, 0.2), ("avg-top2", 0.1)]
        assert (rows[1]["cohort_size"], rows[1]["eer_asnorm"], rows[1]["mindcf_01_asnorm"]) == (5, 0.05, 0.3)
        assert rows[0]["eer_asnorm"] is None
        columns, found = store.query(EXAMPLE_QUERIES["best EER per run"])
        assert [dict(zip(columns, r, strict=True))["best_eer"] for r in found] == [0.2]  # epochs only
        columns, found = store.query(EXAMPLE_QUERIES["averaged weights against the best epoch"])
        assert [(r[1], r[2], r[5], r[6]) for r in found] == [("avg-top2", 0.1, 3, 0.2)]
        store.set_best(val_id, epoch=3, eer=0.1, how="manual", checkpoint="avg-top2")
        assert store.run(val_id)["best_checkpoint"] == "avg-top2"


def test_example_queries_on_a_real_database(tmp_path: Path) -> None:
    with open_store(tmp_path / "runs.db") as store:
        train_id = new_run(store)
        val_id = new_run(store, kind="validate", out_dir="val", parent_id=train_id)
        other_val = new_run(store, kind="validate", out_dir="val2")
        for run, epochs in [(val_id, [(1, 0.3), (2, 0.1), (3, 0.2)]), (other_val, [(5, 0.25)])]:
            for epoch, eer in epochs:
                store.add_validation(run, ValidationResult(epoch=epoch, eer=eer, eer_low=None,
                                     eer_high=None, mindcf_01=None, mindcf_005=None, threshold=None,
                                     n_trials=10, scores_path=None), train_run_id=train_id)
        store.set_status(other_val, "completed")

        columns, rows = store.query(EXAMPLE_QUERIES["best EER per run"])
        best = [dict(zip(columns, row, strict=True)) for row in rows]
        assert [(b["validate_run"], b["best_epoch"], b["best_eer"]) for b in best] == [
            (val_id, 2, 0.1), (other_val, 5, 0.25)]

        columns, rows = store.query(EXAMPLE_QUERIES["runs still running"])
        running = [dict(zip(columns, row, strict=True)) for row in rows]
        assert [r["id"] for r in running] == [train_id, val_id]
        assert all(0 <= r["heartbeat_age_s"] < 60 for r in running)
        for sql in EXAMPLE_QUERIES.values():
            store.query(sql)


def test_query_refuses_writes_and_bad_sql(tmp_path: Path) -> None:
    with open_store(tmp_path / "runs.db") as store:
        run_id = new_run(store)
        with pytest.raises(StoreError, match="^read-only: DELETE is not allowed"):
            store.query("DELETE FROM runs")
        with pytest.raises(StoreError, match="syntax error"):
            store.query("SELEC 1")
        with pytest.raises(StoreError, match="^read-only: BEGIN is not allowed"):
            store.query("BEGIN")
        assert tuple(store.query("SELECT COUNT(*) FROM runs", limit=1)) == (["COUNT(*)"], [(1,)])
        assert store.run(run_id) is not None
        store.set_status(run_id, "completed")  # writes still work after a refused query
        assert store.run(run_id)["status"] == "completed"


def test_readonly_store(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with pytest.raises(StoreError, match="no runs database at"):
        open_store(path, readonly=True)
    assert not path.exists()
    with open_store(path) as writer:
        run_id = new_run(writer)
    with open_store(path, readonly=True) as reader:
        assert reader.run(run_id)["status"] == "running"
        with pytest.raises(StoreError, match="read-only"):
            reader.set_status(run_id, "failed")


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=f"{path}.*not a database"):
        open_store(path)


def test_network_filesystems_from_mounts_text(tmp_path: Path) -> None:
    mounts = ("/dev/sda1 / ext4 rw 0 0\n"
              "server:/export /mnt/shared nfs4 rw 0 0\n"
              "lnet@o2ib:/scratch /scratch lustre rw 0 0\n"
              "/dev/sdb1 /mnt/shared/local ext4 rw 0 0\n"
              "beegfs_nodev /beegfs beegfs rw 0 0\n")
    assert is_network_fs("/mnt/shared/exp/runs.db", mounts)
    assert is_network_fs("/scratch/u/runs.db", mounts)
    assert is_network_fs("/beegfs/x/runs.db", mounts)
    assert not is_network_fs("/mnt/shared/local/runs.db", mounts)
    assert not is_network_fs("/mnt/sharedX/runs.db", mounts)
    assert not is_network_fs(tmp_path / "runs.db", mounts)


def test_sqlite3_shell_compatible_wal_file(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with open_store(path) as store:
        run_id = new_run(store)
        store.add_steps(run_id, [{"step": 1, "loss": 1.0}])
        conn = sqlite3.connect(path)  # a plain reader, as sqlite3/datasette would be
        assert conn.execute("SELECT COUNT(*) FROM train_steps").fetchone() == (1,)
        conn.close()


def test_every_write_to_a_run_bumps_its_change_counter(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with open_store(path) as store:
        first, second = new_run(store), new_run(store)
        rows, newest, count = store.runs_changed_since(0)
        assert count == 2 and {r["id"] for r in rows} == {first, second}
        seen = newest
        assert store.runs_changed_since(seen) == ([], seen, 2)

        store.add_steps(first, [{"step": 0, "loss": 3.0}, {"step": 1, "loss": 2.5}])
        rows, newest, _ = store.runs_changed_since(seen)
        assert [(r["id"], r["last_loss"]) for r in rows] == [(first, 2.5)]
        assert newest > seen
        seen = newest
        store.set_status(second, "completed")
        rows, seen, _ = store.runs_changed_since(seen)
        assert [(r["id"], r["status"]) for r in rows] == [(second, "completed")]
    # a change made by hand with the sqlite3 module shows up too (the counter is kept by triggers)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE runs SET name = 'renamed' WHERE id = ?", (first,))
    conn.commit()
    conn.close()
    with open_store(path, readonly=True) as store:
        rows, _, _ = store.runs_changed_since(seen)
        assert [(r["id"], r["name"]) for r in rows] == [(first, "renamed")]
        assert "config" not in rows[0]


def test_default_db_path_prefers_the_workspace_runs_db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from app.data.workspace import resolve_workspace

    monkeypatch.delenv("SPKEMB_DB", raising=False)
    assert default_db_path(workspace=tmp_path) == tmp_path / "experiments" / "runs.db"
    (tmp_path / "runs.db").touch()
    assert default_db_path(workspace=tmp_path) == tmp_path / "runs.db"
    assert resolve_workspace(tmp_path).db_path == tmp_path / "runs.db"
    # an explicit choice beats a file found by looking: the same order for the TUI and the engine
    monkeypatch.setenv("SPKEMB_DB", str(tmp_path / "env.db"))
    assert default_db_path(workspace=tmp_path) == tmp_path / "env.db"
    assert resolve_workspace(tmp_path).db_path == tmp_path / "env.db"


def test_reads_in_one_snapshot_agree_while_another_connection_commits(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    writer = open_store(db)
    run = writer.create_run(kind="validate", exp_dir="e", out_dir="v", protocol="P", subset="development",
                            config={}, command=["validate"], device="cpu")
    reader = open_store(db, readonly=True)
    with reader.snapshot():
        assert reader.run_record(run).best_epoch is None
        writer.set_best(run, epoch=2, eer=0.1, how="manual")
        writer.create_run(kind="train", exp_dir="e", out_dir="t", protocol="P", subset="train", config={},
                          command=["train"], device="cpu")
        with reader.snapshot():  # joins the one open
            assert reader.run_record(run).best_epoch is None
        assert len(reader.runs()) == 1
    assert reader.run_record(run).best_epoch == 2 and len(reader.runs()) == 2
    # without one, each read sees the file as it is then
    writer.set_best(run, epoch=3, eer=0.1, how="manual")
    assert reader.run_record(run).best_epoch == 3
    reader.close()
    writer.close()


def test_experiment_folders_are_each_folder_once_with_its_runs_newest_first(tmp_path: Path) -> None:
    """The Configs screen listed experiments from every run's row (10,000 rows decoded and 10,000 stats
    at a lab's size) where a few hundred folders hold them."""
    store = open_store(tmp_path / "runs.db")
    a1 = new_run(store, exp_dir=tmp_path / "a")
    b1 = new_run(store, exp_dir=tmp_path / "b", out_dir="b/train/P.train")
    a2 = new_run(store, exp_dir=tmp_path / "a", out_dir="a/train/Q.train")
    v = new_run(store, kind="validate", exp_dir=tmp_path / "b", out_dir="b/v")
    assert store.experiment_folders("train") == {str(tmp_path / "a"): [a2, a1], str(tmp_path / "b"): [b1]}
    assert store.experiment_folders() == {str(tmp_path / "a"): [a2, a1], str(tmp_path / "b"): [v, b1]}
