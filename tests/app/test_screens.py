"""Run detail, configs, compare and query screens driven with the pilot on a filled database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from app.screens.configs import ConfigsScreen
from app.screens.query import QueryScreen
from app.screens.run_detail import RunDetailScreen
from app.widgets.epoch_table import EpochTable
from app.widgets.plots import EerPlot, EerSeries, LossPlot
from engine.records import AsNormFigures, Checkpoint, ValidationResult
from tests.app.conftest import compare_runs, make, open_configs, open_run, showing, wait_for, write_random_scores


async def test_run_detail_shows_curves_and_epochs(workspace: Path) -> None:
    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        await open_run(pilot, "aam-m0.2")
        screen = app.screen
        await wait_for(pilot, lambda: screen.query_one(EpochTable).row_count == 3)
        assert len(screen.steps) == 60
        assert len(screen.query_one(LossPlot).series[0].steps) == 60
        assert screen.query_one(EerPlot).series[0].best_epoch == 2
        epochs = screen.query_one(EpochTable)
        best = [epochs.get_row_at(i) for i in range(3) if epochs.get_row_at(i)[0].endswith(" ★")]
        assert len(best) == 1 and best[0][0] == "2 ★" and best[0][2] == "21.00"
        summary = str(screen.query_one("#summary").render())
        assert "experiments/aam-m0.2" in summary and "completed" in summary


async def test_query_returns_rows_and_refuses_writes(workspace: Path) -> None:
    app = make(workspace)
    async with app.run_test(size=(140, 36)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: showing(app, QueryScreen))
        screen = app.screen
        screen.query_one("#examples").value = "best EER per run"
        result = screen.query_one("#result")
        await wait_for(pilot, lambda: result.row_count == 2)
        assert "best_eer" in [str(c.label) for c in result.columns.values()]
        screen.query_one("#sql").text = "DELETE FROM runs"
        await pilot.press("ctrl+r")
        status = screen.query_one("#query-status")
        await wait_for(pilot, lambda: "read-only: DELETE is not allowed" in str(status.render()))
        screen.query_one("#sql").text = "ATTACH DATABASE 'x.db' AS x"  # relative to the cwd: workspace
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: "read-only: ATTACH is not allowed" in str(status.render()))
        assert not (workspace / "x.db").exists()
    from engine.store import open_store
    with open_store(workspace / "runs.db", readonly=True) as store:
        assert len(store.runs()) == 5


def _field(screen: ConfigsScreen, key: str):
    return screen.field(key)


@pytest.mark.slow
async def test_config_form_validates_inline_and_saves(workspace: Path) -> None:
    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_configs(pilot)
        # built once as it opens (the source Select's first Changed built it a second time: 0.4 s)
        await pilot.pause()
        assert screen.gen == 1
        margin = _field(screen, "task.params.margin")
        margin.value = "abc"
        error = screen.field_error("task.params.margin")
        await wait_for(pilot, lambda: "number" in str(error.render()))
        assert screen.action_save() is None
        margin.value = "0.3"
        await wait_for(pilot, lambda: str(error.render()) == "")
        screen.query_one("#exp-dir").value = str(workspace / "experiments" / "new-exp")
        saved = screen.action_save()
        assert saved == workspace / "experiments" / "new-exp"
        config = yaml.safe_load((saved / "config.yml").read_text())
        assert config["task"]["params"]["margin"] == 0.3
        from engine.config import load_config
        assert load_config(saved / "config.yml").task.margin == 0.3


@pytest.mark.slow
async def test_the_config_form_keeps_room_for_its_values_on_an_80_column_terminal(workspace: Path) -> None:
    """At 80x24 the names took 42 columns beside the preview: each value had 4."""
    app = make(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_configs(pilot)
        await pilot.pause()
        assert not screen.query_one("#preview").display
        assert _field(screen, "task.params.margin").size.width >= 30
        # a long key wraps after a dot, not inside a name ("…params.samp" / "le_rate")
        from app.widgets.key_label import KeyLabel

        (label,) = [k for k in screen.query(KeyLabel) if k.key == "feature_extraction.params.sample_rate"]
        assert label.render().splitlines() == ["feature_extraction.params.", "sample_rate"]
    async with make(workspace).run_test(size=(140, 40)) as pilot:  # wide: the preview beside the form
        wide = await open_configs(pilot)
        await pilot.pause()
        assert wide.query_one("#preview").display


@pytest.mark.slow
async def test_config_form_offers_the_recipe_template_beside_tutorial_and_demo(workspace: Path) -> None:
    from engine.config import load_config, parse_config, template_text

    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_configs(pilot)
        sources = [str(v) for _, v in screen.query_one("#source")._options]
        assert {"template:tutorial", "template:demo", "template:recipe"} <= set(sources)
        screen.query_one("#source").value = "template:recipe"
        await wait_for(pilot, lambda: "scheduler.params.warm_up_epoch" in screen.keys)
        assert _field(screen, "data_augmentation[0].name").value == "SpeedPerturb"
        assert _field(screen, "task.params.margin_scheduler.increase_type").value == "exp"
        assert screen.query_one("#exp-dir").value == "experiments/recipe"
        await pilot.pause(0.2)
        saved = screen.action_save()
    assert saved == workspace / "experiments" / "recipe"
    assert load_config(saved / "config.yml") == parse_config(template_text("recipe"))


@pytest.mark.slow
async def test_editing_a_used_config_makes_a_new_experiment(workspace: Path) -> None:
    from engine.config import template_text

    exp = workspace / "experiments" / "aam-m0.2"
    exp.mkdir(parents=True)
    original = template_text("demo")
    (exp / "config.yml").write_text(original)
    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_configs(pilot)
        await wait_for(pilot, lambda: f"exp:{exp}" in [str(v) for _, v in screen.query_one("#source")._options])
        screen.query_one("#source").value = f"exp:{exp}"
        await wait_for(pilot, lambda: screen.query_one("#exp-dir").value == "experiments/aam-m0.2")
        await wait_for(pilot, lambda: "task.params.margin" in screen.keys)
        await pilot.pause(0.2)
        _field(screen, "task.params.margin").value = "0.25"
        await pilot.pause(0.1)
        saved = screen.action_save()
    assert saved == workspace / "experiments" / "aam-m0.2-2"
    assert (exp / "config.yml").read_text() == original
    assert yaml.safe_load((saved / "config.yml").read_text())["task"]["params"]["margin"] == 0.25


@pytest.mark.slow
async def test_editing_the_workspaces_own_used_config_makes_a_new_experiment_inside_it(workspace: Path) -> None:
    """The demo's experiment is the workspace itself (EXP_DIR `.`): a used config edited there was saved as
    the workspace's sibling `ws-2`, outside the workspace, which the form then refused."""
    from engine.config import template_text
    from engine.store import open_store

    (workspace / "config.yml").write_text(template_text("demo"))
    with open_store(workspace / "runs.db") as store:
        store.create_run(kind="train", exp_dir=workspace, out_dir=workspace / "train" / "P.train", protocol="P",
                         subset="train", config={}, command=["spkemb-engine", "train"], device="cpu", name="demo")
    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_configs(pilot)
        await wait_for(pilot, lambda: f"exp:{workspace}" in [str(v) for _, v in screen.query_one("#source")._options])
        screen.query_one("#source").value = f"exp:{workspace}"
        await wait_for(pilot, lambda: "task.params.margin" in screen.keys)
        await pilot.pause(0.2)
        _field(screen, "task.params.margin").value = "0.25"
        await pilot.pause(0.1)
        saved = screen.action_save()
    assert saved == workspace / "experiments" / workspace.name
    assert not (workspace.parent / f"{workspace.name}-2").exists()


