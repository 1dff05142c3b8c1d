"""Escaping of text from data for each output format, and spreadsheet neutralisation.

Every piece of text that can come from data or users (variable labels, model names, group
names, notes, titles) passes through one of these functions before it reaches a renderer.
"""

from __future__ import annotations

import html
import re

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    # characters used by the toolkit's own labels, given as commands that compile with plain
    # pdflatex and no extra package
    "²": r"\textsuperscript{2}",
    "³": r"\textsuperscript{3}",
    "×": r"$\times$",
    "±": r"$\pm$",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
    "−": "$-$",
    "–": "--",
    "—": "---",
    "α": r"$\alpha$",
    "β": r"$\beta$",
    "γ": r"$\gamma$",
    "δ": r"$\delta$",
    "Δ": r"$\Delta$",
    "σ": r"$\sigma$",
    "ρ": r"$\rho$",
    "\n": " ",
    "\r": " ",
    "\t": " ",
}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in _LATEX_SPECIAL))


def latex_escape(text: object) -> str:
    """Escape LaTeX special characters (``& % $ # _ { } ~ ^ \\ < > |``) and map a few symbols."""
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group(0)], str(text))


def html_escape(text: object) -> str:
    """Escape ``< > & " '`` for HTML text and attribute values."""
    return html.escape(str(text), quote=True)


_MD_RE = re.compile(r"([\\`*_\[\]<>|&#])")


def markdown_escape(text: object) -> str:
    """Backslash-escape Markdown punctuation that could format or inject HTML (incl. ``|``)."""
    return _MD_RE.sub(r"\\\1", str(text).replace("\r", " ").replace("\n", " "))


#: Characters that make a spreadsheet treat a cell as a formula (or that hide one).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
_PLAIN_NUMBER = re.compile(r"^[-+]?(?=\.?\d)(?:\d{1,3}(?:,\d{3})+|\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?$")


def is_plain_number(text: str) -> bool:
    """True for text such as ``-0.252``, ``-.252``, ``1,234``, ``17`` or ``-1.2e-05``: nothing a
    spreadsheet can execute."""
    return bool(_PLAIN_NUMBER.match(text))


def neutralise_cell(text: object) -> str:
    """Prefix a single quote to text a spreadsheet would read as a formula.

    Text that is a plain number (optional minus sign, digits, thousands commas, decimals) is
    left as is: a spreadsheet reads it as a number, never as a formula. Anything else that
    starts with ``=``, ``+``, ``-``, ``@``, a tab or a line break gets a leading ``'``.
    """
    s = str(text)
    if s.startswith(FORMULA_PREFIXES) and not is_plain_number(s):
        return "'" + s
    return s


_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_safe(text: object) -> str:
    """Drop control characters that XML 1.0 (Word, Excel) cannot store."""
    return _XML_ILLEGAL.sub("", str(text))
