"""Tests of kexue_notes.representations.temperature against explicit sums, limits, finite
differences and autograd,
and every error path."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.stats import entropy

from kexue_notes import contrastive as con
from kexue_notes.representations import temperature as tt


def sims(n: int, seed: int = 0) -> torch.Tensor:
    """A square matrix of cosines between random vectors, positives on the diagonal."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, 5, generator=g, dtype=torch.float64)
    b = a + 0.7 * torch.randn(n, 5, generator=g, dtype=torch.float64)
    return con.cosine_logits(a, b, 1.0)


def loss_rows(s: torch.Tensor, tau: float) -> torch.Tensor:
    return -torch.diagonal(s) / tau + torch.logsumexp(s / tau, dim=1)


# --- weight_entropy and its slope ---------------------------------------------------------------

def test_entropy_equals_scipy_entropy_of_the_weights() -> None:
    s = sims(7)
    for tau in (0.02, 0.3, 4.0):
        w = con.negative_weights(s, tau).numpy()
        want = [entropy(np.delete(row, i)) for i, row in enumerate(w)]
        assert_allclose(tt.weight_entropy(s, tau).numpy(), want, rtol=1e-12, atol=1e-13)


def test_entropy_limits() -> None:
    s = sims(6)
    assert_allclose(tt.weight_entropy(s, 1e6).numpy(), math.log(5), rtol=1e-9)
    assert_allclose(tt.weight_entropy(s, 1e-4).numpy(), 0.0, atol=1e-12)
    tied = torch.tensor([[1.0, 0.5, 0.5, 0.1], [0.3, 1.0, 0.3, 0.3],
                         [0.2, 0.2, 1.0, -0.5], [0.0, 0.0, 0.0, 1.0]], dtype=torch.float64)
    assert_allclose(tt.weight_entropy(tied, 1e-4).numpy(),
                    [math.log(2), math.log(3), math.log(2), math.log(3)], rtol=1e-12)


def test_entropy_keeps_autograd_and_accepts_arrays() -> None:
    s = sims(4).clone().requires_grad_(True)
    tt.weight_entropy(s, 0.5).sum().backward()
    assert s.grad is not None and torch.isfinite(s.grad).all()
    assert_allclose(tt.weight_entropy(sims(4).numpy(), 0.5).numpy(),
                    tt.weight_entropy(sims(4), 0.5).numpy(), rtol=0, atol=0)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 8), st.integers(0, 10_000), st.floats(0.05, 3.0))
def test_slope_equals_central_difference(n: int, seed: int, tau: float) -> None:
    s = sims(n, seed)
    h = 1e-4 * tau
    fd = (tt.weight_entropy(s, tau + h) - tt.weight_entropy(s, tau - h)) / (2 * h)
    slope = tt.weight_entropy_slope(s, tau)
    # central difference: error ~ h^2 H''' ~ 1e-8 relative for these smooth curves
    assert_allclose(fd.numpy(), slope.numpy(), rtol=1e-5, atol=1e-7)
    assert bool((slope >= 0).all())


def test_slope_is_zero_when_negatives_tie() -> None:
    s = torch.full((3, 3), 0.2, dtype=torch.float64).fill_diagonal_(0.9)
    assert_allclose(tt.weight_entropy_slope(s, 0.3).numpy(), 0.0, atol=1e-15)


def test_flipped_slope_sign_would_be_caught() -> None:
    """A sign flip in the slope formula makes it negative, which the identity above forbids."""
    s = sims(5)
    assert bool((tt.weight_entropy_slope(s, 0.2) > 0).all())


# --- the two limits ---------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(st.integers(2, 8), st.integers(0, 10_000))
def test_high_temperature_loss_is_first_order(n: int, seed: int) -> None:
    s = sims(n, seed)
    errs = [float((loss_rows(s, tau) - tt.high_temperature_loss(s, tau)).abs().max())
            for tau in (100.0, 200.0)]
    # the remainder is Var(s)/(2 tau^2) + O(tau^-3): halving 1/tau quarters it
    assert errs[0] < 2.0 / 100.0**2
    assert errs[1] == pytest.approx(errs[0] / 4, rel=0.05)


def test_high_temperature_loss_with_info_nce() -> None:
    g = torch.Generator().manual_seed(3)
    a = torch.randn(6, 4, generator=g, dtype=torch.float64)
    b = torch.randn(6, 4, generator=g, dtype=torch.float64)
    s = con.cosine_logits(a, b, 1.0)
    tau = 1e4
    assert_allclose(float(con.info_nce_loss(a, b, tau)),
                    float(tt.high_temperature_loss(s, tau).mean()), rtol=0, atol=1e-8)


# --- same_label_share and tolerance --------------------------------------------------------------

