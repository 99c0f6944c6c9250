"""kexue_notes.diffusion.ddim: the marginal-preserving kernel family, its DDPM special case, the
sampler on
a sub-sequence of times, diffusers' timestep spacings, the exact Gaussian-data moments, and every
error path."""

from __future__ import annotations

import math
import warnings
from itertools import pairwise

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from conftest import random_schedule
from kexue_notes.diffusion import ddim
from kexue_notes.diffusion import ddpm as dn
from kexue_notes.diffusion import schedule as sch

EPS = np.finfo(np.float64).eps


@st.composite
def schedule_and_times(draw: st.DrawFn) -> tuple[sch.Schedule, int, int]:
    T = draw(st.integers(2, 60))
    sched = random_schedule(draw(st.integers(0, 10_000)), T, high=0.3)
    t = draw(st.integers(1, T))
    s = draw(st.integers(0, t - 1))
    return sched, t, s


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# --- jump_variance ---------------------------------------------------------------------------

def test_jump_variance_of_one_step_is_beta_squared(su: sch.Schedule) -> None:
    t = torch.arange(1, 1001)
    assert_allclose(ddim.jump_variance(su, t, t - 1).numpy(), su.beta[1:].numpy() ** 2,
                    rtol=1e-13)


def test_jump_variance_closed_form(su: sch.Schedule) -> None:
    ab2 = su.alpha_bar.numpy() ** 2
    for t, s in ((1000, 0), (1000, 900), (500, 100), (10, 3)):
        assert ddim.jump_variance(su, t, s).item() == pytest.approx(1 - ab2[t] / ab2[s],
                                                                    rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(schedule_and_times(), st.data())
def test_jump_variances_compose(case: tuple[sch.Schedule, int, int], data: st.DataObject) -> None:
    sched, t, s = case
    u = data.draw(st.integers(0, s)) if s > 0 else 0
    if u == s:
        return
    keep = (1 - ddim.jump_variance(sched, t, s)) * (1 - ddim.jump_variance(sched, s, u))
    assert_allclose(keep.item(), 1 - ddim.jump_variance(sched, t, u).item(), rtol=1e-12)


# --- ddim_coefficients and ddim_sigma --------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(schedule_and_times(), st.floats(0, 1))
def test_coefficients_solve_the_moment_equations(case: tuple[sch.Schedule, int, int],
                                                 frac: float) -> None:
    sched, t, s = case
    sigma = frac * sched.beta_bar[s].item()
    kappa, lam = ddim.ddim_coefficients(sched, t, s, sigma)
    ab, bb = sched.alpha_bar, sched.beta_bar
    assert kappa.item() >= 0
    assert_allclose((kappa * ab[t] + lam).item(), ab[s].item(), rtol=0, atol=8 * EPS)
    assert_allclose((kappa**2 * bb[t] ** 2 + sigma**2).item(), bb[s].item() ** 2,
                    rtol=0, atol=8 * EPS)


def test_posterior_is_the_eta_one_member(su: sch.Schedule) -> None:
    t = torch.arange(1, 1001)
    sigma = ddim.ddim_sigma(su, t, t - 1, 1.0)
    assert_allclose(sigma.numpy() ** 2, dn.posterior_variance(su, t).numpy(), rtol=1e-12,
                    atol=1e-300)
    kappa, lam = ddim.ddim_coefficients(su, t, t - 1, sigma)
    a, b = dn.posterior_coefficients(su, t)
    assert_allclose(kappa.numpy(), a.numpy(), rtol=1e-12)
    assert_allclose(lam.numpy(), b.numpy(), rtol=1e-10, atol=1e-15)


@settings(max_examples=40, deadline=None)
@given(schedule_and_times(), st.floats(0, 1))
def test_sigma_matches_the_ddim_paper(case: tuple[sch.Schedule, int, int], eta: float) -> None:
    sched, t, s = case
    a_t, a_s = sched.alpha_bar[t].item() ** 2, sched.alpha_bar[s].item() ** 2
    paper = eta * math.sqrt((1 - a_s) / (1 - a_t)) * math.sqrt(1 - a_t / a_s)
    assert_allclose(ddim.ddim_sigma(sched, t, s, eta).item(), paper, rtol=1e-9, atol=1e-12)


def test_sigma_special_values(su: sch.Schedule) -> None:
    assert ddim.ddim_sigma(su, 700, 300, 0.0).item() == 0.0
    assert ddim.ddim_sigma(su, 700, 0, 1.0).item() == 0.0          # nothing left to add at s = 0
    one = ddim.ddim_sigma(su, 700, 300, 1.0).item()
    assert ddim.ddim_sigma(su, 700, 300, 0.5).item() == pytest.approx(0.5 * one, rel=1e-15)
    # eta above 1 is allowed while sigma <= beta_bar_s, and rejected beyond
    eta_max = su.beta_bar[300].item() / one
    assert ddim.ddim_sigma(su, 700, 300, 0.999 * eta_max).item() < su.beta_bar[300].item()
    with pytest.raises(ValueError, match="eta"):
        ddim.ddim_sigma(su, 700, 300, 1.01 * eta_max)


def test_sigma_at_the_maximum_kills_the_direction(su: sch.Schedule) -> None:
    kappa, lam = ddim.ddim_coefficients(su, 700, 300, su.beta_bar[300])
    assert kappa.item() == 0 and lam.item() == pytest.approx(su.alpha_bar[300].item())


# --- ddim_mean and ddim_step -----------------------------------------------------------------

def test_mean_forms_agree(su: sch.Schedule) -> None:
    x, e = randn(256, 3, seed=1), randn(256, 3, seed=2)
    t, s = 800, 350
    sigma = 0.3 * su.beta_bar[s].item()
    mu = ddim.ddim_mean(su, x, e, t, s, sigma)
    ab, bb = su.alpha_bar, su.beta_bar
    alpha = ab[t] / ab[s]
    su_form = (x - (bb[t] - alpha * math.sqrt(bb[s] ** 2 - sigma**2)) * e) / alpha
    assert_allclose(mu, su_form, rtol=0, atol=1e-12)
    kappa, lam = ddim.ddim_coefficients(su, t, s, sigma)
    assert_allclose(mu, kappa * x + lam * dn.eps_to_x0(su, x, e, t), rtol=0, atol=1e-12)


def test_mean_with_posterior_sigma_is_ddpm(su: sch.Schedule) -> None:
    x, e = randn(64, 2, seed=3), randn(64, 2, seed=4)
    tb = torch.randint(1, 1001, (64,), generator=torch.Generator().manual_seed(5))
    sigma = ddim.ddim_sigma(su, tb, tb - 1, 1.0)
    assert_allclose(ddim.ddim_mean(su, x, e, tb, tb - 1, sigma), dn.ddpm_mean(su, x, e, tb),
                    rtol=0, atol=1e-11)


def test_step_with_posterior_sigma_is_ddpm_step(su: sch.Schedule) -> None:
    x, e = randn(64, 2, seed=6), randn(64, 2, seed=7)
    for t in (1, 2, 500, 1000):
        sigma = ddim.ddim_sigma(su, t, t - 1, 1.0)
        ours = ddim.ddim_step(su, x, e, t, t - 1, sigma, torch.Generator().manual_seed(t))
        ref = dn.ddpm_step(su, x, e, t, torch.Generator().manual_seed(t))
        assert_allclose(ours, ref, rtol=0, atol=1e-11)


def test_step_noise_and_noise_std(su: sch.Schedule) -> None:
    x, e = randn(1000, 1, seed=8), randn(1000, 1, seed=9)
    mean = ddim.ddim_mean(su, x, e, 600, 200, 0.2)
    assert torch.equal(ddim.ddim_step(su, x, e, 600, 200, 0.0), ddim.ddim_mean(su, x, e, 600,
                                                                                 200, 0.0))
    z = randn(1000, 1, seed=10)
    step = ddim.ddim_step(su, x, e, 600, 200, 0.2, torch.Generator().manual_seed(10))
    assert_allclose(step, mean + 0.2 * z, rtol=0, atol=1e-14)
    wide = ddim.ddim_step(su, x, e, 600, 200, 0.2, torch.Generator().manual_seed(10),
                          noise_std=0.5)
    assert_allclose(wide, mean + 0.5 * z, rtol=0, atol=1e-14)
    quiet = ddim.ddim_step(su, x, e, 600, 200, 0.2, None, noise_std=0.0)
    assert torch.equal(quiet, mean)


def test_kernel_keeps_the_marginal_by_monte_carlo(su: sch.Schedule) -> None:
    """x_t ~ q(x_t | x_0) and the kernel with the true x_0 give x_s ~ q(x_s | x_0), any sigma."""
    n, t, s, x0 = 50_000, 900, 400, 0.8
    eps = randn(n, 1, seed=11)
    x_t = dn.q_sample(su, torch.full((n, 1), x0), eps, t)
    for frac in (0.0, 0.5, 1.0):
        sigma = frac * su.beta_bar[s].item()
        x_s = ddim.ddim_step(su, x_t, eps, t, s, sigma, torch.Generator().manual_seed(12))
        sd = su.beta_bar[s].item()
        assert abs(x_s.mean().item() - su.alpha_bar[s].item() * x0) < 4 * sd / math.sqrt(n)
        assert abs(x_s.var().item() / sd**2 - 1) < 4 * math.sqrt(2 / n)


# --- timestep_sequence -----------------------------------------------------------------------

@pytest.mark.parametrize("spacing,offset", [("leading", 0), ("leading", 1), ("trailing", 0),
                                            ("linspace", 0)])
@pytest.mark.parametrize("K", [1, 7, 10, 50, 1000])
def test_timestep_sequence_matches_diffusers(spacing: str, offset: int, K: int) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        from diffusers import DDIMScheduler
    if K == 1000 and offset == 1:
        pytest.skip("offset 1 would push the first time past T")
    sc = DDIMScheduler(timestep_spacing=spacing, steps_offset=offset)
    sc.set_timesteps(K)
    taus = ddim.timestep_sequence(1000, K, spacing, offset)
    assert taus == [int(k) + 1 for k in sc.timesteps] + [0]


def test_timestep_sequence_trailing_has_k_steps() -> None:
    for K in (61, 103, 121, 999):
        taus = ddim.timestep_sequence(1000, K, "trailing")
        assert len(taus) == K + 1 and taus[0] == 1000 and taus[-1] == 0
        assert all(a > b for a, b in pairwise(taus))


def test_timestep_sequence_full_chain() -> None:
    assert ddim.timestep_sequence(5, 5, "leading") == [5, 4, 3, 2, 1, 0]
    assert ddim.timestep_sequence(5, 5, "trailing") == [5, 4, 3, 2, 1, 0]


# --- sample ----------------------------------------------------------------------------------

def test_sample_full_chain_is_ddpm_ancestral(su: sch.Schedule) -> None:
    sched = sch.schedule_su(50, beta_max=0.3)
    x_T = randn(32, 2, seed=13)

    def eps_fn(x: torch.Tensor, t: int) -> torch.Tensor:
        return torch.tanh(x) * t / 50

    ours = ddim.sample(sched, eps_fn, x_T, list(range(50, -1, -1)), eta=1.0,
                                generator=torch.Generator().manual_seed(14))
    g = torch.Generator().manual_seed(14)
    x = x_T
    for t in range(50, 0, -1):
        x = dn.ddpm_step(sched, x, eps_fn(x, t), t, g)
    assert_allclose(ours, x, rtol=0, atol=1e-12)
    assert ours.shape == x_T.shape


def test_sample_sigmas_path_and_determinism(su: sch.Schedule) -> None:
    taus = ddim.timestep_sequence(1000, 10)

    def eps_fn(x: torch.Tensor, t: int) -> torch.Tensor:
        return 0.1 * x

    x_T = randn(8, 3, seed=15)
    a = ddim.sample(su, eps_fn, x_T, taus, eta=0.0)
    b = ddim.sample(su, eps_fn, x_T, taus, sigmas=torch.zeros(10))
    assert torch.equal(a, b)
    path = ddim.sample(su, eps_fn, x_T, taus, eta=0.0, return_path=True)
    assert path.shape == (11, 8, 3) and torch.equal(path[0], x_T) and torch.equal(path[-1], a)
    c = ddim.sample(su, eps_fn, x_T, taus, eta=0.7, generator=torch.Generator().manual_seed(1))
    t, s = torch.tensor(taus[:-1]), torch.tensor(taus[1:])
    d = ddim.sample(su, eps_fn, x_T, taus, sigmas=ddim.ddim_sigma(su, t, s, 0.7),
                    generator=torch.Generator().manual_seed(1))
    assert torch.equal(c, d)
    e = ddim.sample(su, eps_fn, x_T, np.array(taus), eta=0.7, noise_stds=torch.zeros(10))
    assert torch.equal(e, ddim.sample(su, eps_fn, x_T, taus, eta=0.7, noise_stds=[0.0] * 10))


def test_sample_one_step_with_the_true_noise_is_exact(su: sch.Schedule) -> None:
    """A point-mass data set: the optimal noise is the true one, so one jump T -> 0 returns x0."""
    x0 = torch.full((16, 2), 0.3, dtype=torch.float64)
    x_T = dn.q_sample(su, x0, randn(16, 2, seed=16), 1000)

    def eps_fn(x: torch.Tensor, t: int) -> torch.Tensor:
        return dn.x0_to_eps(su, x, x0, t)

    assert_allclose(ddim.sample(su, eps_fn, x_T, [1000, 0], eta=0.0), x0, rtol=0, atol=1e-12)


# --- gaussian_data_sampler_moments -----------------------------------------------------------

def test_moments_point_mass_keeps_the_marginal(su: sch.Schedule) -> None:
    for eta in (0.0, 0.5, 1.0):
        taus = [1000, 700, 300]
        sig = ddim.ddim_sigma(su, torch.tensor(taus[:-1]), torch.tensor(taus[1:]), eta)
        mean, var = ddim.gaussian_data_sampler_moments(su, taus, sig, 0.4, 0.0)
        assert mean == pytest.approx(su.alpha_bar[300].item() * 0.4, rel=1e-12)
        assert var == pytest.approx(su.beta_bar[300].item() ** 2, rel=1e-12)


def test_moments_standard_normal_deterministic_is_a_product_of_cosines(su: sch.Schedule) -> None:
    taus = ddim.timestep_sequence(1000, 10)
    _, var = ddim.gaussian_data_sampler_moments(su, taus, torch.zeros(10), 0.0, 1.0)
    theta = np.arccos(su.alpha_bar.numpy()[taus])
    assert var == pytest.approx(np.prod(np.cos(np.diff(theta)) ** 2), rel=1e-12)


def test_moments_match_monte_carlo(su: sch.Schedule) -> None:
    m, s2, n = 0.5, 0.09, 20_000
    taus = ddim.timestep_sequence(1000, 5)
    x_T = dn.q_sample(su, m + math.sqrt(s2) * randn(n, 1, seed=17), randn(n, 1, seed=18), 1000)

    def eps_fn(x: torch.Tensor, t: int) -> torch.Tensor:
        return dn.x0_to_eps(su, x, dn.gaussian_data_denoiser(su, x, t, m, s2)[0], t)

    for eta in (0.0, 1.0):
        out = ddim.sample(su, eps_fn, x_T, taus, eta=eta,
                          generator=torch.Generator().manual_seed(19))
        sig = ddim.ddim_sigma(su, torch.tensor(taus[:-1]), torch.tensor(taus[1:]), eta)
        mean, var = ddim.gaussian_data_sampler_moments(su, taus, sig, m, s2)
        assert abs(out.mean().item() - mean) < 4 * math.sqrt(var / n)
        assert abs(out.var().item() / var - 1) < 4 * math.sqrt(2 / n)


def test_moments_start_and_noise_options(su: sch.Schedule) -> None:
    taus = [1000, 0]
    mean, var = ddim.gaussian_data_sampler_moments(su, taus, [0.0], 1.0, 0.0, start_mean=0.0,
                                                   start_var=1.0)
    # the optimal eps of a point mass at 1 maps x_T to x0_hat = (x_T - beta_bar eps)/alpha_bar = 1
    assert mean == pytest.approx(1.0) and var == pytest.approx(0.0, abs=1e-20)
    _, var2 = ddim.gaussian_data_sampler_moments(su, [1000, 500], [0.0], 0.0, 0.0,
                                                 noise_stds=[0.3])
    assert var2 == pytest.approx(su.beta_bar[500].item() ** 2 + 0.09, rel=1e-12)


# --- error paths -----------------------------------------------------------------------------

def test_time_errors(su: sch.Schedule) -> None:
    with pytest.raises(ValueError, match="s must be an earlier time"):
        ddim.jump_variance(su, 5, 5)
    with pytest.raises(ValueError, match="t must lie"):
        ddim.jump_variance(su, 1001, 5)
    with pytest.raises(ValueError, match="t must lie"):
        ddim.jump_variance(su, 10, -1)
    with pytest.raises(TypeError, match="t must be an int"):
        ddim.jump_variance(su, 5.0, 1)
    with pytest.raises(ValueError, match="s must have the shape of t"):
        ddim.jump_variance(su, torch.tensor([5, 6]), torch.tensor([1, 2, 3]))
    with pytest.raises(TypeError, match="schedule"):
        ddim.jump_variance("su", 5, 1)
    dead = sch.schedule_from_betas([0.5, 1.0, 0.3])
    with pytest.raises(ValueError, match="alpha_bar_s"):
        ddim.jump_variance(dead, 3, 2)


def test_sigma_errors(su: sch.Schedule) -> None:
    with pytest.raises(ValueError, match="sigma must be <= beta_bar_s"):
        ddim.ddim_coefficients(su, 10, 5, 1.0)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        ddim.ddim_coefficients(su, 10, 5, -0.01)
    with pytest.raises(ValueError, match="sigma must be finite"):
        ddim.ddim_coefficients(su, 10, 5, float("nan"))
    with pytest.raises(TypeError, match="sigma must be a number"):
        ddim.ddim_coefficients(su, 10, 5, True)
    with pytest.raises(ValueError, match="sigma must be a number or a 1-D"):
        ddim.ddim_coefficients(su, 10, 5, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="eta must be finite and >= 0"):
        ddim.ddim_sigma(su, 10, 5, -1.0)
    with pytest.raises(TypeError, match="eta must be a real number"):
        ddim.ddim_sigma(su, 10, 5, "1")


def test_step_errors(su: sch.Schedule) -> None:
    x, e = randn(4, 2), randn(4, 2, seed=1)
    with pytest.raises(ValueError, match="eps must have the shape of x_t"):
        ddim.ddim_mean(su, x, e[:3], 10, 5, 0.0)
    with pytest.raises(ValueError, match="x_t must be finite"):
        ddim.ddim_mean(su, x * float("nan"), e, 10, 5, 0.0)
    with pytest.raises(ValueError, match="t must have one entry per row"):
        ddim.ddim_mean(su, x, e, torch.tensor([10, 10]), 5, 0.0)
    with pytest.raises(ValueError, match=r"generator must be a torch\.Generator when noise"):
        ddim.ddim_step(su, x, e, 10, 5, 0.001)
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator or None"):
        ddim.ddim_step(su, x, e, 10, 5, 0.001, generator=np.random.default_rng(0))
    with pytest.raises(ValueError, match="noise_std must be >= 0"):
        ddim.ddim_step(su, x, e, 10, 5, 0.0, torch.Generator(), noise_std=-1.0)


def test_timestep_sequence_errors() -> None:
    with pytest.raises(ValueError, match="num_steps must lie"):
        ddim.timestep_sequence(10, 11)
    with pytest.raises(ValueError, match="num_steps must lie"):
        ddim.timestep_sequence(10, 0)
    with pytest.raises(TypeError, match="num_steps must be an integer"):
        ddim.timestep_sequence(10, 2.0)
    with pytest.raises(TypeError, match="T must be an integer"):
        ddim.timestep_sequence(10.0, 2)
    with pytest.raises(ValueError, match="spacing must be"):
        ddim.timestep_sequence(10, 2, "uniform")
    with pytest.raises(ValueError, match="steps_offset must be >= 0"):
        ddim.timestep_sequence(10, 2, "leading", -1)
    with pytest.raises(TypeError, match="steps_offset must be an integer"):
        ddim.timestep_sequence(10, 2, "leading", 1.0)
    with pytest.raises(ValueError, match="steps_offset = 6 pushes"):
        ddim.timestep_sequence(10, 2, "leading", 6)


def test_sample_errors(su: sch.Schedule) -> None:
    x = randn(4, 2)

    def eps_fn(x: torch.Tensor, t: int) -> torch.Tensor:
        return x

    with pytest.raises(ValueError, match="exactly one of eta and sigmas"):
        ddim.sample(su, eps_fn, x, [10, 0])
    with pytest.raises(ValueError, match="exactly one of eta and sigmas"):
        ddim.sample(su, eps_fn, x, [10, 0], eta=0.0, sigmas=[0.0])
    with pytest.raises(TypeError, match="eps_fn must be callable"):
        ddim.sample(su, None, x, [10, 0], eta=0.0)
    with pytest.raises(ValueError, match="timesteps must be strictly decreasing"):
        ddim.sample(su, eps_fn, x, [10, 10, 0], eta=0.0)
    with pytest.raises(ValueError, match="timesteps must lie"):
        ddim.sample(su, eps_fn, x, [1001, 0], eta=0.0)
    with pytest.raises(ValueError, match="timesteps must hold at least two"):
        ddim.sample(su, eps_fn, x, [10], eta=0.0)
    with pytest.raises(TypeError, match="timesteps must be a sequence"):
        ddim.sample(su, eps_fn, x, 10, eta=0.0)
    with pytest.raises(TypeError, match="timesteps must be an integer"):
        ddim.sample(su, eps_fn, x, [10.0, 0], eta=0.0)
    with pytest.raises(ValueError, match=r"sigmas must have one entry per step, shape \(1,\)"):
        ddim.sample(su, eps_fn, x, [10, 0], sigmas=[0.0, 0.0])
    with pytest.raises(ValueError, match=r"noise_stds must have one entry per step"):
        ddim.sample(su, eps_fn, x, [10, 0], eta=0.0, noise_stds=[0.0, 0.0])
    with pytest.raises(ValueError, match="sigmas must be <= beta_bar_s"):
        ddim.sample(su, eps_fn, x, [10, 5], sigmas=[1.0])
    with pytest.raises(ValueError, match=r"eps_fn\(x, t\) must return the shape of x"):
        ddim.sample(su, lambda x, t: x[:2], x, [10, 0], eta=0.0)


def test_moments_errors(su: sch.Schedule) -> None:
    with pytest.raises(ValueError, match="data_var must be finite and >= 0"):
        ddim.gaussian_data_sampler_moments(su, [10, 0], [0.0], 0.0, -1.0)
    with pytest.raises(ValueError, match="start_var must be finite and >= 0"):
        ddim.gaussian_data_sampler_moments(su, [10, 0], [0.0], 0.0, 1.0, start_var=-1.0)
    with pytest.raises(ValueError, match="data_mean must be finite"):
        ddim.gaussian_data_sampler_moments(su, [10, 0], [0.0], float("inf"), 1.0)
    with pytest.raises(TypeError, match="start_mean must be a real number"):
        ddim.gaussian_data_sampler_moments(su, [10, 0], [0.0], 0.0, 1.0, start_mean="0")
    with pytest.raises(ValueError, match=r"sigmas must have one entry per step"):
        ddim.gaussian_data_sampler_moments(su, [10, 5, 0], [0.0], 0.0, 1.0)
    with pytest.raises(ValueError, match="timesteps must be strictly decreasing"):
        ddim.gaussian_data_sampler_moments(su, [0, 10], [0.0], 0.0, 1.0)
