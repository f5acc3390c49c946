"""The options of ``sweep`` (many training runs from one config) and of ``queue``, which starts them."""

from __future__ import annotations

import argparse

from engine.arguments.shared import db_options
from engine.arguments.values import MAX_EPOCH, number, slurm_name, slurm_time, sweep_name, whole
from engine.layout import CONFIG, SWEEP_SCRIPT
from engine.requests.training import SLURM_TIME


def add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="many training runs from one config: a grid, a random sample or an Optuna study",
                       description=f"Write one experiment folder per trial (its {CONFIG}: the base config with the "
                                   "trial's values), record the sweep and its trials as queued runs of one group, "
                                   "and start the queue that trains them on --slots, validation beside each; "
                                   "trials that validate worse than the others are pruned.")
    p.add_argument("--set", action="append", default=None, metavar="KEY=V1,V2",
                   help="a config key and its values (repeatable: the grid is every combination), "
                        "e.g. task.params.margin=0.1,0.2")
    p.add_argument("--seeds", type=whole(1, 1000, "a number of seeds"), default=1, metavar="S",
                   help="train each combination with seeds 0 .. S-1 (default: 1)")
    p.add_argument("--random", type=whole(1, 100_000, "a number of trials"), default=None, metavar="N",
                   help="N combinations drawn from the grid instead of all of them")
    p.add_argument("--optuna", type=whole(1, 100_000, "a number of trials"), default=None, metavar="N",
                   help="an Optuna study (TPE) of N trials over --space instead of a grid")
    p.add_argument("--space", default=None, metavar="FILE",
                   help="with --optuna: YAML, each key with {low, high[, log]} or {choices: [...]}")
    p.add_argument("--slots", default=None, metavar="SLOTS",
                   help="where trials run at once: cpu*2, cuda:0,cuda:1, cuda:0*2 (default: every GPU nvidia-smi "
                        "lists here, else cpu); with --sbatch, "
                        "their number is how many array tasks run at once (each task trains on one GPU of its node)")
    p.add_argument("--epochs", type=whole(1, MAX_EPOCH, "the epoch to train up to"), default=None, metavar="E",
                   help="train each trial up to epoch E (train --to; default: train's)")
    p.add_argument("--name", default=None, type=sweep_name, metavar="NAME",
                   help="the sweep's name and its trials' group (default: BASE-sweepN)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="the sweep's folder (default: the base experiment's sweeps/NAME)")
    p.add_argument("--subset", default="train", help="protocol subset to train on (default: train)")
    p.add_argument("--val-subset", default="development",
                   help="subset validated beside each trial (default: development)")
    p.add_argument("--every", type=whole(1, MAX_EPOCH, "a number of epochs"), default=1, metavar="N",
                   help="validate every N epochs (default: 1)")
    p.add_argument("--no-validate", action="store_true",
                   help="no validation beside the trials (and so no pruning)")
    p.add_argument("--prune", default="median", choices=["median", "halving", "none"],
                   help="stop a trial whose validated EER is worse than the median of the others at the same "
                        "epoch (default), Optuna's successive halving (--optuna only), or never")
    p.add_argument("--prune-after", type=whole(0, MAX_EPOCH, "an epoch"), default=1, metavar="E",
                   help="compare validated epochs from E on (default: 1; epoch 0, the untrained network, never)")
    p.add_argument("--parallel", type=whole(0, 256, "a number of loader processes"), default=2, metavar="N",
                   help="data loading worker processes of each trial (default: 2)")
    p.add_argument("--no-queue", action="store_true",
                   help="record the trials as queued without starting the queue process")
    p.add_argument("--sbatch", action="store_true",
                   help=f"write one SLURM array job (SWEEP_DIR/{SWEEP_SCRIPT}) running the trials under srun torchrun, "
                        "and submit it when sbatch is on PATH")
    p.add_argument("--time", type=slurm_time, default=None,
                   help="with --sbatch: each task's time limit, MINUTES, HH:MM:SS, D-HH:MM:SS ... "
                        f"(default: {SLURM_TIME})")
    p.add_argument("--partition", type=slurm_name("a SLURM partition"), default=None,
                   help="with --sbatch: the SLURM partition")
    db_options(p)
    p.add_argument("base_config", metavar="BASE_CONFIG", help=f"the base {CONFIG} (or an experiment folder)")
    p.add_argument("protocol", metavar="PROTOCOL", help="pyannote.database protocol to train and validate on")


def add_queue(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("queue", help="start queued runs when a slot is free (one queue per runs database)",
                       description="Start the database's queued runs on free slots, each with its device and "
                                   "CUDA_VISIBLE_DEVICES set and its validation beside it; prune sweep trials; "
                                   "adopt the runs a previous queue started. Exits when nothing is queued or "
                                   "running for --idle-exit seconds.")
    p.add_argument("--slots", default=None, metavar="SLOTS",
                   help="cpu*2, cuda:0,cuda:1, cuda:0*2 ... (default: every GPU nvidia-smi lists here, else cpu)")
    p.add_argument("--poll", type=number(0, 3600, "seconds between looks", above=True), default=2.0,
                   metavar="SECONDS", help="seconds between looks at the queue (default: 2)")
    p.add_argument("--idle-exit", type=number(0, 10**7, "seconds"), default=60.0, metavar="SECONDS",
                   help="exit after this long with nothing queued or running (default: 60)")
    p.add_argument("--detach", action="store_true",
                   help="run in the background, in a session of its own (log: DB-queue.log), and return")
    p.add_argument("--stop", action="store_true",
                   help="stop the running queue (SIGTERM); the runs it started go on")
    p.add_argument("--cancel", type=whole(1, 2**63 - 1, "a run id"), nargs="+", default=(), metavar="RUN_ID",
                   help="take these queued runs off the queue (recorded stopped) and return")
    p.add_argument("--cancel-sweep", default=None, metavar="NAME",
                   help="end sweep NAME: it makes no more trials (an Optuna sweep asks for none), and its queued "
                        "runs are taken off the queue; its running trials go on (stop them with x in the TUI)")
    db_options(p, database=False)
