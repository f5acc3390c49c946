"""config.yml -> :class:`Config`, parsed once; every error names the key, its line and the fix."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from engine.config.frames import MIN_FRAMES, fewest_samples
from engine.config.rules import RuleBroken, apply_rules
from engine.config.schema import (
    ArchitectureConfig,
    AugmentationConfig,
    BackboneConfig,
    Config,
    EmbeddingConfig,
    FeatureExtraction,
    OptimizerConfig,
    ReverbConfig,
    SchedulerConfig,
    SincNetConfig,
    TaskConfig,
    TDNNConfig,
)
from engine.config.specs import (
    FBANK_BACKBONES,
    REQUIRED_SECTIONS,
    SECTION_DEFAULTS,
    SECTIONS,
    Component,
    accepted_names,
    component,
    find_component,
)
from engine.config.values import Invalid, describe, unknown_name
from engine.config.yamlsrc import Source, read_yaml, read_yaml_file
from engine.errors import ConfigError
from engine.layout import CONFIG

# the shipped templates come with every install (a checkout's experiments/ does not)
_EXAMPLE = "`spkemb-engine config template tutorial` prints a whole one"


def load_config(path: str | os.PathLike) -> Config:
    """Read and check a config.yml.

    Parameters
    ----------
    path : str or PathLike
        The config file (``EXP_DIR/config.yml``).

    Raises
    ------
    ConfigError
        The file cannot be read, or its content is not a valid config (see :func:`parse_config`).
    """
    return config_of(read_config_file(path))


def read_config_file(path: str | os.PathLike) -> Source:
    """The YAML document of a config.yml, not checked yet (:func:`config_of` checks it): what ``config
    check`` also reads the keys the file writes from.

    Raises
    ------
    ConfigError
        The file cannot be read, or is not YAML that the safe loader accepts.
    """
    path = Path(path)
    try:
        return read_yaml_file(path)
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: no such file; give the path of an experiment's {CONFIG} "
                          f"({_EXAMPLE})") from e


def parse_config(text: str, source: str = "<string>") -> Config:
    """Parse the text of a config.yml in the tutorial's format.

    Parameters
    ----------
    text : str
        YAML with sections feature_extraction, data_augmentation, architecture, task,
        scheduler and optimizer, each ``{name, params}``; ``data_augmentation`` may also be
        a list of such mappings (AddNoise and AddReverb together).
    source : str
        Where the text comes from, for error messages.

    Returns
    -------
    Config
        The resolved config, every default filled in.

    Raises
    ------
    ConfigError
        With ``.key`` (dotted path, e.g. ``task.params.margin``) and ``.line`` of the problem:
        invalid YAML, unknown section, name or parameter, ill-typed or out-of-range value.
    """
    return config_of(read_yaml(text, source))


def config_of(src: Source) -> Config:
    """The checked config of a YAML document read by ``engine.config.yamlsrc``."""
    source, data = src.name, src.data
    if data is None:
        raise ConfigError(f"the config is empty: it needs at least the sections "
                          f"{' and '.join(REQUIRED_SECTIONS)} ({_EXAMPLE})", source=source)
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping of sections ({', '.join(SECTIONS)}), got "
                          f"{describe(data)}", source=source, line=1)
    for key in data:
        if key not in SECTIONS:
            raise src.error(key, f"unknown section; accepted sections: {', '.join(SECTIONS)}")
    for key in REQUIRED_SECTIONS:
        if data.get(key) is None:  # `architecture:` with nothing under it is as missing
            raise ConfigError(f"missing section; add `{key}:` with its name and params ({_EXAMPLE})",
                              source=source, key=key, line=src.line(key))
    return _config(src)


def _config(src: Source) -> Config:
    """Every section's dataclass, read in the order the sections are written."""
    front, front_fields = _fields(src, "feature_extraction")
    features = FeatureExtraction(name=front.name, **front_fields)
    augmentation = _augmentation(src)
    architecture = _architecture(src, features.sample_rate)
    _check_front_end(src, features, architecture)
    loss, task = _fields(src, "task")
    _check_chunks(src, features, architecture, task["duration"])
    scheduler, schedule = _fields(src, "scheduler")
    optimizer = OptimizerConfig(**_fields(src, "optimizer")[1])
    return Config(feature_extraction=features, augmentation=augmentation, architecture=architecture,
                  task=TaskConfig(loss=loss.name, **task),
                  scheduler=SchedulerConfig(name=scheduler.name, **schedule), optimizer=optimizer)


