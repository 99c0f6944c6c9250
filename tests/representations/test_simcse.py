"""Tests of kexue_notes.representations.simcse against explicit sums, Monte Carlo, eigen-solvers and
identities."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from kexue_notes import contrastive as con
from kexue_notes.representations import simcse as sc


def batch(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def ntxent_by_loops(h0: np.ndarray, h1: np.ndarray, tau: float) -> float:
    """The symmetric loss written as the double sum over sentences and views."""
    def cos(x: np.ndarray, y: np.ndarray) -> float:
        return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))

    views = (h0, h1)
    n, total = len(h0), 0.0
    for i in range(n):
        for a in (0, 1):
            same, other = views[a], views[1 - a]
            den = sum(math.exp(cos(same[i], same[j]) / tau) for j in range(n) if j != i)
            den += sum(math.exp(cos(same[i], other[j]) / tau) for j in range(n))
            total += -cos(same[i], other[i]) / tau + math.log(den)
    return total / (2 * n)


class TinyEncoder(torch.nn.Module):
    """A linear map after dropout, returning a sentence-transformers style dict."""

    def __init__(self, p: float = 0.3) -> None:
        super().__init__()
        self.drop = torch.nn.Dropout(p)
        self.lin = torch.nn.Linear(6, 4, dtype=torch.float64)

    def forward(self, features: dict) -> dict:
        features["sentence_embedding"] = self.lin(self.drop(features["x"]))
        return features


# --- dropout_views ------------------------------------------------------------------------------

def test_dropout_views_are_reproducible_and_differ() -> None:
    torch.manual_seed(123)
    enc = TinyEncoder().eval()
    feats = {"x": batch(5, 6)}
    state = torch.get_rng_state()
    h0, h1 = sc.dropout_views(enc, feats, seed=7)
    assert torch.equal(torch.get_rng_state(), state), "the caller's random state is untouched"
    assert not enc.training, "the encoder is returned to eval mode"
    assert "sentence_embedding" not in feats, "the caller's features are not written into"
    g0, g1 = sc.dropout_views(enc, feats, seed=7)
    assert torch.equal(h0, g0) and torch.equal(h1, g1)
    assert not torch.equal(h0, h1), "two passes use two different masks"
    with torch.no_grad():
        clean = enc(dict(feats))["sentence_embedding"]
    assert not torch.equal(h0, clean)


def test_dropout_views_keep_training_mode_and_gradients() -> None:
    enc = TinyEncoder().train()
    h0, h1 = sc.dropout_views(enc, {"x": batch(5, 6)}, seed=0)
    assert enc.training
    (h0.sum() + h1.sum()).backward()
    assert enc.lin.weight.grad is not None


def test_dropout_views_accept_a_plain_tensor_encoder() -> None:
    enc = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Identity())
    x = torch.ones(3, 8, dtype=torch.float64)
    h0, h1 = sc.dropout_views(enc, x, seed=1)
    assert set(torch.unique(h0).tolist()) <= {0.0, 2.0}    # inverted dropout: kept x / q
    assert h0.shape == h1.shape == (3, 8)


def test_dropout_views_errors() -> None:
    with pytest.raises(TypeError, match="encoder"):
        sc.dropout_views(lambda x: x, torch.ones(2, 2), seed=0)
    with pytest.raises(TypeError, match="seed"):
        sc.dropout_views(torch.nn.Identity(), torch.ones(2, 2), seed=0.5)
    with pytest.raises(ValueError, match="seed"):
        sc.dropout_views(torch.nn.Identity(), torch.ones(2, 2), seed=-1)
    with pytest.raises(TypeError, match="encoder must return"):
        sc.dropout_views(torch.nn.Identity(), torch.ones(3), seed=0)


# --- dropout_cosine_limit -----------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.0, 0.1, 0.3, 0.6])
def test_dropout_cosine_limit_matches_monte_carlo(p: float) -> None:
    d = 200_000
    g = torch.Generator().manual_seed(0)
    x = torch.randn(d, dtype=torch.float64, generator=g)
    q = 1 - p
    m0 = (torch.rand(d, generator=g, dtype=torch.float64) < q).double()
    m1 = (torch.rand(d, generator=g, dtype=torch.float64) < q).double()
    y0, y1 = m0 * x / q, m1 * x / q
    cos = float(y0 @ y1 / y0.norm() / y1.norm())
    # the sums fluctuate by a few times 1/sqrt(d) ~ 2e-3 (relative); allow 10/sqrt(d)
    assert_allclose(cos, sc.dropout_cosine_limit(p), atol=10 / math.sqrt(d))


def test_dropout_cosine_limit_errors() -> None:
    with pytest.raises(ValueError, match="p must"):
        sc.dropout_cosine_limit(1.0)
    with pytest.raises(ValueError, match="p must"):
        sc.dropout_cosine_limit(-0.1)
    with pytest.raises(TypeError, match="p must"):
        sc.dropout_cosine_limit("0.1")

@pytest.mark.parametrize("tau", [0.05, 0.5, 2.0])
def test_ntxent_loss_equals_double_sum(tau: float) -> None:
    h0, h1 = batch(5, 4), batch(5, 4, seed=1)
    assert_allclose(float(sc.ntxent_loss(h0, h1, tau)),
                    ntxent_by_loops(h0.numpy(), h1.numpy(), tau), rtol=1e-12)


def test_ntxent_loss_matches_a_large_negative_mask() -> None:
    """The masked-diagonal form (diagonal minus 1e12 before the softmax) gives the same loss."""
    h0, h1 = batch(6, 3), batch(6, 3, seed=2)
    z = con.interleave_pairs(h0, h1)
    logits = con.cosine_logits(z, z, 0.05) - torch.eye(12, dtype=torch.float64) * 1e12
    want = torch.nn.functional.cross_entropy(logits, con.partner_targets(6))
    assert_allclose(float(sc.ntxent_loss(h0, h1, 0.05)), float(want), rtol=1e-13)


def test_ntxent_loss_with_one_sentence_is_zero() -> None:
    h = batch(1, 3)
    assert float(sc.ntxent_loss(h, h + 0.1, 0.1)) == pytest.approx(0.0, abs=1e-15)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 6), st.floats(0.05, 3.0), st.integers(0, 10_000))
def test_ntxent_loss_is_symmetric_in_the_views(n: int, tau: float, seed: int) -> None:
    h0, h1 = batch(n, 3, seed), batch(n, 3, seed + 1)
    assert_allclose(float(sc.ntxent_loss(h0, h1, tau)), float(sc.ntxent_loss(h1, h0, tau)),
                    rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 6), st.floats(0.05, 3.0), st.integers(0, 10_000))
def test_ntxent_loss_bounds(n: int, tau: float, seed: int) -> None:
    """0 < loss, and loss <= log(2n-1) + 2/tau (every logit lies in [-1/tau, 1/tau])."""
    h0, h1 = batch(n, 3, seed), batch(n, 3, seed + 1)
    loss = float(sc.ntxent_loss(h0, h1, tau))
    assert 0 < loss <= math.log(2 * n - 1) + 2 / tau + 1e-12


def test_ntxent_loss_errors() -> None:
    with pytest.raises(ValueError, match="h1 must have shape"):
        sc.ntxent_loss(batch(3, 2), batch(4, 2), 0.1)
    with pytest.raises(ValueError, match="h0 must be 2-dimensional"):
        sc.ntxent_loss(torch.ones(3), torch.ones(3), 0.1)
    with pytest.raises(ValueError, match="tau"):
        sc.ntxent_loss(batch(3, 2), batch(3, 2), 0.0)
    with pytest.raises(TypeError, match="tau"):
        sc.ntxent_loss(batch(3, 2), batch(3, 2), "0.1")
    with pytest.raises(ValueError, match="h0 must be finite"):
        sc.ntxent_loss(torch.full((2, 2), float("nan")), batch(2, 2), 0.1)
    with pytest.raises(TypeError, match="h1"):
        sc.ntxent_loss(batch(2, 2), "x", 0.1)


# --- log_mean_exp_similarity, gram_mean, top_eigenvalue_share -----------------------------------

def test_log_mean_exp_similarity_equals_explicit_sum() -> None:
    a, b = batch(4, 3), batch(7, 3, seed=1)
    an = a.numpy() / np.linalg.norm(a.numpy(), axis=1, keepdims=True)
    bn = b.numpy() / np.linalg.norm(b.numpy(), axis=1, keepdims=True)
    want = np.mean([math.log(np.mean(np.exp(an[i] @ bn.T / 0.3))) for i in range(4)])
    assert_allclose(float(sc.log_mean_exp_similarity(a, 0.3, b)), want, rtol=1e-13)
    self_want = np.mean([math.log(np.mean(np.exp(an[i] @ an.T / 0.3))) for i in range(4)])
    assert_allclose(float(sc.log_mean_exp_similarity(a, 0.3)), self_want, rtol=1e-13)
    off = [math.log(np.mean([math.exp(an[i] @ an[j] / 0.3) for j in range(4) if j != i]))
           for i in range(4)]
    assert_allclose(float(sc.log_mean_exp_similarity(a, 0.3, exclude_self=True)), np.mean(off),
                    rtol=1e-13)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 8), st.floats(0.05, 2.0), st.integers(0, 10_000))
def test_info_nce_splits_into_positives_and_negatives(n: int, tau: float, seed: int) -> None:
    """InfoNCE = log n - mean cos(a_i, b_i)/tau + U_tau(a, b), for any batch."""
    a, b = batch(n, 4, seed), batch(n, 4, seed + 1)
    pos = torch.nn.functional.cosine_similarity(a, b).mean()
    rhs = math.log(n) - pos / tau + sc.log_mean_exp_similarity(a, tau, b)
    assert_allclose(float(con.info_nce_loss(a, b, tau)), float(rhs), rtol=1e-11, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 30), st.integers(2, 6), st.floats(0.05, 2.0), st.integers(0, 10_000))
def test_jensen_and_rayleigh_bounds(m: int, d: int, tau: float, seed: int) -> None:
    h = batch(m, d, seed)
    gbar = float(sc.gram_mean(h))
    assert gbar / tau <= float(sc.log_mean_exp_similarity(h, tau)) + 1e-12     # Jensen
    assert gbar <= float(sc.top_eigenvalue_share(h)) + 1e-12                   # Rayleigh
    assert float(sc.top_eigenvalue_share(h)) >= 1 / min(m, d) - 1e-12          # trace / rank


def test_gram_mean_is_squared_norm_of_mean_direction() -> None:
    h = batch(9, 5) * torch.arange(1, 10, dtype=torch.float64)[:, None]   # norms do not matter
    u = h / h.norm(dim=1, keepdim=True)
    gbar = float(u.mean(0).norm() ** 2)
    assert_allclose(float(sc.gram_mean(h)), gbar, rtol=1e-13)
    g = (u @ u.T).numpy()
    off = g[~np.eye(9, dtype=bool)].mean()
    assert_allclose(float(sc.gram_mean(h, exclude_self=True)), off, rtol=1e-13)
    assert_allclose(off, (9 * gbar - 1) / 8, rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 30), st.integers(2, 6), st.floats(0.05, 2.0), st.integers(0, 10_000))
def test_jensen_bound_without_self_pairs(m: int, d: int, tau: float, seed: int) -> None:
    h = batch(m, d, seed)
    lhs = float(sc.log_mean_exp_similarity(h, tau, exclude_self=True))
    assert float(sc.gram_mean(h, exclude_self=True)) / tau <= lhs + 1e-12


def test_top_eigenvalue_share_against_the_m_by_m_gram() -> None:
    h = batch(12, 5)
    u = (h / h.norm(dim=1, keepdim=True)).numpy()
    want = np.linalg.eigvalsh(u @ u.T)[-1] / 12
    assert_allclose(float(sc.top_eigenvalue_share(h)), want, rtol=1e-12)


def test_extreme_geometries() -> None:
    """Parallel rows: share 1 and Gram mean 1. Two antipodal clusters: Gram mean 0, share 1."""
    v = batch(1, 4)
    parallel = v.repeat(6, 1) * torch.arange(1, 7, dtype=torch.float64)[:, None]
    assert_allclose(float(sc.top_eigenvalue_share(parallel)), 1.0, rtol=1e-13)
    assert_allclose(float(sc.gram_mean(parallel)), 1.0, rtol=1e-13)
    antipodal = torch.cat([v.repeat(3, 1), -v.repeat(3, 1)])
    assert_allclose(float(sc.gram_mean(antipodal)), 0.0, atol=1e-15)
    assert_allclose(float(sc.top_eigenvalue_share(antipodal)), 1.0, rtol=1e-13)
    orthonormal = torch.eye(4, dtype=torch.float64)
    assert_allclose(float(sc.top_eigenvalue_share(orthonormal)), 0.25, rtol=1e-13)


def test_anisotropy_errors() -> None:
    with pytest.raises(ValueError, match="h has a zero row"):
        sc.top_eigenvalue_share(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="h must be 2-dimensional"):
        sc.top_eigenvalue_share(torch.ones(3))
    with pytest.raises(ValueError, match="h must be 2-dimensional"):
        sc.gram_mean(torch.ones(3))
    with pytest.raises(ValueError, match="h must be finite"):
        sc.gram_mean(torch.full((2, 2), float("inf")))
    with pytest.raises(TypeError, match="h must be"):
        sc.gram_mean("abc")
    with pytest.raises(ValueError, match="a must be 2-dimensional"):
        sc.log_mean_exp_similarity(torch.ones(3), 0.1)
    with pytest.raises(ValueError, match="b must have shape"):
        sc.log_mean_exp_similarity(batch(3, 2), 0.1, batch(3, 4))
    with pytest.raises(ValueError, match="tau"):
        sc.log_mean_exp_similarity(batch(3, 2), -1.0)
    with pytest.raises(ValueError, match="exclude_self needs"):
        sc.log_mean_exp_similarity(batch(3, 2), 0.1, batch(2, 2), exclude_self=True)
    with pytest.raises(ValueError, match="exclude_self needs"):
        sc.log_mean_exp_similarity(batch(1, 2), 0.1, exclude_self=True)
    with pytest.raises(ValueError, match="number of rows of h"):
        sc.gram_mean(batch(1, 2), exclude_self=True)
