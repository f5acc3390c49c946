"""``spkemb-engine report``: the comparison of runs and groups as files a paper or a lab page uses.

Into ``--out`` it writes the pivot (``engine.compare.pivot``) as ``pivot.tex`` (booktabs),
``pivot.csv`` and ``pivot.md``; where two systems share a trial list, the paired bootstrap of the
first against each other one (``engine.compare.verdicts``) as ``significance.tex``, ``.csv`` and ``.md``;
each system's runs, seeds and checkpoints as ``systems.csv`` (``engine.compare.systems``); the
figures (``engine.compare.figures``) as PNG, SVG and PDF; and ``report.html``, one self-contained page
holding the systems (with the config keys that differ between them), the tables and every figure (SVG
inlined as ``data:`` URIs: it opens anywhere, mailed or copied alone).

It writes only under ``--out`` and only its own files, each atomically. A folder that exists and
holds anything is refused unless ``--force`` (then the files an earlier report wrote, as its
``.report-files`` lists them, are removed, the new ones written, and every other file is kept), so
that a report is never mixed by accident into a folder of something else.
Everything is checked (the database, the runs and groups, the folder) before the first file is
written. matplotlib is imported here (through ``figures``), never by the TUI at start-up.
"""

from __future__ import annotations

import base64
import html
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.atomic import atomic_write
from engine.compare import tables, verdicts
from engine.compare.pivot import Pivot, build_pivot
from engine.compare.systems import system_runs, systems_csv, systems_html
from engine.compare.verdicts import Weighed, weigh
from engine.console import out, say
from engine.errors import FileAccessError, StoreError
from engine.regular_files import read_regular
from engine.requests import ReportRequest
from engine.store.db import default_db_path
from engine.store.runs import Store, open_store
from engine.version import software_text

#: what ``--format`` may name; all of them by default
FORMATS = ("latex", "csv", "markdown", "png", "svg", "pdf", "html")
TABLE_FILES = {"latex": "pivot.tex", "csv": "pivot.csv", "markdown": "pivot.md"}
#: the pairs of systems weighed, written where two systems share a trial list
SIGNIFICANCE_FILES = {"latex": "significance.tex", "csv": "significance.csv", "markdown": "significance.md"}
HTML_FILE = "report.html"
#: each system's runs, seeds and the checkpoint of each trial list's figures
SYSTEMS_FILE = "systems.csv"
FIGURE_FORMATS = ("png", "svg", "pdf")
#: the names of the files a report wrote, one a line: what ``--force`` removes before the next one
MANIFEST = ".report-files"


def cmd_report(args: ReportRequest) -> int:
    """``spkemb-engine report [RUN_ID ...] [--group G ...] --out DIR [--format F ...] [--force]``."""
    db = default_db_path(args.db)
    if not db.exists():
        raise StoreError(f"no runs database at {db}: pass --db FILE or set SPKEMB_DB")
    folder = Path(args.out)
    _check_folder(folder, force=args.force)
    formats = tuple(dict.fromkeys(args.format or FORMATS))
    # read only: a report writes no row (a writer's runs.db-lock was left beside a copied database)
    with open_store(db, readonly=True) as store:
        pivot = build_pivot(store, list(args.run_id), list(args.group or ()), curves=True)
        rows = {run_id: store.run(run_id) or {} for run_id in pivot.runs}
        # a validate run named beside its training run is the same figures twice
        twice = [(r.id, parent) for r in pivot.runs.values() if r.kind == "validate"
                 and (parent := rows[r.id].get("parent_id")) in pivot.runs]
        software = runs_software(store, rows)
    configs = {run_id: row.get("config") for run_id, row in rows.items()}
    for run_id, parent in twice:
        say(f"report: warning: run #{run_id} validates run #{parent}, which is compared too: its figures are in "
            "both systems")
    for system in (s for s in pivot.systems if s.group is not None):
        for run_id in sorted(set(system.run_ids) & set(args.run_id)):
            say(f"report: warning: run #{run_id} is compared alone and in group {system.group}, which holds it: "
                "a difference between the two is partly of the run with itself")
    empty = [s.label for s in pivot.systems if not any(c.system == s for c in pivot.cells)]
    if len(empty) == len(pivot.systems):
        raise StoreError(f"nothing to report: {', '.join(empty)} ha{'s' if len(empty) == 1 else 've'} no validated "
                         "figure yet — validate first (`spkemb-engine validate TRN_DIR PROTOCOL`)")
    for label in empty:
        say(f"report: warning: {label} has no validated figure yet: its system has no row")
    _warn_lists_apart(pivot)
    _warn_other_extractions(pivot)
    _warn_unfinished(pivot)
    _warn_repeated_seeds(pivot)
    weighed = weigh(pivot, said=say) if {"latex", "csv", "markdown", "html"} & set(formats) else []
    written = write_report(pivot, folder, formats, source=str(db), weighed=weighed, software=software,
                           configs=configs)
    for path in written:
        out(str(path))
    out(f"report: {len(pivot.systems)} system(s), {len(pivot.cells)} row(s), {len(written)} file(s) in {folder}")
    return 0


