"""The report's figures, drawn with matplotlib as a paper prints them: loss and EER against epoch,
overlaid DET curves and score histograms (target vs non-target) of each trial list.

matplotlib is imported here only, when a report is drawn (never by the TUI at start-up), and only
through its object API (``matplotlib.figure.Figure``): no pyplot, no global figure state, no
display. Colours are the Okabe–Ito palette, told apart with colour-blindness too; past eight
systems the line style changes as well. A group is its mean over seeds with a band of ± one sample
standard deviation; on a DET plot, each of its runs is a curve of the group's colour.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.compare.pivot import Pivot, Stat, System, scored_of
from engine.console import say
from engine.errors import SpkembError

#: Okabe & Ito, "Color Universal Design" (2008), most distinct first; yellow last (faint on white)
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
LINE_STYLES = ("-", "--", ":", "-.")
TARGET_COLOUR, NONTARGET_COLOUR = OKABE_ITO[0], OKABE_ITO[1]
SIZE = (6.4, 4.0)
#: the formats a figure is written in, and the resolution of the PNG
FORMATS = ("png", "svg", "pdf")
PNG_DPI = 150


@dataclass(frozen=True)
class ReportFigure:
    """One drawn figure: its file stem (``det-VoxCeleb.X.test``), its caption, the figure."""

    stem: str
    caption: str
    figure: Any

    def render(self, fmt: str) -> bytes:
        """The figure as a file of ``fmt`` (png, svg, pdf), with no date in it (same data, same bytes)."""
        buffer = io.BytesIO()
        metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt, {})
        self.figure.savefig(buffer, format=fmt, dpi=PNG_DPI, metadata=metadata)
        return buffer.getvalue()


def style(index: int) -> dict[str, Any]:
    """The colour and line style of the ``index``-th system."""
    return {"color": OKABE_ITO[index % len(OKABE_ITO)],
            "linestyle": LINE_STYLES[(index // len(OKABE_ITO)) % len(LINE_STYLES)]}


def safe_stem(text: str) -> str:
    """A file-name-safe form of a trial list's name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "trials"


def draw_all(pivot: Pivot) -> list[ReportFigure]:
    """Every figure of the report, in the order the page shows them."""
    found = [_loss(pivot), _eer(pivot)]
    for trials in pivot.trial_lists:
        found += [f for f in (_det(pivot, trials), _histograms(pivot, trials)) if f is not None]
    return [f for f in found if f is not None]


