"""What extraction and export read of an embedding network, whichever it is (SincTDNN, FbankNetwork).

torch types an ``nn.Module``'s attributes as ``Tensor | Module``; this protocol names the ones
the sliding windows and the exporters rely on, with their real types.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import torch
from torch import nn


class EmbeddingNetwork(Protocol):
    """(batch, sample) waveforms -> (batch, dimension) embeddings, with what callers need to size inputs."""

    @property
    def dimension(self) -> int:
        """Embedding dimension."""
        ...

    @property
    def sample_rate(self) -> int:
        """Sample rate of the input waveforms, in Hz."""
        ...

    @property
    def min_samples(self) -> int:
        """Shortest input (samples) the network can embed."""
        ...

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor: ...

    def __call__(self, waveforms: torch.Tensor) -> torch.Tensor: ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...
