"""Tests of kexue_notes.training.fan_means: closed forms, identities, torch, and error paths."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kexue_notes.training import fan_means as fm

torch.set_num_threads(1)
F64 = torch.float64
width = st.integers(1, 4096)
real_width = st.floats(0.5, 1e4)
order = st.floats(-4, 4)


# --- the means ----------------------------------------------------------------------------------

def test_named_lehmer_and_power_means() -> None:
    m, n = 3.0, 12.0
    assert math.isclose(fm.lehmer_mean(m, n, 0), 2 * m * n / (m + n), rel_tol=1e-15)
    assert math.isclose(fm.lehmer_mean(m, n, 0.5), 6.0, rel_tol=1e-15)
    assert math.isclose(fm.lehmer_mean(m, n, 1), 7.5, rel_tol=1e-15)
    assert math.isclose(fm.lehmer_mean(m, n, 2), (9 + 144) / 15, rel_tol=1e-15)
    assert math.isclose(fm.power_mean(m, n, 2), math.sqrt((9 + 144) / 2), rel_tol=1e-15)
    assert math.isclose(fm.power_mean(m, n, 0), 6.0, rel_tol=1e-15)
    assert math.isclose(fm.power_mean(m, n, -1), 2 * m * n / (m + n), rel_tol=1e-15)


def test_fan_mean_kinds() -> None:
    m, n = 64, 256
    expected = {"fan_in": 64, "fan_out": 256, "harmonic": 102.4, "geometric": 128,
                "arithmetic": 160, "quadratic": math.sqrt(34816), "contraharmonic": 217.6}
    assert set(expected) == set(fm.KINDS)
    for kind, value in expected.items():
        assert math.isclose(fm.fan_mean(m, n, kind), value, rel_tol=1e-14)
        assert math.isclose(fm.init_variance(m, n, kind), 1 / value, rel_tol=1e-14)


@settings(max_examples=100, deadline=None)
@given(real_width, real_width, order, order)
def test_lehmer_mean_increases_with_order(m: float, n: float, p: float, q: float) -> None:
    lo, hi = sorted((p, q))
    a, b = fm.lehmer_mean(m, n, lo), fm.lehmer_mean(m, n, hi)
    assert a <= b * (1 + 1e-12)
    assert min(m, n) * (1 - 1e-12) <= a <= max(m, n) * (1 + 1e-12)


@settings(max_examples=100, deadline=None)
@given(real_width, real_width, order)
def test_lehmer_duality(m: float, n: float, p: float) -> None:
    # L_p L_{1-p} = mn, and L_p is symmetric in its arguments
    prod = fm.lehmer_mean(m, n, p) * fm.lehmer_mean(m, n, 1 - p)
    assert math.isclose(prod, m * n, rel_tol=1e-11)
    assert math.isclose(fm.lehmer_mean(m, n, p), fm.lehmer_mean(n, m, p), rel_tol=1e-13)


@settings(max_examples=100, deadline=None)
@given(width, width)
def test_ordering_of_the_kinds(m: int, n: int) -> None:
    chain = [fm.fan_mean(m, n, k) for k in ("harmonic", "geometric", "arithmetic", "quadratic",
                                            "contraharmonic")]
    assert all(a <= b * (1 + 1e-13) for a, b in itertools.pairwise(chain))
    if m == n:
        assert all(math.isclose(c, m, rel_tol=1e-13) for c in chain)


@settings(max_examples=100, deadline=None)
@given(real_width, real_width)
def test_contraharmonic_minimises_the_squared_errors(m: float, n: float) -> None:
    t = fm.init_variance(m, n, "contraharmonic")

    def J(x: float) -> float:
        return (m * x - 1) ** 2 + (n * x - 1) ** 2

    for step in (1e-3, -1e-3):
        assert J(t) <= J(t * (1 + step))


def test_lehmer_mean_is_stable_for_large_orders() -> None:
    assert math.isclose(fm.lehmer_mean(1e4, 1.0, 400), 1e4, rel_tol=1e-12)
    assert math.isclose(fm.lehmer_mean(1e4, 1.0, -400), 1.0, rel_tol=1e-12)
    assert math.isclose(fm.power_mean(1e4, 1.0, 400), 1e4 * 0.5 ** (1 / 400), rel_tol=1e-12)


# --- chains and blocks ---------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 2048), min_size=2, max_size=9), st.sampled_from(fm.KINDS))
def test_chain_identities(dims: list[int], kind: str) -> None:
    F, B = fm.chain_factors(dims, kind)
    assert F.shape == B.shape == (len(dims),)
    assert F[0] == 1.0 and B[-1] == 1.0
    assert math.isclose(B[0] / F[-1], dims[-1] / dims[0], rel_tol=1e-11)
    if kind == "geometric":
        assert math.isclose(F[-1], math.sqrt(dims[0] / dims[-1]), rel_tol=1e-11)
    if kind == "fan_in":
        np.testing.assert_allclose(F, 1.0, rtol=1e-14)
    if kind == "fan_out":
        np.testing.assert_allclose(B, 1.0, rtol=1e-14)


@settings(max_examples=100, deadline=None)
@given(width, width, st.sampled_from(fm.KINDS))
def test_block_factor(m: int, n: int, kind: str) -> None:
    bf = fm.block_factor(m, n, kind)
    F, B = fm.chain_factors([m, n, m], kind)
    assert math.isclose(bf, F[-1], rel_tol=1e-13) and math.isclose(bf, B[0], rel_tol=1e-13)
    assert math.isclose(bf, fm.block_factor(n, m, kind), rel_tol=1e-13)
    if kind in ("geometric", "fan_in", "fan_out"):
        assert math.isclose(bf, 1.0, rel_tol=1e-13)
    if kind in ("arithmetic", "quadratic", "contraharmonic"):
        assert bf <= 1 + 1e-13
    if kind == "harmonic":
        assert bf >= 1 - 1e-13


def test_block_factor_values() -> None:
    assert math.isclose(fm.block_factor(64, 256, "arithmetic"), 0.64, rel_tol=1e-14)
    assert math.isclose(fm.block_factor(64, 256, "contraharmonic"),
                        64 * 256 * 320**2 / 69632**2, rel_tol=1e-14)


# --- torch ---------------------------------------------------------------------------------------

def test_fans_reads_torch_layout() -> None:
    lin = torch.nn.Linear(3, 7)
    assert fm.fans(lin.weight) == (3, 7)


@pytest.mark.parametrize("kind", fm.KINDS)
@pytest.mark.parametrize("dist", ["normal", "uniform"])
def test_init_linear_variance(kind: str, dist: str) -> None:
    w = torch.empty(300, 200, dtype=F64)
    out = fm.init_linear_(w, kind, dist, generator=torch.Generator().manual_seed(0))
    assert out is w
    var = fm.init_variance(200, 300, kind)
    # sample variance: standard error sqrt((kurtosis - 1)/N) var, kurtosis 3 (normal) or 9/5
    kurt = 3.0 if dist == "normal" else 1.8
    assert abs(w.var().item() - var) < 5 * math.sqrt((kurt - 1) / w.numel()) * var
    if dist == "uniform":
        assert w.abs().max().item() <= math.sqrt(3 * var)


def test_init_linear_matches_torch_xavier_and_kaiming() -> None:
    def draw(fill):  # type: ignore[no-untyped-def]
        w = torch.empty(50, 20, dtype=F64)
        fill(w, torch.Generator().manual_seed(1))
        return w

    cases = [
        (lambda w, g: torch.nn.init.xavier_normal_(w, generator=g),
         lambda w, g: fm.init_linear_(w, "arithmetic", "normal", g)),
        (lambda w, g: torch.nn.init.xavier_uniform_(w, generator=g),
         lambda w, g: fm.init_linear_(w, "arithmetic", "uniform", g)),
        (lambda w, g: torch.nn.init.kaiming_uniform_(w, mode="fan_in", nonlinearity="linear",
                                                     generator=g),
         lambda w, g: fm.init_linear_(w, "fan_in", "uniform", g)),
        (lambda w, g: torch.nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="linear",
                                                    generator=g),
         lambda w, g: fm.init_linear_(w, "fan_out", "normal", g)),
    ]
    for theirs, ours in cases:
        torch.testing.assert_close(draw(ours), draw(theirs), rtol=1e-14, atol=0)


def test_linear_chain_and_propagate_scale_exactly() -> None:
    dims = [8, 32, 8, 32]
    ratios = []
    for kind in fm.KINDS:
        gen = torch.Generator().manual_seed(4)
        net = fm.linear_chain(dims, kind, generator=gen)
        assert [layer.weight.shape for layer in net] == [(32, 8), (8, 32), (32, 8)]
        assert all(layer.bias is None and layer.weight.dtype == F64 for layer in net)
        F_hat, B_hat = fm.propagate(net, 64, gen)
        F, B = fm.chain_factors(dims, kind)
        assert F_hat[0] == 1.0 and B_hat[-1] == 1.0
        ratios.append(np.concatenate([F_hat / F, B_hat / B]))
    for r in ratios[1:]:
        np.testing.assert_allclose(r, ratios[0], rtol=1e-12)


def test_propagate_matches_manual_computation() -> None:
    gen = torch.Generator().manual_seed(2)
    net = fm.linear_chain([5, 9, 4], "geometric", generator=gen)
    F_hat, B_hat = fm.propagate(net, 11, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    x = torch.randn(11, 5, generator=g, dtype=F64)
    W1, W2 = net[0].weight.detach(), net[1].weight.detach()
    h1, h2 = x @ W1.T, x @ W1.T @ W2.T
    grad_out = torch.randn(11, 4, generator=g, dtype=F64)
    g1 = grad_out @ W2
    g0 = g1 @ W1
    x2, gg = (x**2).mean(), (grad_out**2).mean()
    F_ref = [1.0, ((h1**2).mean() / x2).item(), ((h2**2).mean() / x2).item()]
    B_ref = [((g0**2).mean() / gg).item(), ((g1**2).mean() / gg).item(), 1.0]
    np.testing.assert_allclose(F_hat, F_ref, rtol=1e-13)
    np.testing.assert_allclose(B_hat, B_ref, rtol=1e-13)
    assert all(p.grad is None for p in net.parameters())


def test_propagate_statistics_match_the_prediction() -> None:
    # given the input, E[measured] = predicted exactly; 200 seeds, 4 standard errors
    dims = [16, 64, 16]
    ends = []
    for seed in range(200):
        gen = torch.Generator().manual_seed(seed)
        F_hat, B_hat = fm.propagate(fm.linear_chain(dims, "arithmetic", generator=gen), 32, gen)
        ends.append((F_hat[-1], B_hat[0]))
    arr = np.array(ends)
    pred = fm.block_factor(16, 64, "arithmetic")
    se = arr.std(axis=0, ddof=1) / math.sqrt(len(arr))
    assert np.all(np.abs(arr.mean(axis=0) - pred) < 4 * se)


# --- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_means_reject_bad_widths(bad: float) -> None:
    with pytest.raises(ValueError, match="m"):
        fm.lehmer_mean(bad, 2, 1)
    with pytest.raises(ValueError, match="n"):
        fm.power_mean(2, bad, 1)
    with pytest.raises(ValueError, match="fan_in"):
        fm.fan_mean(bad, 2, "arithmetic")
    with pytest.raises(ValueError, match="fan_out"):
        fm.init_variance(2, bad, "geometric")


def test_means_reject_bad_types_and_orders() -> None:
    with pytest.raises(TypeError, match="m"):
        fm.lehmer_mean("3", 2, 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="n"):
        fm.power_mean(3, None, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="p"):
        fm.lehmer_mean(3, 2, float("nan"))
    with pytest.raises(ValueError, match="p"):
        fm.power_mean(3, 2, float("inf"))
    with pytest.raises(TypeError, match="p"):
        fm.power_mean(3, 2, True)
    with pytest.raises(TypeError, match="fan_in"):
        fm.block_factor(True, 2, "arithmetic")


@pytest.mark.parametrize("kind", ["xavier", "", None, "Geometric"])
def test_unknown_kind(kind: object) -> None:
    with pytest.raises(ValueError, match="kind"):
        fm.fan_mean(2, 3, kind)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kind"):
        fm.chain_factors([2, 3], kind)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kind"):
        fm.init_linear_(torch.empty(3, 2), kind)  # type: ignore[arg-type]


def test_chain_rejects_bad_dims() -> None:
    with pytest.raises(ValueError, match="dims"):
        fm.chain_factors([4], "geometric")
    with pytest.raises(ValueError, match="dims"):
        fm.chain_factors([4, 0], "geometric")
    with pytest.raises(TypeError, match="dims"):
        fm.chain_factors([4, 2.5], "geometric")  # type: ignore[list-item]
    with pytest.raises(TypeError, match="dims"):
        fm.chain_factors("44", "geometric")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dims"):
        fm.linear_chain(4, "geometric")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dims"):
        fm.linear_chain([3], "geometric")


def test_weight_errors() -> None:
    with pytest.raises(TypeError, match="weight"):
        fm.fans(np.zeros((3, 2)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="weight"):
        fm.fans(torch.zeros(3))
    with pytest.raises(ValueError, match="weight"):
        fm.init_linear_(torch.zeros(2, 3, 4), "arithmetic")
    with pytest.raises(ValueError, match="weight"):
        fm.init_linear_(torch.zeros(3, 2, dtype=torch.int64), "arithmetic")
    with pytest.raises(ValueError, match="dist"):
        fm.init_linear_(torch.zeros(3, 2), "arithmetic", dist="truncated")


def test_propagate_errors() -> None:
    net = fm.linear_chain([3, 4], "geometric", generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="batch"):
        fm.propagate(net, 0)
    with pytest.raises(TypeError, match="batch"):
        fm.propagate(net, 2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="net"):
        fm.propagate(torch.nn.Linear(3, 4), 2)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="net"):
        fm.propagate(torch.nn.Sequential(), 2)
    with pytest.raises(TypeError, match="net"):
        fm.propagate(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU()), 2)
    mismatched = torch.nn.Sequential(torch.nn.Linear(3, 4, bias=False),
                                     torch.nn.Linear(5, 2, bias=False))
    with pytest.raises(ValueError, match="net"):
        fm.propagate(mismatched, 2)
