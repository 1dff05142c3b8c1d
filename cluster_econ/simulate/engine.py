"""The data-generating process: one cluster at a time, a loop over years, numpy over firms.

Written by hand because no library simulates this model: it is the endogenous model of
cluster-based industrial development (Otsuka and Sonobe) turned into firm-level equations, each
documented in :mod:`cluster_econ.simulate.config`. The true economy is simulated first with one
random stream per cluster; the survey (rounds, recall, attrition, measurement error, missing
values, rounding) is laid over it afterwards with a second, independent stream, so switching the
survey layer off leaves the true economy unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from cluster_econ.simulate.config import (
    INNOVATION_ITEMS,
    INSTITUTION_ITEMS,
    ORIGINS,
    PHASES,
    REGIMES,
    ClusterSpec,
    SimulationConfig,
    regime_of,
)

OTHER_OCCUPATIONS = ("worker_other_industry", "farmer", "civil_servant", "student", "other")
OTHER_OCCUPATION_P = (0.4, 0.15, 0.15, 0.1, 0.2)
SUCCESSOR_OCCUPATIONS = ("worker_same_industry", "student", "other")
SUCCESSOR_OCCUPATION_P = (0.6, 0.25, 0.15)
N_ITEMS = len(INNOVATION_ITEMS)
I_NEW_PRODUCT = INNOVATION_ITEMS.index("new_product")
I_NEW_PROCESS = INNOVATION_ITEMS.index("new_process")
I_EXPORT = INNOVATION_ITEMS.index("export_share")
I_SUBCONTRACT = INNOVATION_ITEMS.index("long_term_subcontract")
I_VERTICAL = INNOVATION_ITEMS.index("vertical_integration")
O_SPINOFF = ORIGINS.index("spinoff")
MGMT_BASE = 0.35  # management score of a manager with 10 years of schooling


def phase_schedule(spec: ClusterSpec, stagnation_after: int) -> list[str]:
    """True phase of each simulated year of a cluster.

    Initiation for ``initiation_years``; then quantity expansion; quality improvement from year
    ``initiation_years + expansion_years`` if ``expansion_years`` is set. A year of quantity
    expansion whose expansion has already lasted ``stagnation_after`` years is labelled
    ``stagnation``.
    """
    out = []
    for t in range(spec.n_years):
        if t < spec.initiation_years:
            out.append("initiation")
        elif spec.expansion_years is not None and t >= spec.initiation_years + spec.expansion_years:
            out.append("quality_improvement")
        elif t - spec.initiation_years >= stagnation_after:
            out.append("stagnation")
        else:
            out.append("quantity_expansion")
    return out


def _clip_round(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip(np.rint(x), lo, hi)


class _Store:
    """Growable struct of arrays for per-firm state."""

    def __init__(self, dtypes: dict[str, Any], capacity: int = 256) -> None:
        self.n = 0
        self.dtypes = dtypes
        self.a: dict[str, np.ndarray] = {}
        for k, dt in dtypes.items():
            self.a[k] = np.zeros(capacity, dtype=dt)

    def grow(self, k: int) -> slice:
        need = self.n + k
        cap = len(next(iter(self.a.values())))
        if need > cap:
            new_cap = max(need, cap * 2)
            for name, arr in self.a.items():
                new = np.zeros(new_cap, dtype=arr.dtype)
                new[: self.n] = arr[: self.n]
                self.a[name] = new
        s = slice(self.n, need)
        self.n = need
        return s

    def view(self) -> dict[str, np.ndarray]:
        return {k: v[: self.n] for k, v in self.a.items()}


FIRM_DTYPES: dict[str, Any] = {
    "entry_year": np.int32, "entry_phase": np.int8, "origin": np.int8, "parent": np.int64,
    "variant": np.int16, "schooling_f": np.float64, "birth_f": np.int32, "female_f": bool,
    "exper_f": np.float64, "occ_f": np.int8, "has_succ": bool, "succ_year": np.int32,
    "schooling_s": np.float64, "birth_s": np.int32, "female_s": bool, "exper_s": np.float64,
    "occ_s": np.int8, "mgmt_base": np.float64, "omega": np.float64, "omega0": np.float64,
    "parent_omega": np.float64, "K": np.float64, "alive": bool, "exit_year": np.int32,
    "innov_prev": bool, "L_prev": np.float64, "attrit_year": np.int32, "mgmt_gain": np.float64,
    "in_rct": bool, "treated": bool, "attended": bool, "attend_share": np.float64,
    "stratum": np.int8, "scale": np.float64,
}

YEAR_FIELDS = (
    "firm", "year", "phase", "omega", "L", "K", "V", "mc", "ec", "lc", "invest", "items",
    "export_share", "indirect_share", "parts_share", "mgmt", "exit", "schooling", "generation",
    "innovator", "price", "va_shift",
)


@dataclass
class ClusterRun:
    """Everything one cluster's simulation produced (true values)."""

    spec: ClusterSpec
    phases: list[str]
    firms: dict[str, np.ndarray]
    years: dict[str, np.ndarray]
    cluster_year: dict[str, np.ndarray]
    rct_year: int | None = None


