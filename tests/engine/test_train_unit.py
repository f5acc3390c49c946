"""Training in this process: ``cmd_train`` and ``Trainer`` on the tiny config and the demo corpus.

The end-to-end tests (test_train.py) run the same code as ``python -m engine`` subprocesses; these
call it directly, one epoch of a few batches on the CPU with no loader workers, and read back the
real checkpoint files and the real SQLite rows.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from engine.config import config_to_dict, parse_config
from engine.data.batches import Position
from engine.early_checks import check_train
from engine.errors import AudioError, CheckpointError, ConfigError, SpkembError, TrainingError
from engine.layout import ExperimentDir, TrainingDir
from engine.process.checkpoints import load_checkpoint, save_checkpoint
from engine.process.distributed import World
from engine.process.lifecycle import open_run
from engine.process.stopping import StopRequest
from engine.requests import TrainRequest
from engine.store import open_store
from engine.training.init_from import load_init
from engine.training.resume import plan_start
from engine.training.train import Trainer, cmd_train
from engine.training.training_data import prepare_training_data
from tests.conftest import TINY_CONFIG

PROTOCOL = "Demo.SpeakerVerification.Voices"
#: the tiny config made smaller still: two batches an epoch (so that a stop can fall between them) of
#: 2 speakers x 2 half-second chunks, no noise mixed in
UNIT_CONFIG = "# use SincTDNN".join((
    TINY_CONFIG.split("# add background noise")[0],
    TINY_CONFIG.split("# use SincTDNN")[1].replace("duration: 1.0", "duration: 0.5")
    .replace("per_fold: 4", "per_fold: 2").replace("per_epoch: 0.0002", "per_epoch: 0.00003")))
CONFIG = parse_config(UNIT_CONFIG, "unit")


def make_exp(root: Path, name: str = "exp") -> Path:
    exp = root / name
    exp.mkdir()
    (exp / "config.yml").write_text(UNIT_CONFIG)
    return exp


@pytest.fixture
def exp(tmp_path: Path) -> Path:
    """An experiment directory holding the unit config."""
    return make_exp(tmp_path)


def request(exp: Path, db: Path, database: Path, **options: object) -> TrainRequest:
    """``train EXP PROTOCOL`` on the CPU, no loader workers, every step logged."""
    fixed: dict = dict(exp_dir=str(exp), protocol=PROTOCOL, parallel=0, device="cpu", seed=3, log_every=0.0,
                       db=str(db), database=str(database))
    return TrainRequest(**{**fixed, **options})


def trn_of(exp: Path) -> TrainingDir:
    return ExperimentDir(exp).training(PROTOCOL, "train")


def weights(exp: Path) -> list[str]:
    return sorted(p.name for p in trn_of(exp).weights.glob("*.pt")) if trn_of(exp).weights.is_dir() else []


def tree(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}


def only_train_run(db: Path) -> dict:
    with open_store(db, readonly=True) as store:
        (run,) = store.runs(kind="train")
        return run


def test_cmd_train_records_one_epoch_then_resumes_into_the_same_run(
        exp: Path, db_path: Path, demo_corpus: Path) -> None:
    assert cmd_train(request(exp, db_path, demo_corpus, to=1)) == 0
    assert weights(exp) == ["0000.pt", "0001.pt"]  # the untrained network, then epoch 1
    with open_store(db_path, readonly=True) as store:
        (run,) = store.runs(kind="train")
        assert (run["status"], run["epoch"], run["target_epoch"], run["seed"]) == ("completed", 1, 1, 3)
        assert run["out_dir"] == str(trn_of(exp).root.resolve())
        assert run["device"].startswith("cpu") and run["config"]["task"]["params"]["per_label"] == 2
        steps = store.steps(run["id"])
        assert [s["step"] for s in steps] == list(range(1, run["step"] + 1)) and run["step"] >= 2
        assert all(s["epoch"] == 1 and s["loss"] > 0 for s in steps)
        (epoch,) = store.epochs(run["id"])
        assert epoch["epoch"] == 1
        assert epoch["loss"] == pytest.approx(sum(s["loss"] for s in steps) / len(steps), rel=1e-9)
        assert [(c["epoch"], c["partial"]) for c in store.checkpoints(run["id"])] == [(0, False), (1, False)]
    saved = load_checkpoint(trn_of(exp).checkpoint(1))
    assert (saved["epoch"], saved["batch"], saved["step"], saved["target"]) == (1, 0, run["step"], 1)

    # the plan of a resume stands at the end of epoch 1; --to 2 continues the very same run
    plan = plan_start(request(exp, db_path, demo_corpus, resume=True, to=2), trn_of(exp), CONFIG)
    assert (plan.checkpoint, plan.position, plan.step, plan.target) == (
        trn_of(exp).checkpoint(1), Position(1, 0), run["step"], 2)
    assert cmd_train(request(exp, db_path, demo_corpus, resume=True, to=2)) == 0
    assert weights(exp) == ["0000.pt", "0001.pt", "0002.pt"]
    resumed = only_train_run(db_path)
    assert resumed["id"] == run["id"] and resumed["status"] == "completed" and resumed["epoch"] == 2
    with open_store(db_path, readonly=True) as store:
        steps = store.steps(run["id"])
        assert [s["step"] for s in steps] == list(range(1, resumed["step"] + 1))
        assert resumed["step"] == 2 * run["step"]  # as many batches in epoch 2 as in epoch 1
        assert [e["epoch"] for e in store.epochs(run["id"])] == [1, 2]
        assert [c["epoch"] for c in store.checkpoints(run["id"])] == [0, 1, 2]


def test_cmd_train_refuses_bad_requests_in_one_line_and_writes_nothing(
        exp: Path, db_path: Path, demo_corpus: Path) -> None:
    before = tree(exp)
    cases: list[tuple[dict, type[SpkembError], str]] = [
        (dict(resume=True), TrainingError, "has no checkpoint yet; train without --resume"),
        (dict(init_classifier=True), TrainingError, "--init-classifier needs --init-from")]
    if not torch.cuda.is_available():
        cases.append((dict(device="cuda:0"), SpkembError, "--device cuda:0: no CUDA GPU is visible here"))
    for options, error, words in cases:
        with pytest.raises(error) as refused:
            cmd_train(request(exp, db_path, demo_corpus, to=1, **options))
        assert words in str(refused.value) and "\n" not in str(refused.value), options
        # refused before the run is recorded: no database, no training folder
        assert tree(exp) == before and not db_path.exists(), options

    (exp / "config.yml").write_text(UNIT_CONFIG.replace("per_fold: 2", "per_fold: many"))
    with pytest.raises(ConfigError) as refused:
        cmd_train(request(exp, db_path, demo_corpus, to=1))
    assert "per_fold" in str(refused.value) and "\n" not in str(refused.value)
    assert tree(exp) == before and not db_path.exists()


def test_an_unknown_protocol_is_refused_before_anything_is_written(
        exp: Path, db_path: Path, demo_corpus: Path) -> None:
    before = tree(exp)
    with pytest.raises(SpkembError) as refused:
        check_train(request(exp, db_path, demo_corpus, to=1, protocol="Demo.SpeakerVerification.Nobody"))
    assert "Nobody" in str(refused.value) and "\n" not in str(refused.value)
    # a misspelt name leaves no empty run folder and no failed run behind
    assert tree(exp) == before and not db_path.exists()


def test_a_misspelt_index_reader_is_refused_before_anything_is_written(
        exp: Path, db_path: Path, demo_corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It was refused once the run was recorded (a failed run) and TRN_DIR made."""
    before = tree(exp)
    monkeypatch.setenv("SPKEMB_INDEX_READER", "fats")
    with pytest.raises(SpkembError, match="SPKEMB_INDEX_READER='fats' names no index reader"):
        check_train(request(exp, db_path, demo_corpus, to=1))
    assert tree(exp) == before and not db_path.exists()


