r"""Optimization as sampling: the update as the mean of a Boltzmann distribution over steps.

At parameters :math:`\theta` with loss :math:`l`, give every candidate step :math:`\Delta` the
unnormalised density

.. math::

   \rho(\Delta) = \exp\Bigl(-\frac{l(\theta + \Delta) - l(\theta)}{\alpha}\Bigr), \qquad \alpha > 0,

and take the step :math:`\Delta^* = \mathbb E_p[\Delta]` under :math:`p = \rho / Z`
(:func:`log_update_density`). Nothing here needs a gradient. With a gradient :math:`g` and the
first-order model :math:`l(\theta + \Delta) - l(\theta) \approx g^\top\Delta` on the ball
:math:`\|\Delta\| \le \varepsilon`, the mean is a Bessel-function ratio times :math:`-g/\|g\|`
(:func:`ball_log_partition`, :func:`bessel_ratio`, :func:`ball_expected_update`): gradient descent,
with learning rate :math:`\varepsilon^2/((d+2)\alpha)` when :math:`\alpha` is large
(:func:`ball_gd_learning_rate`). With the second-order model, :math:`p` is the Gaussian
:math:`\mathcal N(-H^{-1}g, \alpha H^{-1})` (:func:`gaussian_update_distribution`), whose mean is
Newton's step. :func:`sample_ball_target` draws exact samples of the first-order :math:`p`, for
Monte Carlo checks.

Without a gradient of :math:`l`, the mean is estimated by self-normalised importance sampling
(:func:`snis_mean`, :func:`effective_sample_size`) with a proposal guided by the gradient of a
differentiable surrogate (:func:`mixture_proposal_sample`, :func:`mixture_proposal_log_density`,
:func:`guided_snis_update`). The last two functions are the example used on the page: the 0-1 loss
of a linear classifier and its differentiable surrogate, the logistic cross-entropy
(:func:`zero_one_loss`, :func:`cross_entropy`).

Everything is NumPy float64; torch tensors are accepted and converted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import cho_factor, cho_solve
from scipy.special import expit, gammaln, ive, logsumexp

from kexue_notes._validate import as_array, check_count, check_fraction, check_positive, is_tensor

__all__ = [  # noqa: RUF022 -- in the order of the page, as the module reads
    "log_update_density",
    "ball_log_partition",
    "bessel_ratio",
    "ball_expected_update",
    "ball_gd_learning_rate",
    "sample_ball_target",
    "gaussian_update_distribution",
    "snis_mean",
    "effective_sample_size",
    "mixture_proposal_log_density",
    "mixture_proposal_sample",
    "SnisStep",
    "guided_snis_update",
    "zero_one_loss",
    "cross_entropy",
]

# --- the sampling view ----------------------------------------------------------------------


def log_update_density(loss_new: Any, loss_now: Any, alpha: float) -> NDArray[np.float64]:
    r"""Log of the unnormalised density of a candidate step :math:`\Delta`.

    .. math::

       \log\rho(\Delta) = -\frac{l(\theta + \Delta) - l(\theta)}{\alpha}, \qquad
       p(\Delta \mid \theta) = \frac{\rho(\Delta)}{Z(\theta)}

    Args:
        loss_new: losses :math:`l(\theta + \Delta_i)` at the candidate steps, any shape. ``+inf``
            is allowed and means "outside the support" (density zero).
        loss_now: the loss :math:`l(\theta)` at the current point, a finite number.
        alpha: the temperature :math:`\alpha > 0`.

    Returns:
        :math:`\log\rho(\Delta_i)`, the shape of ``loss_new`` (``-inf`` where the loss is ``+inf``).

    Raises:
        ValueError: if ``loss_new`` holds NaN or ``-inf``, ``loss_now`` is not finite, or
            ``alpha`` is not positive.

    Used in: :doc:`/book/optimization/sampling-view-of-optimization`,
    eq. :eq:`sampling-view-target`.
    """
    a = check_positive(alpha, "alpha")
    now = float(as_array(loss_now, "loss_now", ndim=0))
    new = _as_log_weights(loss_new, "loss_new", sign=+1)
    return -(new - now) / a


def _as_log_weights(x: Any, name: str, *, sign: int = -1) -> NDArray[np.float64]:
    """A float64 array that may hold infinity of one sign only (``sign * inf``), never NaN."""
    if is_tensor(x):
        x = x.detach().cpu().numpy()
    if isinstance(x, str | bytes) or x is None:
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}")
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}") from err
    bad = np.isnan(arr) | (arr == -sign * np.inf)
    if np.any(bad):
        allowed = "+inf" if sign > 0 else "-inf"
        raise ValueError(f"{name} must not hold NaN (only {allowed} is allowed)")
    return arr


# --- first order: the ball ------------------------------------------------------------------


def _grad_norm(g: Any) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    g = as_array(g, "g")
    if g.ndim == 0 or g.shape[-1] == 0:
        raise ValueError(f"g must have shape (..., d) with d >= 1, got {g.shape}")
    return g, np.linalg.norm(g, axis=-1), g.shape[-1]


def _log_bessel_i(nu: float, k: NDArray[np.float64]) -> NDArray[np.float64]:
    r"""``log I_nu(k)`` for ``k > 0``: from ``ive`` where it does not underflow, else its series."""
    out = np.empty_like(k)
    scaled = ive(nu, k)
    ok = scaled > 0
    out[ok] = np.log(scaled[ok]) + k[ok]
    if np.any(~ok):  # I_nu(k) = sum_m (k/2)^(2m+nu) / (m! Gamma(m+nu+1)), summed in log space
        kb = k[~ok][:, None]
        m = np.arange(int(np.ceil(kb.max())) + 200)[None, :]
        terms = (2 * m + nu) * np.log(kb / 2) - gammaln(m + 1) - gammaln(m + nu + 1)
        out[~ok] = logsumexp(terms, axis=1)
    return out


def ball_log_partition(g: Any, eps: float, alpha: float) -> NDArray[np.float64]:
    r"""Log normaliser of the first-order density on the ball :math:`\|\Delta\| \le \varepsilon`.

    .. math::

       Z(g) = \int_{\|\Delta\|\le\varepsilon} e^{-g^\top\Delta/\alpha}\,d\Delta
            = \Bigl(\frac{2\pi\varepsilon\alpha}{\|g\|}\Bigr)^{d/2}
              I_{d/2}\Bigl(\frac{\varepsilon\|g\|}{\alpha}\Bigr),

    with :math:`I_\nu` the modified Bessel function of the first kind; at :math:`g = 0` it is the
    volume of the ball, :math:`\pi^{d/2}\varepsilon^d/\Gamma(d/2+1)`. Computed in log space, so it
    neither overflows for large :math:`\varepsilon\|g\|/\alpha` nor underflows for large :math:`d`.

    Args:
        g: gradient(s), shape ``(..., d)``.
        eps: radius :math:`\varepsilon > 0` of the ball.
        alpha: temperature :math:`\alpha > 0`.

    Returns:
        :math:`\log Z`, shape ``g.shape[:-1]``.

    Raises:
        ValueError: if ``g`` is not finite or has no last axis, or ``eps``/``alpha`` is not
            positive.

    Used in: :doc:`/book/optimization/sampling-view-of-optimization`, eq. :eq:`ball-partition`.
    """
    e, a = check_positive(eps, "eps"), check_positive(alpha, "alpha")
    g, norm, d = _grad_norm(g)
    nu = d / 2
    log_vol = nu * math.log(math.pi) + d * math.log(e) - math.lgamma(nu + 1)
    out = np.full(norm.shape, log_vol)
    pos = norm > 0
    if np.any(pos):
        k = e * norm[pos] / a
        out[pos] = nu * np.log(2 * np.pi * e * a / norm[pos]) + _log_bessel_i(nu, k)
    return out


def bessel_ratio(nu: float, k: Any) -> NDArray[np.float64]:
    r"""The ratio :math:`r_\nu(k) = I_{\nu+1}(k) / I_\nu(k)` of modified Bessel functions.

    It rises from :math:`r_\nu(0) = 0`, as :math:`k/(2\nu+2)`, to 1 as :math:`k \to \infty`.
    Computed from ``scipy.special.ive``; where :math:`I_\nu(k)` underflows (large :math:`\nu`, small
    :math:`k`) it is computed from the continued fraction
    :math:`r_\nu = k/(2(\nu+1) + k\,r_{\nu+1})`, run backwards from deep enough.

    Args:
        nu: order :math:`\nu \ge 0`.
        k: argument(s) :math:`k \ge 0`, any shape.

    Returns:
        :math:`r_\nu(k)`, the shape of ``k``.

    Raises:
        ValueError: if ``nu`` is negative or ``k`` is negative or not finite.

    Used in: :doc:`/book/optimization/sampling-view-of-optimization`,
    eq. :eq:`ball-expected-update`.
    """
    v = check_positive(nu, "nu", allow_zero=True)
    k = as_array(k, "k")
    if np.any(k < 0):
        raise ValueError(f"k must be >= 0, got minimum {k.min():.3g}")
    kf = k.reshape(-1)
    out = np.zeros_like(kf)
    pos = kf > 0
    num, den = ive(v + 1, kf[pos]), ive(v, kf[pos])
    direct = den > 0
    ratio = np.zeros(int(pos.sum()))
    ratio[direct] = num[direct] / den[direct]
    if np.any(~direct):
        kb = kf[pos][~direct]
        r = np.zeros_like(kb)
        for j in range(int(np.ceil(2 * kb.max())) + 400, 0, -1):
            r = kb / (2 * (v + j) + kb * r)
        ratio[~direct] = r
    out[pos] = ratio
    return out.reshape(k.shape)


def ball_expected_update(g: Any, eps: float, alpha: float) -> NDArray[np.float64]:
    r"""Mean step under the first-order density on the ball :math:`\|\Delta\|\le\varepsilon`.

    .. math::

       \Delta^* = -\alpha\nabla_g \log Z(g)
                = -\varepsilon\,\frac{g}{\|g\|}\,
                  \frac{I_{d/2+1}(\kappa)}{I_{d/2}(\kappa)}, \qquad
       \kappa = \frac{\varepsilon\|g\|}{\alpha},

    and :math:`\Delta^* = 0` at :math:`g = 0`.

    Args:
        g: gradient(s), shape ``(..., d)``.
        eps: radius :math:`\varepsilon > 0`.
        alpha: temperature :math:`\alpha > 0`.

    Returns:
        :math:`\Delta^*`, shape ``(..., d)``.

    Raises:
        ValueError: if ``g`` is not finite or has no last axis, or ``eps``/``alpha`` is not
            positive.

    Used in: :doc:`/book/optimization/sampling-view-of-optimization`,
    eq. :eq:`ball-expected-update`.
    """
    e, a = check_positive(eps, "eps"), check_positive(alpha, "alpha")
    g, norm, d = _grad_norm(g)
    r = bessel_ratio(d / 2, e * norm / a)
    unit = np.divide(g, norm[..., None], out=np.zeros_like(g), where=norm[..., None] > 0)
    return -e * r[..., None] * unit


def ball_gd_learning_rate(eps: float, alpha: float, dim: int) -> float:
    r"""Learning rate of the large-:math:`\alpha` limit, :math:`\Delta^* \approx -\eta g`.

    .. math::

       \eta = \frac{\varepsilon^2}{(d + 2)\,\alpha}

    (from :math:`I_{\nu+1}(\kappa)/I_\nu(\kappa) = \kappa/(2\nu+2) + O(\kappa^3)`).

    Args:
        eps: radius :math:`\varepsilon > 0`.
        alpha: temperature :math:`\alpha > 0`.
        dim: dimension :math:`d \ge 1`.

    Returns:
        :math:`\eta`.

    Raises:
        ValueError: if ``eps`` or ``alpha`` is not positive or ``dim`` < 1.
        TypeError: if ``dim`` is not an integer.

    Used in: :doc:`/book/optimization/sampling-view-of-optimization`, eq. :eq:`ball-limits`.
    """
    e, a = check_positive(eps, "eps"), check_positive(alpha, "alpha")
    d = check_count(dim, "dim")
    return e**2 / ((d + 2) * a)


def sample_ball_target(g: Any, eps: float, alpha: float, n: int,
                       rng: np.random.Generator) -> NDArray[np.float64]:
    r"""Exact samples of :math:`p(\Delta) \propto e^{-g^\top\Delta/\alpha}` on the ball.

    Rejection sampling: propose :math:`\Delta` uniform in the ball (Gaussian direction, radius
    :math:`\varepsilon U^{1/d}`) and accept with probability
    :math:`\exp(-(g^\top\Delta + \varepsilon\|g\|)/\alpha) \le 1`. No Bessel function is used, so
    the samples check :func:`ball_expected_update` independently.

    Args:
        g: gradient, shape ``(d,)``.
        eps: radius :math:`\varepsilon > 0`.
        alpha: temperature :math:`\alpha > 0`.
        n: number of samples, at least 1.
        rng: NumPy random generator.

    Returns:
        Samples, shape ``(n, d)``.

    Raises:
        ValueError: if ``g`` is not a finite vector, ``eps``/``alpha`` not positive, or
            :math:`\varepsilon\|g\|/\alpha > 20` (the acceptance rate would be too small).
        TypeError: if ``rng`` is not a ``numpy.random.Generator`` or ``n`` not an integer.

    Used in: :doc:`/book/optimization/sampling-view-of-optimization`.
    """
    e, a = check_positive(eps, "eps"), check_positive(alpha, "alpha")
    g = as_array(g, "g", ndim=1)
    n = check_count(n, "n")
    _check_rng(rng)
    d, norm = g.shape[0], float(np.linalg.norm(g))
    if e * norm / a > 20:
        raise ValueError(f"eps * |g| / alpha must be <= 20 for rejection sampling, got "
                         f"{e * norm / a:.3g}")
    kept: list[NDArray[np.float64]] = []
    count, rate = 0, 0.5  # acceptance rate, re-estimated after each batch
    while count < n:
        m = int(1.2 * (n - count) / rate) + 64
        direction = rng.standard_normal((m, d))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        delta = e * rng.random(m)[:, None] ** (1 / d) * direction
        accept = rng.random(m) < np.exp(-(delta @ g + e * norm) / a)
        kept.append(delta[accept])
        count += int(accept.sum())
        rate = max(float(accept.mean()), 1e-3)
    return np.concatenate(kept)[:n]


def _check_rng(rng: Any) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")


# --- second order: Newton ------------------------------------------------------------------


def gaussian_update_distribution(g: Any, hess: Any, alpha: float
                                 ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Mean and covariance of the second-order density, a Gaussian.

    With :math:`l(\theta+\Delta) - l(\theta) \approx g^\top\Delta + \tfrac12\Delta^\top H\Delta`
    and :math:`H \succ 0`, completing the square gives

    .. math::

       p(\Delta\mid\theta) = \mathcal N\bigl(\Delta;\ -H^{-1}g,\ \alpha H^{-1}\bigr),

    so :math:`\Delta^* = -H^{-1}g`, Newton's step, for every :math:`\alpha`.

    Args:
        g: gradient, shape ``(d,)``.
        hess: symmetric positive definite Hessian :math:`H`, shape ``(d, d)``.
        alpha: temperature :math:`\alpha > 0`.

    Returns:
        ``(mean, cov)`` with shapes ``(d,)`` and ``(d, d)``.

    Raises:
        ValueError: if the shapes disagree, ``hess`` is not symmetric or not positive definite,
            or ``alpha`` is not positive.

    Used in: :doc:`/book/optimization/sampling-view-of-optimization`, eq. :eq:`newton-gaussian`.
    """
    a = check_positive(alpha, "alpha")
    g = as_array(g, "g", ndim=1)
    h = as_array(hess, "hess", shape=(g.shape[0], g.shape[0]))
    if not np.allclose(h, h.T, rtol=1e-12, atol=1e-12 * max(1.0, float(np.abs(h).max()))):
        raise ValueError("hess must be symmetric")
    try:
        factor = cho_factor(h)
    except np.linalg.LinAlgError as err:
        raise ValueError("hess must be positive definite") from err
    mean = -cho_solve(factor, g)
    cov = a * cho_solve(factor, np.eye(g.shape[0]))
    return mean, (cov + cov.T) / 2


