r"""Exponentiated gradient descent, and a learning rate that learns itself with it.

**Exponentiated gradient (EG).** For a loss :math:`\mathcal L(\theta)` over non-negative
parameters :math:`\theta \ge 0`, the EG step with learning rate :math:`\eta` is

.. math::

   \theta_{t+1} = \theta_t \odot \exp\!\big(-\eta\, \nabla\mathcal L(\theta_t)\big),

a multiplicative update that keeps every entry's sign. It is the mirror-descent step with the
unnormalised Kullback–Leibler divergence :math:`D(\theta \,\|\, \theta_t) = \sum_i \theta_i
\log(\theta_i/\theta_{t,i}) - \theta_i + \theta_{t,i}` as its proximity term: the unique minimiser
of :math:`\langle g_t, \theta\rangle + D(\theta \,\|\, \theta_t)/\eta` (:func:`eg_step`,
:func:`unnormalized_kl`, :func:`mirror_descent_objective`, :func:`eg_least_squares`, :class:`EG`).

**Meta-learned step sizes.** Gradient descent with one non-negative rate multiplier per
coordinate, :math:`\theta_{t+1} = \theta_t - \eta\,\nu_{t+1} \odot g_t`, can learn :math:`\nu` by
EG on the loss itself: the chain rule gives :math:`\partial\mathcal L(\theta_t)/\partial\nu_t =
-\eta\, g_{t-1} \odot g_t`, and an EG step on :math:`\nu` (its rate times :math:`\eta` folded into
one constant :math:`\gamma`) reads

.. math::

   \nu_{t+1} = \nu_t \odot \exp(\gamma\, g_{t-1} \odot g_t)
   = \nu_1 \odot \exp\Big(\gamma \sum_{k=1}^{t} g_{k-1} \odot g_k\Big),

so a coordinate's rate grows while its successive gradients agree in sign and shrinks while they
alternate (:func:`meta_gradient`, :func:`meta_lr_nu`, :class:`MetaLRSGD`).

Functions take NumPy arrays or torch tensors and compute in float64 NumPy; the two optimizers
are ``torch.optim.Optimizer`` subclasses.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from scipy.special import xlogy

from kexue_notes._validate import as_array, check_count, check_positive

__all__ = [  # noqa: RUF022 -- in the order of the page
    "eg_step",
    "unnormalized_kl",
    "mirror_descent_objective",
    "eg_least_squares",
    "meta_gradient",
    "meta_lr_nu",
    "EG",
    "MetaLRSGD",
]

_PAGE = ":doc:`/book/optimization/exponentiated-gradient-lr`"


# --- checks shared by the functions below ----------------------------------------------------

def _non_negative(x: Any, name: str, **shape: Any) -> NDArray[np.float64]:
    arr = as_array(x, name, **shape)
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative, got minimum {arr.min():.3g}")
    return arr


def _positive(x: Any, name: str, **shape: Any) -> NDArray[np.float64]:
    arr = as_array(x, name, **shape)
    if np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0 entry by entry, got minimum {arr.min():.3g}")
    return arr


def _same_shape(a: NDArray[np.float64], b: NDArray[np.float64], name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_b} must have the shape of {name_a}, {a.shape}, got {b.shape}")


# --- exponentiated gradient as mirror descent ------------------------------------------------

def eg_step(theta: Any, grad: Any, lr: float) -> NDArray[np.float64]:
    r"""One exponentiated-gradient step on non-negative parameters.

    .. math::

       \theta_{t+1} = \theta_t \odot \exp(-\eta\, g_t) .

    Every entry keeps its sign: a positive entry stays positive, a zero stays zero.

    Args:
        theta: current parameters :math:`\theta_t \ge 0`, any shape.
        grad: the gradient :math:`g_t = \nabla\mathcal L(\theta_t)`, the shape of ``theta``.
        lr: learning rate :math:`\eta > 0`.

    Returns:
        :math:`\theta_{t+1}`, float64, the shape of ``theta``.

    Raises:
        ValueError: if ``theta`` has a negative entry, the shapes differ, an input is not finite
            or ``lr`` is not positive.

    Used in: :doc:`/book/optimization/exponentiated-gradient-lr`, eq. :eq:`eg-update`.
    """
    theta = _non_negative(theta, "theta")
    grad = as_array(grad, "grad")
    _same_shape(theta, grad, "theta", "grad")
    lr = check_positive(lr, "lr")
    return theta * np.exp(-lr * grad)


def unnormalized_kl(theta: Any, theta_ref: Any) -> NDArray[np.float64]:
    r"""Unnormalised Kullback–Leibler divergence between non-negative vectors.

    .. math::

       D(\theta \,\|\, \theta_{\mathrm{ref}}) = \sum_i \Big(\theta_i
       \log\frac{\theta_i}{\theta_{\mathrm{ref},i}} - \theta_i + \theta_{\mathrm{ref},i}\Big)
       \;\ge\; 0,

    with :math:`0 \log 0 = 0`. It is the Bregman divergence of
    :math:`\psi(\theta) = \sum_i \theta_i\log\theta_i - \theta_i` and vanishes only at
    :math:`\theta = \theta_{\mathrm{ref}}`. The vectors need not sum to one.

    Args:
        theta: :math:`\theta \ge 0`, shape ``(..., d)``.
        theta_ref: :math:`\theta_{\mathrm{ref}} > 0`, the shape of ``theta``.

    Returns:
        :math:`D`, float64, shape ``(...)`` (summed over the last axis).

    Raises:
        ValueError: if ``theta`` has a negative entry, ``theta_ref`` a non-positive one, the
            shapes differ or ``theta`` is a scalar.

    Used in: :doc:`/book/optimization/exponentiated-gradient-lr`, eq. :eq:`eg-kl`.
    """
    theta = _non_negative(theta, "theta")
    ref = _positive(theta_ref, "theta_ref")
    _same_shape(theta, ref, "theta", "theta_ref")
    if theta.ndim == 0:
        raise ValueError("theta must have at least one axis (the coordinates), got a scalar")
    return (xlogy(theta, theta) - xlogy(theta, ref) - theta + ref).sum(axis=-1)


def mirror_descent_objective(theta: Any, theta_t: Any, grad: Any, lr: float) -> NDArray[np.float64]:
    r"""The proximal objective whose minimiser is the exponentiated-gradient step.

    .. math::

       F(\theta) = \langle g_t, \theta\rangle + \frac1\eta\, D(\theta \,\|\, \theta_t),

    with :math:`D` the unnormalised KL divergence (:func:`unnormalized_kl`). It is strictly
    convex on :math:`\theta \ge 0` and its minimiser is :func:`eg_step` of
    :math:`(\theta_t, g_t, \eta)`.

    Args:
        theta: the point :math:`\theta \ge 0` to evaluate, shape ``(..., d)``.
        theta_t: the current iterate :math:`\theta_t > 0`, shape ``(d,)`` or that of ``theta``.
        grad: the gradient :math:`g_t`, the shape of ``theta_t``.
        lr: learning rate :math:`\eta > 0`.

    Returns:
        :math:`F(\theta)`, float64, shape ``(...)``.

    Raises:
        ValueError: if an input has the wrong sign or shape, or is not finite.

    Used in: :doc:`/book/optimization/exponentiated-gradient-lr`, eq. :eq:`eg-mirror`.
    """
    theta = _non_negative(theta, "theta")
    theta_t = _positive(theta_t, "theta_t")
    grad = as_array(grad, "grad")
    _same_shape(theta_t, grad, "theta_t", "grad")
    if theta.ndim == 0 or theta.shape[-1:] != theta_t.shape[-1:]:
        raise ValueError(f"theta must have shape (..., {theta_t.shape[-1:]}), got {theta.shape}")
    lr = check_positive(lr, "lr")
    ref = np.broadcast_to(theta_t, theta.shape)
    return (theta * grad).sum(axis=-1) + unnormalized_kl(theta, ref) / lr


def eg_least_squares(A: Any, b: Any, theta0: Any, lr: float, steps: int) -> NDArray[np.float64]:
    r"""Exponentiated gradient on non-negative least squares, every iterate.

    Minimises :math:`\mathcal L(\theta) = \tfrac12\lVert A\theta - b\rVert^2` over
    :math:`\theta \ge 0` by
    :math:`\theta_{t+1} = \theta_t \odot \exp\big(-\eta A^\top(A\theta_t - b)\big)`.
    A coordinate whose constrained optimum is zero decays geometrically towards it and never
    reaches it.

    Args:
        A: design matrix, shape ``(m, n)``.
        b: targets, shape ``(m,)``.
        theta0: starting point :math:`\theta_0 > 0`, shape ``(n,)``.
        lr: learning rate :math:`\eta > 0`.
        steps: number of EG steps :math:`T \ge 1`.

    Returns:
        The iterates :math:`\theta_0, \dots, \theta_T`, float64, shape ``(T + 1, n)``.

    Raises:
        ValueError: if a shape does not match, ``theta0`` is not positive, ``lr`` is not positive
            or ``steps`` < 1.

    Used in: :doc:`/book/optimization/exponentiated-gradient-lr`, eq. :eq:`eg-update`.
    """
    A = as_array(A, "A", ndim=2)
    b = as_array(b, "b", shape=(A.shape[0],))
    theta = _positive(theta0, "theta0", shape=(A.shape[1],))
    lr = check_positive(lr, "lr")
    steps = check_count(steps, "steps")
    out = np.empty((steps + 1, A.shape[1]))
    out[0] = theta
    for t in range(steps):
        theta = theta * np.exp(-lr * (A.T @ (A @ theta - b)))
        out[t + 1] = theta
    return out


# --- the meta-learned learning rate ----------------------------------------------------------

def meta_gradient(grad_prev: Any, grad: Any, lr: float) -> NDArray[np.float64]:
    r"""Gradient of the loss with respect to the per-coordinate rate multiplier :math:`\nu_t`.

    With :math:`\theta_t = \theta_{t-1} - \eta\,\nu_t \odot g_{t-1}`, the chain rule gives

    .. math::

       \frac{\partial \mathcal L(\theta_t)}{\partial \nu_t} = -\eta\, g_{t-1} \odot g_t .

    Args:
        grad_prev: the previous gradient :math:`g_{t-1}`, any shape.
        grad: the current gradient :math:`g_t = \nabla\mathcal L(\theta_t)`, the same shape.
        lr: the base learning rate :math:`\eta > 0`.

    Returns:
        :math:`\partial\mathcal L/\partial\nu_t`, float64, the shape of ``grad``.

    Raises:
        ValueError: if the shapes differ, an input is not finite or ``lr`` is not positive.

    Used in: :doc:`/book/optimization/exponentiated-gradient-lr`, eq. :eq:`eg-meta-gradient`.
    """
    g_prev = as_array(grad_prev, "grad_prev")
    g = as_array(grad, "grad")
    _same_shape(g_prev, g, "grad_prev", "grad")
    lr = check_positive(lr, "lr")
    return -lr * g_prev * g


def meta_lr_nu(grads: Any, gamma: float, nu_init: Any = 1.0) -> NDArray[np.float64]:
    r"""The rate multipliers :math:`\nu_1, \dots, \nu_T` of :class:`MetaLRSGD`, in closed form.

    Given the gradients :math:`g_0, \dots, g_{T-1}` seen by the optimizer,

    .. math::

       \nu_{t+1} = \nu_1 \odot \exp\Big(\gamma \sum_{k=1}^{t} g_{k-1} \odot g_k\Big),
       \qquad t = 0, \dots, T-1,

    where :math:`\nu_1 = \nu_{\mathrm{init}}` (the empty sum) multiplies the first step.

    Args:
        grads: the gradients :math:`g_0, \dots, g_{T-1}`, shape ``(T, ...)``.
        gamma: the meta learning rate :math:`\gamma \ge 0`.
        nu_init: :math:`\nu_1 > 0`, a number or an array broadcastable to ``grads.shape[1:]``.

    Returns:
        :math:`\nu_1, \dots, \nu_T`, float64, shape ``(T, ...)``; row :math:`t` multiplies
        :math:`g_t` in the step :math:`\theta_{t+1} = \theta_t - \eta\,\nu_{t+1} \odot g_t`.

    Raises:
        ValueError: if ``grads`` has no time axis or is not finite, ``gamma`` < 0, or
            ``nu_init`` is not positive.

    Used in: :doc:`/book/optimization/exponentiated-gradient-lr`, eq. :eq:`eg-nu-closed-form`.
    """
    g = as_array(grads, "grads")
    if g.ndim == 0 or g.shape[0] == 0:
        raise ValueError(f"grads must have shape (T, ...) with T >= 1, got {g.shape}")
    gamma = check_positive(gamma, "gamma", allow_zero=True)
    nu1 = _positive(nu_init, "nu_init")
    products = g[1:] * g[:-1]                                      # g_{k-1} g_k, k = 1..T-1
    exponent = np.concatenate([np.zeros_like(g[:1]), np.cumsum(products, axis=0)], axis=0)
    return nu1 * np.exp(gamma * exponent)


# --- the optimizers --------------------------------------------------------------------------

class EG(torch.optim.Optimizer):
    r"""Exponentiated gradient descent for non-negative parameters.

    .. math::

       \theta_{t+1} = \theta_t \odot \exp(-\eta\, g_t),

    which keeps every parameter non-negative; it has no state besides the parameter groups.

    Args:
        params: non-negative parameters or parameter groups, as for any torch optimizer.
        lr: learning rate :math:`\eta > 0`.

    Raises:
        ValueError: if ``lr`` is not positive or a parameter has a negative entry.

    Used in: :doc:`/book/optimization/exponentiated-gradient-lr`, eq. :eq:`eg-update`.
    """

    def __init__(self, params: Any, lr: float = 1e-2) -> None:
        lr = check_positive(lr, "lr")
        super().__init__(params, {"lr": lr})
        for group in self.param_groups:
            for p in group["params"]:
                if bool((p.detach() < 0).any()):
                    raise ValueError("params must be non-negative for exponentiated gradient, "
                                     f"got minimum {float(p.detach().min()):.3g}")

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        r"""One step :math:`\theta \leftarrow \theta \odot e^{-\eta g}` for every parameter.

        Args:
            closure: optional callable that re-evaluates the model and returns the loss.

        Returns:
            The closure's loss, or ``None``.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.mul_(torch.exp(-group["lr"] * p.grad))
        return loss


