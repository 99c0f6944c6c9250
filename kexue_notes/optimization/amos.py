r"""Learning-rate and weight-decay schedules derived from the idea behind the Amos optimizer.

An optimizer with decoupled weight decay moves the parameters :math:`\theta_t` by

.. math::

   \theta_{t+1} = \theta_t - (\alpha_t u_t + \rho_t \theta_t),

with :math:`u_t` the update direction (a gradient, or Adam's normalised moment), :math:`\alpha_t`
the learning rate and :math:`\rho_t` the weight-decay rate. Write
:math:`\varepsilon_t = \theta_t - \theta^*` for the distance to the end point. Su asks the
weight decay to cancel, to second order, the growth :math:`\alpha_t^2\|u_t\|^2` of
:math:`\|\varepsilon_t\|^2` that any finite step causes (the *balance condition*), assumes
:math:`\theta_t\cdot\varepsilon_t \approx q\|\varepsilon_t\|^2` and
:math:`\cos(u_t, \varepsilon_t) \approx p`, and finds that both rates decay by the same factor
:math:`e^{-2S_t}` with

.. math::

   S_{t+1} = S_t + \alpha_0 p\, e^{-S_t}, \qquad S_0 = 0,

whose continuous version gives an inverse-square decay :math:`(1 + \alpha_0 p t)^{-2}`. If the
cosine itself decays like the distance, :math:`p_t = p_0 e^{-S_t}`, the decay is inverse-time,
:math:`(1 + 2\alpha_0 p_0 t)^{-1}`.

The module reads in that order: the decay factor in closed form and by its recurrence, the
halving rule, the predicted initial distance, the learning rate and weight decay, the diagnostics
of a trajectory, the optimizer that applies the schedule (:class:`AmosLikeAdamW`), and, for
comparison, the decay factors of the published Amos optimizer (Tian & Parikh, 2022).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from kexue_notes._validate import (
    as_array,
    as_tensor,
    check_count,
    check_fraction,
    check_positive,
    is_tensor,
)

__all__ = [  # noqa: RUF022 -- in the order of the page, as the module reads
    "decay",
    "simulate_S",
    "p_for_halving",
    "initial_distance",
    "lr_and_weight_decay",
    "balance_diagnostics",
    "AmosLikeAdamW",
    "amos_paper_schedule",
]

_MODES = ("fixed", "dynamic", "constant")
_INITS = ("random", "fixed")
_DIRECTIONS = ("adam", "sgd")


# --- checks shared by the functions below ----------------------------------------------------

def _mode(mode: Any) -> str:
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    return str(mode)


def _cosine_p(value: Any, name: str) -> float:
    """A cosine-like rate p in (0, 1]."""
    v = check_fraction(value, name)
    if v == 0.0:
        raise ValueError(f"{name} must lie in (0, 1], got {value}")
    return v


def _steps(t: Any) -> NDArray[np.float64]:
    arr = as_array(t, "t")
    if np.any(arr < 0):
        raise ValueError(f"t must be >= 0, got minimum {arr.min():.3g}")
    return arr


def _like(result: NDArray[np.float64], template: Any) -> Any:
    """Return ``result`` as a float64 tensor when ``template`` is a tensor, else as is."""
    if is_tensor(template):
        return torch.as_tensor(result, dtype=torch.float64)
    return result


# --- the decay factor ------------------------------------------------------------------------

def decay(t: Any, alpha0: float, p: float, mode: str = "fixed") -> Any:
    r"""The decay factor :math:`e^{-2S_t}` shared by the learning rate and the weight decay.

    Solving :math:`\mathrm dS/\mathrm dt = \alpha_0 p\, e^{-S}` (``"fixed"``: a constant cosine
    :math:`p`) or :math:`\mathrm dS/\mathrm dt = \alpha_0 p\, e^{-2S}` (``"dynamic"``: the cosine
    decays as :math:`p_t = p\, e^{-S_t}`) with :math:`S(0) = 0` gives

    .. math::

       e^{-2S_t} = \frac{1}{(1 + \alpha_0 p\, t)^2}\ (\texttt{"fixed"}), \qquad
       e^{-2S_t} = \frac{1}{1 + 2\alpha_0 p\, t}\ (\texttt{"dynamic"}),

    and ``"constant"`` returns 1 (no decay, for baselines).

    Args:
        t: step(s) :math:`t \ge 0`, any shape; a NumPy array, a number or a tensor.
        alpha0: the relative step size :math:`\alpha_0 > 0`.
        p: the cosine :math:`p` (or :math:`p_0`) in (0, 1].
        mode: ``"fixed"``, ``"dynamic"`` or ``"constant"``.

    Returns:
        :math:`e^{-2S_t}` of ``t``'s shape: a float64 tensor for a tensor ``t``, else an array.

    Raises:
        ValueError: if ``t`` is negative or not finite, ``alpha0`` is not positive, ``p`` lies
            outside (0, 1], or ``mode`` is unknown.

    Used in: :doc:`/book/optimization/amos-training-strategies`, eq. :eq:`amos-decay-fixed`.
    """
    tt = _steps(t)
    a0 = check_positive(alpha0, "alpha0")
    pp = _cosine_p(p, "p")
    mode = _mode(mode)
    if mode == "fixed":
        out = 1.0 / (1.0 + a0 * pp * tt) ** 2
    elif mode == "dynamic":
        out = 1.0 / (1.0 + 2.0 * a0 * pp * tt)
    else:
        out = np.ones_like(tt)
    return _like(out, t)


def simulate_S(alpha0: Any, p: Any, T: int, mode: str = "fixed") -> NDArray[np.float64]:
    r"""The exponent :math:`S_t` by its discrete recurrence, :math:`t = 0, \dots, T`.

    .. math::

       S_0 = 0, \qquad
       S_{t+1} = S_t + \alpha_0 p\, e^{-S_t}\ (\texttt{"fixed"}), \qquad
       S_{t+1} = S_t + \alpha_0 p\, e^{-2S_t}\ (\texttt{"dynamic"}).

    The closed forms of :func:`decay` solve the continuous version; :math:`e^{-2S_t}` from this
    recurrence differs from them by a relative error of order :math:`\alpha_0 p`.

    Args:
        alpha0: :math:`\alpha_0 > 0`, a number or an array (broadcast with ``p``).
        p: :math:`p` (or :math:`p_0`) in (0, 1], a number or an array.
        T: the number of steps, an integer >= 1.
        mode: ``"fixed"`` or ``"dynamic"``.

    Returns:
        :math:`S_t`, float64, of shape ``(T + 1,) + broadcast(alpha0, p).shape``.

    Raises:
        ValueError: if ``alpha0`` is not positive, ``p`` lies outside (0, 1], ``T`` is not a
            positive integer, or ``mode`` is not ``"fixed"`` or ``"dynamic"``.

    Used in: :doc:`/book/optimization/amos-training-strategies`, eq. :eq:`amos-recurrence`.
    """
    a0 = as_array(alpha0, "alpha0")
    pp = as_array(p, "p")
    if np.any(a0 <= 0):
        raise ValueError(f"alpha0 must be > 0, got minimum {a0.min():.3g}")
    if np.any(pp <= 0) or np.any(pp > 1):
        raise ValueError("p must lie in (0, 1]")
    T = check_count(T, "T")
    mode = _mode(mode)
    if mode == "constant":
        raise ValueError("mode must be 'fixed' or 'dynamic' for the recurrence, got 'constant'")
    a = a0 * pp
    k = 1.0 if mode == "fixed" else 2.0
    S = np.zeros((T + 1, *a.shape))
    for t in range(T):  # a recurrence in time: each step needs the previous one
        S[t + 1] = S[t] + a * np.exp(-k * S[t])
    return S


def p_for_halving(T_half: float, alpha0: float, mode: str = "fixed") -> float:
    r"""The cosine :math:`p` for which the schedule halves after :math:`T_{1/2}` steps.

    Setting :func:`decay` to :math:`1/2` at :math:`t = T_{1/2}` gives

    .. math::

       \alpha_0 p = \frac{\sqrt 2 - 1}{T_{1/2}}\ (\texttt{"fixed"}), \qquad
       \alpha_0 p = \frac{1}{2 T_{1/2}}\ (\texttt{"dynamic"}).

    Args:
        T_half: the halving time :math:`T_{1/2} > 0`, in steps.
        alpha0: :math:`\alpha_0 > 0`.
        mode: ``"fixed"`` or ``"dynamic"``.

    Returns:
        :math:`p`, a float in (0, 1].

    Raises:
        ValueError: if an argument is not positive, ``mode`` is not ``"fixed"`` or
            ``"dynamic"``, or the halving time is too short (it would need :math:`p > 1`).

    Used in: :doc:`/book/optimization/amos-training-strategies`, eq. :eq:`amos-halving`.
    """
    T = check_positive(T_half, "T_half")
    a0 = check_positive(alpha0, "alpha0")
    mode = _mode(mode)
    if mode == "constant":
        raise ValueError("mode must be 'fixed' or 'dynamic' to halve, got 'constant'")
    ap = (math.sqrt(2.0) - 1.0) / T if mode == "fixed" else 1.0 / (2.0 * T)
    p = ap / a0
    if p > 1.0:
        raise ValueError(f"T_half = {T_half} is too short for alpha0 = {alpha0}: it needs "
                         f"p = {p:.3g} > 1")
    return p


# --- the scale of a parameter and the two rates ----------------------------------------------

def initial_distance(numel: int, sigma: float, init: str = "random") -> float:
    r"""Predicted distance :math:`\|\varepsilon_0\| = \|\theta_0 - \theta^*\|` of a tensor.

    A tensor of :math:`k` entries initialised at random with standard deviation :math:`\sigma`,
    whose end point has entries of the same scale and is independent of the start, has
    :math:`\|\varepsilon_0\|^2 \approx \|\theta_0\|^2 + \|\theta^*\|^2 \approx 2k\sigma^2`
    (``"random"``). A tensor initialised at a constant (biases at 0, gains at 1) that moves by
    about :math:`\sigma` per entry has :math:`\|\varepsilon_0\|^2 \approx k\sigma^2` (``"fixed"``).

    .. math::

       \|\varepsilon_0\| = \sigma\sqrt{2k}\ (\texttt{"random"}), \qquad
       \|\varepsilon_0\| = \sigma\sqrt{k}\ (\texttt{"fixed"}).

    Args:
        numel: the number of entries :math:`k`, an integer >= 1.
        sigma: the scale :math:`\sigma > 0` (the init's standard deviation, or e.g. 0.5).
        init: ``"random"`` or ``"fixed"``.

    Returns:
        :math:`\|\varepsilon_0\|`, a float.

    Raises:
        ValueError: if ``numel`` is not a positive integer, ``sigma`` is not positive, or
            ``init`` is unknown.

    Used in: :doc:`/book/optimization/amos-training-strategies`, eq. :eq:`amos-eps0`.
    """
    k = check_count(numel, "numel")
    s = check_positive(sigma, "sigma")
    if init not in _INITS:
        raise ValueError(f"init must be one of {_INITS}, got {init!r}")
    return s * math.sqrt((2.0 if init == "random" else 1.0) * k)


def lr_and_weight_decay(t: Any, alpha0: float, p: float, eps0: float, u_norm: Any,
                        q: float = 1.0, mode: str = "fixed") -> tuple[Any, Any]:
    r"""The learning rate :math:`\alpha_t` and weight-decay rate :math:`\rho_t` of the schedule.

    .. math::

       \alpha_t = \frac{\alpha_0 \|\varepsilon_0\|}{\|u_t\|}\, e^{-2S_t}, \qquad
       \rho_t = \frac{\alpha_0^2}{2q}\, e^{-2S_t},

    with :math:`e^{-2S_t}` from :func:`decay`. The step :math:`\alpha_t u_t` then has length
    :math:`\alpha_0\|\varepsilon_0\| e^{-2S_t}`, whatever the scale of :math:`u_t`.

    Args:
        t: step(s) :math:`t \ge 0`, any shape.
        alpha0: :math:`\alpha_0 > 0`.
        p: the cosine :math:`p` in (0, 1].
        eps0: the predicted initial distance :math:`\|\varepsilon_0\| > 0`.
        u_norm: :math:`\|u_t\| > 0`, broadcastable with ``t``.
        q: :math:`q > 0` in :math:`\theta_t\cdot\varepsilon_t \approx q\|\varepsilon_t\|^2`.
        mode: ``"fixed"``, ``"dynamic"`` or ``"constant"``.

    Returns:
        ``(alpha_t, rho_t)`` of the broadcast shape: tensors if ``t`` is a tensor, else arrays.

    Raises:
        ValueError: if ``u_norm`` is not positive, or another argument is out of range (see
            :func:`decay`).

    Used in: :doc:`/book/optimization/amos-training-strategies`, eq. :eq:`amos-schedule`.
    """
    f = decay(_steps(t), alpha0, p, mode)
    e0 = check_positive(eps0, "eps0")
    u = as_array(u_norm, "u_norm")
    if np.any(u <= 0):
        raise ValueError(f"u_norm must be > 0, got minimum {u.min():.3g}")
    qq = check_positive(q, "q")
    a0 = float(alpha0)
    return _like(a0 * e0 * f / u, t), _like(a0**2 / (2.0 * qq) * f * np.ones_like(u), t)


def balance_diagnostics(theta: Any, rho: Any, theta_star: Any) -> dict[str, torch.Tensor]:
    r"""Distance, cosine and balance ratio along a trajectory of decoupled-decay steps.

    From consecutive iterates and the weight-decay rates, the gradient part of each step is
    recovered exactly, :math:`\alpha_t u_t = (1 - \rho_t)\theta_t - \theta_{t+1}`; with
    :math:`\varepsilon_t = \theta_t - \theta^*` the diagnostics are

    .. math::

       \|\varepsilon_t\|, \qquad
       \cos(u_t, \varepsilon_t) = \frac{\alpha_t u_t\cdot\varepsilon_t}
       {\|\alpha_t u_t\|\,\|\varepsilon_t\|}, \qquad
       B_t = \frac{\alpha_t^2\|u_t\|^2}{2\rho_t\,\theta_t\cdot\varepsilon_t},

    where :math:`B_t = 1` is the balance condition.

    Args:
        theta: the iterates :math:`\theta_0, \dots, \theta_T`, shape ``(T + 1, d)``.
        rho: the weight-decay rates :math:`\rho_0, \dots, \rho_{T-1}`, shape ``(T,)``, > 0.
        theta_star: the end point :math:`\theta^*`, shape ``(d,)``.

    Returns:
        The diagnostics as a dict of float64 tensors, ``"distance"`` of shape ``(T + 1,)``, and
        ``"cosine"``, ``"balance"`` and ``"step"`` (the length :math:`\|\alpha_t u_t\|`), each of
        shape ``(T,)``.

    Raises:
        ValueError: if the shapes do not match, an input is not finite, or a rate is not > 0.

    Used in: :doc:`/book/optimization/amos-training-strategies`, eq. :eq:`amos-balance`.
    """
    th = as_tensor(theta, "theta", ndim=2).to(torch.float64)
    if th.shape[0] < 2:
        raise ValueError(f"theta must hold at least two iterates, got shape {tuple(th.shape)}")
    T, d = th.shape[0] - 1, th.shape[1]
    r = as_tensor(rho, "rho", shape=(T,)).to(torch.float64)
    if bool((r <= 0).any()):
        raise ValueError(f"rho must be > 0, got minimum {float(r.min()):.3g}")
    star = as_tensor(theta_star, "theta_star", shape=(d,)).to(torch.float64)
    eps = th - star
    step = (1.0 - r)[:, None] * th[:-1] - th[1:]
    step_norm = step.norm(dim=1)
    cos = (step * eps[:-1]).sum(1) / (step_norm * eps[:-1].norm(dim=1))
    balance = step_norm**2 / (2.0 * r * (th[:-1] * eps[:-1]).sum(1))
    return {"distance": eps.norm(dim=1), "cosine": cos, "balance": balance, "step": step_norm}


# --- the optimizer ----------------------------------------------------------------------------

def _decay_value(t: int, a: float, mode: str) -> float:
    """:func:`decay` for one step, without the checks (the optimizer validated its options)."""
    if mode == "fixed":
        return 1.0 / (1.0 + a * t) ** 2
    if mode == "dynamic":
        return 1.0 / (1.0 + 2.0 * a * t)
    return 1.0


class AmosLikeAdamW(torch.optim.Optimizer):
    r"""Adam (or SGD) direction with Su's Amos-style learning rate and weight decay, per tensor.

    For each parameter tensor, at step :math:`t = 0, 1, \dots`, with :math:`u_t` the Adam
    direction :math:`\hat m_t/(\sqrt{\hat v_t} + \epsilon)` (``direction="adam"``) or the
    gradient (``"sgd"``),

    .. math::

       \theta_{t+1} = (1 - \rho_t)\,\theta_t - \alpha_t u_t, \qquad
       \alpha_t = \frac{\alpha_0\|\varepsilon_0\|}{\|u_t\|}\, e^{-2S_t}, \qquad
       \rho_t = \frac{\alpha_0^2}{2q}\, e^{-2S_t},

    with :math:`e^{-2S_t}` from :func:`decay` and :math:`\|\varepsilon_0\|` from
    :func:`initial_distance` (group options ``sigma`` and ``init``). Every tensor is scaled on its
    own, so independent tensors in one optimizer train independently. The rates of the last step
    are kept in the state as ``"lr"`` and ``"rho"``; ``"step"`` counts the steps taken.

    Args:
        params: parameters or parameter groups, as for any torch optimizer.
        alpha0: the relative step size :math:`\alpha_0 > 0`.
        p: the cosine :math:`p` (or :math:`p_0`) in (0, 1].
        q: :math:`q > 0`.
        mode: ``"fixed"`` (inverse-square), ``"dynamic"`` (inverse-time) or ``"constant"``.
        sigma: the scale :math:`\sigma > 0` of the parameters' change.
        init: ``"random"`` (:math:`\|\varepsilon_0\| = \sigma\sqrt{2k}`) or ``"fixed"``
            (:math:`\sigma\sqrt{k}`).
        direction: ``"adam"`` or ``"sgd"``.
        betas: Adam's :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: Adam's :math:`\epsilon > 0`.

    Raises:
        ValueError: if a hyper-parameter is out of range (the message names it).

    Used in: :doc:`/book/optimization/amos-training-strategies`, eq. :eq:`amos-schedule`.
    """

    def __init__(self, params: Any, alpha0: float = 1e-2, p: float = 1.0, q: float = 1.0,
                 mode: str = "fixed", sigma: float = 0.5, init: str = "random",
                 direction: str = "adam", betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        alpha0 = check_positive(alpha0, "alpha0")
        p = _cosine_p(p, "p")
        q = check_positive(q, "q")
        mode = _mode(mode)
        sigma = check_positive(sigma, "sigma")
        if init not in _INITS:
            raise ValueError(f"init must be one of {_INITS}, got {init!r}")
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction must be one of {_DIRECTIONS}, got {direction!r}")
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        b1, b2 = (check_fraction(b, f"betas[{i}]") for i, b in enumerate(betas))
        if b1 == 1.0 or b2 == 1.0:
            raise ValueError(f"betas must lie in [0, 1), got {betas!r}")
        eps = check_positive(eps, "eps")
        defaults = {"alpha0": alpha0, "p": p, "q": q, "mode": mode, "sigma": sigma,
                    "init": init, "direction": direction, "betas": (b1, b2), "eps": eps}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        r"""One step of the schedule for every tensor that has a gradient.

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
            a0, q, (b1, b2) = group["alpha0"], group["q"], group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["eps0"] = initial_distance(p.numel(), group["sigma"], group["init"])
                    if group["direction"] == "adam":
                        state["exp_avg"] = torch.zeros_like(p)
                        state["exp_avg_sq"] = torch.zeros_like(p)
                t = state["step"]
                if group["direction"] == "adam":
                    m, v = state["exp_avg"], state["exp_avg_sq"]
                    m.mul_(b1).add_(g, alpha=1.0 - b1)
                    v.mul_(b2).addcmul_(g, g, value=1.0 - b2)
                    m_hat = m / (1.0 - b1 ** (t + 1))
                    v_hat = v / (1.0 - b2 ** (t + 1))
                    u = m_hat / (v_hat.sqrt() + group["eps"])
                else:
                    u = g
                f = _decay_value(t, a0 * group["p"], group["mode"])
                u_norm = float(u.norm())
                lr = a0 * state["eps0"] * f / u_norm if u_norm > 0 else 0.0
                rho = a0**2 / (2.0 * q) * f
                p.mul_(1.0 - rho).add_(u, alpha=-lr)
                state["step"] = t + 1
                state["lr"], state["rho"] = lr, rho
        return loss


# --- the published Amos, for comparison -----------------------------------------------------

def amos_paper_schedule(T: int, xi: float, eta: float, zeta: float = 0.25,
                        ratio: Any = 1.0) -> dict[str, NDArray[np.float64]]:
    r"""Decay factors of the published Amos optimizer, from its slot :math:`b_t`.

    Amos (Tian & Parikh, 2022; the authors' ``jestimator`` code) keeps one slot :math:`b_t`
    per tensor, :math:`b_0 = 0`, with global rate :math:`\xi`, model-oriented scale :math:`\eta`,
    :math:`\zeta` (0.25 by default) and :math:`r_t = \overline{g_t^2}/\hat v_t` the ratio of the
    mean squared gradient to its running average:

    .. math::

       c_t = (1 + \zeta\sqrt{\xi}\, b_t)^{-1/2}, \quad
       d_t = (1 + \zeta\sqrt{\xi\eta}\, b_t)^{-1}, \quad
       \gamma_t = c_t\, \xi^2 r_t, \quad
       b_{t+1} = b_t + \gamma_t (1 + b_t).

    The update is :math:`\theta_{t+1} = \theta_t - d_t\big(\xi\eta\, g_t/\sqrt{\hat v_t} +
    \tfrac12\gamma_t\theta_t\big)`: the learning rate decays by :math:`d_t` and the weight-decay
    rate is :math:`\tfrac12 d_t\gamma_t`.

    Args:
        T: the number of steps, an integer >= 1.
        xi: the global learning rate :math:`\xi > 0`.
        eta: the scale :math:`\eta > 0`.
        zeta: :math:`\zeta > 0`.
        ratio: :math:`r_t \ge 0`, a number or an array of shape ``(T,)`` (1 for a stationary
            gradient scale).

    Returns:
        The schedule as a dict of float64 arrays, ``"b"`` of shape ``(T + 1,)``, and
        ``"lr_factor"`` (:math:`d_t`) and ``"weight_decay"`` (:math:`\tfrac12 d_t\gamma_t`) of
        shape ``(T,)``.

    Raises:
        ValueError: if an argument is out of range or ``ratio`` has the wrong shape.

    Used in: :doc:`/book/optimization/amos-training-strategies`, eq. :eq:`amos-paper`.
    """
    T = check_count(T, "T")
    xi = check_positive(xi, "xi")
    eta = check_positive(eta, "eta")
    zeta = check_positive(zeta, "zeta")
    r = as_array(ratio, "ratio")
    if r.ndim == 0:
        r = np.full(T, float(r))
    if r.shape != (T,):
        raise ValueError(f"ratio must be a number or have shape ({T},), got {r.shape}")
    if np.any(r < 0):
        raise ValueError(f"ratio must be >= 0, got minimum {r.min():.3g}")
    b = np.zeros(T + 1)
    d = np.zeros(T)
    gamma = np.zeros(T)
    for t in range(T):  # a recurrence in time
        c = 1.0 / math.sqrt(1.0 + zeta * math.sqrt(xi) * b[t])
        d[t] = 1.0 / (1.0 + zeta * math.sqrt(xi * eta) * b[t])
        gamma[t] = c * xi**2 * r[t]
        b[t + 1] = b[t] + gamma[t] * (1.0 + b[t])
    return {"b": b, "lr_factor": d, "weight_decay": 0.5 * d * gamma}
