r"""Multi-task loss weighting: :math:`n` task losses made one, by scale and shift invariance.

A multi-task model has task losses :math:`\mathcal L_1, \dots, \mathcal L_n` of shared parameters
:math:`\theta`. The plain weighted sum :math:`\sum_i \alpha_i \mathcal L_i` needs :math:`n` weights,
and its gradient changes direction when one task's loss is measured in other units
(:math:`\mathcal L_k \to \lambda \mathcal L_k`). Dividing each loss by a reference value of itself
removes the units:

* a fixed reference, the loss of the untrained model (:func:`initial_loss_cross_entropy`,
  :func:`initial_loss_l2`) or of the best constant predictor (:func:`prior_loss_cross_entropy`,
  :func:`prior_loss_l2`), in :func:`normalized_loss`;
* the current loss itself, behind a stop-gradient (:func:`realtime_weighted_loss`), whose
  gradient is that of :math:`\sum_i \log \mathcal L_i`, i.e. of the geometric mean, the
  :math:`\gamma \to 0` member of the power means :func:`power_mean`;
* the norm of the task's gradient, behind a stop-gradient (:func:`gradnorm_weighted_loss`), which is
  invariant to shifts :math:`\mathcal L_k \to \mathcal L_k + c` as well.

Kendall et al.'s uncertainty weighting (:func:`uncertainty_weighted_loss`) reaches the real-time
weights at its optimum (:func:`uncertainty_profile_loss`). :func:`scheme_weights` gives the
weight each scheme puts on each task gradient in closed form, and :func:`combine_losses` dispatches
by name.

Losses are tensors of shape ``(..., n)``: the last axis holds the ``n`` tasks; leading axes, if
any, index independent replicas of the model (for example one model per seed, trained side by
side), and scalar objectives are summed over them, which leaves each replica's gradient its own.
NumPy arrays are accepted and converted to float64 tensors; functions that must keep an autograd
graph take tensors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from kexue_notes._validate import as_array, as_tensor, check_count, check_probabilities

__all__ = [  # noqa: RUF022 -- in the order of the page, as the module reads
    "initial_loss_cross_entropy",
    "initial_loss_l2",
    "prior_loss_cross_entropy",
    "prior_loss_l2",
    "normalized_loss",
    "realtime_weighted_loss",
    "power_mean",
    "power_mean_weights",
    "task_gradients",
    "gradnorm_weighted_loss",
    "uncertainty_weighted_loss",
    "uncertainty_profile_loss",
    "scheme_weights",
    "combine_losses",
]

#: Names accepted by :func:`scheme_weights`; :func:`combine_losses` also accepts ``"uncertainty"``.
SCHEMES = ("sum", "initial", "prior", "realtime", "power", "gradnorm")


# --- checks shared by the functions below ----------------------------------------------------

def _losses(losses: Any, name: str = "losses", *, positive: bool = False) -> torch.Tensor:
    """Task losses as a float tensor of shape (..., n), n >= 1 (autograd graph kept)."""
    L = as_tensor(losses, name)
    if L.ndim == 0 or L.numel() == 0:
        raise ValueError(f"{name} must have shape (..., n) with n >= 1 tasks, got {tuple(L.shape)}")
    if positive and bool((L <= 0).any()):
        raise ValueError(f"{name} must be > 0, got minimum {float(L.min()):.3g}")
    return L


def _gamma(gamma: Any, *, allow_infinite: bool) -> float:
    if isinstance(gamma, bool) or not isinstance(gamma, int | float | np.integer | np.floating):
        raise TypeError(f"gamma must be a real number, got {type(gamma).__name__}")
    g = float(gamma)
    if math.isnan(g) or (math.isinf(g) and not allow_infinite):
        allowed = "a real number or +-inf" if allow_infinite else "finite"
        raise ValueError(f"gamma must be {allowed}, got {gamma}")
    return g


# --- fixed references: the initial and the prior loss -----------------------------------------

def initial_loss_cross_entropy(num_classes: int) -> float:
    r"""Cross-entropy of all-zero logits: :math:`\mathcal L^{(\mathrm{init})} = \log K`.

    Zero logits give the uniform prediction :math:`1/K`, whose cross-entropy is :math:`\log K` for
    every label.

    Args:
        num_classes: the number of classes :math:`K \ge 2`.

    Returns:
        :math:`\log K` in nats.

    Raises:
        TypeError: if ``num_classes`` is not an integer.
        ValueError: if ``num_classes < 2``.

    Used in: :doc:`/book/optimization/multitask-loss-weighting`, eq. :eq:`mtl-initial-loss`.
    """
    return math.log(check_count(num_classes, "num_classes", minimum=2))


def initial_loss_l2(y: Any) -> float:
    r"""Squared error of the all-zero prediction: :math:`\mathcal L^{(\mathrm{init})} =
    \mathbb E\,\|y\|^2`.

    Args:
        y: targets, shape ``(N,)`` or ``(N, d)``; the mean runs over the ``N`` samples and the
            squared norm over the ``d`` outputs.

    Returns:
        :math:`\frac1N\sum_j \|y_j\|^2`.

    Raises:
        TypeError: if ``y`` is not numeric.
        ValueError: if ``y`` is not 1-D or 2-D, is empty, or holds NaN.

    Used in: :doc:`/book/optimization/multitask-loss-weighting`, eq. :eq:`mtl-initial-loss`.
    """
    Y = _targets(y)
    return float(np.mean(np.sum(Y**2, axis=1)))


def _targets(y: Any) -> np.ndarray:
    Y = as_array(y, "y")
    if Y.ndim not in (1, 2) or Y.shape[0] == 0:
        raise ValueError(f"y must be a non-empty array of shape (N,) or (N, d), got {Y.shape}")
    return Y.reshape(Y.shape[0], -1)


def prior_loss_cross_entropy(p: Any) -> float:
    r"""Cross-entropy of the best constant prediction, the class prior :math:`p`: its entropy

    .. math::

       \mathcal L^{(\mathrm{prior})} = \mathcal H(p) = -\sum_{k=1}^K p_k \log p_k ,

    with :math:`0 \log 0 = 0`.

    Args:
        p: class frequencies, shape ``(K,)``, non-negative and summing to one.

    Returns:
        :math:`\mathcal H(p)` in nats.

    Raises:
        ValueError: if ``p`` is not 1-D, has a negative entry, or does not sum to one.

    Used in: :doc:`/book/optimization/multitask-loss-weighting`, eq. :eq:`mtl-prior-loss`.
    """
    P = check_probabilities(p, "p")
    if P.ndim != 1:
        raise ValueError(f"p must be 1-dimensional, got shape {P.shape}")
    nz = P[P > 0]
    return float(-np.sum(nz * np.log(nz)))


def prior_loss_l2(y: Any) -> float:
    r"""Squared error of the best constant prediction, the mean :math:`\mu = \mathbb E\,y`:

    .. math::

       \mathcal L^{(\mathrm{prior})} = \mathbb E\,\|y - \mu\|^2 = \mathbb E\,\|y\|^2 - \|\mu\|^2 .

    Args:
        y: targets, shape ``(N,)`` or ``(N, d)``.

    Returns:
        the total (population) variance :math:`\frac1N\sum_j \|y_j - \mu\|^2`.

    Raises:
        TypeError: if ``y`` is not numeric.
        ValueError: if ``y`` is not 1-D or 2-D, is empty, or holds NaN.

    Used in: :doc:`/book/optimization/multitask-loss-weighting`, eq. :eq:`mtl-prior-loss`.
    """
    Y = _targets(y)
    return float(np.mean(np.sum((Y - Y.mean(axis=0)) ** 2, axis=1)))


def _same_shape(value: Any, name: str, L: torch.Tensor, *, positive: bool) -> torch.Tensor:
    """A per-task array broadcastable to the losses' shape, detached, in the losses' dtype."""
    v = _losses(value, name, positive=positive).detach().to(L.dtype)
    try:
        torch.broadcast_shapes(v.shape, L.shape)
    except RuntimeError as err:
        raise ValueError(f"{name} must broadcast to shape {tuple(L.shape)}, "
                         f"got {tuple(v.shape)}") from err
    if v.shape[-1] != L.shape[-1]:
        raise ValueError(f"{name} must have {L.shape[-1]} tasks on its last axis, "
                         f"got shape {tuple(v.shape)}")
    return v


def normalized_loss(losses: Any, reference: Any) -> torch.Tensor:
    r"""Each loss divided by a fixed reference value of itself,

    .. math::

       \mathcal L = \sum_{i=1}^n \frac{\mathcal L_i}{\mathcal L_i^{(\mathrm{ref})}} ,

    with the initial or the prior loss as the reference. Scaling a task's loss and its reference by
    the same :math:`\lambda > 0` leaves :math:`\mathcal L` unchanged.

    Args:
        losses: task losses, shape ``(..., n)`` (a tensor keeps its autograd graph).
        reference: positive reference losses, shape ``(n,)`` or broadcastable to ``losses``.

    Returns:
        a 0-d tensor (summed over any leading replica axes).

    Raises:
        ValueError: if the shapes do not match, a reference is not positive, or an input holds NaN.

    Used in: :doc:`/book/optimization/multitask-loss-weighting`, eq. :eq:`mtl-fixed-normalization`.
    """
    L = _losses(losses)
    ref = _same_shape(reference, "reference", L, positive=True)
    return (L / ref).sum()


# --- real-time weighting and the power means ---------------------------------------------------

def realtime_weighted_loss(losses: Any) -> torch.Tensor:
    r"""Each loss divided by its own current value behind a stop-gradient,

    .. math::

       \mathcal L = \sum_{i=1}^n \frac{\mathcal L_i}{\operatorname{sg}(\mathcal L_i)}, \qquad
       \nabla_\theta \mathcal L = \sum_{i=1}^n \frac{\nabla_\theta \mathcal L_i}{\mathcal L_i}
       = \nabla_\theta \sum_{i=1}^n \log \mathcal L_i .

    Its value is always :math:`n`; only its gradient carries information.

    Args:
        losses: positive task losses, shape ``(..., n)``, attached to the graph.

    Returns:
        a 0-d tensor equal to ``losses.numel()``.

    Raises:
        ValueError: if ``losses`` is a scalar or has an entry ``<= 0``.

    Used in: :doc:`/book/optimization/multitask-loss-weighting`, eq. :eq:`mtl-realtime`.
    """
    L = _losses(losses, positive=True)
    return (L / L.detach()).sum()


def power_mean(losses: Any, gamma: float) -> torch.Tensor:
    r"""Generalised (power) mean of positive losses,

    .. math::

       M_\gamma = \Bigl(\frac1n \sum_{i=1}^n \mathcal L_i^{\gamma}\Bigr)^{1/\gamma},

    with the limits :math:`M_0 = (\prod_i \mathcal L_i)^{1/n}` (geometric mean),
    :math:`M_{+\infty} = \max_i \mathcal L_i` and :math:`M_{-\infty} = \min_i \mathcal L_i`. It is
    computed as
    :math:`\exp\bigl((\operatorname{logsumexp}_i(\gamma\log\mathcal L_i) - \log n)/\gamma\bigr)`,
    which neither overflows nor underflows for large :math:`|\gamma|`.

    Args:
        losses: positive task losses, shape ``(..., n)`` (a tensor keeps its autograd graph).
        gamma: the exponent, a real number or ``+-inf``.

    Returns:
        the mean over the last axis, shape ``(...)``.

    Raises:
        TypeError: if ``gamma`` is not a real number.
        ValueError: if ``gamma`` is NaN or ``losses`` has an entry ``<= 0``.

    Used in: :doc:`/book/optimization/multitask-loss-weighting`, eq. :eq:`mtl-power-mean`.
    """
    g = _gamma(gamma, allow_infinite=True)
    L = _losses(losses, positive=True)
    if g == math.inf:
        return L.amax(dim=-1)
    if g == -math.inf:
        return L.amin(dim=-1)
    log_L = torch.log(L)
    if abs(g) < 1e-150:
        # M_g / M_0 = exp(g Var(log L) / 2 + O(g^2)), and Var(log L) < 1e6 in float64: for such g
        # the geometric mean is M_g to the last bit (and 1/g does not overflow in autograd)
        return torch.exp(log_L.mean(dim=-1))
    # log M = u_bar + log(mean(exp(g (log L - u_bar)))) / g for any constant u_bar; centring at
    # the mean log (held constant, so autograd adds no terms that cancel only up to round-off)
    # leaves d small near gamma = 0, where log1p(mean(expm1(d))) keeps the digits; elsewhere
    # logsumexp avoids overflow. Either way the error in log M is a few eps * max |log L_i - u_bar|.
    u_bar = log_L.detach().mean(dim=-1, keepdim=True)
    d = g * (log_L - u_bar)
    small = d.abs().amax(dim=-1) < 1.0
    near = torch.log1p(torch.expm1(d.clamp(max=1.0)).mean(dim=-1))
    far = torch.logsumexp(d, dim=-1) - math.log(L.shape[-1])
    return torch.exp(u_bar[..., 0] + torch.where(small, near, far) / g)


def power_mean_weights(losses: Any, gamma: float) -> torch.Tensor:
    r"""Weights that the power mean puts on the task gradients, :math:`\nabla M_\gamma =
    \sum_i w_i \nabla \mathcal L_i`:

    .. math::

       w_i = \frac{\partial M_\gamma}{\partial \mathcal L_i}
           = \frac1n \Bigl(\frac{\mathcal L_i}{M_\gamma}\Bigr)^{\gamma - 1} .

    For :math:`\gamma = 0` they are :math:`M_0/(n\mathcal L_i)`, proportional to the real-time
    weights :math:`1/\mathcal L_i`; for :math:`\gamma = 1` they are all :math:`1/n`. Since
    :math:`M_\gamma` is homogeneous of degree one, :math:`\sum_i w_i \mathcal L_i = M_\gamma`.

    Args:
        losses: positive task losses, shape ``(..., n)``.
        gamma: a finite exponent.

    Returns:
        the weights, shape ``(..., n)``, detached from any graph.

    Raises:
        TypeError: if ``gamma`` is not a real number.
        ValueError: if ``gamma`` is not finite or ``losses`` has an entry ``<= 0``.

    Used in: :doc:`/book/optimization/multitask-loss-weighting`, eq. :eq:`mtl-power-mean`.
    """
    g = _gamma(gamma, allow_infinite=False)
    L = _losses(losses, positive=True).detach()
    M = power_mean(L, g).unsqueeze(-1)
    return (L / M) ** (g - 1.0) / L.shape[-1]


# --- gradient norms -----------------------------------------------------------------------------

def _params(params: Any) -> list[torch.Tensor]:
    if isinstance(params, torch.Tensor):
        params = [params]
    try:
        params = list(params)
    except TypeError as err:
        raise TypeError(f"params must be a sequence of tensors, "
                        f"got {type(params).__name__}") from err
    if not params:
        raise ValueError("params must hold at least one tensor, got none")
    for p in params:
        if not isinstance(p, torch.Tensor) or not p.requires_grad:
            raise TypeError("params must be torch tensors with requires_grad=True")
    return params


def task_gradients(losses: torch.Tensor, params: Sequence[torch.Tensor]) -> torch.Tensor:
    r"""The gradient of each task loss with respect to the (shared) parameters, one row per task:

    .. math::

       G_{i\cdot} = \nabla_\theta \mathcal L_i \in \mathbb R^{P} .

    With replicas (``losses`` of shape ``(R..., n)``) every parameter must carry the same leading
    axes ``R...``; replica :math:`r`'s row is the gradient of its own loss with respect to its own
    slice, obtained from one backward pass of :math:`\sum_r \mathcal L_{r,i}` per task (the replicas
    must not share parameters). Parameters a task does not reach get a zero gradient. The graph is
    kept, so the losses can still be back-propagated afterwards.

    Args:
        losses: task losses, shape ``(R..., n)``, a tensor attached to the graph of ``params``.
        params: tensors with ``requires_grad=True`` and leading shape ``R...``, holding :math:`P`
            numbers per replica in all.

    Returns:
        a detached tensor of shape ``(R..., n, P)``.

    Raises:
        TypeError: if ``losses`` is not a tensor or a parameter does not require a gradient.
        ValueError: if ``losses`` is a scalar, ``params`` is empty, or a parameter's leading shape
            differs from the replica shape.

    Used in: :doc:`/book/optimization/multitask-loss-weighting`, eq. :eq:`mtl-gradnorm`.
    """
    if not isinstance(losses, torch.Tensor):
        raise TypeError(f"losses must be a torch tensor attached to params, "
                        f"got {type(losses).__name__}")
    params = _params(params)
    L = _losses(losses)
    batch = tuple(L.shape[:-1])
    for p in params:
        if tuple(p.shape[:len(batch)]) != batch:
            raise ValueError(f"params must have the replica shape {batch} as leading axes, "
                             f"got a parameter of shape {tuple(p.shape)}")
    rows = []
    for i in range(L.shape[-1]):
        grads = torch.autograd.grad(L[..., i].sum(), params, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(*batch, -1)
                               for g, p in zip(grads, params, strict=True)], dim=-1))
    return torch.stack(rows, dim=-2).detach()


def gradnorm_weighted_loss(losses: torch.Tensor, params: Sequence[torch.Tensor]) -> torch.Tensor:
    r"""Each loss divided by the norm of its own gradient behind a stop-gradient,

    .. math::

       \mathcal L = \sum_{i=1}^n
       \frac{\mathcal L_i}{\operatorname{sg}(\|\nabla_\theta \mathcal L_i\|)}, \qquad
       \nabla_\theta \mathcal L = \sum_{i=1}^n \frac{\nabla_\theta \mathcal L_i}
       {\|\nabla_\theta \mathcal L_i\|} .

    The update of :math:`\theta` is the sum of the unit task gradients: unchanged when any
    :math:`\mathcal L_k` becomes :math:`\lambda\mathcal L_k + c` with :math:`\lambda > 0`.

    Args:
        losses: task losses, shape ``(R..., n)``, attached to the graph of ``params``.
        params: the shared parameters :math:`\theta` whose gradient norms set the weights (leading
            shape ``R...``, as in :func:`task_gradients`).

    Returns:
        a 0-d tensor attached to the graph (summed over replicas).

    Raises:
        TypeError: as :func:`task_gradients`.
        ValueError: as :func:`task_gradients`, or if a task's gradient norm is zero.

    Used in: :doc:`/book/optimization/multitask-loss-weighting`, eq. :eq:`mtl-gradnorm`.
    """
    norms = torch.linalg.vector_norm(task_gradients(losses, params), dim=-1)
    if bool((norms == 0).any()):
        raise ValueError("losses: a task has a zero gradient with respect to params")
    return (losses / norms.to(losses.dtype)).sum()


# --- uncertainty weighting --------------------------------------------------------------------

def uncertainty_weighted_loss(losses: Any, log_var: Any) -> torch.Tensor:
    r"""Kendall et al.'s homoscedastic-uncertainty weighting, with :math:`s_i = \log\sigma_i^2`:

    .. math::

       \mathcal L(\theta, s)
       = \sum_{i=1}^n \Bigl(\frac{\mathcal L_i}{2\sigma_i^2} + \log\sigma_i\Bigr)
       = \sum_{i=1}^n \tfrac12\bigl(e^{-s_i}\mathcal L_i + s_i\bigr) .

    Args:
        losses: task losses, shape ``(..., n)``.
        log_var: the learned log-variances :math:`s_i`, the same shape as ``losses``.

    Returns:
        a 0-d tensor, differentiable in both arguments (summed over replicas).

    Raises:
        ValueError: if the shapes differ or an input holds NaN.

    Used in: :doc:`/book/optimization/multitask-loss-weighting`, eq. :eq:`mtl-uncertainty`.
    """
    L = _losses(losses)
    s = _losses(log_var, "log_var")
    if s.shape != L.shape:
        raise ValueError(f"log_var must have shape {tuple(L.shape)}, got {tuple(s.shape)}")
    return 0.5 * (torch.exp(-s) * L + s).sum()


def uncertainty_profile_loss(losses: Any) -> torch.Tensor:
    r"""The uncertainty-weighted loss minimised over the log-variances, reached at
    :math:`s_i^\ast = \log \mathcal L_i`:

    .. math::

       \min_s \mathcal L(\theta, s) = \frac n2 + \frac12 \sum_{i=1}^n \log \mathcal L_i ,

    whose gradient in :math:`\theta` is half the real-time gradient
    :math:`\sum_i \nabla\mathcal L_i/\mathcal L_i`.

    Args:
        losses: positive task losses, shape ``(..., n)`` (a tensor keeps its autograd graph).

    Returns:
        a 0-d tensor (summed over replicas).

    Raises:
        ValueError: if ``losses`` has an entry ``<= 0``.

    Used in: :doc:`/book/optimization/multitask-loss-weighting`, eq. :eq:`mtl-uncertainty-profile`.
    """
    L = _losses(losses, positive=True)
    return 0.5 * L.numel() + 0.5 * torch.log(L).sum()


# --- all schemes by name -------------------------------------------------------------------------

def scheme_weights(scheme: str, losses: Any, *, reference: Any = None, grad_norms: Any = None,
                   gamma: float | None = None) -> torch.Tensor:
    r"""The weight :math:`w_i` each scheme puts on the task gradient, :math:`\nabla_\theta\mathcal L
    = \sum_i w_i \nabla_\theta \mathcal L_i`, in closed form:

    .. math::

       w_i = 1 \ (\texttt{sum}), \quad
       \frac{1}{\mathcal L_i^{(\mathrm{ref})}} \ (\texttt{initial}, \texttt{prior}), \quad
       \frac{1}{\mathcal L_i} \ (\texttt{realtime}), \quad
       \frac1n\Bigl(\frac{\mathcal L_i}{M_\gamma}\Bigr)^{\gamma-1} \ (\texttt{power}), \quad
       \frac{1}{\|\nabla_\theta\mathcal L_i\|} \ (\texttt{gradnorm}).

    Args:
        scheme: one of ``"sum"``, ``"initial"``, ``"prior"``, ``"realtime"``, ``"power"``,
            ``"gradnorm"``.
        losses: current task losses, shape ``(..., n)``.
        reference: reference losses, broadcastable to ``losses``, for ``"initial"`` and ``"prior"``.
        grad_norms: task gradient norms, broadcastable to ``losses``, for ``"gradnorm"``.
        gamma: the exponent for ``"power"``.

    Returns:
        the weights, shape of ``losses`` (or of the broadcast), float64 and detached.

    Raises:
        ValueError: for an unknown scheme, a missing or misshaped argument, or non-positive
            losses, references or norms where the scheme divides by them.

    Used in: :doc:`/book/optimization/multitask-loss-weighting`, eq. :eq:`mtl-scheme-weights`.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    L = _losses(losses).detach().to(torch.float64)
    if scheme == "sum":
        return torch.ones_like(L)
    if scheme in ("initial", "prior"):
        if reference is None:
            raise ValueError(f"reference is required for scheme {scheme!r}")
        return torch.ones_like(L) / _same_shape(reference, "reference", L, positive=True)
    if scheme == "gradnorm":
        if grad_norms is None:
            raise ValueError("grad_norms is required for scheme 'gradnorm'")
        return torch.ones_like(L) / _same_shape(grad_norms, "grad_norms", L, positive=True)
    if scheme == "realtime":
        return 1.0 / _losses(L, positive=True)
    if gamma is None:
        raise ValueError("gamma is required for scheme 'power'")
    return power_mean_weights(L, gamma)


