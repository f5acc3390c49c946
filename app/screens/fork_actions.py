"""The run detail's forks, from the epoch or averaged weights under the epoch table's cursor: ``f`` opens
the config form with the parent's config, ``l`` with it under the large-margin template."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app.data.forks import ForkPlan, checkpoint_key, large_margin_fork, plain_fork
from app.data.reader import RunDetail
from app.screens.host import SpkembScreen
from app.widgets.epoch_table import EpochTable
from engine.records import Checkpoint, Run

#: how a fork is planned from the workspace root, the parent run and the checkpoint
Planner = Callable[[Path, Run, Checkpoint], ForkPlan | str]


class ForkActions(SpkembScreen):
    """A screen with a run's epoch table whose rows can be forked (the run detail)."""

    #: the latest read of the run (None until the first one arrives)
    data: RunDetail | None

    def action_fork(self) -> None:
        """Open the config form prefilled with this run's config, to train a fork from the selected row."""
        self._fork(plain_fork)

    def action_fork_large_margin(self) -> None:
        """Open the config form prefilled for large-margin fine-tuning (WeSpeaker's lm stage) from the row."""
        self._fork(large_margin_fork)

    def _fork(self, plan: Planner) -> None:
        from app.screens.configs import ConfigsScreen

        train = None if self.data is None else self.data.train
        table = self.query_one(EpochTable)
        if not train or not table.row_count:
            self.app.notify("No epoch to fork from yet.", severity="warning")
            return
        key = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        found = [c for c in (self.data.checkpoints if self.data else []) if not c.partial and checkpoint_key(c) == key]
        if not found or not Path(found[-1].path).is_file():
            self.app.notify(f"{'Epoch ' if key.isdigit() else ''}{key} has no checkpoint file to start from.",
                            severity="warning")
            return
        fork = plan(self.spkemb.workspace.root, train, found[-1])
        if isinstance(fork, str):
            self.spkemb.error(fork)
            return
        self.app.push_screen(ConfigsScreen(fork=fork))
