"""The Compare screen's figures (the pivot, sorted by key) and its report (``r``), driven with the pilot."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import pytest
from textual.widgets import DataTable

from app.screens.compare import SHOWN_COLUMNS as COLUMNS
from engine.records import ValidationResult
from engine.store import open_store
from tests import children
from tests.app.conftest import compare_runs, make, wait_for
from tests.engine.report_db import TRIALS, make_compared

EER = next(i for i, c in enumerate(COLUMNS) if c.key == "eer")
SYSTEM = next(i for i, c in enumerate(COLUMNS) if c.key == "system")


def _rows(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


@pytest.mark.slow
async def test_compare_tabulates_each_runs_figures_and_sorts_them_by_key(workspace: Path) -> None:
    app = make(workspace)
    async with app.run_test(size=(180, 50)) as pilot:
        await compare_runs(pilot, ("aam-m0.2", "aam-m0.1", "softmax"))
        table = app.screen.query_one("#pivot", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        # the picked epoch (2) of each validated run; the run without a validation has no row
        assert {(r[SYSTEM], r[EER]) for r in _rows(table)} == {("#1 aam-m0.2", "21.00"), ("#3 aam-m0.1", "23.00")}
        assert all(r[COLUMNS.index(next(c for c in COLUMNS if c.key == "cllr"))] == "—" for r in _rows(table))
        table.focus()
        table.move_cursor(column=EER)
        await pilot.press("s")
        await wait_for(pilot, lambda: [r[EER] for r in _rows(table)] == ["21.00", "23.00"])
        await pilot.press("s")
        await wait_for(pilot, lambda: [r[EER] for r in _rows(table)] == ["23.00", "21.00"])
        assert "▼" in str(table.ordered_columns[EER].label)

        # a run validated again, then picking its new epoch: the open table follows each, still sorted
        with open_store(workspace / "runs.db") as store:
            val = next(r for r in store.runs(kind="validate") if r["name"] == "aam-m0.1 validate")
            store.add_validation(val["id"], ValidationResult(epoch=4, eer=0.15, mindcf_01=0.5, mindcf_005=0.4,
                                                             n_trials=400), train_run_id=val["parent_id"])
        await wait_for(pilot, lambda: app.screen._validated is not None
                       and any(v == (4, 0.15) for r in app.screen._validated for v in r[0]))
        await pilot.pause(0.3)
        assert [r[EER] for r in _rows(table)] == ["23.00", "21.00"]  # epoch 2 is still the pick
        with open_store(workspace / "runs.db") as store:
            store.set_best(val["id"], epoch=4, eer=0.15, how="manual")
        await wait_for(pilot, lambda: [r[EER] for r in _rows(table)] == ["21.00", "15.00"])


@pytest.fixture
def compared_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.delenv("SPKEMB_DB", raising=False)
    make_compared(root)
    return root


@pytest.mark.slow  # the TUI, then the report's own process drawing twelve figure files
async def test_g_and_r_in_compare_write_the_report_of_the_compared_groups(compared_workspace: Path) -> None:
    app = make(compared_workspace)
    async with app.run_test(size=(180, 50)) as pilot:
        await compare_runs(pilot, ("resnet-s1", "resnet-s2", "sinc"), runs=7)
        table = app.screen.query_one("#pivot", DataTable)
        await wait_for(pilot, lambda: table.row_count == 4)  # three raw rows and the AS-norm row of sinc
        await pilot.press("g")  # the two seeds as their group: mean ± std
        await wait_for(pilot, lambda: table.row_count == 3)
        group = next(r for r in _rows(table) if r[SYSTEM] == "resnet34-lm (2 runs)")
        assert " ± " in group[EER]
        await pilot.press("r")
        await wait_for(pilot, lambda: app.screen.report_dir is not None, timeout=300)
        folder = app.screen.report_dir
        assert folder.parent == compared_workspace / "reports"
        assert "report.html" in str(table.border_subtitle)
        shown = {r[SYSTEM] for r in _rows(table)}
    written = {p.name for p in folder.iterdir()}
    assert {"report.html", "pivot.tex", "pivot.csv", "pivot.md", "loss.pdf", "eer.svg",
            f"det-{TRIALS}.png", f"scores-{TRIALS}.pdf"} <= written
    rows = list(csv.DictReader(io.StringIO((folder / "pivot.csv").read_text())))
    assert {r["system"] for r in rows} == shown == {"resnet34-lm (2 runs)", "#5 sinc"}
    assert next(r for r in rows if r["system"] == "resnet34-lm (2 runs)")["eer_std"] != ""
    html = (folder / "report.html").read_text()
    assert html.count("<figure ") == 4 and "data:image/svg+xml;base64," in html


def test_the_tui_imports_no_matplotlib() -> None:
    code = ("import sys, app.app, app.screens.compare, engine.compare.pivot, engine.compare.report; "
            "print('matplotlib' in sys.modules)")
    done = children.run([sys.executable, "-c", code], timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr
