"""The typed config: frozen (hashable) dataclasses with their defaults in code.

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

The modern recipe's parts (issue 13) take WeSpeaker's defaults
(wenet-e2e/wespeaker ``examples/voxceleb/v2/conf/*.yaml``, ``wespeaker/utils/schedulers.py``):

- ``ExponentialDecrease(initial_lr=0.1, final_lr=5e-5, warm_up_epoch=6)``, warmed up from 0;
- ``MarginScheduler(increase_start_epoch=20, fix_start_epoch=40, increase_type='exp')`` from
  a margin of 0 to the task's margin;
- speed perturbation with factors ``[0.9, 1.0, 1.1]``, each a class of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

@dataclass(frozen=True)
class FeatureExtraction:
    """``RawAudio``: the network reads the waveform itself."""

    sample_rate: int = 16000


@dataclass(frozen=True)
class ReverbConfig:
    """``AddReverb``: convolve a chunk with a random room impulse response."""

    collection: tuple[str, ...] = ()
    probability: float = 0.5


@dataclass(frozen=True)
class AugmentationConfig:
    """Data augmentation; additive noise is on when ``collection`` is not empty.

    ``speeds`` are the ``SpeedPerturb`` factors (empty: no speed perturbation).
    """

    collection: tuple[str, ...] = ()
    snr_min: float = 5.0
    snr_max: float = 20.0
    reverb: ReverbConfig | None = None
    speeds: tuple[float, ...] = ()

    @property
    def noise(self) -> bool:
        """Whether ``AddNoise`` is part of the augmentation."""
        return bool(self.collection)


@dataclass(frozen=True)
class SincNetConfig:
    stride: tuple[int, int, int] = (1, 1, 1)
    waveform_normalize: bool = True
    instance_normalize: bool = True
    sample_rate: int = 16000


@dataclass(frozen=True)
class TDNNConfig:
    embedding_dim: int = 512
    hidden_dim: int = 512


@dataclass(frozen=True)
class EmbeddingConfig:
    batch_normalize: bool = False
    unit_normalize: bool = False


@dataclass(frozen=True)
class ArchitectureConfig:
    """``SincTDNN``: SincNet front end, x-vector TDNN, statistics pooling, embedding."""

    sincnet: SincNetConfig = field(default_factory=SincNetConfig)
    tdnn: TDNNConfig = field(default_factory=TDNNConfig)
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)


@dataclass(frozen=True)
class MarginSchedule:
    """WeSpeaker's ``MarginScheduler``: margin 0 before ``increase_start_epoch``, rising to the
    task's margin until ``fix_start_epoch`` (exponentially or linearly), then fixed (1-based epochs)."""

    increase_start_epoch: int = 20
    fix_start_epoch: int = 40
    increase_type: str = "exp"


@dataclass(frozen=True)
class TaskConfig:
    """The loss and how training chunks are drawn (``per_epoch`` is in days of audio)."""

    loss: str = "AdditiveAngularMarginLoss"
    margin: float = 0.1
    s: float = 7.0
    duration: float = 2.0
    per_fold: int = 32
    per_label: int = 1
    per_epoch: float = 7.0
    label_min_duration: float = 0.0
    margin_scheduler: MarginSchedule | None = None

    @property
    def batch_size(self) -> int:
        """Chunks per batch: ``per_fold`` speakers times ``per_label`` chunks each."""
        return self.per_fold * self.per_label


@dataclass(frozen=True)
class SchedulerConfig:
    """Learning rate schedule; ``min_lr``/``max_lr`` equal ``learning_rate`` when constant.

    ``initial_lr``, ``final_lr`` and ``warm_up_epoch`` are ``ExponentialDecrease``'s.
    """

    name: str = "ConstantScheduler"
    learning_rate: float = 0.01
    min_lr: float = 0.01
    max_lr: float = 0.01
    epochs_per_cycle: int = 10
    initial_lr: float = 0.1
    final_lr: float = 5e-5
    warm_up_epoch: int = 6


@dataclass(frozen=True)
class OptimizerConfig:
    """SGD settings (optional ``optimizer`` section; not part of pyannote's format)."""

    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 0.0


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
