"""WeSpeaker's ResNet34 (``wespeaker/models/resnet.py``), layer for layer and with the same names.

A 3x3 stem without max pooling, four stages of basic blocks ([3, 4, 6, 3]) of ``m_channels``,
x2, x4, x8 channels, the last three halving time and frequency; statistics pooling (TSTP) over the
(channel x frequency/8) maps; one (or two) linear embedding layers. Input (batch, frame, feat_dim).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.model.pooling import pooling_layer


class BasicBlock(nn.Module):
    """ResNet's basic block; ``stride`` a pair strides (frequency, time) apart (CAM++'s front module
    strides frequency only)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int | tuple[int, int] = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride not in (1, (1, 1)) or in_planes != self.expansion * planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, self.expansion * planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(self.expansion * planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """(batch, frame, feat_dim) -> (batch, embed_dim)."""

    def __init__(self, num_blocks: tuple[int, ...] = (3, 4, 6, 3), *, m_channels: int = 32, feat_dim: int = 80,
                 embed_dim: int = 256, pooling_func: str = "TSTP", two_emb_layer: bool = False) -> None:
        super().__init__()
        self.in_planes = m_channels
        self.feat_dim, self.embed_dim, self.two_emb_layer = feat_dim, embed_dim, two_emb_layer
        self.stats_dim = int(feat_dim / 8) * m_channels * 8
        self.conv1 = nn.Conv2d(1, m_channels, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(m_channels)
        self.layer1 = self._make_layer(m_channels, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(m_channels * 2, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(m_channels * 4, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(m_channels * 8, num_blocks[3], stride=2)
        self.pool = pooling_layer(pooling_func, self.stats_dim * BasicBlock.expansion)
        self.pool_out_dim = self.pool.get_out_dim()
        self.seg_1 = nn.Linear(self.pool_out_dim, embed_dim)
        if two_emb_layer:
            self.seg_bn_1: nn.Module = nn.BatchNorm1d(embed_dim, affine=False)
            self.seg_2: nn.Module = nn.Linear(embed_dim, embed_dim)
        else:
            self.seg_bn_1, self.seg_2 = nn.Identity(), nn.Identity()

    def _make_layer(self, planes: int, num_blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes * BasicBlock.expansion
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x.permute(0, 2, 1).unsqueeze(1)  # (batch, 1, freq, frame)
        out = F.relu(self.bn1(self.conv1(out)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        embed_a = self.seg_1(self.pool(out))
        if not self.two_emb_layer:
            return embed_a
        return self.seg_2(self.seg_bn_1(F.relu(embed_a)))  # WeSpeaker's embed_b, the embedding it uses


def ResNet34(*, feat_dim: int, embed_dim: int, m_channels: int = 32, pooling_func: str = "TSTP",
             two_emb_layer: bool = False) -> ResNet:
    return ResNet((3, 4, 6, 3), m_channels=m_channels, feat_dim=feat_dim, embed_dim=embed_dim,
                  pooling_func=pooling_func, two_emb_layer=two_emb_layer)
