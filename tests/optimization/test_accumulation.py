"""kexue_notes.optimization.accumulation: the weights and the gap against direct sums, accumulation
against the
big batch's autograd gradient, the running-statistics formula against the recursion, the optimizers
against torch's built-ins on accumulated gradients, their state_dict round trips, and every error
path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from conftest import assert_optimizer_round_trip
from kexue_notes.optimization import accumulation as ga

torch.set_num_threads(1)
EPS = float(np.finfo(np.float64).eps)
F64 = torch.float64


def linear_problem(seed: int = 0, n: int = 24, d: int = 3):
    """Data and a per-sample loss factory for least squares with a tanh feature."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=gen, dtype=F64)
    y = torch.randn(n, generator=gen, dtype=F64)
    w = torch.randn(d, generator=gen, dtype=F64).requires_grad_(True)

    def loss_fn(batch):
        xb, yb = batch
        return (torch.tanh(xb @ w) - yb) ** 2

    return X, y, w, loss_fn


def grad_of(w: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    (g,) = torch.autograd.grad(value, w)
    return g


# --- weights and gap ---------------------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 20), min_size=1, max_size=6), st.integers(0, 10_000))
def test_weights_reproduce_the_big_mean_and_sum(sizes, seed):
    rng = np.random.default_rng(seed)
    losses = [rng.normal(size=n) for n in sizes]
    means = torch.tensor([x.mean() for x in losses], dtype=F64)
    flat = np.concatenate(losses)
    assert_allclose(ga.micro_batch_weights(sizes, "mean") @ means, flat.mean(), rtol=1e-12,
                    atol=1e-12)
    assert_allclose(ga.micro_batch_weights(sizes, "sum") @ means, flat.sum(), rtol=1e-12,
                    atol=1e-12)
    naive = ga.micro_batch_weights(sizes, "mean_of_means") @ means
    assert_allclose(naive - flat.mean(), ga.mean_of_means_gap(means, sizes), rtol=1e-10,
                    atol=1e-12)


def test_weights_values():
    assert ga.micro_batch_weights([1, 3], "mean").tolist() == [0.25, 0.75]
    assert ga.micro_batch_weights([1, 3], "mean_of_means").tolist() == [0.5, 0.5]
    assert ga.micro_batch_weights([1, 3], "sum").tolist() == [1.0, 3.0]


def test_gap_two_batches_closed_form_and_zero_cases():
    L1, L2, n1, n2 = 0.3, 1.7, 2, 6
    want = -(L1 - L2) * (n1 - n2) / (2 * (n1 + n2))
    assert ga.mean_of_means_gap([L1, L2], [n1, n2]).item() == pytest.approx(want, rel=1e-14)
    assert ga.mean_of_means_gap([L1, L2], [4, 4]).item() == 0.0
    assert ga.mean_of_means_gap([L1, L1], [n1, n2]).item() == pytest.approx(0.0, abs=1e-16)
    vec = ga.mean_of_means_gap(torch.tensor([[L1, 1.0], [L2, 1.0]], dtype=F64), [n1, n2])
    assert vec.shape == (2,)
    assert vec[0].item() == pytest.approx(want, rel=1e-14)


# --- accumulation against the big batch ---------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=5), st.integers(0, 1000))
def test_accumulated_gradient_equals_big_batch(sizes, seed):
    X, y, w, loss_fn = linear_problem(seed, n=sum(sizes))
    micro = list(zip(X.split(sizes), y.split(sizes), strict=True))
    g_mean = grad_of(w, loss_fn((X, y)).mean())
    g_sum = grad_of(w, loss_fn((X, y)).sum())
    total = ga.accumulate_gradients_(loss_fn, micro, [w], scaling="mean")
    assert_allclose(w.grad, g_mean, rtol=1e-12, atol=1e-14)
    assert total.item() == pytest.approx(loss_fn((X, y)).mean().item(), rel=1e-12)
    ga.accumulate_gradients_(loss_fn, micro, [w], scaling="sum")
    assert_allclose(w.grad, g_sum, rtol=1e-12, atol=1e-13)
    ga.accumulate_gradients_(loss_fn, micro, [w], scaling="mean_of_means")
    per_micro = torch.stack([grad_of(w, loss_fn(mb).mean()) for mb in micro])
    assert_allclose(w.grad - g_mean, ga.mean_of_means_gap(per_micro, sizes), rtol=1e-9,
                    atol=1e-13)


def test_replica_axis_is_summed_and_samples_counted_on_last_axis():
    gen = torch.Generator().manual_seed(1)
    W = torch.randn(3, 2, generator=gen, dtype=F64, requires_grad=True)   # 3 replicas
    X = torch.randn(3, 8, 2, generator=gen, dtype=F64)

    def loss_fn(xb):
        return torch.einsum("snd,sd->sn", xb, W) ** 2                  # (replicas, n)

    ga.accumulate_gradients_(loss_fn, [X[:, :3], X[:, 3:]], [W])
    want = grad_of(W, loss_fn(X).mean(dim=-1).sum())
    assert_allclose(W.grad, want, rtol=1e-12, atol=1e-14)


def test_wrong_scaling_fails_the_equivalence():
    X, y, w, loss_fn = linear_problem(2, n=12)
    micro = list(zip(X.split(4), y.split(4), strict=True))
    g_mean = grad_of(w, loss_fn((X, y)).mean())
    ga.accumulate_gradients_(loss_fn, micro, [w], scaling="sum")
    assert not torch.allclose(w.grad, g_mean)


def test_train_accumulated_matches_big_batch_sgd():
    X, y, w1, loss_fn1 = linear_problem(3, n=48)
    _, _, w2, loss_fn2 = linear_problem(3, n=48)
    big = list(zip(X.split(12), y.split(12), strict=True))
    micro = list(zip(X.split(4), y.split(4), strict=True))
    t_big = ga.train_accumulated_(loss_fn1, big, torch.optim.SGD([w1], lr=0.3, momentum=0.9), 1)
    t_acc = ga.train_accumulated_(loss_fn2, micro, torch.optim.SGD([w2], lr=0.3, momentum=0.9),
                                  3, scaling="mean_of_means")
    assert t_big.shape == (5, 3)
    torch.testing.assert_close(t_acc, t_big, rtol=0, atol=100 * EPS)
    assert (t_big[-1] - t_big[0]).abs().max() > 1e-2


# --- running statistics -------------------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(st.integers(1, 8), st.floats(0, 1), st.integers(0, 1000))
def test_ema_closed_form_equals_recursion(k, mu, seed):
    rng = np.random.default_rng(seed)
    r0, stats = rng.normal(size=3), rng.normal(size=(k, 3))
    r = r0.copy()
    for s in stats:
        r = (1 - mu) * r + mu * s
    assert_allclose(ga.ema_after_updates(r0, stats, mu), r, rtol=1e-12, atol=1e-12)


def test_ema_matches_torch_batchnorm_buffers():
    bn = torch.nn.BatchNorm1d(4, dtype=F64)
    gen = torch.Generator().manual_seed(0)
    chunks = [torch.randn(5, 4, generator=gen, dtype=F64) + 2 for _ in range(3)]
    for c in chunks:
        bn(c)
    means = torch.stack([c.mean(0) for c in chunks])
    variances = torch.stack([c.var(0) for c in chunks])
    assert_allclose(bn.running_mean, ga.ema_after_updates(torch.zeros(4), means, 0.1),
                    rtol=0, atol=10 * EPS)
    assert_allclose(bn.running_var, ga.ema_after_updates(torch.ones(4), variances, 0.1),
                    rtol=0, atol=10 * EPS)


# --- indicator, beta tilde, gate, step ratio ------------------------------------------------------

def test_indicator_int_array_tensor():
    assert [ga.accumulation_indicator(t, 3) for t in range(1, 7)] == [0, 0, 1, 0, 0, 1]
    assert ga.accumulation_indicator(np.arange(1, 7), 2).tolist() == [0, 1, 0, 1, 0, 1]
    assert ga.accumulation_indicator(torch.arange(1, 5), 4).tolist() == [0, 0, 0, 1]
    assert ga.accumulation_indicator(5, 1) == 1


@settings(max_examples=50, deadline=None)
@given(st.floats(0, 0.999), st.integers(1, 64))
def test_beta_tilde_series(beta, k):
    bt = ga.beta_tilde(beta, k)
    eps = 1 - beta
    assert 0 <= bt < 1
    assert bt**k == pytest.approx(1 - eps + (k - 1) / (2 * k) * eps**2, abs=eps**3 + 1e-12)
    assert ga.beta_tilde(beta, 1) == pytest.approx(beta, abs=1e-15)


def test_gate_moves_only_every_kth_step_and_keeps_moments():
    w = torch.zeros(2, dtype=F64, requires_grad=True)
    w_ref = torch.zeros(2, dtype=F64, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.1)
    ref = torch.optim.Adam([w_ref], lr=0.1)
    gate = ga.accumulation_gate(opt, 3)
    history = []
    for t in range(1, 10):
        g = torch.tensor([1.0, -2.0], dtype=F64) * t
        w.grad, w_ref.grad = g.clone(), g.clone()
        before = w.detach().clone()
        opt.step()
        gate.step()
        ref.step()
        history.append(bool((w.detach() != before).any()))
        torch.testing.assert_close(opt.state[w]["exp_avg_sq"], ref.state[w_ref]["exp_avg_sq"],
                                   rtol=0, atol=0)
    assert history == [False, False, True] * 3


def test_step_ratio_limits():
    assert ga.accum_adam_step_ratio(1.0, 0.0, 8).item() == 1.0
    assert ga.accum_adam_step_ratio(0.0, 2.0, 4).item() == pytest.approx(0.5)
    assert ga.accum_adam_step_ratio(0.0, 0.0, 4).item() == 1.0
    r = ga.accum_adam_step_ratio(torch.linspace(-3, 3, 7), 1.5, 5)
    assert bool(((r >= 1 / np.sqrt(5) - 1e-15) & (r <= 1)).all())


# --- the optimizers ------------------------------------------------------------------------------

def grad_stream(seed: int, steps: int, shape=(3, 2)) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen, dtype=F64) + 0.3 for _ in range(steps)]


