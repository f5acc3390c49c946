"""The log-mel front end and the filterbank backbones: Kaldi parity, WeSpeaker's sizes, config rules."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
import torch
import torchaudio.compliance.kaldi as kaldi

from engine.config import config_to_dict, dump_config, parse_config, template_text
from engine.errors import AudioError, ConfigError
from engine.model import FbankNetwork, build_loss, build_model
from engine.model.fbank import Fbank
from engine.model.summary import count_parameters
from tests import children

TASK = "task: {name: AdditiveAngularMarginLoss}\n"
FBANK = ("feature_extraction: {name: Fbank, params: {num_mel_bins: 80, frame_length: 25, frame_shift: 10, "
         "dither: 1.0}}\n")

#: WeSpeaker's own models (wespeaker/models/*.py) with these settings: each count was read off
#: ``sum(p.numel() for p in model.parameters())`` of WeSpeaker's code, whose state_dict keys and
#: shapes ours equal one for one
WESPEAKER_COUNTS = {
    # wespeaker.models.resnet.ResNet34(feat_dim=80, embed_dim=256, pooling_func='TSTP', two_emb_layer=False)
    "{name: ResNet34, params: {m_channels: 32, embed_dim: 256, two_emb_layer: false}}": 6_634_336,
    # wespeaker.models.ecapa_tdnn.ECAPA_TDNN_c1024(feat_dim=80, embed_dim=192, pooling_func='ASTP')
    "{name: ECAPA_TDNN, params: {channels: 1024, global_context: false}}": 14_263_872,
    # wespeaker.models.ecapa_tdnn.ECAPA_TDNN_GLOB_c1024(feat_dim=80, embed_dim=192)
    "{name: ECAPA_TDNN, params: {channels: 1024, global_context: true}}": 14_657_088,
    # wespeaker.models.ecapa_tdnn.ECAPA_TDNN_GLOB_c512(feat_dim=80, embed_dim=192)
    "{name: ECAPA_TDNN, params: {channels: 512, embed_dim: 192, global_context: true}}": 6_190_720,
    # wespeaker.models.campplus.CAMPPlus(feat_dim=80, embed_dim=512, pooling_func='TSTP')
    "{name: CAMPPlus, params: {embed_dim: 512}}": 7_176_224,
    # the other pooling layers (wespeaker.models.pooling_layers), by pooling_func
    "{name: ResNet34, params: {pooling_func: TAP}}": 5_978_976,
    "{name: ResNet34, params: {pooling_func: TSDP}}": 5_978_976,
    "{name: ResNet34, params: {pooling_func: ASTP}}": 7_292_384,
    "{name: ResNet34, params: {two_emb_layer: true}}": 6_700_128,
    "{name: CAMPPlus, params: {pooling_func: TAP}}": 6_914_080,
    "{name: CAMPPlus, params: {pooling_func: ASTP}}": 7_307_936,
}


def kaldi_reference(wave: torch.Tensor, **options: object) -> torch.Tensor:
    """WeSpeaker's front end on one waveform: kaldi.fbank of the 16-bit-scaled wave, then mean normalisation."""
    feats = kaldi.fbank(wave[None] * (1 << 15), dither=0.0, use_energy=False, **options)
    return feats - feats.mean(dim=0, keepdim=True)


@pytest.mark.parametrize("window_type", ["hamming", "povey"])
@pytest.mark.parametrize("bins,length,shift,rate", [(80, 25.0, 10.0, 16000), (40, 20.0, 7.5, 8000)])
def test_batched_fbank_equals_kaldi_fbank_per_utterance(window_type: str, bins: int, length: float, shift: float,
                                                        rate: int) -> None:
    torch.manual_seed(0)
    waves = torch.randn(3, rate + 123) * torch.tensor([[0.3], [0.01], [0.9]])
    front = Fbank(sample_rate=rate, num_mel_bins=bins, frame_length=length, frame_shift=shift, dither=1.0,
                  window_type=window_type).eval()
    batched = front(waves)
    for i in range(3):
        ref = kaldi_reference(waves[i], num_mel_bins=bins, frame_length=length, frame_shift=shift,
                              sample_frequency=rate, window_type=window_type)
        assert batched[i].shape == ref.shape == (front.num_frames(waves.shape[1]), bins)
        torch.testing.assert_close(batched[i], ref, atol=1e-4, rtol=0)
    # the DFT-matrix path of an ONNX export computes the same features
    torch.testing.assert_close(front.for_export()(waves), batched, atol=1e-3, rtol=0)


def test_fbank_dithers_while_training_only() -> None:
    waves = torch.randn(2, 8000) * 0.1
    front = Fbank(dither=1.0)
    assert not torch.equal(front.train()(waves), front(waves))
    assert torch.equal(front.eval()(waves), front(waves))
    assert torch.equal(Fbank(dither=0.0).train()(waves), front(waves))


