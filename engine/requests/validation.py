"""The requests of the commands on validated checkpoints: ``validate``, ``pick``, ``average``, ``clean``,
``verify``, ``embed``."""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import SpkembError
from engine.layout import CheckpointName
from engine.requests.base import Request

#: AS-norm's fewest cohort speakers: the spread of a single cohort score is 0, and dividing by it
#: would make every normalised score (and the threshold written with them) meaningless
MIN_COHORT_SIZE = 2


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
class CleanRequest(Request):
    """``spkemb-engine clean``: the epoch checkpoints of TRN_DIRs (or of EXP_DIRs' runs) that no result
    needs, listed, and deleted with ``yes``."""

    dirs: tuple[str, ...]
    keep_last: int = 10
    keep_best: int = 10
    #: also delete the epochs every VAL_DIR passed over (older than its newest validated one)
    skipped: bool = False
    yes: bool = False
    db: str | None = None


@dataclass(frozen=True, kw_only=True)
class RecordingsOptions(Request):
    """What ``verify`` and ``embed`` share: the checkpoint of VAL_DIR that embeds recordings of one's
    own (the one its params.yml names, or ``epoch``), and how."""

    val_dir: str
    epoch: CheckpointName | None = None
    device: str | None = None
    batch: int = 64
    trust_checkpoint: bool = False
    db: str | None = None


@dataclass(frozen=True, kw_only=True)
class VerifyRequest(RecordingsOptions):
    """``spkemb-engine verify``: the score of an enrolment recording against each test recording, with
    VAL_DIR's checkpoint and the decision at its validated EER threshold."""

    enrolment: str
    tests: tuple[str, ...]
    #: ``--score-norm asnorm``: scores normalised with the cohort VAL_DIR's AS-norm validation kept
    score_norm: str | None = None


@dataclass(frozen=True, kw_only=True)
class EmbedRequest(RecordingsOptions):
    """``spkemb-engine embed``: one embedding per recording, with VAL_DIR's checkpoint, into one file."""

    recordings: tuple[str, ...] = ()
    #: ``--list``: a file of recordings, one a line
    list_file: str | None = None
    output: str
