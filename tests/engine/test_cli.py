"""Every command has help text; sbatch writes a script bash accepts; bad input exits 2 without a traceback."""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import sys
from pathlib import Path

import pytest

from engine.cli import HANDLERS, REQUESTS, build_parser, request_of
from engine.requests import TrainRequest
from tests import children
from tests.conftest import TINY_CONFIG
from tests.engine.engine_runner import engine_env, run_engine, run_in_process

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", sorted(HANDLERS))
def test_every_command_has_help(command: str) -> None:
    done = run_in_process(*command.split(), "--help")
    assert done.returncode == 0, done.stderr
    assert "usage: spkemb-engine" in done.stdout
    assert len(done.stdout.splitlines()) > 3


def test_top_level_help_lists_every_command() -> None:
    done = run_engine("--help")
    assert done.returncode == 0
    for command in {c.split()[0] for c in HANDLERS}:
        assert command in done.stdout


def test_an_unknown_option_is_refused_by_its_command_with_the_nearest_option() -> None:
    """argparse names the top-level parser for an option no command knows: the line pointed at
    ``spkemb-engine --help``, which does not list ``tag``'s options."""
    done = run_in_process("tag", "1", "--group", "g", "--tag", "first")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("spkemb-engine tag: error: unrecognized option --tag; did you mean --add-tag? "
                           "(see spkemb-engine tag --help)\n")
    # train's option: no guess at --poll; and not `--parallel P` (0 was taken for TRN_DIR, trn for PROTOCOL)
    done = run_in_process("validate", "--parallel", "0", "trn", "P")
    assert done.stderr == ("spkemb-engine validate: error: unrecognized option --parallel "
                           "(see spkemb-engine validate --help)\n")
    done = run_in_process("config", "check", "config.yml", "extra.yml")
    assert done.stderr == ("spkemb-engine config check: error: unrecognized arguments: extra.yml "
                           "(see spkemb-engine config check --help)\n")
    done = run_in_process("config", "check", "config.yml", "--frobnicate")
    assert done.stderr == ("spkemb-engine config check: error: unrecognized option --frobnicate "
                           "(see spkemb-engine config check --help)\n")


@pytest.mark.parametrize("command", [["train", "exp", "P"], ["validate", "trn", "P"], ["apply", "val", "P"]])
def test_a_device_torch_cannot_use_is_one_line_before_any_work(command: list[str]) -> None:
    """`--device gpu` was a torch traceback; `--device mps` listed the data and recorded a failed run first."""
    for device in ("gpu", "CPU", "cuda0", "cuda:x", "mps"):
        done = run_in_process(command[0], "--device", device, *command[1:])
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr == (f"spkemb-engine {command[0]}: error: argument --device: {device} is not accepted: "
                               f"expected cpu, cuda or cuda:N (a GPU's number, e.g. cuda:0) "
                               f"(see spkemb-engine {command[0]} --help)\n")


def test_spkemb_engine_script_is_installed() -> None:
    script = Path(sys.executable).with_name("spkemb-engine")
    done = children.run([str(script), "--help"], timeout=60)
    assert done.returncode == 0 and "train" in done.stdout


@pytest.mark.parametrize("script", ["spkemb-engine", "spkemb-tui"])
def test_version_is_the_installed_package_s(script: str) -> None:
    from importlib.metadata import version

    done = children.run([str(Path(sys.executable).with_name(script)), "--version"], timeout=60)
    assert done.returncode == 0 and done.stdout == f"{script} {version('spkemb')}\n", done


def test_sbatch_script_runs_srun_torchrun_and_requeues(tmp_path: Path, demo_corpus: Path) -> None:
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yml").write_text(TINY_CONFIG)
    out = tmp_path / "train.sbatch"
    done = run_engine("sbatch", "--nodes", "2", "--gpus-per-node", "4", "--to", "250", "-o", str(out),
                      str(exp), "Demo.SpeakerVerification.Voices", database=demo_corpus)
    assert done.returncode == 0, done.stderr
    script = out.read_text()
    assert "#SBATCH --nodes=2" in script and "#SBATCH --gpus-per-node=4" in script
    assert "#SBATCH --requeue" in script and "#SBATCH --signal=B:USR1@" in script
    assert f"{sys.executable} -m torch.distributed.run" in script and "--nproc_per_node=4" in script
    assert "-m engine train" in script and "--to 250" in script
    assert "scontrol requeue" in script
    checked = children.run(["bash", "-n", str(out)], timeout=60)
    assert checked.returncode == 0, checked.stderr


def test_the_sbatch_job_reads_the_database_and_runs_db_of_the_folder_it_was_written_in(tmp_path: Path,
                                                                                      demo_corpus: Path) -> None:
    """The job starts on a node, maybe in another folder: the script names both files by absolute path."""
    exp, folder = tmp_path / "exp", demo_corpus.parent  # the folder of a database.yml (only read)
    exp.mkdir()
    (exp / "config.yml").write_text(TINY_CONFIG)
    done = run_in_process("sbatch", "-o", str(tmp_path / "job.sh"), str(exp), "Demo.SpeakerVerification.Voices",
                          env={"PYANNOTE_DATABASE_CONFIG": "", "SPKEMB_DB": ""}, cwd=folder)
    assert done.returncode == 0, done.stderr
    script = (tmp_path / "job.sh").read_text()
    assert f"--database {folder.resolve() / 'database.yml'} " in script
    assert f"--db {folder.resolve() / 'experiments' / 'runs.db'} " in script