def effective(cfg: SimulationConfig) -> dict[str, Any]:
    """The parameters actually in force after the switches (the basis of the truth)."""
    sw = cfg.switches
    inn = cfg.innovation
    slopes = {k: dict(v) for k, v in inn.slope.items()}
    intercepts = {k: dict(v) for k, v in inn.intercept.items()}
    # a switch that changes a schooling slope moves the intercept by the change in slope times
    # the regime's typical operating schooling minus the centre, so that the share of firms with
    # the item stays about the same: the switch removes the gradient, not the item
    school_mean = inn.operating_schooling

    def set_slope(item: str, regime: str, value: float) -> None:
        shift = (slopes[item][regime] - value) * (school_mean[regime] - inn.schooling_center)
        intercepts[item][regime] += shift
        slopes[item][regime] = value

    if sw.equal_schooling_slopes:
        for k in slopes:
            set_slope(k, "quality_improvement", slopes[k]["quantity_expansion"])
    if sw.no_schooling_returns:
        for k in slopes:
            for r in REGIMES:
                set_slope(k, r, 0.0)
    inst = cfg.institutions
    parts_mean = dict(inst.parts_market_mean)
    parts_linked_shift = inst.parts_linked_shift
    if sw.no_institutional_change:
        parts_mean = dict.fromkeys(parts_mean, parts_mean["quantity_expansion"])
        parts_linked_shift = 0.0
        for k in INSTITUTION_ITEMS:
            for r in REGIMES:
                set_slope(k, r, 0.0)
            intercepts[k] = dict.fromkeys(intercepts[k], intercepts[k]["quantity_expansion"])
    ex = cfg.exit
    baseline = dict(ex.baseline)
    innov_eff = dict(ex.innovator_effect)
    if sw.no_shakeout:
        baseline["quality_improvement"] = baseline["quantity_expansion"]
        innov_eff["quality_improvement"] = innov_eff["quantity_expansion"]
    origin = {r: {c: dict(p) for c, p in v.items()} for r, v in cfg.founders.origin_probs.items()}
    if sw.no_founder_pattern:
        s, c = origin["initiation"]["simple"], origin["initiation"]["complex"]
        avg = {o: (s[o] + c[o]) / 2 for o in ORIGINS}
        origin["initiation"] = {"simple": dict(avg), "complex": dict(avg)}
    if sw.no_spinoff_wave:
        for cx in ("simple", "complex"):
            p = origin["quantity_expansion"][cx]
            cut = p["spinoff"] - 0.1
            if cut > 0:
                p["spinoff"] = 0.1
                p["other"] += cut
    for r in REGIMES:
        for cx in ("simple", "complex"):
            total = sum(origin[r][cx].get(o, 0.0) for o in ORIGINS)
            if abs(total - 1.0) > 1e-9:
                raise ValueError(f"founders.origin_probs[{r}][{cx}] sums to {total}, not 1")
    sch = cfg.schooling
    school_mean = dict(sch.mean)
    successor_mean = sch.successor_mean
    if sw.no_schooling_shift:
        school_mean = {r: sch.mean["quantity_expansion"] for r in REGIMES}
        successor_mean = sch.mean["quantity_expansion"]
    prod = cfg.production
    gain = dict(prod.innovation_gain)
    quality_gain = prod.quality_gain
    if sw.no_productivity_gain or sw.flat_productivity:
        gain["quality_improvement"] = 0.0
    if sw.no_quality_upgrading or sw.flat_productivity:
        quality_gain = 0.0
    tr = cfg.training
    return {
        "slopes": slopes, "intercepts": intercepts, "exit_baseline": baseline,
        "exit_innovator": innov_eff, "origin": origin, "school_mean": school_mean,
        "successor_mean": successor_mean, "gain": gain, "quality_gain": quality_gain,
        "imitation": 0.0 if sw.no_spinoff_imitation else cfg.founders.imitation_elasticity,
        "inherit": 0.0 if sw.no_spinoff_imitation else cfg.founders.product_inherit_prob,
        "theta": 0.0 if sw.no_entry_response else cfg.entry.margin_semi_elasticity,
        "entry_multiplier": cfg.entry.unresponsive_multiplier if sw.no_entry_response else 1.0,
        "inv_elasticity": 0.0 if sw.no_price_response else 1.0 / prod.demand_elasticity,
        "log_price_level": math.log(prod.unresponsive_price) if sw.no_price_response else 0.0,
        "innovator_growth": ({r: 0.0 for r in REGIMES} if sw.no_large_firms
                             else dict(prod.innovator_growth)),
        "mgmt_effect": 0.0 if sw.no_training_effect else tr.management_effect,
        "va_effect": 0.0 if sw.no_training_effect else tr.va_effect,
        "parts_mean": parts_mean, "parts_linked_shift": parts_linked_shift,
    }


