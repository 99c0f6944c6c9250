r"""Two ways to get a gradient out of a score that has none: the policy gradient and the
zeroth-order gradient.

The setting is a linear softmax classifier. Its parameter is a matrix :math:`W` of shape
``(K, D)``; a data point :math:`x \in \mathbb{R}^D` gets logits :math:`z = Wx` and class
probabilities :math:`p_W(y \mid x) = \operatorname{softmax}(z / \tau)_y`. A reward matrix
:math:`R` of shape ``(K, K)`` scores a prediction :math:`y` of a point of true class :math:`t` by
:math:`r(t, y) = R_{ty}`; the identity matrix gives accuracy. The data set is ``X`` of shape
``(N, D)`` with true classes ``y_true`` of shape ``(N,)``.

The module reads in the order of the argument:

1. the policy, its score function, the expected reward and its exact gradient by enumerating
   the :math:`K` classes;
2. the REINFORCE (score-function) estimator with a baseline, the variance-optimal baseline and the
   exact variance of the estimator, again by enumeration;
3. the zeroth-order estimator of the gradient of any function from function values alone, and its
   variance-optimal baseline;
4. the argmax reward (the score one actually wants) and the exact expectation of its zeroth-order
   gradient: Gaussian directions turn the argmax into a Gaussian-perturbed ("probit") choice whose
   probabilities are one-dimensional integrals, done by Gauss--Hermite quadrature.

All functions take NumPy arrays (torch tensors are converted) and return float64 NumPy arrays;
randomness comes only from an explicit ``numpy.random.Generator``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr, softmax

from kexue_notes._validate import as_array, check_count, check_positive, is_tensor

__all__ = [  # noqa: RUF022 -- in the order of the argument, as the module reads
    "policy_probs",
    "score_function",
    "expected_reward",
    "exact_policy_grad",
    "sample_labels",
    "optimal_baseline",
    "reinforce_grad",
    "reinforce_variance",
    "zeroth_order_grad",
    "zeroth_order_optimal_baseline",
    "argmax_reward",
    "smoothed_argmax_probs",
    "smoothed_argmax_grad",
]

Array = NDArray[np.float64]

#: Gauss--Hermite nodes and weights for an expectation under N(0, 1) (probabilists' version).
_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(64)
_GH_WEIGHTS = _GH_WEIGHTS / np.sqrt(2.0 * np.pi)


# --- checks shared by the functions below ----------------------------------------------------

def _data(W: Any, X: Any) -> tuple[Array, Array]:
    Wa = as_array(W, "W", ndim=2)
    if Wa.shape[0] < 2:
        raise ValueError(f"W must have shape (K, D) with K >= 2 classes, got {Wa.shape}")
    Xa = as_array(X, "X", ndim=2, shape=(None, Wa.shape[1]))
    return Wa, Xa


def _labels(labels: Any, name: str, K: int,
            shape: tuple[int, ...] | None = None) -> NDArray[np.int64]:
    if is_tensor(labels):
        labels = labels.detach().cpu().numpy()
    arr = np.asarray(labels)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be an array of integer class labels, got dtype {arr.dtype}")
    if shape is not None and arr.shape[-len(shape):] != shape:
        raise ValueError(f"{name} must end with shape {shape}, got {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= K):
        raise ValueError(f"{name} must hold class labels in [0, {K - 1}]")
    return arr.astype(np.int64)


def _rewards(R: Any, K: int) -> Array:
    if R is None:
        return np.eye(K)
    return as_array(R, "R", shape=(K, K))


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def _tau(tau: Any, N: int) -> Array:
    """A positive temperature, scalar or one per data point, as an array of shape (N, 1)."""
    if _is_number(tau):
        return np.full((N, 1), check_positive(tau, "tau"))
    t = as_array(tau, "tau", shape=(N,))
    if np.any(t <= 0):
        raise ValueError(f"tau must be > 0, got minimum {t.min():.3g}")
    return t[:, None]


# --- 1. the policy and its exact gradient ----------------------------------------------------

def policy_probs(W: Any, X: Any, tau: Any = 1.0) -> Array:
    r"""Class probabilities of the linear softmax policy.

    .. math::

        p_W(y \mid x_n) = \frac{\exp\bigl((W x_n)_y / \tau_n\bigr)}
        {\sum_{k} \exp\bigl((W x_n)_k / \tau_n\bigr)} .

    Args:
        W: the parameter, shape ``(K, D)`` with :math:`K \ge 2`.
        X: data points, shape ``(N, D)``.
        tau: temperature :math:`\tau > 0`, a number or one per data point, shape ``(N,)``.

    Returns:
        Probabilities, shape ``(N, K)``; each row sums to one.

    Raises:
        ValueError: if a shape is wrong, an input holds NaN or infinity, or ``tau <= 0``.
        TypeError: if an input is not numeric.

    Used in: :doc:`/book/optimization/policy-gradient-vs-zeroth-order`, eq. :eq:`pgzo-policy`.
    """
    Wa, Xa = _data(W, X)
    return softmax(Xa @ Wa.T / _tau(tau, Xa.shape[0]), axis=-1)


def score_function(W: Any, X: Any, labels: Any, tau: Any = 1.0) -> Array:
    r"""The score :math:`\nabla_W \log p_W(y \mid x_n)` of the softmax policy, for given labels.

    .. math::

        \nabla_W \log p_W(y \mid x_n) = \frac{1}{\tau_n}\,\bigl(e_y - p_W(\cdot \mid x_n)\bigr)\,
        x_n^\top ,

    an outer product of shape ``(K, D)``, with :math:`e_y` the one-hot vector of class :math:`y`.

    Args:
        W: the parameter, shape ``(K, D)``.
        X: data points, shape ``(N, D)``.
        labels: one class per data point, integers of shape ``(N,)`` or ``(M, N)`` for
            :math:`M` draws.
        tau: temperature, a number or shape ``(N,)``.

    Returns:
        Scores, shape ``labels.shape + (K, D)``.

    Raises:
        ValueError: if a shape is wrong, a label is out of range or ``tau <= 0``.
        TypeError: if ``labels`` is not an integer array.

    Used in: :doc:`/book/optimization/policy-gradient-vs-zeroth-order`, eq. :eq:`pgzo-score`.
    """
    Wa, Xa = _data(W, X)
    K, N = Wa.shape[0], Xa.shape[0]
    lab = _labels(labels, "labels", K, (N,))
    t = _tau(tau, N)
    p = softmax(Xa @ Wa.T / t, axis=-1)
    coef = (np.eye(K)[lab] - p) / t                        # (..., N, K)
    return coef[..., :, None] * Xa[:, None, :]


def expected_reward(W: Any, X: Any, y_true: Any, R: Any = None, tau: Any = 1.0) -> float:
    r"""The differentiable surrogate: expected reward under the policy, averaged over the data.

    .. math::

        J(W) = \frac{1}{N} \sum_{n=1}^{N} \sum_{y=1}^{K} p_W(y \mid x_n)\, r(t_n, y) .

    Args:
        W: the parameter, shape ``(K, D)``.
        X: data points, shape ``(N, D)``.
        y_true: true classes :math:`t_n`, integers of shape ``(N,)``.
        R: reward matrix :math:`R_{ty} = r(t, y)`, shape ``(K, K)``; ``None`` means the identity
            (accuracy).
        tau: temperature, a number or shape ``(N,)``.

    Returns:
        :math:`J(W)`, a float.

    Raises:
        ValueError: if a shape is wrong, a label is out of range or ``tau <= 0``.
        TypeError: if ``y_true`` is not an integer array.

    Used in: :doc:`/book/optimization/policy-gradient-vs-zeroth-order`, eq. :eq:`pgzo-surrogate`.
    """
    Wa, Xa = _data(W, X)
    K, N = Wa.shape[0], Xa.shape[0]
    t = _labels(y_true, "y_true", K, (N,))
    r = _rewards(R, K)[t]                                   # (N, K)
    p = softmax(Xa @ Wa.T / _tau(tau, N), axis=-1)
    return float(np.mean(np.sum(p * r, axis=1)))


def exact_policy_grad(W: Any, X: Any, y_true: Any, R: Any = None, tau: Any = 1.0) -> Array:
    r"""The exact policy gradient :math:`\nabla_W J`, by summing over all :math:`K` classes.

    .. math::

        \nabla_W J = \frac{1}{N} \sum_{n} \sum_{y} r(t_n, y)\, \nabla_W p_W(y \mid x_n),
        \qquad
        \nabla_W p_W(y \mid x_n) = \frac{p_W(y \mid x_n)}{\tau_n}\,
        \bigl(e_y - p_W(\cdot \mid x_n)\bigr)\, x_n^\top .

    Args:
        W: the parameter, shape ``(K, D)``.
        X: data points, shape ``(N, D)``.
        y_true: true classes, integers of shape ``(N,)``.
        R: reward matrix, shape ``(K, K)``; ``None`` means accuracy.
        tau: temperature, a number or shape ``(N,)``.

    Returns:
        The gradient, shape ``(K, D)``.

    Raises:
        ValueError: if a shape is wrong, a label is out of range or ``tau <= 0``.
        TypeError: if ``y_true`` is not an integer array.

    Used in: :doc:`/book/optimization/policy-gradient-vs-zeroth-order`, eq. :eq:`pgzo-pg-exact`.
    """
    Wa, Xa = _data(W, X)
    K, N = Wa.shape[0], Xa.shape[0]
    t = _labels(y_true, "y_true", K, (N,))
    r = _rewards(R, K)[t]
    tt = _tau(tau, N)
    p = softmax(Xa @ Wa.T / tt, axis=-1)
    dz = p * (r - np.sum(p * r, axis=1, keepdims=True)) / tt   # dJ_n / dz_n, (N, K)
    return dz.T @ Xa / N


# --- 2. REINFORCE, its baselines and its variance --------------------------------------------

def sample_labels(W: Any, X: Any, n_samples: int, rng: np.random.Generator,
                  tau: Any = 1.0) -> NDArray[np.int64]:
    r"""Draw :math:`y_n \sim p_W(\cdot \mid x_n)` for every data point, ``n_samples`` times.

    Inverse-CDF sampling: :math:`y_n = \#\{k : U_n > \sum_{j \le k} p_W(j \mid x_n)\}` with
    :math:`U_n \sim \mathcal U(0, 1)`.

    Args:
        W: the parameter, shape ``(K, D)``.
        X: data points, shape ``(N, D)``.
        n_samples: number of draws :math:`M \ge 1`.
        rng: the ``numpy.random.Generator`` that draws :math:`U`.
        tau: temperature, a number or shape ``(N,)``.

    Returns:
        Labels, integers of shape ``(M, N)``.

    Raises:
        TypeError: if ``rng`` is not a ``numpy.random.Generator`` or ``n_samples`` not an integer.
        ValueError: if ``n_samples < 1`` or a shape is wrong.

    Used in: :doc:`/book/optimization/policy-gradient-vs-zeroth-order`.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    M = check_count(n_samples, "n_samples")
    p = policy_probs(W, X, tau)
    cdf = np.cumsum(p, axis=1)
    u = rng.random((M, p.shape[0], 1))
    return np.minimum(np.sum(u > cdf[None, :, :-1], axis=2), p.shape[1] - 1).astype(np.int64)


