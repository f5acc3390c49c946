"""Groups of seeds, the significance of a difference and overlaid DET curves, driven with the pilot on a
real runs database and real score files (written as validate writes them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.screens.compare import CompareScreen
from app.widgets.plots import EerPlot
from engine.compare.significance import compare_groups
from engine.layout import TrainingDir, ValidationDir
from engine.store import open_store
from engine.validation.det import load_epoch, miss_at_false_alarm
from tests.app.conftest import compare_runs, make, open_run, showing, wait_for
from tests.engine.seeded_groups import PROTOCOL, add_seeded_run

#: a better setup (its targets further from its non-targets) and a worse one, three seeds each
GROUPS = (("resnet34-lm", 1.5), ("tdnn-small", 0.8))


def _lab(root: Path, monkeypatch: pytest.MonkeyPatch, groups=GROUPS, singles: tuple[str, ...] = ()) -> Path:
    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.delenv("SPKEMB_DB", raising=False)
    with open_store(root / "runs.db") as store:
        for group, separation in groups:
            for seed in (0, 1, 2):   # seeds that train unequally: a band of some width
                add_seeded_run(store, root / "experiments", group, seed, separation * (1 + 0.1 * seed),
                               per_speaker=60)
        for k, name in enumerate(singles):
            add_seeded_run(store, root / "experiments", None, 10 + k, 1.0 + 0.4 * k, name=name)
    return root


def _val_dir(root: Path, folder: str) -> ValidationDir:
    return TrainingDir(root / "experiments" / folder / "train" / f"{PROTOCOL}.train").validation(PROTOCOL, "test")


def _score_file(root: Path, folder: str) -> Path:
    return _val_dir(root, folder).score_file(3)


async def test_a_group_of_three_seeds_shows_its_mean_std_and_band(tmp_path: Path, monkeypatch) -> None:
    root = _lab(tmp_path / "ws", monkeypatch, groups=GROUPS[:1])
    with open_store(root / "runs.db") as store:
        band = store.group_epochs("resnet34-lm")
    app = make(root)
    async with app.run_test(size=(150, 45)) as pilot:
        await open_run(pilot, "resnet34-lm seed 1", runs=6)
        plot = app.screen.query_one(EerPlot)
        await wait_for(pilot, lambda: plot.series and len(plot.series[0].band) == 3)
        assert list(plot.series[0].band) == band and plot.series[0].band_label == "resnet34-lm"
        await pilot.pause()
        drawn = plot.render().plain
        assert "resnet34-lm mean ± std (3 seeds)" in drawn
        # the band's two edges are drawn with their own marker, on either side of the mean
        assert drawn.count("·") >= 6
        assert all(b.std > 0 for b in band)


@pytest.mark.slow
async def test_compare_of_two_groups_shows_the_bootstrap_interval_and_verdict(tmp_path: Path, monkeypatch) -> None:
    root = _lab(tmp_path / "ws", monkeypatch)
    names = tuple(f"{group} seed {seed}" for group, _ in GROUPS for seed in (0, 1, 2))
    expected = compare_groups([_score_file(root, f"{GROUPS[0][0]}-{s}") for s in (0, 1, 2)],
                              [_score_file(root, f"{GROUPS[1][0]}-{s}") for s in (0, 1, 2)])
    app = make(root)
    async with app.run_test(size=(150, 45)) as pilot:
        await compare_runs(pilot, names, runs=12)
        panel = app.screen.query_one("#significance")
        await wait_for(pilot, lambda: "A better" in str(panel.render()), timeout=60)
        text = str(panel.render())
        assert "A = group resnet34-lm (3 seeds), B = group tdnn-small (3 seeds)" in text
        for difference in expected:
            assert difference.describe() in text
        eer = expected[0]
        assert eer.verdict == "A better" and eer.unit == "speakers" and eer.seeds == (3, 3)
        # the spread between seeds widens the interval: Student's t on Welch's degrees of freedom
        assert eer.high < 0 and eer.df is not None
        assert f"over 8 speakers and seeds (3 and 3, t on {eer.df:.2g} df))" in text
        # each group's band is drawn once, beside its three runs
        bands = [s.band_label for s in app.screen.query_one(EerPlot).series if s.band]
        assert bands == ["resnet34-lm", "tdnn-small"]


@pytest.mark.slow
async def test_compare_of_one_groups_seeds_says_there_is_one_system(tmp_path: Path, monkeypatch) -> None:
    """The significance line stayed empty when every marked run was of one group."""
    root = _lab(tmp_path / "ws", monkeypatch, groups=GROUPS[:1])
    app = make(root)
    async with app.run_test(size=(150, 45)) as pilot:
        await compare_runs(pilot, tuple(f"{GROUPS[0][0]} seed {seed}" for seed in (0, 1)), runs=6)
        panel = app.screen.query_one("#significance")
        await wait_for(pilot, lambda: "one system only" in str(panel.render()))
        assert str(panel.render()).startswith("group resnet34-lm (2 seeds): one system only — mark a run outside it")


@pytest.mark.slow
async def test_the_overlaid_det_of_three_runs_with_miss_rates_at_false_alarm_rates(tmp_path: Path,
                                                                                  monkeypatch) -> None:
    from app.screens.det import DetScreen
    from app.widgets.det_plots import DetPlot

    singles = ("system-a", "system-b", "system-c")
    root = _lab(tmp_path / "ws", monkeypatch, groups=(), singles=singles)
    app = make(root)
    async with app.run_test(size=(150, 45)) as pilot:
        await compare_runs(pilot, singles, runs=6)
        assert isinstance(app.screen, CompareScreen)
        await pilot.press("d")
        await wait_for(pilot, lambda: showing(app, DetScreen) and len(app.screen.shown) == 3)
        det = app.screen
        assert len(det.query_one(DetPlot).shown) == 3
        await pilot.pause()
        legend = det.query_one(DetPlot).render().plain
        assert all(name in legend for name in singles)
        table = det.query_one("#det-table")
        assert table.row_count == 3
        for k, name in enumerate(singles):
            row = [str(c) for c in table.get_row_at(k)]
            curve = load_epoch(_val_dir(root, f"{name}-{10 + k}"), 3).curve
            misses = miss_at_false_alarm(curve)
            assert None not in misses
            assert name in row[0]
            assert row[1] == f"{100 * curve.eer:.2f}"
            assert row[3:] == [f"{100 * m:.2f}" for m in misses]


def test_compare_weighs_the_checkpoint_and_the_trial_list_the_report_shows(tmp_path: Path) -> None:
    """The folder's pick, not the validate run of the lowest EER; averaged weights by name; one list for all."""
    from app.data.reader import read_curves
    from app.screens.compare_systems import det_source, shared_trials
    from tests.engine.report_db import PROTOCOL as DEMO
    from tests.engine.report_db import make_compared, validate_again

    made = make_compared(tmp_path, asnorm=False, diarized=False)
    sinc, resnet = made.ids["sinc"], made.ids["resnet-s1"]
    val_dir = str(TrainingDir(tmp_path / "sinc" / "train" / f"{DEMO}.train").validation(DEMO, "development").root)
    validate_again(made, "sinc", (3,), best=None)  # newest, nothing picked yet: the folder's pick (2) stands
    (read,) = read_curves(made.db, [sinc])
    assert (det_source(read).name, det_source(read).val_dir) == (2, val_dir)
    again = validate_again(made, "sinc", (3,), best=3)
    with open_store(made.db) as store:
        store.set_best(again, epoch=3, eer=None, how="manual", checkpoint="avg-top2")
    (read,) = read_curves(made.db, [sinc])
    assert det_source(read).name == "avg-top2"
    # a list only one of the runs was validated on is not the one they are weighed on
    with open_store(made.db) as store:
        store.create_run(kind="validate", exp_dir=tmp_path / "sinc", out_dir=tmp_path / "sinc" / "other",
                         protocol=DEMO, subset="test", config={}, command=["spkemb-engine", "validate"],
                         device="cpu", target_epoch=3, parent_id=sinc)
    runs = read_curves(made.db, [sinc, resnet])
    assert shared_trials(runs) == f"{DEMO}.development"
    assert det_source(runs[0], shared_trials(runs)).val_dir == val_dir
    assert det_source(runs[0]).val_dir == val_dir  # its newest folder scored nothing: the one that did speaks