def _warn_lists_apart(pivot: Pivot) -> None:
    """Say when no trial list is every system's (a sweep validates on development, `validate` on test by
    default): the systems on other lists are weighed against none of the others."""
    lists = {s.label: sorted({c.trials for c in pivot.cells if c.system == s and c.eer is not None})
             for s in pivot.systems}
    lists = {label: names for label, names in lists.items() if names}
    if len(lists) > 1 and not set.intersection(*(set(names) for names in lists.values())):
        each = "; ".join(f"{label}: {', '.join(names)}" for label, names in lists.items())
        say(f"report: warning: no trial list is every system's ({each}): systems on different lists are not "
            "weighed against each other — validate them on one (`validate --subset`)")


def _warn_other_extractions(pivot: Pivot) -> None:
    """Say each DER that is not of apply's default extraction and check (the run has none of those): a
    coarser step or another collar is another figure, beside the others' in one column."""
    for run_id, run in pivot.runs.items():
        for d in run.diarized:
            if not d.default:
                say(f"report: warning: the DER of run #{run_id} on {d.trials} is of {d.extraction or 'an extraction'}"
                    ", not of apply's defaults (exact path, --step 0.1; collar 0, overlap scored, oracle speakers), "
                    "which it has no check of: systems.csv names each DER's extraction")


def _warn_unfinished(pivot: Pivot) -> None:
    """Say each compared run whose figures are not its whole training's: still training or validating,
    stopped, failed or lost (a group's mean mixed a seed's last epoch with another's first, unsaid)."""
    for run_id, run in pivot.runs.items():
        if run.status != "completed":
            say(f"report: warning: run #{run_id} is {run.status}: its figures are of the epochs validated so far "
                "(systems.csv's status column says each run's)")
        elif run.validating:
            say(f"report: warning: run #{run_id} is still being validated: its figures may change")


def _warn_repeated_seeds(pivot: Pivot) -> None:
    """Say a group whose runs share a seed: `train` takes seed 0 when none is given, and two such runs
    made a ± of 0.00 that read as a spread between seeds."""
    for system in (s for s in pivot.systems if s.group is not None):
        seeds: dict[int | None, list[int]] = {}
        for run_id in system.run_ids:
            seeds.setdefault(pivot.runs[run_id].seed, []).append(run_id)
        for seed, runs in seeds.items():
            if seed is not None and len(runs) > 1:
                ids = ", ".join(f"#{i}" for i in runs)
                say(f"report: warning: group {system.group} holds runs {ids} of one seed ({seed}): its ± is no "
                    "spread between seeds — train its runs with `--seed N` each")


def _check_folder(folder: Path, *, force: bool) -> None:
    """Refuse, before any work, a folder the report cannot or should not write into."""
    if folder.exists() and not folder.is_dir():
        raise FileAccessError(f"--out {folder} is a file: name a folder (it is created if missing)")
    if folder.is_dir():
        if any(folder.iterdir()) and not force:
            raise FileAccessError(f"--out {folder} exists and is not empty: name a new folder, or pass --force "
                                  "to replace the report's files there (other files are kept)")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise FileAccessError(f"--out {folder} cannot be written: pick a folder you may write")
        return
    parent = folder.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise FileAccessError(f"--out {folder}: {parent} is a file, so no folder can be made inside it; name a "
                              "folder elsewhere (it is created if missing)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise FileAccessError(f"--out {folder}: {parent} cannot be written, so the folder cannot be made there; "
                              "pick a folder you may write")