def _new(width: float = SIZE[0], height: float = SIZE[1]) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _mean_band(curves: list[list[tuple[int, float]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epochs every curve has, the mean over curves and the sample std (0 for one curve): where one seed
    trained longer, its epochs alone were a "mean" with a band of no width."""
    by_epoch: dict[int, list[float]] = {}
    for curve in curves:
        for epoch, value in curve:
            by_epoch.setdefault(epoch, []).append(value)
    epochs = sorted(e for e, found in by_epoch.items() if len(found) == len(curves))
    values = [by_epoch[e] for e in epochs]
    mean = np.array([np.mean(v) for v in values])
    std = np.array([np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in values])
    return np.array(epochs), mean, std


def _plot_system(ax: Any, system: System, curves: list[list[tuple[int, float]]], index: int, label: str,
                 scale: float = 1.0) -> bool:
    curves = [c for c in curves if c]
    if not curves:
        return False
    epochs, mean, std = _mean_band(curves)
    ax.plot(epochs, mean * scale, marker="o", markersize=3, label=label, **style(index))
    if system.group is not None:
        ax.fill_between(epochs, (mean - std) * scale, (mean + std) * scale, alpha=0.2, linewidth=0,
                        color=style(index)["color"])
    return True


def _loss(pivot: Pivot) -> ReportFigure | None:
    fig = _new()
    ax = fig.add_subplot()
    drawn = False
    for i, system in enumerate(pivot.systems):
        curves = [list(pivot.runs[r].loss_by_epoch) for r in system.run_ids]
        drawn |= _plot_system(ax, system, curves, i, _legend(system))
    if not drawn:
        return None
    ax.set(xlabel="epoch", ylabel="training loss (mean over the epoch)", title="Training loss")
    _whole_epochs(ax)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ReportFigure("loss", "Training loss against epoch (a group: mean ± one std over its runs).", fig)


def _eer(pivot: Pivot) -> ReportFigure | None:
    fig = _new()
    ax = fig.add_subplot()
    lists = pivot.trial_lists
    drawn, index = False, 0
    for system in pivot.systems:
        for trials in lists:
            curves = [list(s.eer_by_epoch) for _, s in scored_of(pivot, system, trials)]
            label = _legend(system) + plain(f" — {trials}" if len(lists) > 1 else "")
            if _plot_system(ax, system, curves, index, label, scale=100.0):
                drawn, index = True, index + 1
    if not drawn:
        return None
    title = "Validation EER" + plain(f"\n{lists[0]}" if len(lists) == 1 else "")
    ax.set(xlabel="epoch", ylabel="EER (%)", title=title)
    _whole_epochs(ax)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ReportFigure("eer", "Equal error rate of each validated epoch (raw cosine scores).", fig)


def _whole_epochs(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _legend(system: System) -> str:
    return plain(f"{system.label} [{system.network}]" if system.network else system.label)


def plain(text: str) -> str:
    """``text`` as matplotlib shows it as it is: two ``$`` in a run's name are mathtext otherwise (and
    one it cannot parse fails the figure)."""
    return text.replace("$", r"\$")


def _scores(pivot: Pivot, system: System, trials: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(scores, is_target) of each run of ``system`` on ``trials`` whose score file can be read."""
    from engine.validation.det import read_trials

    for run, scored in scored_of(pivot, system, trials):
        path = scored.scores_path
        if not path or not Path(path).is_file():
            say(f"report: run {run.id}: no score file for {trials} ({path or 'none recorded'}): "
                "its DET curve and histogram are left out")
            continue
        try:
            scores, is_target = read_trials(Path(path))
        except (OSError, SpkembError) as e:
            say(f"report: run {run.id}: {path} cannot be read ({e}): left out")
            continue
        if is_target.all() or not is_target.any():
            say(f"report: run {run.id}: {path} holds one kind of trial only: left out")
            continue
        yield scores, is_target


def _det(pivot: Pivot, trials: str) -> ReportFigure | None:
    from engine.validation.det import det_curve, probit_ticks, thinned

    fig = _new(SIZE[0], SIZE[0])
    ax = fig.add_subplot()
    low, high, drawn = math.inf, -math.inf, False
    for i, system in enumerate(pivot.systems):
        curves = [det_curve(scores, is_target) for scores, is_target in _scores(pivot, system, trials)]
        eers = Stat.of([c.eer for c in curves], group=system.group is not None)
        for n, curve in enumerate(curves):
            x, y = curve.probit_fa(), curve.probit_miss()
            # a trial list of 580,000 trials has as many points: a print shows a thousand at most
            keep = thinned(x, y, cells=1000)
            x, y = x[keep], y[keep]
            label = f"{_legend(system)} (EER {eers.text(100.0)} %)" if n == 0 and eers is not None else None
            # a run compared alone is drawn over a group's runs: alone and in a group it is one curve twice
            grouped = system.group is not None
            ax.plot(x, y, label=label, linewidth=0.9 if grouped else 1.4, zorder=2 if grouped else 3, **style(i))
            low, high = min(low, float(x.min()), float(y.min())), max(high, float(x.max()), float(y.max()))
            drawn = True
    if not drawn:
        return None
    ax.plot([low, high], [low, high], color="0.6", linewidth=0.6, linestyle=":", label="EER line")
    positions, labels = probit_ticks(low, high)
    ax.set_xticks(positions, labels)
    ax.set_yticks(positions, labels)
    ax.set(xlim=(low, high), ylim=(low, high), xlabel="false-alarm rate (%)", ylabel="miss rate (%)",
           title=plain(f"DET curves\n{trials}"), aspect="equal")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="lower left")  # under every curve: the corner no DET curve reaches
    return ReportFigure(f"det-{safe_stem(trials)}",
                        f"DET curves on {trials} (normal-deviate axes; each run of a group in its colour).", fig)


def _histograms(pivot: Pivot, trials: str) -> ReportFigure | None:
    from engine.validation.det import common_edges, score_histograms

    pooled = []
    for system in pivot.systems:
        sets = list(_scores(pivot, system, trials))
        if sets:
            pooled.append((system, np.concatenate([s for s, _ in sets]), np.concatenate([t for _, t in sets])))
    if not pooled:
        return None
    edges = common_edges([scores for _, scores, _ in pooled])
    columns = min(len(pooled), 2)
    rows = math.ceil(len(pooled) / columns)
    fig = _new(SIZE[0] if columns == 2 else SIZE[0] * 0.75, 2.6 * rows)
    axes = fig.subplots(rows, columns, sharex=True, squeeze=False)
    for ax in axes.flat[len(pooled):]:
        ax.set_visible(False)
    for ax, (system, scores, is_target) in zip(axes.flat, pooled, strict=False):
        hist = score_histograms(scores, is_target, edges)
        width = float(edges[1] - edges[0])
        ax.bar(hist.centres, hist.nontarget, width=width, alpha=0.6, color=NONTARGET_COLOUR, label="non-target")
        ax.bar(hist.centres, hist.target, width=width, alpha=0.6, color=TARGET_COLOUR, label="target")
        ax.set_title(_legend(system), fontsize="small")
        ax.set(xlabel="cosine score", ylabel="fraction of trials")
        ax.legend(fontsize="x-small")
    fig.suptitle(plain(f"Score distributions\n{trials}"))
    return ReportFigure(f"scores-{safe_stem(trials)}",
                        f"Target and non-target score histograms on {trials} (a group's runs pooled).", fig)
