"""Tests of kexue_notes.representations.whitening: each formula against a closed form or an
identity, and every
error path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.stats import spearmanr
from sklearn.decomposition import PCA

from kexue_notes.representations import whitening as wh

EPS = np.finfo(np.float64).eps


def cloud(n: int = 400, d: int = 5, seed: int = 0, shift: float = 3.0) -> np.ndarray:
    """An anisotropic Gaussian cloud with a nonzero mean and well separated variances."""
    rng = np.random.default_rng(seed)
    scales = 2.0 ** -np.arange(d)
    rot, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (rng.standard_normal((n, d)) * scales) @ rot + shift * rng.standard_normal(d)


# --- second_moment and principal_axes ----------------------------------------------------------

@pytest.mark.parametrize("beta", [0.0, 0.3, 1.0, 1.7])
def test_second_moment_is_covariance_plus_shifted_mean(beta: float) -> None:
    x = cloud()
    mu, sigma = wh.second_moment(x, beta)
    assert_allclose(mu, x.mean(axis=0), rtol=1e-14)
    cov = np.cov(x, rowvar=False, ddof=0)
    assert_allclose(sigma, cov + (1 - beta) ** 2 * np.outer(mu, mu), rtol=1e-12, atol=1e-12)


def test_second_moment_accepts_torch() -> None:
    x = cloud()
    mu_t, sigma_t = wh.second_moment(torch.as_tensor(x), 0.5)
    mu, sigma = wh.second_moment(x, 0.5)
    assert_allclose(mu_t, mu, rtol=0, atol=0)
    assert_allclose(sigma_t, sigma, rtol=0, atol=0)


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
def test_principal_axes_diagonalise_the_second_moment(beta: float) -> None:
    x = cloud()
    lam, u = wh.principal_axes(x, beta)
    _, sigma = wh.second_moment(x, beta)
    assert np.all(np.diff(lam) <= 0), "eigenvalues descend"
    assert_allclose(u.T @ u, np.eye(5), atol=1e-13)
    assert_allclose(u @ np.diag(lam) @ u.T, sigma, rtol=1e-12, atol=1e-12)
    assert_allclose(lam, np.linalg.eigvalsh(sigma)[::-1], rtol=1e-11)
    rows = np.argmax(np.abs(u), axis=0)
    assert np.all(u[rows, np.arange(5)] > 0), "sign convention: largest entry positive"


# --- fit and transform ------------------------------------------------------------------------

@pytest.mark.parametrize(("beta", "gamma"), [(1.0, 1.0), (0.0, 0.0), (0.5, 0.3), (1.0, 0.0),
                                             (0.2, 1.5)])
def test_output_second_moment_is_lambda_to_one_minus_gamma(beta: float, gamma: float) -> None:
    x = cloud()
    center, W = wh.fit(x, beta, gamma)
    z = wh.transform(x, center, W)
    lam, _ = wh.principal_axes(x, beta)
    assert_allclose(center, beta * x.mean(axis=0), rtol=1e-14)
    assert_allclose(z.T @ z / len(x), np.diag(lam ** (1 - gamma)), rtol=1e-10, atol=1e-12)


def test_beta_gamma_one_whitens_to_identity_with_zero_mean() -> None:
    x = cloud()
    z = wh.transform(x, *wh.fit(x))
    assert_allclose(z.mean(axis=0), 0, atol=1e-12)
    assert_allclose(np.cov(z, rowvar=False, ddof=0), np.eye(5), atol=1e-12)


def test_beta_gamma_zero_is_a_rotation_that_keeps_cosines() -> None:
    x = cloud()
    center, W = wh.fit(x, 0.0, 0.0)
    assert_allclose(center, 0, atol=0)
    assert_allclose(W.T @ W, np.eye(5), atol=1e-13)
    z = wh.transform(x, center, W)
    assert_allclose(wh.cosine_similarity(z[:-1], z[1:]), wh.cosine_similarity(x[:-1], x[1:]),
                    rtol=1e-13)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 2.0), st.integers(1, 4))
def test_whitening_matrix_turns_sigma_into_lambda_power(seed: int, gamma: float, k: int) -> None:
    """W^T Sigma W = Lambda_{1:k}^{1-gamma} for any spectrum and rotation."""
    rng = np.random.default_rng(seed)
    lam = np.sort(rng.uniform(0.1, 10.0, 4))[::-1]
    u, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    W = wh.whitening_matrix(lam, u, gamma, k)
    sigma = u @ np.diag(lam) @ u.T
    assert_allclose(W.T @ sigma @ W, np.diag(lam[:k] ** (1 - gamma)), rtol=1e-10, atol=1e-12)


def test_fit_is_principal_axes_then_whitening_matrix() -> None:
    x = cloud()
    center, W = wh.fit(x, 0.4, 0.7, k=3)
    assert_allclose(W, wh.whitening_matrix(*wh.principal_axes(x, 0.4), 0.7, 3), rtol=0, atol=0)
    assert_allclose(center, 0.4 * x.mean(axis=0), rtol=0, atol=0)


def test_truncation_keeps_leading_columns() -> None:
    x = cloud()
    center, W = wh.fit(x, 1.0, 0.5)
    full = wh.transform(x, center, W)
    assert_allclose(wh.transform(x, center, W, k=2), full[:, :2], rtol=0, atol=0)
    c3, W3 = wh.fit(x, 1.0, 0.5, k=3)
    assert W3.shape == (5, 3)
    assert_allclose(wh.transform(x, c3, W3), full[:, :3], rtol=0, atol=0)


def test_beta_one_gamma_zero_is_pca_and_gamma_one_is_pca_whiten() -> None:
    """scikit-learn's PCA: same axes up to sign; whitened scale differs by sqrt((N-1)/N)."""
    x = cloud()
    n = len(x)
    z0 = wh.transform(x, *wh.fit(x, 1.0, 0.0))
    p0 = PCA(svd_solver="full").fit_transform(x)
    sign = np.sign(np.sum(z0 * p0, axis=0))
    assert_allclose(z0 * sign, p0, atol=1e-12)
    z1 = wh.transform(x, *wh.fit(x, 1.0, 1.0))
    p1 = PCA(whiten=True, svd_solver="full").fit_transform(x)
    assert_allclose(z1 * sign * np.sqrt((n - 1) / n), p1, atol=1e-11)


