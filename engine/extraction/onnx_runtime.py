"""Sliding-window embeddings through onnxruntime, from a file written by ``spkemb-engine export``.

The ONNX graph is the whole network, so this is the *plain* path (every window through the
network, pyannote.audio 1.x) run by onnxruntime instead of torch: batches of windows are
gathered from one span of audio read per batch, as :func:`engine.inference.windows.embed_plain` does, and
a file no longer than one window is one window (tiled up to ``min_samples`` when shorter than
the network needs). The sample rate, window duration and the checkpoint come from the file's
metadata, not from a checkpoint; this module needs no torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml
from numpy.lib.stride_tricks import sliding_window_view

from engine.errors import SpkembError
from engine.extraction.exported import INPUT, is_torchscript, read_metadata

if TYPE_CHECKING:
    from engine.process.checkpoints import Trust


class OnnxEmbedder:
    """An exported embedding network in an onnxruntime session.

    Parameters
    ----------
    path : Path
        An ``.onnx`` file written by ``spkemb-engine export``.
    threads : int, optional
        onnxruntime's intra-op threads (default: its own choice, one per core).
    device : str
        ``cpu``, or ``cuda``/``cuda:N`` when onnxruntime has its CUDA provider.
    """

    def __init__(self, path: Path, *, threads: int | None = None, device: str = "cpu") -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self.metadata = read_metadata(self.path)
        if is_torchscript(self.path):
            raise SpkembError(f"{self.path} is a TorchScript file: onnxruntime needs the ONNX export "
                              "(`spkemb-engine export VAL_DIR --format onnx -o FILE.onnx`)")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # its warnings about an edited graph: the refusal below says it
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        providers: list[str | tuple[str, dict[str, Any]]] = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise SpkembError(f"--device {device}: this onnxruntime has no CUDA provider "
                                  f"(it has {', '.join(ort.get_available_providers())}); use --device cpu, "
                                  "or install onnxruntime-gpu")
            index = int(device.split(":")[1]) if ":" in device else 0
            providers = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
        self.sample_rate = int(_figure(self.path, self.metadata, "sample_rate", 1000, 384_000))
        self.duration = _figure(self.path, self.metadata, "duration", 0.01, 3600.0, whole=False)
        self.dimension = int(_figure(self.path, self.metadata, "dimension", 1, 65_536))
        self.min_samples = int(_figure(self.path, self.metadata, "min_samples", 1, 10_000_000))
        self.session = _session(self.path, options, providers)
        if device.startswith("cuda") and self.session.get_providers()[0] != "CUDAExecutionProvider":
            # onnxruntime falls back to the CPU in silence when its CUDA libraries do not load
            raise SpkembError(f"--device {device}: onnxruntime could not start its CUDA provider (its CUDA or "
                              "cuDNN libraries do not load here) and would run on the CPU; install the "
                              "onnxruntime-gpu build for this CUDA, or use --device cpu")
        self._check_signature()

    @property
    def config(self) -> dict:
        """The resolved config the network was trained with."""
        return yaml.safe_load(self.metadata["spkemb.config"])

    def _check_signature(self) -> None:
        """Refuse a graph whose input or output is not the one ``export`` writes (an edited file)."""
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        shape = outputs[0].shape if len(outputs) == 1 else None
        if [i.name for i in inputs] != [INPUT] or shape is None or len(shape) != 2 \
                or shape[1] != self.dimension:
            found = ", ".join(f"{o.name} {o.shape}" for o in outputs)
            raise SpkembError(f"{self.path} does not map {INPUT} to (batch, {self.dimension}) embeddings as its "
                              f"metadata says (outputs: {found}): it was edited; export the network again")

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        """(batch, samples) float32 -> (batch, dimension) float32.

        Raises
        ------
        SpkembError
            When the network gives rows of another size, or values that are not finite: nothing of
            such a batch may reach an embeddings file.
        """
        rows = self.session.run(None, {INPUT: np.ascontiguousarray(windows, dtype=np.float32)})[0]
        if rows.shape != (len(windows), self.dimension):
            raise SpkembError(f"{self.path} gave embeddings of shape {list(rows.shape)} for {len(windows)} "
                              f"windows, not (windows, {self.dimension}): export the network again")
        if not np.isfinite(rows).all():
            raise SpkembError(f"{self.path} gave embeddings that are not finite (NaN or infinite): its weights "
                              "are damaged; export the network again from a checkpoint that validates")
        return rows

    def embed(self, signal, starts: np.ndarray, window: int, batch: int = 128) -> np.ndarray:
        """Embeddings of the windows ``starts`` (samples) of ``signal``: (windows, dimension) float32.

        ``signal`` is an :class:`engine.inference.windows.Signal` (``n_samples``, ``read(start, n)``).
        """
        if signal.n_samples <= window:
            whole = signal.read(0, signal.n_samples)
            if whole.shape[0] < self.min_samples:
                whole = np.resize(whole, self.min_samples)  # np.resize repeats the signal
            return self(whole[None])
        out = []
        for first in range(0, len(starts), batch):
            s = starts[first:first + batch]
            span = signal.read(int(s[0]), int(s[-1] - s[0]) + window)
            # (batch, window): rows of the span's window view, without a (batch, window) index beside them
            out.append(self(sliding_window_view(span, window)[s - s[0]]))
        return np.concatenate(out)


def _figure(path: Path, metadata: dict[str, str], name: str, low: float, high: float, *,
            whole: bool = True) -> float:
    """The number ``spkemb.{name}`` of an export's metadata, checked to lie in [low, high]."""
    text = metadata.get(f"spkemb.{name}", "")
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not low <= value <= high or (whole and value != int(value)):
        kind = "a whole number" if whole else "a number"
        raise SpkembError(f"{path}: its metadata spkemb.{name} is {text[:40]!r}, not {kind} in [{low:g}, {high:g}]: "
                          "the file was edited; export the network again")
    return value


