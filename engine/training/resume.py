"""Where a training run starts, decided once before anything else runs: its :class:`StartPlan`.

A fresh run starts at epoch 0, or from another run's network (``--init-from``, a fork). A resumed
run (``--resume``) continues from the newest complete checkpoint of TRN_DIR (``resume.pt`` of a
stopped run, or the last epoch's file) at the position it holds: epoch, batch, step, what the
interrupted epoch had done so far, its seed, and the config it was trained with (a config.yml
edited since is refused: the run would go on as another, recorded as the first). Either way the
plan says up to which epoch the run trains and with which seed. Nothing else reads ``--resume``,
``--to``, ``--seed`` or ``--init-from``: the recorder and the trainer take the plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import Config, config_diff, config_to_dict
from engine.data.batches import Position
from engine.errors import TrainingError
from engine.layout import CONFIG, TrainingDir
from engine.process import checkpoints as ckpt
from engine.process.checkpoint_entries import check_resumable, checkpoint_config
from engine.requests import TrainRequest
from engine.training.init_from import InitFrom, load_init

#: the epoch a run trains up to when neither --to nor the resumed checkpoint says
DEFAULT_EPOCHS = 100
#: the seed of a new run trained without --seed
DEFAULT_SEED = 0


@dataclass(frozen=True)
class StartPlan:
    """Where a training run starts and how far it goes.

    ``checkpoint`` and ``saved`` are the checkpoint a resumed run continues from (None for a new
    run); ``position`` and ``step`` where it stands in the batch sequence; ``epoch_so_far`` the loss
    sum, steps and seconds of the interrupted epoch before that checkpoint (None at an epoch's end);
    ``target`` the epoch trained up to; ``seed`` the seed of its batches and initial weights (a resumed
    run's own); ``init`` the checkpoint a new fork starts from (its path, epoch and sha256 are the
    run's lineage).
    """

    target: int
    seed: int = DEFAULT_SEED
    checkpoint: Path | None = None
    saved: dict[str, Any] | None = None
    position: Position = Position(0, 0)
    step: int = 0
    epoch_so_far: dict[str, float] | None = None
    init: InitFrom | None = None

    @property
    def resumes(self) -> bool:
        """Whether the run continues from a checkpoint of its own (``--resume``)."""
        return self.checkpoint is not None


def plan_start(args: TrainRequest, trn: TrainingDir, config: Config, *,
               trust: ckpt.Trust | None = None) -> StartPlan:
    """The start of the run ``args`` asks for in ``trn``, its checkpoints loaded (checked by ``trust``).

    Raises
    ------
    TrainingError
        ``--init-classifier`` without ``--init-from``; checkpoints already there without
        ``--resume``; ``--resume`` with none; ``--to`` below where the resumed run stands; ``--seed``
        or a ``config`` other than the resumed run's; a fork whose network differs from ``config``'s.
    CheckpointError
        The checkpoint to continue or fork from cannot be read, or changed since its row recorded it.
    """
    if args.init_classifier and not args.init_from:
        raise TrainingError("--init-classifier needs --init-from CHECKPOINT (the run whose classifier to reuse)")
    if not args.resume:
        if trn.epochs():
            raise TrainingError(f"{trn.root} already holds checkpoints: add --resume to continue that run, "
                                "or train into another experiment directory")
        init = load_init(args.init_from, config=config, classifier=args.init_classifier,
                         trust=trust) if args.init_from else None
        return StartPlan(target=DEFAULT_EPOCHS if args.to is None else args.to, init=init,
                         seed=DEFAULT_SEED if args.seed is None else args.seed)
    # a resumed fork continues from its own checkpoints: its lineage is recorded already
    path = latest_checkpoint(trn)
    if path is None:
        raise TrainingError(f"--resume: {trn.root} has no checkpoint yet; train without --resume")
    # read onto the CPU: its RNG states must be CPU tensors; the weights and the optimizer's state
    # go to the training device as they are loaded into the network
    saved = ckpt.load_checkpoint(path, map_location="cpu", trust=trust)
    check_resumable(path, saved)
    position = Position(int(saved["epoch"]), int(saved["batch"]))
    if args.to is not None:
        # a target the run is past already would end it at once, recorded `completed`; --to the
        # epoch it completed is accepted (a resume that only records checkpoints left without rows)
        lowest = position.epoch + (1 if position.batch else 0)
        if args.to < lowest:
            raise TrainingError(f"--to {args.to} is below where the resumed run stands ({path}: epoch "
                                f"{position.epoch} completed, {position.batch} batches of the next): pass --to "
                                f"{lowest} or more")
    _check_same_config(path, saved, config)
    target = next(t for t in (args.to, saved.get("target"), DEFAULT_EPOCHS) if t is not None)
    return StartPlan(target=target, checkpoint=path, saved=saved, position=position, step=int(saved["step"]),
                     epoch_so_far=saved.get("epoch_so_far") if position.batch else None,
                     seed=_resumed_seed(path, saved, args.seed))


def _resumed_seed(path: Path, saved: dict[str, Any], asked: int | None) -> int:
    """The seed a resumed run goes on with: its checkpoint's (without --seed, a resume drew other batches
    than the run it continues, and its next checkpoint recorded seed 0)."""
    seed = saved.get("seed")
    if seed is None:  # a checkpoint that does not say: the one asked for
        return DEFAULT_SEED if asked is None else asked
    if asked is not None and asked != seed:
        raise TrainingError(f"--seed {asked}: {path} was trained with seed {seed}, and a resumed run goes on "
                            f"with its own; leave out --seed (or train a new run with --seed {asked})")
    return int(seed)


def _check_same_config(path: Path, saved: dict[str, Any], config: Config) -> None:
    """Refuse a config.yml edited since the checkpoint was written: the run would go on with other
    settings (a learning rate, a margin, chunks) while its record and its earlier epochs keep the old."""
    diff = config_diff(config_to_dict(checkpoint_config(path, saved["config"])), config_to_dict(config))
    if diff:
        key, there, here = diff[0]
        more = f" and {len(diff) - 1} more" if len(diff) > 1 else ""
        raise TrainingError(f"--resume: {CONFIG} changed since {path} was written ({key}: {there!r} there, "
                            f"{here!r} in {CONFIG}{more}); put it back to resume the run as it was trained, "
                            f"or start a new run from it in another experiment directory (train --init-from "
                            f"{path})")


def checkpoints_state(trn: TrainingDir) -> tuple[tuple[int, ...], str | None, int | None]:
    """What a start plan is chosen from: the epochs' checkpoints, and the newest one with its time."""
    latest = latest_checkpoint(trn)
    return tuple(trn.epochs()), None if latest is None else latest.name, \
        None if latest is None else latest.stat().st_mtime_ns


def latest_checkpoint(trn: TrainingDir) -> Path | None:
    """The checkpoint to resume from: the newer of ``resume.pt`` and the last epoch's file."""
    epochs = trn.epochs()
    last = trn.checkpoint(epochs[-1]) if epochs else None
    mid = trn.resume
    if not mid.is_file():
        return last
    if last is None:
        return mid
    # one run writes both in sequence, so the later file is the later state; comparing times
    # spares loading two checkpoints (tens of MB each) only to read their step
    return mid if mid.stat().st_mtime_ns > last.stat().st_mtime_ns else last
