"""The training's SGD: torch.optim.SGD's updates and state to the bit, without torch.optim's import of
torch._dynamo; SincNet's cut-off frequencies (in Hz) out of weight decay; a checkpoint of the single-group
optimizer resumed into the two groups with every momentum kept; a state of another network refused."""

from __future__ import annotations

import copy
import re
import sys

import pytest
import torch

from engine.config import config_from_dict, config_to_dict, parse_config, template_text
from engine.model import build_model
from engine.training.optimizer import SGD, build_optimizer, load_optimizer_state
from tests import children


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


@pytest.mark.slow
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


def _steps(optimizer, model: torch.nn.Module, grads: list[list[torch.Tensor]], lrs: list[float]) -> None:
    for step, lr in zip(grads, lrs, strict=True):
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad()
        for p, g in zip(model.parameters(), step, strict=True):
            p.grad = g.clone()
        optimizer.step()


@pytest.mark.parametrize("foreach", [False, True], ids=["per-tensor", "foreach"])  # foreach: a GPU's way
@pytest.mark.parametrize("settings", [dict(momentum=0.9, nesterov=True, weight_decay=1e-4),
                                      dict(momentum=0.9, nesterov=False, weight_decay=0.0),
                                      dict(momentum=0.0, nesterov=False, weight_decay=1e-3)])
def test_each_step_is_torch_sgds_to_the_bit_and_the_states_load_in_each_other(settings: dict,
                                                                              foreach: bool) -> None:
    settings = {**settings, "foreach": foreach}
    torch.manual_seed(0)
    ours_model = build_model(_config(1e-4))
    torch_model = copy.deepcopy(ours_model)
    grads = [[torch.randn_like(p) for p in ours_model.parameters()] for _ in range(4)]
    lrs = [0.1, 0.05, 0.05, 0.01]
    ours = SGD([{"params": list(ours_model.parameters())}], lr=0.1, **settings)
    theirs = torch.optim.SGD(torch_model.parameters(), lr=0.1, **settings)
    _steps(ours, ours_model, grads[:2], lrs[:2])
    _steps(theirs, torch_model, grads[:2], lrs[:2])
    for (name, a), b in zip(ours_model.named_parameters(), torch_model.parameters(), strict=True):
        assert torch.equal(a, b), name
    mine, its = ours.state_dict(), theirs.state_dict()
    assert mine["param_groups"] == its["param_groups"]
    assert mine["state"].keys() == its["state"].keys()
    for number, entry in its["state"].items():
        assert torch.equal(mine["state"][number]["momentum_buffer"], entry["momentum_buffer"])
    # each resumes from the other's state, and both go on alike
    resumed_ours, resumed_theirs = copy.deepcopy(torch_model), copy.deepcopy(ours_model)
    again_ours = SGD([{"params": list(resumed_ours.parameters())}], lr=0.1, **settings)
    again_ours.load_state_dict(copy.deepcopy(its))
    again_theirs = torch.optim.SGD(resumed_theirs.parameters(), lr=0.1, **settings)
    again_theirs.load_state_dict(copy.deepcopy(mine))
    _steps(again_ours, resumed_ours, grads[2:], lrs[2:])
    _steps(again_theirs, resumed_theirs, grads[2:], lrs[2:])
    _steps(theirs, torch_model, grads[2:], lrs[2:])
    for a, b, c in zip(resumed_ours.parameters(), resumed_theirs.parameters(), torch_model.parameters(), strict=True):
        assert torch.equal(a, c) and torch.equal(b, c)


def _trained_state(model: torch.nn.Module) -> dict:
    optimizer = build_optimizer(model, _config(0.0))
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    optimizer.step()
    return optimizer.state_dict()


@pytest.mark.parametrize("damage, says", [
    (lambda s: s["param_groups"][0]["params"].pop(), "groups of"),
    (lambda s: s["param_groups"][0].update(params=3), "groups of None"),
    (lambda s: s["state"][0].update(momentum_buffer=torch.zeros(3, 3, 3)), "state 0 is no momentum"),
    (lambda s: s["state"].update({10 ** 6: {"momentum_buffer": torch.zeros(1)}}), "state 1000000 is no momentum"),
    (lambda s: s["param_groups"][0].update(params=["a"] * len(s["param_groups"][0]["params"])),
     "lists parameters by other than numbers"),
])
def test_a_state_of_another_network_or_of_nonsense_is_refused_saying_what(damage, says: str) -> None:
    torch.manual_seed(0)
    model = build_model(_config(0.0))
    state = _trained_state(model)
    damage(state)
    optimizer = build_optimizer(model, _config(0.0))
    with pytest.raises(ValueError, match=re.escape(says)):
        load_optimizer_state(optimizer, model, state)
    assert not optimizer.state  # nothing half-loaded


def test_a_resumed_optimizer_keeps_the_configs_settings_and_takes_the_momentum() -> None:
    """torch.optim took the checkpoint's settings back: a momentum edited in config.yml before a resume
    was silently the old one, while the run recorded the new config."""
    torch.manual_seed(0)
    model = build_model(_config(0.0))
    state = _trained_state(model)
    for group in state["param_groups"]:
        group.update(momentum=5.0, nesterov=False, lr="fast", weight_decay=float("nan"))
    optimizer = build_optimizer(model, _config(0.0))
    settings = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    load_optimizer_state(optimizer, model, state)
    assert [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups] == settings
    assert settings[0]["momentum"] == 0.9 and settings[0]["nesterov"] is True
    for number, p in enumerate(model.parameters()):
        assert torch.equal(optimizer.state[p]["momentum_buffer"], state["state"][number]["momentum_buffer"])


@pytest.mark.slow
def test_training_never_imports_torch_compile() -> None:
    """torch.optim's optimizers import torch._dynamo when first used: seconds of every training's start."""
    code = ("import sys, torch; from tests.engine.test_optimizer import _config, _trained_state; "
            "from engine.model import build_model; _trained_state(build_model(_config(0.0))); "
            "sys.exit('torch._dynamo' in sys.modules)")
    done = children.run([sys.executable, "-c", code], timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
