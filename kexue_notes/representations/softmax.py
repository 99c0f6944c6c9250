r"""Softmax applied again and again: every distribution flows to the uniform one.

Write :math:`S_\tau(x)_i = e^{x_i/\tau} / \sum_j e^{x_j/\tau}` for the softmax of
:math:`x \in \mathbb{R}^n` at temperature :math:`\tau > 0`, and :math:`d(x) = \max_i x_i -
\min_i x_i` for the spread of :math:`x`. Iterating :math:`S_1` from any start converges to
:math:`\mathbf 1/n`: after one step the spread is below one, and on :math:`[0, 1]` one step maps a
spread :math:`d` to at most :math:`(e^d - 1)/n \le (e - 1)\,d/n`, a contraction for every
:math:`n \ge 2`. Close to the uniform vector the spread shrinks by the factor :math:`1/(n\tau)`
per step, the nonzero eigenvalue of the Jacobian :math:`(\operatorname{diag} p - pp^\top)/\tau`.

With a temperature the picture changes: every fixed point of :math:`S_\tau` takes at most two
distinct values, and a fixed point with :math:`k` large entries and spread :math:`d` solves
:math:`d = (e^{d/\tau} - 1)/(k e^{d/\tau} + n - k)`. For :math:`k = 1` the right-hand side is also
the largest spread one step can produce from a spread :math:`d`, so the iteration reaches the
uniform vector from every start exactly when that equation has no positive root, i.e. above a
critical temperature (:math:`1/2` for :math:`n = 2`, above :math:`1/n` for :math:`n \ge 3`).

The module follows that order: the map and its iterates, the spread and the distance to uniform,
the Jacobian, the spread bounds, and the two-level fixed points with the critical temperature.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import optimize

from kexue_notes._validate import as_array, check_count, check_positive

__all__ = [  # noqa: RUF022 -- in the order of the argument, as the module reads
    "softmax",
    "iterate_softmax",
    "spread",
    "spread_history",
    "deviation_from_uniform",
    "steps_to_uniform",
    "softmax_jacobian",
    "spread_bound",
    "contraction_constant",
    "two_level_spread",
    "two_level_vector",
    "two_level_fixed_points",
    "critical_temperature",
]


# --- checks shared by the functions below ----------------------------------------------------

def _check_vectors(x: Any, name: str = "x") -> NDArray[np.float64]:
    """``x`` as a finite float64 array whose last axis holds at least two entries."""
    arr = as_array(x, name)
    if arr.ndim == 0 or arr.shape[-1] < 2:
        raise ValueError(f"{name} must have at least 2 entries along its last axis, "
                         f"got shape {arr.shape}")
    return arr


def _check_size(n: Any) -> int:
    return check_count(n, "n", 2)


def _check_level(k: Any, n: int) -> int:
    k = check_count(k, "k", 1)
    if k >= n:
        raise ValueError(f"k must be between 1 and n - 1 = {n - 1}, got {k}")
    return k


def _check_spreads(d: Any) -> NDArray[np.float64]:
    arr = as_array(d, "d")
    if np.any(arr < 0):
        raise ValueError(f"d must be >= 0 (a spread), got minimum {arr.min():.3g}")
    return arr


def _scalar_or_array(arr: NDArray[np.float64]) -> float | NDArray[np.float64]:
    return float(arr) if arr.ndim == 0 else arr


# --- the map and its iterates ----------------------------------------------------------------

def softmax(x: Any, tau: float = 1.0) -> NDArray[np.float64]:
    r"""Softmax at temperature :math:`\tau` along the last axis.

    .. math:: S_\tau(x)_i = \frac{e^{x_i/\tau}}{\sum_{j=1}^n e^{x_j/\tau}},

    computed as :math:`e^{(x_i - \max_j x_j)/\tau}` over its sum, so large inputs do not overflow.

    Args:
        x: scores, shape ``(..., n)`` with :math:`n \ge 2` (NumPy array, list or torch tensor).
        tau: temperature :math:`\tau > 0`.

    Returns:
        Probabilities, float64 array of the shape of ``x``; each row sums to one.

    Raises:
        ValueError: if ``x`` has fewer than 2 entries along its last axis or holds NaN/inf, or
            ``tau`` <= 0.
        TypeError: if ``x`` is not numeric or ``tau`` is not a real number.

    Used in: :doc:`/book/representations/repeated-softmax`, eq. :eq:`softmax-temperature`.
    """
    x = _check_vectors(x)
    τ = check_positive(tau, "tau")
    z = (x - x.max(axis=-1, keepdims=True)) / τ
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def iterate_softmax(x: Any, steps: int, tau: float = 1.0) -> NDArray[np.float64]:
    r"""The orbit :math:`x, S_\tau(x), S_\tau^2(x), \dots, S_\tau^{K}(x)` of repeated softmax.

    .. math:: p^{(0)} = x, \qquad p^{(k+1)} = S_\tau\big(p^{(k)}\big), \quad k = 0, \dots, K-1 .

    Args:
        x: starting scores, shape ``(..., n)`` with :math:`n \ge 2`; a batch of vectors iterates
            row by row.
        steps: number of softmax applications :math:`K \ge 0`.
        tau: temperature :math:`\tau > 0`.

    Returns:
        Array of shape ``(K + 1, ..., n)``; entry ``k`` is :math:`p^{(k)}` (entry 0 is ``x``).

    Raises:
        ValueError: if ``x`` is not a finite array with at least 2 entries along its last axis,
            ``steps`` < 0 or ``tau`` <= 0.
        TypeError: if ``steps`` is not an integer.

    Used in: :doc:`/book/representations/repeated-softmax`, eq. :eq:`softmax-iteration`.
    """
    x = _check_vectors(x)
    steps = check_count(steps, "steps", 0)
    τ = check_positive(tau, "tau")
    orbit = np.empty((steps + 1, *x.shape))
    orbit[0] = x
    for k in range(steps):  # a loop over time steps, not over data: each step needs the last
        orbit[k + 1] = softmax(orbit[k], τ)
    return orbit


# --- how far from uniform ----------------------------------------------------------------------

def spread(p: Any) -> float | NDArray[np.float64]:
    r"""The spread (range) of each vector along the last axis.

    .. math:: d(p) = \max_i p_i - \min_i p_i .

    Args:
        p: vectors, shape ``(..., n)`` with :math:`n \ge 2`.

    Returns:
        :math:`d(p)`, shape ``p.shape[:-1]`` (a float for one vector).

    Raises:
        ValueError: if ``p`` has fewer than 2 entries along its last axis or holds NaN/inf.

    Used in: :doc:`/book/representations/repeated-softmax`, eq. :eq:`softmax-spread-bound`.
    """
    p = _check_vectors(p, "p")
    return _scalar_or_array(np.ptp(p, axis=-1))


def spread_history(x: Any, steps: int, tau: float = 1.0) -> NDArray[np.float64]:
    r"""The spreads :math:`d_k = d\big(S_\tau^k(x)\big)` along the orbit of repeated softmax.

    .. math:: d_k = \max_i p^{(k)}_i - \min_i p^{(k)}_i, \qquad k = 0, 1, \dots, K .

    Args:
        x: starting scores, shape ``(..., n)``.
        steps: number of softmax applications :math:`K \ge 0`.
        tau: temperature :math:`\tau > 0`.

    Returns:
        Array of shape ``(K + 1, ...)``; entry 0 is the spread of ``x`` itself.

    Raises:
        ValueError: as :func:`iterate_softmax`.
        TypeError: as :func:`iterate_softmax`.

    Used in: :doc:`/book/representations/repeated-softmax`, eq. :eq:`softmax-spread-bound`.
    """
    return np.ptp(iterate_softmax(x, steps, tau), axis=-1)


def deviation_from_uniform(p: Any) -> float | NDArray[np.float64]:
    r"""The largest distance of an entry from :math:`1/n` (the sup-norm distance to uniform).

    .. math:: \delta(p) = \max_i \left| p_i - \tfrac1n \right| .

    Args:
        p: vectors, shape ``(..., n)`` with :math:`n \ge 2` (usually probability vectors).

    Returns:
        :math:`\delta(p)`, shape ``p.shape[:-1]`` (a float for one vector).

    Raises:
        ValueError: if ``p`` has fewer than 2 entries along its last axis or holds NaN/inf.

    Used in: :doc:`/book/representations/repeated-softmax`.
    """
    p = _check_vectors(p, "p")
    return _scalar_or_array(np.max(np.abs(p - 1 / p.shape[-1]), axis=-1))


def steps_to_uniform(x: Any, tol: float, tau: float = 1.0, max_steps: int = 10_000) -> int:
    r"""How many softmax applications bring one vector within ``tol`` of uniform.

    .. math:: K(x, \epsilon) = \min\{k \ge 1 : \delta\big(S_\tau^k(x)\big) \le \epsilon\},

    with :math:`\delta` the sup-norm distance of :func:`deviation_from_uniform`.

    Args:
        x: starting scores, shape ``(n,)`` with :math:`n \ge 2`.
        tol: the tolerance :math:`\epsilon > 0`.
        tau: temperature :math:`\tau > 0`.
        max_steps: give up after this many steps (:math:`\ge 1`).

    Returns:
        :math:`K(x, \epsilon)` as an int.

    Raises:
        ValueError: if ``x`` is not a finite 1-D array with at least 2 entries, ``tol`` or
            ``tau`` <= 0, or the orbit is not within ``tol`` after ``max_steps`` steps (it may
            converge to a non-uniform fixed point when :math:`\tau` is small).
        TypeError: if ``max_steps`` is not an integer.

    Used in: :doc:`/book/representations/repeated-softmax`, eq. :eq:`softmax-iteration`.
    """
    x = as_array(x, "x", ndim=1)
    _check_vectors(x)
    ε = check_positive(tol, "tol")
    τ = check_positive(tau, "tau")
    max_steps = check_count(max_steps, "max_steps", 1)
    p = x
    for k in range(1, max_steps + 1):
        p = softmax(p, τ)
        if deviation_from_uniform(p) <= ε:
            return k
    raise ValueError(f"x is not within tol = {ε:g} of uniform after max_steps = {max_steps} "
                     f"steps (the orbit may converge to a non-uniform fixed point)")


# --- the linearisation ------------------------------------------------------------------------

def softmax_jacobian(x: Any, tau: float = 1.0) -> NDArray[np.float64]:
    r"""The Jacobian of :math:`S_\tau` at :math:`x`.

    .. math::

        \frac{\partial S_\tau(x)_i}{\partial x_j} = \frac{1}{\tau}\big(p_i\,\delta_{ij} -
        p_i p_j\big), \qquad p = S_\tau(x),

    i.e. :math:`J = (\operatorname{diag} p - p p^\top)/\tau`. At the uniform vector its
    eigenvalues are :math:`1/(n\tau)` (on the vectors that sum to zero) and 0 (on
    :math:`\mathbf 1`).

    Args:
        x: scores, shape ``(..., n)`` with :math:`n \ge 2`.
        tau: temperature :math:`\tau > 0`.

    Returns:
        Array of shape ``(..., n, n)``; entry ``[..., i, j]`` is
        :math:`\partial S_\tau(x)_i / \partial x_j`.

    Raises:
        ValueError: as :func:`softmax`.
        TypeError: as :func:`softmax`.

    Used in: :doc:`/book/representations/repeated-softmax`, eq. :eq:`softmax-jacobian`.
    """
    τ = check_positive(tau, "tau")
    p = softmax(x, τ)
    diag = p[..., :, None] * np.eye(p.shape[-1])
    return (diag - p[..., :, None] * p[..., None, :]) / τ


# --- bounds on one step ------------------------------------------------------------------------

def spread_bound(d: Any, n: int, tau: float = 1.0) -> float | NDArray[np.float64]:
    r"""The contraction bound on the spread after one softmax step.

    For any :math:`x \in \mathbb{R}^n` with spread :math:`d`,

    .. math:: d\big(S_\tau(x)\big) \le \frac{e^{d/\tau} - 1}{n} .

    Args:
        d: spread(s) :math:`d \ge 0`, any shape.
        n: length of the vectors, :math:`\ge 2`.
        tau: temperature :math:`\tau > 0`.

    Returns:
        The bound, shape of ``d`` (a float for a scalar).

    Raises:
        ValueError: if some ``d`` < 0, ``n`` < 2 or ``tau`` <= 0.
        TypeError: if ``n`` is not an integer.

    Used in: :doc:`/book/representations/repeated-softmax`, eq. :eq:`softmax-spread-bound`.
    """
    d = _check_spreads(d)
    n = _check_size(n)
    τ = check_positive(tau, "tau")
    return _scalar_or_array(np.expm1(d / τ) / n)


def contraction_constant(n: int, tau: float = 1.0) -> float:
    r"""The Lipschitz constant of the spread bound on :math:`[0, 1]`.

    :math:`e^{d/\tau}` is convex, so it lies below its chord on :math:`[0, 1]`, and

    .. math:: \frac{e^{d/\tau} - 1}{n} \le L\,d, \qquad L = \frac{e^{1/\tau} - 1}{n},
       \qquad 0 \le d \le 1 .

    For :math:`\tau = 1`, :math:`L = (e - 1)/n < 1` for every :math:`n \ge 2`.

    Args:
        n: length of the vectors, :math:`\ge 2`.
        tau: temperature :math:`\tau > 0`.

    Returns:
        :math:`L` as a float.

    Raises:
        ValueError: if ``n`` < 2 or ``tau`` <= 0.
        TypeError: if ``n`` is not an integer.

    Used in: :doc:`/book/representations/repeated-softmax`, eq. :eq:`softmax-spread-bound`.
    """
    n = _check_size(n)
    τ = check_positive(tau, "tau")
    return float(np.expm1(1 / τ) / n)


def two_level_spread(d: Any, n: int, tau: float = 1.0, k: int = 1) -> float | NDArray[np.float64]:
    r"""The spread after one softmax step of a vector with only two distinct values.

    If :math:`k` entries equal :math:`m + d` and the other :math:`n - k` equal :math:`m`, then

    .. math:: g_k(d) = d\big(S_\tau(x)\big) = \frac{e^{d/\tau} - 1}{k\,e^{d/\tau} + n - k} .

    For :math:`k = 1` this is the largest spread one step can produce from any :math:`x` of
    spread :math:`d`; for :math:`n = 2` it is :math:`\tanh\big(d/(2\tau)\big)`.

    Args:
        d: spread(s) :math:`d \ge 0`, any shape.
        n: length of the vectors, :math:`\ge 2`.
        tau: temperature :math:`\tau > 0`.
        k: number of entries at the top value, :math:`1 \le k \le n - 1`.

    Returns:
        :math:`g_k(d)`, shape of ``d`` (a float for a scalar).

    Raises:
        ValueError: if some ``d`` < 0, ``n`` < 2, ``tau`` <= 0 or ``k`` outside
            :math:`[1, n-1]`.
        TypeError: if ``n`` or ``k`` is not an integer.

    Used in: :doc:`/book/representations/repeated-softmax`, eq. :eq:`softmax-worst-case`.
    """
    d = _check_spreads(d)
    n = _check_size(n)
    k = _check_level(k, n)
    τ = check_positive(tau, "tau")
    # divide top and bottom by e^{d/τ}: no overflow for large d/τ, and expm1 keeps small d exact
    return _scalar_or_array(-np.expm1(-d / τ) / (k + (n - k) * np.exp(-d / τ)))


def two_level_vector(d: float, n: int, k: int = 1) -> NDArray[np.float64]:
    r"""The probability vector with :math:`k` entries :math:`a` and :math:`n - k` entries
    :math:`b`, :math:`a - b = d`.

    .. math:: b = \frac{1 - k d}{n}, \qquad a = b + d, \qquad k a + (n - k) b = 1 .

    Args:
        d: the spread, :math:`0 \le d \le 1/k` (so that :math:`b \ge 0`).
        n: length, :math:`\ge 2`.
        k: number of large entries, :math:`1 \le k \le n - 1`.

    Returns:
        Array of shape ``(n,)``: ``k`` copies of :math:`a`, then ``n - k`` copies of :math:`b`.

    Raises:
        ValueError: if ``d`` is outside :math:`[0, 1/k]`, ``n`` < 2 or ``k`` outside
            :math:`[1, n-1]`.
        TypeError: if ``d`` is not a real number or ``n``, ``k`` are not integers.

    Used in: :doc:`/book/representations/repeated-softmax`, eq. :eq:`softmax-two-level`.
    """
    n = _check_size(n)
    k = _check_level(k, n)
    d = check_positive(d, "d", allow_zero=True)
    if d > 1 / k:
        raise ValueError(f"d must be <= 1/k = {1 / k:g} for a probability vector, got {d}")
    b = (1 - k * d) / n
    return np.concatenate([np.full(k, b + d), np.full(n - k, b)])


# --- fixed points with temperature -------------------------------------------------------------

def two_level_fixed_points(n: int, tau: float, k: int = 1) -> NDArray[np.float64]:
    r"""The non-uniform fixed points of :math:`S_\tau` with :math:`k` large entries, as spreads.

    Every fixed point of :math:`S_\tau` on the simplex takes at most two values; one with
    :math:`k` entries at the top and spread :math:`d > 0` solves

    .. math:: d = g_k(d) = \frac{e^{d/\tau} - 1}{k\,e^{d/\tau} + n - k}, \qquad 0 < d < 1/k .

    :math:`g_k'(d) = 1` is a quadratic in :math:`u = e^{d/\tau}`,
    :math:`\tau(k u + n - k)^2 = n u`, so :math:`g_k(d) - d` is monotone between at most two
    turning points; each sign change between them is bracketed and solved with
    ``scipy.optimize.brentq``.

    Args:
        n: length of the vectors, :math:`\ge 2`.
        tau: temperature :math:`\tau > 0`.
        k: number of entries at the top value, :math:`1 \le k \le n - 1`.

    Returns:
        The positive roots :math:`d`, sorted, shape ``(r,)`` with :math:`r \in \{0, 1, 2\}`.

    Raises:
        ValueError: if ``n`` < 2, ``tau`` <= 0 or ``k`` outside :math:`[1, n-1]`.
        TypeError: if ``n`` or ``k`` is not an integer.

    Used in: :doc:`/book/representations/repeated-softmax`, eq. :eq:`softmax-two-level`.
    """
    n = _check_size(n)
    k = _check_level(k, n)
    τ = check_positive(tau, "tau")

    def h(d: float) -> float:
        return float(two_level_spread(d, n, τ, k)) - d

    # turning points of h: roots u > 1 of τ k² u² + (2τ k (n-k) - n) u + τ (n-k)² = 0
    turning = np.roots([τ * k**2, 2 * τ * k * (n - k) - n, τ * (n - k) ** 2])
    turning = np.real(turning[np.isreal(turning)])
    d_end = 1 / k
    inner = sorted(τ * np.log(u) for u in turning if u > 1 and τ * np.log(u) < d_end)
    edges = [0.0, *inner, d_end]
    roots = []
    for lo, hi in pairwise(edges[1:]):  # h(0) = 0 and h is monotone up to the first turning
        if h(lo) * h(hi) < 0:             # point, so no root lies in [0, edges[1]]
            roots.append(optimize.brentq(h, lo, hi, xtol=1e-15, rtol=1e-14))
    return np.array(roots)


def critical_temperature(n: int) -> float:
    r"""The temperature below which repeated :math:`S_\tau` no longer reaches uniform from every
    start.

    For :math:`n = 2`, :math:`\tau_c = 1/2` (the pitchfork of :math:`d = \tanh(d/(2\tau))`). For
    :math:`n \ge 3` the one-top fixed point appears in a saddle-node where
    :math:`d = g_1(d)` and :math:`g_1'(d) = 1`. With :math:`s = d/\tau` this is the positive root
    of

    .. math::

        s = \frac{(e^s - 1)(e^s + n - 1)}{n e^s}, \qquad
        \tau_c = \frac{n e^s}{(e^s + n - 1)^2} > \frac1n .

    Args:
        n: length of the vectors, :math:`\ge 2`.

    Returns:
        :math:`\tau_c` as a float.

    Raises:
        ValueError: if ``n`` < 2.
        TypeError: if ``n`` is not an integer.

    Used in: :doc:`/book/representations/repeated-softmax`, eq. :eq:`softmax-critical-temperature`.
    """
    n = _check_size(n)
    if n == 2:
        return 0.5

    def h(s: float) -> float:
        return s - (np.expm1(s) * (np.exp(s) + n - 1)) / (n * np.exp(s))

    hi = 1.0
    while h(hi) > 0:  # h > 0 just right of 0 (h ~ (n-2) s² / 2n) and h -> -inf: widen the bracket
        hi *= 2.0
    lo = hi / 2 if hi > 1.0 else 1e-3
    s = optimize.brentq(h, lo, hi, xtol=1e-15, rtol=1e-14)
    u = np.exp(s)
    return float(n * u / (u + n - 1) ** 2)
