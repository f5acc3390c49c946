"""Groups, seeds, tags and notes: recorded at launch, edited later, listed, and a group's seeds averaged."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from engine.cli import parse_command
from engine.compare.pivot import Stat
from engine.errors import StoreError
from engine.records import ValidationResult
from engine.store import EventWriter, import_events, open_store
from engine.store.db import connect
from engine.store.migrations import known_migrations
from engine.store.runs import Store
from engine.store.typed_reads import run_of
from engine.store.upgrade import migrate
from tests.engine.engine_runner import run_in_process
from tests.engine.test_runs_cli import engine
from tests.engine.test_train import PROTOCOL, make_exp

TRAIN = dict(kind="train", exp_dir="e", protocol="P", subset="train", config={}, command=["spkemb-engine", "train"],
             device="cpu")


def add_seed(store: Store, group: str, seed: int, eer: float | None) -> int:
    """A training run of ``group`` trained with ``seed``, and its validation that picked ``eer``."""
    train = store.create_run(**TRAIN, out_dir=f"e{seed}/train/P.train", seed=seed, run_group=group)
    if eer is not None:
        val = store.create_run(kind="validate", exp_dir="e", out_dir=f"e{seed}/val", protocol="P", subset="test",
                               config={}, command=["validate"], device="cpu", parent_id=train)
        store.set_best(val, epoch=3, eer=eer + 0.01, how="lowest-eer")  # an older pick, superseded
        val = store.create_run(kind="validate", exp_dir="e", out_dir=f"e{seed}/val", protocol="P", subset="test",
                               config={}, command=["validate"], device="cpu", parent_id=train)
        store.set_best(val, epoch=5, eer=eer, how="lowest-eer")
    return train


def test_a_database_of_the_previous_release_gains_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = connect(path)
    assert migrate(db, path, stop_before="m008_groups_tags_notes")[-1] == "m007_checkpoint_hashes"
    old = Store(db, path)
    run_id = old.db.conn.execute(
        "INSERT INTO runs (kind, status, exp_dir, out_dir, protocol, subset, config, command, device) "
        "VALUES ('train', 'completed', 'e', 'o', 'P', 'train', '{}', '[]', 'cpu')").lastrowid
    old.close()
    conn = sqlite3.connect(path)
    assert "run_group" not in [c[1] for c in conn.execute("PRAGMA table_info(runs)")]
    conn.close()

    with open_store(path) as store:
        run = store.run(run_id)
        assert run is not None
        assert (run["seed"], run["run_group"], run["tags"], run["note"]) == (None, None, [], None)
        store.set_labels(run_id, run_group="old-setup", add_tags=["legacy"], note="from the old release")
        assert [r["id"] for r in store.runs(group="old-setup", tag="legacy")] == [run_id]
        assert store.query("PRAGMA user_version")[1] == [(len(known_migrations()),)]  # every later one too
        _, index = store.query("SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '%run_group%'")
        assert index


def test_labels_recorded_at_creation_in_the_database_and_through_an_event_file(tmp_path: Path) -> None:
    labels = dict(seed=7, run_group="resnet34-lm", tags=["baseline", "lm"], note="first try, lr 0.01")
    events = tmp_path / "events.jsonl"
    with EventWriter(events) as writer:
        uid = writer.create_run(**TRAIN, out_dir="e/train/P.train", **labels)
        writer.set_status(uid, "completed")
    with open_store(tmp_path / "runs.db") as store:
        direct = store.create_run(**TRAIN, out_dir="x/train/P.train", **labels)
        import_events(events, store)
        (imported,) = [r for r in store.runs() if r["id"] != direct]
        for run in (store.run(direct), imported):
            assert run is not None
            assert (run["seed"], run["run_group"], run["tags"], run["note"]) == (
                7, "resnet34-lm", ["baseline", "lm"], "first try, lr 0.01")
        # a validate run of a grouped training run is listed with its group
        val = store.create_run(kind="validate", exp_dir="e", out_dir="v", protocol="P", subset="test", config={},
                               command=["validate"], device="cpu", parent_id=direct)
        assert store.run(val)["run_group"] == "resnet34-lm"
        record = run_of(store.run_summaries()[0])
        assert record.tags == () and record.run_group == "resnet34-lm"
        assert run_of(store.run_summaries()[-1]).tags == ("baseline", "lm")


def test_train_options_parse_into_the_request() -> None:
    command, request = parse_command(["train", "--seed", "3", "--group", "resnet34-lm", "--tag", "baseline",
                                      "--tag", "lm", "--note", "lr 0.01", "exp", PROTOCOL])
    assert command == "train"
    assert (request.seed, request.group, request.tag, request.note) == (3, "resnet34-lm", ("baseline", "lm"),
                                                                       "lr 0.01")


@pytest.mark.parametrize("args", [["--group", "two words"], ["--tag", ""], ["--tag", "a,b"]])
def test_a_bad_group_or_tag_is_one_line(args: list[str], tmp_path: Path) -> None:
    out = engine("train", *args, str(tmp_path), PROTOCOL)
    assert out.returncode == 2
    assert out.stderr.startswith("spkemb-engine train: error:") and len(out.stderr.splitlines()) == 1
    assert "Traceback" not in out.stderr


def test_runs_filters_by_group_and_tag(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    with open_store(db) as store:
        a = store.create_run(**TRAIN, out_dir="a", run_group="g1", tags=["x", "y"], seed=7)
        b = store.create_run(**TRAIN, out_dir="b", run_group="g1", tags=["y"], seed=8)
        c = store.create_run(**TRAIN, out_dir="c", run_group="g2", tags=["xx"])
    def ids(*args: str) -> list[int]:
        out = engine("runs", "--format", "json", "--db", str(db), *args)
        assert out.returncode == 0, out.stderr
        return [r["id"] for r in json.loads(out.stdout)]
    assert ids("--group", "g1") == [b, a]
    assert ids("--tag", "x") == [a]        # a tag matches whole, not as a part of "xx"
    assert ids("--tag", "y", "--group", "g1") == [b, a]
    assert ids("--group", "g2", "--tag", "y") == []
    assert ids("--group", "nothing") == []
    table = engine("runs", "--db", str(db))
    assert table.returncode == 0 and "g2 #xx" in table.stdout and "group/tags" in table.stdout
    # each seed of a group beside it: what tells its runs apart
    header, *rows = [line.split() for line in table.stdout.splitlines() if line.strip()][1:]
    by_id = {int(r[0]): r for r in rows if r[0].isdigit()}
    assert "seed" in header and "7" in by_id[a] and "8" in by_id[b] and "7" not in by_id[b]
    assert c


def test_tag_command_edits_and_prints(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    with open_store(db) as store:
        train = store.create_run(**TRAIN, out_dir="t", tags=["old"])
        val = store.create_run(kind="validate", exp_dir="e", out_dir="v", protocol="P", subset="test", config={},
                               command=["validate"], device="cpu", parent_id=train)
        applied = store.create_run(kind="apply", exp_dir="e", out_dir="v/apply/3", protocol="P", subset="test",
                                   config={}, command=["apply"], device="cpu", parent_id=val)
    out = engine("tag", str(train), "--group", "resnet34-lm", "--add-tag", "baseline", "--add-tag", "lm",
                 "--remove-tag", "old", "--note", "the reference", "--db", str(db))
    assert out.returncode == 0, out.stderr
    assert "resnet34-lm #baseline #lm" in out.stdout and "note: the reference" in out.stdout
    with open_store(db, readonly=True) as store:
        run = store.run(train)
        assert (run["run_group"], run["tags"], run["note"]) == ("resnet34-lm", ["baseline", "lm"], "the reference")
        assert store.run(val)["run_group"] == "resnet34-lm"   # its validation follows it
        assert store.run(applied)["run_group"] == "resnet34-lm"   # and the extraction of that (runs --group)
    out = engine("tag", str(train), "--group", "", "--note", "", "--remove-tag", "lm", "--db", str(db))
    assert out.returncode == 0, out.stderr
    with open_store(db, readonly=True) as store:
        run = store.run(train)
        assert (run["run_group"], run["tags"], run["note"]) == (None, ["baseline"], None)
    # a missing run, a bad tag: one line, exit 2, nothing changed
    for args in (["999", "--add-tag", "x"], [str(train), "--group", "a b"]):
        bad = engine("tag", *args, "--db", str(db))
        assert bad.returncode == 2, bad.stdout
        assert bad.stderr.startswith("spkemb-engine tag: error:") and len(bad.stderr.splitlines()) == 1
    assert "no run 999" in engine("tag", "999", "--db", str(db)).stderr
    with open_store(db, readonly=True) as store:
        assert store.run(train)["tags"] == ["baseline"]

    # a validation or an extraction follows its training's group: one of its own was listed by `runs
    # --group` but left out of the group's figures, and `report --group` said the group had no training run
    for run in (val, applied):
        bad = run_in_process("tag", str(run), "--group", "other", "--db", str(db))
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
        kind = "validate" if run == val else "apply"
        assert (f"run {run} is a {kind} run: its group is its training run's, which it follows; give it to "
                f"training run {train} (`spkemb-engine tag {train} --group other`)") in bad.stderr
        # its tags and note are its own, and its group unchanged is no change
        assert run_in_process("tag", str(run), "--group", "", "--add-tag", "mine", "--db", str(db)).returncode == 0
    with open_store(db, readonly=True) as store:
        assert [store.run(r)["run_group"] for r in (train, val, applied)] == [None, None, None]
        assert store.run(applied)["tags"] == ["mine"]


def test_a_group_of_three_seeds_reads_as_mean_and_std(tmp_path: Path) -> None:
    with open_store(tmp_path / "runs.db") as store:
        for seed, eer in ((0, 0.0200), (1, 0.0215), (2, 0.0230)):
            add_seed(store, "resnet34-lm", seed, eer)
        add_seed(store, "resnet34-lm", 3, None)            # still training: counted, not averaged
        add_seed(store, "other", 0, 0.5)
        summary, alone = store.group_summary("resnet34-lm"), store.group_summary("other")
    assert summary.runs == 4 and summary.seeds == (0, 1, 2, 3)
    assert summary.eers == (0.0200, 0.0215, 0.0230)
    assert summary.mean == pytest.approx(0.0215)
    assert summary.std == pytest.approx(math.sqrt((0.0015 ** 2 * 2) / 2))
    assert summary.trials == "P.test"
    assert summary.describe() == "group resnet34-lm: 4 runs, EER 2.15 ± 0.15 % on P.test (3 validated)"
    # one EER has no spread: none is shown (a sample std over one run is undefined, not 0)
    assert alone.std is None
    assert alone.describe() == "group other: 1 run, EER 50.00 % on P.test (one EER: no spread yet)"
    assert Stat.of([0.5], group=True) == Stat(0.5, None, 1) and Stat.of([0.5], group=True).text(100) == "50.00"


def test_a_bad_label_is_refused_by_the_store(tmp_path: Path) -> None:
    with open_store(tmp_path / "runs.db") as store:
        run = store.create_run(**TRAIN, out_dir="o")
        with pytest.raises(StoreError, match="one word"):
            store.set_labels(run, add_tags=["two words"])
        with pytest.raises(StoreError, match="no run 99"):
            store.set_labels(99, note="x")
        with pytest.raises(StoreError, match="group 'a b'"):   # e.g. from an edited event file
            store.create_run(**TRAIN, out_dir="p", run_group="a b")
        assert len(store.runs()) == 1


def test_train_records_its_seed_group_tags_and_note(tmp_path: Path, demo_corpus: Path) -> None:
    exp, db = make_exp(tmp_path, "exp"), tmp_path / "runs.db"
    done = run_in_process("train", "--to", "1", "--parallel", "0", "--device", "cpu", "--seed", "5",
                          "--group", "demo-lm", "--tag", "smoke", "--tag", "cpu", "--note", "one epoch", str(exp),
                          PROTOCOL, db=db, database=demo_corpus)
    assert done.returncode == 0, done.stderr
    with open_store(db, readonly=True) as store:
        (run,) = store.runs(kind="train", group="demo-lm", tag="smoke")
    assert (run["seed"], run["tags"], run["note"]) == (5, ["smoke", "cpu"], "one epoch")


def test_the_example_query_averages_each_group(tmp_path: Path) -> None:
    from engine.store import EXAMPLE_QUERIES

    with open_store(tmp_path / "runs.db") as store:
        for seed, eer in ((0, 0.0200), (1, 0.0215), (2, 0.0230)):
            add_seed(store, "resnet34-lm", seed, eer)
        add_seed(store, "resnet34-lm", 3, None)
        add_seed(store, "other", 0, 0.05)
        # the first seed validated on the development list too: a list of its own, not in test's mean
        _validate(store, store.runs(kind="train", group="resnet34-lm")[-1]["id"], "development", 0.5)
        columns, rows = store.query(EXAMPLE_QUERIES["best EER of each group (its seeds), per trial list"])
    groups = [dict(zip(columns, row, strict=True)) for row in rows]
    assert [(g["group"], g["trials"], g["runs"], g["validated"], g["mean_eer_pct"], g["min_eer_pct"],
             g["max_eer_pct"]) for g in groups] == [("resnet34-lm", "P.development", 4, 1, 50.0, 50.0, 50.0),
                                                    ("resnet34-lm", "P.test", 4, 3, 2.15, 2.0, 2.3),
                                                    ("other", "P.test", 1, 1, 5.0, 5.0, 5.0)]


def _validate(store: Store, train: int, subset: str, eer: float) -> int:
    val = store.create_run(kind="validate", exp_dir="e", out_dir=f"v{train}{subset}", protocol="P", subset=subset,
                           config={}, command=["validate"], device="cpu", parent_id=train)
    store.set_best(val, epoch=2, eer=eer, how="lowest-eer")
    return val


def test_a_group_mean_reads_one_trial_list(tmp_path: Path) -> None:
    """A seed validated on development after test was averaged with the other seeds' test EERs."""
    with open_store(tmp_path / "runs.db") as store:
        runs = [add_seed(store, "g", seed, eer) for seed, eer in ((0, 0.20), (1, 0.21), (2, 0.22))]
        _validate(store, runs[0], "development", 0.40)
        summary = store.group_summary("g")
        assert (summary.trials, summary.eers) == ("P.test", (0.20, 0.21, 0.22))  # most runs: test
        for run in runs[1:]:  # as many on development now, validated last: development
            _validate(store, run, "development", 0.41)
        summary = store.group_summary("g")
        assert (summary.trials, summary.eers) == ("P.development", (0.40, 0.41, 0.41))
        assert store.group_summary("none").trials is None


