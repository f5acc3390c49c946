"""``spkemb-engine export``: the embedding network of one checkpoint as ONNX or TorchScript.

What is exported is the embedding network alone (no classifier head, no optimizer), in eval
mode, for any input length: ``waveform`` (batch, samples) float32 at the config's sample rate
-> ``embedding`` (batch, dimension), both axes of the input dynamic. Two changes make it a
plain feed-forward graph, and neither changes a number:

* weight normalisation (TDNN layers) is folded into the weights (:func:`engine.inference.network.inference_model`);
* the sinc filters, recomputed from their cut-off frequencies at every call in training, are
  computed once and exported as the weight of a plain ``conv1d`` (Ravanelli & Bengio 2018 eq. 4
  depends on the two cut-offs only, which are fixed once trained).

A filterbank backbone (ResNet34, ECAPA_TDNN, CAMPPlus) is exported with its Fbank front end, whose
power spectrum is then a product with the real DFT matrices instead of ``torch.fft.rfft`` (ONNX has
no complex tensors): the same features to float rounding (1e-3 in log-mel).

The Python length check (an input shorter than ``min_samples`` gives fewer than the 2 frames
that statistics pooling needs) cannot travel in the graph: ``min_samples`` is in the metadata,
and :mod:`engine.extraction.onnx_runtime` tiles shorter inputs up to it, as the torch path does.

Metadata (ONNX ``metadata_props``; TorchScript ``_extra_files["metadata.json"]``), all strings:
``spkemb.format`` (1), ``spkemb.config`` (the resolved config.yml), ``spkemb.sample_rate``,
``spkemb.duration``, ``spkemb.dimension``, ``spkemb.min_samples``, ``spkemb.checkpoint`` (path),
``spkemb.checkpoint_sha256``, ``spkemb.epoch`` (``7`` or ``avg-top5``), ``spkemb.version``.
"""

from __future__ import annotations

import copy
import io
import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from engine.atomic import atomic_write
from engine.config import Config, dump_config
from engine.console import say
from engine.errors import SpkembError
from engine.extraction.exported import INPUT, METADATA_FORMAT, OUTPUT, TORCHSCRIPT_METADATA
from engine.inference.network import load_network
from engine.layout import CheckpointName, checkpoint_label
from engine.model.embedding import SincTDNN
from engine.model.fbank_network import FbankNetwork
from engine.model.interface import EmbeddingNetwork
from engine.model.sincnet import SincConv1d
from engine.process.checkpoints import Trust, file_sha256, package_version
from engine.requests import ExportRequest
from engine.validation.params import resolve_name
from engine.validation.val_dir import given_val_dir

FORMATS = ("onnx", "torchscript")
SUFFIXES = {".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript", ".torchscript": "torchscript"}
OPSET = 17


class _FixedSinc(nn.Module):
    """A :class:`SincConv1d` whose filters were computed once: a bias-free strided conv1d."""

    weight: torch.Tensor  # a buffer (register_buffer), declared for the type checker

    def __init__(self, sinc: SincConv1d) -> None:
        super().__init__()
        self.stride = sinc.stride
        with torch.no_grad():
            self.register_buffer("weight", sinc.filters().detach().clone())  # (channel, 1, kernel)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        """(batch, 1, sample) -> (batch, channel, frame)."""
        return F.conv1d(waveforms, self.weight, stride=self.stride)


class ExportedEmbedding(nn.Module):
    """SincTDNN's forward without the Python length check: (batch, sample) -> (batch, dimension)."""

    def __init__(self, model: SincTDNN) -> None:
        super().__init__()
        self.sincnet, self.tdnn, self.embedding = model.sincnet, model.tdnn, model.embedding

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        x = self.sincnet(waveform)  # (batch, channel, frame)
        frames = self.tdnn.frames(x)  # (batch, frame, frame_dim)
        return self.embedding(self.tdnn.segment6(self.tdnn.pool(frames)))  # (batch, dimension)


def exportable(model: SincTDNN | FbankNetwork) -> nn.Module:
    """A copy of an inference model (weight norm folded) with its sinc filters fixed, in eval mode;
    a filterbank backbone's front end computes its spectrum with DFT matrices (ONNX has no complex
    tensors), within 1e-3 of ``torch.fft.rfft``'s log-mel."""
    model = copy.deepcopy(model).cpu().eval()
    if isinstance(model, FbankNetwork):
        model.features.for_export()
        return model
    for block in model.sincnet.blocks:
        if isinstance(block.conv, SincConv1d):
            block.conv = _FixedSinc(block.conv)
    return ExportedEmbedding(model).eval()