def optimal_baseline(probs: Any, rewards: Any, score_sqnorms: Any) -> Array:
    r"""The baseline that minimises the variance of :math:`(r - b)\,\nabla \log p`.

    .. math::

        b^\star = \frac{\mathbb{E}_{y \sim p}\bigl[r(y)\, \|\nabla \log p(y)\|^2\bigr]}
        {\mathbb{E}_{y \sim p}\bigl[\|\nabla \log p(y)\|^2\bigr]}
        = \frac{\sum_y p_y\, r_y\, g_y}{\sum_y p_y\, g_y},
        \qquad g_y = \|\nabla \log p(y)\|^2 .

    Args:
        probs: :math:`p`, probabilities of shape ``(..., K)`` summing to one on the last axis.
        rewards: :math:`r_y`, shape ``(..., K)``.
        score_sqnorms: :math:`g_y \ge 0`, shape ``(..., K)``.

    Returns:
        :math:`b^\star`, shape ``(...)``.

    Raises:
        ValueError: if the shapes differ, ``probs`` is not a probability vector, ``score_sqnorms``
            is negative, or :math:`\sum_y p_y g_y = 0` (every score vanishes: any baseline is
            optimal).

    Used in: :doc:`/book/optimization/policy-gradient-vs-zeroth-order`, eq. :eq:`pgzo-b-opt`.
    """
    p = as_array(probs, "probs")
    if p.ndim == 0:
        raise ValueError("probs must have shape (..., K), got a scalar")
    if np.any(p < 0) or not np.allclose(p.sum(axis=-1), 1.0, rtol=0, atol=1e-9):
        raise ValueError("probs must be non-negative and sum to 1 on the last axis")
    r = as_array(rewards, "rewards", shape=p.shape)
    g = as_array(score_sqnorms, "score_sqnorms", shape=p.shape)
    if np.any(g < 0):
        raise ValueError(f"score_sqnorms must be >= 0, got minimum {g.min():.3g}")
    den = np.sum(p * g, axis=-1)
    if np.any(den <= 0):
        raise ValueError("score_sqnorms: E[g] must be > 0, but every score with probability > 0 "
                         "vanishes")
    return np.sum(p * r * g, axis=-1) / den


