"""The runs table's cells stay right and cheap for long, wide or huge text: a 100,000-character
name is cut without re-measuring it character by character, a CJK name gets the cells it takes,
and a huge loss prints short (real app, real database, pilot; ``fit`` unit-tested directly)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from rich.cells import cell_len

import app.widgets.runs_table as runs_table
from app.widgets.runs_table import fit
from tests.app.conftest import make, runs_cell, wait_for

CJK = "训练运行说话人嵌入"  # 9 characters, 18 cells


@pytest.mark.parametrize(("text", "width", "shown"), [
    ("a" * 10_000, 20, "a" * 19 + "…"),
    (CJK * 200, 20, CJK + "…" + " "),  # 9 two-cell characters, no room for a tenth
    ("ab" + CJK * 200, 21, "ab" + CJK + "…"),
    ("short", 8, "short   "),
])
def test_fit_cuts_a_long_text_to_its_width(text: str, width: int, shown: str) -> None:
    assert fit(text, width) == shown
    assert cell_len(fit(text, width)) == width


def test_fit_measures_about_the_cells_it_keeps_not_the_whole_text_again_and_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    measured: list[int] = []

    def counted(text: str) -> int:
        measured.append(len(text))
        return cell_len(text)

    # rich's own cell_len, counted: trimming a long text one character at a time re-measured all of it each time
    monkeypatch.setattr(runs_table, "cell_len", counted)
    text = CJK * 200
    assert fit(text, 30) == CJK + "训练运行说" + "…" + " "  # 14 characters, 28 cells
    assert sum(measured) <= len(text) + 30 * 30, sum(measured)


def shown_row(table, name: str) -> str:
    """The line the table draws for the run called ``name``."""
    index = next(i for i in range(table.row_count) if name in table.get_row_at(i)[1])
    return "".join(segment.text for segment in table._row(index))


async def test_a_cjk_name_gets_its_cells_and_a_huge_loss_prints_short(workspace: Path) -> None:
    name = CJK[:8]  # 16 cells: an 8-cell column cut it to "训练运…"
    with sqlite3.connect(workspace / "runs.db") as conn:
        # an imported event file can carry any loss; the runs table shows the last step's
        conn.execute("UPDATE train_steps SET loss = 1e300 WHERE step = 59 AND run_id = "
                     "(SELECT id FROM runs WHERE name = 'aam-m0.2')")
        # the other names shorter than 8 characters, so that the CJK name sizes the column
        conn.execute("UPDATE runs SET name = 'r' || id")
        conn.execute("UPDATE runs SET name = ? WHERE id = 3", (name,))
    app = make(workspace)
    async with app.run_test(size=(200, 30)) as pilot:
        table = app.screen.query_one(runs_table.RunsTable)
        await wait_for(pilot, lambda: table.row_count == 5)
        assert f" {name} " in shown_row(table, name)
        assert runs_cell(table, next(i for i in range(5) if table.get_row_at(i)[1] == "r1"), "loss") == "1e+300"
        other = runs_cell(table, next(i for i in range(5) if table.get_row_at(i)[1] == name), "loss")
        assert other == f"{float(other):.4f}"  # an ordinary loss keeps its four decimals


def test_a_launch_not_recorded_yet_has_no_number_in_the_table() -> None:
    """The TUI's own negative ids of launches still starting read as runs `-1`, `-2`."""
    from app.data.reader import RunSummary
    from app.views.runs_view import cells

    starting = RunSummary(id=-1, name="resume of #3", kind="train", protocol="P", subset="train", status="starting",
                          out_dir=None, started_at=0.0)
    recorded = RunSummary(id=3, name="tiny", kind="train", protocol="P", subset="train", status="running",
                          out_dir=None, started_at=0.0)
    assert [cells(starting, 1.0)[:2], cells(recorded, 1.0)[:2]] == [("…", "resume of #3"), ("3", "tiny")]


def test_a_long_name_is_cut_so_that_80_columns_show_the_figures() -> None:
    """An apply run's name (``apply Demo.SpeakerDiarization.Meetings.test``) widened the name column to 43
    characters: at 80 columns the table showed no best EER for any run."""
    from app.views.runs_view import NAME_WIDTH, name_cell

    assert name_cell("apply Demo.SpeakerDiarization.Meetings.test") == "apply Demo.SpeakerD…"
    assert len(name_cell("x" * 500)) == NAME_WIDTH and name_cell("aam-m0.2") == "aam-m0.2"
    assert name_cell(None) == "" and name_cell("a\x1b[2J" * 9).startswith("a\\x1b[2J")