def export_metadata(config: Config, model: EmbeddingNetwork, checkpoint: Path, name: CheckpointName,
                    sha256: str | None = None) -> dict[str, str]:
    """The ``spkemb.*`` metadata of an exported network (see the module docstring); ``sha256`` is the
    checkpoint's when its bytes were hashed as they were read (else the file is hashed now)."""
    return {
        "spkemb.format": METADATA_FORMAT,
        "spkemb.config": dump_config(config),
        "spkemb.sample_rate": str(config.feature_extraction.sample_rate),
        "spkemb.duration": repr(float(config.task.duration)),
        "spkemb.dimension": str(int(model.dimension)),
        "spkemb.min_samples": str(int(model.min_samples)),
        "spkemb.checkpoint": str(Path(checkpoint).resolve()),
        "spkemb.checkpoint_sha256": sha256 or file_sha256(checkpoint),
        "spkemb.epoch": str(name),
        "spkemb.version": package_version(),
    }


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the warnings every export gives: torch.jit's deprecation notice (TorchScript is what
    was asked for); the ONNX exporter's note that instance norm uses the input's statistics (it
    always does here: no running statistics are kept, in training or in eval); and the tracer's
    notes on instance norm's input checks (channel count, more than one frame), which are checks,
    not data flow (the parity test runs the traced graphs on other lengths)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit.*deprecated")
        warnings.filterwarnings("ignore", message=r".*operator 'instance_norm' is set to train=True")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        yield


def _example(model: EmbeddingNetwork) -> torch.Tensor:
    # two inputs of a length no multiple of any stride: nothing about the length is baked in
    return torch.randn(2, model.min_samples + 1237)


def onnx_bytes(model: SincTDNN | FbankNetwork, metadata: dict[str, str]) -> bytes:
    """The network as an ONNX model (opset 17, TorchScript-based exporter) with ``metadata``."""
    import onnx

    buffer = io.BytesIO()
    with _quiet():
        # torch types f as a path only; the TorchScript-based exporter (dynamo=False) writes to a file object too
        torch.onnx.export(exportable(model), (_example(model),), buffer,  # type: ignore[arg-type]
                          dynamo=False, opset_version=OPSET,
                          input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes={INPUT: {0: "batch", 1: "samples"}, OUTPUT: {0: "batch"}})
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(proto, metadata)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def torchscript_bytes(model: SincTDNN | FbankNetwork, metadata: dict[str, str]) -> bytes:
    """The network traced to TorchScript, ``metadata`` as ``metadata.json`` in the archive."""
    buffer = io.BytesIO()
    with torch.no_grad(), _quiet():
        traced = torch.jit.trace(exportable(model), (_example(model),), check_trace=False)
        torch.jit.save(traced, buffer, _extra_files={TORCHSCRIPT_METADATA: json.dumps(metadata, indent=1)})
    return buffer.getvalue()


def export_checkpoint(checkpoint: Path, name: CheckpointName, fmt: str, output: Path, *,
                      trust: Trust | None = None) -> dict[str, str]:
    """Write the network of ``checkpoint`` (checked against its row by ``trust``) to ``output`` as
    ``fmt`` (atomically); its metadata."""
    network = load_network(checkpoint, "cpu", trust=trust)
    model, config = network.model, network.config
    metadata = export_metadata(config, model, checkpoint, name, network.checkpoint.sha256)
    data = onnx_bytes(model, metadata) if fmt == "onnx" else torchscript_bytes(model, metadata)
    atomic_write(output, lambda f: f.write(data), mode="wb")
    return metadata


def _format(fmt: str | None, output: Path) -> str:
    if fmt is not None:
        return fmt
    if output.suffix.lower() in SUFFIXES:
        return SUFFIXES[output.suffix.lower()]
    raise SpkembError(f"-o {output}: pass --format onnx or --format torchscript (the suffix "
                      f"{output.suffix or '(none)'} does not say which)")


def _check_output(output: Path, *, force: bool) -> None:
    """Refuse, before minutes of export, an -o that cannot be written or would replace a file unasked."""
    parent = output.parent
    # the nearest existing folder on the way: /etc/hostname/x.onnx names a file as its folder
    on_disk = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if on_disk is not None and not on_disk.is_dir():
        raise SpkembError(f"-o {output}: {on_disk} is a file, not a folder; name a file in a folder")
    if not parent.is_dir():
        raise SpkembError(f"-o {output}: the folder {parent} does not exist; create it first")
    if output.is_dir():
        raise SpkembError(f"-o {output} is a directory: name the file to write, e.g. {output / 'embedding.onnx'}")
    if output.exists() and not force:
        raise SpkembError(f"-o {output} already exists: pass --force to replace it, or name another file")


def cmd_export(args: ExportRequest) -> int:
    """``spkemb-engine export VAL_DIR [--epoch E|avg-...] [--format onnx|torchscript] -o FILE``."""
    val_dir = given_val_dir(args.val_dir)
    output = Path(args.output)
    fmt = _format(args.format, output)
    _check_output(output, force=args.force)
    name = resolve_name(val_dir, args.epoch)
    checkpoint = val_dir.training.checkpoint(name)
    metadata = export_checkpoint(checkpoint, name, fmt, output,
                                 trust=Trust(args.db, accept_changed=args.trust_checkpoint))
    say(f"export: {checkpoint_label(name)} ({checkpoint}, sha256 {metadata['spkemb.checkpoint_sha256'][:12]}…) "
        f"-> {output} ({fmt}, {output.stat().st_size / 1e6:.1f} MB; input {INPUT} (batch, samples) at "
        f"{metadata['spkemb.sample_rate']} Hz, at least {metadata['spkemb.min_samples']} samples)")
    return 0
