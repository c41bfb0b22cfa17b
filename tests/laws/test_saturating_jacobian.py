"""saturating-power's analytic Jacobian is the residuals' derivative (checked against finite differences)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from capcast.laws.saturating_power import pearson_residuals, saturating


@pytest.mark.parametrize("theta", [np.array([0.2, 0.4]), np.array([-0.5, 0.9, 0.2])], ids=["no c", "with c"])
def test_the_analytic_jacobian_matches_finite_differences(theta) -> None:
    rng = np.random.default_rng(0)
    flops, n, floor = np.geomspace(1e18, 1e21, 12), np.full(12, 500.0), 0.25
    value = np.clip(saturating(theta, flops, 1e19, floor) + rng.normal(0, 0.02, 12), 0.01, 0.99)
    residuals, jacobian = pearson_residuals(flops, value, n, 1e19, floor)
    numeric = np.stack([approx_fprime(theta, lambda th, i=i: residuals(th)[i], 1e-7) for i in range(len(flops))])
    assert jacobian(theta) == pytest.approx(numeric, rel=1e-4, abs=1e-4)