def typical_levels(cfg: SimulationConfig) -> tuple[float, float]:
    """omega_bar (the productivity level at which a typical firm's value added is twice its wage
    bill at the reference price) and the stationary sd of omega."""
    p = cfg.production
    v_typ = 2.0 * p.typical_employment
    omega_bar = (math.log(v_typ) - p.beta_l * math.log(p.typical_employment)
                 - p.beta_k * math.log(p.typical_capital))
    sd_stat = p.sigma_xi / math.sqrt(1.0 - p.rho ** 2)
    return omega_bar, sd_stat


def simulate_cluster(spec: ClusterSpec, cfg: SimulationConfig, eff: dict[str, Any],
                     rng: np.random.Generator, srng: np.random.Generator,
                     female_share: float) -> ClusterRun:
    """Simulate one cluster's true economy (``rng``) and its attrition dates (``srng``)."""
    P = cfg.production
    E = cfg.entry
    S = cfg.schooling
    T = cfg.training
    phases = phase_schedule(spec, cfg.phases.stagnation_after)
    omega_bar, sd_stat = typical_levels(cfg)
    log_L_typ = math.log(P.typical_employment)
    log_K_typ = math.log(P.typical_capital)
    v_typ = 2.0 * P.typical_employment
    Q_ref = spec.n_scale * v_typ
    n_variants = len(spec.product_variants)
    phi = eff["imitation"]
    attrition = cfg.survey.attrition_rate if cfg.survey.enabled else 0.0

    st = _Store(FIRM_DTYPES, capacity=max(64, int(spec.n_scale * 3)))
    rec: dict[str, list[np.ndarray]] = {k: [] for k in YEAR_FIELDS}
    cy: dict[str, list[float]] = {k: [] for k in (
        "year", "phase", "log_price", "quality", "margin", "output", "n_firms", "n_entries",
        "n_exits", "innovator_share", "mu_entry")}
    log_price_prev = 0.0
    quality = 0.0
    margin_prev = E.margin_ref
    n_prev = 0
    rct_year: int | None = None
    if (spec.training and T.enabled and spec.expansion_years is None
            and spec.initiation_years + cfg.phases.stagnation_after + T.years_after_stagnation
            < spec.n_years - 1):
        rct_year = (spec.start_year + spec.initiation_years + cfg.phases.stagnation_after
                    + T.years_after_stagnation)

    for ti in range(spec.n_years):
        y = spec.start_year + ti
        phase = phases[ti]
        reg = regime_of(phase)
        a = st.a
        inc = np.flatnonzero(a["alive"][: st.n])          # incumbents (operating last year)

        # -- entry ----------------------------------------------------------------------------
        mu = 0.0
        if ti == 0:
            n_ent = spec.n_founders
        elif reg == "initiation":
            mu = E.founder_rate
            n_ent = int(rng.poisson(mu))
        else:
            mu = ((E.rate[reg] * n_prev + E.outside_rate[reg] * spec.n_scale)
                  * eff["entry_multiplier"] * math.exp(eff["theta"] * (margin_prev - E.margin_ref)))
            cap = E.max_growth * n_prev + 0.2 * spec.n_scale
            n_ent = int(min(rng.poisson(mu), cap))
        # -- incumbents: productivity, succession ------------------------------------------------
        if inc.size:
            xi = rng.normal(0.0, P.sigma_xi, inc.size)
            a["omega"][inc] = (P.rho * a["omega"][inc] + (1 - P.rho) * omega_bar
                               + eff["gain"][reg] * a["innov_prev"][inc] + xi)
            age = y - a["birth_f"][inc]
            eligible = (~a["has_succ"][inc]) & (age >= S.succession_age)
            draw = rng.random(inc.size) < S.succession_prob
            succ = inc[eligible & draw]
            if succ.size:
                k = succ.size
                a["has_succ"][succ] = True
                a["succ_year"][succ] = y
                a["schooling_s"][succ] = _clip_round(
                    rng.normal(eff["successor_mean"], S.successor_sd, k), 0, S.max_years)
                a["birth_s"][succ] = y - np.clip(np.rint(rng.normal(31, 4, k)), 20, 50).astype(int)
                a["female_s"][succ] = rng.random(k) < female_share
                a["exper_s"][succ] = np.clip(np.rint(rng.normal(6, 3, k)), 0, 40)
                a["occ_s"][succ] = rng.choice(len(SUCCESSOR_OCCUPATIONS), k, p=SUCCESSOR_OCCUPATION_P)
                a["mgmt_base"][succ] = (MGMT_BASE + 0.02 * (a["schooling_s"][succ] - 10)
                                        + rng.normal(0, 0.08, k))
        # -- entrants ----------------------------------------------------------------------------
        if n_ent > 0:
            s = st.grow(n_ent)
            a = st.a
            idx = np.arange(s.start, s.stop)
            probs = eff["origin"][reg][spec.product_complexity]
            origin = rng.choice(len(ORIGINS), n_ent, p=[probs[o] for o in ORIGINS]).astype(np.int8)
            is_spin = origin == O_SPINOFF
            if inc.size == 0:
                origin[is_spin] = ORIGINS.index("other")
                is_spin[:] = False
            parent = np.full(n_ent, -1, dtype=np.int64)
            z = rng.standard_normal(n_ent)
            omega0 = omega_bar + sd_stat * z
            variant = rng.integers(0, n_variants, n_ent)
            n_spin = int(is_spin.sum())
            if n_spin:
                w = np.maximum(a["L_prev"][inc], 1.0)
                par = rng.choice(inc, n_spin, p=w / w.sum())
                parent[is_spin] = par
                po = a["omega"][par]
                omega0[is_spin] = (omega_bar + phi * (po - omega_bar)
                                   + math.sqrt(max(0.0, 1 - phi ** 2)) * sd_stat * z[is_spin])
                inherit = rng.random(n_spin) < eff["inherit"]
                v = variant[is_spin]
                v[inherit] = a["variant"][par][inherit]
                variant[is_spin] = v
                a["parent_omega"][idx[is_spin]] = po
            a["parent_omega"][idx[~is_spin]] = np.nan
            a["entry_year"][s] = y
            a["entry_phase"][s] = PHASES.index(phase)
            a["origin"][s] = origin
            a["parent"][s] = parent
            a["variant"][s] = variant
            a["omega"][s] = omega0
            a["omega0"][s] = omega0
            shift = np.array([S.origin_shift[o] for o in ORIGINS])[origin]
            a["schooling_f"][s] = _clip_round(
                rng.normal(eff["school_mean"][reg] + shift, S.sd), 0, S.max_years)
            a["birth_f"][s] = y - np.clip(np.rint(rng.normal(36, 8, n_ent)), 18, 65).astype(int)
            a["female_f"][s] = rng.random(n_ent) < female_share
            exper_mean = np.array([2.0, 6.0, 8.0, 3.0])[origin]
            a["exper_f"][s] = np.clip(np.rint(rng.normal(exper_mean, 3.0)), 0, 50)
            occ = np.empty(n_ent, dtype=np.int8)
            occ[origin == 0] = 0
            occ[origin == 1] = 1
            occ[origin == 2] = 2
            oth = origin == 3
            occ[oth] = 3 + rng.choice(len(OTHER_OCCUPATIONS), int(oth.sum()), p=OTHER_OCCUPATION_P)
            a["occ_f"][s] = occ
            a["has_succ"][s] = False
            a["mgmt_base"][s] = MGMT_BASE + 0.02 * (a["schooling_f"][s] - 10) + rng.normal(0, 0.08, n_ent)
            a["K"][s] = P.typical_capital * np.exp(
                0.5 * (omega0 - omega_bar) - 0.3 + P.entrant_capital_sd * rng.standard_normal(n_ent))
            a["alive"][s] = True
            a["exit_year"][s] = 0
            a["innov_prev"][s] = False
            a["mgmt_gain"][s] = 0.0
            a["scale"][s] = 0.0
            if attrition > 0:
                a["attrit_year"][s] = y + srng.geometric(attrition, n_ent)
            else:
                a["attrit_year"][s] = np.iinfo(np.int32).max
        # -- the operating firms -------------------------------------------------------------
        firms = np.flatnonzero(a["alive"][: st.n])
        n = firms.size
        if rct_year is not None and y == rct_year and n:
            _assign_training(a, firms, y, T, eff["mgmt_effect"], rng)
        omega = a["omega"][firms]
        K = a["K"][firms]
        k = np.log(K)
        l_star = (log_L_typ + P.labour_omega * (omega - omega_bar) + P.labour_capital * (k - log_K_typ)
                  + P.labour_price * log_price_prev + a["scale"][firms]
                  + rng.normal(0, P.labour_shock_sd, n))
        L = np.maximum(1.0, np.rint(np.exp(l_star)))
        l = np.log(L)
        succeeded = a["has_succ"][firms]
        schooling = np.where(succeeded, a["schooling_s"][firms], a["schooling_f"][firms])
        # innovation items
        xs = schooling - cfg.innovation.schooling_center
        items = np.empty((n, N_ITEMS), dtype=bool)
        u = rng.random((n, N_ITEMS))
        for j, item in enumerate(INNOVATION_ITEMS):
            idx_ = eff["intercepts"][item][reg] + eff["slopes"][item][reg] * xs
            items[:, j] = u[:, j] < 1.0 / (1.0 + np.exp(-idx_))
        innovator = items[:, I_NEW_PRODUCT] | items[:, I_NEW_PROCESS]
        export_share = np.where(items[:, I_EXPORT], 100 * rng.beta(2.0, 3.0, n), 0.0)
        ind = rng.random(n) < cfg.institutions.indirect_export_prob[reg]
        indirect = np.where(ind, (100 - export_share) * rng.beta(1.0, 4.0, n), 0.0)
        linked = items[:, I_SUBCONTRACT] | items[:, I_VERTICAL]
        parts = np.clip(eff["parts_mean"][reg]
                        + eff["parts_linked_shift"] * linked * (reg == "quality_improvement")
                        + rng.normal(0, cfg.institutions.parts_market_sd, n), 0, 100)
        # training effects
        gain_m = a["mgmt_gain"][firms]
        mgmt_on = gain_m * (rct_year is not None and y > rct_year)
        va_shift = eff["va_effect"] * gain_m * (rct_year is not None and y >= (rct_year or 0) + T.va_lag)
        mgmt = np.clip(a["mgmt_base"][firms] + rng.normal(0, 0.04, n) + mgmt_on, 0, 1)
        # production
        planned = np.exp(P.beta_l * l + P.beta_k * k + omega)
        V = planned * np.exp(va_shift + rng.normal(0, P.sigma_eps, n))
        mc = P.material_ratio * planned
        ec = P.energy_ratio * planned
        lc = L * np.exp(rng.normal(0, 0.1, n))
        Q = float(V.sum())
        log_price = (eff["log_price_level"] + quality
                     - eff["inv_elasticity"] * math.log((Q + P.demand_choke * Q_ref) / Q_ref))
        price = math.exp(log_price)
        sales = price * V + mc + ec
        margin = float((sales.sum() - mc.sum() - ec.sum() - lc.sum()) / sales.sum())
        # exit
        eta = (eff["exit_baseline"][reg] + eff["exit_innovator"][reg] * innovator
               + cfg.exit.size_effect * (l - log_L_typ))
        exits = rng.random(n) < -np.expm1(-np.exp(eta))
        # investment
        rate = np.exp(P.invest_const + P.invest_omega * (omega - omega_bar))
        invest = K * rate * (rng.random(n) >= P.zero_investment_prob)
        # record
        rec["firm"].append(firms)
        rec["year"].append(np.full(n, y, dtype=np.int32))
        rec["phase"].append(np.full(n, PHASES.index(phase), dtype=np.int8))
        rec["omega"].append(omega.copy())
        rec["L"].append(L)
        rec["K"].append(K.copy())
        rec["V"].append(V)
        rec["mc"].append(mc)
        rec["ec"].append(ec)
        rec["lc"].append(lc)
        rec["invest"].append(invest)
        rec["items"].append(items)
        rec["export_share"].append(export_share)
        rec["indirect_share"].append(indirect)
        rec["parts_share"].append(parts)
        rec["mgmt"].append(mgmt)
        rec["exit"].append(exits)
        rec["schooling"].append(schooling)
        rec["generation"].append(np.where(succeeded, 2, 1).astype(np.int8))
        rec["innovator"].append(innovator)
        rec["price"].append(np.full(n, price))
        rec["va_shift"].append(va_shift)
        # state for next year
        a["K"][firms] = (1 - P.depreciation) * K + invest
        a["L_prev"][firms] = L
        a["innov_prev"][firms] = innovator
        a["scale"][firms] += eff["innovator_growth"][reg] * innovator
        gone = firms[exits]
        a["alive"][gone] = False
        a["exit_year"][gone] = y
        innov_share = float(innovator.mean()) if n else 0.0
        for key, val in (("year", y), ("phase", phase), ("log_price", log_price),
                         ("quality", quality), ("margin", margin), ("output", Q),
                         ("n_firms", n), ("n_entries", n_ent), ("n_exits", int(exits.sum())),
                         ("innovator_share", innov_share), ("mu_entry", mu)):
            cy[key].append(val)
        if reg == "quality_improvement":
            quality += eff["quality_gain"] * innov_share
        log_price_prev = log_price
        margin_prev = margin
        n_prev = n - int(exits.sum())

    years = {}
    for key, parts_ in rec.items():
        years[key] = np.concatenate(parts_) if parts_ else np.zeros(0)
    if years["items"].size == 0:
        years["items"] = np.zeros((0, N_ITEMS), dtype=bool)
    return ClusterRun(spec=spec, phases=phases, firms=st.view(),
                      years=years, cluster_year={k: np.asarray(v) for k, v in cy.items()},
                      rct_year=rct_year)


