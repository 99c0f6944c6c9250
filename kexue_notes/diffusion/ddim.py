r"""DDIM in Su Jianlin's notation: the family of reverse kernels that keep the marginals of DDPM.

**The idea.** Training a DDPM only uses the marginals
:math:`q(x_t \mid x_0) = \mathcal N(\bar\alpha_t x_0, \bar\beta_t^2 I)`, never the one-step
kernel :math:`q(x_t \mid x_{t-1})`. Any Gaussian kernel

.. math::

   q_\sigma(x_s \mid x_t, x_0) = \mathcal N\bigl(\kappa\, x_t + \lambda\, x_0,\ \sigma^2 I\bigr),
   \qquad 0 \le s < t,

that maps :math:`q(x_t \mid x_0)` to :math:`q(x_s \mid x_0)` is therefore as good for sampling. The
moment equations :math:`\kappa\bar\alpha_t + \lambda = \bar\alpha_s` and
:math:`\kappa^2\bar\beta_t^2 + \sigma^2 = \bar\beta_s^2` leave the standard deviation :math:`\sigma`
free. Replacing :math:`x_0` by the prediction :math:`\hat x_0 = (x_t - \bar\beta_t\hat\epsilon)/
\bar\alpha_t` of a noise predictor gives one reverse step, from any time :math:`t` straight to any
earlier time :math:`s`:

.. math::

   x_s = \bar\alpha_s \hat x_0 + \sqrt{\bar\beta_s^2 - \sigma^2}\,\hat\epsilon + \sigma z,
   \qquad z \sim \mathcal N(0, I).

:math:`\sigma = 0` is deterministic DDIM; the posterior standard deviation of the jump
:math:`s \to t` is DDPM.

**Conventions.** As in :mod:`kexue_notes.diffusion.ddpm`: a
:class:`~kexue_notes.diffusion.schedule.Schedule` first, float64 torch tensors, times ``t`` and
``s`` as Python ints or 1-D integer tensors with one entry per row of the data, randomness only from
an explicit ``torch.Generator``.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any, Literal

import numpy as np
import torch

from kexue_notes._validate import (
    as_non_negative,
    as_tensor,
    check_count,
    check_positive,
    check_real,
)
from kexue_notes.diffusion.ddpm import eps_to_x0
from kexue_notes.diffusion.schedule import Schedule, check_schedule, check_t, same_shape, shape_like

__all__ = [  # noqa: RUF022 -- in the order of the derivation, as the module reads
    "jump_variance",
    "ddim_coefficients",
    "ddim_sigma",
    "ddim_mean",
    "ddim_step",
    "timestep_sequence",
    "sample",
    "gaussian_data_sampler_moments",
]

_Spacing = Literal["leading", "trailing", "linspace"]
_ROUND = 8 * float(np.finfo(np.float64).eps)   # slack for sigma = beta_bar_s computed two ways


# --- the kernel family -----------------------------------------------------------------------

def jump_variance(schedule: Schedule, t: Any, s: Any) -> torch.Tensor:
    r"""The noise variance of the forward jump from :math:`s` to :math:`t`.

    .. math::

       \beta_{t|s}^2 = 1 - \frac{\bar\alpha_t^2}{\bar\alpha_s^2}
       = \frac{\bar\beta_t^2 - \bar\beta_s^2}{\bar\alpha_s^2},

    so that :math:`q(x_t \mid x_s) = \mathcal N(\frac{\bar\alpha_t}{\bar\alpha_s} x_s,
    \beta_{t|s}^2 I)`. For :math:`s = t - 1` it is :math:`\beta_t^2`. A sub-sequence of time steps
    is a DDPM with these jumps as its steps. It is computed as
    :math:`-\operatorname{expm1}\sum_{s < u \le t}\log(1 - \beta_u^2)`, which keeps its relative
    precision for short jumps late in the chain, where both forms above cancel.

    Args:
        schedule: the :class:`~kexue_notes.diffusion.schedule.Schedule`.
        t: time in :math:`1, \dots, T`; an ``int`` or a 1-D integer tensor.
        s: earlier time, :math:`0 \le s < t`; an ``int`` or a 1-D integer tensor of the shape of
            ``t``.

    Returns:
        :math:`\beta_{t|s}^2`, float64, of the broadcast shape of ``t`` and ``s``.

    Raises:
        TypeError: if ``schedule`` is not a Schedule or a time is not an integer.
        ValueError: if a time is out of range, ``s >= t``, the shapes of ``t`` and ``s``
            differ, or :math:`\bar\alpha_s = 0`.

    Used in: :doc:`/book/diffusion/ddim-high-level-ddpm`, eq. :eq:`ddim-skip`;
    :doc:`/book/diffusion/optimal-diffusion-variance`.
    """
    check_schedule(schedule)
    t, s = _check_pair(schedule, t, s, None)
    if bool((schedule.alpha_bar[s] == 0).any()):
        raise ValueError("s must be a time with alpha_bar_s > 0; the jump divides by it")
    log_alpha2 = torch.cumsum(torch.log1p(-schedule.beta**2), dim=0)   # log alpha_bar_t^2
    return -torch.expm1(log_alpha2[t] - log_alpha2[s])


def ddim_coefficients(schedule: Schedule, t: Any, s: Any,
                      sigma: Any) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The weights :math:`(\kappa, \lambda)` of :math:`x_t` and :math:`x_0` in the kernel mean.

    .. math::

       \kappa = \frac{\sqrt{\bar\beta_s^2 - \sigma^2}}{\bar\beta_t}, \qquad
       \lambda = \bar\alpha_s - \bar\alpha_t\,\kappa ,

    the solution of the moment equations :math:`\kappa\bar\alpha_t + \lambda = \bar\alpha_s`,
    :math:`\kappa^2\bar\beta_t^2 + \sigma^2 = \bar\beta_s^2` with :math:`\kappa \ge 0`. Then
    :math:`q_\sigma(x_s \mid x_t, x_0) = \mathcal N(\kappa x_t + \lambda x_0, \sigma^2 I)` maps
    :math:`q(x_t \mid x_0)` to :math:`q(x_s \mid x_0)`.

    Args:
        schedule: the :class:`~kexue_notes.diffusion.schedule.Schedule`.
        t: time in :math:`1, \dots, T`; an ``int`` or a 1-D integer tensor.
        s: earlier time, :math:`0 \le s < t`, of the shape of ``t``.
        sigma: the standard deviation :math:`0 \le \sigma \le \bar\beta_s`; a number or a tensor of
            the shape of ``t``.

    Returns:
        ``(kappa, lam)``, float64 tensors of the broadcast shape of ``t``, ``s`` and ``sigma``.

    Raises:
        TypeError: as :func:`jump_variance`, or if ``sigma`` is not numeric.
        ValueError: as :func:`jump_variance`, or if ``sigma`` is negative, NaN or above
            :math:`\bar\beta_s` (the kernel would need a negative variance).

    Used in: :doc:`/book/diffusion/ddim-high-level-ddpm`, eq. :eq:`ddim-kernel-coefficients`;
    :doc:`/book/diffusion/optimal-diffusion-variance`.
    """
    check_schedule(schedule)
    t, s = _check_pair(schedule, t, s, None)
    c = _direction_scale(schedule, s, _check_sigma(sigma, "sigma", schedule, s))
    kappa = c / schedule.beta_bar[t]
    return kappa, schedule.alpha_bar[s] - schedule.alpha_bar[t] * kappa


