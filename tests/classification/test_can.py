"""Tests of kexue_notes.classification.can: closed forms, identities, POT, and every error path."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from kexue_notes.classification import can


def dirichlet(seed: int, rows: int, m: int, conc: float = 0.5) -> np.ndarray:
    P = np.random.default_rng(seed).dirichlet(np.full(m, conc), size=rows)
    P = np.clip(P, 1e-9, None)
    return P / P.sum(axis=1, keepdims=True)


def post_loop(confident: np.ndarray, p: np.ndarray, prior: np.ndarray, alpha: float,
              iters: int) -> np.ndarray:
    """The post's reference loop, for one doubtful row (mean over rows, prior, row sums)."""
    Y = np.concatenate([confident, p[None]], axis=0)
    for _ in range(iters):
        Y = Y**alpha
        Y = Y / Y.mean(axis=0, keepdims=True) * prior[None]
        Y = Y / Y.sum(axis=1, keepdims=True)
    return Y[-1]


# --- the uncertainty score -----------------------------------------------------------------------

def test_topk_uncertainty_values_of_the_posts_example() -> None:
    P = np.array([[0.5, 0.25, 0.25], [0.5, 0.5, 0.0]])
    h = lambda q: -sum(x * math.log(x) for x in q if x > 0)  # noqa: E731
    assert_allclose(can.topk_uncertainty(P, 2), [h([2 / 3, 1 / 3]) / math.log(2), 1.0],
                    rtol=1e-14)
    assert_allclose(can.topk_uncertainty(P, 3), [h([.5, .25, .25]) / math.log(3),
                                                 math.log(2) / math.log(3)], rtol=1e-14)
    # the paper's form ties them at k = 2
    u = can.topk_uncertainty(P, 2, renormalize=False)
    assert_allclose(u[0], u[1], rtol=1e-14)
    assert_allclose(u[0], math.log(2) / math.log(3), rtol=1e-14)


def test_topk_uncertainty_one_row_and_uniform_top_k() -> None:
    p = np.array([0.3, 0.3, 0.3, 0.1])
    assert can.topk_uncertainty(p, 3).shape == ()
    assert_allclose(can.topk_uncertainty(p, 3), 1.0, rtol=1e-14)
    assert_allclose(can.topk_uncertainty(np.eye(4)[1], 3), 0.0, atol=0)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 12), st.data())
