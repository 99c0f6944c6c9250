r"""The optimal variance of a reverse diffusion step (Analytic-DPM), in Su Jianlin's notation.

**Setting.** Data :math:`x_0 \in \mathbb R^d` is noised as :math:`x_t = \bar\alpha_t x_0 +
\bar\beta_t \varepsilon` (:mod:`kexue_notes.diffusion.ddpm`). A reverse step from time :math:`t` to
an earlier time :math:`s` uses a kernel of the DDIM family (:mod:`kexue_notes.diffusion.ddim`),

.. math::

   q_\sigma(x_s \mid x_t, x_0) = \mathcal N\bigl(\kappa x_t + \gamma x_0,\ \sigma^2 I\bigr),
   \qquad \kappa = \frac{\sqrt{\bar\beta_s^2 - \sigma^2}}{\bar\beta_t}, \qquad
   \gamma = \bar\alpha_s - \bar\alpha_t \kappa ,

with :math:`(\kappa, \gamma)` from :func:`kexue_notes.diffusion.ddim.ddim_coefficients` (which calls
:math:`\gamma` ``lam``). A sampler does not know :math:`x_0`.

**Result.** Replace :math:`x_0` by its posterior mean :math:`\bar\mu(x_t) = \mathbb E[x_0 \mid
x_t]` in the mean, and ask which variance :math:`\sigma_*^2`, the same for every :math:`x_t` and
every coordinate, makes the Gaussian :math:`\mathcal N(\kappa x_t + \gamma \bar\mu(x_t),
\sigma_*^2 I)` closest to the true reverse step. The answer is

.. math::

   \sigma_*^2 = \sigma^2 + \gamma^2 \bar\sigma_t^2, \qquad
   \bar\sigma_t^2 = \frac1d\,\mathbb E_{x_t}\operatorname{tr}\operatorname{Cov}[x_0 \mid x_t],

the kernel's own variance plus the uncertainty of :math:`x_0` carried through the weight
:math:`\gamma`. The averaged posterior variance :math:`\bar\sigma_t^2` has two moment forms, one
from the denoiser (Su's) and one from the noise predictor (Analytic-DPM's), and both only need
samples and a trained model. The module computes the variance, the two estimators, their bounds
and the direct Monte Carlo estimate of the reverse-step error that they must all agree with.

**Conventions.** As in :mod:`kexue_notes.diffusion.ddpm`: the schedule first, float64 torch tensors,
times as Python ints (or 1-D integer tensors where several steps are handled at once).
"""

from __future__ import annotations

from typing import Any

import torch

from kexue_notes._validate import as_non_negative, as_tensor, check_positive
from kexue_notes.diffusion.ddim import ddim_coefficients
from kexue_notes.diffusion.schedule import Schedule, check_schedule, check_t

__all__ = [  # noqa: RUF022 -- in the order of the derivation, as the module reads
    "optimal_reverse_variance",
    "x0_variance_from_mean",
    "x0_variance_from_eps",
    "x0_variance_bound",
    "analytic_dpm_variance",
    "reverse_step_mse",
]


# --- the variance of one reverse step --------------------------------------------------------

def optimal_reverse_variance(schedule: Schedule, t: Any, s: Any, sigma: Any,
                             x0_var: Any) -> torch.Tensor:
    r"""The optimal variance of the reverse step :math:`t \to s`, kernel plus uncertainty.

    .. math::

       \sigma_*^2 = \sigma^2 + \gamma^2 \bar\sigma_t^2, \qquad
       \gamma = \bar\alpha_s - \frac{\bar\alpha_t}{\bar\beta_t}\sqrt{\bar\beta_s^2 - \sigma^2},

    where :math:`\bar\sigma_t^2` is the averaged posterior variance of :math:`x_0` per coordinate
    (``x0_var``). With :math:`\bar\sigma_t^2 = 0` (the data a single point) it is the kernel's
    :math:`\sigma^2`; with :math:`\sigma = 0` (deterministic DDIM) it is still
    :math:`\gamma^2\bar\sigma_t^2 > 0`.

    Args:
        schedule: the :class:`~kexue_notes.diffusion.schedule.Schedule`.
        t: time in :math:`1, \dots, T`; an ``int`` or a 1-D integer tensor.
        s: earlier time, :math:`0 \le s < t`, of the shape of ``t``.
        sigma: the kernel's standard deviation, :math:`0 \le \sigma \le \bar\beta_s`; a number or
            a tensor of the shape of ``t``.
        x0_var: :math:`\bar\sigma_t^2 \ge 0`; a number or a tensor of the shape of ``t``.

    Returns:
        :math:`\sigma_*^2`, float64, of the broadcast shape of the arguments.

    Raises:
        TypeError: if ``schedule`` is not a Schedule, a time is not an integer or a value is not
            numeric.
        ValueError: if a time is out of range, ``s >= t``, ``sigma`` is outside
            :math:`[0, \bar\beta_s]`, or ``x0_var`` is negative or NaN.

    Used in: :doc:`/book/diffusion/optimal-diffusion-variance`, eq. :eq:`optimal-reverse-variance`.
    """
    _, gamma = ddim_coefficients(schedule, t, s, sigma)
    v = as_non_negative(x0_var, "x0_var")
    return as_tensor(sigma, "sigma").to(torch.float64) ** 2 + gamma**2 * v


