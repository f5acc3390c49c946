"""The screens' refreshes: a read still running is not started again, a long or live run is held as a
bounded number of steps, and a refresh that reads nothing new leaves the epoch table as it is."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from app.data.reader import STEP_POINTS
from app.screens.compare import CompareScreen
from app.screens.run_detail import RunDetailScreen
from app.screens.runs import RunsScreen
from app.screens.sweeps import SweepsScreen
from app.widgets.epoch_table import EpochTable
from app.widgets.plots import EerPlot
from engine.records import ValidationResult
from engine.store import open_store
from tests.app.conftest import make, showing, wait_for

#: the workspace fixture's runs (tests/app/conftest.py, fill_db)
AAM_02, AAM_02_VALIDATE, AAM_01 = 1, 2, 3


class Held:
    """A screen whose reads of ``group`` are counted and held until ``gate`` is set: a read slower
    than the refresh interval, for as long as the test wants. It wraps Textual's ``run_worker``; the
    screen's own read runs unchanged once let go."""

    group = ""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.started = 0

    def run_worker(self, work, *args, **kwargs):
        if kwargs.get("group") != self.group:
            return super().run_worker(work, *args, **kwargs)
        self.started += 1
        gate = self.gate

        def held():
            gate.wait(60)
            return work()

        return super().run_worker(held, *args, **kwargs)


SCREENS = {
    "compare": lambda cls: cls([AAM_02, AAM_01]),
    "detail": lambda cls: cls(AAM_02),
    "runs": lambda cls: cls(),
    "sweeps": lambda cls: cls(),
}
CLASSES = {"compare": CompareScreen, "detail": RunDetailScreen, "runs": RunsScreen, "sweeps": SweepsScreen}


@pytest.mark.slow
@pytest.mark.parametrize("group", list(SCREENS))
async def test_a_read_still_running_is_not_started_again_by_the_next_refresh(workspace: Path, group: str) -> None:
    app = make(workspace, refresh_interval=0.05)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: showing(app, RunsScreen) and app.screen.loaded)
        screen = SCREENS[group](type(f"Held{group}", (Held, CLASSES[group]), {"group": group}))
        try:
            await app.push_screen(screen)
            await pilot.pause(0.6)  # a dozen refresh intervals, the first read held all along
            assert screen.started == 1
        finally:
            screen.gate.set()
        # once it is done, the refreshes read again
        await wait_for(pilot, lambda: screen.started >= 3)


def _add_steps(path: Path, run_id: int, steps: range) -> None:
    with open_store(path) as store:
        store.add_steps(run_id, [{"step": s, "epoch": 4, "loss": 1.0 / (1 + s)} for s in steps])


async def test_compare_reads_a_long_run_as_evenly_spaced_steps(workspace: Path) -> None:
    _add_steps(workspace / "runs.db", AAM_02, range(60, 5 * STEP_POINTS))
    app = make(workspace, refresh_interval=3600)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: showing(app, RunsScreen) and app.screen.loaded)
        screen = CompareScreen([AAM_02, AAM_01])
        await app.push_screen(screen)
        await wait_for(pilot, lambda: len(screen.runs) == 2)
        held = [s["step"] for s in screen.steps[AAM_02]]
        assert len(held) <= STEP_POINTS + 1 and held[0] == 0 and held[-1] == 5 * STEP_POINTS - 1
        assert len(screen.steps[AAM_01]) == 60  # a short run: every step


def _held(screen) -> list[dict]:
    return screen.steps[AAM_02] if isinstance(screen, CompareScreen) else screen.steps


@pytest.mark.slow
@pytest.mark.parametrize("group", ["compare", "detail"])
async def test_the_steps_held_of_a_live_run_stay_bounded(workspace: Path, group: str) -> None:
    app = make(workspace, refresh_interval=0.1)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: showing(app, RunsScreen) and app.screen.loaded)
        screen = SCREENS[group](CLASSES[group])
        await app.push_screen(screen)
        await wait_for(pilot, lambda: len(_held(screen)) == 60)
        last = 59
        for _ in range(3):  # the run trains on: each refresh reads its new steps
            _add_steps(workspace / "runs.db", AAM_02, range(last + 1, last + 1 + STEP_POINTS))
            last += STEP_POINTS
            await wait_for(pilot, lambda last=last: _held(screen)[-1]["step"] == last)
            assert len(_held(screen)) <= 2 * STEP_POINTS
        steps = [s["step"] for s in _held(screen)]
        assert steps[0] == 0 and steps == sorted(set(steps))
        gaps = [b - a for a, b in zip(steps, steps[1:], strict=False)]
        assert max(gaps) <= 2 * min(gaps) + 2  # evenly spaced again, the old steps and the new


@pytest.mark.slow
async def test_a_refresh_that_reads_nothing_new_leaves_the_epoch_table_and_eer_plot(workspace: Path) -> None:
    app = make(workspace, refresh_interval=0.05)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: showing(app, RunsScreen) and app.screen.loaded)
        screen = RunDetailScreen(AAM_02)
        await app.push_screen(screen)
        table, plot = screen.query_one(EpochTable), screen.query_one(EerPlot)
        await wait_for(pilot, lambda: table.row_count == 3)
        fills, series, reads = table.fills, plot.series, screen.reads
        await wait_for(pilot, lambda: screen.reads >= reads + 5)
        assert table.fills == fills and plot.series is series
        # a new validation: the table and the plot show it
        with open_store(workspace / "runs.db") as store:
            store.add_validation(AAM_02_VALIDATE, ValidationResult(
                epoch=4, eer=0.15, eer_low=0.1, eer_high=0.2, mindcf_01=0.5, mindcf_005=0.4, threshold=0.5,
                n_trials=400), train_run_id=AAM_02)
        await wait_for(pilot, lambda: table.row_count == 4)
        assert table.fills == fills + 1 and len(plot.series[0].validations) == 4
        await pilot.press("n")  # no AS-norm figures: nothing redrawn, a warning
        assert table.fills == fills + 1
