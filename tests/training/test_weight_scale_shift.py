"""Tests of kexue_notes.training.weight_scale_shift: invariances, closed forms, torch, errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from kexue_notes.training import weight_scale_shift as wss

torch.set_num_threads(1)
F64 = torch.float64
SIZES = (4, 6, 5, 3)


def network(seed: int = 0, sizes: tuple[int, ...] = SIZES):
    W, B = wss.init_mlp_stack(sizes, [seed], dtype=F64)
    return [w[0] for w in W], [b[0] for b in B]


def inputs(seed: int = 0, n: int = 30, d: int = SIZES[0]) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=F64)


def unit_product_gammas(logs: list[float]) -> torch.Tensor:
    u = torch.tensor(logs, dtype=F64)
    return torch.exp(u - u.mean())


LOGS = st.lists(st.floats(-1.5, 1.5), min_size=3, max_size=3)


# --- the network and torch's layers --------------------------------------------------------------

def test_mlp_forward_matches_torch_sequential() -> None:
    W, B = network(1)
    layers: list[torch.nn.Module] = []
    for i, (w, b) in enumerate(zip(W, B, strict=True)):
        lin = torch.nn.Linear(w.shape[1], w.shape[0], dtype=F64)
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        layers.append(lin)
        if i < len(W) - 1:
            layers.append(torch.nn.ReLU())
    x = inputs(2)
    assert_close(wss.mlp_forward(x, W, B), torch.nn.Sequential(*layers)(x), rtol=1e-14, atol=1e-14)
    final = wss.mlp_forward(x, W, B, final_activation=True)
    assert_close(final, torch.relu(torch.nn.Sequential(*layers)(x)), rtol=1e-14, atol=1e-14)


def test_mlp_forward_on_a_stack_is_each_network() -> None:
    W, B = wss.init_mlp_stack(SIZES, [3, 4], dtype=F64)
    x = inputs(5)
    out = wss.mlp_forward(x, W, B)
    for m in range(2):
        assert_close(out[m], wss.mlp_forward(x, [w[m] for w in W], [b[m] for b in B]),
                     rtol=1e-14, atol=1e-14)


def test_init_mlp_stack_is_nn_linear_init() -> None:
    W, B = wss.init_mlp_stack(SIZES, [11])
    with torch.random.fork_rng():
        torch.manual_seed(11)
        lins = [torch.nn.Linear(a, b) for a, b in itertools.pairwise(SIZES)]
    for w, b, lin in zip(W, B, lins, strict=True):
        assert_close(w[0], lin.weight.detach(), rtol=0, atol=0)
        assert_close(b[0], lin.bias.detach(), rtol=0, atol=0)


def test_network_errors() -> None:
    W, B = network()
    x = inputs()
    with pytest.raises(ValueError, match="weights must be a non-empty"):
        wss.mlp_forward(x, [], None)
    with pytest.raises(ValueError, match=r"weights\[1\] must take"):
        wss.mlp_forward(x, [W[0], W[0]], None)
    with pytest.raises(ValueError, match=r"weights\[0\] must have shape"):
        wss.mlp_forward(x, [torch.ones(3, dtype=F64)], None)
    with pytest.raises(ValueError, match="biases must be a sequence"):
        wss.mlp_forward(x, W, B[:1])
    with pytest.raises(ValueError, match=r"biases\[0\] must have shape"):
        wss.mlp_forward(x, W, [torch.ones(2, dtype=F64), *B[1:]])
    with pytest.raises(ValueError, match="x must have shape"):
        wss.mlp_forward(x[:, :2], W, B)
    with pytest.raises(ValueError, match="x must be finite"):
        wss.mlp_forward(x * float("nan"), W, B)
    with pytest.raises(ValueError, match="sizes must be"):
        wss.init_mlp_stack((4,), [0])
    with pytest.raises(ValueError, match="seeds must be"):
        wss.init_mlp_stack(SIZES, [])
    with pytest.raises(TypeError, match="seeds must be an integer"):
        wss.init_mlp_stack(SIZES, [0.5])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="sizes must be an integer"):
        wss.init_mlp_stack((4, 2.0), [0])  # type: ignore[arg-type]


# --- the shift -----------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(LOGS, st.integers(0, 1000))
def test_cumulative_shift_leaves_the_function_unchanged(logs: list[float], seed: int) -> None:
    W, B = network(seed)
    x = inputs(seed + 1)
    g = unit_product_gammas(logs)
    out = wss.mlp_forward(x, W, B)
    shifted = wss.mlp_forward(x, *wss.shift_weight_scales(W, B, g, "cumulative"))
    assert_close(shifted, out, rtol=1e-12, atol=1e-12 * (1 + out.abs().max().item()))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-1.5, 1.5), min_size=3, max_size=3), st.integers(0, 1000))
def test_cumulative_shift_scales_the_output_by_the_product(logs: list[float], seed: int) -> None:
    W, B = network(seed)
    x = inputs(seed)
    g = torch.exp(torch.tensor(logs, dtype=F64))
    shifted = wss.mlp_forward(x, *wss.shift_weight_scales(W, B, g))
    out = wss.mlp_forward(x, W, B)
    assert_close(shifted, g.prod() * out, rtol=1e-12, atol=1e-12 * g.prod().item()
                 * (1 + out.abs().max().item()))


def test_per_layer_shift_is_exact_without_biases_only() -> None:
    W, B = network(2)
    x = inputs(3)
    g = torch.tensor([2.0, 0.25, 2.0], dtype=F64)
    Wn, Bn = wss.shift_weight_scales(W, None, g, "per_layer")
    assert Bn is None
    assert_close(wss.mlp_forward(x, Wn), wss.mlp_forward(x, W), rtol=1e-13, atol=1e-13)
    out = wss.mlp_forward(x, W, B)
    per = wss.mlp_forward(x, *wss.shift_weight_scales(W, B, g, "per_layer"))
    assert (per - out).abs().max() > 1e-2 * out.abs().max()


def test_shift_on_a_stack_uses_each_networks_gammas() -> None:
    W, B = wss.init_mlp_stack(SIZES, [0, 1], dtype=F64)
    g = torch.tensor([[2.0, 1.0, 0.5], [1.0, 3.0, 1 / 3]], dtype=F64)
    Ws, Bs = wss.shift_weight_scales(W, B, g)
    for m in range(2):
        Wm, Bm = wss.shift_weight_scales([w[m] for w in W], [b[m] for b in B], g[m])
        for a, b in zip(Ws + Bs, Wm + Bm, strict=True):  # type: ignore[operator]
            assert_close(a[m], b, rtol=0, atol=0)


def test_shift_errors() -> None:
    W, B = network()
    with pytest.raises(ValueError, match="gammas must be > 0"):
        wss.shift_weight_scales(W, B, [1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="gammas must have shape"):
        wss.shift_weight_scales(W, B, [1.0, 1.0])
    with pytest.raises(ValueError, match="bias_scaling must be one of"):
        wss.shift_weight_scales(W, B, [1.0, 1.0, 1.0], "global")
    with pytest.raises(ValueError, match="gammas must be finite"):
        wss.shift_weight_scales(W, B, [1.0, float("inf"), 1.0])


# --- the penalties -------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(LOGS, st.integers(0, 1000))
def test_l2_changes_weissi_does_not(logs: list[float], seed: int) -> None:
    W, B = network(seed)
    g = unit_product_gammas(logs)
    Ws, _ = wss.shift_weight_scales(W, B, g)
    norms = torch.stack([torch.linalg.matrix_norm(w) for w in W])
    assert_close(wss.l2_penalty(Ws), ((g * norms)**2).sum(), rtol=1e-13, atol=0)
    for f in (wss.log_norm_penalty, wss.direction_l1_penalty):
        assert_close(f(Ws), f(W), rtol=1e-12, atol=1e-12)
    assert wss.l2_penalty(Ws).item() >= wss.l2_shift_minimum(norms).item() * (1 - 1e-12)


def test_penalty_values_and_gradient() -> None:
    w = torch.tensor([[3.0, 0.0], [0.0, -4.0]], dtype=F64, requires_grad=True)
    assert wss.l2_penalty([w]).item() == 25.0
    assert math.isclose(wss.log_norm_penalty([w]).item(), math.log(5.0), rel_tol=1e-15)
    assert math.isclose(wss.direction_l1_penalty([w]).item(), 7 / 5, rel_tol=1e-15)
    assert math.isclose(wss.weissi_penalty([w], 2.0, 0.5).item(), 2 * math.log(5) + 0.7,
                        rel_tol=1e-15)
    (grad,) = torch.autograd.grad(wss.log_norm_penalty([w]), w)
    assert_close(grad, w.detach() / 25.0, rtol=1e-15, atol=0)


@settings(max_examples=30, deadline=None)
@given(st.floats(0.01, 100.0), st.integers(0, 1000))
def test_direction_term_ignores_each_layers_scale(c: float, seed: int) -> None:
    W, _ = network(seed)
    assert_close(wss.direction_l1_penalty([c * W[0], W[1], W[2]]), wss.direction_l1_penalty(W),
                 rtol=1e-13, atol=0)
    assert_close(wss.log_norm_penalty([c * W[0], W[1], W[2]]),
                 wss.log_norm_penalty(W) + math.log(c), rtol=1e-12, atol=1e-12)


def test_penalty_errors() -> None:
    W, _ = network()
    zero = [torch.zeros(2, 2, dtype=F64)]
    with pytest.raises(ValueError, match="weights: a weight matrix is zero"):
        wss.log_norm_penalty(zero)
    with pytest.raises(ValueError, match="weights: a weight matrix is zero"):
        wss.direction_l1_penalty(zero)
    with pytest.raises(ValueError, match="weights: a weight matrix is zero"):
        wss.balancing_gammas(zero)
    with pytest.raises(ValueError, match="lam1 must be"):
        wss.weissi_penalty(W, -0.1, 0.0)
    with pytest.raises(TypeError, match="lam2 must be"):
        wss.weissi_penalty(W, 0.1, "0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="weights must be a non-empty"):
        wss.l2_penalty(W[0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="norms must be > 0"):
        wss.l2_shift_minimum([1.0, 0.0])
    with pytest.raises(ValueError, match="norms must have shape"):
        wss.l2_shift_minimum(torch.tensor(1.0))


# --- balancing and the AM–GM minimum -------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(LOGS, st.integers(0, 1000))
def test_balancing_reaches_the_minimum(logs: list[float], seed: int) -> None:
    W, B = network(seed)
    W, B = wss.shift_weight_scales(W, B, torch.exp(torch.tensor(logs, dtype=F64)))
    g = wss.balancing_gammas(W)
    assert_close(g.prod(), torch.tensor(1.0, dtype=F64), rtol=1e-13, atol=0)
    Wb, Bb = wss.shift_weight_scales(W, B, g)
    norms = torch.stack([torch.linalg.matrix_norm(w) for w in Wb])
    assert_close(norms, norms.mean().expand(3), rtol=1e-13, atol=0)
    a = torch.stack([torch.linalg.matrix_norm(w) for w in W])
    assert_close(wss.l2_penalty(Wb), wss.l2_shift_minimum(a), rtol=1e-13, atol=0)
    x = inputs(seed)
    out = wss.mlp_forward(x, W, B)
    assert_close(wss.mlp_forward(x, Wb, Bb), out, rtol=1e-12,
                 atol=1e-12 * (1 + out.abs().max().item()))


def test_l2_minimum_against_scipy() -> None:
    from scipy.optimize import minimize

    a = np.array([0.5, 2.0, 7.0, 1.3])

    def f(u: np.ndarray) -> float:      # log-gammas of the first three; the last closes the product
        logs = np.append(u, -u.sum())
        return float(((np.exp(logs) * a)**2).sum())

    res = minimize(f, np.zeros(3), method="BFGS", options={"gtol": 1e-12})
    assert math.isclose(res.fun, wss.l2_shift_minimum(a).item(), rel_tol=1e-9)
    assert math.isclose(wss.l2_shift_minimum(a).item(), 4 * np.prod(a)**0.5, rel_tol=1e-14)


# --- optimisers ----------------------------------------------------------------------------------

def least_squares(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(20, 5, generator=g, dtype=F64)
    y = torch.randn(20, generator=g, dtype=F64)
    return A, y, torch.randn(5, generator=g, dtype=F64)


@settings(max_examples=20, deadline=None)
@given(st.floats(1e-3, 0.5), st.floats(0.0, 2.0), st.integers(0, 100))
def test_decayed_sgd_step_is_torch_sgd_weight_decay(lr: float, wd: float, seed: int) -> None:
    A, y, th0 = least_squares(seed)

    def loss(t: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((A @ t - y)**2).mean()

    traj = wss.optimizer_trajectory(
        loss, th0, lambda p: torch.optim.SGD(p, lr=lr, weight_decay=wd), 3)
    th = th0
    for k in range(3):
        th = wss.decayed_sgd_step(th, A.T @ (A @ th - y) / len(y), lr, wd)
        assert_close(traj[k + 1], th, rtol=1e-13, atol=1e-13)


def test_adam_l2_is_penalty_and_adamw_is_decoupled() -> None:
    A, y, th0 = least_squares(1)
    lam, lr = 0.3, 0.05

    def loss(t: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((A @ t - y)**2).mean()

    adam_wd = wss.optimizer_trajectory(
        loss, th0, lambda p: torch.optim.Adam(p, lr=lr, weight_decay=lam), 50)
    adam_pen = wss.optimizer_trajectory(lambda t: loss(t) + 0.5 * lam * (t**2).sum(), th0,
                                        lambda p: torch.optim.Adam(p, lr=lr), 50)
    adamw = wss.optimizer_trajectory(
        loss, th0, lambda p: torch.optim.AdamW(p, lr=lr, weight_decay=lam), 50)
    manual = wss.optimizer_trajectory(loss, th0, lambda p: torch.optim.Adam(p, lr=lr), 50,
                                      before_step=lambda p: p.mul_(1 - lr * lam))
    assert adam_wd.shape == (51, 5)
    assert_close(adam_wd, adam_pen, rtol=1e-12, atol=1e-12)
    assert_close(adamw, manual, rtol=1e-12, atol=1e-12)
    assert (adam_wd[-1] - adamw[-1]).norm() > 0.01 * adamw[-1].norm()


def test_optimizer_errors() -> None:
    th = torch.ones(3, dtype=F64)
    with pytest.raises(ValueError, match="grad must have the shape"):
        wss.decayed_sgd_step(th, torch.ones(2, dtype=F64), 0.1, 0.0)
    with pytest.raises(ValueError, match="lr must be"):
        wss.decayed_sgd_step(th, th, 0.0, 0.0)
    with pytest.raises(ValueError, match="weight_decay must be"):
        wss.decayed_sgd_step(th, th, 0.1, -1.0)
    with pytest.raises(TypeError, match="weight_decay must be"):
        wss.decayed_sgd_step(th, th, 0.1, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="theta must be finite"):
        wss.decayed_sgd_step(th * float("nan"), th, 0.1, 0.0)
    with pytest.raises(ValueError, match="loss_fn must return a 0-d"):
        wss.optimizer_trajectory(lambda t: t * 2, th, lambda p: torch.optim.SGD(p, lr=0.1), 2)
    with pytest.raises(ValueError, match="steps must be"):
        wss.optimizer_trajectory(lambda t: t.sum(), th, lambda p: torch.optim.SGD(p, lr=0.1), 0)
    with pytest.raises(ValueError, match="theta0 must be finite"):
        wss.optimizer_trajectory(lambda t: t.sum(), th * float("inf"),
                                 lambda p: torch.optim.SGD(p, lr=0.1), 1)


# --- the stacked trainer -------------------------------------------------------------------------

def small_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 4, generator=g, dtype=F64)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long()


def test_stack_trains_each_network_as_if_alone() -> None:
    x, y = small_data()
    W, B = wss.init_mlp_stack(SIZES, [0, 1], dtype=F64)
    kw = dict(steps=15, lr=0.1, momentum=0.9, record_every=5)
    both = wss.train_mlp_stack(x, y, W, B, l2=[1e-2, 0.0], log_norm=[0.0, 0.05],
                               direction_l1=[0.0, 1e-3], x_test=x[:10], y_test=y[:10], **kw)
    assert both["train_loss"].shape == (4, 2) and both["norms"].shape == (4, 2, 3)
    assert both["step"].tolist() == [0, 5, 10, 15]
    for m, pen in enumerate(({"l2": 1e-2}, {"log_norm": 0.05, "direction_l1": 1e-3})):
        alone = wss.train_mlp_stack(x, y, [w[m:m + 1] for w in W], [b[m:m + 1] for b in B],
                                    **pen, **kw)
        for a, b in zip(both["weights"], alone["weights"], strict=True):
            assert_close(a[m], b[0], rtol=1e-12, atol=1e-12)


def test_stack_loss_is_torch_cross_entropy_and_its_step_is_sgd() -> None:
    x, y = small_data()
    W, B = wss.init_mlp_stack(SIZES, [4], dtype=F64)
    hist = wss.train_mlp_stack(x, y, W, B, l2=0.1, log_norm=0.2, direction_l1=0.01, steps=1,
                               lr=0.05, momentum=0.0)
    w0 = [w[0].clone().requires_grad_(True) for w in W]
    b0 = [b[0].clone().requires_grad_(True) for b in B]
    ce = torch.nn.functional.cross_entropy(wss.mlp_forward(x, w0, b0), y)
    assert_close(hist["train_loss"][0, 0], ce.detach(), rtol=1e-13, atol=0)
    total = ce + 0.1 * wss.l2_penalty(w0) + wss.weissi_penalty(w0, 0.2, 0.01)
    grads = torch.autograd.grad(total, w0 + b0)
    for p, g, new in zip(w0 + b0, grads, hist["weights"] + hist["biases"], strict=True):
        assert_close(new[0], p.detach() - 0.05 * g, rtol=1e-13, atol=1e-14)


def test_trainer_errors() -> None:
    x, y = small_data()
    W, B = wss.init_mlp_stack(SIZES, [0], dtype=F64)
    with pytest.raises(ValueError, match="weights must be stacked"):
        wss.train_mlp_stack(x, y, [w[0] for w in W], [b[0] for b in B])
    with pytest.raises(ValueError, match="y must hold labels"):
        wss.train_mlp_stack(x, y + 5, W, B)
    with pytest.raises(ValueError, match="y must be an integer tensor"):
        wss.train_mlp_stack(x, y.double(), W, B)
    with pytest.raises(ValueError, match="x must have shape"):
        wss.train_mlp_stack(x[:, :2], y, W, B)
    with pytest.raises(ValueError, match="l2 must be >= 0"):
        wss.train_mlp_stack(x, y, W, B, l2=-1.0)
    with pytest.raises(ValueError, match="log_norm must be a number or have shape"):
        wss.train_mlp_stack(x, y, W, B, log_norm=[0.1, 0.2])
    with pytest.raises(ValueError, match="momentum must lie"):
        wss.train_mlp_stack(x, y, W, B, momentum=1.0)
    with pytest.raises(ValueError, match="y_test must hold labels"):
        wss.train_mlp_stack(x, y, W, B, x_test=x, y_test=y + 7)
    with pytest.raises(TypeError, match="steps must be an integer"):
        wss.train_mlp_stack(x, y, W, B, steps=1.5)  # type: ignore[arg-type]


def test_digits_arrays_are_sklearns() -> None:
    from sklearn.datasets import load_digits

    X, y = wss.digits_arrays()
    X_ref, y_ref = load_digits(return_X_y=True)
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(y, y_ref)
