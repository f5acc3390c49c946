"""The comparison pivot and ``spkemb-engine report``: a real runs database with real score files; the
report run as a real subprocess, and each file it writes opened and read back."""

from __future__ import annotations

import base64
import csv
import html
import io
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from engine.compare.pivot import build_pivot
from engine.store import open_store
from engine.store.pivot import compared_runs
from engine.version import software, software_text
from tests import children
from tests.engine.engine_runner import run_in_process
from tests.engine.report_db import PROTOCOL, TRIALS, Compared, make_compared, validate_again


def engine(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The command in-process, in the working folder ``cwd`` (the report's fixture runs it as a process)."""
    return run_in_process(*args, cwd=cwd)


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> Compared:
    return make_compared(tmp_path_factory.mktemp("compared"))


def _rows(db: Path, sql: str, *params: object) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _edit(db: Path, sql: str, *params: object) -> None:
    """One statement on the database, committed: a row as another release or a hand edit left it."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(sql, params)
    conn.close()


def _picked(db: Path, validate_run: int) -> tuple[float, float, float]:
    """The figures of the checkpoint a validate run picked (epoch 2 in this database)."""
    (row,) = _rows(db, "SELECT v.eer, v.mindcf_01, v.mindcf_005 FROM validations AS v JOIN runs AS r "
                       "ON r.id = v.run_id AND v.epoch = r.best_epoch WHERE r.id = ?", validate_run)
    return row


def test_the_pivot_shows_each_runs_pick_and_a_groups_mean_and_std(compared: Compared) -> None:
    ids = compared.ids
    with open_store(compared.db, readonly=True) as store:
        pivot = build_pivot(store, [ids["sinc"]], ["resnet34-lm"])
    cells = {(c.system.label, c.backend): c for c in pivot.cells}
    assert set(cells) == {("#5 sinc", "raw"), ("#5 sinc", "as-norm"), ("resnet34-lm (2 runs)", "raw")}
    sinc = cells["#5 sinc", "raw"]
    assert (sinc.system.network, sinc.trials, sinc.runs) == ("SincTDNN", TRIALS, 1)
    # the picked epoch (2), not the lowest EER (3)
    assert (sinc.eer.mean, sinc.mindcf_01.mean, sinc.mindcf_005.mean) == _picked(compared.db, ids["sinc val"])
    assert sinc.eer.std is None and sinc.der.mean == 0.125 and sinc.cllr is None
    (norm,) = _rows(compared.db, "SELECT eer_asnorm FROM validations WHERE run_id = ? AND epoch = 2", ids["sinc val"])
    assert cells["#5 sinc", "as-norm"].eer.mean == norm[0] and cells["#5 sinc", "as-norm"].der is None
    group = cells["resnet34-lm (2 runs)", "raw"]
    seeds = [_picked(compared.db, ids[f"resnet-s{i} val"])[0] for i in (1, 2)]
    assert group.system.network == "ResNet34" and group.runs == 2
    assert group.eer.mean == pytest.approx(statistics.mean(seeds), rel=1e-12)
    assert group.eer.std == pytest.approx(statistics.stdev(seeds), rel=1e-12)



@pytest.mark.parametrize("best", [2, None], ids=["picks-params-yml", "not-picked-yet"])
def test_a_newer_validate_run_that_scored_later_epochs_shows_the_folders_pick(tmp_path: Path, best) -> None:
    """``validate --from 3`` scores epoch 3 only, while the folder's pick (params.yml) stays epoch 2,
    scored by the first validate run: the pivot showed epoch 3's figures (the newest run's lowest EER)."""
    made = make_compared(tmp_path, asnorm=False, diarized=False)
    validate_again(made, "sinc", (3,), best=best)
    with open_store(made.db, readonly=True) as store:
        (cell,) = build_pivot(store, [made.ids["sinc"]]).cells
    assert (cell.eer.mean, cell.mindcf_01.mean, cell.mindcf_005.mean) == _picked(made.db, made.ids["sinc val"])


def test_lists_of_other_sizes_under_one_name_are_never_one_row(tmp_path: Path) -> None:
    """A seed validated on a list edited since (300 trials, not 200) was averaged with the other seed
    into one mean ± std, and drawn in one DET, as if the same trials."""
    made = make_compared(tmp_path, asnorm=False, diarized=False)
    _edit(made.db, "UPDATE validations SET n_trials = 300 WHERE run_id = ?", made.ids["resnet-s2 val"])
    with open_store(made.db, readonly=True) as store:
        pivot = build_pivot(store, [made.ids["sinc"]], ["resnet34-lm"])
    cells = {(c.system.label, c.trials): c.runs for c in pivot.cells}
    assert cells == {("#5 sinc", f"{TRIALS} (200 trials)"): 1, ("resnet34-lm (2 runs)", f"{TRIALS} (200 trials)"): 1,
                     ("resnet34-lm (2 runs)", f"{TRIALS} (300 trials)"): 1}


def test_a_folders_validations_of_another_list_size_are_not_merged(tmp_path: Path) -> None:
    """The list edited between two validations of one VAL_DIR: the curve mixed both lists' epochs, and
    the earlier list's pick was shown beside the new list's figures."""
    made = make_compared(tmp_path, asnorm=False, diarized=False)
    again = validate_again(made, "sinc", (3,), best=None)
    _edit(made.db, "UPDATE validations SET n_trials = 150 WHERE run_id = ?", again)
    with open_store(made.db, readonly=True) as store:
        (run,) = compared_runs(store, [made.ids["sinc"]], curves=True)
    (scored,) = run.scored
    assert (scored.epoch, scored.n_trials, scored.eer_by_epoch[0][0], len(scored.eer_by_epoch)) == (3, 150, 3, 1)


def test_a_back_end_only_some_seeds_have_says_how_many_of_the_groups_runs_it_is_over(tmp_path: Path) -> None:
    """AS-norm scored on one seed of two: its row read "resnet34-lm (2 runs) | as-norm | 1 | 30.00" under
    the raw mean of both, and a table read as if AS-norm had been measured on the group."""
    from engine.compare.pivot import COLUMNS, cell_text
    from engine.compare.tables import to_csv

    made = make_compared(tmp_path, asnorm=False, diarized=False)
    _edit(made.db, "UPDATE validations SET eer_asnorm = eer / 2 WHERE run_id = ?", made.ids["resnet-s1 val"])
    with open_store(made.db, readonly=True) as store:
        pivot = build_pivot(store, groups=["resnet34-lm"])
    runs = next(c for c in COLUMNS if c.key == "runs")
    assert [(c.backend, cell_text(c, runs)) for c in pivot.cells] == [("raw", "2"), ("as-norm", "1 of 2")]
    rows = list(csv.DictReader(io.StringIO(to_csv(pivot))))
    assert [r["runs"] for r in rows] == ["2", "1"]  # a number in the CSV


def test_systems_on_no_common_trial_list_are_said_to_be_weighed_against_none(tmp_path: Path) -> None:
    """A sweep's trials (validated on development) beside a group validated on test: no significance row
    and curves of two lists on one axis, without a word."""
    made = make_compared(tmp_path, asnorm=False, diarized=False)
    _edit(made.db, "UPDATE runs SET subset = 'test' WHERE id = ?", made.ids["sinc val"])
    done = engine("report", "--db", str(made.db), str(made.ids["sinc"]), "--group", "resnet34-lm",
                  "--format", "csv", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (f"report: warning: no trial list is every system's (#5 sinc: {PROTOCOL}.test; resnet34-lm (2 runs): "
            f"{TRIALS}): systems on different lists are not weighed against each other") in done.stderr
    same = engine("report", "--db", str(made.db), str(made.ids["resnet-s1"]), str(made.ids["resnet-s2"]),
                  "--format", "csv", "--out", str(tmp_path / "same"), cwd=tmp_path)
    assert same.returncode == 0 and "no trial list" not in same.stderr


def test_the_calibrated_back_end_appears_when_the_database_records_it(tmp_path: Path) -> None:
    made = make_compared(tmp_path, asnorm=False, diarized=False)
    conn = sqlite3.connect(made.db)
    conn.execute("UPDATE validations SET cllr = 0.5 + epoch, min_cllr = 0.25, actual_dcf_01 = 0.75, "
                 "actual_dcf_005 = 0.5 WHERE run_id = ?", (made.ids["sinc val"],))
    conn.commit()
    conn.close()
    with open_store(made.db, readonly=True) as store:
        pivot = build_pivot(store, [made.ids["sinc"], made.ids["resnet-s1"]])
    cells = {(c.system.label, c.backend): c for c in pivot.cells}
    assert set(cells) == {("#5 sinc", "raw"), ("#5 sinc", "calibrated"), ("#1 resnet-s1", "raw")}
    calibrated = cells["#5 sinc", "calibrated"]
    assert (calibrated.cllr.mean, calibrated.min_cllr.mean, calibrated.actual_dcf_01.mean,
            calibrated.actual_dcf_005.mean) == (2.5, 0.25, 0.75, 0.5)
    assert calibrated.eer == cells["#5 sinc", "raw"].eer
    assert cells["#1 resnet-s1", "raw"].cllr is None


def test_the_pivot_sorts_on_any_column_with_missing_figures_last(compared: Compared) -> None:
    with open_store(compared.db, readonly=True) as store:
        pivot = build_pivot(store, [compared.ids["sinc"], compared.ids["resnet-s1"], compared.ids["resnet-s2"]])
    by_eer = [c.eer.mean for c in pivot.sorted_by("eer").cells]
    assert by_eer == sorted(by_eer)
    assert [c.eer.mean for c in pivot.sorted_by("eer", descending=True).cells] == sorted(by_eer, reverse=True)
    for descending in (False, True):
        der = [c.der for c in pivot.sorted_by("der", descending=descending).cells]
        assert der[0] is not None and all(d is None for d in der[1:])
    assert [c.system.label for c in pivot.sorted_by("system", descending=True).cells][0] == "#5 sinc"


@pytest.fixture(scope="module")
def report(compared: Compared) -> Path:
    out = compared.db.parent / "report"
    done = children.run([sys.executable, "-m", "engine", "report", "--db", str(compared.db),
                         str(compared.ids["sinc"]), "--group", "resnet34-lm", "--out", str(out)],
                        cwd=compared.db.parent, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return out


FIGURES = ("loss", "eer", f"det-{TRIALS}", f"scores-{TRIALS}")


@pytest.mark.slow
def test_the_report_writes_every_file(report: Path) -> None:
    expected = {"pivot.tex", "pivot.csv", "pivot.md", "report.html", "significance.tex", "significance.csv",
                "significance.md", "systems.csv"} | {f"{s}.{x}" for s in FIGURES for x in ("png", "svg", "pdf")}
    assert {p.name for p in report.iterdir()} == expected | {".report-files"}
    assert set((report / ".report-files").read_text().splitlines()) == expected


def _tabular_rows(tex: str) -> list[list[str]]:
    body = tex.split("\\midrule\n", 1)[1].split("\\bottomrule", 1)[0]
    return [[c.strip() for c in line.removesuffix("\\\\").strip().split(" & ")] for line in body.strip().splitlines()]


def test_the_latex_table_compiles_or_parses_back(report: Path, compared: Compared, tmp_path: Path) -> None:
    tex = (report / "pivot.tex").read_text()
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    spec = re.search(r"\\begin\{tabular\}\{([lr]+)\}", tex)
    assert spec is not None
    header = [c.strip() for c in tex.split("\\toprule\n", 1)[1].split("\\\\", 1)[0].split(" & ")]
    rows = _tabular_rows(tex)
    assert len(header) == len(spec.group(1)) and all(len(r) == len(header) for r in rows)
    assert [r[0] for r in rows] == ["\\#5 sinc", "\\#5 sinc", "resnet34-lm (2 runs)"]
    eer = 100 * _picked(compared.db, compared.ids["sinc val"])[0]
    assert rows[0][header.index("EER (\\%)")] == f"{eer:.2f}"
    assert " $\\pm$ " in rows[2][header.index("EER (\\%)")]
    assert rows[1][header.index("DER (\\%)")] == "---" and rows[0][header.index("DER (\\%)")] == "12.50"
    if shutil.which("pdflatex"):
        (tmp_path / "pivot.tex").write_text(tex)
        (tmp_path / "doc.tex").write_text("\\documentclass{article}\\usepackage{booktabs}\\usepackage{graphicx}"
                                          "\\begin{document}\\resizebox{\\textwidth}{!}{\\input{pivot.tex}}"
                                          "\\end{document}\n")
        done = children.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                            timeout=120)
        assert done.returncode == 0, done.stdout[-2000:]
        assert (tmp_path / "doc.pdf").read_bytes().startswith(b"%PDF-")


def test_the_csv_holds_the_databases_figures(report: Path, compared: Compared) -> None:
    rows = list(csv.DictReader(io.StringIO((report / "pivot.csv").read_text())))
    by = {(r["system"], r["backend"]): r for r in rows}
    ids, db = compared.ids, compared.db
    assert len(rows) == 3
    sinc = by["#5 sinc", "raw"]
    assert (float(sinc["eer"]), float(sinc["mindcf_01"]), float(sinc["mindcf_005"])) == _picked(db, ids["sinc val"])
    assert float(sinc["der"]) == _rows(db, "SELECT der FROM diarizations")[0][0]
    assert sinc["eer_std"] == "" and sinc["cllr"] == "" and sinc["network"] == "SincTDNN"
    (norm,) = _rows(db, "SELECT eer_asnorm, mindcf_01_asnorm FROM validations WHERE run_id = ? AND epoch = 2",
                    ids["sinc val"])
    assert (float(by["#5 sinc", "as-norm"]["eer"]), float(by["#5 sinc", "as-norm"]["mindcf_01"])) == norm
    group = by["resnet34-lm (2 runs)", "raw"]
    for i, column in enumerate(("eer", "mindcf_01", "mindcf_005")):
        seeds = [_picked(db, ids[f"resnet-s{n} val"])[i] for n in (1, 2)]
        assert float(group[column]) == pytest.approx(statistics.mean(seeds), rel=1e-12)
        assert float(group[f"{column}_std"]) == pytest.approx(statistics.stdev(seeds), rel=1e-12)


def test_the_markdown_table_has_a_row_per_cell(report: Path) -> None:
    lines = (report / "pivot.md").read_text().splitlines()
    assert lines[0].startswith("| system | network | trials | back-end | runs | EER (%)")
    assert len(lines) == 2 + 3 and all(line.count("|") == lines[0].count("|") for line in lines)


def _pdf_pages(data: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", data))


@pytest.mark.parametrize("stem", FIGURES)
def test_each_figure_reads_back_in_every_format(report: Path, stem: str) -> None:
    from matplotlib.image import imread

    png = imread(report / f"{stem}.png")
    assert png.ndim == 3 and png.shape[0] > 200 and png.shape[1] > 200
    assert png[..., :3].std() > 0.01  # something drawn, not a blank page
    svg = ET.parse(report / f"{stem}.svg").getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg" and len(list(svg.iter())) > 50
    pdf = (report / f"{stem}.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF") and _pdf_pages(pdf) == 1


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, str] = {}
        self.sources: list[str] = []
        self.cells: list[str] = []
        self._figure: str | None = None
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "figure":
            self._figure = found.get("id")
        if tag in ("img", "script", "link") and (found.get("src") or found.get("href")):
            self.sources.append(found.get("src") or found.get("href") or "")
        if tag == "img" and self._figure:
            self.figures[self._figure] = found.get("src") or ""
        self._in_cell = tag == "td"

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.cells.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_cell = False


def test_the_html_page_holds_every_figure_and_the_table(report: Path) -> None:
    page = _Page()
    page.feed((report / "report.html").read_text())
    assert set(page.figures) == {f"fig-{s}" for s in FIGURES}
    assert all(s.startswith("data:") for s in page.sources), "the page fetches nothing"
    for src in page.figures.values():
        kind, data = src.split(",", 1)
        assert kind == "data:image/svg+xml;base64"
        assert ET.fromstring(base64.b64decode(data)).tag == "{http://www.w3.org/2000/svg}svg"
    assert "#5 sinc" in page.cells and "resnet34-lm (2 runs)" in page.cells and "12.50" in page.cells
    # what the runs ran with (the fixture's runs were recorded by this process), for a methods section
    text = (report / "report.html").read_text()
    software_section = text.split("<h2>Software</h2>", 1)[1]
    assert f"<li>{html.escape(software_text(software()))} — runs #" in software_section


def test_the_report_says_each_systems_runs_seeds_checkpoints_and_how_their_configs_differ(
        report: Path, compared: Compared) -> None:
    """No file said which runs a group held, which epoch each figure was of, or what differed between
    the systems (a margin, a network): a table nobody could trace back."""
    ids = compared.ids
    rows = list(csv.DictReader(io.StringIO((report / "systems.csv").read_text())))
    assert [(r["system"], r["run_id"], r["seed"], r["trials"], r["checkpoint"], r["extraction"]) for r in rows] == [
        ("#5 sinc", str(ids["sinc"]), "0", TRIALS, "2", ""),
        ("#5 sinc", str(ids["sinc"]), "0", TRIALS, "2", "apply/2"),  # its DER's check
        ("resnet34-lm (2 runs)", str(ids["resnet-s1"]), "1", TRIALS, "2", ""),
        ("resnet34-lm (2 runs)", str(ids["resnet-s2"]), "2", TRIALS, "2", "")]
    page = (report / "report.html").read_text()
    systems = page.split("<h2>Systems</h2>", 1)[1].split("<h2>Results</h2>", 1)[0]
    assert f"<li>#{ids['resnet-s2']} (seed 2) — {TRIALS}: epoch 2</li>" in systems
    assert ("<tr><td><code>architecture.name</code></td><td>SincTDNN</td><td>ResNet34</td></tr>"
            in systems), systems
    assert "<td><code>feature_extraction.name</code></td><td>—</td><td>Fbank</td>" in systems


def _listing(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` and what it holds (folders by their name alone)."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"" for p in folder.rglob("*")}


@pytest.mark.parametrize(("args", "says"), [
    (["99"], "no run 99"),
    ([], "nothing to compare"),
    (["--group", "nobody"], "group 'nobody' has no training run"),
    (["7"], "run 7 is an apply run"),
    (["5", "--out-is-full"], "exists and is not empty"),
    (["5", "--out-is-file"], "is a file"),
    (["5", "--out-under-file"], "file is a file, so no folder can be made inside it"),
    (["5", "--db-missing"], "no runs database"),
])
def test_bad_input_is_one_line_and_exit_2_with_nothing_written(compared: Compared, tmp_path: Path,
                                                               args: list[str], says: str) -> None:
    out, db = tmp_path / "out", compared.db
    if "--out-is-full" in args:
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    if "--out-is-file" in args:
        out.write_text("a file")
    if "--out-under-file" in args:
        (tmp_path / "file").write_text("a file")
        out = tmp_path / "file" / "out"
    if "--db-missing" in args:
        db = tmp_path / "missing.db"
    before = _listing(tmp_path)
    args = [a for a in args if not a.startswith("--out-") and a != "--db-missing"]
    done = engine("report", "--db", str(db), *args, "--out", str(out), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spkemb-engine report: error: ") and says in lines[0], lines
    assert _listing(tmp_path) == before


@pytest.mark.slow
def test_force_replaces_the_reports_files_and_keeps_the_others(compared: Compared, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = engine("report", "--db", str(compared.db), str(compared.ids["sinc"]), "--group", "resnet34-lm", "--out",
                   str(out), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    # files of the user's, one named as a report's figure could be (all such names were removed)
    (out / "notes.txt").write_text("mine")
    (out / "det-notes.png").write_text("mine too")
    done = engine("report", "--db", str(compared.db), str(compared.ids["sinc"]), "--out", str(out), "--force",
                  "--format", "csv", "--format", "markdown", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # the earlier report's tables, page, figures and pairs went; this one's and the user's are there
    assert {p.name for p in out.iterdir()} == {"notes.txt", "det-notes.png", "pivot.csv", "pivot.md", "systems.csv",
                                                ".report-files"}
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "pivot.csv").read_text().startswith("system,network,trials,backend,runs,eer,")


def test_a_folder_where_the_report_writes_a_file_is_refused_before_any_file_is_written(compared: Compared,
                                                                                        tmp_path: Path) -> None:
    """`systems.csv` a folder: pivot.csv and significance.csv were written, then the error, and no manifest."""
    out = tmp_path / "out"
    (out / "systems.csv").mkdir(parents=True)
    done = engine("report", "--db", str(compared.db), str(compared.ids["sinc"]), "--group", "resnet34-lm", "--out",
                  str(out), "--force", "--format", "csv", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().endswith(f"--out {out}: {out}/systems.csv is a folder where the report writes a "
                                        "file: move it away, or name another --out")
    assert [p.name for p in out.iterdir()] == ["systems.csv"]


def test_force_takes_from_a_listed_manifest_only_what_a_report_writes(compared: Compared, tmp_path: Path) -> None:
    """The manifest is a file of the folder like any other: a config.yml listed in it was deleted."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "config.yml").write_text("mine")
    (out / "runs.db").write_text("mine too")
    (out / "pivot.tex").write_text("an earlier report's")
    (out / ".report-files").write_text("config.yml\nruns.db\npivot.tex\n../out/config.yml\n")
    done = engine("report", "--db", str(compared.db), str(compared.ids["sinc"]), "--out", str(out), "--force",
                  "--format", "csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert {p.name for p in out.iterdir()} == {"config.yml", "runs.db", "pivot.csv", "systems.csv", ".report-files"}
    assert (out / "config.yml").read_text() == "mine"


def test_a_manifest_that_is_no_regular_file_is_not_read(compared: Compared, tmp_path: Path) -> None:
    """A FIFO named .report-files: --force waited on it for ever."""
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / ".report-files")
    (out / "pivot.md").write_text("kept: no manifest read names it")
    done = engine("report", "--db", str(compared.db), str(compared.ids["sinc"]), "--out", str(out), "--force",
                  "--format", "csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (out / "pivot.md").read_text() == "kept: no manifest read names it"
    assert (out / ".report-files").read_text() == "pivot.csv\nsystems.csv\n"  # the FIFO replaced by this report's list


@pytest.mark.slow
def test_names_with_markup_are_shown_as_they_are_in_every_format(compared: Compared, tmp_path: Path) -> None:
    """Two `$` in a name were mathtext for matplotlib (one it cannot parse: a traceback after the tables
    were written); `<`, `>` and `|` printed as ¡ ¿ — under pdflatex; `<b>` was HTML in pivot.md."""
    db = tmp_path / "runs.db"
    shutil.copy(compared.db, db)
    name = r"lr$\notacommand$ <b>|*x*"
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE runs SET name = ? WHERE id = ?", (name, compared.ids["sinc"]))
    conn.close()
    out = tmp_path / "out"
    done = engine("report", "--db", str(db), str(compared.ids["sinc"]), "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert {f"det-{TRIALS}.pdf", "report.html"} <= {p.name for p in out.iterdir()}
    tex = (out / "pivot.tex").read_text()
    assert r"lr\$\textbackslash{}notacommand\$ \textless{}b\textgreater{}\textbar{}*x*" in tex
    assert r"lr\$\\notacommand\$ \<b\>\|\*x\*" in (out / "pivot.md").read_text()


def test_a_sweeps_group_is_no_seeds_of_one_setup(compared: Compared, tmp_path: Path) -> None:
    """A sweep's trials differ in their settings: `report --group` gave them a mean ± std as seeds."""
    from engine.compare.pivot import sweeps_as_runs

    db = tmp_path / "runs.db"
    shutil.copy(compared.db, db)
    with open_store(db) as store:
        store.create_sweep(name="resnet34-lm", method="grid", base_config="c.yml", sweep_dir="s", protocol=TRIALS,
                           subset="development", space={}, seeds=1, epochs=3, planned=2, slots="cpu", prune="none",
                           prune_after=1, run_group="resnet34-lm", command=[])
    out = tmp_path / "out"
    done = engine("report", "--db", str(db), "--group", "resnet34-lm", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 2 and "group 'resnet34-lm' is a sweep's" in done.stderr, done.stderr
    assert not out.exists()
    with open_store(db, readonly=True) as store:  # Compare's view by group: each trial a system of its own
        run_ids, groups = sweeps_as_runs(store, [compared.ids["sinc"]], ["resnet34-lm"])
        assert (run_ids, groups) == ([compared.ids[n] for n in ("sinc", "resnet-s1", "resnet-s2")], [])
        assert build_pivot(store, run_ids, groups).named() == (run_ids, [])


@pytest.mark.slow
def test_a_run_without_a_validated_figure_is_said_and_a_report_of_none_is_refused(compared: Compared,
                                                                                  tmp_path: Path) -> None:
    """A report of an unvalidated run exited 0 with headers alone (`1 system(s), 0 row(s)`)."""
    db = tmp_path / "runs.db"
    shutil.copy(compared.db, db)
    with open_store(db) as store:
        fresh = store.create_run(kind="train", exp_dir=tmp_path / "fresh", out_dir=tmp_path / "fresh" / "train",
                                 protocol="P", subset="train", config={}, command=["train"], device="cpu",
                                 name="fresh")
    none = engine("report", "--db", str(db), str(fresh), "--out", str(tmp_path / "none"), cwd=tmp_path)
    assert none.returncode == 2 and not (tmp_path / "none").exists()
    assert none.stderr == (f"spkemb-engine report: error: nothing to report: #{fresh} fresh has no validated figure "
                           "yet — validate first (`spkemb-engine validate TRN_DIR PROTOCOL`)\n")
    some = engine("report", "--db", str(db), str(fresh), str(compared.ids["sinc"]), "--out", str(tmp_path / "some"),
                  cwd=tmp_path)
    assert some.returncode == 0, some.stderr
    assert f"report: warning: #{fresh} fresh has no validated figure yet: its system has no row" in some.stderr
    assert "report: 2 system(s)" in some.stdout


def test_the_significance_files_hold_the_paired_bootstrap_of_the_first_system_against_the_others(
        report: Path, compared: Compared) -> None:
    """What Compare says of its first two systems, now in the report: the same bootstrap, the same figures."""
    from engine.compare.significance import compare_groups

    def score_file(run: int) -> Path:
        (path,) = _rows(compared.db, "SELECT v.scores_path FROM validations AS v JOIN runs AS r ON r.id = v.run_id "
                                     "AND v.epoch = r.best_epoch WHERE r.parent_id = ?", run)[0]
        return Path(path)

    expected = compare_groups([score_file(compared.ids["sinc"])],
                              [score_file(compared.ids[n]) for n in ("resnet-s1", "resnet-s2")], n=1000, seed=0)
    rows = list(csv.DictReader(io.StringIO((report / "significance.csv").read_text())))
    assert [(r["trials"], r["system_a"], r["system_b"], r["metric"]) for r in rows] == [
        (TRIALS, "#5 sinc", "resnet34-lm (2 runs)", d.metric) for d in expected]
    for row, d in zip(rows, expected, strict=True):
        assert (float(row["difference"]), float(row["low"]), float(row["high"])) == (d.difference, d.low, d.high)
        assert (row["verdict"], row["seeds_a"], row["seeds_b"], row["problem"]) == (d.verdict, "1", "2", "")
    assert expected[0].verdict == "B better"  # the ResNet seeds separate their trials further
    markdown = (report / "significance.md").read_text().splitlines()
    assert len(markdown) == 2 + len(expected) and "| EER (pp) |" in markdown[2] and "B better" in markdown[2]
    # a single run against two seeds: the seeds' part is the group's variance, for both sides (1 df)
    assert f"| 1000 × {expected[0].units} {expected[0].unit} and seeds (1 and 2, t on {expected[0].df:.2g} df) |" \
        in markdown[2]
    assert [float(r["seeds_df"]) for r in rows] == [d.df for d in expected]
    assert [r[-1] for r in _tabular_rows((report / "significance.tex").read_text())] == [d.verdict for d in expected]
    page = (report / "report.html").read_text()
    assert "<h2>Significance</h2>" in page and page.count("<td>B better</td>") >= 1



def test_several_pairs_on_a_list_get_intervals_that_hold_together(compared: Compared, tmp_path: Path) -> None:
    """Each pair was judged at 95 %: eight equal systems gave a false "better" in 6 of 10 reports."""
    from engine.compare.significance import compare_groups

    ids = [compared.ids[n] for n in ("sinc", "resnet-s1", "resnet-s2")]
    done = engine("report", "--db", str(compared.db), *map(str, ids), "--format", "csv", "--format", "markdown",
                  "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "significance.csv").read_text())))
    assert {(r["pairs"], r["level"], r["replicates"]) for r in rows} == {("2", "0.975", "2000")}
    files = [Path(_rows(compared.db, "SELECT v.scores_path FROM validations AS v JOIN runs AS r ON r.id = v.run_id "
                                     "AND v.epoch = r.best_epoch WHERE r.parent_id = ?", run)[0][0]) for run in ids]
    expected = compare_groups(files[:1], files[1:2], n=2000, seed=0, alpha=0.025)  # replicates x pairs
    assert [(float(r["low"]), float(r["high"])) for r in rows[:len(expected)]] == [(d.low, d.high) for d in expected]
    assert "(each at 97.5 %: 2 pairs)" in (tmp_path / "out" / "significance.md").read_text()

def test_a_pair_that_cannot_be_weighed_keeps_its_row_with_the_reason(compared: Compared, tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    shutil.copy(compared.db, db)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE validations SET scores_path = ? WHERE run_id IN (SELECT id FROM runs WHERE parent_id = ?)",
                     (str(tmp_path / "gone.txt"), compared.ids["sinc"]))
    conn.close()
    done = engine("report", "--db", str(db), str(compared.ids["sinc"]), "--group", "resnet34-lm",
                  "--format", "csv", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (row,) = csv.DictReader(io.StringIO((tmp_path / "out" / "significance.csv").read_text()))
    assert row["problem"] == f"no score file {tmp_path / 'gone.txt'} (validate again)" and row["verdict"] == ""


def test_a_run_compared_beside_its_own_group_is_drawn_over_the_groups_copy_of_its_curve(compared: Compared) -> None:
    """The run's curve lay exactly under the group's copy of it: its legend named a line nobody could see."""
    from engine.compare.figures import draw_all

    with open_store(compared.db, readonly=True) as store:
        pivot = build_pivot(store, [compared.ids["resnet-s1"]], ["resnet34-lm"], curves=True)
    (det,) = [f for f in draw_all(pivot) if f.stem.startswith("det-")]
    lines = [line for line in det.figure.axes[0].get_lines() if line.get_label() != "EER line"]
    alone, grouped = lines[0], lines[1:]
    assert alone.get_label().startswith("#1 resnet-s1") and len(grouped) == 2
    assert all(alone.get_zorder() > g.get_zorder() and alone.get_linewidth() > g.get_linewidth() for g in grouped)


def test_a_validate_run_named_beside_its_training_run_is_said_to_be_its_figures_twice(compared: Compared,
                                                                                      tmp_path: Path) -> None:
    sinc, val = compared.ids["sinc"], compared.ids["sinc val"]
    done = engine("report", "--db", str(compared.db), str(sinc), str(val), "--format", "csv", "--out",
                  str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (f"report: warning: run #{val} validates run #{sinc}, which is compared too: its figures are in both "
            "systems") in done.stderr
    seed = compared.ids["resnet-s1"]
    done = engine("report", "--db", str(compared.db), str(seed), "--group", "resnet34-lm", "--format", "csv", "--out",
                  str(tmp_path / "out2"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"report: warning: run #{seed} is compared alone and in group resnet34-lm, which holds it" in done.stderr


def test_the_der_beside_a_systems_figures_is_of_the_checkpoint_it_picks(tmp_path: Path) -> None:
    """After `pick --epoch 2`, the newest check was of an avg-top2 extraction: its DER went beside epoch 2's EER."""

    compared = make_compared(tmp_path, diarized=False)
    with open_store(compared.db) as store:
        _diarized(store, compared.ids["sinc val"], "2", epoch=2, der=0.25)  # the pick's first, then the newer one
        _diarized(store, compared.ids["sinc val"], "avg-top2", epoch=3, name="avg-top2", der=0.5)
        pivot = build_pivot(store, [compared.ids["sinc"]])
    (raw,) = [c for c in pivot.cells if c.backend == "raw"]
    assert raw.der.mean == 0.25


def _diarized(store, val: int, folder_name: str, *, epoch: int, der: float, name: str | None = None,
              mode: str = "exact", step: float = 0.1, collar: float = 0.0) -> None:
    """An apply run under validate run ``val`` of checkpoint ``name`` (None: ``epoch``), its extraction in
    ``apply/FOLDER_NAME`` and the diarization check of it."""
    from engine.records import Extraction

    folder = Path(store.run(val)["out_dir"]) / "apply" / folder_name
    apply = store.create_run(kind="apply", exp_dir=folder, out_dir=folder, protocol=PROTOCOL, subset="development",
                             config=None, command=["apply"], device="cpu", parent_id=val)
    store.add_extraction(apply, Extraction(epoch=epoch, checkpoint_name=name, protocol=PROTOCOL, subset="development",
                                           out_dir=folder, mode=mode, step=step, duration=1.0, files=2,
                                           audio_seconds=60.0, wall_seconds=1.0))
    store.add_diarization(apply, out_dir=folder, epoch=epoch, protocol=PROTOCOL, subset="development",
                          collar=collar, skip_overlap=False, num_speakers="oracle", threshold=0.5, tuned_on=None,
                          linkage="average", frame_rule="centre", der=der, missed=1.0, false_alarm=0.5,
                          confusion=1.0, total=20.0, files=[])


def test_the_der_is_of_the_default_extraction_and_the_report_names_any_other(tmp_path: Path) -> None:
    """A newer check of a step-0.5 extraction replaced the step-0.1 one in the DER column, unsaid: a paper
    table compared DERs of different extractions."""
    compared = make_compared(tmp_path, diarized=False)
    sinc = compared.ids["sinc"]
    with open_store(compared.db) as store:
        _diarized(store, compared.ids["sinc val"], "2", epoch=2, der=0.25)
        _diarized(store, compared.ids["sinc val"], "2-step0.5", epoch=2, step=0.5, der=0.5)
        _diarized(store, compared.ids["sinc val"], "2-onnxruntime", epoch=2, mode="onnxruntime", der=0.375)
    done = engine("report", "--db", str(compared.db), str(sinc), "--format", "csv", "--out", str(tmp_path / "a"),
                  cwd=tmp_path)
    assert done.returncode == 0 and "warning" not in done.stderr, done.stderr
    systems = list(csv.DictReader((tmp_path / "a" / "systems.csv").open()))
    assert [(r["trials"], r["checkpoint"], r["extraction"]) for r in systems if r["extraction"]] == [
        (f"{PROTOCOL}.development", "2", "apply/2")]
    assert [r["der"] for r in csv.DictReader((tmp_path / "a" / "pivot.csv").open()) if r["der"]] == ["0.25"]

    # only other extractions and settings: the DER is the newest of those, and said
    other = make_compared(tmp_path / "other", diarized=False)
    with open_store(other.db) as store:
        _diarized(store, other.ids["sinc val"], "2-step0.5", epoch=2, step=0.5, der=0.5)
        _diarized(store, other.ids["sinc val"], "2-step0.5", epoch=2, step=0.5, collar=0.25, der=0.375)
    done = engine("report", "--db", str(other.db), str(other.ids["sinc"]), "--format", "csv", "--out",
                  str(tmp_path / "b"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == (
        f"report: warning: the DER of run #{other.ids['sinc']} on {PROTOCOL}.development is of apply/2-step0.5, "
        "not of apply's defaults (exact path, --step 0.1; collar 0, overlap scored, oracle speakers), which it has "
        "no check of: systems.csv names each DER's extraction")


def test_a_groups_curve_is_drawn_where_every_seed_has_the_epoch() -> None:
    """A seed that trained one epoch longer was the group's "mean" there alone, with a band of no width."""
    from engine.compare.figures import _mean_band

    epochs, mean, std = _mean_band([[(1, 0.3), (2, 0.2), (3, 0.1)], [(1, 0.4), (2, 0.3)]])
    assert epochs.tolist() == [1, 2] and mean.tolist() == pytest.approx([0.35, 0.25])
    assert std.tolist() == pytest.approx([statistics.stdev([0.3, 0.4])] * 2)


def test_the_report_says_runs_not_yet_done_and_a_group_of_one_seed(tmp_path: Path) -> None:
    """A group's mean mixed a seed's last epoch with a seed still training, and two runs trained
    with the default seed showed a ± of 0.00 as a spread between seeds: both unsaid."""
    import sqlite3

    from tests.engine.seeded_groups import add_seeded_run

    db = tmp_path / "runs.db"
    with open_store(db) as store:
        same = [add_seeded_run(store, tmp_path / "exp", "lm", 0, separation, name=f"lm-{k}")
                for k, separation in enumerate((1.5, 1.6))]
        training = add_seeded_run(store, tmp_path / "exp", "lm", 1, 1.2, name="lm-2")
        validating = add_seeded_run(store, tmp_path / "exp", None, 5, 1.0, name="solo")
        (validator,) = [r["id"] for r in store.children(validating)]
    with sqlite3.connect(db) as conn:  # as a live training and a live validation leave their rows
        conn.execute("UPDATE runs SET status = 'running' WHERE id IN (?, ?)", (training, validator))
    done = run_in_process("report", "--db", str(db), "--group", "lm", str(validating), "--out",
                          str(tmp_path / "out"), "--format", "csv")
    assert done.returncode == 0, done.stderr
    assert (f"report: warning: run #{training} is running: its figures are of the epochs validated so far "
            "(systems.csv's status column says each run's)") in done.stderr
    assert f"report: warning: run #{validating} is still being validated: its figures may change" in done.stderr
    assert (f"report: warning: group lm holds runs #{same[0]}, #{same[1]} of one seed (0): its ± is no spread "
            "between seeds — train its runs with `--seed N` each") in done.stderr
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "systems.csv").read_text())))
    assert {int(r["run_id"]): r["status"] for r in rows} == {
        same[0]: "completed", same[1]: "completed", training: "running", validating: "completed+validating"}


def test_markdown_cells_keep_their_names_as_typed_under_a_renderer() -> None:
    """`_lm_0.2+m=a@b_` rendered as an italic `lm_0.2+m=a@b`, `~x~` struck through: group and run names
    may hold any of these."""
    from markdown_it import MarkdownIt

    from engine.compare.tables import markdown_table

    names = ["_lm_0.2+m=a@b_", "~x~ and $y$", "a & b | **c**", "`d` <e> [f](g)"]
    text = markdown_table(["system"], ["---"], [[n] for n in names])
    page = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(text)
    cells = re.findall(r"<td>(.*?)</td>", page)
    assert cells == [html.escape(n, quote=False) for n in names], page


def test_the_latex_significance_table_prints_negative_numbers_with_a_minus_sign() -> None:
    """`0.066 [-0.089, 0.265]` in text mode printed hyphens, beside the title's `$-$`; a name's hyphen stays."""
    from engine.compare.pivot import System
    from engine.compare.significance import Difference
    from engine.compare.verdicts import Weighed, to_latex

    d = Difference(metric="mindcf_01", a=0.5, b=0.434, difference=0.066, low=-0.089, high=0.265, unit="speakers",
                   units=40, replicates=1000, verdict="no clear difference")
    systems = [System(label=label, network="ResNet34", run_ids=(k,)) for k, label in enumerate(("#1 a-b", "#2 c"))]
    tex = to_latex([Weighed(trials="Vox.test", a=systems[0], b=systems[1], differences=(d,))])
    row = next(line for line in tex.splitlines() if "Vox.test" in line)
    assert "0.066 [$-$0.089, 0.265]" in row and "#1 a-b" in row.replace(r"\#", "#"), row


def test_a_report_of_a_copied_database_leaves_nothing_beside_it(compared: Compared, tmp_path: Path) -> None:
    """It opened the database as a writer: a zero-byte runs.db-lock was left beside a copy mailed to a
    co-author (a report writes no row)."""
    copy = tmp_path / "copy" / "runs.db"
    copy.parent.mkdir()
    shutil.copyfile(compared.db, copy)
    done = engine("report", "--db", str(copy), str(compared.ids["sinc"]), "--format", "csv", "--out",
                  str(tmp_path / "out"), cwd=compared.db.parent)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in copy.parent.iterdir()) == ["runs.db"]
