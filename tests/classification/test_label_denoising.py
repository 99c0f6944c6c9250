"""Tests of kexue_notes.classification.label_denoising: brute force, autograd, closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar
from scipy.special import expit
from torch.testing import assert_close

from kexue_notes.classification import label_denoising as ld

torch.set_num_threads(1)
F64 = torch.float64
EPS = float(np.finfo(np.float64).eps)


def random_problem(seed: int, n: int = 6, k: int = 3, d: int = 4, tau: float | None = None):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, d, generator=g, dtype=F64)
    logits = 2 * torch.randn(n, k, generator=g, dtype=F64)
    targets, weights = ld.similarity_targets(emb, tau)
    return emb, logits, targets, weights


def brute_penalty(probs: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> float:
    n = probs.shape[0]
    total = 0.0
    for i in range(n):
        for j in range(n):
            if i != j:
                total += float(weights[i, j] * (targets[i, j] - probs[i] @ probs[j]) ** 2)
    return total / (n * (n - 1))


# --- symmetric_label_noise ---------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 5), st.integers(1, 60), st.floats(0, 1))
def test_noise_flips_exactly_round_rate_n_to_other_classes(seed, k, n, rate):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    noisy, flipped = ld.symmetric_label_noise(y, rate, k, np.random.default_rng(seed + 1))
    assert flipped.sum() == round(rate * n)
    assert np.all(noisy[flipped] != y[flipped]) and np.all(noisy[~flipped] == y[~flipped])
    assert noisy.dtype == np.int64 and noisy.min() >= 0 and noisy.max() < k


def test_noise_new_class_is_uniform_over_the_others():
    y = np.zeros(30_000, dtype=int)
    noisy, _ = ld.symmetric_label_noise(y, 1.0, 4, np.random.default_rng(0))
    freq = np.bincount(noisy, minlength=4) / len(y)
    assert freq[0] == 0
    # binomial standard error of a frequency near 1/3 is about 0.0027; allow five of them
    assert np.all(np.abs(freq[1:] - 1 / 3) < 5 * math.sqrt(2 / 9 / len(y)))


def test_noise_is_reproducible():
    y = np.arange(20) % 2
    a = ld.symmetric_label_noise(y, 0.3, 2, np.random.default_rng(5))
    b = ld.symmetric_label_noise(y, 0.3, 2, np.random.default_rng(5))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_noise_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="labels"):
        ld.symmetric_label_noise(np.zeros((2, 2), dtype=int), 0.1, 2, rng)
    with pytest.raises(TypeError, match="labels"):
        ld.symmetric_label_noise(np.zeros(3), 0.1, 2, rng)
    with pytest.raises(ValueError, match="labels"):
        ld.symmetric_label_noise(np.array([0, 2]), 0.1, 2, rng)
    with pytest.raises(ValueError, match="rate"):
        ld.symmetric_label_noise(np.array([0, 1]), 1.5, 2, rng)
    with pytest.raises(ValueError, match="n_classes"):
        ld.symmetric_label_noise(np.array([0, 0]), 0.1, 1, rng)
    with pytest.raises(TypeError, match="rng"):
        ld.symmetric_label_noise(np.array([0, 1]), 0.1, 2, 0)


# --- similarity_targets and agreement ------------------------------------------------------------

def test_similarity_targets_track_and_threshold():
    emb, _, _, _ = random_problem(0)
    u = emb / emb.norm(dim=1, keepdim=True)
    cos = u @ u.T
    t, w = ld.similarity_targets(emb)
    off = 1 - torch.eye(6, dtype=F64)
    assert_close(t, cos.clamp_min(0), rtol=0, atol=4 * EPS)
    assert_close(w, off, rtol=0, atol=0)
    t2, w2 = ld.similarity_targets(emb, 0.1)
    assert torch.all(t2 == 1)
    assert torch.equal(w2, (cos > 0.1).to(F64) * off)
    assert torch.equal(w2, w2.T)


def test_similarity_targets_broadcast_over_batches():
    emb = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(1), dtype=F64)
    t, w = ld.similarity_targets(emb, 0.0)
    assert t.shape == w.shape == (3, 5, 5)
    for b in range(3):
        _, wb = ld.similarity_targets(emb[b], 0.0)
        assert torch.equal(wb, w[b])


def test_similarity_targets_errors():
    with pytest.raises(ValueError, match="embeddings"):
        ld.similarity_targets(torch.ones(4, dtype=F64))
    with pytest.raises(ValueError, match="embeddings"):
        ld.similarity_targets(torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="embeddings"):
        ld.similarity_targets(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="threshold"):
        ld.similarity_targets(torch.eye(3), 1.5)
    with pytest.raises(TypeError, match="threshold"):
        ld.similarity_targets(torch.eye(3), "0.5")


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 7), st.integers(2, 4))
def test_agreement_is_the_probability_of_equal_draws(seed, n, k):
    p = torch.rand(n, k, generator=torch.Generator().manual_seed(seed), dtype=F64) + 0.01
    p = p / p.sum(1, keepdim=True)
    a = ld.agreement(p)
    brute = torch.tensor([[sum(p[i, c] * p[j, c] for c in range(k)) for j in range(n)]
                          for i in range(n)], dtype=F64)
    assert_close(a, brute, rtol=0, atol=8 * EPS)
    assert torch.all(a >= 0) and torch.all(a <= 1 + 8 * EPS)


def test_agreement_errors():
    with pytest.raises(ValueError, match="probs"):
        ld.agreement(torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="probs"):
        ld.agreement(torch.tensor([[1.2, -0.2], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="probs"):
        ld.agreement(torch.tensor([[0.6, 0.6], [0.5, 0.5]]))


# --- the penalty and its gradient ---------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 8), st.integers(2, 4),
       st.sampled_from([None, -0.2, 0.0, 0.3]))
def test_penalty_equals_the_double_sum(seed, n, k, tau):
    _, logits, t, w = random_problem(seed, n=n, k=k, tau=tau)
    p = logits.softmax(-1)
    fast = ld.lld_penalty(p, t, w).item()
    assert math.isclose(fast, brute_penalty(p, t, w), rel_tol=1e-11, abs_tol=1e-15)
    assert fast >= -1e-15


def test_penalty_is_zero_when_agreement_meets_its_targets():
    _, logits, _, _ = random_problem(3)
    p = logits.softmax(-1)
    w = 1 - torch.eye(6, dtype=F64)
    assert abs(ld.lld_penalty(p, p @ p.T, w).item()) < 32 * EPS


def test_penalty_broadcasts_shared_targets_over_heads():
    _, logits, t, w = random_problem(4)
    p = torch.stack([logits.softmax(-1), (0.5 * logits).softmax(-1)])     # (2, n, K)
    both = ld.lld_penalty(p, t, w)
    assert both.shape == (2,)
    for h in range(2):
        assert math.isclose(both[h].item(), ld.lld_penalty(p[h], t, w).item(), rel_tol=1e-14)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 7), st.integers(2, 4), st.sampled_from([None, 0.1]))
def test_penalty_gradient_matches_autograd(seed, n, k, tau):
    _, logits, t, w = random_problem(seed, n=n, k=k, tau=tau)
    z = logits.clone().requires_grad_(True)
    (g_auto,) = torch.autograd.grad(ld.lld_penalty(z.softmax(-1), t, w), z)
    g = ld.lld_penalty_grad(logits, t, w)
    assert_close(g, g_auto, rtol=0, atol=64 * EPS * (1 + g_auto.abs().max().item()))
    assert_close(g.sum(-1), torch.zeros(n, dtype=F64), rtol=0, atol=64 * EPS)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 8), st.sampled_from([None, 0.0]))
def test_binary_fast_path_equals_general_penalty(seed, n, tau):
    _, logits, t, w = random_problem(seed, n=n, k=2, tau=tau)
    z = logits[:, 1] - logits[:, 0]
    q = torch.sigmoid(z)
    p = torch.stack([1 - q, q], dim=-1)
    b_mat, c0 = w * (t - 0.5), (w * (t - 0.5) ** 2).sum().reshape(1, 1)
    fast = ld._binary_penalty(-torch.tanh(z / 2)[None, :, None], b_mat[None], w[None], c0)
    assert math.isclose(fast.item(), ld.lld_penalty(p, t, w).item(), rel_tol=1e-11, abs_tol=1e-15)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 7), st.integers(2, 4), st.sampled_from([None, 0.1]))
def test_penalty_and_gradient_follow_a_reordering_of_the_texts(seed, n, k, tau):
    """Omega depends on the pairs, not on the order of the texts; its gradient moves with them."""
    _, logits, t, w = random_problem(seed, n=n, k=k, tau=tau)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 1))
    tp, wp = t[perm][:, perm], w[perm][:, perm]
    p = logits.softmax(-1)
    assert math.isclose(ld.lld_penalty(p[perm], tp, wp).item(), ld.lld_penalty(p, t, w).item(),
                        rel_tol=1e-12, abs_tol=1e-15)
    assert_close(ld.lld_penalty_grad(logits[perm], tp, wp), ld.lld_penalty_grad(logits, t, w)[perm],
                 rtol=1e-12, atol=1e-15)


def test_penalty_errors():
    _, logits, t, w = random_problem(0)
    p = logits.softmax(-1)
    asym = t.clone()
    asym[0, 1] += 0.1
    with pytest.raises(ValueError, match="targets"):
        ld.lld_penalty(p, asym, w)
    wa = w.clone()
    wa[0, 1] = 0.5
    with pytest.raises(ValueError, match="weights"):
        ld.lld_penalty(p, t, wa)
    with pytest.raises(ValueError, match="weights"):
        ld.lld_penalty(p, t, -w)
    with pytest.raises(ValueError, match="weights"):
        ld.lld_penalty(p, t, w + torch.eye(6, dtype=F64))
    with pytest.raises(ValueError, match="targets"):
        ld.lld_penalty(p, t[:5, :5], w)
    with pytest.raises(ValueError, match="probs"):
        ld.lld_penalty(p[:1], t[:1, :1], w[:1, :1])
    with pytest.raises(ValueError, match="probs"):
        ld.lld_penalty(p + 0.1, t, w)
    with pytest.raises(ValueError, match="logits"):
        ld.lld_penalty_grad(logits[0], t, w)
    with pytest.raises(ValueError, match="logits"):
        ld.lld_penalty_grad(torch.full((6, 3), float("nan")), t, w)
    with pytest.raises(ValueError, match="weights"):
        ld.lld_penalty_grad(logits, t, wa)


# --- the trainer ----------------------------------------------------------------------------------

def small_training_sets(seed: int = 0, s: int = 2, r: int = 3, n: int = 12, d: int = 5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(s, n, d, generator=g, dtype=F64)
    y = torch.randint(0, 2, (s, r, n), generator=g)
    t, w = map(torch.stack, zip(*(ld.similarity_targets(x[k]) for k in range(s)), strict=True))
    return x, y, t, w


def test_heads_trained_together_equal_heads_trained_alone():
    x, y, t, w = small_training_sets()
    lam = torch.tensor([0.0, 5.0, 50.0], dtype=F64)
    l2 = torch.tensor([1e-2, 0.0, 1e-3], dtype=F64)
    w_all, b_all = ld.train_linear_heads(x, y, t, w, lam, l2, steps=40)
    assert w_all.shape == (2, 3, 5) and b_all.shape == (2, 3)
    for k in range(2):
        for r in range(3):
            w_one, b_one = ld.train_linear_heads(x[k:k + 1], y[k:k + 1, r:r + 1], t[k:k + 1],
                                                 w[k:k + 1], lam[r:r + 1], l2[r:r + 1], steps=40)
            assert_close(w_one[0, 0], w_all[k, r], rtol=0, atol=1e-12)
            assert_close(b_one[0, 0], b_all[k, r], rtol=0, atol=1e-12)


def test_zero_sample_weight_is_dropping_the_sample():
    x, y, t, w = small_training_sets(1, s=1, r=1)
    keep = torch.ones(1, 1, 12, dtype=F64)
    keep[..., :4] = 0
    w_drop, b_drop = ld.train_linear_heads(x, y, t, w, [0.0], [1e-3], sample_weight=keep, steps=30)
    sub_t, sub_w = ld.similarity_targets(x[0, 4:])
    w_sub, b_sub = ld.train_linear_heads(x[:, 4:], y[:, :, 4:], sub_t[None], sub_w[None], [0.0],
                                         [1e-3], steps=30)
    assert_close(w_drop, w_sub, rtol=0, atol=1e-12)
    assert_close(b_drop, b_sub, rtol=0, atol=1e-12)


def test_trainer_without_penalty_approaches_logistic_regression():
    """With lambda = 0 the objective is L2-penalised logistic regression: zero gradient."""
    x, y, t, w = small_training_sets(2, s=1, r=1)
    l2 = 0.05
    w_fit, b_fit = ld.train_linear_heads(x, y, t, w, [0.0], [l2], steps=3000, lr=0.02)
    wv = w_fit[0, 0].clone().requires_grad_(True)
    bv = b_fit[0, 0].clone().requires_grad_(True)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(x[0] @ wv + bv, y[0, 0].to(F64))
    gw, gb = torch.autograd.grad(loss + l2 * (wv**2).sum(), (wv, bv))
    assert gw.abs().max().item() < 1e-4 and abs(gb.item()) < 1e-4


def test_trainer_errors():
    x, y, t, w = small_training_sets()
    lam, l2 = [0.0, 1.0, 2.0], [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="features"):
        ld.train_linear_heads(x[0], y, t, w, lam, l2)
    with pytest.raises(ValueError, match="features"):
        ld.train_linear_heads(x[:, :1], y[:, :, :1], t[:, :1, :1], w[:, :1, :1], lam, l2)
    with pytest.raises(TypeError, match="labels"):
        ld.train_linear_heads(x, y.to(F64), t, w, lam, l2)
    with pytest.raises(ValueError, match="labels"):
        ld.train_linear_heads(x, y[:, :, :5], t, w, lam, l2)
    with pytest.raises(ValueError, match="labels"):
        ld.train_linear_heads(x, y + 1, t, w, lam, l2)
    with pytest.raises(ValueError, match="lam"):
        ld.train_linear_heads(x, y, t, w, [0.0, -1.0, 0.0], l2)
    with pytest.raises(ValueError, match="lam"):
        ld.train_linear_heads(x, y, t, w, [0.0, 1.0], l2)
    with pytest.raises(ValueError, match="l2"):
        ld.train_linear_heads(x, y, t, w, lam, [0.0, -1e-3, 0.0])
    with pytest.raises(ValueError, match="targets"):
        ld.train_linear_heads(x, y, t[0], w, lam, l2)
    with pytest.raises(ValueError, match="weights"):
        ld.train_linear_heads(x, y, t, w + torch.eye(12, dtype=F64), lam, l2)
    with pytest.raises(ValueError, match="sample_weight"):
        ld.train_linear_heads(x, y, t, w, lam, l2, sample_weight=torch.zeros(2, 3, 12))
    with pytest.raises(ValueError, match="sample_weight"):
        ld.train_linear_heads(x, y, t, w, lam, l2, sample_weight=-torch.ones(2, 3, 12))
    with pytest.raises(ValueError, match="steps"):
        ld.train_linear_heads(x, y, t, w, lam, l2, steps=0)
    with pytest.raises(ValueError, match="lr"):
        ld.train_linear_heads(x, y, t, w, lam, l2, lr=0.0)


# --- the two-point toy ---------------------------------------------------------------------------

def toy_loss(q: float, c: float, s: float, lam: float) -> float:
    return -math.log1p(-q) + lam * (s - (1 - q) * (1 - c) - q * c) ** 2


@settings(max_examples=60, deadline=None)
@given(st.floats(0.55, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 200.0))
def test_toy_minimiser_is_stationary_or_on_the_boundary(c, s, lam):
    q = ld.toy_noisy_probability(c, s, lam)
    a, b = 2 * c - 1, s + c - 1
    if lam <= ld.toy_memorize_lambda(c, s):
        assert q == 0.0
        assert 1 - 2 * lam * a * b >= -1e-12              # f'(0) >= 0: the loss rises from 0
    else:
        assert 0 < q < 1
        # f'(q) = 1/(1-q) - 2 lam a (b - a q) = 0 (relative to the size of its two terms)
        grad = 1 / (1 - q) - 2 * lam * a * (b - a * q)
        assert abs(grad) < 1e-8 * (1 / (1 - q) + abs(2 * lam * a * (b - a * q)))
        assert (q > 0.5) == (lam > ld.toy_overrule_lambda(c, s)) or \
            abs(lam - ld.toy_overrule_lambda(c, s)) < 1e-9 * lam


@pytest.mark.parametrize("c,s,lam", [(0.9, 1.0, 1.5), (0.9, 1.0, 3.0), (0.75, 0.8, 20.0),
                                     (1.0, 0.7, 12.0), (0.6, 0.9, 80.0)])
def test_toy_minimiser_matches_direct_minimisation(c, s, lam):
    res = minimize_scalar(lambda z: toy_loss(float(expit(z)), c, s, lam), bounds=(-30, 30),
                          method="bounded", options={"xatol": 1e-10})
    assert abs(float(expit(res.x)) - ld.toy_noisy_probability(c, s, lam)) < 1e-6


def test_toy_thresholds_closed_forms_and_limits():
    assert ld.toy_overrule_lambda(1.0, 1.0) == 2.0
    assert ld.toy_memorize_lambda(1.0, 1.0) == 0.5
    assert math.isclose(ld.toy_overrule_lambda(0.75, 0.75), 2 / (0.5 * 0.5))
    assert ld.toy_overrule_lambda(0.9, 0.5) == math.inf
    assert ld.toy_memorize_lambda(0.6, 0.4) == math.inf
    for c, s in ((0.6, 0.9), (0.9, 0.7), (1.0, 0.55)):
        assert ld.toy_memorize_lambda(c, s) < ld.toy_overrule_lambda(c, s)
        lo = ld.toy_noisy_probability(c, s, 0.999 * ld.toy_overrule_lambda(c, s))
        hi = ld.toy_noisy_probability(c, s, 1.001 * ld.toy_overrule_lambda(c, s))
        assert lo < 0.5 < hi


def test_toy_errors():
    for fn in (ld.toy_overrule_lambda, ld.toy_memorize_lambda):
        with pytest.raises(ValueError, match="c must exceed"):
            fn(0.5, 1.0)
        with pytest.raises(ValueError, match="c must"):
            fn(1.2, 1.0)
        with pytest.raises(ValueError, match="s must"):
            fn(0.9, -0.1)
        with pytest.raises(TypeError, match="c must"):
            fn("0.9", 1.0)
    with pytest.raises(ValueError, match="lam"):
        ld.toy_noisy_probability(0.9, 1.0, -1.0)
    with pytest.raises(ValueError, match="lam"):
        ld.toy_noisy_probability(0.9, 1.0, float("inf"))
