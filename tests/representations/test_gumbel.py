"""Tests of kexue_notes.representations.gumbel: each formula against a closed form, an identity,
autograd or torch's
own implementation, with seeded statistical tests that also show they can reject, and every error
path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import stats
from torch.distributions import RelaxedOneHotCategorical

from kexue_notes.representations import gumbel as gb

P4 = np.array([0.5, 0.25, 0.15, 0.1])
LOGITS4 = torch.log(torch.as_tensor(P4))
C4 = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
EULER_GAMMA = 0.5772156649015329

logit_lists = st.lists(st.floats(-5, 5, allow_nan=False), min_size=2, max_size=6)
taus = st.floats(0.05, 5.0)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def counts(index: torch.Tensor, K: int) -> np.ndarray:
    return np.bincount(index.numpy(), minlength=K)


# --- gumbel_noise ----------------------------------------------------------------------------

def test_gumbel_noise_matches_scipy_gumbel_r() -> None:
    g = gb.gumbel_noise((40_000,), gen()).numpy()
    assert stats.kstest(g, stats.gumbel_r.cdf).pvalue > 1e-3
    se_mean = math.pi / math.sqrt(6 * len(g))
    assert abs(g.mean() - EULER_GAMMA) < 5 * se_mean
    assert abs(g.var() / (math.pi**2 / 6) - 1) < 0.05
    assert stats.gumbel_r.mean() == pytest.approx(EULER_GAMMA, rel=1e-12)


def test_gumbel_noise_rejects_a_shifted_gumbel() -> None:
    """Power: the same KS test rejects noise shifted by 0.05."""
    g = gb.gumbel_noise((40_000,), gen()).numpy() + 0.05
    assert stats.kstest(g, stats.gumbel_r.cdf).pvalue < 1e-6


def test_gumbel_noise_is_seeded_finite_and_typed() -> None:
    a = gb.gumbel_noise((3, 5), gen(7))
    b = gb.gumbel_noise(torch.Size([3, 5]), gen(7))
    assert torch.equal(a, b) and a.dtype == torch.float64 and a.shape == (3, 5)
    assert gb.gumbel_noise((4,), gen(), dtype=torch.float32).dtype == torch.float32
    assert bool(torch.isfinite(gb.gumbel_noise((200_000,), gen(3))).all())


def test_gumbel_noise_errors() -> None:
    with pytest.raises(TypeError, match="generator"):
        gb.gumbel_noise((3,), np.random.default_rng(0))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dtype"):
        gb.gumbel_noise((3,), gen(), dtype=torch.int64)


# --- gumbel_max ------------------------------------------------------------------------------

def test_gumbel_max_is_exact_by_chi_square() -> None:
    n = 60_000
    idx = gb.gumbel_max(LOGITS4, gb.gumbel_noise((n, 4), gen(1)))
    assert stats.chisquare(counts(idx, 4), n * P4).pvalue > 1e-3


def test_chi_square_has_power_against_wrong_distributions() -> None:
    n = 60_000
    g = gb.gumbel_noise((n, 4), gen(1))
    observed = counts(gb.gumbel_max(LOGITS4, g), 4)
    nearby = np.array([0.48, 0.26, 0.16, 0.10])  # 4 % off on the first category
    assert stats.chisquare(observed, n * nearby).pvalue < 1e-4
    # a classic bug: probabilities used in place of log-probabilities
    wrong = counts(gb.gumbel_max(torch.as_tensor(P4), g), 4)
    assert stats.chisquare(wrong, n * P4).pvalue < 1e-12


@settings(max_examples=30, deadline=None)
@given(logit_lists, st.floats(-50, 50))
def test_gumbel_max_ignores_a_shift_of_the_logits(logits: list[float], shift: float) -> None:
    o = torch.tensor(logits, dtype=torch.float64)
    g = gb.gumbel_noise((64, len(logits)), gen(2))
    assert torch.equal(gb.gumbel_max(o, g), gb.gumbel_max(o + shift, g))


def test_gumbel_max_broadcasts_batches() -> None:
    o = torch.stack([LOGITS4, LOGITS4.flip(0)])  # (2, 4)
    g = gb.gumbel_noise((10, 2, 4), gen())
    idx = gb.gumbel_max(o, g)
    assert idx.shape == (10, 2)
    assert torch.equal(idx, torch.argmax(o + g, dim=-1))


def test_gumbel_max_errors() -> None:
    with pytest.raises(ValueError, match="logits"):
        gb.gumbel_max(torch.zeros(1), torch.zeros(1))
    with pytest.raises(ValueError, match="logits"):
        gb.gumbel_max(torch.tensor(1.0), torch.zeros(1))
    with pytest.raises(ValueError, match="gumbels"):
        gb.gumbel_max(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="gumbels"):
        gb.gumbel_max(torch.zeros(2, 3), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="gumbels"):
        gb.gumbel_max(torch.zeros(3), torch.tensor([0.0, float("nan"), 0.0]))
    with pytest.raises(TypeError, match="logits"):
        gb.gumbel_max("abc", torch.zeros(3))


# --- gumbel_softmax and straight_through -----------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(logit_lists, taus)
def test_gumbel_softmax_is_the_tempered_softmax(logits: list[float], tau: float) -> None:
    o = torch.tensor(logits, dtype=torch.float64)
    g = gb.gumbel_noise((8, len(logits)), gen(4))
    y = gb.gumbel_softmax(o, g, tau)
    x = (o + g) / tau
    expected = torch.exp(x - x.max(-1, keepdim=True).values)
    assert_allclose(y, expected / expected.sum(-1, keepdim=True), rtol=1e-13, atol=1e-300)
    assert_allclose(y.sum(-1), 1.0, rtol=1e-14)
    assert torch.equal(y.argmax(-1), gb.gumbel_max(o, g))
    assert_allclose(gb.gumbel_softmax(o + 3.0, g, tau), y, rtol=1e-12, atol=1e-300)


@settings(max_examples=40, deadline=None)
@given(logit_lists, taus)
def test_distance_to_one_hot_is_within_the_bound(logits: list[float], tau: float) -> None:
    o = torch.tensor(logits, dtype=torch.float64)
    g = gb.gumbel_noise((16, len(logits)), gen(5))
    y = gb.gumbel_softmax(o, g, tau)
    one_hot = torch.nn.functional.one_hot(gb.gumbel_max(o, g), len(logits)).to(y.dtype)
    dist = (y - one_hot).abs().sum(-1)
    bound = gb.one_hot_distance_bound(o + g, tau)
    assert bool((dist <= bound * (1 + 1e-12) + 4 * 2**-52).all())  # rounding of 1 - y_max


def test_gumbel_softmax_tends_to_the_gumbel_max_one_hot_and_to_uniform() -> None:
    """Pointwise, not uniform: each sample converges at the rate set by its own gap."""
    g = gb.gumbel_noise((500, 4), gen(6))
    one_hot = torch.nn.functional.one_hot(gb.gumbel_max(LOGITS4, g), 4).to(torch.float64)
    dists = torch.stack([(gb.gumbel_softmax(LOGITS4, g, t) - one_hot).abs().sum(-1)
                         for t in (1.0, 0.1, 0.01, 1e-3)])
    assert bool((dists[1:] <= dists[:-1]).all()), "every sample moves towards its one-hot vector"
    assert float(dists[-1].median()) < 1e-100
    top2 = torch.topk(LOGITS4 + g, 2, dim=-1).values
    clear = (top2[:, 0] - top2[:, 1]) > 0.05
    assert float(dists[-1][clear].max()) < 6 * math.exp(-50)
    assert_allclose(gb.gumbel_softmax(LOGITS4, g, 1e8), 0.25, rtol=1e-6)


def test_one_hot_distance_bound_closed_form() -> None:
    x = torch.tensor([[3.0, 1.0, 0.0], [0.0, 0.0, 2.0]], dtype=torch.float64)
    assert_allclose(gb.one_hot_distance_bound(x, 0.5),
                    [4 * math.exp(-4.0), 4 * math.exp(-4.0)], rtol=1e-14)
    assert_allclose(gb.one_hot_distance_bound(torch.zeros(3), 1.0), 4.0)  # a tie: no information


def test_straight_through_forward_is_one_hot_and_backward_is_soft() -> None:
    o = LOGITS4.clone().requires_grad_(True)
    g = gb.gumbel_noise((200, 4), gen(8))
    y_hard = gb.gumbel_softmax(o, g, 0.7, hard=True)
    one_hot = torch.nn.functional.one_hot(gb.gumbel_max(o.detach(), g), 4).to(torch.float64)
    assert_allclose(y_hard.detach(), one_hot, rtol=0, atol=2**-52)
    (grad_hard,) = torch.autograd.grad((y_hard * C4).sum(), o)
    o_soft = LOGITS4.clone().requires_grad_(True)
    (grad_soft,) = torch.autograd.grad((gb.gumbel_softmax(o_soft, g, 0.7) * C4).sum(), o_soft)
    assert_allclose(grad_hard, grad_soft, rtol=1e-14, atol=1e-15)
    assert_allclose(grad_hard, gb.relaxed_gradient(LOGITS4, C4, g, 0.7).sum(0),
                    rtol=1e-12, atol=1e-14)


def test_straight_through_agrees_with_torch_hard_gumbel_softmax() -> None:
    """Torch draws its own noise; with the same seed, hard and soft share it."""
    o = LOGITS4.clone().requires_grad_(True)
    torch.manual_seed(11)
    y_torch_hard = torch.nn.functional.gumbel_softmax(o.expand(300, 4), tau=0.5, hard=True)
    torch.manual_seed(11)
    y_torch_soft = torch.nn.functional.gumbel_softmax(o.expand(300, 4), tau=0.5)
    assert_allclose(gb.straight_through(y_torch_soft).detach(), y_torch_hard.detach(),
                    rtol=0, atol=0)
    (g1,) = torch.autograd.grad((gb.straight_through(y_torch_soft) * C4).sum(), o,
                                retain_graph=True)
    (g2,) = torch.autograd.grad((y_torch_hard * C4).sum(), o)
    assert_allclose(g1, g2, rtol=1e-13, atol=1e-15)


def test_gumbel_softmax_errors() -> None:
    g = torch.zeros(3)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="tau"):
            gb.gumbel_softmax(torch.zeros(3), g, bad)
    with pytest.raises(TypeError, match="tau"):
        gb.gumbel_softmax(torch.zeros(3), g, "1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tau"):
        gb.gumbel_softmax(torch.zeros(3), g, torch.ones(2))  # type: ignore[arg-type]
    assert gb.gumbel_softmax(torch.zeros(3), g, torch.tensor(2.0)).shape == (3,)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="gumbels"):
        gb.gumbel_softmax(torch.zeros(3), torch.zeros(2), 1.0)
    with pytest.raises(ValueError, match="y_soft"):
        gb.straight_through(torch.ones(1))
    with pytest.raises(ValueError, match="y_soft"):
        gb.straight_through(torch.tensor([0.5, float("nan")]))


# --- concrete_log_prob -----------------------------------------------------------------------

@pytest.mark.parametrize("tau", [0.3, 0.5, 1.0, 2.0])
def test_concrete_log_prob_equals_torch_relaxed_one_hot(tau: float) -> None:
    y = gb.gumbel_softmax(LOGITS4, gb.gumbel_noise((500, 4), gen(9)), tau)
    y = y[(y > 1e-200).all(-1)]  # torch works with log y; keep points it can represent
    ours = gb.concrete_log_prob(y, LOGITS4, tau)
    theirs = RelaxedOneHotCategorical(torch.tensor(tau, dtype=torch.float64),
                                      logits=LOGITS4).log_prob(y)
    assert_allclose(ours, theirs, rtol=1e-11, atol=1e-11)


def test_concrete_k2_is_a_logistic_change_of_variables() -> None:
    tau, a = 0.7, math.log(3.0)
    t = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    y = torch.stack([t, 1 - t], -1)
    ours = gb.concrete_log_prob(y, torch.tensor([a, 0.0], dtype=torch.float64), tau).exp()
    z = tau * torch.log(t / (1 - t)) - a
    expected = stats.logistic.pdf(z.numpy()) * tau / (t * (1 - t)).numpy()
    assert_allclose(ours, expected, rtol=1e-12)


@pytest.mark.parametrize("tau", [0.3, 1.0, 3.0])
def test_concrete_density_integrates_to_one(tau: float) -> None:
    """Trapezoid rule in logit coordinates y = softmax(z1, z2, 0), whose Jacobian is y1 y2 y3;
    there the integrand is smooth and decays exponentially, so the rule converges fast."""
    o = torch.tensor([0.3, -0.2, 0.8], dtype=torch.float64)
    z = torch.linspace(-40 / tau, 40 / tau, 301, dtype=torch.float64)
    z1, z2 = torch.meshgrid(z, z, indexing="ij")
    y = torch.softmax(torch.stack([z1, z2, torch.zeros_like(z1)], -1), -1).reshape(-1, 3)
    y = y[(y > 0).all(-1)]  # the points dropped carry densities below 1e-300
    integrand = (gb.concrete_log_prob(y, o, tau) + torch.log(y).sum(-1)).exp()
    total = float(integrand.sum()) * float(z[1] - z[0]) ** 2
    assert total == pytest.approx(1.0, abs=1e-10)


def test_concrete_samples_follow_the_k2_cdf() -> None:
    """A KS test of our K = 2 samples against the CDF implied by the density."""
    tau, a = 0.5, math.log(4.0)
    o = torch.tensor([a, 0.0], dtype=torch.float64)
    y1 = gb.gumbel_softmax(o, gb.gumbel_noise((20_000, 2), gen(10)), tau)[:, 0].numpy()

    def cdf(t: np.ndarray) -> np.ndarray:
        return stats.logistic.cdf(tau * np.log(t / (1 - t)) - a)

    assert stats.kstest(y1, cdf).pvalue > 1e-3
    assert stats.kstest(y1, lambda t: stats.logistic.cdf(0.6 * np.log(t / (1 - t)) - a)
                        ).pvalue < 1e-6  # power: the wrong temperature is rejected


@settings(max_examples=30, deadline=None)
@given(logit_lists, taus, st.floats(-20, 20))
def test_concrete_log_prob_ignores_a_logit_shift(logits: list[float], tau: float,
                                                 shift: float) -> None:
    o = torch.tensor(logits, dtype=torch.float64)
    y = torch.softmax(torch.linspace(-1, 1, len(logits), dtype=torch.float64), -1)
    assert_allclose(gb.concrete_log_prob(y, o + shift, tau), gb.concrete_log_prob(y, o, tau),
                    rtol=1e-10, atol=1e-10)


def test_concrete_log_prob_errors() -> None:
    o = torch.zeros(3)
    with pytest.raises(ValueError, match="y must lie in the open simplex"):
        gb.concrete_log_prob(torch.tensor([0.0, 0.5, 0.5]), o, 1.0)
    with pytest.raises(ValueError, match="y must lie in the simplex"):
        gb.concrete_log_prob(torch.tensor([0.2, 0.5, 0.5]), o, 1.0)
    with pytest.raises(ValueError, match="logits"):
        gb.concrete_log_prob(torch.tensor([0.2, 0.3, 0.5]), torch.zeros(4), 1.0)
    with pytest.raises(ValueError, match="tau"):
        gb.concrete_log_prob(torch.tensor([0.2, 0.3, 0.5]), o, 0.0)
    with pytest.raises(ValueError, match="y"):
        gb.concrete_log_prob(torch.tensor([1.0]), torch.zeros(1), 1.0)


def test_one_hot_distance_bound_errors() -> None:
    with pytest.raises(ValueError, match="scores"):
        gb.one_hot_distance_bound(torch.zeros(1), 1.0)
    with pytest.raises(ValueError, match="tau"):
        gb.one_hot_distance_bound(torch.zeros(3), -0.1)


# --- the gradients ---------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(logit_lists, st.lists(st.floats(-3, 3), min_size=6, max_size=6))
def test_linear_objective_gradient_is_autograd(logits: list[float], cs: list[float]) -> None:
    o = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    c = torch.tensor(cs[: len(logits)], dtype=torch.float64)
    (auto,) = torch.autograd.grad((torch.softmax(o, -1) * c).sum(), o)
    assert_allclose(gb.linear_objective_gradient(o.detach(), c), auto, rtol=1e-12, atol=1e-14)


@settings(max_examples=30, deadline=None)
@given(logit_lists, st.lists(st.floats(-3, 3), min_size=6, max_size=6))
def test_score_function_gradient_is_unbiased(logits: list[float], cs: list[float]) -> None:
    """Exact expectation: weight the estimate at each category by its probability."""
    o = torch.tensor(logits, dtype=torch.float64)
    K = len(logits)
    c = torch.tensor(cs[:K], dtype=torch.float64)
    per_category = gb.score_function_gradient(o, c, torch.arange(K))
    mean = (torch.softmax(o, -1).unsqueeze(-1) * per_category).sum(0)
    assert_allclose(mean, gb.linear_objective_gradient(o, c), rtol=1e-12, atol=1e-14)


def test_score_function_gradient_is_the_log_prob_gradient() -> None:
    o = LOGITS4.clone().requires_grad_(True)
    idx = torch.tensor([0, 3, 2])
    logp = torch.log_softmax(o, -1)[idx]
    rows = [torch.autograd.grad(C4[i] * lp, o, retain_graph=True)[0] for i, lp in zip(idx, logp,
                                                                                      strict=True)]
    assert_allclose(gb.score_function_gradient(LOGITS4, C4, idx), torch.stack(rows),
                    rtol=1e-13, atol=1e-15)


@settings(max_examples=30, deadline=None)
@given(logit_lists, taus)
def test_relaxed_gradient_is_autograd(logits: list[float], tau: float) -> None:
    K = len(logits)
    o = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    c = torch.arange(1.0, K + 1, dtype=torch.float64)
    g = gb.gumbel_noise((5, K), gen(12))
    rows = [torch.autograd.grad((gb.gumbel_softmax(o, g[j], tau) * c).sum(), o)[0]
            for j in range(5)]
    assert_allclose(gb.relaxed_gradient(o.detach(), c, g, tau), torch.stack(rows),
                    rtol=1e-10, atol=1e-12)


def test_relaxed_gradient_is_biased_and_sf_is_not() -> None:
    n = 100_000
    g = gb.gumbel_noise((n, 4), gen(13))
    exact = gb.linear_objective_gradient(LOGITS4, C4)
    sf = gb.score_function_gradient(LOGITS4, C4, gb.gumbel_max(LOGITS4, g))
    se = sf.std(0) / math.sqrt(n)
    assert bool(((sf.mean(0) - exact).abs() < 4 * se).all())
    gs = gb.relaxed_gradient(LOGITS4, C4, g, 1.0)
    se_gs = gs.std(0) / math.sqrt(n)
    assert float(((gs.mean(0) - exact).abs() / se_gs).max()) > 20


def test_gradient_errors() -> None:
    with pytest.raises(ValueError, match="c"):
        gb.linear_objective_gradient(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match="logits"):
        gb.score_function_gradient(torch.zeros(2, 3), torch.zeros(3), torch.tensor([0]))
    with pytest.raises(ValueError, match="c"):
        gb.score_function_gradient(torch.zeros(3), torch.zeros(4), torch.tensor([0]))
    with pytest.raises(TypeError, match="index"):
        gb.score_function_gradient(torch.zeros(3), torch.zeros(3), torch.tensor([0.0]))
    with pytest.raises(ValueError, match="index"):
        gb.score_function_gradient(torch.zeros(3), torch.zeros(3), torch.tensor([3]))
    with pytest.raises(ValueError, match="index"):
        gb.score_function_gradient(torch.zeros(3), torch.zeros(3), torch.tensor([[0]]))
    with pytest.raises(ValueError, match="c"):
        gb.relaxed_gradient(torch.zeros(3), torch.zeros(2), torch.zeros(3), 1.0)
    with pytest.raises(ValueError, match="tau"):
        gb.relaxed_gradient(torch.zeros(3), torch.zeros(3), torch.zeros(3), 0.0)
