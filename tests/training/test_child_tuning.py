"""Tests of kexue_notes.training.child_tuning: closed forms, identities, and every error path."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.testing import assert_close

from kexue_notes.training import child_tuning as ct

torch.set_num_threads(1)
F64 = torch.float64


def small_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Sequential(nn.Linear(4, 6), nn.Tanh()), nn.Linear(6, 3)).double()


# --- moments -------------------------------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(st.floats(-5, 5), st.floats(0, 5), st.floats(0.01, 1))
def test_dropout_moments_by_enumeration(mu: float, sigma: float, p: float) -> None:
    # E over eps in {0, 1}: E[g eps / p] = p mu / p, E[(g eps/p)^2] = p (mu^2 + sigma^2) / p^2
    mean, var = ct.dropout_moments(mu, sigma, p)
    second = p * (mu**2 + sigma**2) / p**2
    assert math.isclose(float(mean), mu, rel_tol=1e-12, abs_tol=1e-12)
    assert math.isclose(float(var), second - mu**2, rel_tol=1e-9, abs_tol=1e-9)
    assert float(var) >= sigma**2 - 1e-9


def test_dropout_moments_monte_carlo() -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.zeros(400_000, dtype=F64, requires_grad=True)
    w.grad = -1.0 + 0.5 * torch.randn(400_000, generator=g, dtype=F64)
    masks = ct.gradient_dropout_([w], 0.25, g)
    mean, var = ct.dropout_moments(-1.0, 0.5, 0.25)
    assert abs(float(w.grad.mean() - mean)) < 5 * float((var / 4e5).sqrt())
    assert abs(float(w.grad.var() / var) - 1) < 0.02
    assert abs(float(masks[0].mean()) - 0.25) < 0.005


def test_dropout_moments_broadcast_and_errors() -> None:
    mean, var = ct.dropout_moments(torch.tensor([0.0, 1.0]), 1.0, 1.0)
    assert_close(mean, torch.tensor([0.0, 1.0], dtype=F64))
    assert_close(var, torch.ones(2, dtype=F64))
    with pytest.raises(ValueError, match="p must"):
        ct.dropout_moments(0.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="p must"):
        ct.dropout_moments(0.0, 1.0, 1.5)
    with pytest.raises(ValueError, match="sigma must"):
        ct.dropout_moments(0.0, -1.0, 0.5)
    with pytest.raises(ValueError, match="mu must be finite"):
        ct.dropout_moments(float("nan"), 1.0, 0.5)


@settings(max_examples=50, deadline=None)
@given(st.floats(-3, 3), st.floats(0.1, 3), st.floats(0.01, 1), st.floats(0, 0.99))
def test_adam_steady_update_ratios(mu: float, sigma: float, p: float, b1: float) -> None:
    m_d, v_d = ct.adam_steady_update(mu, sigma, p, b1)
    m_p, v_p = ct.adam_steady_update(mu, sigma, 1.0, b1)
    rho = mu**2 / (mu**2 + sigma**2)
    # the mean scales by sqrt(p); the variance by (1 - p rho) / (1 - rho) >= 1
    assert math.isclose(float(m_d), math.sqrt(p) * float(m_p), rel_tol=1e-12, abs_tol=1e-14)
    assert math.isclose(float(v_d) * (1 - rho), float(v_p) * (1 - p * rho), rel_tol=1e-9,
                        abs_tol=1e-12)
    assert float(v_d) >= float(v_p) - 1e-12
    # with v fixed, u = m / sqrt(v): Var m = (1 - b1)/(1 + b1) Var g~, v = E g~^2
    mean, var = ct.dropout_moments(mu, sigma, p)
    assert math.isclose(float(v_d), (1 - b1) / (1 + b1) * float(var / (var + mean**2)),
                        rel_tol=1e-9, abs_tol=1e-12)


def test_adam_steady_update_against_torch_adam() -> None:
    g = torch.Generator().manual_seed(1)
    D, T, K, p = 3000, 900, 600, 0.3
    grads = 0.6 + 0.8 * torch.randn(T, D, generator=g, dtype=F64)
    masks = (torch.rand(T, D, generator=g, dtype=F64) < p).to(F64)
    th = torch.zeros(D, dtype=F64, requires_grad=True)
    opt = torch.optim.Adam([th], lr=1e-3)
    ups = []
    for t in range(T):
        before = th.detach().clone()
        th.grad = grads[t] * masks[t] / p
        opt.step()
        if t >= T - K:
            ups.append((before - th.detach()) / 1e-3)
    u = torch.stack(ups)
    mean, var = ct.adam_steady_update(0.6, 0.8, p, 0.9)
    assert abs(float(u.mean() / mean) - 1) < 0.03
    assert abs(float(u.var(0).mean() / var) - 1) < 0.12        # finite beta2 and sample bias


def test_adam_steady_update_errors() -> None:
    with pytest.raises(ValueError, match="beta1 must"):
        ct.adam_steady_update(1.0, 1.0, 0.5, 1.0)
    with pytest.raises(ValueError, match="beta1 must"):
        ct.adam_steady_update(1.0, 1.0, 0.5, -0.1)
    with pytest.raises(ValueError, match="p must"):
        ct.adam_steady_update(1.0, 1.0, 0.0, 0.9)
    with pytest.raises(ValueError, match="sigma must"):
        ct.adam_steady_update(1.0, -1.0, 0.5, 0.9)
    with pytest.raises(ValueError, match="mu and sigma"):
        ct.adam_steady_update(0.0, 0.0, 0.5, 0.9)


def test_moved_fraction_closed_form_and_errors() -> None:
    assert_close(ct.moved_fraction(0.2, torch.tensor([1, 2, 3])),
                 torch.tensor([0.2, 0.36, 0.488], dtype=F64))
    assert float(ct.moved_fraction(1.0, 1)) == 1.0
    with pytest.raises(ValueError, match="t must"):
        ct.moved_fraction(0.2, 0)
    with pytest.raises(TypeError, match="t must"):
        ct.moved_fraction(0.2, 1.5)
    with pytest.raises(ValueError, match="p must"):
        ct.moved_fraction(0.0, 3)


@pytest.mark.parametrize("momentum", [True, False])
def test_moved_fraction_matches_optimizers(momentum: bool) -> None:
    g = torch.Generator().manual_seed(2)
    th = torch.zeros(20_000, dtype=F64, requires_grad=True)
    opt = (torch.optim.SGD([th], lr=0.1, momentum=0.9) if momentum
           else torch.optim.SGD([th], lr=0.1))
    for t in range(1, 8):
        before = th.detach().clone()
        th.grad = 1.0 + torch.rand(20_000, generator=g, dtype=F64)
        ct.gradient_dropout_([th], 0.3, g)
        opt.step()
        frac = float((th.detach() != before).double().mean())
        expect = float(ct.moved_fraction(0.3, t)) if momentum else 0.3
        assert abs(frac - expect) < 5 * math.sqrt(expect * (1 - expect) / 20_000) + 1e-9


# --- the methods ---------------------------------------------------------------------------------

def test_gradient_dropout_skips_missing_grads_and_errors() -> None:
    a = torch.zeros(3, requires_grad=True)
    b = torch.zeros(2, requires_grad=True)
    a.grad = torch.ones(3)
    masks = ct.gradient_dropout_([a, b], 1.0)
    assert len(masks) == 1 and b.grad is None
    assert_close(a.grad, torch.ones(3))
    with pytest.raises(ValueError, match="params must"):
        ct.gradient_dropout_([], 0.5)
    with pytest.raises(TypeError, match="params"):
        ct.gradient_dropout_([np.zeros(2)], 0.5)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="p must"):
        ct.gradient_dropout_([a], 0.0)


def test_update_dropout_step_masks_the_update() -> None:
    g = torch.Generator().manual_seed(3)
    th = torch.zeros(10_000, dtype=F64, requires_grad=True)
    ref = torch.zeros(10_000, dtype=F64, requires_grad=True)
    opt = torch.optim.SGD([th], lr=0.1)
    opt_ref = torch.optim.SGD([ref], lr=0.1)
    grad = torch.randn(10_000, generator=g, dtype=F64)
    th.grad, ref.grad = grad.clone(), grad.clone()
    (m,) = ct.update_dropout_step(opt, 0.25, g)
    opt_ref.step()
    assert_close(th.detach(), m * ref.detach() / 0.25, rtol=1e-14, atol=1e-15)
    assert abs(float(m.mean()) - 0.25) < 0.02
    with pytest.raises(TypeError, match="optimizer"):
        ct.update_dropout_step("sgd", 0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="p must"):
        ct.update_dropout_step(opt, 1.5)


def test_mask_gradients_and_adam_scale_invariance() -> None:
    g = torch.Generator().manual_seed(4)
    grads = torch.randn(50, 200, generator=g, dtype=F64)
    mask = torch.rand(200, generator=g) < 0.3
    finals = []
    for scale in (1.0, 1 / 0.3):
        th = torch.zeros(200, dtype=F64, requires_grad=True)
        opt = torch.optim.Adam([th], lr=1e-2)
        for t in range(50):
            th.grad = grads[t].clone()
            ct.mask_gradients_([th], [mask], scale)
            opt.step()
        finals.append(th.detach())
    assert bool((finals[0][~mask] == 0).all())
    assert_close(finals[0], finals[1], rtol=1e-6, atol=1e-9)     # Adam ignores the 1/p up to eps
    th = torch.zeros(3, requires_grad=True)
    th.grad = torch.ones(3)
    ct.mask_gradients_([th], [None])
    assert_close(th.grad, torch.ones(3))
    with pytest.raises(ValueError, match="masks must hold"):
        ct.mask_gradients_([th], [])
    with pytest.raises(ValueError, match="masks"):
        ct.mask_gradients_([th], [torch.ones(2, dtype=torch.bool)])
    with pytest.raises(ValueError, match="scale"):
        ct.mask_gradients_([th], [None], 0.0)


# --- Fisher --------------------------------------------------------------------------------------

def test_fisher_diagonal_matches_loop_of_backward() -> None:
    net = small_net()
    g = torch.Generator().manual_seed(5)
    x = torch.randn(12, 4, generator=g, dtype=F64)
    y = torch.randint(0, 3, (12,), generator=g)
    F = ct.fisher_diagonal(net, x, y)
    loop = {k: torch.zeros_like(v) for k, v in net.named_parameters()}
    for j in range(12):
        net.zero_grad()
        torch.log_softmax(net(x[j:j + 1]), -1)[0, y[j]].backward()
        for k, v in net.named_parameters():
            assert v.grad is not None
            loop[k] += v.grad**2 / 12
    for k in loop:
        assert_close(F[k], loop[k], rtol=1e-12, atol=1e-14)
    sub = ct.fisher_diagonal(net, x, y, names=["1.weight"])
    assert list(sub) == ["1.weight"]
    assert_close(sub["1.weight"], F["1.weight"], rtol=1e-12, atol=1e-14)


def test_fisher_diagonal_equals_softmax_closed_form() -> None:
    torch.manual_seed(6)
    lin = nn.Linear(5, 4).double()
    g = torch.Generator().manual_seed(6)
    x = torch.randn(30, 5, generator=g, dtype=F64)
    y = torch.randint(0, 4, (30,), generator=g)
    F = ct.fisher_diagonal(lin, x, y)
    proba = torch.softmax(lin(x), -1).detach().numpy()
    F_W, F_b = ct.softmax_regression_fisher(x.numpy(), y.numpy(), proba)
    assert_close(F["weight"], F_W, rtol=1e-12, atol=1e-15)
    assert_close(F["bias"], F_b, rtol=1e-12, atol=1e-15)


def test_fisher_diagonal_errors() -> None:
    net = small_net()
    x = torch.randn(5, 4, dtype=F64)
    with pytest.raises(TypeError, match="model"):
        ct.fisher_diagonal("net", x, torch.zeros(5, dtype=torch.long))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="y must"):
        ct.fisher_diagonal(net, x, torch.zeros(5))
    with pytest.raises(ValueError, match="y must"):
        ct.fisher_diagonal(net, x, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="names"):
        ct.fisher_diagonal(net, x, torch.zeros(5, dtype=torch.long), names=["nope"])


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.01, 1.0))
def test_fisher_mask_keeps_top_fraction(seed: int, p: float) -> None:
    g = torch.Generator().manual_seed(seed)
    scores = {"a": torch.rand(7, 3, generator=g, dtype=F64),
              "b": torch.rand(11, generator=g, dtype=F64)}
    masks = ct.fisher_mask(scores, p)
    kept = torch.cat([masks[k].reshape(-1) for k in scores])
    flat = torch.cat([scores[k].reshape(-1) for k in scores])
    assert int(kept.sum()) == max(1, math.ceil(p * 32))           # distinct scores: exactly k
    if bool((~kept).any()):
        assert float(flat[kept].min()) >= float(flat[~kept].max())


def test_fisher_mask_ties_and_errors() -> None:
    masks = ct.fisher_mask({"a": torch.ones(10)}, 0.3)
    assert bool(masks["a"].all())                                     # ties at the threshold kept
    with pytest.raises(ValueError, match="scores must hold"):
        ct.fisher_mask({}, 0.5)
    with pytest.raises(ValueError, match="scores must be >= 0"):
        ct.fisher_mask({"a": -torch.ones(3)}, 0.5)
    with pytest.raises(ValueError, match="p must"):
        ct.fisher_mask({"a": torch.ones(3)}, 0.0)


def test_softmax_regression_fisher_errors() -> None:
    x = np.ones((3, 2))
    prob = np.full((3, 2), 0.5)
    with pytest.raises(ValueError, match="proba"):
        ct.softmax_regression_fisher(x, [0, 1, 0], np.full((3, 2), 0.6))
    with pytest.raises(ValueError, match="y must"):
        ct.softmax_regression_fisher(x, [0.0, 1.0, 0.0], prob)
    with pytest.raises(ValueError, match="y must lie"):
        ct.softmax_regression_fisher(x, [0, 2, 0], prob)
    with pytest.raises(ValueError, match="same length"):
        ct.softmax_regression_fisher(x, [0, 1], prob)
    with pytest.raises(ValueError, match="x must be"):
        ct.softmax_regression_fisher(np.ones(3), [0, 1, 0], prob)


# --- stacked fine-tuning -------------------------------------------------------------------------

def _stacked_problem(S: int = 3):
    g = torch.Generator().manual_seed(7)
    models = [small_net(s) for s in range(S)]
    x = torch.randn(S, 10, 4, generator=g, dtype=F64)
    y = torch.randint(0, 3, (S, 10), generator=g)
    return models, x, y


def test_finetune_stacked_plain_equals_separate_adam_runs() -> None:
    models, x, y = _stacked_problem()
    trained = ct.finetune_stacked(models, x, y, method="plain", lr=1e-2, steps=15)
    for s, m in enumerate(models):
        ref = copy.deepcopy(m)
        opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
        for _ in range(15):
            opt.zero_grad()
            nn.functional.cross_entropy(ref(x[s]), y[s]).backward()
            opt.step()
        for k, v in ref.named_parameters():
            assert_close(trained[k][s], v.detach(), rtol=1e-10, atol=1e-12)


def test_finetune_stacked_fast_path_equals_vmap() -> None:
    models, x, _ = _stacked_problem()
    params, buffers = torch.func.stack_module_state(models)  # type: ignore[arg-type]
    fast = ct._stacked_forward(models[0])(params, buffers, x)
    ref = torch.stack([m(x[s]) for s, m in enumerate(models)])
    assert_close(fast, ref, rtol=1e-12, atol=1e-12)

    class Odd(nn.Module):                      # not a Sequential: the vmap path
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 3).double()

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return self.lin(z).tanh()

    odd = [Odd() for _ in range(3)]
    p2, b2 = torch.func.stack_module_state(odd)  # type: ignore[arg-type]
    assert_close(ct._stacked_forward(odd[0])(p2, b2, x),
                 torch.stack([m(x[s]) for s, m in enumerate(odd)]), rtol=1e-12, atol=1e-12)


def test_finetune_stacked_child_d_freezes_masked_coordinates() -> None:
    models, x, y = _stacked_problem()
    masks = [ct.fisher_mask(ct.fisher_diagonal(m, x[s], y[s], ["0.0.weight"]), 0.3)
             for s, m in enumerate(models)]
    start, _ = torch.func.stack_module_state(models)  # type: ignore[arg-type]
    trained = ct.finetune_stacked(models, x, y, method="child-d", lr=1e-2, steps=10, p=0.3,
                                  masks=masks)
    frozen = ~torch.stack([m["0.0.weight"] for m in masks])
    assert bool((trained["0.0.weight"][frozen] == start["0.0.weight"][frozen]).all())
    assert bool((trained["0.0.weight"][~frozen] != start["0.0.weight"][~frozen]).all())
    assert bool((trained["1.weight"] != start["1.weight"]).all())       # unmasked head trains


@pytest.mark.parametrize("method", ["child-f", "update-dropout"])
def test_finetune_stacked_random_methods_are_seeded(method: str) -> None:
    models, x, y = _stacked_problem()
    a = ct.finetune_stacked(models, x, y, method=method, lr=1e-2, steps=5, p=0.5,
                            generator=torch.Generator().manual_seed(0))
    b = ct.finetune_stacked(models, x, y, method=method, lr=1e-2, steps=5, p=0.5,
                            generator=torch.Generator().manual_seed(0))
    c = ct.finetune_stacked(models, x, y, method="plain", lr=1e-2, steps=5)
    for k in a:
        assert_close(a[k], b[k], rtol=0, atol=0)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_finetune_stacked_errors() -> None:
    models, x, y = _stacked_problem()
    with pytest.raises(ValueError, match="method"):
        ct.finetune_stacked(models, x, y, method="sgd", lr=1e-2, steps=1)
    with pytest.raises(ValueError, match="lr"):
        ct.finetune_stacked(models, x, y, method="plain", lr=0.0, steps=1)
    with pytest.raises(ValueError, match="steps"):
        ct.finetune_stacked(models, x, y, method="plain", lr=1e-2, steps=0)
    with pytest.raises(ValueError, match="p must"):
        ct.finetune_stacked(models, x, y, method="child-f", lr=1e-2, steps=1, p=0.0)
    with pytest.raises(ValueError, match="models"):
        ct.finetune_stacked([], x, y, method="plain", lr=1e-2, steps=1)
    with pytest.raises(ValueError, match="x must"):
        ct.finetune_stacked(models, x[:2], y, method="plain", lr=1e-2, steps=1)
    with pytest.raises(ValueError, match="masks"):
        ct.finetune_stacked(models, x, y, method="child-d", lr=1e-2, steps=1)
    partial = [{"1.weight": torch.ones(3, 6, dtype=torch.bool)}, {}, {}]
    with pytest.raises(ValueError, match="masks"):
        ct.finetune_stacked(models, x, y, method="child-d", lr=1e-2, steps=1, masks=partial)


def test_stacked_accuracy() -> None:
    models, x, _ = _stacked_problem()
    params, _ = torch.func.stack_module_state(models)  # type: ignore[arg-type]
    xt = x[0]
    labels = models[1](xt).argmax(-1)
    acc = ct.stacked_accuracy(models[0], params, xt, labels)
    assert acc.shape == (3,) and float(acc[1]) == 1.0
    with pytest.raises(ValueError, match="params"):
        ct.stacked_accuracy(models[0], {}, xt, labels)
    with pytest.raises(ValueError, match="y must"):
        ct.stacked_accuracy(models[0], params, xt, labels[:3])


# --- intervals and data --------------------------------------------------------------------------


def test_load_digits_arrays_matches_sklearn() -> None:
    from sklearn.datasets import load_digits

    x, y = ct.load_digits_arrays()
    X_ref, y_ref = load_digits(return_X_y=True)
    np.testing.assert_array_equal(x, X_ref / 16.0)
    np.testing.assert_array_equal(y, y_ref)
