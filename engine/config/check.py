"""``spkemb-engine config check FILE``: print the resolved config or name what is wrong."""

from __future__ import annotations

from pathlib import Path

from engine.config.defaults import defaults_comment, unwritten
from engine.config.dump import config_to_dict, dump_config
from engine.config.footprint import gpu_visible, host_memory, refusal, training_footprint
from engine.config.parse import config_of, read_config_file
from engine.config.schema import Config
from engine.console import out_text
from engine.errors import ConfigError
from engine.layout import ExperimentDir
from engine.requests import ConfigCheckRequest


def cmd_check(args: ConfigCheckRequest) -> int:
    """Print ``args.file`` (a config.yml, or an experiment directory holding one) resolved, then, as
    YAML comments, each value the file leaves to its default.

    Returns 0; a bad config raises ConfigError, which the CLI prints and exits 2 with.
    """
    path = Path(args.file)
    if path.is_dir():
        path = ExperimentDir(path).config
    src = read_config_file(path)  # read once: the config and the keys it writes are of the same text
    config = config_of(src)
    _check_memory(config, path)
    out_text(dump_config(config) + defaults_comment(path.name, unwritten(src, config_to_dict(config))))
    return 0


def _check_memory(config: Config, path: Path) -> None:
    """Refuse a config whose training cannot fit in this machine's memory (engine.config.footprint).

    With a GPU installed, what sits on it is left to ``train``, which can ask the GPU.
    """
    memory = host_memory()
    if memory is None:
        return
    footprint = training_footprint(config)
    need = footprint.batches if gpu_visible() else footprint.total
    reason = refusal(footprint, need, memory, available=False)
    if reason is not None:
        raise ConfigError(reason, source=str(path))
