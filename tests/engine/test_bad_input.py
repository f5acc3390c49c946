"""Hostile and damaged input: one line naming the thing and the fix, exit 2, nothing written
outside the folders a command owns (issue 10)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests import children
from tests.engine.engine_runner import run_engine, run_in_process

SR = 16000


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/tmp/x", "a//b", "a/", "", "a\0b", "~/x", "./a"])
def test_contained_path_refuses_names_that_could_leave_the_folder(tmp_path: Path, name: str) -> None:
    from engine.errors import PathError
    from engine.safe_paths import contained_path

    with pytest.raises(PathError, match="is refused"):
        contained_path(tmp_path, name, what=f"uri {name!r}")


def test_contained_path_keeps_nested_names_below_the_folder(tmp_path: Path) -> None:
    from engine.safe_paths import contained_path

    assert contained_path(tmp_path, "id1/video/00001.npy") == tmp_path / "id1" / "video" / "00001.npy"
    assert contained_path(tmp_path, "a..b.npy") == tmp_path / "a..b.npy"  # dots inside a name are fine


def write_wav(path: Path, seconds: float = 1.5) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    sf.write(path, (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32), SR)


def escaping_protocol(root: Path, evil: str) -> Path:
    """A database.yml whose Evil.SpeakerDiarization.Escape test list holds ``good`` and ``evil``,
    both real wav files (the evil one where its ``../`` template leads); returns the yml."""
    corpus = root / "deep" / "er" / "corpus"
    write_wav(corpus / "wav" / "good.wav")
    write_wav(Path(os.path.normpath(corpus / "wav" / f"{evil}.wav")))
    (corpus / "lists").mkdir(parents=True)
    (corpus / "lists" / "test.lst").write_text(f"good\n{evil}\n")
    database = corpus / "database.yml"
    database.write_text("Databases:\n  Evil: wav/{uri}.wav\n"
                        "Protocols:\n  Evil:\n    SpeakerDiarization:\n      Escape:\n"
                        "        test:\n          uri: lists/test.lst\n")
    return database


def test_apply_refuses_a_uri_that_leaves_its_output_folder(tmp_path: Path, db_path: Path) -> None:
    from tests.engine.test_apply import write_model_dir

    evil = "../../../../../../x"
    database = escaping_protocol(tmp_path, evil)
    val_dir = write_model_dir(tmp_path, duration=1.0)
    before = set(tmp_path.rglob("*"))
    done = run_in_process("apply", "--step", "0.5", str(val_dir),
                      "Evil.SpeakerDiarization.Escape", database=database)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    error = done.stderr.strip().splitlines()[-1]
    assert f"uri {evil!r}" in error and "Evil.SpeakerDiarization.Escape" in error and "'..'" in error
    written = {p for p in set(tmp_path.rglob("*")) - before if p != db_path and not p.name.startswith("runs.db")}
    assert not [p for p in written if p.suffix == ".npy"]
    assert not (val_dir / "apply").exists()


def copy_corpus(demo_corpus: Path, tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    shutil.copytree(demo_corpus.parent, corpus)
    return corpus / "database.yml"


def tiny_exp_in(root: Path) -> Path:
    from tests.conftest import TINY_CONFIG

    exp = root / "exp"
    exp.mkdir()
    (exp / "config.yml").write_text(TINY_CONFIG)
    return exp


def refused_training(tmp_path: Path, database: Path) -> str:
    """The one line `train` of a tiny config ends with on ``database``: exit 2, no traceback."""
    exp = tiny_exp_in(tmp_path)
    done = run_in_process("train", "--to", "1", "--parallel", "0", str(exp), "Demo.SpeakerVerification.Voices",
                          database=database)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    return done.stderr.strip().splitlines()[-1]


def refused_validation(tmp_path: Path, database: Path) -> str:
    """The one line `validate` of an empty TRN_DIR ends with on ``database``: exit 2, no traceback."""
    trn_dir = tiny_exp_in(tmp_path) / "train" / "Demo.SpeakerVerification.Voices.train"
    trn_dir.mkdir(parents=True)
    done = run_in_process("validate", str(trn_dir), "Demo.SpeakerVerification.Voices", database=database)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    return done.stderr.strip().splitlines()[-1]


def test_a_trial_list_cut_mid_line_is_named_by_file_and_line(tmp_path: Path, demo_corpus: Path,
                                                             db_path: Path) -> None:
    database = copy_corpus(demo_corpus, tmp_path)
    trial_file = database.parent / "voxceleb" / "lists" / "test.trial.txt"
    lines = trial_file.read_text().splitlines()
    cut = " ".join(lines[-1].split()[:2])  # `1 uri1`: the second uri lost
    trial_file.write_text("\n".join(lines[:-1] + [cut]))
    error = refused_validation(tmp_path, database)
    assert f"{trial_file}:{len(lines)}: malformed trial line {cut!r}" in error
    assert "nan" not in error


def test_a_trial_list_naming_uris_with_their_extension_is_named_with_the_fix(
        tmp_path: Path, demo_corpus: Path, db_path: Path) -> None:
    """VoxCeleb's own trial lists (veri_test2.txt) name `id10270/x6uYqmx31kE/00001.wav`; the template adds .wav."""
    database = copy_corpus(demo_corpus, tmp_path)
    trial_file = database.parent / "voxceleb" / "lists" / "test.trial.txt"
    uris = trial_file.read_text()
    # with Windows line ends too, where the extension ends the line before a carriage return
    trial_file.write_bytes(re.sub(r"(id\d+/\S+/\d+)", r"\1.wav", uris).replace("\n", "\r\n").encode())
    error = refused_validation(tmp_path, database)
    assert ".wav.wav does not exist, but " in error and "adds .wav again" in error
    fix = re.search(r"`(sed -E .*) LIST > LIST.uris`", error)
    assert fix is not None
    fixed = children.run(["sh", "-c", f"{fix.group(1)} {trial_file}"], timeout=30)
    assert fixed.stdout == uris  # the command it gives turns the list back into the uris


