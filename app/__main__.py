"""``spkemb-tui``: the terminal experiment manager."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spkemb-tui",
                                description="Configure, launch, watch and compare speaker-embedding runs.")
    p.add_argument("--workspace", metavar="DIR", default=None,
                   help="workspace folder (default: the current folder); its runs.db and "
                        "data/database.yml are used when present")
    p.add_argument("--db", metavar="FILE", default=None,
                   help="runs database (default: WORKSPACE/runs.db if present, else $SPKEMB_DB, "
                        "else WORKSPACE/experiments/runs.db)")
    p.add_argument("--database", metavar="FILE", default=None,
                   help="pyannote database.yml (default: WORKSPACE/data/database.yml if present, else "
                        "$PYANNOTE_DATABASE_CONFIG, else ./database.yml, else ~/.pyannote/database.yml)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from app.app import make_app

    make_app(args.workspace, args.db, args.database).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
