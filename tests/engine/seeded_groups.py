"""Groups of seeds as the runs database and the run folders hold them after ``train`` and ``validate``:
training runs of a group, each with a validate run, a ``VAL_DIR/scores/{epoch:04d}.txt`` per epoch
(synthetic scores written by ``write_scores``, as validate writes them) and its ``validations`` row."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.layout import TrainingDir
from engine.store.runs import Store
from engine.validation.score_files import read_scores, result_from_scores, write_scores

PROTOCOL = "Synth.SpeakerVerification.Trials"
#: the trial list every system scores: 8 enrolment speakers, 300 trials each (100 target): 1,600
#: non-target trials measure a miss rate at 0.1 % false alarms
SPEAKERS, PER_SPEAKER = 8, 300


def trial_list(per_speaker: int = PER_SPEAKER) -> list[tuple[int, str, str]]:
    """(reference, enrolment uri, test uri): a target trial tests the same speaker, a non-target another."""
    out = []
    for s in range(SPEAKERS):
        for i in range(per_speaker * s, per_speaker * (s + 1)):
            target = i % 3 == 0
            other = s if target else (s + 1 + i % (SPEAKERS - 1)) % SPEAKERS
            out.append((int(target), f"spk{s}/sess/{i:05d}", f"spk{other}/other/{i:05d}"))
    return out


def write_system(path: Path, separation: float, seed: int, per_speaker: int = PER_SPEAKER) -> None:
    """Scores of the trial list: targets ``separation`` above non-targets, plus noise."""
    trials = trial_list(per_speaker)
    noise = np.random.default_rng(seed).normal(0, 0.3, len(trials))
    write_scores(path, ((ref, separation * ref + n, u1, u2) for (ref, u1, u2), n in zip(trials, noise, strict=True)))


def add_seeded_run(store: Store, root: Path, group: str | None, seed: int, separation: float,
                   epochs: tuple[int, ...] = (1, 2, 3), name: str | None = None,
                   per_speaker: int = PER_SPEAKER) -> int:
    """A training run (``seed``, ``group``) validated at ``epochs``, better each epoch; its id.
    The last epoch is picked."""
    trn = TrainingDir(root / f"{name or group}-{seed}" / "train" / f"{PROTOCOL}.train")
    val = trn.validation(PROTOCOL, "test")
    train = store.create_run(kind="train", exp_dir=trn.root.parent.parent, out_dir=trn.root, protocol=PROTOCOL,
                             subset="train", config={"seed": seed}, command=["train"], device="cpu", seed=seed,
                             run_group=group, name=name or f"{group} seed {seed}", target_epoch=max(epochs))
    validate = store.create_run(kind="validate", exp_dir=trn.root.parent.parent, out_dir=val.root,
                                protocol=PROTOCOL, subset="test", config=None, command=["validate"], device="cpu",
                                parent_id=train, run_group=group)
    for epoch in epochs:
        path = val.score_file(epoch)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_system(path, separation * epoch / max(epochs), seed=1000 * seed + epoch, per_speaker=per_speaker)
        result = result_from_scores(epoch, *read_scores(path), n_bootstrap=50, source=path)
        store.add_validation(validate, result, train_run_id=train)
    store.set_best(validate, epoch=max(epochs), eer=result.eer, how="lowest-eer")
    for run in (train, validate):
        store.set_status(run, "completed")
    return train