def test_fit_singular_data_needs_truncation_when_gamma_positive() -> None:
    x = cloud(d=4)
    x = np.hstack([x, np.zeros((len(x), 1))])          # a dead coordinate, as in MiniLM
    with pytest.raises(ValueError, match=r"^x: .*numerical rank 4 < k=5"):
        wh.fit(x, 1.0, 1.0)
    lam, u = wh.principal_axes(x, 1.0)
    with pytest.raises(ValueError, match=r"^lam: .*numerical rank 4 < k=5"):
        wh.whitening_matrix(lam, u, 0.5)
    center, W = wh.fit(x, 1.0, 1.0, k=4)
    z = wh.transform(x, center, W)
    assert_allclose(z.T @ z / len(x), np.eye(4), atol=1e-11)
    _, W0 = wh.fit(x, 0.0, 0.0)                         # gamma = 0 never divides
    assert W0.shape == (5, 5)


# --- retained_energy ---------------------------------------------------------------------------

def test_retained_energy_limits() -> None:
    lam = np.array([4.0, 2.0, 1.0, 0.5])
    assert wh.retained_energy(lam, 1.0, 3) == pytest.approx(3 / 4, rel=1e-15)
    assert wh.retained_energy(lam, 0.0, 2) == pytest.approx(6 / 7.5, rel=1e-15)
    assert wh.retained_energy(lam, 0.5, 4) == pytest.approx(1.0, rel=1e-15)
    assert wh.retained_energy(lam, 200.0, 1) > 0                 # no overflow for large gamma


@pytest.mark.parametrize("gamma", [0.0, 0.4, 1.0])
def test_retained_energy_is_the_share_of_squared_norm_kept(gamma: float) -> None:
    x = cloud()
    center, W = wh.fit(x, 1.0, gamma)
    z = wh.transform(x, center, W)
    lam, _ = wh.principal_axes(x, 1.0)
    for k in range(1, 6):
        brute = np.sum(z[:, :k] ** 2) / np.sum(z**2)
        assert wh.retained_energy(lam, gamma, k) == pytest.approx(brute, rel=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(1e-3, 1e3), min_size=2, max_size=8),
       st.floats(0.0, 3.0), st.floats(0.0, 3.0), st.integers(1, 8))
