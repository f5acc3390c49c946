"""Group, tags and note in the TUI: edited with `t` in the run detail, shown and filtered in the runs
table, the group's seeds averaged in the header, and given to train by Launch."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from textual.widgets import Static

from app.dialogs.labels import LabelsDialog
from app.screens.launch import LaunchScreen
from app.screens.run_detail import RunDetailScreen
from app.screens.runs import RunsScreen
from app.widgets.runs_table import RunsTable
from engine.cli import build_parser
from engine.store import open_store
from tests.app.conftest import make, notified, open_launch, open_run, showing, wait_for

VOICES = "Demo.SpeakerVerification.Voices"


def summary_text(app) -> str:
    return str(app.screen.query_one("#summary", Static).render())


@pytest.mark.slow
async def test_t_edits_group_tags_and_note_and_the_filter_finds_the_tag(workspace: Path) -> None:
    app = make(workspace)
    async with app.run_test(size=(160, 44)) as pilot:
        await open_run(pilot, "aam-m0.2")
        await wait_for(pilot, lambda: app.screen.data is not None)
        await pilot.press("t")
        await wait_for(pilot, lambda: showing(app, LabelsDialog))
        dialog = app.screen
        dialog.query_one("#tags").value = "two,words ok!"
        await pilot.click("#ok")
        await wait_for(pilot, lambda: "one word" in str(dialog.query_one("#error").render()))
        dialog.query_one("#tags").value = ""
        dialog.query_one("#group").value = "[b]grp[/b]"   # the message said 'grp', which is a fine group
        dialog.query_one("#group").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "group '[b]grp[/b]' is not one word" in str(dialog.query_one("#error").render()))
        dialog.query_one("#group").value = "resnet34-lm"
        dialog.query_one("#tags").value = "baseline #lm"
        dialog.query_one("#note").value = "the reference run"
        dialog.query_one("#note").focus()
        await pilot.press("enter")   # Enter in a field saves, as the button does
        await wait_for(pilot, lambda: showing(app, RunDetailScreen))
        await wait_for(pilot, lambda: "note: the reference run" in summary_text(app))
        assert ("group resnet34-lm: 1 run, EER 21.00 % on Demo.SpeakerVerification.Voices.development (one EER: "
                "no spread yet)") in summary_text(app)
        assert "#baseline #lm" in summary_text(app)

        await pilot.press("escape")
        await wait_for(pilot, lambda: showing(app, RunsScreen))
        table = app.screen.query_one(RunsTable)
        await wait_for(pilot, lambda: any(str(table.get_row_at(i)[-1]) == "resnet34-lm #baseline #lm"
                                          for i in range(table.row_count)))
        await pilot.press("slash")
        await pilot.press(*"#baseline")
        await wait_for(pilot, lambda: table.row_count == 1)
        assert str(table.get_row_at(0)[1]) == "aam-m0.2"
        app.screen.query_one("#filter").value = "resnet34-lm"   # the group: the run and its validation
        await wait_for(pilot, lambda: table.row_count == 2)
        assert {str(table.get_row_at(i)[1]) for i in range(2)} == {"aam-m0.2", "aam-m0.2 validate"}
    with open_store(workspace / "runs.db", readonly=True) as store:
        (run,) = store.runs(kind="train", tag="lm")
        assert (run["name"], run["run_group"], run["tags"], run["note"]) == (
            "aam-m0.2", "resnet34-lm", ["baseline", "lm"], "the reference run")


async def test_the_header_shows_the_groups_seeds_as_mean_and_std(workspace: Path) -> None:
    with open_store(workspace / "runs.db") as store:
        ids = {r["name"]: r["id"] for r in store.runs(kind="train")}
        for seed, name in enumerate(("aam-m0.2", "aam-m0.1")):
            store.set_labels(ids[name], run_group="aam-seeds")
            store.db.conn.execute("UPDATE runs SET seed = ? WHERE id = ?", (seed, ids[name]))
        third = store.create_run(kind="train", exp_dir=workspace, out_dir=workspace / "t3", protocol=VOICES,
                                 subset="train", config={}, command=["spkemb-engine", "train"], device="cpu",
                                 name="aam-seed2", seed=2, run_group="aam-seeds")
        val = store.create_run(kind="validate", exp_dir=workspace, out_dir=workspace / "v3", protocol=VOICES,
                               subset="development", config={}, command=["validate"], device="cpu", parent_id=third)
        store.set_best(val, epoch=2, eer=0.25, how="lowest-eer")   # seeds: 21, 23 and 25 %
    app = make(workspace)
    async with app.run_test(size=(160, 44)) as pilot:
        await open_run(pilot, "aam-m0.2", runs=7)
        await wait_for(pilot, lambda: app.screen.data is not None)
        assert ("group aam-seeds: 3 runs, EER 23.00 ± 2.00 % on Demo.SpeakerVerification.Voices.development  "
                "seed 0") in summary_text(app)


async def test_launch_passes_seed_group_tags_and_note_to_train(workspace: Path) -> None:
    app = make(workspace)
    async with app.run_test(size=(140, 60)) as pilot:
        launch = await open_launch(pilot, workspace)
        launch.query_one("#seed").value = "4"
        launch.query_one("#group").value = "aam-seeds"
        launch.query_one("#tags").value = "baseline lm"
        launch.query_one("#note").value = "seed 4 of 5"
        train, *_ = launch.commands()
    args = build_parser().parse_args(train[3:])
    assert (args.seed, args.group, args.tag, args.note) == (4, "aam-seeds", ["baseline", "lm"], "seed 4 of 5")


@pytest.mark.slow
async def test_launch_shows_the_commands_it_would_start_and_refuses_a_negative_epoch(workspace: Path) -> None:
    """The preview under the form stayed empty, and `--to -3` was launched."""
    app = make(workspace)
    async with app.run_test(size=(140, 60)) as pilot:
        launch = await open_launch(pilot, workspace)
        preview = launch.query_one("#command")
        launch.query_one("#note").value = "it's [b]one[/b]"
        await wait_for(pilot, lambda: "--note" in str(preview.render()))
        lines = str(preview.render()).splitlines()
        assert lines[0].startswith("$ spkemb-engine train ") and lines[1].startswith("$ spkemb-engine validate ")
        assert shlex.split(lines[0])[2:] == launch.commands()[0][3:]  # what a shell reads: the argv itself
        launch.query_one("#to").value = "-3"
        await wait_for(pilot, lambda: str(preview.render()) == "epochs: 1 or more, got -3")
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: notified(app, "epochs: 1 or more, got -3"))
        assert isinstance(app.screen, LaunchScreen) and not app.pending


async def test_a_long_note_and_many_tags_leave_the_plots_and_epochs_on_the_screen(workspace: Path) -> None:
    """At 120x36 a long note or many tags filled the whole screen: the plots and the epoch table the keys
    act on were below it, the keyboard's focus on a table no one could see."""
    with open_store(workspace / "runs.db") as store:
        run_id = next(r["id"] for r in store.runs() if r["name"] == "aam-m0.2")
        store.set_labels(run_id, add_tags=[f"tag{i}" for i in range(300)],
                         note="first line " + "x" * 5000 + "\nsecond line")
    app = make(workspace)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_run(pilot, "aam-m0.2")
        await wait_for(pilot, lambda: "note: first line" in summary_text(app))
        assert "second line" not in summary_text(app) and "… (t: the whole note)" in summary_text(app)
        await pilot.pause()
        summary = app.screen.query_one("#summary", Static)
        assert summary.outer_size.height <= 8
        assert app.screen.query_one("#epochs").region.bottom <= 36


