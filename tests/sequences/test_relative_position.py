"""Tests of kexue_notes.sequences.relative_position: closed forms, identities, every error path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from kexue_notes.sequences import relative_position as rp
from kexue_notes.sequences.relative_position import ProbeConfig

torch.set_num_threads(1)
F64 = torch.float64
EPS = torch.finfo(F64).eps


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def constant_qkv(n: int, d: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries, keys and values of n identical tokens: every row the same."""
    q, k, v = (randn(d, seed=seed + i).expand(n, d) for i in range(3))
    return q, k, v


def spread(o: torch.Tensor) -> float:
    """The largest difference between the outputs at two positions."""
    return float((o - o[..., :1, :]).abs().max())


# --- the probe -----------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300))
def test_floor_is_the_variance_of_one_to_n(n: int) -> None:
    t = rp.probe_targets(n)
    assert t.dtype == F64 and t.shape == (n,) and t[0] == 1 and t[-1] == n
    assert math.isclose(rp.probe_mse_floor(n), float(np.var(np.arange(1, n + 1))), rel_tol=1e-12,
                        abs_tol=1e-12)


def test_floor_is_the_least_constant_error() -> None:
    n = 8
    t = rp.probe_targets(n).numpy()
    grid = np.linspace(0, 9, 9001)                       # contains (n + 1)/2 = 4.5
    mse = ((t[None, :] - grid[:, None]) ** 2).mean(1)
    assert math.isclose(mse.min(), rp.probe_mse_floor(n), rel_tol=1e-12)
    assert math.isclose(grid[mse.argmin()], 4.5, abs_tol=1e-9)
    assert rp.probe_mse_floor(8) == 63 / 12


def test_probe_errors() -> None:
    for fn in (rp.probe_targets, rp.probe_mse_floor):
        with pytest.raises(ValueError, match="n must be"):
            fn(0)
        with pytest.raises(TypeError, match="n must be"):
            fn(2.5)


# --- biases and rope -----------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(st.integers(0, 4), st.integers(1, 9), st.integers(0, 1000))
def test_toeplitz_bias_entries(K: int, n: int, seed: int) -> None:
    table = randn(3, 2 * K + 1, seed=seed)
    B = rp.toeplitz_bias(table, n)
    assert B.shape == (3, n, n)
    for i in range(n):
        for j in range(n):
            assert_close(B[:, i, j], table[:, min(max(i - j, -K), K) + K], rtol=0, atol=0)


def test_toeplitz_bias_keeps_the_graph() -> None:
    table = randn(5).requires_grad_(True)
    rp.toeplitz_bias(table, 4).sum().backward()
    # offsets -2..2 of a 4 x 4 matrix, clipped at 2: counts 3, 3, 4, 3, 3
    assert_close(table.grad, torch.tensor([3.0, 3, 4, 3, 3], dtype=F64))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 9), st.integers(0, 1000))
def test_circulant_rows_are_cyclic_shifts(n: int, seed: int) -> None:
    table = randn(2, n, seed=seed)
    B = rp.circulant_bias(table)
    assert B.shape == (2, n, n)
    for i in range(n):
        assert_close(B[:, i], torch.roll(B[:, 0], i, dims=-1), rtol=0, atol=0)
    assert_close(B[:, :, 0], table, rtol=0, atol=0)


def test_bias_errors() -> None:
    with pytest.raises(ValueError, match="table must have an odd"):
        rp.toeplitz_bias(torch.zeros(4), 3)
    with pytest.raises(ValueError, match="table must have an odd"):
        rp.toeplitz_bias(torch.tensor(1.0), 3)
    with pytest.raises(ValueError, match="table must be finite"):
        rp.toeplitz_bias(torch.tensor([0.0, float("nan"), 0.0]), 3)
    with pytest.raises(ValueError, match="n must be"):
        rp.toeplitz_bias(torch.zeros(3), 0)
    with pytest.raises(TypeError, match="n must be"):
        rp.toeplitz_bias(torch.zeros(3), 2.0)
    with pytest.raises(TypeError, match="table must be"):
        rp.toeplitz_bias("abc", 3)
    with pytest.raises(ValueError, match="table must have at least one"):
        rp.circulant_bias(torch.tensor(1.0))
    with pytest.raises(ValueError, match="table must be finite"):
        rp.circulant_bias(torch.tensor([1.0, float("inf")]))