def ddim_sigma(schedule: Schedule, t: Any, s: Any, eta: float) -> torch.Tensor:
    r"""The :math:`\eta` family of standard deviations of the DDIM paper.

    .. math::

       \sigma_{t \to s}(\eta) = \eta\,\frac{\bar\beta_s}{\bar\beta_t}\,\beta_{t|s}
       = \eta\,\frac{\bar\beta_s}{\bar\beta_t}\sqrt{1 - \frac{\bar\alpha_t^2}{\bar\alpha_s^2}} .

    :math:`\eta = 1` is the posterior standard deviation of :math:`q(x_s \mid x_t, x_0)` for the
    jump :math:`s \to t` (DDPM, ``fixed_small``); :math:`\eta = 0` is deterministic DDIM.
    :math:`\beta_{t|s}^2` is :func:`jump_variance`.

    Args:
        schedule: the :class:`~kexue_notes.diffusion.schedule.Schedule`.
        t: time in :math:`1, \dots, T`; an ``int`` or a 1-D integer tensor.
        s: earlier time, :math:`0 \le s < t`, of the shape of ``t``.
        eta: :math:`\eta \ge 0`. Values above 1 are allowed while :math:`\sigma \le \bar\beta_s`.

    Returns:
        :math:`\sigma_{t \to s}(\eta)`, float64, of the shape of ``t``.

    Raises:
        TypeError: as :func:`jump_variance`, or if ``eta`` is not a real number.
        ValueError: as :func:`jump_variance`, or if ``eta`` is negative or so large that
            :math:`\sigma > \bar\beta_s`.

    Used in: :doc:`/book/diffusion/ddim-high-level-ddpm`, eq. :eq:`ddim-sigma-eta`;
    :doc:`/book/diffusion/optimal-diffusion-variance`.
    """
    eta = check_positive(eta, "eta", allow_zero=True)
    check_schedule(schedule)
    t, s = _check_pair(schedule, t, s, None)
    sigma = eta * schedule.beta_bar[s] / schedule.beta_bar[t] * torch.sqrt(
        jump_variance(schedule, t, s))
    if bool((sigma > schedule.beta_bar[s] * (1 + _ROUND)).any()):
        raise ValueError(f"eta must keep sigma <= beta_bar_s; eta = {eta} is too large here")
    return sigma


