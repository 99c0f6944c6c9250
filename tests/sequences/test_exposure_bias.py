"""Tests for kexue_notes.sequences.exposure_bias: margins, table models, beam search, the toy
region,
random replacement."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp
from torch.testing import assert_close

from kexue_notes.sequences import exposure_bias as eb

F64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- cross-entropy as a soft max-margin ----------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 9), st.floats(0.01, 30.0))
def test_logsumexp_gap_and_margin_bounds(seed: int, n: int, scale: float) -> None:
    g = gen(seed)
    x = scale * torch.randn(7, n, generator=g, dtype=F64)
    t = torch.randint(0, n, (7,), generator=g)
    gap = eb.logsumexp_gap(x)
    assert_close(gap, torch.as_tensor(logsumexp(x.numpy(), axis=-1) - x.numpy().max(-1)),
                 rtol=1e-12, atol=1e-12)
    assert bool((gap >= -1e-12).all() and (gap <= math.log(n) + 1e-12).all())
    ce = torch.nn.functional.cross_entropy(x, t, reduction="none")
    lo, up = eb.cross_entropy_margin_bounds(eb.target_margin(x, t), n)
    assert bool((lo <= ce + 1e-10).all() and (ce <= up + 1e-10).all())


def test_margin_by_brute_force_and_bounds_attained() -> None:
    x = torch.tensor([[1.0, 3.0, 2.0], [5.0, 1.0, 4.5]], dtype=F64)
    t = torch.tensor([1, 0])
    assert_close(eb.target_margin(x, t), torch.tensor([1.0, 0.5], dtype=F64))
    assert_close(eb.target_margin(x, torch.tensor([0, 1])), torch.tensor([-2.0, -4.0], dtype=F64))
    equal = torch.zeros(1, 4, dtype=F64)
    assert_close(eb.logsumexp_gap(equal), torch.tensor([math.log(4)], dtype=F64))
    tied = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=F64)
    ce = torch.nn.functional.cross_entropy(tied, torch.tensor([0]), reduction="none")
    lo, up = eb.cross_entropy_margin_bounds(eb.target_margin(tied, torch.tensor([0])), 4)
    assert_close(up, ce, rtol=1e-14, atol=0)
    assert bool((lo < ce).all())
    big = torch.tensor([-800.0, 0.0, 800.0], dtype=F64)       # stable at extreme margins
    lo, up = eb.cross_entropy_margin_bounds(big, 5)
    assert bool(torch.isfinite(lo).all() and torch.isfinite(up).all())
    assert_close(lo[0], torch.tensor(800.0, dtype=F64)) and assert_close(up[2], lo[2])


def test_margin_errors() -> None:
    x = torch.zeros(2, 3, dtype=F64)
    with pytest.raises(ValueError, match="logits must have at least one axis"):
        eb.logsumexp_gap(torch.tensor(1.0))
    with pytest.raises(ValueError, match="logits must be finite"):
        eb.logsumexp_gap(torch.tensor([0.0, float("nan")]))
    with pytest.raises(TypeError, match="target must be an integer tensor"):
        eb.target_margin(x, torch.zeros(2))
    with pytest.raises(ValueError, match="target must have shape"):
        eb.target_margin(x, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="target must hold class indices"):
        eb.target_margin(x, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="logits must have a last axis of at least 2"):
        eb.target_margin(torch.zeros(2, 1), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="n must be >= 2"):
        eb.cross_entropy_margin_bounds(torch.zeros(2), 1)
    with pytest.raises(TypeError, match="n must be an integer"):
        eb.cross_entropy_margin_bounds(torch.zeros(2), 2.0)
    with pytest.raises(ValueError, match="margin must be finite"):
        eb.cross_entropy_margin_bounds(torch.tensor([float("inf")]), 3)


# --- table models and decoding -------------------------------------------------------------------

def test_random_local_model_shapes_and_determinism() -> None:
    tabs = eb.random_local_model(4, 3, 3, 2.0, gen(1))
    assert [tuple(t.shape) for t in tabs] == [(4, 1, 3), (4, 3, 3), (4, 9, 3)]
    for t in tabs:
        assert_close(t.exp().sum(-1), torch.ones(t.shape[:2], dtype=F64))
    again = eb.random_local_model(4, 3, 3, 2.0, gen(1))
    assert all(torch.equal(a, b) for a, b in zip(tabs, again, strict=True))


def test_post_example() -> None:
    toy = eb.two_step_model(0.6, 0.55, 0.9)
    _, _, joint = eb.brute_force_tables(toy)
    assert_close(joint.exp(), torch.tensor([[0.33, 0.27, 0.04, 0.36]], dtype=F64), rtol=1e-14,
                 atol=1e-15)
    assert eb.greedy_tables(toy)[0].tolist() == [[0, 0]]
    assert eb.beam_search_tables(toy, 2)[0][:, 0].tolist() == [[1, 1]]
    assert bool(eb.beam2_beats_greedy_region(0.6, 0.55, 0.9))
    assert not bool(eb.beam2_beats_greedy_region(0.6, 0.55, 0.8))     # below w* = 0.825


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 4), st.integers(1, 4), st.floats(0.3, 5.0))
def test_full_beam_is_brute_force_and_beam_one_is_greedy(seed: int, V: int, L: int,
                                                         scale: float) -> None:
    tabs = eb.random_local_model(6, V, L, scale, gen(seed))
    best, best_lp, joint = eb.brute_force_tables(tabs)
    # brute force against a plain loop over all sequences
    for b in range(2):
        for code, seq in enumerate(itertools.product(range(V), repeat=L)):
            lp = sum(float(tabs[t][b, int(np.ravel_multi_index(seq[:t], (V,) * t)) if t else 0,
                                   seq[t]]) for t in range(L))
            assert math.isclose(float(joint[b, code]), lp, rel_tol=1e-12, abs_tol=1e-12)
    seqs, scores = eb.beam_search_tables(tabs, V ** max(L - 1, 0))
    assert torch.equal(seqs[:, 0], best)
    assert_close(scores[:, 0], best_lp, rtol=0, atol=1e-12)
    assert_close(eb.table_logprob(tabs, seqs), scores, rtol=0, atol=1e-12)
    assert bool((scores[:, :-1] >= scores[:, 1:]).all())                 # sorted
    g_seq, g_lp = eb.greedy_tables(tabs)
    b1, s1 = eb.beam_search_tables(tabs, 1)
    assert torch.equal(b1[:, 0], g_seq) and torch.equal(s1[:, 0], g_lp)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6))
def test_target_above_half_is_returned_by_every_beam(seed: int, beam: int) -> None:
    """Eq. (eb-half): if the greedy sequence has probability > 1/2, every beam returns it."""
    tabs = eb.random_local_model(300, 3, 3, 4.0, gen(seed))
    g_seq, g_lp = eb.greedy_tables(tabs)
    best, _, _ = eb.brute_force_tables(tabs)
    safe = g_lp.exp() > 0.5
    seqs, _ = eb.beam_search_tables(tabs, beam)
    assert bool((seqs[safe, 0] == g_seq[safe]).all() and (best[safe] == g_seq[safe]).all())


def test_beam_search_with_eos() -> None:
    """A 3-token model (0 = end) with a known best sequence; finished hypotheses keep their
    score."""
    # first token: p = (0.4 end, 0.35 'x', 0.25 'y'); after 'x': (0.9 end, ...); after 'y': (0.5
    # end..)
    first = torch.log(torch.tensor([[0.4, 0.35, 0.25]], dtype=F64))
    nxt = {1: torch.tensor([0.9, 0.05, 0.05], dtype=F64), 2: torch.tensor([0.5, 0.25, 0.25],
                                                                          dtype=F64)}

    def step(state, tok, t):
        rows = [[nxt.get(int(c), torch.tensor([1 / 3] * 3, dtype=F64)) for c in r] for r in tok]
        return torch.stack([torch.stack(r) for r in rows]).log(), state

    seqs, scores, done = eb.beam_search(step, first, torch.zeros(1, 2), 3, 4, eos=0)
    # candidates: (end) 0.4, (x, end) 0.315, (y, end) 0.125
    assert seqs[0, 0].tolist()[:1] == [0] and bool(done[0, 0])
    assert_close(scores[0, :2].exp(), torch.tensor([0.4, 0.315], dtype=F64), rtol=1e-12, atol=0)
    assert seqs[0, 1].tolist()[:2] == [1, 0]
    seqs1, _, done1 = eb.beam_search(step, first, torch.zeros(1, 2), 1, 4, eos=0)
    assert seqs1.shape == (1, 1, 1) and bool(done1.all())               # stops early
    # a tuple state is carried along and reordered
    state = (torch.arange(1.0)[:, None], torch.zeros(1, 3))
    out = eb.beam_search(lambda s, tk, t: (step(s, tk, t)[0], s), first, state, 2, 3, eos=0)
    assert out[0].shape[:2] == (1, 2)


def test_table_and_beam_errors() -> None:
    tabs = eb.random_local_model(2, 3, 2, 1.0, gen(0))
    with pytest.raises(ValueError, match="tables must be a non-empty list"):
        eb.greedy_tables([])
    with pytest.raises(ValueError, match=r"tables\[1\] must have shape"):
        eb.greedy_tables([tabs[0], tabs[1][:, :2]])
    with pytest.raises(ValueError, match=r"tables\[0\] must be log-probabilities that sum to 1"):
        eb.brute_force_tables([tabs[0] + 1.0, tabs[1]])
    with pytest.raises(ValueError, match=r"tables\[0\] must have shape \(B, 1, V\)"):
        eb.beam_search_tables([tabs[1]], 2)
    with pytest.raises(TypeError, match="seqs must be an integer tensor"):
        eb.table_logprob(tabs, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="seqs must have shape"):
        eb.table_logprob(tabs, torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="seqs must hold tokens"):
        eb.table_logprob(tabs, torch.full((2, 2), 3))
    with pytest.raises(TypeError, match="beam must be an integer"):
        eb.beam_search_tables(tabs, 2.0)
    with pytest.raises(ValueError, match="beam must be >= 1"):
        eb.beam_search_tables(tabs, 0)
    step = lambda s, tk, t: (torch.zeros(2, tk.shape[1], 3), s)  # noqa: E731
    with pytest.raises(ValueError, match="first_logp must be a 2-D tensor"):
        eb.beam_search(step, torch.zeros(3), torch.zeros(2), 2, 2)
    with pytest.raises(ValueError, match="first_logp must not hold NaN"):
        eb.beam_search(step, torch.full((2, 3), float("nan")), torch.zeros(2), 2, 2)
    with pytest.raises(ValueError, match="eos must be a token"):
        eb.beam_search(step, torch.zeros(2, 3), torch.zeros(2), 2, 2, eos=3)
    with pytest.raises(ValueError, match="max_len must be >= 1"):
        eb.beam_search(step, torch.zeros(2, 3), torch.zeros(2), 2, 0)
    bad = lambda s, tk, t: (torch.zeros(2, 5), s)  # noqa: E731
    with pytest.raises(ValueError, match="step_fn must return log-probabilities of shape"):
        eb.beam_search(bad, torch.zeros(2, 3), torch.zeros(2), 2, 2)
    with pytest.raises(ValueError, match="n_models must be >= 1"):
        eb.random_local_model(0, 3, 2, 1.0, gen())
    with pytest.raises(ValueError, match="vocab must be >= 2"):
        eb.random_local_model(1, 1, 2, 1.0, gen())
    with pytest.raises(ValueError, match="scale must be finite and > 0"):
        eb.random_local_model(1, 3, 2, 0.0, gen())
    with pytest.raises(ValueError, match=r"vocab\*\*length must be <= 1e6"):
        eb.random_local_model(1, 10, 7, 1.0, gen())
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator"):
        eb.random_local_model(1, 3, 2, 1.0, 0)


# --- the toy region ------------------------------------------------------------------------------

def test_region_matches_search_on_a_grid() -> None:
    grid = torch.linspace(0.013, 0.987, 30, dtype=F64)          # avoids the ties at 1/2
    u, v, w = (x.reshape(-1) for x in torch.meshgrid(grid, grid, grid, indexing="ij"))
    toy = eb.two_step_model(u, v, w)
    greedy_ok = (eb.greedy_tables(toy)[0] == 0).all(-1)
    beam_ok = (eb.beam_search_tables(toy, 2)[0][:, 0] == 0).all(-1)
    assert torch.equal(greedy_ok & ~beam_ok, eb.beam2_beats_greedy_region(u, v, w))
    assert bool((greedy_ok & ~beam_ok).any())


def test_region_volume_by_monte_carlo() -> None:
    g = gen(3)
    U = torch.rand(3, 400_000, generator=g, dtype=F64)
    p = eb.beam2_beats_greedy_region(U[0], U[1], U[2]).double().mean().item()
    exact = 2 * ((7 * math.log(2) - 3 * math.log(3)) / 8 - 3 / 16)
    assert abs(p - exact) < 4 * math.sqrt(exact * (1 - exact) / U.shape[1])


def test_region_errors() -> None:
    with pytest.raises(ValueError, match="p_a must lie in \\(0, 1\\)"):
        eb.two_step_model(1.0, 0.5, 0.5)
    with pytest.raises(ValueError, match="p_d_given_c must lie in \\(0, 1\\)"):
        eb.two_step_model(0.5, 0.5, -0.1)
    with pytest.raises(ValueError, match="must have one shape"):
        eb.two_step_model(torch.tensor([0.5, 0.6]), 0.5, 0.5)
    with pytest.raises(ValueError, match="p_b_given_a must lie in \\[0, 1\\]"):
        eb.beam2_beats_greedy_region(0.5, 1.5, 0.5)
    with pytest.raises(ValueError, match="p_a must be finite"):
        eb.beam2_beats_greedy_region(float("nan"), 0.5, 0.5)


# --- random replacement --------------------------------------------------------------------------

def replacement_data(seed: int = 0, N: int = 400, T: int = 9):
    g = gen(seed)
    tokens = torch.randint(1, 50, (N, T), generator=g)
    lengths = torch.randint(3, T + 1, (N,), generator=g)
    j = torch.arange(T)[None]
    mask = (j >= 2) & (j < lengths[:, None])
    return tokens, mask


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_replacement_changes_only_masked_positions_with_pool_tokens(seed: int, p_apply: float,
                                                                    rate: float) -> None:
    tokens, mask = replacement_data(seed)
    out = eb.random_replace(tokens, mask, gen(seed + 1), p_apply=p_apply, rate=rate)
    assert torch.equal(out[~mask], tokens[~mask])
    for i in range(tokens.shape[0]):
        pool = set(tokens[i, mask[i]].tolist())
        assert set(out[i, mask[i]].tolist()) <= pool
    assert torch.equal(tokens, replacement_data(seed)[0])                  # input untouched


def test_replacement_rates_and_pools() -> None:
    tokens, mask = replacement_data(1, N=20_000)
    assert torch.equal(eb.random_replace(tokens, mask, gen(), p_apply=0.0), tokens)
    assert torch.equal(eb.random_replace(tokens, mask, gen(), rate=0.0), tokens)
    # the post's 50 % x 30 %: the share of masked positions that drew a new position
    g = gen(2)
    tagged = torch.arange(tokens.numel()).reshape(tokens.shape)            # all tokens distinct
    out = eb.random_replace(tagged, mask, g)
    changed = (out != tagged)[mask].double().mean().item()
    # a draw can land on its own position: expected share 0.15 * (1 - E[1/pool size])
    expect = 0.15 * (1 - tokens.shape[0] / mask.sum().item())       # E[1/n] over masked positions
    n = int(mask.sum())
    assert abs(changed - expect) < 4 * math.sqrt(0.15 * 0.85 / n * 10)   # rows correlate: x10
    # the code's pool: the whole row
    full = torch.ones_like(mask)
    out_full = eb.random_replace(tagged, mask, gen(3), pool_mask=full, p_apply=1.0, rate=1.0)
    from_outside = ~torch.isin(out_full[mask], tagged[mask])
    assert bool(from_outside.any())                                        # sources leak in
    # an empty pool leaves its row alone
    empty = mask.clone()
    empty[0] = False
    out_e = eb.random_replace(tagged, mask, gen(4), pool_mask=empty, p_apply=1.0, rate=1.0)
    assert torch.equal(out_e[0], tagged[0])


def test_replacement_errors() -> None:
    tokens, mask = replacement_data()
    with pytest.raises(TypeError, match="tokens must be an integer tensor"):
        eb.random_replace(tokens.double(), mask, gen())
    with pytest.raises(ValueError, match="tokens must be 2-dimensional"):
        eb.random_replace(tokens[0], mask[0], gen())
    with pytest.raises(TypeError, match="replace_mask must be a boolean tensor"):
        eb.random_replace(tokens, mask.long(), gen())
    with pytest.raises(ValueError, match="pool_mask must have shape"):
        eb.random_replace(tokens, mask, gen(), pool_mask=mask[:, :3])
    with pytest.raises(ValueError, match="p_apply must lie in"):
        eb.random_replace(tokens, mask, gen(), p_apply=1.5)
    with pytest.raises(ValueError, match="rate must be finite"):
        eb.random_replace(tokens, mask, gen(), rate=float("nan"))
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator"):
        eb.random_replace(tokens, mask, None)


def test_margin_bounds_are_exact_far_from_zero() -> None:
    """Binary case: both bounds are the cross-entropy itself, also at margins beyond +-20, where
    torch's softplus switches to the identity (an error of e^-20 = 2e-9)."""
    import mpmath

    x = torch.tensor([[0.0, 20.1787], [0.0, -35.0], [0.0, 3.0], [0.0, -700.0]], dtype=F64)
    t = torch.zeros(4, dtype=torch.int64)
    m = eb.target_margin(x, t)
    with mpmath.workdps(50):  # -log p_t = log(1 + e^-m), to 50 digits
        exact = torch.tensor([float(mpmath.log1p(mpmath.exp(-mpmath.mpf(v)))) for v in m.tolist()],
                             dtype=F64)
    lo, up = eb.cross_entropy_margin_bounds(m, 2)
    assert_close(lo, exact, rtol=4e-16, atol=0.0)
    assert_close(up, exact, rtol=4e-16, atol=0.0)
    # softplus's threshold is what this avoids: 1.7e-9 off at m = -20.18
    assert abs(float(torch.nn.functional.softplus(-m[0])) - float(exact[0])) > 1e-9
