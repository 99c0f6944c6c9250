r"""DDPM in Su Jianlin's notation: the forward process, its Bayes posterior and the reverse step.

**Notation.** The forward chain adds noise in :math:`T` steps,

.. math::

   x_t = \alpha_t x_{t-1} + \beta_t \varepsilon_t, \qquad \alpha_t^2 + \beta_t^2 = 1,
   \qquad \varepsilon_t \sim \mathcal N(0, I), \qquad t = 1, \dots, T,

with :math:`\bar\alpha_t = \alpha_1 \cdots \alpha_t` and
:math:`\bar\beta_t = \sqrt{1 - \bar\alpha_t^2}`. A
:class:`~kexue_notes.diffusion.schedule.Schedule` (module :mod:`kexue_notes.diffusion.schedule`)
holds the four sequences as float64 tensors of length :math:`T + 1`, indexed by
:math:`t = 0, \dots, T`; entry :math:`t = 0` is
:math:`(\alpha_0, \beta_0, \bar\alpha_0, \bar\beta_0) = (1, 0, 1, 0)`, so that
:math:`\bar\alpha_{t-1}` is simply ``alpha_bar[t - 1]``.

**Mapping to the DDPM paper and to diffusers.** Those index time from 0 and write squares:
``betas[k]`` :math:`= \beta_{k+1}^2`, ``alphas[k]`` :math:`= \alpha_{k+1}^2`,
``alphas_cumprod[k]`` :math:`= \bar\alpha_{k+1}^2`; diffusers' timestep ``k`` is our
:math:`t = k + 1`.

**Conventions.** Every function takes the schedule first. Data tensors are converted to float64.
A time ``t`` is a Python ``int`` or a 1-D integer tensor with one entry per row of the data (its
first axis). Randomness comes only from an explicit ``torch.Generator``.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from kexue_notes._validate import check_positive, check_real
from kexue_notes.diffusion.schedule import (
    Schedule,
    as_data,
    at,
    check_schedule,
    check_t,
    same_shape,
    shape_like,
)

__all__ = [  # noqa: RUF022 -- in the order of the derivation, as the module reads
    "q_step",
    "q_sample",
    "posterior_coefficients",
    "posterior_variance",
    "posterior_mean",
    "eps_to_x0",
    "x0_to_eps",
    "ddpm_mean",
    "ddpm_variance",
    "ddpm_step",
    "gaussian_data_denoiser",
    "gaussian_data_reverse",
]


_VarianceType = Literal["fixed_small", "fixed_large"]


# --- the forward process ---------------------------------------------------------------------

def q_step(schedule: Schedule, x_prev: Any, eps: Any, t: Any) -> torch.Tensor:
    r"""One forward step, :math:`x_t = \alpha_t x_{t-1} + \beta_t \varepsilon_t`.

    Args:
        schedule: the :class:`.Schedule`.
        x_prev: :math:`x_{t-1}`, any shape.
        eps: the noise :math:`\varepsilon_t`, same shape as ``x_prev``.
        t: step in :math:`1, \dots, T`; an ``int`` or integer tensor of shape
            ``(x_prev.shape[0],)``.

    Returns:
        :math:`x_t`, float64, same shape as ``x_prev``.

    Raises:
        TypeError: if ``schedule`` is not a :class:`.Schedule` or ``t`` is not an integer.
        ValueError: if ``t`` is out of range or mis-shaped, shapes differ, or an input holds NaN.

    Used in: :doc:`/book/diffusion/ddpm-bayes-denoise`;
    :doc:`/book/diffusion/ddpm-autoregressive-vae`.
    """
    check_schedule(schedule)
    x_prev, eps = same_shape(x_prev, "x_prev", eps, "eps")
    t = check_t(t, schedule, x_prev, low=1)
    return at(schedule.alpha, t, x_prev) * x_prev + at(schedule.beta, t, x_prev) * eps


def q_sample(schedule: Schedule, x0: Any, eps: Any, t: Any) -> torch.Tensor:
    r"""Sample the forward marginal, :math:`x_t = \bar\alpha_t x_0 + \bar\beta_t \varepsilon`.

    This is a draw from :math:`q(x_t \mid x_0) = \mathcal N(\bar\alpha_t x_0, \bar\beta_t^2 I)`
    given the standard normal ``eps``; it matches diffusers' ``add_noise(x0, eps, t - 1)``, which
    takes its arguments in the same order.

    Args:
        schedule: the :class:`.Schedule`.
        x0: clean data :math:`x_0`, any shape.
        eps: standard normal noise, same shape as ``x0``.
        t: time in :math:`0, \dots, T`; an ``int`` or integer tensor of shape ``(x0.shape[0],)``.

    Returns:
        :math:`x_t`, float64, same shape as ``x0``.

    Raises:
        TypeError: if ``schedule`` is not a :class:`.Schedule` or ``t`` is not an integer.
        ValueError: if ``t`` is out of range or mis-shaped, shapes differ, or an input holds NaN.

    Used in: :doc:`/book/diffusion/ddpm-bayes-denoise`, eq. :eq:`ddpm-forward-marginal`;
    :doc:`/book/diffusion/ddpm-autoregressive-vae`.
    """
    check_schedule(schedule)
    x0, eps = same_shape(x0, "x0", eps, "eps")
    t = check_t(t, schedule, x0, low=0)
    return at(schedule.alpha_bar, t, x0) * x0 + at(schedule.beta_bar, t, x0) * eps


# --- the posterior q(x_{t-1} | x_t, x_0) -----------------------------------------------------

def posterior_coefficients(schedule: Schedule, t: Any) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The two weights of the posterior mean, :math:`(a_t, b_t)`.

    .. math::

       a_t = \frac{\alpha_t \bar\beta_{t-1}^2}{\bar\beta_t^2}, \qquad
       b_t = \frac{\bar\alpha_{t-1} \beta_t^2}{\bar\beta_t^2},

    so that :math:`\mathbb E[x_{t-1} \mid x_t, x_0] = a_t x_t + b_t x_0`. In diffusers' ``step``
    they are ``current_sample_coeff`` and ``pred_original_sample_coeff``.

    Args:
        schedule: the :class:`.Schedule`.
        t: step in :math:`1, \dots, T`; an ``int`` or a 1-D integer tensor.

    Returns:
        ``(a_t, b_t)``, float64 tensors of the shape of ``t`` (0-d for an ``int``).

    Raises:
        TypeError: if ``schedule`` is not a :class:`.Schedule` or ``t`` is not an integer.
        ValueError: if ``t`` is out of range.

    Used in: :doc:`/book/diffusion/ddpm-bayes-denoise`, eq. :eq:`ddpm-posterior-mean`;
    :doc:`/book/diffusion/ddim-high-level-ddpm`.
    """
    check_schedule(schedule)
    t = check_t(t, schedule, None, low=1)
    s = schedule
    bb2 = s.beta_bar[t] ** 2
    return s.alpha[t] * s.beta_bar[t - 1] ** 2 / bb2, s.alpha_bar[t - 1] * s.beta[t] ** 2 / bb2


