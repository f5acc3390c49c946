"""The options of the commands on validated checkpoints: ``validate``, ``pick``, ``average``, ``clean``,
``verify``, ``embed``."""

from __future__ import annotations

import argparse

from engine.arguments.shared import db_options, trust_option
from engine.arguments.values import MAX_BATCH, MAX_EPOCH, checkpoint_name, device_name, number, whole
from engine.layout import CHECKPOINT_SUFFIX, PARAMS, RESUME, TRN_DIR_SHAPE, WEIGHTS
from engine.requests.validation import MIN_COHORT_SIZE


def add_validate(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--cohort-size", type=whole(MIN_COHORT_SIZE, 100_000, "a number of cohort speakers"), default=300,
                   metavar="N",
                   help="AS-norm: the N cohort speakers most similar to each side (default: 300)")
    p.add_argument("--cohort-files", type=whole(1, 1000, "a number of files per speaker"), default=3,
                   metavar="F",
                   help="AS-norm: training files averaged per cohort speaker (default: 3)")
    p.add_argument("--calibration", default=None, metavar="SUBSET",
                   help="also calibrate the scores into log-likelihood ratios by logistic regression trained "
                        "on PROTOCOL's SUBSET trials (another list than --subset, e.g. development), and "
                        "report the actual DCF and Cllr (minCllr is always reported)")
    p.add_argument("--device", type=device_name, default=None, metavar="D", help="cpu, cuda or cuda:N")
    p.add_argument("--batch", type=whole(1, MAX_BATCH, "a number of windows"), default=64, metavar="B",
                   help="windows per batch (default: 64)")
    p.add_argument("--poll", type=number(0, 3600, "seconds between looks", above=True), default=2.0,
                   metavar="SECONDS",
                   help="seconds between looks for new checkpoints (default: 2)")
    trust_option(p)
    db_options(p)
    p.add_argument("trn_dir", metavar="TRN_DIR", help=f"training directory ({TRN_DIR_SHAPE})")
    p.add_argument("protocol", metavar="PROTOCOL", help="speaker verification protocol with trials")


def add_pick(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pick", help=f"choose the epoch {PARAMS} points at",
                       description=f"Point VAL_DIR/{PARAMS} at the lowest-EER epoch, or at --epoch.")
    p.add_argument("--epoch", type=checkpoint_name, default=None, metavar="E",
                   help="a validated epoch, or validated averaged weights such as avg-top5 (default: the "
                        "epoch of lowest EER)")
    db_options(p, database=False)
    p.add_argument("val_dir", metavar="VAL_DIR")


def _recordings_options(p: argparse.ArgumentParser) -> None:
    """What verify and embed share: the checkpoint of VAL_DIR that embeds the recordings, and how."""
    p.add_argument("--epoch", type=checkpoint_name, default=None, metavar="E",
                   help=f"an epoch, or averaged weights such as avg-top5 (default: the one {PARAMS} names)")
    p.add_argument("--device", type=device_name, default=None, metavar="D", help="cpu, cuda or cuda:N")
    p.add_argument("--batch", type=whole(1, MAX_BATCH, "a number of windows"), default=64, metavar="B",
                   help="windows per batch (default: 64)")
    trust_option(p)
    db_options(p, database=False)
    p.add_argument("val_dir", metavar="VAL_DIR")


def add_verify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="score recordings of your own: the same speaker or not",
                       description="Embed ENROLMENT and each TEST recording (any audio soundfile reads, at any "
                                   "rate, channels averaged) with the checkpoint VAL_DIR points at, as validate "
                                   "embeds a trial's files, and print one line per TEST: enrolment, test, cosine "
                                   "score, and 'same' or 'different' at the score where that checkpoint's "
                                   "validation reached its EER ('-' where it has none). Writes nothing.")
    _recordings_options(p)
    p.add_argument("--score-norm", choices=["asnorm"], default=None,
                   help="AS-norm scores, with the cohort and threshold of VAL_DIR's validate --score-norm asnorm "
                        "(default: cosine scores at the raw EER threshold)")
    p.add_argument("enrolment", metavar="ENROLMENT", help="a recording of the claimed speaker")
    p.add_argument("tests", nargs="+", metavar="TEST", help="recordings to hold against it")