def _baseline(baseline: Any, p: Array, r: Array) -> Array:
    """The per-point baseline b_n, shape (N,), for a keyword or explicit values."""
    N = p.shape[0]
    if isinstance(baseline, str):
        if baseline == "none":
            return np.zeros(N)
        if baseline == "mean":
            return np.sum(p * r, axis=1)
        if baseline == "optimal":
            # ||(e_y - p) x^T / tau||^2 = ||e_y - p||^2 ||x||^2 / tau^2; the factor ||x||^2/tau^2
            # is the same for every y, so it cancels in b*.
            g = np.sum((np.eye(p.shape[1])[:, None, :] - p[None]) ** 2, axis=2).T  # (N, K)
            return optimal_baseline(p, r, g)
        raise ValueError(f"baseline must be 'none', 'mean', 'optimal' or an array, "
                         f"got {baseline!r}")
    if _is_number(baseline):
        return np.full(N, float(baseline))
    return as_array(baseline, "baseline", shape=(N,))


def reinforce_grad(W: Any, X: Any, y_true: Any, labels: Any, R: Any = None,
                   baseline: Any = "none", tau: Any = 1.0) -> Array:
    r"""REINFORCE estimates of :math:`\nabla_W J`, one per draw of labels.

    For one draw :math:`y_n \sim p_W(\cdot \mid x_n)`, :math:`n = 1, \dots, N`,

    .. math::

        \hat g = \frac{1}{N} \sum_{n} \bigl(r(t_n, y_n) - b_n\bigr)\,
        \nabla_W \log p_W(y_n \mid x_n),

    unbiased for any baseline :math:`b_n` that does not depend on :math:`y_n`.

    Args:
        W: the parameter, shape ``(K, D)``.
        X: data points, shape ``(N, D)``.
        y_true: true classes, integers of shape ``(N,)``.
        labels: sampled classes, integers of shape ``(M, N)`` (from :func:`sample_labels`).
        R: reward matrix, shape ``(K, K)``; ``None`` means accuracy.
        baseline: ``"none"`` (:math:`b_n = 0`), ``"mean"`` (:math:`b_n = \mathbb{E}_y r`),
            ``"optimal"`` (:func:`optimal_baseline`, exact by enumeration), a number, or an array
            of shape ``(N,)``.
        tau: temperature, a number or shape ``(N,)``.

    Returns:
        The estimates, shape ``(M, K, D)``.

    Raises:
        ValueError: if a shape is wrong, a label is out of range, ``tau <= 0`` or ``baseline`` is
            an unknown keyword.
        TypeError: if a label array is not integer.

    Used in: :doc:`/book/optimization/policy-gradient-vs-zeroth-order`, eq. :eq:`pgzo-reinforce`.
    """
    Wa, Xa = _data(W, X)
    K, N = Wa.shape[0], Xa.shape[0]
    t = _labels(y_true, "y_true", K, (N,))
    lab = _labels(labels, "labels", K, (N,))
    if lab.ndim != 2:
        raise ValueError(f"labels must have shape (M, N), got {lab.shape}")
    r = _rewards(R, K)[t]                                   # (N, K)
    tt = _tau(tau, N)
    p = softmax(Xa @ Wa.T / tt, axis=-1)
    b = _baseline(baseline, p, r)
    gain = (r[np.arange(N), lab] - b) / tt[:, 0]            # (r(t_n, y_n) - b_n) / tau_n, (M, N)
    # sum_n gain_mn (e_{y_mn} - p_n) x_n^T, split into the one-hot part (one product per class)
    # and the part with p (one product for all classes).
    onehot = np.stack([(gain * (lab == k)) @ Xa for k in range(K)], axis=1)      # (M, K, D)
    mean_part = (gain @ (p[:, :, None] * Xa[:, None, :]).reshape(N, -1)).reshape(-1, K, Xa.shape[1])
    return (onehot - mean_part) / N