def test_a_uri_list_saved_with_a_byte_order_mark_is_refused_with_the_fix(
        tmp_path: Path, demo_corpus: Path, db_path: Path) -> None:
    """pyannote.database reads a uri list as text: a BOM would become part of its first uri."""
    database = copy_corpus(demo_corpus, tmp_path)
    uris = database.parent / "voxceleb" / "lists" / "train.lst"
    plain = uris.read_bytes()
    uris.write_bytes(b"\xef\xbb\xbf" + plain)
    error = refused_training(tmp_path, database)
    assert f"train: uri: {uris} starts with a UTF-8 byte-order mark" in error
    fix = re.search(r"`(sed -i .*)`", error)
    assert fix is not None
    children.run(["sh", "-c", fix.group(1)], timeout=30)
    assert uris.read_bytes() == plain  # the command it gives removes the mark, and only it


@pytest.mark.parametrize("entry", ["train.lst", "train.rttm"])
def test_a_protocol_file_that_is_a_symbolic_link_loop_is_one_line(tmp_path: Path, demo_corpus: Path,
                                                                  db_path: Path, entry: str) -> None:
    """Resolving a uri list (or RTTM) that links to itself raised RuntimeError: a traceback, exit 1."""
    database = copy_corpus(demo_corpus, tmp_path)
    lists = database.parent / "voxceleb" / "lists"
    (lists / entry).unlink()
    (lists / entry).symlink_to(lists / f"loop-{entry}")
    (lists / f"loop-{entry}").symlink_to(lists / entry)
    error = refused_training(tmp_path, database)
    assert str(lists / entry) in error and "symbolic link" in error, error


