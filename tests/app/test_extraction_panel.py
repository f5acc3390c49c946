"""The extraction panel: extract with the diarization check, see its DER, pick another epoch, see it stale,
then open the DET view of an epoch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app.dialogs.actions import ExtractDialog, PickDialog
from app.screens.det import DetScreen
from app.screens.run_detail import RunDetailScreen
from app.widgets.det_plots import DetPlot
from app.widgets.epoch_table import EpochTable
from engine.layout import TrainingDir
from engine.records import Checkpoint, ValidationResult
from engine.store import open_store
from tests.app.conftest import make, showing, wait_for
from tests.conftest import TINY_CONFIG

PROTOCOL = "Demo.SpeakerVerification.Voices"
MEETINGS = "Demo.SpeakerDiarization.Meetings"


def two_epochs(root: Path, db: Path) -> int:
    """A training run with real checkpoints at epochs 1 and 2, validated (epoch 1 picked); its id."""
    from engine.config import config_to_dict, parse_config
    from engine.layout import ValidationDir
    from engine.model import build_model
    from engine.process.checkpoints import save_checkpoint
    from engine.validation.params import write_params
    from engine.validation.score_files import write_scores

    exp = root / "exp"
    exp.mkdir()
    (exp / "config.yml").write_text(TINY_CONFIG)
    config = parse_config(TINY_CONFIG, "tiny")
    trn = exp / "train" / f"{PROTOCOL}.train"
    val_dir = trn / "validate_equal_error_rate" / f"{PROTOCOL}.development"
    with open_store(db) as store:
        train = store.create_run(kind="train", exp_dir=exp, out_dir=trn, protocol=PROTOCOL, subset="train",
                                 config=config_to_dict(config), command=["train"], device="cpu", target_epoch=2)
        val = store.create_run(kind="validate", exp_dir=exp, out_dir=val_dir, protocol=PROTOCOL,
                               subset="development", config=config_to_dict(config), command=["validate"],
                               device="cpu", parent_id=train)
        for epoch, eer in ((1, 0.2), (2, 0.3)):
            torch.manual_seed(epoch)
            path = TrainingDir(trn).checkpoint(epoch)
            save_checkpoint(path, {"model": build_model(config).state_dict(), "config": config_to_dict(config),
                                   "epoch": epoch, "step": 10 * epoch})
            store.add_checkpoint(train, Checkpoint(epoch=epoch, step=10 * epoch, path=path, partial=False))
            store.add_validation(val, ValidationResult(epoch=epoch, eer=eer, n_trials=48), train_run_id=train)
            # the score file the DET view draws: targets above non-targets, overlapping by ``eer``
            rows = [(1, 1.0 - eer + 0.02 * i, f"t{i}", f"u{i}") for i in range(24)]
            rows += [(0, 0.02 * i, f"n{i}", f"m{i}") for i in range(24)]
            write_scores(ValidationDir(val_dir).score_file(epoch), rows)
        store.set_best(val, epoch=1, eer=0.2, how="lowest-eer")
        for run in (train, val):
            store.set_status(run, "completed")
    write_params(ValidationDir(val_dir), ValidationResult(epoch=1, eer=0.2))
    return train


def panel_blocks(text: str) -> dict[int, list[str]]:
    """The extractions panel's lines by apply run id: its own line first, then the lines below it."""
    blocks: dict[int, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("#"):
            current = int(line[1:].split()[0])
            blocks[current] = []
        if current is not None:
            blocks[current].append(line.strip())
    return blocks


def record_apply(db: Path, val_dir: Path, folder: str, mode: str, collars: tuple[float, ...]) -> int:
    """An apply run of epoch 1 into ``VAL_DIR/apply/{folder}`` with its extraction (following the validate
    run's pick) and one diarization check per collar (its DER: 0.1 + collar); its id."""
    from engine.records import Extraction

    out = val_dir / "apply" / folder
    with open_store(db) as store:
        (val,) = store.find_runs(kind="validate")
        run = store.create_run(kind="apply", exp_dir=None, out_dir=out, protocol=MEETINGS, subset="test",
                               config=None, command=["apply"], device="cpu", target_epoch=1, parent_id=val["id"])
        store.add_extraction(run, Extraction(epoch=1, protocol=MEETINGS, subset="test", out_dir=out, mode=mode,
                                             step=0.5, duration=1.0, files=2, audio_seconds=60.0, wall_seconds=3.0,
                                             validate_run_id=val["id"]))
        for collar in collars:
            store.add_diarization(run, out_dir=out, epoch=1, protocol=MEETINGS, subset="test", collar=collar,
                                  skip_overlap=False, num_speakers="oracle", threshold=None, tuned_on=None,
                                  linkage="ward/unit-norm", frame_rule="majority", der=0.1 + collar, missed=1.0,
                                  false_alarm=0.0, confusion=5.0, total=60.0, files=[])
        store.set_status(run, "completed")
    return run


@pytest.mark.slow
async def test_each_extraction_is_a_line_with_its_settings_and_every_der(tmp_path: Path, db_path: Path) -> None:
    train = two_epochs(tmp_path, db_path)
    val_dir = Path(open_store(db_path, readonly=True).find_runs(kind="validate")[0]["out_dir"])
    exact = record_apply(db_path, val_dir, "1-step0.5", "exact", (0.0, 0.5))
    shared = record_apply(db_path, val_dir, "1-shared-step0.5", "shared", (0.0,))
    onnx = record_apply(db_path, val_dir, "1-onnxruntime-step0.5", "onnxruntime", ())
    again = record_apply(db_path, val_dir, "1-step0.5", "exact", ())  # the same settings: replaces the files
    app = make(tmp_path, db=db_path)
    async with app.run_test(size=(160, 48)) as pilot:
        app.action_open_run(train)
        await wait_for(pilot, lambda: showing(app, RunDetailScreen))
        detail = app.screen
        await wait_for(pilot, lambda: detail.data and detail.data.applies)
        panel = detail.query_one("#extractions")
        await wait_for(pilot, lambda: len(panel_blocks(str(panel.render()))) == 4)
        blocks = panel_blocks(str(panel.render()))
    assert "exact path, torch, step 0.5 s" in blocks[exact][0]
    # two collars: two results, each with how it was scored
    assert blocks[exact][1] == f"replaced by #{again} (same settings, same folder)"
    ders = [line for line in blocks[exact] if line.startswith("DER")]
    assert len(ders) == 2
    assert ders[0].startswith("DER 60.00 %") and ders[0].endswith("oracle speakers · collar 0.5 s, overlap scored")
    assert ders[1].startswith("DER 10.00 %") and ders[1].endswith("oracle speakers · collar 0 s, overlap scored")
    assert "shared path, torch, step 0.5 s" in blocks[shared][0]
    assert [line for line in blocks[shared] if line.startswith("DER")] == [
        "DER 10.00 % (missed 1.67 %, false alarm 0.00 %, confusion 8.33 %) "
        "oracle speakers · collar 0 s, overlap scored"]
    assert "plain path, onnxruntime, step 0.5 s" in blocks[onnx][0]
    assert blocks[shared][-1].endswith("1-shared-step0.5") and blocks[onnx][-1].endswith("1-onnxruntime-step0.5")
    assert not any(line.startswith("DER") for line in blocks[onnx] + blocks[again])


@pytest.mark.slow(seconds=25)
async def test_two_paths_of_one_epoch_are_two_extractions_with_their_own_files_and_ders(
        tmp_path: Path, demo_corpus: Path, db_path: Path) -> None:
    """The extraction panel's one slow end-to-end test: extract with the diarization check (two paths),
    see each DER, diarize again with another collar, pick another epoch and see them stale, then open
    the DET view of an epoch. The Done-when of "extractions are immutable and self-describing"."""
    from tests.engine.engine_runner import run_engine

    train = two_epochs(tmp_path, db_path)
    app = make(tmp_path, db=db_path, database=demo_corpus, refresh_interval=0.5)
    async with app.run_test(size=(160, 48)) as pilot:
        app.action_open_run(train)
        await wait_for(pilot, lambda: showing(app, RunDetailScreen))
        detail = app.screen
        await wait_for(pilot, lambda: detail.data and detail.data.validators)
        panel = detail.query_one("#extractions")

        def ders() -> dict[int, list[str]]:
            return {run: [line for line in lines if line.startswith("DER")]
                    for run, lines in panel_blocks(str(panel.render())).items()}

        for n, path in enumerate(("exact", "shared"), start=1):
            await pilot.press("e")
            await wait_for(pilot, lambda: showing(app, ExtractDialog))
            dialog = app.screen
            await wait_for(pilot, lambda dialog=dialog: dialog.query_one("#protocol").value == MEETINGS, timeout=60)
            # a diarization protocol: the check is offered, on (once the dialog has handled the change)
            await wait_for(pilot, lambda dialog=dialog: dialog.query_one("#diarize").value, timeout=30)
            dialog.query_one("#step").value = "0.5"
            dialog.query_one("#path").value = path
            await pilot.click("#ok")
            await wait_for(pilot, lambda n=n: len(ders()) == n and all(ders().values()), timeout=300)
            text = str(panel.render())
            assert "epoch 1" in text and "oracle speakers" in text and "stale" not in text

        with open_store(db_path, readonly=True) as store:
            applies = {e["mode"]: e for r in store.find_runs(kind="apply") for e in store.extractions(r["id"])}
            checks = {mode: store.diarizations(e["out_dir"]) for mode, e in applies.items()}
        blocks = panel_blocks(str(panel.render()))
        for mode, folder in (("exact", "1-step0.5"), ("shared", "1-shared-step0.5")):
            extraction, (check,) = applies[mode], checks[mode]
            out = Path(extraction["out_dir"])
            assert out.name == folder and (out / "metadata.yml").is_file()
            lines = blocks[extraction["run_id"]]
            assert f"{mode} path, torch, step 0.5 s" in lines[0]
            assert lines[-1].endswith(f"apply/{folder}")
            (der,) = [line for line in lines if line.startswith("DER")]
            assert der.startswith(f"DER {100 * check['der']:.2f} %") and der.endswith("collar 0 s, overlap scored")
            # its own files: embeddings and the diarization's RTTMs, one of each per meeting
            assert {p.stem for p in out.glob("*.npy")} == {p.stem for p in out.glob("*.rttm")} != set()
        assert checks["exact"][0]["der"] != checks["shared"][0]["der"]

        # the exact extraction diarized again with another collar: both results kept, both shown
        exact = applies["exact"]
        done = run_engine("diarize", "--collar", "0.5", "--db", str(db_path), exact["out_dir"], MEETINGS,
                          database=demo_corpus)
        assert done.returncode == 0, done.stderr
        await wait_for(pilot, lambda: len(ders()[exact["run_id"]]) == 2, timeout=30)
        collars = [line.rsplit("·", 1)[1].strip() for line in ders()[exact["run_id"]]]
        assert collars == ["collar 0.5 s, overlap scored", "collar 0 s, overlap scored"]
        assert len(ders()[applies["shared"]["run_id"]]) == 1

        # another epoch picked: the extractions of epoch 1 are stale
        await pilot.press("p")
        await wait_for(pilot, lambda: showing(app, PickDialog))
        app.screen.query_one("#epoch").value = "2"
        await pilot.click("#ok")
        await wait_for(pilot, lambda: "stale" in str(panel.render()), timeout=120)
        assert "params.yml now points at epoch 2" in str(panel.render())
        assert "press e to extract again" in str(panel.render())

        # the DET view of an epoch
        epochs = detail.query_one(EpochTable)
        row = next(i for i in range(epochs.row_count) if str(epochs.get_row_at(i)[0]).split()[0] == "1")
        epochs.move_cursor(row=row)
        await pilot.press("d")
        await wait_for(pilot, lambda: showing(app, DetScreen) and app.screen.shown)
        labels = [s.label for s in app.screen.query_one(DetPlot).shown]
        assert labels[0] == "epoch 1" and "epoch 2 (picked)" in labels


def test_a_refresh_reads_one_state_of_the_database_while_a_pick_commits(tmp_path: Path, db_path: Path) -> None:
    """The run detail reads the validate runs, then the extractions' staleness: a pick committed
    between the two reads is in neither (the race that showed "stale" beside the old pick), and in
    both at the next refresh."""
    from app.data.reader import extraction_checks, read_detail, store_at
    from app.views.validation_view import best_marker

    train = two_epochs(tmp_path, db_path)
    val_dir = Path(open_store(db_path, readonly=True).find_runs(kind="validate")[0]["out_dir"])
    apply = record_apply(db_path, val_dir, "1-step0.5", "exact", ())
    with store_at(db_path) as store:
        (validator,) = [r for r in store.child_records(train) if r.kind == "validate"]
        with open_store(db_path) as writer:
            writer.set_best(validator.id, epoch=2, eer=0.3, how="manual")
        _, _, stale = extraction_checks(store, [apply])
        assert best_marker(validator) == 1 and stale == {}
    detail = read_detail(db_path, train, -1)
    assert detail is not None
    assert [best_marker(v) for v in detail.validators] == [2]
    assert detail.stale[apply].current_epoch == 2