@pytest.mark.slow
async def test_compare_overlays_runs_and_lists_config_differences(workspace: Path) -> None:
    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        await compare_runs(pilot, ("aam-m0.2", "aam-m0.1"))
        diff = app.screen.query_one("#diff")
        await wait_for(pilot, lambda: diff.row_count >= 1)
        rows = [diff.get_row_at(i) for i in range(diff.row_count)]
        assert ["task.params.margin", "0.2", "0.1"] in [[str(c) for c in r] for r in rows] or \
            ["task.params.margin", "0.1", "0.2"] in [[str(c) for c in r] for r in rows]
        loss, eer = app.screen.query_one(LossPlot), app.screen.query_one(EerPlot)
        assert len(loss.series) == 2 and [len(s.steps) for s in loss.series] == [60, 60]
        assert all(len(s.validations) == 3 for s in eer.series)

        # a run that goes on training: its curves grow on the open screen
        from engine.store import open_store

        with open_store(workspace / "runs.db") as store:
            run = next(r for r in store.runs(kind="train") if r["name"] == "aam-m0.1")
            val = next(r for r in store.runs(kind="validate") if r["parent_id"] == run["id"])
            store.add_steps(run["id"], [{"step": 60 + s, "epoch": 4, "loss": 0.5} for s in range(20)])
            store.add_validation(val["id"], ValidationResult(epoch=4, eer=0.15, eer_low=0.1, eer_high=0.2,
                                                             mindcf_01=0.5, mindcf_005=0.4, threshold=0.5,
                                                             n_trials=400),
                                 train_run_id=run["id"])
        grown = next(i for i, s in enumerate(loss.series) if "aam-m0.1" in s.label)
        await wait_for(pilot, lambda: len(loss.series[grown].steps) == 80)
        assert [s["step"] for s in loss.series[grown].steps] == list(range(80))
        await wait_for(pilot, lambda: len(eer.series[grown].validations) == 4)
        assert len(loss.series[1 - grown].steps) == 60


