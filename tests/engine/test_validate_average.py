"""Averaged weights validated beside the epochs, with AS-norm, then picked and applied by name: the
commands in turn through ``engine.cli.main`` in this process (the recipe's end-to-end test runs
them as processes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from engine.data.protocols import load_protocol, subset_files
from engine.layout import TrainingDir
from engine.records import Checkpoint
from engine.store import open_store
from engine.validation.cohort_means import read_cohort_means
from engine.validation.params import read_params
from engine.validation.score_files import read_scores, result_from_scores
from tests.engine.engine_runner import run_in_process
from tests.engine.test_average import PROTOCOL, write_epochs


@pytest.mark.slow
def test_average_validated_with_asnorm_then_picked_and_applied(tmp_path: Path, demo_corpus: Path,
                                                               db_path: Path) -> None:
    trn = TrainingDir(tmp_path / "exp" / "train" / f"{PROTOCOL}.train")
    write_epochs(trn, [1, 2, 3])
    with open_store(db_path) as store:
        train_id = store.create_run(kind="train", exp_dir=trn.root.parent.parent, out_dir=trn.root,
                                    protocol=PROTOCOL, subset="train", config=None, command=["t"], device="cpu")
        for epoch in (1, 2, 3):
            store.add_checkpoint(train_id, Checkpoint(epoch=epoch, step=10 * epoch, path=trn.checkpoint(epoch),
                                                      partial=False))
        store.set_status(train_id, "completed")
    val = trn.validation(PROTOCOL, "test")

    first = run_in_process("validate", "--poll", "0.2", str(trn.root), PROTOCOL, db=db_path, database=demo_corpus)
    assert first.returncode == 0, first.stderr
    done = run_in_process("average", "--top", "2", str(val.root), db=db_path)
    assert done.returncode == 0, done.stderr

    # a second validation with AS-norm: epochs scored again (no AS-norm figures yet), and the average
    second = run_in_process("validate", "--poll", "0.2", "--score-norm", "asnorm", "--cohort-size", "3",
                            "--cohort-files", "1", str(trn.root), PROTOCOL, db=db_path, database=demo_corpus)
    assert second.returncode == 0, second.stderr
    assert "AS-norm, top 3 of 8 training speakers" in second.stderr
    with open_store(db_path) as store:
        run = store.find_runs(kind="validate")[0]
        rows = store.validations(run["id"])
        named = [c for c in store.checkpoints(train_id) if c["name"]]
    top2 = [int(e) for e in yaml.safe_load(named[0]["averaged"])]
    assert [(r["checkpoint_name"], r["epoch"]) for r in rows] == sorted(
        [(None, 1), (None, 2), (None, 3), ("avg-top2", max(top2))], key=lambda r: (r[1], r[0] is not None))
    assert all(r["cohort_size"] == 3 and r["eer_asnorm_low"] <= r["eer_asnorm"] <= r["eer_asnorm_high"]
               for r in rows)
    avg = next(r for r in rows if r["checkpoint_name"])
    assert avg["scores_path"] == str(val.score_file("avg-top2").resolve())
    is_target, normed = read_scores(val.normalised_score_file("avg-top2"))
    assert len(normed) == 48 and not np.allclose(normed, read_scores(val.score_file("avg-top2"))[1])
    assert avg["eer_asnorm"] == pytest.approx(result_from_scores("avg-top2", is_target, normed).eer)
    assert isinstance(read_params(val).checkpoint, int)  # the automatic choice stays on epochs

    picked = run_in_process("pick", "--epoch", "avg-top2", str(val.root), db=db_path)
    assert picked.returncode == 0, picked.stderr
    assert read_params(val).checkpoint == "avg-top2"

    # verify --score-norm asnorm: a trial's two files get its AS-norm score, with the cohort the
    # validation kept, decided at the AS-norm EER threshold
    assert all(val.cohort_file(c).is_file() for c in (1, 2, 3, "avg-top2"))
    reference, score, uri1, uri2 = val.normalised_score_file("avg-top2").read_text().split("\n")[0].split()
    audio = {str(f["uri"]): str(f["audio"]) for f in subset_files(load_protocol(PROTOCOL, str(demo_corpus)), "test")}
    verified = run_in_process("verify", "--score-norm", "asnorm", str(val.root), audio[uri1], audio[uri2], db=db_path)
    assert verified.returncode == 0, verified.stderr
    (line,) = verified.stdout.strip().splitlines()
    # the embeddings agree to ~1e-6 (other batches); AS-norm divides by the spread of the cohort scores
    assert float(line.split("\t")[2]) == pytest.approx(float(score), abs=1e-3)
    assert f"reached its AS-norm EER of {100 * avg['eer_asnorm']:.2f} %" in verified.stderr
    assert "(top 3 of 8 cohort speakers)" in verified.stderr
    threshold = float(verified.stderr.split("threshold ")[1].split(":")[0])
    assert line.split("\t")[3] == ("same" if float(line.split("\t")[2]) >= threshold else "different")

    # AS-norm again: the checkpoints whose cohort was kept are reused; one without it (as an earlier
    # release left them) is scored again, and keeps it
    val.cohort_file(1).unlink()
    again = run_in_process("validate", "--poll", "0.2", "--score-norm", "asnorm", "--cohort-size", "3",
                           "--cohort-files", "1", str(trn.root), PROTOCOL, db=db_path, database=demo_corpus)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("scored before") == 3 and val.cohort_file(1).is_file(), again.stderr
    with open_store(db_path) as store:
        assert store.find_runs(kind="validate")[0]["best_checkpoint"] == "avg-top2"
    refused = run_in_process("pick", "--epoch", "avg-top9", str(val.root), db=db_path)
    assert refused.returncode == 2 and "avg-top9 has not been validated" in refused.stderr

    applied = run_in_process("apply", "--subset", "test", str(val.root), PROTOCOL, db=db_path, database=demo_corpus)
    assert applied.returncode == 0, applied.stderr
    out = val.extraction("avg-top2")
    assert yaml.safe_load(out.metadata.read_text())["epoch"] == "avg-top2"
    assert list(out.root.rglob("*.npy"))
    with open_store(db_path) as store:
        apply_run = store.find_runs(kind="apply")[0]
        extraction = store.extractions(apply_run["id"])[0]
    assert (extraction["checkpoint_name"], extraction["epoch"]) == ("avg-top2", max(top2))

    # a plain validation reuses every checkpoint's figures, but not the AS-norm ones it did not ask for
    plain = run_in_process("validate", "--poll", "0.2", str(trn.root), PROTOCOL, db=db_path, database=demo_corpus)
    assert plain.returncode == 0 and "scored before" in plain.stderr and "AS-norm" not in plain.stderr, plain.stderr
    with open_store(db_path) as store:
        rows = store.validations(store.find_runs(kind="validate")[0]["id"])
    assert len(rows) == 4 and all(r["eer_asnorm"] is None and r["cohort_size"] is None for r in rows)

    # another cohort (two files a speaker, not one): its AS-norm scores are made again, not taken
    # from the files the one-file cohort normalised (validate reused them, and recorded their EER)
    asnorm = ["--poll", "0.2", "--score-norm", "asnorm", "--cohort-size", "3", str(trn.root), PROTOCOL]
    same = run_in_process("validate", "--cohort-files", "1", *asnorm, db=db_path, database=demo_corpus)
    assert same.returncode == 0, same.stderr  # (scored again: the plain validation recorded no AS-norm)
    kept = read_cohort_means(val.cohort_file(2)).key
    other = run_in_process("validate", "--cohort-files", "2", *asnorm, db=db_path, database=demo_corpus)
    assert other.returncode == 0 and "scored before" not in other.stderr, other.stderr
    assert kept is not None and read_cohort_means(val.cohort_file(2)).key not in (None, kept)
