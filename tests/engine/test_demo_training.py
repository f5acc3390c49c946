"""The demo config really learns speakers: a few epochs beat the untrained network by far."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from engine.demo import make_demo_workspace
from engine.store import open_store
from tests import children
from tests.engine.engine_runner import engine_env, run_engine

PROTOCOL = "Demo.SpeakerVerification.Voices"


@pytest.mark.slow(seconds=180)
def test_three_demo_epochs_separate_test_speakers_far_better_than_none(tmp_path: Path) -> None:
    ws = make_demo_workspace(tmp_path / "ws")
    db, database = ws / "runs.db", ws / "data" / "database.yml"
    trained = run_engine("train", "--to", "3", "--parallel", "1", str(ws), PROTOCOL, db=db, database=database,
                         timeout=1200)
    assert trained.returncode == 0, trained.stderr[-2000:]
    trn_dir = ws / "train" / f"{PROTOCOL}.train"
    validated = run_engine("validate", "--every", "3", "--to", "3", "--chronological", str(trn_dir), PROTOCOL,
                           db=db, database=database, timeout=600)
    assert validated.returncode == 0, validated.stderr[-2000:]
    store = open_store(db, readonly=True)
    (run,) = store.runs(kind="validate")
    untrained, trained3 = sorted(store.validations(run["id"]), key=lambda r: r["epoch"])
    assert (untrained["epoch"], trained3["epoch"]) == (0, 3)
    assert untrained["eer"] > 0.35                       # an untrained network is far from separating them
    assert trained3["eer"] < untrained["eer"] - 0.1      # three epochs of training: much better,
    assert trained3["eer_high"] < untrained["eer_low"]   # and not by the luck of the trials

    # the workspace README's verify, pasted as a newcomer would, in the workspace: a decision per recording
    readme = (ws / "README.txt").read_text()
    pasted = readme[readme.index("spkemb-engine verify"):].split("\n\n")[0].replace("\\\n", " ").split()
    verified = children.run([sys.executable, "-m", "engine", *pasted[1:]], cwd=ws, env=engine_env(), timeout=300)
    assert verified.returncode == 0, verified.stderr
    rows = [line.split("\t") for line in verified.stdout.splitlines()]
    assert len(rows) == 2 and all(r[3] in ("same", "different") for r in rows), verified.stdout

    # and its embed of the same recordings: rows whose cosines are verify's scores
    pasted = readme[readme.index("spkemb-engine embed"):].split("\n\n")[0].replace("\\\n", " ").split()
    embedded = children.run([sys.executable, "-m", "engine", *pasted[1:]], cwd=ws, env=engine_env(), timeout=300)
    assert embedded.returncode == 0, embedded.stderr
    with np.load(ws / "voices.npz", allow_pickle=False) as z:
        unit = z["embeddings"] / np.linalg.norm(z["embeddings"], axis=1, keepdims=True)
    assert (unit[0] @ unit[1:].T).tolist() == pytest.approx([float(r[2]) for r in rows], abs=2e-6)

    # and its report, as the README gives it (run 1: the training above)
    line = readme[readme.index("spkemb-engine report"):].split("\n")[0].split("#")[0].split()
    reported = children.run([sys.executable, "-m", "engine", *line[1:]], cwd=ws, env=engine_env(), timeout=300)
    assert reported.returncode == 0, reported.stderr
    assert (ws / "report" / "report.html").is_file()