def run(opt_cls, grads, **kw):
    p = torch.ones(grads[0].shape, dtype=F64, requires_grad=True)
    opt = opt_cls([p], **kw)
    traj = []
    for g in grads:
        p.grad = g.clone()
        opt.step()
        traj.append(p.detach().clone())
    return torch.stack(traj), opt, p


@pytest.mark.parametrize("k", [1, 2, 5])
@pytest.mark.parametrize("dampening", [None, 0.0])
def test_accum_sgdm_equals_torch_sgd_on_window_means(k, dampening):
    grads = grad_stream(0, 10 * k)
    beta, lr = 0.9, 0.05
    traj, _, _ = run(ga.AccumSGDM, grads, lr=lr, beta=beta, k=k, dampening=dampening)
    # reference: torch heavy-ball SGD on window means; EMA form is heavy ball with lr * (1 - beta)
    q = torch.ones_like(grads[0], requires_grad=True)
    ref_lr = lr * (1 - beta) if dampening is None else lr
    ref = torch.optim.SGD([q], lr=ref_lr, momentum=beta)
    ref_traj = []
    for s in range(10):
        q.grad = torch.stack(grads[s * k:(s + 1) * k]).mean(0)
        ref.step()
        ref_traj.append(q.detach().clone())
    torch.testing.assert_close(traj[k - 1::k], torch.stack(ref_traj), rtol=0, atol=1e3 * EPS)
    assert torch.equal(traj[0], torch.ones_like(traj[0])) or k == 1


