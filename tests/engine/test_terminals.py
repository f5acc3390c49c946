"""The terminals and pipes a command's words go to over SSH: a dumb terminal gets plain lines (it
draws no bar), a training whose stderr reader leaves (``2>&1 | tee log``, the tee ended with its
session) goes on to its end, recorded, and a result reaches a stdout of any encoding."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from engine.store import open_store
from tests import children
from tests.conftest import TINY_CONFIG
from tests.engine.engine_runner import engine_env

PROTOCOL = "Demo.SpeakerVerification.Voices"


def _on_a_terminal(argv: list[str], term: str, cwd: Path) -> str:
    """What ``argv`` writes on a pseudo-terminal whose TERM is ``term``."""
    leader, follower = pty.openpty()
    proc = children.spawn(argv, stdin=follower, stdout=follower, stderr=follower, cwd=cwd,
                          env={**engine_env(), "TERM": term})
    os.close(follower)
    said = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the last writer closed the terminal
            break
        if not chunk:
            break
        said += chunk
    os.close(leader)
    assert proc.wait(timeout=120) == 0, said[-2000:]
    return said.decode()


@pytest.mark.slow
def test_a_dumb_terminal_gets_plain_lines_where_a_drawing_one_gets_a_bar(tmp_path: Path) -> None:
    """rich draws nothing on TERM=dumb (an Emacs shell, an SSH session that passed no TERM), and the
    lines a log gets were left out for a terminal: a phase showed nothing until it ended."""
    argv = [sys.executable, "-m", "engine", "demo-workspace", "--speakers", "6"]
    dumb = _on_a_terminal([*argv, str(tmp_path / "dumb")], "dumb", tmp_path)
    assert "loading its libraries…\r\n" in dumb and "synthesizing the demo corpus: files…\r\n" in dumb
    assert "\x1b[" not in dumb  # no cursor movement, no colour
    drawn = _on_a_terminal([*argv, str(tmp_path / "drawn")], "xterm-256color", tmp_path)
    assert "\x1b[2K" in drawn and "synthesizing the demo corpus: files…" not in drawn


@pytest.mark.slow
def test_a_training_goes_on_when_the_reader_of_its_stderr_leaves(tmp_path: Path, demo_corpus: Path,
                                                                db_path: Path) -> None:
    """rich's console exited (status 1) at its next line and the run was recorded failed (SystemExit: 1)."""
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yml").write_text(TINY_CONFIG.replace("per_epoch: 0.0002", "per_epoch: 0.001"))
    proc = children.spawn([sys.executable, "-m", "engine", "train", "--to", "2", "--parallel", "0",
                           "--device", "cpu", "--log-every", "0", str(exp), PROTOCOL],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=engine_env(db_path, demo_corpus))
    assert proc.stderr is not None
    first = proc.stderr.readline()
    proc.stderr.close()  # the reader leaves: every line after this one meets a closed pipe
    assert proc.wait(timeout=300) == 0, first
    (run,) = open_store(db_path, readonly=True).runs(kind="train")
    assert (run["status"], run["epoch"], run["reason"]) == ("completed", 2, None)


def test_a_result_is_written_whatever_stdout_can_encode_and_a_closed_one_is_said(tmp_path: Path) -> None:
    """On a Latin-1 locale a run named with "—" stopped `runs` with a UnicodeEncodeError traceback; with
    stdout closed (``>&-``) it ended in an AttributeError traceback."""
    db = tmp_path / "runs.db"
    with open_store(db) as store:
        store.create_run(kind="train", exp_dir=tmp_path, out_dir=tmp_path / "t", protocol="P.S.T", subset="train",
                         config=None, command=["c"], device="cpu", name="margin — 0.2")
    argv = [sys.executable, "-m", "engine", "runs", "--format", "csv", "--db", str(db)]
    latin = children.run(argv, env={**engine_env(), "PYTHONIOENCODING": "latin-1"}, timeout=120)
    assert latin.returncode == 0 and "margin \\u2014 0.2" in latin.stdout, latin.stderr
    closed = children.run(["sh", "-c", 'exec "$@" >&-', "sh", *argv], env=engine_env(), timeout=120)
    assert closed.returncode == 2 and closed.stderr == (
        "spkemb-engine: error: standard output is closed (>&-): give it a file, or /dev/null to drop a command's "
        "result\n")
