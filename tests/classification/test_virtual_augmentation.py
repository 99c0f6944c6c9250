"""Tests of kexue_notes.classification.virtual_augmentation: identities, cross-checks, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from kexue_notes.classification import virtual_augmentation as vda

torch.set_num_threads(1)
F64 = torch.float64
EPS = float(np.finfo(np.float64).eps)
seeds = st.integers(0, 10_000)


def logits_table(seed: int, n: int = 6, v: int = 40, d: int = 5, scale: float = 3.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(n, v, generator=g, dtype=F64),
            torch.randn(v, d, generator=g, dtype=F64))


# --- top-k truncation -----------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(seeds, st.integers(1, 40))
def test_truncation_identities(seed: int, k: int) -> None:
    z, emb = logits_table(seed)
    p = torch.softmax(z, dim=1)
    res = vda.topk_truncation_error(p, emb, k)
    assert_close(res.l1, 2 * (1 - res.mass), rtol=0, atol=32 * EPS)
    assert bool((res.embedding <= res.bound + 32 * EPS).all())
    keep = torch.zeros_like(p, dtype=torch.bool).scatter_(1, res.indices, True)
    if k < p.shape[1]:
        mu_top = (p * keep) @ emb / res.mass[:, None]
        mu_rest = (p * ~keep) @ emb / (1 - res.mass)[:, None]
        assert_close(res.embedding, (1 - res.mass) * (mu_rest - mu_top).norm(dim=1),
                     rtol=1e-9, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(seeds, st.integers(1, 40))
def test_topk_truncate_matches_torch_topk(seed: int, k: int) -> None:
    z, _ = logits_table(seed)
    p = torch.softmax(z, dim=1)
    w, idx, mass = vda.topk_truncate(p, k)
    vals, tidx = torch.topk(p, k, dim=1)
    assert_close(w * mass[:, None], vals, rtol=0, atol=4 * EPS)
    assert torch.equal(idx.sort(dim=1).values, tidx.sort(dim=1).values)
    assert_close(w.sum(dim=1), torch.ones(len(w), dtype=F64), rtol=0, atol=8 * EPS)


def test_full_truncation_is_exact() -> None:
    z, emb = logits_table(1)
    res = vda.topk_truncation_error(torch.softmax(z, dim=1), emb, z.shape[1])
    assert float(res.l1.max()) < 32 * EPS and float(res.embedding.max()) < 1e-13


# --- the virtual embedding ------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(seeds, st.integers(1, 40))
def test_virtual_embedding_without_noise(seed: int, k: int) -> None:
    z, emb = logits_table(seed)
    p = torch.softmax(z, dim=1)
    assert_close(vda.virtual_embedding(z, emb), p @ emb, rtol=0, atol=1e-12)
    w, idx, _ = vda.topk_truncate(p, k)
    bar = torch.zeros_like(p).scatter_(1, idx, w)
    assert_close(vda.virtual_embedding(z, emb, topk=k), bar @ emb, rtol=0, atol=1e-12)


def test_code_form_is_softmax_of_normalised_logits() -> None:
    z, emb = logits_table(2)
    u = z / z.sum(dim=1, keepdim=True)
    assert_close(vda.virtual_embedding(z, emb, noise_space="code"), torch.softmax(u, 1) @ emb)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    eps = torch.randn(z.shape, generator=g2, dtype=F64)
    assert_close(vda.virtual_embedding(z, emb, 0.3, noise_space="code", generator=g1),
                 torch.softmax(u + 0.3 * eps, 1) @ emb)


def test_noise_is_seeded() -> None:
    z, emb = logits_table(3)
    a = vda.virtual_embedding(z, emb, 0.5, generator=torch.Generator().manual_seed(0))
    b = vda.virtual_embedding(z, emb, 0.5, generator=torch.Generator().manual_seed(0))
    c = vda.virtual_embedding(z, emb, 0.5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c)


@settings(max_examples=30, deadline=None)
@given(seeds, st.integers(2, 200))
def test_flattening_bounds_hold_on_the_simplex(seed: int, v: int) -> None:
    lo, hi, l1 = vda.flattening_bounds(v)
    rng = np.random.default_rng(seed)
    u = torch.from_numpy(rng.dirichlet(np.full(v, 0.3), size=20))
    q = torch.softmax(u, dim=1)
    assert bool((q >= lo * (1 - 1e-12)).all()) and bool((q <= hi * (1 + 1e-12)).all())
    assert bool(((q - 1 / v).abs().sum(dim=1) <= l1 * (1 + 1e-12)).all())
    vertex = torch.softmax(F.one_hot(torch.tensor(0), v).double(), dim=0)
    assert math.isclose(float(vertex.max()), hi, rel_tol=1e-12)
    assert math.isclose(float(vertex.min()), lo, rel_tol=1e-12)


# --- the covariance -------------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(seeds)
def test_softmax_jacobian_is_autograd(seed: int) -> None:
    z = logits_table(seed)[0][0]
    jac = torch.autograd.functional.jacobian(lambda x: torch.softmax(x, 0), z)
    assert_close(vda.softmax_jacobian(torch.softmax(z, 0)), jac, rtol=0, atol=16 * EPS)


def test_delta_covariance_matches_dense_formula_and_monte_carlo() -> None:
    z, emb = logits_table(4, n=1, v=12, d=3, scale=1.0)
    z = z[0]
    jac = vda.softmax_jacobian(torch.softmax(z, 0))
    cov = vda.delta_method_covariance(z, emb, 0.1)
    assert_close(cov, 0.01 * emb.T @ jac @ jac @ emb, rtol=1e-12, atol=1e-16)
    g = torch.Generator().manual_seed(0)
    draws = torch.softmax(z + 0.01 * torch.randn(20_000, 12, generator=g, dtype=F64), 1) @ emb
    rel = torch.linalg.matrix_norm(torch.cov(draws.T) - vda.delta_method_covariance(z, emb, 0.01))
    assert float(rel / torch.linalg.matrix_norm(cov / 100)) < 0.05     # MC error about 1 %


# --- the consistency loss -------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(seeds, st.booleans())
def test_consistency_loss_matches_kl_div(seed: int, symmetric: bool) -> None:
    s, t = logits_table(seed, v=5)[0], logits_table(seed + 1, v=5)[0]
    lp, lq = F.log_softmax(s, 1), F.log_softmax(t, 1)
    one = F.kl_div(lq, lp, log_target=True, reduction="batchmean")
    want = 0.5 * (one + F.kl_div(lp, lq, log_target=True, reduction="batchmean")) if symmetric \
        else one
    assert_close(vda.consistency_loss(s, t, symmetric=symmetric), want, rtol=1e-12, atol=1e-14)
    per = vda.consistency_loss(s, t, symmetric=symmetric, reduction="none")
    assert_close(per.sum(), vda.consistency_loss(s, t, symmetric=symmetric, reduction="sum"))
    assert bool((per >= -1e-15).all())


@settings(max_examples=40, deadline=None)
@given(seeds, st.booleans())
def test_consistency_grad_is_autograd(seed: int, symmetric: bool) -> None:
    s, t = logits_table(seed, v=5)[0], logits_table(seed + 1, v=5)[0]
    t = t.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(
        vda.consistency_loss(s, t, symmetric=symmetric, reduction="sum"), t)
    assert_close(vda.consistency_grad(s, t, symmetric=symmetric), g, rtol=0, atol=1e-12)


def test_consistency_vanishes_on_equal_logits() -> None:
    s = logits_table(7, v=5)[0]
    assert float(vda.consistency_loss(s, s).abs()) < 1e-15
    assert float(vda.consistency_grad(s, s).abs().max()) < 1e-15


# --- the MiniLM helpers ---------------------------------------------------------------------------

def test_proxy_logits_peak_at_the_token_itself() -> None:
    emb = logits_table(8, v=30, d=6)[1]
    ids = torch.tensor([0, 5, 29])
    z = vda.proxy_substitution_logits(emb, ids, 0.5)
    assert torch.equal(z.argmax(dim=1), ids)
    assert_close(z[torch.arange(3), ids], torch.full((3,), 2.0, dtype=F64))


# --- error paths ----------------------------------------------------------------------------------

def test_errors() -> None:
    z, emb = logits_table(9)
    p = torch.softmax(z, dim=1)
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="logits"):
        vda.virtual_embedding(z[0], emb)
    with pytest.raises(ValueError, match="logits"):
        vda.virtual_embedding(torch.full_like(z, float("nan")), emb)
    with pytest.raises(ValueError, match="table"):
        vda.virtual_embedding(z, emb[:-1])
    with pytest.raises(ValueError, match="sigma"):
        vda.virtual_embedding(z, emb, -1.0)
    with pytest.raises(ValueError, match="generator"):
        vda.virtual_embedding(z, emb, 0.1)
    with pytest.raises(ValueError, match="noise_space"):
        vda.virtual_embedding(z, emb, noise_space="probability")
    with pytest.raises(ValueError, match="topk"):
        vda.virtual_embedding(z, emb, topk=41)
    with pytest.raises(ValueError, match="topk"):
        vda.virtual_embedding(z, emb, topk=0)
    with pytest.raises(ValueError, match="logits"):
        vda.virtual_embedding(z - z.mean(dim=1, keepdim=True), emb, noise_space="code",
                              generator=g)
    with pytest.raises(ValueError, match="p must be non-negative"):
        vda.topk_truncate(-p, 3)
    with pytest.raises(ValueError, match="p must sum"):
        vda.topk_truncate(2 * p, 3)
    with pytest.raises(ValueError, match="k must be at most"):
        vda.topk_truncate(p, 41)
    with pytest.raises(ValueError, match="k"):
        vda.topk_truncate(p, 0)
    with pytest.raises(ValueError, match="table"):
        vda.topk_truncation_error(p, emb[:-1], 3)
    with pytest.raises(ValueError, match="p"):
        vda.softmax_jacobian(p[0] * 2)
    with pytest.raises(ValueError, match="table"):
        vda.delta_method_covariance(z[0], emb[:-1], 0.1)
    with pytest.raises(ValueError, match="sigma"):
        vda.delta_method_covariance(z[0], emb, -0.1)
    with pytest.raises(ValueError, match="logits_aug"):
        vda.consistency_loss(z, z[:, :3])
    with pytest.raises(ValueError, match="logits"):
        vda.consistency_loss(z[:, :1], z[:, :1])
    with pytest.raises(ValueError, match="reduction"):
        vda.consistency_loss(z, z, reduction="mean")
    with pytest.raises(ValueError, match="logits_aug"):
        vda.consistency_grad(z, z[:, :3])
    with pytest.raises(ValueError, match="vocab_size"):
        vda.flattening_bounds(1)
    with pytest.raises(TypeError, match="vocab_size"):
        vda.flattening_bounds(3.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="temperature"):
        vda.proxy_substitution_logits(emb, [0, 1], 0.0)
    with pytest.raises(ValueError, match="token_ids"):
        vda.proxy_substitution_logits(emb, [0, 40], 1.0)
    with pytest.raises(ValueError, match="token_ids"):
        vda.proxy_substitution_logits(emb, [0.5], 1.0)
