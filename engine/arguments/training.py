"""The options of ``train`` and of ``sbatch``, which writes a script that runs it."""

from __future__ import annotations

import argparse

from engine.arguments.shared import db_options, trust_option
from engine.arguments.values import MAX_EPOCH, device_name, label, number, slurm_name, slurm_time, whole
from engine.layout import CHECKPOINT_SUFFIX, CONFIG, TRN_DIR_SHAPE, WEIGHTS
from engine.requests.training import SLURM_TIME


def train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--subset", default="train", help="protocol subset to train on (default: train)")
    p.add_argument("--to", type=whole(1, MAX_EPOCH, "the epoch to train up to"), default=None, metavar="E",
                   help="train up to epoch E (default: 100, or the resumed run's target)")
    p.add_argument("--parallel", type=whole(0, 256, "a number of loader processes"), default=2, metavar="N",
                   help="data loading worker processes (default: 2; 0 loads in the main process)")
    p.add_argument("--device", type=device_name, default=None, metavar="D",
                   help="cpu, cuda or cuda:N (default: cuda if one is visible, else cpu)")
    p.add_argument("--seed", type=whole(0, 2**32 - 1, "a random seed"), default=None,
                   help="random seed (default: 0; a resumed run goes on with its own)")
    p.add_argument("--group", default=None, type=label("group"), metavar="G",
                   help="the group of runs compared together, e.g. one setup's seeds (see `spkemb-engine tag`)")
    p.add_argument("--tag", action="append", default=None, type=label("tag"), metavar="T", dest="tag",
                   help="a tag of the run (repeatable)")
    p.add_argument("--note", default=None, metavar="TEXT", help="free text recorded with the run")
    p.add_argument("--resume", action="store_true",
                   help="continue from the newest checkpoint in TRN_DIR")
    p.add_argument("--strict", action="store_true",
                   help="stop on the first unreadable file or too-short speaker instead of skipping it")
    p.add_argument("--log-every", type=number(0, 86_400, "seconds between writes"), default=2.0,
                   metavar="SECONDS",
                   help="seconds between metric writes to the database (default: 2)")
    p.add_argument("--events", action="store_true",
                   help="write an event file in TRN_DIR instead of the database "
                        "(automatic when the database is on a network filesystem)")
    p.add_argument("--init-from", metavar="CHECKPOINT", default=None,
                   help=f"start from this checkpoint's network (e.g. TRN_DIR/{WEIGHTS}/0040{CHECKPOINT_SUFFIX} of "
                        "another experiment with the same architecture): a fine-tuning fork, recorded as such")
    p.add_argument("--init-classifier", action="store_true",
                   help="with --init-from: also reuse its classifier's rows (every class trained here must be one "
                        "it classified; it may have classified more)")
    trust_option(p)
    db_options(p)
    p.add_argument("exp_dir", metavar="EXP_DIR", help=f"experiment directory holding {CONFIG}")
    p.add_argument("protocol", metavar="PROTOCOL",
                   help="pyannote.database protocol, e.g. VoxCeleb.SpeakerVerification.VoxCeleb2")


def add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help=f"train a speaker embedding (TRN_DIR = {TRN_DIR_SHAPE})",
                       description="Train the config's network on PROTOCOL's SUBSET files. "
                                   "Works under torchrun for DistributedDataParallel.")
    train_options(p)
    p.add_argument("--reindex", action="store_true",
                   help="list and check the protocol's files again instead of loading the cached index "
                        "(kept in $SPKEMB_CACHE/index, default ~/.cache/spkemb/index)")


def add_sbatch(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sbatch", help="write a SLURM batch script for `srun torchrun ... train`",
                       description="Write (or print) a SLURM batch script that trains under "
                                   "srun torchrun, requeued on preemption.")
    p.add_argument("--nodes", type=whole(1, 100_000, "a number of nodes"), default=1)
    p.add_argument("--gpus-per-node", type=whole(1, 1024, "a number of GPUs"), default=1)
    p.add_argument("--cpus-per-task", type=whole(1, 100_000, "a number of CPUs"), default=8)
    p.add_argument("--time", type=slurm_time, default=SLURM_TIME,
                   help=f"SLURM time limit: MINUTES, HH:MM:SS, D-HH:MM:SS ... (default: {SLURM_TIME})")
    p.add_argument("--partition", type=slurm_name("a SLURM partition"), default=None,
                   help="the SLURM partition (or partitions, joined by commas)")
    p.add_argument("--output", "-o", default=None, metavar="FILE", help="write the script here (default: stdout)")
    train_options(p)
