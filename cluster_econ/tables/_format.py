"""Number formatting and term labelling shared by the table builders."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import cache

from cluster_econ.estimate.formula import split_top_level

INTERCEPT_NAMES = frozenset({"Intercept", "(Intercept)", "const", "_cons", "intercept"})


def fmt_number(x: float, digits: int) -> str:
    """Fixed decimals; ``n/a`` for NaN or infinity; never ``-0.000``."""
    if x is None or not math.isfinite(float(x)):
        return "n/a"
    text = f"{float(x):.{digits}f}"
    if text.startswith("-") and float(text) == 0.0:
        text = text[1:]
    return text


def excel_format(digits: int) -> str:
    """Excel number format showing ``digits`` decimals."""
    return "0" if digits <= 0 else "0." + "0" * digits


def excel_quote(text: str) -> str:
    """Literal text inside an Excel number format."""
    return '"' + text.replace('"', "") + '"' if text else ""


@cache
def _schema_labels() -> dict[str, str]:
    from cluster_econ import schema

    return schema.labels()


def pretty_level(level: str) -> str:
    """``quality_improvement`` -> ``Quality improvement``; other level texts unchanged."""
    if re.fullmatch(r"[a-z][a-z0-9_]*", level):
        return level.replace("_", " ").capitalize()
    return level


_CATEGORICAL = re.compile(r"^(?:C\()?([A-Za-z_][\w.]*)(?:,[^)]*)?\)?\[(?:T\.)?(.+)\]$")
_FUNCTION = re.compile(r"^([A-Za-z_][\w.]*)\(([A-Za-z_]\w*)\)$")


def label_term(term: str, user: Mapping[str, str] | None = None) -> str:
    """Readable label of a model term.

    User labels win; then the intercept names (``Constant``); interactions ``a:b`` (and fixed
    effect interactions ``a^b``) become ``A × B``; categorical levels ``phase[T.quality_improvement]``
    become ``Phase: Quality improvement``; ``log(x)`` becomes ``log(X label)``; canonical column
    names take their schema label (``cluster_econ.schema.labels()``); anything else is kept.
    """
    user = user or {}
    term = str(term)
    if term in user:
        return str(user[term])
    if term in INTERCEPT_NAMES:
        return "Constant"
    for sep in (":", "^"):
        parts = split_top_level(term, sep)
        if len(parts) > 1 and all(parts):
            return " × ".join(label_term(p.strip(), user) for p in parts)
    m = _CATEGORICAL.match(term)
    if m:
        return f"{label_term(m.group(1), user)}: {pretty_level(m.group(2))}"
    m = _FUNCTION.match(term)
    if m:
        return f"{m.group(1).split('.')[-1]}({label_term(m.group(2), user)})"
    return _schema_labels().get(term, term)
