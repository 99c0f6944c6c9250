"""Tests for kexue_notes.optimization.sampling_optimization: closed forms, identities and every
error path."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import integrate
from scipy.special import iv

from kexue_notes.optimization import sampling_optimization as so


def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# --- the sampling view ----------------------------------------------------------------------

def test_log_update_density_is_minus_the_loss_change_over_alpha() -> None:
    out = so.log_update_density(np.array([1.0, 2.0, np.inf]), 1.5, 0.5)
    assert_allclose(out, [1.0, -1.0, -np.inf])


# --- first order: the ball ------------------------------------------------------------------

@pytest.mark.parametrize("nu,k", [(0.0, 0.3), (0.5, 1e-3), (2.5, 2.0), (10.0, 40.0),
                                  (3.0, 1e4), (500.0, 1.0), (500.0, 300.0), (1500.0, 1400.0)])
def test_bessel_ratio_matches_mpmath(nu: float, k: float) -> None:
    ref = float(mpmath.besseli(nu + 1, k) / mpmath.besseli(nu, k))
    assert_allclose(so.bessel_ratio(nu, k), ref, rtol=1e-12)


def test_bessel_ratio_at_zero_and_shape() -> None:
    k = np.array([[0.0, 1.0], [2.0, 0.0]])
    r = so.bessel_ratio(1.5, k)
    assert r.shape == (2, 2) and r[0, 0] == 0 and r[1, 1] == 0
    assert_allclose(r[0, 1], iv(2.5, 1.0) / iv(1.5, 1.0), rtol=1e-13)


@given(nu=st.floats(0.0, 50.0), k=st.floats(1e-3, 200.0))
@settings(max_examples=50, deadline=None)
def test_bessel_ratio_obeys_the_recurrence(nu: float, k: float) -> None:
    # r_nu = k / (2 (nu + 1) + k r_{nu+1}), and 0 < r < 1
    r0, r1 = so.bessel_ratio(nu, k), so.bessel_ratio(nu + 1, k)
    assert 0 < r0 < 1
    assert_allclose(r0, k / (2 * (nu + 1) + k * r1), rtol=1e-11)


def test_ball_log_partition_d1_is_two_sinh_over_c() -> None:
    g, eps, alpha = np.array([0.7]), 1.3, 0.4
    c = 0.7 / alpha
    assert_allclose(so.ball_log_partition(g, eps, alpha), np.log(2 * np.sinh(c * eps) / c),
                    rtol=1e-14)


@pytest.mark.parametrize("d", [2, 3, 5])
def test_ball_log_partition_matches_quadrature(d: int) -> None:
    # Z = S_{d-2} int_0^eps r^{d-1} int_0^pi sin^{d-2}(t) exp(-c r cos t) dt dr, S the sphere area
    eps, alpha, gnorm = 0.9, 0.3, 0.5
    c = gnorm / alpha
    area = 2 * math.pi ** ((d - 1) / 2) / math.gamma((d - 1) / 2)   # area of S^{d-2}

    def f(t: float, r: float) -> float:
        return r ** (d - 1) * math.sin(t) ** (d - 2) * math.exp(-c * r * math.cos(t))

    z, _ = integrate.dblquad(f, 0, eps, 0, math.pi, epsabs=0, epsrel=1e-12)
    g = np.zeros(d)
    g[0] = gnorm
    assert_allclose(so.ball_log_partition(g, eps, alpha), np.log(area * z), rtol=1e-10)


def test_ball_log_partition_at_zero_gradient_is_the_volume_and_is_continuous() -> None:
    d, eps = 4, 0.6
    vol = math.pi ** (d / 2) * eps**d / math.gamma(d / 2 + 1)
    assert_allclose(so.ball_log_partition(np.zeros(d), eps, 1.0), math.log(vol), rtol=1e-14)
    g = np.full(d, 1e-7)
    assert_allclose(so.ball_log_partition(g, eps, 1.0), math.log(vol), rtol=1e-10)


def test_ball_log_partition_batches_and_survives_extremes() -> None:
    g = np.array([[1e3, 0.0], [0.0, 2.0]])
    out = so.ball_log_partition(g, 1.0, 1e-3)      # kappa = 1e6 and 2e3: I_nu overflows
    assert out.shape == (2,) and np.all(np.isfinite(out))
    big = np.zeros(1000)
    big[0] = 0.1
    assert np.isfinite(so.ball_log_partition(big, 1.0, 1.0))   # I_500(0.1) underflows


def test_expected_update_is_minus_alpha_grad_log_partition() -> None:
    g, eps, alpha, h = np.array([0.3, -0.5, 0.2]), 0.7, 0.25, 1e-6
    fd = np.array([(so.ball_log_partition(g + h * e, eps, alpha)
                    - so.ball_log_partition(g - h * e, eps, alpha)) / (2 * h) for e in np.eye(3)])
    assert_allclose(so.ball_expected_update(g, eps, alpha), -alpha * fd, rtol=1e-7)


def test_expected_update_d1_is_the_langevin_function() -> None:
    g, eps, alpha = np.array([-0.6]), 0.8, 0.3
    k = eps * 0.6 / alpha
    assert_allclose(so.ball_expected_update(g, eps, alpha), [eps * (1 / np.tanh(k) - 1 / k)],
                    rtol=1e-14)


@given(st.lists(st.floats(-5, 5), min_size=1, max_size=6), st.floats(0.05, 3), st.floats(0.05, 3))
@settings(max_examples=50, deadline=None)
def test_expected_update_points_down_the_gradient_inside_the_ball(
        g: list[float], eps: float, alpha: float) -> None:
    g_arr = np.array(g)
    step = so.ball_expected_update(g_arr, eps, alpha)
    norm = np.linalg.norm(g_arr)
    assert np.linalg.norm(step) <= eps * (1 + 1e-12)
    if norm > 0:
        cos = -step @ g_arr / (np.linalg.norm(step) * norm)
        assert_allclose(cos, 1.0, rtol=1e-12)
    else:
        assert np.all(step == 0)


def test_expected_update_limits() -> None:
    g, eps, d = np.array([0.3, 0.4, 0.0, 1.2]), 0.5, 4
    unit = g / np.linalg.norm(g)
    assert_allclose(so.ball_expected_update(g, eps, 1e-9), -eps * unit, rtol=1e-6)
    alpha = 1e4
    lr = so.ball_gd_learning_rate(eps, alpha, d)
    assert lr == eps**2 / ((d + 2) * alpha)
    assert_allclose(so.ball_expected_update(g, eps, alpha), -lr * g, rtol=1e-9)


def test_sample_ball_target_matches_the_closed_form() -> None:
    g, eps, alpha = np.array([0.5, -0.3, 0.2]), 0.6, 0.15
    x = so.sample_ball_target(g, eps, alpha, 40_000, rng())
    assert x.shape == (40_000, 3) and np.all(np.linalg.norm(x, axis=1) <= eps)
    se = x.std(axis=0) / np.sqrt(len(x))
    assert np.all(np.abs(x.mean(axis=0) - so.ball_expected_update(g, eps, alpha)) < 4 * se)


# --- second order ---------------------------------------------------------------------------

def test_gaussian_update_distribution_is_newton_with_alpha_times_inverse_hessian() -> None:
    h = np.array([[2.0, 0.5], [0.5, 1.0]])
    g = np.array([1.0, -2.0])
    mean, cov = so.gaussian_update_distribution(g, h, 0.3)
    assert_allclose(mean, -np.linalg.solve(h, g), rtol=1e-14)
    assert_allclose(cov, 0.3 * np.linalg.inv(h), rtol=1e-14)


@given(st.integers(1, 5), st.floats(0.01, 10), st.integers(0, 2**32 - 1))
@settings(max_examples=30, deadline=None)
def test_gaussian_log_density_is_the_quadratic_model_up_to_a_constant(
        d: int, alpha: float, seed: int) -> None:
    r = np.random.default_rng(seed)
    a = r.standard_normal((d, d))
    h = a @ a.T + d * np.eye(d)
    g = r.standard_normal(d)
    mean, cov = so.gaussian_update_distribution(g, h, alpha)
    x = r.standard_normal((4, d))
    prec = np.linalg.inv(cov)
    log_gauss = -0.5 * np.einsum("ni,ij,nj->n", x - mean, prec, x - mean)
    log_model = -(x @ g + 0.5 * np.einsum("ni,ij,nj->n", x, h, x)) / alpha
    diff = log_model - log_gauss
    assert_allclose(diff, g @ np.linalg.solve(h, g) / (2 * alpha), rtol=1e-9, atol=1e-9)


# --- importance sampling --------------------------------------------------------------------

def test_snis_mean_and_standard_error() -> None:
    log_w = np.log([1.0, 3.0])
    mean, se = so.snis_mean(log_w, np.array([0.0, 4.0]))
    assert_allclose(mean, 3.0)
    assert_allclose(se, np.sqrt(0.25**2 * 9 + 0.75**2 * 1))
    mean2, _ = so.snis_mean(np.array([0.0, -np.inf]), np.array([[1.0, 2.0], [5.0, 6.0]]))
    assert_allclose(mean2, [1.0, 2.0])


@given(st.lists(st.floats(-30, 30), min_size=1, max_size=20), st.floats(-50, 50))
@settings(max_examples=50, deadline=None)
def test_snis_is_invariant_to_a_constant_in_the_log_weights(lw: list[float], c: float) -> None:
    lw_arr = np.array(lw)
    vals = np.arange(len(lw), dtype=float)
    m1, s1 = so.snis_mean(lw_arr, vals)
    m2, s2 = so.snis_mean(lw_arr + c, vals)
    assert_allclose(m1, m2, rtol=1e-9, atol=1e-9)
    assert_allclose(s1, s2, rtol=1e-9, atol=1e-9)
    ess = so.effective_sample_size(lw_arr)
    assert 1 - 1e-9 <= ess <= len(lw) + 1e-9


def test_effective_sample_size_extremes() -> None:
    assert_allclose(so.effective_sample_size(np.zeros(7)), 7.0)
    assert_allclose(so.effective_sample_size(np.array([0.0, -np.inf, -np.inf])), 1.0)


def test_snis_recovers_a_gaussian_mean() -> None:
    # target N(1, 0.5^2) sampled through the proposal N(0, 1)
    x = np.random.default_rng(1).standard_normal(100_000)
    log_w = -((x - 1) ** 2) / (2 * 0.25) + x**2 / 2
    mean, se = so.snis_mean(log_w, x)
    assert abs(mean - 1.0) < 4 * se


def test_mixture_proposal_density_integrates_to_one_and_sampling_matches() -> None:
    c, s, lam = np.array([1.5]), 0.7, 0.3
    val, _ = integrate.quad(lambda t: np.exp(so.mixture_proposal_log_density(
        np.array([[t]]), c, s, lam))[0], -10, 12, points=[0.0, 1.5])
    assert_allclose(val, 1.0, rtol=1e-10)
    x, log_q = so.mixture_proposal_sample(c, s, 50_000, rng(), mix=lam)
    assert x.shape == (50_000, 1)
    assert_allclose(log_q, so.mixture_proposal_log_density(x, c, s, lam))
    mean_true = (1 - lam) * 1.5
    var_true = s**2 + lam * (1 - lam) * 1.5**2
    assert abs(x.mean() - mean_true) < 4 * math.sqrt(var_true / 50_000)


def test_mixture_proposal_pure_components() -> None:
    x = np.array([[0.2, -0.1]])
    c = np.array([1.0, 1.0])
    from scipy.stats import multivariate_normal
    assert_allclose(so.mixture_proposal_log_density(x, c, 0.5, 0.0),
                    multivariate_normal(c, 0.25).logpdf(x))
    assert_allclose(so.mixture_proposal_log_density(x, c, 0.5, 1.0),
                    multivariate_normal(np.zeros(2), 0.25).logpdf(x))


def _step_loss(theta: np.ndarray) -> np.ndarray:
    """A piecewise-constant loss of one parameter, +inf outside [-1, 1]."""
    t = theta[:, 0]
    return np.where(np.abs(t) <= 1, np.floor(4 * (t - 0.3) ** 2) / 4, np.inf)


def test_guided_snis_update_converges_to_the_exact_mean_of_a_step_loss() -> None:
    alpha = 0.2
    rho = lambda t: np.exp(-_step_loss(np.array([[t]]))[0] / alpha)  # noqa: E731
    brk = sorted(0.3 + s * math.sqrt(j / 4) for j in range(1, 8) for s in (-1, 1))
    pts = [b for b in brk if -1 < b < 1]
    z, _ = integrate.quad(rho, -1, 1, points=pts, limit=200)
    m, _ = integrate.quad(lambda t: t * rho(t), -1, 1, points=pts, limit=200)
    step = so.guided_snis_update(_step_loss, np.zeros(1), alpha, np.array([0.2]), 0.8,
                                 100_000, rng(), mix=0.5)
    _, se = so.snis_mean(step.log_weights, step.samples)
    assert abs(step.delta[0] - m / z) < 4 * se[0]


def test_guided_snis_update_without_proposal_density_weights_by_the_loss_only() -> None:
    def loss(theta: np.ndarray) -> np.ndarray:
        return theta[:, 0] ** 2

    step = so.guided_snis_update(loss, np.zeros(2), 0.5, np.array([1.0, 0.0]), 0.3, 6, rng(),
                                 divide_by_proposal=False)
    assert_allclose(step.log_weights, -(step.samples[:, 0] ** 2) / 0.5)
    w = np.exp(step.log_weights - step.log_weights.max())
    assert_allclose(step.delta, w @ step.samples / w.sum())
    with_q = so.guided_snis_update(loss, np.zeros(2), 0.5, np.array([1.0, 0.0]), 0.3, 6, rng())
    assert_allclose(with_q.samples, step.samples)      # same draws from the same seed
    log_q = so.mixture_proposal_log_density(step.samples, np.array([1.0, 0.0]), 0.3)
    assert_allclose(with_q.log_weights, step.log_weights - log_q)
    for s in (step, with_q):                           # the ESS it returns, against Kish's formula
        assert s.ess == so.effective_sample_size(s.log_weights)
        v = np.exp(s.log_weights - s.log_weights.max())
        assert_allclose(s.ess, v.sum() ** 2 / (v**2).sum())


# --- the classifier ---------------------------------------------------------------------------

def test_zero_one_loss_and_cross_entropy() -> None:
    X = np.array([[1.0, 2.0], [-1.0, 0.5], [0.5, -1.0]])
    y = np.array([1.0, 0.0, 0.0])
    th = np.array([1.0, -0.2])
    assert_allclose(so.zero_one_loss(th, X, y), 1 / 3)           # third point is wrong
    assert_allclose(so.zero_one_loss(np.stack([th, -th]), X, y), [1 / 3, 2 / 3])
    loss, grad = so.cross_entropy(th, X, y)
    z = X @ th
    p = 1 / (1 + np.exp(-z))
    assert_allclose(loss, -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)), rtol=1e-13)
    h = 1e-6
    fd = [(so.cross_entropy(th + h * e, X, y)[0] - so.cross_entropy(th - h * e, X, y)[0]) / (2 * h)
          for e in np.eye(2)]
    assert_allclose(grad, fd, rtol=1e-7)


# --- error paths ------------------------------------------------------------------------------

def test_errors_scalars_and_shapes() -> None:
    g = np.array([1.0, 0.0])
    with pytest.raises(ValueError, match="alpha"):
        so.log_update_density(np.ones(2), 0.0, 0.0)
    with pytest.raises(ValueError, match="loss_new"):
        so.log_update_density(np.array([np.nan]), 0.0, 1.0)
    with pytest.raises(ValueError, match="loss_new"):
        so.log_update_density(np.array([-np.inf]), 0.0, 1.0)
    with pytest.raises(TypeError, match="loss_new"):
        so.log_update_density("x", 0.0, 1.0)
    with pytest.raises(ValueError, match="loss_now"):
        so.log_update_density(np.ones(2), np.inf, 1.0)
    with pytest.raises(ValueError, match="eps"):
        so.ball_log_partition(g, -1.0, 1.0)
    with pytest.raises(ValueError, match="alpha"):
        so.ball_expected_update(g, 1.0, 0.0)
    with pytest.raises(ValueError, match="g must"):
        so.ball_expected_update(np.float64(1.0), 1.0, 1.0)
    with pytest.raises(ValueError, match="g must be finite"):
        so.ball_log_partition(np.array([np.nan, 1.0]), 1.0, 1.0)
    with pytest.raises(ValueError, match="nu"):
        so.bessel_ratio(-0.5, 1.0)
    with pytest.raises(ValueError, match="k must be >= 0"):
        so.bessel_ratio(1.0, -1.0)
    with pytest.raises(ValueError, match="dim"):
        so.ball_gd_learning_rate(1.0, 1.0, 0)
    with pytest.raises(TypeError, match="dim"):
        so.ball_gd_learning_rate(1.0, 1.0, 2.5)


def test_errors_sampling() -> None:
    g = np.array([1.0, 0.0])
    with pytest.raises(TypeError, match="rng"):
        so.sample_ball_target(g, 1.0, 1.0, 5, 0)
    with pytest.raises(ValueError, match="n must"):
        so.sample_ball_target(g, 1.0, 1.0, 0, rng())
    with pytest.raises(ValueError, match="eps \\* \\|g\\| / alpha"):
        so.sample_ball_target(g, 1.0, 0.01, 5, rng())
    with pytest.raises(ValueError, match="g must be 1-dimensional"):
        so.sample_ball_target(np.ones((2, 2)), 1.0, 1.0, 5, rng())
    with pytest.raises(ValueError, match="sigma"):
        so.mixture_proposal_sample(g, 0.0, 3, rng())
    with pytest.raises(ValueError, match="mix"):
        so.mixture_proposal_sample(g, 1.0, 3, rng(), mix=1.5)
    with pytest.raises(ValueError, match="center"):
        so.mixture_proposal_log_density(np.ones((1, 2)), np.ones(0), 1.0)
    with pytest.raises(ValueError, match="delta"):
        so.mixture_proposal_log_density(np.ones((1, 3)), g, 1.0)
    with pytest.raises(TypeError, match="rng"):
        so.mixture_proposal_sample(g, 1.0, 3, np.random.RandomState(0))


def test_errors_newton() -> None:
    g = np.array([1.0, 0.0])
    with pytest.raises(ValueError, match="hess must have shape"):
        so.gaussian_update_distribution(g, np.eye(3), 1.0)
    with pytest.raises(ValueError, match="hess must be symmetric"):
        so.gaussian_update_distribution(g, np.array([[1.0, 0.5], [0.0, 1.0]]), 1.0)
    with pytest.raises(ValueError, match="hess must be positive definite"):
        so.gaussian_update_distribution(g, np.diag([1.0, -1.0]), 1.0)
    with pytest.raises(ValueError, match="alpha"):
        so.gaussian_update_distribution(g, np.eye(2), -1.0)


def test_errors_snis() -> None:
    with pytest.raises(ValueError, match="log_w must have shape"):
        so.snis_mean(np.zeros((2, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="log_w must have at least one finite"):
        so.snis_mean(np.full(3, -np.inf), np.zeros(3))
    with pytest.raises(ValueError, match="log_w must not hold NaN"):
        so.effective_sample_size(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="log_w must not hold NaN"):
        so.snis_mean(np.array([0.0, np.inf]), np.zeros(2))
    with pytest.raises(ValueError, match="values must have shape"):
        so.snis_mean(np.zeros(3), np.zeros(2))

    def loss(theta: np.ndarray) -> np.ndarray:
        return np.sum(theta**2, axis=1)

    th, c = np.zeros(2), np.ones(2)
    with pytest.raises(TypeError, match="loss must be callable"):
        so.guided_snis_update(3, th, 1.0, c, 1.0, 4, rng())
    with pytest.raises(ValueError, match="center must have shape"):
        so.guided_snis_update(loss, th, 1.0, np.ones(3), 1.0, 4, rng())
    with pytest.raises(ValueError, match="loss must map"):
        so.guided_snis_update(lambda t: np.zeros(2), th, 1.0, c, 1.0, 4, rng())
    with pytest.raises(ValueError, match="loss\\(theta\\) must be finite"):
        so.guided_snis_update(lambda t: np.full(len(t), np.inf), th, 1.0, c, 1.0, 4, rng())
    with pytest.raises(ValueError, match="zero weight"):
        so.guided_snis_update(lambda t: np.r_[0.0, np.full(len(t) - 1, np.inf)], th, 1.0, c,
                              1.0, 4, rng())
    with pytest.raises(ValueError, match=r"loss\(\.\.\.\) must not hold NaN"):
        so.guided_snis_update(lambda t: np.full(len(t), np.nan), th, 1.0, c, 1.0, 4, rng())


def test_errors_classifier() -> None:
    X, y = np.ones((3, 2)), np.array([0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="y must hold labels 0 and 1"):
        so.zero_one_loss(np.ones(2), X, np.array([0.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match="y must have shape"):
        so.cross_entropy(np.ones(2), X, np.ones(4))
    with pytest.raises(ValueError, match="theta must have shape"):
        so.zero_one_loss(np.ones(3), X, y)
    with pytest.raises(ValueError, match="theta must have shape"):
        so.cross_entropy(np.ones(3), X, y)
    with pytest.raises(ValueError, match="X must be 2-dimensional"):
        so.zero_one_loss(np.ones(2), np.ones(3), y)
