"""What Compare weighs: the compared runs as systems (one run, or the runs of a group: its seeds), the
picked epoch of each run for the DET view, and the panel that says whether the first two systems differ
for real (a paired bootstrap of their score files)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.widgets import Static

from app.data.reader import RunCurves
from app.screens.host import SpkembScreen
from app.views.plain import safe
from engine.compare.significance import compare_groups
from engine.errors import SpkembError
from engine.layout import ValidationDir

if TYPE_CHECKING:
    from app.screens.det import DetSource


@dataclass(frozen=True)
class System:
    """What Compare weighs against another: one run, or the runs of a group (its seeds)."""

    label: str
    #: the score file of the picked epoch of each of its runs
    score_files: list[Path]


def systems(runs: list[RunCurves]) -> list[System]:
    """The compared runs as systems, in their order: the runs of one group together, each other run
    alone; runs with no validated epoch left out."""
    by_key: dict[str, list[tuple[RunCurves, DetSource]]] = {}
    for r in runs:
        source = det_source(r)
        if source is not None:
            by_key.setdefault(f"group {r.run.run_group}" if r.run.run_group else run_label(r), []).append((r, source))
    out = []
    for key, members in by_key.items():
        label = f"{key} ({len(members)} seed{'s' if len(members) != 1 else ''})" if key.startswith("group ") else key
        if len(members) == 1 and not key.startswith("group "):
            label = members[0][1].label
        out.append(System(label, [ValidationDir(Path(s.val_dir)).score_file(s.name) for _, s in members]))
    return out


def run_label(read: RunCurves) -> str:
    """``#3 aam (ResNet34)``: a run's legend and column label, naming the network it trained."""
    run = read.run
    label = f"#{run.id} {run.name or ''}".strip()
    return f"{label} ({read.network})" if read.network else label


def det_source(read: RunCurves) -> DetSource | None:
    """The picked epoch of one compared run (else its lowest-EER one) and the VAL_DIR that scored it."""
    from app.screens.det import DetSource

    out_dirs = {v.id: v.out_dir for v in read.validators if v.out_dir}
    picked = [(v, v.best_epoch) for v in read.validators if v.id in out_dirs and v.best_epoch is not None]
    label = run_label(read)
    if picked:
        best, epoch = min(picked, key=lambda p: p[0].best_eer if p[0].best_eer is not None else 1.0)
        return DetSource(f"{label} @{epoch}", out_dirs[best.id], int(epoch))
    # the database's validations always have an epoch (NOT NULL)
    scored = [(v, v.epoch) for v in read.validations
              if v.eer is not None and v.epoch is not None and v.run_id in out_dirs]
    if not scored:
        return None
    row, epoch = min(scored, key=lambda p: (p[0].eer, p[1]))
    return DetSource(f"{label} @{epoch}", out_dirs[row.run_id], int(epoch))


class SignificancePanel(SpkembScreen):
    """A screen with a ``#significance`` line that weighs the first two of its systems (Compare)."""

    def __init__(self) -> None:
        super().__init__()
        #: the two systems last weighed (their labels and score files)
        self._weighed: tuple = ()

    def _significance(self, found: list[System]) -> None:
        """Weigh the first two systems (again when a run picked another epoch meanwhile): at once when a
        score file is missing, else in a worker."""
        weighed = tuple((s.label, tuple(s.score_files)) for s in found[:2])
        if weighed == self._weighed:
            return
        self._weighed = weighed
        if len(found) == 1:  # the marked runs are one group's seeds: nothing to weigh them against
            self._say_significance([f"{safe(found[0].label)}: one system only — mark a run outside it (or the runs "
                                    "of another group) to weigh two"])
        if len(found) < 2:
            return
        a, b = found[:2]
        head = f"A = {safe(a.label)}, B = {safe(b.label)}"
        missing = next((p for p in a.score_files + b.score_files if not p.is_file()), None)
        if missing is not None:
            self._say_significance([f"{head}: no score file {safe(missing.name)} of a picked epoch to weigh them by "
                                    "(validate again)"])
            return
        self._say_significance([f"{head}: bootstrapping…"])
        self._bootstrap(a, b, head + (f"  (of {len(found)} systems, the first two)" if len(found) > 2 else ""))

    @work(thread=True, exclusive=True, group="significance")
    def _bootstrap(self, a: System, b: System, head: str) -> None:
        """The paired bootstrap of two systems, in words (seconds for 37,720 trials on an idle machine)."""
        try:
            differences = compare_groups(a.score_files, b.score_files)
        except SpkembError as e:
            self.app.call_from_thread(self._say_significance, [f"{head}: [red]{safe(str(e))}[/]"])
            return
        self.app.call_from_thread(self._say_significance, [head] + [safe(d.describe()) for d in differences])

    def _say_significance(self, lines: list[str]) -> None:
        self.query_one("#significance", Static).update("\n".join(lines))
