"""Fixed effects on weakly connected graphs: the automatic switch from alternating projections to
the reduced normal equations (:mod:`cluster_econ.estimate.fe_solver`), checked for exactness
against least squares computed independently (numpy's dense ``lstsq`` on the dummy matrix, and
scipy's sparse LSQR), plus the connected components and identified effects reported.

The feols checks compare point estimates and residuals, which do not depend on a standard-error
convention; the one standard error compared uses CRV1 with fixest's small-sample correction
(``ssc="fixest"``), as pyfixest does by default.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from threadpoolctl import threadpool_limits

from cluster_econ.estimate import demean, fe_solver
from cluster_econ.estimate.demean import ALTERNATING, DIRECT, Absorber, factorize


def low_mobility(n_workers: int, n_firms: int, years: int = 8, spell: int = 4, movers: float = 0.03,
                 seed: int = 0) -> pd.DataFrame:
    """Each worker is seen ``spell`` consecutive years at one firm; a share ``movers`` moves once
    to a neighbouring firm (firms on a ring): few links, long chains, many separate components."""
    rng = np.random.default_rng(seed)
    w = np.repeat(np.arange(n_workers), spell)
    pos = np.tile(np.arange(spell), n_workers)
    t = rng.integers(0, years - spell + 1, n_workers)[w] + pos
    home = rng.integers(0, n_firms, n_workers)
    dest = (home + rng.choice([-1, 1], n_workers)) % n_firms
    moves = (rng.random(n_workers) < movers)[w] & (pos >= rng.integers(1, spell, n_workers)[w])
    firm = np.where(moves, dest[w], home[w])
    a, psi, g = rng.normal(size=n_workers), rng.normal(size=n_firms), rng.normal(size=years)
    x = rng.normal(size=len(w)) + 0.5 * psi[firm] + 0.3 * a[w]
    y = 0.5 * x + a[w] + psi[firm] + g[t] + rng.normal(size=len(w))
    return pd.DataFrame({"worker": w, "firm": firm, "year": 2000 + t, "x": x, "y": y,
                         "wt": rng.uniform(0.5, 2.0, len(w))})


def dummies(codes: list[np.ndarray]) -> sp.csr_matrix:
    n = len(codes[0])
    return sp.hstack([sp.csr_matrix((np.ones(n), (np.arange(n), c)), shape=(n, int(c.max()) + 1))
                      for c in codes]).tocsr()


def lstsq(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """numpy's dense least squares (SVD), on one BLAS thread (threads thrash on a busy machine)."""
    with threadpool_limits(1):
        return np.linalg.lstsq(A, b, rcond=None)[0]


def rank(A: np.ndarray) -> int:
    with threadpool_limits(1):
        return int(np.linalg.matrix_rank(A))