def _read_section(src: Source, section: str, value: Any, path: str) -> tuple[Component, dict[str, Any],
                                                                              set[str], str]:
    """The section's component, its params with defaults filled in, the params written, their path."""
    if not isinstance(value, dict):
        raise src.error(path, f"expected a mapping with `name` and `params`, got {describe(value)}")
    for key in value:
        if key not in ("name", "params"):
            raise src.error(f"{path}.{key}", "unknown key; a section holds only `name` and `params`")
    if "name" not in value:
        raise src.error(path, f"has no `name`; accepted names: {accepted_names(section)}")
    comp = find_component(section, value["name"])
    if comp is None:
        raise src.error(f"{path}.name", f"{unknown_name(value['name'])}; accepted names: "
                                        f"{accepted_names(section)}")
    params_path = f"{path}.params"
    params = value.get("params")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise src.error(params_path, f"expected a mapping of parameters, got {describe(params)}")
    flat: dict[str, tuple[Any, str]] = {}
    for key, raw in params.items():
        key_path = f"{params_path}.{key}"
        if comp.groups:
            if key not in comp.groups:
                raise src.error(key_path, f"unknown parameter of {comp.name}; accepted: {comp.accepted()}")
            if raw is None:
                continue
            if not isinstance(raw, dict):
                raise src.error(key_path, f"expected a mapping of {key} parameters, got {describe(raw)}")
            for sub, sub_raw in raw.items():
                if comp.param(f"{key}.{sub}") is None:
                    raise src.error(f"{key_path}.{sub}", f"unknown parameter of {key}; accepted: "
                                                         f"{comp.accepted(key)}")
                flat[f"{key}.{sub}"] = (sub_raw, f"{key_path}.{sub}")
        else:
            if comp.param(key) is None:
                raise src.error(key_path, f"unknown parameter of {comp.name}; accepted: {comp.accepted()}")
            flat[key] = (raw, key_path)
    values: dict[str, Any] = {}
    for p in comp.params:
        if p.name in flat:
            raw, key_path = flat[p.name]
            try:
                values[p.name] = p.value(raw)
            except Invalid as e:
                raise src.error(key_path, str(e)) from None
        elif p.required:
            raise src.error(params_path, f"{comp.name} needs `{p.name}` ({p.help})")
        else:
            values[p.name] = p.default
    return comp, values, set(flat), params_path


def _section(src: Source, section: str) -> tuple[Component, dict[str, Any], set[str], str]:
    if section in src.data and src.data[section] is not None:
        return _read_section(src, section, src.data[section], section)
    name = SECTION_DEFAULTS[section]
    if name is None:  # a section that is off when left out is never read here
        raise KeyError(f"{section}: no default component")
    comp = component(section, name)
    return comp, {p.name: p.default for p in comp.params}, set(), f"{section}.params"


def _by_field(src: Source, comp: Component, values: dict[str, Any], written: set[str],
              params_path: str) -> dict[str, Any]:
    """The component's values keyed by config dataclass field, after the rules between them."""
    by_field = {p.field: values[p.name] for p in comp.params}
    try:
        return apply_rules(comp.name, by_field, {p.field for p in comp.params if p.name in written})
    except RuleBroken as e:
        name = next(p.name for p in comp.params if p.field == e.key)
        raise src.error(f"{params_path}.{name}", e.message) from None


