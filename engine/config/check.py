"""``spkemb-engine config check FILE``: print the resolved config or name what is wrong."""

from __future__ import annotations

import sys
from pathlib import Path

from engine.config.dump import dump_config
from engine.config.parse import load_config
from engine.requests import ConfigCheckRequest


def cmd_check(args: ConfigCheckRequest) -> int:
    """Print ``args.file`` (a config.yml, or an experiment directory holding one) resolved.

    Returns 0; a bad config raises ConfigError, which the CLI prints and exits 2 with.
    """
    path = Path(args.file)
    if path.is_dir():
        path = path / "config.yml"
    sys.stdout.write(dump_config(load_config(path)))
    return 0