# --- one reverse step ------------------------------------------------------------------------

def ddim_mean(schedule: Schedule, x_t: Any, eps: Any, t: Any, s: Any, sigma: Any) -> torch.Tensor:
    r"""The mean of one generalised reverse step from :math:`t` to :math:`s`.

    .. math::

       \mu_{t \to s} = \bar\alpha_s \hat x_0 + \sqrt{\bar\beta_s^2 - \sigma^2}\,\hat\epsilon,
       \qquad \hat x_0 = \frac{x_t - \bar\beta_t \hat\epsilon}{\bar\alpha_t},

    which is :math:`\kappa x_t + \lambda \hat x_0` with :func:`ddim_coefficients`, and Su's
    :math:`\frac{\bar\alpha_s}{\bar\alpha_t}\bigl(x_t - (\bar\beta_t - \frac{\bar\alpha_t}
    {\bar\alpha_s}\sqrt{\bar\beta_s^2 - \sigma^2})\hat\epsilon\bigr)`. :math:`\hat x_0` is
    :func:`~kexue_notes.diffusion.ddpm.eps_to_x0`.

    Args:
        schedule: the :class:`~kexue_notes.diffusion.schedule.Schedule`.
        x_t: the current sample, any shape.
        eps: the predicted noise :math:`\hat\epsilon = \epsilon_\theta(x_t, t)`, same shape.
        t: time in :math:`1, \dots, T`; an ``int`` or integer tensor of shape ``(x_t.shape[0],)``.
        s: earlier time, :math:`0 \le s < t`, of the shape of ``t``.
        sigma: the standard deviation :math:`0 \le \sigma \le \bar\beta_s` of the step; a number or
            a tensor of the shape of ``t``.

    Returns:
        :math:`\mu_{t \to s}`, float64, same shape as ``x_t``.

    Raises:
        TypeError: if ``schedule`` is not a Schedule, a time is not an integer or an input is not
            numeric.
        ValueError: if a time is out of range or mis-shaped, ``s >= t``, shapes differ, an input
            holds NaN, or ``sigma`` is outside :math:`[0, \bar\beta_s]`.

    Used in: :doc:`/book/diffusion/ddim-high-level-ddpm`, eq. :eq:`ddim-update`;
    :doc:`/book/diffusion/optimal-diffusion-variance`.
    """
    check_schedule(schedule)
    x_t, eps = same_shape(x_t, "x_t", eps, "eps")
    t, s = _check_pair(schedule, t, s, x_t)
    c = _direction_scale(schedule, s, _check_sigma(sigma, "sigma", schedule, s))
    x0_hat = eps_to_x0(schedule, x_t, eps, t)
    return shape_like(schedule.alpha_bar[s], x_t) * x0_hat + shape_like(c, x_t) * eps