def test_cmd_train_refuses_a_new_run_where_checkpoints_are_and_a_resume_below_them(
        exp: Path, db_path: Path, demo_corpus: Path) -> None:
    assert cmd_train(request(exp, db_path, demo_corpus, to=1)) == 0
    run = only_train_run(db_path)
    for options, words in ((dict(to=2), "already holds checkpoints: add --resume"),
                           (dict(resume=True, to=0), "--to 0 is below where the resumed run stands")):
        with pytest.raises(TrainingError, match=words):
            cmd_train(request(exp, db_path, demo_corpus, **options))
    assert only_train_run(db_path) == run and weights(exp) == ["0000.pt", "0001.pt"]


class Parts:
    """What a Trainer is built from, as cmd_train builds it, in one experiment folder."""

    def __init__(self, exp: Path, db: Path, database: Path, **options: object) -> None:
        self.args = request(exp, db, database, **{"to": 1, **options})
        self.trn = trn_of(exp)
        self.plan = plan_start(self.args, self.trn, CONFIG)
        self.data = prepare_training_data(CONFIG, PROTOCOL, "train", database=str(database), strict=False,
                                          seed=self.args.seed, world=World(), workers=0)
        self.trn.root.mkdir(parents=True, exist_ok=True)
        self.recorder = open_run("train", self.trn, self.args, device="cpu", target_epoch=self.plan.target,
                                 config=config_to_dict(CONFIG),
                                 resume_from=self.plan.step if self.plan.resumes else None)

    def trainer(self, stop: StopRequest | None = None) -> Trainer:
        return Trainer(self.args, CONFIG, self.data, self.trn, torch.device("cpu"), World(), self.recorder,
                       self.plan, stop)