class MetaLRSGD(torch.optim.Optimizer):
    r"""Gradient descent whose per-coordinate learning rates are learned by exponentiated gradient.

    With gradient :math:`g_t` at step :math:`t = 0, 1, \dots`,

    .. math::

       \nu_{t+1} = \nu_t \odot \exp(\gamma\, g_{t-1} \odot g_t), \qquad
       \theta_{t+1} = \theta_t - \eta\, \nu_{t+1} \odot g_t ,

    with :math:`\nu_1 = \nu_{\mathrm{init}}` at the first step (there is no :math:`g_{-1}`). This
    is Su's simplified form of the meta-learned step size; :math:`\gamma = 0` is plain gradient
    descent. The state holds ``"nu"`` (the multiplier used in the last step), ``"prev_grad"`` and
    ``"step"``.

    Args:
        params: parameters or parameter groups, as for any torch optimizer.
        lr: base learning rate :math:`\eta > 0`.
        gamma: meta learning rate :math:`\gamma \ge 0` (it has the units of 1/gradient²).
        nu_init: initial multiplier :math:`\nu_1 > 0`.

    Raises:
        ValueError: if a hyper-parameter is out of range (the message names it).

    Used in: :doc:`/book/optimization/exponentiated-gradient-lr`, eq. :eq:`eg-meta-update`.
    """

    def __init__(self, params: Any, lr: float = 1e-2, gamma: float = 1e-2,
                 nu_init: float = 1.0) -> None:
        lr = check_positive(lr, "lr")
        gamma = check_positive(gamma, "gamma", allow_zero=True)
        nu_init = check_positive(nu_init, "nu_init")
        super().__init__(params, {"lr": lr, "gamma": gamma, "nu_init": nu_init})

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        r"""Update :math:`\nu` with the product of the last two gradients, then step :math:`\theta`.

        Args:
            closure: optional callable that re-evaluates the model and returns the loss.

        Returns:
            The closure's loss, or ``None``.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, gamma = group["lr"], group["gamma"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["nu"] = torch.full_like(p, group["nu_init"])
                    state["prev_grad"] = torch.zeros_like(p)
                nu = state["nu"]
                if state["step"] > 0:
                    nu.mul_(torch.exp(gamma * state["prev_grad"] * g))
                p.addcmul_(nu, g, value=-lr)
                state["prev_grad"].copy_(g)
                state["step"] += 1
        return loss
