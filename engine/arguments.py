"""The ``spkemb-engine`` command line: one small function per command adds its options.

Option names are the fields of the command's request (``engine.requests``); ``engine.cli``
turns the parsed arguments into that request.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import NoReturn

from engine.layout import (
    APPLY,
    CHECKPOINT_SUFFIX,
    CONFIG,
    EVENTS,
    EXTRACTION_DIR_SHAPE,
    PARAMS,
    SWEEP_SCRIPT,
    TRN_DIR_SHAPE,
    WEIGHTS,
    checkpoint_label,
)
from engine.records.labels import check_label

#: the largest epoch number an option takes: far beyond any run, small enough for SQLite's integers
MAX_EPOCH = 1_000_000
#: the most windows in one embedding batch
MAX_BATCH = 65_536


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose bad input is one stderr line, ``PROG: error: ...``, and exit 2.

    argparse's own error prints the whole usage first; the engine's errors are one line
    (the TUI and logs show the last line), and ``--help`` still shows the usage.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def _get_values(self, action: argparse.Action, arg_strings: list[str]) -> object:
        # Python 3.11's argparse drops a value `--` (`--to=--`) and hands the option an empty
        # list instead of refusing it: an int option would reach the command as []
        if action.nargs is None and action.option_strings and arg_strings == ["--"]:
            self.error(f"argument {'/'.join(action.option_strings)}: expected one argument")
        return super()._get_values(action, arg_strings)


def whole(low: int, high: int, what: str) -> Callable[[str], int]:
    """An option's type: a whole number from ``low`` to ``high``; ``what`` says what it counts."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{_shown(text)} is not accepted: expected {what}, "
                                             f"a whole number from {low:,} to {high:,}")
        return value

    parse.__name__ = "whole number"
    return parse


