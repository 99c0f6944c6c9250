"""Tests of kexue_notes.classification.class_imbalance: closed forms, identities, error paths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sps
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, f1_score
from sklearn.utils.class_weight import compute_class_weight
from torch.nn import functional as F  # noqa: N812 -- torch's own idiom
from torch.testing import assert_close

from kexue_notes.classification import class_imbalance as ci

torch.set_num_threads(1)
F64 = torch.float64
EPS = float(np.finfo(np.float64).eps)


def labelled(seed: int, n: int = 30, rate: float = 0.3) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded logits and labels holding both classes."""
    g = torch.Generator().manual_seed(seed)
    z = 2 * torch.randn(n, generator=g, dtype=F64)
    y = (torch.rand(n, generator=g, dtype=F64) < rate).to(F64)
    y[0], y[1] = 0.0, 1.0
    return z, y


def grad_of(fn, x: torch.Tensor) -> torch.Tensor:
    x = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(x), x)
    return g


# --- metrics --------------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 40))
def test_hard_metrics_match_sklearn(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rng.random()).astype(float)
    y[:2] = (0, 1)
    pred = (rng.random(n) < rng.random()).astype(float)
    assert math.isclose(float(ci.f1_binary(pred, y)), f1_score(y, pred, zero_division=0),
                        abs_tol=4 * EPS)
    assert math.isclose(float(ci.balanced_accuracy(pred, y)), balanced_accuracy_score(y, pred),
                        abs_tol=4 * EPS)
    # hard probabilities: the smoothed F1 is the F1 score, the smoothed accuracy the accuracy
    assert math.isclose(float(ci.smooth_f1(pred, y)), float(ci.f1_binary(pred, y)), abs_tol=4 * EPS)
    assert math.isclose(float(ci.smooth_accuracy(pred, y)), float((pred == y).mean()),
                        abs_tol=4 * EPS)


def test_metrics_work_columnwise_and_on_bool() -> None:
    z, y = labelled(1)
    Z = torch.stack([z, -z, z + 1], dim=1)
    pred = Z > 0
    f1_cols = ci.f1_binary(pred, y)
    ba_cols = ci.balanced_accuracy(pred, y)
    assert f1_cols.shape == (3,) and ba_cols.shape == (3,)
    for k in range(3):
        assert float(f1_cols[k]) == float(ci.f1_binary(pred[:, k], y))
        assert float(ba_cols[k]) == float(ci.balanced_accuracy(pred[:, k], y))
    P = torch.sigmoid(Z).reshape(30, 3, 1).expand(30, 3, 2)
    assert ci.smooth_f1(P, y).shape == (3, 2)


