"""What the CLI can do, the TUI can: AS-norm validation (Launch and `v`), the diarization settings of an
extraction, averaging epochs, picking among epochs shown with their EERs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from textual.widgets import Button, Input

from app.dialogs.actions import ExtractChoice, ExtractDialog, PickDialog
from app.dialogs.average import AverageDialog
from app.dialogs.clean import CleanDialog
from app.dialogs.confirm import ConfirmDialog
from app.dialogs.validate import ValidateDialog
from app.dialogs.verify import VerifyDialog
from app.launching import commands
from app.screens.run_detail import RunDetailScreen
from engine.cli import build_parser
from engine.layout import TrainingDir
from engine.records import ValidationResult
from engine.store import open_store
from tests.app.conftest import make, notified, open_launch, open_run, showing, wait_for
from tests.app.test_extract_dialog import MEETINGS, Host

VOICES = "Demo.SpeakerVerification.Voices"


@pytest.mark.slow
async def test_v_asks_how_to_validate_prefilled_with_the_last_validation(workspace: Path) -> None:
    conn = sqlite3.connect(workspace / "runs.db")
    conn.execute("UPDATE runs SET command = ? WHERE name = 'aam-m0.2 validate'",
                 ('["engine/__main__.py", "validate", "--subset", "development", "--every", "2", "--score-norm", '
                  '"asnorm", "--cohort-size", "40", "x/train/P.train", "P"]',))
    conn.commit()
    conn.close()
    app = make(workspace)
    async with app.run_test(size=(140, 44)) as pilot:
        await open_run(pilot, "aam-m0.2")
        await wait_for(pilot, lambda: app.screen.data and app.screen.data.validators)
        await pilot.press("v")
        await wait_for(pilot, lambda: showing(app, ValidateDialog))
        dialog = app.screen
        assert dialog.query_one("#every").value == "2" and dialog.query_one("#norm").value == "asnorm"
        assert dialog.query_one("#cohort-size").value == "40" and dialog.query_one("#cohort-files").value == "3"
        dialog.query_one("#cohort-size").value = "0"
        await pilot.click("#ok")
        await wait_for(pilot, lambda: "at least 2" in str(dialog.query_one("#error").render()))
        # Enter in a field submits the form as OK does (it did nothing but in the labels dialog)
        dialog.query_one("#error").update("")
        dialog.query_one("#cohort-size").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "at least 2" in str(dialog.query_one("#error").render()))
        await pilot.press("escape")
        await wait_for(pilot, lambda: showing(app, RunDetailScreen))
    assert not app.pending  # cancelled: nothing launched


def test_asnorm_choice_reaches_validate(tmp_path: Path) -> None:
    argv = commands.validate_argv(tmp_path / "trn", VOICES, subset="test", every=3,
                                   score_norm=commands.ScoreNorm(cohort_size=50, cohort_files=2))
    args = build_parser().parse_args(argv[3:])
    assert (args.score_norm, args.cohort_size, args.cohort_files, args.every) == ("asnorm", 50, 2, 3)
    raw = build_parser().parse_args(commands.validate_argv(tmp_path / "trn", VOICES)[3:])
    assert raw.score_norm is None
    # and read back from a recorded command line: what `v` offers next time
    from engine.records import Run

    recorded = Run(id=1, kind="validate", status="completed", out_dir="v", command=["engine/__main__.py", *argv[3:]])
    assert commands.validation_settings(recorded) == commands.ValidationChoice(
        "test", 3, commands.ScoreNorm(50, 2))


def test_calibration_choice_reaches_validate_and_is_offered_again(tmp_path: Path) -> None:
    from engine.records import Run

    argv = commands.validate_argv(tmp_path / "trn", VOICES, subset="test", calibration="development")
    assert build_parser().parse_args(argv[3:]).calibration == "development"
    assert build_parser().parse_args(commands.validate_argv(tmp_path / "trn", VOICES)[3:]).calibration is None
    recorded = Run(id=1, kind="validate", status="completed", out_dir="v", command=["engine/__main__.py", *argv[3:]])
    assert commands.validation_settings(recorded).calibration == "development"


@pytest.mark.slow
async def test_the_validate_dialog_refuses_to_calibrate_on_the_evaluated_subset(workspace: Path) -> None:
    app = make(workspace)
    async with app.run_test(size=(140, 44)) as pilot:
        await open_run(pilot, "aam-m0.2")
        await wait_for(pilot, lambda: app.screen.data and app.screen.data.validators)
        await pilot.press("v")
        await wait_for(pilot, lambda: showing(app, ValidateDialog))
        dialog = app.screen
        assert dialog.query_one("#calibration").value == ""   # the last validation calibrated on nothing
        dialog.query_one("#subset").value = "test"
        dialog.query_one("#calibration").value = "test"
        await pilot.click("#ok")
        refused = "calibrate on another subset than test"
        await wait_for(pilot, lambda: refused in str(dialog.query_one("#error").render()))
        await pilot.press("escape")
        await wait_for(pilot, lambda: showing(app, RunDetailScreen))
    assert not app.pending


@pytest.mark.slow
async def test_launch_offers_asnorm_validation(workspace: Path) -> None:
    app = make(workspace)
    async with app.run_test(size=(140, 50)) as pilot:
        await open_launch(pilot, workspace)
        launch = app.screen
        launch.query_one("#norm").value = "asnorm"
        launch.query_one("#cohort-size").value = "20"
        _, validate, *_ = launch.commands()
    args = build_parser().parse_args(validate[3:])
    assert (args.score_norm, args.cohort_size, args.cohort_files) == ("asnorm", 20, 3)


async def test_extract_dialog_sets_the_diarization_check(demo_corpus: Path, tmp_path: Path) -> None:
    app = Host(demo_corpus)
    async with app.run_test(size=(120, 44)) as pilot:
        dialog = app.screen
        assert isinstance(dialog, ExtractDialog)
        await wait_for(pilot, lambda: dialog.query_one("#protocol").value == MEETINGS, timeout=60)
        dialog.query_one("#collar").value = "0.5"
        dialog.query_one("#skip-overlap").value = True
        dialog.query_one("#num-speakers").value = "tuned"
        await pilot.click("#ok")
        await wait_for(pilot, lambda: app.answers)
    choice: ExtractChoice = app.answers[0]
    assert choice.diarization == commands.DiarizationSettings(collar=0.5, skip_overlap=True, num_speakers="tuned")
    argv = commands.apply_argv(tmp_path / "val", MEETINGS, diarize=choice.diarize, diarization=choice.diarization)
    args = build_parser().parse_args(argv[3:])
    assert (args.diarize, args.collar, args.skip_overlap, args.num_speakers) == (True, 0.5, True, "tuned")


@pytest.mark.slow
async def test_average_from_the_run_detail_writes_and_records_the_averaged_weights(workspace: Path) -> None:
    from tests.engine.test_average import write_epochs

    with open_store(workspace / "runs.db", readonly=True) as store:
        run = next(r for r in store.runs(kind="train") if r["name"] == "aam-m0.1")
    trn = TrainingDir(Path(run["out_dir"]))
    write_epochs(trn, [1, 2, 3])
    app = make(workspace)
    async with app.run_test(size=(140, 44)) as pilot:
        await open_run(pilot, "aam-m0.1")
        await wait_for(pilot, lambda: app.screen.data is not None)
        await pilot.press("a")
        await wait_for(pilot, lambda: showing(app, AverageDialog))
        dialog = app.screen
        assert dialog.query_one("#how").value == "top"  # validated: the lowest EERs first
        # as many as there are: 5 of its 3 validated epochs failed in the engine
        assert dialog.query_one("#count").value == "3"
        dialog.query_one("#how").value = "last"
        await pilot.pause()  # the choice's message handled: its default count in
        assert dialog.query_one("#count").value == "3"  # its 3 epochs trained
        dialog.query_one("#count").value = "2"
        await pilot.click("#ok")
        await wait_for(pilot, lambda: notified(app, "mean of epochs 2, 3"), timeout=120)
        # and, beside the result, what to run next (the result was lost when a command also said something)
        await wait_for(pilot, lambda: notified(app, "average: next, `spkemb-engine validate"))
    assert trn.checkpoint("avg-last2").is_file()
    with open_store(workspace / "runs.db", readonly=True) as store:
        assert [r["name"] for r in store.checkpoints(run["id"]) if r["name"]] == ["avg-last2"]


@pytest.mark.slow
async def test_clean_from_the_run_detail_lists_then_deletes_after_a_yes(workspace: Path) -> None:
    with open_store(workspace / "runs.db", readonly=True) as store:
        run = next(r for r in store.runs(kind="train") if r["name"] == "aam-m0.1")
    trn = TrainingDir(Path(run["out_dir"]))
    trn.weights.mkdir(parents=True, exist_ok=True)
    for epoch in range(14):
        trn.checkpoint(epoch).write_bytes(b"x" * 100)
    trn.validation("Demo.SpeakerVerification.Voices", "development").root.mkdir(parents=True)
    with open_store(workspace / "runs.db") as store:
        val = next(r for r in store.runs(kind="validate") if r["name"] == "aam-m0.1 validate")
        for epoch in range(14):  # the later, the better: the 10 best are the 10 newest
            store.add_validation(val["id"], ValidationResult(epoch=epoch, eer=0.5 - 0.01 * epoch, n_trials=4),
                                 train_run_id=run["id"])
    app = make(workspace)
    async with app.run_test(size=(140, 44)) as pilot:
        await open_run(pilot, "aam-m0.1")
        await wait_for(pilot, lambda: app.screen.data is not None)
        await pilot.press("C")
        await wait_for(pilot, lambda: showing(app, CleanDialog))
        app.screen.query_one("#keep-best", Input).value = "0"
        await pilot.click("#ok")
        await wait_for(pilot, lambda: "best K: at least 1, got 0" in str(app.screen.query_one("#error").render()))
        app.screen.query_one("#keep-best", Input).value = "10"
        # the defaults, the newest 10 and the best 10 of each validation (pressed: a button ignores a click
        # while it still shows the press before)
        app.screen.query_one("#ok", Button).press()
        await wait_for(pilot, lambda: showing(app, ConfirmDialog), timeout=60)
        question = app.screen.question
        assert question.splitlines()[:2] == [
            f"{trn.root}: delete 4 epoch checkpoint(s): 0-3 (400 bytes)",
            "  keep 4-13: among the newest 10; among the 10 best in "
            "Demo.SpeakerVerification.Voices.development"], question
        assert trn.epochs() == list(range(14))  # asked, not yet done
        await pilot.press("y")
        await wait_for(pilot, lambda: notified(app, "freed 400 bytes"), timeout=60)
    assert trn.epochs() == list(range(4, 14))


@pytest.mark.slow
async def test_pick_lists_each_epoch_with_its_eer(workspace: Path) -> None:
    app = make(workspace)
    async with app.run_test(size=(140, 44)) as pilot:
        await open_run(pilot, "aam-m0.2")
        await wait_for(pilot, lambda: app.screen.data and app.screen.data.validations)
        await pilot.press("p")
        await wait_for(pilot, lambda: showing(app, PickDialog))
        labels = [str(label) for label, _ in app.screen.query_one("#epoch")._options]
        assert labels[1:] == ["epoch 1: EER 30.00 %", "epoch 2: EER 21.00 %", "epoch 3: EER 24.00 %"]
        await pilot.press("escape")


@pytest.mark.slow
async def test_header_says_picked_and_the_lowest_eer_and_an_extraction_its_own_epoch(workspace: Path) -> None:
    with open_store(workspace / "runs.db") as store:
        train = next(r for r in store.runs(kind="train") if r["name"] == "aam-m0.2")
        val = next(r for r in store.runs(kind="validate") if r["parent_id"] == train["id"])
        store.set_best(val["id"], epoch=3, eer=0.24, how="manual")
        apply = store.create_run(kind="apply", exp_dir=train["exp_dir"], out_dir=Path(val["out_dir"]) / "apply" / "1",
                                 protocol=MEETINGS, subset="test", config=None, command=["spkemb-engine", "apply"],
                                 device="cpu", target_epoch=1, parent_id=val["id"], name="apply")
        store.heartbeat(apply, progress=2.0, progress_total=2.0)
        store.set_status(apply, "completed")
    app = make(workspace)
    async with app.run_test(size=(160, 44)) as pilot:
        await open_run(pilot, "aam-m0.2", runs=6)
        summary = app.screen.query_one("#summary")
        await wait_for(pilot, lambda: "picked" in str(summary.render()))
        text = str(summary.render())
        assert "picked EER 24.00 % @ 3 (picked by hand); lowest EER 21.00 % @ 2" in text
        assert "epoch 3/3" in text
        await pilot.press("escape")
        await open_run(pilot, "apply", runs=6)
        summary = app.screen.query_one("#summary")
        await wait_for(pilot, lambda: "apply" in str(summary.render()))
        assert "epoch 1  2/2 files" in str(summary.render()) and "3/3" not in str(summary.render())


@pytest.mark.slow
async def test_r_resumes_no_completed_training_and_validates_again_from_a_validate_run(workspace: Path) -> None:
    app = make(workspace)
    async with app.run_test(size=(140, 44)) as pilot:
        await open_run(pilot, "aam-m0.2")
        await wait_for(pilot, lambda: app.screen.data is not None)
        await pilot.press("r")
        await wait_for(pilot, lambda: notified(app, "is completed"))
        assert not app.pending
        await pilot.press("escape")
        await open_run(pilot, "aam-m0.2 validate")
        await wait_for(pilot, lambda: app.screen.data is not None)
        await pilot.press("r")
        await wait_for(pilot, lambda: showing(app, ValidateDialog))
        await pilot.press("escape")
    assert not app.pending


@pytest.mark.slow
async def test_each_action_that_cannot_apply_to_the_run_says_why_and_starts_nothing(workspace: Path) -> None:
    app = make(workspace)
    async with app.run_test(size=(140, 44)) as pilot:
        await open_run(pilot, "softmax")  # failed after its first epoch, never validated
        await wait_for(pilot, lambda: app.screen.data is not None)
        for key, says in (("x", "This run is not running."),
                          ("V", "No validation is running for this run."),
                          ("p", "No validated epoch yet: start validation with v."),
                          ("e", "Validate first: extraction uses the best validated epoch.")):
            await pilot.press(key)
            await wait_for(pilot, lambda says=says: notified(app, says, "warning"))
            assert isinstance(app.screen, RunDetailScreen), key
        await pilot.press("escape")
        await open_run(pilot, "aam-m0.2")  # completed: nothing to resume
        await wait_for(pilot, lambda: app.screen.data is not None and app.screen.data.run.name == "aam-m0.2")
        await pilot.press("r")
        await wait_for(pilot, lambda: notified(app, "Only a stopped, failed or lost training run can be resumed "
                                                    "(#1 is completed).", "warning"))
    assert not app.launcher.children and not app.launcher.exit_codes  # nothing was started


@pytest.mark.slow
async def test_the_run_dialogs_fit_an_80_column_terminal(workspace: Path) -> None:
    """At 80 columns the forms (90 wide) lost their right border and scrollbar past the screen's edge."""
    from textual.containers import Vertical

    from app.dialogs.labels import LabelsDialog

    app = make(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_run(pilot, "aam-m0.2")
        await wait_for(pilot, lambda: app.screen.data is not None)
        detail = app.screen
        for key, dialog in (("v", ValidateDialog), ("a", AverageDialog), ("t", LabelsDialog), ("C", CleanDialog),
                            ("s", VerifyDialog)):
            await pilot.press(key)
            await wait_for(pilot, lambda dialog=dialog: showing(app, dialog))
            form = app.screen.query_one(Vertical)
            await wait_for(pilot, lambda form=form: form.region.width > 0)
            assert form.region.x >= 0 and form.region.right <= 80, (key, form.region)
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is detail)


