"""x-vector TDNN: frame-level time-delay layers, statistics pooling, one segment layer.

Snyder et al., "X-Vectors: Robust DNN Embeddings for Speaker Recognition", ICASSP 2018,
as wired in pyannote.audio 1.x (``pyannote/audio/models/tdnn.py``, ``XVectorNet``): five
weight-normalised frame layers with contexts [-2, 2], {-2, 0, 2}, {-3, 0, 3}, {0}, {0}
(dilated convolutions), each followed by ReLU; mean + standard deviation pooling; then
``segment6``, whose output (before any non-linearity) is the embedding.

pyannote 1.x also builds a ``segment7`` layer that the embedding never passes through
(SincTDNN asks XVectorNet for ``segment6``); it is left out here, so that every parameter
gets a gradient (DistributedDataParallel needs no ``find_unused_parameters``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

#: width of the last frame layer of the x-vector for 512-wide frame layers (Snyder et al.)
POOLED_WIDTH_AT_512 = 1500


def pooled_width(hidden_dim: int) -> int:
    """Width of the last frame layer: 1500 for the x-vector's 512, scaled with ``hidden_dim`` otherwise."""
    return round(hidden_dim * POOLED_WIDTH_AT_512 / 512)


class TDNNLayer(nn.Module):
    """One time-delay layer: a weight-normalised dilated Conv1d over a symmetric context, then ReLU.

    A context {-d*k, ..., 0, ..., d*k} is a convolution of kernel 2k+1 and dilation d
    (Peddinti et al. 2015); weight normalisation (Salimans & Kingma 2016) as in pyannote 1.x.
    """

    def __init__(self, in_channels: int, out_channels: int, *, kernel_size: int, dilation: int = 1) -> None:
        super().__init__()
        self.kernel_size, self.dilation = kernel_size, dilation
        self.conv = weight_norm(nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, in_channels, frame) -> (batch, out_channels, frame - dilation * (kernel - 1))."""
        return F.relu(self.conv(x))


class StatsPool(nn.Module):
    """Mean and (unbiased) standard deviation over frames, concatenated (x-vector pooling)."""

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(batch, frame, channel) -> (batch, 2 * channel)."""
        mean, std = stats(frames)
        return torch.cat([mean, std], dim=1)


def stats(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch, frame, channel) -> mean, std: (batch, channel) each; std is unbiased (needs >= 2 frames)."""
    return frames.mean(dim=1), frames.std(dim=1)


class XVectorTDNN(nn.Module):
    """Frame layers, statistics pooling and the segment layer of the x-vector.

    Parameters
    ----------
    in_channels : int
        Channels of the input frames (60 after SincNet).
    hidden_dim : int
        Width of the first four frame layers (512 in the x-vector; our extension).
    embedding_dim : int
        Output dimension of the segment layer, i.e. of the embedding.
    """

    #: (kernel, dilation) of the five frame layers: contexts [-2..2], {-2,0,2}, {-3,0,3}, {0}, {0}
    CONTEXTS = ((5, 1), (3, 2), (3, 3), (1, 1), (1, 1))

    def __init__(self, *, in_channels: int = 60, hidden_dim: int = 512, embedding_dim: int = 512) -> None:
        super().__init__()
        self.hidden_dim, self.embedding_dim = hidden_dim, embedding_dim
        self.pooled_dim = pooled_width(hidden_dim)
        widths = [hidden_dim] * (len(self.CONTEXTS) - 1) + [self.pooled_dim]
        layers = []
        for (kernel, dilation), width in zip(self.CONTEXTS, widths, strict=True):
            layers.append(TDNNLayer(in_channels, width, kernel_size=kernel, dilation=dilation))
            in_channels = width
        self.frame_layers = nn.Sequential(*layers)
        self.pool = StatsPool()
        self.segment6 = nn.Linear(2 * self.pooled_dim, embedding_dim)

    def layer_specs(self) -> list[tuple[int, int, int]]:
        """(kernel, stride, dilation) of every frame layer, for receptive-field arithmetic."""
        return [(kernel, 1, dilation) for kernel, dilation in self.CONTEXTS]

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, channel, frame) -> (batch, frame', pooled_dim): the frame-level output."""
        return self.frame_layers(x).transpose(1, 2)  # (batch, frame, channel)

    def segment(self, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """(batch, pooled_dim) twice -> (batch, embedding_dim): segment6 on the pooled statistics."""
        return self.segment6(torch.cat([mean, std], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, channel, frame) -> (batch, embedding_dim)."""
        return self.segment6(self.pool(self.frames(x)))
