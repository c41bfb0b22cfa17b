"""The per-cluster law y = g + (1-g) exp(-a C^-b - c) and the paper's filter."""

from __future__ import annotations

import numpy as np

from capcast.cod.cluster_law import ClusterFit, Thresholds, fit_cluster, keep_reason, law

COMPUTE = np.logspace(15, 21, 12)


def test_the_fit_recovers_the_curve_and_extrapolates():
    truth = law(COMPUTE / 1e18, 2.0, 0.3, 0.2, 0.25)
    fit = fit_cluster(COMPUTE, truth)
    assert fit.ok and fit.rmse < 1e-4
    assert abs(float(fit.predict(1e23)) - float(law(1e5, 2.0, 0.3, 0.2, 0.25))) < 0.01
    assert (fit.a, fit.b) > (1.0, 0.1) and 0 <= fit.c < 1


def test_the_filter_keeps_scalable_clusters_and_says_why_it_drops_the_others():
    assert keep_reason(ClusterFit(2.0, 0.3, 0.2, 0.0, 0.0, True)) == (True, "kept: a > 1, b > 0.1, 0 <= c < 1")
    kept, reason = keep_reason(ClusterFit(2.0, 0.3, 3.0, 0.0, 0.0, True))
    assert not kept and reason == "c = 3 >= 1 (ceiling too low: non-scalable)"
    kept, reason = keep_reason(ClusterFit(0.5, 0.05, 0.2, 0.0, 0.0, True))
    assert not kept and "a = 0.5 <= 1" in reason and "b = 0.05 <= 0.1" in reason
    assert keep_reason(ClusterFit(2.0, 0.3, -0.1, 0.0, 0.0, True))[1] == "c = -0.1 < 0 (ceiling above 1)"
    assert keep_reason(ClusterFit(np.nan, np.nan, np.nan, np.nan, np.nan, False)) == (False, "the law could not be fitted")
    # thresholds are configurable
    assert keep_reason(ClusterFit(2.0, 0.3, 3.0, 0.0, 0.0, True), Thresholds(c_max=5.0))[0]


def test_a_law_flat_over_the_fitting_compute_is_dropped_whatever_its_a_and_b():
    # the mini-ladder's computes in the paper's unit: exp(-5 x^-0.3) underflows to 0 on all of them,
    # so this fit is the constant g, though a = 5 and b = 0.3 pass the paper's thresholds
    tiny = np.logspace(10.3, 13.2, 6)
    stuck = ClusterFit(5.0, 0.3, 0.0, 0.144, 0.117, True)
    assert keep_reason(stuck)[0]  # without the compute, the filter cannot tell
    kept, reason = keep_reason(stuck, compute=tiny)
    assert not kept and reason.startswith("flat over the fitting compute")
    # the same law where it grows over the compute is kept, and so is a tiny rise
    assert keep_reason(stuck, compute=COMPUTE) == (True, "kept: a > 1, b > 0.1, 0 <= c < 1")
    assert keep_reason(ClusterFit(2.0, 0.3, 0.2, 0.0, 0.0, True), compute=np.array([1e18, 1.0001e18]))[0]
    # the paper's "no thresholds" ablation keeps every cluster, flat ones too
    assert keep_reason(stuck, Thresholds(-np.inf, -np.inf, -np.inf, np.inf), compute=tiny)[0]


def test_a_flat_low_cluster_is_fitted_and_dropped():
    flat = law(COMPUTE / 1e18, 2.0, 0.3, 3.0, 0.0)  # ceiling exp(-3) = 0.05
    fit = fit_cluster(COMPUTE, flat)
    kept, reason = keep_reason(fit)
    assert fit.ok and not kept and "ceiling too low" in reason


def test_analytic_jacobian_matches_finite_differences():
    from scipy.optimize import approx_fprime

    from capcast.cod.cluster_law import _jacobian, law

    x = np.array([2e-8, 1e-6, 3e-3, 0.5, 40.0])
    p = np.array([1.7, 0.35, 0.4, 0.2])
    jac = _jacobian(p, x, None)
    for i, xi in enumerate(x):
        numeric = approx_fprime(p, lambda q: float(law(xi, *q)), 1e-7)
        np.testing.assert_allclose(jac[i], numeric, rtol=1e-4, atol=1e-7)