def reinforce_variance(W: Any, X: Any, y_true: Any, R: Any = None, baseline: Any = "none",
                       tau: Any = 1.0) -> float:
    r"""Exact total variance (trace of the covariance) of one REINFORCE estimate, by enumeration.

    The draws for different data points are independent, so

    .. math::

        \operatorname{tr}\operatorname{Cov}[\hat g] = \frac{1}{N^2} \sum_{n}
        \Bigl(\sum_{y} p_W(y \mid x_n)\, \bigl(r(t_n, y) - b_n\bigr)^2\,
        \|\nabla_W \log p_W(y \mid x_n)\|^2 - \|\nabla_W J_n\|^2\Bigr),

    with :math:`J_n = \sum_y p_W(y \mid x_n)\, r(t_n, y)`.

    Args:
        W: the parameter, shape ``(K, D)``.
        X: data points, shape ``(N, D)``.
        y_true: true classes, integers of shape ``(N,)``.
        R: reward matrix, shape ``(K, K)``; ``None`` means accuracy.
        baseline: as in :func:`reinforce_grad`.
        tau: temperature, a number or shape ``(N,)``.

    Returns:
        The total variance, a float :math:`\ge 0`.

    Raises:
        ValueError: as :func:`reinforce_grad`.
        TypeError: as :func:`reinforce_grad`.

    Used in: :doc:`/book/optimization/policy-gradient-vs-zeroth-order`, eq. :eq:`pgzo-rf-var`.
    """
    Wa, Xa = _data(W, X)
    K, N = Wa.shape[0], Xa.shape[0]
    t = _labels(y_true, "y_true", K, (N,))
    r = _rewards(R, K)[t]
    tt = _tau(tau, N)
    p = softmax(Xa @ Wa.T / tt, axis=-1)
    b = _baseline(baseline, p, r)
    x2 = np.sum(Xa**2, axis=1) / tt[:, 0] ** 2              # ||x_n||^2 / tau_n^2
    g = np.sum((np.eye(K)[:, None, :] - p[None]) ** 2, axis=2).T * x2[:, None]   # (N, K)
    second = np.sum(p * (r - b[:, None]) ** 2 * g, axis=1)
    dz = p * (r - np.sum(p * r, axis=1, keepdims=True))     # dJ_n / dz_n times tau_n
    mean_sq = np.sum(dz**2, axis=1) * x2
    return float(np.sum(second - mean_sq) / N**2)


