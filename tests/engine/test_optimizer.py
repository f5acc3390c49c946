"""The training's SGD: SincNet's cut-off frequencies (in Hz) out of weight decay, and a checkpoint of the
single-group optimizer resumed into the two groups with every momentum kept."""

from __future__ import annotations

import torch

from engine.config import config_from_dict, config_to_dict, parse_config, template_text
from engine.model import build_model
from engine.training.optimizer import build_optimizer, load_optimizer_state


def _config(weight_decay: float):
    cfg = config_to_dict(parse_config(template_text("demo")))
    cfg["optimizer"] = {"name": "SGD", "params": {"momentum": 0.9, "nesterov": True, "weight_decay": weight_decay}}
    return config_from_dict(cfg)


def test_weight_decay_leaves_the_sinc_frequencies_alone() -> None:
    """With the recipe's decay (1e-4, momentum 0.9) every cut-off shrank by e^-7 over its schedule: all the
    filters collapsed towards the lowest band."""
    torch.manual_seed(0)
    model = build_model(_config(1e-4))
    optimizer = build_optimizer(model, _config(1e-4))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for _ in range(3):  # steps of decay alone: no loss gradient
        optimizer.zero_grad()
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        optimizer.step()
    for name, p in model.named_parameters():
        if name.endswith(("low_hz_", "band_hz_")):
            assert torch.equal(p, before[name]), name
        elif p.dim() > 1:
            assert p.abs().sum() < before[name].abs().sum(), name  # the weights decay
    assert len(build_optimizer(model, _config(0.0)).param_groups) == 1  # nothing to keep apart


def test_a_single_group_state_resumes_into_the_two_groups() -> None:
    torch.manual_seed(0)
    model = build_model(_config(1e-4))
    old = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    old.step()
    momentum = {n: old.state[p]["momentum_buffer"].clone() for n, p in model.named_parameters()}
    new = build_optimizer(model, _config(1e-4))
    load_optimizer_state(new, model, old.state_dict())
    assert [g["weight_decay"] for g in new.param_groups] == [1e-4, 0.0]
    for name, p in model.named_parameters():
        assert torch.equal(new.state[p]["momentum_buffer"], momentum[name]), name
