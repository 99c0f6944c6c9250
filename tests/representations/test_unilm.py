"""Tests of kexue_notes.representations.unilm: the UniLM mask over every segment layout, its effect
on real
attention layers, the SimBERT batch layout, and every error path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from kexue_notes.contrastive import info_nce_loss, interleave_pairs, partner_targets
from kexue_notes.representations import unilm

torch.set_num_threads(1)


def segments(n_a: int, n_b: int) -> np.ndarray:
    return np.array([0] * n_a + [1] * n_b, dtype=np.int64)


def brute_force_mask(s: np.ndarray) -> np.ndarray:
    """The case definition, one entry at a time."""
    n = len(s)
    m = np.zeros((n, n), dtype=bool)
    for i in range(n):
        for j in range(n):
            if s[j] == 0:
                m[i, j] = True             # everyone sees all of A
            elif s[i] == 1 and j <= i:
                m[i, j] = True             # B sees B causally
    return m


layouts = st.tuples(st.integers(0, 9), st.integers(0, 9)).filter(lambda t: sum(t) >= 1)


# --- the mask -------------------------------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(layouts)
def test_mask_properties_for_every_layout(layout: tuple[int, int]) -> None:
    n_a, n_b = layout
    s = segments(n_a, n_b)
    m = unilm.unilm_mask(s).numpy()
    n = n_a + n_b
    assert m.shape == (n, n) and m.dtype == bool
    a, b = slice(0, n_a), slice(n_a, n)
    assert m[a, a].all(), "A attends to all of A"
    assert not m[a, b].any(), "A attends to none of B"
    assert m[b, a].all(), "B attends to all of A"
    assert_array_equal(m[b, b], np.tril(np.ones((n_b, n_b), dtype=bool)))  # B causal in B
    assert m.diagonal().all(), "every token sees itself"
    # equals the brute-force loops and the lower-triangular construction [j <= i] or [s_j = 0]
    assert_array_equal(m, brute_force_mask(s))
    assert_array_equal(m, np.tril(np.ones((n, n), dtype=bool)) | (s == 0)[None, :])
    # transitive: what a visible token sees is visible too, so the property survives stacking layers
    mi = m.astype(np.int64)
    assert not ((mi @ mi > 0) & ~m).any()


@settings(max_examples=30, deadline=None)
@given(st.lists(layouts, min_size=1, max_size=4), st.integers(1, 8))
def test_mask_batches_row_by_row(rows: list[tuple[int, int]], extra: int) -> None:
    n = max(sum(r) for r in rows) + extra
    # pad each row's layout to length n by lengthening its B part, then batch
    s = np.stack([segments(n_a, n - n_a) for n_a, _ in rows])
    batched = unilm.unilm_mask(torch.as_tensor(s)).numpy()
    assert batched.shape == (len(rows), n, n)
    for k in range(len(rows)):
        assert_array_equal(batched[k], brute_force_mask(s[k]))


def test_special_layouts_are_bert_and_a_causal_lm() -> None:
    n = 6
    assert unilm.unilm_mask(np.zeros(n, dtype=int)).all()                   # bidirectional
    assert_array_equal(unilm.unilm_mask([1] * n).numpy(), np.tril(np.ones((n, n), dtype=bool)))
    assert_array_equal(unilm.unilm_mask([True, True, False][::-1]).numpy(),
                       brute_force_mask(np.array([0, 1, 1])))


def test_mask_of_the_post_example() -> None:
    # [CLS] 4 source tokens [SEP] | 3 target tokens [SEP]: 6 + 4 tokens
    m = unilm.unilm_mask(segments(6, 4)).int().numpy()
    assert m.sum() == 6 * 6 + 4 * 6 + (4 * 5) // 2
    assert_array_equal(m[5], [1] * 6 + [0] * 4)
    assert_array_equal(m[7], [1] * 6 + [1, 1, 0, 0])


@settings(max_examples=30, deadline=None)
@given(layouts)
def test_bias_is_zero_or_minus_infinity(layout: tuple[int, int]) -> None:
    s = segments(*layout)
    bias = unilm.unilm_attention_bias(s)
    m = unilm.unilm_mask(s)
    assert bias.dtype == torch.float64
    assert bool((bias[m] == 0).all()) and bool(torch.isneginf(bias[~m]).all())
    # the masked softmax renormalises over the allowed keys
    z = torch.randn(bias.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    p = torch.softmax(z + bias, dim=-1)
    want = m * torch.exp(z) / (m * torch.exp(z)).sum(-1, keepdim=True)
    torch.testing.assert_close(p, want, rtol=1e-13, atol=0)
    assert unilm.unilm_attention_bias(s, torch.float32).dtype == torch.float32


# --- the mask in real attention layers ------------------------------------------------------------

def encoder(n_layers: int, seed: int = 0) -> torch.nn.TransformerEncoder:
    torch.manual_seed(seed)
    layer = torch.nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0,
                                             batch_first=True)
    return torch.nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False).double().eval()


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5), st.integers(2, 6), st.data())
def test_mask_makes_attention_causal_in_b(n_a: int, n_b: int, data: st.DataObject) -> None:
    n = n_a + n_b
    k = data.draw(st.integers(n_a, n - 1), label="perturbed B position")
    g = torch.Generator().manual_seed(k)
    x = torch.randn(1, n, 8, dtype=torch.float64, generator=g)
    x2 = x.clone()
    x2[0, k] += torch.randn(8, dtype=torch.float64, generator=g)
    bias = unilm.unilm_attention_bias(segments(n_a, n_b))
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True).double().eval()
    net = encoder(2)
    with torch.no_grad():
        for f in (lambda u, m: mha(u, u, u, attn_mask=m, need_weights=False)[0],
                  lambda u, m: net(u, mask=m)):
            y, y2 = f(x, bias), f(x2, bias)
            # outputs before the perturbed token (all of A, and B up to k-1) do not move
            torch.testing.assert_close(y[0, :k], y2[0, :k], rtol=0, atol=1e-13)
            assert (y[0, k:] - y2[0, k:]).abs().max() > 1e-6
            # without the mask the same change leaks backwards: the check can fail
            u, u2 = f(x, None), f(x2, None)
            assert (u[0, :k] - u2[0, :k]).abs().max() > 1e-6


def test_a_outputs_equal_the_encoding_of_a_alone() -> None:
    n_a, n_b = 4, 3
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, n_a + n_b, 8, dtype=torch.float64, generator=g)
    net = encoder(3)
    with torch.no_grad():
        y = net(x, mask=unilm.unilm_attention_bias(segments(n_a, n_b)))
        alone = net(x[:, :n_a])
    torch.testing.assert_close(y[:, :n_a], alone, rtol=0, atol=1e-13)


def loop_loss(h: np.ndarray, t: np.ndarray, scale: float) -> float:
    """The SimBERT similarity loss with explicit loops."""
    n = len(h)
    u = [row / math.sqrt(sum(v * v for v in row)) for row in h]
    total = 0.0
    for i in range(n):
        den = math.fsum(math.exp(scale * float(np.dot(u[i], u[j]))) for j in range(n) if j != i)
        total += -(scale * float(np.dot(u[i], u[t[i]])) - math.log(den))
    return total / n


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 5), st.integers(2, 6), st.integers(0, 2**16))
def test_shared_info_nce_with_partners_is_the_simbert_loss(n_pairs: int, d: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    a, b = (torch.randn(n_pairs, d, dtype=torch.float64, generator=g) for _ in range(2))
    h = interleave_pairs(a, b)
    t = partner_targets(n_pairs)
    got = info_nce_loss(h, h, 1 / 30, targets=t, exclude_self=True)
    # logits up to 30 carry round-off ~ 30 eps each, so an absolute floor near 1e-12 is needed
    # where the loss itself is tiny (a well-separated batch)
    assert_allclose(float(got), loop_loss(h.numpy(), t.numpy(), 30.0), rtol=1e-12, atol=1e-12)


def test_equal_cosines_give_log_of_batch_minus_one() -> None:
    # all cosines equal (a regular simplex would do; here identical rows): loss = log(2B - 1)
    for n_pairs in (2, 3, 8):
        h = torch.ones(2 * n_pairs, 4, dtype=torch.float64)
        t = partner_targets(n_pairs)
        loss = info_nce_loss(h, h, 1 / 30, targets=t, exclude_self=True)
        assert_allclose(float(loss), math.log(2 * n_pairs - 1), rtol=1e-14)


# --- error paths ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("bad", "err", "match"), [
    ([0.0, 1.0], TypeError, "segment_ids must hold integers"),
    (torch.tensor([0.0, 1.0]), TypeError, "segment_ids must hold integers"),
    ("0011", TypeError, "segment_ids must be an array"),
    (None, TypeError, "segment_ids must be an array"),
    (np.int64(0), ValueError, r"segment_ids must have shape \(..., L\)"),
    (np.zeros((2, 0), dtype=int), ValueError, r"segment_ids must have shape \(..., L\)"),
    ([0, 2, 2], ValueError, "segment_ids must hold only 0"),
    ([0, -1], ValueError, "segment_ids must hold only 0"),
    ([0, 1, 0], ValueError, "segment_ids must be non-decreasing"),
    ([[0, 1], [1, 0]], ValueError, "segment_ids must be non-decreasing"),
])
def test_mask_rejects_bad_segment_ids(bad: object, err: type, match: str) -> None:
    with pytest.raises(err, match=match):
        unilm.unilm_mask(bad)
    with pytest.raises(err, match=match):
        unilm.unilm_attention_bias(bad)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, "float64", np.float64])
def test_bias_rejects_non_float_dtype(dtype: object) -> None:
    with pytest.raises(TypeError, match="dtype must be a floating torch dtype"):
        unilm.unilm_attention_bias([0, 1], dtype)