def step_losses(db: Path) -> list[float]:
    with open_store(db, readonly=True) as store:
        return [s["loss"] for r in store.runs(kind="train") for s in store.steps(r["id"])]


def test_a_trainer_stopped_by_a_signal_mid_epoch_resumes_into_the_uninterrupted_run(
        tmp_path: Path, demo_corpus: Path) -> None:
    whole = make_exp(tmp_path, "whole")
    parts = Parts(whole, tmp_path / "whole.db", demo_corpus)
    assert parts.trainer().fit() == "completed"
    parts.recorder.finish("completed")

    cut = make_exp(tmp_path, "cut")
    db = tmp_path / "cut.db"
    parts = Parts(cut, db, demo_corpus)
    untouched = signal.getsignal(signal.SIGUSR1)
    stop = StopRequest().install()
    signal.raise_signal(signal.SIGUSR1)  # SLURM's warning, before the first step: seen after it
    trainer = parts.trainer(stop)
    assert trainer.fit() == "stopped"
    assert signal.getsignal(signal.SIGUSR1) == untouched  # the handler found before is given back
    assert trainer.reason == "stopped by SIGUSR1 at epoch 1 step 1"
    parts.recorder.finish("stopped", trainer.reason)
    assert weights(cut) == ["0000.pt", "resume.pt"]
    with open_store(db, readonly=True) as store:
        (run,) = store.runs(kind="train")
        assert [(c["epoch"], c["step"], c["partial"]) for c in store.checkpoints(run["id"])] == [
            (0, 0, False), (0, 1, True)]

    # the plan resumes from resume.pt: one batch into epoch 1, with the loss of that batch so far
    parts = Parts(cut, db, demo_corpus, resume=True)
    assert parts.plan.checkpoint == parts.trn.resume
    assert (parts.plan.position, parts.plan.step, parts.plan.target) == (Position(0, 1), 1, 1)
    assert parts.plan.epoch_so_far is not None and parts.plan.epoch_so_far["steps"] == 1
    assert parts.trainer().fit() == "completed"
    parts.recorder.finish("completed")
    # resume.pt is superseded by the epoch's checkpoint: neither its file nor its row stays
    assert weights(cut) == ["0000.pt", "0001.pt"] and not parts.trn.resume.exists()
    with open_store(db, readonly=True) as store:
        (run,) = store.runs(kind="train")
        assert [(c["epoch"], c["partial"]) for c in store.checkpoints(run["id"])] == [(0, False), (1, False)]
        (epoch,) = store.epochs(run["id"])
    # the same losses, step for step, and the same weights as the run that was never stopped
    assert step_losses(db) == pytest.approx(step_losses(tmp_path / "whole.db"), rel=1e-6)
    assert epoch["loss"] == pytest.approx(sum(step_losses(db)) / len(step_losses(db)), rel=1e-9)
    ours, theirs = (load_checkpoint(trn_of(e).checkpoint(1))["model"] for e in (cut, whole))
    assert all(torch.allclose(ours[k], theirs[k], atol=1e-6) for k in theirs)