def rope_complex(x: torch.Tensor, base: float = 10000.0, offset: int = 0) -> torch.Tensor:
    """RoPE as complex multiplication: pair (x_2k, x_2k+1) -> (x_2k + i x_2k+1) e^{i m theta_k}."""
    n, d = x.shape[-2:]
    theta = base ** (-torch.arange(0, d, 2, dtype=F64) / d)
    angle = torch.arange(offset, offset + n, dtype=F64)[:, None] * theta
    z = torch.view_as_complex(x.reshape(*x.shape[:-1], d // 2, 2).contiguous())
    return torch.view_as_real(z * torch.polar(torch.ones_like(angle), angle)).flatten(-2)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.sampled_from([2, 4, 8]), st.integers(0, 50), st.integers(0, 1000))
def test_rope_is_the_complex_rotation(n: int, d: int, offset: int, seed: int) -> None:
    x = randn(2, n, d, seed=seed)
    out = rp.rope(x, offset=offset, base=100.0)
    assert_close(out, rope_complex(x, 100.0, offset), rtol=0, atol=64 * EPS * (offset + 1))
    assert_close(out.norm(dim=-1), x.norm(dim=-1), rtol=1e-13, atol=0)      # a rotation


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 40), st.integers(0, 1000))
def test_rope_scores_depend_on_the_offset_only(shift: int, seed: int) -> None:
    q, k = randn(5, 8, seed=seed), randn(5, 8, seed=seed + 1)
    s0 = rp.rope(q) @ rp.rope(k).T
    s1 = rp.rope(q, offset=shift) @ rp.rope(k, offset=shift).T
    assert_close(s0, s1, rtol=0, atol=1e-12 * (1 + shift))
    # identical rows: the score matrix is Toeplitz
    x = randn(8, seed=seed).expand(6, 8)
    s = rp.rope(x) @ rp.rope(x).T
    assert_close(s[1:, 1:], s[:-1, :-1], rtol=0, atol=1e-12)


def test_rope_errors() -> None:
    with pytest.raises(ValueError, match="x must have shape"):
        rp.rope(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="x must have shape"):
        rp.rope(torch.zeros(4))
    with pytest.raises(ValueError, match="x must be finite"):
        rp.rope(torch.full((2, 4), float("nan")))
    with pytest.raises(ValueError, match="base must be"):
        rp.rope(torch.zeros(2, 4), base=0.0)
    with pytest.raises(ValueError, match="offset must be"):
        rp.rope(torch.zeros(2, 4), offset=-1)
    with pytest.raises(TypeError, match="offset must be"):
        rp.rope(torch.zeros(2, 4), offset=1.5)
    with pytest.raises(TypeError, match="base must be"):
        rp.rope(torch.zeros(2, 4), base="1e4")


