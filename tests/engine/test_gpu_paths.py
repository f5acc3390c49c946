"""What the CUDA paths rely on, checked on the CPU: the margin loss in float32 under bf16 autocast, the
windows of a span cut without a host-side index."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from engine.inference.windows import _gather
from engine.model.loss import AdditiveAngularMarginLoss
from engine.training.train import NetworkWithLoss


def test_the_margin_loss_under_bf16_autocast_is_the_float32_one() -> None:
    """Under bf16 autocast the head's cosines were bf16 (8 bits of mantissa): at s = 30 its logits moved
    in steps of 0.1, and a target cosine near 1 could round to 1 where the margin's clamp stops its
    gradient. The network may run in bf16; the loss on its embeddings is float32."""
    torch.manual_seed(0)
    head = AdditiveAngularMarginLoss(192, 50, margin=0.2, s=30.0)
    net, embeddings, labels = NetworkWithLoss(nn.Identity(), head), torch.randn(16, 192), torch.arange(16)
    expected = net(embeddings, labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = net(embeddings, labels)
    assert loss.dtype == torch.float32 and torch.allclose(loss, expected, rtol=1e-6, atol=1e-6)


def test_windows_of_a_span_are_those_an_index_would_cut() -> None:
    span = torch.randn(20_000)
    for rel in (np.arange(0, 12_000, 160), np.array([0]), np.array([0, 3, 100]), np.array([0, 0, 5])):
        window = 4_000
        expected = span[torch.from_numpy(rel[:, None] + np.arange(window))]
        got = _gather(span[:int(rel[-1]) + window], rel, window)
        assert got.shape == expected.shape and torch.equal(got, expected)