def test_a_stop_while_an_epochs_checkpoint_is_written_ends_there(tmp_path: Path, demo_corpus: Path) -> None:
    """SIGTERM as weights/0001.pt was written: the next epoch's first step was taken before the stop was
    seen (stopped `at epoch 2 step 10`, a resume.pt one step past the epoch's checkpoint)."""
    exp = make_exp(tmp_path, "x")
    parts = Parts(exp, tmp_path / "x.db", demo_corpus, to=2)
    trainer = parts.trainer(StopRequest().install())
    written = trainer.save

    def save(partial: bool, epoch_so_far: dict | None = None) -> None:
        written(partial, epoch_so_far)
        if not partial and trainer.epoch == 1:
            signal.raise_signal(signal.SIGUSR1)  # as the file is renamed into place

    trainer.save = save  # type: ignore[method-assign]
    assert trainer.fit() == "stopped"
    assert trainer.reason == "stopped by SIGUSR1 at the end of epoch 1"
    assert (trainer.epoch, trainer.batch, trainer.step) == (1, 0, trainer.data.batches_per_epoch)
    parts.recorder.finish("stopped", trainer.reason)
    assert weights(exp) == ["0000.pt", "0001.pt"]


def test_a_resume_records_an_epoch_checkpoint_that_has_a_file_but_no_row(
        exp: Path, db_path: Path, demo_corpus: Path) -> None:
    """A process killed between renaming weights/0001.pt into place and recording it."""
    parts = Parts(exp, db_path, demo_corpus)
    assert parts.trainer().fit() == "completed"
    parts.recorder.remove_checkpoint(path=parts.trn.checkpoint(1))
    parts.recorder.finish("failed", "killed")
    with open_store(db_path, readonly=True) as store:
        assert [c["epoch"] for c in store.checkpoints(only_train_run(db_path)["id"])] == [0]

    # --to 1 on a run that completed epoch 1: nothing to train, the missing row recorded
    parts = Parts(exp, db_path, demo_corpus, resume=True)
    assert parts.plan.resumes and parts.plan.position == Position(1, 0)
    assert parts.trainer().fit() == "completed"
    parts.recorder.finish("completed")
    saved = load_checkpoint(parts.trn.checkpoint(1))
    with open_store(db_path, readonly=True) as store:
        run = only_train_run(db_path)
        rows = store.checkpoints(run["id"])
        assert [(c["epoch"], c["step"], c["partial"]) for c in rows] == [(0, 0, False), (1, saved["step"], False)]
        assert rows[1]["path"] == str(parts.trn.checkpoint(1))
    assert weights(exp) == ["0000.pt", "0001.pt"]


def test_a_resume_from_an_edited_checkpoint_is_one_line_and_trains_nothing(
        exp: Path, db_path: Path, demo_corpus: Path) -> None:
    """A checkpoint edited by hand (here its epoch made negative, accepted with --trust-checkpoint)
    stopped in a loader worker with a traceback, and the process hung: now one line before any step."""
    assert cmd_train(request(exp, db_path, demo_corpus, to=1)) == 0
    path = trn_of(exp).checkpoint(1)
    save_checkpoint(path, {**load_checkpoint(path), "epoch": -5})
    before = only_train_run(db_path)
    with pytest.raises(CheckpointError) as refused:
        cmd_train(request(exp, db_path, demo_corpus, to=2, resume=True, trust_checkpoint=True, parallel=1))
    assert f"checkpoint {path} is damaged or edited: epoch is -5" in str(refused.value)
    assert weights(exp) == ["0000.pt", "0001.pt"] and only_train_run(db_path)["step"] == before["step"]


