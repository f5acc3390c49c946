"""Fork templates: the keys a fine-tuning stage changes in its parent's config (``large_margin``).

A fork template is not a config of its own: it is applied over the config of the run it forks, so
that the network (whose weights the fork starts from) stays the parent's. A section of the template
given with its ``name`` replaces the parent's section whole (another scheduler has other parameters);
one without a name changes only the parameters it gives. Torch-free (the TUI prefills its fork form
with it).
"""

from __future__ import annotations

from dataclasses import replace
from importlib import resources
from typing import Any

import yaml

from engine.config.dump import config_from_dict, config_to_dict
from engine.config.schema import Config

FORK_TEMPLATES = ("large_margin",)

#: epochs of the large-margin stage (WeSpeaker's ``*_lm.yaml``: ``num_epochs: 5``): a ``train --to``,
#: not a config key
LARGE_MARGIN_EPOCHS = 5


def fork_template_text(name: str) -> str:
    """Text of a shipped fork template (``large_margin``: WeSpeaker's large-margin fine-tuning stage)."""
    if name not in FORK_TEMPLATES:
        raise ValueError(f"unknown fork template {name!r}; accepted: {', '.join(FORK_TEMPLATES)}")
    return resources.files("engine").joinpath("templates", f"{name}.yml").read_text(encoding="utf-8")


def _over(parent: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    out = dict(parent)
    for section, value in overlay.items():
        theirs = out.get(section)
        if isinstance(value, dict) and "name" not in value and isinstance(theirs, dict):
            out[section] = {**theirs, "params": {**(theirs.get("params") or {}), **(value.get("params") or {})}}
        else:
            out[section] = value
    return out


def fork_config(parent: dict[str, Any], name: str = "large_margin") -> Config:
    """``parent`` (a run's recorded config) with fork template ``name`` applied, checked like config.yml.

    Speed perturbation is left out: WeSpeaker's fine-tuning stage (``do_lm``) trains without it, and
    without the inter-top-k penalty of a sub-centre loss (``mp`` and ``k_top`` 0, as ``do_lm`` sets them). The
    template's learning rates are WeSpeaker's, which multiplies them by its batch / 64 (world size x
    batch size / 64): so are they here, by the fork's chunks a batch / 64.

    Raises
    ------
    ConfigError
        The parent's config is not a valid config, or the template's keys do not fit it (e.g. a
        margin on a plain softmax task), the key named.
    """
    overlay = yaml.safe_load(fork_template_text(name))
    base = config_to_dict(config_from_dict(parent, source="the parent run's config"))
    cfg = config_from_dict(_over(base, overlay), source=f"the parent run's config with the {name} template")
    if "scheduler" in overlay:  # the template's rates are WeSpeaker's, for 64 chunks a batch
        chunks = cfg.task.per_fold * cfg.task.per_label
        cfg = replace(cfg, scheduler=replace(cfg.scheduler, initial_lr=cfg.scheduler.initial_lr * chunks / 64,
                                             final_lr=cfg.scheduler.final_lr * chunks / 64))
    if name == "large_margin" and cfg.task.loss == "SubCenterInterTopKLoss":
        cfg = replace(cfg, task=replace(cfg.task, mp=0.0, k_top=0))
    aug = cfg.augmentation
    if aug is not None and aug.speeds:
        plain = replace(aug, speeds=())
        cfg = replace(cfg, augmentation=plain if plain.noise or plain.reverb is not None else None)
    return cfg


def fork_dict(parent: dict[str, Any], name: str = "large_margin") -> dict[str, Any]:
    """:func:`fork_config` as plain data in the tutorial's layout (what config.yml holds)."""
    return config_to_dict(fork_config(parent, name))