@pytest.mark.slow
async def test_extract_offers_the_gpus_and_the_training_device(workspace: Path, tmp_path: Path,
                                                              monkeypatch) -> None:
    import sqlite3

    from app.dialogs.actions import ExtractDialog

    # a stand-in nvidia-smi on PATH, run for real by the dialog's worker
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\n"
                   "echo '0, GPU-5e1f, NVIDIA H100 80GB HBM3, 81559 MiB'\n"
                   "echo '1, GPU-77a0, NVIDIA H100 80GB HBM3, 81559 MiB'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    conn = sqlite3.connect(workspace / "runs.db")
    conn.execute("UPDATE runs SET device = 'cuda:1' WHERE name = 'aam-m0.2'")
    conn.commit()
    conn.close()

    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        await open_run(pilot, "aam-m0.2")
        await wait_for(pilot, lambda: app.screen.data and app.screen.data.validators)
        await pilot.press("e")
        await wait_for(pilot, lambda: showing(app, ExtractDialog))
        device = app.screen.query_one("#device")
        await wait_for(pilot, lambda: device.value == "cuda:1")
        assert [value for _, value in device._options] == ["cpu", "cuda:0", "cuda:1"]
        await pilot.press("escape")
        await wait_for(pilot, lambda: showing(app, RunDetailScreen))


def _errors(app) -> list[str]:
    return [str(n.message) for n in app._notifications if n.severity == "error"]


@pytest.mark.slow
async def test_config_form_refuses_a_folder_outside_the_workspace(workspace: Path) -> None:
    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_configs(pilot)
        for typed in ("../escaped", "experiments/../../escaped", str(workspace.parent / "escaped")):
            screen.query_one("#exp-dir").value = typed
            assert screen.action_save() is None
            await wait_for(pilot, lambda typed=typed: any(repr(typed) in e for e in _errors(app)))
        assert not (workspace.parent / "escaped").exists()
        assert [e for e in _errors(app) if "'..'" in e and "experiments/exp1" in e]
        screen.query_one("#exp-dir").value = "./experiments//mine/"  # harmless spellings still save
        assert screen.action_save() == workspace / "experiments" / "mine"


async def test_launch_refuses_a_subset_that_leaves_the_experiment(tmp_path: Path, demo_corpus: Path,
                                                                 tiny_exp: Path) -> None:
    from app.app import make_app
    from app.screens.launch import LaunchScreen

    app = make_app(tmp_path, db=tmp_path / "runs.db", database=demo_corpus, now=lambda: 0.0)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("l")
        await wait_for(pilot, lambda: showing(app, LaunchScreen))
        screen = app.screen
        await wait_for(pilot, lambda: screen.query_one("#protocol").value == "Demo.SpeakerVerification.Voices",
                       timeout=60)
        await wait_for(pilot, lambda: str(tiny_exp.resolve()) in [v for _, v in screen.query_one("#exp")._options])
        screen.query_one("#exp").value = str(tiny_exp.resolve())
        screen.query_one("#subset").value = "../../../escaped"
        screen.action_launch()
        await wait_for(pilot, lambda: any("'../../../escaped'" in e for e in _errors(app)))
        assert isinstance(app.screen, LaunchScreen) and not app.pending
    assert not list(tmp_path.rglob("train.log")) and not (tmp_path.parent / "escaped").exists()


