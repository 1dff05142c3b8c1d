"""Polynomial series and weighted least squares shared by the production-function estimators.

Every control function in this package (``Phi`` of the proxy methods, the share regression of
Gandhi-Navarro-Rivers, the survival probability of Olley-Pakes, Wooldridge's control function)
is a *complete* polynomial: every monomial of total degree ``1..degree`` in its variables,
interactions included, beside a constant that the caller adds.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

__all__ = ["monomials", "poly_matrix", "poly_terms", "wls"]


def poly_terms(names: Sequence[str], degree: int) -> list[tuple[int, ...]]:
    """Exponent tuples of every monomial of total degree 1..``degree`` in ``names`` (no constant),
    ordered by degree, then lexicographically."""
    k = len(names)
    terms: list[tuple[int, ...]] = []
    for d in range(1, degree + 1):
        for combo in itertools.combinations_with_replacement(range(k), d):
            exps = [0] * k
            for j in combo:
                exps[j] += 1
            terms.append(tuple(exps))
    return terms


def poly_matrix(x: np.ndarray, degree: int, center: np.ndarray | None = None,
                scale: np.ndarray | None = None) -> np.ndarray:
    """Complete polynomial of degree ``degree`` in the columns of ``x`` (no constant column).

    Columns are standardised first (by ``center`` and ``scale`` when given, else by their own
    mean and standard deviation) for numerical conditioning; the span, and so every fitted value,
    is that of the raw polynomial.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    mu = x.mean(axis=0) if center is None else center
    sd = x.std(axis=0) if scale is None else scale.copy()
    sd = np.where(sd > 0, sd, 1.0)
    z = (x - mu) / sd
    return monomials(z, poly_terms([str(i) for i in range(x.shape[1])], degree))


def monomials(x: np.ndarray, terms: Sequence[tuple[int, ...]]) -> np.ndarray:
    """One column per exponent tuple: the product of the columns of ``x`` raised to them."""
    out = np.empty((x.shape[0], len(terms)))
    for c, exps in enumerate(terms):
        col = np.ones(x.shape[0])
        for j, e in enumerate(exps):
            if e:
                col = col * x[:, j] ** e
        out[:, c] = col
    return out


def wls(X: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Least-squares coefficients of ``y`` on ``X`` with frequency weights ``w`` (None: ones).

    Rank-deficient designs get the minimum-norm solution (``numpy.linalg.lstsq``), whose fitted
    values are those of any least-squares solution.
    """
    if w is None:
        coef, *_ = np.linalg.lstsq(X, y, rcond=None)
        return coef
    r = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(X * r[:, None], y * r, rcond=None)
    return coef
