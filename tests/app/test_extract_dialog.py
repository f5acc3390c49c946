"""The Extract dialog: its choices, the extraction path among them, become the `apply` command line."""

from __future__ import annotations

from pathlib import Path

from textual.app import App

from app.dialogs.actions import ExtractChoice, ExtractDialog
from app.launching import commands
from engine.cli import build_parser
from tests.app.conftest import wait_for

MEETINGS = "Demo.SpeakerDiarization.Meetings"


class Host(App):
    """An app that opens the dialog and keeps what it answers."""

    def __init__(self, database_yml: Path) -> None:
        super().__init__()
        self.database_yml = database_yml
        self.answers: list[ExtractChoice | None] = []

    def on_mount(self) -> None:
        self.push_screen(ExtractDialog(self.database_yml), self.answers.append)


async def test_the_extraction_path_reaches_apply(demo_corpus: Path, tmp_path: Path) -> None:
    app = Host(demo_corpus)
    async with app.run_test(size=(120, 40)) as pilot:
        dialog = app.screen
        await wait_for(pilot, lambda: dialog.query_one("#protocol").value == MEETINGS, timeout=60)
        path = dialog.query_one("#path")
        assert [value for _, value in path._options] == ["exact", "shared", "onnxruntime"]
        assert path.value == "exact"
        path.value = "onnxruntime"
        dialog.query_one("#step").value = "0.25"
        dialog.query_one("#epoch").value = "3"
        await pilot.click("#ok")
        await wait_for(pilot, lambda: app.answers)
    choice = app.answers[0]
    assert choice == ExtractChoice(protocol=MEETINGS, subset="test", step=0.25, epoch=3, device="cpu",
                                   path="onnxruntime", diarize=True)

    val = tmp_path / "val"
    argv = commands.apply_argv(val, choice.protocol, subset=choice.subset, step=choice.step, epoch=choice.epoch,
                                device=choice.device, path=choice.path, diarize=choice.diarize)
    args = build_parser().parse_args(argv[3:])
    assert (args.runtime, args.shared, args.epoch, args.step, args.diarize) == ("onnxruntime", False, 3, 0.25, True)
    shared = build_parser().parse_args(commands.apply_argv(val, MEETINGS, path="shared")[3:])
    assert (shared.runtime, shared.shared) == ("torch", True)
    exact = build_parser().parse_args(commands.apply_argv(val, MEETINGS)[3:])
    assert (exact.runtime, exact.shared) == ("torch", False)


async def test_at_80x24_the_extract_dialogs_buttons_are_in_sight_and_answer(demo_corpus: Path) -> None:
    """The dialog needed 35 rows: at 80x24 Extract and Cancel were below the fold, reached only by
    scrolling a form that does not look scrollable. Under 36 rows its rows go without gaps and borders."""
    app = Host(demo_corpus)
    async with app.run_test(size=(80, 24)) as pilot:
        dialog = app.screen
        await wait_for(pilot, lambda: dialog.query_one("#protocol").value == MEETINGS, timeout=60)
        await pilot.pause()
        for button in ("#ok", "#cancel"):
            assert dialog.query_one(button).region.bottom <= 24, dialog.query_one(button).region
        dialog.query_one("#diarize").focus()  # a focused box keeps its one line
        await pilot.pause()
        assert dialog.query_one("#diarize").region.height == 1
        await pilot.click("#ok")
        await wait_for(pilot, lambda: app.answers)
    assert app.answers[0] is not None and app.answers[0].protocol == MEETINGS
    roomy = Host(demo_corpus)
    async with roomy.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: roomy.screen.query_one("#protocol").value == MEETINGS, timeout=60)
        assert roomy.screen.query_one("#diarize").region.height == 3  # a tall terminal keeps the roomy form
