"""The significance section of a report: on each trial list, the first system against each other one.

Each pair is weighed by the paired bootstrap of ``engine.compare.significance`` (speakers resampled
where the trial list names them, a group's seeds averaged on its side) on the score files of the
epochs the runs picked, as the TUI's Compare weighs its first two systems. Where a list has several
pairs, their intervals are Bonferroni's: each at 1 - 0.05 / pairs, so that the 95 % holds for all of
the list's verdicts of one figure together (eight equal systems gave a false "better" in 6 of 10
reports at 95 % each). A pair that cannot be
weighed (a score file gone, lists that share too few trials) keeps its row, with the reason.
Written as CSV (every figure at full precision), Markdown, LaTeX (booktabs) and an HTML table.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path

from engine.compare.pivot import Pivot, System, scored_of
from engine.compare.significance import Difference, compare_groups, figure_text, seeds_said
from engine.compare.tables import latex_escape, latex_tabular, markdown_table
from engine.errors import SpkembError

REPLICATES = 1000
#: 1 - the confidence level that holds for all the pairs of one trial list together (per figure)
ALPHA = 0.05
#: a list's pairs multiply the replicates of each up to this many times REPLICATES
MAX_REPLICATES_FACTOR = 10
_NAMES = {"eer": "EER (pp)", "mindcf_01": "minDCF(0.01)", "mindcf_005": "minDCF(0.05)"}


@dataclass(frozen=True)
class Weighed:
    """System ``a`` against system ``b`` on one trial list: their differences, or why there are none."""

    trials: str
    a: System
    b: System
    differences: tuple[Difference, ...] = ()
    problem: str | None = None
    #: the pairs weighed on the trial list: each interval is at 1 - 0.05 / pairs (Bonferroni)
    pairs: int = 1


def weigh(pivot: Pivot, *, replicates: int = REPLICATES, seed: int = 0,
          said: Callable[[str], None] | None = None) -> list[Weighed]:
    """Each trial list's first system (A) against each other system scored on it (B); ``said`` hears
    one line before each bootstrap (seconds each at VoxCeleb1-O's 37,720 trials)."""
    lists = sorted({s.trials for run in pivot.runs.values() for s in run.scored})
    out = []
    for trials in lists:
        scored = [(system, _score_files(pivot, system, trials)) for system in pivot.systems]
        scored = [(system, files) for system, files in scored if files]
        if len(scored) < 2:
            continue
        (a, files_a), others = scored[0], scored[1:]
        pairs = len(others)
        for b, files_b in others:
            missing = next((p for p in files_a + files_b if not p.is_file()), None)
            if missing is not None:
                out.append(Weighed(trials, a, b, problem=f"no score file {missing} (validate again)", pairs=pairs))
                continue
            # as many replicates in each tail of a Bonferroni interval as in a 95 % one's (up to 10 pairs)
            n = min(replicates * pairs, MAX_REPLICATES_FACTOR * replicates)
            if said is not None:
                said(f"report: weighing {a.label} against {b.label} on {trials} ({n} replicates)")
            try:
                differences = compare_groups(files_a, files_b, n=n, seed=seed, alpha=ALPHA / pairs)
                out.append(Weighed(trials, a, b, differences, pairs=pairs))
            except SpkembError as e:
                out.append(Weighed(trials, a, b, problem=str(e), pairs=pairs))
    return out


def _score_files(pivot: Pivot, system: System, trials: str) -> list[Path]:
    """The score file of the picked epoch of each run of ``system`` on ``trials``."""
    return [Path(s.scores_path) for _, s in scored_of(pivot, system, trials) if s.scores_path]


def _rows(weighed: list[Weighed]) -> list[tuple[Weighed, Difference | None]]:
    return [(w, d) for w in weighed for d in (w.differences or (None,))]


def _interval(d: Difference) -> str:
    return f"{figure_text(d.difference, d.metric)} [{figure_text(d.low, d.metric)}, {figure_text(d.high, d.metric)}]"


def _text_rows(weighed: list[Weighed]) -> list[list[str]]:
    """Trial list, A, B, figure, A − B [95 % interval], what was resampled, verdict (or the problem)."""
    rows = []
    for w, d in _rows(weighed):
        if d is None:
            rows.append([w.trials, w.a.label, w.b.label, "", "", "", w.problem or ""])
        else:
            level = "" if w.pairs == 1 else f" (each at {100 * (1 - ALPHA / w.pairs):.4g} %: {w.pairs} pairs)"
            rows.append([w.trials, w.a.label, w.b.label, _NAMES.get(d.metric, d.metric), _interval(d) + level,
                         _resampled(d), d.verdict])
    return rows


def _resampled(d: Difference) -> str:
    """``1000 × 40 speakers``, and the seeds of a group's side (``and seeds (1 and 3, t on 2 df)``): the
    interval holds the spread between seeds."""
    return f"{d.replicates} × {d.units} {d.unit}{seeds_said(d)}"


INTERVAL = "A − B [95 % CI]"
TITLES = ["trials", "A", "B", "figure", INTERVAL, "resampled", "verdict"]


def to_csv(weighed: list[Weighed]) -> str:
    """One line per pair and figure, fractions at full precision; a pair not weighed has its ``problem``."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["trials", "system_a", "system_b", "metric", "a", "b", "difference", "low", "high", "unit",
                     "units", "replicates", "seeds_a", "seeds_b", "verdict", "problem", "pairs", "level", "seeds_df"])
    for w, d in _rows(weighed):
        level = repr(1 - ALPHA / w.pairs)
        if d is None:
            writer.writerow([w.trials, w.a.label, w.b.label] + [""] * 12 + [w.problem or "", w.pairs, level, ""])
        else:
            writer.writerow([w.trials, w.a.label, w.b.label, d.metric, repr(d.a), repr(d.b), repr(d.difference),
                             repr(d.low), repr(d.high), d.unit, d.units, d.replicates, d.seeds[0], d.seeds[1],
                             d.verdict, "", w.pairs, level, "" if d.df is None else repr(d.df)])
    return text.getvalue()


def to_markdown(weighed: list[Weighed]) -> str:
    return markdown_table(TITLES, ["---"] * 4 + ["---:", "---", "---"], _text_rows(weighed))


def to_latex(weighed: list[Weighed], caption: str = "") -> str:
    """A booktabs ``tabular`` of the pairs (EER differences in %)."""
    # the interval's negative numbers with a minus sign, not a hyphen (names keep theirs)
    rows = [[_latex(re.sub(r"(?<![\w.])-(?=\d)", "−", c) if i == TITLES.index(INTERVAL) else c)
             for i, c in enumerate(r)] for r in _text_rows(weighed)]
    return latex_tabular("llllrll", [_latex(t) for t in TITLES], rows,
                         f"% {latex_escape(caption)}" if caption else "% spkemb-engine report: significance")


def _latex(text: str) -> str:
    """``text`` for pdflatex: the minus and times signs in math mode (no textcomp needed)."""
    return latex_escape(text).replace("−", "$-$").replace("×", r"$\times$")


def to_html(weighed: list[Weighed]) -> str:
    head = "".join(f"<th>{escape(t)}</th>" for t in TITLES)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>\n" for r in _text_rows(weighed))
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n"
