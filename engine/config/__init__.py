"""The experiment config (``EXP_DIR/config.yml``, the pyannote.audio 1.x tutorial's format).

Parsed once into frozen dataclasses (:mod:`engine.config.schema`). The table of what is
accepted (:mod:`engine.config.specs`) is the one source of each parameter: the dataclasses'
fields and defaults, the parser, the dump and the TUI's form (:mod:`engine.config.form`) all
read it. Torch-free.
"""

from __future__ import annotations

from importlib import resources

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

TEMPLATES = ("tutorial", "demo", "recipe", "resnet34", "ecapa_tdnn", "campplus")


def template_text(name: str) -> str:
    """Text of a shipped config: ``tutorial`` (the tutorial's, verbatim), ``demo`` (CPU-sized) or
    ``recipe`` (the tutorial's network with WeSpeaker's VoxCeleb recipe: schedules, speed perturbation), or
    ``resnet34``, ``ecapa_tdnn``, ``campplus`` (WeSpeaker's backbones on Fbank features, CPU-sized, the
    VoxCeleb2 recipe's values in comments)."""
    if name not in TEMPLATES:
        raise ValueError(f"unknown template {name!r}; accepted: {', '.join(TEMPLATES)}")
    return resources.files("engine").joinpath("templates", f"{name}.yml").read_text(encoding="utf-8")


__all__ = [
    "ArchitectureConfig", "AugmentationConfig", "BackboneConfig", "Config", "EmbeddingConfig", "FIELD_SPECS",
    "FeatureExtraction", "FieldSpec", "MarginSchedule", "OptimizerConfig", "ReverbConfig", "SchedulerConfig",
    "SincNetConfig", "TDNNConfig", "TEMPLATES", "TaskConfig", "cmd_check", "config_diff",
    "config_fields", "config_from_dict", "config_to_dict", "dump_config", "dump_yaml", "load_config",
    "parse_config", "template_text", "validate_field",
]