def runs_software(store: Store, compared: Mapping[int, Mapping[str, Any]]) -> list[tuple[str, list[int]]]:
    """Each software the compared runs (their rows by id) and the training runs they validate ran with
    (``runs.software``, on one line), with the runs that ran with it: what a paper's methods section says."""
    rows = dict(compared)
    parents = {p for row in rows.values() if isinstance(p := row.get("parent_id"), int) and p not in rows}
    rows.update({run_id: store.run(run_id) or {} for run_id in parents})
    found: dict[str, list[int]] = {}
    for run_id in sorted(rows):
        found.setdefault(software_text(rows[run_id].get("software")), []).append(run_id)
    return list(found.items())


def write_report(pivot: Pivot, folder: Path, formats: tuple[str, ...], *, source: str = "",
                 weighed: list[Weighed] | None = None, software: list[tuple[str, list[int]]] | None = None,
                 configs: Mapping[int, Any] | None = None) -> list[Path]:
    """Write the formats asked for into ``folder`` (made if missing); returns the files written.
    ``weighed``: the pairs of systems weighed (``engine.compare.verdicts``), as tables of their own;
    ``software``: what the runs ran with (``runs_software``), on the HTML page; ``configs``: each run's
    resolved config, whose differences the page shows.
    Every file is made in memory first: a figure that fails leaves the folder as it was."""
    files = [(name, _table(pivot, fmt, source).encode()) for fmt, name in TABLE_FILES.items() if fmt in formats]
    files += [(name, _verdicts(weighed, fmt, source).encode())
              for fmt, name in SIGNIFICANCE_FILES.items() if fmt in formats and weighed]
    if "csv" in formats:
        files.append((SYSTEMS_FILE, systems_csv(system_runs(pivot)).encode()))
    if {"png", "svg", "pdf", "html"} & set(formats):
        from engine.compare.figures import draw_all

        inlined = []
        for figure in draw_all(pivot):
            for fmt in FIGURE_FORMATS:
                if fmt in formats or (fmt == "svg" and "html" in formats):
                    data = figure.render(fmt)
                    if fmt in formats:
                        files.append((f"{figure.stem}.{fmt}", data))
                    if fmt == "svg":
                        inlined.append((figure.stem, figure.caption, data))
        if "html" in formats:
            files.append((HTML_FILE, html_page(pivot, inlined, source, weighed or [], software or [],
                                               configs).encode()))
    for name, _ in [*files, (MANIFEST, b"")]:  # checked before the first file is written, not at the third
        if (path := folder / name).is_dir() and not path.is_symlink():  # a file of another kind is replaced
            raise FileAccessError(f"--out {folder}: {path} is a folder where the report writes a file: move it "
                                  "away, or name another --out")
    folder.mkdir(parents=True, exist_ok=True)
    _remove_earlier_report(folder)
    written = [_write(folder / name, data) for name, data in files]
    _write(folder / MANIFEST, "".join(f"{name}\n" for name, _ in files).encode())
    return written


def _remove_earlier_report(folder: Path) -> None:
    """``--force`` over an earlier report: the files its manifest names go, every other file stays. A
    table, page or figure left from it would sit beside the new ones as if of the same systems (a DET
    of a trial list no longer compared, a pivot.tex when only csv is asked for now). The manifest is
    a file in the user's folder like any other: only names a report writes are taken from it (a
    ``config.yml`` listed there stays), and it is read only if it is a small regular file."""
    try:
        names = read_regular(folder / MANIFEST, MAX_MANIFEST_BYTES).decode("utf-8", errors="replace").splitlines()
    except OSError:
        return
    for name in names:
        path = folder / name
        if _written_by_a_report(name) and path.is_file() and not path.is_symlink():
            path.unlink()