def add_embed(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed", help="embeddings of recordings of your own, into one .npz file or a Kaldi archive",
                       description="Embed each RECORDING (and each of --list's) with the checkpoint VAL_DIR points "
                                   "at, as validate embeds a trial's files, and write them to OUTPUT, a NumPy .npz "
                                   "file: 'embeddings' (one float32 row per recording, in order), 'paths' (the "
                                   "recordings as given) and 'metadata' (JSON: the checkpoint, its sha256, how the "
                                   "embeddings were made). np.load reads it without pickle. An OUTPUT ending in .ark "
                                   "is a Kaldi archive of float vectors keyed by the recordings as given, with its "
                                   ".scp index and the metadata (.json) beside it. Records no run.")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="the .npz file, or the .ark archive, to write (replaced if it exists; its folder must exist)")
    p.add_argument("--list", dest="list_file", default=None, metavar="FILE",
                   help="a file of recordings, one path a line (blank lines and lines starting with # "
                        "skipped; relative paths from the current folder)")
    _recordings_options(p)
    p.add_argument("recordings", nargs="*", metavar="RECORDING", help="audio files (any that soundfile reads)")


def add_average(sub: argparse._SubParsersAction) -> None:
    averaged = f"avg-lastN{CHECKPOINT_SUFFIX}, avg-topK{CHECKPOINT_SUFFIX}"
    p = sub.add_parser("average", help=f"average the weights of several epochs ({WEIGHTS}/{averaged})",
                       description="Average the embedding network of the last N epochs of TRN_DIR, or of "
                                   "the K epochs of lowest validated EER of VAL_DIR, into "
                                   f"TRN_DIR/{WEIGHTS}/{averaged.replace(', ', ' or ')}; `validate` then scores it.")
    which = p.add_mutually_exclusive_group(required=True)
    # counts checked against the epochs there are (engine.validation.average)
    which.add_argument("--last", type=int, metavar="N", help="the last N epochs of TRN_DIR")
    which.add_argument("--top", type=int, metavar="K", help="the K epochs of lowest EER validated in VAL_DIR")
    trust_option(p)
    db_options(p, database=False)
    p.add_argument("dir", metavar="DIR", help="TRN_DIR (with --last) or VAL_DIR (with --top)")


def add_clean(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("clean", help="delete the epoch checkpoints no result needs (lists them without --yes)",
                       description="List, then with --yes delete, the epoch checkpoints of each TRN_DIR that no "
                                   "result needs. Kept: the newest epochs, each VAL_DIR's best-validated epochs, "
                                   f"the epoch its {PARAMS} points at and every extracted one, each epoch a VAL_DIR "
                                   f"has not validated yet (all of them where none has), {RESUME} and averaged "
                                   "weights. Scores, validations and extractions stay. Refused while the run "
                                   "trains or is validated.")
    p.add_argument("--keep-last", type=whole(1, MAX_EPOCH, "a number of epochs"), default=10, metavar="N",
                   help="keep the newest N epochs (default: 10; train --resume continues from the newest)")
    p.add_argument("--keep-best", type=whole(1, MAX_EPOCH, "a number of epochs"), default=10, metavar="K",
                   help="keep the K epochs of lowest EER in each VAL_DIR (default: 10)")
    p.add_argument("--skipped", action="store_true",
                   help="also delete the epochs a VAL_DIR passed over: never validated, older than its newest "
                        "validated epoch (validate --every N skips them; default: kept)")
    p.add_argument("--yes", action="store_true", help="delete them (default: list them and the space they hold)")
    db_options(p, database=False)
    p.add_argument("dirs", nargs="+", metavar="DIR",
                   help=f"a TRN_DIR ({TRN_DIR_SHAPE}); an EXP_DIR: each of its training runs; a folder of "
                        "EXP_DIRs (a sweep's SWEEP_DIR, a workspace's experiments/): each of theirs")
