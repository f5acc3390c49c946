"""What a config.yml may say: every section, name and parameter, its type, default and range.

One table serves the parser (``engine.config.parse``) and the TUI's config form
(:func:`config_fields`, :func:`validate_field`), so both apply exactly the same rules.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from engine.config.recipe_values import FACTORS_WORDS, SCHEDULE_WORDS, margin_schedule, speed_factors

#: sections of the tutorial's format, in the order they are written
SECTIONS = ("feature_extraction", "data_augmentation", "architecture", "task", "scheduler", "optimizer")
REQUIRED_SECTIONS = ("architecture", "task")

#: a pyannote.database Collection protocol, e.g. MUSAN.Collection.BackgroundNoise
COLLECTION_PATTERN = re.compile(r"^[A-Za-z0-9_-]+\.Collection\.[A-Za-z0-9_-]+$")

TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "stride": "a list of 3 positive integers, e.g. [5, 1, 1]",
    "protocols": "a Collection protocol name or a list of them, e.g. [MUSAN.Collection.Music]",
    "choice": "a name",
    "factors": FACTORS_WORDS,
    "margin_schedule": SCHEDULE_WORDS,
}



class Invalid(ValueError):
    """A value that breaks its parameter's rule; the message says what is expected."""


def describe(value: Any) -> str:
    """How a YAML value reads in an error message."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)


def _number(value: Any, kind: str) -> Any:
    # bool is a subclass of int in Python; in a config `true` is never a number.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid(f"expected {TYPE_WORDS[kind]}, got {describe(value)}")
    if kind == "int":
        if not isinstance(value, int):
            raise Invalid(f"expected an integer, got {value!r}")
        return value
    if not math.isfinite(value):
        raise Invalid(f"expected a finite number, got {value!r}")
    return float(value)


def coerce(kind: str, value: Any) -> Any:
    """``value`` as the Python value of ``kind``, or :class:`Invalid` saying what is expected."""
    if kind in ("int", "float"):
        return _number(value, kind)
    if kind == "bool":
        if not isinstance(value, bool):
            raise Invalid(f"expected true or false, got {describe(value)}")
        return value
    if kind == "stride":
        if not isinstance(value, (list, tuple)) or len(value) != 3:
            raise Invalid(f"expected {TYPE_WORDS['stride']}, got {describe(value)}"
                          + (f" of {len(value)} items" if isinstance(value, (list, tuple)) else ""))
        items = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int) or item < 1:
                raise Invalid(f"expected {TYPE_WORDS['stride']}, got {describe(item)} among them")
            items.append(item)
        return tuple(items)
    if kind == "protocols":
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, (list, tuple)) or not names:
            raise Invalid(f"expected {TYPE_WORDS['protocols']}, got {describe(value)}")
        for name in names:
            if not isinstance(name, str) or not COLLECTION_PATTERN.match(name):
                raise Invalid(f"{describe(name)} is not a Collection protocol name: write "
                              "Database.Collection.Name, e.g. MUSAN.Collection.BackgroundNoise")
        return tuple(names)
    if kind in ("factors", "margin_schedule"):
        try:
            return (speed_factors if kind == "factors" else margin_schedule)(value)
        except ValueError as e:
            raise Invalid(str(e)) from None
    raise AssertionError(kind)


def positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def at_least(low: float) -> Callable[[float], str | None]:
    return lambda value: None if value >= low else f"must be at least {low}"


def in_range(low: float, high: float, high_open: bool = True,
             high_text: str | None = None) -> Callable[[float], str | None]:
    top = high_text or str(high)

    def check(value: float) -> str | None:
        if value < low or value > high or (high_open and value == high):
            return f"must be in [{low}, {top}{')' if high_open else ']'}"
        return None
    return check


@dataclass(frozen=True)
class Param:
    """One parameter of one component (architecture ones are ``group.name``)."""

    name: str
    kind: str
    default: Any
    help: str
    check: Callable[[Any], str | None] | None = None
    required: bool = False

    def value(self, raw: Any) -> Any:
        """The typed, range-checked value of ``raw`` (raises :class:`Invalid`)."""
        if self.kind == "float" and raw == "auto":
            raise Invalid("pyannote's AutoLR (`auto`) is not supported: expected a number such as 0.01")
        value = coerce(self.kind, raw)
        problem = self.check(value) if self.check else None
        if problem:
            raise Invalid(f"{problem}, got {raw!r}")
        return value


@dataclass(frozen=True)
class Component:
    """A name a section may hold, the full pyannote name it maps from, and its parameters."""

    section: str
    name: str
    full: str
    params: tuple[Param, ...]
    help: str

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    @property
    def groups(self) -> tuple[str, ...]:
        """Sub-mappings of ``params`` (sincnet, tdnn, embedding), empty for flat params."""
        return tuple(dict.fromkeys(p.name.split(".")[0] for p in self.params if "." in p.name))

    def accepted(self, group: str | None = None) -> str:
        if group is None and self.groups:
            return ", ".join(self.groups)
        names = [p.name.split(".", 1)[1] if group else p.name for p in self.params
                 if (p.name.startswith(group + ".") if group else True)]
        return ", ".join(names) or "none"


_TASK_COMMON = (
    Param("duration", "float", 2.0, "chunk duration in seconds (fixed-length training chunks)", positive),
    Param("per_fold", "int", 32, "speakers per batch", at_least(2)),
    Param("per_label", "int", 1, "chunks per speaker in a batch", at_least(1)),
    Param("per_epoch", "float", 7.0, "days of audio per epoch (e.g. 0.02 = 28.8 minutes)", positive),
    Param("label_min_duration", "float", 0.0,
          "drop training speakers with less speech than this (seconds)", at_least(0)),
)

# Additive angular margin (ArcFace: Deng et al., CVPR 2019): cos(theta + m); a margin of
# pi/2 or more no longer keeps the target logit monotonic in theta over [0, pi/2].
_AAM = (Param("margin", "float", 0.1, "angular margin m in radians, cos(theta + m)",
              in_range(0.0, math.pi / 2, high_text="pi/2")),
        Param("s", "float", 7.0, "logit scale", positive))
# WeSpeaker's MarginScheduler (wespeaker/utils/schedulers.py): the margin rises from 0 to
# `margin` between two epochs; null keeps it constant, as pyannote 1.x.
_MARGIN_SCHEDULER = Param("margin_scheduler", "margin_schedule", None,
                          "ramp the margin from 0 up to `margin`: {increase_start_epoch, fix_start_epoch, "
                          "increase_type: exp|linear}, or null for a constant margin (WeSpeaker)")
# Additive margin softmax (Wang et al., IEEE SPL 2018): cos(theta) - m, with m = 0.35 and
# s = 30 the paper's values (pyannote 1.x has no such loss to take defaults from).
_AM = (Param("margin", "float", 0.35, "cosine margin m, cos(theta) - m", in_range(0.0, 1.0)),
       Param("s", "float", 30.0, "logit scale", positive))

_SCHED = "pyannote.audio.train.schedulers."
_LOSS = "pyannote.audio.embedding.approaches."

COMPONENTS: tuple[Component, ...] = (
    Component("feature_extraction", "RawAudio", "pyannote.audio.features.RawAudio",
              (Param("sample_rate", "int", 16000, "sample rate in Hz audio is read at", positive),),
              "raw waveform, resampled and downmixed to mono"),
    Component("data_augmentation", "AddNoise", "pyannote.audio.augmentation.noise.AddNoise",
              (Param("snr_min", "float", 5.0, "lowest signal-to-noise ratio in dB"),
               Param("snr_max", "float", 20.0, "highest signal-to-noise ratio in dB"),
               Param("collection", "protocols", ("MUSAN.Collection.BackgroundNoise",),
                     "Collection protocols whose files are the noises")),
              "add a random noise file at a random SNR in [snr_min, snr_max]"),
    Component("data_augmentation", "AddReverb", "pyannote.audio.augmentation.reverb.AddReverb",
              (Param("collection", "protocols", None,
                     "Collection protocols whose files are room impulse responses", required=True),
               Param("probability", "float", 0.5, "share of chunks reverberated",
                     in_range(0.0, 1.0, high_open=False))),
              "convolve chunks with a random room impulse response (spkemb extension)"),
    Component("data_augmentation", "SpeedPerturb", "SpeedPerturb",
              (Param("factors", "factors", (0.9, 1.0, 1.1),
                     "speed factors; each factor's copy of a speaker is a training class of its own"),),
              "speed perturbation by resampling, each factor a new class (WeSpeaker, 3D-Speaker)"),
    Component("architecture", "SincTDNN", "pyannote.audio.models.SincTDNN",
              (Param("sincnet.stride", "stride", (1, 1, 1), "stride of the 3 SincNet convolutions"),
               Param("sincnet.waveform_normalize", "bool", True, "standardize each waveform"),
               Param("sincnet.instance_normalize", "bool", True, "instance-normalize SincNet layers"),
               Param("tdnn.embedding_dim", "int", 512, "embedding dimension", at_least(1)),
               Param("tdnn.hidden_dim", "int", 512,
                     "width of the TDNN frame layers (spkemb extension; 512 in the x-vector)",
                     at_least(1)),
               Param("embedding.batch_normalize", "bool", False, "batch-normalize embeddings"),
               Param("embedding.unit_normalize", "bool", False, "scale embeddings to unit length")),
              "SincNet front end, x-vector TDNN, statistics pooling"),
    Component("task", "AdditiveAngularMarginLoss", _LOSS + "AdditiveAngularMarginLoss",
              _AAM + (_MARGIN_SCHEDULER,) + _TASK_COMMON, "additive angular margin loss (ArcFace)"),
    Component("task", "AdditiveMarginLoss", _LOSS + "AdditiveMarginLoss",
              _AM + (_MARGIN_SCHEDULER,) + _TASK_COMMON, "additive margin softmax loss (CosFace / AM-softmax)"),
    Component("task", "Softmax", _LOSS + "Softmax", _TASK_COMMON, "plain softmax cross-entropy"),
    Component("scheduler", "ConstantScheduler", _SCHED + "ConstantScheduler",
              (Param("learning_rate", "float", 0.01, "learning rate", positive),),
              "constant learning rate"),
    Component("scheduler", "CyclicScheduler", _SCHED + "CyclicScheduler",
              (Param("learning_rate", "float", 0.01, "peak learning rate of each cycle", positive),
               Param("min_lr", "float", 0.001, "lowest learning rate (default: learning_rate / 10)",
                     positive),
               Param("max_lr", "float", 0.01, "peak learning rate (same as learning_rate)", positive),
               Param("epochs_per_cycle", "int", 10, "epochs per learning-rate cycle", at_least(1))),
              "learning rate cycling between min_lr and max_lr (Smith, WACV 2017)"),
    Component("scheduler", "ExponentialDecrease", "ExponentialDecrease",
              (Param("initial_lr", "float", 0.1, "learning rate at step 0 of the decay", positive),
               Param("final_lr", "float", 5e-5, "learning rate at the end of the last epoch (--to)",
                     positive),
               Param("warm_up_epoch", "int", 6, "epochs of linear warm-up from 0", at_least(0))),
              "linear warm-up, then exponential decay from initial_lr to final_lr at --to (WeSpeaker)"),
    Component("optimizer", "SGD", "torch.optim.SGD",
              (Param("momentum", "float", 0.9, "SGD momentum", in_range(0.0, 1.0)),
               Param("nesterov", "bool", True, "Nesterov momentum (needs momentum > 0)"),
               Param("weight_decay", "float", 0.0, "L2 weight decay", at_least(0))),
              "stochastic gradient descent"),
)

#: the name each section gets when it is left out (None: no default, or nothing)
SECTION_DEFAULTS = {"feature_extraction": "RawAudio", "data_augmentation": None, "architecture": None,
                    "task": None, "scheduler": "ConstantScheduler", "optimizer": "SGD"}


def components(section: str) -> tuple[Component, ...]:
    return tuple(c for c in COMPONENTS if c.section == section)


def find_component(section: str, name: Any) -> Component | None:
    """The component ``name`` (short, or full ``pyannote.audio.*``) designates in ``section``."""
    return next((c for c in components(section) if name in (c.name, c.full)), None)


def component(section: str, name: str) -> Component:
    found = find_component(section, name)
    if found is None:
        raise KeyError(f"{section}: {name}")
    return found


def accepted_names(section: str) -> str:
    return ", ".join(c.name if c.full == c.name else f"{c.name} ({c.full})" for c in components(section))


@dataclass(frozen=True)
class FieldSpec:
    """One field of the config form, keyed as in :func:`engine.config.config_to_dict`.

    ``names`` lists the section names the field applies to (empty for a ``*.name`` field);
    the same key can appear twice when two names give it different defaults.
    """

    key: str
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    names: tuple[str, ...] = ()


def config_fields() -> list[FieldSpec]:
    """Every field of a config: each section's ``name`` (with its choices) and each parameter."""
    fields: list[FieldSpec] = []
    for section in SECTIONS:
        names = tuple(c.name for c in components(section))
        default = SECTION_DEFAULTS[section] or names[0]
        fields.append(FieldSpec(f"{section}.name", "choice", default,
                                f"which {section.replace('_', ' ')} to use", choices=names))
        merged: dict[tuple[str, Any, str], list[str]] = {}
        for comp in components(section):
            for p in comp.params:
                merged.setdefault((p.name, p.default, p.help), []).append(comp.name)
        for (name, default, help_), users in merged.items():
            p = next(p for c in components(section) for p in c.params if p.name == name)
            fields.append(FieldSpec(f"{section}.params.{name}", p.kind, default, help_,
                                    names=tuple(users)))
    return fields


def validate_field(key: str, text: str, name: str | None = None) -> str | None:
    """The problem with ``text`` typed in field ``key`` (for section name ``name``), or None.

    ``text`` is read as YAML (``0.05``, ``true``, ``[5, 1, 1]``); the type and range rules
    are those of ``spkemb-engine config check``. Rules between fields (snr_min <= snr_max)
    are checked when the whole config is parsed.
    """
    section, _, rest = key.partition(".")
    if section not in SECTIONS:
        return f"unknown section {section!r}; accepted: {', '.join(SECTIONS)}"
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as e:
        return f"not a YAML value: {getattr(e, 'problem', None) or e}"
    if rest == "name":
        if find_component(section, value) is None:
            return f"unknown name {describe(value)}; accepted: {accepted_names(section)}"
        return None
    param_name = rest.removeprefix("params.")
    comps = [c for c in components(section) if name is None or find_component(section, name) is c]
    params = [p for c in comps if (p := c.param(param_name)) is not None]
    if not params:
        return f"unknown field {key!r}"
    try:
        params[0].value(value)
    except Invalid as e:
        return str(e)
    return None


#: :func:`config_fields`, computed once
FIELD_SPECS: tuple[FieldSpec, ...] = tuple(config_fields())
