"""Tests of kexue_notes.contrastive against explicit sums, autograd and closed forms."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.integrate import quad

from kexue_notes import contrastive as con


def batch(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def loss_by_loops(a: np.ndarray, c: np.ndarray, tau: float, targets: list[int],
                  exclude_self: bool) -> float:
    total = 0.0
    for i, ai in enumerate(a):
        cos = [ai @ cj / np.linalg.norm(ai) / np.linalg.norm(cj) for cj in c]
        den = sum(math.exp(s / tau) for j, s in enumerate(cos) if not (exclude_self and j == i))
        total += -cos[targets[i]] / tau + math.log(den)
    return total / len(a)


# --- the paired batch -----------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(st.integers(1, 20))
def test_partner_targets_pair_neighbours(n_pairs: int) -> None:
    t = con.partner_targets(n_pairs)
    i = torch.arange(2 * n_pairs)
    assert t.dtype == torch.long and t.shape == (2 * n_pairs,)
    assert bool((t[t] == i).all()) and not bool((t == i).any())    # involution, no fixed point
    assert bool((t // 2 == i // 2).all())                           # partner in the same pair

# --- the SimBERT batch ----------------------------------------------------------------------------

def test_interleave_pairs_layout_and_grad() -> None:
    a = torch.arange(6.0, dtype=torch.float64).reshape(3, 2).requires_grad_()
    b = -torch.arange(6.0, dtype=torch.float64).reshape(3, 2) - 10
    h = con.interleave_pairs(a, b)
    t = con.partner_targets(3)
    assert_allclose(h[0::2].detach(), a.detach())
    assert_allclose(h[1::2].detach(), b)
    assert_allclose(h[t][0::2].detach(), b)       # the partner of a_k is b_k
    h.sum().backward()
    assert_allclose(a.grad, np.ones((3, 2)))
    assert con.interleave_pairs(np.ones((2, 3)), np.ones((2, 3))).dtype == torch.float64

def test_interleave_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"b must have shape \(2, 3\)"):
        con.interleave_pairs(np.ones((2, 3)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="a must be 2-dimensional"):
        con.interleave_pairs(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="b must be finite"):
        con.interleave_pairs(np.ones((1, 2)), [[1.0, np.nan]])
    with pytest.raises(TypeError, match="a must be a tensor or an array"):
        con.interleave_pairs("ab", np.ones((1, 2)))

@pytest.mark.parametrize(("bad", "err"), [(0, ValueError), (-3, ValueError), (2.0, TypeError),
                                          (True, TypeError)])
def test_partner_targets_rejects_bad_count(bad: object, err: type) -> None:
    with pytest.raises(err, match="n_pairs must"):
        con.partner_targets(bad)


# --- the loss -------------------------------------------------------------------------------------

def test_cosine_logits_are_scaled_cosines() -> None:
    a, b = batch(3, 4), batch(5, 4, seed=1)
    want = [[float(x @ y / x.norm() / y.norm()) / 0.1 for y in b] for x in a]
    assert_allclose(con.cosine_logits(a, b, 0.1).numpy(), want, rtol=1e-13)


@pytest.mark.parametrize("exclude_self", [False, True])
def test_loss_equals_explicit_sum(exclude_self: bool) -> None:
    a, c = batch(4, 3), batch(6, 3, seed=2)
    targets = [1, 0, 3, 5] if exclude_self else [0, 1, 2, 5]
    want = loss_by_loops(a.numpy(), c.numpy(), 0.2, targets, exclude_self)
    got = con.info_nce_loss(a, c, 0.2, targets=targets, exclude_self=exclude_self)
    assert_allclose(float(got), want, rtol=1e-13)


def test_default_targets_are_the_diagonal() -> None:
    a, c = batch(4, 3), batch(4, 3, seed=3)
    assert_allclose(float(con.info_nce_loss(a, c, 0.5)),
                    loss_by_loops(a.numpy(), c.numpy(), 0.5, [0, 1, 2, 3], False), rtol=1e-13)


def test_identical_views_at_low_temperature_have_near_zero_loss() -> None:
    a = torch.eye(4, dtype=torch.float64)
    assert float(con.info_nce_loss(a, a, 0.01)) < 1e-40


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 6), st.integers(0, 10_000), st.floats(0.05, 5.0),
       st.booleans())
def test_logit_gradient_equals_autograd(n: int, seed: int, tau: float,
                                        exclude_self: bool) -> None:
    z = (batch(n, n, seed) * 3).requires_grad_()
    targets = (torch.arange(n) + 1) % n
    p = torch.softmax(con._masked(z, exclude_self), dim=1)
    loss = -torch.log(p[torch.arange(n), targets]).mean()
    loss.backward()
    g = con.info_nce_logit_gradient(z.detach(), targets, exclude_self)
    assert_allclose(g.numpy(), z.grad.numpy(), atol=1e-14)
    assert_allclose(g.sum(dim=1).numpy(), 0.0, atol=1e-15)


def test_negative_weights_form_a_distribution_over_negatives() -> None:
    s = torch.tensor([[0.9, 0.5, 0.1], [0.2, 0.8, 0.6], [0.3, 0.3, 0.7]], dtype=torch.float64)
    r = con.negative_weights(s, 0.5)
    assert_allclose(r.diagonal().numpy(), 0.0)
    assert_allclose(r.sum(dim=1).numpy(), 1.0, rtol=1e-15)
    e = math.exp
    assert_allclose(float(r[0, 1]), e(0.5 / 0.5) / (e(0.5 / 0.5) + e(0.1 / 0.5)), rtol=1e-14)


def test_low_temperature_concentrates_on_the_hardest_negative() -> None:
    s = batch(5, 5, seed=4)
    r = con.negative_weights(s, 1e-3)
    masked = s.clone().fill_diagonal_(-math.inf)
    assert torch.equal(r.argmax(dim=1), masked.argmax(dim=1))
    assert float(r.max(dim=1).values.min()) > 0.99


def test_hinge_limit_by_hand() -> None:
    s = torch.tensor([[0.5, 0.9, 0.1], [0.2, 0.8, 0.7], [0.4, 0.6, 0.3]], dtype=torch.float64)
    assert_allclose(con.hinge_limit(s).numpy(), [0.4, 0.0, 0.3], rtol=1e-14)


def test_hinge_limit_with_partners_and_self_excluded() -> None:
    # unit vectors at 0, 60, 30 and 150 degrees; pairs (0, 1) and (2, 3)
    ang = np.radians([0.0, 60.0, 30.0, 150.0])
    h = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    c = {d: math.cos(math.radians(d)) for d in (30, 60, 90, 120)}
    want = [max(0.0, c[30] - c[60]),   # row 0: partner at 60, hardest negative (row 2) at 30
            max(0.0, c[30] - c[60]),   # row 1: partner at 60, hardest negative (row 2) at 30
            max(0.0, c[30] - c[120]),  # row 2: partner at 120, rows 0 and 1 both at 30
            max(0.0, c[90] - c[120])]  # row 3: partner at 120, row 1 at 90, row 0 at 150
    got = con.hinge_limit(con.cosine_logits(h, h, 1.0), [1, 0, 3, 2], exclude_self=True)
    assert_allclose(got.numpy(), want, rtol=1e-14)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 6), st.integers(0, 10_000), st.booleans())
def test_tau_times_loss_tends_to_the_hinge(n: int, seed: int, exclude_self: bool) -> None:
    a, c = batch(n, 3, seed), batch(n + 1, 3, seed + 1)
    targets = (torch.arange(n) + 1) % n if exclude_self else torch.arange(n)
    tau = 1e-4
    scaled = tau * con.info_nce_loss(a, c, tau, targets, exclude_self)
    hinge = con.hinge_limit(con.cosine_logits(a, c, 1.0), targets, exclude_self).mean()
    # tau log(sum of at most n+1 terms, the largest e^{hinge/tau}): in [hinge, hinge + tau log m]
    assert float(hinge) - 1e-12 <= float(scaled) <= float(hinge) + tau * math.log(n + 1) + 1e-12


def test_alignment_and_uniformity_by_hand() -> None:
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    assert_allclose(float(con.alignment(x, y)), (2.0 + 0.0 + 4.0) / 3, rtol=1e-15)
    assert_allclose(float(con.alignment(x, y, alpha=1)), (math.sqrt(2) + 0 + 2) / 3, rtol=1e-15)
    # squared distances between unit rows: 2, 4, 2
    want = math.log((2 * math.exp(-4.0) + math.exp(-8.0)) / 3)
    assert_allclose(float(con.uniformity(x)), want, rtol=1e-14)


def test_uniformity_keeps_the_graph() -> None:
    x = batch(5, 3).requires_grad_()
    con.uniformity(x).backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all())


@pytest.mark.parametrize("t", [0.5, 2.0, 7.0])
def test_sphere_uniformity_on_s2_is_sinh(t: float) -> None:
    # on S^2 the cosine of two uniform directions is uniform on [-1, 1]
    want = -2 * t + math.log(math.sinh(2 * t) / (2 * t))
    assert_allclose(con.sphere_uniformity(3, t), want, rtol=1e-13)


@pytest.mark.parametrize("d", [2, 5, 16, 384])
def test_sphere_uniformity_by_quadrature(d: int) -> None:
    w = lambda c: (1 - c * c) ** ((d - 3) / 2)  # noqa: E731
    num = quad(lambda c: math.exp(4 * c - 4) * w(c), -1, 1, limit=200)[0]
    den = quad(w, -1, 1, limit=200)[0]
    assert_allclose(con.sphere_uniformity(d), math.log(num / den), rtol=1e-8)


def test_sphere_uniformity_matches_monte_carlo() -> None:
    x = batch(4000, 16, seed=5)
    assert abs(float(con.uniformity(x)) - con.sphere_uniformity(16)) < 0.01


@pytest.mark.parametrize(("call", "match"), [
    (lambda: con.cosine_logits(batch(2, 3), batch(2, 4), 1.0), "b must have shape"),
    (lambda: con.cosine_logits(torch.zeros(2, 3), batch(2, 3), 1.0), "a has a zero row"),
    (lambda: con.cosine_logits(batch(2, 3), batch(2, 3), 0.0), "tau must be"),
    (lambda: con.cosine_logits(batch(2, 3).fill_(math.nan), batch(2, 3), 1.0), "a must be finite"),
    (lambda: con.info_nce_loss(batch(3, 2), batch(2, 2), 1.0), "at least as many candidates"),
    (lambda: con.info_nce_loss(batch(2, 2), batch(2, 2), 1.0, targets=[0, 2]),
     r"targets must lie in \[0, 2\)"),
    (lambda: con.info_nce_loss(batch(2, 2), batch(2, 2), 1.0, exclude_self=True),
     "must not point at the anchor"),
    (lambda: con.info_nce_logit_gradient(batch(3, 2), targets=[1, 0, 1], exclude_self=True),
     "exclude_self needs at least as many candidates"),
    (lambda: con.negative_weights(batch(2, 3), 1.0), "sim must be square"),
    (lambda: con.negative_weights(batch(1, 1), 1.0), "sim must be square"),
    (lambda: con.hinge_limit(batch(2, 1), [0, 0]), "sim must leave each anchor a negative"),
    (lambda: con.hinge_limit(batch(3, 3), exclude_self=True), "must not point at the anchor"),
    (lambda: con.hinge_limit(batch(2, 2).fill_(math.inf)), "sim must be finite"),
    (lambda: con.alignment(batch(2, 3), batch(3, 3), 2), "y must have shape"),
    (lambda: con.alignment(batch(2, 3), batch(2, 3), -1), "alpha must be"),
    (lambda: con.uniformity(batch(1, 3)), "number of rows of x must be >= 2"),
    (lambda: con.uniformity(batch(3, 3), t=0), "t must be"),
    (lambda: con.sphere_uniformity(1), "d must be >= 2"),
])
def test_bad_input_raises_value_error(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(("call", "match"), [
    (lambda: con.info_nce_loss(batch(2, 2), batch(2, 2), 1.0, targets=[0.0, 1.0]), "targets must"),
    (lambda: con.info_nce_loss(batch(2, 2), batch(2, 2), 1.0, targets=[0, 1, 1]), "targets must"),
    (lambda: con.cosine_logits("ab", batch(2, 2), 1.0), "a must be"),
    (lambda: con.sphere_uniformity(3.0), "d must be an integer"),
])
def test_bad_types_raise_type_error(call, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        call()