def test_retained_energy_falls_as_gamma_grows(values: list[float], g1: float, g2: float,
                                              k: int) -> None:
    lam = np.sort(np.array(values))[::-1]
    k = min(k, lam.size)
    lo, hi = sorted((g1, g2))
    a, b = wh.retained_energy(lam, lo, k), wh.retained_energy(lam, hi, k)
    assert 0 < b <= a * (1 + 1e-12) <= 1 + 1e-12


# --- cosine_similarity, spearman_eval, bootstrap_spearman -------------------------------------

@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.1, 10.0))
def test_cosine_is_invariant_to_rotation_and_scale(seed: int, scale: float) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((2, 7, 4))
    q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    cos = wh.cosine_similarity(a, b)
    assert_allclose(wh.cosine_similarity(scale * a @ q, b @ q), cos, rtol=1e-12, atol=1e-12)
    assert np.all(np.abs(cos) <= 1 + 1e-15)


def test_cosine_closed_form() -> None:
    a = np.array([[1.0, 0.0], [1.0, 1.0], [3.0, 4.0]])
    b = np.array([[0.0, 2.0], [2.0, 2.0], [-3.0, -4.0]])
    assert_allclose(wh.cosine_similarity(a, b), [0.0, 1.0, -1.0], atol=1e-15)


def test_spearman_eval_matches_rank_correlation() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 50, 3))
    scores = rng.standard_normal(50)
    cos = wh.cosine_similarity(a, b)
    rc = np.argsort(np.argsort(cos))
    rs = np.argsort(np.argsort(scores))
    assert wh.spearman_eval(a, b, scores) == pytest.approx(np.corrcoef(rc, rs)[0, 1], rel=1e-12)
    assert wh.spearman_eval(a, b, cos) == pytest.approx(1.0, rel=1e-15)


def test_bootstrap_spearman_matches_scipy_on_each_draw() -> None:
    rng = np.random.default_rng(2)
    cos = rng.standard_normal((3, 30))
    cos[1] = np.round(cos[1], 1)                               # ties in one scoring
    scores = np.round(rng.standard_normal(30), 1)              # ties in the scores
    rho = wh.bootstrap_spearman(cos, scores, 20, np.random.default_rng(5))
    idx = np.random.default_rng(5).integers(0, 30, size=(20, 30))
    assert rho.shape == (20, 3)
    for b in range(20):
        for j in range(3):
            ref = spearmanr(cos[j, idx[b]], scores[idx[b]]).statistic
            assert rho[b, j] == pytest.approx(ref, rel=1e-12)
    one = wh.bootstrap_spearman(cos[0], scores, 20, np.random.default_rng(5))
    assert_allclose(one[:, 0], rho[:, 0], rtol=0, atol=0)


# --- load_word_pairs ---------------------------------------------------------------------------

def test_load_word_pairs(tmp_path) -> None:
    path = tmp_path / "pairs.tsv"
    text = "# header\n# Word 1\tWord 2\tHuman\nold\tnew\t1.58\n\ncat\ttiger\t7.35\textra\n"
    path.write_text(text, encoding="utf-8")
    a, b, s = wh.load_word_pairs(path)
    assert a == ["old", "cat"] and b == ["new", "tiger"]
    assert_allclose(s, [1.58, 7.35], rtol=0)


# --- error paths -------------------------------------------------------------------------------

def test_errors_on_x() -> None:
    x = cloud()
    with pytest.raises(ValueError, match="x must be 2-dimensional"):
        wh.fit(x[0])
    with pytest.raises(ValueError, match="x must have more rows"):
        wh.fit(x[:5])
    with pytest.raises(ValueError, match="x must have more rows"):
        wh.second_moment(x[:3])
    with pytest.raises(ValueError, match="x must have more rows"):
        wh.principal_axes(x[:2])
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="x must be finite"):
        wh.fit(bad)
    with pytest.raises(TypeError, match="x must be an array"):
        wh.fit("words")
    with pytest.raises(ValueError, match="x must have at least one column"):
        wh.second_moment(np.zeros((3, 0)))