def posterior_variance(schedule: Schedule, t: Any) -> torch.Tensor:
    r"""The posterior variance of one reverse step given the data point.

    .. math::

       \tilde\sigma_t^2 = \frac{\bar\beta_{t-1}^2 \beta_t^2}{\bar\beta_t^2}.

    It is the variance of :math:`q(x_{t-1} \mid x_t, x_0)` per coordinate, and diffusers'
    ``variance_type="fixed_small"``. It is 0 at :math:`t = 1`.

    Args:
        schedule: the :class:`.Schedule`.
        t: step in :math:`1, \dots, T`; an ``int`` or a 1-D integer tensor.

    Returns:
        :math:`\tilde\sigma_t^2`, float64, of the shape of ``t``.

    Raises:
        TypeError: if ``schedule`` is not a :class:`.Schedule` or ``t`` is not an integer.
        ValueError: if ``t`` is out of range.

    Used in: :doc:`/book/diffusion/ddpm-bayes-denoise`, eq. :eq:`ddpm-posterior-variance`;
    :doc:`/book/diffusion/ddpm-autoregressive-vae`;
    :doc:`/book/diffusion/ddim-high-level-ddpm`.
    """
    check_schedule(schedule)
    t = check_t(t, schedule, None, low=1)
    s = schedule
    return s.beta_bar[t - 1] ** 2 * s.beta[t] ** 2 / s.beta_bar[t] ** 2


