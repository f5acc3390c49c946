"""Committed checkpoints of a training directory, as a watcher beside training sees them.

The commit marker of a checkpoint is its record (docs/validation.md): the file is renamed into
place and fsynced before its row is inserted, so a reader that trusts rows never reads
half a file. Three sources, the first one that knows the training run wins:

1. the runs database: the newest ``train`` run whose ``out_dir`` is TRN_DIR, its
   ``checkpoints`` rows with ``partial = 0`` and its status;
2. ``TRN_DIR/events.jsonl`` (a training run on a network filesystem): its
   ``add_checkpoint`` and ``set_status`` records;
3. neither: the ``weights/{epoch:04d}.pt`` files whose size has not changed between two
   looks at least a second apart and whose last change is older than a second. Without
   a record, nobody says when training ends: the run counts as ended (see ``validate``).

Averaged weights (``weights/avg-top5.pt``, ``spkemb-engine average``) are listed apart, by name,
from the files: they are renamed into place whole, and their rows must never stand for an epoch.

torch-free.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.console import listed
from engine.layout import TrainingDir
from engine.records import Run
from engine.store.importing import read_events
from engine.store.runs import LIVE_STATUSES, Store

#: a checkpoint file must be this old (seconds) and of stable size to be trusted without a record
SETTLE_SECONDS = 1.0


@dataclass
class Snapshot:
    """What the watcher saw: complete checkpoints by epoch, whether training has ended."""

    checkpoints: dict[int, Path]
    ended: bool
    train_run: Run | None = None
    source: str = "files"
    #: checkpoint files seen but not trusted yet (no record, size not settled)
    pending: bool = False
    #: averaged weights by name (avg-top5 -> weights/avg-top5.pt)
    named: dict[str, Path] = field(default_factory=dict)

    def waiting(self, trn: TrainingDir) -> str:
        """The line a watcher says when it has scored everything there is and waits for more (an
        epoch of training can be minutes of silence)."""
        run = self.train_run
        if run is None:
            return f"validate: waiting for the next checkpoint in {trn.weights}"
        return (f"validate: waiting for the next checkpoint of training run #{run.id} ({run.status}, "
                f"epoch {run.epoch or 0} of {run.target_epoch})")


    def ending(self, trn: TrainingDir, *, scored: bool) -> list[str]:
        """The lines a watcher says as it ends: nothing scored, a training run that died, and an epoch's
        file that has no record (training killed between the file's rename and its row: never scored,
        as a file without a record may be half-written)."""
        lines = [] if scored else ["validate: no checkpoint to evaluate in range"]
        run = self.train_run
        if run is not None and run.status == "lost":
            lines.append(f"validate: training run #{run.id} is lost ({run.reason}): its checkpoints so far are "
                         "validated")
        # only the database's rows are the whole run's: an event file's records end at a resume
        unrecorded = [e for e in trn.epochs() if e not in self.checkpoints] \
            if self.ended and self.source == "database" else []
        if unrecorded:
            lines.append(f"validate: {listed(map(trn.checkpoint, unrecorded), shown=1)} not scored: no record "
                         "of training says it is whole (training ended as it wrote it?) — `spkemb-engine train "
                         "--resume` records it, then validate again")
        return lines


def modified_at(path: Path) -> float:
    """When ``path`` last changed (-1 once it is gone): averaged weights rewritten are scored again."""
    try:
        return path.stat().st_mtime
    except OSError:
        return -1.0


@dataclass
class CheckpointWatcher:
    """Look for committed end-of-epoch checkpoints of TRN_DIR (see module doc)."""

    trn: TrainingDir
    store: Store | None = None
    _sizes: dict[int, tuple[int, float]] = field(default_factory=dict)

    def train_run(self) -> Run | None:
        """The newest training run recorded in the database for this TRN_DIR."""
        return None if self.store is None else self.store.newest_run(out_dir=self.trn.root, kind="train")

    def poll(self) -> Snapshot:
        """Look once. The status is read before the checkpoints, so that "ended" implies that
        the checkpoints returned are all the run will ever write."""
        run = self.train_run()
        if run is not None and self.store is not None:
            ended = run.status not in LIVE_STATUSES
            ckpts = {c.epoch: Path(c.path) for c in self.store.checkpoint_records(run.id)
                     if not c.partial and not c.name}
            snapshot = Snapshot(ckpts, ended, run, "database")
        else:
            events = self.trn.events
            recorded = self._from_events(events) if events.is_file() else None
            if recorded is None:
                settled, pending = self._settled_files()
                recorded = Snapshot(settled, True, None, "files", pending)
            snapshot = recorded
        snapshot.named = {name: self.trn.checkpoint(name) for name in self.trn.named_checkpoints()}
        return snapshot

    def _from_events(self, path: Path) -> Snapshot | None:
        records = read_events(path)
        target = os.path.abspath(self.trn.root)
        uid = None
        for r in records:
            if (r["op"] == "create_run" and r["args"].get("kind") == "train"
                    and r["args"].get("out_dir") == target):
                uid = r["run"]
        if uid is None:
            return None
        ended, ckpts = False, {}
        for r in records:
            if r["run"] != uid:
                continue
            if r["op"] == "set_status":
                ended = r["args"]["status"] not in LIVE_STATUSES
            elif r["op"] == "add_checkpoint" and not r["args"].get("partial") and not r["args"].get("name"):
                ckpts[int(r["args"]["epoch"])] = Path(r["args"]["path"])
        return Snapshot(ckpts, ended, None, "events")

    def _settled_files(self) -> tuple[dict[int, Path], bool]:
        now, settled, pending = time.time(), {}, False
        for epoch, path in ((e, self.trn.checkpoint(e)) for e in self.trn.epochs()):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            seen = self._sizes.get(epoch)
            if seen is None or seen[0] != stat.st_size:
                self._sizes[epoch] = seen = (stat.st_size, now)
            if now - seen[1] >= SETTLE_SECONDS and now - stat.st_mtime >= SETTLE_SECONDS:
                settled[epoch] = path
            else:
                pending = True
        return settled, pending
