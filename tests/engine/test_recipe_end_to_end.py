"""The whole modern recipe on the demo corpus, as a user runs it: a recipe config trained, validated
raw and with AS-norm, averaged, fine-tuned as a fork with a large margin (WeSpeaker's ``lm`` stage),
validated again, and applied."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from engine.config import load_config
from engine.layout import ExperimentDir
from engine.process.checkpoints import load_checkpoint
from engine.store import open_store
from engine.training.schedulers import learning_rate, margin_at
from tests.conftest import TINY_CONFIG
from tests.engine.engine_runner import run_engine

PROTOCOL = "Demo.SpeakerVerification.Voices"
TRAIN = ["--parallel", "0", "--device", "cpu", "--seed", "5", "--log-every", "0"]
ASNORM = ["--poll", "0.2", "--score-norm", "asnorm", "--cohort-size", "3", "--cohort-files", "1"]

_SPEED_THEN_NOISE = ("data_augmentation:\n - name: SpeedPerturb\n   params: {factors: [0.9, 1.0, 1.1]}\n"
                     " - name: pyannote.audio.augmentation.noise.AddNoise\n   params:\n")
#: every part of the recipe: speed perturbation before the noise, a margin ramp during epoch 2,
#: ExponentialDecrease with a one-epoch warm-up; 2 batches of 8 one-second chunks an epoch
RECIPE = (TINY_CONFIG
          .replace("data_augmentation:\n   name: pyannote.audio.augmentation.noise.AddNoise\n   params:\n",
                   _SPEED_THEN_NOISE)
          .replace("      margin: 0.05\n", "      margin: 0.2\n      margin_scheduler: "
                   "{increase_start_epoch: 2, fix_start_epoch: 3, increase_type: exp}\n")
          .replace("   name: ConstantScheduler\n   params:\n      learning_rate: 0.01\n",
                   "   name: ExponentialDecrease\n   params: {initial_lr: 0.05, final_lr: 0.001, warm_up_epoch: 1}\n"))
#: the large-margin stage: the same network and classes, longer chunks, margin 0.5 fixed, a low rate
LARGE_MARGIN = (RECIPE.replace("duration: 1.0", "duration: 1.5")
                .replace("margin: 0.2\n", "margin: 0.5\n")
                .replace("margin_scheduler: {increase_start_epoch: 2, fix_start_epoch: 3, increase_type: exp}",
                         "margin_scheduler: null")
                .replace("{initial_lr: 0.05, final_lr: 0.001, warm_up_epoch: 1}",
                         "{initial_lr: 0.001, final_lr: 0.00025, warm_up_epoch: 1}"))


def engine_ok(*args: str, db: Path, database: Path | None = None) -> None:
    done = run_engine(*args, db=db, database=database)
    assert done.returncode == 0, done.stderr


def experiment(root: Path, name: str, text: str) -> ExperimentDir:
    exp = ExperimentDir(root / name)
    exp.root.mkdir()
    exp.config.write_text(text)
    return exp


@pytest.mark.slow(seconds=50)
def test_recipe_trains_validates_averages_forks_and_extracts(tmp_path: Path, demo_corpus: Path,
                                                             db_path: Path) -> None:
    assert RECIPE.count("SpeedPerturb") == LARGE_MARGIN.count("margin_scheduler: null") == 1
    first = experiment(tmp_path, "recipe", RECIPE)
    trn = first.training(PROTOCOL, "train")
    engine_ok("train", "--to", "2", *TRAIN, str(first.root), PROTOCOL, db=db_path, database=demo_corpus)

    # epochs, then both averages, scored raw and after AS-norm (the epochs are not embedded twice)
    engine_ok("validate", *ASNORM, str(trn.root), PROTOCOL, db=db_path, database=demo_corpus)
    val = trn.validation(PROTOCOL, "test")
    engine_ok("average", "--top", "2", str(val.root), db=db_path)
    engine_ok("average", "--last", "2", str(trn.root), db=db_path)
    scored_once = val.score_file(1).stat().st_mtime_ns
    engine_ok("validate", *ASNORM, str(trn.root), PROTOCOL, db=db_path, database=demo_corpus)
    assert val.score_file(1).stat().st_mtime_ns == scored_once

    # the lm stage: a fork from the last epoch with its classifier (same speakers, same speed factors)
    lm = experiment(tmp_path, "recipe-lm", LARGE_MARGIN)
    lm_trn = lm.training(PROTOCOL, "train")
    engine_ok("train", "--init-from", str(trn.checkpoint(2)), "--init-classifier", "--to", "1", *TRAIN,
              str(lm.root), PROTOCOL, db=db_path, database=demo_corpus)
    engine_ok("validate", *ASNORM, str(lm_trn.root), PROTOCOL, db=db_path, database=demo_corpus)
    lm_val = lm_trn.validation(PROTOCOL, "test")
    engine_ok("apply", "--subset", "test", str(lm_val.root), PROTOCOL, db=db_path, database=demo_corpus)

    with open_store(db_path, readonly=True) as store:
        (parent,), (child,) = (store.find_runs(kind="train", out_dir=t.root) for t in (trn, lm_trn))
        steps, lm_steps = store.steps(parent["id"]), store.steps(child["id"])
        # the newest validate run of each VAL_DIR holds every checkpoint's figures
        rows, lm_rows = (store.validations(store.find_runs(kind="validate", out_dir=v.root)[0]["id"])
                         for v in (val, lm_val))
        (extraction,) = store.extractions(store.find_runs(kind="apply")[0]["id"])
        top2 = next(c["averaged"] for c in store.checkpoints(parent["id"]) if c["name"] == "avg-top2")

    # the schedules, recorded per step: warm-up from 0, margin 0 in epoch 1 and ramping in epoch 2
    cfg = load_config(first.config)
    per_epoch = len(steps) // 2
    assert [s["lr"] for s in steps] == pytest.approx([learning_rate(cfg.scheduler, i, per_epoch, 2)
                                                      for i in range(len(steps))])
    assert steps[0]["lr"] == 0.0 and steps[per_epoch]["lr"] > 0
    assert [s["margin"] for s in steps] == pytest.approx([margin_at(cfg.task, i, per_epoch)
                                                          for i in range(len(steps))])
    assert all(s["margin"] == 0.0 for s in steps[:per_epoch]) and steps[-1]["margin"] > 0.0
    assert {s["margin"] for s in lm_steps} == {0.5}

    # every checkpoint scored raw and after AS-norm, each figure inside its interval
    def scored(rows: list[dict]) -> list[tuple]:
        return sorted((r["checkpoint_name"] or "", r["epoch"]) for r in rows)
    averages = [("avg-last2", 2), ("avg-top2", max(yaml.safe_load(top2)))]
    assert scored(rows) == sorted([("", 0), ("", 1), ("", 2), *averages])
    assert scored(lm_rows) == [("", 0), ("", 1)]
    assert all(r["eer_low"] <= r["eer"] <= r["eer_high"] and r["cohort_size"] == 3
               and r["eer_asnorm_low"] <= r["eer_asnorm"] <= r["eer_asnorm_high"] for r in rows + lm_rows)

    # the fork starts from the parent's epoch 2 (network and classifier) and records where it came from
    assert (child["init_from"], child["init_epoch"], child["init_run_id"]) == (
        str(trn.checkpoint(2).resolve()), 2, parent["id"])
    start, source = load_checkpoint(lm_trn.checkpoint(0)), load_checkpoint(trn.checkpoint(2))
    for part in ("model", "loss"):
        assert all(torch.equal(start[part][k], source[part][k]) for k in source[part])
    assert len(source["speakers"]) == 3 * len([s for s in source["speakers"] if not s.startswith("sp")])
    # and its chosen epoch is extracted
    out = lm_val.extraction(extraction["epoch"])
    assert yaml.safe_load(out.metadata.read_text())["epoch"] == extraction["epoch"]
    assert extraction["files"] > 0 and list(out.root.rglob("*.npy"))

