"""What a sweep tries: the grid of ``--set KEY=V1,V2`` (times ``--seeds``), a random draw from it, or
the ranges of an Optuna ``--space`` file."""

from __future__ import annotations

import itertools
import math
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config.overrides import parse_value, split_values
from engine.config.yamlsrc import read_yaml_file
from engine.errors import ConfigError, SpkembError

#: the most trials a whole grid makes: beyond it, --random N draws some
MAX_GRID = 10_000


@dataclass(frozen=True)
class Point:
    """One trial's values: ``{dotted key: value}`` and its seed."""

    params: dict[str, Any]
    seed: int


def parse_grid(sets: Sequence[str]) -> dict[str, list[Any]]:
    """``["task.params.margin=0.1,0.2"]`` -> ``{"task.params.margin": [0.1, 0.2]}``, keys in order."""
    grid: dict[str, list[Any]] = {}
    for text in sets:
        key, sep, values = text.partition("=")
        key = key.strip()
        if not sep or not key or not split_values(values):
            raise SpkembError(f"--set {text!r}: write KEY=V1,V2 (e.g. task.params.margin=0.1,0.2)")
        if key in grid:
            raise SpkembError(f"--set names {key} twice: give all its values in one --set {key}=V1,V2")
        grid[key] = [parse_value(v) for v in split_values(values)]
    return grid


def grid_size(grid: dict[str, list[Any]]) -> int:
    """How many combinations the grid's values make."""
    return math.prod(len(values) for values in grid.values())


def grid_points(grid: dict[str, list[Any]], seeds: int, sample: int | None = None) -> list[Point]:
    """Every combination of the grid's values (or ``sample`` of them, drawn the same way each time),
    each with seeds 0 .. seeds-1.

    Raises
    ------
    SpkembError
        More than :data:`MAX_GRID` trials and no ``sample``: counted before any is made, since three
        keys of 1,000 values are a billion.
    """
    keys = list(grid)
    combinations = grid_size(grid)
    total = combinations * seeds
    if sample is None and total > MAX_GRID:
        raise SpkembError(f"--set makes {combinations:,} combinations x {seeds:,} seed(s) = {total:,} trials, more "
                          f"than {MAX_GRID:,}: give fewer values, or draw some of them with --random N")
    if sample is not None and min(sample, combinations) * seeds > MAX_GRID:
        drawn = min(sample, combinations)
        raise SpkembError(f"--random {sample} x {seeds:,} seed(s) = {drawn * seeds:,} trials, more than {MAX_GRID:,}: "
                          "draw fewer combinations or give fewer seeds")
    if sample is None or sample >= combinations:
        return [Point(dict(zip(keys, values, strict=True)), seed)
                for values in itertools.product(*(grid[k] for k in keys)) for seed in range(seeds)]
    # the combinations' numbers (in the order above) drawn, each then decoded alone: a grid of a
    # billion is never listed
    return [_point(grid, keys, index * seeds + seed, seeds) for index in _drawn(combinations, sample)
            for seed in range(seeds)]


def _drawn(total: int, count: int) -> list[int]:
    """``count`` distinct numbers below ``total``, in order, the same each time (``random.sample`` of a
    range, which takes no range longer than sys.maxsize: twenty keys of ten values are 1e20)."""
    rng = random.Random(0)
    if total <= sys.maxsize:
        return sorted(rng.sample(range(total), count))
    chosen: set[int] = set()
    while len(chosen) < count:
        chosen.add(rng.randrange(total))
    return sorted(chosen)


def _point(grid: dict[str, list[Any]], keys: list[str], index: int, seeds: int) -> Point:
    """Trial ``index`` of the grid's trials: combinations in ``itertools.product`` order, seeds within each."""
    combination, seed = divmod(index, seeds)
    params: dict[str, Any] = {}
    for key in reversed(keys):  # the last key varies fastest
        combination, at = divmod(combination, len(grid[key]))
        params[key] = grid[key][at]
    return Point({k: params[k] for k in keys}, seed)


@dataclass(frozen=True)
class Range:
    """One key of an Optuna search space: numbers from ``low`` to ``high`` (``log``: on a log scale;
    whole numbers when both are), or one of ``choices``."""

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()


def read_space(path: str | Path) -> list[Range]:
    """The ``--space`` file: ``KEY: {low: A, high: B[, log: true]}`` or ``KEY: {choices: [...]}``."""
    try:
        data = read_yaml_file(path).data
    except OSError as e:
        raise SpkembError(f"--space {path}: cannot be read ({e.strerror or e})") from e
    except ConfigError as e:
        raise SpkembError(f"--space {e}") from e
    if not isinstance(data, dict) or not data:
        raise SpkembError(f"--space {path}: expected a mapping of config keys, e.g. "
                          "task.params.margin: {low: 0.1, high: 0.4}")
    ranges = []
    for key, spec in data.items():
        if isinstance(spec, dict) and isinstance(spec.get("choices"), list) and spec["choices"]:
            ranges.append(Range(str(key), choices=tuple(spec["choices"])))
            continue
        low, high = (spec.get("low"), spec.get("high")) if isinstance(spec, dict) else (None, None)
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
        if not numbers or low >= high or (spec.get("log") and low <= 0):  # type: ignore[operator]
            raise SpkembError(f"--space {path}: {key}: give {{low: A, high: B}} with A < B (A > 0 with log: true), "
                              "or {choices: [V1, V2]}")
        ranges.append(Range(str(key), low=low, high=high, log=bool(spec.get("log"))))
    return ranges


def probe_values(r: Range) -> list[Any]:
    """The values of ``r`` checked against the config before a sweep is recorded: every choice, or the
    two bounds and a value between (the study may draw any of them)."""
    if r.choices:
        return list(r.choices)
    assert r.low is not None and r.high is not None
    if isinstance(r.low, int) and isinstance(r.high, int):
        return [r.low, (r.low + r.high) // 2, r.high]
    middle = (r.low * r.high) ** 0.5 if r.log else (r.low + r.high) / 2
    return [float(r.low), middle, float(r.high)]