def test_a_training_subset_without_annotation_is_refused_with_the_fix(tmp_path: Path, demo_corpus: Path,
                                                                      db_path: Path) -> None:
    database = copy_corpus(demo_corpus, tmp_path)
    database.write_text(database.read_text().replace("          annotation: voxceleb/lists/train.rttm\n", "", 1))
    error = refused_training(tmp_path, database)
    assert f"{database}: protocol Demo.SpeakerVerification.Voices, train: no `annotation:` entry" in error
    assert "SPEAKER {uri} 1 0.000 {duration}" in error
    assert not db_path.exists()  # refused before the run is recorded


def test_an_rttm_naming_its_files_otherwise_than_the_uri_list_is_named(tmp_path: Path, demo_corpus: Path,
                                                                        db_path: Path) -> None:
    database = copy_corpus(demo_corpus, tmp_path)
    rttm = database.parent / "voxceleb" / "lists" / "train.rttm"
    rttm.write_text(re.sub(r"^(SPEAKER \S+)", r"\1.wav", rttm.read_text(), flags=re.MULTILINE))
    error = refused_training(tmp_path, database)
    first = (database.parent / "voxceleb" / "lists" / "train.lst").read_text().split()[0]
    assert "has a speaker turn in the protocol's annotation" in error and f"as {first!r} is" in error


@pytest.mark.parametrize("scope", ["        scope: file\n", ""])
def test_training_on_file_scoped_labels_is_refused_with_the_fix(tmp_path: Path, demo_corpus: Path, db_path: Path,
                                                                scope: str) -> None:
    """`scope: file`, or none (pyannote.database then says it sets `file`): labels would not be identities."""
    database = copy_corpus(demo_corpus, tmp_path)
    text = database.read_text()
    assert "      Voices:\n        scope: global\n" in text
    database.write_text(text.replace("      Voices:\n        scope: global\n", "      Voices:\n" + scope, 1))
    error = refused_training(tmp_path, database)
    assert f"{database}: protocol Demo.SpeakerVerification.Voices has `scope: file`" in error
    assert "declare `scope: global`" in error
    # refused before the run is recorded: no database made, no failed row, no training folder or lock
    assert not db_path.exists() and not [p for p in tmp_path.rglob("*") if p.name == "train" and p.is_dir()]


def test_a_missing_audio_folder_is_named_with_the_fix(tmp_path: Path, demo_corpus: Path, db_path: Path) -> None:
    database = copy_corpus(demo_corpus, tmp_path)
    database.write_text(database.read_text().replace("voxceleb/wav/{uri}.wav", "voxceleb/wave/{uri}.wav"))
    error = refused_training(tmp_path, database)
    assert f"{database.parent / 'voxceleb' / 'wave'}/id" in error  # the path it looked for
    assert f"the folder {database.parent / 'voxceleb' / 'wave'}" in error and "Databases:" in error
    assert "no speaker has" not in error


def test_a_corpus_of_m4a_files_is_refused_with_the_conversion(tmp_path: Path, demo_corpus: Path,
                                                             db_path: Path) -> None:
    """VoxCeleb2 as it is downloaded: AAC in .m4a, which soundfile cannot decode."""
    database = copy_corpus(demo_corpus, tmp_path)
    database.write_text(database.read_text().replace("voxceleb/wav/{uri}.wav", "voxceleb/wav/{uri}.m4a"))
    for wav in (database.parent / "voxceleb" / "wav").rglob("*.wav"):
        wav.with_suffix(".m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00M4A mp42isom" + wav.read_bytes())
    error = refused_training(tmp_path, database)
    assert "none of the" in error and ".m4a is AAC audio in an MP4 container" in error
    assert "`ffmpeg -i IN.m4a -ac 1 -ar 16000 OUT.wav`" in error and "database.yml" in error