def posterior_mean(schedule: Schedule, x_t: Any, x0: Any, t: Any) -> torch.Tensor:
    r"""The posterior mean :math:`\tilde\mu_t(x_t, x_0) = a_t x_t + b_t x_0`.

    With :math:`a_t, b_t` from :func:`posterior_coefficients`.

    Args:
        schedule: the :class:`.Schedule`.
        x_t: the noisy sample :math:`x_t`, any shape.
        x0: the clean sample :math:`x_0`, same shape as ``x_t``.
        t: step in :math:`1, \dots, T`; an ``int`` or integer tensor of shape ``(x_t.shape[0],)``.

    Returns:
        :math:`\tilde\mu_t`, float64, same shape as ``x_t``.

    Raises:
        TypeError: if ``schedule`` is not a :class:`.Schedule` or ``t`` is not an integer.
        ValueError: if ``t`` is out of range or mis-shaped, shapes differ, or an input holds NaN.

    Used in: :doc:`/book/diffusion/ddpm-bayes-denoise`, eq. :eq:`ddpm-posterior-mean`;
    :doc:`/book/diffusion/ddpm-autoregressive-vae`.
    """
    check_schedule(schedule)
    x_t, x0 = same_shape(x_t, "x_t", x0, "x0")
    t_checked = check_t(t, schedule, x_t, low=1)
    a, b = posterior_coefficients(schedule, t_checked)
    return shape_like(a, x_t) * x_t + shape_like(b, x_t) * x0


# --- from noise prediction to the reverse step -----------------------------------------------

def eps_to_x0(schedule: Schedule, x_t: Any, eps: Any, t: Any) -> torch.Tensor:
    r"""Predict :math:`x_0` from a noise prediction.

    .. math::

       \bar\mu(x_t) = \frac{x_t - \bar\beta_t \epsilon}{\bar\alpha_t}.

    This inverts :func:`q_sample` for the given noise; diffusers calls the result
    ``pred_original_sample``.

    Args:
        schedule: the :class:`.Schedule`.
        x_t: the noisy sample, any shape.
        eps: the (predicted) noise :math:`\epsilon_\theta(x_t, t)`, same shape as ``x_t``.
        t: time in :math:`1, \dots, T`; an ``int`` or integer tensor of shape ``(x_t.shape[0],)``.

    Returns:
        :math:`\bar\mu(x_t)`, float64, same shape as ``x_t``.

    Raises:
        TypeError: if ``schedule`` is not a :class:`.Schedule` or ``t`` is not an integer.
        ValueError: if ``t`` is out of range or mis-shaped, shapes differ, an input holds NaN, or
            :math:`\bar\alpha_t = 0` (no signal is left to recover).

    Used in: :doc:`/book/diffusion/ddpm-bayes-denoise`, eq. :eq:`ddpm-eps-to-x0`.
    """
    check_schedule(schedule)
    x_t, eps = same_shape(x_t, "x_t", eps, "eps")
    t = check_t(t, schedule, x_t, low=1)
    alpha_bar = at(schedule.alpha_bar, t, x_t)
    if bool((alpha_bar == 0).any()):
        raise ValueError("t must be a time with alpha_bar_t > 0; x0 cannot be recovered at 0")
    return (x_t - at(schedule.beta_bar, t, x_t) * eps) / alpha_bar