def _assign_training(a: dict[str, np.ndarray], firms: np.ndarray, y: int, T: Any,
                     mgmt_effect: float, rng: np.random.Generator) -> None:
    """Stratified complete randomization among all operating firms of the cluster (the
    experiment recruits from a listing of the cluster, so survey attrition does not decide who
    is in it; firms that later attrit are simply unobserved afterwards)."""
    sample = firms
    if sample.size < 2 * T.n_strata:
        return
    size = a["L_prev"][sample]
    # strata: employment quantile groups (ties broken by a random key)
    order = np.lexsort((rng.random(sample.size), size))
    ranks = np.empty(sample.size, dtype=np.int64)
    ranks[order] = np.arange(sample.size)
    stratum = (ranks * T.n_strata // sample.size).astype(np.int8)
    treated = np.zeros(sample.size, dtype=bool)
    for h in range(T.n_strata):
        members = np.flatnonzero(stratum == h)
        n_t = round(T.share_treated * members.size)
        treated[rng.permutation(members)[:n_t]] = True
    attended = treated & (rng.random(sample.size) < T.takeup)
    share = np.where(attended, rng.beta(T.attendance_a, T.attendance_b, sample.size), 0.0)
    a["in_rct"][sample] = True
    a["stratum"][sample] = stratum
    a["treated"][sample] = treated
    a["attended"][sample] = attended
    a["attend_share"][sample] = share
    a["mgmt_gain"][sample] = mgmt_effect * share
