"""Classifier heads against hand computations on a 2-D example, and their safety at theta = 0 and pi."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from engine.config import parse_config
from engine.errors import ConfigError
from engine.model import AdditiveAngularMarginLoss, AdditiveMarginLoss, Softmax, SubCenterInterTopKLoss, build_loss
from tests.conftest import TINY_CONFIG


def _cross_entropy(logits: list[float], target: int) -> float:
    return -logits[target] + math.log(sum(math.exp(z) for z in logits))


def _with_centres(head: torch.nn.Module) -> torch.nn.Module:
    """Class centres along the two axes (scaled: the heads must normalise them)."""
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 0.5]]))
    return head


def _embedding(angle: float, norm: float = 3.0) -> torch.Tensor:
    return torch.tensor([[norm * math.cos(angle), norm * math.sin(angle)]], requires_grad=True)


def test_aam_matches_arcface_by_hand() -> None:
    m, s, a = 0.3, 10.0, 0.7
    head = _with_centres(AdditiveAngularMarginLoss(2, 2, margin=m, s=s))
    loss, logits = head(_embedding(a), torch.tensor([0]))
    # cos(theta_0) = cos(a), cos(theta_1) = sin(a); the margin goes on the target angle a
    expected = [s * math.cos(a + m), s * math.sin(a)]
    assert logits[0].tolist() == pytest.approx(expected, abs=1e-5)
    assert loss.item() == pytest.approx(_cross_entropy(expected, 0), abs=1e-5)


def test_aam_target_on_second_class() -> None:
    m, s, a = 0.2, 7.0, 1.2
    head = _with_centres(AdditiveAngularMarginLoss(2, 2, margin=m, s=s))
    loss, logits = head(_embedding(a), torch.tensor([1]))
    theta_1 = math.pi / 2 - a
    expected = [s * math.cos(a), s * math.cos(theta_1 + m)]
    assert logits[0].tolist() == pytest.approx(expected, abs=1e-5)
    assert loss.item() == pytest.approx(_cross_entropy(expected, 1), abs=1e-5)


@pytest.mark.parametrize("angle", [0.0, 1e-6, math.pi - 1e-6, math.pi])
def test_aam_is_finite_near_zero_and_pi(angle: float) -> None:
    m, s = 0.2, 30.0
    head = _with_centres(AdditiveAngularMarginLoss(2, 2, margin=m, s=s))
    x = _embedding(angle)
    loss, logits = head(x, torch.tensor([0]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits).all()
    assert torch.isfinite(x.grad).all() and torch.isfinite(head.weight.grad).all()
    clamped = math.cos(angle)
    clamped = min(max(clamped, -1 + 1e-4), 1 - 1e-4)
    if angle < 1:
        target = math.cos(math.acos(clamped) + m)
    else:
        # past pi - m the target logit is cos(theta) - m sin(m), not cos(theta + m) (which grows back)
        target = clamped - math.sin(math.pi - m) * m
    assert logits[0, 0].item() == pytest.approx(s * target, abs=1e-4)


def test_aam_target_logit_decreases_with_the_angle_up_to_pi() -> None:
    head = _with_centres(AdditiveAngularMarginLoss(2, 2, margin=0.5, s=1.0))
    angles = torch.linspace(0, math.pi, 200)
    x = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    _, logits = head(x, torch.zeros(200, dtype=torch.long))
    assert (logits[1:, 0] <= logits[:-1, 0] + 1e-6).all()


def test_aam_easy_margin_spares_obtuse_angles() -> None:
    head = _with_centres(AdditiveAngularMarginLoss(2, 2, margin=0.3, s=5.0, easy_margin=True))
    a = 2.0  # cos(a) < 0: no margin
    _, logits = head(_embedding(a), torch.tensor([0]))
    assert logits[0, 0].item() == pytest.approx(5.0 * math.cos(a), abs=1e-5)


def test_am_matches_cosface_by_hand() -> None:
    m, s, a = 0.35, 30.0, 0.4
    head = _with_centres(AdditiveMarginLoss(2, 2, margin=m, s=s))
    loss, logits = head(_embedding(a), torch.tensor([0]))
    expected = [s * (math.cos(a) - m), s * math.sin(a)]
    assert logits[0].tolist() == pytest.approx(expected, abs=1e-4)
    assert loss.item() == pytest.approx(_cross_entropy(expected, 0), abs=1e-5)


def test_softmax_is_a_linear_classifier_without_bias() -> None:
    head = Softmax(2, 3)
    with torch.no_grad():
        head.classifier.weight.copy_(torch.tensor([[1.0, 2.0], [-1.0, 0.5], [0.0, -3.0]]))
    x = torch.tensor([[0.5, -1.0]])
    loss, logits = head(x, torch.tensor([2]))
    expected = [0.5 - 2.0, -0.5 - 0.5, 3.0]
    assert logits[0].tolist() == pytest.approx(expected, abs=1e-6)
    assert loss.item() == pytest.approx(_cross_entropy(expected, 2), abs=1e-6)
    assert head.classifier.bias is None


@pytest.mark.parametrize("name, kind", [("AdditiveAngularMarginLoss", AdditiveAngularMarginLoss),
                                        ("AdditiveMarginLoss", AdditiveMarginLoss),
                                        ("SubCenterInterTopKLoss", SubCenterInterTopKLoss),
                                        ("Softmax", Softmax)])
def test_build_loss_from_config(name: str, kind: type) -> None:
    text = TINY_CONFIG.replace("AdditiveAngularMarginLoss", name)
    if kind is Softmax:  # no margin nor scale to give
        text = text.replace("      margin: 0.05\n", "").replace("      s: 10\n", "")
    if kind is SubCenterInterTopKLoss:  # fewer hardest speakers than the 5 there are
        text = text.replace("      s: 10\n", "      s: 10\n      k_top: 2\n")
    cfg = parse_config(text, "tiny.yml")
    head = build_loss(cfg, 5)
    assert isinstance(head, kind)
    embeddings = torch.randn(4, cfg.architecture.tdnn.embedding_dim)
    loss, logits = head(embeddings, torch.tensor([0, 1, 4, 2]))
    assert logits.shape == (4, 5) and loss.dim() == 0 and torch.isfinite(loss)
    if kind is not Softmax:
        assert (head.margin, head.s) == (cfg.task.margin, cfg.task.s) == (0.05, 10.0)


def test_build_loss_refuses_one_speaker_and_unknown_names() -> None:
    cfg = parse_config(TINY_CONFIG, "tiny.yml")
    with pytest.raises(ConfigError, match="at least 2 training speakers"):
        build_loss(cfg, 1)
    odd = dataclasses.replace(cfg, task=dataclasses.replace(cfg.task, loss="TripletLoss"))
    with pytest.raises(ConfigError, match="AdditiveAngularMarginLoss"):
        build_loss(odd, 5)


def _brute_intertopk(x: list[list[float]], w: list[list[float]], labels: list[int], *, n: int, K: int, m: float,
                     s: float, mp: float, k_top: int) -> tuple[list[list[float]], float]:
    """Sub-centre inter-top-k logits and mean loss, one scalar at a time."""
    def unit(v: list[float]) -> list[float]:
        norm = math.sqrt(sum(a * a for a in v))
        return [a / norm for a in v]

    all_logits, losses = [], []
    for xi, y in zip(x, labels, strict=True):
        u = unit(xi)
        cos = [max(sum(a * b for a, b in zip(u, unit(w[j * K + k]), strict=True)) for k in range(K))
               for j in range(n)]
        hardest = sorted((j for j in range(n) if j != y), key=lambda j: -cos[j])[:k_top]
        logits = []
        for j in range(n):
            c = min(max(cos[j], -1 + 1e-4), 1 - 1e-4)
            if j == y:
                z = math.cos(math.acos(c) + m) if c > math.cos(math.pi - m) else c - math.sin(math.pi - m) * m
            elif j in hardest:
                z = math.cos(math.acos(c) - mp)
            else:
                z = cos[j]
            logits.append(s * z)
        all_logits.append(logits)
        losses.append(_cross_entropy(logits, y))
    return all_logits, sum(losses) / len(losses)


@pytest.mark.parametrize("K, k_top", [(3, 2), (1, 0), (2, 5)])
def test_subcenter_intertopk_matches_a_brute_force_computation(K: int, k_top: int) -> None:
    torch.manual_seed(0)
    n, m, s, mp = 6, 0.2, 10.0, 0.06
    head = SubCenterInterTopKLoss(3, n, margin=m, s=s, K=K, mp=mp, k_top=k_top)
    assert head.weight.shape == (n * K, 3)
    x = torch.randn(5, 3)
    labels = [0, 3, 5, 3, 1]
    loss, logits = head(x, torch.tensor(labels))
    expected, expected_loss = _brute_intertopk(x.tolist(), head.weight.tolist(), labels, n=n, K=K, m=m, s=s,
                                               mp=mp, k_top=k_top)
    assert logits.tolist() == [pytest.approx(row, abs=1e-4) for row in expected]
    assert loss.item() == pytest.approx(expected_loss, abs=1e-4)
    loss.backward()
    assert head.weight.grad is not None and torch.isfinite(head.weight.grad).all()


def test_subcenter_intertopk_penalty_ramps_with_a_scheduled_margin() -> None:
    torch.manual_seed(1)
    head = SubCenterInterTopKLoss(3, 4, margin=0.2, s=5.0, K=2, mp=0.06, k_top=1)
    head.set_margin(0.1)  # half way up a margin schedule: half the penalty
    x, labels = torch.randn(3, 3), [1, 0, 2]
    _, logits = head(x, torch.tensor(labels))
    expected, _ = _brute_intertopk(x.tolist(), head.weight.tolist(), labels, n=4, K=2, m=0.1, s=5.0, mp=0.03,
                                   k_top=1)
    assert logits.tolist() == [pytest.approx(row, abs=1e-4) for row in expected]


def test_subcenter_intertopk_penalty_is_wespeakers_at_a_margin_other_than_0_2() -> None:
    """`mp * m / full margin` kept 0.06 at a full margin of 0.5, where WeSpeaker (`mp * m / 0.2`) has
    0.15: an `mp` copied from a WeSpeaker config meant another penalty here."""
    torch.manual_seed(2)
    head = SubCenterInterTopKLoss(3, 4, margin=0.5, s=5.0, K=2, mp=0.06, k_top=1)
    x, labels = torch.randn(3, 3), [1, 0, 2]
    _, logits = head(x, torch.tensor(labels))
    expected, _ = _brute_intertopk(x.tolist(), head.weight.tolist(), labels, n=4, K=2, m=0.5, s=5.0, mp=0.15,
                                   k_top=1)
    assert logits.tolist() == [pytest.approx(row, abs=1e-4) for row in expected]
    head.set_margin(0.0)  # the start of a warm-up: no penalty either
    _, logits = head(x, torch.tensor(labels))
    expected, _ = _brute_intertopk(x.tolist(), head.weight.tolist(), labels, n=4, K=2, m=0.0, s=5.0, mp=0.0,
                                   k_top=1)
    assert logits.tolist() == [pytest.approx(row, abs=1e-4) for row in expected]


def test_build_loss_refuses_a_k_top_of_every_other_speaker() -> None:
    text = TINY_CONFIG.replace("AdditiveAngularMarginLoss", "SubCenterInterTopKLoss").replace(
        "      s: 10\n", "      s: 10\n      k_top: 4\n")
    cfg = parse_config(text, "tiny.yml")
    assert (cfg.task.K, cfg.task.mp, cfg.task.k_top) == (3, 0.06, 4)
    with pytest.raises(ConfigError, match="k_top"):
        build_loss(cfg, 4)
    assert isinstance(build_loss(cfg, 5), SubCenterInterTopKLoss)