def ddim_step(schedule: Schedule, x_t: Any, eps: Any, t: Any, s: Any, sigma: Any,
              generator: torch.Generator | None = None,
              noise_std: Any = None) -> torch.Tensor:
    r"""One generalised reverse step, :math:`x_s = \mu_{t \to s} + \sigma' z`.

    :math:`\mu_{t \to s}` is :func:`ddim_mean` with the kernel's :math:`\sigma`; the added noise has
    standard deviation :math:`\sigma' =` ``noise_std``, which is :math:`\sigma` unless given (a
    sampler may keep the mean of one kernel and choose its own variance, as Analytic-DPM does).
    The noise is drawn as ``torch.randn(x_t.shape, generator=generator, dtype=torch.float64)``,
    the way diffusers' ``DDIMScheduler.step`` draws it for a float64 noise prediction and a CPU
    generator, and only if some :math:`\sigma' > 0` (diffusers draws whenever ``eta > 0``; the two
    differ only on a step with :math:`s = 0`, where :math:`\sigma = 0`).

    Args:
        schedule: the :class:`~kexue_notes.diffusion.schedule.Schedule`.
        x_t: the current sample, any shape.
        eps: the predicted noise, same shape as ``x_t``.
        t: time in :math:`1, \dots, T`; an ``int`` or integer tensor of shape ``(x_t.shape[0],)``.
        s: earlier time, :math:`0 \le s < t`, of the shape of ``t``.
        sigma: the kernel's standard deviation, :math:`0 \le \sigma \le \bar\beta_s`.
        generator: the ``torch.Generator`` for :math:`z`; may be ``None`` only if no noise is
            added.
        noise_std: :math:`\sigma' \ge 0`, a number or a tensor of the shape of ``t``; defaults to
            ``sigma``.

    Returns:
        :math:`x_s`, float64, same shape as ``x_t``.

    Raises:
        TypeError: as :func:`ddim_mean`, or if ``generator`` is neither ``None`` nor a
            ``torch.Generator``.
        ValueError: as :func:`ddim_mean`, if ``noise_std`` is negative or NaN, or if noise must be
            drawn and ``generator`` is ``None``.

    Used in: :doc:`/book/diffusion/ddim-high-level-ddpm`, eq. :eq:`ddim-update`;
    :doc:`/book/diffusion/optimal-diffusion-variance`.
    """
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    mean = ddim_mean(schedule, x_t, eps, t, s, sigma)
    std = as_non_negative(sigma if noise_std is None else noise_std,
                  "sigma" if noise_std is None else "noise_std")
    if not bool((std > 0).any()):
        return mean
    if generator is None:
        raise ValueError("generator must be a torch.Generator when noise is added (sigma > 0)")
    z = torch.randn(mean.shape, generator=generator, dtype=torch.float64)
    return mean + shape_like(std, mean) * z


# --- a whole sampler on a sub-sequence of times ----------------------------------------------

