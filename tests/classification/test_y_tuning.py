"""Tests of kexue_notes.classification.y_tuning: identities, torch cross-checks, error paths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from kexue_notes.classification import y_tuning as yt

torch.set_num_threads(1)
F64 = torch.float64
EPS = float(np.finfo(np.float64).eps)


def scores_and_target(seed: int, n: int = 40, c: int = 4, scale: float = 3.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(n, c, generator=g, dtype=F64),
            torch.randint(0, c, (n,), generator=g))


seeds = st.integers(0, 10_000)
classes = st.integers(2, 7)


# --- losses ---------------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(seeds, classes, st.floats(0.0, 3.0))
def test_sum_hinge_is_torch_multi_margin_times_c(seed: int, c: int, gamma: float) -> None:
    s, y = scores_and_target(seed, c=c)
    ours = yt.margin_loss(s, y, gamma, aggregate="sum", reduction="none")
    assert_close(ours, F.multi_margin_loss(s, y, margin=gamma, reduction="none") * c,
                 rtol=1e-13, atol=1e-13)


@settings(max_examples=40, deadline=None)
@given(seeds, st.floats(0.0, 3.0))
def test_max_and_sum_agree_for_two_labels(seed: int, gamma: float) -> None:
    s, y = scores_and_target(seed, c=2)
    assert_close(yt.margin_loss(s, y, gamma), yt.margin_loss(s, y, gamma, aggregate="sum"),
                 rtol=0, atol=0)
    gap = s.gather(1, y[:, None]).squeeze(1) - s.gather(1, (1 - y)[:, None]).squeeze(1)
    assert_close(yt.margin_loss(s, y, gamma, reduction="none"), torch.relu(gamma - gap),
                 rtol=0, atol=1e-14)


def test_hinge_zero_when_margins_met_and_reductions() -> None:
    s = torch.tensor([[5.0, 0.0, 1.0], [0.0, 0.2, 0.1]], dtype=F64)
    y = torch.tensor([0, 1])
    per = yt.margin_loss(s, y, 1.0, reduction="none")
    assert_close(per, torch.tensor([0.0, 0.9], dtype=F64), rtol=0, atol=1e-15)
    assert_close(yt.margin_loss(s, y, 1.0, reduction="sum"), per.sum(), rtol=0, atol=0)
    assert_close(yt.margin_loss(s, y, 1.0), per.mean(), rtol=0, atol=0)
    assert_close(yt.margin_loss(s, y, 1.0, aggregate="sum", reduction="none"),
                 torch.tensor([0.0, 1.7], dtype=F64), rtol=0, atol=1e-15)


@settings(max_examples=30, deadline=None)
@given(seeds, classes, st.sampled_from(["max", "sum"]))
def test_hinge_grad_matches_autograd(seed: int, c: int, aggregate: str) -> None:
    s, y = scores_and_target(seed, c=c)
    s = s.requires_grad_(True)
    (g,) = torch.autograd.grad(yt.margin_loss(s, y, 1.0, aggregate=aggregate, reduction="sum"), s)
    closed = yt.margin_loss_grad(s, y, 1.0, aggregate=aggregate)
    assert_close(closed, g, rtol=0, atol=0)
    assert_close(closed.sum(1), torch.zeros(len(y), dtype=F64), rtol=0, atol=0)


@settings(max_examples=40, deadline=None)
@given(seeds, classes, st.floats(0.0, 2.0), st.floats(1e-3, 5.0))
def test_smooth_is_tau_times_cross_entropy_of_shifted_scores(seed: int, c: int, gamma: float,
                                                             tau: float) -> None:
    s, y = scores_and_target(seed, c=c)
    shifted = s + gamma * (1 - F.one_hot(y, c).to(F64))
    want = tau * F.cross_entropy(shifted / tau, y, reduction="none")
    got = yt.smooth_margin_loss(s, y, gamma, tau, reduction="none")
    assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_smooth_plain_cross_entropy() -> None:
    s, y = scores_and_target(3, c=5)
    assert_close(yt.smooth_margin_loss(s, y, 0.0, 1.0), F.cross_entropy(s, y), rtol=1e-14,
                 atol=1e-14)


@settings(max_examples=40, deadline=None)
@given(seeds, classes, st.floats(1e-4, 3.0))
def test_smooth_gap_bound(seed: int, c: int, tau: float) -> None:
    s, y = scores_and_target(seed, c=c)
    gap = yt.smooth_margin_loss(s, y, 1.0, tau, reduction="none") - yt.margin_loss(
        s, y, 1.0, reduction="none")
    slack = 64 * EPS * (1 + float(s.abs().max()))
    assert float(gap.min()) >= -slack
    assert float(gap.max()) <= tau * math.log(c) + slack


@settings(max_examples=20, deadline=None)
@given(classes, st.floats(1e-3, 3.0))
def test_gap_attained_at_zero_margins(c: int, tau: float) -> None:
    s = torch.full((1, c), -1.0, dtype=F64)
    s[0, 0] = 0.0                                    # every margin 1 + (-1) - 0 = 0
    y = torch.tensor([0])
    gap = yt.smooth_margin_loss(s, y, 1.0, tau) - yt.margin_loss(s, y, 1.0)
    assert math.isclose(float(gap), tau * math.log(c), rel_tol=1e-12)
    assert math.isclose(yt.tau_for_tolerance(float(gap), c), tau, rel_tol=1e-12)


def test_smooth_tends_to_hinge() -> None:
    s, y = scores_and_target(5, c=4)
    gaps = [float((yt.smooth_margin_loss(s, y, 1.0, t) - yt.margin_loss(s, y, 1.0)).abs())
            for t in (1e-1, 1e-2, 1e-3)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-3 * math.log(4)


@settings(max_examples=30, deadline=None)
@given(seeds, classes, st.floats(0.0, 2.0), st.floats(1e-2, 3.0))
def test_smooth_grad_matches_autograd_and_never_vanishes(seed: int, c: int, gamma: float,
                                                        tau: float) -> None:
    s, y = scores_and_target(seed, c=c, scale=1.0)
    s = s.requires_grad_(True)
    (g,) = torch.autograd.grad(yt.smooth_margin_loss(s, y, gamma, tau, reduction="sum"), s)
    closed = yt.smooth_margin_grad(s, y, gamma, tau)
    assert_close(closed, g, rtol=1e-10, atol=1e-12)
    assert_close(closed.sum(1), torch.zeros(len(y), dtype=F64), rtol=0, atol=1e-14)
    if tau >= 0.5:                     # exponents |a / tau| < 30: no underflow to exactly zero
        assert bool((closed.abs() > 0).all())


@settings(max_examples=30, deadline=None)
@given(seeds, classes, st.floats(0.05, 3.0), st.floats(0.1, 10.0))
def test_scaling_the_scores_divides_the_temperature(seed: int, c: int, tau: float,
                                                    lam: float) -> None:
    """With gamma = 0: l_tau(lam * s) = lam * l_{tau / lam}(s), as the Discussion states."""
    s, y = scores_and_target(seed, c=c, scale=1.0)
    assert_close(yt.smooth_margin_loss(lam * s, y, 0.0, tau, reduction="none"),
                 lam * yt.smooth_margin_loss(s, y, 0.0, tau / lam, reduction="none"),
                 rtol=1e-12, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(seeds, classes, st.floats(0.0, 2.0), st.sampled_from(["max", "sum"]))
def test_hinge_grad_is_zero_exactly_where_every_margin_is_met(seed: int, c: int, gamma: float,
                                                              aggregate: str) -> None:
    s, y = scores_and_target(seed, c=c)
    other = s.masked_fill(F.one_hot(y, c).bool(), float("-inf")).amax(1)
    met = s.gather(1, y[:, None]).squeeze(1) - other > gamma        # strict: no example on a kink
    g = yt.margin_loss_grad(s, y, gamma, aggregate=aggregate)
    assert bool((g[met] == 0).all())
    assert bool((g[~met].abs().amax(1) > 0).all())
    per = yt.margin_loss(s, y, gamma, aggregate=aggregate, reduction="none")
    assert bool((per[met] == 0).all()) and bool((per[~met] > 0).all())


def test_smooth_grad_tends_to_hinge_grad() -> None:
    s, y = scores_and_target(11, c=3)
    hinge = yt.margin_loss_grad(s, y, 1.0)
    assert_close(yt.smooth_margin_grad(s, y, 1.0, 1e-4), hinge, rtol=0, atol=1e-3)


def test_loss_errors() -> None:
    s, y = scores_and_target(0)
    with pytest.raises(ValueError, match="scores must be 2-dimensional"):
        yt.margin_loss(s[0], y)
    with pytest.raises(ValueError, match="scores must have at least 2 columns"):
        yt.margin_loss(s[:, :1], torch.zeros(len(y), dtype=torch.long))
    with pytest.raises(ValueError, match="scores must be finite"):
        yt.margin_loss(torch.full_like(s, float("nan")), y)
    with pytest.raises(TypeError, match="target must hold integer"):
        yt.margin_loss(s, y.to(F64))
    with pytest.raises(ValueError, match="target must have shape"):
        yt.margin_loss(s, y[:-1])
    with pytest.raises(ValueError, match="target must hold class labels in"):
        yt.margin_loss(s, y + 10)
    with pytest.raises(ValueError, match="gamma must be"):
        yt.margin_loss(s, y, -1.0)
    with pytest.raises(TypeError, match="gamma must be a real number"):
        yt.smooth_margin_loss(s, y, "1")
    with pytest.raises(ValueError, match="aggregate must be one of"):
        yt.margin_loss(s, y, aggregate="mean")
    with pytest.raises(ValueError, match="aggregate must be one of"):
        yt.margin_loss_grad(s, y, aggregate="avg")
    with pytest.raises(ValueError, match="reduction must be one of"):
        yt.smooth_margin_loss(s, y, reduction="max")
    with pytest.raises(ValueError, match="tau must be"):
        yt.smooth_margin_loss(s, y, 1.0, 0.0)
    with pytest.raises(ValueError, match="tau must be"):
        yt.smooth_margin_grad(s, y, 1.0, -1.0)
    with pytest.raises(ValueError, match="delta must be"):
        yt.tau_for_tolerance(0.0, 3)
    with pytest.raises(ValueError, match="n_classes must be >= 2"):
        yt.tau_for_tolerance(0.1, 1)
    with pytest.raises(TypeError, match="n_classes must be an integer"):
        yt.tau_for_tolerance(0.1, 2.0)


def test_triplet_loss_is_hinge_on_distance_scores() -> None:
    g = torch.Generator().manual_seed(2)
    z = torch.randn(50, 6, generator=g, dtype=F64)
    e = torch.randn(2, 6, generator=g, dtype=F64)
    y = torch.randint(0, 2, (50,), generator=g)
    ours = yt.margin_loss(-torch.cdist(z, e), y, 0.5, reduction="none")
    theirs = F.triplet_margin_loss(z, e[y], e[1 - y], margin=0.5, reduction="none")
    assert_close(ours, theirs, rtol=0, atol=1e-5)


# --- the head -------------------------------------------------------------------------------------

def padded_feats(seed: int, n: int = 6, t: int = 9, f: int = 10):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(n, t, f, generator=g, dtype=F64)
    lengths = torch.randint(1, t + 1, (n,), generator=g)
    mask = torch.arange(t)[None] < lengths[:, None]
    return feats, mask


@pytest.mark.parametrize("n_heads", [1, 2, 4])
def test_head_matches_torch_multihead_attention(n_heads: int) -> None:
    feats, mask = padded_feats(0)
    head = yt.LabelAttentionHead(10, 3, 8, n_heads, n_runs=2, dtype=F64,
                                 generator=torch.Generator().manual_seed(1))
    with torch.no_grad():                 # nonzero biases, so that they are checked too
        head.in_proj_bias.normal_(generator=torch.Generator().manual_seed(2))
        head.out_proj_bias.normal_(generator=torch.Generator().manual_seed(3))
    ours = head(feats, mask)
    assert ours.shape == (2, 6, 3)
    for r in range(2):
        mha = head.to_multihead_attention(r)
        q = head.label_embedding[r].expand(6, -1, -1)
        o, _ = mha(q, feats, feats, key_padding_mask=~mask, need_weights=False)
        assert_close(ours[r], (o * head.label_embedding[r]).sum(-1), rtol=1e-12, atol=1e-12)
    alpha = head.attention(feats, mask)
    assert alpha.shape == (6, 2, 3, n_heads, 9)
    assert_close(alpha.sum(-1), torch.ones(6, 2, 3, n_heads, dtype=F64), rtol=0, atol=1e-14)
    assert bool((alpha.masked_select(~mask[:, None, None, None, :].expand_as(alpha)) == 0).all())


def test_key_bias_cancels() -> None:
    feats, mask = padded_feats(4)
    head = yt.LabelAttentionHead(10, 2, 4, 2, dtype=F64, generator=torch.Generator().manual_seed(0))
    mha = head.to_multihead_attention()
    q = head.label_embedding[0].expand(6, -1, -1)
    o1, _ = mha(q, feats, feats, key_padding_mask=~mask)
    with torch.no_grad():
        assert mha.in_proj_bias is not None
        mha.in_proj_bias[4:8] += 3.0          # the key part
    o2, _ = mha(q, feats, feats, key_padding_mask=~mask)
    assert_close(o1, o2, rtol=1e-12, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(seeds)
def test_head_invariant_to_token_order_and_padding(seed: int) -> None:
    feats, mask = padded_feats(seed)
    head = yt.LabelAttentionHead(10, 2, 4, 2, dtype=F64,
                                 generator=torch.Generator().manual_seed(seed))
    base = head(feats, mask)
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(seed + 1))
    assert_close(head(feats[:, perm], mask[:, perm]), base, rtol=1e-12, atol=1e-12)
    junk = torch.randn(6, 3, 10, generator=torch.Generator().manual_seed(seed + 2), dtype=F64)
    padded = torch.cat([feats, junk], 1)
    pmask = torch.cat([mask, torch.zeros(6, 3, dtype=torch.bool)], 1)
    assert_close(head(padded, pmask), base, rtol=1e-12, atol=1e-12)


def test_one_token_head_is_linear() -> None:
    g = torch.Generator().manual_seed(5)
    x = torch.randn(7, 1, 10, generator=g, dtype=F64)
    head = yt.LabelAttentionHead(10, 3, 6, 3, dtype=F64, generator=g)
    with torch.no_grad():
        head.in_proj_bias.normal_(generator=g)
        head.out_proj_bias.normal_(generator=g)
    d = 6
    e, wv, wo = head.label_embedding[0], head.v_proj_weight[0], head.out_proj_weight[0]
    bv, bo = head.in_proj_bias[0, 2 * d:], head.out_proj_bias[0]
    want = ((x[:, 0] @ wv.T + bv) @ wo.T + bo) @ e.T
    assert_close(head(x, torch.ones(7, 1, dtype=torch.bool))[0], want, rtol=1e-12, atol=1e-12)


def test_runs_are_independent_heads() -> None:
    feats, mask = padded_feats(7)
    many = yt.LabelAttentionHead(10, 2, 4, 2, n_runs=3, dtype=F64,
                                 generator=torch.Generator().manual_seed(8))
    one = yt.LabelAttentionHead(10, 2, 4, 2, dtype=F64)
    with torch.no_grad():
        for (_, p_one), (_, p_many) in zip(one.named_parameters(), many.named_parameters(),
                                           strict=True):
            p_one.copy_(p_many[1:2])
    assert_close(one(feats, mask)[0], many(feats, mask)[1], rtol=1e-13, atol=1e-13)


def test_num_params_closed_form() -> None:
    for f, c, d, h in ((10, 2, 4, 1), (384, 5, 16, 4), (64, 2, 16, 2)):
        head = yt.LabelAttentionHead(f, c, d, h, n_runs=3)
        assert sum(p.numel() for p in head.parameters()) == 3 * yt.label_head_num_params(f, c, d)
        mha = head.to_multihead_attention(2)
        assert sum(p.numel() for p in mha.parameters()) + c * d == yt.label_head_num_params(f, c, d)


def test_num_params_errors() -> None:
    with pytest.raises(ValueError, match="d_feat must be >= 1"):
        yt.label_head_num_params(0, 2, 4)
    with pytest.raises(ValueError, match="n_labels must be >= 2"):
        yt.label_head_num_params(5, 1, 4)
    with pytest.raises(TypeError, match="d_label must be an integer"):
        yt.label_head_num_params(5, 2, 4.0)


def test_head_is_deterministic_given_generator() -> None:
    a = yt.LabelAttentionHead(5, 2, 4, generator=torch.Generator().manual_seed(3))
    b = yt.LabelAttentionHead(5, 2, 4, generator=torch.Generator().manual_seed(3))
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_head_errors() -> None:
    with pytest.raises(ValueError, match="n_heads=3 must divide d_label=4"):
        yt.LabelAttentionHead(5, 2, 4, 3)
    with pytest.raises(ValueError, match="n_labels must be >= 2"):
        yt.LabelAttentionHead(5, 1, 4)
    with pytest.raises(ValueError, match="d_feat must be >= 1"):
        yt.LabelAttentionHead(0, 2, 4)
    with pytest.raises(TypeError, match="d_label must be an integer"):
        yt.LabelAttentionHead(5, 2, 4.0)
    with pytest.raises(ValueError, match="n_runs must be >= 1"):
        yt.LabelAttentionHead(5, 2, 4, n_runs=0)
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator"):
        yt.LabelAttentionHead(5, 2, 4, generator=0)
    head = yt.LabelAttentionHead(10, 2, 4, n_runs=2)
    feats, mask = padded_feats(0)
    with pytest.raises(ValueError, match="feats must have shape"):
        head(feats[..., :5], mask)
    with pytest.raises(ValueError, match="feats must be 3-dimensional"):
        head(feats[0], mask)
    with pytest.raises(TypeError, match="mask must be a boolean tensor"):
        head(feats, mask.to(torch.int64))
    with pytest.raises(ValueError, match="mask must have shape"):
        head(feats, mask[:, :3])
    empty = mask.clone()
    empty[0] = False
    with pytest.raises(ValueError, match="mask must mark at least one token"):
        head(feats, empty)
    bad = feats.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="feats must be finite"):
        head(bad, mask)
    head(feats, mask)
    feats[0, 0, 0] = float("inf")             # changed in place after a checked call: re-checked
    with pytest.raises(ValueError, match="feats must be finite"):
        head(feats, mask)
    with pytest.raises(ValueError, match="run must be < n_runs=2"):
        head.to_multihead_attention(2)
    with pytest.raises(ValueError, match="run must be >= 0"):
        head.to_multihead_attention(-1)


def test_linear_probe_matches_nn_linear() -> None:
    g = torch.Generator().manual_seed(0)
    probe = yt.LinearProbe(6, 3, n_runs=2, generator=g, dtype=F64)
    x = torch.randn(5, 6, generator=g, dtype=F64)
    lin = torch.nn.Linear(6, 3, dtype=F64)
    with torch.no_grad():
        lin.weight.copy_(probe.weight[1])
        lin.bias.copy_(probe.bias[1])
    assert_close(probe(x)[1], lin(x), rtol=1e-14, atol=1e-14)
    with pytest.raises(ValueError, match="x must have shape"):
        probe(torch.zeros(5, 4))
    with pytest.raises(ValueError, match="n_labels must be >= 2"):
        yt.LinearProbe(6, 1)
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator"):
        yt.LinearProbe(6, 2, generator="g")


# --- training -------------------------------------------------------------------------------------

def small_problem(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(30, 5, generator=g, dtype=F64)
    y = (x[:, 0] > 0).long()
    mask = torch.rand(2, 30, generator=g) < 0.6
    return x, y, mask


def test_train_runs_equals_separate_runs() -> None:
    x, y, mask = small_problem()
    both = yt.LinearProbe(5, 2, n_runs=2, dtype=F64, generator=torch.Generator().manual_seed(1))
    init = [p.detach().clone() for p in both.parameters()]
    h = yt.train_runs(both, lambda: both(x), y, mask, ["margin", "ce"], steps=15, lr=0.5)
    for r, loss in enumerate(["margin", "ce"]):
        one = yt.LinearProbe(5, 2, dtype=F64)
        with torch.no_grad():
            for p, p0 in zip(one.parameters(), init, strict=True):
                p.copy_(p0[r:r + 1])
        h1 = yt.train_runs(one, lambda one=one: one(x), y, mask[r:r + 1], [loss], steps=15, lr=0.5)
        assert_close(h1["scores"][0], h["scores"][r], rtol=1e-13, atol=1e-13)
        assert_close(h1["loss"][:, 0], h["loss"][:, r], rtol=1e-13, atol=1e-13)
    assert h["loss"].shape == (16, 2) and h["scores"].shape == (2, 30, 2)


def test_hinge_run_freezes_and_ce_run_does_not() -> None:
    x, y, mask = small_problem(3)
    probe = yt.LinearProbe(5, 2, n_runs=2, dtype=F64, generator=torch.Generator().manual_seed(2))
    h = yt.train_runs(probe, lambda: probe(x), y, mask, ["margin", "ce"], steps=200, lr=2.0)
    zero = torch.nonzero(h["active"][:, 0] == 0)
    assert len(zero) > 0
    t0 = int(zero[0, 0])
    assert bool((h["margin"][t0:, 0] == h["margin"][t0, 0]).all())
    assert bool((h["param_norm"][t0:, 0] == h["param_norm"][t0, 0]).all())
    assert float(h["margin"][-1, 1]) > float(h["margin"][t0, 1])
    assert bool((h["min_ce_grad"][:, 1] > 0).all())


def test_train_runs_errors() -> None:
    x, y, mask = small_problem()
    probe = yt.LinearProbe(5, 2, n_runs=2, dtype=F64)
    kw = dict(steps=2, lr=0.1)
    with pytest.raises(ValueError, match="train_mask must be a boolean tensor"):
        yt.train_runs(probe, lambda: probe(x), y, mask.long(), ["ce", "ce"], **kw)
    with pytest.raises(ValueError, match="every run at least one training example"):
        yt.train_runs(probe, lambda: probe(x), y, torch.zeros_like(mask), ["ce", "ce"], **kw)
    with pytest.raises(ValueError, match="losses must name one loss per run"):
        yt.train_runs(probe, lambda: probe(x), y, mask, ["ce"], **kw)
    with pytest.raises(ValueError, match="losses must be one of"):
        yt.train_runs(probe, lambda: probe(x), y, mask, ["ce", "mse"], **kw)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        yt.train_runs(probe, lambda: probe(x), y, mask, ["ce", "ce"], steps=0, lr=0.1)
    with pytest.raises(ValueError, match="lr must be"):
        yt.train_runs(probe, lambda: probe(x), y, mask, ["ce", "ce"], steps=1, lr=-0.1)
    with pytest.raises(ValueError, match="forward must return scores of shape"):
        yt.train_runs(probe, lambda: probe(x)[0], y, mask, ["ce", "ce"], **kw)
    with pytest.raises(ValueError, match="target must have shape"):
        yt.train_runs(probe, lambda: probe(x), y[:-1], mask, ["ce", "ce"], **kw)
    other = yt.LinearProbe(5, 2, n_runs=3, dtype=F64)
    with pytest.raises(ValueError, match="every parameter of model must have the run dimension"):
        yt.train_runs(other, lambda: other(x)[:2], y, mask, ["ce", "ce"], **kw)


# --- token states ---------------------------------------------------------------------------------

def test_pad_by_length_round_trip() -> None:
    g = torch.Generator().manual_seed(0)
    states = [torch.randn(int(n), 3, generator=g) for n in (5, 2, 7, 1, 4)]
    buckets = yt.pad_by_length(states, 2)
    seen = []
    for idx, feats, mask in buckets:
        for j, i in enumerate(idx):
            assert torch.equal(feats[j][mask[j]], states[i])
            assert int(mask[j].sum()) == states[i].shape[0]
        seen += list(idx)
    assert sorted(seen) == list(range(5))
    with pytest.raises(ValueError, match="states must not be empty"):
        yt.pad_by_length([], 2)
    with pytest.raises(ValueError, match="n_buckets must be >= 1"):
        yt.pad_by_length(states, 0)


def test_pca_tokens() -> None:
    g = torch.Generator().manual_seed(0)
    states = [torch.randn(int(n), 6, generator=g, dtype=F64) @ torch.diag(
        torch.tensor([5.0, 3, 1, 0.5, 0.1, 0.01], dtype=F64)) for n in (8, 5, 9)]
    z, kept = yt.pca_tokens(states, 2)
    assert [s.shape for s in z] == [(8, 2), (5, 2), (9, 2)] and z[0].dtype == torch.float32
    assert 0.5 < kept < 1
    assert math.isclose(float(torch.cat(z).double().pow(2).mean()), 1.0, rel_tol=1e-5)
    _, kept_all = yt.pca_tokens(states, 6)
    assert math.isclose(kept_all, 1.0, rel_tol=1e-12)
    tokens = torch.cat(states)
    sing = torch.linalg.svdvals(tokens - tokens.mean(0))
    assert math.isclose(kept, float(sing[:2].pow(2).sum() / sing.pow(2).sum()), rel_tol=1e-10)
    with pytest.raises(ValueError, match="k must be <="):
        yt.pca_tokens(states, 7)
    with pytest.raises(ValueError, match="states must not be empty"):
        yt.pca_tokens([], 2)


def test_mean_pool() -> None:
    states = [torch.tensor([[3.0, 0.0], [1.0, 0.0]]), torch.tensor([[0.0, 2.0]])]
    assert_close(yt.mean_pool(states), torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=F64))
    assert_close(yt.mean_pool(states, normalize=False),
                 torch.tensor([[2.0, 0.0], [0.0, 2.0]], dtype=F64))
    with pytest.raises(ValueError, match="states must not be empty"):
        yt.mean_pool([])


def test_minilm_token_states_match_sentence_transformers() -> None:
    from kexue_notes.text_data import encode_minilm

    texts = ["a gripping, well acted film .", "dull .", "the plot never quite comes together ,"
             " but the actors make up for it ."]
    tokenizer, model = yt.load_minilm()
    states = yt.minilm_token_states(texts, tokenizer, model, batch_size=2)
    assert [s.shape[1] for s in states] == [384] * 3
    assert [s.shape[0] for s in states] == [len(i) for i in tokenizer(texts)["input_ids"]]
    ours = yt.mean_pool(states).numpy()
    np.testing.assert_allclose(ours, encode_minilm(texts), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="texts must be a non-empty sequence"):
        yt.minilm_token_states([], tokenizer, model)
    with pytest.raises(ValueError, match="texts must be a non-empty sequence"):
        yt.minilm_token_states("one string", tokenizer, model)
    with pytest.raises(TypeError, match="texts must hold only strings"):
        yt.minilm_token_states(["ok", 3], tokenizer, model)
    with pytest.raises(ValueError, match="max_length must be >= 2"):
        yt.minilm_token_states(texts, tokenizer, model, max_length=1)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        yt.minilm_token_states(texts, tokenizer, model, batch_size=0)
