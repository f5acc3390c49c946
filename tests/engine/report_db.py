"""A runs database to compare: two seeds of a ResNet34 group and one SincTDNN run, each validated on a
trial list with real score files written as ``validate`` writes them, and the figures computed from
those scores; the SincTDNN run also scored with AS-norm and diarized. Used by the report's engine
tests and by the Compare screen's pilot tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.layout import ExperimentDir
from engine.records import EpochSummary, ValidationResult
from engine.store import open_store
from engine.validation.metrics import equal_error_rate, min_dcf
from engine.validation.score_files import write_scores

PROTOCOL = "Demo.SpeakerVerification.Voices"
TRIALS = f"{PROTOCOL}.development"
RESNET = {"architecture": {"name": "ResNet34", "params": {}}, "feature_extraction": {"name": "Fbank"}}
SINC = {"architecture": {"name": "SincTDNN", "params": {}}}


@dataclass(frozen=True)
class Compared:
    db: Path
    #: run ids by name: resnet-s1, resnet-s2 (group resnet34-lm), sinc; and their validate runs (name + " val")
    ids: dict[str, int]


def _scores(rng: np.random.Generator, separation: float) -> tuple[np.ndarray, np.ndarray]:
    is_target = np.r_[np.ones(40, bool), np.zeros(160, bool)]
    scores = np.where(is_target, rng.normal(0.2 + separation, 0.15, 200), rng.normal(0.2, 0.15, 200))
    return scores, is_target


def make_compared(root: Path, *, asnorm: bool = True, diarized: bool = True) -> Compared:
    """The database ``root/runs.db`` and its run folders under ``root``."""
    db = root / "runs.db"
    rng = np.random.default_rng(7)
    ids: dict[str, int] = {}
    with open_store(db) as store:
        for name, config, group, seed, separation in [("resnet-s1", RESNET, "resnet34-lm", 1, 0.45),
                                                      ("resnet-s2", RESNET, "resnet34-lm", 2, 0.40),
                                                      ("sinc", SINC, None, 0, 0.25)]:
            exp = ExperimentDir(root / name)
            trn = exp.training(PROTOCOL, "train")
            run = store.create_run(kind="train", exp_dir=exp.root, out_dir=trn.root, protocol=PROTOCOL,
                                   subset="train", config=config, command=["spkemb-engine", "train"],
                                   device="cpu", target_epoch=3, name=name, seed=seed, run_group=group)
            ids[name] = run
            for epoch in (1, 2, 3):
                store.add_epoch(run, EpochSummary(epoch=epoch, loss=8.0 / epoch + separation, lr=0.01,
                                                  chunks_per_s=100.0, seconds=10.0))
            store.set_status(run, "completed")
            val_dir = trn.validation(PROTOCOL, "development")
            val = store.create_run(kind="validate", exp_dir=exp.root, out_dir=val_dir.root, protocol=PROTOCOL,
                                   subset="development", config=config, command=["spkemb-engine", "validate"],
                                   device="cpu", target_epoch=3, parent_id=run, name=f"{name} val")
            ids[f"{name} val"] = val
            for epoch in (1, 2, 3):
                scores, is_target = _scores(rng, separation * epoch / 3)
                trials = [(int(t), float(s), f"a{i}", f"b{i}")
                          for i, (s, t) in enumerate(zip(scores, is_target, strict=True))]
                path = write_scores(val_dir.score_file(epoch), trials)
                eer, threshold = equal_error_rate(scores, is_target)
                norm = None
                if asnorm and name == "sinc":
                    from engine.records import AsNormFigures

                    norm = AsNormFigures(eer=eer * 0.9, mindcf_01=min_dcf(scores, is_target, 0.01) * 0.9,
                                         mindcf_005=min_dcf(scores, is_target, 0.05) * 0.9, cohort_size=50)
                store.add_validation(val, ValidationResult(
                    epoch=epoch, eer=eer, mindcf_01=min_dcf(scores, is_target, 0.01),
                    mindcf_005=min_dcf(scores, is_target, 0.05), threshold=threshold, n_trials=200,
                    scores_path=str(path), asnorm=norm), train_run_id=run)
            # the pick is the second epoch, not the lowest EER (the third): the pivot shows the pick
            store.set_best(val, epoch=2, eer=None, how="manual")
            store.set_status(val, "completed")
            if diarized and name == "sinc":
                apply = store.create_run(kind="apply", exp_dir=exp.root, out_dir=val_dir.root / "apply",
                                         protocol=PROTOCOL, subset="development", config=config,
                                         command=["spkemb-engine", "apply"], device="cpu", parent_id=val)
                store.add_diarization(apply, out_dir=val_dir.root / "apply" / "2", epoch=2, protocol=PROTOCOL,
                                      subset="development", collar=0.0, skip_overlap=False,
                                      num_speakers="oracle", threshold=0.5, tuned_on=None, linkage="average",
                                      frame_rule="centre", der=0.125, missed=1.0, false_alarm=0.5,
                                      confusion=1.0, total=20.0, files=[])
                store.set_status(apply, "completed")
    return Compared(db=db, ids=ids)


def validate_again(made: Compared, name: str, epochs: tuple[int, ...], *, best: int | None) -> int:
    """A newer validate run of run ``name``'s VAL_DIR that scored only ``epochs`` (as ``validate --from``
    does) with the figures the first one recorded, its pick ``best`` (None: not picked yet)."""
    with open_store(made.db) as store:
        first = store.run(made.ids[f"{name} val"])
        assert first is not None
        again = store.create_run(kind="validate", exp_dir=Path(first["exp_dir"]), out_dir=Path(first["out_dir"]),
                                 protocol=PROTOCOL, subset="development", config=SINC,
                                 command=["spkemb-engine", "validate"], device="cpu", target_epoch=3,
                                 parent_id=first["parent_id"], name=f"{name} val again")
        for result in store.validation_results(first["id"]):
            if result.epoch in epochs:
                store.add_validation(again, ValidationResult(
                    epoch=result.epoch, eer=result.eer, mindcf_01=result.mindcf_01, mindcf_005=result.mindcf_005,
                    threshold=result.threshold, n_trials=result.n_trials, scores_path=result.scores_path),
                    train_run_id=first["parent_id"])
        if best is not None:
            store.set_best(again, epoch=best, eer=None, how="lowest-eer")
        store.set_status(again, "completed")
    return again