# --- attention weights ---------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(st.integers(1, 8), st.integers(0, 1000), st.floats(-30, 30))
def test_weights_closed_forms(n: int, seed: int, shift: float) -> None:
    s = 2 * randn(3, n, n, seed=seed)
    soft = rp.attention_weights(s, "softmax")
    assert_close(soft, torch.softmax(s, -1), rtol=1e-14, atol=0)
    assert_close(soft.sum(-1), torch.ones(3, n, dtype=F64), rtol=0, atol=8 * EPS)
    l2 = rp.attention_weights(s, "l2")
    l2_direct = torch.exp(s) / torch.exp(2 * s).sum(-1, keepdim=True).sqrt()
    assert_close(l2, l2_direct, rtol=1e-13, atol=0)
    assert_close(l2.norm(dim=-1), torch.ones(3, n, dtype=F64), rtol=0, atol=8 * EPS)
    r = l2.sum(-1)
    assert bool((r >= 1 - 8 * EPS).all() and (r <= math.sqrt(n) + 8 * EPS).all())
    assert_close(rp.attention_weights(s, "exp"), torch.exp(s) / n, rtol=0, atol=0)
    assert_close(rp.attention_weights(s, "relu2"), torch.relu(s) ** 2 / n, rtol=0, atol=0)
    for norm in ("softmax", "l2"):           # both ignore a constant added to a row
        assert_close(rp.attention_weights(s + shift, norm), rp.attention_weights(s, norm),
                     rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("norm", rp.NORMS)
def test_causal_weights(norm: str) -> None:
    s = randn(5, 5, seed=3)
    a = rp.attention_weights(s, norm, causal=True)
    assert bool((a.triu(1) == 0).all())
    if norm == "softmax":
        masked = s.masked_fill(torch.ones(5, 5, dtype=torch.bool).triu(1), -math.inf)
        assert_close(a, torch.softmax(masked, -1), rtol=1e-14, atol=0)
    if norm in ("exp", "relu2"):           # the kept entries are untouched
        full = rp.attention_weights(s, norm)
        assert_close(a.tril(), full.tril(), rtol=0, atol=0)


def test_weights_errors() -> None:
    with pytest.raises(ValueError, match="norm must be"):
        rp.attention_weights(torch.zeros(3, 3), "l1")
    with pytest.raises(ValueError, match="scores must have shape"):
        rp.attention_weights(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="scores must have shape"):
        rp.attention_weights(torch.zeros(3))
    with pytest.raises(ValueError, match="scores must be finite"):
        rp.attention_weights(torch.full((2, 2), float("inf")))


# --- attention and the flaw ----------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(st.integers(1, 8), st.integers(1, 6), st.integers(0, 1000), st.booleans())
def test_softmax_attention_is_sdpa(n: int, d: int, seed: int, causal: bool) -> None:
    q, k = randn(2, n, d, seed=seed), randn(2, n, d, seed=seed + 1)
    v = randn(2, n, 3, seed=seed + 2)
    bias = rp.toeplitz_bias(randn(2 * n - 1, seed=seed + 3), n)
    ours = rp.relative_attention(q, k, v, bias, causal=causal)
    mask = bias
    if causal:
        mask = bias.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), -math.inf)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert_close(ours, ref, rtol=0, atol=64 * EPS)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 9), st.integers(0, 1000), st.booleans())
def test_softmax_maps_identical_tokens_to_one_output(n: int, seed: int, causal: bool) -> None:
    """Any bias at all, Toeplitz or not: each row sums to one, so o_i = v."""
    q, k, v = constant_qkv(n, 4, seed)
    bias = 3 * randn(n, n, seed=seed + 7)
    o = rp.relative_attention(q, k, v, bias, causal=causal)
    assert_close(o, v, rtol=0, atol=16 * EPS * float(v.abs().max()))


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 9), st.integers(0, 1000), st.sampled_from(rp.NORMS))
def test_circulant_bias_defeats_every_normaliser(n: int, seed: int, norm: str) -> None:
    q, k, v = constant_qkv(n, 4, seed)
    bias = rp.circulant_bias(randn(n, seed=seed + 7))
    o = rp.relative_attention(q, k, v, bias, norm=norm)
    assert spread(o) <= 64 * EPS * float(o.abs().max() + 1)


@pytest.mark.parametrize("norm", ["l2", "exp", "relu2"])
def test_toeplitz_bias_with_other_normalisers_separates_positions(norm: str) -> None:
    n = 6
    q, k, v = constant_qkv(n, 4, 1)
    q = q.abs() + 1                                   # keep relu2's scores positive
    k = k.abs() + 1
    bias = rp.toeplitz_bias(randn(2 * n - 1, seed=5), n)
    assert spread(rp.relative_attention(q, k, v, bias, norm=norm)) > 1e-3


def test_gate_breaks_the_row_sum_and_ones_change_nothing() -> None:
    n = 6
    q, k, v = constant_qkv(n, 4, 2)
    bias = rp.toeplitz_bias(randn(2 * n - 1, seed=5), n)
    ones = torch.ones(n, n, dtype=F64)
    assert_close(rp.relative_attention(q, k, v, bias, gate=ones),
                 rp.relative_attention(q, k, v, bias), rtol=0, atol=0)
    gate = rp.toeplitz_bias(1 + randn(2 * n - 1, seed=6), n)
    o = rp.relative_attention(q, k, v, bias, gate=gate)
    a = rp.attention_weights(q @ k.T / 2 + bias)
    assert_close(o, (a * gate).sum(-1, keepdim=True) * v[:1], rtol=1e-13, atol=1e-14)
    assert spread(o) > 1e-3


