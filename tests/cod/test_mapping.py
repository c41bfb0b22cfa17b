"""The subset -> full mapping: monotone, through (0,0) and (1,1), knots added until RMSE < 0.005."""

from __future__ import annotations

import numpy as np

from capcast.cod.mapping import fit_mapping

GRID = np.linspace(0, 1, 501)


def test_a_straight_relation_needs_no_interior_knot_and_hits_both_ends():
    x = np.linspace(0.05, 0.6, 10)
    m = fit_mapping(x, 0.5 * x + 0.5 * x**3)
    assert m.interior_knots == 0 and m.rmse < 0.005 and m.reached_target
    assert float(m(0.0)) == 0.0 and abs(float(m(1.0)) - 1.0) < 1e-9


def test_an_s_shaped_relation_gets_knots_until_the_rmse_target_and_stays_monotone():
    x = np.linspace(0.02, 0.98, 25)
    y = 1 / (1 + np.exp(-12 * (x - 0.5)))
    y = (y - y.min()) / (y.max() - y.min()) * 0.96 + 0.02
    m = fit_mapping(x, y)
    assert m.interior_knots > 0 and m.rmse < 0.005
    values = m(GRID)
    assert (np.diff(values) >= -1e-12).all()
    assert abs(values[0]) < 1e-12 and abs(values[-1] - 1) < 1e-9
    coarse = fit_mapping(x, y, rmse_target=0.05)  # a looser target stops with fewer knots
    assert coarse.interior_knots < m.interior_knots


def test_noisy_decreasing_pairs_still_give_a_monotone_map():
    rng = np.random.default_rng(0)
    x = np.linspace(0.1, 0.5, 8)
    m = fit_mapping(x, 0.3 - 0.2 * x + rng.normal(0, 0.01, 8))
    assert (np.diff(m(GRID)) >= -1e-12).all()


def test_anchors_are_extra_points():
    x = np.linspace(0.05, 0.3, 6)
    without = fit_mapping(x, 0.6 * x)
    with_anchor = fit_mapping(x, 0.6 * x, anchors=[(0.8, 0.7)])
    assert with_anchor.n_anchors == 1 and with_anchor.n_points == 6
    assert abs(float(with_anchor(0.8)) - 0.7) < abs(float(without(0.8)) - 0.7)