def test_smooth_f1_tends_to_hard_f1_and_zero_case() -> None:
    z, y = labelled(2, n=50)
    hard = float(ci.f1_binary(z > 0, y))
    gaps = [abs(float(ci.smooth_f1(torch.sigmoid(c * z), y)) - hard) for c in (1, 10, 1000)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-6
    zero = torch.zeros(4, dtype=F64)
    assert float(ci.smooth_f1(zero, zero)) == 0.0 and float(ci.f1_binary(zero, zero)) == 0.0


def test_metric_errors() -> None:
    y = torch.tensor([0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="probs must lie in"):
        ci.smooth_f1(torch.tensor([0.2, 1.2, 0.5]), y)
    with pytest.raises(ValueError, match="y must hold labels 0 or 1"):
        ci.smooth_accuracy(torch.tensor([0.2, 0.3, 0.5]), torch.tensor([0.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match=r"y must have shape \(3,\)"):
        ci.smooth_accuracy(torch.tensor([0.2, 0.3, 0.5]), y[:2])
    with pytest.raises(ValueError, match="pred must hold predictions 0 or 1"):
        ci.f1_binary(torch.tensor([0.0, 0.5, 1.0]), y)
    with pytest.raises(ValueError, match="y must hold both classes"):
        ci.balanced_accuracy(torch.tensor([0.0, 1.0, 1.0]), torch.ones(3))
    with pytest.raises(ValueError, match="probs must have shape"):
        ci.smooth_f1(torch.tensor(0.5), y)
    with pytest.raises(ValueError, match="probs must be finite"):
        ci.smooth_f1(torch.tensor([0.2, float("nan"), 0.5]), y)
    with pytest.raises(ValueError, match="y must be 1-dimensional"):
        ci.smooth_f1(torch.tensor([0.2, 0.3, 0.5]), y[None])


# --- weighted cross-entropy -----------------------------------------------------------------------

def test_balanced_weights_match_sklearn() -> None:
    _, y = labelled(3, n=41, rate=0.15)
    w1, w0 = ci.balanced_class_weights(y)
    sk = compute_class_weight("balanced", classes=np.array([0.0, 1.0]), y=y.numpy())
    assert math.isclose(w0, sk[0], rel_tol=4 * EPS) and math.isclose(w1, sk[1], rel_tol=4 * EPS)
    assert math.isclose(w1 * float(y.sum()) + w0 * float((1 - y).sum()), len(y), rel_tol=1e-14)
    with pytest.raises(ValueError, match="y must hold both classes"):
        ci.balanced_class_weights(torch.zeros(5))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.01, 30.0), st.floats(0.01, 5.0))
def test_weighted_bce_matches_torch(seed: int, w1: float, w0: float) -> None:
    z, y = labelled(seed)
    pos = F.binary_cross_entropy_with_logits(z, y, pos_weight=torch.tensor(w1, dtype=F64))
    assert_close(ci.weighted_bce(z, y, w1), pos, rtol=1e-14, atol=1e-15)
    explicit = -(w1 * y * F.logsigmoid(z) + w0 * (1 - y) * F.logsigmoid(-z)).mean()
    assert_close(ci.weighted_bce(z, y, w1, w0), explicit, rtol=1e-13, atol=1e-15)
    assert_close(grad_of(lambda t: ci.weighted_bce(t, y, w1, w0), z),
                 grad_of(lambda t: -(w1 * y * F.logsigmoid(t)
                                     + w0 * (1 - y) * F.logsigmoid(-t)).mean(), z),
                 rtol=1e-13, atol=1e-16)


def test_weighted_bce_columns_and_errors() -> None:
    z, y = labelled(4)
    Z = torch.stack([z, 2 * z], dim=1)
    out = ci.weighted_bce(Z, y, 3.0, 0.5)
    assert_close(out, torch.stack([ci.weighted_bce(z, y, 3.0, 0.5),
                                   ci.weighted_bce(2 * z, y, 3.0, 0.5)]), rtol=4 * EPS, atol=0)
    with pytest.raises(ValueError, match="w_pos must be finite and >= 0"):
        ci.weighted_bce(z, y, -1.0)
    with pytest.raises(TypeError, match="w_neg must be a real number"):
        ci.weighted_bce(z, y, 1.0, "1")
    with pytest.raises(ValueError, match="logits must be finite"):
        ci.weighted_bce(torch.full_like(z, float("inf")), y, 1.0)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000))
def test_f1_weighted_gradient_is_the_transformed_f1_gradient(seed: int) -> None:
    z, y = labelled(seed, n=25)
    p = torch.sigmoid(z)
    g_f1 = grad_of(lambda t: -ci.smooth_f1(torch.sigmoid(t), y), z)
    g_lf = grad_of(lambda t: len(z) * ci.f1_weighted_bce(t, y), z)
    scale = (y + p).sum() / 2
    assert_close(scale * g_f1, g_lf * (y * p + (1 - y) * (1 - p)), rtol=1e-12, atol=1e-15)


