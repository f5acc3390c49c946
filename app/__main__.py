"""``spkemb-tui``: the terminal experiment manager."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spkemb-tui",
                                description="Configure, launch, watch and compare speaker-embedding runs.")
    p.add_argument("--workspace", metavar="DIR", default=None,
                   help="workspace folder (default: the current folder); its runs.db and "
                        "data/database.yml are used when present")
    p.add_argument("--db", metavar="FILE", default=None,
                   help="runs database (default: $SPKEMB_DB, else WORKSPACE/runs.db if present, "
                        "else WORKSPACE/experiments/runs.db; the engine's commands follow the same rule)")
    p.add_argument("--database", metavar="FILE", default=None,
                   help="pyannote database.yml (default: WORKSPACE/data/database.yml if present, else "
                        "$PYANNOTE_DATABASE_CONFIG, else ./database.yml, else ~/.pyannote/database.yml)")
    return p


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

    make_app(args.workspace, args.db, args.database).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