async def test_launch_refuses_an_experiment_already_trained_on_that_protocol_with_the_tuis_fixes(
        tmp_path: Path, demo_corpus: Path, tiny_exp: Path) -> None:
    """A second Launch with the form's defaults started a training that failed at once, its reason naming
    `--resume`, a flag no TUI user types."""
    from app.launching.commands import trn_dir
    from app.screens.launch import LaunchScreen
    from engine.layout import TrainingDir

    protocol = "Demo.SpeakerVerification.Voices"
    trained = TrainingDir(trn_dir(tiny_exp, protocol, "train"))
    trained.weights.mkdir(parents=True)
    for epoch in (0, 1, 2):
        trained.checkpoint(epoch).write_bytes(b"")
    app = make(tmp_path, db=tmp_path / "runs.db", database=demo_corpus)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("l")
        await wait_for(pilot, lambda: showing(app, LaunchScreen))
        screen = app.screen
        await wait_for(pilot, lambda: screen.query_one("#protocol").value == protocol, timeout=60)
        await wait_for(pilot, lambda: str(tiny_exp.resolve()) in [v for _, v in screen.query_one("#exp")._options])
        screen.query_one("#exp").value = str(tiny_exp.resolve())
        await pilot.pause()
        said = "holds epochs 0..2 already: open its run in Runs to resume it (r) or fork it (f)"
        assert said in str(screen.query_one("#command").render())
        screen.action_launch()
        await wait_for(pilot, lambda: any(said in e for e in _errors(app)))
        assert isinstance(app.screen, LaunchScreen) and not app.pending
        screen.query_one("#subset").value = "development"  # another subset is another training folder
        await pilot.pause()
        assert "$ spkemb-engine train" in str(screen.query_one("#command").render())
    assert not list(tmp_path.rglob("train.log"))


async def test_run_detail_shows_averages_beside_the_best_epoch_and_toggles_asnorm(workspace: Path) -> None:
    """An avg-top2 validated with AS-norm: its row comes first with the comparison; `n` swaps the figures."""
    from engine.store import open_store

    with open_store(workspace / "runs.db") as store:
        train = next(r for r in store.runs(kind="train") if r["name"] == "aam-m0.2")
        val = next(r for r in store.runs(kind="validate") if r["parent_id"] == train["id"])
        store.add_checkpoint(train["id"], Checkpoint(epoch=3, step=None, path=f"{train['out_dir']}/weights/avg-top2.pt",
                             partial=False, name="avg-top2", averaged=[2, 3]))
        for epoch, name, eer, norm in [(1, None, 0.30, 0.25), (2, None, 0.21, 0.20), (3, None, 0.24, 0.19),
                                       (3, "avg-top2", 0.10, 0.12)]:
            asnorm = AsNormFigures(cohort_size=3, eer=norm, eer_low=norm - 0.1, eer_high=norm + 0.1, mindcf_01=0.4)
            store.add_validation(val["id"], ValidationResult(epoch=epoch, checkpoint_name=name, eer=eer,
                                                             eer_low=eer - 0.03, eer_high=eer + 0.03, mindcf_01=0.5,
                                                             mindcf_005=0.6, threshold=0.1, n_trials=400,
                                                             asnorm=asnorm),
                                 train_run_id=train["id"])
    app = make(workspace)
    async with app.run_test(size=(160, 40)) as pilot:
        await open_run(pilot, "aam-m0.2")
        screen = app.screen
        table = screen.query_one(EpochTable)
        await wait_for(pilot, lambda: table.row_count == 4)
        first = table.get_row_at(0)
        assert first[0] == "avg-top2" and first[2] == "10.00" and first[5] == "avg-top2.pt"
        assert first[6] == "-11.00 vs 2: better"   # 7–13 % lies below the best epoch's 18–24 %
        summary = str(screen.query_one("#summary").render())
        assert "avg-top2: EER 10.00 % [7.00, 13.00] vs best epoch 2: 21.00 % [18.00, 24.00] — better" in summary
        plot = screen.query_one(EerPlot)
        assert [v.checkpoint_name for v in plot.series[0].validations].count("avg-top2") == 1

        await pilot.press("n")
        await wait_for(pilot, lambda: table.get_row_at(0)[2] == "12.00")
        assert table.border_title == "epochs (AS-norm)" and "AS-norm" in plot.border_title
        assert table.get_row_at(1)[2] == "19.00" and table.get_row_at(0)[6] == "-7.00 vs 3: no clear difference"
        summary = str(screen.query_one("#summary").render())
        assert "vs best epoch 3: 19.00 % [9.00, 29.00] — no clear difference (intervals overlap)" in summary
        await pilot.press("n")
        await wait_for(pilot, lambda: table.get_row_at(0)[2] == "10.00")


