r"""Sampling a category by Gumbel-max, relaxing it by Gumbel-softmax, and the gradients that follow.

A categorical distribution with logits :math:`o \in \mathbb{R}^K` has probabilities
:math:`p = \operatorname{softmax}(o)`. Add independent standard Gumbel noise
:math:`g_i = -\log(-\log U_i)`, :math:`U_i \sim \mathcal U(0, 1)`, to the logits. The index of the
largest score :math:`o_i + g_i` is then an exact sample from :math:`p` (Gumbel-max), and the
tempered softmax of the scores is a point on the simplex that tends to that sample's one-hot
vector as the temperature :math:`\tau \to 0` (Gumbel-softmax, or the Concrete distribution).

The module reads in that order: the noise, the Gumbel-max sample, the relaxed sample and its
straight-through version, the Concrete density, the distance of a relaxed sample from its
one-hot limit, and finally three per-sample gradients of the linear objective
:math:`\mathbb{E}[c^\top y]`: the exact one, the score-function (REINFORCE) estimator and the
relaxed (reparameterised) estimator.

Functions take torch tensors (arrays are converted to float64) and keep autograd graphs; the
last axis always indexes the :math:`K` categories. Randomness comes only from an explicit
``torch.Generator``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from kexue_notes._validate import as_tensor, check_positive

__all__ = [  # noqa: RUF022 -- in the order of the method, as the module reads
    "gumbel_noise",
    "gumbel_max",
    "gumbel_softmax",
    "straight_through",
    "concrete_log_prob",
    "one_hot_distance_bound",
    "linear_objective_gradient",
    "score_function_gradient",
    "relaxed_gradient",
]


# --- checks shared by the functions below ----------------------------------------------------

def _logits(logits: Any, name: str = "logits") -> torch.Tensor:
    o = as_tensor(logits, name)
    if o.ndim == 0 or o.shape[-1] < 2:
        raise ValueError(f"{name} must have shape (..., K) with K >= 2 categories, "
                         f"got {tuple(o.shape)}")
    return o


def _tau(tau: Any) -> float:
    if isinstance(tau, torch.Tensor):
        if tau.numel() != 1:
            raise ValueError(f"tau must be a single number, got shape {tuple(tau.shape)}")
        tau = float(tau)
    return check_positive(tau, "tau")


def _broadcast(a: torch.Tensor, a_name: str, b: torch.Tensor, b_name: str) -> None:
    try:
        torch.broadcast_shapes(a.shape, b.shape)
    except RuntimeError as err:
        raise ValueError(f"{a_name} of shape {tuple(a.shape)} and {b_name} of shape "
                         f"{tuple(b.shape)} do not broadcast") from err
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"{b_name} must have K = {a.shape[-1]} entries on its last axis like "
                         f"{a_name}, got {b.shape[-1]}")


# --- the noise and the exact sample ----------------------------------------------------------

def gumbel_noise(shape: tuple[int, ...] | torch.Size, generator: torch.Generator,
                 dtype: torch.dtype = torch.float64) -> torch.Tensor:
    r"""Independent standard Gumbel variables by inverting the CDF :math:`F(x) = e^{-e^{-x}}`.

    .. math::

        g = -\log(-\log U), \qquad U \sim \mathcal U(0, 1).

    A uniform draw of exactly 0 (probability :math:`2^{-53}` in float64) is moved to the smallest
    positive normal number, so every entry is finite.

    Args:
        shape: shape of the output, a tuple of non-negative integers.
        generator: the ``torch.Generator`` that draws :math:`U`.
        dtype: a floating dtype, float64 by default.

    Returns:
        A tensor of the given shape with standard Gumbel entries (mean :math:`\gamma`, variance
        :math:`\pi^2/6`).

    Raises:
        TypeError: if ``generator`` is not a ``torch.Generator`` or ``dtype`` is not floating.

    Used in: :doc:`/book/representations/gumbel-softmax`, eq. :eq:`gumbel-noise`.
    """
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch dtype, got {dtype}")
    u = torch.rand(tuple(shape), generator=generator, dtype=dtype)
    u = u.clamp_min(torch.finfo(dtype).tiny)
    return -torch.log(-torch.log(u))


def gumbel_max(logits: Any, gumbels: Any) -> torch.Tensor:
    r"""The Gumbel-max sample: the index of the largest perturbed logit.

    .. math::

        i^\star = \arg\max_i\,(o_i + g_i), \qquad
        P(i^\star = i) = \frac{e^{o_i}}{\sum_j e^{o_j}} .

    The logits may be unnormalised: adding a constant to all of them changes no index.

    Args:
        logits: :math:`o`, shape ``(..., K)``.
        gumbels: :math:`g`, standard Gumbel noise broadcastable with ``logits`` (for :math:`n`
            samples of one distribution, shape ``(n, K)``).

    Returns:
        Integer tensor of indices in :math:`\{0, \dots, K-1\}`, the broadcast shape without
        its last axis.

    Raises:
        ValueError: if ``logits`` has fewer than two categories, the shapes do not broadcast, or
            an input holds NaN or infinity.

    Used in: :doc:`/book/representations/gumbel-softmax`, eq. :eq:`gumbel-max`.
    """
    o = _logits(logits)
    g = as_tensor(gumbels, "gumbels")
    _broadcast(o, "logits", g, "gumbels")
    return torch.argmax(o + g, dim=-1)


# --- the relaxation --------------------------------------------------------------------------

def gumbel_softmax(logits: Any, gumbels: Any, tau: float, hard: bool = False) -> torch.Tensor:
    r"""The Gumbel-softmax (Concrete) sample: a tempered softmax of the perturbed logits.

    .. math::

        y_i = \frac{\exp\big((o_i + g_i)/\tau\big)}{\sum_j \exp\big((o_j + g_j)/\tau\big)} .

    With ``hard=True`` the result is passed through :func:`straight_through`: the forward value
    is the one-hot vector of :func:`gumbel_max` for the same noise, and the gradient is that of
    the soft sample.

    Args:
        logits: :math:`o`, shape ``(..., K)``.
        gumbels: :math:`g`, standard Gumbel noise broadcastable with ``logits``.
        tau: temperature :math:`\tau > 0`.
        hard: whether to return the straight-through one-hot vector.

    Returns:
        Points on the simplex, the broadcast shape ``(..., K)``.

    Raises:
        ValueError: if ``tau`` is not a finite positive number, the shapes do not broadcast, or
            an input holds NaN or infinity.
        TypeError: if ``tau`` is not a real number.

    Used in: :doc:`/book/representations/gumbel-softmax`, eq. :eq:`gumbel-softmax-sample`.
    """
    o = _logits(logits)
    g = as_tensor(gumbels, "gumbels")
    _broadcast(o, "logits", g, "gumbels")
    y = torch.softmax((o + g) / _tau(tau), dim=-1)
    return straight_through(y) if hard else y


def straight_through(y_soft: Any) -> torch.Tensor:
    r"""The straight-through estimator: one-hot forward value, soft gradient.

    .. math::

        y_{\text{ST}} = \operatorname{onehot}\big(\arg\max_i y_i\big)
                        - \operatorname{sg}(y) + y ,

    where :math:`\operatorname{sg}` stops the gradient. The forward value equals the one-hot
    vector up to one rounding of :math:`(1 - y_i) + y_i`; the Jacobian equals that of :math:`y`.

    Args:
        y_soft: :math:`y`, soft samples of shape ``(..., K)``, usually from
            :func:`gumbel_softmax`.

    Returns:
        A tensor of the shape of ``y_soft``.

    Raises:
        ValueError: if ``y_soft`` has fewer than two categories or holds NaN or infinity.

    Used in: :doc:`/book/representations/gumbel-softmax`, eq. :eq:`straight-through`.
    """
    y = _logits(y_soft, "y_soft")
    index = y.argmax(dim=-1, keepdim=True)
    y_hard = torch.zeros_like(y).scatter_(-1, index, 1.0)
    return y_hard - y.detach() + y


def concrete_log_prob(y: Any, logits: Any, tau: float) -> torch.Tensor:
    r"""Log density of the Concrete (Gumbel-softmax) distribution on the open simplex.

    The density of :func:`gumbel_softmax` with respect to Lebesgue measure on the first
    :math:`K - 1` coordinates, with :math:`\pi_k \propto e^{o_k}`:

    .. math::

        p_{\pi,\tau}(y) = \Gamma(K)\,\tau^{K-1}
            \prod_{k=1}^K \frac{\pi_k\, y_k^{-\tau-1}}{\sum_{j=1}^K \pi_j\, y_j^{-\tau}} .

    It is computed in log space,
    :math:`\log\Gamma(K) + (K-1)\log\tau + \sum_k \big(o_k - (\tau+1)\log y_k\big)
    - K \operatorname{logsumexp}_j(o_j - \tau \log y_j)`, which is unchanged when a constant is
    added to all logits.

    Args:
        y: points of the open simplex, shape ``(..., K)``; entries > 0 summing to one.
        logits: :math:`o`, shape broadcastable with ``y``.
        tau: temperature :math:`\tau > 0`.

    Returns:
        The log density, the broadcast shape without its last axis.

    Raises:
        ValueError: if ``y`` has an entry <= 0 or rows that do not sum to one (within 1e-9),
            the shapes do not broadcast, or ``tau`` is not a finite positive number.

    Used in: :doc:`/book/representations/gumbel-softmax`, eq. :eq:`concrete-density`.
    """
    y = _logits(y, "y")
    o = _logits(logits)
    _broadcast(y, "y", o, "logits")
    τ = _tau(tau)
    if bool((y <= 0).any()):
        raise ValueError("y must lie in the open simplex: every entry > 0, "
                         f"got minimum {float(y.min()):.3g}")
    worst = float((y.sum(-1) - 1).abs().max())
    if worst > 1e-9:
        raise ValueError(f"y must lie in the simplex: rows sum to 1, off by up to {worst:.3g}")
    K = y.shape[-1]
    log_y = torch.log(y)
    score = o - τ * log_y
    return (math.lgamma(K) + (K - 1) * math.log(τ) + (o - (τ + 1) * log_y).sum(-1)
            - K * torch.logsumexp(score, dim=-1))


def one_hot_distance_bound(scores: Any, tau: float) -> torch.Tensor:
    r"""Upper bound on the :math:`\ell_1` distance between a tempered softmax and its one-hot limit.

    With scores :math:`x = o + g`, winner :math:`i^\star` and gap :math:`\Delta = x_{i^\star} -
    \max_{j \ne i^\star} x_j`,

    .. math::

        \big\lVert \operatorname{softmax}(x/\tau) - e_{i^\star} \big\rVert_1
        = \frac{2S}{1+S} \le 2(K-1)\,e^{-\Delta/\tau},
        \qquad S = \sum_{j \ne i^\star} e^{-(x_{i^\star} - x_j)/\tau} .

    The bound tends to 0 as :math:`\tau \to 0` whenever the maximum is unique (:math:`\Delta > 0`,
    which Gumbel noise makes certain).

    Args:
        scores: :math:`x`, shape ``(..., K)``.
        tau: temperature :math:`\tau > 0`.

    Returns:
        The bound, shape ``(...)``.

    Raises:
        ValueError: if ``scores`` has fewer than two categories or ``tau`` is not a finite
            positive number.

    Used in: :doc:`/book/representations/gumbel-softmax`, eq. :eq:`one-hot-limit`.
    """
    x = _logits(scores, "scores")
    τ = _tau(tau)
    K = x.shape[-1]
    top2 = torch.topk(x, 2, dim=-1).values
    Δ = top2[..., 0] - top2[..., 1]
    return 2 * (K - 1) * torch.exp(-Δ / τ)


# --- gradients of the linear objective E[c^T y] ----------------------------------------------

def linear_objective_gradient(logits: Any, c: Any) -> torch.Tensor:
    r"""Exact gradient of :math:`L(o) = \mathbb{E}_{y \sim \mathrm{Cat}(p)}[c^\top y] = c^\top p`.

    .. math::

        \nabla_o L = p \odot c - p\,(p^\top c), \qquad p = \operatorname{softmax}(o) .

    Args:
        logits: :math:`o`, shape ``(..., K)``.
        c: the payoff vector :math:`c`, shape broadcastable with ``logits``.

    Returns:
        The gradient, the broadcast shape ``(..., K)``.

    Raises:
        ValueError: if the shapes do not broadcast or an input holds NaN or infinity.

    Used in: :doc:`/book/representations/gumbel-softmax`, eq. :eq:`linear-objective-gradient`.
    """
    o = _logits(logits)
    cv = as_tensor(c, "c")
    _broadcast(o, "logits", cv, "c")
    p = torch.softmax(o, dim=-1)
    return p * cv - p * (p * cv).sum(-1, keepdim=True)


def score_function_gradient(logits: Any, c: Any, index: Any) -> torch.Tensor:
    r"""Score-function (REINFORCE) estimate of :math:`\nabla_o\, c^\top p`, one per sample.

    For a sample :math:`i \sim \mathrm{Cat}(p)`, with :math:`f(e_i) = c_i`,

    .. math::

        \hat\nabla_{\mathrm{SF}} = f(e_i)\,\nabla_o \log p_i = c_i\,(e_i - p) .

    It is unbiased: its mean over :math:`i \sim p` is :func:`linear_objective_gradient`.

    Args:
        logits: :math:`o`, shape ``(K,)``.
        c: :math:`c`, shape ``(K,)``.
        index: sampled categories, an integer tensor of shape ``(n,)`` with entries in
            :math:`\{0, \dots, K-1\}`.

    Returns:
        The estimates, shape ``(n, K)``.

    Raises:
        ValueError: if ``logits`` or ``c`` is not 1-D of the same length, or ``index`` is not
            1-D or has an entry out of range.
        TypeError: if ``index`` is not an integer tensor.

    Used in: :doc:`/book/representations/gumbel-softmax`, eq. :eq:`score-function`.
    """
    o = _logits(logits)
    if o.ndim != 1:
        raise ValueError(f"logits must be 1-dimensional, got shape {tuple(o.shape)}")
    K = o.shape[0]
    cv = as_tensor(c, "c", shape=(K,))
    i = torch.as_tensor(index)
    if i.dtype.is_floating_point or i.dtype == torch.bool or i.is_complex():
        raise TypeError(f"index must be an integer tensor, got dtype {i.dtype}")
    if i.ndim != 1:
        raise ValueError(f"index must be 1-dimensional, got shape {tuple(i.shape)}")
    if i.numel() and bool(((i < 0) | (i >= K)).any()):
        raise ValueError(f"index must hold categories in [0, {K - 1}]")
    p = torch.softmax(o, dim=-1)
    e = torch.nn.functional.one_hot(i.long(), K).to(o.dtype)
    return cv[i.long()].unsqueeze(-1) * (e - p)


def relaxed_gradient(logits: Any, c: Any, gumbels: Any, tau: float) -> torch.Tensor:
    r"""Reparameterised (Gumbel-softmax) estimate of :math:`\nabla_o\, c^\top p`, one per sample.

    Differentiating :math:`c^\top y` for the sample :math:`y` of :func:`gumbel_softmax` with the
    noise held fixed gives

    .. math::

        \hat\nabla_{\mathrm{GS}} = \frac{1}{\tau}\big(y \odot c - y\,(y^\top c)\big) .

    The straight-through estimator has the same gradient. Its mean is
    :math:`\nabla_o\,\mathbb{E}[c^\top y]`, which differs from :math:`\nabla_o\, c^\top p` for
    :math:`\tau > 0`: the estimator is biased.

    Args:
        logits: :math:`o`, shape ``(..., K)``.
        c: :math:`c`, shape broadcastable with ``logits``.
        gumbels: standard Gumbel noise broadcastable with ``logits``, e.g. ``(n, K)``.
        tau: temperature :math:`\tau > 0`.

    Returns:
        The estimates, the broadcast shape ``(..., K)``.

    Raises:
        ValueError: if the shapes do not broadcast, an input holds NaN or infinity, or ``tau``
            is not a finite positive number.

    Used in: :doc:`/book/representations/gumbel-softmax`, eq. :eq:`relaxed-gradient`.
    """
    τ = _tau(tau)
    y = gumbel_softmax(logits, gumbels, τ)
    cv = as_tensor(c, "c")
    _broadcast(y, "the sample", cv, "c")
    return (y * cv - y * (y * cv).sum(-1, keepdim=True)) / τ
