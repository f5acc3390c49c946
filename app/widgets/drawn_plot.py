"""The base of every plot of the TUI: a plotext figure drawn from its data, titled on its border.

The loss and EER plots say what a plotext title and axis label would (the best epoch, "per step")
on their border instead: at 80x24 the EER plot kept one row of its own for its points."""

from __future__ import annotations

import math

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot


def finite(value: float | None) -> bool:
    """Whether ``value`` is a number a plot can draw (not None, inf or NaN)."""
    return value is not None and math.isfinite(value)


class DrawnPlot(PlotextPlot):
    """A plotext plot that draws its figure from its data (:meth:`draw`) when mounted and whenever
    the data is replaced, and that says in its frame when plotext cannot draw it: a value plotext
    fails on (an axis of inf) must not end the app."""

    TITLE = ""

    def on_mount(self) -> None:
        super().on_mount()
        self.border_title = self.TITLE
        self.draw()

    def draw(self) -> None:
        raise NotImplementedError

    def render(self) -> RenderResult:
        """The plot, or one line saying why plotext could not draw it."""
        try:
            return super().render()
        except Exception as e:  # noqa: BLE001 - plotext's faults on odd data must not end the app
            return Text(f"cannot draw this plot: {type(e).__name__}: {e}", no_wrap=True, overflow="ellipsis")
