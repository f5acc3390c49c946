"""``spkemb-engine sweep``: record a sweep's trials (queued runs of one group) and start the queue,
or write (and submit) one SLURM array job that runs them."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from engine.cli import to_argv
from engine.config import config_to_dict, load_config
from engine.config.overrides import set_keys
from engine.console import say
from engine.data.database_yml import pinned_database
from engine.data.listing import check_training_subset
from engine.errors import ConfigError, SpkembError
from engine.layout import CONFIG, SweepDir
from engine.requests import QueueRequest, SweepRequest
from engine.store import Store, default_db_path, open_store
from engine.sweeps.slots import check_gpus_here, default_slots, parse_slots, why_default
from engine.sweeps.space import grid_points, grid_size, parse_grid, probe_values, read_space
from engine.sweeps.trials import SweepPlan, add_trial
from engine.validation.trials import check_trial_subset


def _base_config(text: str) -> Path:
    path = Path(text).expanduser()
    if path.is_dir():
        path = path / CONFIG
    if not path.is_file():
        raise SpkembError(f"{path}: no such config file; give a {CONFIG} or an experiment folder holding one")
    return path.resolve()


def _name(request: SweepRequest, base: Path, store: Store) -> str:
    taken = {s["name"] for s in store.sweeps()}
    if request.name in taken:
        raise SpkembError(f"a sweep named {request.name} exists already in {store.path}: give another --name")
    if request.name:
        return request.name
    # the base folder's name made a group and one folder name (`runs --group` takes it as typed)
    stem = re.sub(r"[^\w.+:@=-]+", "-", base.parent.name).strip("-.")[:48] or "sweep"
    number = 1
    while f"{stem}-sweep{number}" in taken or SweepDir.beside(base.parent, f"{stem}-sweep{number}").root.exists():
        number += 1
    return f"{stem}-sweep{number}"


def cmd_sweep(args: SweepRequest) -> int:
    # the trials run from the queue's folder or a SLURM node: they read the database.yml found here
    args = dataclasses.replace(args, database=pinned_database(args.database))
    base_path = _base_config(args.base_config)
    base = config_to_dict(load_config(base_path))
    # every trial would fail at its start on a misspelt protocol or subset, one after another
    check_training_subset(args.protocol, args.subset, args.database)
    if not args.no_validate:
        check_trial_subset(args.protocol, args.val_subset, args.database, option="--val-subset")
    # an array's tasks each take a GPU of their node: this machine's GPUs say nothing of how many at once
    slots_text = args.slots or ("cpu" if args.sbatch else default_slots())
    slots = parse_slots(slots_text)  # a misspelt --slots is refused before the grid is read
    ranges = read_space(args.space) if args.space else []
    grid = parse_grid(args.set or ())
    points = [] if args.optuna is not None else grid_points(grid, args.seeds, args.random)
    for point in points:  # every trial's values checked before anything is written
        set_keys(base, point.params)
    for r in ranges:  # each searched key with the values of its range the study may draw
        for value in probe_values(r):
            try:
                set_keys(base, {r.key: value})
            except ConfigError as e:
                raise SpkembError(f"--space {args.space}: {r.key} may be drawn as {value!r}, which the config "
                                  f"refuses ({e}); give it another range or choices") from None
    if not (args.sbatch or args.no_queue):  # the queue starts here: on GPUs this machine has
        check_gpus_here(slots, slots_text)
    out = Path(args.out).expanduser().resolve() if args.out else None
    if args.sbatch:
        from engine.sweeps.array import array_header

        # a line break in the folder or the name would be a command in the script: refused before
        # anything is recorded (the name's default and the folder's are made of these two)
        array_header(args.name or base_path.parent.name, out or base_path.parent, args, trials=1,
                     parallel=len(slots))
    db = str(default_db_path(args.db).resolve())
    with open_store(db) as store:
        name = _name(args, base_path, store)
        folder = SweepDir(out) if out else SweepDir.beside(base_path.parent, name)
        if folder.root.exists() and any(folder.root.iterdir()):
            raise SpkembError(f"{folder.root} is not empty: give the sweep another --name or --out")
        method = "optuna" if args.optuna is not None else "random" if args.random is not None else "grid"
        space = {r.key: {"low": r.low, "high": r.high, "log": r.log, "choices": list(r.choices)} for r in ranges} \
            if ranges else grid
        planned = args.optuna if args.optuna is not None else len(points)
        prune = "none" if args.no_validate else args.prune
        sweep_id = store.create_sweep(name=name, method=method, base_config=str(base_path), sweep_dir=str(folder.root),
                                      protocol=args.protocol, subset=args.subset, space=space, seeds=args.seeds,
                                      epochs=args.epochs, planned=planned, slots=slots_text, prune=prune,
                                      prune_after=args.prune_after, run_group=name,
                                      command=to_argv(dataclasses.replace(args, name=name, db=db)))
        plan = SweepPlan(sweep_id=sweep_id, name=name, folder=folder, base=base, request=args, db=db,
                         queued=not args.sbatch)
        if args.optuna is not None:
            from engine.sweeps.study import first_trials, open_study

            # the queue asks for each later trial as a slot frees up; an array job needs them all now
            count = args.optuna if args.sbatch else min(args.optuna, len(slots))
            first_trials(store, plan, open_study(plan), count=count, ranges=ranges)
        else:
            for number, point in enumerate(points):
                add_trial(store, plan, number, point)
        trials = len(store.sweep_trials(sweep_id))
        say(f"sweep {name}: {planned} trial(s) ({method}) in {folder.root}, group {name}")
        if args.random is not None and args.random >= (size := grid_size(grid)):
            say(f"--random {args.random} draws from a grid of {size} combination(s): all of them run")
        if args.slots is None and not args.sbatch:
            say(why_default(slots_text))
        if args.sbatch:
            from engine.sweeps.array import submit_array

            submit_array(store, plan, parallel=len(slots))
            return 0
    if not args.no_queue:
        from engine.sweeps.queue import ensure_queue

        ensure_queue(Path(db), QueueRequest(slots=slots_text))
    elif trials:
        say(f"queued; start the queue with: spkemb-engine queue --detach --slots {slots_text} --db {db}")
    return 0
