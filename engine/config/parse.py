"""config.yml -> :class:`Config`, parsed once; every error names the key, its line and the fix."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.config.schema import (ArchitectureConfig, AugmentationConfig, Config, EmbeddingConfig,
                                  FeatureExtraction, OptimizerConfig, ReverbConfig, SchedulerConfig,
                                  SincNetConfig, TaskConfig, TDNNConfig)
from engine.config.specs import (REQUIRED_SECTIONS, SECTION_DEFAULTS, SECTIONS, Component, Invalid,
                                 accepted_names, component, describe, find_component)
from engine.config.yamlsrc import Source, read_yaml
from engine.errors import ConfigError

_EXAMPLE = "see experiments/tutorial/config.yml"


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
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: no such file; give the path of an experiment's config.yml "
                          f"({_EXAMPLE})") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot be read as UTF-8 text ({e})") from e
    return parse_config(text, source=str(path))


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
    src = read_yaml(text, source)
    data = src.data
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
        if key not in data:
            raise ConfigError(f"missing section; add `{key}:` with its name and params ({_EXAMPLE})",
                              source=source, key=key)
    features = _feature_extraction(src)
    return Config(
        feature_extraction=features,
        augmentation=_augmentation(src),
        architecture=_architecture(src, features.sample_rate),
        task=_task(src),
        scheduler=_scheduler(src),
        optimizer=_optimizer(src),
    )


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
        raise src.error(f"{path}.name", f"unknown name {describe(value['name'])}; accepted names: "
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
    comp = component(section, name)
    return comp, {p.name: p.default for p in comp.params}, set(), f"{section}.params"


def _feature_extraction(src: Source) -> FeatureExtraction:
    _, values, _, _ = _section(src, "feature_extraction")
    return FeatureExtraction(sample_rate=values["sample_rate"])


def _augmentation(src: Source) -> AugmentationConfig | None:
    value = src.data.get("data_augmentation")
    if value is None or value == []:
        return None
    items = [(value, "data_augmentation")] if not isinstance(value, list) else [
        (item, f"data_augmentation[{i}]") for i, item in enumerate(value)]
    noise: dict[str, Any] | None = None
    reverb: ReverbConfig | None = None
    speeds: tuple[float, ...] = ()
    seen: dict[str, str] = {}
    for item, path in items:
        comp, values, written, params_path = _read_section(src, "data_augmentation", item, path)
        if comp.name in seen:
            raise src.error(f"{path}.name",
                            f"{comp.name} appears twice (also at {seen[comp.name]}); keep one")
        seen[comp.name] = path
        if comp.name == "AddNoise":
            if values["snr_min"] > values["snr_max"]:
                key = "snr_max" if "snr_max" in written else "snr_min"
                raise src.error(f"{params_path}.{key}",
                                f"empty SNR range: snr_min ({values['snr_min']:g}) is above snr_max "
                                f"({values['snr_max']:g}); make snr_min <= snr_max")
            noise = values
        elif comp.name == "SpeedPerturb":
            speeds = values["factors"]
        else:
            reverb = ReverbConfig(collection=values["collection"], probability=values["probability"])
    if noise is None:
        return AugmentationConfig(reverb=reverb, speeds=speeds)
    return AugmentationConfig(collection=noise["collection"], snr_min=noise["snr_min"],
                              snr_max=noise["snr_max"], reverb=reverb, speeds=speeds)


def _architecture(src: Source, sample_rate: int) -> ArchitectureConfig:
    _, v, _, _ = _section(src, "architecture")
    return ArchitectureConfig(
        sincnet=SincNetConfig(stride=v["sincnet.stride"], waveform_normalize=v["sincnet.waveform_normalize"],
                              instance_normalize=v["sincnet.instance_normalize"], sample_rate=sample_rate),
        tdnn=TDNNConfig(embedding_dim=v["tdnn.embedding_dim"], hidden_dim=v["tdnn.hidden_dim"]),
        embedding=EmbeddingConfig(batch_normalize=v["embedding.batch_normalize"],
                                  unit_normalize=v["embedding.unit_normalize"]),
    )


def _task(src: Source) -> TaskConfig:
    comp, v, _, _ = _section(src, "task")
    margin = {k: v[k] for k in ("margin", "s", "margin_scheduler") if k in v}
    return TaskConfig(loss=comp.name, duration=v["duration"], per_fold=v["per_fold"],
                      per_label=v["per_label"], per_epoch=v["per_epoch"],
                      label_min_duration=v["label_min_duration"], **margin)


def _scheduler(src: Source) -> SchedulerConfig:
    comp, v, written, params_path = _section(src, "scheduler")
    if comp.name == "ExponentialDecrease":
        if v["final_lr"] > v["initial_lr"]:
            key = "final_lr" if "final_lr" in written else "initial_lr"
            raise src.error(f"{params_path}.{key}",
                            f"final_lr ({v['final_lr']:g}) is above initial_lr ({v['initial_lr']:g}): "
                            "ExponentialDecrease decays; lower final_lr")
        return SchedulerConfig(name=comp.name, initial_lr=v["initial_lr"], final_lr=v["final_lr"],
                               warm_up_epoch=v["warm_up_epoch"])
    lr = v["learning_rate"]
    if comp.name == "ConstantScheduler":
        return SchedulerConfig(name=comp.name, learning_rate=lr, min_lr=lr, max_lr=lr)
    if "max_lr" in written:
        if "learning_rate" in written and v["max_lr"] != lr:
            raise src.error(f"{params_path}.max_lr",
                            f"max_lr ({v['max_lr']:g}) differs from learning_rate ({lr:g}), which is "
                            "the same thing for CyclicScheduler; keep one of them")
        lr = v["max_lr"]
    # pyannote.audio 1.x cycles from 0.1 x the base rate up to it (train/schedulers.py).
    min_lr = v["min_lr"] if "min_lr" in written else lr / 10
    if min_lr > lr:
        raise src.error(f"{params_path}.min_lr",
                        f"min_lr ({min_lr:g}) is above the peak learning rate ({lr:g}); lower it")
    return SchedulerConfig(name=comp.name, learning_rate=lr, min_lr=min_lr, max_lr=lr,
                           epochs_per_cycle=v["epochs_per_cycle"])


def _optimizer(src: Source) -> OptimizerConfig:
    _, v, written, params_path = _section(src, "optimizer")
    if v["nesterov"] and v["momentum"] == 0:
        key = "nesterov" if "nesterov" in written else "momentum"
        raise src.error(f"{params_path}.{key}", "Nesterov momentum needs momentum > 0; "
                                                "set nesterov: false or a momentum such as 0.9")
    return OptimizerConfig(momentum=v["momentum"], nesterov=v["nesterov"], weight_decay=v["weight_decay"])
