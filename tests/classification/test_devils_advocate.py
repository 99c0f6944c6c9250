"""Tests of kexue_notes.classification.devils_advocate: closed forms, identities, error paths."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812 -- torch's own idiom
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from kexue_notes.classification import devils_advocate as da


def logits(seed: int, n: int, C: int, scale: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, C, generator=g, dtype=torch.float64) * scale
    return z, torch.randint(0, C, (n,), generator=g)


# --- random wrong labels and the DA loss ----------------------------------------------------------

def test_random_wrong_labels_avoid_the_true_class_and_are_uniform() -> None:
    y = torch.arange(5).repeat(2000)
    w = da.random_wrong_labels(y, 5, 3, generator=torch.Generator().manual_seed(0))
    assert w.shape == (3, 10_000)
    assert bool((w != y).all()) and int(w.min()) >= 0 and int(w.max()) < 5
    freq = np.bincount(((w - y) % 5).flatten().numpy(), minlength=5) / w.numel()
    se = math.sqrt(0.25 * 0.75 / w.numel())
    assert freq[0] == 0 and np.abs(freq[1:] - 0.25).max() < 5 * se


def test_random_wrong_labels_is_seeded() -> None:
    y = torch.tensor([0, 1, 2, 3])
    a = da.random_wrong_labels(y, 4, 2, generator=torch.Generator().manual_seed(3))
    b = da.random_wrong_labels(y, 4, 2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_random_wrong_label_loss_mean_is_the_closed_form() -> None:
    z, y = logits(0, 32, 6)
    draws = da.random_wrong_label_loss(z.expand(20_000, -1, -1), y.expand(20_000, -1),
                                       generator=torch.Generator().manual_seed(1))
    se = float(draws.std()) / math.sqrt(draws.numel())
    assert abs(float(draws.mean() - da.expected_wrong_label_loss(z, y))) < 4 * se


def test_random_wrong_label_loss_is_the_sum_of_the_draws_hard_label_ce() -> None:
    # the one soft-target call against K hard-label calls on the same draws; with K = 9 draws
    # over the 4 wrong classes every example repeats a class, so the counts n_c reach 2 and more
    z, y = logits(4, 64, 5)
    for K in (1, 4, 9):
        loss = da.random_wrong_label_loss(z, y, n_draws=K,
                                          generator=torch.Generator().manual_seed(K))
        wrong = da.random_wrong_labels(y, 5, K, generator=torch.Generator().manual_seed(K))
        want = sum(float(F.cross_entropy(z, wrong[k])) for k in range(K))
        assert_allclose(float(loss), want, rtol=1e-13)


def test_random_wrong_label_loss_with_two_classes_is_the_flipped_ce() -> None:
    z, y = logits(2, 16, 2)
    loss = da.random_wrong_label_loss(z, y, generator=torch.Generator().manual_seed(0))
    assert_allclose(float(loss), float(F.cross_entropy(z, 1 - y)), rtol=1e-14)


def test_expected_wrong_label_loss_brute_force() -> None:
    z, y = logits(3, 7, 4)
    logp = torch.log_softmax(z, -1).numpy()
    want = np.mean([-sum(logp[i, c] for c in range(4) if c != int(y[i])) for i in range(7)])
    assert_allclose(float(da.expected_wrong_label_loss(z, y)), want, rtol=1e-14)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 12))
def test_ideal_output_minimises_the_expected_loss(seed: int, C: int) -> None:
    """Among distributions, s = (1 - e_y)/(C - 1) gives the smallest -sum_{c != y} log p_c."""
    rng = np.random.default_rng(seed)
    y = torch.tensor([int(rng.integers(C))])
    s = da.ideal_da_output(y, C)
    assert_allclose(s.sum(-1).numpy(), 1.0, rtol=1e-15)
    assert float(s[0, y[0]]) == 0.0
    best = (C - 1) * math.log(C - 1)
    p = rng.dirichlet(np.ones(C), size=50)
    vals = -(np.log(p).sum(1) - np.log(p[:, int(y[0])]))
    assert np.all(vals >= best - 1e-12)
    # at the ideal (approached with p_y -> 0) the value is (C - 1) log(C - 1)
    eps = 1e-12
    near = (s + eps) / (1 + C * eps)
    assert_allclose(float(da.expected_wrong_label_loss(torch.log(near), y)), best, atol=1e-9)


# --- the margin identity --------------------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 12), st.floats(0.1, 8.0))
def test_ideal_da_boost_is_the_additive_margin(seed: int, C: int, scale: float) -> None:
    z, y = logits(seed, 9, C, scale)
    m = 1 / (C - 1)
    boosted = da.da_boosted_cross_entropy(z, da.ideal_da_output(y, C), y)
    am = da.am_softmax_cross_entropy(z, y, m)
    lib = F.cross_entropy(z - m * F.one_hot(y, C).double(), y)
    assert_allclose(float(boosted), float(am), rtol=1e-12)
    assert_allclose(float(am), float(lib), rtol=1e-12)


def test_am_softmax_zero_margin_is_cross_entropy_and_batches() -> None:
    z, y = logits(5, 12, 5)
    assert_allclose(float(da.am_softmax_cross_entropy(z, y, 0.0)), float(F.cross_entropy(z, y)),
                    rtol=1e-14)
    zz = torch.stack([z, 2 * z])
    yy = torch.stack([y, y])
    out = da.am_softmax_cross_entropy(zz, yy, 0.5)
    assert out.shape == (2,)
    assert_allclose(float(out[1]), float(da.am_softmax_cross_entropy(2 * z, y, 0.5)), rtol=1e-14)


def test_am_softmax_grows_with_the_margin() -> None:
    z, y = logits(6, 10, 4)
    vals = [float(da.am_softmax_cross_entropy(z, y, m)) for m in (-1.0, 0.0, 0.3, 1.0)]
    assert all(a < b for a, b in itertools.pairwise(vals))


def test_da_boosted_gradient_is_softmax_minus_onehot() -> None:
    z, y = logits(7, 8, 5)
    q = torch.softmax(logits(8, 8, 5)[0], -1)
    zg = z.clone().requires_grad_(True)
    da.da_boosted_cross_entropy(zg, q, y).backward()
    want = (torch.softmax(z + q, -1) - F.one_hot(y, 5)) / 8
    assert_allclose(zg.grad.numpy(), want.numpy(), rtol=1e-12, atol=1e-16)


def test_da_boosted_detaches_the_da() -> None:
    z, y = logits(9, 4, 3)
    q = torch.softmax(logits(10, 4, 3)[0], -1).requires_grad_(True)
    da.da_boosted_cross_entropy(z.requires_grad_(True), q, y).backward()
    assert q.grad is None


# --- combining ------------------------------------------------------------------------------------

def test_soft_vote_matches_the_posts_example_and_weights() -> None:
    p = np.array([[0.2, 0.1, 0.7], [0.2, 0.6, 0.2], [0.1, 0.7, 0.2]])
    assert_allclose(da.soft_vote(p).numpy(), np.array([0.5, 1.4, 1.1]) / 3, rtol=1e-14)
    assert_allclose(da.soft_vote(p, [1, 0, 0]).numpy(), p[0], rtol=1e-14)
    assert_allclose(da.soft_vote(p, [2, 1, 1]).numpy(), (2 * p[0] + p[1] + p[2]) / 4, rtol=1e-14)


def test_da_ensemble_scores() -> None:
    z = torch.arange(24, dtype=torch.float64).reshape(2, 3, 4)
    d = torch.ones(3, 4)
    assert_allclose(da.da_ensemble_scores(z).numpy(), z.sum(0).numpy())
    assert_allclose(da.da_ensemble_scores(z, d, da_weight=2.0).numpy(), (z.sum(0) - 2).numpy())
    assert_allclose(da.da_ensemble_scores(z, d, da_weight=0.0).numpy(), z.sum(0).numpy())


# --- the MLPs and the protocol --------------------------------------------------------------------

def test_mlps_match_torch_linear_layers() -> None:
    P = da.init_mlps(3, 5, 4, 2, generator=torch.Generator().manual_seed(0))
    assert [tuple(p.shape) for p in P] == [(3, 5, 4), (3, 1, 4), (3, 4, 2), (3, 1, 2)]
    assert float(P[0].detach().abs().max()) <= 1 / math.sqrt(5)
    assert float(P[2].detach().abs().max()) <= 1 / 2
    x = torch.randn(6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    out = da.mlp_logits(P, x)
    for b in range(3):
        l1, l2 = torch.nn.Linear(5, 4).double(), torch.nn.Linear(4, 2).double()
        with torch.no_grad():
            l1.weight.copy_(P[0][b].T)
            l1.bias.copy_(P[1][b, 0])
            l2.weight.copy_(P[2][b].T)
            l2.bias.copy_(P[3][b, 0])
        assert_allclose(out[b].detach().numpy(), l2(torch.relu(l1(x))).detach().numpy(), rtol=1e-13)
    assert_allclose(da.mlp_logits(P, x.expand(3, 6, 5)).detach().numpy(), out.detach().numpy())


def _toy(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 4)) * 3
    y = np.tile(np.arange(3), 10)
    x = centres[y] + rng.normal(size=(30, 4))
    return np.stack([x, x + 0.1]), np.stack([y, y]), np.stack([x[:9], x[:9]])


def test_run_devils_advocate_shapes_learning_and_determinism() -> None:
    x, y, xt = _toy()
    kw = dict(n_norm=2, hidden=8, steps1=80, steps2=10, lr=0.05)
    out = da.run_devils_advocate(x, y, xt, 3, generator=torch.Generator().manual_seed(0), **kw)
    again = da.run_devils_advocate(x, y, xt, 3, generator=torch.Generator().manual_seed(0), **kw)
    assert out["da_test"].shape == (2, 9, 3) and out["da_train"].shape == (2, 30, 3)
    assert out["norm_test"].shape == (2, 2, 9, 3) and out["norm_train"].shape == (2, 2, 30, 3)
    assert out["phase2_test"].shape == (2, len(da.PHASE2_VARIANTS), 2, 9, 3)
    for k in out:
        assert torch.equal(out[k], again[k])
    yt = torch.as_tensor(y)
    # the Norm models learn the labels, the DA learns to avoid them
    assert float((out["norm_train"].argmax(-1) == yt[:, None]).double().mean()) > 0.9
    q = torch.softmax(out["da_train"], -1).gather(-1, yt[..., None])
    assert float(q.mean()) < 0.1


def test_run_devils_advocate_without_phase_two_keeps_the_phase_one_pair() -> None:
    x, y, xt = _toy(1)
    out = da.run_devils_advocate(x, y, xt, 3, n_norm=2, hidden=4, steps1=5, steps2=0,
                                 generator=torch.Generator().manual_seed(0))
    for v in range(len(da.PHASE2_VARIANTS)):
        assert_allclose(out["phase2_test"][:, v].numpy(), out["norm_test"][:, :2].numpy(),
                        rtol=1e-14)


# --- error paths ----------------------------------------------------------------------------------

def test_errors_labels_and_counts() -> None:
    y = torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match="n_classes"):
        da.random_wrong_labels(y, 1, 1)
    with pytest.raises(ValueError, match="n_draws"):
        da.random_wrong_labels(y, 3, 0)
    with pytest.raises(ValueError, match="y"):
        da.random_wrong_labels(y, 2, 1)
    with pytest.raises(TypeError, match="y"):
        da.random_wrong_labels(torch.tensor([0.0, 1.0]), 2, 1)
    with pytest.raises(TypeError, match="y"):
        da.ideal_da_output("abc", 3)
    with pytest.raises(ValueError, match="n_classes"):
        da.ideal_da_output(y, 1)


def test_errors_losses() -> None:
    z, y = logits(0, 4, 3)
    with pytest.raises(ValueError, match="logits"):
        da.expected_wrong_label_loss(torch.zeros(3), y[:3])
    with pytest.raises(ValueError, match="logits"):
        da.expected_wrong_label_loss(torch.zeros(4, 1), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="logits"):
        da.expected_wrong_label_loss(torch.full((4, 3), float("nan")), y)
    with pytest.raises(ValueError, match="y"):
        da.expected_wrong_label_loss(z, y[:3])
    with pytest.raises(ValueError, match="n_draws"):
        da.random_wrong_label_loss(z, y, n_draws=0)
    with pytest.raises(ValueError, match="da_probs"):
        da.da_boosted_cross_entropy(z, torch.ones(4, 3), y)
    with pytest.raises(ValueError, match="da_probs"):
        da.da_boosted_cross_entropy(z, torch.ones(4, 2) / 2, y)
    with pytest.raises(TypeError, match="margin"):
        da.am_softmax_cross_entropy(z, y, "1")
    with pytest.raises(ValueError, match="margin"):
        da.am_softmax_cross_entropy(z, y, float("inf"))


def test_errors_combining() -> None:
    p = np.full((2, 3, 4), 0.25)
    with pytest.raises(ValueError, match="probs"):
        da.soft_vote(np.full(4, 0.25))
    with pytest.raises(ValueError, match="probs"):
        da.soft_vote(np.full((2, 3, 4), 0.3))
    with pytest.raises(ValueError, match="weights"):
        da.soft_vote(p, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="weights"):
        da.soft_vote(p, [-1.0, 2.0])
    with pytest.raises(ValueError, match="weights"):
        da.soft_vote(p, [0.0, 0.0])
    with pytest.raises(ValueError, match="norm_logits"):
        da.da_ensemble_scores(np.zeros(3))
    with pytest.raises(ValueError, match="da_logits"):
        da.da_ensemble_scores(np.zeros((2, 3, 4)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="da_weight"):
        da.da_ensemble_scores(np.zeros((2, 3, 4)), np.zeros((3, 4)), da_weight=-1.0)


def test_errors_mlps_and_protocol() -> None:
    gen = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="n_models"):
        da.init_mlps(0, 2, 2, 2, generator=gen)
    with pytest.raises(ValueError, match="hidden"):
        da.init_mlps(1, 2, 0, 2, generator=gen)
    with pytest.raises(ValueError, match="n_classes"):
        da.init_mlps(1, 2, 2, 1, generator=gen)
    P = da.init_mlps(2, 3, 2, 2, generator=gen)
    with pytest.raises(ValueError, match="params"):
        da.mlp_logits(P[:3], np.zeros((4, 3)))
    with pytest.raises(ValueError, match="x"):
        da.mlp_logits(P, np.zeros((4, 5)))
    with pytest.raises(ValueError, match="x"):
        da.mlp_logits(P, np.zeros((3, 4, 3)))
    x, y, xt = _toy()
    with pytest.raises(ValueError, match="n_norm"):
        da.run_devils_advocate(x, y, xt, 3, n_norm=1, generator=gen)
    with pytest.raises(ValueError, match="steps1"):
        da.run_devils_advocate(x, y, xt, 3, steps1=0, generator=gen)
    with pytest.raises(ValueError, match="lr"):
        da.run_devils_advocate(x, y, xt, 3, lr=0.0, generator=gen)
    with pytest.raises(ValueError, match="x_train"):
        da.run_devils_advocate(x[0], y, xt, 3, generator=gen)
    with pytest.raises(ValueError, match="y_train"):
        da.run_devils_advocate(x, y[:, :5], xt, 3, generator=gen)
    with pytest.raises(ValueError, match="y_train"):
        da.run_devils_advocate(x, y + 5, xt, 3, generator=gen)
    with pytest.raises(ValueError, match="x_test"):
        da.run_devils_advocate(x, y, xt[:, :, :2], 3, generator=gen)