def number(low: float, high: float, what: str, *, above: bool = False) -> Callable[[str], float]:
    """An option's type: a finite number from ``low`` (exclusive when ``above``) to ``high``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and (value > low if above else value >= low) and value <= high):
            bound = f"above {low:g}" if above else f"from {low:g}"
            raise argparse.ArgumentTypeError(f"{_shown(text)} is not accepted: expected {what}, "
                                             f"a number {bound} to {high:g}")
        return value

    parse.__name__ = "number"
    return parse


def label(what: str) -> Callable[[str], str]:
    """A group's or a tag's word (``engine.records.labels.check_label``)."""
    def parse(text: str) -> str:
        try:
            return check_label(text, what)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return parse


def _shown(text: str) -> str:
    """The value as typed, cut short if huge, on one line."""
    text = text if len(text) <= 40 else text[:37] + "..."
    return repr(text) if not text.strip() or not text.isprintable() else text



def checkpoint_name(text: str) -> int | str:
    """``--epoch``: an epoch number, or averaged weights by name (avg-lastN, avg-topK)."""
    from engine.layout import parse_checkpoint_name

    name = parse_checkpoint_name(text)
    if name is None:
        raise argparse.ArgumentTypeError(f"{text!r} is neither an epoch number nor averaged weights "
                                         "(avg-lastN, avg-topK)")
    return name


def _db_options(p: argparse.ArgumentParser, database: bool = True) -> None:
    p.add_argument("--db", metavar="FILE",
                   help="runs database (default: $SPKEMB_DB, else ./runs.db when it exists, "
                        "else experiments/runs.db)")
    if database:
        p.add_argument("--database", metavar="FILE",
                       help="pyannote database.yml (default: $PYANNOTE_DATABASE_CONFIG, "
                            "else ./database.yml, else ~/.pyannote/database.yml)")


def _trust_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="use a checkpoint even if its file changed since the runs database recorded its "
                        "sha256 (default: refuse it)")


def _der_options(p: argparse.ArgumentParser) -> None:
    # checked with the other scoring settings (engine.extraction.diarization_check), which names the fix
    p.add_argument("--collar", type=float, default=0.0, metavar="SECONDS",
                   help="forgiveness collar, whole width around each reference boundary, as pyannote.metrics "
                        "counts it (default: 0, pyannote's full AMI practice; 0.5 = NIST md-eval's 0.25 s)")
    p.add_argument("--skip-overlap", action="store_true",
                   help="leave overlapped speech out of the score (default: scored)")
    p.add_argument("--num-speakers", default="oracle", choices=["oracle", "tuned"],
                   help="clusters per file: the reference's number of speakers (default), or a cosine "
                        "threshold tuned on the protocol's development subset (extracted into the same folder)")


def _train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--subset", default="train", help="protocol subset to train on (default: train)")
    p.add_argument("--to", type=whole(1, MAX_EPOCH, "the epoch to train up to"), default=None, metavar="E",
                   help="train up to epoch E (default: 100, or the resumed run's target)")
    p.add_argument("--parallel", type=whole(0, 256, "a number of loader processes"), default=2, metavar="N",
                   help="data loading worker processes (default: 2; 0 loads in the main process)")
    p.add_argument("--device", default=None, metavar="D",
                   help="cpu, cuda or cuda:N (default: cuda if one is visible, else cpu)")
    p.add_argument("--seed", type=whole(0, 2**32 - 1, "a random seed"), default=0,
                   help="random seed (default: 0)")
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
                   help="with --init-from: also reuse its classifier (the training classes must be the same)")
    _trust_option(p)
    _db_options(p)
    p.add_argument("exp_dir", metavar="EXP_DIR", help=f"experiment directory holding {CONFIG}")
    p.add_argument("protocol", metavar="PROTOCOL",
                   help="pyannote.database protocol, e.g. VoxCeleb.SpeakerVerification.VoxCeleb2")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="spkemb-engine",
        description="Train, validate and apply SincTDNN speaker embeddings; every run is "
                    "recorded in a SQLite database.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    _add_train(sub)
    _add_validate(sub)
    _add_apply(sub)
    _add_export(sub)
    _add_diarize(sub)
    _add_pick(sub)
    _add_average(sub)
    _add_runs(sub)
    _add_tag(sub)
    _add_report(sub)
    _add_import(sub)
    _add_demo_data(sub)
    _add_demo_workspace(sub)
    _add_config(sub)
    _add_model_summary(sub)
    _add_sbatch(sub)
    _add_sweep(sub)
    _add_queue(sub)
    return parser


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help=f"train a speaker embedding (TRN_DIR = {TRN_DIR_SHAPE})",
                       description="Train the config's network on PROTOCOL's SUBSET files. "
                                   "Works under torchrun for DistributedDataParallel.")
    _train_options(p)
    p.add_argument("--reindex", action="store_true",
                   help="list and check the protocol's files again instead of loading the cached index "
                        "(kept in $SPKEMB_CACHE/index, default ~/.cache/spkemb/index)")


def _add_validate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="speaker-verification EER of each checkpoint, beside training",
                       description="Evaluate checkpoints of TRN_DIR by EER and minDCF on PROTOCOL's "
                                   "SUBSET trials, waiting for new ones while training runs.")
    p.add_argument("--subset", default="test", help="trial subset (default: test)")
    p.add_argument("--from", dest="from_epoch", type=whole(0, MAX_EPOCH, "the first epoch to evaluate"),
                   default=None, metavar="E",
                   help="first epoch to evaluate (default: the first checkpoint)")
    p.add_argument("--to", type=whole(0, MAX_EPOCH, "the last epoch to evaluate"), default=None, metavar="E",
                   help="last epoch to evaluate (default: the training run's target)")
    p.add_argument("--every", type=whole(1, MAX_EPOCH, "a number of epochs"), default=1, metavar="N",
                   help="evaluate every N epochs (default: 1)")
    p.add_argument("--chronological", action="store_true",
                   help="evaluate in epoch order (default: newest checkpoint first)")
    p.add_argument("--whole-file", action="store_true",
                   help="embed each trial file in one pass instead of averaging sliding windows")
    p.add_argument("--rescore", action="store_true",
                   help="embed every epoch again, even those VAL_DIR already holds scores for "
                        "(default: reuse them when made the same way, from the same checkpoint)")
    p.add_argument("--score-norm", choices=["asnorm"], default=None,
                   help="also report figures after adaptive S-norm against the training speakers")
    p.add_argument("--cohort-size", type=whole(1, 100_000, "a number of cohort speakers"), default=300,
                   metavar="N",
                   help="AS-norm: the N cohort speakers most similar to each side (default: 300)")
    p.add_argument("--cohort-files", type=whole(1, 1000, "a number of files per speaker"), default=3,
                   metavar="F",
                   help="AS-norm: training files averaged per cohort speaker (default: 3)")
    p.add_argument("--calibration", default=None, metavar="SUBSET",
                   help="also calibrate the scores into log-likelihood ratios by logistic regression trained "
                        "on PROTOCOL's SUBSET trials (another list than --subset, e.g. development), and "
                        "report the actual DCF and Cllr (minCllr is always reported)")
    p.add_argument("--device", default=None, metavar="D", help="cpu, cuda or cuda:N")
    p.add_argument("--batch", type=whole(1, MAX_BATCH, "a number of windows"), default=64, metavar="B",
                   help="windows per batch (default: 64)")
    p.add_argument("--poll", type=number(0, 3600, "seconds between looks", above=True), default=2.0,
                   metavar="SECONDS",
                   help="seconds between looks for new checkpoints (default: 2)")
    _trust_option(p)
    _db_options(p)
    p.add_argument("trn_dir", metavar="TRN_DIR", help=f"training directory ({TRN_DIR_SHAPE})")
    p.add_argument("protocol", metavar="PROTOCOL", help="speaker verification protocol with trials")



def _add_apply(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("apply", help="sliding-window embeddings of every file of a protocol",
                       description="Extract embeddings with the best (or a chosen) epoch into "
                                   f"{EXTRACTION_DIR_SHAPE}/{{uri}}.npy; a path or step other than the "
                                   f"defaults is named in the folder ({APPLY}/EPOCH-shared-step0.5/).")
    p.add_argument("--step", type=number(0, 100, "a fraction of the window", above=True), default=0.1,
                   help="window step as a fraction of its duration (default: 0.1)")
    p.add_argument("--subset", default="test", help="subset to extract (default: test)")
    p.add_argument("--epoch", type=checkpoint_name, default=None, metavar="E",
                   help=f"epoch, or averaged weights such as avg-top5, to use (default: {PARAMS}'s)")
    p.add_argument("--shared", action="store_true",
                   help="compute frame-level layers once per file and pool each window from running "
                        "sums (fast; approximate when the network normalises each window); SincTDNN "
                        "only, refused for a filterbank backbone (ResNet34, ECAPA_TDNN, CAMPPlus), which "
                        "normalises and pools each window as a whole: leave --shared out to run every window "
                        "through it (the exact path)")
    p.add_argument("--runtime", default="torch", choices=["torch", "onnxruntime"],
                   help="torch (default), or onnxruntime running the network exported to ONNX")
    p.add_argument("--model", default=None, metavar="FILE",
                   help="with --runtime onnxruntime: a file from `spkemb-engine export` of the same "
                        "checkpoint (default: export it to a temporary file)")
    p.add_argument("--device", default=None, metavar="D", help="cpu, cuda or cuda:N")
    p.add_argument("--batch", type=whole(1, MAX_BATCH, "a number of windows"), default=128, metavar="B",
                   help="windows per batch (default: 128)")
    p.add_argument("--diarize", action="store_true",
                   help="then run the diarization check (as `spkemb-engine diarize`) on the extracted subset")
    _der_options(p)
    _trust_option(p)
    _db_options(p)
    p.add_argument("val_dir", metavar="VAL_DIR", help=f"validation directory holding {PARAMS}")
    p.add_argument("protocol", metavar="PROTOCOL", help="protocol whose files to embed")



def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="the embedding network of one checkpoint as ONNX or TorchScript",
                       description="Write the embedding network alone (variable-length input, weight norm "
                                   "folded, sinc filters fixed) with its config, sample rate and checkpoint "
                                   "sha256 in the file's metadata.")
    p.add_argument("--epoch", default=None, metavar="E",
                   help=f"an epoch number or avg-lastN/avg-topK (default: {PARAMS}'s epoch)")
    p.add_argument("--format", default=None, choices=["onnx", "torchscript"],
                   help="default: from FILE's suffix (.onnx; .pt or .ts for TorchScript)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write")
    p.add_argument("--force", action="store_true", help="replace FILE when it exists (default: refuse)")
    _trust_option(p)
    _db_options(p, database=False)
    p.add_argument("val_dir", metavar="VAL_DIR", help=f"validation directory holding {PARAMS}")



def _add_diarize(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("diarize", help="diarization check of an extraction: RTTMs and DER",
                       description="Cluster each file's window embeddings (oracle speech regions, "
                                   "Ward-linkage clustering of unit-length embeddings, i.e. in cosine geometry), "
                                   "write {uri}.rttm beside the .npy files and print the diarization error rate "
                                   "(pyannote.metrics).")
    p.add_argument("--subset", default="test", help="subset to score (default: test)")
    _der_options(p)
    _db_options(p)
    p.add_argument("extraction", metavar="EXTRACTION_DIR",
                   help=f"{EXTRACTION_DIR_SHAPE} (or EPOCH-shared-step0.5, ...), written by apply")
    p.add_argument("protocol", metavar="PROTOCOL", help="speaker diarization protocol with reference RTTMs")



def _add_pick(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pick", help=f"choose the epoch {PARAMS} points at",
                       description=f"Point VAL_DIR/{PARAMS} at the lowest-EER epoch, or at --epoch.")
    p.add_argument("--epoch", type=checkpoint_name, default=None, metavar="E",
                   help="a validated epoch, or validated averaged weights such as avg-top5 (default: the "
                        "epoch of lowest EER)")
    _db_options(p, database=False)
    p.add_argument("val_dir", metavar="VAL_DIR")



def _add_average(sub: argparse._SubParsersAction) -> None:
    averaged = f"avg-lastN{CHECKPOINT_SUFFIX}, avg-topK{CHECKPOINT_SUFFIX}"
    p = sub.add_parser("average", help=f"average the weights of several epochs ({WEIGHTS}/{averaged})",
                       description="Average the embedding network of the last N epochs of TRN_DIR, or of "
                                   "the K epochs of lowest validated EER of VAL_DIR, into "
                                   f"TRN_DIR/{WEIGHTS}/{averaged.replace(', ', ' or ')}; `validate` then scores it.")
    which = p.add_mutually_exclusive_group(required=True)
    # counts checked against the epochs there are (engine.validation.average)
    which.add_argument("--last", type=int, metavar="N", help="the last N epochs of TRN_DIR")
    which.add_argument("--top", type=int, metavar="K", help="the K epochs of lowest EER validated in VAL_DIR")
    _trust_option(p)
    _db_options(p, database=False)
    p.add_argument("dir", metavar="DIR", help="TRN_DIR (with --last) or VAL_DIR (with --top)")



def _add_runs(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list the runs of the database",
                       description="List runs (newest first) as a table, JSON or CSV.")
    p.add_argument("--status", default=None,
                   choices=["queued", "running", "indexing", "completed", "failed", "stopped", "lost"],
                   help="only runs with this status")
    p.add_argument("--kind", default=None, choices=["train", "validate", "apply"], help="only runs of this kind")
    p.add_argument("--group", default=None, type=label("group"), metavar="G", help="only runs of this group")
    p.add_argument("--tag", default=None, type=label("tag"), metavar="T", help="only runs with this tag")
    p.add_argument("--format", default="table", choices=["table", "json", "csv"], help="output format (default: table)")
    p.add_argument("--stale", action="store_true",
                   help=f"list the stale extractions instead: made from an epoch that {PARAMS} no longer points at")
    _db_options(p, database=False)



def _add_tag(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tag", help="set a run's group, tags and note",
                       description="Change how a run is compared: its group (a training run's validate runs "
                                   "follow it), its tags and its note. Without options, print them.")
    p.add_argument("--group", default=None, metavar="G",
                   help="the run's group (an empty string takes it out of its group)")
    p.add_argument("--add-tag", action="append", default=None, type=label("tag"), metavar="T",
                   help="add a tag (repeatable)")
    p.add_argument("--remove-tag", action="append", default=None, type=label("tag"), metavar="T",
                   help="remove a tag (repeatable)")
    p.add_argument("--note", default=None, metavar="TEXT", help="the run's note (an empty string clears it)")
    _db_options(p, database=False)
    p.add_argument("run_id", metavar="RUN_ID", type=whole(1, 2**63 - 1, "a run id"),
                   help="the run's id (`spkemb-engine runs` lists them)")


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write the comparison of runs and groups as tables, figures and one HTML page",
                       description="The pivot of the runs and groups named (systems x trial lists x score "
                                   "back-end: EER, minDCF, actual DCF, Cllr, DER) as LaTeX, CSV and Markdown; "
                                   "loss and EER against epoch, overlaid DET curves and score histograms as "
                                   "PNG, SVG and PDF; and report.html holding them all.")
    p.add_argument("--group", action="append", default=None, type=label("group"), metavar="G",
                   help="a group of runs, one system of mean ± std over its runs (repeatable)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="the folder to write into (made if missing; refused if not empty, unless --force)")
    p.add_argument("--format", action="append", default=None, metavar="F",
                   choices=["latex", "csv", "markdown", "png", "svg", "pdf", "html"],
                   help="write only this format: latex, csv, markdown, png, svg, pdf or html (repeatable; "
                        "default: all)")
    p.add_argument("--force", action="store_true",
                   help="write into a folder that is not empty: replace the report's files, keep the others")
    _db_options(p, database=False)
    p.add_argument("run_id", metavar="RUN_ID", nargs="*", type=whole(1, 2**63 - 1, "a run id"),
                   help="a training (or validate) run, one system each (`spkemb-engine runs` lists them)")


def _add_import(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="ingest event files written on a network filesystem",
                       description="Bring the JSON-lines event files of runs that could not use the "
                                   "database (NFS, Lustre, GPFS, BeeGFS) into a local database.")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help=f"event files, or directories searched for {EVENTS}")
    _db_options(p, database=False)



def _add_demo_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo-data", help="synthesize a small corpus in the real datasets' layouts",
                       description="Write VoxCeleb-, MUSAN- and AMI-style synthetic data and its database.yml.")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--speakers", type=whole(6, 10_000, "a number of speakers"), default=60, metavar="N",
                   help="number of speakers, two thirds for training (default: 60)")
    p.add_argument("--seed", type=whole(0, 2**32 - 1, "a random seed"), default=0, help="random seed (default: 0)")



def _add_demo_workspace(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo-workspace", help="prepare the demo workspace that `make demo` opens",
                       description=f"Corpus, CPU-sized {CONFIG} and runs.db in DIR.")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--speakers", type=whole(6, 10_000, "a number of speakers"), default=60, metavar="N")
    p.add_argument("--seed", type=whole(0, 2**32 - 1, "a random seed"), default=0)



def _add_config(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help=f"{CONFIG} tools")
    config_sub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    c = config_sub.add_parser("check", help=f"validate a {CONFIG} and print it resolved",
                              description="Print the resolved config (defaults filled in), or name "
                                          "the offending key and line and exit 2.")
    c.add_argument("file", metavar="FILE")
    c = config_sub.add_parser(
        "large-margin", help="the config of a large-margin fine-tuning fork (WeSpeaker's lm stage)",
        description="Print the config of WeSpeaker's large-margin fine-tuning stage as a fork of PARENT: its "
                    "config with the keys of engine/templates/large_margin.yml in place of its own (3 s chunks, "
                    "margin 0.5 without warm-up, ExponentialDecrease 1e-4 -> 2.5e-5, no speed perturbation), "
                    f"the network unchanged. Save it as NEW_EXP_DIR/{CONFIG} and train it with "
                    "`train --init-from CHECKPOINT [--init-classifier] --to 5 NEW_EXP_DIR PROTOCOL`.")
    c.add_argument("parent", metavar="PARENT",
                   help=f"the checkpoint to fork (TRN_DIR/{WEIGHTS}/{checkpoint_label(40)}{CHECKPOINT_SUFFIX}, "
                        f"avg-last10{CHECKPOINT_SUFFIX}; its own config), or a {CONFIG} or an experiment directory "
                        "holding one")



def _add_model_summary(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("model-summary", help="layer table and parameter count of a config's network",
                       description="Print each layer's output shape for one `duration`-long chunk "
                                   "and its parameters, then `parameters: N`.")
    p.add_argument("config", metavar="CONFIG", help=f"{CONFIG}, or an experiment directory")



def _add_sbatch(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sbatch", help="write a SLURM batch script for `srun torchrun ... train`",
                       description="Write (or print) a SLURM batch script that trains under "
                                   "srun torchrun, requeued on preemption.")
    p.add_argument("--nodes", type=whole(1, 100_000, "a number of nodes"), default=1)
    p.add_argument("--gpus-per-node", type=whole(1, 1024, "a number of GPUs"), default=1)
    p.add_argument("--cpus-per-task", type=whole(1, 100_000, "a number of CPUs"), default=8)
    p.add_argument("--time", default="2-00:00:00", help="SLURM time limit (default: 2-00:00:00)")
    p.add_argument("--partition", default=None)
    p.add_argument("--output", "-o", default=None, metavar="FILE", help="write the script here (default: stdout)")
    _train_options(p)



def _add_sweep(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--slots", default="cpu", metavar="SLOTS",
                   help="where trials run at once: cpu*2, cuda:0,cuda:1, cuda:0*2 (default: cpu); with --sbatch, "
                        "their number is how many array tasks run at once")
    p.add_argument("--epochs", type=whole(1, MAX_EPOCH, "the epoch to train up to"), default=None, metavar="E",
                   help="train each trial up to epoch E (train --to; default: train's)")
    p.add_argument("--name", default=None, type=label("sweep name"), metavar="NAME",
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
    p.add_argument("--time", default="2-00:00:00", help="with --sbatch: each task's time limit (default: 2-00:00:00)")
    p.add_argument("--partition", default=None, help="with --sbatch: the SLURM partition")
    _db_options(p)
    p.add_argument("base_config", metavar="BASE_CONFIG", help=f"the base {CONFIG} (or an experiment folder)")
    p.add_argument("protocol", metavar="PROTOCOL", help="pyannote.database protocol to train and validate on")


def _add_queue(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("queue", help="start queued runs when a slot is free (one queue per runs database)",
                       description="Start the database's queued runs on free slots, each with its device and "
                                   "CUDA_VISIBLE_DEVICES set and its validation beside it; prune sweep trials; "
                                   "adopt the runs a previous queue started. Exits when nothing is queued or "
                                   "running for --idle-exit seconds.")
    p.add_argument("--slots", default="cpu", metavar="SLOTS",
                   help="cpu*2, cuda:0,cuda:1, cuda:0*2 ... (default: cpu)")
    p.add_argument("--poll", type=number(0, 3600, "seconds between looks", above=True), default=2.0,
                   metavar="SECONDS", help="seconds between looks at the queue (default: 2)")
    p.add_argument("--idle-exit", type=number(0, 10**7, "seconds"), default=60.0, metavar="SECONDS",
                   help="exit after this long with nothing queued or running (default: 60)")
    p.add_argument("--detach", action="store_true",
                   help="run in the background, in a session of its own (log: DB-queue.log), and return")
    p.add_argument("--stop", action="store_true",
                   help="stop the running queue (SIGTERM); the runs it started go on")
    _db_options(p, database=False)
