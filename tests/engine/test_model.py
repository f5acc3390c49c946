"""SincTDNN: sizes of the tutorial's network, the shared extraction path, short inputs, the summary command."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.config import parse_config, template_text
from engine.errors import AudioError
from engine.model import SincTDNN, build_model
from engine.model.sincnet import SincConv1d, SincNet, hz_to_mel
from engine.model.summary import count_parameters, layer_rows
from tests.conftest import TINY_CONFIG
from tests.engine.engine_runner import run_engine, run_in_process

ROOT = Path(__file__).resolve().parents[2]

#: the tutorial's config.yml
TUTORIAL_CONFIG = template_text("tutorial")

#: SincNet 42,682 + TDNN frame layers 2,763,704 + segment6 1,536,512 (pyannote 1.x's unused
#: segment7, 262,656 more, is left out)
TUTORIAL_PARAMETERS = 4_342_898


@pytest.fixture(scope="module")
def tutorial_model() -> SincTDNN:
    torch.manual_seed(0)
    return build_model(parse_config(TUTORIAL_CONFIG, "tutorial.yml")).eval()


def test_tutorial_network_sizes(tutorial_model: SincTDNN) -> None:
    assert count_parameters(tutorial_model) == TUTORIAL_PARAMETERS
    with torch.no_grad():
        out = tutorial_model(torch.randn(3, 32000))
    assert out.shape == (3, 512) and torch.isfinite(out).all()
    # 251-tap sinc filters at stride 5, three max-pools of 3, TDNN contexts 5, 3x2, 3x3
    assert (tutorial_model.receptive_field, tutorial_model.frame_step) == (2511, 135)
    rows = {row.name: row for row in layer_rows(tutorial_model, 32000)}
    assert rows["sincnet.blocks.0.conv"].shape == (1, 80, 6350)
    assert rows["sincnet.blocks.2.activation"].shape == (1, 60, 233)
    assert rows["tdnn.frame_layers.4.conv"].shape == (1, 1500, 219)
    assert rows["tdnn.pool"].shape == (1, 3000)
    assert sum(row.parameters for row in rows.values()) == TUTORIAL_PARAMETERS


def test_frames_then_pool_stats_equal_forward(tutorial_model: SincTDNN) -> None:
    waveforms = torch.randn(2, 24000)
    with torch.no_grad():
        frames = tutorial_model.frames(waveforms)
        assert frames.shape == (2, tutorial_model.num_frames(24000), tutorial_model.frame_dim)
        composed = tutorial_model.pool_stats(*tutorial_model.pool(frames))
        direct = tutorial_model(waveforms)
    assert torch.allclose(composed, direct, atol=1e-5)


@pytest.mark.parametrize("samples", [2646, 2780, 2781, 5000, 16000])
def test_num_frames_is_exact(tutorial_model: SincTDNN, samples: int) -> None:
    with torch.no_grad():
        frames = tutorial_model.frames(torch.randn(1, samples))
    assert frames.shape[1] == tutorial_model.num_frames(samples)


def test_too_short_input_names_the_duration_needed(tutorial_model: SincTDNN) -> None:
    need = tutorial_model.min_samples
    assert need == 2511 + 135  # two frames: the standard deviation needs both
    with torch.no_grad():
        assert torch.isfinite(tutorial_model(torch.randn(1, need))).all()
        with pytest.raises(AudioError, match=r"at least 2646 samples \(0\.165 s at 16000 Hz\)"):
            tutorial_model(torch.randn(1, need - 1))
        with pytest.raises(AudioError, match="too short"):
            tutorial_model.frames(torch.randn(2, 400))


def test_sinc_filters_start_on_the_mel_scale() -> None:
    conv = SincConv1d(out_channels=80, kernel_size=251, sample_rate=16000)
    low = conv.low_hz_.detach()[:, 0].double().numpy()
    band = conv.band_hz_.detach()[:, 0].double().numpy()
    edges = np.append(low, low[-1] + band[-1])
    # 81 edges from 30 Hz to 16000 / 2 - (50 + 50) = 7900 Hz, equally spaced in mel
    assert edges[0] == pytest.approx(30.0, abs=1e-3)
    assert edges[-1] == pytest.approx(7900.0, abs=1e-2)
    assert np.allclose(np.diff(hz_to_mel(edges)), (hz_to_mel(7900.0) - hz_to_mel(30.0)) / 80, atol=1e-3)
    eff_low, eff_high = conv.band_edges()
    assert eff_low[0].item() == pytest.approx(80.0, abs=1e-3)  # 50 Hz floor + 30 Hz
    assert eff_high[-1].item() == pytest.approx(8000.0)  # clamped at Nyquist
    filters = conv.filters()
    assert filters.shape == (80, 1, 251)
    assert torch.allclose(filters, filters.flip(-1))  # linear phase: symmetric taps


def test_the_waveform_norm_folded_into_the_sinc_filters_is_the_same_function_and_gradients() -> None:
    """SincNet convolves the standardized waveform with the affine step folded into its filters:
    the same values and gradients as the norm (with its scale and shift) then the convolution."""
    torch.manual_seed(0)
    sincnet = SincNet(stride=(5, 1, 1)).double()
    with torch.no_grad():  # a trained norm: neither the identity nor zero
        sincnet.waveform_norm.weight.fill_(1.3)
        sincnet.waveform_norm.bias.fill_(-0.2)
    waveforms = 0.1 * torch.randn(3, 8000, dtype=torch.float64) + 0.05
    def values_and_gradients(forward: Callable[[torch.Tensor], torch.Tensor]) -> list[torch.Tensor]:
        sincnet.zero_grad()
        out = forward(waveforms)
        (out * torch.linspace(-1.0, 1.0, out.shape[-1], dtype=out.dtype)).sum().backward()  # no plain sum
        return [out.detach()] + [p.grad.clone() for p in sincnet.parameters() if p.grad is not None]

    def norm_then_blocks(x: torch.Tensor) -> torch.Tensor:
        h = sincnet.waveform_norm(x.unsqueeze(1))
        for block in sincnet.blocks:
            h = block(h)
        return h

    folded, unfolded = values_and_gradients(sincnet), values_and_gradients(norm_then_blocks)
    assert len(folded) == len(unfolded) == 1 + len(list(sincnet.parameters()))
    for a, b in zip(folded, unfolded, strict=True):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


def test_config_options_reach_the_network() -> None:
    cfg = parse_config(TINY_CONFIG, "tiny.yml")
    model = build_model(cfg)
    assert model.dimension == 32 and model.tdnn.hidden_dim == 64
    assert model.frame_dim == 188  # 1500 * 64 / 512, rounded
    unit = parse_config(TINY_CONFIG.replace("unit_normalize: False", "unit_normalize: True")
                        .replace("batch_normalize: False", "batch_normalize: True"), "unit.yml")
    model = build_model(unit).eval()
    assert model.embedding.batch_norm is not None
    with torch.no_grad():
        out = model(torch.randn(3, 16000))
    assert torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-5)
    no_norm = parse_config(TINY_CONFIG.replace("waveform_normalize: True", "waveform_normalize: False")
                           .replace("instance_normalize: True", "instance_normalize: False"), "raw.yml")
    model = build_model(no_norm)
    assert model.sincnet.waveform_norm is None and model.sincnet.blocks[0].norm is None


def test_every_parameter_gets_a_gradient() -> None:
    model = SincTDNN(stride=(5, 1, 1), hidden_dim=32, embedding_dim=16)
    model(torch.randn(2, 8000)).sum().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert missing == []


def _summary(arg: Path) -> subprocess.CompletedProcess:
    return run_engine("model-summary", str(arg), timeout=120)


@pytest.mark.slow  # the command as users start it, in a process of its own
def test_model_summary_command(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(TUTORIAL_CONFIG)
    done = _summary(config)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == f"parameters: {TUTORIAL_PARAMETERS}"
    assert "tdnn.segment6" in done.stdout and "(1, 1500, 219)" in done.stdout
    assert any(line.startswith("forward GFLOP per chunk: ") for line in lines)


@pytest.mark.slow
def test_model_summary_of_an_experiment_directory(tiny_exp: Path, capsys: pytest.CaptureFixture) -> None:
    from engine.cli import main

    assert main(["model-summary", str(tiny_exp)]) == 0
    expected = count_parameters(build_model(parse_config(TINY_CONFIG, "tiny.yml")))
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"parameters: {expected}"


def test_model_summary_without_config(tmp_path: Path) -> None:
    done = run_in_process("model-summary", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "no config file" in done.stderr
