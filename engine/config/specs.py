"""What a config.yml may say: every section, name and parameter, its type, default and range.

This table is the one source of each parameter: the config dataclasses
(:mod:`engine.config.schema`) take their fields and defaults from it, the parser
(:mod:`engine.config.parse`) reads by it, :mod:`engine.config.dump` writes by it and the
TUI's config form (:mod:`engine.config.form`) shows it. Adding a parameter is adding a row.

Defaults are pyannote.audio 1.x's own wherever it has one, so that a config that
leaves a parameter out means what it meant there:

- ``AdditiveAngularMarginLoss(duration=None, per_label=1, per_fold=32, per_epoch=7,
  label_min_duration=0., margin=0.1, s=7.0)``
  (pyannote/audio/embedding/approaches/arcface_loss.py, 1.x). ``duration=None`` (variable
  length chunks) is not supported here: the default is the tutorial's 2 s.
- ``SincNet(waveform_normalize=True, sample_rate=16000, stride=[1, 1, 1],
  instance_normalize=True, ...)`` (pyannote/audio/models/sincnet.py, 1.x).
- ``XVectorNet(input_dim, embedding_dim=512)`` with 512-wide frame layers
  (pyannote/audio/models/tdnn.py); ``hidden_dim`` is this engine's extension.
- ``Embedding(batch_normalize=False, unit_normalize=False)`` (pyannote/audio/models/models.py).
- ``AddNoise(collection='MUSAN.Collection.BackgroundNoise', snr_min=5, snr_max=20)``
  (pyannote/audio/augmentation/noise.py).
- ``CyclicScheduler(epochs_per_cycle=10)`` whose rate runs from 0.1 x to 1 x the base
  rate and back (pyannote/audio/train/schedulers.py; Smith, "Cyclical Learning Rates for
  Training Neural Networks", WACV 2017).

The log-mel front end and the backbones take WeSpeaker's (wenet-e2e/wespeaker
``wespeaker/dataset/processor.py`` ``compute_fbank``: 80 bins, 25 ms / 10 ms, dither 1.0, a
Hamming window, the waveform scaled by 2^15; ``wespeaker/models/resnet.py``, ``ecapa_tdnn.py``,
``campplus.py`` and ``examples/voxceleb/v2/conf/*.yaml``: ResNet34 m_channels 32, embed 256,
TSTP; ECAPA_TDNN_GLOB_c512 embed 192, ASTP; CAMPPlus embed 512, TSTP).

The modern recipe's parts (issue 13) take WeSpeaker's defaults
(wenet-e2e/wespeaker ``examples/voxceleb/v2/conf/*.yaml``, ``wespeaker/utils/schedulers.py``):

- ``ExponentialDecrease(initial_lr=0.1, final_lr=5e-5, warm_up_epoch=6)``, warmed up from 0;
- ``MarginScheduler(increase_start_epoch=20, fix_start_epoch=40, increase_type='exp')`` from
  a margin of 0 to the task's margin;
- speed perturbation with factors ``[0.9, 1.0, 1.1]``, each a class of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.config.values import Invalid, at_least, coerce, in_range, multiple_of, positive, within

#: sections of the tutorial's format, in the order they are written
SECTIONS = ("feature_extraction", "data_augmentation", "architecture", "task", "scheduler", "optimizer")
REQUIRED_SECTIONS = ("architecture", "task")

class _AsDefault:
    def __repr__(self) -> str:
        return "AS_DEFAULT"


#: a row's ``absent`` when not given: the field's default is the row's default
AS_DEFAULT: Any = _AsDefault()


@dataclass(frozen=True)
class Param:
    """One parameter of one component (architecture ones are ``group.name``).

    ``field`` is the attribute of the config dataclass it fills (the name's last part unless
    given); ``absent`` is that attribute's value when the component is not chosen, where it
    differs from ``default`` (an augmentation that is off).
    """

    name: str
    kind: str
    default: Any
    help: str
    check: Callable[[Any], str | None] | None = None
    required: bool = False
    field: str = ""
    absent: Any = AS_DEFAULT

    def __post_init__(self) -> None:
        if not self.field:
            object.__setattr__(self, "field", self.name.rsplit(".", 1)[-1])

    @property
    def group(self) -> str | None:
        """The sub-mapping (``sincnet``, ``tdnn``, ``embedding``) the parameter sits in, if any."""
        return self.name.split(".", 1)[0] if "." in self.name else None

    @property
    def field_default(self) -> Any:
        """The config dataclass attribute's default."""
        return self.default if self.absent is AS_DEFAULT else self.absent

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


