"""``--set KEY=VALUE`` of sweeps: dotted keys into a config, listed augmentations by index, and the
line a wrong key gets."""

from __future__ import annotations

import pytest

from engine.config import config_to_dict, parse_config
from engine.config.overrides import parse_value, set_keys, split_values
from engine.errors import ConfigError
from tests.conftest import TINY_CONFIG

REVERB = {"name": "pyannote.audio.augmentation.reverb.AddReverb",
          "params": {"collection": ["Demo.Collection.Rooms"], "probability": 0.5}}


@pytest.fixture
def tiny() -> dict:
    return config_to_dict(parse_config(TINY_CONFIG))


def test_values_are_yaml_and_text_that_is_no_yaml_stays_text() -> None:
    assert parse_value("0.1") == 0.1 and parse_value("true") is True and parse_value("[5, 1, 1]") == [5, 1, 1]
    assert parse_value("a: [") == "a: ["
    # an alias loop or bomb is not built: it stays text, which the config's checks refuse
    assert parse_value("&x [*x]") == "&x [*x]"
    bomb = "[" + ", ".join(["&a [1,1,1,1,1,1,1,1,1,1]"] + [f"&{c} [{', '.join([f'*{p}'] * 10)}]"
                                                        for p, c in zip("abcdefgh", "bcdefghi", strict=True)]) + "]"
    assert parse_value(bomb) == bomb
    assert split_values("[5,1,1],[3,1,1], 0.2,") == ["[5,1,1]", "[3,1,1]", "0.2"]


def test_a_number_in_exponent_notation_is_a_number_in_a_config_and_in_set(tiny: dict) -> None:
    """PyYAML follows YAML 1.1, which wants a dot: `1e-3` (as learning rates are written) was text."""
    assert [parse_value(v) for v in split_values("1e-3,5e-05,-2E+1,.5e1")] == [0.001, 5e-05, -20.0, 5.0]
    assert parse_value("1e") == "1e" and parse_value(".e5") == ".e5"
    config = parse_config(TINY_CONFIG.replace("learning_rate: 0.01", "learning_rate: 1e-3"))
    assert config_to_dict(config)["scheduler"]["params"]["learning_rate"] == 0.001


def test_a_dotted_key_sets_one_field_and_leaves_the_given_config_as_it_was(tiny: dict) -> None:
    config = set_keys(tiny, {"task.params.margin": 0.2, "architecture.params.tdnn.hidden_dim": 48})
    assert config.task.margin == 0.2 and config.architecture.tdnn.hidden_dim == 48
    assert tiny["task"]["params"]["margin"] == 0.05


def test_one_augmentation_is_item_0_and_has_no_item_1(tiny: dict) -> None:
    assert set_keys(tiny, {"data_augmentation[0].params.snr_min": 7}).augmentation.snr_min == 7
    with pytest.raises(ConfigError, match=r"^data_augmentation\[1\]\.params\.snr_min: data_augmentation has no item 1"):
        set_keys(tiny, {"data_augmentation[1].params.snr_min": 7})


def test_listed_augmentations_are_set_by_their_index(tiny: dict) -> None:
    tiny["data_augmentation"] = [tiny["data_augmentation"], REVERB]
    config = set_keys(tiny, {"data_augmentation[1].params.probability": 0.25,
                             "data_augmentation[0].params.snr_max": 12})
    assert config.augmentation.reverb.probability == 0.25
    assert config.augmentation.snr_max == 12
    with pytest.raises(ConfigError, match="data_augmentation has no item 2"):
        set_keys(tiny, {"data_augmentation[2].params.probability": 0.25})


@pytest.mark.parametrize(("key", "says"), [
    ("task.params.mar-gin", "'mar-gin' is not a key part: use dotted names such as task.params.margin"),
    ("task..margin", "'' is not a key part"),
    ("nosuch.params.margin", "no such key in the config: keys look like feature_extraction.params.NAME"),
])
def test_a_key_the_config_cannot_have_is_named_with_the_fix(tiny: dict, key: str, says: str) -> None:
    with pytest.raises(ConfigError) as refused:
        set_keys(tiny, {key: 1})
    assert str(refused.value).startswith(f"{key}: ") and says in str(refused.value)


def test_a_value_the_spec_table_refuses_is_one_line_without_the_dumps_line_number(tiny: dict) -> None:
    with pytest.raises(ConfigError) as refused:
        set_keys(tiny, {"task.params.per_fold": 0})
    assert "task.params.per_fold" in str(refused.value) and "--set:" not in str(refused.value)


def test_a_cyclic_schedules_bounds_follow_its_learning_rate_unless_they_were_chosen(tiny: dict) -> None:
    """The resolved base holds max_lr and min_lr, derived from its rate: a trial setting the rate alone
    was refused (max_lr 0.1 differs), or with max_lr set too cycled from the base's min_lr (0.01 → 0.5)."""
    tiny["scheduler"] = {"name": "CyclicScheduler", "params": {"learning_rate": 0.1}}
    base = config_to_dict(set_keys(tiny, {}))
    assert base["scheduler"]["params"] == {"learning_rate": 0.1, "min_lr": 0.01, "max_lr": 0.1,
                                           "epochs_per_cycle": 10}

    def bounds(values: dict, data: dict = base) -> tuple[float, float, float]:
        p = config_to_dict(set_keys(data, values))["scheduler"]["params"]
        return p["learning_rate"], p["min_lr"], p["max_lr"]

    assert bounds({"scheduler.params.learning_rate": 0.5}) == (0.5, 0.05, 0.5)
    assert bounds({"scheduler.params.learning_rate": 0.5, "scheduler.params.max_lr": 0.5}) == (0.5, 0.05, 0.5)
    assert bounds({"scheduler.params.learning_rate": 0.005}) == (0.005, 0.0005, 0.005)  # below the base's min_lr
    chosen = config_to_dict(set_keys(tiny, {"scheduler.params.min_lr": 0.02}))  # written by hand: kept
    assert bounds({"scheduler.params.learning_rate": 0.5}, chosen) == (0.5, 0.02, 0.5)
    with pytest.raises(ConfigError, match="max_lr"):  # both set, and unequal: still the rule's refusal
        set_keys(base, {"scheduler.params.learning_rate": 0.5, "scheduler.params.max_lr": 0.4})