def test_f1_weights_and_normalize() -> None:
    z, y = labelled(5)
    p = torch.sigmoid(z)
    f = float(ci.smooth_f1(p, y))
    w1, w0 = ci.f1_weights(p, y)
    assert math.isclose(float(w1), 1 - f / 2) and math.isclose(float(w0), f / 2)
    frozen = ci.weighted_bce(z, y, float(w1), float(w0))
    assert_close(ci.f1_weighted_bce(z, y), frozen, rtol=1e-14, atol=0)
    total = float(w1) * float(y.sum()) + float(w0) * float((1 - y).sum())
    assert_close(ci.f1_weighted_bce(z, y, normalize=True), frozen * len(y) / total,
                 rtol=1e-14, atol=0)
    # the weights carry no gradient
    zr = z.clone().requires_grad_(True)
    assert not ci.f1_weights(torch.sigmoid(zr), y)[0].requires_grad
    with pytest.raises(TypeError, match="normalize must be a bool"):
        ci.f1_weighted_bce(z, y, normalize=1)


# --- logit adjustment and margins -----------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.01, 0.99), st.floats(-2.0, 3.0))
def test_binary_logit_adjustment_is_two_class_softmax(seed: int, prior: float, tau: float) -> None:
    z, y = labelled(seed)
    two = torch.stack([torch.zeros_like(z), z], dim=1)
    prior_vec = torch.tensor([1 - prior, prior], dtype=F64)
    softmax = ci.logit_adjusted_cross_entropy(two, y.long(), prior_vec, tau)
    assert_close(ci.logit_adjusted_bce(z, y, prior, tau), softmax, rtol=1e-13, atol=1e-15)


def test_logit_adjustment_special_cases_and_posthoc() -> None:
    z, y = labelled(6)
    assert_close(ci.logit_adjusted_bce(z, y, 0.2, 0.0), ci.weighted_bce(z, y, 1.0), rtol=0, atol=0)
    shift = math.log(0.2 / 0.8)
    assert_close(ci.logit_adjusted_bce(z, y, 0.2), ci.weighted_bce(z + shift, y, 1.0),
                 rtol=1e-15, atol=0)
    adjusted = ci.posthoc_logit_adjustment(z, 0.2)
    thr = ci.logit_adjusted_threshold(0.2)
    assert torch.equal(adjusted > 0, torch.sigmoid(z) > thr)
    # uniform prior: logit adjustment is plain cross-entropy
    s = torch.randn(10, 4, generator=torch.Generator().manual_seed(0), dtype=F64)
    yk = torch.arange(10) % 4
    assert_close(ci.logit_adjusted_cross_entropy(s, yk, torch.full((4,), 0.25, dtype=F64)),
                 F.cross_entropy(s, yk), rtol=1e-15, atol=0)


