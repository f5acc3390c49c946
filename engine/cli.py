"""``spkemb-engine``: the headless engine's command line.

The parser lives here; each command's work lives in the module that owns it and
is imported only when that command runs, so that ``runs`` or ``config check``
never pay for importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from engine.errors import SpkembError

#: command name -> "module:function" taking the parsed namespace, returning an exit code
HANDLERS: dict[str, str] = {
    "train": "engine.train:cmd_train",
    "validate": "engine.validate:cmd_validate",
    "apply": "engine.apply:cmd_apply",
    "pick": "engine.selection:cmd_pick",
    "runs": "engine.store.report:cmd_runs",
    "import": "engine.store.events:cmd_import",
    "demo-data": "engine.demo:cmd_demo_data",
    "demo-workspace": "engine.demo:cmd_demo_workspace",
    "config check": "engine.config:cmd_check",
    "model-summary": "engine.model.summary:cmd_model_summary",
    "sbatch": "engine.slurm:cmd_sbatch",
}


def _db_options(p: argparse.ArgumentParser, database: bool = True) -> None:
    p.add_argument("--db", metavar="FILE",
                   help="runs database (default: $SPKEMB_DB, else experiments/runs.db)")
    if database:
        p.add_argument("--database", metavar="FILE",
                       help="pyannote database.yml (default: $PYANNOTE_DATABASE_CONFIG, "
                            "else ./database.yml, else ~/.pyannote/database.yml)")


def _train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--subset", default="train", help="protocol subset to train on (default: train)")
    p.add_argument("--to", type=int, default=None, metavar="E",
                   help="train up to epoch E (default: 100, or the resumed run's target)")
    p.add_argument("--parallel", type=int, default=2, metavar="N",
                   help="data loading worker processes (default: 2; 0 loads in the main process)")
    p.add_argument("--device", default=None, metavar="D",
                   help="cpu, cuda or cuda:N (default: cuda if one is visible, else cpu)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the newest checkpoint in TRN_DIR")
    p.add_argument("--strict", action="store_true",
                   help="stop on the first unreadable file or too-short speaker instead of skipping it")
    p.add_argument("--log-every", type=float, default=2.0, metavar="SECONDS",
                   help="seconds between metric writes to the database (default: 2)")
    p.add_argument("--events", action="store_true",
                   help="write an event file in TRN_DIR instead of the database "
                        "(automatic when the database is on a network filesystem)")
    _db_options(p)
    p.add_argument("exp_dir", metavar="EXP_DIR", help="experiment directory holding config.yml")
    p.add_argument("protocol", metavar="PROTOCOL",
                   help="pyannote.database protocol, e.g. VoxCeleb.SpeakerVerification.VoxCeleb2")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spkemb-engine",
        description="Train, validate and apply SincTDNN speaker embeddings; every run is "
                    "recorded in a SQLite database.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="train a speaker embedding (TRN_DIR = EXP_DIR/train/PROTOCOL.SUBSET)",
                       description="Train the config's network on PROTOCOL's SUBSET files. "
                                   "Works under torchrun for DistributedDataParallel.")
    _train_options(p)
    p.add_argument("--reindex", action="store_true",
                   help="list and check the protocol's files again instead of loading the cached index "
                        "(kept in $SPKEMB_CACHE/index, default ~/.cache/spkemb/index)")

    p = sub.add_parser("validate", help="speaker-verification EER of each checkpoint, beside training",
                       description="Evaluate checkpoints of TRN_DIR by EER and minDCF on PROTOCOL's "
                                   "SUBSET trials, waiting for new ones while training runs.")
    p.add_argument("--subset", default="test", help="trial subset (default: test)")
    p.add_argument("--from", dest="from_epoch", type=int, default=None, metavar="E",
                   help="first epoch to evaluate (default: the first checkpoint)")
    p.add_argument("--to", type=int, default=None, metavar="E",
                   help="last epoch to evaluate (default: the training run's target)")
    p.add_argument("--every", type=int, default=1, metavar="N", help="evaluate every N epochs (default: 1)")
    p.add_argument("--chronological", action="store_true",
                   help="evaluate in epoch order (default: newest checkpoint first)")
    p.add_argument("--whole-file", action="store_true",
                   help="embed each trial file in one pass instead of averaging sliding windows")
    p.add_argument("--rescore", action="store_true",
                   help="embed every epoch again, even those VAL_DIR already holds scores for "
                        "(default: reuse them when made the same way, from the same checkpoint)")
    p.add_argument("--device", default=None, metavar="D", help="cpu, cuda or cuda:N")
    p.add_argument("--batch", type=int, default=64, metavar="B", help="windows per batch (default: 64)")
    p.add_argument("--poll", type=float, default=2.0, metavar="SECONDS",
                   help="seconds between looks for new checkpoints (default: 2)")
    _db_options(p)
    p.add_argument("trn_dir", metavar="TRN_DIR", help="training directory (EXP_DIR/train/PROTOCOL.SUBSET)")
    p.add_argument("protocol", metavar="PROTOCOL", help="speaker verification protocol with trials")

    p = sub.add_parser("apply", help="sliding-window embeddings of every file of a protocol",
                       description="Extract embeddings with the best (or a chosen) epoch into "
                                   "VAL_DIR/apply/EPOCH/{uri}.npy.")
    p.add_argument("--step", type=float, default=0.1, help="window step as a fraction of its duration (default: 0.1)")
    p.add_argument("--subset", default="test", help="subset to extract (default: test)")
    p.add_argument("--epoch", type=int, default=None, metavar="E",
                   help="epoch to use (default: params.yml's best epoch)")
    p.add_argument("--shared", action="store_true",
                   help="compute frame-level layers once per file and pool each window from running "
                        "sums (fast; approximate when the network normalises each window)")
    p.add_argument("--device", default=None, metavar="D", help="cpu, cuda or cuda:N")
    p.add_argument("--batch", type=int, default=128, metavar="B", help="windows per batch (default: 128)")
    _db_options(p)
    p.add_argument("val_dir", metavar="VAL_DIR", help="validation directory holding params.yml")
    p.add_argument("protocol", metavar="PROTOCOL", help="protocol whose files to embed")

    p = sub.add_parser("pick", help="choose the epoch params.yml points at",
                       description="Point VAL_DIR/params.yml at the lowest-EER epoch, or at --epoch.")
    p.add_argument("--epoch", type=int, default=None, metavar="E", help="a validated epoch (default: lowest EER)")
    _db_options(p, database=False)
    p.add_argument("val_dir", metavar="VAL_DIR")

    p = sub.add_parser("runs", help="list the runs of the database",
                       description="List runs (newest first) as a table, JSON or CSV.")
    p.add_argument("--status", default=None,
                   choices=["running", "indexing", "completed", "failed", "stopped", "lost"], help="only runs with this status")
    p.add_argument("--kind", default=None, choices=["train", "validate", "apply"], help="only runs of this kind")
    p.add_argument("--format", default="table", choices=["table", "json", "csv"], help="output format (default: table)")
    _db_options(p, database=False)

    p = sub.add_parser("import", help="ingest event files written on a network filesystem",
                       description="Bring the JSON-lines event files of runs that could not use the "
                                   "database (NFS, Lustre, GPFS, BeeGFS) into a local database.")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="event files, or directories searched for events.jsonl")
    _db_options(p, database=False)

    p = sub.add_parser("demo-data", help="synthesize a small corpus in the real datasets' layouts",
                       description="Write VoxCeleb-, MUSAN- and AMI-style synthetic data and its database.yml.")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--speakers", type=int, default=60, metavar="N",
                   help="number of speakers, two thirds for training (default: 60)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")

    p = sub.add_parser("demo-workspace", help="prepare the demo workspace that `make demo` opens",
                       description="Corpus, CPU-sized config.yml and runs.db in DIR.")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--speakers", type=int, default=60, metavar="N")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("config", help="config.yml tools")
    config_sub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    c = config_sub.add_parser("check", help="validate a config.yml and print it resolved",
                              description="Print the resolved config (defaults filled in), or name "
                                          "the offending key and line and exit 2.")
    c.add_argument("file", metavar="FILE")

    p = sub.add_parser("model-summary", help="layer table and parameter count of a config's network",
                       description="Print each layer's output shape for one `duration`-long chunk "
                                   "and its parameters, then `parameters: N`.")
    p.add_argument("config", metavar="CONFIG", help="config.yml, or an experiment directory")

    p = sub.add_parser("sbatch", help="write a SLURM batch script for `srun torchrun ... train`",
                       description="Write (or print) a SLURM batch script that trains under "
                                   "srun torchrun, requeued on preemption.")
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--gpus-per-node", type=int, default=1)
    p.add_argument("--cpus-per-task", type=int, default=8)
    p.add_argument("--time", default="2-00:00:00", help="SLURM time limit (default: 2-00:00:00)")
    p.add_argument("--partition", default=None)
    p.add_argument("--output", "-o", default=None, metavar="FILE", help="write the script here (default: stdout)")
    _train_options(p)
    return parser


def _handler_name(args: argparse.Namespace) -> str:
    if args.command == "config":
        return f"config {args.config_command}"
    return args.command


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module_name, func_name = HANDLERS[_handler_name(args)].split(":")
    try:
        handler = getattr(importlib.import_module(module_name), func_name)
        return int(handler(args) or 0)
    except SpkembError as e:
        print(f"spkemb-engine {_handler_name(args)}: error: {e}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:
        # `spkemb-engine runs | head`: the reader left; say nothing more
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"spkemb-engine {_handler_name(args)}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