#: more than any report's list of files (two tables, a page and three formats of four figures per trial list)
MAX_MANIFEST_BYTES = 1 << 20
#: a figure's file: ``loss``, ``eer``, ``det-LIST`` or ``scores-LIST`` (``figures.safe_stem``), in a figure format
_FIGURE_NAME = re.compile(r"(loss|eer|(det|scores)-[A-Za-z0-9._-]+)\.(" + "|".join(FIGURE_FORMATS) + ")")


def _written_by_a_report(name: str) -> bool:
    return (name in {*TABLE_FILES.values(), *SIGNIFICANCE_FILES.values(), HTML_FILE}
            or (_FIGURE_NAME.fullmatch(name) is not None and not name.startswith(".")))


def _table(pivot: Pivot, fmt: str, source: str) -> str:
    if fmt == "latex":
        return tables.to_latex(pivot, caption=f"spkemb-engine report of {source}")
    return tables.to_csv(pivot) if fmt == "csv" else tables.to_markdown(pivot)


def _verdicts(weighed: list[Weighed], fmt: str, source: str) -> str:
    if fmt == "latex":
        return verdicts.to_latex(weighed, caption=f"spkemb-engine report of {source}: paired bootstrap")
    return verdicts.to_csv(weighed) if fmt == "csv" else verdicts.to_markdown(weighed)


def _write(path: Path, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data), mode="wb")


_STYLE = """body { font-family: system-ui, sans-serif; max-width: 60em; margin: 2em auto; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #ccc; }
thead th { border-bottom: 2px solid #222; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 2em 0; } figure img { max-width: 100%; } figcaption { color: #555; }"""


def html_page(pivot: Pivot, figures: list[tuple[str, str, bytes]], source: str,
              weighed: list[Weighed] | None = None, software: list[tuple[str, list[int]]] | None = None,
              configs: Mapping[int, Any] | None = None) -> str:
    """One page, self-contained: the systems (their runs, seeds, checkpoints and config differences,
    ``configs``: each run's resolved config), the table, the pairs weighed, each figure (SVG as a
    ``data:`` URI) and the software the runs ran with, nothing fetched."""
    ran_with = "".join(f"<li>{html.escape(line)} — run{'s' if len(ids) > 1 else ''} "
                       f"{', '.join(f'#{i}' for i in ids)}</li>" for line, ids in software or [])
    software_section = f"<h2>Software</h2>\n<ul>{ran_with}</ul>\n" if ran_with else ""
    systems = systems_html(pivot, configs or {})
    shown = "".join(
        f'<figure id="fig-{html.escape(stem)}"><img alt="{html.escape(caption)}" '
        f'src="data:image/svg+xml;base64,{base64.b64encode(svg).decode()}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>\n" for stem, caption, svg in figures)
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
            f"<title>spkemb report</title>\n<style>\n{_STYLE}\n</style></head>\n<body>\n"
            f"<h1>spkemb report</h1>\n<p>Runs database: <code>{html.escape(source)}</code></p>\n"
            f"<h2>Systems</h2>\n{systems}<h2>Results</h2>\n{tables.to_html(pivot)}"
            "<p>EER and DER in %; a group reads mean ± sample standard deviation over its runs; "
            "— : not recorded.</p>\n"
            f"{_significance_section(weighed or [])}"
            f"<h2>Figures</h2>\n{shown}{software_section}</body>\n</html>\n")


def _significance_section(weighed: list[Weighed]) -> str:
    if not weighed:
        return ""
    return (f"<h2>Significance</h2>\n{verdicts.to_html(weighed)}<p>On each trial list, the first system (A) "
            "against each other one (B): A − B of the picked epochs' figures (EERs in %, their difference in "
            f"percentage points, pp) and its 95 % interval over {verdicts.REPLICATES} paired bootstrap replicates "
            "(speakers resampled where the trials name them; a group's figure the mean over its seeds, the "
            "interval widened by the spread between its seeds, Student's t on Welch's degrees of freedom); lower "
            "is better. Where a "
            "list has several pairs, each interval is at 1 − 0.05 / pairs (Bonferroni, over as many more "
            "replicates, up to ten times), so that the 95 % holds for all of the list's verdicts on one figure "
            "together.</p>\n")
