"""Tests for kexue_notes.optimization.multitask: each weighting scheme against its closed form, the
invariances,
and every error path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from kexue_notes.optimization import multitask as mt

torch.set_num_threads(1)
F64 = torch.float64

positive = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False)
loss_lists = st.lists(positive, min_size=1, max_size=6)


# --- a tiny two-task model --------------------------------------------------------------------

def _model(seed: int = 0, replicas: int = 1):
    g = torch.Generator().manual_seed(seed)
    trunk = torch.randn(replicas, 3, 4, generator=g, dtype=F64).requires_grad_()
    head1 = torch.randn(replicas, 4, generator=g, dtype=F64).requires_grad_()
    head2 = torch.randn(replicas, 4, generator=g, dtype=F64).requires_grad_()
    x = torch.randn(20, 3, generator=g, dtype=F64)
    y1 = torch.randn(20, generator=g, dtype=F64)
    y2 = torch.randn(20, generator=g, dtype=F64)
    return trunk, head1, head2, x, y1, y2


def _losses(trunk, head1, head2, x, y1, y2, scale=1.0, shift=0.0):
    h = torch.tanh(x @ trunk)                                  # (R, 20, 4)
    l1 = ((h @ head1[..., None])[..., 0] - y1).pow(2).mean(-1)
    l2 = ((h @ head2[..., None])[..., 0] - y2).pow(2).mean(-1) + 0.1
    return torch.stack([scale * l1 + shift, l2], dim=-1)       # (R, 2)


def _direction(scheme: str, scale: float = 1.0, shift: float = 0.0, **kw) -> torch.Tensor:
    trunk, h1, h2, x, y1, y2 = _model()
    L = _losses(trunk, h1, h2, x, y1, y2, scale, shift)
    if scheme in ("initial", "prior"):
        kw["reference"] = torch.tensor([2.0 * scale + shift, 1.5])
    obj = mt.combine_losses(L, scheme, params=[trunk], **kw)
    g = torch.cat([t.reshape(-1) for t in torch.autograd.grad(obj, [trunk, h1, h2])])
    return g / torch.linalg.vector_norm(g)


# --- references --------------------------------------------------------------------------------

def test_initial_loss_cross_entropy_is_log_k() -> None:
    for k in (2, 3, 10):
        ce = torch.nn.functional.cross_entropy(torch.zeros(5, k, dtype=F64),
                                               torch.arange(5) % k).item()
        assert mt.initial_loss_cross_entropy(k) == pytest.approx(ce, rel=1e-14)
        assert mt.initial_loss_cross_entropy(k) == pytest.approx(math.log(k), rel=1e-15)


def test_initial_and_prior_l2() -> None:
    y = np.array([[1.0, 2.0], [3.0, -2.0], [2.0, 0.0]])
    assert mt.initial_loss_l2(y) == pytest.approx((5 + 13 + 4) / 3)
    mu = y.mean(axis=0)
    assert mt.prior_loss_l2(y) == pytest.approx(np.mean(np.sum((y - mu) ** 2, axis=1)))
    assert mt.prior_loss_l2(y) == pytest.approx(mt.initial_loss_l2(y) - mu @ mu)
    assert mt.prior_loss_l2([1.0, 3.0]) == pytest.approx(1.0)
    assert mt.initial_loss_l2(torch.tensor([1.0, 3.0])) == pytest.approx(5.0)


def test_prior_loss_cross_entropy_is_the_entropy() -> None:
    p = np.array([0.5, 0.25, 0.25])
    assert mt.prior_loss_cross_entropy(p) == pytest.approx(1.5 * math.log(2), rel=1e-15)
    assert mt.prior_loss_cross_entropy([1.0, 0.0]) == 0.0
    assert mt.prior_loss_cross_entropy(np.full(4, 0.25)) == pytest.approx(math.log(4))
    assert mt.prior_loss_cross_entropy(p) == pytest.approx(stats.entropy(p), rel=1e-14)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(min_value=0.01, max_value=1.0), min_size=2, max_size=6))
def test_entropy_at_most_log_k(raw: list[float]) -> None:
    p = np.array(raw) / np.sum(raw)
    assert mt.prior_loss_cross_entropy(p) <= math.log(len(p)) + 1e-12


def test_normalized_loss_and_its_scale_invariance() -> None:
    L = torch.tensor([2.0, 6.0], dtype=F64)
    ref = torch.tensor([4.0, 3.0], dtype=F64)
    assert mt.normalized_loss(L, ref).item() == pytest.approx(2.5)
    scaled = mt.normalized_loss(L * torch.tensor([1000.0, 1.0]), ref * torch.tensor([1000.0, 1.0]))
    assert scaled.item() == pytest.approx(2.5, rel=1e-15)
    batch = mt.normalized_loss(torch.stack([L, 2 * L]), ref)   # replicas, reference broadcast
    assert batch.item() == pytest.approx(7.5)


# --- real-time weighting and power means -------------------------------------------------------

def test_realtime_gradient_is_that_of_sum_of_logs() -> None:
    trunk, h1, h2, x, y1, y2 = _model()
    params = [trunk, h1, h2]
    L = _losses(*params, x, y1, y2)
    value = mt.realtime_weighted_loss(L)
    assert value.item() == 2.0
    g_rt = torch.autograd.grad(value, params, retain_graph=True)
    g_log = torch.autograd.grad(torch.log(L).sum(), params)
    for a, b in zip(g_rt, g_log, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)


def test_power_mean_special_cases() -> None:
    L = torch.tensor([1.0, 2.0, 4.0], dtype=F64)
    assert mt.power_mean(L, 1.0).item() == pytest.approx(7 / 3, rel=1e-15)
    assert mt.power_mean(L, 0.0).item() == pytest.approx(2.0, rel=1e-15)
    assert mt.power_mean(L, -1.0).item() == pytest.approx(3 / (1 + 0.5 + 0.25), rel=1e-15)
    assert mt.power_mean(L, 2.0).item() == pytest.approx(math.sqrt(7), rel=1e-15)
    assert mt.power_mean(L, math.inf).item() == 4.0
    assert mt.power_mean(L, -math.inf).item() == 1.0
    assert mt.power_mean(L, 1e-4).item() == pytest.approx(2.0000320, abs=5e-8)
    assert mt.power_mean(L, 500.0).item() == pytest.approx(4 * 3 ** (-1 / 500), rel=1e-13)
    assert mt.power_mean(L, -500.0).item() == pytest.approx(3 ** (1 / 500), rel=1e-13)
    batch = mt.power_mean(torch.stack([L, 2 * L]), 0.0)
    torch.testing.assert_close(batch, torch.tensor([2.0, 4.0], dtype=F64))


@settings(max_examples=50, deadline=None)
@given(loss_lists, st.floats(min_value=-6, max_value=6))
def test_power_mean_matches_scipy_and_lies_between_min_and_max(values: list[float],
                                                              gamma: float) -> None:
    L = np.array(values)
    ours = mt.power_mean(L, gamma).item()
    assert L.min() * (1 - 1e-12) <= ours <= L.max() * (1 + 1e-12)
    if abs(gamma) > 1e-3:   # scipy's direct formula loses digits as gamma -> 0
        assert ours == pytest.approx(stats.pmean(L, gamma), rel=1e-11)


@settings(max_examples=50, deadline=None)
@given(loss_lists, st.floats(min_value=-5, max_value=5), st.floats(min_value=0.01, max_value=3))
def test_power_mean_is_increasing_and_homogeneous(values: list[float], gamma: float,
                                                  step: float) -> None:
    L = torch.tensor(values, dtype=F64)
    low, high = mt.power_mean(L, gamma).item(), mt.power_mean(L, gamma + step).item()
    assert high >= low * (1 - 1e-12)
    assert mt.power_mean(7.5 * L, gamma).item() == pytest.approx(7.5 * low, rel=1e-12)


def test_power_mean_is_continuous_at_zero() -> None:
    L = torch.tensor([0.3, 2.0, 9.0], dtype=F64)
    g0 = mt.power_mean(L, 0.0).item()
    for g in (1e-15, -1e-12, 1e-9, 1e-6):
        slope = 0.5 * torch.log(L).var(unbiased=False).item()       # d log M / d gamma at 0
        assert mt.power_mean(L, g).item() == pytest.approx(g0 * math.exp(slope * g), rel=1e-14)


@settings(max_examples=40, deadline=None)
@given(loss_lists, st.floats(min_value=-4, max_value=4))
def test_power_mean_weights_are_its_gradient(values: list[float], gamma: float) -> None:
    L = torch.tensor(values, dtype=F64, requires_grad=True)
    (auto,) = torch.autograd.grad(mt.power_mean(L, gamma), L)
    w = mt.power_mean_weights(L, gamma)
    torch.testing.assert_close(w, auto, rtol=1e-10, atol=1e-14)
    assert (w * L).sum().item() == pytest.approx(mt.power_mean(L, gamma).item(), rel=1e-12)


def test_power_mean_weights_at_zero_are_realtime_weights() -> None:
    L = torch.tensor([0.5, 2.0, 3.0], dtype=F64)
    w0 = mt.power_mean_weights(L, 0.0)
    rt = mt.scheme_weights("realtime", L)
    torch.testing.assert_close(w0 / w0.sum(), rt / rt.sum(), rtol=1e-14, atol=0)
    torch.testing.assert_close(mt.power_mean_weights(L, 1.0), torch.full((3,), 1 / 3, dtype=F64))


# --- gradient norms -------------------------------------------------------------------------------

def test_task_gradients_rows_and_replicas() -> None:
    trunk, h1, h2, x, y1, y2 = _model(replicas=3)
    L = _losses(trunk, h1, h2, x, y1, y2)
    G = mt.task_gradients(L, [trunk, h1])
    assert G.shape == (3, 2, 12 + 4)
    assert torch.all(G[:, 1, 12:] == 0)          # task 2 does not reach head 1
    for r in range(3):
        (g,) = torch.autograd.grad(L[r, 0], [trunk], retain_graph=True)
        torch.testing.assert_close(G[r, 0, :12], g[r].reshape(-1), rtol=1e-14, atol=0)
        assert torch.all(g[[k for k in range(3) if k != r]] == 0)
    L.sum().backward()                            # the graph is still there


def test_gradnorm_gradient_is_sum_of_unit_vectors() -> None:
    trunk, h1, h2, x, y1, y2 = _model()
    L = _losses(trunk, h1, h2, x, y1, y2)
    G = mt.task_gradients(L, [trunk])[0]
    (g,) = torch.autograd.grad(mt.gradnorm_weighted_loss(L, [trunk]), [trunk])
    expected = (G / torch.linalg.vector_norm(G, dim=1, keepdim=True)).sum(0)
    torch.testing.assert_close(g.reshape(-1), expected, rtol=1e-13, atol=1e-15)
    assert torch.linalg.vector_norm(expected).item() <= 2 + 1e-12


@pytest.mark.parametrize("scheme,kw", [("initial", {}), ("prior", {}), ("realtime", {}),
                                       ("gradnorm", {}), ("power", {"gamma": 0.0})])
def test_scale_invariant_schemes(scheme: str, kw: dict) -> None:
    torch.testing.assert_close(_direction(scheme, 1000.0, **kw), _direction(scheme, **kw),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("scheme,kw", [("sum", {}), ("power", {"gamma": 1.0}),
                                       ("power", {"gamma": 2.0}),
                                       ("uncertainty", {"log_var": torch.zeros(1, 2, dtype=F64)})])
def test_schemes_that_are_not_scale_invariant(scheme: str, kw: dict) -> None:
    cos = (_direction(scheme, 1000.0, **kw) @ _direction(scheme, **kw)).item()
    assert cos < 1 - 1e-4


def test_only_gradnorm_of_the_scale_invariant_schemes_is_shift_invariant() -> None:
    torch.testing.assert_close(_direction("gradnorm", 1.0, 5.0), _direction("gradnorm"),
                               rtol=0, atol=1e-12)
    torch.testing.assert_close(_direction("sum", 1.0, 5.0), _direction("sum"), rtol=0, atol=1e-12)
    for scheme, kw in (("initial", {}), ("prior", {}), ("realtime", {}), ("power", {"gamma": 0.0})):
        cos = (_direction(scheme, 1.0, 5.0, **kw) @ _direction(scheme, **kw)).item()
        assert cos < 1 - 1e-4, scheme


# --- uncertainty weighting ------------------------------------------------------------------------

def test_uncertainty_optimum_is_the_profile() -> None:
    L = torch.tensor([0.4, 3.0], dtype=F64)
    s = torch.log(L).requires_grad_()
    value = mt.uncertainty_weighted_loss(L, s)
    assert value.item() == pytest.approx(mt.uncertainty_profile_loss(L).item(), rel=1e-15)
    assert value.item() == pytest.approx(1 + 0.5 * math.log(1.2), rel=1e-15)
    (gs,) = torch.autograd.grad(value, s)
    assert torch.all(gs.abs() < 1e-15)
    for shift in (-0.3, 0.2):
        assert mt.uncertainty_weighted_loss(L, s.detach() + shift).item() > value.item()


@settings(max_examples=30, deadline=None)
@given(loss_lists)
def test_uncertainty_profile_gradient_is_half_realtime(values: list[float]) -> None:
    L = torch.tensor(values, dtype=F64, requires_grad=True)
    (gp,) = torch.autograd.grad(mt.uncertainty_profile_loss(L), L)
    torch.testing.assert_close(gp, 0.5 * mt.scheme_weights("realtime", L), rtol=1e-14, atol=0)


# --- scheme weights and the dispatcher -----------------------------------------------------------

def test_scheme_weights_closed_forms() -> None:
    L = torch.tensor([2.0, 4.0], dtype=F64)
    torch.testing.assert_close(mt.scheme_weights("sum", L), torch.ones(2, dtype=F64))
    torch.testing.assert_close(mt.scheme_weights("initial", L, reference=[4.0, 8.0]),
                               torch.tensor([0.25, 0.125], dtype=F64))
    torch.testing.assert_close(mt.scheme_weights("prior", L, reference=[2.0, 1.0]),
                               torch.tensor([0.5, 1.0], dtype=F64))
    torch.testing.assert_close(mt.scheme_weights("realtime", L), torch.tensor([0.5, 0.25],
                                                                              dtype=F64))
    torch.testing.assert_close(mt.scheme_weights("gradnorm", L, grad_norms=[0.1, 10.0]),
                               torch.tensor([10.0, 0.1], dtype=F64))
    torch.testing.assert_close(mt.scheme_weights("power", L, gamma=1.0),
                               torch.tensor([0.5, 0.5], dtype=F64))


@pytest.mark.parametrize("scheme", ["sum", "initial", "prior", "realtime", "gradnorm", "power"])
def test_combine_losses_gradient_matches_scheme_weights(scheme: str) -> None:
    trunk, h1, h2, x, y1, y2 = _model(replicas=2)
    params = [trunk, h1, h2]
    L = _losses(*params, x, y1, y2)
    ref = torch.tensor([1.3, 0.7], dtype=F64)
    obj = mt.combine_losses(L, scheme, reference=ref, params=[trunk], gamma=0.5)
    grads = torch.autograd.grad(obj, params, retain_graph=True)
    auto = torch.cat([g.reshape(2, -1) for g in grads], dim=1)
    G = mt.task_gradients(L, params)                                   # (2, 2, P)
    norms = torch.linalg.vector_norm(mt.task_gradients(L, [trunk]), dim=-1)
    w = mt.scheme_weights(scheme, L, reference=ref, grad_norms=norms, gamma=0.5)
    torch.testing.assert_close(auto, (w[..., None] * G).sum(-2), rtol=1e-12, atol=1e-14)


def test_combine_losses_uncertainty() -> None:
    L = torch.tensor([1.0, 2.0], dtype=F64)
    s = torch.tensor([0.0, math.log(2.0)], dtype=F64)
    assert mt.combine_losses(L, "uncertainty", log_var=s).item() == pytest.approx(
        1.0 + 0.5 * math.log(2.0))


# --- error paths ---------------------------------------------------------------------------------

def test_errors_of_the_references() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        mt.initial_loss_cross_entropy(1)
    with pytest.raises(TypeError, match="num_classes"):
        mt.initial_loss_cross_entropy(2.0)
    with pytest.raises(ValueError, match="y must"):
        mt.initial_loss_l2(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="y must"):
        mt.prior_loss_l2(np.zeros(0))
    with pytest.raises(ValueError, match="y must be finite"):
        mt.prior_loss_l2([1.0, np.nan])
    with pytest.raises(TypeError, match="y must"):
        mt.initial_loss_l2("abc")
    with pytest.raises(ValueError, match="p must sum"):
        mt.prior_loss_cross_entropy([0.5, 0.6])
    with pytest.raises(ValueError, match="p must be non-negative"):
        mt.prior_loss_cross_entropy([1.5, -0.5])
    with pytest.raises(ValueError, match="p must be 1-dimensional"):
        mt.prior_loss_cross_entropy(np.full((2, 2), 0.5))


def test_errors_of_the_losses() -> None:
    with pytest.raises(ValueError, match="losses must have shape"):
        mt.realtime_weighted_loss(torch.tensor(1.0))
    with pytest.raises(ValueError, match="losses must have shape"):
        mt.power_mean(np.zeros(0), 1.0)
    with pytest.raises(ValueError, match="losses must be > 0"):
        mt.realtime_weighted_loss([1.0, 0.0])
    with pytest.raises(ValueError, match="losses must be > 0"):
        mt.power_mean([1.0, -1.0], 2.0)
    with pytest.raises(ValueError, match="losses must be finite"):
        mt.normalized_loss([1.0, np.inf], [1.0, 1.0])
    with pytest.raises(ValueError, match="reference must be > 0"):
        mt.normalized_loss([1.0, 2.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="reference must broadcast"):
        mt.normalized_loss([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="reference must have 2 tasks"):
        mt.normalized_loss(np.ones((3, 2)), np.ones((3, 1)))
    with pytest.raises(ValueError, match="log_var must have shape"):
        mt.uncertainty_weighted_loss([1.0, 2.0], [0.0])
    with pytest.raises(ValueError, match="log_var must be finite"):
        mt.uncertainty_weighted_loss([1.0, 2.0], [0.0, np.nan])
    with pytest.raises(ValueError, match="losses must be > 0"):
        mt.uncertainty_profile_loss([1.0, 0.0])


def test_errors_of_gamma() -> None:
    with pytest.raises(ValueError, match="gamma"):
        mt.power_mean([1.0, 2.0], math.nan)
    with pytest.raises(TypeError, match="gamma"):
        mt.power_mean([1.0, 2.0], "1")
    with pytest.raises(TypeError, match="gamma"):
        mt.power_mean([1.0, 2.0], True)
    with pytest.raises(ValueError, match="gamma must be finite"):
        mt.power_mean_weights([1.0, 2.0], math.inf)


def test_errors_of_the_gradient_functions() -> None:
    trunk, h1, h2, x, y1, y2 = _model()
    L = _losses(trunk, h1, h2, x, y1, y2)
    with pytest.raises(TypeError, match="losses must be a torch tensor"):
        mt.task_gradients([1.0, 2.0], [trunk])
    with pytest.raises(ValueError, match="params must hold"):
        mt.task_gradients(L, [])
    with pytest.raises(TypeError, match="params must be torch tensors"):
        mt.task_gradients(L, [torch.zeros(3)])
    with pytest.raises(TypeError, match="params must be a sequence"):
        mt.task_gradients(L, 3)
    with pytest.raises(ValueError, match="params must have the replica shape"):
        mt.task_gradients(L, [torch.zeros(2, 3, requires_grad=True)])
    frozen = torch.zeros(1, 2, requires_grad=True)
    with pytest.raises(ValueError, match="zero gradient"):
        mt.gradnorm_weighted_loss(L + 0 * frozen.sum(), [frozen])


def test_errors_of_the_dispatchers() -> None:
    L = torch.tensor([1.0, 2.0], dtype=F64)
    with pytest.raises(ValueError, match="scheme must be one of"):
        mt.scheme_weights("mean", L)
    with pytest.raises(ValueError, match="scheme must be one of"):
        mt.combine_losses(L, "uncertainty_", log_var=L)
    for scheme, missing in (("initial", "reference"), ("prior", "reference"),
                            ("gradnorm", "grad_norms"), ("power", "gamma")):
        with pytest.raises(ValueError, match=missing):
            mt.scheme_weights(scheme, L)
    with pytest.raises(ValueError, match="grad_norms must be > 0"):
        mt.scheme_weights("gradnorm", L, grad_norms=[1.0, 0.0])
    with pytest.raises(ValueError, match="losses must be > 0"):
        mt.scheme_weights("realtime", [1.0, 0.0])
    for scheme, missing in (("initial", "reference"), ("gradnorm", "params"),
                            ("power", "gamma"), ("uncertainty", "log_var")):
        with pytest.raises(ValueError, match=missing):
            mt.combine_losses(L, scheme)
