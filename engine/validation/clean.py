"""``spkemb-engine clean``: delete the epoch checkpoints that no result needs.

A training run writes a checkpoint at the end of every epoch (network, classifier and optimizer
state: tens to hundreds of MB at VoxCeleb's sizes), and a sweep of a hundred trials of a
hundred epochs fills a disk. ``clean`` keeps, in each TRN_DIR:

- the newest ``--keep-last N`` epochs (``train --resume`` continues from the newest; ``average --last``);
- in each of its VAL_DIRs, the ``--keep-best K`` epochs of lowest validated EER (``average --top``),
  the checkpoint its params.yml points at, and every checkpoint an extraction was made from;
- every epoch that one of its VAL_DIRs has not validated yet: a folder without a validation loses nothing.
  Those older than the VAL_DIR's newest validated epoch were passed over (``validate --every 5``, a
  validation stopped half-way): ``--skipped`` lets them go;
- ``resume.pt`` and averaged weights (``avg-last10.pt``), which are no epoch's.

Without ``--yes`` it lists what it would delete and the space that frees; with it, it deletes those
files while it holds TRN_DIR's training lock and each VAL_DIR's validation lock (refused while the run
trains or is validated) and forgets their rows in the runs database. Scores, params.yml, extractions
and every row of results stay: the table of epochs keeps each epoch's loss and EER. Torch-free.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.console import out, say
from engine.errors import SpkembError
from engine.layout import TRN_DIR_SHAPE, ExperimentDir, TrainingDir, ValidationDir
from engine.process import folder_lock
from engine.records import checkpoint_list
from engine.requests import CleanRequest
from engine.validation.params import read_params
from engine.validation.selection import recorded_results
from engine.validation.val_dir import given_trn_dir

#: why an epoch stays: what (``among the newest 10``, ``among the 10 best in``...) and, for what a VAL_DIR
#: needs, its folder's name
Reason = tuple[str, str]
#: an epoch a VAL_DIR has not validated and will not reach: older than its newest validated one
SKIPPED = "passed over in"


@dataclass(frozen=True)
class CleanPlan:
    """What ``clean`` keeps of one TRN_DIR's epoch checkpoints, and why, and what it deletes."""

    trn: TrainingDir
    #: epoch -> why it stays: ``among the newest N``, or a VAL_DIR's name with ``among the K best in``,
    #: ``picked in``, ``extracted in``, ``not validated in``, in the order found
    kept: dict[int, list[Reason]] = field(default_factory=dict)
    #: epoch -> the size of its file, in bytes
    deleted: dict[int, int] = field(default_factory=dict)
    #: the kept epochs that ``--skipped`` would delete (every VAL_DIR that keeps them passed them over)
    skippable: list[int] = field(default_factory=list)

    @property
    def freed(self) -> int:
        return sum(self.deleted.values())


def plan_clean(trn: TrainingDir, *, keep_last: int, keep_best: int, skipped: bool = False,
               store: Any = None) -> CleanPlan:
    """The plan for ``trn``: nothing is deleted where no VAL_DIR has validated it; with ``skipped``,
    the epochs that VAL_DIRs passed over are (``store``: the runs database to read validations from; the
    score files otherwise)."""
    # a folder that stands where a checkpoint would (weights/0021.pt/) is none: it neither goes nor counts
    # among the newest, where it would let the newest real checkpoint go
    sizes = {e: size for e in trn.epochs() if (size := _file_size(trn.checkpoint(e))) is not None}
    epochs = sorted(sizes)
    plan = CleanPlan(trn)
    vals = trn.validation_dirs()
    reasons: dict[int, list[Reason]] = {e: [] for e in epochs}
    for e in epochs[-keep_last:]:
        reasons[e].append((f"among the newest {keep_last}", ""))
    if not vals:
        for e in epochs:
            reasons[e].append(("not validated", ""))
    for val in vals:
        for e, why in _needed_by(val, epochs, keep_best, store):
            if e in reasons:  # a best, picked or extracted epoch whose file is gone already: nothing to keep
                reasons[e].append(why)
    for e in epochs:
        staying = [r for r in reasons[e] if not (skipped and r[0] == SKIPPED)]
        if staying:
            plan.kept[e] = staying
            if all(kind == SKIPPED for kind, _ in staying):
                plan.skippable.append(e)
        else:
            plan.deleted[e] = sizes[e]
    return plan


def _needed_by(val: ValidationDir, epochs: list[int], keep_best: int, store: Any) -> Iterator[tuple[int, Reason]]:
    """The epochs of ``epochs`` that ``val`` needs, each with why."""
    name = val.root.name
    results = [r for r in recorded_results(val, store) if r.checkpoint_name is None]
    validated = {int(r.checkpoint) for r in results}
    newest = max(validated, default=None)
    for e in epochs:
        if e not in validated:
            yield e, (SKIPPED if newest is not None and e < newest else "not validated in", name)
    ranked = sorted((r for r in results if r.eer is not None), key=lambda r: r.ranked())
    for r in ranked[:keep_best]:
        yield int(r.checkpoint), (f"among the {keep_best} best in", name)
    params = read_params(val)
    if params is not None and isinstance(params.checkpoint, int):
        yield params.checkpoint, ("picked in", name)
    for checkpoint in val.extracted():
        if isinstance(checkpoint, int):
            yield checkpoint, ("extracted in", name)


