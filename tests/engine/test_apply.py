"""Extraction: exact = plain, shared = exact without per-window normalisation, apply's files."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from engine.inference.network import inference_model
from engine.inference.windows import ArraySignal, embed_exact, embed_plain, embed_shared, snap_starts, window_starts
from engine.layout import TrainingDir, ValidationDir
from engine.model import SincTDNN
from engine.records import ValidationResult
from engine.store import open_store
from tests import children
from tests.conftest import TINY_CONFIG
from tests.engine.engine_runner import run_engine, run_in_process

SR = 16000


def network(normalize: bool, seed: int = 0) -> torch.nn.Module:
    """The tutorial's SincTDNN shape (stride 5, 1, 1), narrow TDNN, non-trivial norm parameters."""
    torch.manual_seed(seed)
    model = SincTDNN(stride=(5, 1, 1), waveform_normalize=normalize, instance_normalize=normalize,
                     embedding_dim=24, hidden_dim=48)
    for module in model.modules():
        if isinstance(module, torch.nn.InstanceNorm1d):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.3, 0.3)
    return inference_model(model)


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise bursts of changing loudness with a DC offset: windows differ in mean and variance."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    envelope = np.repeat(rng.uniform(0.01, 0.5, size=n // 800 + 1), 800)[:n]
    return (rng.normal(size=n) * envelope + 0.02).astype(np.float32)


@pytest.mark.parametrize("hop", [1600, 1603])  # 0.1 s, and a hop that is no multiple of the stride
def test_exact_equals_plain_per_window(hop: int):
    model = network(normalize=True)
    # 20 or 21 windows: several batches of each path (7 and 16 windows)
    signal = ArraySignal(speechlike(3.0))
    starts = window_starts(signal.n_samples, SR, hop)
    plain = embed_plain(model, signal, starts, SR, batch=16)
    exact = embed_exact(model, signal, starts, SR, batch=7)
    assert plain.shape == exact.shape == (len(starts), 24)
    assert np.abs(exact - plain).max() <= 1e-4
    assert np.abs(plain).max() > 1e-2  # not trivially equal


def test_shared_equals_exact_without_per_window_normalisation():
    model = network(normalize=False, seed=1)
    signal = ArraySignal(speechlike(7.3, seed=1))
    starts = window_starts(signal.n_samples, SR, 1600)
    snapped = snap_starts(model, signal.n_samples, starts, SR) * model.frame_step
    exact = embed_exact(model, signal, snapped, SR)
    # blocks of 2 s: the frames of most windows come from two blocks
    shared = embed_shared(model, signal, starts, SR, batch=5, block_seconds=2.0)
    assert np.abs(shared - exact).max() <= 1e-4
    # snapping moves a window by at most half a frame
    assert np.abs(snapped - starts).max() <= model.frame_step // 2 + 1


def test_shared_approximates_the_normalising_network():
    model = network(normalize=True)
    signal = ArraySignal(speechlike(6.0))
    starts = window_starts(signal.n_samples, SR, 1600)
    exact = embed_exact(model, signal, starts, SR)
    shared = embed_shared(model, signal, starts, SR)
    cosine = (exact * shared).sum(1) / np.linalg.norm(exact, axis=1) / np.linalg.norm(shared, axis=1)
    assert shared.shape == exact.shape
    assert cosine.min() > 0.5


def test_a_file_shorter_than_a_window_is_one_window():
    model = network(normalize=True)
    x = speechlike(0.6)
    for embed in (embed_plain, embed_exact, embed_shared):
        rows = embed(model, ArraySignal(x), window_starts(len(x), SR, 1600), SR)
        assert rows.shape == (1, 24)
        assert np.allclose(rows, embed_plain(model, ArraySignal(x), np.zeros(1, np.int64), SR), atol=1e-5)
    tiny = embed_exact(model, ArraySignal(x[:500]), np.zeros(1, np.int64), SR)  # tiled up to min_samples
    assert np.isfinite(tiny).all()


