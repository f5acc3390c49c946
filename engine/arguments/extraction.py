"""The options of the commands on a chosen checkpoint's network: ``apply``, ``export``, ``diarize``."""

from __future__ import annotations

import argparse

from engine.arguments.shared import db_options, trust_option
from engine.arguments.values import MAX_BATCH, checkpoint_name, device_name, number, whole
from engine.layout import APPLY, EXTRACTION_DIR_SHAPE, PARAMS
from engine.requests import MIN_STEP


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


def add_apply(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("apply", help="sliding-window embeddings of every file of a protocol",
                       description="Extract embeddings with the best (or a chosen) epoch into "
                                   f"{EXTRACTION_DIR_SHAPE}/{{uri}}.npy; a path or step other than the "
                                   f"defaults is named in the folder ({APPLY}/EPOCH-shared-step0.5/).")
    p.add_argument("--step", type=number(MIN_STEP, 100, "a fraction of the window"), default=0.1,
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
    p.add_argument("--device", type=device_name, default=None, metavar="D", help="cpu, cuda or cuda:N")
    p.add_argument("--batch", type=whole(1, MAX_BATCH, "a number of windows"), default=128, metavar="B",
                   help="windows per batch (default: 128)")
    p.add_argument("--diarize", action="store_true",
                   help="then run the diarization check (as `spkemb-engine diarize`) on the extracted subset")
    _der_options(p)
    trust_option(p)
    db_options(p)
    p.add_argument("val_dir", metavar="VAL_DIR", help=f"validation directory holding {PARAMS}")
    p.add_argument("protocol", metavar="PROTOCOL", help="protocol whose files to embed")


def add_export(sub: argparse._SubParsersAction) -> None:
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
    trust_option(p)
    db_options(p, database=False)
    p.add_argument("val_dir", metavar="VAL_DIR", help=f"validation directory holding {PARAMS}")


def add_diarize(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("diarize", help="diarization check of an extraction: RTTMs and DER",
                       description="Cluster each file's window embeddings (oracle speech regions, "
                                   "Ward-linkage clustering of unit-length embeddings, i.e. in cosine geometry), "
                                   "write {uri}.rttm beside the .npy files and print the diarization error rate "
                                   "(pyannote.metrics).")
    p.add_argument("--subset", default="test", help="subset to score (default: test)")
    _der_options(p)
    db_options(p)
    p.add_argument("extraction", metavar="EXTRACTION_DIR",
                   help=f"{EXTRACTION_DIR_SHAPE} (or EPOCH-shared-step0.5, ...), written by apply")
    p.add_argument("protocol", metavar="PROTOCOL", help="speaker diarization protocol with reference RTTMs")
