"""Production functions: Olley-Pakes, Levinsohn-Petrin, Ackerberg-Caves-Frazer, Wooldridge,
Gandhi-Navarro-Rivers and a dynamic panel, and log productivity for survey data.

The model. For enterprise ``i`` in year ``t`` (logs; value added, Cobb-Douglas)::

    y_it = b_f' f_it + b_s' s_it + omega_it + eps_it
    omega_it = g(omega_i,t-1) + h' z_i,t-1 + xi_it

``f`` are *free* inputs (labour: chosen when, or after, ``omega_t`` is known), ``s`` *state*
inputs (capital: chosen a year ahead), ``eps`` a shock (and measurement error) the firm does not
know when it chooses inputs, ``xi`` the news in productivity. ``g`` is linear (AR(1)) or a
polynomial; ``z`` are law-of-motion controls (``lom_controls``: last year's innovation, cluster
dummies). Lags follow calendar years; rows without the needed lag are counted, never bridged.

Methods (:func:`prodest`; one module per step: ``sample``, ``first_stage``, the second stages
``markov`` / ``olley_pakes`` / ``wooldridge``, ``bootstrap``, ``estimator``):

- ``"acf"`` (Ackerberg, Caves and Frazer 2015): ``Phi = E[y | f, s, materials]`` by a polynomial,
  then GMM on ``xi(b)`` with instruments ``s_t``, ``f_t-1``, ``s_t-1`` (and ``lag_instruments``).
- ``"lp"`` / ``"op"`` (Levinsohn-Petrin 2003; Olley-Pakes 1996): ``b_f`` from the first stage,
  ``b_s`` by non-linear least squares; ``exit=`` turns on the Olley-Pakes selection correction
  (survival probability in the law of motion).
- ``"wrdg"`` (Wooldridge 2009): both equations at once by linear two-step GMM, analytic
  cluster-robust covariance (matches linearmodels' IVGMM to 1e-6).
- ``"gnr"`` (Gandhi, Navarro and Rivers 2020): gross output; the flexible input's elasticity
  from its revenue-share equation, the rest from the Markov moments.
- ``"dynamic"``: a dynamic panel (the common-factor model of Blundell and Bond 2000 in levels):
  ACF's timing moments on output itself, no proxy inversion, instruments dated ``t-1`` (free
  inputs) and ``t-2`` (everything), so serially independent measurement error in money values
  leaves it consistent.

Roots. GMM on the law of motion can have several roots; the estimators search from OLS, LP and
Wooldridge estimates and a grid, and keep a root only if its moments are zero within sampling
noise and its elasticities, returns to scale and persistence are plausible
(:class:`RootScreens`). One such root: the estimate. None, or several: no estimate, and
:class:`RootSelectionError` lists what was found. The bootstrap counts draws that land on another
root and leaves them out of the covariance.

Which design breaks which estimator (``benchmarks/bench_prodest.py``, R = 100; designs in
:mod:`~cluster_econ.estimate.production.montecarlo`; labour elasticity, truth 0.6):

============================  =======  =======  =========  ==================  ===============
design                        ACF      LP       WRDG (m)   dynamic             OP (investment)
============================  =======  =======  =========  ==================  ===============
ACF DGP1 (issue 9's design)   0.599    0.000    0.342      declines 52%        0.846
ACF DGP1 + 10% error in m     declines 0.206    0.310      declines 46%        0.846
ACF DGP2                      0.600    0.001    0.392      0.599               0.868
ACF DGP2 + 10% error in m     declines 0.334    0.380      0.599               0.868
ACF DGP3                      0.600    -0.001   0.382      0.597               0.771
ACF DGP3 + 10% error in m     declines 0.149    0.330      0.597               0.772
proxy world                   0.603    0.600    0.600      0.606               0.600
============================  =======  =======  =========  ==================  ===============

Why: materials Leontief in planned output leave labour no variation given capital and materials
(LP's and Wooldridge's first equation are not identified: ACF's functional dependence);
measurement error in materials breaks every inversion of materials (ACF then has no admissible
root and says so); investment with a shock of its own does not invert to productivity (OP); in
DGP1 labour's only movement apart from productivity is a weakly persistent wage, which is itself
a Markov root of the dynamic panel's moments. With exit on productivity, OP's capital elasticity
is biased down, and the exit correction removes most of the bias. GNR recovers gross output
when materials are flexible.

For survey data, :func:`estimate_productivity` (in ``survey_data``) uses the dynamic panel by
default; the reasons are in its module docstring.

Why our own code: no maintained Python library estimates these models (the references are
Stata's ``prodest``/``levpet``/``acfest`` and R's ``prodest``, neither installable here); the
numerics are least squares, small GMM problems and a probit, on numpy and scipy, and writing
them here lets them read the canonical panel, respect calendar gaps, count dropped rows, choose
roots honestly and return the package's Result.
"""

from __future__ import annotations

from cluster_econ.estimate.production.estimator import METHODS, prodest
from cluster_econ.estimate.production.markov import RootScreens, RootSelectionError
from cluster_econ.estimate.production.polynomial import poly_matrix, poly_terms
from cluster_econ.estimate.production.sample import PANEL_COLUMNS, panel_frame
from cluster_econ.estimate.production.survey_data import (
    DEFAULT_METHOD,
    ProductivityEstimate,
    estimate_productivity,
    productivity_shifters,
)

__all__ = ["DEFAULT_METHOD", "METHODS", "PANEL_COLUMNS", "ProductivityEstimate", "RootScreens",
           "RootSelectionError", "estimate_productivity", "panel_frame", "poly_matrix", "poly_terms", "prodest",
           "productivity_shifters"]