def test_with_no_pick_compare_falls_back_as_the_report_does(tmp_path: Path) -> None:
    """The lowest EER of the folder's checkpoints, averaged weights included (Compare left them out)."""
    from app.data.reader import read_curves
    from app.screens.compare_systems import det_source
    from engine.records import ValidationResult
    from engine.store.pivot import compared_runs
    from tests.engine.report_db import make_compared

    made = make_compared(tmp_path, asnorm=False, diarized=False)
    sinc, val = made.ids["sinc"], made.ids["sinc val"]
    with open_store(made.db) as store:
        store.set_best(val, epoch=None, eer=None, how="lowest-eer")
        store.add_validation(val, ValidationResult(epoch=3, checkpoint_name="avg-top2", eer=0.0), train_run_id=sinc)
        (run,) = compared_runs(store, [sinc])
    (read,) = read_curves(made.db, [sinc])
    assert det_source(read).name == "avg-top2" == run.scored[0].checkpoint_name


def test_compare_reads_each_training_runs_own_validators(workspace: Path) -> None:
    """A training run's validate runs are its children, not the validate runs of the whole database."""
    from app.data.reader import read_curves

    with open_store(workspace / "runs.db", readonly=True) as store:
        ids = {r["name"]: r["id"] for r in store.runs()}
    curves = read_curves(workspace / "runs.db", [ids["aam-m0.2"], ids["aam-m0.1"], ids["softmax"],
                                                 ids["aam-m0.1 validate"]])
    assert [[v.name for v in c.validators] for c in curves] == [
        ["aam-m0.2 validate"], ["aam-m0.1 validate"], [], ["aam-m0.1 validate"]]