def combine_losses(losses: torch.Tensor, scheme: str, *, reference: Any = None,
                   params: Sequence[torch.Tensor] | None = None, gamma: float | None = None,
                   log_var: Any = None) -> torch.Tensor:
    r"""The scalar to back-propagate for a weighting scheme chosen by name:

    .. math::

       \sum_i \mathcal L_i, \quad \sum_i \frac{\mathcal L_i}{\mathcal L_i^{(\mathrm{ref})}}, \quad
       \sum_i \frac{\mathcal L_i}{\operatorname{sg}(\mathcal L_i)}, \quad M_\gamma, \quad
       \sum_i \frac{\mathcal L_i}{\operatorname{sg}(\|\nabla_\theta\mathcal L_i\|)}, \quad
       \sum_i \tfrac12\bigl(e^{-s_i}\mathcal L_i + s_i\bigr)

    for ``"sum"``, ``"initial"``/``"prior"``, ``"realtime"``, ``"power"``, ``"gradnorm"`` and
    ``"uncertainty"``, each summed over any leading replica axes.

    Args:
        losses: task losses, shape ``(..., n)``, attached to the model's graph.
        scheme: the scheme's name.
        reference: reference losses for ``"initial"``/``"prior"``, broadcastable to ``losses``.
        params: shared parameters for ``"gradnorm"``.
        gamma: exponent for ``"power"``.
        log_var: log-variances :math:`s`, shape of ``losses``, for ``"uncertainty"``.

    Returns:
        a 0-d tensor attached to the graph.

    Raises:
        ValueError: for an unknown scheme or a missing argument.

    Used in: :doc:`/book/optimization/multitask-loss-weighting`.
    """
    known = (*SCHEMES, "uncertainty")
    if scheme not in known:
        raise ValueError(f"scheme must be one of {known}, got {scheme!r}")
    required = {"initial": ("reference", reference), "prior": ("reference", reference),
                "gradnorm": ("params", params), "power": ("gamma", gamma),
                "uncertainty": ("log_var", log_var)}
    if scheme in required and required[scheme][1] is None:
        raise ValueError(f"{required[scheme][0]} is required for scheme {scheme!r}")
    if scheme == "sum":
        return _losses(losses).sum()
    if scheme in ("initial", "prior"):
        return normalized_loss(losses, reference)
    if scheme == "realtime":
        return realtime_weighted_loss(losses)
    if scheme == "power":
        return power_mean(losses, gamma).sum()  # type: ignore[arg-type]
    if scheme == "gradnorm":
        return gradnorm_weighted_loss(losses, params)  # type: ignore[arg-type]
    return uncertainty_weighted_loss(losses, log_var)
