"""``spkemb-engine model-summary CONFIG``: each layer's output shape for one chunk, and parameter counts.

Any architecture: SincTDNN, or a filterbank backbone whose first row is its Fbank front end.

The count is the embedding network's only: the classifier head (one row of weights per
training speaker) depends on the protocol and is thrown away after training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.utils.flop_counter import FlopCounterMode

from engine.config.frames import MIN_FRAMES
from engine.console import out, stdout_console
from engine.errors import ConfigError
from engine.layout import CONFIG, ExperimentDir
from engine.model.embedding import SincTDNN
from engine.model.fbank_network import FbankNetwork
from engine.requests import ModelSummaryRequest

if TYPE_CHECKING:
    from engine.config import Config


@dataclass(frozen=True)
class LayerRow:
    """One layer of the summary: its qualified name, class, output shape and own parameters."""

    name: str
    kind: str
    shape: tuple[int, ...]
    parameters: int


def _is_layer(module: nn.Module) -> bool:
    """Leaf modules, counting a weight-normalised conv (whose only child is its parametrization) as one."""
    children = dict(module.named_children())
    return not children or (parametrize.is_parametrized(module) and set(children) == {"parametrizations"})


def layer_rows(model: SincTDNN | FbankNetwork, samples: int) -> list[LayerRow]:
    """Run one ``samples``-long chunk through ``model`` and record every layer's output, in call order.

    Parameters
    ----------
    model : SincTDNN or FbankNetwork
    samples : int
        Chunk length in samples.

    Returns
    -------
    rows : list of LayerRow
        The input first (as ``input``), then each layer as it is called.
    """
    rows = [LayerRow("input", "waveform", (1, samples), 0)]
    handles = []

    def hook(name: str):
        def record(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
            params = sum(p.numel() for p in module.parameters())
            kind = type(module).__name__
            if parametrize.is_parametrized(module):
                kind = kind.removeprefix("Parametrized") + " (weight norm)"
            rows.append(LayerRow(name, kind, tuple(output.shape), params))
        return record

    for name, module in model.named_modules():
        if name and ".parametrizations" not in name and _is_layer(module):
            handles.append(module.register_forward_hook(hook(name)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, samples))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return rows


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def forward_flops(model: SincTDNN | FbankNetwork, samples: int) -> int:
    """Floating-point operations of one forward pass on one ``samples``-long chunk (torch's counter)."""
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.zeros(1, samples))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def layer_table(cfg: Config) -> list[LayerRow]:
    """The summary rows of ``cfg``'s network for one ``cfg.task.duration``-long chunk."""
    from engine.model import build_model

    model = build_model(cfg)
    return layer_rows(model, _chunk_samples(cfg))


def _chunk_samples(cfg: Config) -> int:
    return int(round(cfg.task.duration * cfg.sample_rate))


def _config_path(arg: str) -> Path:
    path = Path(arg)
    if path.is_dir():
        path = ExperimentDir(path).config
    if not path.is_file():
        raise ConfigError(f"no config file at {path}: pass a {CONFIG} or an experiment directory "
                          "holding one")
    return path


def cmd_model_summary(args: ModelSummaryRequest) -> int:
    """Print the layer table of ``args.config``'s network, then ``parameters: N`` as the last line."""
    from rich.table import Table

    from engine.config import load_config
    from engine.model import build_model

    cfg = load_config(_config_path(args.config))
    model = build_model(cfg)
    samples = _chunk_samples(cfg)
    model.check_length(samples)
    rows = layer_rows(model, samples)

    rate = cfg.sample_rate
    title = f"{cfg.architecture.name} on one {cfg.task.duration:g} s chunk ({samples} samples at {rate} Hz)"
    table = Table(title=title)
    table.add_column("layer")
    table.add_column("type")
    table.add_column("output shape", justify="right")
    table.add_column("parameters", justify="right")
    for row in rows:
        table.add_row(row.name, row.kind, "(" + ", ".join(map(str, row.shape)) + ")",
                      f"{row.parameters:,}" if row.parameters else "")
    console = stdout_console(min_width=110)
    console.print(table)
    if isinstance(model, FbankNetwork):
        fe = cfg.feature_extraction
        out(f"filterbank frames per chunk: {model.features.num_frames(samples)} x {fe.num_mel_bins} mel bins "
            f"({fe.frame_length:g} ms every {fe.frame_shift:g} ms); shortest input: {model.min_samples} samples "
            f"({MIN_FRAMES[model.name]} frames)")
    else:
        out(f"frames per chunk: {model.num_frames(samples)}; frame step: {model.frame_step} samples "
            f"({1000 * model.frame_step / rate:g} ms); receptive field: {model.receptive_field} samples "
            f"({1000 * model.receptive_field / rate:g} ms); shortest input: {model.min_samples} samples")
    out(f"forward GFLOP per chunk: {forward_flops(model, samples) / 1e9:.3f}")
    out(f"parameters: {count_parameters(model)}")
    return 0
