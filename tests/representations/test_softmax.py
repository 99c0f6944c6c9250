"""Tests of kexue_notes.representations.softmax: closed forms, identities, the post's counts and
error paths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import optimize, special

from kexue_notes.representations import softmax as sm

FAST = settings(max_examples=50, deadline=None)
vectors = st.lists(st.floats(-30, 30), min_size=2, max_size=8)
taus = st.floats(0.05, 5.0)


# --- the map and its iterates ------------------------------------------------------------------

def test_softmax_closed_forms() -> None:
    assert_allclose(sm.softmax([0.0, 0.0, 0.0]), np.full(3, 1 / 3))
    assert_allclose(sm.softmax([0.0, np.log(3.0)]), [0.25, 0.75])
    assert_allclose(sm.softmax([0.0, 1.0], tau=0.5), [1 / (1 + np.e**2), np.e**2 / (1 + np.e**2)])
    assert_allclose(sm.softmax([1.0, 1000.0]), [0.0, 1.0], atol=1e-300)   # no overflow


@FAST
@given(vectors, taus)
def test_softmax_matches_scipy_and_is_shift_invariant(x: list[float], tau: float) -> None:
    x = np.array(x)
    p = sm.softmax(x, tau)
    assert_allclose(p, special.softmax(x / tau), rtol=1e-12, atol=1e-300)
    assert_allclose(p.sum(), 1.0, rtol=1e-14)
    assert_allclose(sm.softmax(x + 7.25, tau), p, rtol=1e-12, atol=1e-300)


def test_softmax_acts_on_the_last_axis() -> None:
    x = np.arange(12.0).reshape(3, 4) / 3
    assert_allclose(sm.softmax(x), np.stack([sm.softmax(row) for row in x]))


def test_softmax_accepts_torch() -> None:
    torch = pytest.importorskip("torch")
    assert_allclose(sm.softmax(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)),
                    special.softmax([1.0, 2.0, 3.0]), rtol=1e-15)


def test_iterate_softmax_orbit() -> None:
    orbit = sm.iterate_softmax([1.0, 100.0], 3)
    assert orbit.shape == (4, 2)
    assert_allclose(orbit[0], [1.0, 100.0])
    p = np.array([1.0, 100.0])
    for k in range(1, 4):
        p = special.softmax(p)
        assert_allclose(orbit[k], p, rtol=1e-14, atol=1e-300)
    assert sm.iterate_softmax(np.zeros((5, 3)), 2).shape == (3, 5, 3)
    assert sm.iterate_softmax([2.0, 1.0], 0).shape == (1, 2)


def test_two_entries_follow_tanh() -> None:
    # d_{k+1} = tanh(d_k / (2 tau)) for n = 2, exactly
    for tau in (1.0, 0.4):
        d = sm.spread_history([0.3, 1.2], 12, tau)
        # the spread is a difference of entries near 1/2: absolute round-off ~ 1e-16
        assert_allclose(d[2:], np.tanh(d[1:-1] / (2 * tau)), rtol=1e-13, atol=1e-15)


def test_post_iteration_counts() -> None:
    # the counts quoted in the post, with "within" meaning max_i |p_i - 1/n| <= tol
    assert sm.steps_to_uniform([1, 100], 0.005) == 8
    assert sm.steps_to_uniform([1, 100], 0.001) == 10
    assert sm.steps_to_uniform([1, 2, 3, 4], 0.0025) == 5
    assert_allclose(sm.iterate_softmax([1, 100], 10)[-1], [0.4991, 0.5009], atol=5e-5)


# --- spread and distance to uniform ------------------------------------------------------------

def test_spread_and_deviation() -> None:
    assert sm.spread([0.1, 0.7, 0.2]) == pytest.approx(0.6)
    assert_allclose(sm.spread(np.array([[0, 1.0], [2, 2.5]])), [1.0, 0.5])
    assert sm.deviation_from_uniform([0.2, 0.3, 0.5]) == pytest.approx(0.5 - 1 / 3)
    assert sm.deviation_from_uniform([0.25] * 4) == 0.0
    assert_allclose(sm.spread_history([1.0, 2.0, 3.0], 2)[0], 2.0)


@FAST
@given(vectors)
def test_two_entry_deviation_is_half_the_spread(x: list[float]) -> None:
    p = sm.softmax(x[:2])
    assert sm.deviation_from_uniform(p) == pytest.approx(sm.spread(p) / 2, abs=1e-15)


# --- the Jacobian -------------------------------------------------------------------------------

@FAST
@given(st.lists(st.floats(-5, 5), min_size=2, max_size=6), st.floats(0.2, 3.0))
def test_jacobian_matches_finite_differences(x: list[float], tau: float) -> None:
    x = np.array(x)
    h = 1e-6
    steps = h * np.eye(len(x))
    fd = (sm.softmax(x + steps, tau) - sm.softmax(x - steps, tau)).T / (2 * h)
    # central differences: truncation ~ h² |S'''| and round-off ~ 1e-16 / h, both < 1e-8 here
    assert_allclose(sm.softmax_jacobian(x, tau), fd, atol=1e-8 / tau**3)


@pytest.mark.parametrize("n", [2, 3, 5, 9])
@pytest.mark.parametrize("tau", [1.0, 0.3])
def test_jacobian_eigenvalues_at_uniform(n: int, tau: float) -> None:
    ev = np.linalg.eigvalsh(sm.softmax_jacobian(np.zeros(n), tau))
    assert_allclose(ev, [0.0] + [1 / (n * tau)] * (n - 1), atol=1e-14)


def test_jacobian_rows_sum_to_zero_and_batch() -> None:
    J = sm.softmax_jacobian(np.arange(6.0).reshape(2, 3))
    assert J.shape == (2, 3, 3)
    assert_allclose(J.sum(axis=-1), 0.0, atol=1e-16)


# --- bounds -------------------------------------------------------------------------------------

def test_bounds_closed_forms() -> None:
    assert sm.spread_bound(1.0, 2) == pytest.approx((np.e - 1) / 2)
    assert sm.contraction_constant(2) == pytest.approx((np.e - 1) / 2)
    assert sm.contraction_constant(3, tau=0.5) == pytest.approx((np.e**2 - 1) / 3)
    assert sm.two_level_spread(0.0, 5) == 0.0
    assert_allclose(sm.two_level_spread(np.array([0.3, 0.9]), 2, tau=0.7),
                    np.tanh(np.array([0.3, 0.9]) / 1.4), rtol=1e-14)
    assert sm.two_level_spread(800.0, 3) == pytest.approx(1.0)          # no overflow


@FAST
@given(st.lists(st.floats(-3, 3), min_size=2, max_size=8), st.floats(0.3, 3.0))
def test_one_step_obeys_the_bound_chain(x: list[float], tau: float) -> None:
    x = np.array(x)
    n, d = len(x), float(np.ptp(x))
    after = sm.spread(sm.softmax(x, tau))
    worst = sm.two_level_spread(d, n, tau)
    assert after <= worst * (1 + 1e-12) + 1e-15
    assert worst <= sm.spread_bound(d, n, tau) * (1 + 1e-12)
    if d <= 1:
        assert sm.spread_bound(d, n, tau) <= sm.contraction_constant(n, tau) * d * (1 + 1e-12)


@FAST
@given(st.floats(0.0, 4.0), st.integers(2, 9), st.floats(0.2, 3.0), st.data())
def test_two_level_spread_is_the_spread_of_a_two_level_vector(d: float, n: int, tau: float,
                                                              data: st.DataObject) -> None:
    k = data.draw(st.integers(1, n - 1))
    x = np.concatenate([np.full(k, d), np.zeros(n - k)])
    assert sm.two_level_spread(d, n, tau, k) == pytest.approx(sm.spread(sm.softmax(x, tau)),
                                                              rel=1e-12, abs=1e-15)


def test_two_level_vector() -> None:
    p = sm.two_level_vector(0.3, 5, k=2)
    assert_allclose(p.sum(), 1.0)
    assert_allclose(np.ptp(p), 0.3)
    assert np.sum(p == p.max()) == 2


# --- fixed points and the critical temperature -------------------------------------------------

@pytest.mark.parametrize("tau", [0.2, 0.35, 0.45, 0.49])
def test_two_entries_pitchfork(tau: float) -> None:
    (d,) = sm.two_level_fixed_points(2, tau)
    assert_allclose(d, np.tanh(d / (2 * tau)), rtol=1e-13)
    assert_allclose(d, optimize.fixed_point(lambda s: np.tanh(s / (2 * tau)), 1.0), rtol=1e-8)
    assert_allclose(sm.softmax(sm.two_level_vector(d, 2), tau), sm.two_level_vector(d, 2),
                    rtol=1e-12)
    assert sm.two_level_fixed_points(2, 0.5).size == 0
    assert sm.two_level_fixed_points(2, 0.8).size == 0


def test_pitchfork_amplitude_near_the_critical_point() -> None:
    # d² ≈ 12 τ² (1 - 2τ) from the cubic term of tanh
    for eps in (1e-3, 1e-4):
        tau = 0.5 - eps
        (d,) = sm.two_level_fixed_points(2, tau)
        assert_allclose(d, np.sqrt(12 * tau**2 * (1 - 2 * tau)), rtol=10 * eps)


@pytest.mark.parametrize("n", [3, 4, 10])
def test_fixed_points_are_fixed_and_change_at_the_critical_temperature(n: int) -> None:
    tc = sm.critical_temperature(n)
    assert 1 / n < tc < 1 / np.log(n + 1)  # between the local and the contraction threshold
    assert sm.two_level_fixed_points(n, tc * 1.001).size == 0
    assert sm.two_level_fixed_points(n, tc * 0.999).size == 2     # saddle-node: a pair is born
    assert sm.two_level_fixed_points(n, 0.99 / n).size == 1       # the small root crossed zero
    for tau in (0.99 / n, tc * 0.999):
        for d in sm.two_level_fixed_points(n, tau):
            p = sm.two_level_vector(d, n)
            assert_allclose(sm.softmax(p, tau), p, rtol=1e-11)


def test_critical_temperature_is_a_tangency() -> None:
    for n in (3, 5, 20):
        tc = sm.critical_temperature(n)

        def system(v: np.ndarray, n: int = n) -> list[float]:
            d, tau = v
            u = np.exp(d / tau)
            return [(u - 1) / (u + n - 1) - d, n * u / (tau * (u + n - 1) ** 2) - 1]

        d0 = sm.two_level_fixed_points(n, tc * 0.999)
        sol = optimize.fsolve(system, [d0.mean(), tc], xtol=1e-13)
        assert_allclose(sol[1], tc, rtol=1e-9)
    assert sm.critical_temperature(2) == 0.5


def test_orbit_from_a_peak_lands_on_the_large_fixed_point() -> None:
    n, tau = 10, 0.2                       # 1/n < tau < critical temperature: two attractors
    peak = sm.iterate_softmax(np.eye(n)[0], 400, tau)[-1]
    assert_allclose(sm.spread(peak), sm.two_level_fixed_points(n, tau)[-1], rtol=1e-10)
    near = sm.iterate_softmax(np.full(n, 0.1) + 0.01 * np.eye(n)[0], 400, tau)[-1]
    assert sm.deviation_from_uniform(near) < 1e-12


# --- error paths -------------------------------------------------------------------------------

@pytest.mark.parametrize("bad, match", [
    (dict(x=[1.0]), "x must have at least 2"),
    (dict(x=3.0), "x must have at least 2"),
    (dict(x=[1.0, np.nan]), "x must be finite"),
    (dict(x=[1.0, 2.0], tau=0.0), "tau must be finite and > 0"),
    (dict(x=[1.0, 2.0], tau=-1.0), "tau must be finite and > 0"),
])
def test_softmax_errors(bad: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sm.softmax(**bad)


def test_type_errors() -> None:
    with pytest.raises(TypeError, match="x must be an array"):
        sm.softmax("abc")
    with pytest.raises(TypeError, match="tau must be a real number"):
        sm.softmax([1.0, 2.0], tau="1")
    with pytest.raises(TypeError, match="steps must be an integer"):
        sm.iterate_softmax([1.0, 2.0], 2.5)
    with pytest.raises(TypeError, match="max_steps must be an integer"):
        sm.steps_to_uniform([1.0, 2.0], 0.1, max_steps=1.5)
    with pytest.raises(TypeError, match="n must be an integer"):
        sm.spread_bound(0.5, 2.0)
    with pytest.raises(TypeError, match="k must be an integer"):
        sm.two_level_spread(0.5, 3, k=1.0)
    with pytest.raises(TypeError, match="d must be a real number"):
        sm.two_level_vector("0.1", 3)


def test_value_errors() -> None:
    with pytest.raises(ValueError, match="steps must be >= 0"):
        sm.iterate_softmax([1.0, 2.0], -1)
    with pytest.raises(ValueError, match="p must have at least 2"):
        sm.spread([1.0])
    with pytest.raises(ValueError, match="p must be finite"):
        sm.deviation_from_uniform([np.inf, 1.0])
    with pytest.raises(ValueError, match="x must be 1-dimensional"):
        sm.steps_to_uniform(np.zeros((2, 2)), 0.1)
    with pytest.raises(ValueError, match="x must have at least 2"):
        sm.steps_to_uniform([1.0], 0.1)
    with pytest.raises(ValueError, match="tol must be finite and > 0"):
        sm.steps_to_uniform([1.0, 2.0], 0.0)
    with pytest.raises(ValueError, match="max_steps = 50"):
        sm.steps_to_uniform(np.eye(4)[0], 1e-3, tau=0.1, max_steps=50)
    with pytest.raises(ValueError, match="tau must be finite and > 0"):
        sm.softmax_jacobian([1.0, 2.0], tau=0)
    with pytest.raises(ValueError, match="d must be >= 0"):
        sm.spread_bound(-0.1, 3)
    with pytest.raises(ValueError, match="n must be >= 2"):
        sm.contraction_constant(1)
    with pytest.raises(ValueError, match="tau must be finite and > 0"):
        sm.contraction_constant(3, tau=np.inf)
    with pytest.raises(ValueError, match="k must be between 1 and n - 1"):
        sm.two_level_spread(0.5, 3, k=3)
    with pytest.raises(ValueError, match="k must be >= 1"):
        sm.two_level_fixed_points(3, 0.3, k=0)
    with pytest.raises(ValueError, match="d must be <= 1/k"):
        sm.two_level_vector(0.6, 4, k=2)
    with pytest.raises(ValueError, match="d must be finite and >= 0"):
        sm.two_level_vector(-0.1, 4)
    with pytest.raises(ValueError, match="n must be >= 2"):
        sm.critical_temperature(1)
    with pytest.raises(ValueError, match="tau must be finite and > 0"):
        sm.two_level_fixed_points(3, 0.0)
