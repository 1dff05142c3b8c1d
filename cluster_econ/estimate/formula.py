"""Safe formula parser (fixest syntax) and design-matrix builder.

The accepted grammar, written here because formulas arrive from user configuration files and the
parser is therefore a security boundary::

    formula   := lhs "~" rhs [ "|" fixed_effects ] [ "|" endog "~" instruments ]
    rhs       := ["-"] term { ("+" | "-") term }          # "-1" / "+0" drop the intercept, "1" keeps it
    term      := atom { (":" | "*") atom }                 # a*b expands to a + b + a:b
    atom      := NAME | "(" rhs ")" | C(NAME) | i(NAME [, ref=VALUE]) | f(expr) | I(expr)
               | sunab(NAME, NAME [, ref_p=NUMBER] [, att=TRUE|FALSE])   # Sun-Abraham event study
    f         := log | log1p | exp | sqrt | abs            # a fixed whitelist
    expr      := arithmetic over NAME and numbers with + - * / ** and parentheses, and f(expr)
    fixed_effects := "0" | NAME { "^" NAME } { "+" NAME { "^" NAME } }

Two parts where the second contains ``~`` are ``exog | endog ~ instruments``; three parts are
``exog | fixed effects | endog ~ instruments`` (as in R's fixest).

Nesting (parentheses, function calls, unary signs, chained ``**``) is limited to
``MAX_NESTING`` levels, so a hostile formula gets a :class:`FormulaError` rather than exhausting
Python's recursion limit.

The tokenizer and recursive-descent parser are written here rather than taken from formulaic or
patsy because both evaluate terms as Python code in an environment (``eval``), which is not
acceptable for formulas read from files. Nothing here calls ``eval`` or ``exec``: terms are parsed
into a small tree of whitelisted node types, and evaluation walks that tree with numpy.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.errors import FormulaError

__all__ = [
    "DynamicSpec", "FormulaSpec", "LaggedTerm", "ModelFrame", "as_frame", "model_frame",
    "parse_dynamic_formula", "parse_formula", "term_variables",
]

TRANSFORMS: Mapping[str, Callable[[np.ndarray], np.ndarray]] = {
    "log": np.log, "log1p": np.log1p, "exp": np.exp, "sqrt": np.sqrt, "abs": np.abs,
}
FACTOR_FUNCS = ("C", "i")
#: Deepest nesting of parentheses, calls, unary signs and ``**`` a formula may use.
MAX_NESTING = 50
EVENT_FUNCS = ("sunab",)

# --------------------------------------------------------------------------------------------
# tokenizer
# --------------------------------------------------------------------------------------------
_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<string>'[^'\\]*'|"[^"\\]*")
  | (?P<op>\*\*|[-+*/:^(),=~|])
""", re.VERBOSE)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            snippet = text[pos:pos + 20]
            raise FormulaError(f"formula {text!r}: character {text[pos]!r} at position {pos} "
                               f"(near {snippet!r}) is not allowed; formulas accept variable names, "
                               "numbers, + - * / ** : ^ ( ) and the transforms "
                               f"{', '.join(TRANSFORMS)}, I(), C(), i()")
        kind = m.lastgroup or ""
        if kind != "ws":
            toks.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    return toks


# --------------------------------------------------------------------------------------------
# expression trees (arithmetic inside transforms and I())
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Num:
    value: float
    text: str

    def show(self) -> str:
        return self.text


@dataclass(frozen=True)
class _Var:
    name: str

    def show(self) -> str:
        return self.name


@dataclass(frozen=True)
class _Unary:
    op: str
    arg: Any

    def show(self) -> str:
        return f"{self.op}{_paren(self.arg, 3)}"


@dataclass(frozen=True)
class _Bin:
    op: str
    left: Any
    right: Any

    def show(self) -> str:
        prec = _PREC[self.op]
        # left-associative operators: the right operand needs parentheses at equal precedence;
        # ** is right-associative: the left operand does
        lp, rp = (prec + 1, prec) if self.op == "**" else (prec, prec + 1)
        return f"{_paren(self.left, lp)} {self.op} {_paren(self.right, rp)}"


@dataclass(frozen=True)
class _Call:
    func: str
    arg: Any

    def show(self) -> str:
        return f"{self.func}({self.arg.show()})"


_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "**": 4}


def _paren(node: Any, need: int) -> str:
    """Text of ``node``, in parentheses if it binds less tightly than ``need``."""
    own = _PREC[node.op] if isinstance(node, _Bin) else 3 if isinstance(node, _Unary) else 9
    return f"({node.show()})" if own < need else node.show()


def _expr_vars(node: Any) -> list[str]:
    if isinstance(node, _Var):
        return [node.name]
    if isinstance(node, _Unary | _Call):
        return _expr_vars(node.arg)
    if isinstance(node, _Bin):
        return _expr_vars(node.left) + _expr_vars(node.right)
    return []


