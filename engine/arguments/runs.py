"""The options of the commands on the runs database's records: ``runs``, ``tag``, ``report``, ``import``."""

from __future__ import annotations

import argparse

from engine.arguments.shared import db_options
from engine.arguments.values import label, whole
from engine.layout import EVENTS, PARAMS


def add_runs(sub: argparse._SubParsersAction) -> None:
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
    db_options(p, database=False)


def add_tag(sub: argparse._SubParsersAction) -> None:
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
    db_options(p, database=False)
    p.add_argument("run_id", metavar="RUN_ID", type=whole(1, 2**63 - 1, "a run id"),
                   help="the run's id (`spkemb-engine runs` lists them)")


def add_report(sub: argparse._SubParsersAction) -> None:
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
    db_options(p, database=False)
    p.add_argument("run_id", metavar="RUN_ID", nargs="*", type=whole(1, 2**63 - 1, "a run id"),
                   help="a training (or validate) run, one system each (`spkemb-engine runs` lists them)")


def add_import(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="ingest event files written on a network filesystem",
                       description="Bring the JSON-lines event files of runs that could not use the "
                                   "database (NFS, Lustre, GPFS, BeeGFS) into a local database.")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help=f"event files, or directories searched for {EVENTS}")
    db_options(p, database=False)