# --- 3. the zeroth-order gradient ------------------------------------------------------------

def zeroth_order_optimal_baseline(fvals: Any, u: Any) -> float:
    r"""Sample estimate of the variance-optimal baseline of the zeroth-order estimator.

    .. math::

        b^\star = \frac{\mathbb{E}_u\bigl[f(x + \varepsilon u)\, \|u\|^2\bigr]}
        {\mathbb{E}_u\bigl[\|u\|^2\bigr]}
        \approx \frac{\sum_m f(x + \varepsilon u_m)\, \|u_m\|^2}{\sum_m \|u_m\|^2} .

    Args:
        fvals: :math:`f(x + \varepsilon u_m)`, shape ``(M,)``.
        u: the directions :math:`u_m`, shape ``(M, d)``.

    Returns:
        The estimate of :math:`b^\star`, a float.

    Raises:
        ValueError: if the shapes do not match, an input is not finite, or every direction is zero.

    Used in: :doc:`/book/optimization/policy-gradient-vs-zeroth-order`, eq. :eq:`pgzo-zo-b-opt`.
    """
    f = as_array(fvals, "fvals", ndim=1)
    ua = as_array(u, "u", ndim=2, shape=(f.shape[0], None))
    w = np.sum(ua**2, axis=1)
    if not np.sum(w) > 0:
        raise ValueError("u must hold at least one non-zero direction")
    return float(np.sum(f * w) / np.sum(w))