def write_model_dir(tmp_path: Path, duration: float) -> Path:
    """A TRN_DIR with one checkpoint and its VAL_DIR with params.yml; returns VAL_DIR."""
    from engine.config import config_to_dict, parse_config
    from engine.model import build_model
    from engine.process.checkpoints import save_checkpoint
    from engine.validation.params import write_params

    config = parse_config(TINY_CONFIG.replace("duration: 1.0", f"duration: {duration}"), "tiny")
    trn_dir = tmp_path / "exp" / "train" / "Demo.SpeakerVerification.Voices.train"
    torch.manual_seed(0)
    save_checkpoint(TrainingDir(trn_dir).checkpoint(7), {"model": build_model(config).state_dict(),
                                             "config": config_to_dict(config), "epoch": 7, "step": 70})
    val_dir = trn_dir / "validate_equal_error_rate" / "Demo.SpeakerVerification.Voices.test"
    write_params(ValidationDir(val_dir), ValidationResult(epoch=7, eer=0.2))
    return val_dir


@pytest.mark.slow
def test_apply_short_files_and_shared_mode(tmp_path: Path, demo_corpus: Path, db_path: Path):
    from engine.data.protocols import load_protocol

    val_dir = write_model_dir(tmp_path, duration=4.0)  # longer than half of the utterances
    done = run_engine("apply", "--shared", "--subset", "development", str(val_dir),
                      "Demo.SpeakerVerification.Voices", database=demo_corpus)
    assert done.returncode == 0, done.stderr
    out = val_dir / "apply" / "7-shared"
    assert yaml.safe_load((out / "metadata.yml").read_text())["mode"] == "shared"
    window, hop = 4 * SR, int(0.1 * 4 * SR)
    short = 0
    for f in load_protocol("Demo.SpeakerVerification.Voices", demo_corpus).development():
        frames = sf.info(f["audio"]).frames
        rows = np.load(out / f"{f['uri']}.npy")  # nested uris: speaker/video/utterance.npy
        expected = 1 if frames <= window else (frames - window) // hop + 1
        assert rows.shape == (expected, 32), f["uri"]
        short += frames <= window
    assert short > 0


@pytest.mark.slow
def test_a_checkpoint_giving_nan_embeddings_writes_no_file_and_fails(tmp_path: Path, demo_corpus: Path,
                                                                    db_path: Path) -> None:
    """Finite weights that embed to NaN (a negative batch-norm variance) filled every .npy with NaN, and
    apply said `completed`; validate, verify and embed refuse the same checkpoint."""
    from engine.config import config_to_dict, parse_config
    from engine.model import build_model
    from engine.process.checkpoints import save_checkpoint
    from engine.validation.params import write_params

    config = parse_config(TINY_CONFIG.replace("batch_normalize: False", "batch_normalize: True"), "tiny")
    trn = TrainingDir(tmp_path / "exp" / "train" / "Demo.SpeakerVerification.Voices.train")
    state = build_model(config).state_dict()
    (var,) = [k for k in state if k.endswith("running_var")]
    state[var] = -torch.ones_like(state[var])
    save_checkpoint(trn.checkpoint(1), {"model": state, "config": config_to_dict(config), "epoch": 1})
    val = trn.validation("Demo.SpeakerVerification.Voices", "test")
    write_params(val, ValidationResult(epoch=1, eer=0.2))
    done = run_in_process("apply", str(val.root), MEETINGS, db=db_path, database=demo_corpus)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "embed to values that are not finite (NaN or infinite), which no file may hold" in done.stderr
    assert "nothing of this file was written (the files before it are kept)" in done.stderr
    assert not list((val.root / "apply").rglob("*.npy"))
    with open_store(db_path, readonly=True) as store:
        (run,) = store.find_runs(kind="apply")
    assert run["status"] == "failed" and "not finite" in run["reason"]


def test_apply_without_params_names_the_fix(tmp_path: Path, demo_corpus: Path, db_path: Path):
    val_dir = tmp_path / "val"
    val_dir.mkdir()
    done = run_in_process("apply", str(val_dir), "Demo.SpeakerDiarization.Meetings", database=demo_corpus)
    assert done.returncode == 2
    assert "params.yml does not exist: validate first" in done.stderr


