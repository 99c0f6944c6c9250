"""kexue_notes.diffusion.analytic_variance: the optimal reverse variance against closed forms, its
special
cases, the two estimators of the posterior variance on Gaussian data, identities that hold for all
inputs, and every error path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from conftest import random_schedule
from kexue_notes.diffusion import analytic_variance as av
from kexue_notes.diffusion import ddim
from kexue_notes.diffusion import ddpm as dn
from kexue_notes.diffusion import schedule as sch


def step(sched: sch.Schedule, u: float, v: float, frac: float) -> tuple[int, int, float]:
    """A step t -> s and a kernel sigma = frac * beta_bar_s from three numbers in [0, 1]."""
    T = sched.num_steps
    t = 1 + min(int(u * T), T - 1)
    s = min(int(v * t), t - 1)
    return t, s, frac * float(sched.beta_bar[s])


unit = st.floats(0.0, 1.0)


# --- the optimal reverse variance ------------------------------------------------------------

def test_optimal_reverse_variance_closed_form(su: sch.Schedule) -> None:
    t, s, sig, v = 700, 350, 0.3, 0.4
    ab_t, ab_s = float(su.alpha_bar[t]), float(su.alpha_bar[s])
    bb_t, bb_s = float(su.beta_bar[t]), float(su.beta_bar[s])
    gamma = ab_s - ab_t * np.sqrt(bb_s**2 - sig**2) / bb_t
    got = av.optimal_reverse_variance(su, t, s, sig, v)
    assert got.dtype == torch.float64 and got.shape == ()
    assert_allclose(got.item(), sig**2 + gamma**2 * v, rtol=1e-14)


def test_optimal_reverse_variance_special_cases(su: sch.Schedule) -> None:
    t = torch.arange(2, 1001, 7)
    s = t - torch.clamp(t // 3, min=1)
    sig = ddim.ddim_sigma(su, t, s, 1.0)
    # a single data point: no uncertainty, DDPM's fixed_small
    assert_allclose(av.optimal_reverse_variance(su, t, s, sig, 0.0), sig**2, rtol=1e-15)
    # standard normal data: Var[x0 | x_t] = beta_bar_t^2, DDPM's fixed_large of the jump
    assert_allclose(av.optimal_reverse_variance(su, t, s, sig, su.beta_bar[t] ** 2),
                    ddim.jump_variance(su, t, s), rtol=1e-11)
    # deterministic DDIM still has the uncertainty term, with gamma = ab_s - ab_t bb_s / bb_t
    gamma0 = su.alpha_bar[s] - su.alpha_bar[t] * su.beta_bar[s] / su.beta_bar[t]
    assert_allclose(av.optimal_reverse_variance(su, t, s, 0.0, 0.25), gamma0**2 * 0.25,
                    rtol=1e-13)
    # the last step (s = 0) must have sigma = 0 and gamma = 1: the posterior variance itself
    assert_allclose(av.optimal_reverse_variance(su, 40, 0, 0.0, 0.123).item(), 0.123, rtol=1e-15)


def test_optimal_reverse_variance_is_exact_for_gaussian_data(su: sch.Schedule) -> None:
    """One DDPM step, Gaussian data: the exact Var[x_{t-1} | x_t] of diffusion.py."""
    t = torch.arange(1, 1001)
    _, x0_var = dn.gaussian_data_denoiser(su, torch.zeros(1000), t, 0.3, 2.0)
    _, exact = dn.gaussian_data_reverse(su, torch.zeros(1000), t, 0.3, 2.0)
    got = av.optimal_reverse_variance(su, t, t - 1, ddim.ddim_sigma(su, t, t - 1, 1.0), x0_var)
    assert_allclose(got, exact, rtol=1e-12, atol=1e-300)


def test_optimal_variance_keeps_the_marginal_variance(su: sch.Schedule) -> None:
    """Gaussian data, one step from the true marginal with the optimal noise: variance is exact."""
    m, s2 = -0.4, 0.7
    for t, s, eta in ((1000, 100, 0.0), (500, 499, 1.0), (300, 50, 0.6), (20, 0, 0.0)):
        sig = ddim.ddim_sigma(su, t, s, eta)
        _, x0_var = dn.gaussian_data_denoiser(su, torch.zeros(1), t, m, s2)
        noise = av.optimal_reverse_variance(su, t, s, sig, x0_var).sqrt().reshape(1)
        _, var = ddim.gaussian_data_sampler_moments(su, [t, s], sig.reshape(1), m, s2,
                                                    noise_stds=noise)
        assert var == pytest.approx(float(su.alpha_bar[s]) ** 2 * s2
                                    + float(su.beta_bar[s]) ** 2, rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 40), unit, unit, unit, unit)
def test_theorem_form_equals_su_form(seed: int, T: int, u: float, v: float, frac: float,
                                     m: float) -> None:
    """Analytic-DPM's Theorem 1 = sigma^2 + gamma^2 * (beta_bar^2/alpha_bar^2)(1 - E||eps||^2/d)."""
    sched = random_schedule(seed, T)
    t, s, sig = step(sched, u, v, frac)
    x0_var = av.x0_variance_bound(sched, t) * (1 - m)
    want = av.optimal_reverse_variance(sched, t, s, sig, x0_var)
    assert_allclose(av.analytic_dpm_variance(sched, t, s, sig, m), want, rtol=1e-9, atol=1e-300)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 40), unit, unit, unit,
       st.floats(0.0, 10.0))
