"""Config -> the tutorial's layout (full ``pyannote.audio.*`` names, every default), and back."""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from engine.config.schema import AugmentationConfig, Config
from engine.config.specs import component


def _plain(value: Any) -> Any:
    """A field's value as plain data: lists, never tuples, and a mapping for a nested dataclass."""
    if isinstance(value, tuple):
        return list(value)
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def _section(section: str, name: str, source: Any) -> dict[str, Any]:
    """``{name, params}`` of component ``name``: each of its parameters read from ``source``
    (a group's parameter from the attribute named after the group), in the table's order."""
    comp = component(section, name)
    params: dict[str, Any] = {}
    for p in comp.params:
        if p.group is None:
            params[p.name] = _plain(getattr(source, p.field))
        else:
            params.setdefault(p.group, {})[p.field] = _plain(getattr(getattr(source, p.group), p.field))
    return {"name": comp.full, "params": params}


def _augmentations(aug: AugmentationConfig) -> list[dict[str, Any]]:
    # in the order the chunks go through them (speed, reverberation, noise)
    parts = (("SpeedPerturb", aug if aug.speeds else None), ("AddNoise", aug if aug.noise else None),
             ("AddReverb", aug.reverb))
    return [_section("data_augmentation", name, source) for name, source in parts if source is not None]


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
    out: dict[str, Any] = {"feature_extraction": _section("feature_extraction", cfg.feature_extraction.name,
                                                                  cfg.feature_extraction)}
    items = _augmentations(cfg.augmentation) if cfg.augmentation is not None else []
    if items:
        out["data_augmentation"] = items[0] if len(items) == 1 else items
    arch = cfg.architecture
    out["architecture"] = _section("architecture", arch.name, arch if arch.name == "SincTDNN" else arch.backbone)
    # a margin loss writes margin_scheduler even when null, so that the config form offers it
    out["task"] = _section("task", cfg.task.loss, cfg.task)
    out["scheduler"] = _section("scheduler", cfg.scheduler.name, cfg.scheduler)
    out["optimizer"] = _section("optimizer", "SGD", cfg.optimizer)
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


def flattened(data: dict[str, Any]) -> dict[str, Any]:
    """A config in :func:`config_to_dict`'s layout as ``{dotted key: value}``, its keys as
    :func:`config_diff` names them (a list of numbers or names is one value)."""
    flat: dict[str, Any] = {}
    _flatten(data, "", flat)
    return flat


def config_diff(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Differences between two configs in :func:`config_to_dict`'s layout.

    Returns
    -------
    list of (key, value in a, value in b)
        Dotted keys (``task.params.margin``, ``data_augmentation[1].params.probability``),
        in a's order then b's; a key missing on one side has None there.
    """
    flat_a, flat_b = flattened(a), flattened(b)
    keys = list(dict.fromkeys([*flat_a, *flat_b]))
    # a key written as null on one side and left out on the other (a config of an older
    # release, without margin_scheduler) means the same thing: no difference
    return [(k, flat_a.get(k), flat_b.get(k)) for k in keys if flat_a.get(k) != flat_b.get(k)]
