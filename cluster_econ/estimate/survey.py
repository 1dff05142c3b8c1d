"""Complex survey designs: sampling weights, strata, primary sampling units and finite-population
corrections, with Taylor-linearised (sandwich) variances.

Enterprise surveys are rarely simple random samples. The World Bank Enterprise Surveys draw
establishments within strata (industry x size x region) with unequal probabilities; cluster
surveys list a district's workshops and visit some of them. A :class:`SurveyDesign` names the
columns that describe how the sample was drawn, and the estimators that accept ``survey=``
(:func:`~cluster_econ.estimate.feols`, :func:`~cluster_econ.estimate.panel` with ``pooled``,
``fe``, ``fd`` or ``mundlak``, :func:`~cluster_econ.estimate.logit`,
:func:`~cluster_econ.estimate.probit`) and the descriptive estimators of this module
(:func:`survey_mean`, :func:`survey_total`, shares of a categorical column, by domain) use it.

Estimates are weighted by the sampling weights. Their variance is the Taylor linearisation
(Binder 1983) as in R's ``survey`` package (Lumley): with estimating-function contributions
:math:`z_i` (the weighted score of observation i premultiplied by the bread),

.. math::

    \\hat V = \\sum_h (1 - f_h)\\, \\frac{n_h}{n_h - 1} \\sum_{j=1}^{n_h}
              (z_{hj} - \\bar z_h)(z_{hj} - \\bar z_h)',

where :math:`z_{hj}` sums :math:`z_i` over the rows of primary sampling unit (PSU) j of stratum
h, :math:`\\bar z_h` is their mean over the :math:`n_h` PSUs of the stratum and :math:`f_h` the
sampling fraction of PSUs (0 without a finite-population correction). Only the first stage of a
multi-stage design enters (the "ultimate cluster" variance), which is exact for PSUs drawn with
replacement and conservative otherwise; R does the same when no later-stage ``fpc`` is given.

Subpopulations (domains) and rows an estimator drops for missing values keep the whole design:
their rows contribute zero scores but their PSUs still count in :math:`n_h`, as R's
``subset(design, ...)`` and ``svyby`` do. Pass the full sample and name the domain
(``SurveyDesign(..., domain="in_qi")``) rather than cutting the data first.

Strata with a single PSU ("lonely" PSUs) make the formula undefined. ``lonely_psu`` names what to
do, with R's option names and behaviour (``options(survey.lonely.psu=)``): ``"fail"`` (the
default, an error naming the strata), ``"certainty"`` and ``"remove"`` (the stratum contributes
nothing), ``"adjust"`` (its PSU is centred at the grand mean, zero, instead of the stratum mean:
conservative), ``"average"`` (the other strata's variance is scaled up by
:math:`H / H_{ok}`).

Degrees of freedom of the design: PSUs minus strata. Regressions use t with that number plus one
minus the number of coefficients (R's ``svyglm``). For logit and probit the bread is the inverse
*expected* information of the weighted likelihood, as R's ``svyglm`` (``quasibinomial``) computes
it; for the logit it equals the observed information, for the probit it differs slightly from
Stata's ``svy: probit`` (observed information).

No maintained Python library computes design-based variances for these estimators (statsmodels
has none; samplics covers descriptive statistics only and is not maintained alongside pandas 2),
so they are written here, on the shared covariance conventions of :mod:`.covariance`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.errors import EstimationError
from cluster_econ.estimate.result import VcovInfo

__all__ = ["LONELY_PSU", "ResolvedDesign", "SurveyDesign", "survey_mean", "survey_total"]

LONELY_PSU = ("fail", "certainty", "remove", "adjust", "average")


def _rows_text(index: pd.Index, mask: np.ndarray, limit: int = 8) -> str:
    rows = index[mask][:limit].tolist()
    more = int(mask.sum()) - len(rows)
    return ", ".join(map(str, rows)) + (f" and {more} more" if more > 0 else "")


@dataclass(frozen=True)
class SurveyDesign:
    """How the sample was drawn: column names of the data an estimator receives.

    Parameters
    ----------
    weights : str, optional
        Sampling weights (inverse inclusion probabilities; positive, or zero for rows outside the
        population). Without weights every row weighs 1.
    strata : str, optional
        Stratum of each row (one stratum if omitted).
    psu : str, optional
        Primary sampling unit (cluster) of each row (each row its own PSU if omitted).
    fpc : str, optional
        Finite-population correction per stratum: the number of PSUs in the stratum's population
        (a value above 1), or the sampling fraction (every value at most 1). Constant within a
        stratum.
    nest : bool
        PSU labels are only unique within strata (district 1 of one region is not district 1 of
        another). Without ``nest`` a PSU label found in two strata is an error.
    lonely_psu : {"fail", "certainty", "remove", "adjust", "average"}
        What to do with strata that have a single PSU (see the module docstring).
    domain : str, optional
        A boolean column: estimate for the subpopulation where it is true, keeping the whole
        design for the variance.
    """

    weights: str | None = None
    strata: str | None = None
    psu: str | None = None
    fpc: str | None = None
    nest: bool = False
    lonely_psu: str = "fail"
    domain: str | None = None

    def __post_init__(self) -> None:
        if self.lonely_psu not in LONELY_PSU:
            raise EstimationError(f"SurveyDesign: lonely_psu must be one of {', '.join(LONELY_PSU)}, "
                                  f"not {self.lonely_psu!r}")
        for name in ("weights", "strata", "psu", "fpc", "domain"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise EstimationError(f"SurveyDesign: {name} must be a column name, not {value!r}")

    @classmethod
    def wbes(cls, weights: str = "median", strata: str = "sampling_stratum", lonely_psu: str = "average",
             domain: str | None = None) -> SurveyDesign:
        """The World Bank Enterprise Surveys design, for data normalized with the shipped ``wbes``
        mapping: establishments drawn within strata with weights ``wmedian`` (``"median"``, the one
        the surveys recommend), ``wstrict`` (``"strict"``) or ``wweak`` (``"weak"``), each
        establishment its own PSU.

        ``strata`` defaults to ``sampling_stratum`` (the industry stratum ``a4a``); the surveys
        stratify by industry, size and region, so when your file has the survey's combined
        ``strata`` variable, map it and name it here for the exact design (industry alone gives
        somewhat larger standard errors). ``lonely_psu="average"`` matches the surveys' own
        ``svyset ..., singleunit(scaled)``. Recalled years (``recall``) carry no weight: estimate
        on the surveyed rows.
        """
        columns = {"median": "sampling_weight", "strict": "sampling_weight_strict", "weak": "sampling_weight_weak"}
        if weights not in columns:
            raise EstimationError(f"SurveyDesign.wbes: weights must be one of {', '.join(columns)}, not {weights!r}")
        return cls(weights=columns[weights], strata=strata, lonely_psu=lonely_psu, domain=domain)

    @property
    def columns(self) -> list[str]:
        """The data columns the design reads."""
        return [c for c in (self.weights, self.strata, self.psu, self.fpc, self.domain) if c]

    def within(self, domain: str) -> SurveyDesign:
        """The same design restricted to the subpopulation where the boolean column ``domain`` is
        true (the variance still uses every PSU)."""
        return replace(self, domain=domain)

    def describe(self) -> str:
        parts = [f"weights {self.weights}" if self.weights else "equal weights"]
        if self.strata:
            parts.append(f"strata {self.strata}")
        if self.psu:
            parts.append(f"PSU {self.psu}" + (" (nested in strata)" if self.nest else ""))
        if self.fpc:
            parts.append(f"fpc {self.fpc}")
        if self.domain:
            parts.append(f"domain {self.domain}")
        return ", ".join(parts)

    def resolve(self, frame: pd.DataFrame) -> ResolvedDesign:
        """Check the design columns of ``frame`` and code them (one entry per row of ``frame``)."""
        missing_cols = [c for c in self.columns if c not in frame.columns]
        if missing_cols:
            raise EstimationError(f"survey design: the data have no column {', '.join(map(repr, missing_cols))}")
        n = len(frame)
        index = frame.index
        for role in ("strata", "psu", "weights"):
            col = getattr(self, role)
            if col is not None:
                bad = frame[col].isna().to_numpy()
                if bad.any():
                    raise EstimationError(f"survey design: {role} column {col!r} is missing in "
                                          f"{int(bad.sum())} row(s) (rows {_rows_text(index, bad)}); "
                                          "every sampled row needs its design information (pass only the "
                                          "surveyed rows, for example without recalled years)")
        if self.weights is not None:
            w = pd.to_numeric(frame[self.weights], errors="coerce").to_numpy(dtype=float)
            bad = ~np.isfinite(w) | (w < 0)
            if bad.any():
                raise EstimationError(f"survey design: weights column {self.weights!r} must be finite and "
                                      f"non-negative; bad values in rows {_rows_text(index, bad)}")
        else:
            w = np.ones(n)
        if self.strata is not None:
            stratum, strata_labels = pd.factorize(frame[self.strata], sort=True)
        else:
            stratum, strata_labels = np.zeros(n, dtype=np.int64), np.array(["(one stratum)"], dtype=object)
        stratum = stratum.astype(np.int64)
        H = len(strata_labels)
        if self.psu is not None:
            psu_raw, _ = pd.factorize(frame[self.psu], sort=True)
            psu_raw = psu_raw.astype(np.int64)
            if not self.nest and H > 1:
                # a PSU label in two strata is an error unless PSUs are nested (labels reused)
                pairs = pd.DataFrame({"p": psu_raw, "h": stratum}).drop_duplicates()
                shared = pairs["p"].duplicated(keep=False)
                if shared.any():
                    labels = pd.unique(frame[self.psu].to_numpy()[np.isin(psu_raw, pairs.loc[shared, "p"])])[:5]
                    raise EstimationError(
                        f"survey design: PSU labels of {self.psu!r} recur in several strata of "
                        f"{self.strata!r} (for example {', '.join(map(str, labels))}); if labels are "
                        "only unique within strata, pass nest=True")
            psu = pd.factorize(stratum * (int(psu_raw.max()) + 1) + psu_raw)[0].astype(np.int64)
        else:
            psu = np.arange(n, dtype=np.int64)
        P = int(psu.max()) + 1 if n else 0
        psu_stratum = np.zeros(P, dtype=np.int64)
        psu_stratum[psu] = stratum
        n_psu = np.bincount(psu_stratum, minlength=H).astype(float)
        fpc_factor = np.ones(H)
        if self.fpc is not None:
            fv = pd.to_numeric(frame[self.fpc], errors="coerce").to_numpy(dtype=float)
            bad = ~np.isfinite(fv) | (fv <= 0)
            if bad.any():
                raise EstimationError(f"survey design: fpc column {self.fpc!r} must be positive; bad values "
                                      f"in rows {_rows_text(index, bad)}")
            per = pd.Series(fv).groupby(stratum).agg(["min", "max"])
            varying = per.index[(per["max"] - per["min"]) > 1e-9 * per["max"]]
            if len(varying):
                raise EstimationError(f"survey design: fpc column {self.fpc!r} must be constant within "
                                      f"strata; it varies in {', '.join(map(str, strata_labels[varying][:5]))}")
            value = per["max"].reindex(range(H)).to_numpy()
            fraction = bool(np.all(fv <= 1))
            pop = n_psu / value if fraction else value
            small = pop < n_psu - 1e-9
            if small.any():
                raise EstimationError(f"survey design: fpc {self.fpc!r} gives fewer population PSUs than "
                                      f"sampled PSUs in strata {', '.join(map(str, strata_labels[small][:5]))}")
            fpc_factor = (pop - n_psu) / pop
        domain = None
        if self.domain is not None:
            d = frame[self.domain]
            if d.isna().any():
                raise EstimationError(f"survey design: domain column {self.domain!r} is missing in rows "
                                      f"{_rows_text(index, d.isna().to_numpy())}")
            domain = d.astype(bool).to_numpy()
        return ResolvedDesign(weights=w, stratum=stratum, psu=psu, psu_stratum=psu_stratum, n_psu=n_psu,
                              fpc_factor=fpc_factor, strata_labels=np.asarray(strata_labels, dtype=object),
                              lonely_psu=self.lonely_psu, domain=domain, spec=self)


@dataclass(frozen=True, eq=False)
class ResolvedDesign:
    """A :class:`SurveyDesign` coded for one data frame: arrays with one entry per row
    (``weights``, ``stratum``, ``psu``), per PSU (``psu_stratum``) and per stratum (``n_psu``,
    ``fpc_factor`` = 1 - sampling fraction)."""

    weights: np.ndarray
    stratum: np.ndarray
    psu: np.ndarray
    psu_stratum: np.ndarray
    n_psu: np.ndarray
    fpc_factor: np.ndarray
    strata_labels: np.ndarray
    lonely_psu: str
    domain: np.ndarray | None
    spec: SurveyDesign = field(default_factory=SurveyDesign)

    @property
    def n(self) -> int:
        return len(self.weights)

    @property
    def n_psus(self) -> int:
        return int(self.n_psu.sum())

    @property
    def n_strata(self) -> int:
        return len(self.n_psu)

    @property
    def df(self) -> int:
        """Design degrees of freedom: PSUs minus strata."""
        return self.n_psus - self.n_strata

    def meat(self, z: np.ndarray) -> np.ndarray:
        """The stratified between-PSU covariance of the per-row contributions ``z`` (n x k, one row
        per row of the design's frame; zero for rows outside the estimation sample)."""
        z = np.asarray(z, dtype=float)
        if z.ndim == 1:
            z = z[:, None]
        if z.shape[0] != self.n:
            raise EstimationError(f"survey variance: {z.shape[0]} contributions for a design of {self.n} rows")
        P, k, H = len(self.psu_stratum), z.shape[1], self.n_strata
        totals = np.column_stack([np.bincount(self.psu, weights=z[:, j], minlength=P) for j in range(k)])
        n_h = self.n_psu
        lonely = n_h == 1
        if lonely.any() and self.lonely_psu == "fail":
            labels = ", ".join(map(str, self.strata_labels[lonely][:5]))
            raise EstimationError(f"survey design: {int(lonely.sum())} stratum(s) with a single PSU ({labels}); "
                                  "the variance is not defined there. Choose lonely_psu='adjust', 'average', "
                                  "'certainty' or 'remove' (R survey's options) or merge strata")
        sums = np.column_stack([np.bincount(self.psu_stratum, weights=totals[:, j], minlength=H) for j in range(k)])
        means = sums / n_h[:, None]
        centred = totals - means[self.psu_stratum]
        if self.lonely_psu == "adjust":
            # a lonely PSU is centred at the grand mean of the contributions, zero
            centred[lonely[self.psu_stratum]] = totals[lonely[self.psu_stratum]]
        scale = np.where(n_h > 1, self.fpc_factor * n_h / np.maximum(n_h - 1, 1), self.fpc_factor)
        if self.lonely_psu in ("certainty", "remove", "average"):
            scale = np.where(lonely, 0.0, scale)
        scale = np.where(self.fpc_factor < 1e-7, 0.0, scale)  # strata taken whole contribute nothing
        psu_scale = scale[self.psu_stratum]
        meat = (centred * psu_scale[:, None]).T @ centred
        if self.lonely_psu == "average" and lonely.any():
            ok = int((~lonely).sum())
            if ok == 0:
                raise EstimationError("survey design: every stratum has a single PSU; lonely_psu='average' "
                                      "has nothing to average")
            meat *= H / ok
        return meat

    def sample_df(self, rows: np.ndarray) -> int:
        """Degrees of freedom of the design restricted to ``rows`` (positions of the estimation
        sample): its PSUs minus its strata, as R's ``degf`` of a subset design."""
        psus = np.unique(self.psu[rows])
        return len(psus) - len(np.unique(self.psu_stratum[psus]))

    def vcov_info(self, k: int, rows: np.ndarray) -> VcovInfo:
        """How a design-based covariance was computed. t degrees of freedom as R's ``svyglm``: the
        PSUs minus the strata present in the estimation sample, plus one, minus ``k``."""
        spec = self.spec
        df = self.sample_df(rows)
        return VcovInfo(
            type="survey", ssc="none (Taylor linearisation, R survey)",
            cluster_vars=(spec.psu,) if spec.psu else (), n_clusters=(self.n_psus,) if spec.psu else (),
            df_resid=float(max(1, df + 1 - k)),
            details={"design": spec.describe(), "strata": self.n_strata, "psus": self.n_psus,
                     "design_df": self.df, "sample_design_df": df, "lonely_psu": spec.lonely_psu,
                     "fpc": spec.fpc is not None, "lonely_strata": int((self.n_psu == 1).sum())})

    def in_domain(self) -> np.ndarray:
        return self.domain if self.domain is not None else np.ones(self.n, dtype=bool)


def sandwich(design: ResolvedDesign, bread: np.ndarray, scores: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Design-based covariance ``bread @ meat @ bread`` from the weighted scores of the estimation
    sample (``rows``: their positions in the design's frame)."""
    full = np.zeros((design.n, scores.shape[1]))
    full[rows] = scores
    meat = design.meat(full)
    V = bread @ meat @ bread
    return (V + V.T) / 2


def design_rows(design: SurveyDesign | None, frame: pd.DataFrame) -> ResolvedDesign | None:
    """Resolve ``design`` on ``frame`` (None passes through)."""
    if design is None:
        return None
    if not isinstance(design, SurveyDesign):
        raise EstimationError(f"survey= takes a cluster_econ SurveyDesign, not {type(design).__name__}")
    return design.resolve(frame)


# ---------------------------------------------------------------------------------------------
# descriptive estimators
# ---------------------------------------------------------------------------------------------
def _ratio_rows(data: pd.DataFrame, variable: str, design: SurveyDesign, by: str | None,
                total: bool) -> pd.DataFrame:
    from scipy import stats

    if variable not in data.columns:
        raise EstimationError(f"survey estimate: the data have no column {variable!r}")
    if by is not None and by not in data.columns:
        raise EstimationError(f"survey estimate: the data have no column {by!r}")
    des = design.resolve(data)
    col = data[variable]
    categorical = not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)
    if categorical:
        levels = sorted(col.dropna().unique().tolist(), key=str)
        values = {f"{variable}={lv}": (col == lv).astype(float).where(col.notna()).to_numpy() for lv in levels}
    else:
        values = {variable: pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)}
    groups: list[tuple[Any, np.ndarray]] = [(None, np.ones(des.n, dtype=bool))]
    if by is not None:
        bcol = data[by]
        groups = [(g, (bcol == g).to_numpy()) for g in sorted(bcol.dropna().unique().tolist(), key=str)]
    base = des.in_domain()
    rows = []
    t_df = des.df
    for g, gmask in groups:
        for term, y in values.items():
            use = base & gmask & np.isfinite(y)
            w = np.where(use, des.weights, 0.0)
            yy = np.where(use, y, 0.0)
            sw = float(w.sum())
            if sw <= 0:
                rows.append({"by": g, "term": term, "estimate": np.nan, "std_error": np.nan, "n": int(use.sum())})
                continue
            if total:
                est = float(np.sum(w * yy))
                z = w * yy
            else:
                est = float(np.sum(w * yy) / sw)
                z = w * (yy - est) / sw
            var = float(des.meat(z)[0, 0])
            rows.append({"by": g, "term": term, "estimate": est, "std_error": float(np.sqrt(var)),
                         "n": int(use.sum())})
    out = pd.DataFrame(rows)
    crit = float(stats.t.ppf(0.975, t_df)) if t_df > 0 else np.nan
    out["conf_low"] = out["estimate"] - crit * out["std_error"]
    out["conf_high"] = out["estimate"] + crit * out["std_error"]
    out["df"] = t_df
    out.attrs["design"] = design.describe()
    out.attrs["variance"] = "Taylor linearisation (R survey conventions); t with PSUs - strata df"
    out = out.drop(columns="by") if by is None else out.rename(columns={"by": by})
    return out


def survey_mean(data: pd.DataFrame, variable: str, design: SurveyDesign, by: str | None = None) -> pd.DataFrame:
    """Design-weighted mean of ``variable`` (a share per level if it is categorical or boolean),
    for the whole population or per group of ``by`` (a domain: the variance keeps every PSU).

    The mean is the ratio :math:`\\hat{\\bar y} = \\sum_i w_i y_i / \\sum_i w_i` over rows with
    ``variable`` observed; its linearised contributions are :math:`w_i (y_i - \\hat{\\bar y}) /
    \\sum w`. Returns a frame with ``term``, ``estimate``, ``std_error``, ``n``, a 95% interval
    (t with the design's degrees of freedom) and ``df`` (plus ``by`` when given). Equals R's
    ``svymean`` / ``svyby(..., svymean)``.
    """
    return _ratio_rows(data, variable, design, by, total=False)


def survey_total(data: pd.DataFrame, variable: str, design: SurveyDesign, by: str | None = None) -> pd.DataFrame:
    """Design-weighted population total :math:`\\sum_i w_i y_i` of ``variable`` (per level if
    categorical), overall or per group of ``by``; as R's ``svytotal`` / ``svyby(..., svytotal)``.
    Columns as :func:`survey_mean`."""
    return _ratio_rows(data, variable, design, by, total=True)


def check_vcov_for_survey(vcov: Any, weights: Any, default: Sequence[Any] = ("iid", None)) -> None:
    """A survey design fixes the weights and the covariance: refuse a conflicting request."""
    if weights is not None:
        raise EstimationError("pass the sampling weights in the SurveyDesign (weights=...), not as weights=")
    if vcov not in default:
        raise EstimationError(f"with survey=, the covariance is the design-based (linearised) one; vcov={vcov!r} "
                              "cannot be combined with it (omit vcov)")
