"""``spkemb-engine embed``: recordings of one's own embedded as validate embeds a trial's files, into
one .npz that numpy reads without pickle or a Kaldi archive that kaldiio reads; what it cannot use is
one line before torch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.engine.engine_runner import run_engine, run_in_process
from tests.engine.test_verify import SR, lines, recording, validated


def load(path: Path) -> tuple[np.ndarray, list[str], dict]:
    with np.load(path, allow_pickle=False) as z:  # data, never code
        return z["embeddings"], [str(p) for p in z["paths"]], json.loads(str(z["metadata"]))


@pytest.mark.slow
def test_each_recording_is_a_row_whose_cosines_are_verify_s_scores(tmp_path: Path) -> None:
    from engine.inference.network import load_network
    from engine.validation.trial_scores import embed_files

    val = validated(tmp_path)
    # another rate and two channels (resampled, averaged), a recording shorter than a window, one
    # given twice, and a path with a space
    given = [recording(tmp_path / "a.wav", seed=1), recording(tmp_path / "other rate.flac", seed=2, rate=44100,
                                                                 channels=2)]
    listed = [recording(tmp_path / "short.wav", seed=3, seconds=0.3), given[0]]
    (tmp_path / "list.txt").write_text(f"# mine\n\n  {listed[0]}  \n{listed[1]}\r\n")
    out = tmp_path / "out" / "emb.npz"
    out.parent.mkdir()
    done = run_in_process("embed", "-o", str(out), "--list", str(tmp_path / "list.txt"), str(val.root), *given,
                          db=tmp_path / "runs.db")
    assert done.returncode == 0, done.stderr
    rows, paths, metadata = load(out)
    assert paths == [*given, *listed] and rows.shape == (4, 32) and rows.dtype == np.float32

    network = load_network(val.training.checkpoint(7))
    expected = embed_files(network.model, dict(enumerate(paths)), duration=1.0, sample_rate=SR, batch=64,
                           whole_file=False)
    np.testing.assert_allclose(rows, np.stack([expected[i] for i in range(4)]), rtol=1e-5, atol=1e-6)
    assert np.array_equal(rows[0], rows[3])  # the same recording twice: the same row
    verified = run_in_process("verify", str(val.root), *paths[:3], db=tmp_path / "runs.db")
    cosine = [float(r[2]) for r in lines(verified.stdout)]
    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    assert (unit[0] @ unit[1:3].T).tolist() == pytest.approx(cosine, abs=2e-6)

    assert metadata == {"format": "spkemb-embeddings/1", "val_dir": str(val.root.resolve()),
                        "checkpoint": str(val.training.checkpoint(7).resolve()),
                        "checkpoint_sha256": metadata["checkpoint_sha256"], "epoch": 7, "embedding": "window-mean",
                        "window": 1.0, "step": 0.25, "sample_rate": SR, "dimension": 32, "architecture": "SincTDNN",
                        "spkemb": metadata["spkemb"]}
    assert len(metadata["checkpoint_sha256"]) == 64
    said = done.stderr.strip().splitlines()
    assert said[0] == (f"embed: 4 recording(s) with epoch 7 of {val.root} (window-mean embeddings, as validate "
                       "embeds a trial's files)")
    assert f"embed: 1 recording(s) last under half of the network's 1 s window (the first: {listed[0]}, 0.30 s)" \
        in said[1]
    assert said[-1] == f"embed: 4 x 32 embeddings written to {out}"


@pytest.mark.slow
def test_a_validation_of_whole_files_is_followed_and_an_output_is_replaced_whole(tmp_path: Path) -> None:
    val = validated(tmp_path)
    long = [recording(tmp_path / f"{i}.wav", seed=i, seconds=4.0) for i in range(2)]
    out = tmp_path / "emb.npz"
    assert run_in_process("embed", "-o", str(out), str(val.root), *long).returncode == 0
    windows, _, first = load(out)
    val.method.write_text("embedding: whole-file\nhop: 0.25\n")
    assert run_in_process("embed", "-o", str(out), str(val.root), *long).returncode == 0
    whole, _, second = load(out)
    assert (first["embedding"], first["step"], second["embedding"], second["step"]) == (
        "window-mean", 0.25, "whole-file", None)
    assert np.abs(whole - windows).max() > 1e-4
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


@pytest.mark.slow
def test_a_kaldi_archive_holds_the_rows_of_the_npz_keyed_by_the_recordings_as_given(tmp_path: Path) -> None:
    import kaldiio

    val = validated(tmp_path)
    keys = [recording(tmp_path / "a.wav", seed=1), recording(tmp_path / "é-b.flac", seed=2, rate=44100),
            recording(tmp_path / "c.wav", seed=3)]
    assert run_in_process("embed", "-o", str(tmp_path / "emb.npz"), str(val.root), *keys).returncode == 0
    rows, _, metadata = load(tmp_path / "emb.npz")
    out = tmp_path / "kaldi" / "xvector.ark"
    out.parent.mkdir()
    (out.parent / "xvector.scp").write_text("an earlier index\n")
    done = run_in_process("embed", "-o", str(out), str(val.root), *keys)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"embed: 3 x 32 embeddings written to {out}, {out.with_suffix('.scp')} and {out.with_suffix('.json')} "
        "(their metadata)")
    # read by another library, through the index and straight from the archive
    indexed = kaldiio.load_scp(str(out.with_suffix(".scp")))
    assert list(indexed) == keys
    for key, row in zip(keys, rows, strict=True):
        assert indexed[key].dtype == np.float32 and np.array_equal(indexed[key], row)
    assert [k for k, _ in kaldiio.load_ark(str(out))] == keys
    assert json.loads(out.with_suffix(".json").read_text()) == metadata
    assert out.with_suffix(".scp").read_text().splitlines()[0].startswith(f"{keys[0]} {out.resolve()}:")
    assert sorted(p.name for p in out.parent.iterdir()) == ["xvector.ark", "xvector.json", "xvector.scp"]


@pytest.mark.parametrize("case", ["no recording", "missing list", "list is a folder", "list not utf-8",
                                  "missing recording", "output folder missing", "output is a folder",
                                  "output is a recording", "cleaned epoch", "kaldi key with a space",
                                  "kaldi index is a folder", "kaldi metadata is the list"])
def test_what_embed_cannot_use_is_one_line_before_any_network_is_read(tmp_path: Path, case: str) -> None:
    val = validated(tmp_path)
    good = recording(tmp_path / "good.wav", seed=1)
    out, ark = tmp_path / "emb.npz", tmp_path / "emb.ark"
    out.write_bytes(b"an earlier file")  # never touched by a refusal
    ark.write_bytes(b"an earlier archive")
    if case == "kaldi index is a folder":
        (tmp_path / "good.scp").mkdir()
    listed = tmp_path / "good.json"
    listed.write_text(f"{good}\n")
    (tmp_path / "latin1.txt").write_bytes(f"{good}\ncaf\xe9.wav\n".encode("latin-1"))
    argv, says = {
        "no recording": ([str(val.root)], "no recording to embed"),
        "missing list": (["--list", str(tmp_path / "nowhere.txt"), str(val.root)], "nowhere.txt: no such file"),
        "list is a folder": (["--list", str(tmp_path), str(val.root)], "is not a regular file"),
        "list not utf-8": (["--list", str(tmp_path / "latin1.txt"), str(val.root)], "line 2 is not UTF-8 text"),
        "missing recording": ([str(val.root), good, str(tmp_path / "nowhere.wav")], "nowhere.wav"),
        "output folder missing": (["-o", str(tmp_path / "no" / "emb.npz"), str(val.root), good],
                                  f"folder {tmp_path / 'no'} does not exist"),
        "output is a folder": (["-o", str(tmp_path), str(val.root), good], "is a folder: name a file in it"),
        "output is a recording": (["-o", good, str(val.root), good], "is one of the files embed reads"),
        "cleaned epoch": (["--epoch", "3", str(val.root), good], "pass --epoch with one that is there (7)"),
        "kaldi key with a space": (["-o", str(ark), str(val.root), good, recording(tmp_path / "a b.wav", seed=2)],
                                   "cannot be a Kaldi key (it is empty or holds a space or a control character)"),
        "kaldi index is a folder": (["-o", str(tmp_path / "good.ark"), str(val.root), good],
                                    f"{tmp_path / 'good.scp'}, written beside it, is a folder"),
        "kaldi metadata is the list": (["-o", str(tmp_path / "good.ark"), "--list", str(listed), str(val.root)],
                                       f"{listed}, written beside it, is one of the files embed reads"),
    }[case]
    if argv[0] != "-o":
        argv = ["-o", str(out), *argv]
    # a process of its own: these are refused before torch is imported
    done = run_engine("embed", *argv, db=tmp_path / "runs.db", timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("spkemb-engine embed: error: ") and says in line, line
    assert out.read_bytes() == b"an earlier file" and ark.read_bytes() == b"an earlier archive"
    assert Path(good).stat().st_size > 1000 and not (tmp_path / "emb.scp").exists()


def test_validate_says_which_trial_files_last_under_half_a_window(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """verify and embed said so of their recordings; validate was silent of a 0.3 s trial file."""
    import soundfile as sf

    from engine.data.audio_checks import check_files
    from engine.layout import ExperimentDir
    from engine.validation.recordings import warn_short_trial_files
    from tests.conftest import TINY_CONFIG

    experiment = ExperimentDir(tmp_path / "exp")
    experiment.root.mkdir()
    experiment.config.write_text(TINY_CONFIG)  # a 1 s window
    paths = [str(tmp_path / f"{seconds}.wav") for seconds in (0.3, 0.6, 3.0)]
    for path, seconds in zip(paths, (0.3, 0.6, 3.0), strict=True):
        sf.write(path, np.zeros(int(seconds * 16000), np.float32), 16000)
    assert not check_files(paths)
    warn_short_trial_files(paths, experiment.training("P", "train"))
    assert capsys.readouterr().err == (f"validate: 1 trial file(s) last under half of the network's 1 s window (the "
                                       f"first: {paths[0]}, 0.30 s): their scores say little\n")
    warn_short_trial_files(paths, ExperimentDir(tmp_path / "none").training("P", "train"))  # no config: no word
    assert capsys.readouterr().err == ""
