"""SincNet: a learnable band-pass filter bank on raw waveforms, then two small convolutions.

Ravanelli & Bengio, "Speaker Recognition from raw waveform with SincNet", SLT 2018
(https://arxiv.org/abs/1808.00158), as wired in pyannote.audio 1.x
(``pyannote/audio/models/sincnet.py``): 80 sinc filters of 251 taps initialised on the
mel scale, then 60 filters of 5 taps twice; each block is
conv -> (|.| on the sinc block only) -> max-pool 3 -> instance norm -> leaky ReLU(0.2).
"""

from __future__ import annotations

import math
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray | float:
    """HTK mel scale (O'Shaughnessy 1987), the one SincNet uses to space its filters."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray | float:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)


class SincConv1d(nn.Module):
    """Band-pass filters parametrised by their two cut-off frequencies only (SincNet eq. 4).

    Each filter is the difference of two windowed sinc low-pass filters; the learnable
    parameters are ``low_hz_`` (lower cut-off minus ``min_low_hz``) and ``band_hz_``
    (bandwidth minus ``min_band_hz``), two numbers per filter.

    Parameters
    ----------
    out_channels : int
        Number of filters (80 in SincNet).
    kernel_size : int
        Filter length in samples; odd (251 in SincNet).
    sample_rate : int
        Sample rate of the waveforms, in Hz.
    stride : int
        Convolution stride.
    min_low_hz, min_band_hz : float
        Lowest allowed cut-off and narrowest allowed band, in Hz (50 and 50 in pyannote 1.x).
    """

    # buffers (register_buffer), declared for the type checker
    window_: torch.Tensor
    n_: torch.Tensor
    #: frequencies in Hz: the optimizer's weight decay would pull them all towards the lowest band
    NO_WEIGHT_DECAY = ("low_hz_", "band_hz_")

    def __init__(self, *, out_channels: int = 80, kernel_size: int = 251, sample_rate: int = 16000,
                 stride: int = 1, min_low_hz: float = 50.0, min_band_hz: float = 50.0) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"SincConv1d needs an odd kernel_size, got {kernel_size}")
        self.out_channels, self.kernel_size, self.stride = out_channels, kernel_size, stride
        self.sample_rate, self.min_low_hz, self.min_band_hz = sample_rate, min_low_hz, min_band_hz

        # Cut-offs equally spaced on the mel scale between 30 Hz and Nyquist minus the two
        # minima, as in the SincNet reference code: adjacent filters share their edges.
        high_hz = sample_rate / 2 - (min_low_hz + min_band_hz)
        hz = np.asarray(mel_to_hz(np.linspace(hz_to_mel(30.0), hz_to_mel(high_hz), out_channels + 1)))
        self.low_hz_ = nn.Parameter(torch.tensor(hz[:-1], dtype=torch.float32).view(-1, 1))
        self.band_hz_ = nn.Parameter(torch.tensor(np.diff(hz), dtype=torch.float32).view(-1, 1))

        # The filters are symmetric: only the left half (without the centre tap) is computed.
        half = kernel_size // 2
        n_lin = torch.linspace(0, kernel_size / 2 - 1, steps=half)
        self.register_buffer("window_", 0.54 - 0.46 * torch.cos(2 * math.pi * n_lin / kernel_size),
                             persistent=False)  # Hamming, left half
        self.register_buffer("n_", 2 * math.pi * torch.arange(-half, 0).view(1, -1) / sample_rate,
                             persistent=False)

    def band_edges(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Effective (low, high) cut-off frequencies of each filter, in Hz: (out_channels,) each."""
        low = self.min_low_hz + torch.abs(self.low_hz_)
        high = torch.clamp(low + self.min_band_hz + torch.abs(self.band_hz_),
                           self.min_low_hz, self.sample_rate / 2)
        return low[:, 0], high[:, 0]

    def filters(self) -> torch.Tensor:
        """The current filter bank: (out_channels, 1, kernel_size)."""
        low, high = self.band_edges()
        band = high - low
        # sin(2 pi f_high t) - sin(2 pi f_low t) over (pi t): the two sinc low-passes of eq. 4
        # expanded, as in the reference implementation.
        left = (torch.sin(high[:, None] * self.n_) - torch.sin(low[:, None] * self.n_)) / (self.n_ / 2)
        left = left * self.window_
        centre = 2 * band[:, None]
        band_pass = torch.cat([left, centre, torch.flip(left, dims=[1])], dim=1)
        band_pass = band_pass / (2 * band[:, None])  # unit gain at the centre tap
        return band_pass.view(self.out_channels, 1, self.kernel_size)

    def forward(self, waveforms: torch.Tensor, scale: torch.Tensor | None = None,
                shift: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, 1, sample) -> (batch, out_channels, frame); with ``scale`` and ``shift`` (one
        value each), the convolution of ``scale * waveforms + shift``.

        The affine step is folded into the filters: a valid convolution (no padding) gives
        ``conv(a z + b, W) = conv(z, a W) + b sum(W)``, the same function and gradients, and then
        ``z`` needs no gradient. That of a 251-tap convolution with respect to its input is about
        half of a SincTDNN training step.
        """
        filters = self.filters()
        if scale is None or shift is None:
            return F.conv1d(waveforms, filters, stride=self.stride)
        bias = shift * filters.sum(dim=(1, 2))  # (out_channels,)
        return F.conv1d(waveforms, scale * filters, bias=bias, stride=self.stride)


class SincBlock(nn.Module):
    """One SincNet block: conv -> [|.|] -> max-pool -> [instance norm] -> leaky ReLU(0.2)."""

    def __init__(self, conv: nn.Module, channels: int, *, pool: int, rectify: bool,
                 instance_normalize: bool) -> None:
        super().__init__()
        self.conv = conv
        self.rectify = rectify
        self.pool = nn.MaxPool1d(pool, stride=pool)
        self.norm = nn.InstanceNorm1d(channels, affine=True) if instance_normalize else None
        self.activation = nn.LeakyReLU(negative_slope=0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.after_conv(self.conv(x))

    def after_conv(self, x: torch.Tensor) -> torch.Tensor:
        """The block from its convolution's output (batch, channel, frame) on."""
        if self.rectify:
            x = torch.abs(x)
        x = self.pool(x)  # (batch, channel, frame // pool)
        if self.norm is not None:
            x = self.norm(x)
        return self.activation(x)