def test_accum_sgdm_sign_of_update_matters():
    grads = grad_stream(1, 6)
    traj, _, _ = run(ga.AccumSGDM, grads, lr=0.1, beta=0.5, k=2)
    assert (traj[-1] < 1).float().mean() > 0.5          # positive-mean gradients push down


def test_accum_adam_k1_equals_torch_adam():
    grads = grad_stream(2, 20)
    traj, _, _ = run(ga.AccumAdam, grads, lr=0.01, betas=(0.9, 0.99), eps=1e-8, k=1)
    ref_traj, _, _ = run(torch.optim.Adam, grads, lr=0.01, betas=(0.9, 0.99), eps=1e-8)
    torch.testing.assert_close(traj, ref_traj, rtol=0, atol=1e3 * EPS)


def test_accum_adam_moments_against_true_accumulation():
    k, b1, b2 = 4, 0.9, 0.99
    grads = grad_stream(3, 8 * k)
    _, opt, p = run(ga.AccumAdam, grads, lr=0.01, betas=(b1, b2), k=k)
    G = torch.stack(grads).reshape(8, k, *grads[0].shape)
    m = torch.zeros_like(grads[0])
    v_true = torch.zeros_like(m)
    excess = torch.zeros_like(m)
    for gw in G:
        m = b1 * m + (1 - b1) * gw.mean(0)
        v_true = b2 * v_true + (1 - b2) * gw.mean(0) ** 2
        excess = b2 * excess + (1 - b2) * gw.var(0, unbiased=False)
    st_ = opt.state[p]
    assert_allclose(st_["exp_avg"], m, rtol=1e-12, atol=1e-15)
    assert_allclose(st_["exp_avg_sq"] - v_true, excess, rtol=1e-10, atol=1e-15)
    assert bool((excess > 0).all())