def test_optimal_variance_between_kernel_and_bound(seed: int, T: int, u: float, v: float,
                                                   frac: float, data_var: float) -> None:
    """sigma^2 <= v* <= sigma^2 + gamma^2 * bound, and v* grows with the uncertainty."""
    sched = random_schedule(seed, T)
    t, s, sig = step(sched, u, v, frac)
    bound = av.x0_variance_bound(sched, t, data_var)
    low = av.optimal_reverse_variance(sched, t, s, sig, 0.0)
    mid = av.optimal_reverse_variance(sched, t, s, sig, bound / 2)
    high = av.optimal_reverse_variance(sched, t, s, sig, bound)
    assert low <= mid <= high
    assert low.item() == pytest.approx(sig**2, rel=1e-12, abs=1e-300)


# --- the two estimators of the averaged posterior variance -----------------------------------

def gaussian_pairs(sched: sch.Schedule, t: int, m: float, s2: float, n: int,
                   seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x0 = m + np.sqrt(s2) * torch.randn(n, 3, generator=gen, dtype=torch.float64)
    x_t = dn.q_sample(sched, x0, torch.randn(n, 3, generator=gen, dtype=torch.float64), t)
    x0_hat, _ = dn.gaussian_data_denoiser(sched, x_t, t, m, s2)
    return x0, x_t, x0_hat


@pytest.mark.parametrize("t", [10, 200, 600])
def test_estimators_match_the_gaussian_closed_form(su: sch.Schedule, t: int) -> None:
    """Both forms are unbiased for s^2 bb^2 / (ab^2 s^2 + bb^2); 5 standard errors of slack."""
    m, s2, n = 0.5, 0.8, 40_000
    x0, x_t, x0_hat = gaussian_pairs(su, t, m, s2, n, seed=t)
    want = dn.gaussian_data_denoiser(su, torch.zeros(1), t, m, s2)[1].item()
    eps = dn.x0_to_eps(su, x_t, x0_hat, t)
    for terms in (av.x0_variance_from_mean(x0, x0_hat, torch.full((3,), m), per_sample=True),
                  av.x0_variance_from_eps(su, eps, t, per_sample=True)):
        assert terms.shape == (n,)
        se = terms.std().item() / np.sqrt(n)
        assert abs(terms.mean().item() - want) < 5 * se


def test_estimators_closed_forms(su: sch.Schedule) -> None:
    x0 = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    # a perfect denoiser explains everything; a constant one nothing
    assert av.x0_variance_from_mean(x0, x0).item() == 0.0
    mean = x0.mean(0)
    assert av.x0_variance_from_mean(x0, mean.expand(2, 2)).item() == pytest.approx(
        ((x0 - mean) ** 2).sum(1).mean().item() / 2)
    assert av.x0_variance_from_mean(x0, x0, mu0=[0.0, 0.0], per_sample=True).tolist() == [0, 0]
    nsr = (su.beta_bar[300] / su.alpha_bar[300]).item() ** 2
    assert av.x0_variance_from_eps(su, torch.zeros(4, 2), 300).item() == pytest.approx(nsr)
    assert av.x0_variance_from_eps(su, torch.ones(4, 2), 300).item() == 0.0
    assert_allclose(av.x0_variance_from_eps(su, [[2.0, 0.0]], 300, per_sample=True), [-nsr])


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 30), st.integers(1, 4))
def test_su_form_depends_on_mu0_only_through_the_sample_means(seed: int, n: int, d: int) -> None:
    """est(a) - est(b) = (2/d) (a - b) . (mean x0_hat - mean x0): zero in expectation."""
    rng = np.random.default_rng(seed)
    x0, x0_hat = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    a, b = rng.normal(size=d), rng.normal(size=d)
    lhs = (av.x0_variance_from_mean(x0, x0_hat, a) - av.x0_variance_from_mean(x0, x0_hat, b)).item()
    rhs = 2 / d * (a - b) @ (x0_hat.mean(0) - x0.mean(0))
    assert lhs == pytest.approx(rhs, rel=1e-9, abs=1e-12)
    per = av.x0_variance_from_mean(x0, x0_hat, a, per_sample=True)
    assert per.mean().item() == pytest.approx(av.x0_variance_from_mean(x0, x0_hat, a).item(),
                                              rel=1e-12, abs=1e-14)


