"""Experiment folders of a workspace (folders holding a config.yml) and config form data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from app.data import reader
from engine.config.yamlsrc import read_yaml
from engine.errors import ConfigError
from engine.layout import CONFIG, ExperimentDir

_INDEX = re.compile(r"^(.*)\[(\d+)\]$")


def find_experiments(root: Path, db_path: Path) -> list[Path]:
    """Folders with a config.yml: under the workspace (two levels deep) and those runs used."""
    found: set[Path] = set()
    for pattern in (CONFIG, f"*/{CONFIG}", f"*/*/{CONFIG}"):
        found.update(p.parent.resolve() for p in root.glob(pattern))
    if db_path.exists():
        try:
            with reader.store_at(db_path) as store:
                folders = store.experiment_folders("train")
            # the files looked at once the read is over, once a folder: stats on a network filesystem
            found.update(Path(exp).resolve() for exp in folders if ExperimentDir(Path(exp)).config.is_file())
        except Exception:  # noqa: BLE001 - an unreadable db is reported by the runs screen
            pass
    return sorted(found)


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of a config dict by dotted key (lists of sections as ``key[i]``)."""
    out: dict[str, Any] = {}
    if isinstance(data, dict) and data:
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(data, list) and data and all(isinstance(x, dict) for x in data):
        for i, value in enumerate(data):
            out.update(flatten(value, f"{prefix}[{i}]"))
    else:
        out[prefix] = data
    return out


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`flatten`."""
    root: dict[str, Any] = {}
    for key, value in flat.items():
        node: Any = root
        parts = key.split(".")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            m = _INDEX.match(part)
            if m:
                name, index = m.group(1), int(m.group(2))
                items = node.setdefault(name, [])
                while len(items) <= index:
                    items.append({})
                node = items[index]
                continue
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return root


def to_text(value: Any) -> str:
    """A value as it is typed in a form field (YAML flow style)."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def from_text(text: str) -> Any:
    """What a form field's text means, read as YAML; text that is not YAML stays text."""
    try:
        return read_yaml(text, "field").data  # an alias loop or bomb typed in a field stays text
    except ConfigError:
        return text


def next_free(exp_dir: Path) -> Path:
    """``exp_dir`` itself when free, else ``exp_dir-2``, ``-3``…"""
    if not ExperimentDir(exp_dir).config.exists():
        return exp_dir
    i = 2
    while ExperimentDir(exp_dir.parent / f"{exp_dir.name}-{i}").config.exists():
        i += 1
    return exp_dir.parent / f"{exp_dir.name}-{i}"


def free_inside(root: Path, folder: Path) -> Path:
    """``folder``, or the next free name beside it (:func:`next_free`), when that lies inside the
    workspace ``root``; else (beside the workspace itself, as the demo's experiment is, or outside
    it) the same name under ``root/experiments``."""
    free = next_free(folder)
    try:
        free.resolve().relative_to(root.resolve())
    except ValueError:
        return next_free(root / "experiments" / folder.name)
    return free


def fork_folder(root: Path, parent_exp: Path, checkpoint: int | str, kind: str = "fork") -> Path:
    """Where a fork of ``parent_exp`` from ``checkpoint`` (an epoch, or averaged weights by name) is
    suggested, ``{parent}-fork-e3`` or ``{parent}-lm-avg-top5``: beside the parent, inside the
    workspace ``root`` (:func:`free_inside`); never a folder that already holds a config."""
    label = f"e{checkpoint}" if str(checkpoint).isdigit() else str(checkpoint)
    return free_inside(root, parent_exp.parent / f"{parent_exp.name}-{kind}-{label}")
