"""Tests of kexue_notes.optimization.gradient_estimators: each estimator against its exact
expectation by
enumeration, autograd, finite differences, quadrature or a closed form; seeded Monte Carlo checks;
identities for all inputs (hypothesis); and every error path."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import integrate
from scipy.special import ndtr, softmax
from scipy.stats import norm

from kexue_notes.optimization import gradient_estimators as ge

torch.set_num_threads(1)

K, D, N = 3, 4, 6
W0 = np.random.default_rng(0).standard_normal((K, D))
X0 = np.random.default_rng(1).standard_normal((N, D))
T0 = np.array([0, 1, 2, 0, 1, 2])
R_GRADED = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.5], [0.0, 0.5, 1.0]])

seeds = st.integers(0, 2**31 - 1)
baselines = st.one_of(st.sampled_from(["none", "mean", "optimal"]), st.floats(-2, 2))


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def random_problem(seed: int, n: int = N) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    g = rng(seed)
    return (g.standard_normal((K, D)), g.standard_normal((n, D)), g.integers(0, K, n),
            g.uniform(-1, 1, (K, K)))


def all_label_draws(W, X, tau=1.0):
    """Every joint draw of labels for a small data set, with its probability."""
    P = ge.policy_probs(W, X, tau)
    labels = np.array(list(itertools.product(range(K), repeat=X.shape[0])))
    prob = np.prod(P[np.arange(X.shape[0]), labels], axis=1)
    return labels, prob


def num_grad(fun, W, h=1e-6):
    G = np.zeros_like(W)
    for idx in np.ndindex(W.shape):
        E = np.zeros_like(W)
        E[idx] = h
        G[idx] = (fun(W + E) - fun(W - E)) / (2 * h)
    return G


# --- policy_probs, score_function ------------------------------------------------------------

def test_policy_probs_softmaxes_logits_tempered_by_division() -> None:
    assert_allclose(ge.policy_probs(W0, X0), softmax(X0 @ W0.T, axis=1), rtol=1e-14)
    tau = np.linspace(0.5, 2.0, N)
    assert_allclose(ge.policy_probs(W0, X0, tau), softmax(X0 @ W0.T / tau[:, None], axis=1),
                    rtol=1e-13)
    assert_allclose(ge.policy_probs(W0, X0, 2.0), ge.policy_probs(W0 / 2, X0), rtol=1e-14)


def test_policy_probs_accepts_tensors() -> None:
    out = ge.policy_probs(torch.tensor(W0), torch.tensor(X0))
    assert_allclose(out, ge.policy_probs(W0, X0), rtol=0, atol=0)


def test_score_function_matches_categorical_log_prob_autograd() -> None:
    labels = np.array([2, 0, 1, 1, 0, 2])
    c = np.arange(1.0, N + 1)
    Wt = torch.tensor(W0, requires_grad=True)
    logp = torch.distributions.Categorical(logits=torch.tensor(X0) @ Wt.T / 0.7).log_prob(
        torch.tensor(labels))
    (g,) = torch.autograd.grad((torch.tensor(c) * logp).sum(), Wt)
    ours = np.einsum("n,nkd->kd", c, ge.score_function(W0, X0, labels, tau=0.7))
    assert_allclose(ours, g.numpy(), rtol=0, atol=1e-12)


def test_score_function_batch_shape() -> None:
    labels = rng().integers(0, K, (5, N))
    S = ge.score_function(W0, X0, labels)
    assert S.shape == (5, N, K, D)
    assert_allclose(S[3], ge.score_function(W0, X0, labels[3]), rtol=0, atol=0)


@settings(max_examples=30, deadline=None)
@given(seeds)
def test_expected_score_is_zero(seed: int) -> None:
    W, X, _, _ = random_problem(seed)
    P = ge.policy_probs(W, X)
    mean = sum(P[:, y, None, None] * ge.score_function(W, X, np.full(N, y)) for y in range(K))
    assert_allclose(mean, 0, atol=1e-12)


# --- expected_reward, exact_policy_grad ---------------------------------------------------------

def test_expected_reward_for_accuracy_is_mean_true_class_probability() -> None:
    P = ge.policy_probs(W0, X0)
    assert_allclose(ge.expected_reward(W0, X0, T0), P[np.arange(N), T0].mean(), rtol=1e-14)
    assert_allclose(ge.expected_reward(W0, X0, T0, R_GRADED),
                    np.mean(np.sum(P * R_GRADED[T0], axis=1)), rtol=1e-14)


@pytest.mark.parametrize("tau", [1.0, 0.3, np.linspace(0.5, 3, N)])
def test_exact_policy_grad_matches_finite_differences(tau) -> None:
    fd = num_grad(lambda V: ge.expected_reward(V, X0, T0, R_GRADED, tau), W0)
    assert_allclose(ge.exact_policy_grad(W0, X0, T0, R_GRADED, tau), fd, rtol=0, atol=1e-8)


def test_exact_policy_grad_matches_autograd() -> None:
    Wt = torch.tensor(W0, requires_grad=True)
    P = torch.softmax(torch.tensor(X0) @ Wt.T, dim=1)
    J = (P * torch.tensor(R_GRADED[T0])).sum(1).mean()
    (g,) = torch.autograd.grad(J, Wt)
    assert_allclose(ge.exact_policy_grad(W0, X0, T0, R_GRADED), g.numpy(), rtol=0, atol=1e-14)


@settings(max_examples=30, deadline=None)
@given(seeds, st.floats(-3, 3))
def test_constant_reward_has_zero_gradient(seed: int, c: float) -> None:
    W, X, t, _ = random_problem(seed)
    assert_allclose(ge.exact_policy_grad(W, X, t, np.full((K, K), c)), 0, atol=1e-12)


# --- sample_labels ----------------------------------------------------------------------------

def test_sample_labels_frequencies_match_probabilities() -> None:
    M = 40_000
    labels = ge.sample_labels(W0, X0, M, rng(2))
    assert labels.shape == (M, N) and labels.dtype == np.int64
    P = ge.policy_probs(W0, X0)
    freq = np.stack([(labels == k).mean(0) for k in range(K)], axis=1)
    z = np.abs(freq - P) / np.sqrt(P * (1 - P) / M)
    assert z.max() < 4.5


def test_sample_labels_is_reproducible() -> None:
    a, b = ge.sample_labels(W0, X0, 10, rng(3)), ge.sample_labels(W0, X0, 10, rng(3))
    assert np.array_equal(a, b)


def test_sample_labels_can_reject_a_wrong_distribution() -> None:
    """The frequency test above has power: against a different policy it fails."""
    labels = ge.sample_labels(W0, X0, 40_000, rng(2), tau=2.0)
    P = ge.policy_probs(W0, X0)
    freq = np.stack([(labels == k).mean(0) for k in range(K)], axis=1)
    assert (np.abs(freq - P) / np.sqrt(P * (1 - P) / 40_000)).max() > 4.5


# --- optimal_baseline, reinforce_grad, reinforce_variance --------------------------------------

def test_optimal_baseline_closed_forms() -> None:
    p, r = np.array([0.2, 0.3, 0.5]), np.array([1.0, -2.0, 4.0])
    assert_allclose(ge.optimal_baseline(p, r, np.ones(3)), p @ r, rtol=1e-15)
    g = np.array([1.0, 2.0, 3.0])
    assert_allclose(ge.optimal_baseline(p, r, g), (p * r * g).sum() / (p * g).sum(), rtol=1e-15)
    # two classes with accuracy: b* = 1 - pi
    pi = 0.8
    b = ge.optimal_baseline([pi, 1 - pi], [1.0, 0.0], [2 * (1 - pi) ** 2, 2 * pi**2])
    assert_allclose(b, 1 - pi, rtol=1e-14)


@settings(max_examples=50, deadline=None)
@given(seeds, st.floats(-1, 1).filter(lambda x: abs(x) > 1e-3))
def test_optimal_baseline_minimises_the_second_moment(seed: int, delta: float) -> None:
    g = rng(seed)
    p, r, s = g.dirichlet(np.ones(4)), g.normal(size=4), g.uniform(0.1, 2, 4)
    b = ge.optimal_baseline(p, r, s)
    moment = lambda c: np.sum(p * (r - c) ** 2 * s)  # noqa: E731
    assert moment(b) < moment(b + delta)


@settings(max_examples=25, deadline=None)
@given(seeds, baselines)
def test_reinforce_is_unbiased_by_enumeration_for_any_baseline(seed: int, baseline) -> None:
    W, X, t, R = random_problem(seed, n=3)
    labels, prob = all_label_draws(W, X)
    G = ge.reinforce_grad(W, X, t, labels, R, baseline)
    assert_allclose(np.einsum("m,mkd->kd", prob, G), ge.exact_policy_grad(W, X, t, R), atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(seeds, baselines)
def test_reinforce_variance_by_enumeration(seed: int, baseline) -> None:
    W, X, t, R = random_problem(seed, n=3)
    tau = np.array([0.5, 1.0, 2.0])
    labels, prob = all_label_draws(W, X, tau)
    G = ge.reinforce_grad(W, X, t, labels, R, baseline, tau)
    mean = np.einsum("m,mkd->kd", prob, G)
    var = np.sum(prob * np.sum((G - mean) ** 2, axis=(1, 2)))
    assert_allclose(ge.reinforce_variance(W, X, t, R, baseline, tau), var, rtol=1e-9, atol=1e-14)


@settings(max_examples=25, deadline=None)
@given(seeds)
def test_optimal_baseline_is_never_beaten(seed: int) -> None:
    W, X, t, R = random_problem(seed)
    v = {b: ge.reinforce_variance(W, X, t, R, b) for b in ("none", "mean", "optimal")}
    assert v["optimal"] <= min(v["none"], v["mean"]) * (1 + 1e-12)


def test_reinforce_grad_matches_torch_surrogate_loss() -> None:
    labels = ge.sample_labels(W0, X0, 3, rng(4))
    b = np.linspace(-0.5, 0.5, N)
    Wt = torch.tensor(W0, requires_grad=True)
    dist = torch.distributions.Categorical(logits=torch.tensor(X0) @ Wt.T)
    for m in range(3):
        reward = torch.tensor(R_GRADED[T0, labels[m]])
        loss = ((reward - torch.tensor(b)) * dist.log_prob(torch.tensor(labels[m]))).mean()
        (g,) = torch.autograd.grad(loss, Wt, retain_graph=True)
        assert_allclose(ge.reinforce_grad(W0, X0, T0, labels[m:m + 1], R_GRADED, b)[0], g.numpy(),
                        rtol=0, atol=1e-14)


def test_mean_baseline_can_be_worse_than_none() -> None:
    """Two classes, a confident correct model (pi > 2/3): the mean baseline loses to none."""
    W = np.array([[2.0, 0.0], [0.0, 0.0]])
    X = np.array([[1.0, 0.5]])
    v_none = ge.reinforce_variance(W, X, [0], baseline="none")
    v_mean = ge.reinforce_variance(W, X, [0], baseline="mean")
    assert ge.policy_probs(W, X)[0, 0] > 2 / 3 and v_mean > v_none
    assert_allclose(ge.reinforce_variance(W, X, [0], baseline="optimal"), 0, atol=1e-15)


# --- zeroth_order_grad, zeroth_order_optimal_baseline -----------------------------------------

def test_zeroth_order_is_unbiased_for_a_quadratic_at_large_eps() -> None:
    g = rng(5)
    A = g.standard_normal((4, 4))
    A = A @ A.T
    c, x = g.standard_normal(4), g.standard_normal(4)
    f = lambda V: V @ c + 0.5 * np.einsum("mi,ij,mj->m", V, A, V)  # noqa: E731
    G = ge.zeroth_order_grad(f, x, 2.0, 100_000, rng(6))
    z = np.abs(G.mean(0) - (c + A @ x)) / (G.std(0, ddof=1) / np.sqrt(len(G)))
    assert z.max() < 4.5


def test_zeroth_order_cubic_bias_is_half_eps_squared_grad_laplacian() -> None:
    f = lambda V: np.sum(V**3, axis=1)  # noqa: E731
    x, eps = np.array([0.3, -0.5]), 0.7
    G = ge.zeroth_order_grad(f, x, eps, 400_000, rng(7))
    se = G.std(0, ddof=1) / np.sqrt(len(G))
    assert (np.abs(G.mean(0) - (3 * x**2 + 3 * eps**2)) / se).max() < 4.5
    assert (np.abs(G.mean(0) - 3 * x**2) / se).min() > 4.5      # the bias is detected


@settings(max_examples=30, deadline=None)
@given(seeds, st.floats(-5, 5), st.floats(-5, 5))
def test_zeroth_order_baseline_only_shifts_by_u(seed: int, b1: float, b2: float) -> None:
    f = lambda V: np.sin(V).sum(1)  # noqa: E731
    x, eps = np.array([0.1, 0.2, 0.3]), 0.5
    G1 = ge.zeroth_order_grad(f, x, eps, 50, rng(seed), baseline=b1)
    G2 = ge.zeroth_order_grad(f, x, eps, 50, rng(seed), baseline=b2)
    u = rng(seed).standard_normal((50, 3))
    assert_allclose(G1 - G2, (b2 - b1) / eps * u, rtol=1e-9, atol=1e-9)


def test_zeroth_order_baseline_keywords() -> None:
    f = lambda V: 2.0 + V.sum(1)  # noqa: E731
    x = np.zeros(3)
    u = rng(8).standard_normal((20, 3))
    fu = 2.0 + 0.1 * u.sum(1)
    assert_allclose(ge.zeroth_order_grad(f, x, 0.1, 20, rng(8), "none"), (fu / 0.1)[:, None] * u)
    assert_allclose(ge.zeroth_order_grad(f, x, 0.1, 20, rng(8), "value"),
                    ((fu - 2.0) / 0.1)[:, None] * u)
    b = ge.zeroth_order_optimal_baseline(fu, u)
    assert_allclose(ge.zeroth_order_grad(f, x, 0.1, 20, rng(8), "optimal"),
                    ((fu - b) / 0.1)[:, None] * u)


def test_zeroth_order_optimal_baseline_closed_form() -> None:
    u = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    f = np.array([1.0, 2.0, 3.0])
    assert_allclose(ge.zeroth_order_optimal_baseline(f, u), (1 + 8 + 6) / (1 + 4 + 2), rtol=1e-15)


def test_zeroth_order_optimal_baseline_quadratic_limit() -> None:
    """For f = |x|^2/2 in d dims at x = 0, b* = eps^2 (d + 2) / 2 (trace A = d)."""
    d, eps = 5, 0.3
    u = rng(9).standard_normal((400_000, d))
    b = ge.zeroth_order_optimal_baseline(0.5 * eps**2 * np.sum(u**2, 1), u)
    assert_allclose(b, eps**2 * (d + 2) / 2, rtol=0.01)


# --- argmax_reward, smoothed_argmax_probs, smoothed_argmax_grad -------------------------------

def test_argmax_reward_single_and_batch() -> None:
    pred = np.argmax(X0 @ W0.T, axis=1)
    assert_allclose(ge.argmax_reward(W0, X0, T0), np.mean(pred == T0))
    assert_allclose(ge.argmax_reward(W0, X0, T0, R_GRADED), np.mean(R_GRADED[T0, pred]))
    batch = np.stack([W0, -W0, 2 * W0])
    out = ge.argmax_reward(batch, X0, T0)
    assert out.shape == (3,)
    assert_allclose(out, [ge.argmax_reward(Wb, X0, T0) for Wb in batch])


def quad_probs(z: np.ndarray, sigma: float) -> np.ndarray:
    out = []
    for y in range(len(z)):
        def integrand(s, y=y):
            return norm.pdf(s) * np.prod([norm.cdf((z[y] - z[k]) / sigma + s)
                                          for k in range(len(z)) if k != y])
        out.append(integrate.quad(integrand, -np.inf, np.inf, epsabs=1e-13)[0])
    return np.array(out)


@pytest.mark.parametrize("eps", [0.01, 0.1, 1.0, 10.0])
def test_smoothed_argmax_probs_against_adaptive_quadrature(eps: float) -> None:
    q = ge.smoothed_argmax_probs(W0, X0[:1], eps)
    sigma = eps * np.linalg.norm(X0[0])
    assert_allclose(q[0], quad_probs(X0[0] @ W0.T, sigma), rtol=0, atol=1e-10)


def test_smoothed_argmax_probs_two_class_closed_form_and_limits() -> None:
    W2 = W0[:2]
    q = ge.smoothed_argmax_probs(W2, X0, 0.4)
    z = X0 @ W2.T
    sigma = 0.4 * np.linalg.norm(X0, axis=1)
    assert_allclose(q[:, 0], ndtr((z[:, 0] - z[:, 1]) / (np.sqrt(2) * sigma)), rtol=0, atol=1e-14)
    assert_allclose(ge.smoothed_argmax_probs(W0, X0, 1e-6), np.eye(K)[np.argmax(X0 @ W0.T, 1)],
                    atol=1e-12)
    assert_allclose(ge.smoothed_argmax_probs(W0, X0, 1e6), 1 / K, atol=1e-5)


def test_smoothed_argmax_probs_against_sampling() -> None:
    M, eps = 100_000, 0.5
    U = rng(10).standard_normal((M, K, D))
    pred = np.argmax(np.einsum("nd,mkd->mnk", X0, W0 + eps * U), axis=2)
    freq = np.stack([(pred == k).mean(0) for k in range(K)], axis=1)
    q = ge.smoothed_argmax_probs(W0, X0, eps)
    assert (np.abs(freq - q) / (np.sqrt(q * (1 - q) / M) + 1e-12)).max() < 4.5


@pytest.mark.parametrize("eps", [0.05, 0.5, 3.0])
def test_smoothed_argmax_grad_is_gradient_of_smoothed_reward(eps: float) -> None:
    def smoothed(V):
        q = ge.smoothed_argmax_probs(V, X0, eps)
        return np.mean(np.sum(q * R_GRADED[T0], axis=1))
    fd = num_grad(smoothed, W0, h=1e-5 * eps)
    assert_allclose(ge.smoothed_argmax_grad(W0, X0, T0, eps, R_GRADED), fd, rtol=1e-5, atol=1e-8)


def test_smoothed_argmax_grad_is_the_mean_of_the_zeroth_order_estimator() -> None:
    eps, M = 0.5, 100_000
    f = lambda V: ge.argmax_reward(V.reshape(-1, K, D), X0, T0, R_GRADED)  # noqa: E731
    G = ge.zeroth_order_grad(f, W0.ravel(), eps, M, rng(11))
    exact = ge.smoothed_argmax_grad(W0, X0, T0, eps, R_GRADED).ravel()
    assert (np.abs(G.mean(0) - exact) / (G.std(0, ddof=1) / np.sqrt(M))).max() < 4.5


@settings(max_examples=30, deadline=None)
@given(seeds, st.floats(0.01, 10))
def test_smoothed_probs_sum_to_one_and_gradients_to_zero(seed: int, eps: float) -> None:
    W, X, t, _ = random_problem(seed)
    assert_allclose(ge.smoothed_argmax_probs(W, X, eps).sum(1), 1, atol=1e-12)
    assert_allclose(ge.smoothed_argmax_grad(W, X, t, eps, np.ones((K, K))), 0, atol=1e-10)


# --- error paths ------------------------------------------------------------------------------

def f_ok(V):
    return V.sum(1)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: ge.policy_probs(np.ones(3), X0), ValueError, "W"),
    (lambda: ge.policy_probs(np.ones((1, D)), X0), ValueError, "W"),
    (lambda: ge.policy_probs(W0, np.ones((N, D + 1))), ValueError, "X"),
    (lambda: ge.policy_probs(W0, np.full((N, D), np.nan)), ValueError, "X"),
    (lambda: ge.policy_probs("W", X0), TypeError, "W"),
    (lambda: ge.policy_probs(W0, X0, 0.0), ValueError, "tau"),
    (lambda: ge.policy_probs(W0, X0, -np.ones(N)), ValueError, "tau"),
    (lambda: ge.policy_probs(W0, X0, np.ones(N + 1)), ValueError, "tau"),
    (lambda: ge.score_function(W0, X0, np.zeros(N)), TypeError, "labels"),
    (lambda: ge.score_function(W0, X0, np.full(N, K)), ValueError, "labels"),
    (lambda: ge.score_function(W0, X0, np.zeros(N + 1, int)), ValueError, "labels"),
    (lambda: ge.expected_reward(W0, X0, T0[:-1]), ValueError, "y_true"),
    (lambda: ge.expected_reward(W0, X0, T0.astype(bool)), TypeError, "y_true"),
    (lambda: ge.expected_reward(W0, X0, T0, np.eye(K + 1)), ValueError, "R"),
    (lambda: ge.exact_policy_grad(W0, X0, -T0 - 1), ValueError, "y_true"),
    (lambda: ge.sample_labels(W0, X0, 5, 0), TypeError, "rng"),
    (lambda: ge.sample_labels(W0, X0, 0, rng()), ValueError, "n_samples"),
    (lambda: ge.sample_labels(W0, X0, 2.0, rng()), TypeError, "n_samples"),
    (lambda: ge.optimal_baseline([0.5, 0.6], [1, 2], [1, 1]), ValueError, "probs"),
    (lambda: ge.optimal_baseline([-0.5, 1.5], [1, 2], [1, 1]), ValueError, "probs"),
    (lambda: ge.optimal_baseline(0.5, 1, 1), ValueError, "probs"),
    (lambda: ge.optimal_baseline([0.5, 0.5], [1, 2, 3], [1, 1]), ValueError, "rewards"),
    (lambda: ge.optimal_baseline([0.5, 0.5], [1, 2], [1, -1]), ValueError, "score_sqnorms"),
    (lambda: ge.optimal_baseline([1.0, 0.0], [1, 2], [0, 1]), ValueError, "score_sqnorms"),
    (lambda: ge.reinforce_grad(W0, X0, T0, T0), ValueError, "labels"),
    (lambda: ge.reinforce_grad(W0, X0, T0, T0[None], baseline="median"), ValueError, "baseline"),
    (lambda: ge.reinforce_grad(W0, X0, T0, T0[None], baseline=np.ones(2)), ValueError, "baseline"),
    (lambda: ge.reinforce_variance(W0, X0, T0, baseline="best"), ValueError, "baseline"),
    (lambda: ge.zeroth_order_optimal_baseline(np.ones(3), np.ones((4, 2))), ValueError, "u"),
    (lambda: ge.zeroth_order_optimal_baseline(np.ones(3), np.zeros((3, 2))), ValueError, "u"),
    (lambda: ge.zeroth_order_optimal_baseline(np.ones((3, 1)), np.ones((3, 2))), ValueError,
     "fvals"),
    (lambda: ge.zeroth_order_grad(3, np.zeros(2), 0.1, 5, rng()), TypeError, "f"),
    (lambda: ge.zeroth_order_grad(f_ok, np.zeros(2), 0.1, 5, "rng"), TypeError, "rng"),
    (lambda: ge.zeroth_order_grad(f_ok, np.zeros((2, 2)), 0.1, 5, rng()), ValueError, "x"),
    (lambda: ge.zeroth_order_grad(f_ok, np.zeros(2), 0.0, 5, rng()), ValueError, "eps"),
    (lambda: ge.zeroth_order_grad(f_ok, np.zeros(2), 0.1, 0, rng()), ValueError, "n_samples"),
    (lambda: ge.zeroth_order_grad(lambda V: V, np.zeros(2), 0.1, 5, rng()), ValueError, "f"),
    (lambda: ge.zeroth_order_grad(lambda V: V[:, 0] / 0, np.ones(2), 0.1, 5, rng()), ValueError,
     "f"),
    (lambda: ge.zeroth_order_grad(f_ok, np.zeros(2), 0.1, 5, rng(), "mean"), ValueError,
     "baseline"),
    (lambda: ge.zeroth_order_grad(f_ok, np.zeros(2), 0.1, 5, rng(), [1.0]), TypeError, "baseline"),
    (lambda: ge.zeroth_order_grad(f_ok, np.zeros(2), 0.1, 5, rng(), np.inf), ValueError,
     "baseline"),
    (lambda: ge.argmax_reward(np.ones(3), X0, T0), ValueError, "W"),
    (lambda: ge.argmax_reward(W0, X0, np.full(N, 7)), ValueError, "y_true"),
    (lambda: ge.smoothed_argmax_probs(W0, X0, -1.0), ValueError, "eps"),
    (lambda: ge.smoothed_argmax_probs(W0, np.zeros((2, D)), 1.0), ValueError, "X"),
    (lambda: ge.smoothed_argmax_grad(W0, X0, T0, 0.0), ValueError, "eps"),
    (lambda: ge.smoothed_argmax_grad(W0, X0, T0 * 1.0, 1.0), TypeError, "y_true"),
])
def test_bad_input_is_rejected_with_a_clear_error(call, exc, match) -> None:
    with pytest.raises(exc, match=match), np.errstate(divide="ignore", invalid="ignore"):
        call()
