"""engine.config: the tutorial's config loads verbatim; every bad config names its key and line."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from pathlib import Path

import pytest

from engine.config import (
    FIELD_SPECS,
    Config,
    MarginSchedule,
    config_diff,
    config_from_dict,
    config_to_dict,
    dump_config,
    load_config,
    parse_config,
    template_text,
    validate_field,
)
from engine.errors import ConfigError
from tests.engine.engine_runner import run_engine, run_in_process

REPO = Path(__file__).resolve().parents[2]

#: the config.yml of the pyannote.audio 1.x speaker embedding tutorial, shipped verbatim
TUTORIAL = template_text("tutorial")
#: SHA-256 of that text, so that the shipped copies cannot drift from the tutorial by a byte
TUTORIAL_SHA256 = "1f13ff1d76b2b2d5a63265b4a5b4179b598b1de9226f381553bbc2ff7a433f94"


def line_of(text: str, needle: str) -> int:
    """1-based line where ``needle`` (which may span lines) first starts in ``text``."""
    return text[:text.index(needle)].count("\n") + 1


def test_shipped_tutorial_files_are_the_tutorial_verbatim() -> None:
    assert hashlib.sha256(TUTORIAL.encode("utf-8")).hexdigest() == TUTORIAL_SHA256
    assert "# we use additive angular margin loss\n" in TUTORIAL and "per_fold: 256" in TUTORIAL
    assert (REPO / "experiments" / "tutorial" / "config.yml").read_text() == TUTORIAL


def test_tutorial_config_resolves_to_its_values() -> None:
    cfg = parse_config(TUTORIAL, "tutorial.yml")
    assert cfg.sample_rate == 16000
    assert cfg.augmentation is not None and cfg.augmentation.noise
    assert cfg.augmentation.collection == ("MUSAN.Collection.BackgroundNoise", "MUSAN.Collection.Music")
    assert (cfg.augmentation.snr_min, cfg.augmentation.snr_max) == (5.0, 15.0)
    assert cfg.augmentation.reverb is None
    assert cfg.architecture.sincnet.stride == (5, 1, 1)
    assert cfg.architecture.sincnet.sample_rate == 16000
    assert cfg.architecture.tdnn.embedding_dim == 512 and cfg.architecture.tdnn.hidden_dim == 512
    assert not cfg.architecture.embedding.unit_normalize
    task = cfg.task
    assert task.loss == "AdditiveAngularMarginLoss"
    assert (task.margin, task.s, task.duration) == (0.05, 10.0, 2.0)
    assert isinstance(task.s, float)
    assert (task.per_fold, task.per_label, task.per_epoch, task.batch_size) == (256, 1, 5.0, 256)
    assert cfg.scheduler.name == "ConstantScheduler"
    assert cfg.scheduler.learning_rate == cfg.scheduler.min_lr == cfg.scheduler.max_lr == 0.01
    assert cfg.optimizer.momentum == 0.9


def test_demo_config_loads_and_is_cpu_sized() -> None:
    cfg = parse_config(template_text("demo"), "demo.yml")
    assert cfg.augmentation.collection == ("Demo.Collection.BackgroundNoise", "Demo.Collection.Music")
    assert cfg.architecture.tdnn.hidden_dim < 512
    assert cfg.task.per_fold * cfg.task.per_label <= 64
    assert cfg.task.per_epoch < 0.1


def test_recipe_template_is_the_tutorial_network_with_wespeakers_recipe(tmp_path: Path) -> None:
    text = template_text("recipe")
    (tmp_path / "config.yml").write_text(text)
    done = run_engine("config", "check", str(tmp_path))
    assert done.returncode == 0, done.stderr
    cfg = parse_config(done.stdout)
    assert cfg == parse_config(text, "recipe.yml")
    assert cfg.architecture == parse_config(TUTORIAL).architecture
    assert cfg.augmentation.speeds == (0.9, 1.0, 1.1) and cfg.augmentation.noise
    task = cfg.task
    assert (task.margin, task.s, task.duration, task.batch_size) == (0.2, 32.0, 2.0, 256)
    assert task.margin_scheduler == MarginSchedule(increase_start_epoch=20, fix_start_epoch=40, increase_type="exp")
    assert cfg.scheduler.name == "ExponentialDecrease"
    # WeSpeaker's 0.1 -> 5e-5 for 64 chunks a batch, times its 2 GPUs x 128 / 64: the rates it trains with
    assert (cfg.scheduler.initial_lr, cfg.scheduler.final_lr, cfg.scheduler.warm_up_epoch) == (0.4, 2e-4, 6)
    assert cfg.optimizer.weight_decay == 1e-4


def test_config_is_frozen_and_hashable() -> None:
    cfg = parse_config(TUTORIAL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.task.margin = 0.3  # type: ignore[misc]
    assert len({cfg, parse_config(TUTORIAL)}) == 1


def test_minimal_config_gets_pyannote_defaults() -> None:
    cfg = parse_config("architecture:\n  name: SincTDNN\ntask:\n  name: AdditiveAngularMarginLoss\n")
    assert cfg == Config()
    assert (cfg.task.margin, cfg.task.s, cfg.task.per_fold, cfg.task.per_epoch) == (0.1, 7.0, 32, 7.0)
    assert cfg.feature_extraction.sample_rate == 16000 and cfg.augmentation is None
    assert cfg.scheduler.name == "ConstantScheduler" and cfg.scheduler.learning_rate == 0.01


def test_additive_margin_loss_has_its_own_defaults_and_softmax_no_margin() -> None:
    am = parse_config("architecture: {name: SincTDNN}\ntask: {name: AdditiveMarginLoss}\n")
    assert (am.task.margin, am.task.s) == (0.35, 30.0)
    with pytest.raises(ConfigError) as e:
        parse_config("architecture: {name: SincTDNN}\ntask: {name: Softmax, params: {margin: 0.1}}\n")
    assert e.value.key == "task.params.margin"


@pytest.mark.parametrize("text", [
    TUTORIAL,
    template_text("demo"),
    template_text("recipe"),
    TUTORIAL.replace("name: ConstantScheduler", "name: CyclicScheduler"),
    TUTORIAL.replace("per_epoch: 5", "per_epoch: 5\n\noptimizer:\n   name: SGD\n   params:\n      nesterov: false"),
    "architecture: {name: SincTDNN}\ntask: {name: Softmax}\n",
    "architecture: {name: SincTDNN}\ntask: {name: AdditiveAngularMarginLoss}\ndata_augmentation:\n"
    "  - {name: AddNoise, params: {collection: A.Collection.N}}\n"
    "  - {name: AddReverb, params: {collection: [R.Collection.RIR], probability: 0.3}}\n",
    "architecture: {name: SincTDNN}\ntask: {name: AdditiveAngularMarginLoss}\ndata_augmentation:\n"
    "  name: AddReverb\n  params: {collection: [R.Collection.RIR]}\n",
])
def test_round_trip(text: str) -> None:
    cfg = parse_config(text)
    dumped = dump_config(cfg)
    assert parse_config(dumped) == cfg
    assert dump_config(parse_config(dumped)) == dumped
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_resolved_dict_uses_full_names_and_fills_every_default() -> None:
    d = config_to_dict(parse_config(TUTORIAL))
    assert d["task"]["name"] == "pyannote.audio.embedding.approaches.AdditiveAngularMarginLoss"
    assert d["scheduler"]["name"] == "pyannote.audio.train.schedulers.ConstantScheduler"
    assert d["architecture"]["params"]["tdnn"] == {"embedding_dim": 512, "hidden_dim": 512}
    assert d["task"]["params"]["label_min_duration"] == 0.0
    assert d["architecture"]["params"]["sincnet"]["stride"] == [5, 1, 1]
    assert "stride: [5, 1, 1]" in dump_config(parse_config(TUTORIAL))


def test_augmentation_list_combines_noise_and_reverb() -> None:
    cfg = parse_config(
        "architecture: {name: SincTDNN}\ntask: {name: AdditiveAngularMarginLoss}\ndata_augmentation:\n"
        "  - name: pyannote.audio.augmentation.noise.AddNoise\n"
        "    params: {snr_min: 0, snr_max: 10, collection: [MUSAN.Collection.Music]}\n"
        "  - name: pyannote.audio.augmentation.reverb.AddReverb\n"
        "    params: {collection: RIRS.Collection.Simulated, probability: 0.25}\n")
    aug = cfg.augmentation
    assert aug.noise and aug.collection == ("MUSAN.Collection.Music",) and aug.snr_min == 0.0
    assert aug.reverb.collection == ("RIRS.Collection.Simulated",) and aug.reverb.probability == 0.25
    assert isinstance(config_to_dict(cfg)["data_augmentation"], list)


def test_cyclic_scheduler_runs_from_a_tenth_of_the_rate_as_pyannote() -> None:
    cfg = parse_config(TUTORIAL.replace("name: ConstantScheduler", "name: CyclicScheduler"))
    assert (cfg.scheduler.min_lr, cfg.scheduler.max_lr, cfg.scheduler.epochs_per_cycle) == (0.001, 0.01, 10)
    with pytest.raises(ConfigError) as e:
        parse_config(TUTORIAL.replace("name: ConstantScheduler", "name: CyclicScheduler")
                     .replace("learning_rate: 0.01", "learning_rate: 0.01\n      min_lr: 0.1"))
    assert e.value.key == "scheduler.params.min_lr"


def _bad(old: str, new: str) -> str:
    assert old in TUTORIAL
    return TUTORIAL.replace(old, new, 1)


BAD = [  # (id, text, key, line needle or None, words in the message)
    ("bad-yaml", _bad("   name: SincTDNN".replace("SincTDNN", "pyannote.audio.models.SincTDNN"),
                      "   name: [pyannote.audio.models.SincTDNN"), None, "   params:\n      sincnet",
     ["invalid YAML", "column 10", "flow sequence on line 22"]),
    ("unknown-section", _bad("scheduler:\n", "schedule:\n"), "schedule", "schedule:",
     ["unknown section", "scheduler"]),
    ("unknown-name", _bad("name: AdditiveAngularMarginLoss", "name: ArcFace"), "task.name", "ArcFace",
     ["unknown name 'ArcFace';", "AdditiveAngularMarginLoss", "Softmax"]),
    ("unknown-param", _bad("      margin: 0.05", "      margins: 0.05"), "task.params.margins", "margins:",
     ["unknown parameter", "per_fold"]),
    ("unknown-arch-param", _bad("embedding_dim: 512", "embeding_dim: 512"),
     "architecture.params.tdnn.embeding_dim", "embeding_dim", ["unknown parameter", "hidden_dim"]),
    ("wrong-type-int", _bad("per_fold: 256", "per_fold: many"), "task.params.per_fold", "per_fold:",
     ["expected an integer", "'many'"]),
    ("wrong-type-float-int", _bad("per_fold: 256", "per_fold: 25.6"), "task.params.per_fold", "per_fold:",
     ["integer"]),
    ("bool-is-not-int", _bad("embedding_dim: 512", "embedding_dim: true"),
     "architecture.params.tdnn.embedding_dim", "embedding_dim", ["expected an integer", "true"]),
    ("wrong-type-bool", _bad("unit_normalize: False", "unit_normalize: 0"),
     "architecture.params.embedding.unit_normalize", "unit_normalize", ["true or false"]),
    ("negative-snr-range", _bad("snr_max: 15", "snr_max: 2"), "data_augmentation.params.snr_max", "snr_max",
     ["snr_min", "snr_max", "empty SNR range"]),
    ("margin-too-large", _bad("margin: 0.05", "margin: 2.0"), "task.params.margin", "margin:", ["pi/2"]),
    ("margin-negative", _bad("margin: 0.05", "margin: -0.1"), "task.params.margin", "margin:", ["[0.0"]),
    ("scale-zero", _bad("s: 10", "s: 0"), "task.params.s", "s: 0", ["greater than 0"]),
    ("duration-zero", _bad("duration: 2.0", "duration: 0"), "task.params.duration", "duration:",
     ["greater than 0"]),
    ("per-fold-zero", _bad("per_fold: 256", "per_fold: 0"), "task.params.per_fold", "per_fold:", ["at least 2"]),
    ("per-label-zero", _bad("per_label: 1", "per_label: 0"), "task.params.per_label", "per_label:",
     ["at least 1"]),
    ("per-epoch-negative", _bad("per_epoch: 5", "per_epoch: -5"), "task.params.per_epoch", "per_epoch:",
     ["greater than 0"]),
    ("stride-two-items", _bad("stride: [5, 1, 1]", "stride: [5, 1]"), "architecture.params.sincnet.stride",
     "stride:", ["3 positive integers", "2 items"]),
    ("stride-zero", _bad("stride: [5, 1, 1]", "stride: [5, 0, 1]"), "architecture.params.sincnet.stride",
     "stride:", ["3 positive integers"]),
    ("learning-rate-auto", _bad("learning_rate: 0.01", "learning_rate: auto"), "scheduler.params.learning_rate",
     "learning_rate", ["expected a number", "AutoLR"]),
    ("sample-rate-negative", _bad("sample_rate: 16000", "sample_rate: -16000"),
     "feature_extraction.params.sample_rate", "sample_rate", ["must be at least 1000"]),
    # each passed the check, then failed training with a traceback (a float overflow), or read 2 samples
    ("sample-rate-1-hz", _bad("sample_rate: 16000", "sample_rate: 1"),
     "feature_extraction.params.sample_rate", "sample_rate", ["must be at least 1000"]),
    ("learning-rate-overflow", _bad("learning_rate: 0.01", "learning_rate: 1.0e+300"),
     "scheduler.params.learning_rate", "learning_rate", ["must be at most 1,000"]),
    ("snr-overflow", _bad("snr_min: 5", "snr_min: -1000000"),
     "data_augmentation.params.snr_min", "snr_min", ["must be in [-100.0, 100.0]"]),
    ("logit-scale-overflow", _bad("s: 10", "s: 1.0e+300"), "task.params.s", "s: 1.0e+300",
     ["must be at most 1,000"]),
    ("collection-empty", _bad("     collection:\n       - MUSAN.Collection.BackgroundNoise\n"
                              "       - MUSAN.Collection.Music", "     collection: []"),
     "data_augmentation.params.collection", "collection:", ["Collection protocol", "got an empty list"]),
    ("collection-not-protocol", _bad("- MUSAN.Collection.Music", "- musan/music"),
     "data_augmentation.params.collection", "collection:", ["Database.Collection.Name"]),
    ("duplicate-key", _bad("      s: 10", "      s: 10\n      s: 20"), "task.params.s", "s: 20", ["twice"]),
    ("section-not-mapping", _bad("scheduler:\n   name: ConstantScheduler\n   params:\n      learning_rate: 0.01",
                                 "scheduler: constant"), "scheduler", "scheduler:", ["mapping"]),
    ("section-extra-key", _bad("   name: ConstantScheduler", "   name: ConstantScheduler\n   lr: 0.1"),
     "scheduler.lr", "lr: 0.1", ["only `name` and `params`"]),
    ("missing-task", TUTORIAL[:TUTORIAL.index("# we use additive")], "task", None, ["missing section"]),
]


@pytest.mark.parametrize("text,key,needle,words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_config_is_rejected_with_key_and_line(text: str, key: str | None, needle: str | None,
                                                   words: list[str]) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(text, "exp/config.yml")
    err = e.value
    assert err.key == key
    assert err.source == "exp/config.yml"
    if needle is not None:
        assert err.line == line_of(text, needle)
        assert str(err).startswith(f"exp/config.yml:{err.line}: ")
    for word in words:
        assert word in str(err), str(err)


def test_empty_and_non_mapping_configs_are_rejected() -> None:
    with pytest.raises(ConfigError, match="empty"):
        parse_config("# nothing\n")
    with pytest.raises(ConfigError, match="mapping of sections"):
        parse_config("- a\n- b\n")


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.yml: no such file"):
        load_config(tmp_path / "nope.yml")


def test_config_diff_lists_changed_keys() -> None:
    a = config_to_dict(parse_config(TUTORIAL))
    b = config_to_dict(parse_config(_bad("margin: 0.05", "margin: 0.2")))
    assert config_diff(a, a) == []
    assert config_diff(a, b) == [("task.params.margin", 0.05, 0.2)]
    c = config_to_dict(dataclasses.replace(parse_config(TUTORIAL), augmentation=None))
    diff = dict((k, (x, y)) for k, x, y in config_diff(a, c))
    assert diff["data_augmentation.params.snr_max"] == (15.0, None)


def test_field_specs_cover_every_resolved_key_and_validate_like_the_parser() -> None:
    keys = {f.key for f in FIELD_SPECS}
    flat = [k for k, _, _ in config_diff(config_to_dict(parse_config(TUTORIAL)), {})]
    assert set(flat) <= keys
    margin = next(f for f in FIELD_SPECS if f.key == "task.params.margin"
                  and "AdditiveAngularMarginLoss" in f.names)
    assert margin.default == 0.1 and margin.kind == "float"
    assert validate_field("task.params.margin", "0.05") is None
    assert "pi/2" in validate_field("task.params.margin", str(math.pi))
    assert validate_field("task.params.margin", "0.9", name="AdditiveMarginLoss") is None
    assert "integer" in validate_field("task.params.per_fold", "true")
    assert validate_field("architecture.params.sincnet.stride", "[5, 1, 1]") is None
    assert "3 positive integers" in validate_field("architecture.params.sincnet.stride", "[5, 1]")
    assert validate_field("task.name", "ArcFace").startswith("unknown name 'ArcFace'; accepted: ")
    assert validate_field("task.name", "[ArcFace]").startswith("expected a name, got a list; accepted: ")
    assert validate_field("task.name", "pyannote.audio.embedding.approaches.Softmax") is None
    assert "unknown field" in validate_field("task.params.nope", "1")


def test_cli_config_check_prints_resolved_config(tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yml").write_text(TUTORIAL)
    done = run_engine("config", "check", str(exp / "config.yml"))
    assert done.returncode == 0, done.stderr
    assert parse_config(done.stdout) == parse_config(TUTORIAL)
    assert "pyannote.audio.embedding.approaches.AdditiveAngularMarginLoss" in done.stdout
    assert run_engine("config", "check", str(exp)).stdout == done.stdout


def test_config_check_lists_under_the_config_each_value_the_file_leaves_to_its_default(tmp_path: Path) -> None:
    """A key missing from config.yml took its default without a word (the tutorial's leaves out the
    TDNN's hidden size and the whole optimizer)."""
    config = tmp_path / "config.yml"
    config.write_text(TUTORIAL)
    done = run_in_process("config", "check", str(config))
    assert done.returncode == 0, done.stderr
    assert parse_config(done.stdout) == parse_config(TUTORIAL)
    listed = done.stdout[done.stdout.index("# not in config.yml, so at their defaults:\n"):].splitlines()[1:]
    assert listed == ["#   architecture.params.tdnn.hidden_dim: 512",
                      "#   task.params.margin_scheduler: null",
                      "#   task.params.label_min_duration: 0.0",
                      "#   optimizer.name: torch.optim.SGD",
                      "#   optimizer.params.momentum: 0.9",
                      "#   optimizer.params.nesterov: true",
                      "#   optimizer.params.weight_decay: 0.0"]
    # what it prints writes every value: checked again, it lists none
    config.write_text(done.stdout)
    again = run_in_process("config", "check", str(config))
    assert again.returncode == 0 and "# not in" not in again.stdout
    assert parse_config(again.stdout) == parse_config(TUTORIAL)


def test_augmentations_given_in_another_order_are_matched_by_name(tmp_path: Path) -> None:
    """The resolved config lists speed perturbation before noise whatever the file's order: a key is
    named at its place there."""
    noise = TUTORIAL[TUTORIAL.index("data_augmentation:"):TUTORIAL.index("\n\n", TUTORIAL.index("data_augmentation:"))]
    items = ("data_augmentation:\n"
             "  - name: AddNoise\n    params:\n      snr_min: 5\n      snr_max: 15\n"
             "      collection: [MUSAN.Collection.BackgroundNoise]\n"
             "  - name: SpeedPerturb\n")
    config = tmp_path / "config.yml"
    config.write_text(TUTORIAL.replace(noise, items, 1))
    done = run_in_process("config", "check", str(config))
    assert done.returncode == 0, done.stderr
    listed = [line for line in done.stdout.splitlines() if line.startswith("#   data_augmentation")]
    assert listed == ["#   data_augmentation[0].params.factors: [0.9, 1.0, 1.1]"]


def test_cli_config_check_rejects_bad_config_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "config.yml"
    text = _bad("margin: 0.05", "margin: 3")
    bad.write_text(text)
    done = run_engine("config", "check", str(bad))
    assert done.returncode == 2
    assert done.stdout == ""
    assert f"{bad}:{line_of(text, 'margin:')}: task.params.margin:" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    missing = run_engine("config", "check", str(tmp_path / "nope.yml"))
    assert missing.returncode == 2 and "nope.yml: no such file" in missing.stderr




@pytest.mark.parametrize("name,words", [
    ("ConstantSchedular", "scheduler.name: unknown name 'ConstantSchedular'; accepted names: ConstantScheduler"),
    ("[ConstantScheduler]", "scheduler.name: expected a name, got a list; accepted names: ConstantScheduler"),
    ("7", "scheduler.name: expected a name, got 7; accepted names: ConstantScheduler"),
])
def test_config_check_quotes_an_unknown_name_as_the_name(tmp_path: Path, name: str, words: str) -> None:
    """A misspelt name reads ``unknown name 'X'`` (it read ``unknown name the text 'X'``); a name that is
    no text says what it is."""
    config = tmp_path / "config.yml"
    config.write_text(TUTORIAL.replace("name: ConstantScheduler", f"name: {name}", 1))
    done = run_in_process("config", "check", str(config))
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    line = done.stderr.strip()
    assert len(line.splitlines()) == 1 and words in line and "the text" not in line, line


def test_a_collection_that_is_no_protocol_name_is_quoted_as_a_name(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(TUTORIAL.replace("- MUSAN.Collection.BackgroundNoise", "- BackgroundNoise", 1))
    done = run_in_process("config", "check", str(config))
    assert done.returncode == 2 and "'BackgroundNoise' is not a Collection protocol name" in done.stderr
    assert "the text" not in done.stderr, done.stderr


def test_config_template_prints_each_shipped_config_which_config_check_accepts(tmp_path: Path) -> None:
    """The backbones' templates were reachable only through the TUI's Configs screen or the source tree."""
    from engine.config import TEMPLATES

    for name in TEMPLATES:
        done = run_in_process("config", "template", name)
        assert done.returncode == 0 and done.stdout == template_text(name), name
        (tmp_path / f"{name}.yml").write_text(done.stdout)
        assert run_in_process("config", "check", str(tmp_path / f"{name}.yml")).returncode == 0, name
    bad = run_in_process("config", "template", "resnet")
    assert bad.returncode == 2 and bad.stderr == (
        "spkemb-engine config template: error: argument NAME: invalid choice: 'resnet' (choose from 'tutorial', "
        "'demo', 'recipe', 'resnet34', 'ecapa_tdnn', 'campplus') (see spkemb-engine config template --help)\n")
