"""Tests of kexue_notes.representations.dimension: closed forms, identities, Su's published numbers,
error paths."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import integrate

from kexue_notes.representations import dimension as dim

PHI = (1 + np.sqrt(5)) / 2
KAPPA = 4 / np.log(PHI)
# the constant term c0 of h_n (page, eq. hn-asymptotic)
C0 = np.log(PHI) - np.log(5) / 4 - (3 - np.sqrt(5)) / 5


# --- angle density ---------------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 3, 4, 7.5, 50, 300])
def test_angle_density_is_a_density_with_second_moment_one_over_n(n: float) -> None:
    mass, _ = integrate.quad(lambda x: dim.angle_density(x, n), 0, np.pi)
    m2, _ = integrate.quad(lambda x: np.cos(x) ** 2 * dim.angle_density(x, n), 0, np.pi)
    assert_allclose([mass, m2], [1.0, 1.0 / n], rtol=1e-9)


def test_angle_density_closed_forms() -> None:
    θ = np.linspace(0, np.pi, 7)
    assert_allclose(dim.angle_density(θ, 2), np.full(7, 1 / np.pi))          # uniform angle
    assert_allclose(dim.angle_density(θ, 3), np.sin(θ) / 2, atol=1e-15)      # sin θ / 2
    assert isinstance(dim.angle_density(0.3, 5), float)


def test_angle_density_matches_simulated_angles() -> None:
    rng = np.random.default_rng(0)
    u, v = dim.sample_sphere(20000, 6, rng), dim.sample_sphere(20000, 6, rng)
    cos = np.sum(u * v, axis=1) / 6
    # P(θ < π/3) from the density vs the sample; binomial standard error ≈ 0.003
    p_density, _ = integrate.quad(lambda x: dim.angle_density(x, 6), 0, np.pi / 3)
    assert abs(np.mean(cos > 0.5) - p_density) < 0.015


# --- h_n ----------------------------------------------------------------------------------------

def test_h_n_reproduces_su_table() -> None:
    n = np.array([32, 64, 96, 128, 256, 512])
    table = np.array([-7.77471, -15.4734, -23.1726, -30.8718, -61.6692, -123.264])
    decimals = np.array([5, 4, 4, 4, 4, 3])
    assert np.all(np.abs(dim.h_n(n) - table) <= 0.5 * 10.0**-decimals)


def test_h_n_small_closed_forms() -> None:
    # n = 2: θ uniform, E[e^{2cosθ}] = I0(2); n = 3: cosθ uniform on [-1, 1], E[e^{3x}] = sinh(3)/3
    from scipy.special import i0, i1
    assert_allclose(dim.h_n(2), np.log(i0(2)) - 2 * i1(2) / i0(2), rtol=1e-12)
    t = 3.0
    mgf = np.sinh(t) / t
    dlog = 1 / np.tanh(t) - 1 / t                       # d/dt log(sinh t / t)
    assert_allclose(dim.h_n(3), np.log(mgf) - t * dlog, rtol=1e-12)


def test_h_n_quadrature_equals_bessel_form() -> None:
    n = np.array([2, 2.5, 3, 10, 77, 300, 1000, 3000])
    assert_allclose(dim.h_n(n), dim.h_n_bessel(n), rtol=1e-10)
    for beta in (0.3, 2.5):
        assert_allclose(dim.h_n(n[:6], beta), dim.h_n_bessel(n[:6], beta), rtol=1e-10)


def test_h_n_asymptotics() -> None:
    n = np.array([512.0, 1024.0, 2048.0])
    remainder = dim.h_n(n) + n / 2 * np.log(PHI) - C0
    assert np.all(np.abs(remainder) < 0.1 / n)          # O(1/n) with a small coefficient
    assert_allclose(n * remainder, n[-1] * remainder[-1], rtol=2e-3)


def test_h_n_shapes_and_types() -> None:
    assert isinstance(dim.h_n(10), float)
    assert dim.h_n(np.array([[4, 5], [6, 7]])).shape == (2, 2)
    assert isinstance(dim.h_n_bessel(10), float)
    assert dim.h_n(torch.tensor([4.0, 8.0])).shape == (2,)


@settings(max_examples=30, deadline=None)
@given(st.floats(min_value=2.0, max_value=400.0), st.floats(min_value=0.05, max_value=4.0))
def test_h_n_is_negative_and_decreasing(n: float, beta: float) -> None:
    # h_n is minus a KL divergence between the tilted and the plain angle law, so h_n <= 0
    h0, h1 = dim.h_n(n, beta), dim.h_n(n + 1.0, beta)
    assert h0 < 0 and h1 < h0
    assert_allclose(h0, dim.h_n_bessel(n, beta), rtol=1e-9)


def test_h_n_near_two_dimensions_is_stable_and_quiet() -> None:
    # the peak sits next to θ = 0 when n is barely above 2; quad must neither fail nor warn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for n in (2 + 1e-15, 2 + 1e-8, 2.00001):
            for beta in (0.5, 2.0, 5.0):
                assert_allclose(dim.h_n(n, beta), dim.h_n_bessel(n, beta), rtol=1e-9)
    assert_allclose(dim.h_n(2 + 1e-15), dim.h_n(2), rtol=1e-12)


def test_h_n_bessel_underflow_is_reported() -> None:
    with pytest.raises(ValueError, match="n is too large"):
        dim.h_n_bessel(20000)
    with pytest.raises(ValueError, match="n is too large"):   # I_{nu+1} underflows first here
        dim.h_n_bessel(740, beta=0.0625)
    assert dim.h_n(740, beta=0.0625) < 0


# --- entropy estimate and dimension rules -------------------------------------------------------

def test_entropy_approx_su_example() -> None:
    assert abs(dim.entropy_approx(1e5, 64) - 7.55245) < 5e-6
    assert_allclose(dim.entropy_approx(1e5, 64, conditional=True),
                    np.log(1e5) + dim.h_n(64), rtol=1e-14)
    grid = dim.entropy_approx(np.array([[10.0], [100.0]]), np.array([4, 8, 16]))
    assert grid.shape == (2, 3)


def test_dimension_coefficient_closed_forms() -> None:
    assert_allclose(dim.dimension_coefficient(), KAPPA, rtol=1e-14)
    assert_allclose(dim.dimension_coefficient(conditional=True), KAPPA / 2, rtol=1e-14)
    assert round(dim.dimension_coefficient(), 2) == 8.31


@settings(max_examples=40, deadline=None)
@given(st.floats(min_value=0.05, max_value=20.0))
def test_dimension_coefficient_solves_its_quadratic(beta: float) -> None:
    # κ(β) = 4 / -log(1 - c²) with β c² + c - β = 0; recover c from κ and check the quadratic
    c = np.sqrt(1 - np.exp(-4 / dim.dimension_coefficient(beta)))
    assert abs(beta * c**2 + c - beta) < 1e-9 * max(1.0, beta)


def test_dimension_coefficient_is_the_slope_of_h_n() -> None:
    for beta in (0.5, 1.0, 2.0):
        assert_allclose(dim.h_n(4000, beta) / 4000, -2 / dim.dimension_coefficient(beta), rtol=1e-3)


def test_min_dim_headline_numbers() -> None:
    sizes = np.array([512, 1e5, 5e6])
    assert np.array_equal(np.round(dim.min_dim(sizes)), [52, 96, 128])
    assert np.array_equal(np.round(dim.min_dim(sizes, coef=8.33)), [52, 96, 128])
    assert_allclose(dim.min_dim(np.e**3), 3 * KAPPA)


@settings(max_examples=25, deadline=None)
@given(st.floats(min_value=3.0, max_value=1e8))
def test_min_dim_exact_is_a_root_close_to_the_rule(N: float) -> None:
    n = dim.min_dim_exact(N)
    assert abs(dim.entropy_approx(N, n)) < 1e-8
    # the root sits about κ c0 / 2 ≈ -0.31 below the linear rule once n is moderately large
    if n > 30:
        assert abs(n - dim.min_dim(N) - KAPPA * C0 / 2) < 0.05


def test_min_dim_exact_conditional_and_small_N() -> None:
    n = dim.min_dim_exact(512, conditional=True)
    assert abs(dim.entropy_approx(512, n, conditional=True)) < 1e-8
    assert dim.min_dim_exact(1.0001) == 2.0                 # estimate already negative at n = 2
    assert dim.min_dim_exact(np.array([10.0, 1e3])).shape == (2,)
    for beta in (0.25, 4.0):
        n_beta = dim.min_dim_exact(1e4, beta=beta)
        assert abs(dim.entropy_approx(1e4, n_beta, beta=beta)) < 1e-8


# --- Monte Carlo entropy --------------------------------------------------------------------

def test_sample_sphere_radius_and_seed() -> None:
    x = dim.sample_sphere(100, 7, np.random.default_rng(3))
    assert x.shape == (100, 7)
    assert_allclose(np.linalg.norm(x, axis=1), np.sqrt(7))
    y = dim.sample_sphere(100, 7, np.random.default_rng(3), radius=2.0)
    assert_allclose(np.linalg.norm(y, axis=1), 2.0)
    assert_allclose(y / 2.0, x / np.sqrt(7))


def test_skipgram_entropy_closed_forms() -> None:
    zero = np.zeros((5, 3))
    assert_allclose(dim.skipgram_entropy(zero, np.zeros((4, 3))), np.log(20))   # uniform over 20
    assert_allclose(dim.row_entropy(zero, np.zeros((4, 3))), np.log(4))
    # one dominant pair: entropy near zero; huge scores must not overflow
    U = np.array([[100.0, 0.0], [0.0, 0.0]])
    V = np.array([[100.0, 0.0], [0.0, 0.0]])
    assert dim.skipgram_entropy(U, V) < 1e-10
    assert np.isfinite(dim.skipgram_entropy(U * 10, V * 10))


def test_skipgram_entropy_against_direct_formula_and_torch() -> None:
    rng = np.random.default_rng(1)
    U, V = rng.normal(size=(6, 3)), rng.normal(size=(4, 3))
    s = U @ V.T
    p = np.exp(s) / np.exp(s).sum()
    assert_allclose(dim.skipgram_entropy(U, V), -np.sum(p * np.log(p)), rtol=1e-12)
    q = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
    assert_allclose(dim.row_entropy(U, V), np.mean(-np.sum(q * np.log(q), axis=1)), rtol=1e-12)
    assert_allclose(dim.skipgram_entropy(torch.tensor(U), torch.tensor(V)),
                    dim.skipgram_entropy(U, V), rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 4), st.integers(0, 2**31 - 1),
       st.floats(-50, 50))
def test_entropy_bounds_and_shift_invariance(N: int, M: int, n: int, seed: int,
                                             shift: float) -> None:
    rng = np.random.default_rng(seed)
    U, V = rng.normal(size=(N, n)) * 3, rng.normal(size=(M, n)) * 3
    H, Hrow = dim.skipgram_entropy(U, V), dim.row_entropy(U, V)
    assert -1e-9 <= H <= np.log(N * M) + 1e-9
    assert -1e-9 <= Hrow <= np.log(M) + 1e-9
    # adding a constant to every score (an extra coordinate) leaves both entropies unchanged
    U1 = np.hstack([U, np.full((N, 1), shift)])
    V1 = np.hstack([V, np.ones((M, 1))])
    assert_allclose([dim.skipgram_entropy(U1, V1), dim.row_entropy(U1, V1)], [H, Hrow],
                    rtol=1e-9, atol=1e-9)


def test_mc_entropy_matches_the_estimate_at_small_n() -> None:
    rng = np.random.default_rng(0)
    H = dim.mc_entropy(256, 4, rng, repeats=12)
    assert H.shape == (12,)
    se = H.std(ddof=1) / np.sqrt(12)
    assert abs(H.mean() - dim.entropy_approx(256, 4)) < 4 * se + 1e-3
    Hr = dim.mc_entropy(256, 2, rng, repeats=4, conditional=True)
    assert abs(Hr.mean() - dim.entropy_approx(256, 2, conditional=True)) < 0.01


def test_mc_entropy_is_reproducible() -> None:
    a = dim.mc_entropy(50, 5, np.random.default_rng(7), repeats=3)
    b = dim.mc_entropy(50, 5, np.random.default_rng(7), repeats=3)
    assert np.array_equal(a, b)


# --- Johnson–Lindenstrauss ------------------------------------------------------------------

def test_jl_min_dim_matches_sklearn() -> None:
    from sklearn.random_projection import johnson_lindenstrauss_min_dim
    N = np.array([2, 10, 1e3, 1e6])
    for eps in (0.01, 0.1, 0.5, 0.99):
        theirs = johnson_lindenstrauss_min_dim(N, eps=eps)
        assert np.array_equal(np.floor(dim.jl_min_dim(N, eps)).astype(np.int64), theirs)


@settings(max_examples=50, deadline=None)
@given(st.floats(min_value=1.5, max_value=1e12), st.floats(min_value=1e-3, max_value=0.999))
def test_jl_constant_is_at_least_24(N: float, eps: float) -> None:
    assert dim.jl_min_dim(N, eps) >= 24 * np.log(N) * (1 - 1e-12)


def test_gaussian_projection_preserves_norms_on_average() -> None:
    rng = np.random.default_rng(0)
    X = np.eye(400)                                        # 400 unit vectors
    Y = dim.gaussian_projection(X, 50, rng)
    assert Y.shape == (400, 50)
    # ‖Ax‖² ~ χ²_50 / 50: mean 1, standard deviation 0.2, so the mean of 400 is 1 ± 0.01
    assert abs(np.mean(np.sum(Y**2, axis=1)) - 1) < 0.04


def test_max_distortion_closed_forms() -> None:
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    assert dim.max_distortion(X, X) == 0.0
    assert_allclose(dim.max_distortion(X, 2 * X), 3.0)            # squared distances × 4
    Y = X * np.array([1.0, 0.5])                                  # shrink the second axis
    assert_allclose(dim.max_distortion(X, Y), 0.75)


# --- error paths ----------------------------------------------------------------------------

def test_errors_name_their_argument() -> None:
    with pytest.raises(ValueError, match="theta"):
        dim.angle_density(-0.1, 3)
    with pytest.raises(ValueError, match="n must be >= 2"):
        dim.angle_density(0.5, 1.5)
    with pytest.raises(ValueError, match="n must be >= 2"):
        dim.h_n(np.array([4, 1]))
    with pytest.raises(ValueError, match="finite"):
        dim.h_n(np.nan)
    with pytest.raises(TypeError, match="n must be"):
        dim.h_n("ten")
    with pytest.raises(ValueError, match="beta"):
        dim.h_n(5, beta=0)
    with pytest.raises(ValueError, match="beta"):
        dim.h_n_bessel(5, beta=-1)
    with pytest.raises(ValueError, match="N must be > 1"):
        dim.entropy_approx(1, 5)
    with pytest.raises(ValueError, match="beta"):
        dim.dimension_coefficient(0.0)
    with pytest.raises(ValueError, match="N must be > 1"):
        dim.min_dim(np.array([10, 0.5]))
    with pytest.raises(ValueError, match="coef"):
        dim.min_dim(10, coef=-8.3)
    with pytest.raises(ValueError, match="N must be > 1"):
        dim.min_dim_exact(1)
    with pytest.raises(ValueError, match="beta"):
        dim.min_dim_exact(100, beta=-2)


def test_sampling_errors_name_their_argument() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="N must be an integer"):
        dim.sample_sphere(2.5, 3, rng)
    with pytest.raises(ValueError, match="n must be >= 1"):
        dim.sample_sphere(4, 0, rng)
    with pytest.raises(TypeError, match="rng"):
        dim.sample_sphere(4, 3, 42)
    with pytest.raises(ValueError, match="radius"):
        dim.sample_sphere(4, 3, rng, radius=0.0)
    with pytest.raises(ValueError, match="repeats"):
        dim.mc_entropy(4, 3, rng, repeats=0)
    with pytest.raises(TypeError, match="repeats"):
        dim.mc_entropy(4, 3, rng, repeats=True)
    with pytest.raises(ValueError, match="U must be 2-dimensional"):
        dim.skipgram_entropy(np.ones(3), np.ones((2, 3)))
    with pytest.raises(ValueError, match="same number of columns"):
        dim.row_entropy(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="V must be finite"):
        dim.skipgram_entropy(np.ones((2, 3)), np.full((2, 3), np.inf))


def test_jl_errors_name_their_argument() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="eps"):
        dim.jl_min_dim(100, 1.0)
    with pytest.raises(ValueError, match="eps"):
        dim.jl_min_dim(100, np.array([0.1, 0.0]))
    with pytest.raises(ValueError, match="N must be > 1"):
        dim.jl_min_dim(0, 0.5)
    with pytest.raises(ValueError, match="X must be 2-dimensional"):
        dim.gaussian_projection(np.ones(5), 2, rng)
    with pytest.raises(ValueError, match="k must be >= 1"):
        dim.gaussian_projection(np.ones((5, 3)), 0, rng)
    with pytest.raises(TypeError, match="rng"):
        dim.gaussian_projection(np.ones((5, 3)), 2, None)
    with pytest.raises(ValueError, match="same number of rows"):
        dim.max_distortion(np.eye(3), np.eye(2))
    with pytest.raises(ValueError, match="at least 2 points"):
        dim.max_distortion(np.ones((1, 3)), np.ones((1, 2)))
    with pytest.raises(ValueError, match="pairwise distinct"):
        dim.max_distortion(np.ones((3, 2)), np.ones((3, 2)))