def zeroth_order_grad(f: Callable[[Array], Any], x: Any, eps: float, n_samples: int,
                      rng: np.random.Generator, baseline: Any = "value") -> Array:
    r"""Zeroth-order estimates of the gradient of :math:`f` at :math:`x`, one per direction.

    With Gaussian directions :math:`u_m \sim \mathcal N(0, I_d)`,

    .. math::

        \hat g_m = \frac{f(x + \varepsilon u_m) - b}{\varepsilon}\, u_m ,
        \qquad
        \mathbb{E}[\hat g_m]
        = \frac{1}{\varepsilon}\, \mathbb{E}_u\bigl[f(x + \varepsilon u)\, u\bigr],

    whose mean does not depend on :math:`b` because :math:`\mathbb{E}u = 0`.

    Args:
        f: a vectorised function mapping an array of points of shape ``(M, d)`` to values of shape
            ``(M,)``; it is called twice, once at ``x[None]`` and once at all perturbed points.
        x: the point, shape ``(d,)`` (flatten a matrix parameter first).
        eps: the step :math:`\varepsilon > 0`.
        n_samples: number of directions :math:`M \ge 1`.
        rng: the ``numpy.random.Generator`` that draws :math:`u`.
        baseline: ``"value"`` (:math:`b = f(x)`, the usual choice), ``"none"`` (:math:`b = 0`),
            ``"optimal"`` (:func:`zeroth_order_optimal_baseline` from the same directions; this
            reuse adds a bias of order :math:`1/M`), or a number.

    Returns:
        The estimates, shape ``(M, d)``.

    Raises:
        TypeError: if ``f`` is not callable, ``rng`` is not a Generator or ``n_samples`` is not an
            integer.
        ValueError: if ``x`` is not 1-D, ``eps <= 0``, ``n_samples < 1``, ``f`` returns the wrong
            shape or non-finite values, or ``baseline`` is an unknown keyword.

    Used in: :doc:`/book/optimization/policy-gradient-vs-zeroth-order`, eq. :eq:`pgzo-zo`.
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    xa = as_array(x, "x", ndim=1)
    e = check_positive(eps, "eps")
    M = check_count(n_samples, "n_samples")
    u = rng.standard_normal((M, xa.shape[0]))
    fu = as_array(f(xa[None] + e * u), "f(x + eps*u)", shape=(M,))
    if isinstance(baseline, str):
        if baseline == "value":
            b = float(as_array(f(xa[None]), "f(x)", shape=(1,))[0])
        elif baseline == "none":
            b = 0.0
        elif baseline == "optimal":
            b = zeroth_order_optimal_baseline(fu, u)
        else:
            raise ValueError(f"baseline must be 'value', 'none', 'optimal' or a number, "
                             f"got {baseline!r}")
    elif _is_number(baseline):
        b = float(baseline)
        if not np.isfinite(b):
            raise ValueError(f"baseline must be finite, got {baseline}")
    else:
        raise TypeError(f"baseline must be a keyword or a number, got {type(baseline).__name__}")
    return ((fu - b) / e)[:, None] * u


# --- 4. the argmax reward and the exact mean of its zeroth-order gradient ------------------

def argmax_reward(W: Any, X: Any, y_true: Any, R: Any = None) -> Array:
    r"""The score one actually wants: the reward of the most probable class, averaged over the data.

    .. math::

        \mathcal R(W) = \frac{1}{N} \sum_{n} r\bigl(t_n, \arg\max_y (W x_n)_y\bigr) .

    It is piecewise constant in :math:`W`, so its gradient is zero almost everywhere.

    Args:
        W: one parameter of shape ``(K, D)`` or a batch of shape ``(M, K, D)``.
        X: data points, shape ``(N, D)``.
        y_true: true classes, integers of shape ``(N,)``.
        R: reward matrix, shape ``(K, K)``; ``None`` means accuracy.

    Returns:
        :math:`\mathcal R`, shape ``()`` for one parameter or ``(M,)`` for a batch.

    Raises:
        ValueError: if a shape is wrong or a label is out of range.
        TypeError: if ``y_true`` is not an integer array.

    Used in: :doc:`/book/optimization/policy-gradient-vs-zeroth-order`, eq. :eq:`pgzo-argmax`.
    """
    Wa = as_array(W, "W")
    if Wa.ndim not in (2, 3) or Wa.shape[-2] < 2:
        raise ValueError(f"W must have shape (K, D) or (M, K, D) with K >= 2, got {Wa.shape}")
    K = Wa.shape[-2]
    Xa = as_array(X, "X", ndim=2, shape=(None, Wa.shape[-1]))
    t = _labels(y_true, "y_true", K, (Xa.shape[0],))
    Rm = _rewards(R, K)
    pred = np.argmax(Xa @ np.swapaxes(Wa, -1, -2), axis=-1)   # (..., N)
    return np.mean(Rm[t, pred], axis=-1)


def _probit_parts(Z: Array, sigma: Array) -> tuple[Array, Array]:
    """P[n, y] = P(argmax(z_n + sigma_n xi) = y) and dP[n, y, j] = dP[n, y] / dz[n, j]."""
    K = Z.shape[1]
    A = (Z[:, :, None] - Z[:, None, :]) / sigma[:, None, None]      # A[n, y, k] = (z_y - z_k)/s
    off = ~np.eye(K, dtype=bool)
    # P_y = E_{s ~ N(0,1)} prod_{k != y} Phi(A_yk + s)
    Phi = np.where(off[None, :, :, None], ndtr(A[..., None] + _GH_NODES), 1.0)   # (N, K, K, S)
    P = np.prod(Phi, axis=2) @ _GH_WEIGHTS
    # dP_y/dA_yj = phi(A_yj/sqrt2)/sqrt2 * E_{s ~ N(-A_yj/2, 1/2)} prod_{k != y, j} Phi(A_yk + s)
    s = -A[..., None] / 2 + _GH_NODES / np.sqrt(2.0)                 # (N, y, j, S)
    Phi2 = ndtr(A[:, :, None, :, None] + s[:, :, :, None, :])        # (N, y, j, k, S)
    keep = off[:, None, :] & off[None, :, :] & off[:, :, None]       # k != y, k != j, j != y
    Phi2 = np.where(keep[None, ..., None], Phi2, 1.0)
    dA = np.exp(-A**2 / 4) / np.sqrt(4 * np.pi) * (np.prod(Phi2, axis=3) @ _GH_WEIGHTS)
    dA = np.where(off[None], dA, 0.0)                                # (N, y, j)
    dP = -dA / sigma[:, None, None]
    dP[:, np.arange(K), np.arange(K)] = np.sum(dA, axis=2) / sigma[:, None]
    return P, dP


def smoothed_argmax_probs(W: Any, X: Any, eps: float) -> Array:
    r"""Probabilities of the argmax class when the parameter is perturbed by :math:`\varepsilon U`.

    With :math:`U` of shape ``(K, D)`` and independent :math:`\mathcal N(0, 1)` entries, the
    perturbed logits are :math:`(W + \varepsilon U) x_n = z_n + \sigma_n \xi` with
    :math:`\xi \sim \mathcal N(0, I_K)` and :math:`\sigma_n = \varepsilon \|x_n\|`, so

    .. math::

        q_\varepsilon(y \mid x_n) = P\bigl(\arg\max_k (z_{n,k} + \sigma_n \xi_k) = y\bigr)
        = \mathbb{E}_{s \sim \mathcal N(0,1)} \prod_{k \ne y}
        \Phi\Bigl(\frac{z_{n,y} - z_{n,k}}{\sigma_n} + s\Bigr),

    a Gaussian ("probit") choice model computed by 64-point Gauss--Hermite quadrature.

    Args:
        W: the parameter, shape ``(K, D)``.
        X: data points, shape ``(N, D)``; no row may be zero.
        eps: the step :math:`\varepsilon > 0`.

    Returns:
        Probabilities, shape ``(N, K)``.

    Raises:
        ValueError: if a shape is wrong, ``eps <= 0`` or a row of ``X`` is zero.

    Used in: :doc:`/book/optimization/policy-gradient-vs-zeroth-order`, eq. :eq:`pgzo-probit`.
    """
    Wa, Xa = _data(W, X)
    sigma = _sigma(Xa, eps)
    return _probit_parts(Xa @ Wa.T, sigma)[0]


def _sigma(Xa: Array, eps: float) -> Array:
    e = check_positive(eps, "eps")
    norms = np.linalg.norm(Xa, axis=1)
    if np.any(norms == 0):
        raise ValueError("X must have no zero rows: the perturbation never moves a zero point")
    return e * norms


def smoothed_argmax_grad(W: Any, X: Any, y_true: Any, eps: float, R: Any = None) -> Array:
    r"""The exact mean of the zeroth-order estimate of :math:`\nabla_W \mathcal R` (no sampling).

    By Stein's lemma the mean of the zeroth-order estimator is the gradient of the smoothed
    objective, and smoothing the argmax reward turns it into the expected reward of the probit
    policy :func:`smoothed_argmax_probs`:

    .. math::

        \frac{1}{\varepsilon}\, \mathbb{E}_U\bigl[\mathcal R(W + \varepsilon U)\, U\bigr]
        = \nabla_W\, \mathbb{E}_U\, \mathcal R(W + \varepsilon U)
        = \frac{1}{N} \sum_{n} \sum_{y} r(t_n, y)\, \nabla_W q_\varepsilon(y \mid x_n),

    where :math:`\nabla_W q_\varepsilon(y \mid x_n)
    = \bigl(\partial q_\varepsilon(y \mid x_n) / \partial z_n\bigr)\, x_n^\top`, and the derivative
    of each probit probability is again a one-dimensional Gaussian integral.

    Args:
        W: the parameter, shape ``(K, D)``.
        X: data points, shape ``(N, D)``; no row may be zero.
        y_true: true classes, integers of shape ``(N,)``.
        eps: the step :math:`\varepsilon > 0`.
        R: reward matrix, shape ``(K, K)``; ``None`` means accuracy.

    Returns:
        The gradient of the smoothed reward, shape ``(K, D)``.

    Raises:
        ValueError: if a shape is wrong, a label is out of range, ``eps <= 0`` or a row of ``X``
            is zero.
        TypeError: if ``y_true`` is not an integer array.

    Used in: :doc:`/book/optimization/policy-gradient-vs-zeroth-order`, eq. :eq:`pgzo-stein`.
    """
    Wa, Xa = _data(W, X)
    K, N = Wa.shape[0], Xa.shape[0]
    t = _labels(y_true, "y_true", K, (N,))
    r = _rewards(R, K)[t]                                   # (N, K)
    _, dP = _probit_parts(Xa @ Wa.T, _sigma(Xa, eps))
    dz = np.einsum("ny,nyj->nj", r, dP)
    return dz.T @ Xa / N