def x0_to_eps(schedule: Schedule, x_t: Any, x0: Any, t: Any) -> torch.Tensor:
    r"""The noise that maps :math:`x_0` to :math:`x_t` (the inverse of :func:`eps_to_x0`).

    .. math::

       \varepsilon = \frac{x_t - \bar\alpha_t x_0}{\bar\beta_t}.

    Applied to :math:`\mathbb E[x_0 \mid x_t]` it gives the
    optimal noise predictor :math:`\mathbb E[\varepsilon \mid x_t]`.

    Args:
        schedule: the :class:`.Schedule`.
        x_t: the noisy sample, any shape.
        x0: a clean sample or a prediction of it, same shape as ``x_t``.
        t: time in :math:`1, \dots, T`; an ``int`` or integer tensor of shape ``(x_t.shape[0],)``.

    Returns:
        :math:`\varepsilon`, float64, same shape as ``x_t``.

    Raises:
        TypeError: if ``schedule`` is not a :class:`.Schedule` or ``t`` is not an integer.
        ValueError: if ``t`` is out of range or mis-shaped, shapes differ, or an input holds NaN.

    Used in: :doc:`/book/diffusion/ddpm-bayes-denoise`, eq. :eq:`ddpm-eps-to-x0`;
    :doc:`/book/diffusion/ddim-high-level-ddpm`.
    """
    check_schedule(schedule)
    x_t, x0 = same_shape(x_t, "x_t", x0, "x0")
    t = check_t(t, schedule, x_t, low=1)
    return (x_t - at(schedule.alpha_bar, t, x_t) * x0) / at(schedule.beta_bar, t, x_t)


def ddpm_mean(schedule: Schedule, x_t: Any, eps: Any, t: Any) -> torch.Tensor:
    r"""The DDPM reverse mean from a noise prediction.

    .. math::

       \mu_t(x_t) = \frac{1}{\alpha_t}\Bigl(x_t - \frac{\beta_t^2}{\bar\beta_t}\epsilon\Bigr).

    It equals :func:`posterior_mean` with :math:`x_0` replaced by the prediction of
    :func:`eps_to_x0`.

    Args:
        schedule: the :class:`.Schedule`.
        x_t: the noisy sample, any shape.
        eps: the predicted noise :math:`\epsilon_\theta(x_t, t)`, same shape as ``x_t``.
        t: step in :math:`1, \dots, T`; an ``int`` or integer tensor of shape ``(x_t.shape[0],)``.

    Returns:
        :math:`\mu_t`, float64, same shape as ``x_t``.

    Raises:
        TypeError: if ``schedule`` is not a :class:`.Schedule` or ``t`` is not an integer.
        ValueError: if ``t`` is out of range or mis-shaped, shapes differ, an input holds NaN, or
            :math:`\alpha_t = 0`.

    Used in: :doc:`/book/diffusion/ddpm-bayes-denoise`, eq. :eq:`ddpm-reverse-mean`;
    :doc:`/book/diffusion/ddim-high-level-ddpm`.
    """
    check_schedule(schedule)
    x_t, eps = same_shape(x_t, "x_t", eps, "eps")
    t = check_t(t, schedule, x_t, low=1)
    alpha = at(schedule.alpha, t, x_t)
    if bool((alpha == 0).any()):
        raise ValueError("t must be a step with alpha_t > 0; the reverse mean divides by alpha_t")
    return (x_t - at(schedule.beta, t, x_t) ** 2 / at(schedule.beta_bar, t, x_t) * eps) / alpha


