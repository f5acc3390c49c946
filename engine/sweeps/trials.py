"""A trial: an experiment folder holding the base config with the trial's values, recorded (with its diff
against the base) as a sweep trial and, unless a SLURM array runs it, as a queued training run."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.atomic import atomic_write_text
from engine.cli import to_argv
from engine.config import config_diff, config_to_dict, dump_config
from engine.config.overrides import set_keys
from engine.errors import SpkembError
from engine.layout import ExperimentDir, SweepDir
from engine.requests import SweepRequest, TrainRequest, ValidateRequest
from engine.store import Store
from engine.store.sweeps import NewTrial
from engine.sweeps.space import Point


@dataclass(frozen=True)
class SweepPlan:
    """What every trial of one sweep shares: the base config, where trials go, how they run."""

    sweep_id: int
    name: str
    folder: SweepDir
    base: dict[str, Any]
    request: SweepRequest
    db: str
    #: False for a SLURM array's trials: no queued run, the array task records its run
    queued: bool = True


def train_request(plan: SweepPlan, exp_dir: Path, seed: int) -> TrainRequest:
    """The ``train`` of a trial (its device is the slot's, added when the queue starts it)."""
    r = plan.request
    return TrainRequest(exp_dir=str(exp_dir), protocol=r.protocol, subset=r.subset, to=r.epochs, parallel=r.parallel,
                        seed=seed, group=plan.name, db=plan.db, database=_absolute(r.database))


def validate_request(plan: SweepPlan, exp_dir: Path) -> ValidateRequest | None:
    """The validation started beside a trial (None with ``--no-validate``)."""
    r = plan.request
    if r.no_validate:
        return None
    trn = TrainRequest(exp_dir=str(exp_dir), protocol=r.protocol, subset=r.subset)
    folder = trn_dir(trn)
    return ValidateRequest(trn_dir=str(folder), protocol=r.protocol, subset=r.val_subset, every=r.every,
                           to=r.epochs, chronological=True, db=plan.db, database=_absolute(r.database))


def trn_dir(request: TrainRequest) -> Path:
    """The TRN_DIR a trial's ``train`` writes."""
    return ExperimentDir(Path(request.exp_dir)).training(request.protocol, request.subset).root


def _absolute(path: str | None) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())


def add_trial(store: Store, plan: SweepPlan, number: int, point: Point, *, optuna_trial: int | None = None) -> int:
    """Write trial ``number``'s folder and config.yml and record it; returns the trial id.

    Raises
    ------
    ConfigError
        A key the base config does not have, or a value its table refuses.
    """
    config = set_keys(plan.base, point.params)
    exp = plan.folder.trial(number)
    if exp.config.exists():
        raise SpkembError(f"{exp.root} exists already: give the sweep another --name or --out")
    exp.root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(exp.config, dump_config(config))
    resolved = config_to_dict(config)
    train = train_request(plan, exp.root, point.seed)
    validate = validate_request(plan, exp.root)
    trial = NewTrial(number=number, exp_dir=str(exp.root), out_dir=str(trn_dir(train)), params=point.params,
                     seed=point.seed, diff=config_diff(plan.base, resolved), config=resolved,
                     train=to_argv(train) if plan.queued else None,
                     validate=None if validate is None else to_argv(validate), target_epoch=plan.request.epochs,
                     optuna_trial=optuna_trial)
    try:
        return store.add_trial(plan.sweep_id, trial, run_group=plan.name, protocol=plan.request.protocol,
                               subset=plan.request.subset)
    except BaseException:
        # a trial not recorded leaves no folder: the next one of that number would find it in its way
        exp.config.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            exp.root.rmdir()
        raise


def plan_of(sweep: dict[str, Any]) -> SweepPlan:
    """The plan of a recorded sweep (its ``sweep`` command read back), to add trials to it later."""
    from engine.cli import parse_command
    from engine.config import load_config

    request = parse_command(sweep["command"])[1]
    assert isinstance(request, SweepRequest)
    base = config_to_dict(load_config(sweep["base_config"]))
    return SweepPlan(sweep_id=sweep["id"], name=sweep["name"], folder=SweepDir(Path(sweep["sweep_dir"])), base=base,
                     request=request, db=str(request.db), queued=not request.sbatch)