# --- two moment estimators of the averaged posterior variance --------------------------------

def x0_variance_from_mean(x0: Any, x0_hat: Any, mu0: Any = None, *,
                          per_sample: bool = False) -> torch.Tensor:
    r"""Su's estimator of :math:`\bar\sigma_t^2` from data and denoised samples.

    .. math::

       \bar\sigma_t^2 = \frac1d\,\mathbb E_{x_0}\lVert x_0 - \mu_0\rVert^2
       - \frac1d\,\mathbb E_{x_t}\lVert \bar\mu(x_t) - \mu_0\rVert^2 ,

    for any constant vector :math:`\mu_0` (by default the sample mean of ``x0``), with
    :math:`\bar\mu(x_t) = \mathbb E[x_0 \mid x_t]` evaluated at noisy samples ``x_t`` (rows of
    ``x0_hat``). It is the law of total variance: the data's variance minus the variance the
    denoiser explains.

    Args:
        x0: ``(n, d)`` data samples.
        x0_hat: ``(m, d)`` denoised samples :math:`\bar\mu(x_t)`, :math:`x_t \sim q(x_t)`; with
            ``per_sample`` they must be paired with ``x0`` (:math:`x_t` made from that row), so
            :math:`m = n`.
        mu0: the centre :math:`\mu_0`, shape ``(d,)``; default ``x0.mean(0)``.
        per_sample: if true, return the ``n`` per-row terms
            :math:`(\lVert x_0 - \mu_0\rVert^2 - \lVert\bar\mu - \mu_0\rVert^2)/d`, whose mean is
            the estimate (for a standard error).

    Returns:
        The estimate as a 0-d float64 tensor, or ``(n,)`` terms with ``per_sample``.

    Raises:
        ValueError: if the inputs are not 2-D with ``d`` columns, hold NaN, ``mu0`` is not
            ``(d,)``, or ``per_sample`` is set and the row counts differ.

    Used in: :doc:`/book/diffusion/optimal-diffusion-variance`, eq. :eq:`x0-variance-su`.
    """
    x0 = as_tensor(x0, "x0", ndim=2).to(torch.float64)
    d = x0.shape[1]
    x0_hat = as_tensor(x0_hat, "x0_hat", ndim=2, shape=(None, d)).to(torch.float64)
    mu0 = x0.mean(0) if mu0 is None else as_tensor(mu0, "mu0", shape=(d,)).to(torch.float64)
    data_term = (x0 - mu0).pow(2).sum(-1) / d
    mean_term = (x0_hat - mu0).pow(2).sum(-1) / d
    if per_sample:
        if x0_hat.shape[0] != x0.shape[0]:
            raise ValueError(
                f"x0_hat must have one row per row of x0 with per_sample=True, {x0.shape[0]}, "
                f"got {x0_hat.shape[0]}"
            )
        return data_term - mean_term
    return data_term.mean() - mean_term.mean()


