"""A format-neutral table layout and its renderers (LaTeX, HTML, Markdown, Word, Excel, CSV).

Regression and descriptive tables both build a :class:`Layout` (title, spanning column groups,
header rows, body sections, notes) and inherit every output format from :class:`RenderedTable`.
Renderers are written here rather than taken from pandas' ``Styler.to_latex`` / ``to_html``
because the tables need spanning headers, rows beneath coefficients, notes under the table,
per-format escaping of every text cell, spreadsheet neutralisation and numbers that stay numbers
in Excel; no single library gives all of that with byte-stable Word and Excel output.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from cluster_econ.errors import ClusterEconError
from cluster_econ.tables._escape import (
    html_escape,
    latex_escape,
    markdown_escape,
    neutralise_cell,
    xml_safe,
)
from cluster_econ.tables._io import atomic_write, stable_zip


class TableError(ClusterEconError, ValueError):
    """Arguments to a table function are inconsistent (unknown term, bad group, bad format)."""


@dataclass(frozen=True)
class Cell:
    """One data cell: the text shown, and the number behind it for spreadsheets.

    ``value`` is the unrounded number when the cell shows one number (possibly decorated, for
    example ``(0.123)`` or ``0.252**``); ``number_format`` is the Excel format that displays
    ``value`` exactly as ``text``. Cells without a value are text in every format.
    """

    text: str
    value: float | int | None = None
    number_format: str | None = None


@dataclass(frozen=True)
class Row:
    """A body row. ``kind`` is ``"body"``, ``"sub"`` (the statistic beneath a coefficient) or
    ``"heading"`` (a section heading spanning the table, cells ignored)."""

    label: str
    cells: tuple[Cell, ...]
    kind: str = "body"


@dataclass(frozen=True)
class Layout:
    """Everything a renderer needs; all text is raw (renderers escape it)."""

    ncols: int
    headers: tuple[tuple[str, ...], ...]
    sections: tuple[tuple[Row, ...], ...]
    spans: tuple[tuple[str, int, int], ...] = ()
    stub: str = ""
    notes: tuple[str, ...] = ()
    title: str | None = None


#: Booktabs-like CSS for the ``ce-table`` HTML fragments (for reports that embed tables).
TABLE_CSS = """\
table.ce-table { border-collapse: collapse; margin: 1em 0; font-variant-numeric: tabular-nums; }
table.ce-table caption { caption-side: top; font-weight: bold; text-align: left; padding-bottom: .4em; }
table.ce-table th, table.ce-table td { padding: .15em .8em; text-align: center; font-weight: normal; }
table.ce-table th[scope="row"], table.ce-table tr.ce-heading th { text-align: left; }
table.ce-table tr.ce-heading th { font-style: italic; }
table.ce-table thead { border-top: 2px solid #000; border-bottom: 1px solid #000; }
table.ce-table th.ce-span { border-bottom: 1px solid #000; }
table.ce-table tbody + tbody { border-top: 1px solid #000; }
table.ce-table tbody:last-of-type { border-bottom: 2px solid #000; }
table.ce-table td.ce-note { text-align: left; font-size: .85em; padding-top: .3em; }
"""

_FIXED_DATETIME = _dt.datetime(1980, 1, 1, 0, 0, 0)
_NEG_NUMBER = re.compile(r"(?<![\w.])-(?=\d)")


def spans_from_groups(groups: dict[str, list[int]] | None, ncols: int,
                      what: str = "column") -> tuple[tuple[str, int, int], ...]:
    """Validate ``{"label": [indices]}`` column groups and return ``(label, first, last)`` spans."""
    if not groups:
        return ()
    spans: list[tuple[str, int, int]] = []
    taken: dict[int, str] = {}
    for label, idx in groups.items():
        cols = sorted(int(i) for i in idx)
        if not cols:
            raise TableError(f"{what} group {label!r} has no columns")
        bad = [i for i in cols if not 0 <= i < ncols]
        if bad:
            raise TableError(f"{what} group {label!r} refers to columns {bad}; valid indices are "
                             f"0 to {ncols - 1}")
        if cols != list(range(cols[0], cols[-1] + 1)):
            raise TableError(f"{what} group {label!r} must be contiguous columns, got {cols}")
        for i in cols:
            if i in taken:
                raise TableError(f"column {i} is in both {what} groups {taken[i]!r} and {label!r}")
            taken[i] = str(label)
        spans.append((str(label), cols[0], cols[-1]))
    return tuple(sorted(spans, key=lambda s: s[1]))


class RenderedTable:
    """Base of the table objects: every output format from one :class:`Layout`."""

    layout: Layout

    # -- text formats ----------------------------------------------------------------------
    def to_latex(self, path: str | os.PathLike[str] | None = None) -> str:
        """A booktabs ``table`` float; compiles with ``\\usepackage{booktabs}`` only.

        Notes are set under the tabular in a footnote-size minipage (no threeparttable needed).
        Returns the LaTeX text and writes it atomically to ``path`` when given.
        """
        text = _latex(self.layout)
        if path is not None:
            atomic_write(path, text)
        return text

    def to_html(self, path: str | os.PathLike[str] | None = None) -> str:
        """An HTML ``<table>`` fragment (caption, thead, one tbody per section, notes in tfoot)."""
        text = _html(self.layout)
        if path is not None:
            atomic_write(path, text)
        return text

    def to_markdown(self, path: str | os.PathLike[str] | None = None) -> str:
        """A pipe table; stacked header rows are joined with ``<br>`` in each header cell."""
        text = _markdown(self.layout)
        if path is not None:
            atomic_write(path, text)
        return text

    def to_csv(self, path: str | os.PathLike[str] | None = None) -> str:
        """CSV of the displayed strings (UTF-8, RFC 4180 line ends).

        Cells are the strings the table shows. A cell that is a plain number (``-0.252``,
        ``1,234``) is written as is, so spreadsheets read it as a number; any other cell that
        starts with ``=``, ``+``, ``-``, ``@``, a tab or a line break gets a leading ``'``
        (``-0.252***`` becomes ``'-0.252***``) so that it is never evaluated as a formula.
        """
        text = _csv(self.layout)
        if path is not None:
            atomic_write(path, text)
        return text

    # -- binary formats --------------------------------------------------------------------
    def to_docx(self, path: str | os.PathLike[str] | None = None) -> bytes:
        """A Word document holding the table; byte-identical for identical inputs."""
        data = _docx(self.layout)
        if path is not None:
            atomic_write(path, data)
        return data

    def to_xlsx(self, path: str | os.PathLike[str] | None = None) -> bytes:
        """An Excel workbook; numbers are number cells formatted as displayed, text is
        neutralised against formula injection; byte-identical for identical inputs."""
        data = _xlsx(self.layout)
        if path is not None:
            atomic_write(path, data)
        return data

    def to_frame(self) -> pd.DataFrame:
        """The displayed strings as a DataFrame (row labels as index, header rows as columns)."""
        lay = self.layout
        rows = [r for sec in lay.sections for r in sec if r.kind != "heading"]
        columns: pd.Index
        header_rows = list(lay.headers)
        if lay.spans:
            header_rows.insert(0, tuple(_span_labels(lay)))
        if len(header_rows) == 1:
            columns = pd.Index(header_rows[0])
        else:
            columns = pd.MultiIndex.from_arrays([list(h) for h in header_rows])
        return pd.DataFrame([[c.text for c in r.cells] for r in rows],
                            index=pd.Index([r.label for r in rows], name=lay.stub or None),
                            columns=columns)

    _WRITERS: ClassVar[dict[str, str]] = {".tex": "to_latex", ".html": "to_html", ".htm": "to_html",
                ".md": "to_markdown", ".csv": "to_csv", ".docx": "to_docx", ".xlsx": "to_xlsx"}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the table in the format named by the extension (.tex .html .md .csv .docx
        .xlsx), atomically. Returns the path."""
        p = Path(path)
        method = self._WRITERS.get(p.suffix.lower())
        if method is None:
            raise TableError(f"cannot save a table as {p.name!r}: the extension must be one of "
                             f"{', '.join(sorted(self._WRITERS))}")
        getattr(self, method)(p)
        return p

    def __str__(self) -> str:
        return self.to_markdown()

    def _repr_html_(self) -> str:
        return self.to_html()


# -- helpers ---------------------------------------------------------------------------------
def _span_labels(lay: Layout) -> list[str]:
    out = [""] * lay.ncols
    for label, a, b in lay.spans:
        for i in range(a, b + 1):
            out[i] = label
    return out


def _span_runs(lay: Layout) -> list[tuple[str, int, int, bool]]:
    """Spans with the gaps between them: (label, first, last, is_span)."""
    runs: list[tuple[str, int, int, bool]] = []
    pos = 0
    for label, a, b in lay.spans:
        runs.extend(("", i, i, False) for i in range(pos, a))
        runs.append((label, a, b, True))
        pos = b + 1
    runs.extend(("", i, i, False) for i in range(pos, lay.ncols))
    return runs


def _notes_list(lay: Layout) -> list[str]:
    return [n for n in lay.notes if n]


# -- LaTeX -----------------------------------------------------------------------------------
def _latex_cell(text: str) -> str:
    return _NEG_NUMBER.sub("$-$", latex_escape(text))


def _latex(lay: Layout) -> str:
    n = lay.ncols
    out = [r"\begin{table}[htbp]", r"\centering"]
    if lay.title:
        out.append(r"\caption{" + latex_escape(lay.title) + "}")
    out += [r"\begin{tabular}{l" + "c" * n + "}", r"\toprule"]
    if lay.spans:
        parts = [""]
        rules = []
        for label, a, b, is_span in _span_runs(lay):
            if is_span:
                parts.append(rf"\multicolumn{{{b - a + 1}}}{{c}}{{{latex_escape(label)}}}")
                rules.append(rf"\cmidrule(lr){{{a + 2}-{b + 2}}}")
            else:
                parts.append("")
        out.append(" & ".join(parts) + r" \\")
        out.append(" ".join(rules))
    for k, hdr in enumerate(lay.headers):
        stub = latex_escape(lay.stub) if k == len(lay.headers) - 1 else ""
        out.append(" & ".join([stub, *(latex_escape(h) for h in hdr)]) + r" \\")
    for sec in lay.sections:
        out.append(r"\midrule")
        for row in sec:
            if row.kind == "heading":
                out.append(rf"\multicolumn{{{n + 1}}}{{l}}{{\textit{{{latex_escape(row.label)}}}}} \\")
                continue
            out.append(" & ".join([latex_escape(row.label), *(_latex_cell(c.text) for c in row.cells)])
                       + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    notes = _notes_list(lay)
    if notes:
        out += [r"\par\medskip", r"\begin{minipage}{\linewidth}\footnotesize"]
        out.append("\\par\n".join(latex_escape(x) for x in notes))
        out.append(r"\end{minipage}")
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"


# -- HTML ------------------------------------------------------------------------------------
#: Inline alignment, so that labels stay left and numbers centred where TABLE_CSS is absent (a
#: notebook's own table style right-aligns every cell).
_LEFT = "text-align:left"
_CENTER = "text-align:center"


def _html(lay: Layout) -> str:
    n = lay.ncols
    out = ['<table class="ce-table">']
    if lay.title:
        out.append(f"<caption>{html_escape(lay.title)}</caption>")
    out.append("<thead>")
    if lay.spans:
        cells = ["<th></th>"]
        for label, a, b, is_span in _span_runs(lay):
            if is_span:
                cells.append(f'<th colspan="{b - a + 1}" class="ce-span">{html_escape(label)}</th>')
            else:
                cells.append("<th></th>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    for k, hdr in enumerate(lay.headers):
        stub = html_escape(lay.stub) if k == len(lay.headers) - 1 else ""
        out.append("<tr>" + f'<th scope="col" style="{_LEFT}">{stub}</th>'
                   + "".join(f'<th scope="col" style="{_CENTER}">{html_escape(h)}</th>' for h in hdr) + "</tr>")
    out.append("</thead>")
    for sec in lay.sections:
        out.append("<tbody>")
        for row in sec:
            if row.kind == "heading":
                out.append(f'<tr class="ce-heading"><th colspan="{n + 1}" scope="rowgroup" style="{_LEFT}">'
                           f"{html_escape(row.label)}</th></tr>")
                continue
            cls = ' class="ce-sub"' if row.kind == "sub" else ""
            out.append(f'<tr{cls}><th scope="row" style="{_LEFT}">{html_escape(row.label)}</th>'
                       + "".join(f'<td style="{_CENTER}">{html_escape(c.text)}</td>' for c in row.cells) + "</tr>")
        out.append("</tbody>")
    notes = _notes_list(lay)
    if notes:
        out.append("<tfoot>")
        out += [f'<tr><td colspan="{n + 1}" class="ce-note">{html_escape(x)}</td></tr>'
                for x in notes]
        out.append("</tfoot>")
    out.append("</table>")
    return "\n".join(out) + "\n"


# -- Markdown --------------------------------------------------------------------------------
def _markdown(lay: Layout) -> str:
    n = lay.ncols
    stacks: list[list[str]] = [[] for _ in range(n)]
    span_labels = _span_labels(lay)
    for i in range(n):
        if span_labels[i]:
            stacks[i].append(markdown_escape(span_labels[i]))
        stacks[i] += [markdown_escape(h[i]) for h in lay.headers if h[i]]
    header = [markdown_escape(lay.stub), *("<br>".join(s) for s in stacks)]
    out: list[str] = []
    if lay.title:
        out += [f"**{markdown_escape(lay.title)}**", ""]
    out.append("| " + " | ".join(header) + " |")
    out.append("|:---|" + ":---:|" * n)
    for sec in lay.sections:
        for row in sec:
            if row.kind == "heading":
                out.append(f"| *{markdown_escape(row.label)}* |" + " |" * n)
                continue
            out.append("| " + " | ".join([markdown_escape(row.label),
                                          *(markdown_escape(c.text) for c in row.cells)]) + " |")
    notes = _notes_list(lay)
    if notes:
        out.append("")
        out.append("\n\n".join(markdown_escape(x) for x in notes))
    return "\n".join(out) + "\n"


# -- CSV -------------------------------------------------------------------------------------
def _grid(lay: Layout) -> list[list[str]]:
    """Rows of raw strings: title, span row, header rows, body, notes."""
    n = lay.ncols
    rows: list[list[str]] = []
    if lay.title:
        rows.append([lay.title] + [""] * n)
    if lay.spans:
        row = [""] * (n + 1)
        for label, a, _b in lay.spans:
            row[a + 1] = label
        rows.append(row)
    for k, hdr in enumerate(lay.headers):
        rows.append([lay.stub if k == len(lay.headers) - 1 else "", *hdr])
    for sec in lay.sections:
        for r in sec:
            rows.append([r.label] + ([""] * n if r.kind == "heading" else [c.text for c in r.cells]))
    rows += [[x] + [""] * n for x in _notes_list(lay)]
    return rows


def _csv(lay: Layout) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    for row in _grid(lay):
        writer.writerow([neutralise_cell(x) for x in row])
    return buf.getvalue()


def _xml_safe_layout(lay: Layout) -> Layout:
    """The layout with every text stripped of characters XML cannot hold."""
    def row(r: Row) -> Row:
        return Row(xml_safe(r.label), tuple(Cell(xml_safe(c.text), c.value, c.number_format)
                                           for c in r.cells), r.kind)

    return Layout(
        ncols=lay.ncols,
        headers=tuple(tuple(xml_safe(h) for h in hdr) for hdr in lay.headers),
        sections=tuple(tuple(row(r) for r in sec) for sec in lay.sections),
        spans=tuple((xml_safe(label), a, b) for label, a, b in lay.spans),
        stub=xml_safe(lay.stub), notes=tuple(xml_safe(n) for n in lay.notes),
        title=xml_safe(lay.title) if lay.title is not None else None,
    )


# -- Word ------------------------------------------------------------------------------------
def _set_border(cell: object, **edges: str) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    tc_pr = cell._tc.get_or_add_tcPr()  # type: ignore[attr-defined]
    borders = tc_pr.find(qn("w:tcBorders"))
    if borders is None:
        borders = OxmlElement("w:tcBorders")
        tc_pr.append(borders)
    for edge, size in edges.items():
        el = OxmlElement(f"w:{edge}")
        el.set(qn("w:val"), "single")
        el.set(qn("w:sz"), size)
        el.set(qn("w:space"), "0")
        el.set(qn("w:color"), "000000")
        borders.append(el)


def _docx(lay: Layout) -> bytes:
    import docx
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    lay = _xml_safe_layout(lay)

    n = lay.ncols
    doc = docx.Document()
    props = doc.core_properties
    props.author = ""
    props.last_modified_by = ""
    props.title = lay.title or ""
    props.revision = 1
    props.created = _FIXED_DATETIME
    props.modified = _FIXED_DATETIME
    props.last_printed = _FIXED_DATETIME
    if lay.title:
        doc.add_paragraph().add_run(lay.title).bold = True

    header_rows: list[list[str]] = []
    if lay.spans:
        header_rows.append(["", *_span_labels(lay)])
    for k, hdr in enumerate(lay.headers):
        header_rows.append([lay.stub if k == len(lay.headers) - 1 else "", *hdr])
    body: list[Row] = [r for sec in lay.sections for r in sec]
    section_starts = set()
    pos = len(header_rows)
    for sec in lay.sections:
        section_starts.add(pos)
        pos += len(sec)

    table = doc.add_table(rows=len(header_rows) + len(body), cols=n + 1)
    # python-docx's cell(i, j) rebuilds the whole grid of cells on every call (quadratic in
    # the cells); the grid is built once here and again only after a merge changes it
    grid: list[Any] = []

    def cell(i: int, j: int) -> Any:
        if not grid:
            grid.extend(table._cells)
        return grid[i * (n + 1) + j]

    def merge(a: Any, b: Any) -> Any:
        merged = a.merge(b)
        grid.clear()
        return merged

    for i, texts in enumerate(header_rows):
        for j, text in enumerate(texts):
            cell(i, j).text = text
    if lay.spans:
        for label, a, b in lay.spans:
            merged = merge(cell(0, a + 1), cell(0, b + 1))
            merged.text = label
            for j in range(a + 1, b + 2):
                _set_border(cell(0, j), bottom="4")
    for k, row in enumerate(body):
        i = len(header_rows) + k
        if row.kind == "heading":
            merged = merge(cell(i, 0), cell(i, n))
            merged.text = ""
            merged.paragraphs[0].add_run(row.label).italic = True
            continue
        cell(i, 0).text = row.label
        for j, c in enumerate(row.cells):
            cell(i, j + 1).text = c.text
    nrows = len(header_rows) + len(body)
    for i in range(nrows):
        for j in range(n + 1):
            tc = cell(i, j)
            for par in tc.paragraphs:
                par.alignment = WD_ALIGN_PARAGRAPH.CENTER if j > 0 else WD_ALIGN_PARAGRAPH.LEFT
                for run in par.runs:
                    run.font.size = Pt(9)
            if i == 0:
                _set_border(tc, top="12")
            if i in section_starts:
                _set_border(tc, top="4")
            if i == nrows - 1:
                _set_border(tc, bottom="12")
    for note in _notes_list(lay):
        run = doc.add_paragraph().add_run(note)
        run.font.size = Pt(8)
    buf = io.BytesIO()
    doc.save(buf)
    return stable_zip(buf.getvalue())


# -- Excel -----------------------------------------------------------------------------------
def _xlsx(lay: Layout) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, Side

    lay = _xml_safe_layout(lay)

    n = lay.ncols
    wb = Workbook()
    wb.properties.creator = "cluster_econ"
    wb.properties.lastModifiedBy = None
    wb.properties.created = _FIXED_DATETIME
    wb.properties.modified = _FIXED_DATETIME
    if lay.title:
        wb.properties.title = lay.title
    ws = wb.active
    ws.title = "Table"
    thin, thick = Side(style="thin"), Side(style="medium")
    center, left = Alignment(horizontal="center"), Alignment(horizontal="left")

    def put_text(r: int, c: int, text: str) -> None:
        if text != "":
            cell = ws.cell(row=r, column=c)
            cell.value = neutralise_cell(text)
            cell.data_type = "s"

    r = 1
    if lay.title:
        put_text(r, 1, lay.title)
        ws.cell(row=r, column=1).font = Font(bold=True)
        r += 2
    first_header = r
    if lay.spans:
        for label, a, b in lay.spans:
            put_text(r, a + 2, label)
            ws.cell(row=r, column=a + 2).alignment = center
            if b > a:
                ws.merge_cells(start_row=r, start_column=a + 2, end_row=r, end_column=b + 2)
            for c in range(a + 2, b + 3):
                ws.cell(row=r, column=c).border = Border(bottom=thin)
        r += 1
    for k, hdr in enumerate(lay.headers):
        put_text(r, 1, lay.stub if k == len(lay.headers) - 1 else "")
        ws.cell(row=r, column=1).alignment = left
        for j, h in enumerate(hdr):
            put_text(r, j + 2, h)
            ws.cell(row=r, column=j + 2).alignment = center
        r += 1
    for c in range(1, n + 2):
        top = ws.cell(row=first_header, column=c)
        top.border = Border(top=thick, bottom=top.border.bottom)
    for sec in lay.sections:
        for c in range(1, n + 2):
            ws.cell(row=r, column=c).border = Border(top=thin)
        for row in sec:
            put_text(r, 1, row.label)
            ws.cell(row=r, column=1).alignment = left
            if row.kind == "heading":
                ws.cell(row=r, column=1).font = Font(italic=True)
            else:
                for j, cell_spec in enumerate(row.cells):
                    cell = ws.cell(row=r, column=j + 2)
                    if cell_spec.value is not None:
                        cell.value = cell_spec.value
                        if cell_spec.number_format:
                            cell.number_format = cell_spec.number_format
                    else:
                        put_text(r, j + 2, cell_spec.text)
                    cell.alignment = center
            r += 1
    for c in range(1, n + 2):
        last = ws.cell(row=r - 1, column=c)
        last.border = Border(top=last.border.top, bottom=thick)
    r += 1
    for note in _notes_list(lay):
        put_text(r, 1, note)
        ws.cell(row=r, column=1).font = Font(size=9)
        r += 1
    width = max([len(row.label) for sec in lay.sections for row in sec] + [len(lay.stub), 8])
    ws.column_dimensions["A"].width = min(width + 2, 60)
    buf = io.BytesIO()
    wb.save(buf)
    return stable_zip(buf.getvalue())
