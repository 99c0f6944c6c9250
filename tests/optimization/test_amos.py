"""kexue_notes.optimization.amos: the decay factors against their ODEs and the discrete recurrence,
the halving
rule, the two rates and the balance identity, the trajectory diagnostics against direct formulas,
the optimizer against torch's AdamW with the same per-step rates, its state_dict round trip, the
published Amos schedule's first steps and asymptotic exponents, and every error path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from conftest import assert_optimizer_round_trip
from kexue_notes.optimization import amos

torch.set_num_threads(1)
EPS = float(np.finfo(np.float64).eps)
F64 = torch.float64


# --- the decay factor ------------------------------------------------------------------------

def test_decay_values_and_types():
    t = np.array([0.0, 1.0, 10.0])
    assert_allclose(amos.decay(t, 0.1, 0.5, "fixed"), 1 / (1 + 0.05 * t) ** 2, rtol=EPS)
    assert_allclose(amos.decay(t, 0.1, 0.5, "dynamic"), 1 / (1 + 0.1 * t), rtol=EPS)
    assert_allclose(amos.decay(t, 0.1, 0.5, "constant"), np.ones(3))
    out = amos.decay(torch.arange(3), 0.1, 0.5)
    assert isinstance(out, torch.Tensor) and out.dtype == F64
    assert float(amos.decay(4, 0.25, 1.0)) == 0.25


@settings(max_examples=50, deadline=None)
@given(st.floats(1e-3, 0.3), st.floats(0.05, 1.0), st.floats(0.0, 500.0))
def test_decay_solves_its_odes(alpha0, p, t):
    """S = -log(f)/2 must satisfy dS/dt = a e^{-S} (fixed) and a e^{-2S} (dynamic)."""
    h, a = 1e-3, alpha0 * p
    for mode, k in (("fixed", 1.0), ("dynamic", 2.0)):
        S = lambda s, mode=mode: -0.5 * np.log(amos.decay(s, alpha0, p, mode))  # noqa: E731
        dS = (S(t + h) - S(t - h)) / (2 * h) if t > h else (S(t + h) - S(t)) / h
        tol = 1e-5 if t > h else 2 * a * h  # central: O(h^2 a^3); one-sided at 0: O(h a^2)
        assert dS == pytest.approx(a * np.exp(-k * S(t)), rel=tol)


@settings(max_examples=50, deadline=None)
@given(st.floats(10.0, 1e5), st.floats(1e-3, 1.0))
def test_halving(T_half, alpha0):
    for mode in ("fixed", "dynamic"):
        try:
            p = amos.p_for_halving(T_half, alpha0, mode)
        except ValueError:
            assert (math.sqrt(2) - 1 if mode == "fixed" else 0.5) / T_half > alpha0
            continue
        assert float(amos.decay(T_half, alpha0, p, mode)) == pytest.approx(0.5, rel=1e-12)


def test_halving_values():
    assert amos.p_for_halving(100, 0.01) == pytest.approx((math.sqrt(2) - 1), rel=1e-14)
    assert amos.p_for_halving(100, 0.01, "dynamic") == pytest.approx(0.5, rel=1e-14)


def test_recurrence_first_steps_and_shape():
    S = amos.simulate_S(np.array([0.01, 0.1]), 0.5, 3)
    assert S.shape == (4, 2)
    assert_allclose(S[1], [0.005, 0.05], rtol=EPS)
    assert_allclose(S[2], S[1] + [0.005, 0.05] * np.exp(-S[1]), rtol=EPS)
    Sd = amos.simulate_S(0.1, 1.0, 2, "dynamic")
    assert_allclose(Sd[2], 0.1 + 0.1 * np.exp(-0.2), rtol=EPS)


@pytest.mark.parametrize("mode,k", [("fixed", 1.0), ("dynamic", 2.0)])
def test_recurrence_against_closed_form_is_order_a(mode, k):
    """sup_t of the relative error is a/e (1 + O(a)); the log-corrected form is O(a^2)."""
    a = np.array([1e-3, 3e-3, 1e-2])
    S = amos.simulate_S(a, 1.0, 8000, mode)
    t = np.arange(S.shape[0])[:, None]
    f_disc = np.exp(-2 * S)
    rel = np.stack([amos.decay(t[:, 0], ai, 1.0, mode) for ai in a], 1) / f_disc - 1
    assert (rel >= -1e-12).all()                       # the closed form decays more slowly
    assert_allclose(rel.max(0) / (a / np.e), 1.0, rtol=3 * a.max())
    y = 1 + k * a * t
    corrected = y + a * k / 2 * np.log(y)              # e^{kS_t} to O(a^2)
    rel2 = np.abs(corrected ** (-2 / k) / f_disc - 1).max(0)
    assert (rel2 < a**2).all()


# --- scale and rates --------------------------------------------------------------------------

def test_initial_distance_values_and_monte_carlo():
    assert amos.initial_distance(50, 0.1) == pytest.approx(0.1 * 10, rel=1e-15)
    assert amos.initial_distance(16, 0.5, "fixed") == pytest.approx(2.0, rel=1e-15)
    rng = np.random.default_rng(0)
    k, sigma = 4096, 0.02
    th0, star = rng.normal(0, sigma, (2, 20, k))
    ratio = np.linalg.norm(th0 - star, axis=1) / amos.initial_distance(k, sigma)
    # each squared norm is a chi^2 with 2k dof scaled: relative sd 1/sqrt(k) = 1.6%, 5 sd allowed
    assert_allclose(ratio, 1.0, atol=5 / math.sqrt(k))


@settings(max_examples=50, deadline=None)
@given(st.floats(1e-3, 0.3), st.floats(0.05, 1.0), st.floats(0.0, 1e4), st.floats(1e-3, 10.0),
       st.floats(1e-3, 1e3), st.floats(0.2, 2.0))
def test_rates_satisfy_the_balance(alpha0, p, t, eps0, u_norm, q):
    """The step length, the decay rate, and the balance alpha^2 ||u||^2 = 2 rho q ||eps_t||^2
    holding exactly when ||eps_t||^2 = ||eps_0||^2 e^{-2S_t}."""
    for mode in ("fixed", "dynamic", "constant"):
        alpha, rho = amos.lr_and_weight_decay(t, alpha0, p, eps0, u_norm, q, mode)
        f = float(amos.decay(t, alpha0, p, mode))
        assert float(alpha) * u_norm == pytest.approx(alpha0 * eps0 * f, rel=1e-13)
        assert float(rho) == pytest.approx(alpha0**2 * f / (2 * q), rel=1e-13)
        eps_t2 = eps0**2 * f
        assert float(alpha) ** 2 * u_norm**2 == pytest.approx(2 * float(rho) * q * eps_t2,
                                                              rel=1e-12)


def test_rates_broadcast_and_tensor():
    alpha, rho = amos.lr_and_weight_decay(torch.arange(4), 0.1, 0.5, 2.0, 3.0)
    assert isinstance(alpha, torch.Tensor) and alpha.shape == (4,) and rho.shape == (4,)
    alpha, rho = amos.lr_and_weight_decay(np.zeros(1), 0.1, 0.5, 2.0, np.array([1.0, 2.0]))
    assert_allclose(alpha, [0.2, 0.1], rtol=EPS)
    assert_allclose(rho, [0.005, 0.005], rtol=EPS)


def test_balance_diagnostics_against_direct_formulas():
    rng = np.random.default_rng(1)
    T, d = 5, 7
    star = rng.normal(size=d)
    rho = rng.uniform(0.01, 0.1, T)
    steps = rng.normal(size=(T, d))
    th = [rng.normal(size=d)]
    for t in range(T):
        th.append((1 - rho[t]) * th[-1] - steps[t])
    th = np.array(th)
    out = amos.balance_diagnostics(th, rho, star)
    eps = th - star
    assert_allclose(out["distance"], np.linalg.norm(eps, axis=1), rtol=1e-14)
    assert_allclose(out["step"], np.linalg.norm(steps, axis=1), rtol=1e-12)
    cos = (steps * eps[:-1]).sum(1) / np.linalg.norm(steps, axis=1) / np.linalg.norm(eps[:-1],
                                                                                     axis=1)
    assert_allclose(out["cosine"], cos, rtol=1e-11)
    bal = (steps**2).sum(1) / (2 * rho * (th[:-1] * eps[:-1]).sum(1))
    assert_allclose(out["balance"], bal, rtol=1e-11)


# --- the optimizer ---------------------------------------------------------------------------

def grad_stream(n: int, d: int = 6, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(d, generator=gen, dtype=F64) for _ in range(n)]


@pytest.mark.parametrize("mode", ["fixed", "dynamic", "constant"])
def test_optimizer_equals_adamw_with_the_schedule(mode):
    """Same gradients, torch.optim.AdamW given lr = alpha_t and weight_decay = rho_t / alpha_t."""
    grads = grad_stream(30)
    init = torch.linspace(-1, 1, 6, dtype=F64)
    p = init.clone().requires_grad_(True)
    ours = amos.AmosLikeAdamW([p], alpha0=0.05, p=0.3, mode=mode, sigma=0.2)
    r = init.clone().requires_grad_(True)
    ref = torch.optim.AdamW([r], lr=1.0, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    for g in grads:
        p.grad, r.grad = g.clone(), g.clone()
        ours.step()
        lr, rho = ours.state[p]["lr"], ours.state[p]["rho"]
        ref.param_groups[0]["lr"], ref.param_groups[0]["weight_decay"] = lr, rho / lr
        ref.step()
        torch.testing.assert_close(p, r, rtol=0, atol=100 * EPS)
    assert ours.state[p]["step"] == 30


def test_sgd_direction_and_step_length():
    grads = grad_stream(10, seed=3)
    p = torch.ones(6, dtype=F64, requires_grad=True)
    opt = amos.AmosLikeAdamW([p], alpha0=0.1, p=0.5, q=2.0, direction="sgd", sigma=0.3,
                             init="fixed")
    eps0 = amos.initial_distance(6, 0.3, "fixed")
    for t, g in enumerate(grads):
        before = p.detach().clone()
        p.grad = g.clone()
        opt.step()
        f = float(amos.decay(t, 0.1, 0.5))
        rho = 0.1**2 * f / 4.0
        want = (1 - rho) * before - 0.1 * eps0 * f * g / g.norm()
        torch.testing.assert_close(p.detach(), want, rtol=0, atol=10 * EPS)
        assert opt.state[p]["rho"] == pytest.approx(rho, rel=1e-15)


def test_tensors_in_one_optimizer_train_independently():
    ga, gb = grad_stream(8, d=4, seed=1), grad_stream(8, d=9, seed=2)
    a1, b1 = torch.ones(4, dtype=F64), torch.zeros(9, dtype=F64) + 0.1
    a2, b2 = a1.clone(), b1.clone()
    both = amos.AmosLikeAdamW([a1, b1], alpha0=0.05, p=0.5, sigma=0.1)
    one, two = (amos.AmosLikeAdamW([x], alpha0=0.05, p=0.5, sigma=0.1) for x in (a2, b2))
    for g, h in zip(ga, gb, strict=True):
        a1.grad, b1.grad, a2.grad, b2.grad = g, h, g.clone(), h.clone()
        both.step()
        one.step()
        two.step()
    assert torch.equal(a1, a2) and torch.equal(b1, b2)


def test_state_dict_round_trip():
    def make(params):
        return amos.AmosLikeAdamW(params, alpha0=0.05, p=0.4, mode="dynamic", sigma=0.2)

    fresh, q = assert_optimizer_round_trip(make, torch.linspace(0, 1, 6, dtype=F64),
                                           grad_stream(12), stop=5)
    assert fresh.state[q]["step"] == 12


def test_closure_none_grads_and_zero_gradient():
    p = torch.ones(3, dtype=F64, requires_grad=True)
    opt = amos.AmosLikeAdamW([p], alpha0=0.1, p=1.0)
    assert opt.step(lambda: torch.tensor(2.0)).item() == 2.0
    assert torch.equal(p, torch.ones(3, dtype=F64))
    p.grad = torch.zeros(3, dtype=F64)
    opt.step()
    assert opt.state[p]["lr"] == 0.0
    torch.testing.assert_close(p.detach(), torch.full((3,), 1 - 0.1**2 / 2, dtype=F64))


# --- the published Amos ----------------------------------------------------------------------

def test_paper_schedule_first_steps_and_recursion():
    xi, eta, zeta = 0.1, 0.25, 0.25
    ratio = np.linspace(0.5, 1.5, 5)
    out = amos.amos_paper_schedule(5, xi, eta, zeta, ratio)
    assert out["b"][0] == 0 and out["lr_factor"][0] == 1.0
    assert out["weight_decay"][0] == pytest.approx(xi**2 * ratio[0] / 2, rel=1e-15)
    b = 0.0
    for t in range(5):
        c = (1 + zeta * math.sqrt(xi) * b) ** -0.5
        d = 1 / (1 + zeta * math.sqrt(xi * eta) * b)
        gamma = c * xi**2 * ratio[t]
        assert out["lr_factor"][t] == pytest.approx(d, rel=1e-14)
        assert out["weight_decay"][t] == pytest.approx(0.5 * d * gamma, rel=1e-14)
        b = b + gamma * (1 + b)
    assert out["b"][-1] == pytest.approx(b, rel=1e-14)


def test_paper_schedule_asymptotic_exponents():
    """lr factor ~ t^-2 and weight decay ~ t^-3 once b >> 1 (local log-log slopes)."""
    xi = 0.3
    out = amos.amos_paper_schedule(40_000, xi, 0.25)
    t1, t2 = 20_000, 39_999
    slope = lambda y: math.log(y[t2] / y[t1]) / math.log(t2 / t1)  # noqa: E731
    assert slope(out["lr_factor"]) == pytest.approx(-2.0, abs=0.02)
    assert slope(out["weight_decay"]) == pytest.approx(-3.0, abs=0.03)


# --- error paths -----------------------------------------------------------------------------

def test_errors_decay_and_recurrence():
    with pytest.raises(ValueError, match="t must be >= 0"):
        amos.decay(-1.0, 0.1, 0.5)
    with pytest.raises(ValueError, match="t must be finite"):
        amos.decay(np.nan, 0.1, 0.5)
    with pytest.raises(ValueError, match="alpha0"):
        amos.decay(1.0, 0.0, 0.5)
    with pytest.raises(ValueError, match="p must lie"):
        amos.decay(1.0, 0.1, 0.0)
    with pytest.raises(ValueError, match="p must lie"):
        amos.decay(1.0, 0.1, 1.5)
    with pytest.raises(TypeError, match="p must be a real number"):
        amos.decay(1.0, 0.1, "x")
    with pytest.raises(ValueError, match="mode"):
        amos.decay(1.0, 0.1, 0.5, "cosine")
    with pytest.raises(ValueError, match="alpha0"):
        amos.simulate_S([0.1, -0.1], 0.5, 3)
    with pytest.raises(ValueError, match="p must lie"):
        amos.simulate_S(0.1, [0.5, 1.2], 3)
    with pytest.raises(ValueError, match="T must be >= 1"):
        amos.simulate_S(0.1, 0.5, 0)
    with pytest.raises(TypeError, match="T must be an integer"):
        amos.simulate_S(0.1, 0.5, 2.5)
    with pytest.raises(ValueError, match="mode"):
        amos.simulate_S(0.1, 0.5, 3, "constant")


def test_errors_halving_scale_rates():
    with pytest.raises(ValueError, match="T_half"):
        amos.p_for_halving(0, 0.1)
    with pytest.raises(ValueError, match="alpha0"):
        amos.p_for_halving(10, -0.1)
    with pytest.raises(ValueError, match="T_half = 1 is too short"):
        amos.p_for_halving(1, 0.01)
    with pytest.raises(ValueError, match="mode"):
        amos.p_for_halving(10, 0.1, "constant")
    with pytest.raises(ValueError, match="numel"):
        amos.initial_distance(0, 0.1)
    with pytest.raises(ValueError, match="sigma"):
        amos.initial_distance(3, -0.1)
    with pytest.raises(ValueError, match="init"):
        amos.initial_distance(3, 0.1, "ones")
    with pytest.raises(ValueError, match="eps0"):
        amos.lr_and_weight_decay(1, 0.1, 0.5, 0.0, 1.0)
    with pytest.raises(ValueError, match="u_norm"):
        amos.lr_and_weight_decay(1, 0.1, 0.5, 1.0, [1.0, 0.0])
    with pytest.raises(ValueError, match="q must be"):
        amos.lr_and_weight_decay(1, 0.1, 0.5, 1.0, 1.0, q=0.0)
    with pytest.raises(ValueError, match="t must be >= 0"):
        amos.lr_and_weight_decay(-2, 0.1, 0.5, 1.0, 1.0)


def test_errors_diagnostics():
    th, rho, star = np.zeros((4, 3)) + 1.0, np.full(3, 0.1), np.zeros(3)
    with pytest.raises(ValueError, match="theta must be 2-dimensional"):
        amos.balance_diagnostics(np.zeros(3), rho, star)
    with pytest.raises(ValueError, match="theta must hold at least two"):
        amos.balance_diagnostics(np.zeros((1, 3)), rho[:0], star)
    with pytest.raises(ValueError, match="rho must have shape"):
        amos.balance_diagnostics(th, np.full(4, 0.1), star)
    with pytest.raises(ValueError, match="rho must be > 0"):
        amos.balance_diagnostics(th, np.array([0.1, 0.0, 0.1]), star)
    with pytest.raises(ValueError, match="theta_star must have shape"):
        amos.balance_diagnostics(th, rho, np.zeros(2))
    with pytest.raises(ValueError, match="theta must be finite"):
        amos.balance_diagnostics(th * np.nan, rho, star)


@pytest.mark.parametrize("kw,match", [
    ({"alpha0": 0.0}, "alpha0"), ({"p": 0.0}, "p must lie"), ({"p": 2.0}, "p must lie"),
    ({"q": -1.0}, "q must be"), ({"mode": "cosine"}, "mode"), ({"sigma": 0.0}, "sigma"),
    ({"init": "ones"}, "init"), ({"direction": "lion"}, "direction"),
    ({"betas": (0.9,)}, "betas"), ({"betas": (0.9, 1.0)}, "betas"),
    ({"betas": (1.5, 0.9)}, r"betas\[0\]"), ({"eps": 0.0}, "eps"),
])
def test_errors_optimizer(kw, match):
    with pytest.raises(ValueError, match=match):
        amos.AmosLikeAdamW([torch.zeros(2, requires_grad=True)], **kw)


def test_errors_paper_schedule():
    with pytest.raises(ValueError, match="T must be >= 1"):
        amos.amos_paper_schedule(0, 0.1, 0.5)
    with pytest.raises(ValueError, match="xi"):
        amos.amos_paper_schedule(3, 0.0, 0.5)
    with pytest.raises(ValueError, match="eta"):
        amos.amos_paper_schedule(3, 0.1, -0.5)
    with pytest.raises(ValueError, match="zeta"):
        amos.amos_paper_schedule(3, 0.1, 0.5, zeta=0.0)
    with pytest.raises(ValueError, match="ratio must be a number or have shape"):
        amos.amos_paper_schedule(3, 0.1, 0.5, ratio=np.ones(2))
    with pytest.raises(ValueError, match="ratio must be >= 0"):
        amos.amos_paper_schedule(2, 0.1, 0.5, ratio=np.array([1.0, -1.0]))