@pytest.mark.slow
async def test_a_launch_the_engine_refuses_is_said_with_the_engines_line(workspace: Path) -> None:
    """The runs screen said only `… exited before recording its run: see LOG`: the reason was in the log."""
    app = make(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        launch = await open_launch(pilot, workspace)  # its experiment's config.yml is `x: 1`
        launch.query_one("#validate").value = False
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: notified(app, "exited before recording its run", "error"), timeout=120)
        (said,) = [str(n.message) for n in app._notifications if "exited before recording its run" in str(n.message)]
        assert "spkemb-engine train: error: " in said and "config.yml" in said, said
        log = workspace / "experiments" / "aam-m0.2" / "train" / "Demo.SpeakerVerification.Voices.train" / "train.log"
        assert said.endswith(f"(log: {log})"), said


def test_why_a_child_ended_is_its_own_error_line_in_a_log_another_process_writes(tmp_path: Path) -> None:
    """A resume refused while another resume of the run trained (two TUIs, or `r` twice) wrote its refusal
    amid the training's lines: the TUI said the last of those, a progress line, was why it had failed."""
    from app.launching.children import last_log_line, log_size

    log = tmp_path / "train.log"
    assert log_size(log) == 0 and last_log_line(log) is None
    log.write_text("spkemb-engine train: error: an older refusal, before this launch\nepoch 1/2  loss 5.1\n")
    since = log_size(log)
    with log.open("a") as f:  # the launched process and the training it lost to, each writing the log
        f.write("spkemb-engine train: loading its libraries…\n")
        f.write("spkemb-engine train: error: exp is being trained by another process (pid 42)\n")
        f.write("epoch 1/2: 36 batches…\n")
    assert last_log_line(log, since) == "spkemb-engine train: error: exp is being trained by another process (pid 42)"
    # no error line since the launch: its last line (a traceback's, say), not the older refusal
    since = log_size(log)
    with log.open("a") as f:
        f.write("Traceback (most recent call last):\nMemoryError\n")
    assert last_log_line(log, since) == "MemoryError"
    assert last_log_line(log, log_size(log)) is None  # nothing written since
