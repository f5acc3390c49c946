"""engine.data.resample: the samples torchaudio gives, in memory that does not grow with the rates."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.data.audio import read_crop, read_file
from engine.data.resample import LOWPASS_WIDTH, ROLLOFF, bounded_resample, resample
from tests import children

#: reads FILE at 16 kHz in a fresh process; says its peak RSS before and after (MiB)
MEASURE = """
import json, resource, sys
import torch, torchaudio.functional
from engine.data.audio import read_file

before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
samples = len(read_file(sys.argv[1], 16000))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before": before / 1024, "after": after / 1024, "samples": samples}))
"""


@pytest.mark.parametrize(("orig", "new"), [(44100, 16000), (11025, 16000), (8000, 16000), (48000, 8000),
                                           (47952, 16000)])
def test_the_bounded_path_gives_torchaudios_samples(orig: int, new: int) -> None:
    import torch
    import torchaudio.functional as AF

    x = (0.3 * np.random.default_rng(0).standard_normal(orig // 2)).astype(np.float32)
    gcd = math.gcd(orig, new)
    o, n = orig // gcd, new // gcd
    width = math.ceil(LOWPASS_WIDTH * o / (min(o, n) * ROLLOFF))
    expected = AF.resample(torch.from_numpy(x), orig, new).numpy()
    got = bounded_resample(x, o, n, width)
    assert got.dtype == np.float32 and got.shape == expected.shape
    # torchaudio computes its filters in float32: they differ from exact ones by about 1e-5
    np.testing.assert_allclose(got, expected, atol=2e-4)
    np.testing.assert_array_equal(resample(x, orig, new), expected)  # such rates stay torchaudio's


@pytest.mark.parametrize("rate", [16001, 44056])
def test_a_rate_of_no_common_divisor_is_resampled_as_a_tone(tmp_path: Path, rate: int) -> None:
    path = tmp_path / "odd.wav"
    sf.write(path, 0.5 * np.sin(2 * np.pi * 440 * np.arange(2 * rate) / rate), rate, subtype="FLOAT")
    expected = 0.5 * np.sin(2 * np.pi * 440 * np.arange(32000) / 16000)
    whole = read_file(path, 16000)
    assert whole.shape == (32000,)
    np.testing.assert_allclose(whole[200:-200], expected[200:-200], atol=2e-3)
    crop = read_crop(path, 0.5, 1.0, 16000)
    start = math.floor(0.5 * rate) / rate  # a crop starts at a frame of the file
    at = 0.5 * np.sin(2 * np.pi * 440 * (start + np.arange(16000) / 16000))
    np.testing.assert_allclose(crop[200:-200], at[200:-200], atol=2e-3)


@pytest.mark.slow
def test_resampling_from_16001_hz_takes_no_gigabytes(tmp_path: Path) -> None:
    # torchaudio's filters from 16001 to 16000 Hz are 16000 x 16013 numbers: 5 GB at their peak
    path = tmp_path / "odd.wav"
    sf.write(path, np.zeros(4 * 16001, dtype=np.int16), 16001, subtype="PCM_16")
    done = children.run([sys.executable, "-c", MEASURE, str(path)], timeout=300)
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout)
    assert measured["samples"] == 64000
    assert measured["after"] - measured["before"] < 200, measured
