"""Arithmetic over columns for derived variables in mapping specifications.

An expression such as ``sales - material_cost - energy_cost`` is parsed with Python's ``ast``
module and walked node by node: only names, numbers, ``+ - * /``, unary minus and parentheses are
accepted. Nothing is ever evaluated as Python.

Missing values propagate (a derived value needs every input it names), and a division by zero gives
a missing value, never an infinity: :func:`evaluate_counted` says in how many rows that happened.
"""

from __future__ import annotations

import ast
import operator

import numpy as np
import pandas as pd

from cluster_econ.errors import FormulaError

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def parse_arithmetic(text: str) -> ast.Expression:
    """Parse and check an arithmetic expression; raise FormulaError on anything else."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"cannot parse expression {text!r}: {exc.msg}") from exc
    for node in ast.walk(tree):
        ok = isinstance(
            node,
            ast.Expression
            | ast.BinOp
            | ast.UnaryOp
            | ast.Name
            | ast.Load
            | ast.USub
            | ast.UAdd
            | ast.Add
            | ast.Sub
            | ast.Mult
            | ast.Div,
        )
        ok = ok or (
            isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool)
        )
        if isinstance(node, ast.Name) and node.id.startswith("__"):
            ok = False
        if not ok:
            snippet = ast.get_source_segment(text, node) or type(node).__name__
            raise FormulaError(
                f"expression {text!r}: {snippet!r} is not allowed; use column names, numbers, + - * / and parentheses"
            )
    return tree


def names_in(text: str) -> list[str]:
    """Column names an expression uses, in the order they appear in the text."""
    found = sorted(
        (node.col_offset, node.id) for node in ast.walk(parse_arithmetic(text)) if isinstance(node, ast.Name)
    )
    seen: list[str] = []
    for _, name in found:
        if name not in seen:
            seen.append(name)
    return seen


def evaluate(text: str, data: pd.DataFrame) -> pd.Series:
    """Evaluate an arithmetic expression column-wise over ``data`` (missing propagates; a division
    by zero gives missing)."""
    return evaluate_counted(text, data)[0]


def evaluate_counted(text: str, data: pd.DataFrame) -> tuple[pd.Series, int]:
    """:func:`evaluate`, and the number of rows where a division by zero made the value missing."""
    tree = parse_arithmetic(text)
    zero_division = np.zeros(len(data), bool)

    def walk(node: ast.AST) -> pd.Series | float:
        nonlocal zero_division
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in data.columns:
                raise FormulaError(f"expression {text!r}: no column {node.id!r}")
            return pd.to_numeric(data[node.id], errors="coerce").astype("float64")
        if isinstance(node, ast.UnaryOp):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp):
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Div):
                denominator = right.to_numpy() if isinstance(right, pd.Series) else np.full(len(data), right)
                zero = denominator == 0
                if zero.any():
                    zero_division |= zero & ~np.isnan(_values(left, len(data)))
                    safe = np.where(zero, np.nan, denominator)
                    right = pd.Series(safe, index=data.index) if isinstance(right, pd.Series) else safe
                    if not isinstance(left, pd.Series):
                        left = pd.Series(left, index=data.index, dtype="float64")
            return _BINOPS[type(node.op)](left, right)
        raise FormulaError(f"expression {text!r}: unsupported element {type(node).__name__}")

    out = walk(tree)
    if not isinstance(out, pd.Series):
        out = pd.Series(out, index=data.index, dtype="float64")
    return out, int(zero_division.sum())


def _values(x: pd.Series | float, n: int) -> np.ndarray:
    return x.to_numpy(dtype="float64") if isinstance(x, pd.Series) else np.full(n, float(x))