def timestep_sequence(T: int, num_steps: int, spacing: _Spacing = "trailing",
                      steps_offset: int = 0) -> list[int]:
    r"""The times :math:`\tau_K > \dots > \tau_1 > \tau_0 = 0` of a :math:`K`-step sampler.

    The spacings are diffusers' ``timestep_spacing`` options of ``DDIMScheduler.set_timesteps``,
    translated to our time index (diffusers' timestep :math:`k` is our :math:`t = k + 1`), with
    the final time 0 appended (diffusers' ``set_alpha_to_one=True``). With :math:`c = \lfloor T/K
    \rfloor` and :math:`i = 0, \dots, K - 1`:

    * ``"leading"``: :math:`\tau = i c + 1 + \text{steps\_offset}` (never starts at :math:`T`);
    * ``"trailing"``: :math:`\tau = \operatorname{round}(T - i T/K)`, starting at :math:`T`
      (diffusers builds these with a float ``arange``, which for some :math:`K`, e.g. 61 of 1000,
      yields one time too many);
    * ``"linspace"``: :math:`\tau = \operatorname{round}(i (T - 1)/(K - 1)) + 1`.

    Args:
        T: number of training steps, a positive integer.
        num_steps: :math:`K`, with :math:`1 \le K \le T`.
        spacing: ``"leading"``, ``"trailing"`` or ``"linspace"``.
        steps_offset: shift of the ``"leading"`` times, :math:`\ge 0`.

    Returns:
        The :math:`K + 1` times as a list of ints, strictly decreasing, ending with 0.

    Raises:
        TypeError: if ``T``, ``num_steps`` or ``steps_offset`` is not an integer.
        ValueError: if ``num_steps`` is outside :math:`[1, T]`, ``spacing`` is unknown,
            ``steps_offset`` is negative, or the times are not distinct and within
            :math:`[1, T]`.

    Used in: :doc:`/book/diffusion/ddim-high-level-ddpm`, eq. :eq:`ddim-skip`;
    :doc:`/book/diffusion/optimal-diffusion-variance`.
    """
    T = check_count(T, "T")
    K = _check_int(num_steps, "num_steps")
    offset = _check_int(steps_offset, "steps_offset")
    if not 1 <= K <= T:
        raise ValueError(f"num_steps must lie in [1, {T}], got {K}")
    if offset < 0:
        raise ValueError(f"steps_offset must be >= 0, got {offset}")
    i = np.arange(K)
    if spacing == "leading":
        k = i * (T // K) + offset
    elif spacing == "trailing":
        k = np.round(T - i[::-1] * T / K).astype(np.int64) - 1
    elif spacing == "linspace":
        k = np.linspace(0, T - 1, K).round().astype(np.int64)
    else:
        raise ValueError(
            f"spacing must be 'leading', 'trailing' or 'linspace', got {spacing!r}"
        )
    taus = [int(v) + 1 for v in k[::-1]] + [0]
    if any(a <= b for a, b in pairwise(taus)) or taus[0] > T:
        raise ValueError(f"steps_offset = {offset} pushes the times out of [1, {T}]")
    return taus


def sample(schedule: Schedule, eps_fn: Any, x_T: Any,
           timesteps: Any, *, eta: float | None = None, sigmas: Any = None,
           noise_stds: Any = None, generator: torch.Generator | None = None,
           return_path: bool = False) -> torch.Tensor:
    r"""Run the reverse steps :math:`\tau_K \to \tau_{K-1} \to \dots \to \tau_0` with
    :func:`ddim_step`.

    .. math::

       x_{\tau_{i-1}} = \bar\alpha_{\tau_{i-1}} \hat x_0 + \sqrt{\bar\beta_{\tau_{i-1}}^2
       - \sigma_i^2}\,\epsilon_\theta(x_{\tau_i}, \tau_i) + \sigma_i' z_i .

    Give either ``eta`` (:math:`\sigma_i =` :func:`ddim_sigma` of the jump) or ``sigmas``
    explicitly. With ``timesteps = range(T, -1, -1)`` and ``eta=1`` this is DDPM's ancestral
    sampler (``fixed_small``); with ``eta=0`` and a short sub-sequence it is few-step DDIM.

    Args:
        schedule: the :class:`~kexue_notes.diffusion.schedule.Schedule`.
        eps_fn: the noise predictor, called as ``eps_fn(x, t)`` with ``x`` a float64 tensor of
            the shape of ``x_T`` and ``t`` an ``int``; returns :math:`\hat\epsilon` of that shape.
        x_T: the starting sample at time ``timesteps[0]``, any shape.
        timesteps: :math:`\tau_K, \dots, \tau_0`, at least two strictly decreasing ints in
            :math:`[0, T]` (see :func:`timestep_sequence`); the sampler returns the sample at the
            last one.
        eta: :math:`\eta \ge 0` of :func:`ddim_sigma`, for every step.
        sigmas: alternatively the :math:`K` kernel standard deviations :math:`\sigma_i`, in the
            order of the steps, shape ``(K,)``.
        noise_stds: optional :math:`K` standard deviations :math:`\sigma_i'` of the added noise,
            shape ``(K,)``; default :math:`\sigma_i`.
        generator: the ``torch.Generator`` for the noise; needed if any noise is added.
        return_path: if true, return every intermediate sample as well.

    Returns:
        :math:`x_{\tau_0}`, float64, the shape of ``x_T``; with ``return_path``, a tensor of shape
        ``(K + 1, *x_T.shape)`` holding :math:`x_{\tau_K}, \dots, x_{\tau_0}`.

    Raises:
        TypeError: if ``eps_fn`` is not callable, or as :func:`ddim_step`.
        ValueError: if not exactly one of ``eta`` and ``sigmas`` is given, ``timesteps`` is not
            strictly decreasing within :math:`[0, T]`, ``sigmas``/``noise_stds`` do not have
            :math:`K` entries, ``eps_fn`` returns the wrong shape, or as :func:`ddim_step`.

    Used in: :doc:`/book/diffusion/ddim-high-level-ddpm`, eq. :eq:`ddim-update`;
    :doc:`/book/diffusion/optimal-diffusion-variance`.
    """
    check_schedule(schedule)
    if not callable(eps_fn):
        raise TypeError(f"eps_fn must be callable as eps_fn(x, t), got {type(eps_fn).__name__}")
    taus = _check_timesteps(timesteps, schedule)
    sig = _step_sigmas(schedule, taus, eta, sigmas)
    noise = sig if noise_stds is None else _per_step(noise_stds, "noise_stds", len(taus) - 1)
    x = as_tensor(x_T, "x_T").to(torch.float64)
    path = [x]
    for i, (t, s) in enumerate(pairwise(taus)):
        eps = as_tensor(eps_fn(x, t), "eps_fn(x, t)").to(torch.float64)
        if eps.shape != x.shape:
            raise ValueError(
                f"eps_fn(x, t) must return the shape of x, {tuple(x.shape)}, "
                f"got {tuple(eps.shape)}"
            )
        x = ddim_step(schedule, x, eps, t, s, sig[i], generator, noise_std=noise[i])
        if return_path:
            path.append(x)
    return torch.stack(path) if return_path else x


# --- an exact answer for Gaussian data -------------------------------------------------------

def gaussian_data_sampler_moments(schedule: Schedule, timesteps: Any, sigmas: Any,
                                  data_mean: float, data_var: float, *,
                                  start_mean: float | None = None,
                                  start_var: float | None = None,
                                  noise_stds: Any = None) -> tuple[float, float]:
    r"""Mean and variance of the sampler's output for Gaussian data and the exact noise predictor.

    For data :math:`x_0 \sim \mathcal N(m, s^2 I)` the optimal :math:`\hat\epsilon` is linear in
    :math:`x_t`, so one step of :func:`ddim_step` is
    :math:`x_{s'} - \bar\alpha_{s'} m = g\,(x_t - \bar\alpha_t m) + \sigma' z` with the gain

    .. math::

       g = \frac{\bar\alpha_{s'}\bar\alpha_t s^2 + \sqrt{\bar\beta_{s'}^2 - \sigma^2}\,\bar\beta_t}
       {\bar\alpha_t^2 s^2 + \bar\beta_t^2},

    (:math:`s'` the earlier time). Mean and variance per coordinate then follow by a recursion
    over the steps. The marginal variance :math:`\bar\alpha_{s'}^2 s^2 + \bar\beta_{s'}^2` is kept
    only when :math:`g^2 v_t + \sigma'^2 = v_{s'}`, which a finite step generally misses.

    Args:
        schedule: the :class:`~kexue_notes.diffusion.schedule.Schedule`.
        timesteps: :math:`\tau_K, \dots, \tau_0`, strictly decreasing ints in :math:`[0, T]`.
        sigmas: the :math:`K` kernel standard deviations, shape ``(K,)``.
        data_mean: :math:`m`, a real number.
        data_var: :math:`s^2 \ge 0`.
        start_mean: mean of :math:`x_{\tau_K}`; default the true :math:`\bar\alpha_{\tau_K} m`.
        start_var: variance of :math:`x_{\tau_K}`; default the true
            :math:`\bar\alpha_{\tau_K}^2 s^2 + \bar\beta_{\tau_K}^2`.
        noise_stds: the :math:`K` standard deviations of the added noise; default ``sigmas``.

    Returns:
        ``(mean, var)`` of :math:`x_{\tau_0}` per coordinate, as floats.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if ``timesteps`` or ``sigmas`` are invalid (as :func:`sample`), ``data_var``
            or ``start_var`` is negative, or a mean is not finite.

    Used in: :doc:`/book/diffusion/ddim-high-level-ddpm`, eq. :eq:`ddim-gaussian-gain`;
    :doc:`/book/diffusion/optimal-diffusion-variance`.
    """
    check_schedule(schedule)
    taus = _check_timesteps(timesteps, schedule)
    sig = _step_sigmas(schedule, taus, None, sigmas)
    noise = sig if noise_stds is None else _per_step(noise_stds, "noise_stds", len(taus) - 1)
    m = check_real(data_mean, "data_mean")
    s2 = check_positive(data_var, "data_var", allow_zero=True)
    ab, bb = schedule.alpha_bar, schedule.beta_bar
    mean = float(ab[taus[0]]) * m if start_mean is None else check_real(start_mean, "start_mean")
    var = (float(ab[taus[0]] ** 2) * s2 + float(bb[taus[0]] ** 2) if start_var is None
           else check_positive(start_var, "start_var", allow_zero=True))
    for i, (t, s) in enumerate(pairwise(taus)):
        c = float(_direction_scale(schedule, s, sig[i]))
        v_t = float(ab[t] ** 2) * s2 + float(bb[t] ** 2)
        g = (float(ab[s] * ab[t]) * s2 + c * float(bb[t])) / v_t
        mean = float(ab[s]) * m + g * (mean - float(ab[t]) * m)
        var = g**2 * var + float(noise[i]) ** 2
    return mean, var


# --- private helpers -------------------------------------------------------------------------

def _check_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    return int(value)


def _check_pair(schedule: Schedule, t: Any, s: Any, x: torch.Tensor | None) -> tuple[Any, Any]:
    """Validate a pair of times ``0 <= s < t <= T`` (ints or 1-D tensors of one shape)."""
    t = check_t(t, schedule, x, low=1)
    s = check_t(s, schedule, x, low=0)
    if isinstance(t, torch.Tensor) and isinstance(s, torch.Tensor) and t.shape != s.shape:
        raise ValueError(f"s must have the shape of t, {tuple(t.shape)}, got {tuple(s.shape)}")
    if bool((torch.as_tensor(s) >= torch.as_tensor(t)).any()):
        raise ValueError("s must be an earlier time than t (0 <= s < t)")
    return t, s



def _check_sigma(sigma: Any, name: str, schedule: Schedule, s: Any) -> torch.Tensor:
    sig = as_non_negative(sigma, name)
    if bool((sig > schedule.beta_bar[s] * (1 + _ROUND)).any()):
        raise ValueError(
            f"{name} must be <= beta_bar_s (the kernel variance beta_bar_s^2 - sigma^2 must be "
            f">= 0), got {name} up to {float(sig.max()):.6g} at s with beta_bar_s = "
            f"{float(schedule.beta_bar[s].min()):.6g}"
        )
    return sig


def _direction_scale(schedule: Schedule, s: Any, sigma: torch.Tensor) -> torch.Tensor:
    r""":math:`\sqrt{\bar\beta_s^2 - \sigma^2}`, clamped at 0 against round-off."""
    return torch.sqrt(torch.clamp(schedule.beta_bar[s] ** 2 - sigma**2, min=0.0))


def _check_timesteps(timesteps: Any, schedule: Schedule) -> list[int]:
    if isinstance(timesteps, torch.Tensor | np.ndarray):
        timesteps = timesteps.tolist()
    if not isinstance(timesteps, Sequence) or isinstance(timesteps, str | bytes):
        raise TypeError(f"timesteps must be a sequence of ints, got {type(timesteps).__name__}")
    taus = [_check_int(v, "timesteps") for v in timesteps]
    T = schedule.num_steps
    if len(taus) < 2:
        raise ValueError(f"timesteps must hold at least two times, got {len(taus)}")
    if any(a <= b for a, b in pairwise(taus)):
        raise ValueError("timesteps must be strictly decreasing")
    if taus[0] > T or taus[-1] < 0:
        raise ValueError(f"timesteps must lie in [0, {T}], got [{taus[-1]}, {taus[0]}]")
    return taus


def _per_step(values: Any, name: str, K: int) -> torch.Tensor:
    v = as_non_negative(values, name)
    if v.shape != (K,):
        raise ValueError(f"{name} must have one entry per step, shape ({K},), got "
                         f"{tuple(v.shape)}")
    return v


def _step_sigmas(schedule: Schedule, taus: list[int], eta: float | None,
                 sigmas: Any) -> torch.Tensor:
    if (eta is None) == (sigmas is None):
        raise ValueError("give exactly one of eta and sigmas")
    t = torch.tensor(taus[:-1])
    s = torch.tensor(taus[1:])
    if eta is not None:
        return ddim_sigma(schedule, t, s, eta)
    sig = _per_step(sigmas, "sigmas", len(taus) - 1)
    return _check_sigma(sig, "sigmas", schedule, s)
