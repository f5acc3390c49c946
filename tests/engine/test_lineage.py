"""Lineage of extractions: the checkpoint and the validation behind each; stale when pick moves on."""

from __future__ import annotations

import json
from pathlib import Path

from engine.layout import ValidationDir
from engine.records import Extraction, ValidationResult
from engine.store import open_store
from engine.validation.params import write_params
from tests import children
from tests.engine.engine_runner import run_in_process

PROTOCOL = "Demo.SpeakerVerification.Voices"


def validated(db: Path, root: Path) -> tuple[Path, int]:
    """A VAL_DIR validated at epochs 1-3 (epoch 2 best), as validate records it; (VAL_DIR, run id)."""
    trn = root / "exp" / "train" / f"{PROTOCOL}.train"
    val_dir = trn / "validate_equal_error_rate" / f"{PROTOCOL}.development"
    with open_store(db) as store:
        train = store.create_run(kind="train", exp_dir=root / "exp", out_dir=trn, protocol=PROTOCOL, subset="train",
                                 config={}, command=["train"], device="cpu")
        val = store.create_run(kind="validate", exp_dir=root / "exp", out_dir=val_dir, protocol=PROTOCOL,
                               subset="development", config={}, command=["validate"], device="cpu", parent_id=train)
        for epoch, eer in ((1, 0.3), (2, 0.2), (3, 0.25)):
            store.add_validation(val, ValidationResult(epoch=epoch, eer=eer, n_trials=10), train_run_id=train)
        store.set_best(val, epoch=2, eer=0.2, how="lowest-eer")
        store.set_status(val, "completed")
    write_params(ValidationDir(val_dir), ValidationResult(epoch=2, eer=0.2))
    return val_dir, val


def extracted(db: Path, val_dir: Path, val: int, epoch: int) -> int:
    with open_store(db) as store:
        run = store.create_run(kind="apply", exp_dir=None, out_dir=val_dir / "apply" / str(epoch), protocol="M.S.P",
                               subset="test", config=None, command=["apply"], device="cpu", parent_id=val)
        store.add_extraction(run, Extraction(epoch=epoch, protocol="M.S.P", subset="test",
                                             out_dir=val_dir / "apply" / str(epoch), mode="exact", step=0.1,
                                             duration=1.0, files=2, audio_seconds=60.0, wall_seconds=1.0,
                                             checkpoint=val_dir / f"{epoch:04d}.pt", checkpoint_sha256="ab" * 32,
                                             checkpoint_name=str(epoch), validate_run_id=val, chosen_by="params.yml"))
        store.set_status(run, "completed")
    return run


def stale(db: Path) -> list[dict]:
    done = run_in_process("runs", "--stale", "--format", "json", "--db", str(db))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_stale_marking_flips_when_pick_moves_params(tmp_path: Path, db_path: Path) -> None:
    val_dir, val = validated(db_path, tmp_path)
    run = extracted(db_path, val_dir, val, epoch=2)
    assert stale(db_path) == []

    done = run_in_process("pick", "--epoch", "3", str(val_dir), "--db", str(db_path))
    assert done.returncode == 0, done.stderr
    (row,) = stale(db_path)
    assert (row["apply_run_id"], row["extracted_epoch"], row["current_epoch"]) == (run, 2, 3)
    assert row["validate_run_id"] == val and row["checkpoint_sha256"] == "ab" * 32
    table = run_in_process("runs", "--stale", "--db", str(db_path))
    assert "stale extractions" in table.stdout and "M.S.P.test" in table.stdout

    # extracting the new epoch is not stale; picking the old one back clears the first again
    fresh = extracted(db_path, val_dir, val, epoch=3)
    assert [r["apply_run_id"] for r in stale(db_path)] == [run]
    assert run_in_process("pick", str(val_dir), "--db", str(db_path)).returncode == 0  # lowest EER: 2
    assert [r["apply_run_id"] for r in stale(db_path)] == [fresh]


def test_a_revalidation_of_the_same_val_dir_decides(tmp_path: Path, db_path: Path) -> None:
    val_dir, val = validated(db_path, tmp_path)
    extracted(db_path, val_dir, val, epoch=2)
    with open_store(db_path) as store:  # validate run again in the same VAL_DIR, which picks epoch 1
        again = store.create_run(kind="validate", exp_dir=None, out_dir=val_dir, protocol=PROTOCOL,
                                 subset="development", config={}, command=["validate"], device="cpu")
        store.set_best(again, epoch=1, eer=0.1, how="lowest-eer")
        assert [r["current_epoch"] for r in store.stale_extractions()] == [1]