def test_errors_on_hyperparameters() -> None:
    x = cloud()
    with pytest.raises(ValueError, match="gamma must be finite and >= 0"):
        wh.fit(x, 1.0, -0.5)
    with pytest.raises(TypeError, match="gamma must be a real number"):
        wh.fit(x, 1.0, "1")
    with pytest.raises(ValueError, match="beta must be finite"):
        wh.fit(x, np.inf)
    with pytest.raises(TypeError, match="beta must be a real number"):
        wh.second_moment(x, None)
    with pytest.raises(TypeError, match="beta must be a real number"):
        wh.principal_axes(x, True)
    with pytest.raises(ValueError, match=r"k must lie in \[1, 5\]"):
        wh.fit(x, k=6)
    with pytest.raises(ValueError, match=r"^gamma must be finite"):
        wh.fit(x, 1.0, np.nan)
    with pytest.raises(TypeError, match="k must be an integer"):
        wh.fit(x, k=2.0)


def test_errors_on_whitening_matrix() -> None:
    lam, u = np.array([3.0, 2.0, 1.0]), np.eye(3)
    with pytest.raises(ValueError, match=r"U must have shape \(3, 3\)"):
        wh.whitening_matrix(lam, u[:2], 1.0)
    with pytest.raises(ValueError, match="lam must be 1-dimensional"):
        wh.whitening_matrix(u, u, 1.0)
    with pytest.raises(ValueError, match="lam must hold at least one eigenvalue, all of them >= 0"):
        wh.whitening_matrix(np.array([1.0, -1.0]), np.eye(2), 1.0)
    with pytest.raises(ValueError, match="lam must hold at least one eigenvalue"):
        wh.whitening_matrix(np.array([]), np.zeros((0, 0)), 1.0)
    with pytest.raises(ValueError, match="lam must be sorted in descending order"):
        wh.whitening_matrix(lam[::-1], u, 1.0)
    with pytest.raises(ValueError, match="lam must be finite"):
        wh.whitening_matrix(np.array([np.nan, 1.0, 0.5]), u, 1.0)
    with pytest.raises(ValueError, match="gamma must be finite and >= 0"):
        wh.whitening_matrix(lam, u, -1.0)
    with pytest.raises(ValueError, match=r"k must lie in \[1, 3\]"):
        wh.whitening_matrix(lam, u, 1.0, k=4)
    with pytest.raises(TypeError, match="k must be an integer"):
        wh.whitening_matrix(lam, u, 1.0, k=1.5)
    with pytest.raises(ValueError, match=r"^lam: .*numerical rank 2 < k=3"):
        wh.whitening_matrix(np.array([3.0, 2.0, 0.0]), u, 1.0)
    assert wh.whitening_matrix(np.array([3.0, 2.0, 0.0]), u, 0.0).shape == (3, 3)


def test_errors_on_transform() -> None:
    x = cloud()
    center, W = wh.fit(x, k=3)
    with pytest.raises(ValueError, match=r"k must lie in \[1, 3\]"):
        wh.transform(x, center, W, k=4)
    with pytest.raises(ValueError, match=r"k must lie in \[1, 3\]"):
        wh.transform(x, center, W, k=0)
    with pytest.raises(TypeError, match="k must be an integer"):
        wh.transform(x, center, W, k=True)
    with pytest.raises(ValueError, match=r"x must have shape \(\*, 5\)"):
        wh.transform(x[:, :4], center, W)
    with pytest.raises(ValueError, match=r"center must have shape \(5\)"):
        wh.transform(x, center[:4], W)
    with pytest.raises(ValueError, match="W must be 2-dimensional"):
        wh.transform(x, center, W[:, 0])
    with pytest.raises(ValueError, match="W must be finite"):
        wh.transform(x, center, W * np.nan)


