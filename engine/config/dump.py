"""Config -> the tutorial's layout (full ``pyannote.audio.*`` names, every default), and back."""

from __future__ import annotations

from typing import Any

import yaml

from engine.config.schema import Config
from engine.config.specs import component


def _section(section: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"name": component(section, name).full, "params": params}


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The resolved config as plain data in the tutorial's layout.

    Parameters
    ----------
    cfg : Config

    Returns
    -------
    dict
        ``{section: {name, params}}`` with full ``pyannote.audio.*`` names and every
        default written out; lists, never tuples, so that it is also JSON.
        ``data_augmentation`` is a list when several of SpeedPerturb, AddNoise and AddReverb are on, and is
        left out when there is no augmentation.
    """
    out: dict[str, Any] = {
        "feature_extraction": _section("feature_extraction", "RawAudio",
                                       {"sample_rate": cfg.feature_extraction.sample_rate})}
    aug = cfg.augmentation
    if aug is not None:
        items = []
        if aug.speeds:  # first: the order the chunks go through (speed, reverberation, noise)
            items.append(_section("data_augmentation", "SpeedPerturb", {"factors": list(aug.speeds)}))
        if aug.noise:
            items.append(_section("data_augmentation", "AddNoise", {
                "snr_min": aug.snr_min, "snr_max": aug.snr_max, "collection": list(aug.collection)}))
        if aug.reverb is not None:
            items.append(_section("data_augmentation", "AddReverb", {
                "collection": list(aug.reverb.collection), "probability": aug.reverb.probability}))

        if items:
            out["data_augmentation"] = items[0] if len(items) == 1 else items
    arch = cfg.architecture
    out["architecture"] = _section("architecture", "SincTDNN", {
        "sincnet": {"stride": list(arch.sincnet.stride),
                    "waveform_normalize": arch.sincnet.waveform_normalize,
                    "instance_normalize": arch.sincnet.instance_normalize},
        "tdnn": {"embedding_dim": arch.tdnn.embedding_dim, "hidden_dim": arch.tdnn.hidden_dim},
        "embedding": {"batch_normalize": arch.embedding.batch_normalize,
                      "unit_normalize": arch.embedding.unit_normalize}})
    task = cfg.task
    params: dict[str, Any] = {}
    if task.loss != "Softmax":
        ramp = task.margin_scheduler
        # written even when null, so that the config form offers it
        params.update(margin=task.margin, s=task.s, margin_scheduler=None if ramp is None else {
            "increase_start_epoch": ramp.increase_start_epoch, "fix_start_epoch": ramp.fix_start_epoch,
            "increase_type": ramp.increase_type})
    params.update(duration=task.duration, per_fold=task.per_fold, per_label=task.per_label,
                  per_epoch=task.per_epoch, label_min_duration=task.label_min_duration)
    out["task"] = _section("task", task.loss, params)
    sched = cfg.scheduler
    params = {"learning_rate": sched.learning_rate}
    if sched.name == "ExponentialDecrease":
        params = {"initial_lr": sched.initial_lr, "final_lr": sched.final_lr,
                  "warm_up_epoch": sched.warm_up_epoch}
    if sched.name == "CyclicScheduler":
        params.update(min_lr=sched.min_lr, max_lr=sched.max_lr, epochs_per_cycle=sched.epochs_per_cycle)
    out["scheduler"] = _section("scheduler", sched.name, params)
    opt = cfg.optimizer
    out["optimizer"] = _section("optimizer", "SGD", {
        "momentum": opt.momentum, "nesterov": opt.nesterov, "weight_decay": opt.weight_decay})
    return out


class _Dumper(yaml.SafeDumper):
    """Short lists of numbers inline (``stride: [5, 1, 1]``), everything else in block style."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = bool(data) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(tuple, _represent_list)


def dump_yaml(data: Any) -> str:
    """YAML text of plain data, keys in their given order."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)


def dump_config(cfg: Config) -> str:
    """The resolved config as config.yml text; ``parse_config(dump_config(c)) == c``."""
    return dump_yaml(config_to_dict(cfg))


def config_from_dict(data: dict[str, Any], source: str = "<form>") -> Config:
    """Check plain data in the tutorial's layout (e.g. a TUI form) with the config.yml rules.

    Raises
    ------
    ConfigError
        As :func:`engine.config.parse_config`, with ``.key`` naming the field; line numbers
        refer to ``dump_yaml(data)``.
    """
    from engine.config.parse import parse_config

    return parse_config(dump_yaml(data), source=source)


def _flatten(data: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(data, dict) and (data or not prefix):
        for key, value in data.items():
            _flatten(value, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(data, list) and data and all(isinstance(x, dict) for x in data):
        for i, value in enumerate(data):
            _flatten(value, f"{prefix}[{i}]", out)
    else:
        out[prefix] = data


def config_diff(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Differences between two configs in :func:`config_to_dict`'s layout.

    Returns
    -------
    list of (key, value in a, value in b)
        Dotted keys (``task.params.margin``, ``data_augmentation[1].params.probability``),
        in a's order then b's; a key missing on one side has None there.
    """
    flat_a: dict[str, Any] = {}
    flat_b: dict[str, Any] = {}
    _flatten(a, "", flat_a)
    _flatten(b, "", flat_b)
    keys = list(dict.fromkeys([*flat_a, *flat_b]))
    # a key written as null on one side and left out on the other (a config of an older
    # release, without margin_scheduler) means the same thing: no difference
    return [(k, flat_a.get(k), flat_b.get(k)) for k in keys if flat_a.get(k) != flat_b.get(k)]
