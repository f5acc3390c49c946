"""The spec table is the one source of each config parameter: the dataclasses, the parser, the
dump and the config form all follow a row, and adding a row is all a new parameter takes."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.config import (
    FIELD_SPECS,
    TEMPLATES,
    ArchitectureConfig,
    AugmentationConfig,
    BackboneConfig,
    Config,
    FeatureExtraction,
    MarginSchedule,
    OptimizerConfig,
    ReverbConfig,
    SchedulerConfig,
    TaskConfig,
    config_from_dict,
    config_to_dict,
    dump_config,
    parse_config,
    template_text,
)
from engine.config.specs import AS_DEFAULT, COMPONENTS, FBANK_BACKBONES, Component, Param, reference_component
from tests import children

REPO = Path(__file__).resolve().parents[2]
BASE = {"architecture": {"name": "SincTDNN"}, "task": {"name": "AdditiveAngularMarginLoss"}}

#: fields that no parameter fills: the chosen name, a nested part, a value copied from another section
NOT_PARAMETERS = {TaskConfig: {"loss"}, SchedulerConfig: {"name"}, AugmentationConfig: {"reverb"},
                  ArchitectureConfig: {"sincnet", "tdnn", "embedding", "name", "backbone"},
                  FeatureExtraction: {"name"}}
#: a filterbank architecture reads Fbank features, SincTDNN RawAudio: each component's partner section
FBANK = {"feature_extraction": {"name": "Fbank"}, "architecture": {"name": "ResNet34"}}
KIND_TYPES = {"int": int, "float": float, "bool": bool, "stride": tuple, "protocols": tuple, "factors": tuple,
              "margin_schedule": (MarginSchedule, type(None)), "window": str, "pooling": str}


def home(comp: Component, p: Param, cfg: Config) -> Any:
    """The dataclass instance of ``cfg`` that holds parameter ``p`` of component ``comp``."""
    if comp.section == "architecture":
        return getattr(cfg.architecture, p.group) if p.group else cfg.architecture.backbone
    if comp.name == "AddReverb":
        return cfg.augmentation.reverb
    section = {"feature_extraction": "feature_extraction", "data_augmentation": "augmentation"}
    return getattr(cfg, section.get(comp.section, comp.section))


def other_value(p: Param) -> tuple[Any, Any]:
    """A valid value other than the row's default: as written in YAML, and as parsed."""
    if p.kind == "bool":
        return (not p.default,) * 2
    if p.kind in ("int", "float"):
        value = p.default + 1 if p.kind == "int" else (p.default / 2 if p.default else 0.5)
        # e.g. a multiple of 8; the mel bins of the ResNet34 the Fbank rows are read with too
        if (p.check is not None and p.check(value)) or p.name == "num_mel_bins":
            value = p.default * 2
        return value, value
    if p.kind == "window":
        return ("povey",) * 2
    if p.kind == "pooling":
        return ("ASTP",) * 2
    return {"stride": ([2, 1, 1], (2, 1, 1)), "protocols": (["X.Collection.Y"], ("X.Collection.Y",)),
            "factors": ([0.95, 1.05], (0.95, 1.05)),
            "margin_schedule": ({"increase_start_epoch": 5, "fix_start_epoch": 30, "increase_type": "linear"},
                                MarginSchedule(5, 30, "linear"))}[p.kind]


def config_with(comp: Component, params: dict[str, Any]) -> Config:
    nested: dict[str, Any] = {}
    for name, value in params.items():
        group, _, sub = name.rpartition(".")
        (nested.setdefault(group, {}) if group else nested)[sub] = value
    if comp.name == "AddReverb":
        nested.setdefault("collection", "R.Collection.RIR")
    base = {**BASE, **FBANK} if comp.name == "Fbank" or comp.name in FBANK_BACKBONES else BASE
    return config_from_dict({**base, comp.section: {"name": comp.name, "params": nested}})