MEETINGS = "Demo.SpeakerDiarization.Meetings"


@pytest.mark.slow
def test_each_path_of_one_epoch_is_its_own_extraction_and_the_same_settings_replace(
        tmp_path: Path, demo_corpus: Path, db_path: Path):
    """Apply's one slow end-to-end test: one row per window and the metadata of each path (exact,
    shared, onnxruntime), each its own folder and extraction row; the same settings replace. The
    exact path runs as an engine process, the others through ``engine.cli.main`` here."""
    from engine import Precomputed
    from engine.data.protocols import load_protocol
    from engine.store import open_store

    val_dir = write_model_dir(tmp_path, duration=1.0)
    # the exact path at a step of 0.25 s: its every other window is one of the others' (0.5 s)
    steps = {"exact": 0.25, "shared": 0.5, "onnxruntime": 0.5}
    folders = {"exact": "7-step0.25", "shared": "7-shared-step0.5", "onnxruntime": "7-onnxruntime-step0.5"}
    options = {"exact": [], "shared": ["--shared"], "onnxruntime": ["--runtime", "onnxruntime"]}
    for mode in folders:
        run = run_engine if mode == "exact" else run_in_process
        done = run("apply", "--step", str(steps[mode]), "--batch", "16", *options[mode], str(val_dir),
                   MEETINGS, database=demo_corpus)
        assert done.returncode == 0, done.stderr
        assert "replacing" not in done.stderr
        if mode == "exact":
            assert "x real time (exact" in done.stderr

    files = list(load_protocol(MEETINGS, demo_corpus).test())
    uris = sorted(f"{f['uri']}.npy" for f in files)
    apply_root = val_dir / "apply"
    assert sorted(p.name for p in apply_root.iterdir() if p.is_dir()) == sorted(folders.values())
    for mode, folder in folders.items():
        metadata = yaml.safe_load((apply_root / folder / "metadata.yml").read_text())
        assert metadata["mode"] == mode and metadata["step"] == steps[mode] and metadata["epoch"] == 7
        assert metadata["duration"] == 1.0 and metadata["dimension"] == 32
        assert len(metadata["checkpoint_sha256"]) == 64
        assert sorted(p.name for p in (apply_root / folder).glob("*.npy")) == uris
        # read back as pyannote features from whichever folder: one row per window, the last
        # window ending inside the file, one more would not
        precomputed, hop = Precomputed(apply_root / folder), int(steps[mode] * SR)
        for f in files:
            info = sf.info(f["audio"])
            rows = np.load(apply_root / folder / f"{f['uri']}.npy")
            assert rows.shape == ((info.frames - SR) // hop + 1, 32) and np.isfinite(rows).all()
            features = precomputed(f)
            assert features.sliding_window.step == steps[mode] and features.data.shape[1] == 32
            assert features.sliding_window[len(rows) - 1].end <= info.duration
            assert features.sliding_window[len(rows)].end > info.duration
    # the shared path of this normalising network differs from the exact one: each folder kept its own
    exact, shared = (np.load(apply_root / folders[m] / uris[0]) for m in ("exact", "shared"))
    assert exact[::2].shape == shared.shape and np.abs(exact[::2] - shared).max() > 1e-3

    audio = sum(sf.info(f["audio"]).duration for f in files)
    with open_store(db_path, readonly=True) as store:
        runs = store.find_runs(kind="apply")
        assert all(r["status"] == "completed" for r in runs)
        extractions = [e for r in runs for e in store.extractions(r["id"])]
        recorded = {e["mode"]: e["out_dir"] for e in extractions}
        assert recorded == {mode: str((apply_root / folder).absolute()) for mode, folder in folders.items()}
        assert all(e["files"] == len(files) and e["audio_seconds"] == pytest.approx(audio) for e in extractions)
        exact_run = next(r for r in runs if r["out_dir"] == str(apply_root / folders["exact"]))
        assert store.extractions(exact_run["id"])[0]["mode"] == "exact"

    # the same settings again (the shared path's, the quickest): the same folder, its files replaced
    # (new inodes), and said
    first = apply_root / folders["shared"] / uris[0]
    inode = first.stat().st_ino
    again = run_in_process("apply", "--step", "0.5", "--batch", "16", "--shared", str(val_dir), MEETINGS,
                           database=demo_corpus)
    assert again.returncode == 0, again.stderr
    assert f"apply: replacing the extraction in {apply_root / folders['shared']}" in again.stderr
    assert first.stat().st_ino != inode and np.allclose(np.load(first), shared, atol=1e-5)
    assert sorted(p.name for p in apply_root.iterdir() if p.is_dir()) == sorted(folders.values())
    with open_store(db_path, readonly=True) as store:
        runs = store.find_runs(kind="apply")
        rows = [e for r in runs for e in store.extractions(r["id"]) if e["mode"] == "shared"]
        assert len(runs) == 4 and len(rows) == 2 and len({e["run_id"] for e in rows}) == 2
        assert {e["out_dir"] for e in rows} == {str((apply_root / folders["shared"]).absolute())}


def test_apply_refuses_a_folder_that_holds_other_settings(tmp_path: Path, demo_corpus: Path, db_path: Path):
    """A folder made before folders were named from their settings (apply/7 holding a shared
    extraction) is never overwritten by an extraction with other settings."""
    val_dir = write_model_dir(tmp_path, duration=1.0)
    old = val_dir / "apply" / "7"
    old.mkdir(parents=True)
    metadata = yaml.safe_dump({"start": 0.0, "duration": 1.0, "step": 0.1, "epoch": 7, "mode": "shared"})
    (old / "metadata.yml").write_text(metadata)
    np.save(old / "ES2004a.npy", np.ones((3, 32), np.float32))
    done = run_in_process("apply", str(val_dir), MEETINGS, database=demo_corpus)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "holds an extraction with other settings (mode shared; this one: mode exact)" in done.stderr
    assert "move that folder aside" in done.stderr
    assert (old / "metadata.yml").read_text() == metadata
    assert np.array_equal(np.load(old / "ES2004a.npy"), np.ones((3, 32), np.float32))


@pytest.mark.slow
def test_a_full_disk_during_apply_is_one_line_and_leaves_no_half_written_embeddings(
        tmp_path: Path, demo_corpus: Path, db_path: Path):
    from engine.store import open_store
    from tests.engine.engine_runner import engine_env

    val_dir = write_model_dir(tmp_path, duration=1.0)
    # the second file's .npy finds the disk full after its first 4 kB (tests/engine/faults.py)
    env = {**engine_env(db_path, demo_corpus), "SPKEMB_FAULT_ENOSPC_AT": "2", "SPKEMB_FAULT_ENOSPC_SUFFIX": ".npy"}
    done = children.run([sys.executable, "-m", "tests.engine.faults", "apply", "--step", "0.25", str(val_dir),
                         "Demo.SpeakerDiarization.Meetings"], env=env, timeout=300)
    out = val_dir / "apply" / "7-step0.25"  # a step other than the default is named in the folder
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (error,) = [line for line in done.stderr.splitlines() if "error" in line]
    assert error.startswith(f"spkemb-engine apply: error: no space left on the device of {out} while writing ")
    # the first file's embeddings are whole; the second's neither half-written nor left as a temporary
    (written,) = sorted(out.rglob("*.npy"))
    assert np.load(written).shape[1] == 32
    assert not [p for p in out.rglob("*") if p.name.startswith(".tmp-")]
    (run,) = open_store(db_path, readonly=True).runs(kind="apply")
    assert run["status"] == "failed" and run["reason"].startswith("no space left")


def test_one_folder_records_every_subset_extracted_into_it(tmp_path: Path, demo_corpus: Path, db_path: Path):
    """apply --subset development, then --subset test, into one folder: metadata.yml names both
    (``subsets``), the latest in ``protocol`` and ``subset`` as before; a metadata.yml written before
    ``subsets`` counts its one subset."""
    from engine import Precomputed

    val_dir = write_model_dir(tmp_path, duration=1.0)
    out = val_dir / "apply" / "7-step0.5"
    out.mkdir(parents=True)
    (out / "metadata.yml").write_text(yaml.safe_dump({"start": 0.0, "duration": 1.0, "step": 0.5, "epoch": 7,
                                                      "mode": "exact", "protocol": MEETINGS,
                                                      "subset": "development"}))
    development, test = ({"protocol": MEETINGS, "subset": s} for s in ("development", "test"))
    for subset, recorded in (("test", [development, test]), ("development", [test, development])):
        done = run_in_process("apply", "--step", "0.5", "--batch", "16", "--subset", subset, str(val_dir),
                              MEETINGS, database=demo_corpus)
        assert done.returncode == 0, done.stderr
        metadata = yaml.safe_load((out / "metadata.yml").read_text())
        assert metadata["subsets"] == recorded
        assert (metadata["protocol"], metadata["subset"]) == (MEETINGS, subset)
    assert Precomputed(out).metadata["subsets"] == [test, development]


def test_a_protocol_naming_the_same_uris_with_other_audio_is_refused(tmp_path: Path, demo_corpus: Path,
                                                                     db_path: Path):
    """AMI's far-field array beside its headset mix: the same meeting names. The second apply into one
    folder replaced the first's embeddings, which the first's diarization check then scored as its own."""
    corpus = tmp_path / "corpus"
    shutil.copytree(demo_corpus.parent, corpus)
    for headset in corpus.glob("amicorpus/*/audio/*.Mix-Headset.wav"):  # other files (a hard link is the same)
        shutil.copy(headset, headset.with_name(headset.name.replace("Mix-Headset", "Array1-01")))
    database = corpus / "database.yml"
    spec = yaml.safe_load(database.read_text())
    spec["Databases"]["SDM"] = "amicorpus/{uri}/audio/{uri}.Array1-01.wav"
    spec["Protocols"]["SDM"] = {"SpeakerDiarization": spec["Protocols"]["Demo"]["SpeakerDiarization"]}
    database.write_text(yaml.safe_dump(spec))
    val_dir = write_model_dir(tmp_path, duration=1.0)
    done = run_in_process("apply", "--step", "0.5", str(val_dir), MEETINGS, database=database)
    assert done.returncode == 0, done.stderr
    out = val_dir / "apply" / "7-step0.5"
    audio = yaml.safe_load((out / "metadata.yml").read_text())["audio"]
    assert audio["ES2004a"] == str(corpus / "amicorpus" / "ES2004a" / "audio" / "ES2004a.Mix-Headset.wav")
    before = {p.name: p.read_bytes() for p in out.glob("*.npy")}
    done = run_in_process("apply", "--step", "0.5", str(val_dir), "SDM.SpeakerDiarization.Meetings",
                          database=database)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.splitlines()
    assert f"{out} holds ES2004a.npy embedded from {audio['ES2004a']}, and SDM.SpeakerDiarization.Meetings names " \
           "ES2004a with other audio (" in line and "Array1-01.wav): its embeddings would replace those" in line, line
    assert {p.name: p.read_bytes() for p in out.glob("*.npy")} == before


@pytest.mark.parametrize("text", [b"epoch: 7\nmode: \xff\n", pytest.param(b"[" * 100_000, id="nested-100000",
                                                                           marks=pytest.mark.slow)])
def test_apply_refuses_a_folder_whose_metadata_cannot_be_read(tmp_path: Path, demo_corpus: Path, db_path: Path,
                                                              text: bytes):
    """Not UTF-8, or nested deeper than PyYAML's stack: another extraction's folder, never overwritten."""
    val_dir = write_model_dir(tmp_path, duration=1.0)
    old = val_dir / "apply" / "7"
    old.mkdir(parents=True)
    (old / "metadata.yml").write_bytes(text)
    done = run_in_process("apply", str(val_dir), MEETINGS, database=demo_corpus)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"{old} holds an extraction with other settings" in done.stderr
    assert (old / "metadata.yml").read_bytes() == text
