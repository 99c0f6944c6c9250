"""Tests of kexue_notes.optimization.exponentiated_gradient: EG against its closed forms and scipy,
the
meta-learned rate against the chain rule and its closed form, the optimizers' state_dict round
trips, and every error path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.optimize import minimize, nnls

from conftest import assert_optimizer_round_trip
from kexue_notes.optimization import exponentiated_gradient as eg

torch.set_num_threads(1)
EPS = float(np.finfo(np.float64).eps)
F64 = torch.float64

finite = st.floats(-3.0, 3.0, allow_nan=False)
positive = st.floats(0.05, 5.0, allow_nan=False)


def planted_nnls(seed: int = 0, m: int = 30, n: int = 6):
    """A non-negative least-squares problem whose solution (with zeros) is known."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(m, n)) / np.sqrt(m)
    x_star = np.where(np.arange(n) % 3 == 1, 0.0, rng.uniform(0.5, 2.0, n))
    lam = np.where(x_star == 0, rng.uniform(0.3, 1.0, n), 0.0)   # KKT multipliers
    b = A @ x_star - A @ np.linalg.solve(A.T @ A, lam)          # so that A^T(A x* - b) = lam
    return A, b, x_star, lam


# --- exponentiated gradient ------------------------------------------------------------------

def test_eg_step_closed_form_and_tensor_input():
    theta, g = np.array([1.0, 2.0, 0.0]), np.array([0.5, -1.0, 3.0])
    out = eg.eg_step(theta, g, 0.1)
    assert_allclose(out, [np.exp(-0.05), 2 * np.exp(0.1), 0.0], rtol=4 * EPS)
    assert_allclose(eg.eg_step(torch.tensor(theta), torch.tensor(g), 0.1), out, rtol=0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(positive, finite), min_size=1, max_size=6), positive)
def test_eg_step_is_the_mirror_descent_stationary_point(pairs, lr):
    theta, g = np.array(pairs).T
    new = eg.eg_step(theta, g, lr)
    assert (new > 0).all()
    # first-order condition of <g, x> + D(x || theta)/lr: g + log(x / theta)/lr = 0
    assert_allclose(g + np.log(new / theta) / lr, 0.0, atol=1e-12 * (1 + np.abs(g).max()))


def test_eg_step_minimises_the_proximal_objective():
    rng = np.random.default_rng(3)
    theta, g, lr = rng.uniform(0.2, 2.0, 5), rng.normal(size=5), 0.7
    res = minimize(lambda x: float(eg.mirror_descent_objective(x, theta, g, lr)), theta,
                   method="L-BFGS-B", jac="3-point", bounds=[(0, None)] * 5,
                   options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 1000})
    assert_allclose(res.x, eg.eg_step(theta, g, lr), rtol=1e-7)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(positive, positive), min_size=1, max_size=6))
def test_unnormalized_kl_is_the_bregman_divergence_and_non_negative(pairs):
    x, y = np.array(pairs).T
    psi = lambda v: (v * np.log(v) - v).sum()                       # noqa: E731
    bregman = psi(x) - psi(y) - (np.log(y) * (x - y)).sum()
    d = eg.unnormalized_kl(x, y)
    assert d >= -1e-12
    assert_allclose(d, bregman, atol=1e-10 * (1 + np.abs(x * np.log(x)).sum()))
    assert eg.unnormalized_kl(y, y) == pytest.approx(0.0, abs=1e-12)


def test_unnormalized_kl_zero_entries_and_batch_axis():
    assert eg.unnormalized_kl([0.0, 1.0], [2.0, 1.0]) == pytest.approx(2.0)
    batch = eg.unnormalized_kl(np.ones((4, 3)), np.full((4, 3), 2.0))
    assert batch.shape == (4,)
    assert_allclose(batch, 3 * (np.log(0.5) - 1 + 2), rtol=1e-14)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(positive, finite, st.floats(0.5, 1.5)), min_size=1, max_size=5),
       positive)
