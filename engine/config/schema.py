"""The typed config: frozen (hashable) dataclasses whose fields and defaults come from the spec table.

Each parameter is a row of :mod:`engine.config.specs`; :func:`table_fields` turns the rows of a
section into typed fields with the row's default, so a class here only declares what is not
a parameter (the chosen name, a nested part) and the properties derived from its fields.
Where the defaults come from is told in :mod:`engine.config.specs`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from engine.config.rules import apply_rules
from engine.config.specs import FBANK_BACKBONES, Param, components, reference_component
from engine.config.values import KIND_TYPES, MarginSchedule

if TYPE_CHECKING:
    class _TableMeta(type):
        def __getattr__(cls, name: str) -> Any: ...

    class _TableFields(metaclass=_TableMeta):
        """What a type checker knows of a :func:`table_fields` class: its fields come from the spec
        table when the module is imported, so they are read and given as ``Any``."""

        __dataclass_fields__: ClassVar[dict[str, Any]]

        def __init__(self, **fields: Any) -> None: ...

        def __getattr__(self, name: str) -> Any: ...
else:
    _TableFields = object


def _rows(section: str, names: tuple[str, ...], group: str | None) -> list[Param]:
    return [p for c in components(section) if not names or c.name in names
            for p in c.params if p.group == group]


def _reference_name(section: str) -> str:
    """The name of a required section's reference component (the one a left-out section is)."""
    ref = reference_component(section)
    if ref is None:
        raise KeyError(f"{section}: no reference component")
    return ref.name


def table_defaults(section: str, names: tuple[str, ...] = (), group: str | None = None) -> dict[str, Any]:
    """Each field of ``section``'s parameters (of components ``names``, in sub-mapping ``group``) and
    its default: what a left-out section resolves to, i.e. its reference component's defaults after
    its rules; a field that component lacks takes the default of the first row that fills it."""
    rows = _rows(section, names, group)
    defaults: dict[str, Any] = {}
    for p in rows:
        defaults.setdefault(p.field, p.field_default)
    ref = reference_component(section)
    if ref is not None and (not names or ref.name in names):
        own = {p.field: p.field_default for p in ref.params if p.group == group}
        resolved = apply_rules(ref.name, own, set())
        defaults.update((k, v) for k, v in resolved.items() if k in defaults)
    return defaults


def table_fields(section: str, *names: str, group: str | None = None) -> Callable[[type], type]:
    """Make a frozen dataclass of a class, adding one typed field per parameter of the spec table.

    The class's own annotated fields come first; then each field :func:`table_defaults` finds for
    ``section`` (only components ``names`` if given; only ``group.*`` parameters if given), annotated
    with its kind's type. Two rows filling one field (a margin in two losses) must agree on the kind.
    """
    def make(cls: type) -> type:
        annotations = dict(cls.__dict__.get("__annotations__", {}))
        kinds: dict[str, str] = {}
        for p in _rows(section, names, group):
            if kinds.setdefault(p.field, p.kind) != p.kind:
                raise TypeError(f"{cls.__name__}.{p.field}: rows of kinds {kinds[p.field]} and {p.kind}")
        for name, default in table_defaults(section, names, group).items():
            annotations[name] = KIND_TYPES[kinds[name]]
            setattr(cls, name, default)
        cls.__annotations__ = annotations
        return dataclass(frozen=True)(cls)
    return make


def _default_name(section: str) -> str:
    """The name a left-out section resolves to (every section but data_augmentation has one)."""
    reference = reference_component(section)
    if reference is None:
        raise AssertionError(f"{section} has no reference component")
    return reference.name


@table_fields("feature_extraction")
class FeatureExtraction(_TableFields):
    """``RawAudio``: the network reads the waveform itself; ``Fbank``: its first layer computes
    log-mel filterbanks (the ``num_mel_bins`` ... ``window_type`` fields, unused with RawAudio)."""

    name: str = _default_name("feature_extraction")


@table_fields("data_augmentation", "AddReverb")
class ReverbConfig(_TableFields):
    """``AddReverb``: convolve a chunk with a random room impulse response."""


@table_fields("data_augmentation", "AddNoise", "SpeedPerturb")
class AugmentationConfig(_TableFields):
    """Data augmentation; additive noise is on when ``collection`` is not empty.

    ``speeds`` are the ``SpeedPerturb`` factors (empty: no speed perturbation).
    """

    reverb: ReverbConfig | None = None

    @property
    def noise(self) -> bool:
        """Whether ``AddNoise`` is part of the augmentation."""
        return bool(self.collection)


@table_fields("architecture", group="sincnet")
class SincNetConfig(_TableFields):
    # the feature extraction's, which the SincNet filters are designed for
    sample_rate: int = FeatureExtraction.sample_rate


@table_fields("architecture", group="tdnn")
class TDNNConfig(_TableFields):
    pass


@table_fields("architecture", group="embedding")
class EmbeddingConfig(_TableFields):
    pass


@table_fields("architecture", *FBANK_BACKBONES)
class BackboneConfig(_TableFields):
    """The parameters of the filterbank backbones (ResNet34, ECAPA_TDNN, CAMPPlus); a field another
    backbone does not have keeps its default. ``embed_dim`` defaults to the first row's (ResNet34's)."""


@dataclass(frozen=True)
class ArchitectureConfig:
    """``SincTDNN``: SincNet front end, x-vector TDNN, statistics pooling, embedding (its groups);
    or one of the filterbank backbones (``name``), whose parameters are in ``backbone``."""

    sincnet: SincNetConfig = field(default_factory=SincNetConfig)
    tdnn: TDNNConfig = field(default_factory=TDNNConfig)
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    name: str = _default_name("architecture")
    backbone: BackboneConfig = field(default_factory=BackboneConfig)

    @property
    def embedding_dim(self) -> int:
        """Dimension of the network's embeddings (what the classifier head takes)."""
        return self.tdnn.embedding_dim if self.name == "SincTDNN" else self.backbone.embed_dim


@table_fields("task")
class TaskConfig(_TableFields):
    """The loss and how training chunks are drawn (``per_epoch`` is in days of audio)."""

    loss: str = _reference_name("task")

    @property
    def batch_size(self) -> int:
        """Chunks per batch: ``per_fold`` speakers times ``per_label`` chunks each."""
        return self.per_fold * self.per_label


@table_fields("scheduler")
class SchedulerConfig(_TableFields):
    """Learning rate schedule; ``min_lr``/``max_lr`` equal ``learning_rate`` when constant.

    ``initial_lr``, ``final_lr`` and ``warm_up_epoch`` are ``ExponentialDecrease``'s.
    """

    name: str = _reference_name("scheduler")


@table_fields("optimizer")
class OptimizerConfig(_TableFields):
    """SGD settings (optional ``optimizer`` section; not part of pyannote's format)."""


@dataclass(frozen=True)
class Config:
    """The whole resolved config.yml."""

    feature_extraction: FeatureExtraction = field(default_factory=FeatureExtraction)
    augmentation: AugmentationConfig | None = None
    architecture: ArchitectureConfig = field(default_factory=ArchitectureConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)

    @property
    def sample_rate(self) -> int:
        return self.feature_extraction.sample_rate


__all__ = [
    "ArchitectureConfig",
    "AugmentationConfig",
    "BackboneConfig",
    "Config",
    "EmbeddingConfig",
    "FeatureExtraction",
    "MarginSchedule",
    "OptimizerConfig",
    "ReverbConfig",
    "SchedulerConfig",
    "SincNetConfig",
    "TDNNConfig",
    "TaskConfig",
    "table_defaults",
    "table_fields",
]
