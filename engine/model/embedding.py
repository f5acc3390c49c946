"""SincTDNN: waveform -> SincNet -> x-vector TDNN -> statistics pooling -> segment6 -> embedding.

The network of pyannote.audio 1.x ``pyannote/audio/models/models.py`` (``SincTDNN``) used
for representation learning: the embedding is ``segment6``'s output, optionally
batch-normalised (without affine: "more or less embedding whitening") and/or scaled to unit
length (``Embedding`` there).

The fast extraction path computes :meth:`SincTDNN.frames` once over a whole file and pools
each window from the frames it covers; frame ``i`` sees samples
``[i * frame_step, i * frame_step + receptive_field)`` (no padding anywhere).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import AudioError
from engine.model.sincnet import SincNet
from engine.model.tdnn import XVectorTDNN, stats


def receptive_field(specs: Sequence[tuple[int, int, int]]) -> tuple[int, int]:
    """Receptive field and step, in input samples, of a chain of unpadded windowed layers.

    Parameters
    ----------
    specs : sequence of (kernel, stride, dilation)
        The layers in the order they are applied.

    Returns
    -------
    field, step : int
        Samples seen by one output frame, and samples between consecutive frames.
    """
    field, step = 1, 1
    for kernel, stride, dilation in specs:
        field += (kernel - 1) * dilation * step
        step *= stride
    return field, step


class EmbeddingNorm(nn.Module):
    """Optional batch normalisation (no affine) and unit-length scaling of embeddings."""

    def __init__(self, dim: int, *, batch_normalize: bool = False, unit_normalize: bool = False) -> None:
        super().__init__()
        self.batch_norm = (nn.BatchNorm1d(dim, eps=1e-5, momentum=0.1, affine=False)
                           if batch_normalize else None)
        self.unit_normalize = unit_normalize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, dim) -> (batch, dim)."""
        if self.batch_norm is not None:
            x = self.batch_norm(x)
        if self.unit_normalize:
            x = F.normalize(x, p=2.0, dim=1)
        return x


class SincTDNN(nn.Module):
    """SincNet + x-vector TDNN speaker embedding network.

    Parameters
    ----------
    sample_rate : int
        Sample rate of the input waveforms, in Hz.
    stride : tuple of 3 int
        SincNet convolution strides ((5, 1, 1) in the tutorial).
    waveform_normalize, instance_normalize : bool
        SincNet normalisations (see :class:`engine.model.sincnet.SincNet`).
    embedding_dim : int
        Embedding dimension.
    hidden_dim : int
        Width of the TDNN frame layers (512 in the x-vector).
    batch_normalize, unit_normalize : bool
        Embedding options of pyannote 1.x.
    """

    def __init__(self, *, sample_rate: int = 16000, stride: tuple[int, ...] = (1, 1, 1),
                 waveform_normalize: bool = True, instance_normalize: bool = True,
                 embedding_dim: int = 512, hidden_dim: int = 512,
                 batch_normalize: bool = False, unit_normalize: bool = False) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.embedding_dim = embedding_dim
        self.sincnet = SincNet(sample_rate=sample_rate, stride=tuple(stride),
                               waveform_normalize=waveform_normalize,
                               instance_normalize=instance_normalize)
        self.tdnn = XVectorTDNN(in_channels=self.sincnet.dimension, hidden_dim=hidden_dim,
                                embedding_dim=embedding_dim)
        self.embedding = EmbeddingNorm(embedding_dim, batch_normalize=batch_normalize,
                                       unit_normalize=unit_normalize)
        field, step = receptive_field(self.sincnet.layer_specs() + self.tdnn.layer_specs())
        #: samples seen by one frame of :meth:`frames`
        self.receptive_field: int = field
        #: samples between two consecutive frames of :meth:`frames`
        self.frame_step: int = step
        #: shortest input giving the 2 frames that the (unbiased) standard deviation needs
        self.min_samples: int = field + step

    @property
    def dimension(self) -> int:
        """Embedding dimension."""
        return self.embedding_dim

    @property
    def frame_dim(self) -> int:
        """Channels of the frames returned by :meth:`frames`."""
        return self.tdnn.pooled_dim

    def num_frames(self, samples: int) -> int:
        """Number of frames :meth:`frames` returns for an input of ``samples`` samples."""
        if samples < self.receptive_field:
            return 0
        return (samples - self.receptive_field) // self.frame_step + 1

    def check_length(self, samples: int) -> None:
        """Raise :class:`engine.errors.AudioError` when ``samples`` is too short for this network."""
        if samples < self.min_samples:
            raise AudioError(
                f"audio of {samples} samples ({samples / self.sample_rate:.3f} s) is too short for "
                f"SincTDNN: it needs at least {self.min_samples} samples "
                f"({self.min_samples / self.sample_rate:.3f} s at {self.sample_rate} Hz) to give the 2 "
                "frames that statistics pooling needs; use longer chunks (task.duration) or skip "
                "files shorter than that")

    def frames(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Frame-level output before statistics pooling.

        Parameters
        ----------
        waveforms : (batch, sample) float tensor

        Returns
        -------
        frames : (batch, frame, frame_dim) tensor
            ``num_frames(sample)`` frames, ``frame_step`` samples apart.
        """
        if waveforms.dim() != 2:
            raise ValueError(f"SincTDNN expects waveforms shaped (batch, sample), got {tuple(waveforms.shape)}")
        self.check_length(waveforms.shape[1])
        x = self.sincnet(waveforms)  # (batch, 60, frame)
        return self.tdnn.frames(x)  # (batch, frame, frame_dim)

    @staticmethod
    def pool(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Statistics pooling: (batch, frame, channel) -> mean, unbiased std: (batch, channel) each."""
        return stats(frames)

    def pool_stats(self, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """The layers after pooling: (batch, frame_dim) mean and std -> (batch, embedding_dim)."""
        return self.embedding(self.tdnn.segment(mean, std))

    #: the name INTERFACES.md gives to :meth:`pool_stats`
    embed_stats = pool_stats

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        """(batch, sample) -> (batch, embedding_dim)."""
        frames = self.frames(waveforms)  # (batch, frame, frame_dim)
        pooled = self.tdnn.pool(frames)  # (batch, 2 * frame_dim)
        return self.embedding(self.tdnn.segment6(pooled))  # (batch, embedding_dim)