def test_sbatch_refuses_a_misspelt_protocol_or_subset_and_makes_no_folder(tmp_path: Path,
                                                                           demo_corpus: Path) -> None:
    """The script was written (exit 0) and the folder for its log made: the typo showed once the job had
    waited in the GPU queue and started."""
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yml").write_text(TINY_CONFIG)
    for protocol, subset in (("Demo.SpeakerVerification.Voicez", "train"),
                             ("Demo.SpeakerVerification.Voices", "trian")):
        done = run_in_process("sbatch", "--subset", subset, "-o", str(tmp_path / "job.sh"), str(exp), protocol,
                              db=tmp_path / "runs.db", database=demo_corpus)
        assert done.returncode == 2 and done.stderr.startswith("spkemb-engine sbatch: error: "), done.stderr
    assert not (exp / "train").exists() and not (tmp_path / "job.sh").exists()


def test_sbatch_without_config_names_the_file(tmp_path: Path) -> None:
    done = run_engine("sbatch", str(tmp_path / "nope"), "X.Y.Z")
    assert done.returncode == 2
    assert "config.yml" in done.stderr and "Traceback" not in done.stderr


def test_unknown_protocol_is_one_clear_error(tmp_path: Path, demo_corpus: Path) -> None:
    """A misspelt protocol or subset, or no database.yml where train runs: one line, and neither a
    training folder nor a run (nor a runs database) left behind."""
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yml").write_text(TINY_CONFIG)
    for options, says in ((["Demo.SpeakerVerification.Nope"], "Demo.SpeakerVerification.Nope"),
                          (["--subset", "tran", "Demo.SpeakerVerification.Voices"], "subset 'tran' is not one of"),
                          (["Demo.SpeakerVerification.Voices"], "no database.yml found")):
        database = None if says == "no database.yml found" else demo_corpus
        env = {"PYANNOTE_DATABASE_CONFIG": "", "HOME": str(tmp_path)} if database is None else None
        done = run_in_process("train", "--to", "1", str(exp), *options, db=tmp_path / "runs.db", database=database,
                              env=env, cwd=tmp_path)
        assert done.returncode == 2
        assert says in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert not (exp / "train").exists() and not (tmp_path / "runs.db").exists()


@pytest.mark.slow
def test_a_command_loads_protocols_without_pyannotes_notebook_display(tmp_path: Path, demo_corpus: Path) -> None:
    """pyannote.core's Jupyter display would import matplotlib.pyplot into every command (0.3 s)."""
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yml").write_text(TINY_CONFIG)
    env = engine_env(tmp_path / "runs.db", demo_corpus)
    done = children.run([sys.executable, "-X", "importtime", "-m", "engine", "train", "--to", "1", str(exp),
                         "Demo.SpeakerVerification.Nope"], env=env, timeout=120)
    assert done.returncode == 2 and "Demo.SpeakerVerification.Nope" in done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert {"pyannote.core", "pyannote.database"} <= imported
    assert not {"matplotlib", "matplotlib.pyplot"} & imported


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every command's parser, by its name in HANDLERS (`config check` included)."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = _subparsers(sub)
                found.update({f"{name} {n}": p for n, p in nested.items()} if nested else {name: sub})
    return found


@pytest.mark.parametrize("command", sorted(HANDLERS))
def test_every_option_is_a_field_of_the_command_request(command: str) -> None:
    parser = _subparsers(build_parser())[command]
    options = {a.dest for a in parser._actions if a.dest not in ("help", "config_command")}
    fields = {f.name for f in dataclasses.fields(REQUESTS[command])}
    assert options == fields


@pytest.mark.parametrize("command", sorted(HANDLERS))
def test_every_handler_takes_its_typed_request(command: str) -> None:
    """Read from the source, so that this test imports no torch: the handler's one argument is
    annotated with the request class, and no module below the CLI names argparse."""
    module, function = HANDLERS[command].split(":")
    path = REPO / Path(*module.split(".")).with_suffix(".py")
    sources = [path] if path.exists() else sorted(path.with_suffix("").glob("*.py"))  # a package re-exports
    handler = next(n for source in sources for n in ast.walk(ast.parse(source.read_text()))
                   if isinstance(n, ast.FunctionDef) and n.name == function)
    assert [ast.unparse(a.annotation) for a in handler.args.args] == [REQUESTS[command].__name__]


def test_requests_are_frozen_and_parsed_once() -> None:
    request = request_of(["train", "--to", "3", "--log-every", "5", "exp", "Demo.SpeakerVerification.Voices"])
    assert isinstance(request, TrainRequest) and request.to == 3 and request.log_every == 5.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.to = 4  # type: ignore[misc]


@pytest.mark.slow  # two engine processes, each importing torch
def test_a_terminal_sees_what_a_command_loads_before_its_first_line_and_a_log_does_not(tmp_path: Path) -> None:
    """`train` was silent for its first seconds (torch's import: a minute on some network file systems)."""
    import os
    import pty
    import subprocess
    import threading

    (tmp_path / "config.yml").write_text(TINY_CONFIG)
    argv = [sys.executable, "-m", "engine", "model-summary", str(tmp_path)]
    terminal, slave = pty.openpty()
    drawn = bytearray()

    def drain() -> None:  # a terminal is read while it is drawn on: a full one would block the spinner
        with contextlib.suppress(OSError):  # EIO: the last writer closed it
            while chunk := os.read(terminal, 4096):
                drawn.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    with children.started(argv, env=engine_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=slave) as proc:
        os.close(slave)
        result = proc.stdout.read().decode()
        assert proc.wait(timeout=300) == 0
    reader.join(timeout=60)
    os.close(terminal)
    assert "parameters: " in result
    assert "spkemb-engine model-summary: loading its libraries…" in drawn.decode(errors="replace")
    assert drawn.endswith(b"\x1b[2K")  # erased once loaded: nothing of it stays on the screen
    logged = run_engine("model-summary", str(tmp_path))
    assert logged.returncode == 0 and "loading" not in logged.stderr and logged.stdout == result
