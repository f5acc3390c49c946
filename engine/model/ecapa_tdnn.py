"""WeSpeaker's ECAPA-TDNN (``wespeaker/models/ecapa_tdnn.py``), layer for layer and with the same names.

Conv1d(k5) then three SE-Res2Net blocks (dilation 2, 3, 4; scale 8), their outputs concatenated
into a 1x1 conv of 1536 channels, attentive statistics pooling (ASTP, with global context in the
``GLOB`` variants), batch norm and a linear embedding layer. Input (batch, frame, feat_dim).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.model.pooling import ASTP


class Res2Conv1dReluBn(nn.Module):
    def __init__(self, channels: int, kernel_size: int = 1, stride: int = 1, padding: int = 0, dilation: int = 1,
                 bias: bool = True, scale: int = 4) -> None:
        super().__init__()
        self.scale = scale
        self.width = channels // scale
        self.nums = scale if scale == 1 else scale - 1
        self.convs = nn.ModuleList(nn.Conv1d(self.width, self.width, kernel_size, stride, padding, dilation, bias=bias)
                                   for _ in range(self.nums))
        self.bns = nn.ModuleList(nn.BatchNorm1d(self.width) for _ in range(self.nums))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = []
        spx = torch.split(x, self.width, 1)
        sp = spx[0]
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
            if i >= 1:
                sp = sp + spx[i]
            sp = bn(F.relu(conv(sp)))  # conv -> relu -> bn
            out.append(sp)
        if self.scale != 1:
            out.append(spx[self.nums])
        return torch.cat(out, dim=1)


class Conv1dReluBn(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                 padding: int = 0, dilation: int = 1, bias: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride, padding, dilation, bias=bias)
        self.bn = nn.BatchNorm1d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(x)))


class SE_Connect(nn.Module):
    def __init__(self, channels: int, se_bottleneck_dim: int = 128) -> None:
        super().__init__()
        self.linear1 = nn.Linear(channels, se_bottleneck_dim)
        self.linear2 = nn.Linear(se_bottleneck_dim, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.sigmoid(self.linear2(F.relu(self.linear1(x.mean(dim=2)))))
        return x * out.unsqueeze(2)


class SE_Res2Block(nn.Module):
    def __init__(self, channels: int, kernel_size: int, stride: int, padding: int, dilation: int,
                 scale: int) -> None:
        super().__init__()
        self.se_res2block = nn.Sequential(
            Conv1dReluBn(channels, channels, kernel_size=1, stride=1, padding=0),
            Res2Conv1dReluBn(channels, kernel_size, stride, padding, dilation, scale=scale),
            Conv1dReluBn(channels, channels, kernel_size=1, stride=1, padding=0),
            SE_Connect(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.se_res2block(x)


class ECAPA_TDNN(nn.Module):
    """(batch, frame, feat_dim) -> (batch, embed_dim)."""

    def __init__(self, *, channels: int = 512, feat_dim: int = 80, embed_dim: int = 192,
                 global_context_att: bool = False) -> None:
        super().__init__()
        self.layer1 = Conv1dReluBn(feat_dim, channels, kernel_size=5, padding=2)
        self.layer2 = SE_Res2Block(channels, kernel_size=3, stride=1, padding=2, dilation=2, scale=8)
        self.layer3 = SE_Res2Block(channels, kernel_size=3, stride=1, padding=3, dilation=3, scale=8)
        self.layer4 = SE_Res2Block(channels, kernel_size=3, stride=1, padding=4, dilation=4, scale=8)
        out_channels = 512 * 3  # WeSpeaker's, whatever `channels` is
        self.conv = nn.Conv1d(channels * 3, out_channels, kernel_size=1)
        self.pool = ASTP(in_dim=out_channels, global_context_att=global_context_att)
        self.pool_out_dim = self.pool.get_out_dim()
        self.bn = nn.BatchNorm1d(self.pool_out_dim)
        self.linear = nn.Linear(self.pool_out_dim, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 1)  # (batch, feat, frame)
        out1 = self.layer1(x)
        out2 = self.layer2(out1)
        out3 = self.layer3(out2)
        out4 = self.layer4(out3)
        out = F.relu(self.conv(torch.cat([out2, out3, out4], dim=1)))
        return self.linear(self.bn(self.pool(out)))
