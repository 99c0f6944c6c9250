"""Tests for kexue_notes.representations.glove: counting, PMI, weights, the simpler-GloVe loss,
gradient and fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from kexue_notes.representations import glove as gl

# --- the corpus ---------------------------------------------------------------------------------


def test_encode_corpus_orders_by_frequency_and_drops_rare_words() -> None:
    docs = [["b", "a", "c", "a"], ["a", "b", "d"]]
    vocab, freq, tokens, doc = gl.encode_corpus(docs, min_count=2)
    assert vocab == ["a", "b"]
    assert_array_equal(freq, [3, 2])
    assert_array_equal(tokens, [1, 0, 0, 0, 1])
    assert_array_equal(doc, [0, 0, 0, 1, 1])


def test_encode_corpus_breaks_ties_alphabetically() -> None:
    vocab, freq, _, _ = gl.encode_corpus([["z", "y", "x"]])
    assert vocab == ["x", "y", "z"] and freq.tolist() == [1, 1, 1]


def test_encode_corpus_errors() -> None:
    with pytest.raises(TypeError, match="documents"):
        gl.encode_corpus("a b c")
    with pytest.raises(TypeError, match=r"documents\[0\]"):
        gl.encode_corpus(["abc"])
    with pytest.raises(TypeError, match=r"documents\[1\]"):
        gl.encode_corpus([["a"], [1, 2]])
    with pytest.raises(ValueError, match="no words"):
        gl.encode_corpus([[], []])
    with pytest.raises(ValueError, match="min_count"):
        gl.encode_corpus([["a"]], min_count=0)
    with pytest.raises(ValueError, match="min_count=5"):
        gl.encode_corpus([["a", "b"]], min_count=5)
    with pytest.raises(TypeError, match="min_count"):
        gl.encode_corpus([["a"]], min_count=1.5)


def _brute_cooccurrence(tokens, docs, V, K, harmonic=False):
    X = np.zeros((V, V))
    for t in range(len(tokens)):
        for k in range(1, K + 1):
            if t + k < len(tokens) and docs[t] == docs[t + k] and tokens[t] != tokens[t + k]:
                w = 1.0 / k if harmonic else 1.0
                X[tokens[t], tokens[t + k]] += w
                X[tokens[t + k], tokens[t]] += w
    return X


def test_cooccurrence_small_example() -> None:
    # a b a c | c b, window 1
    X = gl.cooccurrence([0, 1, 0, 2, 2, 1], 3, 1, documents=[0, 0, 0, 0, 1, 1])
    expected = np.array([[0, 2, 1], [2, 0, 1], [1, 1, 0]], dtype=float)
    assert_array_equal(X, expected)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=40), st.integers(1, 4), st.booleans(),
       st.integers(0, 2**31 - 1))
def test_cooccurrence_matches_brute_force(tokens, K, harmonic, seed) -> None:
    docs = np.sort(np.random.default_rng(seed).integers(0, 3, size=len(tokens)))
    X = gl.cooccurrence(np.array(tokens), 5, K, docs, distance_weighting=harmonic)
    assert_allclose(X, _brute_cooccurrence(tokens, docs, 5, K, harmonic), rtol=1e-12)
    assert_array_equal(X, X.T)
    assert np.all(np.diag(X) == 0)


def test_cooccurrence_errors() -> None:
    with pytest.raises(ValueError, match="tokens"):
        gl.cooccurrence([0, 3], 3, 1)
    with pytest.raises(ValueError, match="tokens"):
        gl.cooccurrence([-1, 0], 3, 1)
    with pytest.raises(ValueError, match="tokens"):
        gl.cooccurrence([[0, 1]], 3, 1)
    with pytest.raises(TypeError, match="tokens"):
        gl.cooccurrence([0.5, 1.0], 3, 1)
    with pytest.raises(ValueError, match="documents"):
        gl.cooccurrence([0, 1], 3, 1, documents=[0])
    with pytest.raises(TypeError, match="documents"):
        gl.cooccurrence([0, 1], 3, 1, documents=[0.0, 1.0])
    with pytest.raises(ValueError, match="window"):
        gl.cooccurrence([0, 1], 3, 0)
    with pytest.raises(TypeError, match="n_words"):
        gl.cooccurrence([0, 1], 3.0, 1)


# --- PMI and weights ----------------------------------------------------------------------------


def test_pmi_closed_form() -> None:
    X = np.array([[0.0, 2.0, 1.0], [2.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    T, r = 6.0, np.array([3.0, 2.0, 1.0])
    M = gl.pmi(X)
    assert_allclose(M[0, 1], np.log(2 * T / (r[0] * r[1])), rtol=1e-14)
    assert_allclose(M[0, 2], np.log(1 * T / (r[0] * r[2])), rtol=1e-14)
    assert M[1, 2] == 0.0 and M[0, 0] == 0.0
    assert gl.pmi(X, fill=-5.0)[1, 2] == -5.0


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.1, 10.0))
def test_pmi_of_an_independent_table_is_zero_and_scale_free(seed, scale) -> None:
    p = np.random.default_rng(seed).random(4) + 0.1
    X = np.outer(p, p)                                   # P(i, j) = P(i) P(j)
    assert_allclose(gl.pmi(X), 0.0, atol=1e-12)
    Y = np.random.default_rng(seed).random((4, 4)) + 0.01
    assert_allclose(gl.pmi(scale * Y), gl.pmi(Y), atol=1e-12)


def test_pmi_errors() -> None:
    with pytest.raises(ValueError, match="counts"):
        gl.pmi(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="counts"):
        gl.pmi(-np.ones((2, 2)))
    with pytest.raises(ValueError, match="counts"):
        gl.pmi(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="counts"):
        gl.pmi(np.array([[np.nan, 1.0], [1.0, 0.0]]))
    with pytest.raises(TypeError, match="fill"):
        gl.pmi(np.ones((2, 2)), fill="0")


def test_glove_weight() -> None:
    X = np.array([[0.0, 50.0], [200.0, 100.0]])
    lam = gl.glove_weight(X)
    assert_allclose(lam, [[0.0, 0.5**0.75], [1.0, 1.0]], rtol=1e-14)
    assert_allclose(gl.glove_weight(X, truncate=False), (X / 100) ** 0.75, rtol=1e-14)
    assert_allclose(gl.glove_weight(X, x_max=10, alpha=1.0), [[0, 1], [1, 1]])
    with pytest.raises(ValueError, match="x_max"):
        gl.glove_weight(X, x_max=0)
    with pytest.raises(ValueError, match="alpha"):
        gl.glove_weight(X, alpha=-1.0)
    with pytest.raises(ValueError, match="counts"):
        gl.glove_weight(-X)
    with pytest.raises(TypeError, match="x_max"):
        gl.glove_weight(X, x_max="100")


# --- loss and gradient --------------------------------------------------------------------------


def _problem(seed: int, n: int = 5, d: int = 3):
    rng = np.random.default_rng(seed)
    V = rng.normal(size=(n, d))
    W = rng.random((n, n))
    W = W + W.T
    M = rng.normal(size=(n, n))
    M = M + M.T
    return V, M, W


def test_loss_against_explicit_sum() -> None:
    V, M, W = _problem(0)
    explicit = sum(W[i, j] * (V[i] @ V[j] - M[i, j]) ** 2 for i in range(5) for j in range(5))
    assert_allclose(gl.simpler_glove_loss(V, M, W), explicit, rtol=1e-13)


def test_loss_is_zero_at_an_exact_factorisation() -> None:
    V, _, W = _problem(1)
    assert gl.simpler_glove_loss(V, V @ V.T, W) == pytest.approx(0.0, abs=1e-24)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_gradient_matches_autograd(seed) -> None:
    V, M, W = _problem(seed)
    Vt = torch.tensor(V, requires_grad=True)
    gl.simpler_glove_loss(Vt, torch.tensor(M), torch.tensor(W)).backward()
    assert_allclose(gl.simpler_glove_grad(V, M, W), Vt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_gradient_for_asymmetric_weights_matches_autograd() -> None:
    rng = np.random.default_rng(3)
    V, M, W = rng.normal(size=(4, 2)), rng.normal(size=(4, 4)), rng.random((4, 4))
    Vt = torch.tensor(V, requires_grad=True)
    gl.simpler_glove_loss(Vt, M, W).backward()
    assert_allclose(gl.simpler_glove_grad(V, M, W), Vt.grad.numpy(), rtol=1e-10)


def test_loss_and_gradient_errors() -> None:
    V, M, W = _problem(0)
    for fn in (gl.simpler_glove_loss, gl.simpler_glove_grad):
        with pytest.raises(ValueError, match="target"):
            fn(V, M[:3], W)
        with pytest.raises(ValueError, match="weights"):
            fn(V, M, -W)
        with pytest.raises(ValueError, match="vectors"):
            fn(V[0], M, W)
        with pytest.raises(ValueError, match="vectors"):
            fn(np.full_like(V, np.nan), M, W)
        with pytest.raises(TypeError, match="weights"):
            fn(V, M, "w")
    with pytest.raises(ValueError, match="weights"):
        gl.simpler_glove_loss(torch.tensor(V), M, -W)
    with pytest.raises(ValueError, match="target"):
        gl.simpler_glove_loss(torch.tensor(V), M[:2], W)


# --- the fit ------------------------------------------------------------------------------------


def test_fit_reaches_the_eigen_truncation_with_unit_weights() -> None:
    rng = np.random.default_rng(0)
    B = rng.normal(size=(30, 30))
    A = (B + B.T) / 2
    ev, U = np.linalg.eigh(A)
    keep = np.argsort(ev)[::-1][:3]
    A3 = (U[:, keep] * ev[keep]) @ U[:, keep].T
    V, losses = gl.fit_simpler_glove(A, np.ones((30, 30)), 3, np.random.default_rng(1),
                                     epochs=3000, lr=0.1)
    assert_allclose(V @ V.T, A3, atol=1e-8)
    assert losses.shape == (3000,) and losses[-1] < losses[0]


def test_fit_is_invariant_to_the_scale_of_the_loss() -> None:
    _, M, W = _problem(2, n=8)
    V1, l1 = gl.fit_simpler_glove(M, W, 2, np.random.default_rng(0), epochs=30)
    V2, l2 = gl.fit_simpler_glove(M, 7.0 * W, 2, np.random.default_rng(0), epochs=30)
    assert_allclose(V2, V1, rtol=1e-10, atol=1e-14)
    assert_allclose(l2, 7.0 * l1, rtol=1e-10)


def test_fit_loss_history_is_the_loss_before_each_step() -> None:
    _, M, W = _problem(4, n=6)
    V1, l1 = gl.fit_simpler_glove(M, W, 2, np.random.default_rng(0), epochs=1)
    V0 = (np.random.default_rng(0).random((6, 2)) - 0.5) / 2
    assert_allclose(l1[0], gl.simpler_glove_loss(V0, M, W), rtol=1e-13)
    V2, _ = gl.fit_simpler_glove(M, W, 2, np.random.default_rng(0), epochs=2)
    g = gl.simpler_glove_grad(V1, M, W)
    g0 = gl.simpler_glove_grad(V0, M, W)
    assert_allclose(V2, V1 - 0.1 * g / np.sqrt(g0**2 + g**2), rtol=1e-12)


def test_fit_with_asymmetric_weights_follows_the_gradient() -> None:
    rng = np.random.default_rng(5)
    M, W = rng.normal(size=(5, 5)), rng.random((5, 5))
    V1, _ = gl.fit_simpler_glove(M, W, 2, np.random.default_rng(0), epochs=1, lr=0.2)
    V0 = (np.random.default_rng(0).random((5, 2)) - 0.5) / 2
    g0 = gl.simpler_glove_grad(V0, M, W)
    assert_allclose(V1, V0 - 0.2 * np.sign(g0), rtol=1e-12)


def test_fit_errors() -> None:
    _, M, W = _problem(0)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="target"):
        gl.fit_simpler_glove(M[:, :3], W, 2, rng)
    with pytest.raises(ValueError, match="weights"):
        gl.fit_simpler_glove(M, W[:3], 2, rng)
    with pytest.raises(ValueError, match="weights"):
        gl.fit_simpler_glove(M, -W, 2, rng)
    with pytest.raises(ValueError, match="dim"):
        gl.fit_simpler_glove(M, W, 0, rng)
    with pytest.raises(ValueError, match="epochs"):
        gl.fit_simpler_glove(M, W, 2, rng, epochs=0)
    with pytest.raises(ValueError, match="lr"):
        gl.fit_simpler_glove(M, W, 2, rng, lr=0.0)
    with pytest.raises(TypeError, match="rng"):
        gl.fit_simpler_glove(M, W, 2, 0)


# --- GloVe, profiles, pairs ---------------------------------------------------------------------


def test_glove_loss_explicit_and_shift_invariant() -> None:
    rng = np.random.default_rng(0)
    n, d = 6, 3
    w, u = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    b, bh = rng.normal(size=n), rng.normal(size=n)
    T, lam = rng.normal(size=(n, n)), rng.random((n, n))
    explicit = sum(lam[i, j] * (w[i] @ u[j] + b[i] + bh[j] - T[i, j]) ** 2
                   for i in range(n) for j in range(n))
    assert_allclose(gl.glove_loss(w, u, b, bh, T, lam), explicit, rtol=1e-13)
    c = rng.normal(size=d)
    shifted = gl.glove_loss(w + c, u + c, b - w @ c - c @ c / 2, bh - u @ c - c @ c / 2, T, lam)
    assert_allclose(shifted, explicit, rtol=1e-12)


def test_glove_loss_errors() -> None:
    z = np.zeros((3, 2))
    v, M = np.zeros(3), np.zeros((3, 3))
    with pytest.raises(ValueError, match="w_hat"):
        gl.glove_loss(z, z[:2], v, v, M, M)
    with pytest.raises(ValueError, match="b_hat"):
        gl.glove_loss(z, z, v, v[:2], M, M)
    with pytest.raises(ValueError, match="log_counts"):
        gl.glove_loss(z, z, v, v, M[:2], M)
    with pytest.raises(ValueError, match="weights"):
        gl.glove_loss(z, z, v, v, M, -np.ones((3, 3)))
    with pytest.raises(ValueError, match="w"):
        gl.glove_loss(v, z, v, v, M, M)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_profile_features_cosines_are_profile_correlations(seed) -> None:
    V = np.random.default_rng(seed).normal(size=(12, 4))
    F = gl.profile_features(V)
    Fn = F / np.linalg.norm(F, axis=1, keepdims=True)
    assert_allclose(Fn @ Fn.T, np.corrcoef(V @ V.T), atol=1e-10)


def test_profile_features_errors() -> None:
    with pytest.raises(ValueError, match="vectors"):
        gl.profile_features(np.ones((5, 2)))
    with pytest.raises(ValueError, match="vectors"):
        gl.profile_features(np.ones(5))


def test_pair_indices() -> None:
    ia, ib, cov = gl.pair_indices(["Cat", "dog", "x"], ["dog", "Cats", "cat"], ["cat", "dog"])
    assert_array_equal(cov, [True, False, False])
    assert ia.tolist() == [0] and ib.tolist() == [1]
    ia, ib, cov = gl.pair_indices(["Cats"], ["dog"], ["cat", "dog"],
                                  normalise=lambda w: w.lower().rstrip("s"))
    assert cov.all() and ia.tolist() == [0] and ib.tolist() == [1]
    with pytest.raises(ValueError, match="words_a"):
        gl.pair_indices(["a"], [], ["a"])