def test_every_dataclass_field_is_filled_by_the_table_and_defaults_to_its_row() -> None:
    filled: dict[type, set[str]] = {}
    for comp in COMPONENTS:
        cfg = config_with(comp, {})
        for p in comp.params:
            holder = home(comp, p, cfg)
            filled.setdefault(type(holder), set()).add(p.field)
            assert isinstance(getattr(holder, p.field), KIND_TYPES[p.kind]), (comp.name, p.name)
            if comp is reference_component(comp.section):
                assert getattr(type(holder)(), p.field) == getattr(holder, p.field), (comp.name, p.name)
            if not p.required:
                assert getattr(holder, p.field) == p.default, (comp.name, p.name)
            if p.absent is not AS_DEFAULT:  # the value of an augmentation that is off
                assert getattr(type(holder)(), p.field) == p.absent, (comp.name, p.name)
    for cls in (FeatureExtraction, AugmentationConfig, ReverbConfig, BackboneConfig, *NOT_PARAMETERS,
                OptimizerConfig):
        names = {f.name for f in dataclasses.fields(cls)}
        assert names == filled.get(cls, set()) | NOT_PARAMETERS.get(cls, set()), cls.__name__
    arch = ArchitectureConfig()
    for group in ("sincnet", "tdnn", "embedding"):
        names = {f.name for f in dataclasses.fields(getattr(arch, group))} - {"sample_rate"}
        assert names == filled[type(getattr(arch, group))]


@pytest.mark.parametrize("comp,p", [(c, p) for c in COMPONENTS for p in c.params],
                         ids=[f"{c.name}.{p.name}" for c in COMPONENTS for p in c.params])
def test_each_row_is_parsed_into_its_field_dumped_under_its_name_and_read_back(comp: Component, p: Param) -> None:
    written, parsed = other_value(p)
    cfg = config_with(comp, {p.name: written})
    assert getattr(home(comp, p, cfg), p.field) == parsed
    section = config_to_dict(cfg)[comp.section]
    items = section if isinstance(section, list) else [section]
    params = next(item["params"] for item in items if item["name"] == comp.full)
    assert list(params) == list(dict.fromkeys(q.name.split(".", 1)[0] for q in comp.params))  # table order
    group, _, name = p.name.rpartition(".")
    assert (params[group] if group else params)[name] == written
    assert parse_config(dump_config(cfg)) == cfg


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_template_round_trips(name: str) -> None:
    cfg = parse_config(template_text(name), f"{name}.yml")
    assert parse_config(dump_config(cfg)) == cfg
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_form_has_a_field_for_every_row() -> None:
    keys = {(f.key, n) for f in FIELD_SPECS for n in f.names}
    for comp in COMPONENTS:
        for p in comp.params:
            assert (f"{comp.section}.params.{p.name}", comp.name) in keys


# A new SGD parameter, added the way a developer would: one row in the table, nothing else.
NEW_ROW = """
import dataclasses, importlib
import engine.config.specs as specs
row = specs.Param("dampening", "float", 0.0, "SGD dampening", specs.at_least(0))
specs.COMPONENTS = tuple(dataclasses.replace(c, params=c.params + (row,)) if c.name == "SGD" else c
                         for c in specs.COMPONENTS)
for name in ("schema", "form", "parse", "dump"):  # built from the table when imported
    importlib.reload(importlib.import_module(f"engine.config.{name}"))
from engine.config.dump import dump_config
from engine.config.form import FIELD_SPECS, validate_field
from engine.config.parse import parse_config
from engine.config.schema import OptimizerConfig
from engine.errors import ConfigError
text = "architecture: {name: SincTDNN}\\ntask: {name: Softmax}\\n"
cfg = parse_config(text + "optimizer: {name: SGD, params: {dampening: 0.25}}\\n")
assert cfg.optimizer.dampening == 0.25 and OptimizerConfig().dampening == 0.0
assert parse_config(text).optimizer.dampening == 0.0
assert "    dampening: 0.25\\n" in dump_config(cfg) and parse_config(dump_config(cfg)) == cfg
assert any(f.key == "optimizer.params.dampening" for f in FIELD_SPECS)
assert "at least 0" in validate_field("optimizer.params.dampening", "-1")
try:
    parse_config(text + "optimizer: {name: SGD, params: {dampening: -1}}\\n", "c.yml")
except ConfigError as e:
    print(e)
"""


def test_a_new_parameter_is_one_new_row() -> None:
    done = children.run([sys.executable, "-c", NEW_ROW], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                        timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "c.yml:3: optimizer.params.dampening: must be at least 0, got -1"