def test_a_resume_whose_optimizer_state_is_another_networks_is_one_line_and_trains_nothing(
        exp: Path, db_path: Path, demo_corpus: Path) -> None:
    """The momentum of another network (a shape that differs) failed at the first step, with a traceback."""
    assert cmd_train(request(exp, db_path, demo_corpus, to=1)) == 0
    path = trn_of(exp).checkpoint(1)
    saved = load_checkpoint(path)
    saved["optimizer"]["state"][0]["momentum_buffer"] = torch.zeros(2, 2)
    save_checkpoint(path, saved)
    before = only_train_run(db_path)
    with pytest.raises(CheckpointError) as refused:
        cmd_train(request(exp, db_path, demo_corpus, to=2, resume=True, trust_checkpoint=True))
    assert str(refused.value) == (f"checkpoint {path} does not fit this network: its optimizer state 0 is no "
                                  f"momentum of a parameter of this network; resume with the config.yml it was "
                                  f"trained with")
    assert weights(exp) == ["0000.pt", "0001.pt"] and only_train_run(db_path)["step"] == before["step"]


def test_chunks_too_short_for_sinctdnn_are_one_line_before_any_checkpoint(
        exp: Path, db_path: Path, demo_corpus: Path) -> None:
    """The first step said it, after the untrained checkpoint had been written."""
    config = exp / "config.yml"
    assert "duration: 0.5" in config.read_text()
    config.write_text(config.read_text().replace("duration: 0.5", "duration: 0.02"))
    with pytest.raises(AudioError, match=r"audio of 320 samples \(0.020 s\) is too short for SincTDNN: .* "
                                         r"use longer chunks \(task.duration\)"):
        cmd_train(request(exp, db_path, demo_corpus, to=1))
    assert weights(exp) == []
    run = only_train_run(db_path)
    assert run["status"] == "failed" and "too short for SincTDNN" in run["reason"]


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory: pytest.TempPathFactory, demo_corpus: Path) -> tuple[Path, Path, dict]:
    """One real epoch (experiment, runs database, its last checkpoint as written), shared by the edits
    below: each puts the file back, and a refused resume changes nothing else."""
    exp, db = make_exp(tmp_path_factory.mktemp("once")), tmp_path_factory.mktemp("db") / "runs.db"
    assert cmd_train(request(exp, db, demo_corpus, to=1)) == 0
    return exp, db, load_checkpoint(trn_of(exp).checkpoint(1))


def _momentum(value: object) -> Callable[[dict], None]:
    def edit(saved: dict) -> None:
        buf = saved["optimizer"]["state"][0]["momentum_buffer"]
        saved["optimizer"]["state"][0]["momentum_buffer"] = value(buf) if callable(value) else value
    return edit