@pytest.mark.slow
async def test_det_view_opens_for_the_selected_epoch(workspace: Path) -> None:
    from app.screens.det import DetScreen
    from app.widgets.det_plots import DetPlot, ScoreHistogramPlot
    from engine.validation.metrics import equal_error_rate
    from engine.validation.score_files import read_scores

    val_dir = (workspace / "experiments" / "aam-m0.2" / "train" / "Demo.SpeakerVerification.Voices.train"
               / "validate_equal_error_rate" / "Demo.SpeakerVerification.Voices.development")
    write_random_scores(val_dir, 3, seed=3)
    write_random_scores(val_dir, 2, seed=2)
    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        await open_run(pilot, "aam-m0.2")
        detail = app.screen
        epochs = detail.query_one(EpochTable)
        await wait_for(pilot, lambda: epochs.row_count == 3)
        epochs.move_cursor(row=0)  # epoch 3 (newest first); epoch 2 is the picked one
        await pilot.press("d")
        await wait_for(pilot, lambda: showing(app, DetScreen) and len(app.screen.shown) == 2)
        det = app.screen
        assert [s.label for s in det.query_one(DetPlot).shown] == ["epoch 3", "epoch 2 (picked)"]
        assert len(det.query_one(ScoreHistogramPlot).shown) == 2
        is_target, scores = read_scores(val_dir / "scores" / "0003.txt")
        eer = equal_error_rate(scores, is_target)[0]
        summary = str(det.query_one("#det-summary").render())
        assert f"epoch 3: EER {100 * eer:.2f} %" in summary and "50 target / 150 non-target" in summary
        det_plot, histogram = det.query_one(DetPlot), det.query_one(ScoreHistogramPlot)
        await pilot.pause()
        assert "epoch 2 (picked)" in det_plot.render().plain and "non-target" in histogram.render().plain
        # at 80x24 plotext's legends lay over the curves' start: the lines above and the border name them
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: not histogram.legends and "non-target" in str(histogram.border_subtitle))
        await pilot.pause()
        assert "epoch" not in det_plot.render().plain and "target" not in histogram.render().plain
        # a square in each epoch's colour (green, then blue: targets; red, then magenta: non-targets)
        assert str(histogram.border_subtitle) == ("[green]■[blue][/green]■[/blue] target  "
                                                  "[red]■[magenta][/red]■[/magenta] non-target")
        await pilot.resize_terminal(140, 40)
        await wait_for(pilot, lambda: histogram.legends and not histogram.border_subtitle)
        await pilot.pause()
        assert "epoch 2 (picked)" in det_plot.render().plain
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is detail)

        epochs.move_cursor(row=2)  # epoch 1: validated, but its score file is gone
        await pilot.press("d")
        await wait_for(pilot, lambda: showing(app, DetScreen) and app.screen.problems)
        assert "0001.txt does not exist" in app.screen.problems[0]
        assert [s.label for s in app.screen.shown] == ["epoch 2 (picked)"]


