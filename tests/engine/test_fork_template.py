"""The large-margin fork template: WeSpeaker's ``*_lm.yaml`` keys over a parent's config, the network kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engine.config import config_from_dict, config_to_dict, parse_config, template_text
from engine.config.forks import FORK_TEMPLATES, LARGE_MARGIN_EPOCHS, fork_config, fork_dict, fork_template_text
from engine.errors import ConfigError
from tests.engine.engine_runner import run_in_process


@pytest.mark.parametrize("parent", ["recipe", "resnet34", "ecapa_tdnn", "campplus"])
def test_large_margin_fork_changes_the_stage_keys_and_keeps_the_parents_network(parent: str) -> None:
    before = parse_config(template_text(parent))
    cfg = fork_config(config_to_dict(before))
    assert (cfg.architecture, cfg.feature_extraction, cfg.optimizer) == (
        before.architecture, before.feature_extraction, before.optimizer)
    assert (cfg.task.loss, cfg.task.s, cfg.task.per_fold, cfg.task.per_label) == (
        before.task.loss, before.task.s, before.task.per_fold, before.task.per_label)
    assert (cfg.task.margin, cfg.task.margin_scheduler, cfg.task.duration) == (0.5, None, 3.0)
    # WeSpeaker's rates for 64 chunks a batch, times the batch / 64, as WeSpeaker trains them: they were taken
    # as they are written, 4 times too low for the recipe's 256 chunks
    chunks = before.task.per_fold * before.task.per_label
    assert (cfg.scheduler.name, cfg.scheduler.warm_up_epoch) == ("ExponentialDecrease", 1)
    assert (cfg.scheduler.initial_lr, cfg.scheduler.final_lr) == pytest.approx(
        (1e-4 * chunks / 64, 2.5e-5 * chunks / 64))
    if parent == "recipe":
        assert (cfg.scheduler.initial_lr, cfg.scheduler.final_lr) == pytest.approx((4e-4, 1e-4))
    # no speed perturbation (WeSpeaker's do_lm), the noise kept
    assert cfg.augmentation is not None and cfg.augmentation.speeds == () and cfg.augmentation.noise
    assert before.augmentation is not None and cfg.augmentation.collection == before.augmentation.collection


def test_a_sub_centre_parent_forks_without_its_inter_top_k_penalty() -> None:
    """WeSpeaker's large-margin stage (`do_lm`) sets `mp` and `k_top` to 0; the fork kept 0.06 over 5."""
    parent = config_to_dict(parse_config(template_text("resnet34")))
    parent["task"]["name"] = "SubCenterInterTopKLoss"
    parent["task"]["params"].update({"K": 3, "mp": 0.06, "k_top": 5})
    assert config_from_dict(parent).task.mp == 0.06
    cfg = fork_config(parent)
    assert (cfg.task.loss, cfg.task.K, cfg.task.mp, cfg.task.k_top, cfg.task.margin) == (
        "SubCenterInterTopKLoss", 3, 0.0, 0, 0.5)


def test_a_parent_trained_only_with_speed_perturbation_forks_without_augmentation() -> None:
    parent = config_to_dict(parse_config(template_text("demo")))
    parent["data_augmentation"] = {"name": "SpeedPerturb", "params": {"factors": [0.9, 1.0, 1.1]}}
    speeds = config_from_dict(parent).augmentation
    assert speeds is not None and speeds.speeds == (0.9, 1.0, 1.1)
    assert fork_config(parent).augmentation is None


def test_the_template_names_the_recipe_values_and_is_not_a_config_of_its_own() -> None:
    assert FORK_TEMPLATES == ("large_margin",) and LARGE_MARGIN_EPOCHS == 5
    text = fork_template_text("large_margin")
    for value in ("recipe: 6.0", "recipe: 0.5", "recipe: 1.0e-4", "recipe: 2.5e-5", "num_epochs 5", "do_lm"):
        assert value in text, value
    assert set(yaml.safe_load(text)) == {"task", "scheduler"}
    with pytest.raises(ConfigError):
        parse_config(text)  # no architecture of its own: it is applied over a parent's
    with pytest.raises(ValueError, match="unknown fork template 'tutorial'"):
        fork_template_text("tutorial")


def test_a_parent_whose_task_has_no_margin_is_one_config_error_naming_the_key() -> None:
    softmax = config_to_dict(parse_config(template_text("demo")))
    softmax["task"] = {"name": "Softmax", "params": {"duration": 1.5, "per_fold": 16, "per_label": 2,
                                                     "per_epoch": 0.02}}
    with pytest.raises(ConfigError) as caught:
        fork_config(softmax)
    assert "large_margin template" in str(caught.value) and "margin" in str(caught.value)


def test_config_large_margin_prints_the_forks_config_or_one_error_line(tmp_path: Path) -> None:
    exp = tmp_path / "resnet34"
    exp.mkdir()
    (exp / "config.yml").write_text(template_text("resnet34"))
    done = run_in_process("config", "large-margin", str(exp))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# large-margin fine-tuning of ") and "--to 5 NEW_EXP_DIR" in done.stdout
    assert yaml.safe_load(done.stdout) == fork_dict(config_to_dict(parse_config(template_text("resnet34"))))

    missing = tmp_path / "weights" / "0040.pt"
    done = run_in_process("config", "large-margin", str(missing))
    assert done.returncode == 2 and not done.stdout, done.stdout
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("spkemb-engine config large-margin: error: ") and str(missing) in line


def test_config_large_margin_of_a_config_it_refuses_prints_nothing_on_stdout(tmp_path: Path) -> None:
    """`config large-margin X > fork.yml` left the two header lines in fork.yml when the fork was refused."""
    exp = tmp_path / "softmax"
    exp.mkdir()
    cfg = config_to_dict(parse_config(template_text("resnet34")))
    cfg["task"] = {"name": "Softmax", "params": {"duration": 1.5, "per_fold": 16, "per_label": 2, "per_epoch": 0.02}}
    (exp / "config.yml").write_text(yaml.safe_dump(cfg))
    done = run_in_process("config", "large-margin", str(exp))
    assert done.returncode == 2 and done.stdout == "", done.stdout
    (line,) = done.stderr.strip().splitlines()
    assert "large_margin template" in line
