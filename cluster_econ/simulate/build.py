"""Turn simulated clusters into canonical tables (with the survey layer) and into the truth."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cluster_econ.simulate.config import (
    INNOVATION_ITEMS,
    ORIGINS,
    PHASES,
    REGIMES,
    SimulationConfig,
    regime_of,
)
from cluster_econ.simulate.engine import (
    I_EXPORT,
    OTHER_OCCUPATIONS,
    SUCCESSOR_OCCUPATIONS,
    ClusterRun,
)
from cluster_econ.simulate.presets import COUNTRIES, CountryInfo

FOUNDER_OCCUPATIONS = ("merchant", "engineer", "worker_same_industry", *OTHER_OCCUPATIONS)
UNIT_PRICE_FACTOR = 0.002   # unit price of the main product, in real units, at price index 1


@dataclass(frozen=True)
class Truth:
    """The true values of what each proposition tests.

    Phase keys are the four labelled phases; ``stagnation`` carries the parameters of quantity
    expansion (the regime it runs under). Tables:

    ``phase_starts``
        one row per cluster: first year of each phase (missing if never reached).
    ``cluster_year``
        true phase, real price index, price-cost margin, output, firms, entries, exits, innovator
        share, mean and output-weighted log productivity, CR4 of true sales, mean schooling of
        current managers.
    ``firms``
        one row per enterprise: entry year and phase, true founder origin, spin-off parent, log
        productivity at entry and the parent's at that time, true exit year, last surveyed year.
    ``firm_year``
        true values per enterprise-year: log productivity ``omega``, log real value added, log
        employment, log real capital, current manager's schooling and generation, innovator
        status, exit, and whether the row is in the survey (``observed``).

    Dictionaries: ``schooling_slopes[item][phase]`` and ``innovation_intercepts`` (logit index,
    schooling centred at ``schooling_center``), ``exit_hazard`` (cloglog baseline by phase,
    innovator log hazard ratio and hazard ratio by phase, size effect), ``origin_shares``
    (entrant founder origin probabilities by entry phase and product complexity),
    ``spinoff_share`` (probability an entrant is a spin-off, by phase and complexity),
    ``imitation_elasticity``, ``product_inherit_prob``, ``production`` (elasticities and the
    productivity process), ``training`` (ITT and TOT), ``mean_schooling`` (expected schooling of
    entrant founders by entry phase and complexity; realised mean of current managers by phase),
    ``entry`` (semi-elasticity of entry to the margin).
    """

    phase_starts: pd.DataFrame
    cluster_year: pd.DataFrame
    firms: pd.DataFrame
    firm_year: pd.DataFrame
    schooling_slopes: dict[str, dict[str, float]]
    innovation_intercepts: dict[str, dict[str, float]]
    schooling_center: float
    innovator_definition: str
    exit_hazard: dict[str, Any]
    origin_shares: dict[str, dict[str, dict[str, float]]]
    spinoff_share: dict[str, dict[str, float]]
    imitation_elasticity: float
    product_inherit_prob: float
    production: dict[str, Any]
    training: dict[str, Any]
    mean_schooling: dict[str, Any]
    entry: dict[str, Any]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def phase_of(self, cluster_id: str, year: int) -> str:
        """True phase of a cluster in a year."""
        cy = self.cluster_year
        row = cy[(cy["cluster_id"] == cluster_id) & (cy["year"] == year)]
        if row.empty:
            raise KeyError(f"no cluster-year ({cluster_id!r}, {year})")
        return str(row["phase"].iloc[0])


# -- helpers ---------------------------------------------------------------------------------
def _sig3(x: np.ndarray) -> np.ndarray:
    """Round to 3 significant digits (zeros and missing values kept)."""
    out = np.array(x, dtype=float)
    nz = np.isfinite(out) & (out != 0)
    mag = np.floor(np.log10(np.abs(out[nz])))
    factor = 10.0 ** (mag - 2)
    out[nz] = np.round(out[nz] / factor) * factor
    return out


def _expected_rounded_clipped_normal(mean: float, sd: float, hi: float) -> float:
    """E[round(clip(X, 0, hi))] for X ~ Normal(mean, sd), hi an integer."""
    def cdf(v: float) -> float:
        return 0.5 * (1.0 + math.erf((v - mean) / (sd * math.sqrt(2.0))))
    total = 0.0
    top = int(hi)
    for k in range(1, top):
        total += k * (cdf(k + 0.5) - cdf(k - 0.5))
    total += top * (1.0 - cdf(top - 0.5))
    return total


def _bool_with_missing(values: np.ndarray, missing: np.ndarray) -> pd.Series:
    return pd.Series(pd.arrays.BooleanArray(np.asarray(values, dtype=bool),
                                            np.asarray(missing, dtype=bool).copy()))


def _int_col(values: np.ndarray, missing: np.ndarray | None = None) -> pd.Series:
    vals = np.asarray(values, dtype=np.int64)
    mask = (np.zeros(vals.size, dtype=bool) if missing is None
            else np.asarray(missing, dtype=bool).copy())
    return pd.Series(pd.arrays.IntegerArray(vals, mask))


def deflator_index(info: CountryInfo, years: np.ndarray, base_year: int) -> np.ndarray:
    return (1.0 + info.inflation) ** (np.asarray(years, dtype=float) - base_year)


# -- tables ------------------------------------------------------------------------------------
def build_tables(runs: list[ClusterRun], cfg: SimulationConfig, eff: dict[str, Any],
                 survey_rngs: list[np.random.Generator]) -> tuple[dict[str, pd.DataFrame],
                                                                   list[dict[str, Any]]]:
    """Canonical tables of all clusters, plus per-cluster helper arrays for the truth."""
    parts: dict[str, list[pd.DataFrame]] = {t: [] for t in (
        "enterprise", "manager", "enterprise_year", "cluster_year", "rct_assignment")}
    helpers: list[dict[str, Any]] = []
    for run, rng in zip(runs, survey_rngs, strict=True):
        tabs, helper = _cluster_tables(run, cfg, rng)
        for k, v in tabs.items():
            parts[k].append(v)
        helpers.append(helper)
    tables = {k: (pd.concat(v, ignore_index=True) if v else pd.DataFrame()) for k, v in parts.items()}
    tables["deflator"] = _deflator_table(runs, cfg)
    if tables["rct_assignment"].empty:
        del tables["rct_assignment"]
    return tables, helpers


def _deflator_table(runs: list[ClusterRun], cfg: SimulationConfig) -> pd.DataFrame:
    rows = []
    countries = sorted({r.spec.country for r in runs})
    for c in countries:
        info = COUNTRIES[c]
        y0 = min(r.spec.start_year for r in runs if r.spec.country == c)
        y1 = max(r.spec.start_year + r.spec.n_years - 1 for r in runs if r.spec.country == c)
        years = np.arange(y0, y1 + 1)
        idx = deflator_index(info, years, cfg.price_base_year)
        fx = info.usd_rate_base * ((1 + info.inflation) / 1.025) ** (years - cfg.price_base_year)
        rows.append(pd.DataFrame({
            "country": c, "year": _int_col(years), "price_index": np.round(idx, 6),
            "base_year": _int_col(np.full(years.size, cfg.price_base_year)),
            "exchange_rate": _sig3(fx),
        }))
    return pd.concat(rows, ignore_index=True)


def _cluster_tables(run: ClusterRun, cfg: SimulationConfig, rng: np.random.Generator
                    ) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    spec = run.spec
    sv = cfg.survey
    on = sv.enabled
    info = COUNTRIES[spec.country]
    f = run.firms
    fy = run.years
    n_f = f["entry_year"].size
    ids = np.array([f"{spec.cluster_id}-{i + 1:05d}" for i in range(n_f)], dtype=object)
    never = np.iinfo(np.int32).max
    attrit = f["attrit_year"] if on else np.full(n_f, never)

    # -- enterprise ---------------------------------------------------------------------------
    origin = np.array(ORIGINS, dtype=object)[f["origin"]]
    parent_id = np.where(f["parent"] >= 0, ids[np.maximum(f["parent"], 0)], None).astype(object)
    if on:
        unknown = rng.random(n_f) < sv.unknown_origin_rate
        origin = np.where(unknown, "unknown", origin).astype(object)
        lost_parent = unknown | (rng.random(n_f) < sv.unknown_parent_rate)
        parent_id = np.where(lost_parent, None, parent_id).astype(object)
    exited = (f["exit_year"] > 0) & (f["exit_year"] < attrit)
    enterprise = pd.DataFrame({
        "enterprise_id": ids,
        "cluster_id": spec.cluster_id,
        "country": spec.country,
        "industry_isic": spec.industry_isic,
        "industry_isic_revision": "4",
        "product": np.array(spec.product_variants, dtype=object)[f["variant"]],
        "product_complexity": spec.product_complexity,
        "year_established": _int_col(f["entry_year"]),
        "founder_origin": origin,
        "spinoff_parent_id": pd.Series(parent_id, dtype=object),
        "exit_year": _int_col(np.where(exited, f["exit_year"], 0), ~exited),
    })

    # -- manager ------------------------------------------------------------------------------
    succ_seen = f["has_succ"] & (f["succ_year"] < attrit)
    trained = f["attended"] | (rng.random(n_f) < 0.05)
    n_s = int(succ_seen.sum())
    founders = pd.DataFrame({
        # the schema's convention: "1" is the only or current manager; a founder who handed
        # over (succession observed by the survey) becomes "2"
        "enterprise_id": ids, "manager_id": np.where(succ_seen, "2", "1").astype(object),
        "schooling_years": f["schooling_f"].astype(float),
        "sector_experience_years": f["exper_f"].astype(float),
        "prior_occupation": np.array(FOUNDER_OCCUPATIONS, dtype=object)[f["occ_f"]],
        "generation": _int_col(np.ones(n_f)), "role": "founder",
        "birth_year": _int_col(f["birth_f"]),
        "sex": np.where(f["female_f"], "female", "male").astype(object),
        "management_training": pd.array(trained & ~succ_seen, dtype="boolean"),
        "start_year": _int_col(f["entry_year"]),
    })
    succ = pd.DataFrame({
        "enterprise_id": ids[succ_seen], "manager_id": "1",
        "schooling_years": f["schooling_s"][succ_seen].astype(float),
        "sector_experience_years": f["exper_s"][succ_seen].astype(float),
        "prior_occupation": np.array(SUCCESSOR_OCCUPATIONS, dtype=object)[f["occ_s"][succ_seen]],
        "generation": _int_col(np.full(n_s, 2)), "role": "successor",
        "birth_year": _int_col(f["birth_s"][succ_seen]),
        "sex": np.where(f["female_s"][succ_seen], "female", "male").astype(object),
        "management_training": pd.array(trained[succ_seen], dtype="boolean"),
        "start_year": _int_col(f["succ_year"][succ_seen]),
    })
    manager = pd.concat([founders, succ], ignore_index=True)
    manager = manager.sort_values(["enterprise_id", "generation"], kind="stable").reset_index(drop=True)
    if on:
        miss = rng.random(len(manager)) < sv.missing_rate
        manager.loc[miss, "schooling_years"] = np.nan

    # -- enterprise_year ----------------------------------------------------------------------
    firm = fy["firm"]
    year = fy["year"]
    obs = year < attrit[firm]
    sel = np.flatnonzero(obs)
    firm = firm[sel]
    year = year[sel]
    n = sel.size
    ti = year - spec.start_year
    last = spec.n_years - 1
    round_t = np.array([t for t in range(spec.n_years)
                        if (t + 1) % sv.round_interval == 0 or t == last])
    pos = np.searchsorted(round_t, ti)
    round_year = spec.start_year + round_t[pos]
    recall = (round_year != year) if on else np.zeros(n, dtype=bool)
    defl = deflator_index(info, year, cfg.price_base_year)
    money = info.lcu_per_unit * defl
    price = fy["price"][sel]
    V = fy["V"][sel]
    raw = {
        "sales": (price * V + fy["mc"][sel] + fy["ec"][sel]) * money,
        "material_cost": fy["mc"][sel] * money,
        "energy_cost": fy["ec"][sel] * money,
        "labour_cost": fy["lc"][sel] * money,
        "capital_stock": fy["K"][sel] * money,
        "investment": fy["invest"][sel] * money,
    }
    sd = np.where(recall, sv.recall_measurement_sd, sv.measurement_sd)
    miss_rate = np.where(recall, sv.recall_missing_rate, sv.missing_rate)
    unit_price = UNIT_PRICE_FACTOR * price * money

    def noisy(x: np.ndarray) -> np.ndarray:
        if not on:
            return x.copy()
        y = x * np.exp(sd * rng.standard_normal(n))
        if sv.rounding:
            y = _sig3(y)
        y[rng.random(n) < miss_rate] = np.nan
        return y

    measured = {k: noisy(v) for k, v in raw.items()}
    unit_price = noisy(unit_price * (np.exp(0.1 * rng.standard_normal(n)) if on else 1.0))
    value_added = measured["sales"] - measured["material_cost"] - measured["energy_cost"]
    L = fy["L"][sel]
    fam = np.where(L <= 5, rng.binomial(np.minimum(L, 2).astype(int), 0.5),
                   rng.binomial(1, 0.3, n)).astype(float)
    fam = np.minimum(fam, L - 1)
    temp = rng.binomial((L - fam).astype(int), 0.2).astype(float)
    perm = L - fam - temp
    emp_missing = (rng.random(n) < miss_rate) if on else np.zeros(n, dtype=bool)
    items = fy["items"][sel]
    export = np.rint(fy["export_share"][sel])
    indirect = np.rint(fy["indirect_share"][sel])
    indirect = np.minimum(indirect, 100 - export)
    domestic = 100 - export - indirect
    shares_missing = (rng.random(n) < miss_rate) if on else np.zeros(n, dtype=bool)
    parts = fy["parts_share"][sel]
    parts = np.rint(parts / 5) * 5 if (on and sv.rounding) else parts
    mgmt = fy["mgmt"][sel]
    if on and sv.rounding:
        mgmt = np.rint(mgmt * 20) / 20
    mgmt_missing = recall | ((rng.random(n) < miss_rate) if on else np.zeros(n, dtype=bool))

    ey: dict[str, Any] = {
        "enterprise_id": ids[firm],
        "year": _int_col(year),
        "survey_round": np.array([f"{y} round" for y in range(spec.start_year,
                                                                 spec.start_year + spec.n_years)],
                                 dtype=object)[round_year - spec.start_year],
        "recall": pd.array(recall, dtype="boolean"),
        # a census of the cluster: no sample design
        "sampling_stratum": pd.Series([None] * n, dtype=object),
        "sampling_weight": np.full(n, np.nan),
        "currency": spec.currency,
        "price_base_year": pd.array([pd.NA] * n, dtype="Int64"),
    }
    for k in ("sales", "material_cost", "energy_cost", "labour_cost", "capital_stock", "investment"):
        ey[k] = measured[k]
    ey["employment"] = np.where(emp_missing, np.nan, L)
    ey["employment_permanent"] = np.where(emp_missing, np.nan, perm)
    ey["employment_temporary"] = np.where(emp_missing, np.nan, temp)
    ey["employment_family"] = np.where(emp_missing, np.nan, fam)
    ey["value_added"] = value_added
    ey["price_main_product"] = unit_price
    for j, item in enumerate(INNOVATION_ITEMS):
        if j == I_EXPORT:
            continue
        if item == "quality_certification":
            ey["domestic_sales_share"] = np.where(shares_missing, np.nan, domestic)
            ey["indirect_export_share"] = np.where(shares_missing, np.nan, indirect)
            ey["export_share"] = np.where(shares_missing, np.nan, export)
        miss = (rng.random(n) < miss_rate) if on else np.zeros(n, dtype=bool)
        ey[item] = _bool_with_missing(items[:, j], miss)
    parts_missing = (rng.random(n) < miss_rate) if on else np.zeros(n, dtype=bool)
    ey["parts_market_share"] = np.where(parts_missing, np.nan, parts)
    ey["management_score"] = np.where(mgmt_missing, np.nan, mgmt)
    ey["operating"] = pd.array(np.ones(n, dtype=bool), dtype="boolean")
    ey["exit"] = pd.array(fy["exit"][sel], dtype="boolean")
    enterprise_year = pd.DataFrame(ey)

    # -- cluster_year -------------------------------------------------------------------------
    cy = run.cluster_year
    cluster_year = pd.DataFrame({
        "cluster_id": spec.cluster_id,
        "year": _int_col(cy["year"]),
        "price_index": np.exp(cy["log_price"].astype(float)),
        "phase": cy["phase"].astype(object),
    })

    # -- rct_assignment -----------------------------------------------------------------------
    in_rct = f["in_rct"]
    rct = pd.DataFrame()
    if in_rct.any() and run.rct_year is not None:
        rct = pd.DataFrame({
            "enterprise_id": ids[in_rct], "cluster_id": spec.cluster_id,
            "stratum": np.array([f"size{h + 1}" for h in f["stratum"][in_rct]], dtype=object),
            "treatment": pd.array(f["treated"][in_rct], dtype="boolean"),
            "assignment_year": _int_col(np.full(int(in_rct.sum()), run.rct_year)),
            "attended": pd.array(f["attended"][in_rct], dtype="boolean"),
            "attendance_share": np.round(f["attend_share"][in_rct], 2),
        })

    helper = {"ids": ids, "attrit": attrit, "observed": obs}
    return ({"enterprise": enterprise, "manager": manager, "enterprise_year": enterprise_year,
             "cluster_year": cluster_year, "rct_assignment": rct}, helper)


# -- truth ---------------------------------------------------------------------------------------
def _by_phase(d: dict[str, float]) -> dict[str, float]:
    return {p: float(d[regime_of(p)]) for p in PHASES}


def build_truth(runs: list[ClusterRun], helpers: list[dict[str, Any]], cfg: SimulationConfig,
                eff: dict[str, Any]) -> Truth:
    from cluster_econ.simulate.engine import typical_levels

    prod = cfg.production
    omega_bar, sd_stat = typical_levels(cfg)
    starts, cys, firm_rows, fy_rows = [], [], [], []
    for run, h in zip(runs, helpers, strict=True):
        spec = run.spec
        first = {p: next((spec.start_year + t for t, q in enumerate(run.phases) if q == p), None)
                 for p in PHASES}
        starts.append({"cluster_id": spec.cluster_id, "product_complexity": spec.product_complexity,
                       "country": spec.country,
                       **{f"{p}_start": first[p] for p in PHASES},
                       "reaches_quality_improvement": first["quality_improvement"] is not None,
                       "stagnant": first["stagnation"] is not None})
        f, fy, ids = run.firms, run.years, h["ids"]
        firm_rows.append(pd.DataFrame({
            "enterprise_id": ids, "cluster_id": spec.cluster_id,
            "product_complexity": spec.product_complexity,
            "entry_year": f["entry_year"].astype(np.int64),
            "entry_phase": np.array(PHASES, dtype=object)[f["entry_phase"]],
            "origin": np.array(ORIGINS, dtype=object)[f["origin"]],
            "parent_id": pd.Series(np.where(f["parent"] >= 0, ids[np.maximum(f["parent"], 0)],
                                            None), dtype=object),
            "omega_entry": f["omega0"], "parent_omega": f["parent_omega"],
            "founder_schooling": f["schooling_f"],
            "exit_year": _int_col(f["exit_year"], f["exit_year"] == 0),
            "last_surveyed_year": pd.array(np.minimum(h["attrit"].astype(np.int64) - 1,
                                                      spec.start_year + spec.n_years - 1),
                                           dtype="Int64"),
            "in_rct": f["in_rct"], "treated": f["treated"], "attended": f["attended"],
            "management_gain": f["mgmt_gain"],
        }))
        sales = fy["price"] * fy["V"] + fy["mc"] + fy["ec"]
        fyd = pd.DataFrame({
            "enterprise_id": ids[fy["firm"]], "cluster_id": spec.cluster_id,
            "year": fy["year"].astype(np.int64),
            "phase": np.array(PHASES, dtype=object)[fy["phase"]],
            "omega": fy["omega"], "log_value_added_real": np.log(fy["V"]),
            "log_employment": np.log(fy["L"]), "log_capital_real": np.log(fy["K"]),
            "training_shift": fy["va_shift"],
            "schooling": fy["schooling"], "generation": fy["generation"].astype(np.int64),
            "innovator": fy["innovator"], "exit": fy["exit"], "observed": h["observed"],
            "sales_real": sales,
        })
        fy_rows.append(fyd)
        cy = run.cluster_year
        cys.append(pd.DataFrame({
            "cluster_id": spec.cluster_id, "year": cy["year"].astype(np.int64),
            "phase": cy["phase"].astype(object), "price_index": np.exp(cy["log_price"].astype(float)),
            "quality": cy["quality"].astype(float), "margin": cy["margin"].astype(float),
            "output": cy["output"].astype(float), "n_firms": cy["n_firms"].astype(np.int64),
            "n_entries": cy["n_entries"].astype(np.int64), "n_exits": cy["n_exits"].astype(np.int64),
            "innovator_share": cy["innovator_share"].astype(float),
        }))
    firm_year = pd.concat(fy_rows, ignore_index=True)
    cluster_year = pd.concat(cys, ignore_index=True)
    # realised aggregates of the true economy
    g = firm_year.groupby(["cluster_id", "year"], sort=False)
    agg = pd.DataFrame({
        "mean_omega": g["omega"].mean(),
        "mean_schooling": g["schooling"].mean(),
    })
    w = np.exp(firm_year["log_value_added_real"])
    agg["weighted_omega"] = (firm_year["omega"] * w).groupby(
        [firm_year["cluster_id"], firm_year["year"]], sort=False).sum() / w.groupby(
        [firm_year["cluster_id"], firm_year["year"]], sort=False).sum()
    ranked = firm_year[["cluster_id", "year", "sales_real"]].sort_values(
        ["cluster_id", "year", "sales_real"], ascending=[True, True, False], kind="stable")
    top4 = ranked[ranked.groupby(["cluster_id", "year"]).cumcount() < 4]
    agg["cr4"] = (top4.groupby(["cluster_id", "year"])["sales_real"].sum()
                  / ranked.groupby(["cluster_id", "year"])["sales_real"].sum())
    cluster_year = cluster_year.merge(agg.reset_index(), on=["cluster_id", "year"], how="left")

    slopes = {item: _by_phase(eff["slopes"][item]) for item in INNOVATION_ITEMS}
    intercepts = {item: _by_phase(eff["intercepts"][item]) for item in INNOVATION_ITEMS}
    base = _by_phase(eff["exit_baseline"])
    inn = _by_phase(eff["exit_innovator"])
    origin = {p: {cx: dict(eff["origin"][regime_of(p)][cx]) for cx in ("simple", "complex")}
              for p in PHASES}
    spin = {p: {cx: origin[p][cx]["spinoff"] for cx in ("simple", "complex")} for p in PHASES}
    sch = cfg.schooling
    expected_school = {}
    for p in PHASES:
        expected_school[p] = {}
        for cx in ("simple", "complex"):
            expected_school[p][cx] = sum(
                origin[p][cx][o] * _expected_rounded_clipped_normal(
                    eff["school_mean"][regime_of(p)] + sch.origin_shift[o], sch.sd, sch.max_years)
                for o in ORIGINS)
    realised = firm_year.groupby("phase")["schooling"].mean().to_dict()
    tr = cfg.training
    mean_share = tr.attendance_a / (tr.attendance_a + tr.attendance_b)
    tot_m = eff["mgmt_effect"] * mean_share
    firms = pd.concat(firm_rows, ignore_index=True)
    rct = firms[firms["in_rct"]]
    training = {
        "clusters": sorted({r.spec.cluster_id for r in runs if r.rct_year is not None
                            and bool(r.firms["in_rct"].any())}),
        "assignment_years": {r.spec.cluster_id: r.rct_year for r in runs
                             if r.rct_year is not None and bool(r.firms["in_rct"].any())},
        "takeup": tr.takeup,
        "mean_attendance_share_attendees": mean_share,
        "tot_management": tot_m,
        "itt_management": tr.takeup * tot_m,
        "tot_log_value_added": eff["va_effect"] * tot_m,
        "itt_log_value_added": eff["va_effect"] * tr.takeup * tot_m,
        "management_from": "the year after assignment",
        "value_added_from": f"{tr.va_lag} years after assignment",
        "sample_itt_management": float(rct.loc[rct["treated"], "management_gain"].mean())
        if len(rct) else float("nan"),
        "sample_tot_management": float(rct.loc[rct["attended"], "management_gain"].mean())
        if len(rct) else float("nan"),
    }
    production = {
        "beta_l": prod.beta_l, "beta_k": prod.beta_k, "rho": prod.rho,
        "sigma_xi": prod.sigma_xi, "sigma_eps": prod.sigma_eps,
        "innovation_gain": _by_phase(eff["gain"]), "omega_bar": omega_bar,
        "omega_sd_stationary": sd_stat, "depreciation": prod.depreciation,
        "demand_elasticity": (None if eff["inv_elasticity"] == 0   # None: price fixed
                              else 1.0 / eff["inv_elasticity"]),
        "quality_gain": eff["quality_gain"],
        "model": "log V = beta_l log L + beta_k log K + omega + eps, with V real value added "
                 "= value_added / (deflator.price_index x lcu_per_unit x cluster price_index) "
                 "and K = capital_stock / (deflator.price_index x lcu_per_unit)",
        "lcu_per_unit": {c: COUNTRIES[c].lcu_per_unit for c in sorted({r.spec.country for r in runs})},
    }
    return Truth(
        phase_starts=pd.DataFrame(starts), cluster_year=cluster_year, firms=firms,
        firm_year=firm_year.drop(columns=["sales_real"]),
        schooling_slopes=slopes, innovation_intercepts=intercepts,
        schooling_center=cfg.innovation.schooling_center,
        innovator_definition="new_product or new_process in the year",
        exit_hazard={"link": "cloglog", "baseline": base, "innovator_log_hazard_ratio": inn,
                     "innovator_hazard_ratio": {p: math.exp(v) for p, v in inn.items()},
                     "size_effect": cfg.exit.size_effect,
                     "covariates": "innovator in the year; log employment minus log typical "
                                   "employment"},
        origin_shares=origin, spinoff_share=spin,
        imitation_elasticity=float(eff["imitation"]), product_inherit_prob=float(eff["inherit"]),
        production=production, training=training,
        mean_schooling={"entrant_founders": expected_school,
                        "current_managers_realised": {p: float(realised[p]) for p in realised},
                        "successor_mean": eff["successor_mean"]},
        entry={"margin_semi_elasticity": eff["theta"], "margin_ref": cfg.entry.margin_ref,
               "rate": dict(cfg.entry.rate), "outside_rate": dict(cfg.entry.outside_rate)},
        notes=(
            "Monetary columns of enterprise_year are nominal local currency (price_base_year "
            "missing); divide by deflator.price_index for base-year prices.",
            "Stagnation years run under the quantity-expansion regime; parameters keyed "
            "'stagnation' equal those of quantity_expansion.",
            "Regimes: " + ", ".join(REGIMES),
        ),
    )