@pytest.mark.parametrize(("edit", "said"), [
    (_momentum(lambda b: torch.empty(b.shape, device="meta")), "momentum 0 is a torch.float32"),
    (_momentum(lambda b: b.to_sparse()), "momentum 0 is a torch.float32 torch.sparse_coo tensor"),
    (_momentum(lambda b: b.to(torch.complex64)), "momentum 0 is a torch.complex64 torch.strided tensor"),
    (_momentum(lambda b: b.to(torch.int64)), "momentum 0 is a torch.int64 torch.strided tensor"),
    *[(_momentum(lambda b, v=v: torch.full_like(b, v)), "momentum 0 holds NaN, infinite or overflowing")
      for v in (float("nan"), float("inf"), -float("inf"), 3e38)],
    *[(lambda s, name=name: s.pop(name), f"it has no {name} entry, which --resume needs")
      for name in ("epoch", "batch", "step", "optimizer", "loss", "rng", "speakers")],
    (lambda s: s.update(epoch_so_far={"loss_sum": "abc", "steps": 1, "seconds": 1.0}),
     "epoch_so_far.loss_sum is 'abc', not a finite number"),
    (lambda s: s.update(epoch_so_far={"steps": [1]}), "epoch_so_far.steps is list, not a whole number >= 0"),
    (lambda s: s.update(epoch_so_far={"seconds": 10**400}), "epoch_so_far.seconds is 1000"),
    (lambda s: s["rng"].update(python=[3, [1, 2], None]), "rng.python is no state of this interpreter's"),
    (lambda s: s["rng"].update(numpy=["MT19937", [1, 2], 0, 0, 0.0]), "rng.numpy is no state of this"),
    (lambda s: s["rng"].update(torch=torch.zeros(5, dtype=torch.uint8)), "rng.torch is no state of this"),
    (lambda s: s.update(step=2**63 - 1), "step is 9223372036854775807, not a whole number >= 0"),
])
def test_a_resume_from_a_checkpoint_edited_past_its_entry_check_is_one_line_and_trains_nothing(
        trained_once: tuple[Path, Path, dict], demo_corpus: Path, edit: Callable[[dict], None], said: str) -> None:
    """Each of these failed with a traceback (OverflowError, KeyError, IndexError, …) or trained on (a complex
    momentum), or blamed the learning rate (a NaN momentum); now one line before any step."""
    exp, db, original = trained_once
    path = trn_of(exp).checkpoint(1)
    saved = load_checkpoint(path)
    edit(saved)
    try:
        save_checkpoint(path, saved)
    except NotImplementedError:  # a meta tensor has no data to move to the CPU: written as torch writes it
        torch.save(saved, path)
    before = only_train_run(db)
    try:
        with pytest.raises(CheckpointError) as refused:
            cmd_train(request(exp, db, demo_corpus, to=2, resume=True, trust_checkpoint=True))
    finally:
        save_checkpoint(path, original)
    assert str(refused.value).startswith(f"checkpoint {path} ") and "\n" not in str(refused.value)
    assert said in str(refused.value)
    assert weights(exp) == ["0000.pt", "0001.pt"] and only_train_run(db)["step"] == before["step"]


@pytest.mark.parametrize(("config", "classifier", "said"), [
    ("task: x\n", False, "its config is not one this release reads"),
    (lambda c: {**c, "task": 5}, True, "its config is not one this release reads"),
])
def test_a_fork_from_a_checkpoint_whose_config_is_edited_is_one_line(
        trained_once: tuple[Path, Path, dict], tmp_path: Path, demo_corpus: Path, config: object,
        classifier: bool, said: str) -> None:
    """YAML text (which the entry check allows) failed with AttributeError, a task of 5 with TypeError."""
    exp, db, original = trained_once
    parent = tmp_path / "parent.pt"
    save_checkpoint(parent, {**original, "config": config(original["config"]) if callable(config) else config})
    fork = make_exp(tmp_path, "fork")
    with pytest.raises(CheckpointError) as refused:
        cmd_train(request(fork, db, demo_corpus, to=1, init_from=str(parent), init_classifier=classifier))
    assert str(refused.value).startswith(f"checkpoint {parent.resolve()} is damaged or edited: {said}")
    assert "\n" not in str(refused.value) and not trn_of(fork).root.exists()


def test_a_fork_reads_a_checkpoints_config_written_as_yaml_text(
        trained_once: tuple[Path, Path, dict], tmp_path: Path) -> None:
    """The entry check allows YAML text; the fork reads it as config.yml would be read."""
    parent = tmp_path / "parent.pt"
    save_checkpoint(parent, {**trained_once[2], "config": UNIT_CONFIG})
    init = load_init(parent, config=CONFIG, classifier=True)
    assert init.loss is not None and init.classes == trained_once[2]["speakers"]