@pytest.mark.parametrize("arch", list(WESPEAKER_COUNTS))
def test_backbones_have_wespeakers_parameter_counts(arch: str) -> None:
    model = build_model(parse_config(FBANK + TASK + f"architecture: {arch}\n"))
    assert isinstance(model, FbankNetwork) and isinstance(model.features, Fbank)
    assert count_parameters(model) == WESPEAKER_COUNTS[arch]  # the filterbank has no parameters
    model.eval()
    with torch.no_grad():
        for samples in (model.min_samples, 16000 + 77):
            out = model(torch.randn(2, samples) * 0.1)
            assert out.shape == (2, model.dimension) and torch.isfinite(out).all()


@pytest.mark.parametrize("arch,dim", [("ResNet34", 256), ("ECAPA_TDNN", 192), ("CAMPPlus", 512)])
def test_the_classifier_takes_the_backbones_embedding_dimension(arch: str, dim: int) -> None:
    cfg = parse_config(FBANK + TASK + f"architecture: {{name: {arch}}}\n")
    assert cfg.architecture.embedding_dim == dim
    head = build_loss(cfg, n_classes=7)
    loss, logits = head(torch.randn(4, dim), torch.tensor([0, 1, 2, 3]))
    assert logits.shape == (4, 7) and torch.isfinite(loss)


@pytest.mark.parametrize("arch", ["{name: ResNet34, params: {m_channels: 8, embed_dim: 64}}",
                                  "{name: ECAPA_TDNN, params: {channels: 1024, global_context: false}}",
                                  "{name: CAMPPlus, params: {growth_rate: 16}}"])
def test_backbone_configs_round_trip(arch: str) -> None:
    cfg = parse_config("feature_extraction: {name: Fbank, params: {num_mel_bins: 40, window_type: povey}}\n"
                       + TASK + f"architecture: {arch}\n")
    assert parse_config(dump_config(cfg)) == cfg
    data = config_to_dict(cfg)
    assert data["feature_extraction"]["name"] == "Fbank" and data["feature_extraction"]["params"]["num_mel_bins"] == 40
    assert "sincnet" not in data["architecture"]["params"]


@pytest.mark.parametrize("text,message", [
    ("feature_extraction: {name: RawAudio}\narchitecture: {name: ResNet34}\n",
     "c.yml:1: feature_extraction.name: ResNet34 reads log-mel filterbanks, not the raw waveform"),
    ("architecture: {name: CAMPPlus}\n",
     "c.yml:1: architecture.name: CAMPPlus reads log-mel filterbanks, not the raw waveform"),
    ("feature_extraction: {name: Fbank}\narchitecture: {name: SincTDNN}\n",
     "c.yml:1: feature_extraction.name: SincTDNN reads the raw waveform, not Fbank features"),
    ("feature_extraction: {name: Fbank, params: {num_mel_bins: 4}}\narchitecture: {name: ResNet34}\n",
     "num_mel_bins: ResNet34 divides the mel axis by 8: num_mel_bins must be a multiple of 8 (40, 64, 80), got 4"),
    # three halvings give ceil(30 / 8) = 4 bins where the pooling expects 3: a traceback at the first step
    ("feature_extraction: {name: Fbank, params: {num_mel_bins: 30}}\narchitecture: {name: ResNet34}\n",
     "num_mel_bins: ResNet34 divides the mel axis by 8: num_mel_bins must be a multiple of 8 (40, 64, 80), got 30"),
    ("feature_extraction: {name: Fbank, params: {num_mel_bins: 60}}\narchitecture: {name: CAMPPlus}\n",
     "num_mel_bins: CAMPPlus divides the mel axis by 8: num_mel_bins must be a multiple of 8 (40, 64, 80), got 60"),
    # a window of 0 samples: every feature the same, the network trained on nothing
    ("feature_extraction: {name: Fbank, params: {frame_length: 0.05}}\narchitecture: {name: ECAPA_TDNN}\n",
     "frame_length: 0.05 ms is 0 samples at 16000 Hz: a window needs at least 2; set frame_length to 0.126 ms"),
    ("feature_extraction: {name: Fbank, params: {frame_shift: 0.05}}\narchitecture: {name: ECAPA_TDNN}\n",
     "frame_shift: 0.05 ms is 0 samples at 16000 Hz: a hop needs at least 1; set frame_shift to 0.063 ms"),
    (FBANK + "architecture: {name: CAMPPlus, params: {growth_rate: 1, bn_size: 1}}\n",
     "architecture.params.bn_size: a CAM layer halves its growth_rate x bn_size bottleneck channels, here 1 x 1"),
    (FBANK + "architecture: {name: ECAPA_TDNN, params: {channels: 100}}\n",
     "architecture.params.channels: must be a positive multiple of 8, got 100"),
    (FBANK.replace("dither: 1.0", "window_type: hann") + "architecture: {name: ResNet34}\n",
     "feature_extraction.params.window_type: expected hamming or povey, got the text 'hann'"),
])
def test_a_front_end_that_does_not_fit_is_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text + TASK, "c.yml")
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("arch, too_short, enough", [("ResNet34", 0.1, 0.105), ("CAMPPlus", 0.04, 0.045),
                                                      ("ECAPA_TDNN", 0.03, 0.035)])
