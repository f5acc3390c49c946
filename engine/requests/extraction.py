"""The requests of the commands that use a checkpoint: ``apply``, ``diarize``, ``export``."""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import SpkembError
from engine.layout import CheckpointName
from engine.requests.base import Request

#: apply's finest window step, a fraction of the window: 1e-9 was a hop of one sample (ETA: 214 hours)
MIN_STEP = 0.001


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