def _eval_expr(node: Any, data: pd.DataFrame) -> np.ndarray:
    if isinstance(node, _Num):
        return np.full(len(data), node.value)
    if isinstance(node, _Var):
        return _numeric(data[node.name], node.name)
    if isinstance(node, _Unary):
        return -_eval_expr(node.arg, data)
    if isinstance(node, _Call):
        with np.errstate(all="ignore"):
            return TRANSFORMS[node.func](_eval_expr(node.arg, data))
    left, right = _eval_expr(node.left, data), _eval_expr(node.right, data)
    with np.errstate(all="ignore"):
        if node.op == "+":
            return left + right
        if node.op == "-":
            return left - right
        if node.op == "*":
            return left * right
        if node.op == "/":
            return left / right
        return np.power(left, right)


def _numeric(s: pd.Series, name: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(s):
        return s.to_numpy(dtype=float, na_value=np.nan)
    if not pd.api.types.is_numeric_dtype(s):
        raise FormulaError(f"column {name!r} has type {s.dtype} and cannot enter arithmetic; "
                           f"use C({name}) to treat it as a factor")
    return s.to_numpy(dtype=float, na_value=np.nan)


# --------------------------------------------------------------------------------------------
# formula-level atoms and terms
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Atom:
    """One factor of an interaction term: a numeric expression or a categorical factor."""

    kind: str          # "num" or "factor"
    text: str          # canonical text
    expr: Any = None   # for "num": expression tree
    var: str = ""      # for "factor": the column
    ref: Any = None    # for "factor": reference level (None: first level)
    func: str = "C"

    def variables(self) -> list[str]:
        if self.kind == "sunab":
            return [self.var, *_expr_vars(self.expr)]
        return _expr_vars(self.expr) if self.kind == "num" else [self.var]


class _Parser:
    def __init__(self, text: str, toks: list[_Tok], whole: str) -> None:
        self.text = text
        self.toks = toks
        self.i = 0
        self.whole = whole
        self.depth = 0

    def nest(self, tok: _Tok | None) -> None:
        """Enter one level of nesting (a parenthesis, call, sign or power); see ``MAX_NESTING``."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            where = f" (at {tok.text!r} in {self.text.strip()[:40]!r}...)" if tok is not None else ""
            raise FormulaError(f"formula {self.whole[:80]!r}{'...' if len(self.whole) > 80 else ''}: "
                               f"nested more than {MAX_NESTING} levels deep{where}; write the "
                               "expression with fewer parentheses, signs or powers")

    def unnest(self) -> None:
        self.depth -= 1

    # helpers
    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise FormulaError(f"formula {self.whole!r}: unexpected end in {self.text!r}")
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        tok = self.take()
        if tok.text != text:
            raise FormulaError(f"formula {self.whole!r}: expected {text!r} but found {tok.text!r} "
                               f"in {self.text!r}")

    def fail(self, tok: _Tok, why: str) -> FormulaError:
        return FormulaError(f"formula {self.whole!r}: {why} (at {tok.text!r} in {self.text!r})")

    # rhs := ["-"|"+"] term {("+"|"-") term}
    def parse_rhs(self, stop: tuple[str, ...] = ()) -> tuple[list[tuple[_Atom, ...]], bool | None]:
        terms: list[tuple[_Atom, ...]] = []
        intercept: bool | None = None
        sign = "+"
        tok = self.peek()
        if tok is not None and tok.text in "+-" and tok.kind == "op":
            sign = self.take().text
        while True:
            tok = self.peek()
            if tok is None or tok.text in stop:
                raise self.fail(tok or _Tok("op", "<end>", 0), "expected a term")
            if tok.kind == "number":
                self.take()
                if tok.text not in ("0", "1"):
                    raise self.fail(tok, "a bare number in a formula must be 0 or 1 (intercept); "
                                    "use I() for arithmetic")
                keep = (tok.text == "1") == (sign == "+")
                intercept = keep
            else:
                expanded = self.parse_term()
                if sign == "-":
                    drop = {tuple(a.text for a in t) for t in expanded}
                    terms = [t for t in terms if tuple(a.text for a in t) not in drop]
                else:
                    for t in expanded:
                        if tuple(a.text for a in t) not in {tuple(a.text for a in u) for u in terms}:
                            terms.append(t)
            tok = self.peek()
            if tok is None or tok.text in stop:
                return terms, intercept
            if tok.text not in "+-" or tok.kind != "op":
                raise self.fail(tok, "expected + or - between terms")
            sign = self.take().text

    # term := atomgroup {(":"|"*") atomgroup}; returns the expanded list of interaction terms
    def parse_term(self) -> list[tuple[_Atom, ...]]:
        groups = [self.parse_atom_group()]
        ops: list[str] = []
        while (tok := self.peek()) is not None and tok.text in (":", "*"):
            ops.append(self.take().text)
            groups.append(self.parse_atom_group())
        # combine left to right: a:b -> products; a*b -> a + b + a:b
        result = groups[0]
        for op, grp in zip(ops, groups[1:], strict=True):
            inter = [_merge(t, u) for t in result for u in grp]
            result = _unique(result + grp + inter) if op == "*" else _unique(inter)
        return result

    def parse_atom_group(self) -> list[tuple[_Atom, ...]]:
        tok = self.peek()
        if tok is not None and tok.text == "(":
            self.take()
            self.nest(tok)
            terms, icpt = self.parse_rhs(stop=(")",))
            self.unnest()
            self.expect(")")
            if icpt is not None:
                raise self.fail(tok, "an intercept (0 or 1) cannot appear inside parentheses")
            return terms
        return [(self.parse_atom(),)]

    def parse_atom(self) -> _Atom:
        tok = self.take()
        if tok.kind != "name":
            raise self.fail(tok, "expected a variable name or a transform")
        _check_name(tok.text, self)
        nxt = self.peek()
        if nxt is None or nxt.text != "(":
            return _Atom("num", tok.text, expr=_Var(tok.text))
        func = tok.text
        self.take()  # "("
        if func in FACTOR_FUNCS:
            var_tok = self.take()
            if var_tok.kind != "name":
                raise self.fail(var_tok, f"{func}() takes a column name")
            _check_name(var_tok.text, self)
            ref = None
            ref_text = ""
            if (t := self.peek()) is not None and t.text == ",":
                self.take()
                kw = self.take()
                if kw.text != "ref":
                    raise self.fail(kw, f"{func}() accepts only the keyword ref=")
                self.expect("=")
                val = self.take()
                if val.kind == "number":
                    ref = float(val.text) if any(c in val.text for c in ".eE") else int(val.text)
                elif val.kind == "string":
                    ref = val.text[1:-1]
                elif val.kind == "name":
                    ref = val.text
                else:
                    raise self.fail(val, "ref= takes a number or a level name")
                ref_text = f", ref={val.text}"
            self.expect(")")
            return _Atom("factor", f"{func}({var_tok.text}{ref_text})", var=var_tok.text, ref=ref,
                         func=func)
        if func in EVENT_FUNCS:
            return self.parse_sunab(tok)
        if func != "I" and func not in TRANSFORMS:
            raise self.fail(tok, f"function {func!r} is not allowed; the accepted transforms are "
                            f"{', '.join(TRANSFORMS)}, I(), C(), i() and sunab()")
        self.nest(tok)
        expr = self.parse_expr()
        self.unnest()
        self.expect(")")
        if func == "I":
            return _Atom("num", f"I({expr.show()})", expr=expr)
        node = _Call(func, expr)
        return _Atom("num", node.show(), expr=node)

    def parse_sunab(self, tok: _Tok) -> _Atom:
        """``sunab(cohort, period [, ref_p=-1] [, att=FALSE])`` after ``sunab(``."""
        names = []
        for _ in range(2):
            t = self.take()
            if t.kind != "name":
                raise self.fail(t, "sunab() takes the cohort and the period columns: sunab(cohort, period)")
            _check_name(t.text, self)
            names.append(t.text)
            if len(names) == 1:
                self.expect(",")
        ref_p, att = -1.0, False
        while (t := self.peek()) is not None and t.text == ",":
            self.take()
            kw = self.take()
            self.expect("=")
            val = self.take()
            if kw.text == "ref_p":
                sign = 1.0
                if val.text == "-":
                    sign, val = -1.0, self.take()
                if val.kind != "number":
                    raise self.fail(val, "ref_p= takes a number (the reference relative period)")
                ref_p = sign * float(val.text)
            elif kw.text == "att":
                if val.text not in ("TRUE", "FALSE", "True", "False"):
                    raise self.fail(val, "att= takes TRUE or FALSE")
                att = val.text in ("TRUE", "True")
            else:
                raise self.fail(kw, "sunab() accepts only the keywords ref_p= and att=")
        self.expect(")")
        opts = (f", ref_p={ref_p:g}" if ref_p != -1 else "") + (", att=TRUE" if att else "")
        return _Atom("sunab", f"sunab({names[0]}, {names[1]}{opts})", expr=_Var(names[1]), var=names[0],
                     ref=ref_p, func="sunab_att" if att else "sunab")

    # arithmetic: expr := mul {(+|-) mul}; mul := unary {(*|/) unary}; unary := -unary | power;
    # power := primary [** unary]
    def parse_expr(self) -> Any:
        node = self.parse_mul()
        while (t := self.peek()) is not None and t.text in ("+", "-"):
            op = self.take().text
            node = _Bin(op, node, self.parse_mul())
        return node

    def parse_mul(self) -> Any:
        node = self.parse_unary()
        while (t := self.peek()) is not None and t.text in ("*", "/"):
            op = self.take().text
            node = _Bin(op, node, self.parse_unary())
        return node

    def parse_unary(self) -> Any:
        t = self.peek()
        if t is not None and t.text in ("-", "+"):
            self.take()
            self.nest(t)
            inner = self.parse_unary()
            self.unnest()
            return _Unary("-", inner) if t.text == "-" else inner
        return self.parse_power()

    def parse_power(self) -> Any:
        base = self.parse_primary()
        if (t := self.peek()) is not None and t.text == "**":
            self.take()
            self.nest(t)
            exponent = self.parse_unary()
            self.unnest()
            return _Bin("**", base, exponent)
        return base

    def parse_primary(self) -> Any:
        tok = self.take()
        if tok.kind == "number":
            return _Num(float(tok.text), tok.text)
        if tok.text == "(":
            self.nest(tok)
            node = self.parse_expr()
            self.unnest()
            self.expect(")")
            return node
        if tok.kind == "name":
            _check_name(tok.text, self)
            if (t := self.peek()) is not None and t.text == "(":
                if tok.text not in TRANSFORMS:
                    raise self.fail(tok, f"function {tok.text!r} is not allowed inside an "
                                    f"expression; the accepted transforms are {', '.join(TRANSFORMS)}")
                self.take()
                self.nest(tok)
                arg = self.parse_expr()
                self.unnest()
                self.expect(")")
                return _Call(tok.text, arg)
            return _Var(tok.text)
        raise self.fail(tok, "expected a number, a variable or '('")

    def done(self) -> None:
        tok = self.peek()
        if tok is not None:
            raise self.fail(tok, "unexpected text")


def _check_name(name: str, parser: _Parser) -> None:
    if name.startswith("__") or ("." in name and any(p.startswith("_") for p in name.split("."))):
        raise FormulaError(f"formula {parser.whole!r}: name {name!r} is not allowed "
                           "(dunder names and attribute access are rejected)")
    if "." in name:
        raise FormulaError(f"formula {parser.whole!r}: {name!r} looks like attribute access, which "
                           "is not allowed; column names may contain letters, digits and _")


def _merge(a: tuple[_Atom, ...], b: tuple[_Atom, ...]) -> tuple[_Atom, ...]:
    out = list(a)
    for atom in b:
        if atom.text not in {x.text for x in out}:
            out.append(atom)
    return tuple(out)


def _unique(terms: list[tuple[_Atom, ...]]) -> list[tuple[_Atom, ...]]:
    seen: set[frozenset[str]] = set()
    out = []
    for t in terms:
        key = frozenset(a.text for a in t)
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out


def _term_text(term: tuple[_Atom, ...]) -> str:
    return ":".join(a.text for a in term)


def _parse_term_text(text: str, whole: str | None = None) -> tuple[_Atom, ...]:
    p = _Parser(text, _tokenize(text), whole or text)
    terms = p.parse_term()
    p.done()
    if len(terms) != 1:
        raise FormulaError(f"{text!r} is not a single term")
    return terms[0]


# --------------------------------------------------------------------------------------------
# public: the specification
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FormulaSpec:
    """A parsed formula.

    Attributes
    ----------
    text : str
        The formula as written.
    lhs : str
        The dependent variable (a term; may be a transform such as ``log(sales)``).
    rhs : tuple of str
        Exogenous regressor terms, after expansion of ``a*b`` into ``a + b + a:b``.
    intercept : bool
        False if the formula has ``-1`` or ``+0`` or if fixed effects absorb the constant.
    fixed_effects : tuple of str
        Absorbed effects, for example ``("firm", "year", "firm^year")``.
    endog, instruments : tuple of str
        Terms of the IV part ``endog ~ instruments``.
    """

    text: str
    lhs: str
    rhs: tuple[str, ...]
    intercept: bool
    fixed_effects: tuple[str, ...] = ()
    endog: tuple[str, ...] = ()
    instruments: tuple[str, ...] = ()

    @property
    def fe_variables(self) -> tuple[str, ...]:
        """Columns named by the fixed effects (``a^b`` contributes ``a`` and ``b``)."""
        out: list[str] = []
        for fe in self.fixed_effects:
            for v in fe.split("^"):
                if v not in out:
                    out.append(v)
        return tuple(out)

    def variables(self) -> tuple[str, ...]:
        """Every data column the formula uses, in order of appearance."""
        out: list[str] = []
        for t in (self.lhs, *self.rhs, *self.endog, *self.instruments):
            for v in term_variables(t):
                if v not in out:
                    out.append(v)
        for v in self.fe_variables:
            if v not in out:
                out.append(v)
        return tuple(out)

    def with_rhs(self, rhs: Sequence[str]) -> FormulaSpec:
        """The same specification with other exogenous regressors."""
        return FormulaSpec(self.text, self.lhs, tuple(rhs), self.intercept, self.fixed_effects,
                           self.endog, self.instruments)


def term_variables(term: str) -> list[str]:
    """Data columns used by one term (``log(sales):C(phase)`` -> ``["sales", "phase"]``)."""
    out: list[str] = []
    for atom in _parse_term_text(term):
        for v in atom.variables():
            if v not in out:
                out.append(v)
    return out


def split_top_level(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside parentheses, brackets and braces."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _parse_fe(text: str, whole: str) -> tuple[str, ...]:
    toks = _tokenize(text)
    if len(toks) == 1 and toks[0].text == "0":
        return ()
    out: list[str] = []
    expect_name = True
    cur: list[str] = []
    for tok in toks:
        if expect_name:
            if tok.kind != "name":
                raise FormulaError(f"formula {whole!r}: fixed effects must be column names joined by "
                                   f"+ or ^ (found {tok.text!r} in {text.strip()!r})")
            if tok.text.startswith("__") or "." in tok.text:
                raise FormulaError(f"formula {whole!r}: name {tok.text!r} is not allowed")
            cur.append(tok.text)
            expect_name = False
        else:
            if tok.text == "^":
                pass
            elif tok.text == "+":
                out.append("^".join(cur))
                cur = []
            else:
                raise FormulaError(f"formula {whole!r}: fixed effects must be column names joined by "
                                   f"+ or ^ (found {tok.text!r} in {text.strip()!r})")
            expect_name = True
    if expect_name:
        raise FormulaError(f"formula {whole!r}: fixed-effects part {text.strip()!r} is incomplete")
    out.append("^".join(cur))
    return tuple(dict.fromkeys(out))


def _parse_side(text: str, whole: str) -> tuple[list[tuple[_Atom, ...]], bool | None]:
    p = _Parser(text, _tokenize(text), whole)
    if not p.toks:
        raise FormulaError(f"formula {whole!r}: empty part")
    terms, icpt = p.parse_rhs()
    p.done()
    return terms, icpt


def parse_formula(text: str) -> FormulaSpec:
    """Parse a fixest-style formula without evaluating anything.

    Raises
    ------
    FormulaError
        With the offending text, for syntax outside the grammar in the module docstring.
    """
    if not isinstance(text, str) or not text.strip():
        raise FormulaError(f"a formula must be a non-empty string, got {text!r}")
    if len(text) > 10_000:
        raise FormulaError("formula longer than 10,000 characters")
    _tokenize(text)  # reject disallowed characters early, with position
    parts = split_top_level(text, "|")
    if len(parts) > 3:
        raise FormulaError(f"formula {text!r}: at most three parts separated by '|' "
                           "(exog | fixed effects | endog ~ instruments)")
    main = split_top_level(parts[0], "~")
    if len(main) != 2:
        raise FormulaError(f"formula {text!r}: the first part must be 'y ~ regressors'")
    fe_text, iv_text = None, None
    if len(parts) == 2:
        if "~" in parts[1]:
            iv_text = parts[1]
        else:
            fe_text = parts[1]
    elif len(parts) == 3:
        fe_text, iv_text = parts[1], parts[2]
        if "~" not in iv_text:
            raise FormulaError(f"formula {text!r}: the third part must be 'endog ~ instruments'")
    lhs_terms, lhs_icpt = _parse_side(main[0], text)
    if len(lhs_terms) != 1 or lhs_icpt is not None:
        raise FormulaError(f"formula {text!r}: the left-hand side must be one variable or transform")
    lhs_atoms = lhs_terms[0]
    if len(lhs_atoms) != 1 or lhs_atoms[0].kind != "num":
        raise FormulaError(f"formula {text!r}: the left-hand side must be numeric, not a factor or "
                           "an interaction")
    rhs_text = main[1]
    if rhs_text.strip() in ("", "1"):
        rhs_terms, icpt = [], True
    elif rhs_text.strip() in ("0", "-1"):
        rhs_terms, icpt = [], False
    else:
        rhs_terms, icpt = _parse_side(rhs_text, text)
    fes = _parse_fe(fe_text, text) if fe_text is not None else ()
    endog: tuple[str, ...] = ()
    instr: tuple[str, ...] = ()
    if iv_text is not None:
        iv = split_top_level(iv_text, "~")
        if len(iv) != 2:
            raise FormulaError(f"formula {text!r}: the IV part must be 'endog ~ instruments'")
        e_terms, e_icpt = _parse_side(iv[0], text)
        z_terms, z_icpt = _parse_side(iv[1], text)
        if e_icpt is not None or z_icpt is not None:
            raise FormulaError(f"formula {text!r}: no intercept terms in the IV part")
        endog = tuple(_term_text(t) for t in e_terms)
        instr = tuple(_term_text(t) for t in z_terms)
    intercept = (icpt is not False) and not fes
    return FormulaSpec(text=text, lhs=_term_text(lhs_atoms), rhs=tuple(_term_text(t) for t in rhs_terms),
                       intercept=intercept, fixed_effects=fes, endog=endog, instruments=instr)


# --------------------------------------------------------------------------------------------
# public: the model frame
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelFrame:
    """Design matrices of a formula on the rows kept.

    Attributes
    ----------
    y : Series named ``spec.lhs``.
    X : DataFrame of exogenous regressors (with ``"Intercept"`` first if the model has one).
    fe : DataFrame of fixed-effect columns (raw values; ``a^b`` as a combined column), may be empty.
    endog, Z : DataFrames of endogenous regressors and excluded instruments.
    extra : DataFrame of the extra columns requested (clusters, weights...).
    index : row labels of the data kept.
    n_input : rows in the data passed.
    dropped : rows dropped by reason.
    positions : integer positions of the rows kept in the data passed.
    term_columns : columns of ``X`` produced by each right-hand-side term.
    """

    spec: FormulaSpec
    y: pd.Series
    X: pd.DataFrame
    fe: pd.DataFrame
    endog: pd.DataFrame
    Z: pd.DataFrame
    extra: pd.DataFrame
    index: pd.Index
    n_input: int
    dropped: dict[str, int] = field(default_factory=dict)
    positions: np.ndarray | None = None
    term_columns: dict[str, list[str]] = field(default_factory=dict)


def as_frame(data: Any) -> pd.DataFrame:
    """A DataFrame from a DataFrame (itself) or a cluster_econ Panel.

    A Panel gives one row per enterprise-year with the enterprise columns, the columns of the
    manager in charge (``schooling_years``...) and the cluster-year columns (``phase``) joined:
    :func:`cluster_econ.estimate.panel_frame.panel_frame`.
    """
    if isinstance(data, pd.DataFrame):
        return data
    if hasattr(data, "enterprise_year") and hasattr(data, "enterprise"):
        from cluster_econ.estimate.panel_frame import panel_frame

        return panel_frame(data)
    raise FormulaError(f"data must be a pandas DataFrame or a cluster_econ Panel, got {type(data).__name__}")


def _closest(name: str, columns: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, [str(c) for c in columns], n=3, cutoff=0.5)
    return f"; closest existing columns: {', '.join(close)}" if close else ""


def _check_columns(names: Sequence[str], data: pd.DataFrame, text: str) -> None:
    for v in names:
        if v not in data.columns:
            raise FormulaError(f"formula {text!r}: column {v!r} is not in the data{_closest(v, list(data.columns))}")


def _fe_column(data: pd.DataFrame, fe: str) -> pd.Series:
    parts = fe.split("^")
    if len(parts) == 1:
        return data[fe]
    codes = [pd.factorize(data[p])[0].astype(np.int64) for p in parts]
    combined = codes[0]
    for c in codes[1:]:
        combined = combined * (int(c.max()) + 2) + c
    bad = np.zeros(len(data), dtype=bool)
    for c in codes:
        bad |= c < 0
    out = pd.Series(combined, index=data.index, name=fe, dtype="int64").astype("Int64")
    out[bad] = pd.NA
    return out


def _levels(s: pd.Series) -> list[Any]:
    vals = s.dropna().unique()
    if isinstance(s.dtype, pd.CategoricalDtype):
        present = set(vals)
        return [c for c in s.cat.categories if c in present]
    try:
        return sorted(vals.tolist())
    except TypeError:
        return sorted(vals.tolist(), key=str)


def _fmt_level(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _atom_columns(atom: _Atom, data: pd.DataFrame, full: bool) -> list[tuple[str, np.ndarray]]:
    """Columns of one atom: one numeric column, or dummies of a factor (first/ref level dropped
    unless ``full``)."""
    if atom.kind == "num":
        if isinstance(atom.expr, _Var) and not _is_numeric(data[atom.expr.name]):
            return _atom_columns(_Atom("factor", atom.text, var=atom.text), data, full)
        return [(atom.text, _eval_expr(atom.expr, data))]
    if atom.kind == "sunab":
        from cluster_econ.estimate.sunab import sunab_columns

        return sunab_columns(atom.var, atom.expr.name, float(atom.ref), data)
    s = data[atom.var]
    levels = _levels(s)
    if not full:
        if atom.ref is not None:
            match = [lv for lv in levels if lv == atom.ref or _fmt_level(lv) == _fmt_level(atom.ref)]
            if not match:
                raise FormulaError(f"{atom.text}: reference level {atom.ref!r} is not a level of "
                                   f"{atom.var!r} (levels: {', '.join(map(_fmt_level, levels[:20]))})")
            levels = [lv for lv in levels if lv is not match[0] and lv != match[0]]
        else:
            levels = levels[1:]
    arr = s.to_numpy()
    return [(f"{atom.text}[T.{_fmt_level(lv)}]", (arr == lv).astype(float)) for lv in levels]


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)


def _term_columns(term: str, data: pd.DataFrame) -> dict[str, np.ndarray]:
    atoms = _parse_term_text(term)
    if len(atoms) > 1 and any(a.kind == "sunab" for a in atoms):
        raise FormulaError(f"{term!r}: sunab() cannot be interacted with other terms")
    # a factor interacted with anything gets all its levels (one slope per level)
    full = len(atoms) > 1
    cols: list[tuple[str, np.ndarray]] = [("", np.ones(len(data)))]
    for atom in atoms:
        new = []
        for name_a, col_a in cols:
            for name_b, col_b in _atom_columns(atom, data, full):
                new.append((f"{name_a}:{name_b}" if name_a else name_b, col_a * col_b))
        cols = new
    return dict(cols)


def _design(terms: Sequence[str], data: pd.DataFrame, intercept: bool = False,
            term_map: dict[str, list[str]] | None = None) -> pd.DataFrame:
    out: dict[str, np.ndarray] = {}
    if intercept:
        out["Intercept"] = np.ones(len(data))
    for t in terms:
        cols = _term_columns(t, data)
        if term_map is not None:
            term_map[t] = list(cols)
        out.update(cols)
    return pd.DataFrame(out, index=data.index)


def model_frame(spec: FormulaSpec | str, data: Any, extra: Sequence[str] = (),
                extra_reasons: Mapping[str, str] | None = None) -> ModelFrame:
    """Build the design matrices of ``spec`` on ``data``.

    Rows with a missing value in any variable the formula uses are dropped (counted under
    ``"missing values"``); rows where a transform gives a non-finite value (``log(0)``) are dropped
    under ``"non-finite values"``; then rows missing an ``extra`` column are dropped under
    ``extra_reasons[column]`` (default ``"missing values"``).

    Raises
    ------
    FormulaError
        If a column is not in the data (naming the closest existing names).
    """
    if isinstance(spec, str):
        spec = parse_formula(spec)
    data = as_frame(data)
    extra = list(dict.fromkeys(extra))
    _check_columns(spec.variables(), data, spec.text)
    for v in extra:
        if v not in data.columns:
            raise FormulaError(f"column {v!r} is not in the data{_closest(v, list(data.columns))}")
    extra_reasons = dict(extra_reasons or {})
    n_input = len(data)
    dropped: dict[str, int] = {}
    used = list(spec.variables())
    keep = data[used].notna().all(axis=1).to_numpy() if used else np.ones(n_input, bool)
    if (~keep).any():
        dropped["missing values"] = int((~keep).sum())
    for v in extra:
        miss = data[v].isna().to_numpy() & keep
        if miss.any():
            reason = extra_reasons.get(v, "missing values")
            dropped[reason] = dropped.get(reason, 0) + int(miss.sum())
            keep &= ~miss
    positions = np.flatnonzero(keep)
    sub = data if keep.all() else data.loc[keep, used + [v for v in extra if v not in used]]
    # numeric parts: evaluate, then drop non-finite
    if spec.lhs in sub.columns and not (
        pd.api.types.is_numeric_dtype(sub[spec.lhs].dtype) or pd.api.types.is_bool_dtype(sub[spec.lhs].dtype)
    ):
        as_num = pd.to_numeric(sub[spec.lhs], errors="coerce")
        bad = as_num.isna().to_numpy()
        if bad.any():
            rows = [str(r) for r in sub.index[bad][:5]]
            values = sorted({str(v) for v in sub[spec.lhs][bad]})[:5]
            raise FormulaError(
                f"the outcome {spec.lhs!r} must be numeric: {int(bad.sum())} row(s) are not numbers "
                f"(rows {', '.join(rows)}; values {values})"
            )
        sub = sub.assign(**{spec.lhs: as_num})
    y = _term_columns(spec.lhs, sub)[spec.lhs]
    term_map: dict[str, list[str]] = {}
    X = _design(spec.rhs, sub, spec.intercept, term_map)
    En = _design(spec.endog, sub)
    Z = _design(spec.instruments, sub)
    finite = np.isfinite(y)
    for frame in (X, En, Z):
        for col in frame.columns:
            finite &= np.isfinite(frame[col].to_numpy())
    if not finite.all():
        dropped["non-finite values"] = int((~finite).sum())
        positions = positions[finite]
        sub = sub.loc[finite]
        y = y[finite]
        # rebuild so that factor levels reflect the rows kept
        X = _design(spec.rhs, sub, spec.intercept, term_map)
        En = _design(spec.endog, sub)
        Z = _design(spec.instruments, sub)
    fe = pd.DataFrame({f: _fe_column(sub, f) for f in spec.fixed_effects}, index=sub.index)
    return ModelFrame(
        spec=spec,
        y=pd.Series(y, index=sub.index, name=spec.lhs),
        X=X, fe=fe, endog=En, Z=Z,
        extra=sub[extra].copy() if extra else pd.DataFrame(index=sub.index),
        index=sub.index, n_input=n_input, dropped=dropped, positions=positions,
        term_columns=term_map,
    )


# --------------------------------------------------------------------------------------------
# public: dynamic panel formulas (plm's pgmm language), parsed without evaluation
# --------------------------------------------------------------------------------------------
_LAGS_RE = re.compile(r"^\s*(\d+)\s*(?::\s*(\d+)\s*)?$")


@dataclass(frozen=True)
class LaggedTerm:
    """A term and the lags of it that enter: ``lag(log(w), 0:1)`` -> ``LaggedTerm("log(w)", (0, 1))``."""

    term: str
    lags: tuple[int, ...]


@dataclass(frozen=True)
class DynamicSpec:
    """A parsed dynamic panel formula ``y ~ regressors | GMM instruments [| normal instruments]``.

    Attributes
    ----------
    text : the formula as written.
    lhs : the dependent term (``log(emp)``).
    regressors : lagged terms on the right-hand side, in order.
    gmm : GMM-style instruments; each term's lags span ``min(lags)..max(lags)``.
    normal : "normal" (IV-style) instruments, or ``None`` for the default (every regressor whose
        variable is not a GMM instrument, with the lags it enters with).
    """

    text: str
    lhs: str
    regressors: tuple[LaggedTerm, ...]
    gmm: tuple[LaggedTerm, ...]
    normal: tuple[LaggedTerm, ...] | None = None

    def terms(self) -> tuple[str, ...]:
        """Every distinct term (before lagging), the dependent term first."""
        out = [self.lhs]
        for part in (self.regressors, self.gmm, self.normal or ()):
            out += [lt.term for lt in part if lt.term not in out]
        return tuple(out)

    def variables(self) -> tuple[str, ...]:
        """Every data column the formula uses."""
        out: list[str] = []
        for t in self.terms():
            out += [v for v in term_variables(t) if v not in out]
        return tuple(out)


def _lagged_items(text: str, whole: str, part: str) -> tuple[LaggedTerm, ...]:
    items: dict[str, list[int]] = {}
    for raw in split_top_level(text, "+"):
        item = raw.strip()
        if not item:
            raise FormulaError(f"formula {whole!r}: empty term in the {part} part {text.strip()!r} "
                               "(terms are joined by +; - and intercept terms are not accepted)")
        if item in ("0", "1", "-1"):
            raise FormulaError(f"formula {whole!r}: {item!r} in the {part} part: dynamic panel formulas "
                               "set the intercept and time effects through effect=, not the formula")
        m = re.fullmatch(r"lag\s*\((.*)\)", item, flags=re.S)
        if m:
            args = split_top_level(m.group(1), ",")
            if len(args) > 2 or not args[0].strip():
                raise FormulaError(f"formula {whole!r}: {item!r} must be lag(term), lag(term, k) or "
                                   "lag(term, a:b)")
            term_text = args[0].strip()
            if len(args) == 2:
                lm = _LAGS_RE.match(args[1])
                if lm is None:
                    raise FormulaError(f"formula {whole!r}: the lags in {item!r} must be a whole number "
                                       "k or a range a:b of whole numbers (for example 1:2 or 2:99)")
                lo = int(lm.group(1))
                hi = int(lm.group(2)) if lm.group(2) is not None else lo
                if hi < lo or hi > 10_000:
                    raise FormulaError(f"formula {whole!r}: lag range {args[1].strip()!r} in {item!r} "
                                       "must be a:b with a <= b <= 10000")
                lags = list(range(lo, hi + 1))
            else:
                lags = [1]
        else:
            term_text, lags = item, [0]
        atoms = _parse_term_text(term_text, whole)
        if len(atoms) != 1 or atoms[0].kind != "num":
            raise FormulaError(f"formula {whole!r}: {term_text!r} must be one numeric variable or "
                               "transform (no factors or interactions inside a dynamic panel formula)")
        key = atoms[0].text
        items.setdefault(key, [])
        items[key] += [g for g in lags if g not in items[key]]
    return tuple(LaggedTerm(t, tuple(sorted(g))) for t, g in items.items())


def parse_dynamic_formula(text: str) -> DynamicSpec:
    """Parse plm's ``pgmm`` formula language without evaluating anything.

    ``y ~ lag(y, 1:2) + lag(w, 0:1) + k | lag(y, 2:99) [| lag(w, 0:1) + k]``: the first part
    lists the regressors, the second the GMM-style instruments (each term's lags ``a:b``; ``99``
    means "all available"), the optional third the normal (IV-style) instruments. ``lag(x)`` is
    ``lag(x, 1)``; a bare term is lag 0. Terms are variables or whitelisted transforms
    (``log(emp)``), as in :func:`parse_formula`.

    Raises
    ------
    FormulaError
        For anything outside this grammar, naming the offending text.
    """
    if not isinstance(text, str) or not text.strip():
        raise FormulaError(f"a formula must be a non-empty string, got {text!r}")
    if len(text) > 10_000:
        raise FormulaError("formula longer than 10,000 characters")
    _tokenize(text)
    parts = split_top_level(text, "|")
    if not 2 <= len(parts) <= 3:
        raise FormulaError(f"formula {text!r}: a dynamic panel formula has two or three parts, "
                           "'y ~ regressors | GMM instruments [| normal instruments]'")
    main = split_top_level(parts[0], "~")
    if len(main) != 2:
        raise FormulaError(f"formula {text!r}: the first part must be 'y ~ regressors'")
    lhs_atoms = _parse_term_text(main[0].strip(), text) if main[0].strip() else ()
    if len(lhs_atoms) != 1 or lhs_atoms[0].kind != "num":
        raise FormulaError(f"formula {text!r}: the left-hand side must be one numeric variable or transform")
    if any("~" in p for p in parts[1:]):
        raise FormulaError(f"formula {text!r}: only the first part may contain '~'")
    regressors = _lagged_items(main[1], text, "regressor")
    gmm = _lagged_items(parts[1], text, "GMM-instrument")
    normal = _lagged_items(parts[2], text, "normal-instrument") if len(parts) == 3 else None
    return DynamicSpec(text=text, lhs=lhs_atoms[0].text, regressors=regressors, gmm=gmm, normal=normal)
