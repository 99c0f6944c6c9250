"""Tests of kexue_notes.optimization.grad_cache against explicit sums, autograd and one-graph
gradients."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from torch import nn

from kexue_notes.contrastive import cosine_logits, info_nce_loss, partner_targets
from kexue_notes.optimization import grad_cache as gc

EPS = float(np.finfo(np.float64).eps)


def batch(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def loss_by_loops(h: np.ndarray, tau: float, targets: list[int], exclude_self: bool) -> float:
    total = 0.0
    for i, hi in enumerate(h):
        s = [hi @ hj / tau for hj in h]
        den = sum(math.exp(v) for j, v in enumerate(s) if not (exclude_self and j == i))
        total += -s[targets[i]] + math.log(den)
    return total / len(h)


class MLP(nn.Module):
    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Linear(3, 8, dtype=torch.float64)
        self.b = nn.Linear(8, 4, dtype=torch.float64)
        self.drop = nn.Dropout(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.drop(torch.tanh(self.a(x))))


def grads(model: nn.Module) -> list[torch.Tensor]:
    out = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    return out


def one_graph(model: nn.Module, columns: list[torch.Tensor], loss_fn, b: int) -> torch.Tensor:
    """Reference: autograd through the big-batch loss in one graph (micro-batches embedded in
    the cached route's order, so dropout draws the same masks from the same seed)."""
    tables = [torch.cat([model(c) for c in col.split(b)]) for col in columns]
    loss = loss_fn(*tables)
    loss.backward()
    return loss.detach()


def su(h: torch.Tensor) -> torch.Tensor:
    return gc.inner_product_info_nce_loss(h, 0.5, exclude_self=True)


@pytest.mark.parametrize("exclude_self", [False, True])
def test_loss_equals_explicit_sum(exclude_self: bool) -> None:
    h = batch(6, 3)
    targets = [1, 0, 3, 2, 5, 4]
    want = loss_by_loops(h.numpy(), 0.7, targets, exclude_self)
    assert_allclose(float(gc.inner_product_info_nce_loss(h, 0.7, exclude_self=exclude_self)),
                    want, rtol=1e-13)
    other = [2, 0, 1, 5, 3, 4] if not exclude_self else [2, 0, 1, 5, 3, 3]
    assert_allclose(float(gc.inner_product_info_nce_loss(h, 0.7, other, exclude_self)),
                    loss_by_loops(h.numpy(), 0.7, other, exclude_self), rtol=1e-13)


@pytest.mark.parametrize("kwargs,err,match", [
    ({"h": torch.ones(4)}, ValueError, "h must be 2-dimensional"),
    ({"h": torch.full((4, 2), float("nan"))}, ValueError, "h must be finite"),
    ({"tau": 0.0}, ValueError, "tau must be"),
    ({"targets": [0, 1, 2, 4]}, ValueError, "targets must lie"),
    ({"targets": [0.0, 1.0, 2.0, 3.0]}, TypeError, "targets must be 4 integer"),
    ({"targets": [1, 1, 3, 2], "exclude_self": True}, ValueError, "targets must not point"),
    ({"h": torch.ones(3, 2)}, ValueError, "h must have an even number of rows"),
])
def test_loss_errors(kwargs, err, match) -> None:
    args = {"h": batch(4, 2), "tau": 1.0} | kwargs
    with pytest.raises(err, match=match):
        gc.inner_product_info_nce_loss(**args)


# --- surrogate vectors, surrogate loss, the general cache ------------------------------------

@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.floats(0.2, 3.0), st.booleans(),
       st.integers(0, 10_000))
def test_surrogate_vectors_are_the_autograd_gradient(pairs: int, d: int, tau: float,
                                                     exclude_self: bool, seed: int) -> None:
    n = 2 * pairs
    h = batch(n, d, seed).requires_grad_()
    rng = np.random.default_rng(seed)
    targets = torch.as_tensor([int(rng.choice([j for j in range(n) if j != i]))
                               for i in range(n)])                       # any, not symmetric
    gc.inner_product_info_nce_loss(h, tau, targets, exclude_self).backward()
    got = gc.surrogate_vectors(h, tau, targets, exclude_self)
    assert_allclose(got, h.grad, rtol=0, atol=1e3 * EPS * max(1.0, h.grad.abs().max().item()))


