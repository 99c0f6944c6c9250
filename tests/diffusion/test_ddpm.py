"""kexue_notes.diffusion.ddpm: forward process, posterior and reverse step against closed forms,
identities, an independent block-formula computation, diffusers, and every error path."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from conftest import random_schedule
from kexue_notes.diffusion import ddpm as dn
from kexue_notes.diffusion import schedule as sch

EPS = np.finfo(np.float64).eps


schedules = st.builds(random_schedule, st.integers(0, 10_000), st.integers(1, 60))


# --- forward process -------------------------------------------------------------------------

def test_q_step_and_q_sample_closed_forms(su: sch.Schedule) -> None:
    x = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64)
    e = torch.tensor([[0.3, 0.1], [-1.0, 2.0]], dtype=torch.float64)
    assert torch.equal(dn.q_step(su, x, e, 7), su.alpha[7] * x + su.beta[7] * e)
    assert torch.equal(dn.q_sample(su, x, e, 7), su.alpha_bar[7] * x + su.beta_bar[7] * e)
    assert torch.equal(dn.q_sample(su, x, e, 0), x)                 # t = 0 is the data
    tb = torch.tensor([3, 900])
    out = dn.q_sample(su, x, e, tb)
    for i in range(2):
        assert torch.equal(out[i], dn.q_sample(su, x[i], e[i], int(tb[i])))


def test_q_sample_accepts_numpy_and_lists(su: sch.Schedule) -> None:
    out = dn.q_sample(su, [1.0, 2.0], np.zeros(2), np.int64(3))
    assert out.dtype == torch.float64
    assert_allclose(out.numpy(), su.alpha_bar[3].item() * np.array([1.0, 2.0]))
    out_b = dn.q_sample(su, np.ones((2, 3)), np.zeros((2, 3)), np.array([1, 2]))
    assert out_b.shape == (2, 3)


def test_forward_marginal_by_monte_carlo(su: sch.Schedule) -> None:
    g = torch.Generator().manual_seed(0)
    n, t, x0 = 20_000, 60, 1.3
    x = torch.full((n,), x0, dtype=torch.float64)
    for k in range(1, t + 1):
        x = dn.q_step(su, x, torch.randn(n, generator=g, dtype=torch.float64), k)
    sd = su.beta_bar[t].item()
    assert abs(x.mean().item() - su.alpha_bar[t].item() * x0) < 4 * sd / np.sqrt(n)
    assert abs(x.var().item() - sd**2) < 4 * sd**2 * np.sqrt(2 / (n - 1))


# --- posterior -------------------------------------------------------------------------------

def chain_covariance(s: sch.Schedule) -> tuple[np.ndarray, np.ndarray]:
    """Covariance of (x_0 = 0, x_1, ..., x_T) built step by step from the chain's noises (no closed
    forms), and the signal factors c_t = alpha_1 ... alpha_t of x_0 in x_t."""
    al, be = s.alpha.numpy(), s.beta.numpy()
    T = s.num_steps
    L = np.zeros((T + 1, T + 1))
    c = np.ones(T + 1)
    for k in range(1, T + 1):
        L[k] = al[k] * L[k - 1]
        L[k, k] = be[k]
        c[k] = al[k] * c[k - 1]
    return L @ L.T, c


def block_formula(s: sch.Schedule) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights of x_t and x_0 in E[x_{t-1} | x_t, x_0] and its variance, for t = 1..T, from the
    covariance of the chain written as a linear map of its noises (no closed forms used)."""
    T = s.num_steps
    C, c = chain_covariance(s)
    t = np.arange(1, T + 1)
    w = C[t - 1, t] / C[t, t]
    return w, c[t - 1] - w * c[t], C[t - 1, t - 1] - C[t - 1, t]**2 / C[t, t]


@settings(max_examples=30, deadline=None)
@given(schedules)
def test_posterior_equals_gaussian_conditioning(s: sch.Schedule) -> None:
    w, w0, var = block_formula(s)
    t = torch.arange(1, s.num_steps + 1)
    a, b = dn.posterior_coefficients(s, t)
    assert_allclose(a.numpy(), w, rtol=0, atol=64 * EPS)
    assert_allclose(b.numpy(), w0, rtol=0, atol=64 * EPS)
    assert_allclose(dn.posterior_variance(s, t).numpy(), var, rtol=0, atol=64 * EPS)


