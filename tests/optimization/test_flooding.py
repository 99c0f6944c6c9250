"""Tests of kexue_notes.optimization.flooding: closed forms, identities, and every error path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from kexue_notes.optimization import flooding as fl

torch.set_num_threads(1)
F64 = torch.float64
SIZES = (3, 5, 1)


def quadratic(seed: int, P: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """A random symmetric matrix A and vector c for L = theta'A theta/2 - c'theta."""
    g = torch.Generator().manual_seed(seed)
    M = torch.randn(P, P, generator=g, dtype=F64)
    return (M + M.T) / 2, torch.randn(P, generator=g, dtype=F64)


def mlp_problem(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(16, SIZES[0], generator=g, dtype=F64)
    Y = torch.randn(16, generator=g, dtype=F64)
    theta = 0.5 * torch.randn(fl.mlp_num_params(SIZES), generator=g, dtype=F64)

    def loss_fn(th: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((fl.mlp_forward(th, X, SIZES).squeeze(-1) - Y) ** 2).mean()

    return loss_fn, theta


def autograd_grad(loss_fn):
    def grad_fn(th: torch.Tensor) -> torch.Tensor:
        th = th.detach().requires_grad_(True)
        return torch.autograd.grad(loss_fn(th), th)[0]
    return grad_fn


# --- flood ---------------------------------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(st.floats(0, 10), st.floats(0, 10))
def test_flood_is_reflection_below_b(loss: float, b: float) -> None:
    out = float(fl.flood(torch.tensor(loss, dtype=F64), b))
    expected = loss if loss >= b else 2 * b - loss
    assert math.isclose(out, expected, rel_tol=1e-15, abs_tol=1e-15)


def test_flood_gradient_flips_sign() -> None:
    w = torch.tensor([1.0, -2.0], dtype=F64, requires_grad=True)
    for b, sign in ((0.5, 1.0), (10.0, -1.0)):
        loss = (w**2).sum() / 2                 # = 2.5
        (gw,) = torch.autograd.grad(fl.flood(loss, b), w)
        assert_close(gw, sign * w.detach(), rtol=0, atol=0)


def test_flood_errors() -> None:
    with pytest.raises(ValueError, match="b must be"):
        fl.flood(torch.tensor(1.0), -0.1)
    with pytest.raises(TypeError, match="b must be"):
        fl.flood(torch.tensor(1.0), "0.1")
    with pytest.raises(ValueError, match="loss must be finite"):
        fl.flood(torch.tensor(float("nan")), 0.1)


# --- two steps vs the gradient penalty -----------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.floats(-0.3, 0.3), st.floats(-0.3, 0.3))
def test_two_step_exact_for_quadratics(seed: int, e1: float, e2: float) -> None:
    A, c = quadratic(seed)
    theta = torch.randn(4, generator=torch.Generator().manual_seed(seed + 1), dtype=F64)

    def loss_fn(th: torch.Tensor) -> torch.Tensor:
        return th @ A @ th / 2 - c @ th

    two = fl.two_step(lambda th: A @ th - c, theta, e1, e2)
    pen = fl.penalty_equivalent_step(loss_fn, theta, e1, e2)
    g = A @ theta - c
    closed = theta - (e1 - e2) * g - e1 * e2 * A @ g
    assert_close(two, closed, rtol=1e-12, atol=1e-12)
    assert_close(pen, closed, rtol=1e-12, atol=1e-12)


def test_two_step_error_is_third_order_on_mlp() -> None:
    loss_fn, theta = mlp_problem()
    grad_fn = autograd_grad(loss_fn)
    eps = np.array([1e-3, 2e-3, 4e-3, 8e-3])
    err = [float((fl.two_step(grad_fn, theta, e) - fl.penalty_equivalent_step(loss_fn, theta, e))
                 .norm()) for e in eps]
    slope = np.polyfit(np.log(eps), np.log(err), 1)[0]
    assert abs(slope - 3) < 0.05
    # ascending first gives the same second-order map
    err_rev = float((fl.two_step(grad_fn, theta, -1e-3, -1e-3)
                     - fl.penalty_equivalent_step(loss_fn, theta, 1e-3)).norm())
    assert err_rev < 10 * err[0]


def test_two_step_default_eps2_and_reverse() -> None:
    A, c = quadratic(3)
    th = torch.ones(4, dtype=F64)
    gf = lambda t: A @ t - c  # noqa: E731
    assert_close(fl.two_step(gf, th, 0.1), fl.two_step(gf, th, 0.1, 0.1), rtol=0, atol=0)


def test_penalized_gradient_is_g_plus_2_lambda_Hg() -> None:
    A, c = quadratic(5)
    th = torch.randn(4, generator=torch.Generator().manual_seed(9), dtype=F64)
    g = A @ th - c
    out = fl.penalized_gradient(lambda t: t @ A @ t / 2 - c @ t, th, 0.7)
    assert_close(out, g + 2 * 0.7 * A @ g, rtol=1e-13, atol=1e-13)


def test_penalty_step_matches_equivalent_penalty() -> None:
    loss_fn, theta = mlp_problem(1)
    eta, lam = fl.equivalent_penalty(0.05, 0.02)
    assert math.isclose(eta, 0.03) and math.isclose(lam, 0.05 * 0.02 / (2 * 0.03))
    step = theta - eta * fl.penalized_gradient(loss_fn, theta, lam)
    assert_close(fl.penalty_equivalent_step(loss_fn, theta, 0.05, 0.02), step,
                 rtol=1e-13, atol=1e-14)


def test_backstitch_is_a_penalty() -> None:
    # ascent by alpha*lr, then descent by (1+alpha)*lr: learning rate lr, weight alpha(1+alpha)lr/2
    alpha, lr = 0.3, 0.1
    eta, lam = fl.equivalent_penalty(-alpha * lr, -(1 + alpha) * lr)
    assert math.isclose(eta, lr) and math.isclose(lam, alpha * (1 + alpha) * lr / 2)


def test_step_errors() -> None:
    A, c = quadratic(0)
    gf = lambda t: A @ t - c  # noqa: E731
    th = torch.zeros(4, dtype=F64)
    with pytest.raises(ValueError, match="theta must be 1-dimensional"):
        fl.two_step(gf, torch.zeros(2, 2, dtype=F64), 0.1)
    with pytest.raises(ValueError, match="eps1 must be finite"):
        fl.two_step(gf, th, float("inf"))
    with pytest.raises(TypeError, match="eps2 must be a real number"):
        fl.two_step(gf, th, 0.1, "x")
    with pytest.raises(ValueError, match="grad_fn must return"):
        fl.two_step(lambda t: t[:2], th, 0.1)
    with pytest.raises(ValueError, match="loss_fn must return a 0-d"):
        fl.penalized_gradient(lambda t: t * 2, th, 0.1)
    with pytest.raises(TypeError, match="weight must be a real number"):
        fl.penalized_gradient(lambda t: (t**2).sum(), th, None)
    with pytest.raises(ValueError, match="eps1 must be finite"):
        fl.penalty_equivalent_step(lambda t: (t**2).sum(), th, float("nan"))
    with pytest.raises(ValueError, match="eps2 must differ from eps1"):
        fl.equivalent_penalty(0.1, 0.1)
    with pytest.raises(TypeError, match="eps1 must be a real number"):
        fl.equivalent_penalty(True, 0.1)


# --- the MLP -------------------------------------------------------------------------------------

def test_mlp_matches_torch_layers() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(),
                              torch.nn.Linear(5, 1)).double()
    theta = torch.cat([net[0].weight.T.reshape(-1), net[0].bias,
                       net[2].weight.T.reshape(-1), net[2].bias]).detach()
    assert theta.numel() == fl.mlp_num_params(SIZES) == 26
    x = torch.randn(7, 3, dtype=F64)
    assert_close(fl.mlp_forward(theta, x, SIZES), net(x), rtol=1e-14, atol=1e-14)


def test_mlp_errors() -> None:
    with pytest.raises(ValueError, match="sizes must be"):
        fl.mlp_num_params([3])
    with pytest.raises(TypeError, match="sizes must be an integer"):
        fl.mlp_num_params([3, 2.5])
    with pytest.raises(ValueError, match="sizes must be >= 1"):
        fl.mlp_num_params([3, 0])
    with pytest.raises(ValueError, match="theta must have shape"):
        fl.mlp_forward(torch.zeros(5, dtype=F64), torch.zeros(2, 3, dtype=F64), SIZES)
    with pytest.raises(ValueError, match="x must have last axis 3"):
        fl.mlp_forward(torch.zeros(26, dtype=F64), torch.zeros(2, 4, dtype=F64), SIZES)


# --- per-sample gradients and accordance ---------------------------------------------------------

def logistic_data(seed: int = 0, n: int = 12, d: int = 4):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=F64)
    y = (torch.rand(n, generator=g, dtype=F64) < 0.5).to(F64)
    w = torch.randn(d, generator=g, dtype=F64)
    return x, y, w


def test_per_sample_grads_closed_form_and_loop() -> None:
    x, y, w = logistic_data()
    G = fl.per_sample_grads(fl.logistic_loss, w, x, y)
    closed = (torch.sigmoid(x @ w) - y)[:, None] * x
    assert_close(G, closed, rtol=1e-13, atol=1e-14)
    loop = torch.stack([autograd_grad(lambda t, i=i: fl.logistic_loss(t, x[i], y[i]))(w)
                        for i in range(len(y))])
    assert_close(G, loop, rtol=1e-13, atol=1e-14)
    assert_close(G.mean(0), fl.logistic_grad(w[None], x, y)[0], rtol=1e-13, atol=1e-14)


def test_per_sample_grads_errors() -> None:
    x, y, w = logistic_data()
    with pytest.raises(ValueError, match="x and y must hold the same number"):
        fl.per_sample_grads(fl.logistic_loss, w, x, y[:-1])
    with pytest.raises(ValueError, match="theta must be 1-dimensional"):
        fl.per_sample_grads(fl.logistic_loss, w[None], x, y)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 5))
def test_accordance_is_mean_pairwise_cosine(seed: int, K: int) -> None:
    g = torch.Generator().manual_seed(seed)
    G = torch.randn(20, 6, generator=g, dtype=F64)
    groups = torch.arange(20) % K
    A = float(fl.gradient_accordance(G, groups))
    means = [G[groups == k].mean(0) for k in range(K)]
    cos = [float(means[k] @ means[m] / (means[k].norm() * means[m].norm()))
           for k in range(K) for m in range(K) if k != m]
    assert math.isclose(A, np.mean(cos), rel_tol=1e-12, abs_tol=1e-14)
    assert -1 - 1e-12 <= A <= 1 + 1e-12
    # relabelling groups or scaling gradients changes nothing
    assert math.isclose(float(fl.gradient_accordance(3.0 * G, groups * 7 + 1)), A,
                        rel_tol=1e-12, abs_tol=1e-14)


def test_accordance_extremes() -> None:
    v = torch.tensor([1.0, 2.0], dtype=F64)
    same = torch.stack([v, v, 2 * v])
    assert math.isclose(float(fl.gradient_accordance(same, torch.tensor([0, 1, 2]))), 1.0)
    opposite = torch.stack([v, -v])
    assert math.isclose(float(fl.gradient_accordance(opposite, torch.tensor([0, 1]))), -1.0)


def test_accordance_errors() -> None:
    G = torch.ones(4, 3, dtype=F64)
    with pytest.raises(TypeError, match="groups must be an integer tensor"):
        fl.gradient_accordance(G, torch.zeros(4))
    with pytest.raises(ValueError, match="groups must have shape"):
        fl.gradient_accordance(G, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="groups must hold at least two"):
        fl.gradient_accordance(G, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="grads: a group's mean gradient is zero"):
        fl.gradient_accordance(torch.cat([G[:2], 0 * G[2:]]), torch.tensor([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="grads must be 2-dimensional"):
        fl.gradient_accordance(torch.ones(4), torch.tensor([0, 1, 0, 1]))


def test_flood_level_from_accordance() -> None:
    loss = torch.tensor([0.7, 0.5, 0.4, 0.3], dtype=F64)
    acc = torch.tensor([0.3, 0.1, -0.05, -0.2], dtype=F64)
    assert fl.flood_level_from_accordance(loss, acc) == (0.4, 2)
    assert fl.flood_level_from_accordance(loss, acc, threshold=0.2) == (0.5, 1)
    with pytest.raises(ValueError, match="accordance never falls below"):
        fl.flood_level_from_accordance(loss, acc.abs())
    with pytest.raises(ValueError, match="accordance must have shape"):
        fl.flood_level_from_accordance(loss, acc[:2])
    with pytest.raises(TypeError, match="threshold must be a real number"):
        fl.flood_level_from_accordance(loss, acc, threshold="0")


# --- the trainer ---------------------------------------------------------------------------------

def test_trainer_step_is_sgd_on_the_flooded_loss() -> None:
    x, y, _ = logistic_data(2, n=8)
    b = torch.tensor([0.0, 0.3, 5.0], dtype=F64)
    h = fl.train_logistic_flooded(x, y, b, lr=0.5, epochs=1, batch_size=8,
                                  generator=torch.Generator().manual_seed(0))
    w0 = torch.zeros(x.shape[1], dtype=F64)
    for r in range(3):
        gw = autograd_grad(lambda t, r=r: fl.flood(fl.logistic_loss(t, x, y), float(b[r])))(w0)
        assert_close(h["w"][1, r], w0 - 0.5 * gw, rtol=1e-14, atol=1e-15)
    assert h["w"].shape == (2, 3, x.shape[1]) and "test_loss" not in h
    # b = 5 is above the initial loss log 2: the first step ascends
    assert float(h["train_loss"][1, 2]) > math.log(2) > float(h["train_loss"][1, 0])


def test_trainer_runs_are_independent_and_deterministic() -> None:
    x, y, _ = logistic_data(3, n=30)
    kw = dict(lr=0.3, epochs=5, batch_size=7, x_test=x, y_test=y)
    both = fl.train_logistic_flooded(x, y, torch.tensor([0.0, 0.4]),
                                     generator=torch.Generator().manual_seed(1), **kw)
    one = fl.train_logistic_flooded(x, y, torch.tensor([0.4]),
                                    generator=torch.Generator().manual_seed(1), **kw)
    assert_close(both["w"][:, 1], one["w"][:, 0], rtol=0, atol=0)
    assert_close(both["train_loss"][:, 1], both["test_loss"][:, 1], rtol=0, atol=0)
    assert both["test_acc"].shape == (6, 2)
    gn = fl.logistic_grad(both["w"][-1], x, y).norm(dim=1)
    assert_close(both["grad_norm"][-1], gn, rtol=0, atol=0)
    # history=False keeps only the start and the end, of the very same training
    ends = fl.train_logistic_flooded(x, y, torch.tensor([0.0, 0.4]), history=False,
                                     generator=torch.Generator().manual_seed(1), **kw)
    assert sorted(ends) == sorted(both)
    for key, val in ends.items():
        assert_close(val, both[key][[0, -1]], rtol=0, atol=0)


def test_trainer_errors() -> None:
    x, y, _ = logistic_data()
    gen = torch.Generator().manual_seed(0)
    b = torch.tensor([0.1])
    kw = dict(lr=0.1, epochs=2, batch_size=4, generator=gen)
    with pytest.raises(ValueError, match="y must hold labels 0 or 1"):
        fl.train_logistic_flooded(x, 2 * y, b, **kw)
    with pytest.raises(ValueError, match="y must have shape"):
        fl.train_logistic_flooded(x, y[:-1], b, **kw)
    with pytest.raises(ValueError, match="b must be >= 0"):
        fl.train_logistic_flooded(x, y, torch.tensor([-0.1]), **kw)
    with pytest.raises(ValueError, match="lr must be finite and > 0"):
        fl.train_logistic_flooded(x, y, b, **{**kw, "lr": 0.0})
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        fl.train_logistic_flooded(x, y, b, **{**kw, "epochs": 0})
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        fl.train_logistic_flooded(x, y, b, **{**kw, "batch_size": 2.0})
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator"):
        fl.train_logistic_flooded(x, y, b, **{**kw, "generator": 0})
    with pytest.raises(ValueError, match="x_test must have shape"):
        fl.train_logistic_flooded(x, y, b, x_test=x[:, :2], y_test=y, **kw)
    with pytest.raises(TypeError, match="history must be a bool"):
        fl.train_logistic_flooded(x, y, b, history=1, **kw)
