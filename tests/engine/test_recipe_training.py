"""Training with the recipe's parts: margin ramp, ExponentialDecrease, SpeedPerturb, exact resume after
a real engine process's SIGTERM (of SincTDNN and of a ResNet34 on dithered filterbanks), and forks
(--init-from) with their refusals, which run through ``engine.cli.main`` in this process."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
import torch

from engine.config import load_config
from engine.process.checkpoints import file_sha256, load_checkpoint
from engine.store import open_store
from engine.training.schedulers import learning_rate, margin_at
from tests.conftest import TINY_CONFIG
from tests.engine.engine_runner import run_in_process, start_engine, wait_for

PROTOCOL = "Demo.SpeakerVerification.Voices"
ARGS = ["--parallel", "0", "--device", "cpu", "--seed", "3", "--log-every", "0"]

#: 5 batches an epoch (0.0004 day of 8 one-second chunks); the margin ramps up during epoch 2;
#: speed perturbation before the noise
RECIPE = (TINY_CONFIG
          .replace("per_epoch: 0.0002", "per_epoch: 0.0004")
          .replace("      margin: 0.05\n", "      margin: 0.2\n      margin_scheduler: "
                   "{increase_start_epoch: 2, fix_start_epoch: 3, increase_type: linear}\n")
          .replace("data_augmentation:\n   name: pyannote.audio.augmentation.noise.AddNoise\n   params:\n",
                   "data_augmentation:\n - name: SpeedPerturb\n   params: {factors: [1.0, 0.9, 1.1]}\n"
                   " - name: pyannote.audio.augmentation.noise.AddNoise\n   params:\n")
          .replace("   name: ConstantScheduler\n   params:\n      learning_rate: 0.01\n",
                   "   name: ExponentialDecrease\n   params: {initial_lr: 0.02, final_lr: 0.002, "
                   "warm_up_epoch: 1}\n"))


def on_resnet34(text: str) -> str:
    """``text`` with a tiny ResNet34 on 16 dithered mel bins in place of the raw waveform and SincTDNN."""
    text = re.sub(r"feature_extraction:\n(?: {3,}.*\n)+",
                  "feature_extraction: {name: Fbank, params: {num_mel_bins: 16, dither: 1.0}}\n", text)
    text = re.sub(r"architecture:\n(?: {3,}.*\n)+",
                  "architecture: {name: ResNet34, params: {m_channels: 4, embed_dim: 16}}\n", text)
    assert "models.SincTDNN" not in text and "features.RawAudio" not in text
    return text


#: each network's recipe config
NETWORKS = {"SincTDNN": RECIPE, "ResNet34": on_resnet34(RECIPE)}


def make_exp(root: Path, name: str, text: str = RECIPE) -> Path:
    exp = root / name
    exp.mkdir(parents=True)
    (exp / "config.yml").write_text(text)
    return exp


def weights(exp: Path, name: str) -> Path:
    return exp / "train" / f"{PROTOCOL}.train" / "weights" / name


def train_runs(db: Path) -> list[dict]:
    return open_store(db, readonly=True).runs(kind="train") if db.exists() else []


@pytest.mark.slow
@pytest.mark.parametrize("network", list(NETWORKS))
def test_recipe_run_resumed_after_sigterm_equals_the_uninterrupted_one(tmp_path: Path, demo_corpus: Path,
                                                                      network: str) -> None:
    """Bitwise: the same losses, rates, margins and weights (ResNet34: its dither and batch-norm statistics too)."""
    text = NETWORKS[network]
    assert "margin_scheduler" in text and "SpeedPerturb" in text and "ExponentialDecrease" in text
    whole, db_whole = make_exp(tmp_path, "whole", text), tmp_path / "whole.db"
    # the uninterrupted run and the resume through engine.cli.main in this process; the stop is a real
    # engine process's
    done = run_in_process("train", "--to", "3", *ARGS, str(whole), PROTOCOL, db=db_whole, database=demo_corpus)
    assert done.returncode == 0, done.stderr

    cut, db_cut = make_exp(tmp_path, "cut", text), tmp_path / "cut.db"
    proc = start_engine("train", "--to", "3", *ARGS, str(cut), PROTOCOL, db=db_cut, database=demo_corpus,
                        log=tmp_path / "cut.log")
    # stopped during epoch 2, while the margin ramps up
    wait_for(lambda: next((r for r in train_runs(db_cut) if (r["step"] or 0) >= 7), None), timeout=300,
             what="7 steps")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 0, (tmp_path / "cut.log").read_text()
    assert open_store(db_cut, readonly=True).runs(kind="train")[0]["status"] == "stopped"
    resumed = run_in_process("train", "--resume", "--to", "3", *ARGS, str(cut), PROTOCOL, db=db_cut,
                             database=demo_corpus)
    assert resumed.returncode == 0, resumed.stderr

    def steps(db: Path) -> list[dict]:
        store = open_store(db, readonly=True)
        (run,) = store.runs(kind="train")
        return store.steps(run["id"])

    a, b = steps(db_whole), steps(db_cut)
    assert [s["step"] for s in a] == [s["step"] for s in b] == list(range(1, 16))
    assert [(s["loss"], s["lr"], s["margin"]) for s in a] == [(s["loss"], s["lr"], s["margin"]) for s in b]
    # the recorded margin and learning rate are the schedules' (row of step n: the n-th step, 0-based n - 1)
    cfg = load_config(whole / "config.yml")
    assert [s["margin"] for s in a] == pytest.approx([margin_at(cfg.task, s["step"] - 1, 5) for s in a])
    assert [s["margin"] for s in a][:6] == [0.0] * 6 and a[-1]["margin"] == pytest.approx(0.2)
    assert 0.0 < a[7]["margin"] < 0.2
    assert [s["lr"] for s in a] == pytest.approx([learning_rate(cfg.scheduler, s["step"] - 1, 5, 3) for s in a])
    one, two = load_checkpoint(weights(whole, "0003.pt")), load_checkpoint(weights(cut, "0003.pt"))
    for part in ("model", "loss"):
        assert one[part].keys() == two[part].keys()
        assert all(torch.equal(one[part][k], two[part][k]) for k in one[part])
    assert one["config"]["architecture"]["name"].endswith(network)
    # speed-perturbed classes: 8 demo training speakers x 3 factors, in the checkpoint's vocabulary
    speakers = one["speakers"]
    plain = [s for s in speakers if not s.startswith("sp")]
    assert speakers == plain + [f"sp0.9-{s}" for s in plain] + [f"sp1.1-{s}" for s in plain]
    assert one["loss"]["weight"].shape[0] == len(speakers) == 3 * len(plain)


@pytest.mark.slow
def test_fork_starts_from_the_parents_weights_and_records_its_lineage(tmp_path: Path, demo_corpus: Path) -> None:
    db = tmp_path / "runs.db"
    parent = make_exp(tmp_path, "parent", TINY_CONFIG)
    # through engine.cli.main in this process: the recipe's end-to-end test forks as a process
    done = run_in_process("train", "--to", "1", *ARGS, str(parent), PROTOCOL, db=db, database=demo_corpus)
    assert done.returncode == 0, done.stderr
    source = weights(parent, "0001.pt")

    # large-margin fine-tuning: its own config (margin, chunk duration, learning rate), same network; its
    # 6 s chunks leave out the speakers with no region that long: the classifier keeps the others' rows
    child = make_exp(tmp_path, "child", TINY_CONFIG.replace("margin: 0.05", "margin: 0.3")
                     .replace("duration: 1.0", "duration: 6.0").replace("learning_rate: 0.01", "learning_rate: 0.001"))
    done = run_in_process("train", "--init-from", str(source), "--init-classifier", "--to", "1", *ARGS, str(child),
                          PROTOCOL, db=db, database=demo_corpus)
    assert done.returncode == 0, done.stderr
    start, theirs = load_checkpoint(weights(child, "0000.pt")), load_checkpoint(source)
    assert all(torch.equal(start["model"][k], theirs["model"][k]) for k in theirs["model"])
    kept = start["speakers"]
    assert 0 < len(kept) < len(theirs["speakers"]) and set(kept) < set(theirs["speakers"])
    rows = [theirs["speakers"].index(s) for s in kept]
    assert torch.equal(start["loss"]["weight"], theirs["loss"]["weight"][rows])
    assert (f"train: --init-classifier: the classifier keeps {len(kept)} of its {len(theirs['speakers'])} "
            "speakers' rows (") in done.stderr
    assert start["config"]["task"]["params"]["margin"] == 0.3
    store = open_store(db, readonly=True)
    runs = {r["name"]: r for r in store.runs(kind="train")}
    assert runs["child"]["init_from"] == str(source.resolve())
    assert (runs["child"]["init_epoch"], runs["child"]["init_run_id"]) == (1, runs["parent"]["id"])
    # the fork's lineage holds the hash of the file it read, which is the one its row recorded
    assert runs["child"]["init_sha256"] == file_sha256(source)
    rows = store.checkpoints(runs["parent"]["id"])
    assert rows and all(r["sha256"] == file_sha256(r["path"]) for r in rows)
    assert runs["parent"]["init_from"] is None and runs["child"]["status"] == "completed"

    # without --init-classifier a fresh classifier; the network still the parent's
    fresh = make_exp(tmp_path, "fresh", TINY_CONFIG)
    done = run_in_process("train", "--init-from", str(source), "--to", "1", *ARGS, str(fresh), PROTOCOL, db=db,
                          database=demo_corpus)
    assert done.returncode == 0, done.stderr
    start = load_checkpoint(weights(fresh, "0000.pt"))
    assert all(torch.equal(start["model"][k], theirs["model"][k]) for k in theirs["model"])
    assert not torch.equal(start["loss"]["weight"], theirs["loss"]["weight"])


def test_a_fork_that_cannot_use_the_checkpoint_is_one_clear_error(tmp_path: Path, demo_corpus: Path) -> None:
    db = tmp_path / "runs.db"
    parent = make_exp(tmp_path, "parent", TINY_CONFIG.replace("per_epoch: 0.0002", "per_epoch: 0.0001"))
    assert run_in_process("train", "--to", "1", *ARGS, str(parent), PROTOCOL, db=db,
                          database=demo_corpus).returncode == 0
    source = str(weights(parent, "0001.pt"))
    cases = [  # (config, extra options, words of the message)
        (RECIPE, ["--init-classifier"], ["--init-classifier", "classes", "drop --init-classifier"]),
        (TINY_CONFIG.replace("embedding_dim: 32", "embedding_dim: 16"), [],
         ["architecture.params.tdnn.embedding_dim", "32", "16", "same architecture"]),
    ]
    for i, (text, extra, words) in enumerate(cases):
        exp = make_exp(tmp_path, f"bad{i}", text)
        done = run_in_process("train", "--init-from", source, *extra, "--to", "1", *ARGS, str(exp), PROTOCOL,
                              db=db, database=demo_corpus)
        # the classes are known once the data is indexed: its progress lines come first
        errors = [line for line in done.stderr.splitlines() if "error:" in line]
        assert done.returncode == 2 and len(errors) == 1 and done.stderr.strip().endswith(errors[0]), done.stderr
        assert "Traceback" not in done.stderr and all(w in errors[0] for w in words), done.stderr
        assert not (exp / "train" / f"{PROTOCOL}.train" / "weights").exists()
    missing = run_in_process("train", "--init-from", str(tmp_path / "nope.pt"), "--to", "1", *ARGS,
                             str(make_exp(tmp_path, "m", TINY_CONFIG)), PROTOCOL, db=db, database=demo_corpus)
    assert missing.returncode == 2 and "nope.pt does not exist" in missing.stderr
    alone = run_in_process("train", "--init-classifier", "--to", "1", *ARGS,
                           str(make_exp(tmp_path, "a", TINY_CONFIG)), PROTOCOL, db=db, database=demo_corpus)
    assert alone.returncode == 2 and "--init-classifier needs --init-from" in alone.stderr
    # a run is recorded from its start (indexing): the one refused after indexing is `failed`, with the line
    assert sorted((r["name"], r["status"]) for r in train_runs(db)) == [("bad0", "failed"), ("parent", "completed")]
