"""Left-to-right Gaussian hidden Markov model of the phases.

Model
-----
Each cluster is a sequence of hidden states ``s_t`` in {0, 1, 2} (read as initiation, quantity
expansion, quality improvement once labelled) that can only stay or move one step forward:
``P(s_t = j | s_{t-1} = i) = a_ij`` with ``a_ij = 0`` unless ``j in {i, i + 1}``. The observed
vector ``x_t`` of standardised phase signals is Gaussian with a diagonal covariance given the
state, ``x_t | s_t = k ~ N(mu_k, diag(sigma2_k))``; a missing component is left out of the
likelihood (integrated out). The initial distribution is free, so a cluster first observed in
the middle of its expansion starts there. All clusters share the parameters.

Estimation is by EM (Baum-Welch) in log space; zero transition probabilities stay zero under
EM, which keeps the chain left to right. Several starts are run and the one with the highest
log-likelihood is kept: the first from the labels of the rule-based method (or an even split of
every sequence into consecutive thirds), the others perturbed with a seeded generator. The
output gives smoothed state probabilities (forward-backward) and the Viterbi path.

Naming the states. The chain's order is the phases' order, so states receive phases in that
order: each state's emission means (in the signals' own units) are scored with the rule-based
evidence of :mod:`cluster_econ.phases.rules`, and the minimum-cost non-decreasing assignment of
phases to states 0, 1, 2 is chosen (cost: expected years in the state times its score margin).
Two states may share a phase; a state whose mean innovation share is below
``quality_min_innovation`` is never quality improvement. A decoded path therefore never goes
backwards and no relabelling is needed after decoding.

Decoding. The label of a year is the phase of its state on the Viterbi path (the most probable
state sequence of the cluster). Beside it the output gives the posterior marginals
``p_<phase> = P(s_t in phase | x)`` (forward-backward, summed over the states of a phase),
``p_label`` (the marginal of the labelled phase; stagnation counts as quantity expansion) and,
per cluster in ``diagnostics["clusters"]``, the posterior probability of the whole path
``P(path | x) = exp(log p(path, x) - log p(x))``, which can never exceed the ``p_label`` of any
of its years. The Viterbi label can have a lower marginal than another phase (a most probable
sequence is not a sequence of most probable years); ``n_label_below_marginal_max`` counts such
years. A cluster that never reaches quality improvement and stays in expansion for more than
``stagnation_years`` years is then reported as stagnation from that year on, and a label whose
defining signals were not observed becomes ``unknown`` (:mod:`cluster_econ.phases.requirements`).

Why hand-written: hmmlearn (the well-kept Python HMM library) can hold a left-to-right structure
only through initial zeros in its transition matrix and has no way to leave missing signal
components out of the likelihood; it would also add scikit-learn as a dependency. The model
here is small (three states, a handful of signals) and the tests compare its forward algorithm
to brute-force enumeration and, where installed, its fit to hmmlearn's.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd

from cluster_econ.errors import ConfigError, EstimationError
from cluster_econ.phases.requirements import label_rows, parse_requirements
from cluster_econ.phases.result import LABELS, PhaseResult, apply_stagnation, ordered_path
from cluster_econ.phases.rules import RulesConfig, evidence, phase_scores
from cluster_econ.phases.signals import compute_signals, prepare_cluster_year, smooth

__all__ = ["GaussianLeftRightHMM", "HMMConfig", "detect_hmm"]


def _lse(a: np.ndarray, axis: int) -> np.ndarray:
    """log(sum(exp(a))) along an axis, safe for rows that are all -inf."""
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(a - m), axis=axis)) + np.squeeze(m, axis=axis)

DEFAULT_SIGNALS = ("rel_size", "firm_growth", "net_entry", "price_trend", "productivity_trend",
                   "innovation", "institutions", "exit_rate")


@dataclass(frozen=True)
class HMMConfig:
    """Settings of the HMM phase detection.

    Attributes
    ----------
    signals : tuple of str
        Signals used as emissions (those available are used).
    window : int
        Centred moving average applied to the signals first (1: none).
    n_init : int
        EM starts; the best log-likelihood wins.
    max_iter : int
        EM iterations per start.
    tol : float
        Stop when the log-likelihood improves by less than this.
    min_var : float
        Floor on the emission variances (of standardised signals).
    seed : int
        Seed of the numpy Generator used for the perturbed starts.
    stagnation_years : int or None
        See :func:`cluster_econ.phases.result.apply_stagnation`.
    quality_min_innovation : float or None
        A three-state model always finds a third state; the state named quality improvement is
        kept only if its mean innovation share (unstandardised) reaches this level, otherwise
        its years are reported as quantity expansion (None: no check).
    init : {"rules", "split"}
        Starting values: from the rule-based labels (default) or from splitting each cluster's
        years into consecutive thirds.
    rules : RulesConfig
        Thresholds with which the states' emission means are scored to name the states.
    requirements : mapping or None
        Signals each phase label needs (None: the defaults of
        :mod:`cluster_econ.phases.requirements`).
    """

    signals: tuple[str, ...] = DEFAULT_SIGNALS
    window: int = 1
    n_init: int = 5
    max_iter: int = 200
    tol: float = 1e-6
    min_var: float = 1e-3
    seed: int = 0
    stagnation_years: int | None = 14
    init: str = "rules"
    quality_min_innovation: float | None = 0.15
    rules: RulesConfig = field(default_factory=RulesConfig)
    requirements: dict | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "requirements", parse_requirements(self.requirements))
        if self.init not in ("rules", "split"):
            raise ConfigError(f"phases hmm: init must be 'rules' or 'split', got {self.init!r}")
        if self.n_init < 1 or self.max_iter < 1:
            raise ConfigError("phases hmm: n_init and max_iter must be positive")
        if self.min_var <= 0:
            raise ConfigError("phases hmm: min_var must be positive")
        if not isinstance(self.seed, int | np.integer) or self.seed < 0:
            raise ConfigError(f"phases hmm: seed must be a non-negative integer, got {self.seed!r}")

    @classmethod
    def from_mapping(cls, mapping: dict | None) -> HMMConfig:
        mapping = dict(mapping or {})
        bad = set(mapping) - set(cls.__dataclass_fields__)
        if bad:
            raise ConfigError(f"phases hmm: unknown keys {sorted(bad)}")
        if "signals" in mapping:
            mapping["signals"] = tuple(mapping["signals"])
        if "rules" in mapping and not isinstance(mapping["rules"], RulesConfig):
            mapping["rules"] = RulesConfig.from_mapping(mapping["rules"])
        return cls(**mapping)


# ---------------------------------------------------------------------------------------------
class GaussianLeftRightHMM:
    """Gaussian HMM with diagonal covariances and stay-or-advance transitions.

    Parameters
    ----------
    n_states : int
        Number of ordered states.
    allowed : array of bool, shape (K, K), optional
        Allowed transitions; default: stay or move one state forward.
    """

    def __init__(self, n_states: int = 3, allowed: np.ndarray | None = None) -> None:
        K = n_states
        if allowed is None:
            allowed = np.eye(K, dtype=bool) | np.eye(K, k=1, dtype=bool)
        self.K = K
        self.allowed = np.asarray(allowed, dtype=bool)
        self.startprob: np.ndarray | None = None
        self.transmat: np.ndarray | None = None
        self.means: np.ndarray | None = None
        self.vars: np.ndarray | None = None
        self.loglik: float = -np.inf
        self.n_iter: int = 0
        self.converged: bool = False

    # -- likelihood pieces -----------------------------------------------------------------------
    def log_emission(self, X: np.ndarray) -> np.ndarray:
        """``log p(x_t | s_t = k)``, shape (T, K); missing components are left out."""
        ok = np.isfinite(X)
        Xz = np.where(ok, X, 0.0)
        out = np.empty((X.shape[0], self.K))
        for k in range(self.K):
            ll = -0.5 * (np.log(2 * np.pi * self.vars[k]) + (Xz - self.means[k]) ** 2 / self.vars[k])
            out[:, k] = np.where(ok, ll, 0.0).sum(axis=1)
        return out

    def _logA(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(np.where(self.allowed, self.transmat, 0.0))

    def forward_backward(self, logB: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Log-likelihood, posterior state probabilities (T, K) and summed pair posteriors."""
        ll, gamma, xi = self.forward_backward_batch(logB[None])
        return float(ll[0]), gamma[0], xi

    def forward_backward_batch(self, logB: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Forward-backward in log space for S sequences of equal length at once.

        ``logB`` has shape (S, T, K). Returns the log-likelihoods (S,), the posterior state
        probabilities (S, T, K) and the pair posteriors summed over sequences and time (K, K).
        """
        S, T, K = logB.shape
        logA = self._logA()
        with np.errstate(divide="ignore"):
            logpi = np.log(self.startprob)
        la = np.empty((S, T, K))
        lb = np.zeros((S, T, K))
        la[:, 0] = logpi[None, :] + logB[:, 0]
        for t in range(1, T):
            la[:, t] = _lse(la[:, t - 1, :, None] + logA[None], axis=1) + logB[:, t]
        for t in range(T - 2, -1, -1):
            lb[:, t] = _lse(logA[None] + (logB[:, t + 1] + lb[:, t + 1])[:, None, :], axis=2)
        ll = _lse(la[:, -1], axis=1)
        gamma = np.exp(la + lb - ll[:, None, None])
        if T > 1:
            m = (la[:, :-1, :, None] + logA[None, None] + (logB[:, 1:] + lb[:, 1:])[:, :, None, :]
                 - ll[:, None, None, None])
            xi = np.exp(m).sum(axis=(0, 1))
        else:
            xi = np.zeros((K, K))
        return ll, gamma, xi

    def viterbi(self, logB: np.ndarray, return_logprob: bool = False
                ) -> np.ndarray | tuple[np.ndarray, float]:
        """Most probable state sequence (and, if asked, its log joint probability with the
        observations, ``log p(path, x)``; minus the log-likelihood it is ``log P(path | x)``)."""
        T, K = logB.shape
        logA = self._logA()
        with np.errstate(divide="ignore"):
            d = np.log(self.startprob) + logB[0]
        back = np.zeros((T, K), dtype=int)
        for t in range(1, T):
            m = d[:, None] + logA
            back[t] = m.argmax(axis=0)
            d = m.max(axis=0) + logB[t]
        path = np.empty(T, dtype=int)
        path[-1] = int(d.argmax())
        for t in range(T - 1, 0, -1):
            path[t - 1] = back[t, path[t]]
        if return_logprob:
            return path, float(d.max())
        return path

    # -- EM ----------------------------------------------------------------------------------------
    def _init_params(self, seqs: list[np.ndarray], rng: np.random.Generator | None) -> None:
        K = self.K
        D = seqs[0].shape[1]
        sums = np.zeros((K, D))
        sq = np.zeros((K, D))
        cnt = np.zeros((K, D))
        for X in seqs:
            T = X.shape[0]
            cut = np.minimum((np.arange(T) * K) // max(T, 1), K - 1)
            if rng is not None:
                # perturb the split points of each sequence
                shift = rng.integers(-max(T // 6, 1), max(T // 6, 1) + 1)
                cut = np.minimum(np.maximum((np.arange(T) + shift) * K // max(T, 1), 0), K - 1)
            for k in range(K):
                sel = X[cut == k]
                ok = np.isfinite(sel)
                sums[k] += np.where(ok, sel, 0).sum(0)
                sq[k] += np.where(ok, sel**2, 0).sum(0)
                cnt[k] += ok.sum(0)
        cnt = np.maximum(cnt, 1)
        self.means = sums / cnt
        self.vars = np.maximum(sq / cnt - self.means**2, 0.1)
        if rng is not None:
            self.means = self.means + rng.normal(0, 0.1, size=self.means.shape)
        self.startprob = np.full(K, 1.0 / K)
        A = np.where(self.allowed, 1.0, 0.0)
        A[self.allowed & ~np.eye(K, dtype=bool)] = 0.1
        A[np.eye(K, dtype=bool)] = 0.9
        A[K - 1, K - 1] = 1.0
        self.transmat = A / A.sum(axis=1, keepdims=True)

    def _init_from_labels(self, seqs: list[np.ndarray], labels: list[np.ndarray],
                          rng: np.random.Generator | None) -> None:
        K = self.K
        X = np.vstack(seqs)
        lab = np.concatenate(labels)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            allm = np.nanmean(np.where(np.isfinite(X), X, np.nan), axis=0)
        allm = np.where(np.isfinite(allm), allm, 0.0)
        self.means = np.tile(allm, (K, 1))
        self.vars = np.ones((K, X.shape[1]))
        for k in range(K):
            sel = X[lab == k]
            if len(sel):
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore", RuntimeWarning)
                    m = np.nanmean(np.where(np.isfinite(sel), sel, np.nan), axis=0)
                    v = np.nanvar(np.where(np.isfinite(sel), sel, np.nan), axis=0)
                self.means[k] = np.where(np.isfinite(m), m, allm)
                self.vars[k] = np.where(np.isfinite(v), np.maximum(v, 0.05), 1.0)
        if rng is not None:
            self.means = self.means + rng.normal(0, 0.25, size=self.means.shape)
        counts = np.where(self.allowed, 1.0, 0.0)       # one pseudo-count per allowed move
        start = np.ones(K)
        for lab_i in labels:
            start[lab_i[0]] += 1
            for a, b in itertools.pairwise(lab_i):
                if self.allowed[a, b]:
                    counts[a, b] += 1
        self.startprob = start / start.sum()
        self.transmat = counts / counts.sum(axis=1, keepdims=True)

    def _em(self, seqs: list[np.ndarray], max_iter: int, tol: float, min_var: float) -> None:
        K = self.K
        prev = -np.inf
        self.converged = False
        by_len: dict[int, list[np.ndarray]] = {}
        for X in seqs:
            by_len.setdefault(X.shape[0], []).append(X)
        batches = [np.stack(v) for v in by_len.values()]
        for it in range(1, max_iter + 1):
            total = 0.0
            s_pi = np.zeros(K)
            s_xi = np.zeros((K, K))
            D = seqs[0].shape[1]
            w = np.zeros((K, D))
            wx = np.zeros((K, D))
            wxx = np.zeros((K, D))
            for Xb in batches:
                Sb, Tb, Db = Xb.shape
                logB = self.log_emission(Xb.reshape(Sb * Tb, Db)).reshape(Sb, Tb, K)
                ll, gamma, xi = self.forward_backward_batch(logB)
                total += float(ll.sum())
                s_pi += gamma[:, 0].sum(axis=0)
                s_xi += xi
                X = Xb.reshape(Sb * Tb, Db)
                g = gamma.reshape(Sb * Tb, K)
                ok = np.isfinite(X)
                Xz = np.where(ok, X, 0.0)
                w += g.T @ ok.astype(float)
                wx += g.T @ Xz
                wxx += g.T @ (Xz**2)
            self.loglik = total
            self.n_iter = it
            if total - prev < tol * max(1.0, abs(total)) and it > 1:
                self.converged = True
                break
            prev = total
            self.startprob = s_pi / s_pi.sum()
            s_xi = np.where(self.allowed, s_xi, 0.0)
            rows = s_xi.sum(axis=1, keepdims=True)
            A = np.where(rows > 0, s_xi / np.where(rows > 0, rows, 1.0), self.transmat)
            self.transmat = A
            wsafe = np.maximum(w, 1e-12)
            means = np.where(w > 1e-9, wx / wsafe, self.means)
            var = np.where(w > 1e-9, wxx / wsafe - means**2, self.vars)
            self.means = means
            self.vars = np.maximum(var, min_var)

    def fit(self, seqs: list[np.ndarray], n_init: int = 5, max_iter: int = 200, tol: float = 1e-6,
            min_var: float = 1e-3, seed: int = 0,
            init_labels: list[np.ndarray] | None = None) -> GaussianLeftRightHMM:
        """Fit by EM from ``n_init`` starts; keeps the best log-likelihood.

        The first start takes its parameters from ``init_labels`` (one integer state sequence
        per sequence) if given, else from splitting every sequence into consecutive equal
        parts; later starts perturb that with a Generator seeded by ``seed``.
        """
        if not seqs:
            raise EstimationError("the HMM needs at least one sequence")
        rng = np.random.default_rng(seed)
        best = None
        for i in range(n_init):
            if init_labels is not None:
                self._init_from_labels(seqs, init_labels, None if i == 0 else rng)
            else:
                self._init_params(seqs, None if i == 0 else rng)
            self._em(seqs, max_iter, tol, min_var)
            if best is None or self.loglik > best[0] + 1e-9:
                best = (self.loglik, self.startprob.copy(), self.transmat.copy(),
                        self.means.copy(), self.vars.copy(), self.n_iter, self.converged, i)
        (self.loglik, self.startprob, self.transmat, self.means, self.vars, self.n_iter,
         self.converged, self.best_start) = best
        return self


def _name_states(means: pd.DataFrame, occupancy: np.ndarray, rules: RulesConfig,
                 quality_min_innovation: float | None) -> tuple[np.ndarray, pd.DataFrame]:
    """Phase of each chain state, in the chain's order.

    ``means`` are the emission means in the signals' own units (one row per state). Each state
    is scored with the rule-based evidence (:func:`cluster_econ.phases.rules.phase_scores`), and
    the states receive phases by the minimum-cost non-decreasing assignment
    (:func:`~cluster_econ.phases.result.ordered_path`), the cost of a phase for a state being the
    expected number of years in the state times its score margin. Because the chain can only
    stay or move forward, a non-decreasing assignment is the only one under which every decoded
    path is a valid phase sequence; two states may share a phase (a chain that starts in the
    middle of expansion, say). A state whose mean innovation share is below
    ``quality_min_innovation`` cannot be quality improvement.
    """
    scores = phase_scores(evidence(means, rules), rules)
    S = scores.to_numpy()
    cost = np.maximum(occupancy, 1e-9)[:, None] * (S.max(axis=1, keepdims=True) - S)
    if quality_min_innovation is not None and "innovation" in means:
        low = (means["innovation"] < quality_min_innovation).to_numpy()
        cost[low, 2] = 1e12
    mapping = ordered_path(cost)
    scores.index = [f"state {k}" for k in range(len(means))]
    return mapping, scores


def detect_hmm(data: object, config: HMMConfig | dict | None = None) -> PhaseResult:
    """Phases by a left-to-right Gaussian HMM; see the module docstring for the model."""
    if config is None:
        cfg = HMMConfig()
    elif isinstance(config, HMMConfig):
        cfg = config
    else:
        cfg = HMMConfig.from_mapping(config)
    cy = prepare_cluster_year(data)
    raw = compute_signals(cy)
    use = [s for s in cfg.signals if s in raw.columns]
    if not use:
        raise EstimationError(f"none of the HMM signals ({', '.join(cfg.signals)}) can be "
                              "computed from this cluster_year table")
    sm = smooth(raw[use], cy["cluster_id"], int(cfg.window))
    mu = sm.mean()
    sd = sm.std(ddof=0).replace(0, 1.0)
    Z = ((sm - mu) / sd).to_numpy()
    groups = cy.groupby("cluster_id", sort=False).indices
    order = [np.sort(ix) for ix in groups.values()]
    seqs = [Z[ix] for ix in order]
    init_labels = None
    if cfg.init == "rules":
        from cluster_econ.phases.rules import detect_rules
        ph = detect_rules(cy).cluster_year["candidate_phase"].map(
            {"initiation": 0, "quantity_expansion": 1, "stagnation": 1,
             "quality_improvement": 2}).to_numpy()
        init_labels = [ph[ix].astype(int) for ix in order]
    model = GaussianLeftRightHMM(3).fit(seqs, n_init=cfg.n_init, max_iter=cfg.max_iter,
                                        tol=cfg.tol, min_var=cfg.min_var, seed=cfg.seed,
                                        init_labels=init_labels)
    gammas = []
    paths = []
    cluster_rows = []
    for cid, ix, X in zip(groups.keys(), order, seqs, strict=True):
        logB = model.log_emission(X)
        ll, gamma, _ = model.forward_backward(logB)
        path, log_joint = model.viterbi(logB, return_logprob=True)
        gammas.append(gamma)
        paths.append(path)
        cluster_rows.append({"cluster_id": cid, "years": len(ix), "loglik": ll,
                             "path_log_probability": log_joint - ll,
                             "path_probability": float(np.exp(min(log_joint - ll, 0.0)))})
    occupancy = sum(g.sum(axis=0) for g in gammas)
    means = pd.DataFrame(model.means * sd.to_numpy() + mu.to_numpy(), columns=use)
    mapping, state_scores = _name_states(means, occupancy, cfg.rules,
                                         cfg.quality_min_innovation)
    probs = np.zeros((len(cy), 3))
    vit = np.zeros(len(cy), dtype=int)
    final = np.zeros(len(cy), dtype=int)
    for ix, gamma, path in zip(order, gammas, paths, strict=True):
        for k in range(3):
            probs[ix, mapping[k]] += gamma[:, k]
        vit[ix] = path
        final[ix] = apply_stagnation(mapping[path], cfg.stagnation_years)
    names = np.array(LABELS)
    phase, reason, req_diag = label_rows(cy, raw, final, cfg.requirements)
    group_of = np.where(final == 3, 1, final)            # stagnation is expansion in the chain
    p_label = probs[np.arange(len(cy)), group_of]
    out = cy[["cluster_id", "year"]].copy()
    out["phase"] = phase
    out["candidate_phase"] = names[final]
    out["unknown_reason"] = reason
    out["viterbi"] = vit
    for k in range(3):
        out[f"p_{LABELS[k]}"] = probs[:, k]
    out["p_label"] = p_label
    for col in use:
        out[col] = raw[col].to_numpy()
    prob_df = out[["cluster_id", "year", *[f"p_{LABELS[k]}" for k in range(3)], "p_label"]].copy()
    clusters = pd.DataFrame(cluster_rows)
    clusters["min_p_label"] = pd.Series(p_label).groupby(
        cy["cluster_id"].to_numpy(), sort=False).min().reindex(clusters["cluster_id"]).to_numpy()
    emis = means.copy()
    emis.index = [f"state {k} ({LABELS[mapping[k]]})" for k in range(3)]
    diag = {
        "signals": use,
        "decoding": "viterbi",
        "loglik": model.loglik,
        "n_iter": model.n_iter,
        "converged": model.converged,
        "best_start": int(model.best_start),
        "startprob": model.startprob.tolist(),
        "transmat": model.transmat.tolist(),
        "emission_means": emis,
        "state_scores": state_scores,
        "state_to_phase": {int(k): LABELS[int(v)] for k, v in enumerate(mapping)},
        "quality_state_supported": bool((mapping == 2).any()),
        "clusters": clusters,
        "n_label_below_marginal_max": int((p_label < probs.max(axis=1) - 1e-12).sum()),
        "standardisation": pd.DataFrame({"mean": mu, "sd": sd}),
        "n_stagnation": int((final == 3).sum()),
        **req_diag,
    }
    return PhaseResult(method="hmm", cluster_year=out, diagnostics=MappingProxyType(diag),
                       config=cfg, probabilities=prob_df)