# Upper bounds: far above any published recipe (VoxCeleb: 2-6 s chunks, 128-512 speakers of 1-2
# chunks, 5-25 days an epoch, 512-wide layers), low enough that a typo (an extra zero or three)
# is named here instead of dying in the memory allocator; the memory a whole config needs is
# estimated from them by engine.config.footprint.
_TASK_COMMON = (
    Param("duration", "float", 2.0, "chunk duration in seconds (fixed-length training chunks)",
          within(positive, 60)),
    Param("per_fold", "int", 32, "speakers per batch", within(at_least(2), 10_000)),
    Param("per_label", "int", 1, "chunks per speaker in a batch", within(at_least(1), 1_000)),
    Param("per_epoch", "float", 7.0, "days of audio per epoch (e.g. 0.02 = 28.8 minutes)",
          within(positive, 1_000)),
    Param("label_min_duration", "float", 0.0,
          "drop training speakers with less speech than this (seconds)", within(at_least(0), 86_400)),
)

# Additive angular margin (ArcFace: Deng et al., CVPR 2019): cos(theta + m); a margin of
# pi/2 or more no longer keeps the target logit monotonic in theta over [0, pi/2].
_AAM = (Param("margin", "float", 0.1, "angular margin m in radians, cos(theta + m)",
              in_range(0.0, math.pi / 2, high_text="pi/2")),
        Param("s", "float", 7.0, "logit scale", within(positive, 1_000)))
# WeSpeaker's MarginScheduler (wespeaker/utils/schedulers.py): the margin rises from 0 to
# `margin` between two epochs; null keeps it constant, as pyannote 1.x.
_MARGIN_SCHEDULER = Param("margin_scheduler", "margin_schedule", None,
                          "ramp the margin from 0 up to `margin`: {increase_start_epoch, fix_start_epoch, "
                          "increase_type: exp|linear}, or null for a constant margin (WeSpeaker)")
# Additive margin softmax (Wang et al., IEEE SPL 2018): cos(theta) - m, with m = 0.35 and
# s = 30 the paper's values (pyannote 1.x has no such loss to take defaults from).
_AM = (Param("margin", "float", 0.35, "cosine margin m, cos(theta) - m", in_range(0.0, 1.0)),
       Param("s", "float", 30.0, "logit scale", within(positive, 1_000)))
# WeSpeaker's pooling_layers by name, as its ResNet and CAM++ take them (ECAPA-TDNN keeps its ASTP)
_POOLING = Param("pooling_func", "pooling", "TSTP", "statistics pooling: TSTP (mean and std over time), "
                 "TAP (mean), TSDP (std) or ASTP (attentive)")

# Far beyond any recipe, and within float32: 1e300 passed as a learning rate, and -1e6 dB as an SNR,
# then failed training with a traceback (a float overflow); a rate of 1 Hz "read" 2 samples a chunk.
_LR = within(positive, 1_000)
_SNR = in_range(-100.0, 100.0, high_open=False)
_SAMPLE_RATE = Param("sample_rate", "int", 16000, "sample rate in Hz audio is read at",
                     within(at_least(1_000), 384_000))

_SCHED = "pyannote.audio.train.schedulers."
_LOSS = "pyannote.audio.embedding.approaches."

