"""Which values of a resolved config its file leaves to the defaults: what ``config check`` lists
under the config it prints, so that a key missing from config.yml is never taken without a word."""

from __future__ import annotations

from typing import Any

import yaml

from engine.config.dump import flattened
from engine.config.yamlsrc import Source

AUGMENTATION = "data_augmentation"


def unwritten(src: Source, resolved: dict[str, Any]) -> dict[str, Any]:
    """The values of ``resolved`` (:func:`engine.config.config_to_dict`'s layout) that the file
    ``src`` does not write, by dotted key in the resolved config's order."""
    written = _written(src, resolved)
    return {key: value for key, value in flattened(resolved).items() if key not in written}


def defaults_comment(name: str, values: dict[str, Any]) -> str:
    """YAML comment lines naming each value left to its default (nothing when there is none)."""
    if not values:
        return ""
    lines = [f"# not in {name}, so at their defaults:"]
    lines += [f"#   {key}: {_inline(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def _inline(value: Any) -> str:
    """``value`` as one line of YAML flow (``0.0``, ``[5, 1, 1]``, ``null``)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _written(src: Source, resolved: dict[str, Any]) -> set[str]:
    """The dotted keys the file writes, in the resolved config's layout: the augmentations are
    matched by name, since the resolved config lists them in the order the chunks go through them
    (and as one mapping when there is one) whatever order and form the file gave them."""
    keys = {key for key in src.lines if not key.startswith(AUGMENTATION)}
    raw = src.data.get(AUGMENTATION) if isinstance(src.data, dict) else None
    ours = resolved.get(AUGMENTATION)
    if raw is None or ours is None:
        return keys
    raw_items = [(item, f"{AUGMENTATION}[{i}]") for i, item in enumerate(raw)] if isinstance(raw, list) \
        else [(raw, AUGMENTATION)]
    our_items = [(item, f"{AUGMENTATION}[{i}]") for i, item in enumerate(ours)] if isinstance(ours, list) \
        else [(ours, AUGMENTATION)]
    by_name = {_short(item.get("name")): path for item, path in our_items}
    for item, path in raw_items:
        ours_at = by_name.get(_short(item.get("name"))) if isinstance(item, dict) else None
        if ours_at is not None:
            keys |= {ours_at + key[len(path):] for key in src.lines if key.startswith(f"{path}.")}
    return keys


def _short(name: object) -> str:
    """A component's name without its module (``AddNoise`` for ``pyannote.audio.…noise.AddNoise``)."""
    return str(name).rsplit(".", 1)[-1]
