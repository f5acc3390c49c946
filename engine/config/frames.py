"""The filterbank's windows in samples, and the fewest frames each filterbank backbone pools.

Torch-free arithmetic that the config check (and the TUI's form with it) and the network share: a
config whose chunks a backbone cannot pool is refused when it is read, not with NaN at the first step.
"""

from __future__ import annotations

#: fewest frames each backbone needs for the 2 frames its (unbiased) standard deviation pools:
#: ResNet34 halves time three times (9 -> 5 -> 3 -> 2), CAM++ once (3 -> 2), ECAPA-TDNN never
MIN_FRAMES = {"ResNet34": 9, "ECAPA_TDNN": 2, "CAMPPlus": 3}


def frame_samples(sample_rate: int, milliseconds: float) -> int:
    """Samples of a window or hop of ``milliseconds`` (truncated, as Kaldi's and torchaudio's fbank)."""
    return int(sample_rate * milliseconds * 0.001)


def fewest_samples(backbone: str, sample_rate: int, frame_length: float, frame_shift: float) -> int:
    """The shortest input ``backbone`` pools: ``MIN_FRAMES`` windows of ``frame_length`` every ``frame_shift``."""
    return frame_samples(sample_rate, frame_length) + (MIN_FRAMES[backbone] - 1) * frame_samples(sample_rate,
                                                                                                   frame_shift)
