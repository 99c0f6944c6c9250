"""kexue_notes.diffusion.diffusion_loss: the merge of the two noises, the two losses and the ELBO
terms
against exact Gauss-Hermite averages over omega, torch.distributions, closed forms, and every error
path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.polynomial.hermite_e import hermegauss
from numpy.testing import assert_allclose
from torch.distributions import Normal, kl_divergence

from kexue_notes.diffusion import ddpm as dn
from kexue_notes.diffusion import diffusion_loss as dl
from kexue_notes.diffusion import schedule as sch

EPS = np.finfo(np.float64).eps


def random_schedule(seed: int, T: int) -> sch.Schedule:
    rng = np.random.default_rng(seed)
    return sch.schedule_from_betas(rng.uniform(1e-3, 0.5, size=T))


def linear_model(k: float = 0.7, h: float = 0.1):
    """A noise model that is wrong on purpose: k * x_t + h."""
    return lambda x, t: k * x + h


def draws(seed: int, shape: tuple[int, ...], how_many: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(how_many)]


schedules = st.builds(random_schedule, st.integers(0, 10_000), st.integers(1, 40))


@pytest.fixture(scope="module")
def su() -> sch.Schedule:
    return sch.schedule_su(1000)


def omega_average(sched, model, x0, t, eps, fn, nodes=5):
    """Average fn(eps_bar_prev, eps_t) over omega ~ N(0, I) by Gauss-Hermite, holding x0 and eps
    fixed, for one-dimensional samples (each row of x0 is one scalar)."""
    z, w = hermegauss(nodes)
    w = w / w.sum()
    vals = []
    for zk in z:
        om = torch.full_like(eps, float(zk))
        eps_bar_prev, eps_t = dl.merge_noises(sched, eps, om, t)   # the merge is an involution
        vals.append(fn(eps_bar_prev, eps_t))
    vals = torch.stack(vals)                                       # (nodes, B)
    wt = torch.as_tensor(w)[:, None]
    mean = (wt * vals).sum(0)
    return mean, (wt * vals**2).sum(0) - mean**2


# --- gaussian_nll ----------------------------------------------------------------------------

def test_gaussian_nll_matches_torch() -> None:
    x, mu = draws(0, (7, 3, 2), 2)
    var = torch.linspace(0.1, 2.0, 7, dtype=torch.float64)
    ref = -Normal(mu, var.sqrt()[:, None, None].expand_as(mu)).log_prob(x).sum((1, 2))
    assert_allclose(dl.gaussian_nll(x, mu, var), ref, rtol=1e-13)
    ref = -Normal(mu, math.sqrt(0.3)).log_prob(x).sum((1, 2))
    assert_allclose(dl.gaussian_nll(x, mu, 0.3), ref, rtol=1e-13)


# --- the merge -------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(schedules, st.integers(0, 1000))
def test_merge_is_an_orthogonal_involution(s: sch.Schedule, seed: int) -> None:
    T = s.num_steps
    eb, et, x0 = draws(seed, (6, 3), 3)
    t = torch.randint(1, T + 1, (6,), generator=torch.Generator().manual_seed(seed))
    e, om = dl.merge_noises(s, eb, et, t)
    assert_allclose(e**2 + om**2, eb**2 + et**2, rtol=1e-12, atol=1e-12)   # norm preserved
    back = dl.merge_noises(s, e, om, t)
    assert_allclose(back[0], eb, rtol=0, atol=1e-12)
    assert_allclose(back[1], et, rtol=0, atol=1e-12)
    chain = dn.q_step(s, dn.q_sample(s, x0, eb, t - 1), et, t)
    assert_allclose(dn.q_sample(s, x0, e, t), chain, rtol=0, atol=1e-12)


def test_merge_at_t1_passes_eps_t_through(su: sch.Schedule) -> None:
    eb, et = draws(1, (4, 2), 2)
    e, om = dl.merge_noises(su, eb, et, 1)
    assert_allclose(e, et, rtol=0, atol=4 * EPS)
    assert_allclose(om, eb, rtol=0, atol=4 * EPS)
    assert dl.merge_constant(su, 1).item() == 0.0


def test_merge_constant_closed_form(su: sch.Schedule) -> None:
    t = torch.arange(1, 1001)
    ref = su.alpha[t]**2 * su.beta_bar[t - 1]**2 / su.beta_bar[t]**2
    assert_allclose(dl.merge_constant(su, t), ref, rtol=1e-15)
    # c_t^2 + beta_t^2 / beta_bar_t^2 = 1: the two weights of the merge are a unit vector
    assert_allclose(dl.merge_constant(su, t) + su.beta[t]**2 / su.beta_bar[t]**2, 1.0, rtol=1e-13)


# --- the two losses and their link -----------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(schedules, st.integers(0, 1000), st.floats(-2, 2), st.floats(-1, 1))
def test_omega_average_of_two_noise_loss(s: sch.Schedule, seed: int, k: float, h: float) -> None:
    """E_omega[l2] = (beta^2 / beta_bar^2) l1 + c^2 and Var_omega[l2] = conditional variance."""
    x0, eps = draws(seed, (5,), 2)
    t = int(torch.randint(1, s.num_steps + 1, (1,), generator=torch.Generator().manual_seed(seed)))
    model = linear_model(k, h)
    mean, var = omega_average(s, model, x0, t, eps,
                              lambda eb, et: dl.loss_two_noise(s, model, x0, t, eb, et))
    r2 = s.beta[t]**2 / s.beta_bar[t]**2
    one = r2 * dl.loss_one_noise(s, model, x0, t, eps) + dl.merge_constant(s, t)
    scale = 1 + mean.abs().max().item()
    assert_allclose(mean, one, rtol=0, atol=1e-11 * scale)
    cv = dl.two_noise_conditional_variance(s, model, x0, t, eps)
    assert_allclose(var, cv, rtol=0, atol=1e-10 * scale**2)


def test_two_noise_loss_closed_form(su: sch.Schedule) -> None:
    x0, eb, et = draws(2, (8, 3), 3)
    t = 250
    model = linear_model()
    x_t = su.alpha_bar[t] * x0 + su.alpha[t] * su.beta_bar[t - 1] * eb + su.beta[t] * et
    ref = ((et - su.beta[t] / su.beta_bar[t] * model(x_t, t))**2).sum(1)
    assert_allclose(dl.loss_two_noise(su, model, x0, t, eb, et), ref, rtol=1e-12)
    x_t1 = su.alpha_bar[t] * x0 + su.beta_bar[t] * eb
    ref1 = ((eb - model(x_t1, t))**2).sum(1)
    assert_allclose(dl.loss_one_noise(su, model, x0, t, eb), ref1, rtol=1e-12)


def test_losses_accept_per_row_times_and_images(su: sch.Schedule) -> None:
    x0, eb, et = draws(3, (4, 3, 2, 2), 3)
    t = torch.tensor([1, 10, 500, 1000])

    def model(x, tt):
        return 0.5 * x * su.beta_bar[tt].reshape(-1, 1, 1, 1)

    rows = dl.loss_two_noise(su, model, x0, t, eb, et)
    assert rows.shape == (4,)
    for i in range(4):
        one = dl.loss_two_noise(su, model, x0[i:i + 1], t[i:i + 1], eb[i:i + 1], et[i:i + 1])
        assert_allclose(rows[i:i + 1], one, rtol=1e-13)


def test_loss_weight_closed_form(su: sch.Schedule) -> None:
    t = torch.arange(1, 1001)
    s2 = su.beta[t]**2
    ref = su.beta[t]**4 / (su.beta_bar[t]**2 * su.alpha[t]**2 * s2)
    assert_allclose(dl.loss_weight(su, t, s2), ref, rtol=1e-15)
    assert dl.loss_weight(su, 5, 2.0).shape == ()
    # sigma^2 = beta^2 gives beta^2 / (beta_bar^2 alpha^2): 1/alpha_1^2 at t = 1
    assert_allclose(dl.loss_weight(su, 1, su.beta[1].item()**2).item(), 1 / su.alpha[1].item()**2,
                    rtol=1e-14)


# --- the ELBO terms --------------------------------------------------------------------------

def test_elbo_two_noise_is_the_gaussian_nll(su: sch.Schedule) -> None:
    x0, eb, et = draws(4, (16, 2), 3)
    t = torch.randint(1, 1001, (16,), generator=torch.Generator().manual_seed(4))
    s2 = dn.ddpm_variance(su, t, "fixed_large")

    def model(x, tt):
        return 0.9 * x * su.beta_bar[tt][:, None]

    x_prev = dn.q_sample(su, x0, eb, t - 1)
    x_t = dn.q_step(su, x_prev, et, t)
    # Su's mean: (x_t - beta_t eps_su) / alpha_t with eps_su = (beta_t / beta_bar_t) eps
    eps_su = (su.beta[t] / su.beta_bar[t])[:, None] * model(x_t, t)
    mu = (x_t - su.beta[t][:, None] * eps_su) / su.alpha[t][:, None]
    ref = -Normal(mu, s2.sqrt()[:, None].expand_as(mu)).log_prob(x_prev).sum(1)
    assert_allclose(dl.elbo_term_two_noise(su, model, x0, t, eb, et, s2), ref, rtol=1e-12)
    # and it is log-normaliser + beta^2 l2 / (2 alpha^2 sigma^2)
    l2 = dl.loss_two_noise(su, model, x0, t, eb, et)
    alt = math.log(2 * math.pi) * 1 + torch.log(s2) + su.beta[t]**2 * l2 / (2 * su.alpha[t]**2 * s2)
    assert_allclose(dl.elbo_term_two_noise(su, model, x0, t, eb, et, s2), alt, rtol=1e-12)


def test_elbo_one_noise_is_kl_plus_entropy(su: sch.Schedule) -> None:
    x0, eps = draws(5, (32, 3), 2)
    t = torch.randint(2, 1001, (32,), generator=torch.Generator().manual_seed(5))
    s2 = dn.ddpm_variance(su, t, "fixed_small") * 1.7
    model = linear_model(0.8, -0.2)
    x_t = dn.q_sample(su, x0, eps, t)
    post = Normal(dn.posterior_mean(su, x_t, x0, t),
                  dn.posterior_variance(su, t).sqrt()[:, None].expand_as(x_t))
    step = Normal(dn.ddpm_mean(su, x_t, model(x_t, t), t), s2.sqrt()[:, None].expand_as(x_t))
    ref = (kl_divergence(post, step) + post.entropy()).sum(1)
    assert_allclose(dl.elbo_term_one_noise(su, model, x0, t, eps, s2), ref, rtol=1e-11)


@settings(max_examples=30, deadline=None)
@given(schedules, st.integers(0, 1000), st.floats(0.05, 5.0))
def test_elbo_one_noise_is_the_omega_average(s: sch.Schedule, seed: int, s2_factor: float) -> None:
    x0, eps = draws(seed, (6,), 2)
    t = int(torch.randint(1, s.num_steps + 1, (1,), generator=torch.Generator().manual_seed(seed)))
    s2 = s2_factor * s.beta[t].item()**2
    model = linear_model(1.3, 0.05)
    mean, _ = omega_average(s, model, x0, t, eps,
                            lambda eb, et: dl.elbo_term_two_noise(s, model, x0, t, eb, et, s2))
    one = dl.elbo_term_one_noise(s, model, x0, t, eps, s2)
    assert_allclose(one, mean, rtol=0, atol=1e-10 * (1 + mean.abs().max().item()))


def test_elbo_one_noise_at_t1_is_finite(su: sch.Schedule) -> None:
    x0, eps = draws(6, (3, 2), 2)
    val = dl.elbo_term_one_noise(su, linear_model(), x0, 1, eps, 1e-3)
    assert bool(torch.isfinite(val).all())


def test_sign_of_the_merge_matters(su: sch.Schedule) -> None:
    """A merge with the wrong sign would not preserve x_t: the check can fail."""
    x0, eb, et = draws(7, (5, 2), 3)
    e, _ = dl.merge_noises(su, eb, et, 300)
    wrong = (su.alpha[300] * su.beta_bar[299] * eb - su.beta[300] * et) / su.beta_bar[300]
    chain = dn.q_step(su, dn.q_sample(su, x0, eb, 299), et, 300)
    assert torch.allclose(dn.q_sample(su, x0, e, 300), chain)
    assert not torch.allclose(dn.q_sample(su, x0, wrong, 300), chain)


# --- variance_ratio --------------------------------------------------------------------------

def test_variance_ratio_exact_and_gaussian() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=4000)
    R, se = dl.variance_ratio(a, 2 * a)
    assert_allclose(R, 0.25, rtol=1e-14)
    assert se > 0
    b = rng.normal(scale=2.0, size=4000)
    R, se = dl.variance_ratio(a, b)
    # Gaussian data: kurtosis 3, so se ~ R sqrt(2/n + 2/n)
    assert_allclose(se, R * math.sqrt(4 / 4000), rtol=0.1)
    assert abs(R - 0.25) < 4 * se
    assert dl.variance_ratio(np.ones(5), b) == (0.0, 0.0)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.1, 10.0))
def test_variance_ratio_scales_quadratically(seed: int, scale: float) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=50), rng.exponential(size=60)
    R, se = dl.variance_ratio(a, b)
    R2, se2 = dl.variance_ratio(scale * a, b)
    assert_allclose([R2, se2], [scale**2 * R, scale**2 * se], rtol=1e-10)


# --- error paths -----------------------------------------------------------------------------

def test_errors_gaussian_nll() -> None:
    x = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="mean must have the shape of x"):
        dl.gaussian_nll(x, torch.zeros(3, 3), 1.0)
    with pytest.raises(ValueError, match="var must be > 0"):
        dl.gaussian_nll(x, x, 0.0)
    with pytest.raises(ValueError, match="var must be > 0"):
        dl.gaussian_nll(x, x, torch.tensor([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="var must have shape"):
        dl.gaussian_nll(x, x, torch.ones(2))
    with pytest.raises(TypeError, match="var must be a positive number"):
        dl.gaussian_nll(x, x, True)
    with pytest.raises(ValueError, match="x must have a batch axis"):
        dl.gaussian_nll(1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="x must be finite"):
        dl.gaussian_nll(torch.full((2,), float("nan")), torch.zeros(2), 1.0)
    with pytest.raises(TypeError, match="mean must be a tensor or an array of numbers"):
        dl.gaussian_nll(x, "zero", 1.0)


def test_errors_merge(su: sch.Schedule) -> None:
    a = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(TypeError, match="schedule must be a Schedule"):
        dl.merge_noises("su", a, a, 1)
    with pytest.raises(ValueError, match="eps_t must have the shape of eps_bar_prev"):
        dl.merge_noises(su, a, torch.zeros(3, 3), 1)
    with pytest.raises(ValueError, match=r"t must lie in \[1, 1000\]"):
        dl.merge_noises(su, a, a, 0)
    with pytest.raises(ValueError, match=r"t must lie in \[1, 1000\]"):
        dl.merge_noises(su, a, a, 1001)
    with pytest.raises(ValueError, match="t must have one entry per row"):
        dl.merge_noises(su, a, a, torch.tensor([1, 2]))
    with pytest.raises(TypeError, match="t must be an int or an integer tensor"):
        dl.merge_noises(su, a, a, 1.5)
    with pytest.raises(ValueError, match="eps_bar_prev must be finite"):
        dl.merge_noises(su, torch.full((3, 2), float("inf")), a, 1)
    with pytest.raises(ValueError, match=r"t must lie in \[1, 1000\]"):
        dl.merge_constant(su, 0)
    with pytest.raises(TypeError, match="schedule must be a Schedule"):
        dl.merge_constant(None, 1)


def test_errors_losses(su: sch.Schedule) -> None:
    a = torch.zeros(3, 2, dtype=torch.float64)
    model = linear_model()
    with pytest.raises(TypeError, match="eps_model must be callable"):
        dl.loss_one_noise(su, "model", a, 5, a)
    with pytest.raises(TypeError, match="eps_model must be callable"):
        dl.loss_two_noise(su, None, a, 5, a, a)
    with pytest.raises(ValueError, match="eps_model must return the shape of x_t"):
        dl.loss_one_noise(su, lambda x, t: x[:, :1], a, 5, a)
    with pytest.raises(ValueError, match=r"eps_model\(x_t, t\) must be finite"):
        dl.loss_one_noise(su, lambda x, t: x * float("nan"), a, 5, a)
    with pytest.raises(ValueError, match="eps must have the shape of x0"):
        dl.loss_one_noise(su, model, a, 5, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="eps_bar_prev must have the shape of x0"):
        dl.loss_two_noise(su, model, a, 5, torch.zeros(2, 2), a)
    with pytest.raises(ValueError, match="eps_t must have the shape of x0"):
        dl.loss_two_noise(su, model, a, 5, a, torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"t must lie in \[1, 1000\]"):
        dl.loss_two_noise(su, model, a, 0, a, a)
    with pytest.raises(ValueError, match="x0 must have a batch axis"):
        dl.loss_one_noise(su, model, torch.tensor(1.0), 5, torch.tensor(1.0))
    with pytest.raises(TypeError, match="schedule must be a Schedule"):
        dl.loss_one_noise({}, model, a, 5, a)
    with pytest.raises(ValueError, match=r"t must lie in \[1, 1000\]"):
        dl.two_noise_conditional_variance(su, model, a, 0, a)


def test_errors_weights_and_elbo(su: sch.Schedule) -> None:
    a = torch.zeros(3, 2, dtype=torch.float64)
    model = linear_model()
    with pytest.raises(ValueError, match="sigma2 must be > 0"):
        dl.loss_weight(su, 3, 0.0)
    with pytest.raises(ValueError, match=r"sigma2 must have shape \(\)"):
        dl.loss_weight(su, 3, torch.ones(3))
    with pytest.raises(ValueError, match=r"sigma2 must have shape \(\) or \(2,\)"):
        dl.loss_weight(su, torch.tensor([3, 4]), torch.ones(3))
    with pytest.raises(ValueError, match="sigma2 must be > 0"):
        dl.elbo_term_one_noise(su, model, a, 3, a, -1.0)
    with pytest.raises(ValueError, match="sigma2 must be > 0"):
        dl.elbo_term_two_noise(su, model, a, 3, a, a, 0)
    with pytest.raises(ValueError, match=r"sigma2 must have shape \(\) or \(3,\)"):
        dl.elbo_term_one_noise(su, model, a, 3, a, torch.ones(2))
    with pytest.raises(ValueError, match=r"t must lie in \[1, 1000\]"):
        dl.loss_weight(su, 1001, 1.0)


def test_errors_variance_ratio() -> None:
    with pytest.raises(ValueError, match="b must not be constant"):
        dl.variance_ratio([1.0, 2.0], [3.0, 3.0])
    with pytest.raises(ValueError, match="a must hold at least 2 values"):
        dl.variance_ratio([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="b must hold at least 2 values"):
        dl.variance_ratio([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="a must be 1-dimensional"):
        dl.variance_ratio(np.ones((2, 2)), [1.0, 2.0])
    with pytest.raises(ValueError, match="b must be finite"):
        dl.variance_ratio([1.0, 2.0], [1.0, float("nan")])
    with pytest.raises(TypeError, match="a must be an array of numbers"):
        dl.variance_ratio("ab", [1.0, 2.0])
