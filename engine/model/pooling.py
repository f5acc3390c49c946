"""Statistics pooling layers of WeSpeaker (``wespeaker/models/pooling_layers.py``): TAP, TSDP, TSTP, ASTP.

The last axis is time; a (batch, channel, freq, time) input is pooled per channel and frequency.
"""

from __future__ import annotations

import torch
from torch import nn


class TAP(nn.Module):
    """Temporal average pooling: the mean over time."""

    def __init__(self, in_dim: int = 0) -> None:
        super().__init__()
        self.in_dim = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=-1).flatten(start_dim=1)

    def get_out_dim(self) -> int:
        return self.in_dim


class TSDP(nn.Module):
    """Temporal standard deviation pooling: the (unbiased) standard deviation over time."""

    def __init__(self, in_dim: int = 0) -> None:
        super().__init__()
        self.in_dim = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(torch.var(x, dim=-1) + 1e-7).flatten(start_dim=1)

    def get_out_dim(self) -> int:
        return self.in_dim


class TSTP(nn.Module):
    """Temporal statistics pooling: mean and (unbiased) standard deviation over time, concatenated."""

    def __init__(self, in_dim: int = 0) -> None:
        super().__init__()
        self.in_dim = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=-1).flatten(start_dim=1)
        std = torch.sqrt(torch.var(x, dim=-1) + 1e-7).flatten(start_dim=1)
        return torch.cat((mean, std), 1)

    def get_out_dim(self) -> int:
        return self.in_dim * 2


class ASTP(nn.Module):
    """Attentive statistics pooling (ECAPA-TDNN), optionally with the utterance's mean and std as context."""

    def __init__(self, in_dim: int, bottleneck_dim: int = 128, global_context_att: bool = False) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.global_context_att = global_context_att
        self.linear1 = nn.Conv1d(in_dim * 3 if global_context_att else in_dim, bottleneck_dim, kernel_size=1)
        self.linear2 = nn.Conv1d(bottleneck_dim, in_dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.reshape(x.shape[0], x.shape[1] * x.shape[2], x.shape[3])
        if self.global_context_att:
            context_mean = torch.mean(x, dim=-1, keepdim=True).expand_as(x)
            context_std = torch.sqrt(torch.var(x, dim=-1, keepdim=True) + 1e-7).expand_as(x)
            x_in = torch.cat((x, context_mean, context_std), dim=1)
        else:
            x_in = x
        alpha = torch.softmax(self.linear2(torch.tanh(self.linear1(x_in))), dim=2)
        mean = torch.sum(alpha * x, dim=2)
        var = torch.sum(alpha * (x ** 2), dim=2) - mean ** 2
        return torch.cat([mean, torch.sqrt(var.clamp(min=1e-7))], dim=1)

    def get_out_dim(self) -> int:
        return 2 * self.in_dim


def pooling_layer(name: str, in_dim: int) -> TAP | TSDP | TSTP | ASTP:
    """WeSpeaker's ``getattr(pooling_layers, pooling_func)(in_dim=in_dim)``: the config's ``pooling_func``."""
    layers: dict[str, type[TAP] | type[TSDP] | type[TSTP] | type[ASTP]] = {
        "TAP": TAP, "TSDP": TSDP, "TSTP": TSTP, "ASTP": ASTP}
    return layers[name](in_dim=in_dim)