def test_topk_uncertainty_bounds_and_permutation(seed: int, m: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(2, m))
    P = dirichlet(seed, 20, m, conc=data.draw(st.sampled_from([0.1, 1.0, 10.0])))
    u = can.topk_uncertainty(P, k)
    w = can.topk_uncertainty(P, k, renormalize=False)
    assert np.all((u >= -1e-12) & (u <= 1 + 1e-12))
    assert np.all(w <= can.paper_uncertainty_max(k, m) + 1e-12)
    perm = np.random.default_rng(seed).permutation(m)
    assert_allclose(can.topk_uncertainty(P[:, perm], k), u, rtol=1e-12, atol=1e-15)
    if k == m:   # both forms are then the normalised entropy
        assert_allclose(u, w, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("k,m", [(3, 10), (3, 119), (5, 7), (2, 3), (2, 15), (4, 4), (2, 2)])
def test_paper_uncertainty_max_is_attained(k: int, m: int) -> None:
    if k == m:
        p = np.full(m, 1 / m)
    elif k >= 3:
        p = np.r_[np.full(k, 1 / k), np.zeros(m - k)]
    else:   # two entries 1/e, the rest spread evenly (each below 1/e for m >= 3)
        p = np.r_[np.full(2, 1 / math.e), np.full(m - 2, (1 - 2 / math.e) / (m - 2))]
    assert_allclose(can.topk_uncertainty(p, k, renormalize=False),
                    can.paper_uncertainty_max(k, m), rtol=1e-13)


def test_paper_uncertainty_max_is_not_exceeded_by_local_search() -> None:
    from scipy.optimize import minimize

    for k, m in ((3, 10), (2, 6)):
        def neg(z: np.ndarray, k: int = k) -> float:
            p = np.exp(z - z.max())
            return -float(can.topk_uncertainty(p / p.sum(), k, renormalize=False))
        best = min(minimize(neg, np.random.default_rng(s).normal(size=m), method="Nelder-Mead",
                            options={"maxiter": 4000, "xatol": 1e-10, "fatol": 1e-13}).fun
                   for s in range(5))
        assert -best <= can.paper_uncertainty_max(k, m) + 1e-12
        assert -best >= can.paper_uncertainty_max(k, m) - 1e-4


def test_uncertainty_errors() -> None:
    with pytest.raises(ValueError, match="k must be at most"):
        can.topk_uncertainty([0.5, 0.5], 3)
    with pytest.raises(ValueError, match="k must be >= 2"):
        can.topk_uncertainty([0.5, 0.5], 1)
    with pytest.raises(TypeError, match="k must be an integer"):
        can.topk_uncertainty([0.5, 0.5], 2.0)
    with pytest.raises(ValueError, match="p must sum to 1"):
        can.topk_uncertainty([0.5, 0.6], 2)
    with pytest.raises(ValueError, match="p must be non-negative"):
        can.topk_uncertainty([1.5, -0.5], 2)
    with pytest.raises(ValueError, match="p must be 1- or 2-dimensional"):
        can.topk_uncertainty(np.full((2, 2, 2), 0.5), 2)
    with pytest.raises(TypeError, match="renormalize must be a bool"):
        can.topk_uncertainty([0.5, 0.5], 2, renormalize=1)
    with pytest.raises(ValueError, match="m must be >= 2"):
        can.paper_uncertainty_max(2, 1)
    with pytest.raises(ValueError, match="k must be at most"):
        can.paper_uncertainty_max(4, 3)


# --- the two steps and their rounds --------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 8), st.integers(2, 6))
def test_steps_enforce_their_constraints(seed: int, r: int, m: int) -> None:
    L = dirichlet(seed, r, m)
    prior = dirichlet(seed + 1, 1, m, conc=3.0)[0]
    C = can.normalize_columns(L, prior)
    assert_allclose(C.mean(axis=0), prior, rtol=1e-12)
    assert_allclose(can.normalize_rows(C).sum(axis=1), 1.0, rtol=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 8), st.integers(2, 6), st.floats(0.3, 3.0))
def test_steps_keep_cross_ratios_and_power_scales_them(seed: int, r: int, m: int,
                                                       alpha: float) -> None:
    L = dirichlet(seed, r, m, conc=2.0)
    prior = np.full(m, 1 / m)
    C0 = can.log_cross_ratios(L)
    assert_allclose(can.log_cross_ratios(can.normalize_columns(L, prior)), C0, atol=1e-10)
    assert_allclose(can.log_cross_ratios(can.normalize_rows(L)), C0, atol=1e-10)
    A = can.alternating_normalization(L, prior, alpha=alpha, iters=2)
    assert_allclose(can.log_cross_ratios(A), alpha**2 * C0, atol=1e-8)


def test_log_cross_ratios_decide_scaling() -> None:
    rng = np.random.default_rng(3)
    L = rng.uniform(0.1, 1, (4, 3))
    scaled = rng.uniform(0.5, 2, (4, 1)) * L * rng.uniform(0.5, 2, (1, 3))
    assert_allclose(can.log_cross_ratios(scaled), can.log_cross_ratios(L), atol=1e-13)
    other = L.copy()
    other[2, 1] *= 1.5
    assert np.abs(can.log_cross_ratios(other) - can.log_cross_ratios(L)).max() > 0.4


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 6), st.integers(1, 5), st.integers(2, 6),
       st.floats(0.5, 2.0), st.integers(1, 3))
def test_can_correct_matches_the_posts_loop(seed: int, n: int, B: int, m: int, alpha: float,
                                            iters: int) -> None:
    conf = dirichlet(seed, n, m)
    unc = dirichlet(seed + 7, B, m)
    prior = dirichlet(seed + 9, 1, m, conc=4.0)[0]
    out = can.can_correct(conf, unc, prior, alpha=alpha, iters=iters, chunk=2)
    ref = np.stack([post_loop(conf, p, prior, alpha, iters) for p in unc])
    assert_allclose(out, ref, rtol=1e-10, atol=1e-13)
    assert_allclose(can.can_correct(conf, unc[0], prior, alpha=alpha, iters=iters), ref[0],
                    rtol=1e-10, atol=1e-13)