def test_mirror_objective_is_smallest_at_the_eg_step(triples, lr):
    theta, g, scale = np.array(triples).T
    best = eg.eg_step(theta, g, lr)
    f = eg.mirror_descent_objective(np.stack([best, best * scale]), theta, g, lr)
    assert f[0] <= f[1] + 1e-12 * (1 + abs(f[0]))


def test_eg_least_squares_converges_to_nnls_and_stays_positive():
    A, b, x_star, lam = planted_nnls()
    x_nnls, _ = nnls(A, b)
    assert_allclose(x_nnls, x_star, atol=1e-12)
    traj = eg.eg_least_squares(A, b, np.ones(A.shape[1]), 0.5, 2000)
    assert traj.shape == (2001, A.shape[1]) and (traj > 0).all()
    assert_allclose(traj[-1], x_nnls, atol=1e-10)
    zero = x_star == 0                        # these decay geometrically at the rate lr * lam
    slope = np.log(traj[-1, zero]) - np.log(traj[-2, zero])
    assert_allclose(slope, -0.5 * lam[zero], rtol=1e-8)


def test_eg_optimizer_matches_eg_least_squares():
    A, b, _, _ = planted_nnls(1)
    traj = eg.eg_least_squares(A, b, np.ones(A.shape[1]), 0.3, 50)
    p = torch.ones(A.shape[1], dtype=F64, requires_grad=True)
    opt = eg.EG([p], lr=0.3)
    At, bt = torch.tensor(A), torch.tensor(b)
    for t in range(50):
        opt.zero_grad()
        (0.5 * ((At @ p - bt) ** 2).sum()).backward()
        opt.step()
        assert_allclose(p.detach().numpy(), traj[t + 1], rtol=1e3 * EPS)


def test_eg_sign_flip_is_caught():
    """If the exponent's sign were flipped the step would ascend: the loss must go down."""
    A, b, _, _ = planted_nnls(2)
    traj = eg.eg_least_squares(A, b, np.ones(A.shape[1]), 0.2, 5)
    loss = 0.5 * ((traj @ A.T - b) ** 2).sum(1)
    assert (np.diff(loss) < 0).all()


# --- the meta-learned learning rate ----------------------------------------------------------

def test_meta_gradient_matches_autograd():
    gen = torch.Generator().manual_seed(0)
    theta_prev, g_prev = torch.randn(7, generator=gen, dtype=F64), torch.randn(7, generator=gen,
                                                                                  dtype=F64)
    nu = torch.rand(7, generator=gen, dtype=F64).add_(0.5).requires_grad_(True)
    lr = 0.3
    loss_fn = lambda th: torch.log(torch.cosh(th)).sum() + th.prod()     # noqa: E731
    theta_t = theta_prev - lr * nu * g_prev
    (auto,) = torch.autograd.grad(loss_fn(theta_t), nu)
    th = theta_t.detach().requires_grad_(True)
    (g_t,) = torch.autograd.grad(loss_fn(th), th)
    assert_allclose(eg.meta_gradient(g_prev, g_t, lr), auto.numpy(), rtol=1e-13, atol=1e-15)


@settings(max_examples=50, deadline=None)
@given(st.lists(finite, min_size=2, max_size=12), st.floats(0.0, 0.5), positive)
def test_meta_lr_nu_satisfies_its_recursion(gs, gamma, nu_init):
    g = np.array(gs)
    nu = eg.meta_lr_nu(g, gamma, nu_init)
    assert nu.shape == g.shape and nu[0] == pytest.approx(nu_init)
    assert_allclose(nu[1:], nu[:-1] * np.exp(gamma * g[:-1] * g[1:]), rtol=1e-12)


def test_meta_lr_nu_vector_shape_and_array_init():
    g = np.arange(12.0).reshape(4, 3) / 10
    nu = eg.meta_lr_nu(g, 1.0, np.array([1.0, 2.0, 3.0]))
    assert nu.shape == (4, 3)
    assert_allclose(nu[-1], [1, 2, 3] * np.exp((g[1:] * g[:-1]).sum(0)), rtol=1e-14)