def _fields(src: Source, section: str) -> tuple[Component, dict[str, Any]]:
    """The section's component and the fields of its dataclass."""
    comp, values, written, params_path = _section(src, section)
    return comp, _by_field(src, comp, values, written, params_path)


def _augmentation(src: Source) -> AugmentationConfig | None:
    value = src.data.get("data_augmentation")
    if value is None or value == []:
        return None
    items = [(value, "data_augmentation")] if not isinstance(value, list) else [
        (item, f"data_augmentation[{i}]") for i, item in enumerate(value)]
    fields: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for item, path in items:
        comp, values, written, params_path = _read_section(src, "data_augmentation", item, path)
        if comp.name in seen:
            raise src.error(f"{path}.name",
                            f"{comp.name} appears twice (also at {seen[comp.name]}); keep one")
        seen[comp.name] = path
        part = _by_field(src, comp, values, written, params_path)
        if comp.name == "AddReverb":  # the one augmentation with a config of its own
            fields["reverb"] = ReverbConfig(**part)
        else:
            fields.update(part)
    return AugmentationConfig(**fields)


def _check_front_end(src: Source, features: FeatureExtraction, arch: ArchitectureConfig) -> None:
    """The filterbank backbones read Fbank features, SincTDNN the raw waveform."""
    key = "feature_extraction.name" if isinstance(src.data.get("feature_extraction"), dict) else "architecture.name"
    if arch.name in FBANK_BACKBONES and features.name != "Fbank":
        raise src.error(key, f"{arch.name} reads log-mel filterbanks, not the raw waveform: set feature_extraction "
                             "to {name: Fbank, params: {num_mel_bins: 80}} (RawAudio is for SincTDNN)")
    if arch.name == "SincTDNN" and features.name != "RawAudio":
        raise src.error(key, f"SincTDNN reads the raw waveform, not {features.name} features: set feature_extraction "
                             "to {name: RawAudio}, or choose a filterbank architecture "
                             f"({', '.join(FBANK_BACKBONES)})")
    if arch.name in ("ResNet34", "CAMPPlus") and (features.num_mel_bins < 8 or features.num_mel_bins % 8):
        raise src.error("feature_extraction.params.num_mel_bins",
                        f"{arch.name} divides the mel axis by 8: num_mel_bins must be a multiple of 8 "
                        f"(40, 64, 80), got {features.num_mel_bins}")


def _check_chunks(src: Source, features: FeatureExtraction, arch: ArchitectureConfig, duration: float) -> None:
    """A filterbank backbone's training chunks give it the frames it pools (SincTDNN's reach is the
    network's own arithmetic: the trainer checks it once the network is built)."""
    if arch.name not in FBANK_BACKBONES:
        return
    rate = features.sample_rate
    fewest = fewest_samples(arch.name, rate, features.frame_length, features.frame_shift)
    if round(duration * rate) < fewest:
        raise src.error("task.params.duration",
                        f"chunks of {duration:g} s are too short for {arch.name}: it pools at least "
                        f"{MIN_FRAMES[arch.name]} frames of {features.frame_length:g} ms every "
                        f"{features.frame_shift:g} ms, {fewest} samples at {rate} Hz; set duration to "
                        f"{math.ceil(fewest / rate * 1000) / 1000:g} s or more (2 s in WeSpeaker)")


def _architecture(src: Source, sample_rate: int) -> ArchitectureConfig:
    comp, v, written, params_path = _section(src, "architecture")
    if not comp.groups:  # a filterbank backbone: flat parameters
        return ArchitectureConfig(name=comp.name, backbone=BackboneConfig(
            **_by_field(src, comp, v, written, params_path)))

    def part(group: str) -> dict[str, Any]:
        return {p.field: v[p.name] for p in comp.params if p.group == group}
    return ArchitectureConfig(sincnet=SincNetConfig(**part("sincnet"), sample_rate=sample_rate),
                              tdnn=TDNNConfig(**part("tdnn")), embedding=EmbeddingConfig(**part("embedding")))
