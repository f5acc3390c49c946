"""Classifier heads over the training speakers: each forward(embeddings, labels) -> (loss, logits).

The embedding network is trained as the penultimate layer of a speaker classifier
(pyannote.audio 1.x ``embedding/approaches``); the head is thrown away after training.
``logits`` are the scaled scores the cross-entropy saw (margin included on the target class).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ClassifierHead(nn.Module):
    """What every head is to the trainer: forward(embeddings, labels) -> (loss, logits), and a margin
    that WeSpeaker's margin scheduler moves (heads with a margin override :meth:`set_margin`)."""

    def set_margin(self, margin: float) -> None:
        """The margin in force from this step on."""
        raise NotImplementedError(f"{type(self).__name__} has no margin to schedule")


class CosineClassifier(ClassifierHead):
    """Cosine between L2-normalised embeddings and L2-normalised class centres."""

    def __init__(self, embedding_dim: int, n_classes: int) -> None:
        super().__init__()
        self.embedding_dim, self.n_classes = embedding_dim, n_classes
        self.weight = nn.Parameter(torch.empty(n_classes, embedding_dim))
        nn.init.xavier_uniform_(self.weight)  # as pyannote 1.x ArcLinear

    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(batch, embedding_dim) -> (batch, n_classes) cosines."""
        return F.normalize(embeddings, dim=1) @ F.normalize(self.weight, dim=1).t()


class AdditiveAngularMarginLoss(CosineClassifier):
    """ArcFace: cross-entropy over ``s * cos(theta_y + m)`` for the target, ``s * cos(theta_j)`` otherwise.

    Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face Recognition", CVPR 2019.

    ``cos(theta + m)`` is computed as ``cos(theta) cos(m) - sin(theta) sin(m)`` on a cosine
    clamped to ``[-1 + eps, 1 - eps]`` (eps = 1e-4, pyannote 1.x ``ArcLinear``), so that
    neither ``sin`` nor its gradient blows up at theta = 0 or pi. Past ``theta = pi - m``,
    ``cos(theta + m)`` would grow again; there the target logit becomes
    ``cos(theta) - m sin(m)`` (insightface's ``th``/``mm``), monotonic in theta.
    With ``easy_margin`` the margin applies only where ``cos(theta) > 0``.

    Parameters
    ----------
    embedding_dim, n_classes : int
    margin : float
        Angular margin m, in radians.
    s : float
        Scale of the logits.
    easy_margin : bool
        Apply the margin only to angles below pi / 2.
    """

    eps = 1e-4

    def __init__(self, embedding_dim: int, n_classes: int, *, margin: float = 0.1, s: float = 7.0,
                 easy_margin: bool = False) -> None:
        super().__init__(embedding_dim, n_classes)
        self.s, self.easy_margin = s, easy_margin
        self.set_margin(margin)

    def set_margin(self, margin: float) -> None:
        """Use margin ``margin`` from the next forward on (a margin schedule sets it every step)."""
        self.margin = margin
        self.cos_m, self.sin_m = math.cos(margin), math.sin(margin)
        self.th = math.cos(math.pi - margin)
        self.mm = math.sin(math.pi - margin) * margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, embedding_dim), (batch,) int64 -> scalar loss, (batch, n_classes) logits."""
        cosine = self.cosine(embeddings)  # (batch, n_classes)
        margined, _ = self.with_margin(cosine, labels)
        logits = self.s * margined
        return F.cross_entropy(logits, labels), logits

    def with_margin(self, cosine: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The cosines with each target's angle widened by the margin (unscaled), and the one-hot targets."""
        target = cosine.gather(1, labels.view(-1, 1)).clamp(-1 + self.eps, 1 - self.eps)  # (batch, 1)
        sine = torch.sqrt(1.0 - target * target)
        phi = target * self.cos_m - sine * self.sin_m  # cos(theta + m)
        if self.easy_margin:
            phi = torch.where(target > 0, phi, target)
        else:
            phi = torch.where(target > self.th, phi, target - self.mm)
        one_hot = F.one_hot(labels, self.n_classes).to(cosine.dtype)
        return cosine + one_hot * (phi - cosine.gather(1, labels.view(-1, 1))), one_hot


class AdditiveMarginLoss(CosineClassifier):
    """CosFace: cross-entropy over ``s * (cos(theta_y) - m)`` for the target, ``s * cos(theta_j)`` otherwise.

    Wang et al., "CosFace: Large Margin Cosine Loss for Deep Face Recognition", CVPR 2018
    (also AM-Softmax, Wang et al., IEEE SPL 2018).

    Parameters
    ----------
    embedding_dim, n_classes : int
    margin : float
        Cosine margin m.
    s : float
        Scale of the logits.
    """

    def __init__(self, embedding_dim: int, n_classes: int, *, margin: float = 0.1, s: float = 7.0) -> None:
        super().__init__(embedding_dim, n_classes)
        self.margin, self.s = margin, s

    def set_margin(self, margin: float) -> None:
        """Use margin ``margin`` from the next forward on (a margin schedule sets it every step)."""
        self.margin = margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, embedding_dim), (batch,) int64 -> scalar loss, (batch, n_classes) logits."""
        cosine = self.cosine(embeddings)  # (batch, n_classes)
        one_hot = F.one_hot(labels, self.n_classes).to(cosine.dtype)
        logits = self.s * (cosine - self.margin * one_hot)
        return F.cross_entropy(logits, labels), logits


class Softmax(ClassifierHead):
    """Plain linear classifier without bias and cross-entropy (pyannote 1.x ``Classification``).

    Parameters
    ----------
    embedding_dim, n_classes : int
    """

    def __init__(self, embedding_dim: int, n_classes: int) -> None:
        super().__init__()
        self.embedding_dim, self.n_classes = embedding_dim, n_classes
        self.classifier = nn.Linear(embedding_dim, n_classes, bias=False)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, embedding_dim), (batch,) int64 -> scalar loss, (batch, n_classes) logits."""
        logits = self.classifier(embeddings)
        return F.cross_entropy(logits, labels), logits


#: the margin at which the inter-top-k penalty is ``mp`` (WeSpeaker's ``mp * margin / 0.2``)
PENALTY_MARGIN = 0.2


class SubCenterInterTopKLoss(AdditiveAngularMarginLoss):
    """Sub-centre ArcFace with an inter-top-k penalty (WeSpeaker's ``arc_margin_intertopk_subcenter``).

    Each speaker has ``K`` centres; a chunk's cosine to a speaker is its largest cosine to that
    speaker's centres (Deng et al., "Sub-center ArcFace", ECCV 2020), so that noisy chunks of a
    speaker can gather round a centre of their own. The target logit is ArcFace's
    ``s * cos(theta_y + m)`` (as :class:`AdditiveAngularMarginLoss`); the ``k_top`` closest
    non-target speakers get ``s * cos(theta_j - mp)``, a harder negative (Zhao et al.,
    "Multi-query multi-head attention pooling and inter-topK penalty for speaker verification",
    ICASSP 2022); the other speakers ``s * cos(theta_j)``. The penalty follows the margin as
    WeSpeaker's does: ``mp * m / 0.2`` (0.2 its recipes' margin, whatever the full margin; none
    below a margin of 0.001), so that ``mp`` means what it means in a WeSpeaker config.

    Parameters
    ----------
    embedding_dim, n_classes : int
    margin, s, easy_margin
        As :class:`AdditiveAngularMarginLoss`.
    K : int
        Centres per speaker (1: no sub-centres).
    mp : float
        Inter-top-k angular penalty, in radians, at the full margin.
    k_top : int
        Non-target speakers penalised (0: none); fewer than ``n_classes``.
    """

    def __init__(self, embedding_dim: int, n_classes: int, *, margin: float = 0.2, s: float = 32.0,
                 easy_margin: bool = False, K: int = 3, mp: float = 0.06, k_top: int = 5) -> None:
        if K < 1 or not 0 <= k_top < n_classes:
            raise ValueError(f"K >= 1 and 0 <= k_top < n_classes ({n_classes}) needed, got K={K}, k_top={k_top}")
        self.K, self.mp, self.k_top = K, mp, k_top
        super().__init__(embedding_dim, n_classes * K, margin=margin, s=s, easy_margin=easy_margin)
        self.n_classes = n_classes

    def set_margin(self, margin: float) -> None:
        super().set_margin(margin)
        penalty = self.mp * margin / PENALTY_MARGIN if margin > 0.001 else 0.0
        self.cos_mp, self.sin_mp = math.cos(penalty), math.sin(penalty)

    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(batch, embedding_dim) -> (batch, n_classes): the closest centre of each speaker."""
        every = super().cosine(embeddings)  # (batch, n_classes * K), centres of a speaker side by side
        return every.view(every.shape[0], self.n_classes, self.K).amax(dim=2)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, embedding_dim), (batch,) int64 -> scalar loss, (batch, n_classes) logits."""
        cosine = self.cosine(embeddings)  # (batch, n_classes)
        logits, one_hot = self.with_margin(cosine, labels)
        if self.k_top > 0:
            # the k_top largest non-target cosines (the target pushed below -1 to leave it out)
            top = torch.topk(cosine.detach() - 3 * one_hot, self.k_top, dim=1).indices
            hard = torch.zeros_like(cosine).scatter_(1, top, 1.0)
            clamped = cosine.clamp(-1 + self.eps, 1 - self.eps)
            phi_mp = clamped * self.cos_mp + torch.sqrt(1.0 - clamped * clamped) * self.sin_mp  # cos(theta - mp)
            logits = logits + hard * (phi_mp - cosine)
        logits = self.s * logits
        return F.cross_entropy(logits, labels), logits
