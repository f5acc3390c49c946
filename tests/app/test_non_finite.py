"""An inf or NaN loss or EER in the runs database (an imported event file, a hand edit) is drawn
around, never raised: the TUI stays up and the plots show what is finite."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest
from textual.app import App

from app.data.sweeps import Sweep, Trial
from app.screens.run_detail import RunDetailScreen
from app.widgets.det_plots import DetPlot, ScoreHistogramPlot
from app.widgets.plots import EerPlot, EerSeries, LossPlot, LossSeries
from app.widgets.sweep_plot import SweepPlot
from engine.records import ValidationResult
from tests.app.conftest import make, open_run, settled, wait_for

INF = math.inf


class Host(App):
    """One plot on a screen of its own."""

    def __init__(self, plot) -> None:
        super().__init__()
        self.plot = plot

    def compose(self):
        yield self.plot


def steps(losses: list[float]) -> list[dict]:
    return [{"step": s, "epoch": 1 + s // 10, "loss": loss} for s, loss in enumerate(losses)]


async def drawn(plot, series) -> str:
    """The text of ``plot`` once it has drawn ``series``, and its border's caption on a line below."""
    async with Host(plot).run_test(size=(80, 20)) as pilot:
        plot.set_series(series)
        await pilot.pause()
        return f"{plot.render().plain}\n{plot.border_subtitle}"


@pytest.mark.parametrize("losses", [[2.0, 1.5, INF, 1.0, 0.9], [2.0, INF, -INF, 1.0],
                                    [2.0, math.nan, 1.0]], ids=["one-inf", "inf-then-minus-inf", "nan"])
async def test_a_loss_curve_with_a_non_finite_step_draws_its_finite_steps(losses: list[float]) -> None:
    text = await drawn(LossPlot(), [LossSeries("run", steps(losses))])
    assert "cannot draw" not in text
    assert any("\u2800" < c <= "\u28ff" for c in text), text  # the curve, in braille dots
    assert "no training steps" not in text


async def test_a_loss_curve_of_only_inf_steps_draws_as_empty() -> None:
    text = await drawn(LossPlot(), [LossSeries("run", steps([INF, INF, INF]))])
    assert "no training steps recorded yet" in text


async def test_an_inf_eer_is_left_out_of_the_eer_plot() -> None:
    rows = [ValidationResult(epoch=1, eer=0.30, eer_low=0.25, eer_high=0.35),
            ValidationResult(epoch=2, eer=INF, eer_low=-INF, eer_high=INF),
            ValidationResult(epoch=3, eer=0.20, eer_low=0.15, eer_high=INF)]
    text = await drawn(EerPlot(), [EerSeries("EER", rows)])
    assert "cannot draw" not in text
    assert "best epoch 3: EER 20.00 %" in text
    only_inf = await drawn(EerPlot(), [EerSeries("EER", [ValidationResult(epoch=1, eer=INF)])])
    assert "no validated epoch yet" in only_inf


@pytest.mark.parametrize("kind", [LossPlot, EerPlot, DetPlot, ScoreHistogramPlot, SweepPlot])
async def test_a_plot_plotext_cannot_draw_says_so_in_one_line(kind) -> None:
    plot = kind()
    async with Host(plot).run_test(size=(80, 20)) as pilot:
        await pilot.pause()
        # what the loss plot drew before it left non-finite values out: plotext fails labelling it
        plot.plt.plot([0.0, 1.0, 2.0], [1.0, INF, 0.5])
        text = plot.render().plain
        assert text.startswith("cannot draw this plot: ") and "\n" not in text
        await pilot.pause()
        assert app_running(pilot)


def app_running(pilot) -> bool:
    return pilot.app.is_running and pilot.app._exit_renderables == []


@pytest.mark.slow
async def test_run_detail_of_a_run_with_an_inf_loss_and_eer_stays_up(workspace: Path) -> None:
    # as `spkemb-engine import` of an event file or a hand edit leaves them
    conn = sqlite3.connect(workspace / "runs.db")
    conn.execute("UPDATE train_steps SET loss = 9e999 WHERE step IN (5, 6)")
    conn.execute("UPDATE train_steps SET loss = -9e999 WHERE step = 7")
    conn.execute("UPDATE validations SET eer = 9e999, eer_high = 9e999 WHERE epoch = 3")
    conn.commit()
    conn.close()
    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        await open_run(pilot, "aam-m0.2")
        screen = app.screen
        await wait_for(pilot, lambda: len(screen.query_one(LossPlot).series) == 1)
        await settled(pilot)
        assert isinstance(app.screen, RunDetailScreen) and app_running(pilot)
        assert math.isinf(screen.query_one(LossPlot).series[0].steps[5]["loss"])
        loss, eer = screen.query_one(LossPlot).render().plain, screen.query_one(EerPlot).render().plain
        assert "cannot draw" not in loss + eer
        assert screen.query_one(EerPlot).border_subtitle == "best epoch 2: EER 21.00 %"


async def test_the_interval_of_a_long_run_is_two_lines_not_a_bar_per_epoch() -> None:
    rows = [ValidationResult(epoch=e, eer=0.2 + 0.1 / e, eer_low=0.15 + 0.1 / e, eer_high=0.25 + 0.1 / e)
            for e in range(1, 1001)]
    plot = EerPlot()
    text = await drawn(plot, [EerSeries("EER", rows)])
    # plotext draws every line of its own: one per epoch cost seconds each paint at 10,000 epochs
    lines = plot.plt.monitor.signals
    assert lines <= 4, lines
    assert "best epoch 1000" in text and "·" in text
    few = EerPlot()
    await drawn(few, [EerSeries("EER", rows[:20])])
    assert few.plt.monitor.signals >= 20  # a short run keeps a bar on each epoch


def trial(number: int, margin: float, best_eer: float | None) -> Trial:
    return Trial(number=number, exp_dir=f"trial-{number}", params={"task.params.margin": margin}, seed=0,
                 run_id=number, status="done", slot="cpu", claimed=True, epoch=2, target_epoch=2,
                 best_eer=best_eer, prune_reason=None, out_dir=None)


async def test_the_sweep_plot_leaves_a_trial_of_inf_eer_out() -> None:
    sweep = Sweep(id=1, name="m", method="grid", planned=3, slots="cpu", prune="none", keys=("task.params.margin",),
                  trials=(trial(0, 0.1, 0.30), trial(1, 0.2, INF), trial(2, 0.3, 0.20)))
    plot = SweepPlot()
    async with Host(plot).run_test(size=(80, 20)) as pilot:
        plot.set_sweep(sweep)
        await pilot.pause()
        text = plot.render().plain
    assert "cannot draw" not in text and "no validated trial yet" not in text
    assert "margin" in text
    only_inf = Sweep(id=1, name="m", method="grid", planned=1, slots="cpu", prune="none",
                     keys=("task.params.margin",), trials=(trial(1, 0.2, INF),))
    plot = SweepPlot()
    async with Host(plot).run_test(size=(80, 20)) as pilot:
        plot.set_sweep(only_inf)
        await pilot.pause()
        assert "no validated trial yet" in plot.render().plain
