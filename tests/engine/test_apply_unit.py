"""``apply`` in this process: ``cmd_apply`` on a three-file corpus written here with soundfile.

The end-to-end tests (test_apply.py) run ``python -m engine apply``; these call ``cmd_apply`` directly
with the tiny network's 1-second window, and read back the real ``.npy`` files and SQLite rows.
Window and hop are whole numbers of samples, so every row's timing is known exactly.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from engine.errors import AudioError, CheckpointError, SpkembError
from engine.extraction.apply import cmd_apply
from engine.inference.network import load_network
from engine.layout import ValidationDir
from engine.process.checkpoints import file_sha256, load_checkpoint, save_checkpoint
from engine.process.lifecycle import open_run
from engine.records import Checkpoint
from engine.requests import ApplyRequest, TrainRequest, ValidateRequest
from engine.store import open_store
from tests import children
from tests.engine.data_corpus import RATE
from tests.engine.test_apply import write_model_dir

PROTOCOL = "Small.SpeakerVerification.Voices"
WINDOW = RATE                  # the checkpoint's task duration: 1 s
STEP = 0.5                     # --step: a hop of 0.5 s
HOP = int(round(STEP * WINDOW))
#: seconds of each file: one of four windows, one exactly a window long, one shorter (the whole file
#: is its one window); nested uris, so the embeddings are nested folders too
SECONDS = {"alice/one": 2.5, "bob/two": 1.0, "carol/three": 0.6}
URIS = sorted(SECONDS)


def make_small_corpus(root: Path) -> Path:
    """Noise bursts of changing loudness (windows differ), with the lists of a verification protocol."""
    rng = np.random.default_rng(0)
    (root / "lists").mkdir(parents=True)
    for uri, seconds in SECONDS.items():
        n = int(seconds * RATE)
        envelope = np.repeat(rng.uniform(0.01, 0.5, size=n // 800 + 1), 800)[:n]
        (root / "wav" / uri).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / "wav" / f"{uri}.wav", (rng.normal(size=n) * envelope).astype(np.float32), RATE,
                 subtype="FLOAT")
    (root / "lists" / "test.lst").write_text("".join(f"{u}\n" for u in URIS))
    (root / "lists" / "test.rttm").write_text("".join(
        f"SPEAKER {u} 1 0.000 {SECONDS[u]:.3f} <NA> <NA> {u.split('/')[0]} <NA> <NA>\n" for u in URIS))
    (root / "lists" / "test.uem").write_text("".join(f"{u} 1 0.000 {SECONDS[u]:.3f}\n" for u in URIS))
    database = root / "database.yml"
    database.write_text(yaml.safe_dump({
        "Databases": {"Small": "wav/{uri}.wav"},
        "Protocols": {"Small": {"SpeakerVerification": {"Voices": {"scope": "database", "test": {
            "uri": "lists/test.lst", "annotation": "lists/test.rttm", "annotated": "lists/test.uem"}}}}}}))
    return database


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small corpus's database.yml (read only: a test that changes a file writes its own)."""
    return make_small_corpus(tmp_path_factory.mktemp("small-corpus"))


@pytest.fixture
def val_dir(tmp_path: Path) -> Path:
    """VAL_DIR whose params.yml names epoch 7, a checkpoint of the tiny network with a 1 s window."""
    return write_model_dir(tmp_path, duration=WINDOW / RATE)


def request(val: Path, db: Path, corpus: Path, **options: object) -> ApplyRequest:
    fixed: dict = dict(val_dir=str(val), protocol=PROTOCOL, subset="test", step=STEP, device="cpu",
                       batch=8, db=str(db), database=str(corpus))
    return ApplyRequest(**{**fixed, **{k: str(v) if isinstance(v, Path) else v for k, v in options.items()}})


def tree(root: Path) -> dict[Path, bytes]:
    return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def apply_runs(db: Path) -> list[dict]:
    if not db.exists():
        return []
    with open_store(db, readonly=True) as store:
        return [{**run, "extractions": store.extractions(run["id"])} for run in store.runs(kind="apply")]


