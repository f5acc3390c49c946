"""A validation whose EER is NULL (SQLite stores a NaN as NULL; the schema allows it) is read as
None and shown around: the store's typed reads, Compare and the run detail keep working."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from app.screens.compare import CompareScreen
from app.screens.run_detail import RunDetailScreen
from app.widgets.epoch_table import EpochTable
from app.widgets.plots import EerPlot
from engine.records import ValidationResult
from engine.store import open_store
from tests.app.conftest import compare_runs, make, notified, open_run, settled, wait_for


def add_nan_epoch(workspace: Path, name: str = "aam-m0.2") -> int:
    """Epoch 4 of ``name``'s validate run recorded with a NaN EER, as a weighting without a
    non-target trial gives (engine/validation/metrics.py); returns the validate run."""
    with open_store(workspace / "runs.db") as store:
        train = next(r for r in store.runs(kind="train") if r["name"] == name)
        val = next(r for r in store.runs(kind="validate") if r["parent_id"] == train["id"])
        store.add_validation(val["id"], ValidationResult(epoch=4, eer=math.nan, eer_low=math.nan, n_trials=400),
                             train_run_id=train["id"])
        return int(val["id"])


def test_a_null_eer_is_read_as_none(workspace: Path) -> None:
    val = add_nan_epoch(workspace)
    with open_store(workspace / "runs.db") as store:
        assert store.validations(val)[-1]["eer"] is None  # what SQLite made of the NaN
        (fourth,) = [v for v in store.validation_records(val) if v.epoch == 4]
        assert fourth.eer is None and fourth.eer_text == "—"
        assert [v.epoch for v in store.validation_results(val)] == [1, 2, 3, 4]
        # the lowest EER is still the lowest: a missing one ranks after every other
        assert min(store.validation_results(val), key=ValidationResult.ranked).epoch == 2


@pytest.mark.slow
async def test_compare_of_a_run_with_a_null_eer_draws_its_other_epochs(workspace: Path) -> None:
    add_nan_epoch(workspace)
    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        await compare_runs(pilot, ("aam-m0.2", "aam-m0.1"))
        await settled(pilot)
        assert isinstance(app.screen, CompareScreen) and app.is_running
        assert not notified(app, "cannot read", "error")
        plot = app.screen.query_one(EerPlot)
        assert sorted(len(s.validations) for s in plot.series) == [3, 4]
        assert "cannot draw" not in plot.render().plain


async def test_run_detail_of_a_run_with_a_null_eer_shows_its_epochs(workspace: Path) -> None:
    add_nan_epoch(workspace)
    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        await open_run(pilot, "aam-m0.2")
        screen = app.screen
        await wait_for(pilot, lambda: screen.query_one(EpochTable).row_count == 4)
        await settled(pilot)
        assert isinstance(app.screen, RunDetailScreen) and app.is_running
        assert not notified(app, "cannot read", "error")
        epochs = screen.query_one(EpochTable)
        (fourth,) = [epochs.get_row_at(i) for i in range(4) if str(epochs.get_row_at(i)[0]).split()[0] == "4"]
        assert str(fourth[2]) == "—"  # validated, with no EER to show
        assert screen.query_one(EerPlot).border_subtitle == "best epoch 2: EER 21.00 %"