@pytest.mark.slow
def test_skipped_training_files_are_named_in_the_terminal_and_train_log(tmp_path: Path, demo_corpus: Path,
                                                                         db_path: Path) -> None:
    from app.launching import commands
    from app.launching.children import Launcher

    database = copy_corpus(demo_corpus, tmp_path)
    wavs = sorted((database.parent / "voxceleb" / "wav").rglob("*.wav"))
    train_uris = set((database.parent / "voxceleb" / "lists" / "train.lst").read_text().split())
    unreadable, missing, empty = [w for w in wavs
                                  if str(w.relative_to(w.parents[2]))[:-4] in train_uris][:3]
    unreadable.write_bytes(b"RIFF\x00\x00 not a wav file")
    missing.unlink()
    sf.write(empty, np.zeros(0, np.float32), SR)
    exp = tiny_exp_in(tmp_path)
    trn_dir = exp / "train" / "Demo.SpeakerVerification.Voices.train"
    log = trn_dir / "train.log"
    argv = commands.train_argv(str(exp), "Demo.SpeakerVerification.Voices", subset="train", to=1,
                                device="cpu", parallel=0, db=db_path, database=database)
    pid = Launcher().launch(argv, log)
    assert os.waitpid(pid, 0)[1] == 0, log.read_text()
    text = log.read_text()
    warnings = [line for line in text.splitlines() if line.startswith("train: warning:")]
    for path in (unreadable, missing, empty):
        assert len([w for w in warnings if str(path) in w]) == 1, (path, warnings)
    assert "skipped 3 unusable file(s) and 0 speaker(s)" in warnings[-1]
    from engine.store import open_store

    with open_store(db_path, readonly=True) as store:
        (run,) = store.runs(kind="train")
        assert run["status"] == "completed"


def _bad_inputs(tmp: Path) -> dict[str, list[str]]:
    """For each command, arguments a user could give that it cannot work with."""
    from tests.conftest import TINY_CONFIG

    file = tmp / "a-file"
    file.write_text("not a folder\n")
    broken = tmp / "broken"
    broken.mkdir()
    (broken / "config.yml").write_text("task: [\n")
    good = tmp / "good"
    good.mkdir()
    (good / "config.yml").write_text(TINY_CONFIG)
    val = tmp / "val"
    (val / "scores").mkdir(parents=True)
    (val / "scores" / "0001.txt").write_text("1 0.9 a b\n1 0.8 a c\n")  # no non-target trial
    trn = tmp / "exp" / "train" / "Demo.SpeakerVerification.Voices.train"
    (trn / "weights").mkdir(parents=True)
    (trn / "weights" / "0001.pt").write_bytes(b"checkpoint")
    (trn / "validate_equal_error_rate").mkdir()
    (trn / "validate_equal_error_rate" / "Demo.SpeakerVerification.Voices.test").symlink_to(val)
    (tmp / "events.jsonl").write_text('{"hello": 1}\n')
    (tmp / "unknown.yml").write_text(TINY_CONFIG + "colour: blue\n")
    protocol = "Demo.SpeakerVerification.Voices"
    return {
        "train": ["train", str(broken), protocol],
        "validate": ["validate", str(file), protocol],
        "apply": ["apply", str(broken), protocol],
        "pick": ["pick", str(val)],
        "clean": ["clean", str(trn)],   # its validation's score file has no non-target trial
        "verify": ["verify", str(val), str(file), str(file)],   # no params.yml names a checkpoint
        "embed": ["embed", "-o", str(tmp / "emb.npz"), str(val), str(file)],   # the same
        "runs": ["runs", "--db", str(file)],
        "import": ["import", str(tmp / "events.jsonl")],
        "config check": ["config", "check", str(tmp / "unknown.yml")],
        "model-summary": ["model-summary", str(tmp / "nowhere")],
        "demo-data": ["demo-data", "--speakers", "3", str(file / "corpus")],
        "demo-workspace": ["demo-workspace", "--speakers", "3", str(file / "ws")],
        "sbatch": ["sbatch", "-o", str(file / "job.sh"), str(good), protocol],
    }


