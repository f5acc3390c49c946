"""Learning-rate and margin schedules against hand-computed values at chosen steps; their config entries."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
import torch

from engine.config import (
    FIELD_SPECS,
    MarginSchedule,
    TaskConfig,
    config_diff,
    config_to_dict,
    dump_config,
    parse_config,
    validate_field,
)
from engine.errors import ConfigError
from engine.model.loss import AdditiveAngularMarginLoss
from engine.training.schedulers import learning_rate, margin_at

BASE = "architecture: {name: SincTDNN}\ntask: {name: AdditiveAngularMarginLoss}\n"


def scheduler(params: str):
    return parse_config(BASE + f"scheduler: {{name: ExponentialDecrease, params: {params}}}\n").scheduler


def test_exponential_decrease_warms_up_from_zero_then_decays_to_final_lr_at_the_last_epoch() -> None:
    # 10 batches per epoch, 4 epochs (--to 4): 40 steps; warm-up over the first epoch (10 steps)
    s = scheduler("{initial_lr: 0.1, final_lr: 0.001, warm_up_epoch: 1}")
    lr = [learning_rate(s, step, 10, 4) for step in range(41)]
    assert lr[0] == 0.0
    # step 5: half-way through the warm-up, the decay has run 5/40 of the way: 0.5 * 0.1 * 0.01**(1/8)
    assert lr[5] == pytest.approx(0.5 * 0.1 * 0.01 ** (5 / 40))
    assert lr[5] == pytest.approx(0.028117066259517456)
    # step 20, after the warm-up: 0.1 * 0.01**(1/2) = 0.01
    assert lr[20] == pytest.approx(0.01)
    # the end of the last epoch reaches final_lr
    assert lr[40] == pytest.approx(0.001)
    assert all(a > b for a, b in pairwise(lr[10:]))
    # what depends on the number of epochs: the decay rate (here --to 8 halves it)
    assert learning_rate(s, 20, 10, 8) == pytest.approx(0.1 * 0.01 ** (20 / 80))
    # no warm-up: initial_lr at step 0
    assert learning_rate(scheduler("{initial_lr: 0.1, final_lr: 0.001, warm_up_epoch: 0}"), 0, 10, 4) == 0.1


def test_exponential_decrease_config_defaults_and_checks() -> None:
    s = parse_config(BASE + "scheduler: {name: ExponentialDecrease}\n").scheduler
    assert (s.initial_lr, s.final_lr, s.warm_up_epoch) == (0.1, 5e-5, 6)  # WeSpeaker's voxceleb v2
    with pytest.raises(ConfigError) as e:
        scheduler("{initial_lr: 0.01, final_lr: 0.1}")
    assert e.value.key == "scheduler.params.final_lr" and "decays" in str(e.value)
    with pytest.raises(ConfigError) as e:
        scheduler("{learning_rate: 0.01}")
    assert e.value.key == "scheduler.params.learning_rate"


def task(ramp: str | None, margin: float = 0.2) -> TaskConfig:
    text = BASE.replace("{name: AdditiveAngularMarginLoss}",
                        f"{{name: AdditiveAngularMarginLoss, params: {{margin: {margin}"
                        + (f", margin_scheduler: {ramp}" if ramp else "") + "}}")
    return parse_config(text).task


def test_margin_ramps_from_zero_between_two_epochs() -> None:
    # 10 batches per epoch; the ramp starts with epoch 2 (step 10) and is done with epoch 4 (step 30)
    linear = task("{increase_start_epoch: 2, fix_start_epoch: 4, increase_type: linear}")
    assert [margin_at(linear, s, 10) for s in (0, 9, 10, 15, 20, 29, 30, 100)] == pytest.approx(
        [0.0, 0.0, 0.0, 0.05, 0.1, 0.19, 0.2, 0.2])
    exp = task("{increase_start_epoch: 2, fix_start_epoch: 4, increase_type: exp}")
    # WeSpeaker: margin * (1 - 1e-3 ** progress); half-way: 0.2 * (1 - 1e-3 ** 0.5)
    assert margin_at(exp, 9, 10) == 0.0
    assert margin_at(exp, 20, 10) == pytest.approx(0.2 * (1 - math.sqrt(1e-3)))
    assert margin_at(exp, 20, 10) == pytest.approx(0.1936754446796632)
    assert margin_at(exp, 30, 10) == 0.2
    # constant without a ramp, none for a loss without a margin
    assert margin_at(task(None, 0.3), 0, 10) == 0.3
    softmax = parse_config("architecture: {name: SincTDNN}\ntask: {name: Softmax}\n").task
    assert margin_at(softmax, 5, 10) is None


def test_margin_scheduler_config_entry() -> None:
    ramp = task("{increase_start_epoch: 20, fix_start_epoch: 40}").margin_scheduler
    assert ramp == MarginSchedule(20, 40, "exp")
    cfg = parse_config(BASE.replace("{name: AdditiveAngularMarginLoss}",
                                    "{name: AdditiveAngularMarginLoss, params: {margin_scheduler: "
                                    "{increase_start_epoch: 2, fix_start_epoch: 3, increase_type: linear}}}"))
    assert parse_config(dump_config(cfg)) == cfg
    # written as null when off, so that the config form offers it; an older config without it is no diff
    plain = config_to_dict(parse_config(BASE))
    assert plain["task"]["params"]["margin_scheduler"] is None
    older = {**plain, "task": {**plain["task"], "params": {k: v for k, v in plain["task"]["params"].items()
                                                          if k != "margin_scheduler"}}}
    assert config_diff(older, plain) == []
    for bad, words in (("{increase_start_epoch: 5, fix_start_epoch: 2}", "before increase_start_epoch"),
                       ("{increase_type: cubic}", "exp, linear"), ("{start: 1}", "unknown key"),
                       ("{increase_start_epoch: 0}", "epoch number"), ("3", "mapping")):
        with pytest.raises(ConfigError) as e:
            task(bad)
        assert e.value.key == "task.params.margin_scheduler" and words in str(e.value), str(e.value)
    with pytest.raises(ConfigError) as e:
        parse_config("architecture: {name: SincTDNN}\n"
                     "task: {name: Softmax, params: {margin_scheduler: {fix_start_epoch: 3}}}\n")
    assert e.value.key == "task.params.margin_scheduler"
    # the config form's field checks
    assert validate_field("task.params.margin_scheduler", "null") is None
    assert validate_field("task.params.margin_scheduler", "{increase_type: linear}") is None
    assert "exp, linear" in validate_field("task.params.margin_scheduler", "{increase_type: x}")
    assert "[0.5, 2]" in validate_field("data_augmentation.params.factors", "[3]")
    assert validate_field("scheduler.params.warm_up_epoch", "2", name="ExponentialDecrease") is None
    assert {"scheduler.params.initial_lr", "data_augmentation.params.factors"} <= {f.key for f in FIELD_SPECS}


def test_the_aam_loss_applies_the_margin_it_is_given() -> None:
    torch.manual_seed(0)
    embeddings, labels = torch.randn(6, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    loss = AdditiveAngularMarginLoss(8, 3, margin=0.0, s=10.0)
    fresh = AdditiveAngularMarginLoss(8, 3, margin=0.3, s=10.0)
    fresh.weight.data.copy_(loss.weight.data)
    without = loss(embeddings, labels)[0]
    loss.set_margin(0.3)
    assert torch.equal(loss(embeddings, labels)[0], fresh(embeddings, labels)[0])
    assert loss(embeddings, labels)[0] > without
