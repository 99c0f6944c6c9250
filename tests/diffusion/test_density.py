"""Tests of kexue_notes.diffusion.density: each formula against a closed form, a dense computation
or an
identity, and every error path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.stats import multivariate_normal
from sklearn.decomposition import PCA

from kexue_notes.diffusion import density as dn


def data(n: int = 300, d: int = 6, seed: int = 0) -> np.ndarray:
    """Anisotropic Gaussian data with a nonzero mean, well separated variances."""
    rng = np.random.default_rng(seed)
    scales = 2.0 ** -np.arange(d) * 3
    rot, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (rng.standard_normal((n, d)) * scales) @ rot + rng.standard_normal(d)


def random_model(d: int = 6, q: int = 2, seed: int = 1) -> dn.PPCA:
    rng = np.random.default_rng(seed)
    return dn.PPCA(rng.standard_normal(d), rng.standard_normal((d, q)), 0.3)


def spd(q: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((q, q))
    return a @ a.T + 0.5 * np.eye(q)


# --- ppca_fit ----------------------------------------------------------------------------------

def test_fit_is_stationary_and_matches_eigen_decomposition() -> None:
    x = data()
    d = x.shape[1]
    q = 2
    model = dn.ppca_fit(x, q)
    S = np.cov(x, rowvar=False, ddof=0)
    lam = np.linalg.eigvalsh(S)[::-1]
    assert_allclose(model.mean, x.mean(axis=0), rtol=1e-14)
    assert_allclose(model.sigma2, lam[q:].mean(), rtol=1e-12)
    assert_allclose(np.sort(np.linalg.eigvalsh(model.W.T @ model.W))[::-1], lam[:q] - model.sigma2,
                    rtol=1e-12)
    C = dn.ppca_covariance(model)
    Cinv = np.linalg.inv(C)
    # gradient of the mean log-likelihood: C^-1 S C^-1 W - C^-1 W = 0, tr(C^-1 S C^-1) = tr(C^-1)
    assert_allclose(Cinv @ S @ Cinv @ model.W, Cinv @ model.W, atol=1e-12)
    assert_allclose(np.trace(Cinv @ S @ Cinv), np.trace(Cinv), rtol=1e-12)
    assert_allclose(np.trace(Cinv @ S), d, rtol=1e-12)
    # columns orthogonal, largest entry positive
    G = model.W.T @ model.W
    assert_allclose(G - np.diag(np.diag(G)), 0, atol=1e-12)
    rows = np.argmax(np.abs(model.W), axis=0)
    assert np.all(model.W[rows, np.arange(q)] > 0)


def test_fit_is_a_local_maximum() -> None:
    x = data()
    model = dn.ppca_fit(x, 2)
    best = dn.ppca_log_marginal(x, model).mean()
    rng = np.random.default_rng(3)
    for _ in range(5):
        dW = 1e-3 * rng.standard_normal(model.W.shape)
        for sign in (-1, 1):
            other = dn.PPCA(model.mean, model.W + sign * dW, model.sigma2 * (1 + sign * 1e-3))
            assert dn.ppca_log_marginal(x, other).mean() < best


def test_fit_ddof1_matches_sklearn() -> None:
    x = data(n=200, d=8)
    model = dn.ppca_fit(x, 3, ddof=1)
    pca = PCA(n_components=3, svd_solver="full").fit(x)
    assert_allclose(model.sigma2, pca.noise_variance_, rtol=1e-12)
    assert_allclose(dn.ppca_covariance(model), pca.get_covariance(), rtol=1e-11, atol=1e-13)
    assert_allclose(dn.ppca_log_marginal(x, model), pca.score_samples(x), rtol=1e-12)


def test_fit_ddof_rescales_by_n_over_n_minus_1() -> None:
    x = data(n=50)
    m0, m1 = dn.ppca_fit(x, 2), dn.ppca_fit(x, 2, ddof=1)
    assert_allclose(m1.sigma2, m0.sigma2 * 50 / 49, rtol=1e-12)
    assert_allclose(m1.W, m0.W * np.sqrt(50 / 49), rtol=1e-11, atol=1e-13)


def test_fit_accepts_torch() -> None:
    x = data()
    a, b = dn.ppca_fit(torch.as_tensor(x), 2), dn.ppca_fit(x, 2)
    assert_allclose(a.W, b.W, rtol=0, atol=0)


# --- ppca_log_marginal, ppca_posterior --------------------------------------------------------

def test_log_marginal_matches_dense_gaussian() -> None:
    model = random_model()
    x = data(n=20)
    dense = multivariate_normal(model.mean, dn.ppca_covariance(model)).logpdf(x)
    assert_allclose(dn.ppca_log_marginal(x, model), dense, rtol=1e-12)


def test_posterior_matches_block_conditioning() -> None:
    model = random_model()
    x = data(n=20)
    C = dn.ppca_covariance(model)
    gain = model.W.T @ np.linalg.inv(C)                # Cov(z, x) Cov(x)^-1
    m, cov = dn.ppca_posterior(x, model)
    assert_allclose(m, (x - model.mean) @ gain.T, rtol=1e-11, atol=1e-12)
    assert_allclose(cov, np.eye(2) - gain @ model.W, rtol=1e-11, atol=1e-12)


def test_bayes_rule_joint_over_posterior_is_marginal() -> None:
    model = random_model()
    x = data(n=7)
    m, cov = dn.ppca_posterior(x, model)
    z = dn.sample_gaussian(m, 3 * cov, 5, np.random.default_rng(0))
    log_ratio = dn.ppca_log_joint(x, z, model) - dn.gaussian_log_density(z, m, cov)
    assert_allclose(log_ratio, np.repeat(dn.ppca_log_marginal(x, model)[:, None], 5, axis=1),
                    rtol=1e-12)


def test_log_joint_matches_direct_residual() -> None:
    model = random_model()
    x = data(n=4)
    z = np.random.default_rng(2).standard_normal((4, 3, 2))
    direct = (multivariate_normal(np.zeros(2), np.eye(2)).logpdf(z)
              + np.array([[multivariate_normal(model.W @ z[i, k] + model.mean,
                                               model.sigma2 * np.eye(6)).logpdf(x[i])
                           for k in range(3)] for i in range(4)]))
    assert_allclose(dn.ppca_log_joint(x, z, model), direct, rtol=1e-12)


def test_expected_log_lik_matches_monte_carlo_and_elbo_identity() -> None:
    model = random_model()
    x = data(n=3)
    m, cov = dn.ppca_posterior(x, model)
    mr, Sr = m + 0.3, spd(2, 5) * 0.1
    z = dn.sample_gaussian(mr, Sr, 200_000, np.random.default_rng(4))
    log_joint = dn.ppca_log_joint(x, z, model)
    log_lik = log_joint + 0.5 * (np.sum(z**2, axis=-1) + 2 * np.log(2 * np.pi))
    se = log_lik.std(axis=1) / np.sqrt(z.shape[1])
    assert np.all(np.abs(log_lik.mean(axis=1) - dn.ppca_expected_log_lik(x, model, mr, Sr))
                  < 4 * se)
    # ELBO two ways: reconstruction minus KL to the prior = log p(x) minus KL to the posterior
    elbo_a = dn.ppca_expected_log_lik(x, model, mr, Sr) - dn.gaussian_kl(mr, Sr, 0 * mr, np.eye(2))
    elbo_b = dn.ppca_log_marginal(x, model) - dn.gaussian_kl(mr, Sr, m, cov)
    assert_allclose(elbo_a, elbo_b, rtol=1e-12)


# --- gaussian_log_density, sample_gaussian ----------------------------------------------------

def test_gaussian_log_density_matches_scipy() -> None:
    S = spd(3, 0)
    mean = np.array([[0.1, -0.2, 0.3], [1.0, 2.0, -1.0]])
    z = np.random.default_rng(0).standard_normal((2, 4, 3))
    ref = np.stack([multivariate_normal(mean[i], S).logpdf(z[i]) for i in range(2)])
    assert_allclose(dn.gaussian_log_density(z, mean, S), ref, rtol=1e-12)


def test_sample_gaussian_moments_and_seed() -> None:
    S = spd(2, 1)
    mean = np.array([[1.0, -1.0]])
    z = dn.sample_gaussian(mean, S, 100_000, np.random.default_rng(0))[0]
    n = z.shape[0]
    se_mean = np.sqrt(np.diag(S) / n)
    assert np.all(np.abs(z.mean(axis=0) - mean[0]) < 4 * se_mean)
    se_cov = np.sqrt((S**2 + np.outer(np.diag(S), np.diag(S))) / n)
    assert np.all(np.abs(np.cov(z, rowvar=False) - S) < 4 * se_cov)
    again = dn.sample_gaussian(mean, S, 100_000, np.random.default_rng(0))[0]
    assert_allclose(z, again, rtol=0, atol=0)


# --- importance_log_likelihood ----------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-700, 700), min_size=1, max_size=30))
def test_importance_log_likelihood_is_log_mean_exp(values: list[float]) -> None:
    log_w = np.array([values])
    ref = np.max(log_w) + np.log(np.mean(np.exp(log_w - np.max(log_w))))
    assert_allclose(dn.importance_log_likelihood(log_w), [ref], rtol=1e-12, atol=1e-12)
    running = dn.importance_log_likelihood(log_w, running=True)
    for k in range(1, log_w.shape[1] + 1):
        assert_allclose(running[0, k - 1], dn.importance_log_likelihood(log_w[:, :k])[0],
                        rtol=1e-12, atol=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-50, 50), min_size=2, max_size=30))
def test_jensen_log_mean_exceeds_mean_log(values: list[float]) -> None:
    log_w = np.array([values])
    assert dn.importance_log_likelihood(log_w)[0] >= np.mean(log_w) - 1e-12


def test_constant_weights_give_exact_value() -> None:
    log_w = np.full((3, 17), -123.456)
    assert_allclose(dn.importance_log_likelihood(log_w), -123.456, rtol=1e-15)


# --- gaussian_kl, weight_log_second_moment, iwae_asymptotics ---------------------------------

def test_kl_matches_monte_carlo_and_is_zero_on_itself() -> None:
    Sr, Sp = spd(2, 2), spd(2, 3)
    mr, mp = np.array([[0.5, -0.5]]), np.array([[0.0, 1.0]])
    z = dn.sample_gaussian(mr, Sr, 400_000, np.random.default_rng(1))
    diff = dn.gaussian_log_density(z, mr, Sr) - dn.gaussian_log_density(z, mp, Sp)
    assert abs(diff.mean() - dn.gaussian_kl(mr, Sr, mp, Sp)[0]) < 4 * diff.std() / np.sqrt(4e5)
    assert_allclose(dn.gaussian_kl(mr, Sr, mr, Sr), 0, atol=1e-13)


@settings(max_examples=50, deadline=None)
@given(st.floats(0.51, 5.0), st.floats(-2.0, 2.0), st.floats(0.1, 3.0))
def test_second_moment_1d_closed_form(tau2: float, delta: float, s: float) -> None:
    got = dn.weight_log_second_moment([[0.0]], [[s**2]], [[delta]], [[tau2 * s**2]])[0]
    ref = np.log(tau2) - 0.5 * np.log(2 * tau2 - 1) + delta**2 / (s**2 * (2 * tau2 - 1))
    assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


def test_second_moment_mean_shift_and_divergence() -> None:
    A = spd(3, 4)
    a = np.array([[0.2, 0.1, -0.3]])
    delta = np.array([[0.3, -0.2, 0.5]])
    got = dn.weight_log_second_moment(a, A, a + delta, A)[0]
    assert_allclose(got, (delta @ np.linalg.solve(A, delta.T)).item(), rtol=1e-12)
    assert_allclose(dn.weight_log_second_moment(a, A, a, A), 0, atol=1e-13)
    assert dn.weight_log_second_moment(a, A, a, 0.49 * A)[0] == np.inf
    assert np.isfinite(dn.weight_log_second_moment(a, A, a, 0.51 * A)[0])


def test_second_moment_matches_monte_carlo() -> None:
    A, a = spd(2, 6) * 0.2, np.array([[0.0, 0.5]])
    b, B = a + 0.2, 1.5 * A                            # B > 3A/4: E w^4 finite, MC error honest
    z = dn.sample_gaussian(b, B, 400_000, np.random.default_rng(7))
    w = np.exp(dn.gaussian_log_density(z, a, A) - dn.gaussian_log_density(z, b, B))[0]
    se = (w**2).std() / np.sqrt(w.size)
    assert abs((w**2).mean() - np.exp(dn.weight_log_second_moment(a, A, b, B)[0])) < 4 * se


def test_asymptotics_values_and_inf() -> None:
    bias, sd = dn.iwae_asymptotics(np.log1p(8.0), np.array([1, 4, 16]))
    assert_allclose(bias, [-4.0, -1.0, -0.25])
    assert_allclose(sd, [np.sqrt(8), np.sqrt(2), np.sqrt(0.5)])
    bias, sd = dn.iwae_asymptotics(np.inf, 10)
    assert bias == -np.inf and sd == np.inf
    bias, _ = dn.iwae_asymptotics(torch.tensor(0.0), 3)
    assert bias == 0.0


def test_asymptotics_match_simulation_for_large_K() -> None:
    # lognormal weights: log w ~ N(-v/2, v), so E w = 1 and rho = e^v - 1
    v, K, R = 0.25, 200, 4000
    rng = np.random.default_rng(11)
    log_w = -v / 2 + np.sqrt(v) * rng.standard_normal((R, K))
    est = dn.importance_log_likelihood(log_w)
    bias, sd = dn.iwae_asymptotics(v, K)
    assert abs(est.mean() - bias) < 4 * est.std() / np.sqrt(R) + abs(bias) * 4 * np.expm1(v) / K
    assert abs(est.std() / sd - 1) < 4 / np.sqrt(2 * R) + 2 * np.expm1(v) / K


# --- error paths -------------------------------------------------------------------------------

def test_fit_errors() -> None:
    x = data()
    with pytest.raises(ValueError, match="x must be 2-dimensional"):
        dn.ppca_fit(x[0], 2)
    with pytest.raises(ValueError, match="x must have at least 2 rows"):
        dn.ppca_fit(x[:1], 2)
    with pytest.raises(ValueError, match="x must have at least 2 columns"):
        dn.ppca_fit(x[:, :1], 1)
    with pytest.raises(ValueError, match="x must be finite"):
        dn.ppca_fit(np.where(x > 1, np.nan, x), 2)
    with pytest.raises(TypeError, match="x must be an array"):
        dn.ppca_fit("abc", 2)
    with pytest.raises(TypeError, match="q must be an integer"):
        dn.ppca_fit(x, 2.0)
    with pytest.raises(ValueError, match="q must be >= 1"):
        dn.ppca_fit(x, 0)
    with pytest.raises(ValueError, match=r"q must lie in \[1, 5\]"):
        dn.ppca_fit(x, 6)
    with pytest.raises(ValueError, match="ddof must be 0 or 1"):
        dn.ppca_fit(x, 2, ddof=2)
    with pytest.raises(TypeError, match="ddof must be an integer"):
        dn.ppca_fit(x, 2, ddof=0.5)
    with pytest.raises(ValueError, match="ddof must be >= 0"):
        dn.ppca_fit(x, 2, ddof=-1)
    flat = np.zeros((10, 4))
    flat[:, 0] = np.arange(10)
    with pytest.raises(ValueError, match="noise variance of a q=1 fit is 0"):
        dn.ppca_fit(flat, 1)


def test_model_errors() -> None:
    model = random_model()
    x = data(n=3)
    with pytest.raises(TypeError, match="model must be a PPCA"):
        dn.ppca_log_marginal(x, (model.mean, model.W, model.sigma2))
    with pytest.raises(ValueError, match=r"model\.sigma2 must be > 0"):
        dn.ppca_covariance(dn.PPCA(model.mean, model.W, 0.0))
    with pytest.raises(ValueError, match=r"model\.W must have shape"):
        dn.ppca_posterior(x, dn.PPCA(model.mean, model.W[:4], 1.0))
    with pytest.raises(ValueError, match=r"model\.mean must be 1-dimensional"):
        dn.ppca_covariance(dn.PPCA(model.W, model.W, 1.0))
    with pytest.raises(ValueError, match=r"model\.sigma2 must be finite"):
        dn.ppca_covariance(dn.PPCA(model.mean, model.W, np.nan))
    with pytest.raises(ValueError, match=r"model\.sigma2 must be 0-dimensional"):
        dn.ppca_covariance(dn.PPCA(model.mean, model.W, np.ones(2)))
    with pytest.raises(ValueError, match=r"x must have shape \(\*, 6\)"):
        dn.ppca_log_marginal(x[:, :5], model)
    with pytest.raises(ValueError, match=r"z must have shape \(3, \*, 2\)"):
        dn.ppca_log_joint(x, np.zeros((3, 4, 3)), model)
    with pytest.raises(ValueError, match="z must be 3-dimensional"):
        dn.ppca_log_joint(x, np.zeros((3, 2)), model)
    m, cov = dn.ppca_posterior(x, model)
    with pytest.raises(ValueError, match="mean_r must have one row per sample"):
        dn.ppca_expected_log_lik(x, model, m[:2], cov)
    with pytest.raises(ValueError, match="cov_r must be positive definite"):
        dn.ppca_expected_log_lik(x, model, m, -cov)


def test_gaussian_errors() -> None:
    S = spd(2, 0)
    mean = np.zeros((3, 2))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="cov must be symmetric"):
        dn.gaussian_log_density(np.zeros((3, 1, 2)), mean, S + np.array([[0, 1], [0, 0]]))
    with pytest.raises(ValueError, match="cov must be positive definite"):
        dn.sample_gaussian(mean, np.diag([1.0, -1.0]), 2, rng)
    with pytest.raises(ValueError, match="cov must be a square matrix"):
        dn.sample_gaussian(mean, np.ones((2, 3)), 2, rng)
    with pytest.raises(ValueError, match="cov must be 2-dimensional"):
        dn.sample_gaussian(mean, np.ones(2), 2, rng)
    with pytest.raises(ValueError, match=r"mean must have shape \(\*, 2\)"):
        dn.sample_gaussian(np.zeros((3, 3)), S, 2, rng)
    with pytest.raises(TypeError, match="K must be an integer"):
        dn.sample_gaussian(mean, S, 2.5, rng)
    with pytest.raises(ValueError, match="K must be >= 1"):
        dn.sample_gaussian(mean, S, 0, rng)
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator"):
        dn.sample_gaussian(mean, S, 2, 0)
    with pytest.raises(ValueError, match=r"z must have shape \(3, \*, 2\)"):
        dn.gaussian_log_density(np.zeros((2, 1, 2)), mean, S)
    with pytest.raises(ValueError, match="cov_p must be positive definite"):
        dn.gaussian_kl(mean, S, mean, -S)
    with pytest.raises(ValueError, match=r"cov_p must have shape \(2, 2\)"):
        dn.gaussian_kl(mean, S, mean, np.eye(3))
    with pytest.raises(ValueError, match="mean_r and mean_p must have the same shape"):
        dn.gaussian_kl(mean, S, mean[:2], S)
    with pytest.raises(ValueError, match="mean_p and mean_r must have the same shape"):
        dn.weight_log_second_moment(mean, S, mean[:2], S)
    with pytest.raises(ValueError, match="cov_r must be positive definite"):
        dn.weight_log_second_moment(mean, S, mean, 0 * S)
    with pytest.raises(ValueError, match="mean_p must be finite"):
        dn.weight_log_second_moment(mean + np.nan, S, mean, S)


def test_estimate_errors() -> None:
    with pytest.raises(ValueError, match="log_w must be 2-dimensional"):
        dn.importance_log_likelihood(np.zeros(3))
    with pytest.raises(ValueError, match="log_w must hold at least one weight"):
        dn.importance_log_likelihood(np.zeros((2, 0)))
    with pytest.raises(ValueError, match="log_w must be finite"):
        dn.importance_log_likelihood(np.array([[0.0, -np.inf]]))
    with pytest.raises(TypeError, match="log_w must be an array"):
        dn.importance_log_likelihood("w")
    with pytest.raises(ValueError, match="log_second_moment must be >= 0"):
        dn.iwae_asymptotics(-0.1, 3)
    with pytest.raises(ValueError, match="log_second_moment must be >= 0"):
        dn.iwae_asymptotics(np.nan, 3)
    with pytest.raises(TypeError, match="log_second_moment must be an array"):
        dn.iwae_asymptotics("x", 3)
    with pytest.raises(TypeError, match="log_second_moment must be an array"):
        dn.iwae_asymptotics(None, 3)
    with pytest.raises(ValueError, match="K must be >= 1"):
        dn.iwae_asymptotics(1.0, 0)
    with pytest.raises(TypeError, match="K must be an array"):
        dn.iwae_asymptotics(1.0, "K")
