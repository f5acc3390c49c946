"""The experiment config (``EXP_DIR/config.yml``, the pyannote.audio 1.x tutorial's format).

Parsed once into frozen dataclasses (:mod:`engine.config.schema`). The table of what is
accepted (:mod:`engine.config.specs`) is the one source of each parameter: the dataclasses'
fields and defaults, the parser, the dump and the TUI's form (:mod:`engine.config.form`) all
read it. Torch-free.
"""

from __future__ import annotations

from engine.config.check import cmd_check
from engine.config.dump import config_diff, config_from_dict, config_to_dict, dump_config, dump_yaml
from engine.config.form import FIELD_SPECS, FieldSpec, config_fields, validate_field
from engine.config.parse import load_config, parse_config
from engine.config.schema import (
    ArchitectureConfig,
    AugmentationConfig,
    BackboneConfig,
    Config,
    EmbeddingConfig,
    FeatureExtraction,
    MarginSchedule,
    OptimizerConfig,
    ReverbConfig,
    SchedulerConfig,
    SincNetConfig,
    TaskConfig,
    TDNNConfig,
)
from engine.config.templates import TEMPLATES, cmd_template, template_text

__all__ = [
    "ArchitectureConfig", "AugmentationConfig", "BackboneConfig", "Config", "EmbeddingConfig", "FIELD_SPECS",
    "FeatureExtraction", "FieldSpec", "MarginSchedule", "OptimizerConfig", "ReverbConfig", "SchedulerConfig",
    "SincNetConfig", "TDNNConfig", "TEMPLATES", "TaskConfig", "cmd_check", "cmd_template", "config_diff",
    "config_fields", "config_from_dict", "config_to_dict", "dump_config", "dump_yaml", "load_config",
    "parse_config", "template_text", "validate_field",
]
