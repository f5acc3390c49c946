"""The speaker embedding network (SincTDNN) and its training heads; the only readers of the config here.

Classes take explicit keyword arguments; :func:`build_model` and :func:`build_loss` map a
parsed :class:`engine.config.Config` onto them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from engine.errors import ConfigError
from engine.model.embedding import SincTDNN
from engine.model.loss import AdditiveAngularMarginLoss, AdditiveMarginLoss, Softmax

if TYPE_CHECKING:
    from engine.config import Config

__all__ = ["SincTDNN", "AdditiveAngularMarginLoss", "AdditiveMarginLoss", "Softmax",
           "build_model", "build_loss", "LOSSES"]

#: task names accepted by :func:`build_loss`
LOSSES = ("AdditiveAngularMarginLoss", "AdditiveMarginLoss", "Softmax")


def build_model(cfg: Config) -> SincTDNN:
    """The SincTDNN network described by ``cfg.architecture``.

    Parameters
    ----------
    cfg : engine.config.Config

    Returns
    -------
    model : SincTDNN
        forward: (batch, sample) float32 -> (batch, embedding_dim).
    """
    arch = cfg.architecture
    return SincTDNN(sample_rate=arch.sincnet.sample_rate, stride=tuple(arch.sincnet.stride),
                    waveform_normalize=arch.sincnet.waveform_normalize,
                    instance_normalize=arch.sincnet.instance_normalize,
                    embedding_dim=arch.tdnn.embedding_dim, hidden_dim=arch.tdnn.hidden_dim,
                    batch_normalize=arch.embedding.batch_normalize,
                    unit_normalize=arch.embedding.unit_normalize)


def build_loss(cfg: Config, n_classes: int) -> nn.Module:
    """The classifier head of ``cfg.task`` over ``n_classes`` training speakers.

    Parameters
    ----------
    cfg : engine.config.Config
    n_classes : int
        Number of training speakers.

    Returns
    -------
    head : nn.Module
        forward(embeddings (batch, embedding_dim), labels (batch,) int64) -> (loss, logits).
    """
    name = cfg.task.loss.rsplit(".", 1)[-1]
    dim = cfg.architecture.tdnn.embedding_dim
    if n_classes < 2:
        raise ConfigError(f"{name} needs at least 2 training speakers, got {n_classes}: "
                          "check the protocol's train subset (and task.label_min_duration)",
                          key="task")
    if name == "AdditiveAngularMarginLoss":
        return AdditiveAngularMarginLoss(dim, n_classes, margin=cfg.task.margin, s=cfg.task.s)
    if name == "AdditiveMarginLoss":
        return AdditiveMarginLoss(dim, n_classes, margin=cfg.task.margin, s=cfg.task.s)
    if name == "Softmax":
        return Softmax(dim, n_classes)
    raise ConfigError(f"unknown loss {cfg.task.loss!r}; accepted: {', '.join(LOSSES)}", key="task.name")
