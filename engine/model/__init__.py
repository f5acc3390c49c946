"""The speaker embedding networks (SincTDNN; ResNet34, ECAPA-TDNN and CAM++ on filterbanks) and their
training heads; the only readers of the config here.

Classes take explicit keyword arguments; :func:`build_model` and :func:`build_loss` map a
parsed :class:`engine.config.Config` onto them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from engine.errors import ConfigError
from engine.model.embedding import SincTDNN
from engine.model.fbank import Fbank
from engine.model.fbank_network import FbankNetwork
from engine.model.loss import (
    AdditiveAngularMarginLoss,
    AdditiveMarginLoss,
    ClassifierHead,
    Softmax,
    SubCenterInterTopKLoss,
)

if TYPE_CHECKING:
    from engine.config import Config

__all__ = ["SincTDNN", "Fbank", "FbankNetwork", "AdditiveAngularMarginLoss", "AdditiveMarginLoss", "Softmax",
           "SubCenterInterTopKLoss", "build_model", "build_loss", "LOSSES"]

#: task names accepted by :func:`build_loss`
LOSSES = ("AdditiveAngularMarginLoss", "AdditiveMarginLoss", "SubCenterInterTopKLoss", "Softmax")


def build_model(cfg: Config) -> SincTDNN | FbankNetwork:
    """The network described by ``cfg.architecture`` (and ``cfg.feature_extraction`` for a backbone).

    Parameters
    ----------
    cfg : engine.config.Config

    Returns
    -------
    model : SincTDNN or FbankNetwork
        forward: (batch, sample) float32 -> (batch, embedding_dim).
    """
    arch = cfg.architecture
    if arch.name != "SincTDNN":
        return _fbank_network(cfg)
    return SincTDNN(sample_rate=arch.sincnet.sample_rate, stride=tuple(arch.sincnet.stride),
                    waveform_normalize=arch.sincnet.waveform_normalize,
                    instance_normalize=arch.sincnet.instance_normalize,
                    embedding_dim=arch.tdnn.embedding_dim, hidden_dim=arch.tdnn.hidden_dim,
                    batch_normalize=arch.embedding.batch_normalize,
                    unit_normalize=arch.embedding.unit_normalize)


def _fbank_network(cfg: Config) -> FbankNetwork:
    fe, arch, b = cfg.feature_extraction, cfg.architecture, cfg.architecture.backbone
    features = Fbank(sample_rate=fe.sample_rate, num_mel_bins=fe.num_mel_bins, frame_length=fe.frame_length,
                     frame_shift=fe.frame_shift, dither=fe.dither, window_type=fe.window_type)
    feat_dim = fe.num_mel_bins
    backbone: nn.Module
    if arch.name == "ResNet34":
        from engine.model.resnet import ResNet34

        backbone = ResNet34(feat_dim=feat_dim, embed_dim=b.embed_dim, m_channels=b.m_channels,
                            pooling_func=b.pooling_func, two_emb_layer=b.two_emb_layer)
    elif arch.name == "ECAPA_TDNN":
        from engine.model.ecapa_tdnn import ECAPA_TDNN

        backbone = ECAPA_TDNN(channels=b.channels, feat_dim=feat_dim, embed_dim=b.embed_dim,
                              global_context_att=b.global_context)
    elif arch.name == "CAMPPlus":
        from engine.model.campplus import CAMPPlus

        backbone = CAMPPlus(feat_dim=feat_dim, embed_dim=b.embed_dim, growth_rate=b.growth_rate,
                            bn_size=b.bn_size, init_channels=b.init_channels, pooling_func=b.pooling_func)
    else:
        raise ConfigError(f"unknown architecture {arch.name!r}", key="architecture.name")
    return FbankNetwork(arch.name, features, backbone, b.embed_dim)


def build_loss(cfg: Config, n_classes: int) -> ClassifierHead:
    """The classifier head of ``cfg.task`` over ``n_classes`` training speakers.

    Parameters
    ----------
    cfg : engine.config.Config
    n_classes : int
        Number of training speakers.

    Returns
    -------
    head : ClassifierHead
        forward(embeddings (batch, embedding_dim), labels (batch,) int64) -> (loss, logits).
    """
    name = cfg.task.loss.rsplit(".", 1)[-1]
    dim = cfg.architecture.embedding_dim
    if n_classes < 2:
        raise ConfigError(f"{name} needs at least 2 training speakers, got {n_classes}: "
                          "check the protocol's train subset (and task.label_min_duration)",
                          key="task")
    if name == "AdditiveAngularMarginLoss":
        return AdditiveAngularMarginLoss(dim, n_classes, margin=cfg.task.margin, s=cfg.task.s)
    if name == "SubCenterInterTopKLoss":
        if cfg.task.k_top >= n_classes:
            raise ConfigError(f"{cfg.task.k_top} must be below the number of training "
                              f"speakers ({n_classes}): lower k_top", key="task.params.k_top")
        return SubCenterInterTopKLoss(dim, n_classes, margin=cfg.task.margin, s=cfg.task.s, K=cfg.task.K,
                                      mp=cfg.task.mp, k_top=cfg.task.k_top)
    if name == "AdditiveMarginLoss":
        return AdditiveMarginLoss(dim, n_classes, margin=cfg.task.margin, s=cfg.task.s)
    if name == "Softmax":
        return Softmax(dim, n_classes)
    raise ConfigError(f"unknown loss {cfg.task.loss!r}; accepted: {', '.join(LOSSES)}", key="task.name")
