"""The TUI's boundaries: no torch, GPUs from nvidia-smi text, detached engine commands."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from app.__main__ import build_parser
from app.data.workspace import resolve_workspace
from app.launching import commands
from app.launching.children import Launcher
from engine.process.gpus import parse_nvidia_smi
from tests import children


def test_nvidia_smi_lines_become_devices() -> None:
    gpus = parse_nvidia_smi("0, GPU-5e1f, NVIDIA H100 80GB HBM3, 81559 MiB\n"
                            "1, GPU-77a0, NVIDIA A100-SXM4-40GB, 40960 MiB\n")
    assert [(g.index, g.memory_mib) for g in gpus] == [(0, 81559), (1, 40960)]
    assert gpus[0].label == "cuda:0  NVIDIA H100 80GB HBM3 (80 GiB)"
    assert parse_nvidia_smi("NVIDIA-SMI has failed because it couldn't communicate\n") == []


def test_engine_command_runs_detached_with_its_log(tmp_path: Path) -> None:
    bad = tmp_path / "config.yml"
    bad.write_text("task:\n  name: NoSuchLoss\n")
    argv = commands.engine_argv("config", "check", str(bad))
    assert argv[:3] == [sys.executable, "-m", "engine"]
    log = tmp_path / "out" / "check.log"
    launcher = Launcher()
    pid = launcher.launch(argv, log, cwd=Path(__file__).resolve().parents[2])
    assert os.getsid(pid) == pid  # its own session: closing the TUI sends it no hang-up
    deadline = time.monotonic() + 60
    while not launcher.exited(pid):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert "architecture: missing section" in log.read_text()


def test_command_lines_follow_the_engine_cli(tmp_path: Path) -> None:
    from engine.cli import build_parser as engine_parser

    train = commands.train_argv(tmp_path, "Demo.SpeakerVerification.Voices", to=3, device="cpu",
                                 parallel=0, db=tmp_path / "runs.db", database=tmp_path / "database.yml")
    args = engine_parser().parse_args(train[3:])
    assert (args.command, args.to, args.parallel, args.exp_dir) == ("train", 3, 0, str(tmp_path))
    trn = commands.trn_dir(tmp_path, "Demo.SpeakerVerification.Voices", "train")
    val = commands.val_dir(trn, "Demo.SpeakerVerification.Voices", "development")
    args = engine_parser().parse_args(commands.validate_argv(trn, "Demo.SpeakerVerification.Voices",
                                                              subset="development", every=2)[3:])
    assert (args.command, args.every, args.subset) == ("validate", 2, "development")
    args = engine_parser().parse_args(commands.apply_argv(val, "Demo.SpeakerDiarization.Meetings",
                                                           step=0.25)[3:])
    assert (args.command, args.step, args.val_dir) == ("apply", 0.25, str(val))
    args = engine_parser().parse_args(commands.pick_argv(val, epoch=2)[3:])
    assert (args.command, args.epoch) == ("pick", 2)


def test_workspace_defaults(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("SPKEMB_DB", raising=False)
    monkeypatch.delenv("PYANNOTE_DATABASE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    ws = resolve_workspace(tmp_path)
    assert ws.db_path == tmp_path / "experiments" / "runs.db" and ws.database_yml is None
    (tmp_path / "runs.db").touch()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "database.yml").write_text("Databases: {}\n")
    ws = resolve_workspace(tmp_path)
    assert ws.db_path == tmp_path / "runs.db"
    assert ws.database_yml == tmp_path / "data" / "database.yml"
    args = build_parser().parse_args(["--workspace", "w", "--db", "x.db", "--database", "d.yml"])
    assert (args.workspace, args.db, args.database) == ("w", "x.db", "d.yml")


def test_outside_its_workspace_the_tui_reads_the_database_yml_the_engine_reads(tmp_path: Path, monkeypatch) -> None:
    from engine.data.database_yml import database_paths

    monkeypatch.chdir(tmp_path)
    (tmp_path / "database.yml").write_text("Databases: {}\n")
    listed = tmp_path / "listed.yml"
    listed.write_text("Databases: {}\n")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    # one file in the variable: the engine's, not ./database.yml, which the engine would not read
    monkeypatch.setenv("PYANNOTE_DATABASE_CONFIG", str(listed))
    assert resolve_workspace(workspace).database_yml == listed == database_paths()[0]
    # several, or one missing: no --database from the TUI; each command reads the variable itself
    for value in (f"{listed};{listed}", str(tmp_path / "missing.yml")):
        monkeypatch.setenv("PYANNOTE_DATABASE_CONFIG", value)
        assert resolve_workspace(workspace).database_yml is None
    monkeypatch.delenv("PYANNOTE_DATABASE_CONFIG")
    assert resolve_workspace(workspace).database_yml == tmp_path / "database.yml" == database_paths()[0]


def test_paths_that_cannot_work_are_refused_before_the_screen_is_taken(tmp_path: Path) -> None:
    cases = [(["--workspace", str(tmp_path / "missing")], "is not a folder"),
             (["--db", str(tmp_path)], "is a folder"),
             (["--database", str(tmp_path / "none.yml")], "does not exist")]
    for argv, message in cases:
        out = children.run([sys.executable, "-m", "app", *argv], timeout=60, cwd=Path(__file__).resolve().parents[2])
        assert out.returncode == 2, argv
        assert message in out.stderr and argv[1] in out.stderr
        assert "\x1b[" not in out.stdout  # nothing was drawn
    assert not (tmp_path / "missing").exists()
