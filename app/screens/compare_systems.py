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
from engine.layout import CheckpointName, ValidationDir

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
    alone; runs with no validated epoch left out. Each is weighed on one trial list they all share."""
    trials = shared_trials(runs)
    by_key: dict[str, list[tuple[RunCurves, DetSource]]] = {}
    for r in runs:
        source = det_source(r, trials)
        if source is not None:
            by_key.setdefault(f"group {r.run.run_group}" if r.run.run_group else run_label(r), []).append((r, source))
    out = []
    for key, members in by_key.items():
        label = f"{key} ({len(members)} seed{'s' if len(members) != 1 else ''})" if key.startswith("group ") else key
        if len(members) == 1 and not key.startswith("group "):
            label = members[0][1].label
        out.append(System(label, [ValidationDir(Path(s.val_dir)).score_file(s.name) for _, s in members]))
    return out


def shared_trials(runs: list[RunCurves]) -> str | None:
    """The trial list (``PROTOCOL.SUBSET``) every compared run was validated on: the first run's newest
    one where the others have it too, else the first by name; None where they share none."""
    lists = [[f"{v.protocol}.{v.subset}" for v in sorted(r.validators, key=lambda v: -v.id) if v.out_dir]
             for r in runs]
    lists = [found for found in lists if found]
    if not lists:
        return None
    common = set(lists[0]).intersection(*lists[1:])
    return lists[0][0] if lists[0][0] in common else min(common, default=None)


def run_label(read: RunCurves) -> str:
    """``#3 aam (ResNet34)``: a run's legend and column label, naming the network it trained."""
    run = read.run
    label = f"#{run.id} {run.name or ''}".strip()
    return f"{label} ({read.network})" if read.network else label


def det_source(read: RunCurves, trials: str | None = None) -> DetSource | None:
    """The checkpoint one compared run shows on a trial list (default: any), as the report shows it.

    The newest VAL_DIR of the list that scored something speaks for the run, at the folder's pick (the
    newest of its validate runs that picked an epoch or averaged weights: ``params.yml``), else at the
    lowest EER any validate run of the folder scored (for a checkpoint scored twice, the newest).
    """
    from app.screens.det import DetSource

    label = run_label(read)
    newest_first = sorted((v for v in read.validators if v.out_dir
                           and (trials is None or f"{v.protocol}.{v.subset}" == trials)), key=lambda v: -v.id)
    for out_dir in dict.fromkeys(v.out_dir for v in newest_first):
        folder = [v for v in newest_first if v.out_dir == out_dir]
        for v in folder:
            if v.best_epoch is not None:
                name: CheckpointName = v.best_checkpoint or v.best_epoch
                return DetSource(f"{label} @{name}", str(out_dir), name)
        ids = {v.id for v in folder}
        # as the report falls back: the lowest EER of the folder's checkpoints, averaged weights included
        latest = {v.checkpoint: v for v in sorted(read.validations, key=lambda v: v.run_id)
                  if v.run_id in ids and v.eer is not None and v.epoch is not None}
        if latest:
            row = min(latest.values(), key=lambda v: (v.eer, v.epoch))
            return DetSource(f"{label} @{row.checkpoint}", str(out_dir), row.checkpoint)
    return None


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
