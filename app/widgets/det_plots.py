"""DET curves and score histograms of validated epochs, drawn with textual-plotext."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.widgets.drawn_plot import DrawnPlot
from engine.validation.det import EpochScores, common_edges, probit, probit_ticks, score_histograms, thinned

#: (curve, target histogram, non-target histogram) colour of the first, second... epoch shown
COLORS = [("cyan", "green", "red"), ("orange", "blue", "magenta"), ("yellow", "white", "gray"),
          ("magenta", "cyan", "orange"), ("green", "yellow", "blue"), ("white", "magenta", "green")]
EER_MARKER, DCF_MARKER = "●", "◆"
#: below this many rows the legends are left out: plotext draws them over the plot's top left, where
#: a DET curve starts (the screen's lines above name each curve by its colour, and the histogram's
#: border its colours)
LEGEND_ROWS = 16


@dataclass
class Shown:
    """One epoch on the DET view: its label and its trials."""

    label: str
    epoch: EpochScores


class _Plot(DrawnPlot):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.shown: list[Shown] = []
        self._drawn_legends = False

    def show(self, shown: list[Shown]) -> None:
        self.shown = list(shown)
        self.draw()

    @property
    def legends(self) -> bool:
        """Whether the plot is tall enough for plotext's legends."""
        return self.size.height >= LEGEND_ROWS

    def on_resize(self) -> None:
        if self.legends != self._drawn_legends:
            self.draw()

    def _start(self, xlabel: str, ylabel: str) -> bool:
        """A blank figure with its axis labels; False (and a note) when there is nothing to draw."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        self._drawn_legends = self.legends
        self.border_subtitle = ""
        if not self.shown:
            plt.title("no scores to draw")
            self.refresh()
            return False
        plt.xlabel(xlabel)
        plt.ylabel(ylabel)
        return True


class DetPlot(_Plot):
    """Miss vs false-alarm rate on probit axes, labelled in %; the EER (●) and minDCF (◆) points marked."""

    DEFAULT_CSS = """
    DetPlot { width: 1fr; height: 1fr; min-height: 10; border: round $primary-darken-2; }
    """
    TITLE = "DET  (● EER  ◆ minDCF 0.01)"

    def draw(self) -> None:
        if not self._start("false alarm %", "miss %"):
            return
        plt = self.plt
        curves = [s.epoch.curve for s in self.shown]
        low = min(min(c.probit_fa().min(), c.probit_miss().min()) for c in curves)
        # the same range on both axes (equal error rates lie on the diagonal), from half a trial to
        # 50 % as NIST's DET plots, or further for a network that does not separate the speakers yet
        high = float(probit(np.asarray(min(max(0.5, 2 * max(c.eer for c in curves)), 0.95)), 1))
        plt.plot([low, high], [low, high], color="gray", marker="dot")
        for i, (s, curve) in enumerate(zip(self.shown, curves, strict=True)):
            x, y = curve.probit_fa(), curve.probit_miss()
            keep = thinned(x, y)
            plt.plot(x[keep].tolist(), y[keep].tolist(), color=COLORS[i % len(COLORS)][0], marker="braille",
                     label=s.label if len(self.shown) > 1 and self.legends else None)
        for i, curve in enumerate(curves):  # drawn last, so that no curve hides them
            color = COLORS[i % len(COLORS)][0]
            dcf_miss, dcf_fa = curve.min_dcf_point
            eer = np.asarray(curve.eer)
            plt.scatter([float(probit(eer, curve.n_nontarget))], [float(probit(eer, curve.n_target))],
                        color=color, marker=EER_MARKER)
            plt.scatter([float(probit(np.asarray(dcf_fa), curve.n_nontarget))],
                        [float(probit(np.asarray(dcf_miss), curve.n_target))],
                        color=color, marker=DCF_MARKER)
        positions, labels = probit_ticks(low, high)
        plt.xticks(positions, labels)
        plt.yticks(positions, labels)
        plt.xlim(low, high)
        plt.ylim(low, high)
        self.refresh()


class ScoreHistogramPlot(_Plot):
    """Target and non-target score distributions (fraction of each class per bin), the EER threshold marked."""

    DEFAULT_CSS = """
    ScoreHistogramPlot { width: 1fr; height: 1fr; min-height: 10; border: round $primary-darken-2; }
    """
    TITLE = "scores  (target, non-target; | EER threshold)"

    def draw(self) -> None:
        if not self._start("score", "% of trials"):
            return
        plt = self.plt
        # about two bins per square root of the smaller class: smooth enough for 100 trials, 40 at most
        smallest = min(min(s.epoch.curve.n_target, s.epoch.curve.n_nontarget) for s in self.shown)
        edges = common_edges([s.epoch.scores for s in self.shown], bins=int(np.clip(2 * np.sqrt(smallest), 8, 40)))
        for i, s in enumerate(self.shown):
            _, target_color, nontarget_color = COLORS[i % len(COLORS)]
            h = score_histograms(s.epoch.scores, s.epoch.is_target, edges)
            prefix = f"{s.label} " if len(self.shown) > 1 else ""
            centres = h.centres.tolist()
            plt.plot(centres, (100 * h.target).tolist(), color=target_color, marker="braille",
                     label=f"{prefix}target" if self.legends else None)
            plt.plot(centres, (100 * h.nontarget).tolist(), color=nontarget_color, marker="braille",
                     label=f"{prefix}non-target" if self.legends else None)
            plt.vline(s.epoch.curve.eer_threshold, COLORS[i % len(COLORS)][0])
        if not self.legends:  # the colours, an epoch's square after another's as the lines above list them
            colors = [COLORS[i % len(COLORS)] for i in range(len(self.shown))]
            self.border_subtitle = (f"{''.join(f'[{t}]■[/]' for _, t, _ in colors)} target  "
                                    f"{''.join(f'[{n}]■[/]' for _, _, n in colors)} non-target")
        self.refresh()
