"""A forked run's lineage (``train --init-from``) as the run detail shows it: parent, epoch, config diff."""

from __future__ import annotations

from typing import Any

from app.views.plain import safe
from engine.config import config_diff
from engine.records import Run

#: config differences listed before "and N more"
MAX_DIFF_LINES = 8


def _value(value: Any) -> str:
    return "—" if value is None else safe(value)


def lineage_lines(train: Run, parent: Run | None, show: Any = str) -> list[str]:
    """Lines saying where a forked run started and how its config differs from its parent's.

    Parameters
    ----------
    train
        The training run (its config decoded).
    parent
        The run that wrote the checkpoint it started from, when the database knows it.
    show
        How a path is shown (the workspace's ``show``).
    """
    if not train.init_from:
        return []
    epoch = train.init_epoch
    where = f"epoch {epoch}" if epoch is not None else "a checkpoint"
    # the file's hash as the fork read it: whether the parent's checkpoint is still that one can be checked
    sha = f", sha256 {train.init_sha256[:12]}…" if train.init_sha256 else ""
    if parent is None:
        return [f"forked from {where} of a run this database does not hold: {show(train.init_from)}{sha}"]
    lines = [f"forked from [b]#{parent.id} {safe(parent.name)}[/b] {where} ({show(train.init_from)}{sha})"]
    mine, theirs = train.config, parent.config
    if not isinstance(mine, dict) or not isinstance(theirs, dict):
        return lines
    diff = config_diff(theirs, mine)
    if not diff:
        lines.append("  same config as the parent")
    for key, a, b in diff[:MAX_DIFF_LINES]:
        lines.append(f"  {safe(key)}: {_value(a)} → {_value(b)}")
    if len(diff) > MAX_DIFF_LINES:
        lines.append(f"  … and {len(diff) - MAX_DIFF_LINES} more differences")
    return lines
