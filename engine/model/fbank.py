"""Kaldi-compatible log-mel filterbanks of a batch of waveforms, as the network's first layer.

Equal (per utterance) to WeSpeaker's front end: ``torchaudio.compliance.kaldi.fbank(wave * 2**15,
num_mel_bins, frame_length, frame_shift, dither, window_type, use_energy=False)`` followed by
per-utterance mean normalisation over frames (``apply_cmvn(norm_var=False)``), in
``wespeaker/dataset/processor.py``. torchaudio's function reads one waveform at a time; this
one frames the whole batch at once (snip_edges: ``1 + (samples - window) // shift`` frames),
removes each frame's DC offset, pre-emphasises (0.97, the first sample against itself),
windows, zero-pads to a power of two, takes the power spectrum and the mel energies of
``get_mel_banks`` (20 Hz to Nyquist), floored at float32's epsilon before the log.

Dither (Gaussian, in 16-bit sample units) is added in training mode only, so that extraction
and validation are deterministic. It is computed in float32 even under bf16 autocast. Being part
of the network, the filterbank travels into checkpoints' extraction and into exports; for an ONNX
export :meth:`Fbank.for_export` swaps ``torch.fft.rfft`` (complex) for a product with the real DFT
matrices.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torchaudio.compliance.kaldi import get_mel_banks

from engine.config.frames import frame_samples

#: WeSpeaker scales the [-1, 1] waveform to 16-bit sample units before kaldi.fbank
WAVE_SCALE = float(1 << 15)
PREEMPHASIS = 0.97


def _window(kind: str, size: int) -> torch.Tensor:
    # torchaudio.compliance.kaldi._feature_window_function, float32
    if kind == "hamming":
        return torch.hamming_window(size, periodic=False, alpha=0.54, beta=0.46)
    if kind == "povey":
        return torch.hann_window(size, periodic=False).pow(0.85)
    raise ValueError(f"window_type must be hamming or povey, got {kind!r}")


class Fbank(nn.Module):
    """(batch, sample) waveforms in [-1, 1] -> (batch, frame, num_mel_bins) mean-normalised log-mel.

    Parameters
    ----------
    sample_rate : int
    num_mel_bins : int
    frame_length, frame_shift : float
        Milliseconds.
    dither : float
        Standard deviation of the Gaussian noise added in training mode (16-bit units).
    window_type : str
        ``hamming`` (WeSpeaker) or ``povey`` (Kaldi's default).
    """

    # buffers (register_buffer), declared for the type checker; dft_* exist after for_export only
    window: torch.Tensor
    mel_banks: torch.Tensor
    offsets: torch.Tensor
    dft_cos: torch.Tensor
    dft_sin: torch.Tensor

    def __init__(self, *, sample_rate: int = 16000, num_mel_bins: int = 80, frame_length: float = 25.0,
                 frame_shift: float = 10.0, dither: float = 1.0, window_type: str = "hamming") -> None:
        super().__init__()
        self.sample_rate, self.num_mel_bins, self.dither = sample_rate, num_mel_bins, dither
        # kaldi._get_waveform_and_window_properties
        self.window_size = frame_samples(sample_rate, frame_length)
        self.window_shift = frame_samples(sample_rate, frame_shift)
        self.padded = 1 << (self.window_size - 1).bit_length()
        banks, _ = get_mel_banks(num_mel_bins, self.padded, float(sample_rate), 20.0, 0.0, 100.0, -500.0, 1.0)
        banks = nn.functional.pad(banks, (0, 1))  # (bins, padded // 2 + 1)
        self.register_buffer("window", _window(window_type, self.window_size), persistent=False)
        self.register_buffer("mel_banks", banks.t().contiguous(), persistent=False)  # (freq, bins)
        self.register_buffer("offsets", torch.arange(self.window_size), persistent=False)
        self.dft = False

    def for_export(self) -> Fbank:
        """This front end computing the power spectrum as a product with the DFT matrices (ONNX has
        no complex tensors); only the ``window_size`` first inputs matter, the rest is zero padding."""
        n = torch.arange(self.window_size, dtype=torch.float64)[:, None]
        k = torch.arange(self.padded // 2 + 1, dtype=torch.float64)[None, :]
        angle = 2 * math.pi * n * k / self.padded
        self.register_buffer("dft_cos", torch.cos(angle).float(), persistent=False)
        self.register_buffer("dft_sin", torch.sin(angle).float(), persistent=False)
        self.dft = True
        return self

    def num_frames(self, samples: int) -> int:
        """Frames of an input of ``samples`` samples (Kaldi's snip_edges)."""
        return 0 if samples < self.window_size else 1 + (samples - self.window_size) // self.window_shift

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        # in float32 even under bf16 autocast (training and extraction on CUDA): a bf16 power
        # spectrum of 16-bit-scaled samples would keep 3 significant digits of each mel energy
        with torch.autocast(device_type=waveforms.device.type, enabled=False):
            return self._logmel(waveforms.float())

    def _logmel(self, waveforms: torch.Tensor) -> torch.Tensor:
        x = waveforms * WAVE_SCALE
        n = 1 + (x.shape[1] - self.window_size) // self.window_shift
        starts = torch.arange(n, device=x.device) * self.window_shift
        frames = x[:, starts[:, None] + self.offsets[None, :]]  # (batch, frame, window)
        if self.training and self.dither != 0.0:
            frames = frames + torch.randn_like(frames) * self.dither
        frames = frames - frames.mean(dim=-1, keepdim=True)
        previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
        frames = (frames - PREEMPHASIS * previous) * self.window
        if self.dft:
            power = (frames @ self.dft_cos).pow(2) + (frames @ self.dft_sin).pow(2)
        else:
            spectrum = torch.fft.rfft(frames, n=self.padded)
            power = spectrum.real.pow(2) + spectrum.imag.pow(2)
        mel = power @ self.mel_banks  # (batch, frame, bins)
        logmel = torch.clamp(mel, min=torch.finfo(torch.float32).eps).log()
        return logmel - logmel.mean(dim=1, keepdim=True)
