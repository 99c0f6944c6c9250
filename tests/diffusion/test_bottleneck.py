"""Tests of kexue_notes.diffusion.bottleneck: Gaussian KL divergences, the information, rate, gap
and
distortion of a linear-Gaussian encoder, the optimal encoder, and every error path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import optimize, stats

from kexue_notes.diffusion import bottleneck as bn


def spd(rng: np.random.Generator, k: int, floor: float = 0.2) -> np.ndarray:
    """A random symmetric positive definite matrix with eigenvalues above ``floor``."""
    m = rng.standard_normal((k, k))
    return m @ m.T / k + floor * np.eye(k)


def channel(seed: int, k: int = 2, d: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random encoder (A, S) and data covariance sigma_x."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((k, d)), spd(rng, k), spd(rng, d)


channels = st.builds(channel, st.integers(0, 10_000), st.integers(1, 4), st.integers(1, 4))


# --- gaussian_kl and gaussian_kl_standard ------------------------------------------------------

def test_gaussian_kl_one_dimensional_closed_form() -> None:
    mu, s2, m, v = 0.3, 0.5, -1.2, 2.0
    expected = 0.5 * (np.log(v / s2) + (s2 + (mu - m) ** 2) / v - 1)
    got = bn.gaussian_kl([mu], [[s2]], [m], [[v]])
    assert got.shape == ()
    assert_allclose(got, expected, rtol=1e-14)


def test_gaussian_kl_matches_torch_for_a_batch() -> None:
    rng = np.random.default_rng(1)
    cp, cq = spd(rng, 3), spd(rng, 3)
    mp, mq = rng.standard_normal((5, 3)), rng.standard_normal(3)
    ours = bn.gaussian_kl(mp, cp, mq, cq)
    P = torch.distributions.MultivariateNormal(torch.tensor(mp), torch.tensor(cp))
    Q = torch.distributions.MultivariateNormal(torch.tensor(mq), torch.tensor(cq))
    assert ours.shape == (5,)
    assert_allclose(ours, torch.distributions.kl_divergence(P, Q).numpy(), rtol=1e-12)


def test_gaussian_kl_is_zero_only_for_equal_normals() -> None:
    rng = np.random.default_rng(2)
    c, m = spd(rng, 3), rng.standard_normal(3)
    assert abs(bn.gaussian_kl(m, c, m, c)) < 1e-14
    assert bn.gaussian_kl(m, c, m + 0.01, c) > 0
    assert bn.gaussian_kl(m, c, m, 1.01 * c) > 0


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 4))
def test_gaussian_kl_is_invariant_under_affine_maps(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    cp, cq = spd(rng, k), spd(rng, k)
    mp, mq, b = rng.standard_normal((3, k))
    M = rng.standard_normal((k, k)) + 3 * np.eye(k)               # invertible
    kl = bn.gaussian_kl(mp, cp, mq, cq)
    kl_mapped = bn.gaussian_kl(M @ mp + b, M @ cp @ M.T, M @ mq + b, M @ cq @ M.T)
    assert kl >= 0
    assert_allclose(kl_mapped, kl, rtol=1e-8, atol=1e-10)


def test_gaussian_kl_standard_equals_the_general_formula() -> None:
    rng = np.random.default_rng(3)
    mu, logvar = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    ours = bn.gaussian_kl_standard(mu, logvar)
    general = [bn.gaussian_kl(m, np.diag(np.exp(lv)), np.zeros(3), np.eye(3))
               for m, lv in zip(mu, logvar, strict=True)]
    assert ours.shape == (4,)
    assert_allclose(ours, general, rtol=1e-13)
    assert bn.gaussian_kl_standard(np.zeros(3), np.zeros(3)) == 0


def test_gaussian_kl_standard_in_torch_keeps_gradients() -> None:
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(6, 2, generator=g, dtype=torch.float64, requires_grad=True)
    logvar = torch.randn(6, 2, generator=g, dtype=torch.float64, requires_grad=True)
    kl = bn.gaussian_kl_standard(mu, logvar)
    assert isinstance(kl, torch.Tensor) and kl.shape == (6,)
    ref = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, torch.exp(0.5 * logvar)),
        torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(-1)
    assert_allclose(kl.detach().numpy(), ref.detach().numpy(), rtol=1e-13)
    assert_allclose(kl.detach().numpy(), bn.gaussian_kl_standard(mu.detach().numpy(),
                                                                 logvar.detach().numpy()),
                    rtol=1e-14)
    kl.sum().backward()
    assert_allclose(mu.grad.numpy(), mu.detach().numpy(), rtol=1e-14)
    assert_allclose(logvar.grad.numpy(), 0.5 * np.expm1(logvar.detach().numpy()), rtol=1e-13)


# --- the linear-Gaussian channel ---------------------------------------------------------------

def test_one_dimensional_closed_forms() -> None:
    a, s2, lam = 1.3, 0.4, 2.5
    A, S, sx = [[a]], [[s2]], [[lam]]
    vz = a**2 * lam + s2
    assert_allclose(bn.linear_gaussian_marginal(A, S, sx), [[vz]], rtol=1e-15)
    assert_allclose(bn.linear_gaussian_mi(A, S, sx), 0.5 * np.log1p(a**2 * lam / s2), rtol=1e-14)
    assert_allclose(bn.linear_gaussian_rate(A, S, sx), 0.5 * (vz - 1 - np.log(s2)), rtol=1e-14)
    assert_allclose(bn.linear_gaussian_gap(A, S, sx), 0.5 * (vz - 1 - np.log(vz)), rtol=1e-13)
    assert_allclose(bn.linear_gaussian_distortion(A, S, sx), lam * s2 / vz, rtol=1e-14)
    assert_allclose(bn.linear_vib_loss(A, S, sx, 0.7),
                    lam * s2 / vz + 0.7 * 0.5 * (vz - 1 - np.log(s2)), rtol=1e-14)


def test_mi_equals_log_det_form_and_joint_entropies() -> None:
    A, S, sx = channel(4, k=3, d=4)
    mi = bn.linear_gaussian_mi(A, S, sx)
    _, logdet = np.linalg.slogdet(np.eye(3) + np.linalg.solve(S, A @ sx @ A.T))
    assert_allclose(mi, 0.5 * logdet, rtol=1e-13)
    sz = A @ sx @ A.T + S
    joint = np.block([[sx, sx @ A.T], [A @ sx, sz]])
    h = [stats.multivariate_normal(cov=c).entropy() for c in (sx, sz, joint)]
    assert_allclose(mi, h[0] + h[1] - h[2], rtol=1e-12)
    assert bn.linear_gaussian_mi(np.zeros((3, 4)), S, sx) == pytest.approx(0, abs=1e-15)


@settings(max_examples=40, deadline=None)
@given(channels, st.integers(0, 10_000))
def test_rate_is_information_plus_gap_for_any_gaussian_prior(ch: tuple, seed: int) -> None:
    A, S, sx = ch
    k = A.shape[0]
    rng = np.random.default_rng(seed)
    m, c = rng.standard_normal(k), spd(rng, k)
    mi = bn.linear_gaussian_mi(A, S, sx)
    for prior in ({}, {"prior_mean": m, "prior_cov": c}):
        rate = bn.linear_gaussian_rate(A, S, sx, **prior)
        gap = bn.linear_gaussian_gap(A, S, sx, **prior)
        assert mi >= -1e-12 and gap >= -1e-12
        assert_allclose(rate, mi + gap, rtol=1e-10, atol=1e-10)


@settings(max_examples=30, deadline=None)
@given(channels, st.integers(0, 10_000))
def test_information_and_distortion_ignore_invertible_maps_of_the_code(ch: tuple,
                                                                       seed: int) -> None:
    A, S, sx = ch
    k = A.shape[0]
    M = np.random.default_rng(seed).standard_normal((k, k)) + 3 * np.eye(k)
    assert_allclose(bn.linear_gaussian_mi(M @ A, M @ S @ M.T, sx),
                    bn.linear_gaussian_mi(A, S, sx), rtol=1e-9, atol=1e-11)
    assert_allclose(bn.linear_gaussian_distortion(M @ A, M @ S @ M.T, sx),
                    bn.linear_gaussian_distortion(A, S, sx), rtol=1e-9, atol=1e-11)


def test_bound_is_tight_exactly_when_the_prior_is_the_aggregate() -> None:
    A, S, sx = channel(5)
    sz = bn.linear_gaussian_marginal(A, S, sx)
    k = sz.shape[0]
    mi = bn.linear_gaussian_mi(A, S, sx)
    assert_allclose(bn.linear_gaussian_rate(A, S, sx, np.zeros(k), sz), mi, rtol=1e-13)
    assert abs(bn.linear_gaussian_gap(A, S, sx, np.zeros(k), sz)) < 1e-14
    m = np.array([0.5, -1.0])
    extra = bn.linear_gaussian_rate(A, S, sx, m, sz) - mi
    assert_allclose(extra, 0.5 * m @ np.linalg.solve(sz, m), rtol=1e-12)


def test_rate_is_the_average_kl_monte_carlo() -> None:
    A, S, sx = channel(6)
    rng = np.random.default_rng(0)
    x, _ = bn.sample_linear_gaussian(A, S, sx, 50_000, rng)
    per_x = bn.gaussian_kl(x @ A.T, S, np.zeros(2), np.eye(2))
    se = per_x.std(ddof=1) / np.sqrt(len(per_x))
    assert abs(per_x.mean() - bn.linear_gaussian_rate(A, S, sx)) < 4 * se


def test_distortion_and_information_density_monte_carlo() -> None:
    A, S, sx = channel(7)
    rng = np.random.default_rng(1)
    x, z = bn.sample_linear_gaussian(A, S, sx, 100_000, rng)
    decoder = sx @ A.T @ np.linalg.inv(bn.linear_gaussian_marginal(A, S, sx))
    err = ((x - z @ decoder.T) ** 2).sum(axis=1)
    assert abs(err.mean() - bn.linear_gaussian_distortion(A, S, sx)) < 4 * err.std() / 316
    dens = bn.information_density(x, z, A, S, sx)
    assert dens.shape == (100_000,)
    assert abs(dens.mean() - bn.linear_gaussian_mi(A, S, sx)) < 4 * dens.std() / 316
    sz = bn.linear_gaussian_marginal(A, S, sx)
    ref = (stats.multivariate_normal(np.zeros(2), S).logpdf(z - x @ A.T)
           - stats.multivariate_normal(np.zeros(2), sz).logpdf(z))
    assert_allclose(dens, ref, rtol=1e-10, atol=1e-10)


def test_sampling_is_seeded_and_has_the_right_moments() -> None:
    A, S, sx = channel(8)
    x1, z1 = bn.sample_linear_gaussian(A, S, sx, 40_000, np.random.default_rng(3))
    x2, z2 = bn.sample_linear_gaussian(A, S, sx, 40_000, np.random.default_rng(3))
    assert x1.shape == (40_000, 3) and z1.shape == (40_000, 2)
    assert np.array_equal(x1, x2) and np.array_equal(z1, z2)
    cov = np.cov(np.hstack([x1, z1]), rowvar=False)
    joint = np.block([[sx, sx @ A.T], [A @ sx, bn.linear_gaussian_marginal(A, S, sx)]])
    # entrywise standard error of a sample covariance is at most sqrt(2/n) * max variance
    assert np.abs(cov - joint).max() < 5 * np.sqrt(2 / 40_000) * np.diag(joint).max()


# --- the optimal encoder -----------------------------------------------------------------------

def test_water_filling_values_and_shapes() -> None:
    lam = np.array([4.0, 1.0, 0.25])
    rate, dist = bn.water_filling(lam, 1.0)
    assert_allclose(rate, [0.5 * np.log(8), 0.5 * np.log(2), 0.0], rtol=1e-15)
    assert_allclose(dist, [0.5, 0.5, 0.25], rtol=0)
    r2, d2 = bn.water_filling(lam, np.array([0.1, 2.0, 8.0, 9.0]))
    assert r2.shape == d2.shape == (4, 3)
    assert np.all(r2[2:] == 0) and np.all(d2[3] == lam)
    assert np.all(np.diff(r2.sum(axis=1)) <= 0), "more weight on the rate, less information"


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 4), st.floats(0.05, 20.0))
def test_optimal_encoder_attains_the_water_filling_optimum(seed: int, d: int,
                                                           beta: float) -> None:
    sx = spd(np.random.default_rng(seed), d, floor=0.05)
    A, S = bn.optimal_linear_encoder(sx, beta)
    rate, dist = bn.water_filling(np.linalg.eigvalsh(sx), beta)
    assert_allclose(bn.linear_gaussian_marginal(A, S, sx), np.eye(d), atol=1e-12)
    assert abs(bn.linear_gaussian_gap(A, S, sx)) < 1e-11
    assert_allclose(bn.linear_gaussian_mi(A, S, sx), rate.sum(), rtol=1e-10, atol=1e-12)
    assert_allclose(bn.linear_gaussian_distortion(A, S, sx), dist.sum(), rtol=1e-10)
    best = bn.linear_vib_loss(A, S, sx, beta)
    assert_allclose(best, dist.sum() + beta * rate.sum(), rtol=1e-10)
    # no small perturbation of (A, S) does better
    rng = np.random.default_rng(seed + 1)
    for _ in range(5):
        dA = 1e-3 * rng.standard_normal((d, d))
        dL = np.eye(d) + 1e-3 * rng.standard_normal((d, d))
        S2 = dL @ S @ dL.T
        assert bn.linear_vib_loss(A + dA, S2, sx, beta) >= best - 1e-12


def test_optimal_encoder_beats_a_numerical_optimisation() -> None:
    rng = np.random.default_rng(9)
    sx, beta = spd(rng, 3), 0.6

    def loss(p: np.ndarray) -> float:
        L = np.zeros((3, 3))
        L[np.tril_indices(3)] = p[9:]
        return bn.linear_vib_loss(p[:9].reshape(3, 3), L @ L.T + 1e-12 * np.eye(3), sx, beta)

    p0 = np.concatenate([0.3 * rng.standard_normal(9), np.eye(3)[np.tril_indices(3)]])
    res = optimize.minimize(loss, p0, method="BFGS", options={"gtol": 1e-9})
    A, S = bn.optimal_linear_encoder(sx, beta)
    assert res.fun >= bn.linear_vib_loss(A, S, sx, beta) - 1e-12
    assert_allclose(res.fun, bn.linear_vib_loss(A, S, sx, beta), rtol=1e-7)


def test_optimal_encoder_forgets_weak_directions_and_is_rotation_invariant() -> None:
    U, _ = np.linalg.qr(np.random.default_rng(10).standard_normal((3, 3)))
    sx = U @ np.diag([4.0, 1.0, 0.25]) @ U.T
    A, S = bn.optimal_linear_encoder(sx, 1.0)
    assert np.all(A[2] == 0) and S[2, 2] == 1
    assert_allclose(np.abs(A @ U), np.diag(np.sqrt([7 / 8 / 4, 1 / 2, 0])), atol=1e-14)
    Q, _ = np.linalg.qr(np.random.default_rng(11).standard_normal((3, 3)))
    assert_allclose(bn.linear_vib_loss(Q @ A, Q @ S @ Q.T, sx, 1.0),
                    bn.linear_vib_loss(A, S, sx, 1.0), rtol=1e-13)


# --- errors ------------------------------------------------------------------------------------

def test_errors_on_covariances() -> None:
    A, S, sx = channel(12)
    with pytest.raises(ValueError, match="S must have shape"):
        bn.linear_gaussian_mi(A, np.eye(3), sx)
    with pytest.raises(ValueError, match="sigma_x must have shape"):
        bn.linear_gaussian_mi(A, S, np.eye(2))
    with pytest.raises(ValueError, match="S must be symmetric"):
        bn.linear_gaussian_mi(A, [[1.0, 0.5], [0.0, 1.0]], sx)
    with pytest.raises(ValueError, match="S must be positive definite"):
        bn.linear_gaussian_mi(A, [[1.0, 0.0], [0.0, -1.0]], sx)
    with pytest.raises(ValueError, match="sigma_x must be a non-empty square"):
        bn.optimal_linear_encoder(np.ones((2, 3)), 1.0)
    with pytest.raises(ValueError, match="sigma_x must be positive definite"):
        bn.optimal_linear_encoder(np.zeros((2, 2)), 1.0)
    with pytest.raises(ValueError, match="sigma_x must be finite"):
        bn.linear_gaussian_rate(A, S, np.full((3, 3), np.nan))
    with pytest.raises(TypeError, match="S must be an array"):
        bn.linear_gaussian_gap(A, "S", sx)
    with pytest.raises(ValueError, match="cov_p must be 2-dimensional"):
        bn.gaussian_kl([0.0], [1.0], [0.0], [[1.0]])
    with pytest.raises(ValueError, match="cov_q must have shape"):
        bn.gaussian_kl([0.0], [[1.0]], [0.0], np.eye(2))


def test_errors_on_encoder_and_prior() -> None:
    A, S, sx = channel(13)
    with pytest.raises(ValueError, match="A must be 2-dimensional"):
        bn.linear_gaussian_marginal(A[0], S, sx)
    with pytest.raises(ValueError, match="A must have at least one row"):
        bn.linear_gaussian_distortion(np.zeros((0, 3)), S, sx)
    with pytest.raises(TypeError, match="A must be an array"):
        bn.linear_gaussian_mi(None, S, sx)
    with pytest.raises(ValueError, match=r"prior_mean must have shape \(2\)"):
        bn.linear_gaussian_rate(A, S, sx, prior_mean=np.zeros(3))
    with pytest.raises(ValueError, match="prior_cov must be positive definite"):
        bn.linear_gaussian_gap(A, S, sx, prior_cov=-np.eye(2))


def test_errors_on_means_and_logvars() -> None:
    with pytest.raises(ValueError, match=r"mu_p must have shape \(\.\.\., 2\)"):
        bn.gaussian_kl([0.0, 1.0, 2.0], np.eye(2), [0.0, 0.0], np.eye(2))
    with pytest.raises(ValueError, match=r"mu_q must have shape \(\.\.\., 2\)"):
        bn.gaussian_kl([0.0, 1.0], np.eye(2), 0.0, np.eye(2))
    with pytest.raises(ValueError, match="mu_p and mu_q must broadcast"):
        bn.gaussian_kl(np.zeros((3, 2)), np.eye(2), np.zeros((4, 2)), np.eye(2))
    with pytest.raises(ValueError, match="mu and logvar must have the same shape"):
        bn.gaussian_kl_standard(np.zeros((2, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="mu and logvar must have the same shape"):
        bn.gaussian_kl_standard(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match="mu and logvar must have the same shape"):
        bn.gaussian_kl_standard(0.0, 0.0)
    with pytest.raises(ValueError, match="logvar must be finite"):
        bn.gaussian_kl_standard(torch.zeros(2), torch.tensor([0.0, float("inf")]))
    with pytest.raises(TypeError, match="mu must be an array"):
        bn.gaussian_kl_standard("mu", [0.0])


def test_errors_on_beta() -> None:
    A, S, sx = channel(14)
    with pytest.raises(ValueError, match="beta must be > 0"):
        bn.linear_vib_loss(A, S, sx, 0.0)
    with pytest.raises(ValueError, match="beta must be a single positive number"):
        bn.linear_vib_loss(A, S, sx, [1.0, 2.0])
    with pytest.raises(ValueError, match="beta must be a single positive number"):
        bn.optimal_linear_encoder(sx, [1.0])
    with pytest.raises(TypeError, match="beta must be a positive number"):
        bn.optimal_linear_encoder(sx, True)
    with pytest.raises(ValueError, match="beta must be > 0"):
        bn.water_filling([1.0, 2.0], [1.0, -1.0])
    with pytest.raises(ValueError, match="beta must be a number or a 1-D array"):
        bn.water_filling([1.0, 2.0], np.ones((2, 2)))
    with pytest.raises(ValueError, match="beta must be finite"):
        bn.water_filling([1.0], float("nan"))
    with pytest.raises(ValueError, match="eigenvalues must be a non-empty 1-D array"):
        bn.water_filling([1.0, 0.0], 1.0)
    with pytest.raises(ValueError, match="eigenvalues must be 1-dimensional"):
        bn.water_filling(np.eye(2), 1.0)


def test_errors_on_samples() -> None:
    A, S, sx = channel(15)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="n must be >= 1"):
        bn.sample_linear_gaussian(A, S, sx, 0, rng)
    with pytest.raises(TypeError, match="n must be an integer"):
        bn.sample_linear_gaussian(A, S, sx, 10.0, rng)
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator"):
        bn.sample_linear_gaussian(A, S, sx, 10, 0)
    x, z = bn.sample_linear_gaussian(A, S, sx, 10, rng)
    with pytest.raises(ValueError, match=r"x must have shape \(\*, 3\)"):
        bn.information_density(x[:, :2], z, A, S, sx)
    with pytest.raises(ValueError, match=r"z must have shape \(10, 2\)"):
        bn.information_density(x, z[:5], A, S, sx)