def test_binary_example_closed_forms() -> None:
    for q in (0.05, 0.2, 0.4):
        one = can.can_correct(np.array([[q, 1 - q]]), np.array([0.5, 0.5]), [0.5, 0.5])
        assert_allclose(one, [(3 - 2 * q) / 4, (1 + 2 * q) / 4], rtol=1e-14)
        full, _ = can.can_fixed_point(np.array([[q, 1 - q], [0.5, 0.5]]), [0.5, 0.5])
        x = math.sqrt(q) / (math.sqrt(q) + math.sqrt(1 - q))
        assert_allclose(full, [[x, 1 - x], [1 - x, x]], rtol=1e-12)


def test_no_confident_rows_gives_the_prior() -> None:
    prior = np.array([0.2, 0.3, 0.5])
    out = can.can_correct(np.zeros((0, 3)), dirichlet(0, 4, 3), prior)
    assert_allclose(out, np.tile(prior, (4, 1)), rtol=1e-14)


def test_can_postprocess_keeps_confident_rows_and_joint_variant() -> None:
    P = dirichlet(5, 40, 5, conc=0.7)
    prior = np.full(5, 0.2)
    out, doubt = can.can_postprocess(P, prior, k=3, tau=0.8)
    assert 0 < doubt.sum() < 40
    assert np.array_equal(out[~doubt], P[~doubt])
    assert_allclose(out[doubt], can.can_correct(P[~doubt], P[doubt], prior), rtol=1e-14)
    joint, doubt2 = can.can_postprocess(P, prior, k=3, tau=0.8, joint=True)
    assert np.array_equal(doubt, doubt2)
    stack = can.alternating_normalization(np.vstack([P[~doubt], P[doubt]]), prior)
    assert_allclose(joint[doubt], stack[(~doubt).sum():], rtol=1e-14)
    none, d0 = can.can_postprocess(P, prior, tau=1.0)
    assert not d0.any() and np.array_equal(none, P)


def test_fixed_point_equals_pot_sinkhorn() -> None:
    os.environ.setdefault("POT_BACKEND_DISABLE_PYTORCH", "1")
    import ot

    L = dirichlet(11, 30, 6, conc=0.8)
    prior = dirichlet(12, 1, 6, conc=5.0)[0]
    for alpha in (1.0, 0.5, 2.0):
        F, rounds = can.can_fixed_point(L, prior, alpha=alpha)
        G = ot.sinkhorn(np.full(30, 1 / 30), prior, -alpha * np.log(L), reg=1.0,
                        numItermax=100_000, stopThr=1e-15)
        assert rounds > 1
        assert_allclose(F, 30 * G, atol=1e-10)
        assert_allclose(F.sum(axis=1), 1.0, rtol=1e-12)
        assert_allclose(can.log_cross_ratios(F), alpha * can.log_cross_ratios(L), atol=1e-9)


def test_rounds_converge_to_the_fixed_point_only_for_alpha_one() -> None:
    L = dirichlet(2, 8, 4, conc=1.0)
    prior = np.full(4, 0.25)
    F, _ = can.can_fixed_point(L, prior)
    assert_allclose(can.alternating_normalization(L, prior, iters=2000), F, atol=1e-12)
    F2, _ = can.can_fixed_point(L, prior, alpha=1.5)
    A = can.alternating_normalization(L, prior, alpha=1.5, iters=3)
    assert np.abs(A - F2).max() > 0.05