def test_x0_variance_bound(su: sch.Schedule) -> None:
    t = torch.tensor([1, 100, 1000])
    nsr = su.beta_bar[t] ** 2 / su.alpha_bar[t] ** 2
    assert_allclose(av.x0_variance_bound(su, t), nsr, rtol=1e-15)
    assert_allclose(av.x0_variance_bound(su, t, 0.25), torch.clamp(nsr, max=0.25), rtol=1e-15)
    assert av.x0_variance_bound(su, 1000, ((1 - (-1)) / 2) ** 2).item() == 1.0   # data in [-1, 1]
    assert av.x0_variance_bound(su, 5).shape == ()


def test_reverse_step_mse() -> None:
    x = torch.tensor([[1.0, 1.0], [0.0, 3.0]])
    assert av.reverse_step_mse(x, torch.zeros(2, 2)).item() == pytest.approx((2 + 9) / 4)
    assert av.reverse_step_mse(x, x).item() == 0.0


# --- error paths -----------------------------------------------------------------------------

def test_errors_optimal_and_theorem(su: sch.Schedule) -> None:
    for fn, last in ((av.optimal_reverse_variance, "x0_var"), (av.analytic_dpm_variance,
                                                              "eps_sq_mean")):
        with pytest.raises(ValueError, match=last):
            fn(su, 500, 400, 0.1, -0.5)
        with pytest.raises(ValueError, match=last):
            fn(su, 500, 400, 0.1, float("nan"))
        with pytest.raises(ValueError, match=last):
            fn(su, 500, 400, 0.1, torch.ones(2, 2))
        with pytest.raises(TypeError, match=last):
            fn(su, 500, 400, 0.1, True)
        with pytest.raises(ValueError, match="sigma"):
            fn(su, 500, 400, 1.0, 0.1)               # sigma > beta_bar_s
        with pytest.raises(ValueError, match="sigma"):
            fn(su, 500, 400, -0.1, 0.1)
        with pytest.raises(ValueError, match="s must be an earlier time"):
            fn(su, 10, 10, 0.0, 0.1)
        with pytest.raises(ValueError, match="t must lie"):
            fn(su, 1001, 5, 0.0, 0.1)
        with pytest.raises(TypeError, match="schedule"):
            fn("su", 10, 5, 0.0, 0.1)
        with pytest.raises(TypeError, match="t must be an int"):
            fn(su, 10.0, 5, 0.0, 0.1)
    dead = sch.schedule_from_betas([0.5, 1.0])       # alpha_bar_2 = 0: no signal left
    with pytest.raises(ValueError, match="alpha_bar_t"):
        av.analytic_dpm_variance(dead, 2, 1, 0.0, 0.5)


def test_errors_estimators(su: sch.Schedule) -> None:
    ok = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="x0 must be 2-dimensional"):
        av.x0_variance_from_mean(torch.zeros(4), ok)
    with pytest.raises(ValueError, match="x0_hat must have shape"):
        av.x0_variance_from_mean(ok, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="mu0 must have shape"):
        av.x0_variance_from_mean(ok, ok, mu0=[0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="x0_hat must be finite"):
        av.x0_variance_from_mean(ok, torch.full((4, 2), float("nan")))
    with pytest.raises(ValueError, match="x0_hat must have one row per row of x0"):
        av.x0_variance_from_mean(ok, torch.zeros(3, 2), per_sample=True)
    with pytest.raises(TypeError, match="x0 must be"):
        av.x0_variance_from_mean("data", ok)
    with pytest.raises(ValueError, match="eps must be 2-dimensional"):
        av.x0_variance_from_eps(su, torch.zeros(4), 10)
    with pytest.raises(ValueError, match="eps must be finite"):
        av.x0_variance_from_eps(su, torch.full((4, 2), float("inf")), 10)
    with pytest.raises(TypeError, match="t must be a single time"):
        av.x0_variance_from_eps(su, ok, torch.tensor([10]))
    with pytest.raises(ValueError, match="t must lie"):
        av.x0_variance_from_eps(su, ok, 0)
    with pytest.raises(TypeError, match="schedule"):
        av.x0_variance_from_eps(None, ok, 10)
    dead = sch.schedule_from_betas([0.5, 1.0])
    with pytest.raises(ValueError, match="alpha_bar_t"):
        av.x0_variance_from_eps(dead, ok, 2)
    with pytest.raises(ValueError, match="alpha_bar_t"):
        av.x0_variance_bound(dead, torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="data_var"):
        av.x0_variance_bound(su, 10, -1.0)
    with pytest.raises(TypeError, match="data_var"):
        av.x0_variance_bound(su, 10, "1")
    with pytest.raises(ValueError, match="t must lie"):
        av.x0_variance_bound(su, 0)
    with pytest.raises(ValueError, match="mean must have shape"):
        av.reverse_step_mse(ok, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="x_s must be 2-dimensional"):
        av.reverse_step_mse(torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match="mean must be finite"):
        av.reverse_step_mse(ok, torch.full((4, 2), float("nan")))