#: commands whose process starts without torch: run as subprocesses, for the exit status of a real process
TORCH_FREE = {"runs", "config check", "clean", "verify", "embed"}


@pytest.mark.parametrize("command", ["train", "validate", "apply", "pick", "clean", "verify", "embed", "runs",
                                     "import",
                                     "config check",
                                     "model-summary", "demo-data", "demo-workspace", "sbatch"])
def test_every_command_ends_bad_input_with_one_line(tmp_path: Path, demo_corpus: Path, command: str) -> None:
    argv = _bad_inputs(tmp_path)[command]
    # the commands that never import torch as processes of their own (cheap); the others in-process
    if command in TORCH_FREE:
        done = run_engine(*argv, db=tmp_path / "runs.db", database=demo_corpus, timeout=120)
    else:
        done = run_in_process(*argv, db=tmp_path / "runs.db", database=demo_corpus)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output
    errors = [line for line in done.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and done.stderr.strip().splitlines()[-1] == errors[0], output
    assert errors[0].startswith(f"spkemb-engine {command}: error: ")


@pytest.mark.parametrize("text, says", [
    ("epoch: [unclosed", "invalid YAML"),
    ("equal_error_rate: 0.1\n", "names no epoch"),
    ("epoch: 1\n", "names epoch 1 but no equal_error_rate"),   # said: ValidationResult.__init__() missing …
    ("epoch: 3\nequal_error_rate: low\n", "its figures are not numbers"),
    ("epoch: 3\nequal_error_rate: 0.1\neer_ci_95: [0.1]\n", "its figures are not numbers"),
])
def test_a_damaged_params_yml_is_named_with_its_fix(tmp_path: Path, demo_corpus: Path, text: str, says: str) -> None:
    """apply reads params.yml to choose its checkpoint: a damaged one is one line, exit 2, nothing extracted."""
    val_dir = tmp_path / "exp/train/P.S.T.train/validate_equal_error_rate/P.S.T.development"
    val_dir.mkdir(parents=True)
    (val_dir / "params.yml").write_text(text)
    done = run_in_process("apply", str(val_dir), "Demo.SpeakerDiarization.Meetings", database=demo_corpus,
                      db=tmp_path / "runs.db")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert str(val_dir / "params.yml") in line and says in line and "spkemb-engine pick" in line
    assert sorted(p.name for p in val_dir.iterdir()) == ["params.yml"]


@pytest.mark.parametrize("text, says", [
    ("duration: [2.0\n", "is not valid YAML (line 2, column 1"),
    ("- 1\n- 2\n", "holds no sliding window"),
    ("sliding_window: 2.0\n", "holds no sliding window"),
    ("duration: 2.0\n", "lacks step"),
    ("duration: long\nstep: 0.1\n", "duration: 'long' is not a number of seconds from 1e-06 to 3600"),
    ("duration: 2.0\nstep: 0\n", "step: 0 is not a number of seconds"),
])
def test_a_damaged_extraction_metadata_is_named(tmp_path: Path, text: str, says: str) -> None:
    """Precomputed (the embeddings as a pyannote feature) reads metadata.yml first: one line naming it."""
    from engine.errors import SpkembError
    from engine.extraction.precomputed import Precomputed

    (tmp_path / "metadata.yml").write_text(text)
    with pytest.raises(SpkembError) as raised:
        Precomputed(tmp_path)
    message = str(raised.value)
    assert "\n" not in message and str(tmp_path / "metadata.yml") in message and says in message


#: a database named X, pyannote.database's reserved name for meta-protocols
X_DATABASE = ("Databases:\n  X: wav/{uri}.wav\nProtocols:\n  X:\n    SpeakerVerification:\n      Voices:\n"
              "        train:\n          uri: train.lst\n")


@pytest.mark.slow
@pytest.mark.parametrize("yml, protocol, says", [
    ("Databases:\n  Demo: [unclosed\n", "Demo", ("database.yml, line 3, column 1: expected ',' or ']'",)),
    ("Databases:\n  Demo: /nowhere/{uri}.wav\nProtocols:\n  Demo:\n    SpeakerVerification:\n      Voices:\n"
     "        train:\n          uri: train.lst\n", "Demo", ("its test subset has no trial list — nor has any other",)),
    (X_DATABASE, "X", ("`Databases.X:` — `X` is pyannote.database's reserved name", "rename that database")),
    # pyannote.database took ~ for a folder named ~ beside database.yml
    ("Databases:\n  Demo:\n    - wav/{uri}.wav\n    - ~/corpora/{uri}.wav\nProtocols:\n  Demo:\n"
     "    SpeakerVerification:\n      Voices:\n        train:\n          uri: train.lst\n", "Demo",
     ("`Databases.Demo: ~/corpora/{uri}.wav` — pyannote.database does not expand ~ in audio path templates: "
      "write the whole path (/", "home/…)")),
    ("Protocols:" + X_DATABASE.split("Protocols:")[1], "X",
     ("`Protocols.X.SpeakerVerification.Voices.train:` lists `uri`, not other protocols' subsets",
      "rename that database")),
])
def test_validate_names_a_database_yml_it_cannot_use(tmp_path: Path, yml: str, protocol: str,
                                                     says: tuple[str, ...]) -> None:
    """A database.yml that is not YAML, a protocol without trials, or a database named X: one line,
    exit 2, no traceback, nothing written."""
    database = tmp_path / "database.yml"
    database.write_text(yml)
    (tmp_path / "train.lst").write_text("a\n")
    trn_dir = tmp_path / f"exp/train/{protocol}.SpeakerVerification.Voices.train"
    trn_dir.mkdir(parents=True)
    # pyannote.database reads $PYANNOTE_DATABASE_CONFIG when first imported, and says so in its own words:
    # the unparsable file in a process of its own; the others in this one, where it is imported already
    run = run_engine if "[unclosed" in yml else run_in_process
    done = run("validate", str(trn_dir), f"{protocol}.SpeakerVerification.Voices", database=database,
               db=tmp_path / "runs.db")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("spkemb-engine validate: error:")]
    assert len(errors) == 1 and all(part in errors[0] for part in says), done.stderr
    assert sorted(p.name for p in trn_dir.iterdir()) == []