def test_cmd_apply_writes_one_embedding_file_per_protocol_file_and_records_the_run(
        val_dir: Path, db_path: Path, corpus: Path) -> None:
    validation = ValidationDir(val_dir)
    # the validate run whose params.yml apply follows: the apply run hangs off it
    validate = open_run("validate", validation, ValidateRequest(trn_dir=str(validation.training.root),
                                                                protocol=PROTOCOL, db=str(db_path)),
                        device="cpu", target_epoch=7)
    validate.finish("completed")

    assert cmd_apply(request(val_dir, db_path, corpus)) == 0
    out = val_dir / "apply" / "7-step0.5"  # a step other than the default is named in the folder
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted(
        [f"{u}.npy" for u in URIS] + ["metadata.yml"])
    checkpoint = validation.training.checkpoint(7)
    metadata = yaml.safe_load((out / "metadata.yml").read_text())
    assert metadata == {"start": 0.0, "duration": 1.0, "step": HOP / RATE, "dimension": 32, "epoch": 7,
                        "checkpoint": str(checkpoint.resolve()), "checkpoint_sha256": file_sha256(checkpoint),
                        "mode": "exact", "sample_rate": RATE, "protocol": PROTOCOL, "subset": "test",
                        "subsets": [{"protocol": PROTOCOL, "subset": "test"}],
                        "audio": {uri: str(corpus.parent / "wav" / f"{uri}.wav") for uri in URIS}}

    # window i covers [i hop, i hop + window]: as many as fit in the file, each the network's
    # embedding of exactly those samples; a file shorter than a window is one row, the whole file's
    model = load_network(checkpoint).model
    for uri in URIS:
        samples = sf.read(corpus.parent / "wav" / f"{uri}.wav", dtype="float32")[0]
        rows = np.load(out / f"{uri}.npy")
        windows = 1 if len(samples) <= WINDOW else (len(samples) - WINDOW) // HOP + 1
        assert rows.shape == (windows, 32) and rows.dtype == np.float32, uri
        last = (windows - 1) * HOP
        assert last + WINDOW <= max(len(samples), WINDOW) < last + HOP + WINDOW, uri
        with torch.no_grad():
            for i in sorted({0, windows - 1}):
                crop = torch.from_numpy(samples[i * HOP:i * HOP + WINDOW])[None]
                assert np.allclose(rows[i], model(crop)[0].numpy(), atol=1e-4), (uri, i)
    assert [len(np.load(out / f"{uri}.npy")) for uri in URIS] == [4, 1, 1]  # 2.5 s: at 0, 0.5, 1 and 1.5 s
    assert not np.allclose(np.load(out / "alice" / "one.npy")[0], np.load(out / "alice" / "one.npy")[1])

    (run,) = apply_runs(db_path)
    assert run["status"] == "completed" and run["target_epoch"] == 7 and run["out_dir"] == str(out)
    assert run["parent_id"] == validate.run_id
    (extraction,) = run["extractions"]
    expected = {
        "epoch": 7, "checkpoint_name": None, "protocol": PROTOCOL, "subset": "test", "out_dir": str(out.absolute()),
        "mode": "exact", "step": HOP / RATE, "duration": 1.0, "files": len(URIS),
        "checkpoint": str(checkpoint.resolve()), "checkpoint_sha256": file_sha256(checkpoint),
        "validate_run_id": validate.run_id, "chosen_by": "params.yml"}
    assert {k: extraction[k] for k in expected} == expected and extraction["wall_seconds"] > 0
    assert extraction["audio_seconds"] == pytest.approx(sum(SECONDS.values()))