def test_surrogate_vectors_match_su_symmetric_form() -> None:
    h, tau, n = batch(6, 3, seed=4), 0.5, 6
    logits = h @ h.T / tau
    p = torch.softmax(logits, dim=1)
    t = torch.nn.functional.one_hot(partner_targets(n // 2), n).to(h.dtype)
    su_form = 2 / (n * tau) * ((p + p.T) / 2 - t) @ h
    assert_allclose(gc.surrogate_vectors(h, tau), su_form, rtol=1e-12, atol=1e-15)


def test_surrogate_loss_gradient_and_value() -> None:
    h = batch(4, 3).requires_grad_()
    c = batch(4, 3, seed=1)
    value = gc.surrogate_loss(h, c)
    value.backward()
    assert torch.equal(h.grad, c)
    assert_allclose(value.item(), float((h.detach() * c).sum()), rtol=1e-15)


def test_surrogate_loss_errors() -> None:
    with pytest.raises(TypeError, match="h must be a floating torch tensor"):
        gc.surrogate_loss(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="h_tilde must have shape"):
        gc.surrogate_loss(batch(2, 2), np.ones((2, 3)))


def test_embedding_gradients_general_and_unused() -> None:
    q, d = batch(5, 3), batch(5, 3, seed=1)
    loss, (cq, cd) = gc.embedding_gradients(lambda a, b: info_nce_loss(a, b, 0.1), [q, d])
    qq, dd = q.clone().requires_grad_(), d.clone().requires_grad_()
    ref = info_nce_loss(qq, dd, 0.1)
    ref.backward()
    assert_allclose(loss.item(), ref.item(), rtol=1e-15)
    assert torch.equal(cq, qq.grad) and torch.equal(cd, dd.grad)
    h = batch(4, 2)
    _, (c, unused) = gc.embedding_gradients(lambda a, b: su(a), [h, q])
    assert_allclose(c, gc.surrogate_vectors(h, 0.5, exclude_self=True), rtol=0, atol=1e-14)
    assert torch.equal(unused, torch.zeros_like(q))


@pytest.mark.parametrize("loss_fn,tables,match", [
    (su, [], "embeddings must hold"),
    (lambda h: h.sum(0), [batch(2, 2)], "0-d tensor"),
    (lambda h: h.sum() * float("inf"), [batch(2, 2)], "not finite"),
])
def test_embedding_gradients_errors(loss_fn, tables, match) -> None:
    with pytest.raises(ValueError, match=match):
        gc.embedding_gradients(loss_fn, tables)


# --- the two-pass backward -------------------------------------------------------------------

@pytest.mark.parametrize("b", [1, 2, 3, 8])
@pytest.mark.parametrize("closed_form", [False, True])
def test_cached_backward_equals_one_graph(b: int, closed_form: bool) -> None:
    x = batch(8, 3, seed=2)
    model = MLP()
    ref_loss = one_graph(model, [x], su, b)
    ref = grads(model)
    cache_fn = (lambda t: [gc.surrogate_vectors(t[0], 0.5, exclude_self=True)]) if closed_form \
        else None
    loss, (cache,) = gc.cached_backward_(model, x, su, b, cache_fn=cache_fn)
    assert cache.shape == (8, 4)
    assert_allclose(loss.item(), ref_loss.item(), rtol=1e-14)
    for g, r in zip(grads(model), ref, strict=True):
        assert_allclose(g, r, rtol=0, atol=100 * EPS * r.abs().max().item())


def test_cached_backward_two_columns_and_dicts() -> None:
    q, d = batch(6, 3, seed=5), batch(6, 3, seed=6)
    model = MLP()

    def loss_fn(a, c):
        return info_nce_loss(a, c, 0.2)

    one_graph(model, [q, d], loss_fn, 6)
    ref = grads(model)
    gc.cached_backward_(lambda f: model(f["x"]), [{"x": q, "tag": "q"}, {"x": d, "tag": "d"}],
                        loss_fn, 4)
    for g, r in zip(grads(model), ref, strict=True):
        assert_allclose(g, r, rtol=0, atol=100 * EPS * r.abs().max().item())


def test_dropout_needs_rng_replay() -> None:
    x = batch(8, 3, seed=3)
    model = MLP(p=0.3)
    torch.manual_seed(11)
    one_graph(model, [x], su, 2)
    ref = grads(model)
    torch.manual_seed(11)
    gc.cached_backward_(model, x, su, 2, replay_rng=True)
    after_replay = torch.get_rng_state()
    for g, r in zip(grads(model), ref, strict=True):
        assert_allclose(g, r, rtol=0, atol=100 * EPS * r.abs().max().item())
    torch.manual_seed(11)
    with torch.no_grad():
        for c in x.split(2):
            model(c)
    assert torch.equal(torch.get_rng_state(), after_replay)
    torch.manual_seed(11)
    gc.cached_backward_(model, x, su, 2, replay_rng=False)
    diff = max((g - r).abs().max().item() for g, r in zip(grads(model), ref, strict=True))
    assert diff > 1e-6


@pytest.mark.parametrize("kwargs,err,match", [
    ({"micro_batch_size": 0}, ValueError, "micro_batch_size must be >= 1"),
    ({"columns": []}, ValueError, "at least one column"),
    ({"columns": "abc"}, TypeError, "columns must be a tensor"),
    ({"columns": [np.ones((4, 3))]}, TypeError, r"columns\[0\] must be a tensor"),
    ({"columns": [torch.ones(0, 3)]}, ValueError, "has no rows"),
    ({"columns": [torch.tensor(1.0)]}, ValueError, "batch axis"),
    ({"columns": [{"a": torch.ones(4, 3), "b": torch.ones(3)}]}, ValueError, "common batch size"),
    ({"encoder": lambda x: x.sum(1)}, ValueError, "encoder must return a 2-D"),
    ({"cache_fn": lambda t: []}, ValueError, "cache_fn must return 1 caches"),
    ({"cache_fn": lambda t: [torch.ones(2, 2)]}, ValueError, "cache 0 must have shape"),
    ({"loss_fn": lambda h: h.sum(0)}, ValueError, "0-d tensor"),
])
def test_cached_backward_errors(kwargs, err, match) -> None:
    model = MLP()
    args = {"encoder": model, "columns": batch(4, 3), "loss_fn": su, "micro_batch_size": 2}
    args |= kwargs
    with pytest.raises(err, match=match):
        gc.cached_backward_(args.pop("encoder"), args.pop("columns"), args.pop("loss_fn"),
                            args.pop("micro_batch_size"), **args)


# --- naive accumulation and its loss gap -----------------------------------------------------

def test_naive_accumulate_is_exact_for_one_micro_batch_and_weighted_otherwise() -> None:
    x = batch(8, 3, seed=7)
    model = MLP()
    one_graph(model, [x], su, 8)
    ref = grads(model)
    loss = gc.naive_accumulate_(model, x, su, 8)
    for g, r in zip(grads(model), ref, strict=True):
        assert_allclose(g, r, rtol=0, atol=100 * EPS * r.abs().max().item())
    with torch.no_grad():
        h = model(x)
    assert_allclose(loss.item(), su(h).item(), rtol=1e-14)
    loss4 = gc.naive_accumulate_(model, x, su, 4)
    model.zero_grad(set_to_none=True)
    assert_allclose(loss4.item(), (su(h[:4]) + su(h[4:])).item() / 2, rtol=1e-14)
    gap = gc.naive_loss_gap(h @ h.T / 0.5, 4, exclude_self=True)
    assert_allclose(su(h).item() - loss4.item(), gap.item(), rtol=1e-12)


def test_naive_accumulate_errors() -> None:
    with pytest.raises(ValueError, match="same number of rows"):
        gc.naive_accumulate_(MLP(), [batch(4, 3), batch(6, 3)], lambda a, b: a.sum(), 2)
    with pytest.raises(ValueError, match="micro_batch_size must be >= 1"):
        gc.naive_accumulate_(MLP(), batch(4, 3), su, 0)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([(6, 2), (6, 3), (8, 4), (8, 2), (6, 6)]), st.floats(0.2, 3.0),
       st.booleans(), st.integers(0, 10_000))
def test_naive_loss_gap_is_full_minus_micro_batch_losses(nb, tau: float, exclude_self: bool,
                                                         seed: int) -> None:
    n, b = nb
    if exclude_self and b % 2:
        return                                   # pair targets must stay inside a micro-batch
    q, d = batch(n, 3, seed), batch(n, 3, seed + 1)
    t_full = partner_targets(n // 2) if exclude_self else None
    t_micro = partner_targets(b // 2) if exclude_self else None
    full = info_nce_loss(q, d, tau, t_full, exclude_self)
    naive = sum(info_nce_loss(q[a:a + b], d[a:a + b], tau, t_micro, exclude_self)
                for a in range(0, n, b)) / (n // b)
    gap = gc.naive_loss_gap(cosine_logits(q, d, tau), b, exclude_self)
    assert_allclose(gap.item(), (full - naive).item(), rtol=1e-11, atol=1e-13)
    assert gap.item() >= 0
    if b == n:
        assert gap.item() == 0


@pytest.mark.parametrize("logits,b,excl,match", [
    (torch.ones(4, 3), 2, False, "logits must be square"),
    (torch.ones(4, 4), 3, False, "micro_batch_size must divide"),
    (torch.ones(4, 4), 1, True, "micro_batch_size must be >= 2"),
    (torch.full((2, 2), float("nan")), 1, False, "logits must be finite"),
])
def test_naive_loss_gap_errors(logits, b, excl, match) -> None:
    with pytest.raises(ValueError, match=match):
        gc.naive_loss_gap(logits, b, excl)