# --- self-normalised importance sampling -----------------------------------------------------


def _normalised_weights(log_w: Any) -> NDArray[np.float64]:
    lw = _as_log_weights(log_w, "log_w", sign=-1)
    if lw.ndim != 1 or lw.shape[0] == 0:
        raise ValueError(f"log_w must have shape (n,) with n >= 1, got {lw.shape}")
    if np.all(lw == -np.inf):
        raise ValueError("log_w must have at least one finite entry (all weights are zero)")
    return np.exp(lw - logsumexp(lw))


def snis_mean(log_w: Any, values: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Self-normalised importance-sampling mean and its delta-method standard error.

    With :math:`x_i \sim q` and :math:`\log w_i = \log\rho(x_i) - \log q(x_i)` (any additive
    constant), :math:`\bar w_i = w_i/\sum_j w_j`,

    .. math::

       \widehat{\mathbb E_p[f]} = \sum_i \bar w_i f(x_i), \qquad
       \widehat{\mathrm{se}} = \Bigl(\sum_i \bar w_i^2\,
           \bigl(f(x_i) - \widehat{\mathbb E_p[f]}\bigr)^2\Bigr)^{1/2}.

    Args:
        log_w: log weights, shape ``(n,)``; ``-inf`` (weight zero) is allowed.
        values: :math:`f(x_i)`, shape ``(n,)`` or ``(n, ...)``.

    Returns:
        ``(mean, se)``, each of shape ``values.shape[1:]``.

    Raises:
        ValueError: if ``log_w`` holds NaN or ``+inf``, is all ``-inf``, or its length differs
            from that of ``values``.

    Used in: :doc:`/book/optimization/sampling-view-of-optimization`, eq. :eq:`snis-update`.
    """
    return _weighted_mean(_normalised_weights(log_w), values)


def _weighted_mean(w: NDArray[np.float64],
                   values: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """:func:`snis_mean` from normalised weights ``w`` (computed once by the caller)."""
    f = as_array(values, "values")
    if f.ndim == 0 or f.shape[0] != w.shape[0]:
        raise ValueError(f"values must have shape ({w.shape[0]}, ...), got {f.shape}")
    wb = w.reshape((-1,) + (1,) * (f.ndim - 1))
    mean = np.sum(wb * f, axis=0)
    se = np.sqrt(np.sum(wb**2 * (f - mean) ** 2, axis=0))
    return mean, se


def effective_sample_size(log_w: Any) -> float:
    r"""Kish's effective sample size of importance weights, :math:`1/\sum_i \bar w_i^2`.

    It is :math:`n` for equal weights and 1 when one weight takes everything.

    Args:
        log_w: log weights, shape ``(n,)``; ``-inf`` is allowed.

    Returns:
        The effective sample size, in :math:`[1, n]`.

    Raises:
        ValueError: if ``log_w`` holds NaN or ``+inf``, or is all ``-inf``.

    Used in: :doc:`/book/optimization/sampling-view-of-optimization`.
    """
    return _kish_ess(_normalised_weights(log_w))


def _kish_ess(w: NDArray[np.float64]) -> float:
    """:func:`effective_sample_size` from normalised weights ``w``."""
    return float(1.0 / np.sum(w**2))


def _proposal_args(center: Any, sigma: float,
                   mix: float) -> tuple[NDArray[np.float64], float, float]:
    c = as_array(center, "center", ndim=1)
    if c.shape[0] == 0:
        raise ValueError("center must have shape (d,) with d >= 1, got (0,)")
    return c, check_positive(sigma, "sigma"), check_fraction(mix, "mix")


def mixture_proposal_log_density(delta: Any, center: Any, sigma: float,
                                 mix: float = 0.0) -> NDArray[np.float64]:
    r"""Log density of the guided proposal, a two-component Gaussian mixture.

    .. math::

       q(\Delta) = \lambda\,\mathcal N(\Delta; 0, \sigma^2 I)
                 + (1 - \lambda)\,\mathcal N(\Delta; c, \sigma^2 I),

    with :math:`c` the step proposed by the surrogate (e.g. :math:`-\eta\nabla\tilde l`) and
    :math:`\lambda` the weight of the random-search component.

    Args:
        delta: steps, shape ``(n, d)``.
        center: the guided mean :math:`c`, shape ``(d,)``.
        sigma: standard deviation :math:`\sigma > 0` of both components.
        mix: :math:`\lambda \in [0, 1]` (0: the guided Gaussian alone).

    Returns:
        :math:`\log q(\Delta_i)`, shape ``(n,)``.

    Raises:
        ValueError: if shapes disagree, ``sigma`` is not positive or ``mix`` is outside [0, 1].

    Used in: :doc:`/book/optimization/sampling-view-of-optimization`, eq. :eq:`guided-proposal`.
    """
    c, s, lam = _proposal_args(center, sigma, mix)
    x = as_array(delta, "delta", shape=(None, c.shape[0]))
    d = c.shape[0]
    log_norm = -0.5 * d * math.log(2 * math.pi * s**2)
    log_guided = log_norm - np.sum((x - c) ** 2, axis=1) / (2 * s**2)
    if lam == 0.0:
        return log_guided
    log_random = log_norm - np.sum(x**2, axis=1) / (2 * s**2)
    if lam == 1.0:
        return log_random
    return np.logaddexp(math.log(lam) + log_random, math.log1p(-lam) + log_guided)


def mixture_proposal_sample(center: Any, sigma: float, n: int, rng: np.random.Generator,
                            mix: float = 0.0) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Draw :math:`n` steps from the guided mixture proposal and return their log densities.

    Each step comes from :math:`\mathcal N(0, \sigma^2 I)` with probability :math:`\lambda` and from
    :math:`\mathcal N(c, \sigma^2 I)` otherwise (see :func:`mixture_proposal_log_density`).

    Args:
        center: the guided mean :math:`c`, shape ``(d,)``.
        sigma: standard deviation :math:`\sigma > 0`.
        n: number of steps, at least 1.
        rng: NumPy random generator.
        mix: :math:`\lambda \in [0, 1]`.

    Returns:
        ``(delta, log_q)`` with shapes ``(n, d)`` and ``(n,)``.

    Raises:
        ValueError: if ``sigma`` is not positive, ``mix`` outside [0, 1] or ``n`` < 1.
        TypeError: if ``rng`` is not a ``numpy.random.Generator``.

    Used in: :doc:`/book/optimization/sampling-view-of-optimization`, eq. :eq:`guided-proposal`.
    """
    c, s, lam = _proposal_args(center, sigma, mix)
    n = check_count(n, "n")
    _check_rng(rng)
    random_part = rng.random(n) < lam
    delta = s * rng.standard_normal((n, c.shape[0])) + np.where(random_part[:, None], 0.0, c)
    return delta, mixture_proposal_log_density(delta, c, s, lam)


class SnisStep(NamedTuple):
    """One importance-sampled step: the estimate, the candidate steps, their log weights and ESS.

    Used in: :doc:`/book/optimization/sampling-view-of-optimization`, eq. :eq:`snis-update`.
    """

    #: The estimated step :math:`\hat\Delta = \sum_i \bar w_i \Delta_i`, shape ``(d,)``.
    delta: NDArray[np.float64]
    #: The candidate steps :math:`\Delta_i`, shape ``(n, d)``.
    samples: NDArray[np.float64]
    #: Their unnormalised log weights, shape ``(n,)``.
    log_weights: NDArray[np.float64]
    #: Kish's effective sample size of the weights, :func:`effective_sample_size` of
    #: ``log_weights`` (computed from the same normalised weights as ``delta``).
    ess: float


def guided_snis_update(loss: Callable[[NDArray[np.float64]], Any], theta: Any, alpha: float,
                       center: Any, sigma: float, n: int, rng: np.random.Generator, *,
                       mix: float = 0.0, divide_by_proposal: bool = True) -> SnisStep:
    r"""Estimate :math:`\Delta^* = \mathbb E_p[\Delta]` by self-normalised importance sampling.

    Draw :math:`\Delta_1, \dots, \Delta_n \sim q` (:func:`mixture_proposal_sample`) and average them
    with weights

    .. math::

       \hat\Delta = \sum_{i=1}^n \bar w_i\,\Delta_i, \qquad
       \bar w_i \propto
       \frac{\exp\bigl(-[l(\theta+\Delta_i) - l(\theta)]/\alpha\bigr)}{q(\Delta_i)} .

    With ``divide_by_proposal=False`` the :math:`1/q` factor is dropped: that estimates the mean of
    the tilted proposal :math:`q(\Delta)\rho(\Delta)/\!\int q\rho`, which exists even when
    :math:`\rho` alone cannot be normalised (a bounded loss such as the 0-1 loss).

    Args:
        loss: maps a batch of parameter vectors, shape ``(m, d)``, to their losses, shape ``(m,)``
            (``+inf`` marks a parameter outside the support).
        theta: current parameters, shape ``(d,)``.
        alpha: temperature :math:`\alpha > 0`.
        center: mean :math:`c` of the guided component, shape ``(d,)``.
        sigma: proposal standard deviation :math:`\sigma > 0`.
        n: number of candidate steps, at least 1.
        rng: NumPy random generator.
        mix: weight :math:`\lambda \in [0, 1]` of the random-search component.
        divide_by_proposal: keep the :math:`1/q(\Delta_i)` factor (the post's estimator).

    Returns:
        A :class:`SnisStep` with the estimate, the candidates, their log weights and their
        effective sample size.

    Raises:
        ValueError: if ``theta`` and ``center`` differ in shape, a hyper-parameter is out of range,
            ``loss`` returns the wrong shape or NaN, or every candidate has zero weight.
        TypeError: if ``loss`` is not callable or ``rng`` not a ``numpy.random.Generator``.

    Used in: :doc:`/book/optimization/sampling-view-of-optimization`, eq. :eq:`snis-update`.
    """
    if not callable(loss):
        raise TypeError(f"loss must be callable, got {type(loss).__name__}")
    th = as_array(theta, "theta", ndim=1)
    c = as_array(center, "center", shape=th.shape)
    delta, log_q = mixture_proposal_sample(c, sigma, n, rng, mix)
    values = _as_log_weights(loss(np.vstack([th[None, :], th + delta])), "loss(...)", sign=+1)
    if values.shape != (n + 1,):
        raise ValueError(f"loss must map shape (m, d) to (m,), got {values.shape} for m = {n + 1}")
    if not np.isfinite(values[0]):
        raise ValueError("loss(theta) must be finite")
    log_w = log_update_density(values[1:], values[0], alpha)
    if divide_by_proposal:
        log_w = log_w - log_q
    if np.all(log_w == -np.inf):
        raise ValueError("every candidate step has zero weight (loss is +inf at all of them)")
    w = _normalised_weights(log_w)                        # once, for the step and its ESS
    step, _ = _weighted_mean(w, delta)
    return SnisStep(step, delta, log_w, _kish_ess(w))


# --- the example: a linear classifier ---------------------------------------------------------


def _design(X: Any, y: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    X = as_array(X, "X", ndim=2)
    y = as_array(y, "y", shape=(X.shape[0],))
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("y must hold labels 0 and 1 only")
    return X, y


def zero_one_loss(theta: Any, X: Any, y: Any) -> NDArray[np.float64]:
    r"""Error rate of the linear classifier :math:`\hat y = [x^\top\theta > 0]`, batched.

    .. math::

       l(\theta) = \frac1N \sum_{i=1}^N \bigl[\,[x_i^\top\theta > 0] \ne y_i\,\bigr]

    Piecewise constant in :math:`\theta`, so its gradient is zero wherever it exists.

    Args:
        theta: parameters, shape ``(d,)`` or a batch ``(m, d)``.
        X: features, shape ``(N, d)`` (append a column of ones for a bias).
        y: labels in {0, 1}, shape ``(N,)``.

    Returns:
        The error rate, a 0-d array for ``(d,)`` input or shape ``(m,)`` for a batch.

    Raises:
        ValueError: if shapes disagree, values are not finite or ``y`` is not 0/1.

    Used in: :doc:`/book/optimization/sampling-view-of-optimization`.
    """
    X, y = _design(X, y)
    th = as_array(theta, "theta")
    if th.ndim not in (1, 2) or th.shape[-1] != X.shape[1]:
        raise ValueError(f"theta must have shape ({X.shape[1]},) or (m, {X.shape[1]}), "
                         f"got {th.shape}")
    wrong = (X @ np.atleast_2d(th).T > 0) != (y[:, None] == 1)
    rate = wrong.mean(axis=0)
    return rate if th.ndim == 2 else rate[0]


def cross_entropy(theta: Any, X: Any, y: Any) -> tuple[float, NDArray[np.float64]]:
    r"""Mean logistic cross-entropy (surrogate of :func:`zero_one_loss`) and its gradient.

    .. math::

       \tilde l(\theta) = \frac1N\sum_{i=1}^N \bigl[\log(1 + e^{z_i}) - y_i z_i\bigr], \quad
       z_i = x_i^\top\theta, \qquad
       \nabla\tilde l(\theta) = \frac1N X^\top\bigl(\sigma(z) - y\bigr).

    Args:
        theta: parameters, shape ``(d,)``.
        X: features, shape ``(N, d)``.
        y: labels in {0, 1}, shape ``(N,)``.

    Returns:
        ``(loss, grad)``, a float and shape ``(d,)``.

    Raises:
        ValueError: if shapes disagree, values are not finite or ``y`` is not 0/1.

    Used in: :doc:`/book/optimization/sampling-view-of-optimization`.
    """
    X, y = _design(X, y)
    th = as_array(theta, "theta", shape=(X.shape[1],))
    z = X @ th
    loss = float(np.mean(np.logaddexp(0.0, z) - y * z))
    return loss, X.T @ (expit(z) - y) / X.shape[0]