def test_posterior_closed_form_and_mean(su: sch.Schedule) -> None:
    t = 40
    bb2, bbp2 = su.beta_bar[t]**2, su.beta_bar[t - 1]**2
    a, b = dn.posterior_coefficients(su, t)
    assert a.ndim == 0
    assert a.item() == pytest.approx((su.alpha[t] * bbp2 / bb2).item(), rel=1e-15)
    assert b.item() == pytest.approx((su.alpha_bar[t - 1] * su.beta[t]**2 / bb2).item(), rel=1e-15)
    assert dn.posterior_variance(su, t).item() == pytest.approx(
        (bbp2 * su.beta[t]**2 / bb2).item(), rel=1e-15)
    assert dn.posterior_variance(su, 1).item() == 0.0
    assert dn.posterior_coefficients(su, 1)[1].item() == pytest.approx(1.0, rel=1e-15)
    x_t = torch.tensor([0.4, -1.0], dtype=torch.float64)
    x0 = torch.tensor([2.0, 0.5], dtype=torch.float64)
    assert_allclose(dn.posterior_mean(su, x_t, x0, t).numpy(), (a * x_t + b * x0).numpy(),
                    rtol=1e-15)


def test_posterior_by_monte_carlo_regression(su: sch.Schedule) -> None:
    g = torch.Generator().manual_seed(1)
    n, t = 100_000, 4
    x0 = 0.3 + 1.2 * torch.randn(n, generator=g, dtype=torch.float64)
    x_prev = dn.q_sample(su, x0, torch.randn(n, generator=g, dtype=torch.float64), t - 1)
    x_t = dn.q_step(su, x_prev, torch.randn(n, generator=g, dtype=torch.float64), t)
    X = np.column_stack([np.ones(n), x_t.numpy(), x0.numpy()])
    coef, *_ = np.linalg.lstsq(X, x_prev.numpy(), rcond=None)
    resid = x_prev.numpy() - X @ coef
    s2 = resid @ resid / (n - 3)
    se = np.sqrt(s2 * np.diag(np.linalg.inv(X.T @ X)))
    a, b = dn.posterior_coefficients(su, t)
    assert np.all(np.abs(coef - [0, a.item(), b.item()]) < 4 * se)
    var = dn.posterior_variance(su, t).item()
    assert abs(s2 - var) < 4 * var * np.sqrt(2 / (n - 3))