def run_meta(opt, p, grads):
    nus = []
    for g in grads:
        p.grad = g.clone()
        opt.step()
        nus.append(opt.state[p]["nu"].clone())
    return torch.stack(nus)


def test_metalrsgd_nu_equals_closed_form_and_step():
    gen = torch.Generator().manual_seed(1)
    grads = torch.randn(30, 4, generator=gen, dtype=F64)
    p = torch.zeros(4, dtype=F64, requires_grad=True)
    opt = eg.MetaLRSGD([p], lr=0.1, gamma=0.2, nu_init=0.5)
    nus = run_meta(opt, p, grads)
    closed = eg.meta_lr_nu(grads.numpy(), 0.2, 0.5)
    assert_allclose(nus.numpy(), closed, rtol=1e3 * EPS)
    assert_allclose(p.detach().numpy(), -0.1 * (closed * grads.numpy()).sum(0), rtol=1e-12)


def test_metalrsgd_with_gamma_zero_is_sgd():
    A, b, _, _ = planted_nnls(4)
    At, bt = torch.tensor(A), torch.tensor(b)
    p, q = (torch.zeros(A.shape[1], dtype=F64, requires_grad=True) for _ in range(2))
    opt_m, opt_s = eg.MetaLRSGD([p], lr=0.4, gamma=0.0), torch.optim.SGD([q], lr=0.4)
    for _ in range(20):
        for w, opt in ((p, opt_m), (q, opt_s)):
            opt.zero_grad()
            (0.5 * ((At @ w - bt) ** 2).sum()).backward()
            opt.step()
        assert torch.equal(p, q)


def test_metalrsgd_quadratic_rate_moves_towards_one_over_a():
    """On a/2 theta^2 the multiplier rises while lr*a*nu < 1 and falls while it is > 1."""
    a, lr = 2.0, 0.05
    p = torch.tensor([1.0], dtype=F64, requires_grad=True)
    opt = eg.MetaLRSGD([p], lr=lr, gamma=0.5)
    xs = []
    for _ in range(40):
        p.grad = a * p.detach().clone()
        opt.step()
        xs.append(lr * a * float(opt.state[p]["nu"]))
    xs = np.array(xs)
    moved = np.diff(xs)                       # nu_{t+2}/nu_{t+1} = exp(gamma a^2 theta_t^2 (1 - x))
    live = moved != 0                         # once theta underflows the rate stops moving
    assert live.sum() >= 5
    assert (np.sign(moved[live]) == np.sign(1 - xs[:-1][live])).all()
    assert xs[-1] > 5 * xs[0]


@pytest.mark.parametrize("make", [lambda ps: eg.EG(ps, lr=0.2),
                                  lambda ps: eg.MetaLRSGD(ps, lr=0.1, gamma=0.3)])
def test_state_dict_round_trip(make):
    grads = torch.randn(12, 5, generator=torch.Generator().manual_seed(2), dtype=F64)
    assert_optimizer_round_trip(make, torch.ones(5, dtype=F64), grads, stop=5)


def test_closure_is_called_and_none_grads_skipped():
    p = torch.ones(2, dtype=F64, requires_grad=True)
    for opt in (eg.EG([p], lr=0.1), eg.MetaLRSGD([p], lr=0.1)):
        p.grad = None
        assert opt.step(lambda: torch.tensor(3.0)).item() == 3.0
        assert torch.equal(p, torch.ones(2, dtype=F64))


# --- error paths ---------------------------------------------------------------------------------