def test_attention_errors() -> None:
    q = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="q and k must"):
        rp.relative_attention(q, torch.zeros(4, 2), q)
    with pytest.raises(ValueError, match="q and k must"):
        rp.relative_attention(torch.zeros(3), torch.zeros(3), q)
    with pytest.raises(ValueError, match="v must have shape"):
        rp.relative_attention(q, q, torch.zeros(5, 3))
    with pytest.raises(ValueError, match="bias must have shape"):
        rp.relative_attention(q, q, q, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="gate must have shape"):
        rp.relative_attention(q, q, q, gate=torch.zeros(4))
    with pytest.raises(ValueError, match="norm must be"):
        rp.relative_attention(q, q, q, norm="sparsemax")
    with pytest.raises(ValueError, match="k must be finite"):
        rp.relative_attention(q, torch.full((4, 3), float("nan")), q)
    with pytest.raises(TypeError, match="v must be"):
        rp.relative_attention(q, q, None)


# --- the probe models ----------------------------------------------------------------------------

STALLED = [ProbeConfig(), ProbeConfig(pos="rope"), ProbeConfig(layers=2),
           ProbeConfig(pos="circular", norm="l2"), ProbeConfig(pos="circular", norm="exp"),
           ProbeConfig(pos="none", norm="l2")]
FREE = [ProbeConfig(gate=True), ProbeConfig(norm="l2"), ProbeConfig(norm="exp"),
        ProbeConfig(special_tokens=True), ProbeConfig(pos="absolute"),
        ProbeConfig(pos="circular", special_tokens=True)]


