"""The requests of the commands that train: ``train``, ``sbatch``, ``sweep``, ``queue``."""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import SpkembError
from engine.requests.base import Request

#: a SLURM job's time limit (``sbatch``, a sweep's array) when ``--time`` is left out
SLURM_TIME = "2-00:00:00"


@dataclass(frozen=True, kw_only=True)
class TrainOptions(Request):
    """The options of ``train`` that ``sbatch`` passes on to it."""

    exp_dir: str
    protocol: str
    subset: str = "train"
    to: int | None = None
    parallel: int = 2
    device: str | None = None
    #: None: 0 for a new run; a resumed run goes on with the seed its checkpoint holds
    seed: int | None = None
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
    time: str = SLURM_TIME
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
    #: None: one slot per GPU nvidia-smi lists here, else cpu
    slots: str | None = None
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
    #: None: :data:`SLURM_TIME`
    time: str | None = None
    partition: str | None = None
    db: str | None = None
    database: str | None = None

    def __post_init__(self) -> None:
        for flag, value in (("--time", self.time), ("--partition", self.partition)):
            if value is not None and not self.sbatch:  # the queue has no time limit nor partition
                raise SpkembError(f"{flag} is a setting of the SLURM array job: add --sbatch, or leave {flag} out")
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

    #: None: one slot per GPU nvidia-smi lists here, else cpu
    slots: str | None = None
    poll: float = 2.0
    idle_exit: float = 60.0
    detach: bool = False
    stop: bool = False
    #: queued runs to take off the queue
    cancel: tuple[int, ...] = ()
    #: a sweep to end: no more trials, its queued runs off the queue
    cancel_sweep: str | None = None
    db: str | None = None