def test_chunks_shorter_than_the_backbone_pools_are_refused_with_the_shortest(arch: str, too_short: float,
                                                                             enough: float) -> None:
    """0.1 s ResNet34 chunks trained to NaN at the first step, said as a learning rate too high."""
    def text(duration: float) -> str:
        return (FBANK + f"architecture: {{name: {arch}}}\n"
                + f"task: {{name: AdditiveAngularMarginLoss, params: {{duration: {duration}}}}}\n")

    with pytest.raises(ConfigError) as caught:
        parse_config(text(too_short), "c.yml")
    assert f"task.params.duration: chunks of {too_short:g} s are too short for {arch}" in str(caught.value)
    assert f"set duration to {enough:g} s or more" in str(caught.value)
    assert parse_config(text(enough)).task.duration == enough


@pytest.mark.parametrize("arch", ["{name: ResNet34, params: {m_channels: 4, embed_dim: 8}}",
                                  "{name: ECAPA_TDNN, params: {channels: 16, embed_dim: 8}}",
                                  "{name: CAMPPlus, params: {growth_rate: 4, init_channels: 8, embed_dim: 8}}"])
def test_a_waveform_too_short_for_the_backbone_is_one_error_not_nan(arch: str) -> None:
    """Under 400 samples torch's FFT failed with a traceback; under the fewest frames, NaN embeddings."""
    model = build_model(parse_config(FBANK + TASK + f"architecture: {arch}\n"))
    model.eval()
    for samples in (model.min_samples - 1, 300):
        with pytest.raises(AudioError, match=f"audio of {samples} samples .* is too short for"):
            model(torch.randn(1, samples))
    assert torch.isfinite(model(torch.randn(1, model.min_samples))).all()


#: the full-size (WeSpeaker VoxCeleb2 recipe) network of each backbone template, as model-summary counts it
TEMPLATE_COUNTS = {"resnet34": 6_634_336, "ecapa_tdnn": 6_190_720, "campplus": 7_176_224}


def full_size(text: str) -> str:
    """A template with each ``key: value  # recipe: X ...`` line set to the recipe's value X."""
    lines = []
    for line in text.splitlines():
        match = re.match(r"^(\s*[A-Za-z_]+:\s*)(\S+)(\s*#\s*recipe:\s*)(\S+)", line)
        lines.append(f"{match[1]}{match[4]}" if match else line)
    return "\n".join(lines) + "\n"


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TEMPLATE_COUNTS))
def test_model_summary_of_each_backbone_template_at_full_size(name: str, tmp_path: Path) -> None:
    text = template_text(name)
    small = parse_config(text, f"{name}.yml")
    full = parse_config(full_size(text), f"{name} at full size")
    assert full.architecture.name == small.architecture.name and full.feature_extraction.num_mel_bins == 80
    assert full.task.duration == 2.0 and full.task.per_fold == 256 and full.task.s == 32
    assert count_parameters(build_model(small)) < TEMPLATE_COUNTS[name] / 3  # CPU-sized
    (tmp_path / "config.yml").write_text(full_size(text))
    done = children.run([sys.executable, "-m", "engine", "model-summary", str(tmp_path)], timeout=300,
                        env={**os.environ, "COLUMNS": "160"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == f"parameters: {TEMPLATE_COUNTS[name]}"
    assert any(re.search(r"features\s+│ Fbank\s+│\s+\(1, 198, 80\)", line) for line in lines)
    assert "filterbank frames per chunk: 198 x 80 mel bins (25 ms every 10 ms)" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["{name: ECAPA_TDNN, params: {channels: 16, embed_dim: 8}}",
                                  "{name: CAMPPlus, params: {growth_rate: 4, init_channels: 8, embed_dim: 8}}"])
def test_onnx_export_of_a_backbone_equals_pytorch_on_several_lengths(arch: str) -> None:
    import numpy as np
    import onnxruntime as ort

    from engine.extraction.export import onnx_bytes

    torch.manual_seed(0)
    model = build_model(parse_config(FBANK.replace("80", "24") + TASK + f"architecture: {arch}\n")).eval()
    session = ort.InferenceSession(onnx_bytes(model, {"spkemb.format": "test"}), providers=["CPUExecutionProvider"])
    for samples in (model.min_samples, 16001, 3 * 16000 + 17):
        wave = torch.randn(2, samples) * 0.1
        with torch.no_grad():
            expected = model(wave).numpy()
        got = session.run(None, {session.get_inputs()[0].name: wave.numpy()})[0]
        assert np.abs(got - expected).max() <= 1e-4, samples


def test_fbank_stays_float32_under_autocast() -> None:
    waves = torch.randn(2, 8000) * 0.1
    front = Fbank().eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        features = front(waves)
    assert features.dtype == torch.float32 and torch.equal(features, front(waves))
