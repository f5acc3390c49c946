"""A filterbank backbone with its front end: waveform -> :class:`Fbank` -> ResNet34 / ECAPA-TDNN / CAM++.

The front end is the network's first layer, so training, validation, extraction and export all
compute the same features from the same waveform, on the same device, in batches.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.config.frames import MIN_FRAMES
from engine.errors import AudioError
from engine.model.fbank import Fbank


class FbankNetwork(nn.Module):
    """(batch, sample) waveforms -> (batch, embedding_dim) embeddings of ``backbone`` on ``features``.

    Parameters
    ----------
    name : str
        The backbone's config name (ResNet34, ECAPA_TDNN, CAMPPlus).
    features : Fbank
    backbone : nn.Module
        (batch, frame, num_mel_bins) -> (batch, embedding_dim).
    embedding_dim : int
    """

    def __init__(self, name: str, features: Fbank, backbone: nn.Module, embedding_dim: int) -> None:
        super().__init__()
        self.name, self.embedding_dim = name, embedding_dim
        self.features, self.backbone = features, backbone
        self.sample_rate: int = features.sample_rate
        #: shortest input the backbone can pool (see MIN_FRAMES)
        self.min_samples: int = features.window_size + (MIN_FRAMES[name] - 1) * features.window_shift

    @property
    def dimension(self) -> int:
        """Embedding dimension."""
        return self.embedding_dim

    def check_length(self, samples: int) -> None:
        """Raise :class:`engine.errors.AudioError` when ``samples`` is too short for this network."""
        if samples < self.min_samples:
            raise AudioError(
                f"audio of {samples} samples ({samples / self.sample_rate:.3f} s) is too short for {self.name}: "
                f"it needs at least {self.min_samples} samples ({self.min_samples / self.sample_rate:.3f} s at "
                f"{self.sample_rate} Hz, {MIN_FRAMES[self.name]} filterbank frames); use longer chunks "
                "(task.duration) or skip files shorter than that")

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        """(batch, sample) -> (batch, embedding_dim)."""
        self.check_length(waveforms.shape[1])  # fewer frames than it pools: NaN, or torch's FFT error
        return self.backbone(self.features(waveforms))