# --- noise prediction and the reverse step ---------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(schedules, st.integers(0, 10_000))
def test_reverse_mean_identities(s: sch.Schedule, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    n = 16
    t = torch.randint(1, s.num_steps + 1, (n,), generator=g)
    x_t = torch.randn(n, 2, generator=g, dtype=torch.float64)
    e = torch.randn(n, 2, generator=g, dtype=torch.float64)
    x0 = dn.eps_to_x0(s, x_t, e, t)
    mu = dn.ddpm_mean(s, x_t, e, t)
    scale = 1 + mu.abs().max().item() + x0.abs().max().item()
    # plugging the denoised x0 into the posterior mean gives the DDPM mean
    assert_allclose(dn.posterior_mean(s, x_t, x0, t), mu, rtol=0, atol=1e3 * EPS * scale)
    # x0 <-> eps are inverse maps, and q_sample(x0, eps) returns x_t
    assert_allclose(dn.x0_to_eps(s, x_t, x0, t), e, rtol=0, atol=1e3 * EPS * scale)
    assert_allclose(dn.q_sample(s, x0, e, t), x_t, rtol=0, atol=1e3 * EPS * scale)
    # a_t + b_t / alpha_bar_t = 1 / alpha_t
    a, b = dn.posterior_coefficients(s, t)
    assert_allclose((a + b / s.alpha_bar[t]).numpy(), (1 / s.alpha[t]).numpy(), rtol=1e-12)
    # the posterior variance lies below both beta_t^2 and beta_bar_{t-1}^2
    var = dn.posterior_variance(s, t)
    assert bool((var <= s.beta[t]**2 * (1 + 1e-12)).all())
    assert bool((var <= s.beta_bar[t - 1]**2 * (1 + 1e-12)).all())


def test_ddpm_mean_closed_form(su: sch.Schedule) -> None:
    x_t = torch.tensor([1.0, -0.5], dtype=torch.float64)
    e = torch.tensor([0.2, 0.7], dtype=torch.float64)
    t = 300
    expected = (x_t - su.beta[t]**2 / su.beta_bar[t] * e) / su.alpha[t]
    assert_allclose(dn.ddpm_mean(su, x_t, e, t).numpy(), expected.numpy(), rtol=1e-15)
    assert_allclose(dn.eps_to_x0(su, x_t, e, t).numpy(),
                    ((x_t - su.beta_bar[t] * e) / su.alpha_bar[t]).numpy(), rtol=1e-15)


def test_ddpm_variance_types(su: sch.Schedule) -> None:
    t = torch.tensor([1, 2, 500])
    assert torch.equal(dn.ddpm_variance(su, t), dn.posterior_variance(su, t))
    assert torch.equal(dn.ddpm_variance(su, t, "fixed_large"), su.beta[t]**2)


def test_ddpm_step_adds_sigma_z_with_the_same_draw(su: sch.Schedule) -> None:
    x_t = torch.randn(3, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    e = torch.randn(3, 4, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    for kind in ("fixed_small", "fixed_large"):
        out = dn.ddpm_step(su, x_t, e, 10, torch.Generator().manual_seed(7), kind)
        z = torch.randn(3, 4, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
        expected = dn.ddpm_mean(su, x_t, e, 10) + torch.sqrt(dn.ddpm_variance(su, 10, kind)) * z
        assert torch.equal(out, expected)


def test_ddpm_step_adds_no_noise_at_t1(su: sch.Schedule) -> None:
    g = torch.Generator().manual_seed(3)
    state = g.get_state()
    x_t, e = torch.ones(2, 2), torch.zeros(2, 2)
    out = dn.ddpm_step(su, x_t, e, 1, g, "fixed_large")
    assert torch.equal(out, dn.ddpm_mean(su, x_t, e, 1))
    assert torch.equal(g.get_state(), state)            # nothing was drawn
    # per-row times: rows at t = 1 get no noise, the others do
    out = dn.ddpm_step(su, x_t, e, torch.tensor([1, 5]), torch.Generator().manual_seed(0))
    mean = dn.ddpm_mean(su, x_t, e, torch.tensor([1, 5]))
    assert torch.equal(out[0], mean[0]) and not torch.equal(out[1], mean[1])


# --- exact kernels for Gaussian data ---------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(schedules, st.integers(0, 10_000),
       st.floats(-3, 3), st.floats(0.0, 4.0))
def test_gaussian_data_reverse_matches_conditioning(s: sch.Schedule, seed: int, m: float,
                                                    s2: float) -> None:
    """p(x_{t-1} | x_t) from the joint covariance of the chain with x_0 ~ N(m, s2)."""
    T = s.num_steps
    C, c = chain_covariance(s)
    C = C + s2 * np.outer(c, c)
    t = np.arange(1, T + 1)
    w = C[t - 1, t] / C[t, t]
    x_t = np.random.default_rng(seed).normal(size=T)
    mean_ref = m * c[t - 1] + w * (x_t - m * c[t])
    var_ref = C[t - 1, t - 1] - C[t - 1, t]**2 / C[t, t]
    mean, var = dn.gaussian_data_reverse(s, x_t, torch.as_tensor(t), m, s2)
    scale = 1 + np.abs(C).max()
    assert_allclose(mean.numpy(), mean_ref, rtol=0, atol=1e3 * EPS * scale * (1 + abs(m))
                    * (1 + np.abs(x_t).max()))
    assert_allclose(var.numpy(), var_ref, rtol=0, atol=1e3 * EPS * scale)


def test_gaussian_data_special_cases(su: sch.Schedule) -> None:
    t = torch.arange(1, 1001)
    x_t = torch.linspace(-2, 2, 1000, dtype=torch.float64)
    # one data point at m: the posterior at x0 = m
    mean, var = dn.gaussian_data_reverse(su, x_t, t, 0.7, 0.0)
    assert_allclose(mean, dn.posterior_mean(su, x_t, torch.full_like(x_t, 0.7), t), atol=1e-14)
    assert_allclose(var, dn.posterior_variance(su, t), rtol=1e-13)
    # standard normal data: N(alpha_t x_t, beta_t^2)
    mean, var = dn.gaussian_data_reverse(su, x_t, t, 0.0, 1.0)
    assert_allclose(mean, su.alpha[t] * x_t, rtol=1e-13, atol=1e-15)
    assert_allclose(var, su.beta[t]**2, rtol=1e-12)
    # the exact denoiser turned into a noise prediction makes the DDPM mean exact
    x0_mean, x0_var = dn.gaussian_data_denoiser(su, x_t, t, 0.3, 2.0)
    eps_opt = dn.x0_to_eps(su, x_t, x0_mean, t)
    exact, _ = dn.gaussian_data_reverse(su, x_t, t, 0.3, 2.0)
    assert_allclose(dn.ddpm_mean(su, x_t, eps_opt, t), exact, rtol=0, atol=1e-12)
    assert bool((x0_var <= 2.0).all())


# --- diffusers -------------------------------------------------------------------------------

def test_against_diffusers_with_float64_tables() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        diffusers = pytest.importorskip("diffusers")
    for kind in ("fixed_small", "fixed_large"):
        sc = diffusers.DDPMScheduler(num_train_timesteps=50, beta_schedule="linear",
                                     beta_start=1e-3, beta_end=0.2, clip_sample=False,
                                     variance_type=kind)
        sc.betas = sc.betas.to(torch.float64)
        sc.alphas = 1.0 - sc.betas
        sc.alphas_cumprod = torch.cumprod(sc.alphas, dim=0)
        sc.one = torch.tensor(1.0, dtype=torch.float64)
        s = sch.schedule_from_betas(sc.betas)
        g = torch.Generator().manual_seed(0)
        x0 = torch.randn(4, 2, 3, generator=g, dtype=torch.float64)
        e = torch.randn(4, 2, 3, generator=g, dtype=torch.float64)
        k = torch.tensor([0, 5, 30, 49])
        assert_allclose(sc.add_noise(x0, e, k), dn.q_sample(s, x0, e, k + 1), atol=1e-14)
        for kk in (0, 1, 25, 49):
            out = sc.step(e, kk, x0, generator=torch.Generator().manual_seed(kk))
            ours = dn.ddpm_step(s, x0, e, kk + 1, torch.Generator().manual_seed(kk), kind)
            assert_allclose(out.prev_sample, ours, rtol=1e-11, atol=1e-12)
            assert_allclose(out.pred_original_sample, dn.eps_to_x0(s, x0, e, kk + 1),
                            rtol=1e-11, atol=1e-12)


# --- error paths -----------------------------------------------------------------------------

def test_functions_reject_a_non_schedule() -> None:
    fake = (torch.ones(3), torch.zeros(3), torch.ones(3), torch.zeros(3))
    x = torch.zeros(2)
    calls = [
        lambda: dn.q_step(fake, x, x, 1),
        lambda: dn.q_sample(fake, x, x, 1),
        lambda: dn.posterior_coefficients(fake, 1),
        lambda: dn.posterior_variance(fake, 1),
        lambda: dn.posterior_mean(fake, x, x, 1),
        lambda: dn.eps_to_x0(fake, x, x, 1),
        lambda: dn.x0_to_eps(fake, x, x, 1),
        lambda: dn.ddpm_mean(fake, x, x, 1),
        lambda: dn.ddpm_variance(fake, 1),
        lambda: dn.ddpm_step(fake, x, x, 1, torch.Generator()),
        lambda: dn.gaussian_data_denoiser(fake, x, 1, 0.0, 1.0),
        lambda: dn.gaussian_data_reverse(fake, x, 1, 0.0, 1.0),
    ]
    for call in calls:
        with pytest.raises(TypeError, match="schedule must be a Schedule"):
            call()


@pytest.mark.parametrize("t, err, match", [
    (0, ValueError, r"t must lie in \[1, 1000\], got values in \[0, 0\]"),
    (1001, ValueError, r"t must lie in \[1, 1000\]"),
    (-3, ValueError, r"t must lie in \[1, 1000\]"),
    (torch.tensor([1, 1001]), ValueError, r"t must lie in \[1, 1000\], got values in \[1, 1001\]"),
    (2.0, TypeError, "t must be an int or an integer tensor"),
    (True, TypeError, "t must be an int or an integer tensor, got bool"),
    (torch.tensor([1.0, 2.0]), TypeError, "t must be an int or an integer tensor"),
    (torch.tensor([True, False]), TypeError, "t must be an int or an integer tensor"),
    ([1, 2], TypeError, "t must be an int or an integer tensor"),
    (torch.tensor(3), ValueError, "t must be an int or a non-empty 1-D tensor"),
    (torch.tensor([[1, 2]]), ValueError, "t must be an int or a non-empty 1-D tensor"),
    (torch.tensor([1, 2, 3]), ValueError, "t must have one entry per row of the data"),
])
def test_bad_t(su: sch.Schedule, t: object, err: type, match: str) -> None:
    x = torch.zeros(2, 4)
    with pytest.raises(err, match=match):
        dn.posterior_mean(su, x, x, t)


def test_bad_t_elsewhere(su: sch.Schedule) -> None:
    x = torch.zeros(2)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1000\]"):
        dn.q_sample(su, x, x, -1)
    with pytest.raises(ValueError, match=r"t must lie in \[1, 1000\]"):
        dn.q_step(su, x, x, 0)
    with pytest.raises(ValueError, match=r"t must lie in \[1, 1000\]"):
        dn.posterior_variance(su, 0)
    with pytest.raises(ValueError, match=r"t must lie in \[1, 1000\]"):
        dn.ddpm_variance(su, 1001, "fixed_large")
    with pytest.raises(ValueError, match="t must have one entry per row"):
        dn.q_sample(su, torch.tensor(1.0), torch.tensor(0.0), torch.tensor([1]))


@pytest.mark.parametrize("func, names", [
    (dn.q_step, ("x_prev", "eps")),
    (dn.q_sample, ("x0", "eps")),
    (dn.posterior_mean, ("x_t", "x0")),
    (dn.eps_to_x0, ("x_t", "eps")),
    (dn.x0_to_eps, ("x_t", "x0")),
    (dn.ddpm_mean, ("x_t", "eps")),
])
def test_shape_mismatch_and_nan(su: sch.Schedule, func: object, names: tuple[str, str]) -> None:
    first, second = names
    with pytest.raises(ValueError, match=rf"{second} must have the shape of {first}"):
        func(su, torch.zeros(3), torch.zeros(4), 2)
    with pytest.raises(ValueError, match=f"{first} must be finite"):
        func(su, torch.tensor([0.0, float("nan")]), torch.zeros(2), 2)
    with pytest.raises(ValueError, match=f"{second} must be finite"):
        func(su, torch.zeros(2), torch.tensor([float("inf"), 0.0]), 2)
    with pytest.raises(TypeError, match=f"{first} must be a tensor or an array of numbers"):
        func(su, "abc", torch.zeros(2), 2)


def test_zero_signal_errors() -> None:
    s = sch.schedule_from_betas([0.5, 1.0, 0.3])        # alpha_2 = 0, alpha_bar_2 = alpha_bar_3 = 0
    x = torch.ones(2)
    with pytest.raises(ValueError, match="t must be a time with alpha_bar_t > 0"):
        dn.eps_to_x0(s, x, x, 3)
    with pytest.raises(ValueError, match="t must be a step with alpha_t > 0"):
        dn.ddpm_mean(s, x, x, 2)


def test_ddpm_variance_and_step_errors(su: sch.Schedule) -> None:
    x = torch.zeros(2)
    with pytest.raises(ValueError, match="variance_type must be 'fixed_small' or 'fixed_large'"):
        dn.ddpm_variance(su, 3, "learned")
    with pytest.raises(ValueError, match="variance_type must be"):
        dn.ddpm_step(su, x, x, 3, torch.Generator(), "fixed_small_log")
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator"):
        dn.ddpm_step(su, x, x, 3, np.random.default_rng(0))


@pytest.mark.parametrize("func", [dn.gaussian_data_denoiser, dn.gaussian_data_reverse])
def test_gaussian_data_errors(su: sch.Schedule, func: object) -> None:
    x = torch.zeros(2)
    with pytest.raises(ValueError, match="data_var must be finite and >= 0"):
        func(su, x, 3, 0.0, -1.0)
    with pytest.raises(TypeError, match="data_var must be a real number"):
        func(su, x, 3, 0.0, "1")
    with pytest.raises(ValueError, match="data_mean must be finite"):
        func(su, x, 3, float("nan"), 1.0)
    with pytest.raises(TypeError, match="data_mean must be a real number"):
        func(su, x, 3, None, 1.0)
    with pytest.raises(ValueError, match="x_t must be finite"):
        func(su, torch.tensor([float("nan")]), 3, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"t must lie in \[1, 1000\]"):
        func(su, x, 0, 0.0, 1.0)