COMPONENTS: tuple[Component, ...] = (
    Component("feature_extraction", "RawAudio", "pyannote.audio.features.RawAudio",
              (_SAMPLE_RATE,),
              "raw waveform, resampled and downmixed to mono"),
    Component("feature_extraction", "Fbank", "Fbank",
              (_SAMPLE_RATE,
               Param("num_mel_bins", "int", 80, "mel filterbank channels (the backbone's feat_dim)",
                     within(at_least(1), 1_024)),
               Param("frame_length", "float", 25.0, "analysis window in milliseconds", within(positive, 1_000)),
               Param("frame_shift", "float", 10.0, "hop between frames in milliseconds", within(positive, 1_000)),
               Param("dither", "float", 1.0, "Gaussian dither (in 16-bit sample units) added while training only",
                     at_least(0)),
               Param("window_type", "window", "hamming", "analysis window: hamming (WeSpeaker) or povey (Kaldi)")),
              "Kaldi-compatible log-mel filterbank with per-utterance mean normalisation, computed in the network"),
    Component("data_augmentation", "AddNoise", "pyannote.audio.augmentation.noise.AddNoise",
              (Param("snr_min", "float", 5.0, "lowest signal-to-noise ratio in dB", _SNR),
               Param("snr_max", "float", 20.0, "highest signal-to-noise ratio in dB", _SNR),
               Param("collection", "protocols", ("MUSAN.Collection.BackgroundNoise",),
                     "Collection protocols whose files are the noises", absent=())),
              "add a random noise file at a random SNR in [snr_min, snr_max]"),
    Component("data_augmentation", "AddReverb", "pyannote.audio.augmentation.reverb.AddReverb",
              (Param("collection", "protocols", None,
                     "Collection protocols whose files are room impulse responses", required=True,
                     absent=()),
               Param("probability", "float", 0.5, "share of chunks reverberated",
                     in_range(0.0, 1.0, high_open=False))),
              "convolve chunks with a random room impulse response (spkemb extension)"),
    Component("data_augmentation", "SpeedPerturb", "SpeedPerturb",
              (Param("factors", "factors", (0.9, 1.0, 1.1),
                     "speed factors; each factor's copy of a speaker is a training class of its own",
                     field="speeds", absent=()),),
              "speed perturbation by resampling, each factor a new class (WeSpeaker, 3D-Speaker)"),
    Component("architecture", "SincTDNN", "pyannote.audio.models.SincTDNN",
              (Param("sincnet.stride", "stride", (1, 1, 1), "stride of the 3 SincNet convolutions"),
               Param("sincnet.waveform_normalize", "bool", True, "standardize each waveform"),
               Param("sincnet.instance_normalize", "bool", True, "instance-normalize SincNet layers"),
               Param("tdnn.embedding_dim", "int", 512, "embedding dimension",
                     within(at_least(1), 8_192)),
               Param("tdnn.hidden_dim", "int", 512,
                     "width of the TDNN frame layers (spkemb extension; 512 in the x-vector)",
                     within(at_least(1), 8_192)),
               Param("embedding.batch_normalize", "bool", False, "batch-normalize embeddings"),
               Param("embedding.unit_normalize", "bool", False, "scale embeddings to unit length")),
              "SincNet front end, x-vector TDNN, statistics pooling"),
    Component("architecture", "ResNet34", "ResNet34",
              (Param("m_channels", "int", 32, "channels of the first stage (x2, x4, x8 in the next ones)",
                     at_least(1)),
               Param("embed_dim", "int", 256, "embedding dimension", at_least(1)),
               _POOLING,
               Param("two_emb_layer", "bool", False, "a second embedding layer after ReLU and batch norm")),
              "WeSpeaker's ResNet34 on log-mel filterbanks, statistics pooling (pooling_func); needs Fbank"),
    Component("architecture", "ECAPA_TDNN", "ECAPA_TDNN",
              (Param("channels", "int", 512, "SE-Res2Net block channels (the paper: 512 or 1024)", multiple_of(8)),
               Param("embed_dim", "int", 192, "embedding dimension", at_least(1)),
               Param("global_context", "bool", True,
                     "attentive pooling sees the utterance's mean and std (WeSpeaker's GLOB variants)")),
              "WeSpeaker's ECAPA-TDNN on log-mel filterbanks, attentive statistics pooling (ASTP); needs Fbank"),
    Component("architecture", "CAMPPlus", "CAMPPlus",
              (Param("embed_dim", "int", 512, "embedding dimension", at_least(1)),
               Param("growth_rate", "int", 32, "channels each dense layer adds", at_least(1)),
               Param("bn_size", "int", 4, "bottleneck width of a dense layer, in growth_rate units", at_least(1)),
               Param("init_channels", "int", 128, "channels of the first TDNN layer", at_least(2)),
               _POOLING),
              "WeSpeaker's CAM++ on log-mel filterbanks, statistics pooling (pooling_func); needs Fbank"),
    Component("task", "AdditiveAngularMarginLoss", _LOSS + "AdditiveAngularMarginLoss",
              _AAM + (_MARGIN_SCHEDULER,) + _TASK_COMMON, "additive angular margin loss (ArcFace)"),
    Component("task", "SubCenterInterTopKLoss", "SubCenterInterTopKLoss",
              _AAM + (Param("K", "int", 3, "centres per speaker; a chunk scores its closest (1: plain ArcFace)",
                            within(at_least(1), 100)),
                      Param("mp", "float", 0.06, "inter-top-k penalty in radians: cos(theta - mp) for the "
                            "k_top closest other speakers", in_range(0.0, math.pi / 2, high_text="pi/2")),
                      Param("k_top", "int", 5, "other speakers penalised per chunk (0: none; fewer than "
                            "the training speakers)", within(at_least(0), 10_000)),
                      _MARGIN_SCHEDULER) + _TASK_COMMON,
              "sub-centre ArcFace with an inter-top-k penalty (WeSpeaker's arc_margin_intertopk_subcenter)"),
    Component("task", "AdditiveMarginLoss", _LOSS + "AdditiveMarginLoss",
              _AM + (_MARGIN_SCHEDULER,) + _TASK_COMMON, "additive margin softmax loss (CosFace / AM-softmax)"),
    Component("task", "Softmax", _LOSS + "Softmax", _TASK_COMMON, "plain softmax cross-entropy"),
    Component("scheduler", "ConstantScheduler", _SCHED + "ConstantScheduler",
              (Param("learning_rate", "float", 0.01, "learning rate", _LR),),
              "constant learning rate"),
    Component("scheduler", "CyclicScheduler", _SCHED + "CyclicScheduler",
              (Param("learning_rate", "float", 0.01, "peak learning rate of each cycle", _LR),
               Param("min_lr", "float", 0.001, "lowest learning rate (default: learning_rate / 10)", _LR),
               Param("max_lr", "float", 0.01, "peak learning rate (same as learning_rate)", _LR),
               Param("epochs_per_cycle", "int", 10, "epochs per learning-rate cycle",
                     within(at_least(1), 1_000_000))),
              "learning rate cycling between min_lr and max_lr (Smith, WACV 2017)"),
    Component("scheduler", "ExponentialDecrease", "ExponentialDecrease",
              (Param("initial_lr", "float", 0.1, "learning rate at step 0 of the decay", _LR),
               Param("final_lr", "float", 5e-5, "learning rate at the end of the last epoch (--to)", _LR),
               Param("warm_up_epoch", "int", 6, "epochs of linear warm-up from 0",
                     within(at_least(0), 1_000_000))),
              "linear warm-up, then exponential decay from initial_lr to final_lr at --to (WeSpeaker)"),
    Component("optimizer", "SGD", "torch.optim.SGD",
              (Param("momentum", "float", 0.9, "SGD momentum", in_range(0.0, 1.0)),
               Param("nesterov", "bool", True, "Nesterov momentum (needs momentum > 0)"),
               Param("weight_decay", "float", 0.0, "L2 weight decay", within(at_least(0), 1_000))),
              "stochastic gradient descent"),
)

#: the name each section gets when it is left out (None: no default, or nothing)
SECTION_DEFAULTS = {"feature_extraction": "RawAudio", "data_augmentation": None, "architecture": None,
                    "task": None, "scheduler": "ConstantScheduler", "optimizer": "SGD"}


#: the architectures that read log-mel filterbanks (feature_extraction Fbank), not the waveform
FBANK_BACKBONES = ("ResNet34", "ECAPA_TDNN", "CAMPPlus")


def components(section: str) -> tuple[Component, ...]:
    return tuple(c for c in COMPONENTS if c.section == section)


def reference_component(section: str) -> Component | None:
    """The component whose defaults are the section's dataclass defaults: the one a left-out
    section resolves to, else the first of a required section; None for ``data_augmentation``,
    which is off when left out."""
    name = SECTION_DEFAULTS[section]
    if name is None:
        return components(section)[0] if section in REQUIRED_SECTIONS else None
    return component(section, name)


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