def test_step_and_round_errors() -> None:
    prior = [0.5, 0.5]
    with pytest.raises(ValueError, match="L must be non-negative"):
        can.normalize_columns([[0.5, -0.1]], prior)
    with pytest.raises(ValueError, match="all-zero column"):
        can.normalize_columns([[1.0, 0.0]], prior)
    with pytest.raises(ValueError, match="L must be at least 2-dimensional"):
        can.normalize_columns([0.5, 0.5], prior)
    with pytest.raises(ValueError, match="prior must have 2 entries"):
        can.normalize_columns([[0.5, 0.5]], [1.0])
    with pytest.raises(ValueError, match="prior must sum to 1"):
        can.normalize_columns([[0.5, 0.5]], [0.5, 0.6])
    with pytest.raises(ValueError, match="prior must be 1-dimensional"):
        can.normalize_columns([[0.5, 0.5]], [[0.5, 0.5]])
    with pytest.raises(ValueError, match="all-zero row"):
        can.normalize_rows([[0.0, 0.0]])
    with pytest.raises(ValueError, match="L must be finite"):
        can.normalize_rows([[np.nan, 1.0]])
    with pytest.raises(ValueError, match="L must hold at least one row"):
        can.normalize_rows(1.0)
    with pytest.raises(ValueError, match="alpha must be finite and > 0"):
        can.alternating_normalization([[0.5, 0.5]], prior, alpha=0.0)
    with pytest.raises(TypeError, match="iters must be an integer"):
        can.alternating_normalization([[0.5, 0.5]], prior, iters=1.5)
    with pytest.raises(ValueError, match="iters must be >= 1"):
        can.alternating_normalization([[0.5, 0.5]], prior, iters=0)


def test_correct_and_postprocess_errors() -> None:
    conf = np.array([[0.9, 0.1]])
    with pytest.raises(ValueError, match="confident must be 2-dimensional"):
        can.can_correct([0.9, 0.1], [0.5, 0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match="confident must have 2 columns"):
        can.can_correct(np.full((1, 3), 1 / 3), [0.5, 0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match="uncertain must sum to 1"):
        can.can_correct(conf, [0.5, 0.6], [0.5, 0.5])
    with pytest.raises(ValueError, match="uncertain must be 1- or 2-dimensional"):
        can.can_correct(conf, np.full((1, 1, 2), 0.5), [0.5, 0.5])
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        can.can_correct(conf, [0.5, 0.5], [0.5, 0.5], chunk=0)
    with pytest.raises(ValueError, match="uncertain: a class has zero mass"):
        can.can_correct(np.array([[1.0, 0.0]]), [1.0, 0.0], [0.5, 0.5])
    with pytest.raises(ValueError, match="prior must have 2 entries"):
        can.can_correct(conf, [0.5, 0.5], [1 / 3, 1 / 3, 1 / 3])
    P = np.array([[0.9, 0.1], [0.5, 0.5]])
    with pytest.raises(ValueError, match="tau must lie in"):
        can.can_postprocess(P, [0.5, 0.5], k=2, tau=1.5)
    with pytest.raises(TypeError, match="joint must be a bool"):
        can.can_postprocess(P, [0.5, 0.5], k=2, joint="yes")
    with pytest.raises(ValueError, match="P must be 2-dimensional"):
        can.can_postprocess([0.5, 0.5], [0.5, 0.5], k=2)
    with pytest.raises(ValueError, match="prior must have 2 entries"):
        can.can_postprocess(P, [1.0], k=2, tau=1.0)
    with pytest.raises(ValueError, match="k must be at most"):
        can.can_postprocess(P, [0.5, 0.5])


def test_fixed_point_and_interval_errors() -> None:
    L = np.array([[0.9, 0.1], [0.5, 0.5]])
    with pytest.raises(ValueError, match="L must be positive"):
        can.can_fixed_point([[1.0, 0.0], [0.5, 0.5]], [0.5, 0.5])
    with pytest.raises(ValueError, match="prior must be positive"):
        can.can_fixed_point(L, [1.0, 0.0])
    with pytest.raises(ValueError, match="tol must be finite and > 0"):
        can.can_fixed_point(L, [0.5, 0.5], tol=0.0)
    with pytest.raises(RuntimeError, match="max_iter=1"):
        can.can_fixed_point(L, [0.5, 0.5], max_iter=1)
    with pytest.raises(ValueError, match="L must be 2-dimensional"):
        can.can_fixed_point([0.5, 0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match="L must be positive"):
        can.log_cross_ratios([[1.0, 0.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match="L must be at least 2-dimensional"):
        can.log_cross_ratios([1.0, 2.0])
