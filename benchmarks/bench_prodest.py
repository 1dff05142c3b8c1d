"""Benchmark: production-function estimators on known designs, timing, and the demo universe.

1. Monte Carlo tables. Every estimator of ``prodest`` on the designs of
   :mod:`cluster_econ.estimate.production.montecarlo` (Ackerberg-Caves-Frazer DGP1-3 with and
   without 10% measurement error in materials, the proxy world, the proxy world with
   Olley-Pakes exit, the gross-output world): mean estimate, its Monte Carlo s.e., bias, s.d.,
   and how many replications were declined (no admissible root, or competing roots).
2. Time per fit and per bootstrap draw of each method on the demo universe (about 45,000
   firm-years), and of the survey entry point ``estimate_productivity``.
3. Recovery on the demo universe (truth: labour 0.6, capital 0.3) with survey realism on and off.

There is no Python peer for these estimators; R's ``prodest`` is not installable here (not in
Debian, no CRAN access) and Stata is absent, so no ratio is printed: times are absolute.

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
    for method in ("dynamic", "acf", "lp", "op", "wrdg"):
        t0 = time.perf_counter()
        est = estimate_productivity(demo, method=method)
        t_fit = time.perf_counter() - t0
        per_draw = float("nan")
        if est.accepted and a.boot:
            t0 = time.perf_counter()
            estimate_productivity(demo, method=method, bootstrap=a.boot, seed=1)
            per_draw = (time.perf_counter() - t0 - t_fit) / a.boot
        el = est.elasticities
        lab = f"{el['log_employment']:.3f}" if est.accepted else "-"
        cap = f"{el['log_capital']:.3f}" if est.accepted else "-"
        status = est.status if est.accepted else "declined: " + est.reason[:80]
        print(f"| {method} | {lab} | {cap} | {status} | {t_fit:.2f} | {per_draw:.3f} |")
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
    print(f"\ntotal {time.perf_counter() - t_all:.0f} s")


if __name__ == "__main__":
    main()
