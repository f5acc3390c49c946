"""The comparison table as a paper or a spreadsheet takes it: LaTeX (booktabs), CSV and Markdown.

CSV keeps every column and the figures as the database holds them (fractions, full precision;
``*_std`` beside each for a group), so that a script reads the same numbers. LaTeX and Markdown
show them as a table does (EER and DER in %, ``mean ± std``) and leave out a figure's column where
no system has one (a database without calibration has no Cllr to show).
"""

from __future__ import annotations

import csv
import io
import re

from engine.compare.pivot import (
    COLUMNS,
    LABEL_COLUMNS,
    METRIC_COLUMNS,
    Column,
    Pivot,
    PivotCell,
    Stat,
    cell_text,
    cell_value,
)

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  # OT1, pdflatex's default encoding, prints these three as ¡ ¿ —
                  "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}
#: what a Markdown renderer would read as markup in a cell: a table's pipe, inline HTML and entities,
#: emphasis (`*` and `_`), code, links, GitHub's strikethrough (`~`) and maths (`$`)
_MARKDOWN_SPECIAL = re.compile(r"([\\|<>*_~$&`\[\]])")


def csv_header() -> list[str]:
    """The CSV's columns: the labels, then each figure and its standard deviation over a group."""
    return [c.key for c in LABEL_COLUMNS] + [name for c in METRIC_COLUMNS for name in (c.key, f"{c.key}_std")]


def to_csv(pivot: Pivot) -> str:
    """One line per cell; a figure not recorded is an empty field."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(csv_header())
    for cell in pivot.cells:
        row: list[object] = [cell_value(cell, c.key) for c in LABEL_COLUMNS]
        for column in METRIC_COLUMNS:
            stat: Stat | None = getattr(cell, column.key)
            row += ["", ""] if stat is None else [repr(stat.mean), "" if stat.std is None else repr(stat.std)]
        writer.writerow(row)
    return text.getvalue()


def shown_columns(pivot: Pivot) -> list[Column]:
    """The label columns, and each figure's column where some cell has that figure."""
    return [c for c in COLUMNS if not c.figure or any(getattr(cell, c.key) is not None for cell in pivot.cells)]


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _latex_cell(cell: PivotCell, column: Column) -> str:
    """A cell in LaTeX: ``mean $\\pm$ std``, an em dash (``---``) where nothing was recorded."""
    text = cell_text(cell, column, missing="\x01", pm="\x00")
    return latex_escape(text).replace("\x00", r" $\pm$ ").replace("\x01", "---")


def to_latex(pivot: Pivot, caption: str = "") -> str:
    """A booktabs ``tabular`` (``\\usepackage{booktabs}``), to ``\\input`` into a table float."""
    columns = shown_columns(pivot)
    spec = "".join("r" if c.figure or c.key == "runs" else "l" for c in columns)
    return latex_tabular(spec, [latex_escape(c.title) for c in columns],
                         [[_latex_cell(cell, c) for c in columns] for cell in pivot.cells],
                         f"% {latex_escape(caption)}" if caption else "% spkemb-engine report")


def latex_tabular(spec: str, titles: list[str], rows: list[list[str]], comment: str) -> str:
    """A booktabs ``tabular`` of cells already written in LaTeX, after a ``%`` comment line."""
    lines = [comment, f"\\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(titles) + r" \\", r"\midrule"]
    lines += [" & ".join(row) + r" \\" for row in rows]
    return "\n".join(lines + [r"\bottomrule", r"\end{tabular}", ""])


def to_markdown(pivot: Pivot) -> str:
    """A GitHub/MkDocs pipe table."""
    columns = shown_columns(pivot)
    return markdown_table([c.title for c in columns],
                          ["---:" if c.figure or c.key == "runs" else "---" for c in columns],
                          [[cell_text(cell, c) for c in columns] for cell in pivot.cells])


def markdown_table(titles: list[str], aligns: list[str], rows: list[list[str]]) -> str:
    """A pipe table: its titles, each column's alignment mark (``---``, ``---:``), its rows."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(_MARKDOWN_SPECIAL.sub(r"\\\1", text) for text in cells) + " |"

    return "\n".join([line(titles), "| " + " | ".join(aligns) + " |"] + [line(r) for r in rows]) + "\n"


def to_html(pivot: Pivot) -> str:
    """An HTML ``<table>`` (the report page's)."""
    from html import escape

    columns = shown_columns(pivot)
    head = "".join(f"<th>{escape(c.title)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td class=\"{'num' if c.figure else 'text'}\">{escape(cell_text(cell, c))}</td>"
                                    for c in columns) + "</tr>\n" for cell in pivot.cells)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n"
