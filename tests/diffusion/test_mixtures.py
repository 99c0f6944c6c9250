"""The exact mixture denoiser against Tweedie's formulas by autograd, and the energy distance."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kexue_notes.diffusion import mixtures as mx


def two_moons_like() -> mx.GaussianMixture:
    return mx.gaussian_mixture([0.2, 0.5, 0.3], [[-2.0, 0.0], [1.0, 1.5], [1.5, -1.0]],
                               [0.3, 0.6, 0.4])


def x_t_sample(n: int = 64, seed: int = 0) -> torch.Tensor:
    return 2.0 * torch.randn(n, 2, generator=torch.Generator().manual_seed(seed),
                             dtype=torch.float64)


def score(mix: mx.GaussianMixture, x: torch.Tensor, a: float) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(mx.noisy_log_density(mix, x, a).sum(), x)
    return grad


@pytest.mark.parametrize("a", [0.05, 0.5, 0.9, 0.999])
def test_posterior_mean_is_tweedie(a: float) -> None:
    """E[x0|xt] = (xt + b^2 grad log p(xt)) / a, with the score from autograd."""
    mix, x = two_moons_like(), x_t_sample()
    b2 = 1 - a**2
    want = (x + b2 * score(mix, x, a)) / a
    torch.testing.assert_close(mx.posterior_mean_x0(mix, x, a), want, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(mx.optimal_eps(mix, x, a), -b2**0.5 * score(mix, x, a),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("a", [0.3, 0.8])
def test_posterior_variance_is_second_order_tweedie(a: float) -> None:
    """Cov[x0|xt] = (b^2/a^2)(I + b^2 Hessian log p); compare the trace / d."""
    mix, x = two_moons_like(), x_t_sample(8)
    b2 = 1 - a**2
    for i in range(x.shape[0]):
        H = torch.autograd.functional.hessian(
            lambda z: mx.noisy_log_density(mix, z[None], a)[0], x[i])
        want = b2 / a**2 * (2 + b2 * torch.trace(H)) / 2
        got = mx.posterior_variance_x0(mix, x[i:i + 1], a)[0]
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_standard_normal_data_closed_forms() -> None:
    mix = mx.gaussian_mixture([1.0], [[0.0, 0.0, 0.0]], [1.0])
    x = x_t_sample(5).repeat(1, 2)[:, :3]
    a = 0.6
    torch.testing.assert_close(mx.posterior_mean_x0(mix, x, a), a * x)
    torch.testing.assert_close(mx.posterior_variance_x0(mix, x, a),
                               torch.full((5,), 1 - a**2, dtype=torch.float64))
    torch.testing.assert_close(mx.optimal_eps(mix, x, a), (1 - a**2) ** 0.5 * x)


def test_no_noise_returns_the_input() -> None:
    mix, x = two_moons_like(), x_t_sample()
    torch.testing.assert_close(mx.posterior_mean_x0(mix, x, 1.0), x)
    assert float(mx.posterior_variance_x0(mix, x, 1.0).abs().max()) < 1e-12


@settings(max_examples=30, deadline=None)
@given(st.floats(0.01, 1.0), st.integers(0, 10_000))
def test_responsibilities_are_distributions(a: float, seed: int) -> None:
    r = mx.responsibilities(two_moons_like(), x_t_sample(16, seed), a)
    assert bool((r >= 0).all())
    torch.testing.assert_close(r.sum(1), torch.ones(16, dtype=torch.float64))


def test_samples_have_the_mixture_moments() -> None:
    mix = two_moons_like()
    x = mx.sample_mixture(mix, 200_000, torch.Generator().manual_seed(0))
    mean = mix.weights @ mix.means
    second = mix.weights @ (mix.means.pow(2) + mix.stds[:, None] ** 2)
    se = (second - mean**2).sqrt() / np.sqrt(x.shape[0])
    assert bool(((x.mean(0) - mean).abs() < 4 * se).all())      # 4 standard errors


def test_energy_distance_matches_scipy_in_one_dimension() -> None:
    g = np.random.default_rng(0)
    x, y = g.normal(size=(300, 1)), g.normal(0.3, 1.2, size=(200, 1))
    want = scipy.stats.energy_distance(x[:, 0], y[:, 0]) ** 2
    assert mx.energy_distance(x, y) == pytest.approx(want, rel=1e-10)
    assert mx.energy_distance(x, x) == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.floats(-1.0, 1.0))
def test_energy_distance_is_symmetric_and_non_negative(seed: int, shift: float) -> None:
    g = np.random.default_rng(seed)
    x, y = g.normal(size=(40, 2)), g.normal(shift, 1.0, size=(30, 2))
    d = mx.energy_distance(x, y)
    assert d >= -1e-12 and d == pytest.approx(mx.energy_distance(y, x), rel=1e-12, abs=1e-14)


def test_errors_name_the_argument() -> None:
    mix = two_moons_like()
    with pytest.raises(ValueError, match="weights must sum to 1"):
        mx.gaussian_mixture([0.5, 0.6], [[0.0], [1.0]], [1.0, 1.0])
    with pytest.raises(ValueError, match="weights must be 1-dimensional"):
        mx.gaussian_mixture([[1.0]], [[0.0]], [1.0])
    with pytest.raises(ValueError, match=r"means must have shape \(2, \*\)"):
        mx.gaussian_mixture([0.5, 0.5], [[0.0]], [1.0, 1.0])
    with pytest.raises(ValueError, match="stds must be > 0"):
        mx.gaussian_mixture([0.5, 0.5], [[0.0], [1.0]], [1.0, 0.0])
    with pytest.raises(ValueError, match="stds must be finite"):
        mx.gaussian_mixture([0.5, 0.5], [[0.0], [1.0]], [1.0, float("nan")])
    with pytest.raises(TypeError, match="mix must be a GaussianMixture"):
        mx.sample_mixture((1, 2, 3), 5, torch.Generator())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="n must be an integer"):
        mx.sample_mixture(mix, 5.0, torch.Generator())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n must be >= 1"):
        mx.sample_mixture(mix, 0, torch.Generator())
    with pytest.raises(ValueError, match="alpha_bar must be > 0"):
        mx.posterior_mean_x0(mix, x_t_sample(), 0.0)
    with pytest.raises(ValueError, match=r"alpha_bar must lie in \[0, 1\]"):
        mx.responsibilities(mix, x_t_sample(), 1.5)
    with pytest.raises(ValueError, match="alpha_bar must be < 1 for eps"):
        mx.optimal_eps(mix, x_t_sample(), 1.0)
    with pytest.raises(ValueError, match=r"x_t must have shape \(\*, 2\)"):
        mx.noisy_log_density(mix, torch.zeros(4, 3), 0.5)
    with pytest.raises(ValueError, match=r"y must have shape \(\*, 2\)"):
        mx.energy_distance(np.zeros((3, 2)), np.zeros((3, 1)))