def test_the_same_settings_replace_the_files_and_other_settings_are_refused(
        val_dir: Path, db_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = val_dir / "apply" / "7-step0.5"
    assert cmd_apply(request(val_dir, db_path, corpus)) == 0
    first = np.load(out / "alice" / "one.npy")
    inode = (out / "alice" / "one.npy").stat().st_ino
    # a killed apply's half-written files, beside a nested uri's embeddings too: the next apply sweeps them
    left = [out / "alice" / f".tmp-{children.dead_pid()}-one.npy", out / f".tmp-{children.dead_pid()}-x.npy"]
    for path in left:
        path.write_bytes(b"half")
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    capsys.readouterr()
    assert cmd_apply(request(val_dir, db_path, corpus)) == 0
    assert not any(path.exists() for path in left)
    assert f"apply: replacing the extraction in {out} (same checkpoint, mode and step)" in capsys.readouterr().err
    again = out / "alice" / "one.npy"
    assert again.stat().st_ino != inode and np.allclose(np.load(again), first)
    runs = apply_runs(db_path)
    assert [r["status"] for r in runs] == ["completed", "completed"]
    assert [e["out_dir"] for r in runs for e in r["extractions"]] == [str(out.absolute())] * 2

    # a folder whose metadata.yml says other settings (made before folders were named from them)
    old = val_dir / "apply" / "7"
    old.mkdir()
    (old / "metadata.yml").write_text(yaml.safe_dump({"epoch": 7, "mode": "shared", "step": 0.1, "duration": 1.0}))
    np.save(old / "bob.npy", np.ones((2, 32), np.float32))
    kept = tree(val_dir)
    with pytest.raises(SpkembError) as refused:
        cmd_apply(request(val_dir, db_path, corpus, step=0.1))
    message = str(refused.value)
    assert "\n" not in message and f"{old} holds an extraction with other settings" in message
    assert "(mode shared; this one: mode exact)" in message
    assert "is never overwritten: move that folder aside" in message
    # refused before any work: nothing written, no run recorded
    assert tree(val_dir) == kept and len(apply_runs(db_path)) == 2


def test_bad_requests_are_refused_in_one_line_before_anything_is_written(
        val_dir: Path, db_path: Path, corpus: Path) -> None:
    kept = tree(val_dir)
    cases: list[tuple[dict, str]] = [
        (dict(val_dir=val_dir / "nowhere"), "is not a directory: pass the VAL_DIR that `spkemb-engine validate`"),
        (dict(step=0.0), "--step 0.0: the window step is a fraction of the window duration, at least 0.001"),
        (dict(step=1e-9), "--step 1e-09: the window step is a fraction of the window duration, at least 0.001"),
        (dict(model=str(val_dir / "net.onnx")), "--model is an exported network for --runtime onnxruntime"),
        (dict(epoch=8), "0008.pt"),
        (dict(diarize=True, collar=-1.0), "--collar -1.0: a collar is a duration from 0 to 10 seconds"),
        # a collar of inf forgave every error: DER 0.00 %, recorded, exit 0
        (dict(diarize=True, collar=math.inf), "--collar inf: a collar is a duration from 0 to 10 seconds"),
    ]
    for options, words in cases:
        with pytest.raises(SpkembError) as refused:
            cmd_apply(request(val_dir, db_path, corpus, **options))
        assert words in str(refused.value) and "\n" not in str(refused.value), options
        assert tree(val_dir) == kept and not db_path.exists(), options

    ValidationDir(val_dir).params.unlink()
    with pytest.raises(SpkembError, match="params.yml does not exist: validate first .* or pass --epoch"):
        cmd_apply(request(val_dir, db_path, corpus))
    assert not (val_dir / "apply").exists() and not db_path.exists()


def test_a_diarization_check_that_cannot_be_made_is_refused_before_the_network_is_read(
        val_dir: Path, db_path: Path, corpus: Path) -> None:
    # a damaged checkpoint would be the first thing said if the network were read before the check
    ValidationDir(val_dir).training.checkpoint(7).write_bytes(b"not a checkpoint")
    with pytest.raises(SpkembError) as refused:
        cmd_apply(request(val_dir, db_path, corpus, diarize=True, collar=20.0))
    assert "--collar 20.0: a collar is a duration from 0 to 10 seconds" in str(refused.value)
    with pytest.raises(SpkembError) as refused:  # the small corpus's protocol has no speaker turns to score
        cmd_apply(request(val_dir, db_path, corpus, diarize=True))
    assert "is a speaker verification protocol, not a diarization protocol" in str(refused.value)
    with pytest.raises(CheckpointError):  # the same request without the check reaches the checkpoint
        cmd_apply(request(val_dir, db_path, corpus))


def test_averaged_weights_chosen_by_epoch_are_named_by_their_name_on_the_shared_path(
        val_dir: Path, db_path: Path, corpus: Path) -> None:
    """``--epoch avg-top5`` without params.yml: recorded by name, with the last epoch it averages."""
    training = ValidationDir(val_dir).training
    ValidationDir(val_dir).params.unlink()
    shutil.copy(training.checkpoint(7), training.checkpoint("avg-top5"))
    assert cmd_apply(request(val_dir, db_path, corpus, epoch="avg-top5", shared=True)) == 0
    out = val_dir / "apply" / "avg-top5-shared-step0.5"
    metadata = yaml.safe_load((out / "metadata.yml").read_text())
    assert (metadata["epoch"], metadata["mode"]) == ("avg-top5", "shared")
    assert {p.name for p in out.rglob("*.npy")} == {"one.npy", "two.npy", "three.npy"}
    assert np.load(out / "alice" / "one.npy").shape == (4, 32)
    (run,) = apply_runs(db_path)
    (extraction,) = run["extractions"]
    assert (extraction["epoch"], extraction["checkpoint_name"], extraction["mode"], extraction["chosen_by"]) == (
        7, "avg-top5", "shared", "--epoch")
    assert run["target_epoch"] == 7 and run["parent_id"] is None



def test_averaged_weights_made_again_are_other_weights_for_the_folder(
        val_dir: Path, db_path: Path, corpus: Path) -> None:
    """`average` run again replaces avg-top5.pt: its folder's embeddings were of two networks, and its
    metadata.yml named the new weights' sha256 for all of them."""
    training = ValidationDir(val_dir).training
    ValidationDir(val_dir).params.unlink()
    shutil.copy(training.checkpoint(7), training.checkpoint("avg-top5"))
    assert cmd_apply(request(val_dir, db_path, corpus, epoch="avg-top5")) == 0
    payload = load_checkpoint(training.checkpoint("avg-top5"))
    weights = {k: v + 0.01 if v.is_floating_point() else v for k, v in payload["model"].items()}
    save_checkpoint(training.checkpoint("avg-top5"), {**payload, "model": weights})
    kept = tree(val_dir / "apply")
    with pytest.raises(SpkembError) as refused:
        cmd_apply(request(val_dir, db_path, corpus, epoch="avg-top5"))
    assert "holds the embeddings of other weights named avg-top5" in str(refused.value)
    assert "\n" not in str(refused.value) and tree(val_dir / "apply") == kept


def test_a_subset_is_listed_in_the_metadata_once_its_files_are_written(
        val_dir: Path, db_path: Path, tmp_path: Path) -> None:
    database = make_small_corpus(tmp_path / "corpus")
    wav = tmp_path / "corpus" / "wav" / "carol" / "three.wav"
    samples, rate = sf.read(wav, dtype="float32")
    samples[100] = np.nan
    sf.write(wav, samples, rate, subtype="FLOAT")
    with pytest.raises(SpkembError):
        cmd_apply(request(val_dir, db_path, database))
    metadata = yaml.safe_load((val_dir / "apply" / "7-step0.5" / "metadata.yml").read_text())
    assert metadata["subsets"] == [] and metadata["epoch"] == 7

def test_an_unreadable_audio_file_fails_the_run_before_any_embedding(
        val_dir: Path, db_path: Path, tmp_path: Path) -> None:
    database = make_small_corpus(tmp_path / "corpus")
    (tmp_path / "corpus" / "wav" / "bob" / "two.wav").write_bytes(b"not a wav file")
    with pytest.raises(AudioError) as refused:
        cmd_apply(request(val_dir, db_path, database))
    message = str(refused.value)
    assert message.startswith(f"1 file(s) of {PROTOCOL} test cannot be used; first: ") and "\n" not in message
    assert refused.value.path is not None and refused.value.path.endswith("two.wav")
    assert not (val_dir / "apply" / "7-step0.5").exists()
    (run,) = apply_runs(db_path)
    assert run["status"] == "failed" and run["reason"] == message and run["extractions"] == []
    with open_store(db_path, readonly=True) as store:
        (problem,) = store.problems(run["id"])
    assert problem["fatal"] and problem["path"].endswith("two.wav")


def test_a_checkpoint_changed_since_its_row_is_refused_unless_trusted(
        val_dir: Path, db_path: Path, corpus: Path) -> None:
    """A checkpoint a training run recorded, then rewritten: apply uses it only with --trust-checkpoint."""
    training = ValidationDir(val_dir).training
    checkpoint = training.checkpoint(7)
    trainer = open_run("train", training, TrainRequest(exp_dir=str(training.experiment.root), protocol=PROTOCOL,
                                                       db=str(db_path)), device="cpu", target_epoch=7)
    trainer.checkpoint(Checkpoint(epoch=7, step=70, path=checkpoint, partial=False, sha256=file_sha256(checkpoint)))
    trainer.finish("completed")
    payload = load_checkpoint(checkpoint)
    save_checkpoint(checkpoint, {**payload, "step": 71})
    with pytest.raises(CheckpointError) as refused:
        cmd_apply(request(val_dir, db_path, corpus))
    assert "\n" not in str(refused.value)
    assert f"checkpoint {checkpoint} changed since it was recorded" in str(refused.value)
    assert not (val_dir / "apply").exists() and apply_runs(db_path) == []
    assert cmd_apply(request(val_dir, db_path, corpus, trust_checkpoint=True)) == 0
    assert apply_runs(db_path)[0]["status"] == "completed"


def test_progress_inside_a_file_follows_the_audio_embedded_and_changes_no_embedding(val_dir: Path,
                                                                                    tmp_path: Path) -> None:
    """A long file said nothing between its start and its end (an AMI meeting: minutes of CPU)."""
    from engine.extraction.apply import ReadReach
    from engine.inference.windows import FileSignal, embed, embed_shared, window_starts

    wav = tmp_path / "meeting.wav"
    sf.write(wav, np.random.default_rng(1).normal(scale=0.1, size=12 * RATE).astype(np.float32), RATE)
    model = load_network(ValidationDir(val_dir).training.checkpoint(7), torch.device("cpu")).model
    signal = FileSignal(str(wav), RATE)
    starts = window_starts(signal.n_samples, WINDOW, HOP)   # 23 windows
    runs = {"exact": lambda s: embed(model, s, starts, WINDOW, mode="exact", batch=4),
            "shared": lambda s: embed_shared(model, s, starts, WINDOW, batch=4, block_seconds=3.0)}
    for mode, run in runs.items():
        reached: list[int] = []
        rows = run(ReadReach(signal, reached.append))
        assert np.array_equal(rows, run(signal)), mode
        # each read says how far the audio before it reaches: in order, inside the file, several times
        assert reached == sorted(reached) and reached[-1] < signal.n_samples, mode
        assert len(set(reached) - {0}) >= 3, (mode, reached)


def test_the_same_audio_reached_otherwise_is_no_other_audio(tmp_path: Path) -> None:
    """The refusal of a uri embedded from other audio compared path strings: a symbolic link, `..`, or a
    corpus moved (database.yml following it) were refused as other audio."""
    from engine.extraction.folder_checks import other_audio
    from engine.layout import ExtractionDir

    corpus, other = tmp_path / "corpus", tmp_path / "other"
    corpus.mkdir()
    other.mkdir()
    (corpus / "m.wav").write_bytes(b"a")
    (other / "m.wav").write_bytes(b"b")
    (tmp_path / "link").symlink_to(corpus)
    extraction = ExtractionDir(tmp_path / "apply" / "3")
    extraction.root.mkdir(parents=True)
    np.save(extraction.embeddings("m"), np.zeros((1, 2), np.float32))
    for recorded, now, refused in ((tmp_path / "link" / "m.wav", corpus / "m.wav", False),
                                   (corpus / ".." / "corpus" / "m.wav", corpus / "m.wav", False),
                                   (tmp_path / "moved-away" / "m.wav", corpus / "m.wav", False),
                                   (other / "m.wav", corpus / "m.wav", True)):
        extraction.metadata.write_text(yaml.safe_dump({"audio": {"m": str(recorded)}}))
        files = [{"uri": "m", "audio": str(now)}]
        if refused:
            with pytest.raises(SpkembError, match="holds m.npy embedded from .*other/m.wav, and P names m with other "
                                                  "audio"):
                other_audio(extraction, files, "P")
        else:
            other_audio(extraction, files, "P")