class SincNet(nn.Module):
    """SincNet front end of pyannote.audio 1.x.

    Parameters
    ----------
    sample_rate : int
        Sample rate of the waveforms, in Hz.
    stride : tuple of 3 int
        Stride of each of the three convolutions ((5, 1, 1) in the tutorial).
    waveform_normalize : bool
        Standardise each input waveform (instance norm with a learnable affine transform).
    instance_normalize : bool
        Instance-normalise (with affine) the output of each block.
    out_channels, kernel_size, max_pool : tuple of 3 int
        Layer sizes; the defaults are pyannote's (80, 60, 60), (251, 5, 5), (3, 3, 3).
    min_low_hz, min_band_hz : float
        Constraints of the sinc filters, in Hz.
    """

    def __init__(self, *, sample_rate: int = 16000, stride: tuple[int, ...] = (1, 1, 1),
                 waveform_normalize: bool = True, instance_normalize: bool = True,
                 out_channels: tuple[int, ...] = (80, 60, 60), kernel_size: tuple[int, ...] = (251, 5, 5),
                 max_pool: tuple[int, ...] = (3, 3, 3), min_low_hz: float = 50.0,
                 min_band_hz: float = 50.0) -> None:
        super().__init__()
        if not len(stride) == len(out_channels) == len(kernel_size) == len(max_pool):
            raise ValueError("stride, out_channels, kernel_size and max_pool need one value per layer "
                             f"({len(out_channels)}), got stride={tuple(stride)}")
        self.sample_rate = sample_rate
        self.stride, self.kernel_size = tuple(stride), tuple(kernel_size)
        self.out_channels, self.max_pool = tuple(out_channels), tuple(max_pool)
        self.waveform_norm = nn.InstanceNorm1d(1, affine=True) if waveform_normalize else None
        blocks = []
        in_channels = 1
        layers = zip(out_channels, kernel_size, stride, max_pool, strict=True)
        for i, (channels, kernel, step, pool) in enumerate(layers):
            if i == 0:
                conv: nn.Module = SincConv1d(out_channels=channels, kernel_size=kernel,
                                             sample_rate=sample_rate, stride=step,
                                             min_low_hz=min_low_hz, min_band_hz=min_band_hz)
            else:
                conv = nn.Conv1d(in_channels, channels, kernel, stride=step)
            blocks.append(SincBlock(conv, channels, pool=pool, rectify=i == 0,
                                    instance_normalize=instance_normalize))
            in_channels = channels
        self.blocks = nn.ModuleList(blocks)

    @property
    def dimension(self) -> int:
        """Channels of the output frames."""
        return self.out_channels[-1]

    def layer_specs(self) -> list[tuple[int, int, int]]:
        """(kernel, stride, dilation) of every windowed layer, in order, for receptive-field arithmetic."""
        specs = []
        for kernel, step, pool in zip(self.kernel_size, self.stride, self.max_pool, strict=True):
            specs += [(kernel, step, 1), (pool, pool, 1)]
        return specs

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        """(batch, sample) -> (batch, channel, frame)."""
        x = waveforms.unsqueeze(1)  # (batch, 1, sample)
        # nn.ModuleList types its items as Module: the first block is a SincBlock
        first, norm = cast(SincBlock, self.blocks[0]), self.waveform_norm
        if (norm is not None and isinstance(first.conv, SincConv1d)  # an export fixes the filters
                and torch.is_grad_enabled() and norm.weight.requires_grad):
            # training: the norm's affine step inside the sinc convolution (see SincConv1d.forward)
            standardized = F.instance_norm(x, eps=norm.eps)
            x = first.after_conv(first.conv(standardized, norm.weight, norm.bias))
        else:  # inference: nothing to gain, and the plain composition that exports mirror
            x = first(norm(x) if norm is not None else x)
        for block in self.blocks[1:]:
            x = block(x)  # (batch, channel, frame)
        return x