def _file_size(path: Path) -> int | None:
    """The size of a checkpoint that ``clean`` may delete: a file or a symbolic link (the link alone
    goes), not a folder or anything else that stands there."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode) else None


def training_dirs(path: str) -> list[TrainingDir]:
    """The TRN_DIRs ``path`` names: itself, each of an experiment folder's, or each of the experiment
    folders a folder holds (a sweep's trials, a workspace's ``experiments/``)."""
    root = Path(path)
    if not root.is_dir():
        raise SpkembError(f"{root} is not a directory: pass a TRN_DIR ({TRN_DIR_SHAPE}), an EXP_DIR or a folder "
                          "of EXP_DIRs")
    experiment = ExperimentDir(root)
    if experiment.config.is_file():
        return experiment.training_dirs()
    inside = [ExperimentDir(p) for p in sorted(root.iterdir()) if p.is_dir() and ExperimentDir(p).config.is_file()]
    if inside:
        return [trn for e in inside for trn in e.training_dirs()]
    return [given_trn_dir(root)]


def delete(plan: CleanPlan, store: Any) -> int:
    """Delete the plan's files and forget their rows (the caller holds the folder's locks); the bytes
    freed."""
    trn, freed = plan.trn, 0
    runs = store.find_runs(out_dir=trn.root, kind="train") if store is not None and not store.readonly else []
    for epoch in sorted(plan.deleted):
        path = trn.checkpoint(epoch)
        try:  # the file first: one that cannot be deleted keeps its row
            os.unlink(path)
            freed += plan.deleted[epoch]
        except FileNotFoundError:
            pass
        except OSError as e:
            raise SpkembError(f"{path} cannot be deleted ({e.strerror}): check the folder's permissions, then clean "
                              "again (the checkpoints deleted before it are gone)") from None
        for run in runs:
            store.remove_checkpoint(run["id"], path=path)
    return freed


def cmd_clean(args: CleanRequest) -> int:
    """``spkemb-engine clean [--keep-last N] [--keep-best K] [--yes] DIR...``: see the module docstring."""
    # an EXP_DIR and one of its TRN_DIRs named together: each run once
    trns = list(dict.fromkeys(TrainingDir(trn.root.resolve()) for path in args.dirs for trn in training_dirs(path)))
    total = 0
    with _store(args.db, write=args.yes) as store:
        for trn in trns:
            with _locked(trn) if args.yes else nullcontext():
                plan = plan_clean(trn, keep_last=args.keep_last, keep_best=args.keep_best, skipped=args.skipped,
                                  store=store)
                out(_summary(plan))
                total += delete(plan, store) if args.yes else plan.freed
    if not args.yes:
        out(f"nothing deleted: add --yes to delete them and free {_size(total)}" if total else "nothing to delete")
    else:
        out(f"freed {_size(total)}")
    return 0


@contextmanager
def _locked(trn: TrainingDir) -> Iterator[None]:
    """TRN_DIR's training lock and each of its VAL_DIRs' validation locks, held: refused while any runs."""
    with ExitStack() as stack:
        stack.enter_context(folder_lock.held(trn.root, trn.lock, folder_lock.CLEANING_TRAINING))
        for val in trn.validation_dirs():
            stack.enter_context(folder_lock.held(val.root, val.lock, folder_lock.CLEANING_VALIDATION))
        yield


def _summary(plan: CleanPlan) -> str:
    """A TRN_DIR's lines: what goes, and what stays and why (epochs kept for the same reasons together)."""
    head = f"{plan.trn.root}: "
    if not plan.kept and not plan.deleted:
        return head + "no epoch checkpoint"
    lines = [head + (f"delete {len(plan.deleted)} epoch checkpoint(s): {checkpoint_list(sorted(plan.deleted))} "
                     f"({_size(plan.freed)})" if plan.deleted else "nothing to delete")]
    by_reason: dict[str, list[int]] = {}
    for epoch, why in sorted(plan.kept.items()):
        by_reason.setdefault(_reasons(why), []).append(epoch)
    lines += [f"  keep {checkpoint_list(epochs)}: {why}" for why, epochs in by_reason.items()]
    if plan.skippable:
        lines.append(f"  ({len(plan.skippable)} kept only as passed over, e.g. by `validate --every N`: "
                     "--skipped deletes them too)")
    return "\n".join(lines)


def _reasons(why: list[Reason]) -> str:
    """``among the newest 10; among the 10 best in A, B; not validated in B``: each kind once, with the
    VAL_DIRs it holds for (an epoch kept as "newest" among ten may be the oldest of them)."""
    where: dict[str, list[str]] = {}
    for kind, name in why:
        where.setdefault(kind, []).extend([name] if name else [])
    return "; ".join(f"{kind} {', '.join(names)}" if names else kind for kind, names in where.items())


def _size(n: int) -> str:
    """``512 bytes``, ``3.4 MiB``, ``1.2 GiB``."""
    if n < 1024:
        return f"{n} bytes"
    value, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


def _store(db: str | None, *, write: bool) -> AbstractContextManager[Any]:
    """The runs database (read-only for a listing), None where there is none; on a network filesystem
    read-only, and the deleted checkpoints' rows stay there."""
    from engine.store import default_db_path, existing_store, is_network_fs

    path = default_db_path(db)
    if write and path.exists() and is_network_fs(path):
        say(f"clean: {path} is on a network filesystem: the deleted checkpoints' rows stay there")
        write = False
    return existing_store(path, readonly=not write)