def test_a_sweeps_group_reads_as_its_best_trial_with_no_band(tmp_path: Path) -> None:
    """The trials of a sweep differ in their settings: their mean ± std (a pruned trial's early EER
    in it) described no system, and neither did a band drawn over them."""
    from engine.store.sweeps import NewTrial

    with open_store(tmp_path / "runs.db") as store:
        sweep = store.create_sweep(name="lr", method="grid", base_config="c.yml", sweep_dir="s", protocol="P",
                                   subset="train", space={}, seeds=1, epochs=2, planned=3, slots="cpu",
                                   prune="median", prune_after=1, run_group="lr", command=[])
        trials = [store.add_trial(sweep, NewTrial(number=n, exp_dir=f"t{n}", out_dir=f"t{n}/train/P.train",
                                                  params={}, seed=0, diff=[], config={}, train=None, validate=None,
                                                  target_epoch=2), run_group="lr", protocol="P", subset="train")
                  for n in range(3)]
        store.set_pruned(trials[2], epoch=1, reason="worse than the median")
        runs = [add_seed(store, "lr", seed, eer) for seed, eer in ((0, 0.30), (1, 0.12), (2, 0.45))]
        seeds = [add_seed(store, "seeds", seed, 0.2) for seed in (0, 1)]
        for run in runs + seeds:  # an epoch each validated: what a band is drawn from
            validate = max(r["id"] for r in store.children(run) if r["kind"] == "validate")
            store.add_validation(validate, ValidationResult(epoch=1, eer=0.5))
        summary = store.group_summary("lr")
        assert (summary.sweep, summary.pruned, summary.best_run) == (True, 1, runs[1])
        assert summary.describe() == f"sweep lr: 3 trials (1 pruned), best EER 12.00 % (#{runs[1]}) on P.test"
        assert store.group_epochs("lr") == []
        assert not store.group_summary("seeds").sweep and store.group_epochs("seeds")