@pytest.mark.parametrize("cfg", STALLED, ids=lambda c: f"{c.pos}-{c.norm}-{c.layers}")
def test_translation_invariant_models_output_one_number(cfg: ProbeConfig) -> None:
    params = rp.init_probe(cfg, 3, torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = rp.probe_forward(params, cfg)
    assert y.shape == (3, cfg.n)
    assert float((y - y[:, :1]).abs().max()) < 1e-12 * (1 + float(y.abs().max()))


@pytest.mark.parametrize("cfg", FREE, ids=lambda c: f"{c.pos}-{c.norm}-{c.gate}-{c.special_tokens}")
def test_the_fixes_give_distinct_outputs_at_initialisation(cfg: ProbeConfig) -> None:
    params = rp.init_probe(cfg, 3, torch.Generator().manual_seed(0))
    if cfg.gate:                      # the gate starts at one, where URPE is plain softmax
        with torch.no_grad():
            y = rp.probe_forward(params, cfg)
            assert float((y - y[:, :1]).abs().max()) < 1e-12 * float(y.abs().max())
            params["gate0"] += 0.1 * randn(*params["gate0"].shape)
    with torch.no_grad():
        y = rp.probe_forward(params, cfg)
    assert y.shape == (3, cfg.n)
    assert bool(((y.max(1).values - y.min(1).values) > 1e-6).all())


def test_init_shapes() -> None:
    cfg = ProbeConfig(n=5, d=6, layers=2, gate=True, special_tokens=True, hidden=7)
    p = rp.init_probe(cfg, 4, torch.Generator().manual_seed(1))
    assert cfg.length == 7
    assert p["bias1"].shape == (4, 13) and p["gate0"].shape == (4, 13)
    assert p["w10"].shape == (4, 6, 7) and p["cls"].shape == (4, 6)
    assert all(t.requires_grad and t.dtype == F64 for t in p.values())
    assert_close(p["b_out"], torch.full((4, 1, 1), 3.0, dtype=F64))
    assert rp.init_probe(ProbeConfig(pos="circular"), 2, torch.Generator())["bias0"].shape == (2, 8)


def test_training_is_seed_independent_and_respects_the_floor() -> None:
    cfg = ProbeConfig(n=6, d=8, hidden=8)
    out = rp.train_probe(cfg, seeds=3, steps=25, lr=1e-2, seed=4)
    assert out["loss"].shape == (26, 3) and out["pred"].shape == (3, 6)
    floor = rp.probe_mse_floor(6)
    assert bool((out["loss"] >= floor - 1e-9).all())
    # the first recorded loss is that of the initial parameters
    p0 = rp.init_probe(cfg, 3, torch.Generator().manual_seed(4))
    y0 = rp.probe_forward(p0, cfg).detach()
    assert_close(out["loss"][0], ((y0 - rp.probe_targets(6)) ** 2).mean(-1), rtol=1e-14, atol=0)
    # seeds do not interact: the gradient of seed 0's loss has no part in seed 1's parameters
    loss0 = ((rp.probe_forward(p0, cfg) - rp.probe_targets(6)) ** 2).mean(-1)[0]
    grads = torch.autograd.grad(loss0, list(p0.values()), allow_unused=True)
    assert all(g is None or float(g[1:].abs().max()) == 0 for g in grads)


def test_training_learns_with_absolute_positions() -> None:
    out = rp.train_probe(ProbeConfig(pos="absolute"), seeds=2, steps=150, lr=1e-2)
    assert float(out["loss"][-1].max()) < 0.05 * rp.probe_mse_floor(8)
    assert_close(out["loss"][-1], ((out["pred"] - rp.probe_targets(8)) ** 2).mean(-1), rtol=1e-14,
                 atol=0)


def test_joint_training_follows_each_model_alone() -> None:
    cfgs = [ProbeConfig(n=5, d=8, hidden=8), ProbeConfig(n=5, d=8, hidden=8, norm="l2", gate=True),
            ProbeConfig(n=4, d=6, hidden=6, layers=2, special_tokens=True)]
    joint = rp.train_probes(cfgs, seeds=2, steps=20, lr=1e-2, seed=3)
    assert len(joint) == 3
    for cfg, out in zip(cfgs, joint, strict=True):
        alone = rp.train_probe(cfg, seeds=2, steps=20, lr=1e-2, seed=3)
        assert torch.equal(out["loss"], alone["loss"]) and torch.equal(out["pred"], alone["pred"])
    with pytest.raises(ValueError, match="at least one"):
        rp.train_probes([])
    with pytest.raises(TypeError, match="ProbeConfig"):
        rp.train_probes([cfgs[0], "softmax"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="steps"):
        rp.train_probes(cfgs, steps=0)


def test_probe_errors_of_the_models() -> None:
    with pytest.raises(ValueError, match="n must be"):
        ProbeConfig(n=0)
    with pytest.raises(ValueError, match="d must be"):
        ProbeConfig(d=1)
    with pytest.raises(ValueError, match="d must be even"):
        ProbeConfig(d=5, pos="rope")
    with pytest.raises(ValueError, match="layers must be"):
        ProbeConfig(layers=0)
    with pytest.raises(ValueError, match="hidden must be"):
        ProbeConfig(hidden=0)
    with pytest.raises(ValueError, match="pos must be"):
        ProbeConfig(pos="alibi")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="norm must be"):
        ProbeConfig(norm="l1")  # type: ignore[arg-type]
    cfg = ProbeConfig()
    with pytest.raises(TypeError, match="cfg must be"):
        rp.init_probe("relative", 2, torch.Generator())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seeds must be"):
        rp.init_probe(cfg, 0, torch.Generator())
    with pytest.raises(TypeError, match="generator must be"):
        rp.init_probe(cfg, 2, 0)  # type: ignore[arg-type]
    params = rp.init_probe(cfg, 2, torch.Generator())
    with pytest.raises(TypeError, match="cfg must be"):
        rp.probe_forward(params, None)  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        rp.probe_forward(params, ProbeConfig(gate=True))
    with pytest.raises(ValueError, match="steps must be"):
        rp.train_probe(cfg, steps=0)
    with pytest.raises(ValueError, match="lr must be"):
        rp.train_probe(cfg, lr=0.0)
    with pytest.raises(ValueError, match="seed must be"):
        rp.train_probe(cfg, seed=-1)
    with pytest.raises(ValueError, match="seeds must be"):
        rp.train_probe(cfg, seeds=0)