def x0_variance_from_eps(schedule: Schedule, eps: Any, t: int, *,
                         per_sample: bool = False) -> torch.Tensor:
    r"""Analytic-DPM's estimator of :math:`\bar\sigma_t^2` from the optimal noise predictor.

    .. math::

       \bar\sigma_t^2 = \frac{\bar\beta_t^2}{\bar\alpha_t^2}
       \Bigl(1 - \frac1d\,\mathbb E_{x_t}\lVert\epsilon^*(x_t)\rVert^2\Bigr),

    with :math:`\epsilon^*(x_t) = \mathbb E[\varepsilon \mid x_t]` evaluated at samples
    :math:`x_t \sim q(x_t)` (the rows of ``eps``). It follows from
    :math:`\mathbb E\lVert x_t - \bar\alpha_t x_0\rVert^2 = d\bar\beta_t^2`. With an imperfect
    predictor or few samples it can fall outside :math:`[0,` :func:`x0_variance_bound` :math:`]`;
    Analytic-DPM clips it there.

    Args:
        schedule: the :class:`~kexue_notes.diffusion.schedule.Schedule`.
        eps: ``(n, d)`` predicted noises :math:`\epsilon^*(x_t)` at one time ``t``.
        t: the time, an ``int`` in :math:`1, \dots, T`.
        per_sample: if true, return the ``n`` per-row terms
            :math:`\frac{\bar\beta_t^2}{\bar\alpha_t^2}(1 - \lVert\epsilon^*\rVert^2/d)`.

    Returns:
        The estimate as a 0-d float64 tensor, or ``(n,)`` terms with ``per_sample``.

    Raises:
        TypeError: if ``schedule`` is not a Schedule or ``t`` is not an int.
        ValueError: if ``t`` is out of range, :math:`\bar\alpha_t = 0`, or ``eps`` is not 2-D or
            holds NaN.

    Used in: :doc:`/book/diffusion/optimal-diffusion-variance`, eq. :eq:`x0-variance-eps`.
    """
    t = _check_time(schedule, t)
    eps = as_tensor(eps, "eps", ndim=2).to(torch.float64)
    ratio = _noise_to_signal(schedule, t)
    terms = ratio * (1.0 - eps.pow(2).sum(-1) / eps.shape[1])
    return terms if per_sample else terms.mean()


def x0_variance_bound(schedule: Schedule, t: Any, data_var: float | None = None) -> torch.Tensor:
    r"""An upper bound on :math:`\bar\sigma_t^2`.

    .. math::

       0 \le \bar\sigma_t^2 \le \min\Bigl(\frac{\bar\beta_t^2}{\bar\alpha_t^2},\
       \operatorname{Var}[x_0]\Bigr), \qquad
       \operatorname{Var}[x_0] \le \Bigl(\frac{b - a}{2}\Bigr)^2
       \text{ for data in } [a, b]^d .

    The first bound is :math:`\mathbb E\lVert\epsilon^*\rVert^2 \ge 0` in
    :func:`x0_variance_from_eps`, the second is :func:`x0_variance_from_mean` with
    :math:`\mu_0 = \mathbb E x_0`; :math:`\operatorname{Var}[x_0] = \operatorname{tr}
    \operatorname{Cov}[x_0]/d` is the variance per coordinate.

    Args:
        schedule: the :class:`~kexue_notes.diffusion.schedule.Schedule`.
        t: time in :math:`1, \dots, T`; an ``int`` or a 1-D integer tensor.
        data_var: :math:`\operatorname{Var}[x_0] \ge 0` per coordinate, or a bound on it such as
            :math:`((b - a)/2)^2`; ``None`` for the first bound alone.

    Returns:
        The bound, float64, of the shape of ``t``.

    Raises:
        TypeError: if ``schedule`` is not a Schedule, ``t`` is not an integer or ``data_var`` is
            not a real number.
        ValueError: if ``t`` is out of range, :math:`\bar\alpha_t = 0`, or ``data_var`` is
            negative.

    Used in: :doc:`/book/diffusion/optimal-diffusion-variance`, eq. :eq:`x0-variance-bounds`.
    """
    check_schedule(schedule)
    t = check_t(t, schedule, None, low=1)
    bound = _noise_to_signal(schedule, t)
    if data_var is not None:
        bound = torch.clamp(bound, max=check_positive(data_var, "data_var", allow_zero=True))
    return bound


# --- Analytic-DPM's Theorem 1, written in Su's notation --------------------------------------

