"""The options several commands share: the runs database (and pyannote's), trusting a changed checkpoint."""

from __future__ import annotations

import argparse


def db_options(p: argparse.ArgumentParser, database: bool = True) -> None:
    p.add_argument("--db", metavar="FILE",
                   help="runs database (default: $SPKEMB_DB, else ./runs.db when it exists, "
                        "else experiments/runs.db)")
    if database:
        p.add_argument("--database", metavar="FILE",
                       help="pyannote database.yml (default: $PYANNOTE_DATABASE_CONFIG, "
                            "else ./database.yml, else ~/.pyannote/database.yml)")


def trust_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="use a checkpoint even if its file changed since the runs database recorded its "
                        "sha256 (default: refuse it)")