def test_event_files_carry_lineage_and_der(tmp_path: Path) -> None:
    from engine.store import EventWriter, import_events

    out = tmp_path / "val" / "apply" / "3"
    with EventWriter(tmp_path / "events.jsonl") as writer:
        run = writer.create_run(kind="apply", exp_dir=None, out_dir=out, protocol="M.S.P", subset="test",
                                config=None, command=["apply"], device="cpu")
        writer.add_extraction(run, Extraction(epoch=3, protocol="M.S.P", subset="test", out_dir=out, mode="exact",
                                              step=0.1, duration=1.0, files=1, audio_seconds=9.0, wall_seconds=1.0,
                                              checkpoint="w/0003.pt", checkpoint_sha256="cd" * 32, checkpoint_name="3",
                                              validate_run_id=77, chosen_by="--epoch"))
        writer.add_diarization(run, out_dir=out, epoch=3, protocol="M.S.P", subset="test", collar=0.0,
                               skip_overlap=False, num_speakers="oracle", threshold=None, tuned_on=None,
                               linkage="average/cosine", frame_rule="majority", der=0.25, missed=1.0,
                               false_alarm=0.0, confusion=1.5, total=10.0,
                               files=[{"uri": "m1", "der": 0.25, "missed": 1.0, "false_alarm": 0.0,
                                       "confusion": 1.5, "total": 10.0, "speakers": 2, "speakers_found": 2,
                                       "rttm_path": str(out / "m1.rttm")}])
    with open_store(tmp_path / "runs.db") as store:
        import_events(tmp_path / "events.jsonl", store)
        (extraction,) = store.extractions(store.find_runs(kind="apply")[0]["id"])
        assert extraction["checkpoint_sha256"] == "cd" * 32 and extraction["chosen_by"] == "--epoch"
        assert extraction["validate_run_id"] is None  # an id of the other database means nothing here
        (check,) = store.diarizations(out)
        assert check["extraction_id"] == extraction["id"] and check["der"] == 0.25
        assert store.diarization_files(check["id"])[0]["uri"] == "m1"


def test_stale_table_keeps_each_extraction_on_one_line_at_80_columns(tmp_path: Path, db_path: Path) -> None:
    import os
    import sys

    deep = tmp_path / "a-rather-long-experiment-folder-name" / "and-another-level-of-folders"
    val_dir, val = validated(db_path, deep)
    extracted(db_path, val_dir, val, epoch=2)
    assert run_in_process("pick", "--epoch", "3", str(val_dir), "--db", str(db_path)).returncode == 0
    env = dict(os.environ, COLUMNS="80")
    done = children.run([sys.executable, "-m", "engine", "runs", "--stale", "--db", str(db_path)], env=env,
                        timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    (row,) = [line for line in lines if "M.S.P.test" in line]
    assert "…" in row and row.rstrip().endswith("apply/2")  # the folder's middle goes, its end stays


def test_stale_table_names_averaged_weights(tmp_path: Path, db_path: Path) -> None:
    val_dir, val = validated(db_path, tmp_path)
    trn = val_dir.parent.parent
    with open_store(db_path) as store:  # averaged weights ending at epoch 2, while params.yml names epoch 2
        run = store.create_run(kind="apply", exp_dir=None, out_dir=val_dir / "apply" / "avg-top2", protocol="M.S.P",
                               subset="test", config=None, command=["apply"], device="cpu", parent_id=val)
        store.add_extraction(run, Extraction(epoch=2, protocol="M.S.P", subset="test",
                                             out_dir=val_dir / "apply" / "avg-top2", mode="exact", step=0.1,
                                             duration=1.0, files=2, audio_seconds=60.0, wall_seconds=1.0,
                                             checkpoint=trn / "weights" / "avg-top2.pt", checkpoint_sha256="ab" * 32,
                                             checkpoint_name="avg-top2", validate_run_id=val, chosen_by="--epoch"))
    (row,) = stale(db_path)
    assert (row["extracted_epoch"], row["current_epoch"]) == (2, 2)  # the view: the last epoch averaged
    # which is why the view names the checkpoints too (the example query reads them)
    assert (row["extracted_checkpoint"], row["current_checkpoint"]) == ("avg-top2", "2")
    table = run_in_process("runs", "--stale", "--db", str(db_path))
    (line,) = [line for line in table.stdout.splitlines() if "M.S.P.test" in line]
    assert line.split()[3:5] == ["avg-top2", "2"], line