def analytic_dpm_variance(schedule: Schedule, t: Any, s: Any, sigma: Any,
                          eps_sq_mean: Any) -> torch.Tensor:
    r"""The optimal reverse variance in the form of Analytic-DPM's Theorem 1.

    .. math::

       \sigma_*^2 = \sigma^2 + \Bigl(\frac{\bar\alpha_s\bar\beta_t}{\bar\alpha_t}
       - \sqrt{\bar\beta_s^2 - \sigma^2}\Bigr)^2
       \Bigl(1 - \frac1d\,\mathbb E\lVert\epsilon^*(x_t)\rVert^2\Bigr),

    the paper's :math:`\lambda_n^2 + (\sqrt{\bar\beta_n/\alpha_n} - \sqrt{\bar\beta_{n-1} -
    \lambda_n^2})^2 (1 - \bar\beta_n \mathbb E\lVert\nabla\log q_n\rVert^2/d)` after the change of
    notation given on the page. It equals :func:`optimal_reverse_variance` with
    :math:`\bar\sigma_t^2` from :func:`x0_variance_from_eps`; it is computed here from its own
    formula, so that the two can be checked against each other.

    Args:
        schedule: the :class:`~kexue_notes.diffusion.schedule.Schedule`.
        t: time in :math:`1, \dots, T`; an ``int`` or a 1-D integer tensor.
        s: earlier time, :math:`0 \le s < t`, of the shape of ``t``.
        sigma: the kernel's standard deviation :math:`\lambda`, :math:`0 \le \sigma \le
            \bar\beta_s`; a number or a tensor of the shape of ``t``.
        eps_sq_mean: :math:`\mathbb E\lVert\epsilon^*(x_t)\rVert^2/d \ge 0`; a number or a tensor
            of the shape of ``t`` (at most 1 for the exact predictor).

    Returns:
        :math:`\sigma_*^2`, float64, of the broadcast shape of the arguments.

    Raises:
        TypeError: as :func:`optimal_reverse_variance`.
        ValueError: as :func:`optimal_reverse_variance`, or if :math:`\bar\alpha_t = 0` or
            ``eps_sq_mean`` is negative or NaN.

    Used in: :doc:`/book/diffusion/optimal-diffusion-variance`, eq. :eq:`analytic-dpm-theorem`.
    """
    ddim_coefficients(schedule, t, s, sigma)             # validates t, s and sigma
    t, s = check_t(t, schedule, None, low=1), check_t(s, schedule, None, low=0)
    m = as_non_negative(eps_sq_mean, "eps_sq_mean")
    sig2 = as_tensor(sigma, "sigma").to(torch.float64) ** 2
    ab, bb = schedule.alpha_bar, schedule.beta_bar
    if bool((ab[t] == 0).any()):
        raise ValueError("t must be a time with alpha_bar_t > 0")
    direction = torch.sqrt(torch.clamp(bb[s] ** 2 - sig2, min=0.0))
    return sig2 + (ab[s] * bb[t] / ab[t] - direction) ** 2 * (1.0 - m)


# --- the direct Monte Carlo target -----------------------------------------------------------

def reverse_step_mse(x_s: Any, mean: Any) -> torch.Tensor:
    r"""The mean squared error per coordinate of a reverse step's mean.

    .. math::

       \frac1d\,\mathbb E\lVert x_s - \mu_*(x_t)\rVert^2, \qquad
       x_s \sim q_\sigma(x_s \mid x_t, x_0),\ (x_0, x_t) \sim q ,

    estimated by the sample mean. Minimising the expected KL divergence from the true reverse
    step to :math:`\mathcal N(\mu_*(x_t), v I)` over :math:`v` gives exactly this :math:`v`, so
    with :math:`\mu_*` the optimal mean it is a direct Monte Carlo estimate of
    :func:`optimal_reverse_variance`, with no formula for it used.

    Args:
        x_s: ``(n, d)`` draws of :math:`x_s`.
        mean: ``(n, d)`` the reverse-step means :math:`\mu_*(x_t)` at the matching :math:`x_t`.

    Returns:
        The estimate as a 0-d float64 tensor.

    Raises:
        ValueError: if the inputs are not 2-D of one shape or hold NaN.

    Used in: :doc:`/book/diffusion/optimal-diffusion-variance`, eq. :eq:`optimal-variance-kl`.
    """
    x_s = as_tensor(x_s, "x_s", ndim=2).to(torch.float64)
    mean = as_tensor(mean, "mean", ndim=2, shape=tuple(x_s.shape)).to(torch.float64)
    return (x_s - mean).pow(2).sum(-1).mean() / x_s.shape[1]


# --- private helpers -------------------------------------------------------------------------

def _check_time(schedule: Schedule, t: Any) -> int:
    """A single time ``t`` in ``[1, T]`` as an ``int``."""
    check_schedule(schedule)
    if isinstance(t, torch.Tensor):
        raise TypeError("t must be a single time (an int) here, got a tensor")
    return int(check_t(t, schedule, None, low=1))


def _noise_to_signal(schedule: Schedule, t: Any) -> torch.Tensor:
    r""":math:`\bar\beta_t^2/\bar\alpha_t^2`, refusing :math:`\bar\alpha_t = 0`."""
    ab = schedule.alpha_bar[t]
    if bool((ab == 0).any()):
        raise ValueError("t must be a time with alpha_bar_t > 0 (beta_bar/alpha_bar is infinite)")
    return schedule.beta_bar[t] ** 2 / ab**2