def _session(path: Path, options: Any, providers: list) -> Any:
    """onnxruntime's session of ``path``; a graph it cannot load is one line, not its traceback."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as e:  # onnxruntime raises its own unrelated types (Fail, InvalidGraph, ...)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise SpkembError(f"{path} cannot be loaded by onnxruntime ({first[:200]}): export the network "
                          "again") from e


def onnx_embedder(checkpoint: Path, name: str | int, model_file: str | Path | None, *, device: str = "cpu",
                  threads: int | None = None, trust: Trust | None = None) -> OnnxEmbedder:
    """The network of ``checkpoint`` in onnxruntime: from ``model_file`` (checked to come from that
    checkpoint), else exported to a temporary file on the fly; the checkpoint checked against its
    row by ``trust``.

    Raises
    ------
    SpkembError
        When ``model_file`` was exported from another checkpoint (or another version of it).
    CheckpointError
        When the checkpoint changed since its row recorded it (or cannot be read to export it).
    """
    import tempfile

    from engine.process.checkpoints import file_sha256

    if model_file is not None:
        embedder = OnnxEmbedder(Path(model_file), device=device, threads=threads)
        wanted = file_sha256(checkpoint)
        if trust is not None:
            trust.check(Path(checkpoint), wanted)
        if embedder.metadata["spkemb.checkpoint_sha256"] != wanted:
            raise SpkembError(
                f"--model {model_file} was exported from {embedder.metadata['spkemb.checkpoint']} "
                f"(epoch {embedder.metadata['spkemb.epoch']}, sha256 "
                f"{embedder.metadata['spkemb.checkpoint_sha256'][:12]}…), not from {checkpoint} "
                f"(sha256 {wanted[:12]}…): pass the --epoch it was exported from, or export it again")
        return embedder
    from engine.extraction.export import export_checkpoint

    with tempfile.TemporaryDirectory(prefix="spkemb-export-") as folder:
        path = Path(folder) / "embedding.onnx"
        export_checkpoint(checkpoint, name, "onnx", path, trust=trust)
        # the session holds the model in memory: the file may go
        return OnnxEmbedder(path, device=device, threads=threads)
