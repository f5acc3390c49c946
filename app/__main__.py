"""``spkemb-tui``: the terminal experiment manager."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.version import VERSION


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spkemb-tui",
                                description="Configure, launch, watch and compare speaker-embedding runs.")
    p.add_argument("--version", action="version", version=f"%(prog)s {VERSION}", help="print the version and exit")
    p.add_argument("--workspace", metavar="DIR", default=None,
                   help="workspace folder (default: the current folder); its runs.db and "
                        "data/database.yml are used when present")
    p.add_argument("--db", metavar="FILE", default=None,
                   help="runs database (default: $SPKEMB_DB, else WORKSPACE/runs.db if present, "
                        "else WORKSPACE/experiments/runs.db; the engine's commands follow the same rule)")
    p.add_argument("--database", metavar="FILE", default=None,
                   help="pyannote database.yml (default: WORKSPACE/data/database.yml or WORKSPACE/database.yml "
                        "if present, else the engine's: $PYANNOTE_DATABASE_CONFIG, else ./database.yml, else "
                        "~/.pyannote/database.yml); the commands it starts are given this file as --database "
                        "(none when the variable names several files: they read it themselves)")
    p.add_argument("--query-time-limit", metavar="SECONDS", type=_seconds, default=None,
                   help="seconds a query of the Query screen may run before it is stopped (default: 5; "
                        "0: no limit)")
    return p


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):  # not: also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds: pass 0 (no limit) or more, "
                                         "e.g. --query-time-limit 30")
    return value


def query_time_limit(args: argparse.Namespace) -> float | None:
    """The Query screen's time limit in seconds (None: no limit)."""
    from app.app import QUERY_TIME_LIMIT_S

    if args.query_time_limit is None:
        return QUERY_TIME_LIMIT_S
    return args.query_time_limit or None


def check_paths(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse paths that cannot work before the screen is taken over (exit 2, one line)."""
    if args.workspace is not None and not Path(args.workspace).expanduser().is_dir():
        parser.error(f"--workspace {args.workspace} is not a folder: pass an existing folder "
                     "(or create it first)")
    if args.db is not None and Path(args.db).expanduser().is_dir():
        parser.error(f"--db {args.db} is a folder: pass a file, e.g. {Path(args.db) / 'runs.db'}")
    if args.database is not None and not Path(args.database).expanduser().is_file():
        parser.error(f"--database {args.database} does not exist: pass your pyannote database.yml")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_paths(parser, args)
    from app.app import make_app

    make_app(args.workspace, args.db, args.database, query_time_limit=query_time_limit(args)).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
