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
from engine.records import Checkpoint, ValidationResult
from engine.store import open_store
from tests.app.conftest import make, wait_for
from tests.conftest import TINY_CONFIG

PROTOCOL = "Demo.SpeakerVerification.Voices"
MEETINGS = "Demo.SpeakerDiarization.Meetings"


def two_epochs(root: Path, db: Path) -> int:
    """A training run with real checkpoints at epochs 1 and 2, validated (epoch 1 picked); its id."""
    from engine.process.checkpoints import epoch_path, save_checkpoint
    from engine.config import config_to_dict, parse_config
    from engine.model import build_model
    from engine.layout import ValidationDir
    from engine.validation.selection import write_params, write_scores

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
            path = epoch_path(trn, epoch)
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
    write_params(val_dir, ValidationResult(epoch=1, eer=0.2))
    return train


@pytest.mark.slow
async def test_extract_shows_der_then_stale_after_pick(tmp_path: Path, demo_corpus: Path, db_path: Path) -> None:
    train = two_epochs(tmp_path, db_path)
    app = make(tmp_path, db=db_path, database=demo_corpus, refresh_interval=0.5)
    async with app.run_test(size=(160, 48)) as pilot:
        app.action_open_run(train)
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        detail = app.screen
        await wait_for(pilot, lambda: detail.data and detail.data.validators)
        panel = detail.query_one("#extractions")

        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExtractDialog))
        dialog = app.screen
        await wait_for(pilot, lambda: dialog.query_one("#protocol").value == MEETINGS, timeout=60)
        assert dialog.query_one("#diarize").value  # a diarization protocol: the check is offered, on
        dialog.query_one("#step").value = "0.5"
        await pilot.click("#ok")
        await wait_for(pilot, lambda: "DER " in str(panel.render()), timeout=300)
        text = str(panel.render())
        assert "epoch 1" in text and "oracle speakers" in text and "stale" not in text

        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PickDialog))
        app.screen.query_one("#epoch").value = "2"
        await pilot.click("#ok")
        await wait_for(pilot, lambda: "stale" in str(panel.render()), timeout=120)
        assert "params.yml now points at epoch 2" in str(panel.render())
        assert "press e to extract again" in str(panel.render())

        epochs = detail.query_one(EpochTable)
        row = next(i for i in range(epochs.row_count) if str(epochs.get_row_at(i)[0]).strip() == "1")
        epochs.move_cursor(row=row)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, DetScreen) and app.screen.shown)
        labels = [s.label for s in app.screen.query_one(DetPlot).shown]
        assert labels[0] == "epoch 1" and "epoch 2 (picked)" in labels