@pytest.mark.parametrize("make", [
    lambda ps: ga.AccumSGDM(ps, lr=0.05, beta=0.8, k=3),
    lambda ps: ga.AccumAdam(ps, lr=0.01, betas=(0.8, 0.95), k=3),
])
def test_state_dict_round_trip(make):
    grads = grad_stream(4, 14)
    # stop inside a window (7 = 2 * 3 + 1)
    fresh, q = assert_optimizer_round_trip(make, torch.ones(grads[0].shape, dtype=F64), grads,
                                           stop=7)
    assert fresh.state[q]["step"] == 14


def test_closure_is_called_and_none_grads_skipped():
    p = torch.ones(2, dtype=F64, requires_grad=True)
    for opt in (ga.AccumSGDM([p], lr=0.1, k=1), ga.AccumAdam([p], lr=0.1, k=1)):
        p.grad = None
        assert opt.step(lambda: torch.tensor(3.0)).item() == 3.0
        assert torch.equal(p, torch.ones(2, dtype=F64))


# --- error paths ---------------------------------------------------------------------------------

def test_errors_weights_and_gap():
    with pytest.raises(ValueError, match="sizes"):
        ga.micro_batch_weights([], "mean")
    with pytest.raises(ValueError, match="sizes"):
        ga.micro_batch_weights([2, 0], "mean")
    with pytest.raises(ValueError, match="sizes"):
        ga.micro_batch_weights([1.5, 2], "mean")
    with pytest.raises(ValueError, match="scaling"):
        ga.micro_batch_weights([1, 2], "median")
    with pytest.raises(ValueError, match="means"):
        ga.mean_of_means_gap([1.0, 2.0, 3.0], [1, 2])
    with pytest.raises(ValueError, match="means"):
        ga.mean_of_means_gap([1.0, float("nan")], [1, 2])
    with pytest.raises(TypeError, match="sizes"):
        ga.mean_of_means_gap([1.0, 2.0], "ab")