async def test_det_view_opens_for_averaged_weights(workspace: Path) -> None:
    """`d` on the averaged weights' row (the first after `average`) failed the app: int('avg-last2')."""
    from app.screens.det import DetScreen
    from app.widgets.det_plots import DetPlot
    from engine.records import ValidationResult
    from engine.store import open_store

    val_dir = (workspace / "experiments" / "aam-m0.2" / "train" / "Demo.SpeakerVerification.Voices.train"
               / "validate_equal_error_rate" / "Demo.SpeakerVerification.Voices.development")
    write_random_scores(val_dir, "avg-last2", seed=4)
    write_random_scores(val_dir, 2, seed=2)
    with open_store(workspace / "runs.db") as store:
        (val,) = [r for r in store.runs(kind="validate") if r["name"] == "aam-m0.2 validate"]
        store.add_validation(val["id"], ValidationResult(epoch=3, checkpoint_name="avg-last2", eer=0.2, eer_low=0.17,
                                                         eer_high=0.23, mindcf_01=0.6, mindcf_005=0.5, threshold=0.5,
                                                         n_trials=200), train_run_id=val["parent_id"])
    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        await open_run(pilot, "aam-m0.2")
        epochs = app.screen.query_one(EpochTable)
        await wait_for(pilot, lambda: epochs.row_count == 4)
        keys = [epochs.coordinate_to_cell_key((row, 0)).row_key.value for row in range(epochs.row_count)]
        epochs.move_cursor(row=keys.index("avg-last2"))
        await pilot.press("d")
        await wait_for(pilot, lambda: showing(app, DetScreen) and len(app.screen.shown) == 2)
        assert [s.label for s in app.screen.query_one(DetPlot).shown] == ["avg-last2", "epoch 2 (picked)"]


@pytest.mark.slow
async def test_det_view_from_compare_overlays_the_picked_epochs(workspace: Path) -> None:
    from app.screens.det import DetScreen
    from app.widgets.det_plots import DetPlot

    for name, seed in (("aam-m0.2", 5), ("aam-m0.1", 6)):
        write_random_scores(workspace / "experiments" / name / "train" / "Demo.SpeakerVerification.Voices.train"
                      / "validate_equal_error_rate" / "Demo.SpeakerVerification.Voices.development", 2, seed)
    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        await compare_runs(pilot, ("aam-m0.2", "aam-m0.1"))
        await pilot.press("d")
        await wait_for(pilot, lambda: showing(app, DetScreen) and len(app.screen.shown) == 2)
        labels = sorted(s.label for s in app.screen.query_one(DetPlot).shown)
        assert labels == ["#1 aam-m0.2 @2", "#3 aam-m0.1 @2"]
        assert not app.screen.problems


async def test_eer_plot_of_one_epoch_draws_an_error_bar_on_whole_epoch_ticks() -> None:
    from textual.app import App

    class Host(App):
        def compose(self):
            yield EerPlot()

    app = Host()
    async with app.run_test(size=(70, 20)) as pilot:
        plot = app.query_one(EerPlot)
        plot.set_series([EerSeries("EER", [ValidationResult(epoch=4, eer=0.20, eer_low=0.15, eer_high=0.25)], 4)])
        await pilot.pause()
        lines = plot.render().plain.splitlines()
        ticks = lines[-1].split()  # the x axis labels (the border says "per epoch")
        assert ticks == ["4"], lines
        # the interval is one vertical bar through the point, not dotted bands across the width
        bar = [line for line in lines if "│" in line[5:-1]]
        assert len(bar) >= 5 and "•" not in "".join(lines[1:-2])
        columns = {line.index("│", 5) for line in bar}
        assert len(columns) == 1


async def test_a_hand_picked_epoch_is_marked_and_captioned_as_picked_in_compare_as_in_the_detail() -> None:
    """Compare marked each run's lowest-EER epoch (its X at 3) while its significance line used the
    epoch picked by hand (1); the detail's caption called that pick "best"."""
    from textual.app import App

    from app.views.validation_view import picked
    from engine.records import Run

    by_hand = Run(id=2, kind="validate", status="completed", out_dir="v", best_epoch=1, best_how="manual")
    lowest = Run(id=3, kind="validate", status="completed", out_dir="v", best_epoch=3, best_how="lowest-eer")
    assert picked([by_hand]) == (1, True) and picked([lowest]) == (3, False) and picked([]) == (None, False)

    class Host(App):
        def compose(self):
            yield EerPlot()

    rows = [ValidationResult(epoch=e, eer=eer, eer_low=eer - 0.05, eer_high=eer + 0.05)
            for e, eer in ((1, 0.36), (2, 0.25), (3, 0.19))]
    async with Host().run_test(size=(100, 24)) as pilot:
        plot = pilot.app.query_one(EerPlot)
        plot.set_series([EerSeries("EER", rows, 1, picked=True)])
        await pilot.pause()
        assert str(plot.border_subtitle) == "picked epoch 1: EER 36.00 %"
        best, by_hand = picked([lowest])
        plot.set_series([EerSeries("EER", rows, best, picked=by_hand)])
        await pilot.pause()
        assert str(plot.border_subtitle) == "best epoch 3: EER 19.00 %"