def lstsq_residual(codes: list[np.ndarray], x: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """x minus its (weighted) least-squares projection on all dummies: dense numpy lstsq."""
    D = dummies(codes).toarray()
    s = np.sqrt(w) if w is not None else np.ones(len(x))
    return x - D @ lstsq(D * s[:, None], x * s)


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    demean.clear_cache()


def test_hard_graph_switches_and_matches_dense_least_squares() -> None:
    df = low_mobility(400, 100)
    codes = factorize(df[["worker", "firm", "year"]])
    M = df[["y", "x"]].to_numpy()
    ab = Absorber(codes)
    out = ab.demean(M)
    assert ab.info.method == DIRECT and ab.reduced is not None  # no option was set
    ref = np.column_stack([lstsq_residual(codes, M[:, j]) for j in range(2)])
    assert np.max(np.abs(out - ref)) < 1e-9 * np.max(np.abs(M))


def test_weighted_hard_graph_matches_weighted_least_squares() -> None:
    df = low_mobility(300, 80, seed=1)
    codes = factorize(df[["worker", "firm", "year"]])
    w = df["wt"].to_numpy()
    out = Absorber(codes, weights=w).demean(df["y"].to_numpy())
    ref = lstsq_residual(codes, df["y"].to_numpy(), w)
    assert np.max(np.abs(out - ref)) < 1e-9 * np.max(np.abs(df["y"]))


def test_medium_hard_graph_matches_lsqr() -> None:
    from scipy.sparse.linalg import lsqr

    df = low_mobility(3000, 600, seed=2)
    codes = factorize(df[["worker", "firm", "year"]])
    y = df["y"].to_numpy()
    ab = Absorber(codes)
    out = ab.demean(y)
    assert ab.info.method == DIRECT
    D = dummies(codes)
    with threadpool_limits(1):
        sol = lsqr(D, y, atol=1e-14, btol=1e-14, iter_lim=100_000)
    assert sol[1] in (1, 2)  # LSQR converged (a least-squares solution to its tolerance)
    assert np.max(np.abs(out - (y - D @ sol[0]))) < 1e-8


def test_easy_graph_keeps_the_fast_path_and_both_paths_agree() -> None:
    rng = np.random.default_rng(4)
    n = 20_000
    df = pd.DataFrame({"firm": rng.integers(0, 2000, n), "year": rng.integers(0, 10, n), "y": rng.normal(size=n)})
    codes = factorize(df[["firm", "year"]])
    ab = Absorber(codes)
    fast = ab.demean(df["y"].to_numpy())
    assert ab.info.method == ALTERNATING and ab.reduced is None and ab.info.iterations < 20
    forced = Absorber(codes)
    forced.reduced = fe_solver.ReducedSystem(forced.codes, forced.sizes, None)
    assert np.max(np.abs(forced.demean(df["y"].to_numpy()) - fast)) < 1e-9


def test_factorization_fallback_and_an_unrevealed_redundancy(monkeypatch: pytest.MonkeyPatch) -> None:
    df = low_mobility(300, 80, seed=3)
    y = df["y"].to_numpy()
    codes = factorize(df[["worker", "firm", "year"]])
    ref = lstsq_residual(codes, y)
    monkeypatch.setattr(fe_solver, "CG_BUDGET", 1)  # conjugate gradients give up at once: sparse LU
    ab = Absorber(codes)
    out = ab.demean(y)
    assert ab.reduced.method == "sparse LU" and "sparse LU" in ab.info.solver
    assert np.max(np.abs(out - ref)) < 1e-9 * np.max(np.abs(y))
    # a second copy of the firm effect: a redundancy the components do not reveal, so the reduced
    # system stays singular; the factorization fails and conjugate gradients still get there
    demean.clear_cache()
    twice = factorize(df[["worker", "firm", "year"]].assign(firm2=df["firm"]))
    ab2 = Absorber(twice)
    ab2.reduced = fe_solver.ReducedSystem(ab2.codes, ab2.sizes, None)
    out2 = ab2.demean(y)
    assert ab2.reduced.method == "conjugate gradients"
    assert np.max(np.abs(out2 - ref)) < 1e-8 * np.max(np.abs(y))


def test_recovered_effects_reproduce_the_projection() -> None:
    df = low_mobility(600, 150, seed=5)
    codes = factorize(df[["worker", "firm", "year"]])
    y = df["y"].to_numpy()
    ab = Absorber(codes)
    r = ab.demean(y)
    vals = ab.recover(y - r)
    fitted = sum(v[c] for v, c in zip(vals, codes, strict=True))
    assert np.max(np.abs(fitted - (y - r))) < 1e-8
    assert all(abs(v.mean()) < 1e-12 for v in vals[1:])  # every factor but the first has mean zero


def test_components_and_identified_effects_against_scipy_and_the_rank() -> None:
    df = low_mobility(300, 80, seed=6)
    codes = factorize(df[["worker", "firm", "year"]])
    ab = Absorber(codes)
    gw, gf = ab.sizes[0], ab.sizes[1]
    graph = sp.coo_matrix((np.ones(ab.n), (codes[0], gw + codes[1])), shape=(gw + gf, gw + gf))
    n_comp = connected_components(graph, directed=False)[0]
    stats = ab.graph_stats()
    assert stats["fe_components"] == n_comp > 1
    assert stats["fe_identified"] == rank(dummies(codes).toarray())
    # the components of one factor's levels, as the reduced system uses them, for random graphs
    rng = np.random.default_rng(7)
    for _ in range(5):
        a, b = rng.integers(0, 40, 60), rng.integers(0, 25, 60)
        ca, cb = pd.factorize(a)[0], pd.factorize(b)[0]
        ga, gb = ca.max() + 1, cb.max() + 1
        big = sp.coo_matrix((np.ones(60), (ca, ga + cb)), shape=(ga + gb, ga + gb))
        n_big, lab_big = connected_components(big, directed=False)
        n_k, lab_k = fe_solver.components_of_levels(ca, ga, cb, gb)
        assert n_k == n_big
        assert len(set(zip(lab_k, lab_big[ga:], strict=True))) == n_k  # the same partition of b's levels


def test_feols_on_a_hard_panel_with_default_options() -> None:
    from cluster_econ.estimate.linear import feols

    df = low_mobility(400, 100, seed=8)
    res = feols("y ~ x | worker + firm + year", df, vcov={"CRV1": "firm"}, ssc="fixest")
    # the coefficient of x from OLS on x and every dummy (dense least squares)
    codes = factorize(df[["worker", "firm", "year"]])
    D = dummies(codes).toarray()
    coef = lstsq(np.column_stack([df["x"], D]), df["y"].to_numpy())
    assert res.params["x"] == pytest.approx(coef[0], abs=1e-10)
    assert res.stats["fe_components"] > 1 and res.stats["fe_identified"] == rank(D)
    assert any("normal equations" in n for n in res.audit.notes)
    pf = pytest.importorskip("pyfixest")
    from pyfixest import LsmrDemeaner

    peer = pf.feols("y ~ x | worker + firm + year", df, vcov={"CRV1": "firm"},
                    demeaner=LsmrDemeaner(fixef_atol=1e-12, fixef_btol=1e-12))
    assert res.params["x"] == pytest.approx(float(peer.coef()["x"]), abs=1e-8)
    assert res.bse["x"] == pytest.approx(float(peer.se()["x"]), rel=1e-6)
