"""``key=value`` overrides of a config by dotted key (``task.params.margin=0.2``), checked by the spec table.

The keys are those of :func:`engine.config.config_to_dict` (and of ``config_diff``): a section's
``name``, ``SECTION.params.NAME``, a group's ``architecture.params.tdnn.hidden_dim``, and
``data_augmentation[1].params.snr_min`` when several augmentations are listed. Values are YAML
(``0.1``, ``true``, ``[5, 1, 1]``). The result is parsed as a whole, so the rules between fields
hold too, and every error names the key.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from typing import Any

from engine.config.dump import config_from_dict
from engine.config.rules import CYCLIC_MIN_DIVISOR
from engine.config.schema import Config
from engine.config.yamlsrc import read_yaml
from engine.errors import ConfigError

_PART = re.compile(r"^([A-Za-z_][\w]*)(?:\[(\d+)\])?$")


def parse_value(text: str) -> Any:
    """A value as typed after ``=``: YAML, so that ``0.1`` is a number and ``[5, 1, 1]`` a list."""
    try:
        # the checked reader: an alias loop or bomb typed on a command line stays text, refused by the checks
        return read_yaml(text, "--set").data
    except ConfigError:
        return text


def split_values(text: str) -> list[str]:
    """``0.1,0.2`` -> ``["0.1", "0.2"]``; commas inside brackets belong to a list (``[5,1,1],[3,1,1]``)."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "[{"
        depth -= char in "]}"
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return [p for p in parts if p]


def _container(data: dict[str, Any], key: str) -> tuple[Any, str | int]:
    """The mapping (or list) holding ``key``'s last part, and that part."""
    parts = key.split(".")
    node: Any = data
    for i, part in enumerate(parts):
        match = _PART.match(part)
        if match is None:
            raise ConfigError(f"{part!r} is not a key part: use dotted names such as task.params.margin", key=key)
        name, index = match.group(1), match.group(2)
        last = i == len(parts) - 1
        if not isinstance(node, dict) or (name not in node and not (last or name == "params")):
            raise ConfigError(f"no such key in the config: {_known(data)}", key=key)
        if last and index is None:
            return node, name
        node = node.setdefault(name, {})
        if index is not None:
            if isinstance(node, dict) and int(index) == 0:
                continue  # a single augmentation written as a mapping is item 0
            if not isinstance(node, list) or int(index) >= len(node):
                raise ConfigError(f"{name} has no item {index}", key=key)
            if last:
                return node, int(index)
            node = node[int(index)]
    raise ConfigError("empty key", key=key)


#: keys a rule derives from another where the config leaves them out, and how: ``config_to_dict`` writes
#: them out, so a base's CyclicScheduler held max_lr and min_lr of its learning rate, and a trial setting
#: that rate alone was refused (max_lr differs) or cycled from the base's min_lr
_FOLLOWERS: dict[str, dict[str, Callable[[float], float]]] = {
    "scheduler.params.learning_rate": {"scheduler.params.max_lr": lambda lr: lr,
                                       "scheduler.params.min_lr": lambda lr: lr / CYCLIC_MIN_DIVISOR},
}


def _unfollow(data: dict[str, Any], key: str, values: Mapping[str, Any]) -> None:
    """Before ``key`` is set: leave out the keys derived from it that hold what its old value gives (and
    that are not set themselves), so that they follow the new value as they followed the old."""
    for follower, derive in _FOLLOWERS.get(key, {}).items():
        if follower in values:
            continue
        try:
            holder, last = _container(data, key)
            old = holder[last]
            held, name = _container(data, follower)
        except (ConfigError, KeyError, IndexError, TypeError):
            continue
        if isinstance(held, dict) and name in held and isinstance(old, (int, float)) and held[name] == derive(old):
            del held[name]


def _known(data: dict[str, Any]) -> str:
    return "keys look like " + ", ".join(f"{s}.params.NAME" for s in list(data)[:3]) + " (see config check)"


def set_keys(data: Mapping[str, Any], values: Mapping[str, Any]) -> Config:
    """The config ``data`` (``config_to_dict``'s layout) with each dotted key set to its value.

    Raises
    ------
    ConfigError
        A key the config does not have, or a value the spec table refuses (naming the key).
    """
    changed = copy.deepcopy(dict(data))
    for key, value in values.items():
        _unfollow(changed, key, values)
        holder, last = _container(changed, key)
        holder[last] = value
    try:
        return config_from_dict(changed, source="--set")
    except ConfigError as e:  # its line is one of the dumped text's, which nobody sees: the key says where
        raise ConfigError(re.sub(r"^--set:\d+: ", "", str(e)), key=None) from None
