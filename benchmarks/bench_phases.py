"""Time phase detection and its numerics against peers, in one process.

* ``structural_breaks`` (Bai-Perron dynamic programme, given number of breaks) against
  ``ruptures.Dynp`` with the l2 cost (the same optimal segmentation);
* the left-to-right HMM's EM against ``hmmlearn.GaussianHMM`` (diagonal covariances, the same
  starting values, zeros in the transition matrix kept by EM), same iterations;
* ``cluster_econ.phases.detect`` with each method on the demo universe (absolute times, and the
  share of cluster-years labelled right against the demo's true phases, with the number labelled
  ``unknown``), and ``compare`` of the three methods (time, pooled Cohen's kappa per pair);
* the signal check (``unknown`` where a phase's signals are missing) on a cluster_year table of
  100 clusters x 30 years without innovation data (time of the check alone).

Run: ``python benchmarks/bench_phases.py``. Peers that are not installed are skipped.
"""

from __future__ import annotations

import time

import numpy as np


def _best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_breaks() -> None:
    from cluster_econ.phases import structural_breaks
    try:
        import ruptures as rpt
    except ImportError:
        print("breaks: ruptures not installed, skipped")
        return
    rng = np.random.default_rng(0)
    for n in (100, 300):
        y = np.r_[rng.normal(0, 1, n // 3), rng.normal(1, 1, n // 3),
                  rng.normal(-1, 1, n - 2 * (n // 3))]
        h = max(int(0.1 * n), 2)
        ours = _best(lambda y=y, h=h: structural_breaks(y, h=h, breaks=3, max_breaks=3))
        peer = _best(lambda y=y, h=h: rpt.Dynp(model="l2", min_size=h, jump=1).fit(y)
                     .predict(n_bkps=3))
        same = (structural_breaks(y, h=h, breaks=3, max_breaks=3).positions
                == rpt.Dynp(model="l2", min_size=h, jump=1).fit(y).predict(n_bkps=3)[:-1])
        print(f"breaks n={n}: cluster_econ {ours * 1e3:.1f} ms, ruptures {peer * 1e3:.1f} ms, "
              f"ratio {ours / peer:.2f} (same breaks: {same})")


def bench_hmm() -> None:
    from cluster_econ.phases.hmm import GaussianLeftRightHMM
    try:
        from hmmlearn import hmm
    except ImportError:
        print("hmm: hmmlearn not installed, skipped")
        return
    rng = np.random.default_rng(1)
    means = np.array([[-1.0, 0.0, 0.5], [0.5, 1.0, -0.5], [2.0, -1.0, 1.0]])
    A = np.array([[0.9, 0.1, 0.0], [0.0, 0.9, 0.1], [0.0, 0.0, 1.0]])
    seqs = []
    for _ in range(12):
        s, xs = 0, []
        for _t in range(30):
            xs.append(rng.normal(means[s], 1.0))
            s = rng.choice(3, p=A[s])
        seqs.append(np.array(xs))
    iters = 50

    def ours() -> None:
        m = GaussianLeftRightHMM(3)
        m._init_params(seqs, None)
        m._em(seqs, iters, 0.0, 1e-3)

    init = GaussianLeftRightHMM(3)
    init._init_params(seqs, None)

    def peer() -> None:
        m = hmm.GaussianHMM(3, covariance_type="diag", n_iter=iters, tol=0.0, init_params="",
                            min_covar=1e-3)
        m.startprob_, m.transmat_ = init.startprob.copy(), init.transmat.copy()
        m.means_, m.covars_ = init.means.copy(), init.vars.copy()
        m.fit(np.vstack(seqs), lengths=[len(s) for s in seqs])

    a, b = _best(ours), _best(peer)
    print(f"hmm EM, 12 x 30 x 3, {iters} iterations: cluster_econ {a * 1e3:.0f} ms, hmmlearn "
          f"{b * 1e3:.0f} ms, ratio {a / b:.2f}")


def bench_detect() -> None:
    import warnings

    from cluster_econ import datasets, phases
    full = datasets.demo().with_cluster_year().cluster_year
    cy = full.drop(columns="phase")
    for method in ("rules", "breaks", "hmm"):
        t = _best(lambda method=method: phases.detect(cy, method=method), repeat=2)
        res = phases.detect(cy, method=method)
        acc = phases.accuracy(res, full)
        print(f"detect {method} on the demo (360 cluster-years): {t * 1e3:.0f} ms; right "
              f"{acc.overall:.3f}, start-year MAE {acc.start_mae:.2f}, unknown {acc.n_unknown}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", phases.PhaseAgreementWarning)
        t = _best(lambda: phases.compare(cy), repeat=2)
        cmp = phases.compare(cy)
    kappas = ", ".join(f"{r.method_a}-{r.method_b} {r.kappa:.3f}" for r in cmp.overall.itertuples())
    print(f"compare rules/breaks/hmm on the demo: {t * 1e3:.0f} ms; pooled kappa {kappas}; "
          f"{len(cmp.messages)} low-agreement warnings")


def bench_signal_check() -> None:
    from cluster_econ.phases.requirements import DEFAULT_REQUIREMENTS, label_rows
    from cluster_econ.phases.signals import compute_signals, prepare_cluster_year
    from cluster_econ.phases.synthetic import synthetic_cluster_year
    plans = [[("initiation", 6), ("quantity_expansion", 12), ("quality_improvement", 12)]] * 100
    cy = prepare_cluster_year(synthetic_cluster_year(plans, seed=0).drop(
        columns=["phase", "share_new_product", "share_new_process"]))
    sig = compute_signals(cy)
    cand = np.repeat([[0] * 6 + [1] * 12 + [2] * 12], 100, axis=0).ravel()
    t = _best(lambda: label_rows(cy, sig, cand, DEFAULT_REQUIREMENTS))
    n_unknown = label_rows(cy, sig, cand, DEFAULT_REQUIREMENTS)[2]["n_unknown"]
    print(f"signal check, {len(cy)} cluster-years without innovation: {t * 1e3:.0f} ms "
          f"({n_unknown} unknown)")


if __name__ == "__main__":
    bench_breaks()
    bench_hmm()
    bench_detect()
    bench_signal_check()