def test_errors_accumulate_and_train():
    X, y, w, loss_fn = linear_problem(0, n=8)
    micro = list(zip(X.split(4), y.split(4), strict=True))
    with pytest.raises(ValueError, match="micro_batches"):
        ga.accumulate_gradients_(loss_fn, [], [w])
    with pytest.raises(ValueError, match="params"):
        ga.accumulate_gradients_(loss_fn, micro, [])
    with pytest.raises(ValueError, match="params"):
        ga.accumulate_gradients_(loss_fn, micro, [torch.zeros(2)])
    with pytest.raises(ValueError, match="scaling"):
        ga.accumulate_gradients_(loss_fn, micro, [w], scaling="avg")
    with pytest.raises(ValueError, match="loss_fn"):
        ga.accumulate_gradients_(lambda b: loss_fn(b).mean(), micro, [w])
    with pytest.raises(ValueError, match="loss_fn"):
        ga.accumulate_gradients_(lambda b: loss_fn(b) / 0.0, micro, [w])
    opt = torch.optim.SGD([w], lr=0.1)
    with pytest.raises(ValueError, match="micro_batches"):
        ga.train_accumulated_(loss_fn, micro, opt, 3)
    with pytest.raises(ValueError, match="k"):
        ga.train_accumulated_(loss_fn, micro, opt, 0)
    with pytest.raises(TypeError, match="k"):
        ga.train_accumulated_(loss_fn, micro, opt, 2.0)


def test_errors_ema_indicator_beta_ratio_gate():
    with pytest.raises(ValueError, match="momentum"):
        ga.ema_after_updates([0.0], [[1.0]], 1.5)
    with pytest.raises(ValueError, match="stats"):
        ga.ema_after_updates([0.0, 0.0], [[1.0]], 0.1)
    with pytest.raises(ValueError, match="initial"):
        ga.ema_after_updates([np.inf], [[1.0]], 0.1)
    with pytest.raises(ValueError, match="k"):
        ga.accumulation_indicator(3, 0)
    with pytest.raises(TypeError, match="t"):
        ga.accumulation_indicator(1.5, 2)
    with pytest.raises(TypeError, match="t"):
        ga.accumulation_indicator(True, 2)
    with pytest.raises(TypeError, match="t"):
        ga.accumulation_indicator(torch.tensor([1.0]), 2)
    with pytest.raises(ValueError, match="beta"):
        ga.beta_tilde(1.0, 4)
    with pytest.raises(ValueError, match="beta"):
        ga.beta_tilde(-0.1, 4)
    with pytest.raises(ValueError, match="k"):
        ga.beta_tilde(0.9, 0)
    with pytest.raises(ValueError, match="sigma2"):
        ga.accum_adam_step_ratio(0.0, -1.0, 2)
    with pytest.raises(ValueError, match="mu"):
        ga.accum_adam_step_ratio(float("nan"), 1.0, 2)
    with pytest.raises(ValueError, match="k"):
        ga.accumulation_gate(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1), 0)


def test_errors_optimizers():
    p = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match="lr"):
        ga.AccumSGDM(p, lr=0.0)
    with pytest.raises(ValueError, match="beta"):
        ga.AccumSGDM(p, lr=0.1, beta=1.0)
    with pytest.raises(ValueError, match="k"):
        ga.AccumSGDM(p, lr=0.1, k=0)
    with pytest.raises(ValueError, match="dampening"):
        ga.AccumSGDM(p, lr=0.1, dampening=1.5)
    with pytest.raises(ValueError, match="lr"):
        ga.AccumAdam(p, lr=-1.0)
    with pytest.raises(ValueError, match=r"betas\[1\]"):
        ga.AccumAdam(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="betas"):
        ga.AccumAdam(p, betas=(0.9,))
    with pytest.raises(ValueError, match="eps"):
        ga.AccumAdam(p, eps=0.0)
    with pytest.raises(ValueError, match="k"):
        ga.AccumAdam(p, k=-2)
