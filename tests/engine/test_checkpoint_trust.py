"""Checkpoints are data, not code: a pickled payload is refused unrun, a file swapped under its database
row is named before it is used, and weights of another shape are named in one line, by every command
that reads a checkpoint (real files, a real runs database, the real CLI)."""

from __future__ import annotations

import json
import os
import pickle
import random
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.config import config_to_dict, parse_config
from engine.layout import ExperimentDir, TrainingDir, ValidationDir
from engine.model import build_model
from engine.process.checkpoints import file_sha256, load_checkpoint, save_checkpoint
from engine.process.rng_states import rng_state, set_rng_state
from engine.records import Checkpoint, ValidationResult
from engine.store import EventWriter, import_events, open_store
from engine.validation.params import write_params
from tests.conftest import TINY_CONFIG
from tests.engine.engine_runner import run_engine, run_in_process

PROTOCOL = "Demo.SpeakerVerification.Voices"
TRAIN = ["--parallel", "0", "--device", "cpu", "--to", "1"]
#: a network of the tiny config's architecture but other shapes
OTHER_SHAPES = TINY_CONFIG.replace("embedding_dim: 32", "embedding_dim: 16")


class Payload:
    """Unpickled, it runs a shell command that creates ``marker``: what a hostile checkpoint carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def tiny_state(seed: int, text: str = TINY_CONFIG) -> dict:
    torch.manual_seed(seed)
    return build_model(parse_config(text, "tiny")).state_dict()


def experiment(tmp_path: Path, db: Path, *, hashed: bool = True) -> ExperimentDir:
    """EXP_DIR with config.yml, epochs 1 and 2 recorded on a completed training run (with their sha256,
    unless not ``hashed``: rows of an earlier release) and a VAL_DIR whose params.yml picks epoch 2."""
    exp = ExperimentDir(tmp_path / "exp")
    exp.root.mkdir()
    exp.config.write_text(TINY_CONFIG)
    trn = exp.training(PROTOCOL, "train")
    config = config_to_dict(parse_config(TINY_CONFIG, "tiny"))
    with open_store(db) as store:
        run = store.create_run(kind="train", exp_dir=exp.root, out_dir=trn.root, protocol=PROTOCOL,
                               subset="train", config=config, command=["train"], device="cpu", target_epoch=2)
        for epoch in (1, 2):
            path = save_checkpoint(trn.checkpoint(epoch), {"model": tiny_state(epoch), "config": config,
                                                           "epoch": epoch, "step": 10 * epoch})
            store.add_checkpoint(run, Checkpoint(epoch=epoch, step=10 * epoch, path=path, partial=False,
                                                 sha256=file_sha256(path) if hashed else None))
        store.set_status(run, "completed")
    write_params(ValidationDir(val_dir(trn)), ValidationResult(epoch=2, eer=0.2))
    return exp


def val_dir(trn: TrainingDir) -> Path:
    return trn.root / "validate_equal_error_rate" / f"{PROTOCOL}.test"


def command(name: str, exp: ExperimentDir, tmp_path: Path) -> list[str]:
    """The command line of ``name`` that reads epoch 2 of ``exp`` first."""
    trn = exp.training(PROTOCOL, "train")
    fork = tmp_path / "fork"
    if not fork.exists():
        fork.mkdir()
        (fork / "config.yml").write_text(TINY_CONFIG)
    return {
        "validate": ["validate", str(trn.root), PROTOCOL],
        "apply": ["apply", str(val_dir(trn)), "Demo.SpeakerDiarization.Meetings"],
        "export": ["export", "-o", str(tmp_path / "net.onnx"), str(val_dir(trn))],
        "average": ["average", "--last", "2", str(trn.root)],
        "train --init-from": ["train", "--init-from", str(trn.checkpoint(2)), *TRAIN, str(fork), PROTOCOL],
        "train --resume": ["train", "--resume", *TRAIN, str(exp.root), PROTOCOL],
    }[name]


def one_error(done) -> str:
    """The error line of a command refused in one line (exit 2, no traceback); it is its last line."""
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert done.returncode == 2 and len(errors) == 1, done.stderr
    assert done.stderr.strip().endswith(errors[0]) and "Traceback" not in done.stderr, done.stderr
    return errors[0]


COMMANDS = ["validate", "apply", "export", "average", "train --init-from", "train --resume"]


@pytest.mark.slow
@pytest.mark.parametrize("name", COMMANDS)
def test_a_pickled_payload_is_refused_without_running(tmp_path: Path, db_path: Path, demo_corpus: Path,
                                                      name: str) -> None:
    exp = experiment(tmp_path, db_path, hashed=False)
    marker = tmp_path / "payload-ran"
    hostile = exp.training(PROTOCOL, "train").checkpoint(2)
    torch.save({"model": Payload(marker), "config": {}}, hostile)

    # one command as a process of its own, as a user meets the refusal; the others in-process
    run = run_engine if name == "validate" else run_in_process
    done = run(*command(name, exp, tmp_path), db=db_path, database=demo_corpus)
    line = one_error(done)
    assert not marker.exists(), "the checkpoint's payload ran"
    assert str(hostile) in line and "posix.system" in line and "refused" in line


@pytest.mark.slow
def test_a_raw_pickle_is_refused_in_one_line_without_torchs_warning(tmp_path: Path, db_path: Path) -> None:
    exp = experiment(tmp_path, db_path, hashed=False)
    raw = exp.training(PROTOCOL, "train").checkpoint(2)
    raw.write_bytes(pickle.dumps({"model": {}, "config": {}}, protocol=4))
    # a process of its own: torch's warning would reach its stderr
    done = run_engine(*command("export", exp, tmp_path), db=db_path)
    line = one_error(done)
    assert str(raw) in line and "refused unread" in line and "Warning" not in done.stderr, done.stderr


def test_bytes_that_are_no_pickle_are_named_damaged_not_code(tmp_path: Path) -> None:
    """An empty zip or noise was said to hold "a pickled object …, which could run code"."""
    import zipfile

    from engine.errors import CheckpointError
    from engine.process.checkpoints import read_checkpoint

    empty, noise = tmp_path / "empty.pt", tmp_path / "noise.pt"
    with zipfile.ZipFile(empty, "w"):
        pass
    noise.write_bytes(bytes(range(177, 256)) * 4)
    for path in (empty, noise):
        with pytest.raises(CheckpointError) as refused:
            read_checkpoint(path)
        said = str(refused.value)
        assert f"checkpoint {path} cannot be read as weights (Unsupported operand" in said or "is damaged" in said
        assert "could run code" not in said
    # cut mid-file, as a full disk or a copy cut short leaves it: torch's first sentence alone
    good = tmp_path / "good.pt"
    torch.save({"model": {}, "config": {}}, good)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError) as refused:
        read_checkpoint(cut)
    said = str(refused.value)
    assert said.startswith(f"checkpoint {cut} cannot be read (") and said.endswith(
        "): it is damaged; delete it and resume from an earlier one") and "miniz" not in said, said


@pytest.mark.parametrize("name", COMMANDS)
def test_weights_that_are_not_finite_are_named_by_every_reader(tmp_path: Path, db_path: Path,
                                                              demo_corpus: Path, name: str) -> None:
    exp = experiment(tmp_path, db_path, hashed=False)
    path = exp.training(PROTOCOL, "train").checkpoint(2)
    state = tiny_state(2)
    state["tdnn.segment6.weight"][3, 5] = float("nan")
    save_checkpoint(path, {**load_checkpoint(path), "model": state})

    line = one_error(run_in_process(*command(name, exp, tmp_path), db=db_path, database=demo_corpus))
    assert f"checkpoint {path} holds weights that are not finite (model.tdnn.segment6.weight" in line, line
    assert not (tmp_path / "net.onnx").exists()


@pytest.mark.parametrize("name", COMMANDS)
def test_a_checkpoint_changed_under_its_row_is_named_before_use(tmp_path: Path, db_path: Path,
                                                                demo_corpus: Path, name: str) -> None:
    exp = experiment(tmp_path, db_path)
    path = exp.training(PROTOCOL, "train").checkpoint(2)
    recorded = file_sha256(path)
    # other weights of the same network, written over the recorded file
    save_checkpoint(path, {**load_checkpoint(path), "model": tiny_state(99)})

    line = one_error(run_in_process(*command(name, exp, tmp_path), db=db_path, database=demo_corpus))
    assert f"checkpoint {path} changed since it was recorded" in line, line
    assert recorded[:12] in line and file_sha256(path)[:12] in line and "--trust-checkpoint" in line


def test_a_swapped_in_payload_is_named_as_changed_and_never_runs(tmp_path: Path, db_path: Path,
                                                                 demo_corpus: Path) -> None:
    exp = experiment(tmp_path, db_path)
    marker = tmp_path / "payload-ran"
    path = exp.training(PROTOCOL, "train").checkpoint(2)
    torch.save({"model": Payload(marker), "config": {}}, path)
    for trust in ([], ["--trust-checkpoint"]):  # trusted, it is still only read as data
        line = one_error(run_in_process(*command("export", exp, tmp_path), *trust, db=db_path))
        assert ("changed since it was recorded" in line) == (not trust) and not marker.exists()


@pytest.mark.parametrize("name", ["export", "average"])
def test_trust_checkpoint_uses_the_changed_file(tmp_path: Path, db_path: Path, name: str) -> None:
    exp = experiment(tmp_path, db_path)
    trn = exp.training(PROTOCOL, "train")
    path = trn.checkpoint(2)
    save_checkpoint(path, {**load_checkpoint(path), "model": tiny_state(99)})
    done = run_in_process(*command(name, exp, tmp_path), "--trust-checkpoint", db=db_path)
    assert done.returncode == 0, done.stderr
    if name == "export":
        assert (tmp_path / "net.onnx").stat().st_size > 0
    else:
        key = "tdnn.segment6.weight"
        assert torch.allclose(load_checkpoint(trn.checkpoint("avg-last2"))["model"][key],
                              (tiny_state(1)[key] + tiny_state(99)[key]) / 2)


@pytest.mark.parametrize("name", ["validate", "apply", "export", "average", "train --init-from"])
def test_weights_of_other_shapes_are_named_in_one_line(tmp_path: Path, db_path: Path, demo_corpus: Path,
                                                       name: str) -> None:
    exp = experiment(tmp_path, db_path, hashed=False)
    path = exp.training(PROTOCOL, "train").checkpoint(2)
    saved = load_checkpoint(path)
    if name == "average":  # a whole checkpoint of another network, its config included
        saved["config"] = config_to_dict(parse_config(OTHER_SHAPES, "tiny"))
    # else: the config says the experiment's network; the tensors are of another
    save_checkpoint(path, {**saved, "model": tiny_state(2, OTHER_SHAPES)})

    line = one_error(run_in_process(*command(name, exp, tmp_path), db=db_path, database=demo_corpus))
    shapes = re.search(r": (\S+) is (\[[\d, ]+\]) (?:there|in \S+) and (\[[\d, ]+\]) (?:here|in \S+)", line)
    assert shapes is not None and str(path) in line, line
    assert shapes.groups() == ("tdnn.segment6.weight", "[16, 376]", "[32, 376]") or \
        shapes.groups() == ("tdnn.segment6.weight", "[32, 376]", "[16, 376]"), line
    assert ("average epochs of one training run" if name == "average" else
            "fork from a checkpoint" if name.startswith("train") else "use another epoch") in line


def test_a_checkpoint_holds_no_python_objects_and_restores_every_rng(tmp_path: Path) -> None:
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.randn(3)  # numpy caches half a gaussian pair: its state has has_gauss = 1
    path = save_checkpoint(tmp_path / "weights" / "0001.pt", {"model": {}, "config": {}, "rng": rng_state()})
    expected = random.random(), np.random.randn(4).tolist(), torch.rand(4).tolist()
    # plain torch, nothing allowed beyond its weights-only defaults
    saved = torch.load(path, weights_only=True)
    set_rng_state(saved["rng"])
    assert (random.random(), np.random.randn(4).tolist(), torch.rand(4).tolist()) == expected


def test_a_checkpoint_of_the_previous_release_still_loads_and_resumes_its_rng(tmp_path: Path) -> None:
    np.random.seed(5), random.seed(6)
    np.random.randn(1)
    old_rng = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    path = tmp_path / "0001.pt"
    torch.save({"model": tiny_state(1), "config": {}, "rng": old_rng}, path)  # numpy's array inside
    expected = random.random(), np.random.randn(4).tolist()
    set_rng_state(load_checkpoint(path)["rng"])
    assert (random.random(), np.random.randn(4).tolist()) == expected


def test_rows_carry_the_sha256_through_average_and_event_files(tmp_path: Path, db_path: Path) -> None:
    exp = experiment(tmp_path, db_path)
    trn = exp.training(PROTOCOL, "train")
    assert run_in_process("average", "--last", "2", str(trn.root), db=db_path).returncode == 0
    with open_store(db_path, readonly=True) as store:
        (run,) = store.runs(kind="train")
        rows = {Path(r["path"]).name: r["sha256"] for r in store.checkpoints(run["id"])}
    assert rows == {name: file_sha256(trn.weights / name) for name in ("0001.pt", "0002.pt", "avg-last2.pt")}

    # an event file (a database on a network filesystem) carries it; one of an earlier release has none
    events = tmp_path / "nfs" / "events.jsonl"
    weights = tmp_path / "nfs" / "weights"
    with EventWriter(events) as writer:
        run_id = writer.create_run(kind="train", exp_dir=tmp_path, out_dir=events.parent, protocol="P",
                                   subset="train", config=None, command=["train"], device="cpu")
        for epoch, sha in ((1, "ab" * 32), (2, None)):
            path = save_checkpoint(weights / f"{epoch:04d}.pt", {"model": {}, "config": {}})
            writer.add_checkpoint(run_id, Checkpoint(epoch=epoch, step=epoch, path=path, partial=False, sha256=sha))
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert lines[1]["args"]["sha256"] == "ab" * 32
    del lines[2]["args"]["sha256"]  # as the previous release wrote it
    events.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with open_store(tmp_path / "import.db") as store:
        import_events(events, store)
        (run,) = store.runs()
        assert [r["sha256"] for r in store.checkpoints(run["id"])] == ["ab" * 32, None]
        assert store.checkpoint_records(run["id"])[0].sha256 == "ab" * 32


def test_a_checkpoint_larger_than_any_run_writes_is_named_unread(tmp_path: Path) -> None:
    """A 40 GiB file (sparse: no disk) was read whole: MemoryError, a traceback."""
    from engine.errors import CheckpointError
    from engine.process.checkpoints import MAX_CHECKPOINT_BYTES

    path = tmp_path / "0002.pt"
    with path.open("wb") as f:
        f.truncate(40 * 2**30)
    assert path.stat().st_size > MAX_CHECKPOINT_BYTES
    with pytest.raises(CheckpointError, match=rf"^checkpoint {path} is 40\.0 GiB, more than any checkpoint of a run "
                                              r"holds \(8 GiB at most\): not a checkpoint"):
        load_checkpoint(path)


def test_a_pipe_or_a_device_for_a_checkpoint_is_named_as_such(tmp_path: Path) -> None:
    """A pipe would block the read, /dev/zero never end: both are named, neither is read."""
    from engine.errors import CheckpointError

    os.mkfifo(tmp_path / "0001.pt")
    for path in (tmp_path / "0001.pt", Path("/dev/zero")):
        with pytest.raises(CheckpointError, match=f"^checkpoint {path} is not a regular file: "):
            load_checkpoint(path)
    # a link that loops was said not to exist, beside a list of epochs that named it
    (tmp_path / "0003.pt").symlink_to(tmp_path / "loop.pt")
    (tmp_path / "loop.pt").symlink_to(tmp_path / "0003.pt")
    with pytest.raises(CheckpointError, match=f"^checkpoint {tmp_path / '0003.pt'} is a symbolic link to no file "
                                              r"\(it loops, or its target is gone\)"):
        load_checkpoint(tmp_path / "0003.pt")
    with pytest.raises(CheckpointError, match="does not exist: train first"):
        load_checkpoint(tmp_path / "0002.pt")
    # averaged weights are made by `average`, not by training (the line said "train first")
    trn = tmp_path / "exp" / "train" / "P.train"
    with pytest.raises(CheckpointError, match=rf"avg-last5\.pt does not exist: make it with `spkemb-engine average "
                                              rf"--last 5 {trn}`"):
        load_checkpoint(trn / "weights" / "avg-last5.pt")
    with pytest.raises(CheckpointError, match=r"avg-top3\.pt does not exist: make it with `spkemb-engine average "
                                              r"--top 3 VAL_DIR`"):
        load_checkpoint(trn / "weights" / "avg-top3.pt")
    # an epoch past those trained names the ones there are, as runs of consecutive epochs
    (trn / "weights").mkdir(parents=True)
    for epoch in (0, 1, 2, 3, 7):
        (trn / "weights" / f"{epoch:04d}.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"0009\.pt does not exist: train further, or pick an epoch that has one "
                                              r"\(0-3, 7\)$"):
        load_checkpoint(trn / "weights" / "0009.pt")
    with pytest.raises(CheckpointError, match=r"0005\.pt does not exist: its run trained past it .* pick an epoch that "
                                              r"has one \(0-3, 7\)$"):
        load_checkpoint(trn / "weights" / "0005.pt")


@pytest.mark.parametrize(("value", "says"), [
    ([1, 2], "config is list, not a mapping or YAML text"),
    (3, "config is 3, not a mapping or YAML text"),
    ("x: [", "its config is not one this release reads"),
    ({"nope": {}}, "its config is not one this release reads"),
])
def test_a_checkpoint_whose_config_does_not_load_is_named_as_the_checkpoint(tmp_path: Path, value, says) -> None:
    """validate, apply and export read the network through load_network: its config was refused as a
    config error of `PATH (config)`, with no fix; it is the checkpoint that is damaged."""
    from engine.errors import CheckpointError
    from engine.inference.network import load_network

    path = tmp_path / "0001.pt"
    config = parse_config(TINY_CONFIG, "tiny")
    save_checkpoint(path, {"model": build_model(config).state_dict(), "config": value, "epoch": 1, "step": 1})
    with pytest.raises(CheckpointError) as refused:
        load_network(path)
    message = str(refused.value)
    assert message.startswith(f"checkpoint {path} is damaged or edited: ") and says in message, message
    assert "\n" not in message and "train" in message.rsplit("; ", 1)[1], message  # the fix, after the cause


def test_weights_cast_to_whole_numbers_do_not_fit_the_network(tmp_path: Path) -> None:
    """A checkpoint whose weights were cast to int32 loaded as truncated floats: export wrote it, and a
    fork blamed the learning rate for the NaN loss that followed."""
    from engine.errors import CheckpointError
    from engine.process.checkpoints import fit_state

    model = build_model(parse_config(TINY_CONFIG, "tiny"))
    state = model.state_dict()
    fit_state(model, state, tmp_path / "0001.pt", "train again")  # its own weights fit
    cast = {key: value.to(torch.int32) if value.is_floating_point() else value for key, value in state.items()}
    key = next(k for k, v in state.items() if v.is_floating_point())
    shape = list(state[key].shape)
    with pytest.raises(CheckpointError) as refused:
        fit_state(model, cast, tmp_path / "0001.pt", "train again")
    assert str(refused.value) == (f"checkpoint {tmp_path / '0001.pt'} does not fit this network: {key} is int32 "
                                  f"{shape} there and float32 {shape} here; train again")


def test_a_checkpoint_rezipped_with_compression_is_refused_unread(tmp_path: Path) -> None:
    """torch inflates deflated entries: an 8.8 MB file holding a 1 GiB tensor of zeros passed the size
    check and took 1.7 GB of memory (at 1000:1, 100 MB of file would ask for 100 GiB)."""
    import zipfile

    from engine.errors import CheckpointError

    config = parse_config(TINY_CONFIG, "tiny")
    path = save_checkpoint(tmp_path / "0001.pt", {"model": build_model(config).state_dict(),
                                                  "config": config_to_dict(config), "epoch": 1})
    with zipfile.ZipFile(path) as stored:
        assert {e.compress_type for e in stored.infolist()} == {zipfile.ZIP_STORED}  # as torch.save writes
        entries = [(e, stored.read(e)) for e in stored.infolist()]
    assert load_checkpoint(path)["epoch"] == 1
    squeezed = tmp_path / "squeezed.pt"
    with zipfile.ZipFile(squeezed, "w", compression=zipfile.ZIP_DEFLATED) as out:
        for entry, data in entries:
            out.writestr(entry.filename, data)
    with pytest.raises(CheckpointError, match=r"squeezed.pt was not written by torch.save \(its entry .+ is "
                                              r"compressed\) and was refused unread"):
        load_checkpoint(squeezed)