@pytest.mark.slow
async def test_compare_legend_names_the_averaged_weights(workspace: Path) -> None:
    import html

    from engine.store import open_store

    with open_store(workspace / "runs.db") as store:
        train = next(r for r in store.runs(kind="train") if r["name"] == "aam-m0.2")
        val = next(r for r in store.runs(kind="validate") if r["parent_id"] == train["id"])
        store.add_validation(val["id"], ValidationResult(epoch=3, checkpoint_name="avg-top2", eer=0.10),
                             train_run_id=train["id"])
    app = make(workspace)
    async with app.run_test(size=(200, 50)) as pilot:
        await compare_runs(pilot, ("aam-m0.2", "aam-m0.1"))
        await pilot.pause(0.5)
        text = html.unescape(app.export_screenshot()).replace("\xa0", " ")
    assert "aam-m0.2: avg-top2 10.00 %" in text


async def test_at_80x24_a_runs_epoch_rows_are_in_sight(workspace: Path) -> None:
    """The wrapped summary (9 lines) and the log left the epoch table its column titles alone: d, f, l and
    p acted on a row nobody could see."""
    app = make(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_run(pilot, "aam-m0.2")
        epochs = app.screen.query_one(EpochTable)
        await wait_for(pilot, lambda: epochs.row_count == 3)
        # its border (2 lines) and titles (1), then its three epochs
        assert epochs.region.height >= 6 and app.screen.query_one("#summary").region.height <= 4
        # the picked epoch, its EER and whole interval in sight (`21.00–27.00` was cut to `21.00–27`), with
        # room for the scroll bar of a run of many epochs
        columns = list(epochs.columns.values())
        assert [c.label.plain for c in columns[:4]] == ["epoch", "loss", "EER %", "95% CI"]
        assert sum(c.get_render_width(epochs) for c in columns[:4]) <= epochs.region.width - 2 - 2
        # and plots with rows to draw on: the EER plot's title and axis label had left its points one
        for plot in (app.screen.query_one(LossPlot), app.screen.query_one(EerPlot)):
            await wait_for(pilot, lambda plot=plot: plot.series)
            lines = plot.render().plain.splitlines()
            frame = [i for i, line in enumerate(lines) if line.lstrip(" .0123456789").startswith(("┌", "└"))]
            assert len(frame) == 2 and frame[1] - frame[0] - 1 >= 3, lines
            assert plot.region.bottom <= epochs.region.y  # whole, above the table


@pytest.mark.slow
async def test_the_launch_forms_drop_downs_show_their_value_on_one_line(workspace: Path) -> None:
    """The form's rule for its labels' Statics reached inside each Select: its value wrapped onto two
    padded lines beside an arrow as wide as the value ("ws (the workspace" / "folder)")."""
    from textual.widgets import Select

    from tests.app.conftest import open_launch

    app = make(workspace)
    async with app.run_test(size=(120, 36)) as pilot:
        launch = await open_launch(pilot, workspace)
        await pilot.pause()
        for select in launch.query(Select):
            label = select.query_one("#label")
            assert label.size.height == 1 and label.size.width > 30, (select.id, label.size)


async def test_a_failed_runs_reason_is_in_sight_at_80x24(workspace: Path) -> None:
    """The reason came last in the header, which is cut to four lines at 80x24: a failed run said
    `failed` and hid the line that says why and what to do."""
    import sqlite3

    from textual.widgets import Static

    with sqlite3.connect(workspace / "runs.db") as conn:
        conn.execute("UPDATE runs SET status = 'failed', reason = 'task per_fold=16 asks for more distinct "
                     "speakers — lower task per_fold to at most 10' WHERE name = 'aam-m0.2'")
    app = make(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_run(pilot, "aam-m0.2")
        summary = app.screen.query_one("#summary", Static)
        await wait_for(pilot, lambda: "reason:" in str(summary.render()))
        assert "reason: task per_fold=16" in str(summary.render()).splitlines()[1]