def test_errors_eg_functions():
    with pytest.raises(ValueError, match="theta"):
        eg.eg_step([-1.0, 1.0], [0.0, 0.0], 0.1)
    with pytest.raises(ValueError, match="grad"):
        eg.eg_step([1.0, 1.0], [0.0], 0.1)
    with pytest.raises(ValueError, match="grad"):
        eg.eg_step([1.0], [np.nan], 0.1)
    with pytest.raises(ValueError, match="lr"):
        eg.eg_step([1.0], [0.0], 0.0)
    with pytest.raises(TypeError, match="theta"):
        eg.eg_step("ab", [0.0], 0.1)
    with pytest.raises(ValueError, match="theta_ref"):
        eg.unnormalized_kl([1.0], [0.0])
    with pytest.raises(ValueError, match="theta"):
        eg.unnormalized_kl([-1.0], [1.0])
    with pytest.raises(ValueError, match="theta_ref"):
        eg.unnormalized_kl([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="theta"):
        eg.unnormalized_kl(1.0, 1.0)
    with pytest.raises(ValueError, match="theta_t"):
        eg.mirror_descent_objective([1.0], [0.0], [1.0], 0.1)
    with pytest.raises(ValueError, match="grad"):
        eg.mirror_descent_objective([1.0], [1.0], [1.0, 2.0], 0.1)
    with pytest.raises(ValueError, match="theta"):
        eg.mirror_descent_objective([1.0, 2.0, 3.0], [1.0, 1.0], [1.0, 2.0], 0.1)
    with pytest.raises(ValueError, match="lr"):
        eg.mirror_descent_objective([1.0], [1.0], [1.0], -1.0)


def test_errors_eg_least_squares():
    A, b = np.eye(3), np.ones(3)
    with pytest.raises(ValueError, match="A"):
        eg.eg_least_squares(np.ones(3), b, np.ones(3), 0.1, 5)
    with pytest.raises(ValueError, match="b"):
        eg.eg_least_squares(A, np.ones(2), np.ones(3), 0.1, 5)
    with pytest.raises(ValueError, match="theta0"):
        eg.eg_least_squares(A, b, np.ones(2), 0.1, 5)
    with pytest.raises(ValueError, match="theta0"):
        eg.eg_least_squares(A, b, np.zeros(3), 0.1, 5)
    with pytest.raises(ValueError, match="lr"):
        eg.eg_least_squares(A, b, np.ones(3), 0.0, 5)
    with pytest.raises(ValueError, match="steps"):
        eg.eg_least_squares(A, b, np.ones(3), 0.1, 0)
    with pytest.raises(TypeError, match="steps"):
        eg.eg_least_squares(A, b, np.ones(3), 0.1, 2.5)


def test_errors_meta_functions():
    with pytest.raises(ValueError, match="grad"):
        eg.meta_gradient([1.0, 2.0], [1.0], 0.1)
    with pytest.raises(ValueError, match="grad_prev"):
        eg.meta_gradient([np.inf], [1.0], 0.1)
    with pytest.raises(ValueError, match="lr"):
        eg.meta_gradient([1.0], [1.0], 0.0)
    with pytest.raises(ValueError, match="grads"):
        eg.meta_lr_nu(1.0, 0.1)
    with pytest.raises(ValueError, match="grads"):
        eg.meta_lr_nu(np.zeros((0, 2)), 0.1)
    with pytest.raises(ValueError, match="gamma"):
        eg.meta_lr_nu([1.0, 2.0], -0.1)
    with pytest.raises(ValueError, match="nu_init"):
        eg.meta_lr_nu([1.0, 2.0], 0.1, 0.0)


def test_errors_optimizers():
    p = torch.ones(2, dtype=F64, requires_grad=True)
    with pytest.raises(ValueError, match="lr"):
        eg.EG([p], lr=0.0)
    with pytest.raises(ValueError, match="params"):
        eg.EG([torch.tensor([1.0, -1.0], requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        eg.MetaLRSGD([p], lr=-1.0)
    with pytest.raises(ValueError, match="gamma"):
        eg.MetaLRSGD([p], lr=0.1, gamma=-0.5)
    with pytest.raises(ValueError, match="nu_init"):
        eg.MetaLRSGD([p], lr=0.1, nu_init=0.0)
    with pytest.raises(TypeError, match="gamma"):
        eg.MetaLRSGD([p], lr=0.1, gamma="big")