def test_same_label_share_by_hand_and_uniform_limit() -> None:
    w = torch.tensor([[0.0, 0.6, 0.4], [0.5, 0.0, 0.5], [0.1, 0.9, 0.0]], dtype=torch.float64)
    assert_allclose(tt.same_label_share(w, [0, 0, 1]).numpy(), [0.6, 0.5, 0.0], rtol=1e-14)
    s = sims(9)
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    counts = np.bincount(labels)[labels]
    share = tt.same_label_share(con.negative_weights(s, 1e6), labels)
    assert_allclose(share.numpy(), (counts - 1) / 8, rtol=1e-5)


def test_tolerance_by_explicit_pairs() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(7, 3, generator=g, dtype=torch.float64)
    labels = [0, 1, 0, 1, 1, 2, 0]
    u = x / x.norm(dim=1, keepdim=True)
    cos = [float(u[i] @ u[j]) for i in range(7) for j in range(7)
           if i != j and labels[i] == labels[j]]
    assert_allclose(float(tt.tolerance(x, labels)), np.mean(cos), rtol=1e-13)
    assert_allclose(float(tt.tolerance(3.0 * x, torch.tensor(labels))), np.mean(cos), rtol=1e-13)


def test_tolerance_is_one_for_collapsed_classes() -> None:
    x = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 5.0]], dtype=torch.float64)
    assert_allclose(float(tt.tolerance(x, [3, 3, 7, 7])), 1.0, rtol=1e-15)


# --- error paths -------------------------------------------------------------------------------

@pytest.mark.parametrize("func", [tt.weight_entropy, tt.weight_entropy_slope,
                                  tt.high_temperature_loss])
def test_functions_of_sim_and_tau_reject_bad_input(func) -> None:
    s = sims(3)
    with pytest.raises(ValueError, match="sim must be square"):
        func(torch.zeros(2, 3, dtype=torch.float64), 0.5)
    with pytest.raises(ValueError, match="sim must be square"):
        func(torch.zeros(1, 1, dtype=torch.float64), 0.5)
    with pytest.raises(ValueError, match="sim must be 2-dimensional"):
        func(torch.zeros(3, dtype=torch.float64), 0.5)
    with pytest.raises(ValueError, match="sim must be finite"):
        func(torch.full((2, 2), float("nan"), dtype=torch.float64), 0.5)
    with pytest.raises(TypeError, match="sim must be"):
        func("abc", 0.5)
    with pytest.raises(ValueError, match="tau must be finite and > 0"):
        func(s, 0.0)
    with pytest.raises(ValueError, match="tau must be finite and > 0"):
        func(s, -1.0)
    with pytest.raises(TypeError, match="tau must be a real number"):
        func(s, "0.5")


def test_same_label_share_rejects_bad_input() -> None:
    w = torch.full((3, 3), 0.5, dtype=torch.float64).fill_diagonal_(0.0)
    with pytest.raises(ValueError, match="weights must be square"):
        tt.same_label_share(torch.zeros(2, 3, dtype=torch.float64), [0, 1])
    with pytest.raises(ValueError, match="weights must be non-negative"):
        tt.same_label_share(w - 0.6, [0, 1, 1])
    with pytest.raises(ValueError, match="weights must have rows that sum to 1"):
        tt.same_label_share(2 * w, [0, 1, 1])
    with pytest.raises(ValueError, match="weights must be 2-dimensional"):
        tt.same_label_share(torch.ones(3, dtype=torch.float64), [0, 1, 1])
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        tt.same_label_share(w, [0, 1])
    with pytest.raises(TypeError, match="labels must be 3 integers"):
        tt.same_label_share(w, [0.0, 1.0, 1.0])
    with pytest.raises(TypeError, match="labels must be 3 integers"):
        tt.same_label_share(w, torch.tensor([True, False, True]))


def test_tolerance_rejects_bad_input() -> None:
    x = torch.eye(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="labels must repeat"):
        tt.tolerance(x, [0, 1, 2])
    with pytest.raises(ValueError, match="x has a zero row"):
        tt.tolerance(torch.zeros(3, 2, dtype=torch.float64), [0, 0, 1])
    with pytest.raises(ValueError, match="x must be 2-dimensional"):
        tt.tolerance(torch.ones(3, dtype=torch.float64), [0, 0, 1])
    with pytest.raises(ValueError, match="x must be finite"):
        tt.tolerance(torch.full((3, 2), float("nan"), dtype=torch.float64), [0, 0, 1])
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        tt.tolerance(x, [[0, 0, 1]])
    with pytest.raises(TypeError, match="labels must be 3 integers"):
        tt.tolerance(x, ["a", "a", "b"])