def ddpm_variance(schedule: Schedule, t: Any,
                  variance_type: _VarianceType = "fixed_small") -> torch.Tensor:
    r"""The variance of the DDPM reverse step, one of the two exact special cases.

    .. math::

       \sigma_t^2 = \begin{cases}
          \bar\beta_{t-1}^2 \beta_t^2 / \bar\beta_t^2 & \mathtt{fixed\_small}
              \text{ (data a point mass)},\\
          \beta_t^2 & \mathtt{fixed\_large} \text{ (data standard normal)}.
       \end{cases}

    The names are diffusers' ``variance_type`` values.

    Args:
        schedule: the :class:`.Schedule`.
        t: step in :math:`1, \dots, T`; an ``int`` or a 1-D integer tensor.
        variance_type: ``"fixed_small"`` or ``"fixed_large"``.

    Returns:
        :math:`\sigma_t^2`, float64, of the shape of ``t``.

    Raises:
        TypeError: if ``schedule`` is not a :class:`.Schedule` or ``t`` is not an integer.
        ValueError: if ``t`` is out of range or ``variance_type`` is not one of the two names.

    Used in: :doc:`/book/diffusion/ddpm-bayes-denoise`, eq. :eq:`ddpm-reverse-variances`.
    """
    check_schedule(schedule)
    if variance_type == "fixed_small":
        return posterior_variance(schedule, t)
    if variance_type == "fixed_large":
        return schedule.beta[check_t(t, schedule, None, low=1)] ** 2
    raise ValueError(
        f"variance_type must be 'fixed_small' or 'fixed_large', got {variance_type!r}"
    )


def ddpm_step(schedule: Schedule, x_t: Any, eps: Any, t: Any, generator: torch.Generator,
              variance_type: _VarianceType = "fixed_small") -> torch.Tensor:
    r"""One ancestral sampling step, :math:`x_{t-1} = \mu_t + \sigma_t z` with standard normal z.

    :math:`\mu_t` is :func:`ddpm_mean` and :math:`\sigma_t^2` is :func:`ddpm_variance`. As in the
    DDPM paper (and diffusers), no noise is added at :math:`t = 1`. The noise is drawn as
    ``torch.randn(x_t.shape, generator=generator, dtype=torch.float64)``, exactly as diffusers'
    ``DDPMScheduler.step`` draws it for a float64 noise prediction and a CPU generator, and only
    if some :math:`t > 1`.

    Args:
        schedule: the :class:`.Schedule`.
        x_t: the current sample, any shape.
        eps: the predicted noise, same shape as ``x_t``.
        t: step in :math:`1, \dots, T`; an ``int`` or integer tensor of shape ``(x_t.shape[0],)``.
        generator: the ``torch.Generator`` that draws :math:`z`.
        variance_type: ``"fixed_small"`` or ``"fixed_large"``.

    Returns:
        :math:`x_{t-1}`, float64, same shape as ``x_t``.

    Raises:
        TypeError: if ``generator`` is not a ``torch.Generator``, ``schedule`` is not a
            :class:`.Schedule` or ``t`` is not an integer.
        ValueError: if ``t`` is out of range or mis-shaped, shapes differ, an input holds NaN, or
            ``variance_type`` is unknown.

    Used in: :doc:`/book/diffusion/ddpm-bayes-denoise`, eq. :eq:`ddpm-reverse-mean`;
    :doc:`/book/diffusion/ddim-high-level-ddpm`.
    """
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    mean = ddpm_mean(schedule, x_t, eps, t)
    t = check_t(t, schedule, mean, low=1)
    sigma2 = ddpm_variance(schedule, t, variance_type)
    noise_on = torch.as_tensor(t) > 1
    if not bool(noise_on.any()):
        return mean
    z = torch.randn(mean.shape, generator=generator, dtype=torch.float64)
    return mean + shape_like(noise_on.to(torch.float64) * torch.sqrt(sigma2), mean) * z


# --- exact reverse kernels for Gaussian data -------------------------------------------------