def test_sbatch_passes_the_group_tags_and_note_on_to_train(tmp_path: Path) -> None:
    from engine.training.slurm import batch_script

    _, request = parse_command(["sbatch", "--group", "resnet34-lm", "--tag", "a", "--tag", "b", "--note",
                                "-x y", str(tmp_path), PROTOCOL])
    script = batch_script(request)
    line = next(line for line in script.splitlines() if "--group" in line)
    assert "--group=resnet34-lm --tag=a --tag=b '--note=-x y'" in line


def test_a_group_reads_as_mean_and_std_per_epoch(tmp_path: Path) -> None:
    from tests.engine.seeded_groups import add_seeded_run

    with open_store(tmp_path / "runs.db") as store:
        runs = [add_seeded_run(store, tmp_path, "resnet34-lm", seed, 2.0) for seed in (0, 1, 2)]
        add_seeded_run(store, tmp_path, "other", 0, 0.5)
        # a newer validate run of the first seed that has scored nothing yet does not hide its figures
        store.create_run(kind="validate", exp_dir="e", out_dir="new", protocol="P", subset="test",
                         config=None, command=["validate"], device="cpu", parent_id=runs[0])
        band = store.group_epochs("resnet34-lm")
        per_run = {run: {v["epoch"]: v["eer"] for v in store.validations(train_run_id=run)} for run in runs}
    assert [b.epoch for b in band] == [1, 2, 3]
    for b in band:
        eers = [per_run[run][b.epoch] for run in runs]
        assert b.eers == tuple(eers)
        assert b.mean == pytest.approx(sum(eers) / 3)
        assert b.std == pytest.approx(float(np.std(eers, ddof=1)))