def test_more_speakers_a_batch_than_train_is_refused_before_any_checkpoint(tmp_path: Path, demo_corpus: Path,
                                                                          db_path: Path) -> None:
    """The refusal came at the first batch, after the untrained network's weights/0000.pt: the same train
    once per_fold was lowered was then refused as a folder holding checkpoints (`add --resume`)."""
    exp = tiny_exp_in(tmp_path)
    config = (exp / "config.yml").read_text()
    (exp / "config.yml").write_text(config.replace("per_fold: 4", "per_fold: 400"))
    done = run_in_process("train", "--to", "1", "--parallel", "0", str(exp), "Demo.SpeakerVerification.Voices",
                          db=db_path, database=demo_corpus)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "task per_fold=400 asks for more distinct speakers per batch than the" in done.stderr
    assert not list(exp.rglob("*.pt"))


def test_a_per_fold_refusal_says_why_speakers_were_left_out() -> None:
    """`per_fold=6 … than the 5 usable ones` came before the warning that names the speaker left out:
    the line did not say which one, nor why."""
    from engine.data.batches import check_per_fold
    from engine.errors import TrainingError

    why = "speaker 'id10003' has no speech region of at least 2 s (longest 0.30 s, 0.30 s in all): skipped"
    with pytest.raises(TrainingError, match=r"than the 5 usable ones \(1 left out, e\.g\. speaker 'id10003' has no "
                                            r"speech region .*: skipped\) — lower task per_fold to at most 5$"):
        check_per_fold(6, 5, [why])
    check_per_fold(5, 5, [why])  # enough speakers: nothing to say