def test_errors_on_retained_energy() -> None:
    lam = np.array([3.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="lam must be sorted in descending order"):
        wh.retained_energy(lam[::-1], 1.0, 2)
    with pytest.raises(ValueError, match="lam must hold at least one eigenvalue, all of them > 0"):
        wh.retained_energy(np.array([1.0, 0.0]), 1.0, 1)
    with pytest.raises(ValueError, match="lam must hold at least one eigenvalue"):
        wh.retained_energy(np.array([]), 1.0, 1)
    with pytest.raises(ValueError, match="lam must be 1-dimensional"):
        wh.retained_energy(np.diag(lam), 1.0, 1)
    with pytest.raises(ValueError, match=r"k must lie in \[1, 3\]"):
        wh.retained_energy(lam, 1.0, 4)
    with pytest.raises(TypeError, match="k must be an integer"):
        wh.retained_energy(lam, 1.0, None)
    with pytest.raises(ValueError, match="gamma must be finite and >= 0"):
        wh.retained_energy(lam, -1.0, 1)


def test_errors_on_cosine_and_spearman() -> None:
    a = np.ones((4, 3))
    with pytest.raises(ValueError, match=r"b must have shape \(4, 3\)"):
        wh.cosine_similarity(a, np.ones((4, 2)))
    with pytest.raises(ValueError, match="a must be 2-dimensional"):
        wh.cosine_similarity(a[0], a[0])
    z = a.copy()
    z[2] = 0
    with pytest.raises(ValueError, match=r"b has a zero row \(index 2\)"):
        wh.cosine_similarity(a, z)
    with pytest.raises(ValueError, match="a has a zero row"):
        wh.cosine_similarity(z, a)
    rng = np.random.default_rng(0)
    u, v = rng.standard_normal((2, 4, 3))
    with pytest.raises(ValueError, match=r"scores must have shape \(4\)"):
        wh.spearman_eval(u, v, np.arange(3.0))
    with pytest.raises(ValueError, match="scores must be finite"):
        wh.spearman_eval(u, v, np.array([1.0, np.nan, 2.0, 3.0]))
    with pytest.raises(ValueError, match="scores are all equal"):
        wh.spearman_eval(u, v, np.ones(4))
    e = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, 4.0]])
    with pytest.raises(ValueError, match="cosines of a and b are all equal"):
        wh.spearman_eval(e, e, np.arange(4.0))
    with pytest.raises(ValueError, match="scores must hold at least 2 pairs"):
        wh.spearman_eval(u[:1], v[:1], np.ones(1))


def test_errors_on_bootstrap() -> None:
    rng = np.random.default_rng(0)
    cos, scores = rng.standard_normal(10), rng.standard_normal(10)
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator"):
        wh.bootstrap_spearman(cos, scores, 5, 0)
    with pytest.raises(ValueError, match="n_boot must be >= 1"):
        wh.bootstrap_spearman(cos, scores, 0, rng)
    with pytest.raises(TypeError, match="n_boot must be an integer"):
        wh.bootstrap_spearman(cos, scores, 5.0, rng)
    with pytest.raises(ValueError, match=r"scores must have shape \(10\)"):
        wh.bootstrap_spearman(cos, scores[:9], 5, rng)
    with pytest.raises(ValueError, match="scores must hold at least 3 pairs"):
        wh.bootstrap_spearman(cos[:2], scores[:2], 5, rng)
    with pytest.raises(ValueError, match="cos must be 1- or 2-dimensional"):
        wh.bootstrap_spearman(cos.reshape(1, 2, 5), scores, 5, rng)
    with pytest.raises(ValueError, match="cos must be finite"):
        wh.bootstrap_spearman(cos * np.inf, scores, 5, rng)


def test_errors_on_load_word_pairs(tmp_path) -> None:
    short = tmp_path / "short.tsv"
    short.write_text("old\tnew\n", encoding="utf-8")
    with pytest.raises(ValueError, match="path: line 1 must hold"):
        wh.load_word_pairs(short)
    word = tmp_path / "word.tsv"
    word.write_text("# c\nold\tnew\thigh\n", encoding="utf-8")
    with pytest.raises(ValueError, match="path: line 2 has a score that is not a number"):
        wh.load_word_pairs(word)
    empty = tmp_path / "empty.tsv"
    empty.write_text("# only a comment\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"path: .* holds no word pairs"):
        wh.load_word_pairs(empty)
