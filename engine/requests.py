"""What each command is asked to do: one frozen, typed request per ``spkemb-engine`` command.

``engine.cli`` turns the command line into one of these; nothing below it sees argparse. The
field names are the command's option names (``--log-every`` -> ``log_every``), so a request reads
like the command line that made it. Torch-free.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import TypeVar

from engine.errors import SpkembError
from engine.layout import CheckpointName

R = TypeVar("R", bound="Request")

#: apply's finest window step, a fraction of the window: 1e-9 was a hop of one sample (ETA: 214 hours)
MIN_STEP = 0.001


@dataclass(frozen=True, kw_only=True)
class Request:
    """The base of every request: made from the parsed command line (each command's fields are its own)."""

    @classmethod
    def from_namespace(cls: type[R], args: argparse.Namespace) -> R:
        """The request of parsed arguments; argparse's own keys (the command's name) are left out."""
        fields = {f.name: str(f.type) for f in dataclasses.fields(cls)}
        # a repeatable option (``--tag``) arrives as argparse's list: a frozen request holds a tuple
        return cls(**{k: tuple(v) if isinstance(v, list) and fields[k].startswith("tuple") else v
                      for k, v in vars(args).items() if k in fields})


@dataclass(frozen=True, kw_only=True)
class TrainOptions(Request):
    """The options of ``train`` that ``sbatch`` passes on to it."""

    exp_dir: str
    protocol: str
    subset: str = "train"
    to: int | None = None
    parallel: int = 2
    device: str | None = None
    seed: int = 0
    #: how the run is compared (engine.records.labels): its group, tags (``--tag``, repeatable) and note
    group: str | None = None
    tag: tuple[str, ...] | None = None
    note: str | None = None
    resume: bool = False
    strict: bool = False
    log_every: float = 2.0
    events: bool = False
    init_from: str | None = None
    init_classifier: bool = False
    #: use a checkpoint whose file changed since its row recorded its sha256
    trust_checkpoint: bool = False
    db: str | None = None
    database: str | None = None


@dataclass(frozen=True, kw_only=True)
class TrainRequest(TrainOptions):
    """``spkemb-engine train``."""

    #: list and check the protocol again instead of loading the cached index
    reindex: bool = False


@dataclass(frozen=True, kw_only=True)
class SbatchRequest(TrainOptions):
    """``spkemb-engine sbatch``: a batch script running ``train`` with the same options."""

    nodes: int = 1
    gpus_per_node: int = 1
    cpus_per_task: int = 8
    time: str = "2-00:00:00"
    partition: str | None = None
    output: str | None = None


@dataclass(frozen=True, kw_only=True)
class SweepRequest(Request):
    """``spkemb-engine sweep``: trials of a base config, queued on slots (or a SLURM array)."""

    base_config: str
    protocol: str
    #: ``KEY=V1,V2`` (repeatable): the grid
    set: tuple[str, ...] | None = None
    seeds: int = 1
    random: int | None = None
    optuna: int | None = None
    space: str | None = None
    slots: str = "cpu"
    epochs: int | None = None
    name: str | None = None
    out: str | None = None
    subset: str = "train"
    val_subset: str = "development"
    every: int = 1
    no_validate: bool = False
    prune: str = "median"
    prune_after: int = 1
    parallel: int = 2
    no_queue: bool = False
    sbatch: bool = False
    time: str = "2-00:00:00"
    partition: str | None = None
    db: str | None = None
    database: str | None = None

    def __post_init__(self) -> None:
        if self.optuna is not None and self.space is None:
            raise SpkembError("--optuna N needs --space FILE: the keys to search and their ranges "
                              "(see docs/sweeps.md)")
        if self.optuna is not None and (self.set or self.random is not None):
            raise SpkembError("--optuna searches --space FILE: leave out --set and --random")
        if self.optuna is None and self.space is not None:
            raise SpkembError("--space FILE is the search space of --optuna N: add --optuna N")
        if self.optuna is None and not self.set:
            raise SpkembError("nothing to sweep: add --set KEY=V1,V2 (repeatable), or --optuna N --space FILE")
        if self.prune == "halving" and self.optuna is None:
            raise SpkembError("--prune halving is Optuna's successive halving: use it with --optuna N, "
                              "or --prune median for a grid")


@dataclass(frozen=True, kw_only=True)
class QueueRequest(Request):
    """``spkemb-engine queue``: the process that starts queued runs on free slots."""

    slots: str = "cpu"
    poll: float = 2.0
    idle_exit: float = 60.0
    detach: bool = False
    stop: bool = False
    #: queued runs to take off the queue
    cancel: tuple[int, ...] = ()
    #: a sweep to end: no more trials, its queued runs off the queue
    cancel_sweep: str | None = None
    db: str | None = None


@dataclass(frozen=True, kw_only=True)
class ValidateRequest(Request):
    """``spkemb-engine validate``."""

    trn_dir: str
    protocol: str
    subset: str = "test"
    from_epoch: int | None = None
    to: int | None = None
    every: int = 1
    chronological: bool = False
    whole_file: bool = False
    rescore: bool = False
    score_norm: str | None = None
    cohort_size: int = 300
    cohort_files: int = 3
    calibration: str | None = None
    device: str | None = None
    batch: int = 64
    poll: float = 2.0
    trust_checkpoint: bool = False
    db: str | None = None
    database: str | None = None

    def __post_init__(self) -> None:
        if self.from_epoch is not None and self.to is not None and self.from_epoch > self.to:
            raise SpkembError(f"--from {self.from_epoch} is after --to {self.to}: no epoch to evaluate; "
                              f"pass --from at most {self.to}")
        if self.calibration is not None and self.calibration == self.subset:
            raise SpkembError(f"--calibration {self.calibration} is the evaluated subset: a calibration trained on "
                              "the trials it is judged on flatters it; name another subset (e.g. development)")


@dataclass(frozen=True, kw_only=True)
class DiarizationOptions(Request):
    """How the diarization check scores (``diarize``, ``apply --diarize``)."""

    collar: float = 0.0
    skip_overlap: bool = False
    num_speakers: str = "oracle"


@dataclass(frozen=True, kw_only=True)
class ApplyRequest(DiarizationOptions):
    """``spkemb-engine apply``."""

    val_dir: str
    protocol: str
    step: float = 0.1
    subset: str = "test"
    epoch: CheckpointName | None = None
    shared: bool = False
    runtime: str = "torch"
    model: str | None = None
    device: str | None = None
    batch: int = 128
    diarize: bool = False
    trust_checkpoint: bool = False
    db: str | None = None
    database: str | None = None

    def __post_init__(self) -> None:
        if not MIN_STEP <= self.step:
            raise SpkembError(f"--step {self.step}: the window step is a fraction of the window "
                              f"duration, at least {MIN_STEP:g} (e.g. 0.1)")
        if self.runtime == "onnxruntime" and self.shared:
            raise SpkembError("--shared is a path of the torch runtime; onnxruntime runs every window "
                              "through the exported network (drop --shared, or use --runtime torch)")
        if self.runtime != "onnxruntime" and self.model is not None:
            raise SpkembError("--model is an exported network for --runtime onnxruntime; add that option, "
                              "or drop --model to use the checkpoint")

    @property
    def mode(self) -> str:
        """The path apply embeds on: exact, shared (``--shared``) or onnxruntime."""
        return "onnxruntime" if self.runtime == "onnxruntime" else "shared" if self.shared else "exact"


@dataclass(frozen=True, kw_only=True)
class DiarizeRequest(DiarizationOptions):
    """``spkemb-engine diarize``."""

    extraction: str
    protocol: str
    subset: str = "test"
    db: str | None = None
    database: str | None = None


@dataclass(frozen=True, kw_only=True)
class ExportRequest(Request):
    """``spkemb-engine export``."""

    val_dir: str
    output: str
    epoch: str | None = None
    format: str | None = None
    trust_checkpoint: bool = False
    db: str | None = None
    #: replace an existing output file
    force: bool = False


@dataclass(frozen=True, kw_only=True)
class PickRequest(Request):
    """``spkemb-engine pick``."""

    val_dir: str
    epoch: CheckpointName | None = None
    db: str | None = None


@dataclass(frozen=True, kw_only=True)
class AverageRequest(Request):
    """``spkemb-engine average``: ``last`` epochs of a TRN_DIR or ``top`` epochs of a VAL_DIR."""

    dir: str
    last: int | None = None
    top: int | None = None
    trust_checkpoint: bool = False
    db: str | None = None


@dataclass(frozen=True, kw_only=True)
class RunsRequest(Request):
    """``spkemb-engine runs``."""

    status: str | None = None
    kind: str | None = None
    group: str | None = None
    tag: str | None = None
    format: str = "table"
    stale: bool = False
    db: str | None = None


@dataclass(frozen=True, kw_only=True)
class TagRequest(Request):
    """``spkemb-engine tag``."""

    run_id: int
    group: str | None = None
    add_tag: tuple[str, ...] | None = None
    remove_tag: tuple[str, ...] | None = None
    note: str | None = None
    db: str | None = None


@dataclass(frozen=True, kw_only=True)
class ReportRequest(Request):
    """``spkemb-engine report``: the comparison of runs (one system each) and groups as files."""

    run_id: tuple[int, ...] = ()
    group: tuple[str, ...] | None = None
    out: str
    #: what to write (latex, csv, markdown, png, svg, pdf, html; repeatable); None: all of them
    format: tuple[str, ...] | None = None
    #: write into a folder that is not empty (the report's files are replaced, the others kept)
    force: bool = False
    db: str | None = None


@dataclass(frozen=True, kw_only=True)
class ImportRequest(Request):
    """``spkemb-engine import``."""

    paths: tuple[str, ...]
    db: str | None = None


@dataclass(frozen=True, kw_only=True)
class DemoRequest(Request):
    """``spkemb-engine demo-data`` and ``demo-workspace``."""

    dir: str
    speakers: int = 60
    seed: int = 0


@dataclass(frozen=True, kw_only=True)
class ConfigCheckRequest(Request):
    """``spkemb-engine config check``."""

    file: str


@dataclass(frozen=True, kw_only=True)
class ConfigTemplateRequest(Request):
    """``spkemb-engine config template``."""

    name: str


@dataclass(frozen=True, kw_only=True)
class ConfigLargeMarginRequest(Request):
    """``spkemb-engine config large-margin``."""

    parent: str


@dataclass(frozen=True, kw_only=True)
class ModelSummaryRequest(Request):
    """``spkemb-engine model-summary``."""

    config: str
