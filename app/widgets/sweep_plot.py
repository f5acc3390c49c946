"""The best EER of each trial against each swept parameter, one panel per parameter (textual-plotext)."""

from __future__ import annotations

from app.data.sweeps import Sweep
from app.views.sweeps_view import value_text
from app.widgets.drawn_plot import DrawnPlot, finite


class SweepPlot(DrawnPlot):
    DEFAULT_CSS = """
    SweepPlot { height: 1fr; min-height: 10; border: round $primary-darken-2; }
    """
    TITLE = "best EER % against each swept parameter"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.sweep: Sweep | None = None

    def set_sweep(self, sweep: Sweep | None) -> None:
        self.sweep = sweep
        self.draw()

    def draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        sweep = self.sweep
        scored = [] if sweep is None else [t for t in sweep.trials if finite(t.best_eer)]
        if sweep is None or not scored or not sweep.keys:
            plt.title("no validated trial yet")
            self.refresh()
            return
        plt.subplots(1, len(sweep.keys))
        for i, key in enumerate(sweep.keys, start=1):
            plt.subplot(1, i)
            values = [t.params.get(key) for t in scored]
            eers = [100.0 * float(t.best_eer or 0.0) for t in scored]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                plt.scatter([float(v) for v in values], eers, marker="dot")  # type: ignore[arg-type]
            else:  # choices: one column each, in the order first met
                labels = list(dict.fromkeys(value_text(v) for v in values))
                plt.scatter([labels.index(value_text(v)) for v in values], eers, marker="dot")
                plt.xticks(list(range(len(labels))), labels)
            plt.xlabel(key.rsplit(".", 1)[-1])
        self.refresh()