@pytest.mark.slow
async def test_s_scores_recordings_with_the_picked_epoch_at_its_validated_threshold(workspace: Path) -> None:
    import numpy as np

    from app.dialogs.run_info import RunInfoDialog
    from engine.layout import ValidationDir
    from engine.validation.cohort_means import CohortMeans, write_cohort_means
    from engine.validation.params import write_params
    from tests.engine.test_verify import recording, tiny_checkpoint

    trn = TrainingDir(workspace / "experiments" / "aam-m0.1" / "train" / f"{VOICES}.train")
    tiny_checkpoint(trn.checkpoint(2), 2)
    val = ValidationDir(trn.validation(VOICES, "development").root)
    write_params(val, ValidationResult(epoch=2, eer=0.23))
    for seed, name in enumerate(("alice.wav", "bob 2.wav", "carol.flac")):
        recording(workspace / name, seed=seed)
    # epoch 2 validated with AS-norm too: its figures, and the cohort the validation kept
    with sqlite3.connect(workspace / "runs.db") as db:
        assert db.execute("UPDATE validations SET eer_asnorm = 0.2, eer_asnorm_low = 0.1, eer_asnorm_high = 0.3, "
                          "threshold_asnorm = 0.0, cohort_size = 2 WHERE epoch = 2 AND run_id IN "
                          "(SELECT id FROM runs WHERE kind = 'validate' AND out_dir = ?)", (str(val.root),)).rowcount
    means = np.random.default_rng(0).normal(size=(3, 32)).astype(np.float32)
    write_cohort_means(val.cohort_file(2), CohortMeans(means, 2))
    app = make(workspace)
    async with app.run_test(size=(140, 44)) as pilot:
        await open_run(pilot, "softmax")   # failed before any validation
        await wait_for(pilot, lambda: app.screen.data is not None)
        await pilot.press("s")
        await wait_for(pilot, lambda: notified(app, "Validate first", "warning"))
        await pilot.press("escape")
        await open_run(pilot, "aam-m0.1")
        await wait_for(pilot, lambda: app.screen.data is not None and app.screen.data.validators)
        await pilot.press("s")
        await wait_for(pilot, lambda: showing(app, VerifyDialog))
        app.screen.query_one("#enrolment", Input).value = "alice.wav"     # relative: the TUI's folder
        app.screen.query_one("#tests", Input).value = "'bob 2.wav"
        await pilot.click("#ok")
        await wait_for(pilot, lambda: "cannot read the paths" in str(app.screen.query_one("#error").render()))
        app.screen.query_one("#tests", Input).value = "'bob 2.wav' carol.flac"
        app.screen.query_one("#ok", Button).press()
        await wait_for(pilot, lambda: showing(app, RunInfoDialog), timeout=120)
        shown = str(app.screen.query_one("#info").render())

        # the AS-norm figures shown (n): s verifies with AS-norm
        await pilot.press("escape")
        await wait_for(pilot, lambda: showing(app, RunDetailScreen))
        await pilot.press("n")
        await pilot.press("s")
        await wait_for(pilot, lambda: showing(app, VerifyDialog))
        assert "(AS-norm)" in str(app.screen.query_one("Label").render())
        app.screen.query_one("#enrolment", Input).value = "alice.wav"
        app.screen.query_one("#tests", Input).value = "carol.flac"
        app.screen.query_one("#ok", Button).press()
        await wait_for(pilot, lambda: showing(app, RunInfoDialog), timeout=120)
        normalised = str(app.screen.query_one("#info").render()).splitlines()
    assert "AS-norm of the cosine" in normalised[0] and "(top 2 of 3 cohort speakers)" in normalised[0], normalised
    assert "threshold 0.000000" in normalised[1] and "AS-norm EER of 20.00 %" in normalised[1], normalised
    assert normalised[3].startswith("carol.flac ")
    lines = shown.splitlines()
    # where the threshold comes from (the database's validation of epoch 2), then a line per recording
    assert "epoch 2 of" in lines[0] and "threshold 0.500000" in lines[1] and "EER of 23.00 %" in lines[1], shown
    assert [line.split()[-1] for line in lines[3:]] == ["same", "same"], shown   # untrained: cosines near 1
    assert lines[3].startswith("bob 2.wav ") and lines[4].startswith("carol.flac ")


def test_the_average_dialog_counts_what_there_is_to_average() -> None:
    """It offered 5 whatever the run held: `--top 5` of 2 validated epochs failed in the engine."""
    assert [AverageDialog(validated=2, trained=2).default_count(how) for how in ("top", "last")] == [2, 2]
    assert [AverageDialog(validated=9, trained=250).default_count(how) for how in ("top", "last")] == [5, 5]
    assert AverageDialog(validated=0, trained=1).default_count("last") == 2  # the engine's own least
