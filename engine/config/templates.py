"""The shipped configs (``engine/templates/*.yml``) and ``spkemb-engine config template NAME``."""

from __future__ import annotations

from importlib import resources

from engine.console import out_text
from engine.requests import ConfigTemplateRequest

TEMPLATES = ("tutorial", "demo", "recipe", "resnet34", "ecapa_tdnn", "campplus")


def template_text(name: str) -> str:
    """Text of a shipped config: ``tutorial`` (the tutorial's, verbatim), ``demo`` (CPU-sized) or
    ``recipe`` (the tutorial's network with WeSpeaker's VoxCeleb recipe: schedules, speed perturbation), or
    ``resnet34``, ``ecapa_tdnn``, ``campplus`` (WeSpeaker's backbones on Fbank features, CPU-sized, the
    VoxCeleb2 recipe's values in comments)."""
    if name not in TEMPLATES:
        raise ValueError(f"unknown template {name!r}; accepted: {', '.join(TEMPLATES)}")
    return resources.files("engine").joinpath("templates", f"{name}.yml").read_text(encoding="utf-8")


def cmd_template(args: ConfigTemplateRequest) -> int:
    """Print the template ``args.name`` (the parser accepts only ``TEMPLATES``)."""
    out_text(template_text(args.name))
    return 0
