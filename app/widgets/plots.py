"""Loss and EER plots drawn with textual-plotext."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.views.curves import epoch_marks, integer_ticks, loss_curve, margin_curve
from app.widgets.drawn_plot import DrawnPlot, finite
from engine.records import ValidationResult
from engine.records.labels import GroupEpoch

COLORS = ["cyan", "orange", "green", "magenta", "blue", "red", "yellow", "white"]
#: above this many epochs the EER's interval is drawn as two lines, not one bar per epoch
#: (plotext draws each bar as a line of its own: ten thousand of them took seconds a paint)
MAX_ERROR_BARS = 100


@dataclass
class LossSeries:
    label: str
    #: ``train_steps`` rows (``reader.StepRow``)
    steps: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class EerSeries:
    label: str
    validations: Sequence[ValidationResult] = field(default_factory=list)
    best_epoch: int | str | None = None
    #: the EER of each seed of the run's group per epoch: drawn as its mean ± std band
    band: Sequence[GroupEpoch] = ()
    #: the group the band is of (its legend)
    band_label: str = ""
    #: ``best_epoch`` was picked by hand (not the lowest EER): the caption says so
    picked: bool = False


def band_lines(band: Sequence[GroupEpoch]) -> tuple[list[int], list[float], list[float], list[float]]:
    """Epochs, and the mean - std, mean and mean + std of the EER (%) at each: the band's three lines
    (an epoch whose mean or std is not finite is left out)."""
    band = [b for b in band if math.isfinite(b.mean) and math.isfinite(b.std)]
    xs = [b.epoch for b in band]
    return (xs, [100.0 * (b.mean - b.std) for b in band], [100.0 * b.mean for b in band],
            [100.0 * (b.mean + b.std) for b in band])


class SeriesPlot(DrawnPlot):
    """A plotext plot of one or more series, redrawn whenever they are replaced."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.series: list = []

    def set_series(self, series: Sequence) -> None:
        self.series = list(series)
        self.draw()


class LossPlot(SeriesPlot):
    """Per-step training loss, smoothed and downsampled, with a dotted line at each new epoch.

    For a single run whose margin varies (a margin schedule), the margin in force is drawn
    beside it on the right-hand axis.
    """

    DEFAULT_CSS = """
    LossPlot { height: 1fr; min-height: 8; border: round $primary-darken-2; }
    """
    TITLE = "loss per step"

    def draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        self.border_subtitle = ""
        drawn = False
        for i, s in enumerate(self.series):
            xs, ys = loss_curve(s.steps)
            if not xs:
                continue
            drawn = True
            plt.plot(xs, ys, label=s.label if len(self.series) > 1 else None,
                     color=COLORS[i % len(COLORS)], marker="braille")
            if len(self.series) == 1:
                for x, _ in epoch_marks(s.steps)[-50:]:
                    plt.vline(x, "gray")
                mx, my = margin_curve(s.steps)
                if my and min(my) != max(my):
                    plt.plot(mx, my, label="margin (right axis)", color="yellow", marker="dot", yside="right")
                    self.border_subtitle = "and the margin in force (right)"
        if not drawn:
            self.border_subtitle = "no training steps recorded yet"
        self.refresh()


class EerPlot(SeriesPlot):
    """EER (%) per validated epoch with its bootstrap confidence interval; the best epoch marked.

    Averaged weights (``avg-top5``) are points of their own at the last epoch they average,
    named in the legend, off the per-epoch line. A run of a group also shows the group's mean EER
    over its seeds per epoch, between two lines at ± one sample standard deviation (its band).
    """

    DEFAULT_CSS = """
    EerPlot { height: 1fr; min-height: 8; border: round $primary-darken-2; }
    """
    TITLE = "EER % per epoch"

    def draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        self.border_subtitle = ""
        drawn = False
        single = len(self.series) == 1
        epochs: set[int] = set()
        for i, s in enumerate(self.series):
            xs, lower, mean, upper = band_lines(s.band)
            if xs:
                seeds = max(len(b.eers) for b in s.band)
                plt.plot(xs, mean, color="gray", marker="dot",
                         label=f"{s.band_label} mean ± std ({seeds} seed{'s' if seeds != 1 else ''})")
                for edge in (lower, upper):
                    plt.plot(xs, edge, color="gray", marker="·")
                epochs.update(xs)
                drawn = True
            # an imported event file can hold an inf EER, and a NaN one is read back as None
            valid = [v for v in s.validations if finite(v.eer)]
            rows = sorted((v for v in valid if not v.checkpoint_name), key=lambda v: v.epoch)
            named = sorted((v for v in valid if v.checkpoint_name), key=lambda v: v.checkpoint_name)
            if not rows and not named:
                continue
            drawn = True
            xs = [int(v.epoch) for v in rows]
            ys = [100.0 * float(v.eer) for v in rows]
            epochs.update(xs)
            color = COLORS[i % len(COLORS)]
            if single:
                self._interval([(int(v.epoch), 100.0 * float(v.eer_low), 100.0 * float(v.eer_high))
                                for v in rows if finite(v.eer_low) and finite(v.eer_high)])
            if rows:
                plt.plot(xs, ys, label=s.label if not single else None, color=color, marker="dot")
            for k, v in enumerate(named):
                label = f"{v.checkpoint_name} {100.0 * float(v.eer):.2f} %"
                epochs.add(int(v.epoch))
                # in a comparison the legend names whose averaged weights a point is
                plt.scatter([int(v.epoch)], [100.0 * float(v.eer)], marker="+",
                            label=label if single else f"{s.label}: {label}",
                            color=COLORS[(k + 1) % len(COLORS)] if single else color)
            best = s.best_epoch
            if best is None and rows:
                best = min(rows, key=lambda v: v.eer).epoch
            for v in rows + named:
                if (v.checkpoint_name or v.epoch) == best:
                    plt.scatter([int(v.epoch)], [100.0 * float(v.eer)], color="red", marker="X")
                    if single:
                        what = best if isinstance(best, str) else f"epoch {best}"
                        how = "picked" if s.picked else "best"
                        self.border_subtitle = f"{how} {what}: EER {100.0 * float(v.eer):.2f} %"
        if not drawn or not epochs:
            self.border_subtitle = "no validated epoch yet"
        else:
            # whole epochs only, and half an epoch of margin: one epoch is not drawn on [-1, 1]
            # the stub asks list[float]; the ticks stay ints, which plotext labels without ".0"
            ticks: list[float] = [*integer_ticks(sorted(epochs))]
            plt.xticks(ticks)
            plt.xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        self.refresh()

    def _interval(self, bounds: Sequence[tuple[int, float, float]]) -> None:
        """The 95 % interval (epoch, low %, high %) of each epoch."""
        plt = self.plt
        if len(bounds) > MAX_ERROR_BARS:
            xs = [epoch for epoch, _, _ in bounds]
            for k in (1, 2):
                plt.plot(xs, [b[k] for b in bounds], color="gray", marker="·")
            return
        # an error bar on each epoch (bands drawn between one or two epochs spread across the
        # whole width and read as lines)
        for epoch, low, high in bounds:
            plt.plot([epoch] * 2, [low, high], color="gray", marker="│")