def test_logit_adjustment_errors() -> None:
    s = torch.zeros(3, 2, dtype=F64)
    prior = torch.tensor([0.5, 0.5])
    with pytest.raises(TypeError, match="y must hold integer class labels"):
        ci.logit_adjusted_cross_entropy(s, torch.zeros(3), prior)
    with pytest.raises(ValueError, match=r"y must hold class labels in \[0, 1\]"):
        ci.logit_adjusted_cross_entropy(s, torch.tensor([0, 1, 2]), prior)
    with pytest.raises(ValueError, match=r"y must have shape \(3,\)"):
        ci.logit_adjusted_cross_entropy(s, torch.tensor([0, 1]), prior)
    with pytest.raises(ValueError, match="prior must be positive and sum to 1"):
        ci.logit_adjusted_cross_entropy(s, torch.tensor([0, 1, 0]), torch.tensor([0.7, 0.7]))
    with pytest.raises(ValueError, match="prior must have shape"):
        ci.logit_adjusted_cross_entropy(s, torch.tensor([0, 1, 0]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="logits must be 2-dimensional"):
        ci.logit_adjusted_cross_entropy(torch.zeros(3), torch.tensor([0, 1, 0]), prior)
    with pytest.raises(ValueError, match=r"prior must lie in \(0, 1\)"):
        ci.logit_adjusted_bce(torch.zeros(2), torch.tensor([0.0, 1.0]), 1.0)
    with pytest.raises(TypeError, match="tau must be a real number"):
        ci.logit_adjusted_bce(torch.zeros(2), torch.tensor([0.0, 1.0]), 0.3, None)
    with pytest.raises(ValueError, match="tau must be finite"):
        ci.posthoc_logit_adjustment(torch.zeros(2), 0.3, float("inf"))


def test_territory_loss_two_classes_is_a_margin_loss() -> None:
    g = torch.Generator().manual_seed(3)
    f = torch.randn(20, 3, generator=g, dtype=F64)
    U = torch.randn(2, 3, generator=g, dtype=F64)
    y = (torch.arange(20) % 3 == 0).long()
    r = torch.tensor([0.3, 1.2], dtype=F64)
    d = f @ (U[1] - U[0])
    m = r * U.norm(dim=1).sum()
    margin = (y * F.softplus(-(d - m[1])) + (1 - y) * F.softplus(d + m[0])).mean()
    assert_close(ci.territory_margin_cross_entropy(f, U, y, r), margin, rtol=1e-14, atol=0)
    # zero radii: the plain softmax cross-entropy
    assert_close(ci.territory_margin_cross_entropy(f, U, y, torch.zeros(2, dtype=F64)),
                 F.cross_entropy(f @ U.T, y), rtol=1e-15, atol=0)


def test_territory_errors() -> None:
    f, U, y = torch.zeros(4, 3), torch.eye(3)[:2], torch.tensor([0, 1, 0, 1])
    with pytest.raises(ValueError, match="radii must be >= 0"):
        ci.territory_margin_cross_entropy(f, U, y, torch.tensor([0.1, -0.1]))
    with pytest.raises(ValueError, match="class_vectors must have shape"):
        ci.territory_margin_cross_entropy(f, torch.eye(2), y, torch.tensor([0.1, 0.1]))
    with pytest.raises(ValueError, match="radii must have shape"):
        ci.territory_margin_cross_entropy(f, U, y, torch.tensor([0.1]))
    with pytest.raises(TypeError, match="y must hold integer class labels"):
        ci.territory_margin_cross_entropy(f, U, y.double(), torch.tensor([0.1, 0.1]))


# --- thresholds -----------------------------------------------------------------------------------

def numeric_threshold(loss_pos, loss_neg) -> float:
    """The posterior at which the minimiser of eta*loss_pos + (1-eta)*loss_neg crosses 0."""
    def argmin(eta: float) -> float:
        res = optimize.minimize_scalar(lambda d: eta * loss_pos(d) + (1 - eta) * loss_neg(d),
                                       bounds=(-40, 40), method="bounded",
                                       options={"xatol": 1e-12})
        return float(res.x)
    return float(optimize.brentq(argmin, 1e-6, 1 - 1e-6, xtol=1e-12))


def softplus(t: float) -> float:
    return float(np.logaddexp(0.0, t))


@pytest.mark.parametrize("w1,w0", [(1.0, 1.0), (5.5, 0.55), (0.8, 0.2)])
def test_weighted_threshold_by_direct_minimisation(w1: float, w0: float) -> None:
    num = numeric_threshold(lambda d: w1 * softplus(-d), lambda d: w0 * softplus(d))
    assert math.isclose(ci.weighted_threshold(w1, w0), num, abs_tol=1e-7)


@pytest.mark.parametrize("prior,tau", [(0.1, 1.0), (0.3, 0.5), (0.05, 2.0)])
def test_logit_adjusted_threshold_by_direct_minimisation(prior: float, tau: float) -> None:
    b = tau * math.log(prior / (1 - prior))
    num = numeric_threshold(lambda d: softplus(-(d + b)), lambda d: softplus(d + b))
    assert math.isclose(ci.logit_adjusted_threshold(prior, tau), num, abs_tol=1e-7)
    assert math.isclose(ci.logit_adjusted_threshold(prior), prior, rel_tol=1e-14)


@pytest.mark.parametrize("m1,m0", [(0.0, 0.0), (2.0, 0.1), (0.3, 4.0), (2.3, -2.3)])
def test_margin_threshold_by_direct_minimisation(m1: float, m0: float) -> None:
    num = numeric_threshold(lambda d: softplus(-(d - m1)), lambda d: softplus(d + m0))
    assert math.isclose(ci.margin_threshold(m1, m0), num, abs_tol=1e-7)


@settings(max_examples=60, deadline=None)
@given(st.floats(0.0, 30.0), st.floats(0.0, 30.0))
def test_margin_threshold_bounds(m1: float, m0: float) -> None:
    t = ci.margin_threshold(m1, m0)
    assert 1 / 3 - 1e-12 <= t <= 2 / 3 + 1e-12


@settings(max_examples=40, deadline=None)
@given(st.floats(0.001, 0.999), st.floats(0.1, 3.0))
def test_logit_adjustment_is_margin_pair(prior: float, tau: float) -> None:
    m = tau * math.log((1 - prior) / prior)
    assert math.isclose(ci.margin_threshold(m, -m), ci.logit_adjusted_threshold(prior, tau),
                        rel_tol=1e-12, abs_tol=1e-15)


def test_threshold_errors() -> None:
    with pytest.raises(ValueError, match="w_pos must be finite and > 0"):
        ci.weighted_threshold(0.0, 1.0)
    with pytest.raises(TypeError, match="w_neg must be a real number"):
        ci.weighted_threshold(1.0, None)
    with pytest.raises(ValueError, match=r"prior must lie in \(0, 1\)"):
        ci.logit_adjusted_threshold(0.0)
    with pytest.raises(ValueError, match="m_pos must be finite"):
        ci.margin_threshold(float("nan"), 0.0)
    with pytest.raises(TypeError, match="m_neg must be a real number"):
        ci.margin_threshold(1.0, "0")


# --- splits and linear models ---------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6), st.integers(1, 3))
def test_imbalanced_split_counts_and_disjointness(seed: int, a: int, b: int) -> None:
    y = np.r_[np.zeros(30, int), np.ones(12, int)]
    np.random.default_rng(seed).shuffle(y)
    tr, te = ci.imbalanced_split(y, (3 * a, a), (2 * b, b), rng=np.random.default_rng(seed))
    assert len(np.intersect1d(tr, te)) == 0
    assert (y[tr] == np.r_[np.zeros(3 * a), np.ones(a)]).all()
    assert (y[te] == np.r_[np.zeros(2 * b), np.ones(b)]).all()
    tr2, _ = ci.imbalanced_split(y, (3 * a, a), (2 * b, b), rng=np.random.default_rng(seed))
    assert (tr == tr2).all()


def test_imbalanced_split_errors() -> None:
    y = np.r_[np.zeros(5, int), np.ones(3, int)]
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator"):
        ci.imbalanced_split(y, (1, 1), (1, 1), rng=0)
    with pytest.raises(ValueError, match="fewer than the 4"):
        ci.imbalanced_split(y, (1, 2), (1, 2), rng=rng)
    with pytest.raises(ValueError, match="y must be 1-dimensional and hold labels 0 or 1"):
        ci.imbalanced_split(y + 1, (1, 1), (1, 1), rng=rng)
    with pytest.raises(ValueError, match="n_train must be a pair"):
        ci.imbalanced_split(y, 2, (1, 1), rng=rng)
    with pytest.raises(ValueError, match="n_test must be >= 1"):
        ci.imbalanced_split(y, (1, 1), (0, 1), rng=rng)


def small_problem(seed: int = 0, n: int = 60, d: int = 8):
    g = np.random.default_rng(seed)
    X = g.normal(size=(n, d)) * (g.random((n, d)) < 0.4)
    y = (X @ g.normal(size=d) + 0.5 * g.normal(size=n) > 0.8).astype(float)
    y[:2] = (0, 1)
    return X, torch.tensor(y, dtype=F64)


def test_linear_logits_sparse_equals_dense() -> None:
    X, _ = small_problem()
    W = torch.randn(8, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    b = torch.tensor([0.1, -0.2, 0.3], dtype=F64)
    dense = ci.linear_logits(X, W, b)
    sparse = ci.linear_logits(sps.csr_matrix(X), W, b)
    assert_close(sparse, dense, rtol=1e-14, atol=1e-14)
    assert_close(dense, torch.from_numpy(X) @ W + b, rtol=1e-14, atol=1e-14)
    Wr = W.clone().requires_grad_(True)
    (gW,) = torch.autograd.grad(ci.linear_logits(sps.csr_matrix(X), Wr, b).sum(), Wr)
    assert_close(gW, torch.from_numpy(X).sum(0)[:, None].expand(8, 3), rtol=1e-14, atol=1e-14)
    with pytest.raises(ValueError, match="weights must have shape"):
        ci.linear_logits(X, torch.zeros(5, 1), torch.zeros(1))
    with pytest.raises(ValueError, match="bias must have shape"):
        ci.linear_logits(X, torch.zeros(8, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="x must be finite"):
        ci.linear_logits(sps.csr_matrix(np.full((2, 8), np.nan)), torch.zeros(8, 1), torch.zeros(1))


def test_fit_linear_lbfgs_matches_sklearn() -> None:
    X, y = small_problem(2, n=120)
    lam = 0.05
    w1, w0 = ci.balanced_class_weights(y)
    w, b = ci.fit_linear_lbfgs(X, y, lambda z, yy: ci.weighted_bce(z, yy, w1, w0), l2=lam)
    sk = LogisticRegression(C=1 / (len(y) * lam), class_weight="balanced", tol=1e-12,
                            max_iter=10_000).fit(X, y.numpy())
    assert_close(w, torch.from_numpy(sk.coef_[0]), rtol=1e-6, atol=1e-7)
    assert math.isclose(float(b), float(sk.intercept_[0]), rel_tol=1e-6, abs_tol=1e-7)


def test_logit_adjustment_optimum_is_shifted_intercept() -> None:
    X, y = small_problem(3, n=100)
    w_p, b_p = ci.fit_linear_lbfgs(X, y, lambda z, yy: ci.weighted_bce(z, yy, 1.0), l2=0.02)
    w_a, b_a = ci.fit_linear_lbfgs(X, y, lambda z, yy: ci.logit_adjusted_bce(z, yy, 0.2), l2=0.02)
    assert_close(w_a, w_p, rtol=1e-6, atol=1e-8)
    assert math.isclose(float(b_a), float(b_p) - math.log(0.2 / 0.8), rel_tol=1e-6)


def test_adam_replicates_equal_separate_runs_and_reach_the_optimum() -> None:
    (X1, y), (X2, _) = small_problem(4), small_problem(5)
    X2 = X2[:, :]                                  # different features, same labels below

    def loss(Z: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
        return torch.stack([ci.weighted_bce(Z[..., 0], yy, 1.0),
                            ci.weighted_bce(Z[..., 1], yy, 3.0, 0.5)], dim=-1)

    kw = dict(n_models=2, l2=[0.05, 0.1], steps=300, lr=0.05)
    W, b = ci.train_linear_adam([sps.csr_matrix(X1), sps.csr_matrix(X2)], y, loss, **kw)
    assert W.shape == (2, 8, 2) and b.shape == (2, 2)
    for s, X in enumerate((X1, X2)):
        Ws, bs = ci.train_linear_adam(X, y, loss, **kw)
        assert_close(W[s], Ws, rtol=1e-10, atol=1e-12)
        assert_close(b[s], bs, rtol=1e-10, atol=1e-12)
    w_opt, _ = ci.fit_linear_lbfgs(X1, y, lambda z, yy: ci.weighted_bce(z, yy, 3.0, 0.5),
                                       l2=0.1)
    assert float((W[0, :, 1] - w_opt).norm() / w_opt.norm()) < 1e-3
    # float32 runs the same arithmetic in lower precision
    W32, _ = ci.train_linear_adam(X1, y, loss, dtype=torch.float32, **kw)
    assert W32.dtype == torch.float32
    assert float((W32.double() - W[0]).norm() / W[0].norm()) < 1e-3


def test_trainer_errors() -> None:
    X, y = small_problem()

    def loss(Z: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
        return ci.weighted_bce(Z, yy, 1.0)

    kw = dict(n_models=1, l2=0.1, steps=2, lr=0.1)
    with pytest.raises(ValueError, match=r"l2 must be one number or one per model \(1\)"):
        ci.train_linear_adam(X, y, loss, **{**kw, "l2": [0.1, 0.2]})
    with pytest.raises(ValueError, match="l2 must be finite and >= 0"):
        ci.train_linear_adam(X, y, loss, **{**kw, "l2": -1.0})
    with pytest.raises(ValueError, match=r"loss must return finite values of shape \(1, 2\)"):
        ci.train_linear_adam(X, y, lambda Z, yy: loss(Z[..., :1], yy), **{**kw, "n_models": 2})
    with pytest.raises(ValueError, match="n_models must be >= 1"):
        ci.train_linear_adam(X, y, loss, **{**kw, "n_models": 0})
    with pytest.raises(TypeError, match=r"dtype must be torch\.float32 or torch\.float64"):
        ci.train_linear_adam(X, y, loss, dtype=torch.int64, **kw)
    with pytest.raises(ValueError, match="x must be a matrix or a non-empty list"):
        ci.train_linear_adam([], y, loss, **kw)
    with pytest.raises(ValueError, match="x: every matrix must have the shape"):
        ci.train_linear_adam([sps.csr_matrix(X), sps.csr_matrix(X[:, :5])], y, loss, **kw)
    with pytest.raises(TypeError, match="loss must be a callable"):
        ci.train_linear_adam(X, y, None, **kw)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        ci.train_linear_adam(X, y, loss, **{**kw, "steps": 0})
    with pytest.raises(ValueError, match="lr must be finite and > 0"):
        ci.train_linear_adam(X, y, loss, **{**kw, "lr": 0.0})
    with pytest.raises(ValueError, match=r"y must have shape \(60,\)"):
        ci.train_linear_adam(X, y[:-1], loss, **kw)
    with pytest.raises(TypeError, match="loss must be a callable"):
        ci.fit_linear_lbfgs(X, y, "bce", l2=0.1)
    with pytest.raises(ValueError, match="loss must return a finite 0-d tensor"):
        ci.fit_linear_lbfgs(X, y, lambda z, yy: z, l2=0.1)
    with pytest.raises(ValueError, match="tol must be finite and > 0"):
        ci.fit_linear_lbfgs(X, y, lambda z, yy: ci.weighted_bce(z, yy, 1.0), l2=0.1, tol=0.0)
    with pytest.raises(ValueError, match="max_iter must be >= 1"):
        ci.fit_linear_lbfgs(X, y, lambda z, yy: ci.weighted_bce(z, yy, 1.0), l2=0.1, max_iter=0)


def test_dense_replicates() -> None:
    X, y = small_problem()
    W, _ = ci.train_linear_adam([X, X], y, lambda Z, yy: ci.weighted_bce(Z, yy, 1.0),
                                n_models=1, l2=0.1, steps=20, lr=0.1)
    assert_close(W[0], W[1], rtol=0, atol=1e-14)