def gaussian_data_denoiser(schedule: Schedule, x_t: Any, t: Any, data_mean: float,
                           data_var: float) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The exact denoiser for Gaussian data: mean and variance of :math:`x_0 \mid x_t`.

    For data :math:`x_0 \sim \mathcal N(m, s^2 I)`,

    .. math::

       \mathbb E[x_0 \mid x_t] = m + \frac{\bar\alpha_t s^2}
           {\bar\alpha_t^2 s^2 + \bar\beta_t^2} (x_t - \bar\alpha_t m), \qquad
       \operatorname{Var}[x_0 \mid x_t] = \frac{s^2 \bar\beta_t^2}
           {\bar\alpha_t^2 s^2 + \bar\beta_t^2}.

    Args:
        schedule: the :class:`.Schedule`.
        x_t: the noisy sample, any shape.
        t: time in :math:`1, \dots, T`; an ``int`` or integer tensor of shape ``(x_t.shape[0],)``.
        data_mean: :math:`m`, a real number.
        data_var: :math:`s^2 \ge 0` (0 is a point mass at :math:`m`).

    Returns:
        ``(mean, var)``: float64, ``mean`` of the shape of ``x_t``, ``var`` of the shape of ``t``.

    Raises:
        TypeError: if ``schedule`` is not a :class:`.Schedule`, ``t`` is not an integer or
            ``data_mean``/``data_var`` is not a real number.
        ValueError: if ``t`` is out of range or mis-shaped, ``x_t`` holds NaN, ``data_mean`` is not
            finite or ``data_var`` is negative.

    Used in: :doc:`/book/diffusion/ddpm-bayes-denoise`, eq. :eq:`ddpm-gaussian-data-reverse`;
    :doc:`/book/diffusion/ddim-high-level-ddpm`;
    :doc:`/book/diffusion/optimal-diffusion-variance`.
    """
    check_schedule(schedule)
    x_t = as_data(x_t, "x_t")
    t = check_t(t, schedule, x_t, low=1)
    m = check_real(data_mean, "data_mean")
    s2 = check_positive(data_var, "data_var", allow_zero=True)
    ab, bb2 = schedule.alpha_bar[t], schedule.beta_bar[t] ** 2
    var_xt = ab**2 * s2 + bb2
    mean = m + shape_like(ab * s2 / var_xt, x_t) * (x_t - shape_like(ab, x_t) * m)
    return mean, s2 * bb2 / var_xt


def gaussian_data_reverse(schedule: Schedule, x_t: Any, t: Any, data_mean: float,
                          data_var: float) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The exact reverse kernel :math:`p(x_{t-1} \mid x_t)` for Gaussian data.

    For data :math:`x_0 \sim \mathcal N(m, s^2 I)`, by the tower rule and the law of total
    variance,

    .. math::

       \mathbb E[x_{t-1} \mid x_t] = a_t x_t + b_t \mathbb E[x_0 \mid x_t], \qquad
       \operatorname{Var}[x_{t-1} \mid x_t] = \tilde\sigma_t^2
           + b_t^2 \operatorname{Var}[x_0 \mid x_t],

    with :math:`a_t, b_t` from :func:`posterior_coefficients` and :math:`\tilde\sigma_t^2` from
    :func:`posterior_variance`.

    For :math:`s^2 = 0` this is the posterior at :math:`x_0 = m`; for :math:`m = 0, s^2 = 1` it is
    :math:`\mathcal N(\alpha_t x_t, \beta_t^2 I)`.

    Args:
        schedule: the :class:`.Schedule`.
        x_t: the noisy sample, any shape.
        t: step in :math:`1, \dots, T`; an ``int`` or integer tensor of shape ``(x_t.shape[0],)``.
        data_mean: :math:`m`, a real number.
        data_var: :math:`s^2 \ge 0`.

    Returns:
        ``(mean, var)``: float64, ``mean`` of the shape of ``x_t``, ``var`` of the shape of ``t``.

    Raises:
        TypeError: as :func:`gaussian_data_denoiser`.
        ValueError: as :func:`gaussian_data_denoiser`.

    Used in: :doc:`/book/diffusion/ddpm-bayes-denoise`, eq. :eq:`ddpm-gaussian-data-reverse`;
    :doc:`/book/diffusion/optimal-diffusion-variance`.
    """
    x0_mean, x0_var = gaussian_data_denoiser(schedule, x_t, t, data_mean, data_var)
    t = check_t(t, schedule, x0_mean, low=1)
    a, b = posterior_coefficients(schedule, t)
    mean = shape_like(a, x0_mean) * as_data(x_t, "x_t") + shape_like(b, x0_mean) * x0_mean
    return mean, posterior_variance(schedule, t) + b**2 * x0_var
