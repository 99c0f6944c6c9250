r"""The DDPM training loss read as a VAE: one term of the ELBO, estimated with two noises or one.

**Setting** (Su's notation, see :mod:`kexue_notes.diffusion.ddpm`). The forward chain
:math:`x_t = \alpha_t x_{t-1} + \beta_t \varepsilon_t` is the encoder; the generator is a chain of
Gaussians :math:`p_\theta(x_{t-1} \mid x_t) = \mathcal N(\mu_\theta(x_t), \sigma_t^2 I)`. Minimising
the KL divergence between the two joint distributions leaves, as the only terms that depend on
:math:`\theta`, the expected negative log-likelihoods

.. math::

   L_{t-1} = \mathbb E\bigl[-\log p_\theta(x_{t-1} \mid x_t)\bigr], \qquad t = 1, \dots, T.

**Two noises.** Sampling the pair :math:`(x_{t-1}, x_t)` directly takes two standard normal noises,
:math:`x_{t-1} = \bar\alpha_{t-1} x_0 + \bar\beta_{t-1} \bar\varepsilon_{t-1}` and
:math:`x_t = \alpha_t x_{t-1} + \beta_t \varepsilon_t`. **One noise.** An orthogonal rotation
turns :math:`(\bar\varepsilon_{t-1}, \varepsilon_t)` into :math:`(\varepsilon, \omega)` with
:math:`x_t = \bar\alpha_t x_0 + \bar\beta_t \varepsilon`; the loss is quadratic in :math:`\omega`,
so its expectation over :math:`\omega` is exact and leaves a one-noise estimator of the same
:math:`L_{t-1}` with smaller variance (it is the conditional expectation of the two-noise one).

**Conventions.** The noise model ``eps_model(x_t, t)`` predicts the total noise
:math:`\varepsilon` of :math:`x_t` (the DDPM paper's :math:`\epsilon_\theta`, and
:func:`kexue_notes.diffusion.mixtures.optimal_eps`); Su's post predicts :math:`\varepsilon_t`
instead, which is :math:`\beta_t / \bar\beta_t` times it. Data tensors have a batch axis first,
shape ``(B, ...)``; losses are summed over all other axes (the squared Euclidean norm, not the mean)
and returned with shape ``(B,)``. Times ``t`` are steps in :math:`1, \dots, T`, an ``int`` or a 1-D
integer tensor of shape ``(B,)``, as in :mod:`kexue_notes.diffusion.ddpm`. Everything is float64.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from kexue_notes._validate import as_array, as_tensor
from kexue_notes.diffusion import ddpm as dn
from kexue_notes.diffusion.schedule import Schedule, check_schedule, check_t, shape_like

__all__ = [  # noqa: RUF022 -- in the order of the derivation, as the module reads
    "gaussian_nll",
    "merge_noises",
    "merge_constant",
    "loss_two_noise",
    "loss_one_noise",
    "loss_weight",
    "elbo_term_two_noise",
    "elbo_term_one_noise",
    "two_noise_conditional_variance",
    "variance_ratio",
]

# --- one ELBO term ---------------------------------------------------------------------------

def gaussian_nll(x: Any, mean: Any, var: Any) -> torch.Tensor:
    r"""The negative log-density of an isotropic Gaussian, per sample.

    .. math::

       -\log \mathcal N(x;\ \mu,\ \sigma^2 I)
       = \frac{d}{2}\log(2\pi\sigma^2) + \frac{\lVert x - \mu\rVert^2}{2\sigma^2},

    with :math:`d` the number of entries of one sample.

    Args:
        x: samples, shape ``(B, ...)``.
        mean: means :math:`\mu`, the shape of ``x``.
        var: :math:`\sigma^2 > 0`, a number or a tensor of shape ``(B,)``.

    Returns:
        Shape ``(B,)``, float64.

    Raises:
        TypeError: if an input is not numeric.
        ValueError: if shapes differ, ``x`` has no batch axis, an input holds NaN, or ``var`` is
            not positive or not of shape ``()`` or ``(B,)``.

    Used in: :doc:`/book/diffusion/ddpm-autoregressive-vae`, eq. :eq:`ddpmvae-elbo-term`.
    """
    x, mean = _batch(x, "x"), _batch(mean, "mean")
    if x.shape != mean.shape:
        raise ValueError(
            f"mean must have the shape of x, {tuple(x.shape)}, got {tuple(mean.shape)}"
        )
    var = _variance(var, "var", x.shape[0])
    d = x[0].numel()
    sq = (x - mean).reshape(x.shape[0], -1).pow(2).sum(1)
    return 0.5 * d * torch.log(2 * math.pi * var) + sq / (2 * var)


# --- merging the two noises ------------------------------------------------------------------

def merge_noises(schedule: Schedule, eps_bar_prev: Any, eps_t: Any,
                 t: Any) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Rotate the two noises of one step into the noise of :math:`x_t` and an independent rest.

    .. math::

       \begin{pmatrix}\varepsilon\\ \omega\end{pmatrix} = \frac{1}{\bar\beta_t}
       \begin{pmatrix}\alpha_t\bar\beta_{t-1} & \beta_t\\ \beta_t & -\alpha_t\bar\beta_{t-1}
       \end{pmatrix}
       \begin{pmatrix}\bar\varepsilon_{t-1}\\ \varepsilon_t\end{pmatrix}.

    The matrix is orthogonal and symmetric, so it is its own inverse: calling the function on
    :math:`(\varepsilon, \omega)` returns :math:`(\bar\varepsilon_{t-1}, \varepsilon_t)`, and
    standard normal inputs give independent standard normal outputs.

    Args:
        schedule: the :class:`~kexue_notes.diffusion.schedule.Schedule`.
        eps_bar_prev: :math:`\bar\varepsilon_{t-1}`, shape ``(B, ...)``.
        eps_t: :math:`\varepsilon_t`, the shape of ``eps_bar_prev``.
        t: step in :math:`1, \dots, T`; an ``int`` or integer tensor of shape ``(B,)``.

    Returns:
        ``(eps, omega)``, float64, each the shape of ``eps_t``.

    Raises:
        TypeError: if ``schedule`` is not a Schedule or ``t`` is not an integer.
        ValueError: if ``t`` is out of range or mis-shaped, shapes differ, or an input holds NaN.

    Used in: :doc:`/book/diffusion/ddpm-autoregressive-vae`, eq. :eq:`ddpmvae-merge-matrix`.
    """
    check_schedule(schedule)
    eps_bar_prev, eps_t = _batch(eps_bar_prev, "eps_bar_prev"), _batch(eps_t, "eps_t")
    _same(eps_bar_prev, "eps_bar_prev", eps_t, "eps_t")
    t = check_t(t, schedule, eps_t, low=1)
    s = schedule
    p = shape_like(s.alpha[t] * s.beta_bar[t - 1] / s.beta_bar[t], eps_t)
    q = shape_like(s.beta[t] / s.beta_bar[t], eps_t)
    return p * eps_bar_prev + q * eps_t, q * eps_bar_prev - p * eps_t


def merge_constant(schedule: Schedule, t: Any) -> torch.Tensor:
    r"""The per-coordinate constant that the expectation over :math:`\omega` leaves behind.

    .. math::

       c_t^2 = \frac{\alpha_t^2 \bar\beta_{t-1}^2}{\bar\beta_t^2},

    the squared weight of :math:`\omega` in
    :math:`\varepsilon_t = (\beta_t \varepsilon - \alpha_t \bar\beta_{t-1}\omega)/\bar\beta_t`.
    It is 0 at :math:`t = 1` and close to 1 for large :math:`t`.

    Args:
        schedule: the :class:`~kexue_notes.diffusion.schedule.Schedule`.
        t: step in :math:`1, \dots, T`; an ``int`` or a 1-D integer tensor.

    Returns:
        :math:`c_t^2`, float64, of the shape of ``t``.

    Raises:
        TypeError: if ``schedule`` is not a Schedule or ``t`` is not an integer.
        ValueError: if ``t`` is out of range.

    Used in: :doc:`/book/diffusion/ddpm-autoregressive-vae`, eq. :eq:`ddpmvae-two-to-one`.
    """
    check_schedule(schedule)
    t = check_t(t, schedule, None, low=1)
    s = schedule
    return (s.alpha[t] * s.beta_bar[t - 1] / s.beta_bar[t]) ** 2


# --- the two losses --------------------------------------------------------------------------

def loss_two_noise(schedule: Schedule, eps_model: Any, x0: Any, t: Any, eps_bar_prev: Any,
                   eps_t: Any) -> torch.Tensor:
    r"""The two-noise loss: predict the last step's noise :math:`\varepsilon_t` from :math:`x_t`.

    .. math::

       \ell_2 = \Bigl\lVert \varepsilon_t - \frac{\beta_t}{\bar\beta_t}\,
       \epsilon_\theta(x_t, t)\Bigr\rVert^2, \qquad
       x_t = \bar\alpha_t x_0 + \alpha_t\bar\beta_{t-1}\bar\varepsilon_{t-1}
       + \beta_t\varepsilon_t .

    :math:`x_t` is built as the chain builds it: :math:`x_{t-1}` by
    :func:`~kexue_notes.diffusion.ddpm.q_sample`, then one
    :func:`~kexue_notes.diffusion.ddpm.q_step`. The factor :math:`\beta_t/\bar\beta_t` converts the
    model's prediction of :math:`\varepsilon` into the post's prediction of :math:`\varepsilon_t`.

    Args:
        schedule: the :class:`~kexue_notes.diffusion.schedule.Schedule`.
        eps_model: ``eps_model(x_t, t)``, returning a tensor the shape of ``x_t``.
        x0: clean data, shape ``(B, ...)``.
        t: step in :math:`1, \dots, T`; an ``int`` or integer tensor of shape ``(B,)``.
        eps_bar_prev: :math:`\bar\varepsilon_{t-1}`, the shape of ``x0``.
        eps_t: :math:`\varepsilon_t`, the shape of ``x0``.

    Returns:
        :math:`\ell_2` per sample, shape ``(B,)``.

    Raises:
        TypeError: if ``eps_model`` is not callable, ``schedule`` is not a Schedule or ``t`` is
            not an integer.
        ValueError: if ``t`` is out of range or mis-shaped, shapes differ, an input holds NaN, or
            ``eps_model`` returns the wrong shape.

    Used in: :doc:`/book/diffusion/ddpm-autoregressive-vae`, eq. :eq:`ddpmvae-loss-two-noise`.
    """
    _, x_t, t = _two_noise_pair(schedule, x0, t, eps_bar_prev, eps_t)
    eps_t = as_tensor(eps_t, "eps_t").to(torch.float64)
    ratio = shape_like(schedule.beta[t] / schedule.beta_bar[t], x_t)
    return _sq_norm(eps_t - ratio * _predict(eps_model, x_t, t))


def loss_one_noise(schedule: Schedule, eps_model: Any, x0: Any, t: Any,
                   eps: Any) -> torch.Tensor:
    r"""The one-noise loss, DDPM's simple loss with the squared norm summed, not averaged.

    .. math::

       \ell_1 = \bigl\lVert \varepsilon - \epsilon_\theta(x_t, t)\bigr\rVert^2, \qquad
       x_t = \bar\alpha_t x_0 + \bar\beta_t \varepsilon .

    Its link to the two-noise loss is
    :math:`\mathbb E_\omega[\ell_2] = (\beta_t^2/\bar\beta_t^2)\,\ell_1 + d\,c_t^2`, with
    :math:`c_t^2` from :func:`merge_constant`.

    Args:
        schedule: the :class:`~kexue_notes.diffusion.schedule.Schedule`.
        eps_model: ``eps_model(x_t, t)``, returning a tensor the shape of ``x_t``.
        x0: clean data, shape ``(B, ...)``.
        t: step in :math:`1, \dots, T`; an ``int`` or integer tensor of shape ``(B,)``.
        eps: :math:`\varepsilon`, the shape of ``x0``.

    Returns:
        :math:`\ell_1` per sample, shape ``(B,)``.

    Raises:
        TypeError: as :func:`loss_two_noise`.
        ValueError: as :func:`loss_two_noise`.

    Used in: :doc:`/book/diffusion/ddpm-autoregressive-vae`, eq. :eq:`ddpmvae-loss-one-noise`.
    """
    x_t, eps, t = _one_noise_point(schedule, x0, t, eps)
    return _sq_norm(eps - _predict(eps_model, x_t, t))


def loss_weight(schedule: Schedule, t: Any, sigma2: Any) -> torch.Tensor:
    r"""The weight of the one-noise loss in the VAE objective (Su's prefactor).

    .. math::

       w_t = \frac{\beta_t^4}{\bar\beta_t^2 \alpha_t^2 \sigma_t^2}.

    The exact negative log-likelihood carries half of it, :math:`w_t/2`
    (see :func:`elbo_term_one_noise`); DDPM trains with :math:`w_t` replaced by 1.

    Args:
        schedule: the :class:`~kexue_notes.diffusion.schedule.Schedule`.
        t: step in :math:`1, \dots, T`; an ``int`` or a 1-D integer tensor.
        sigma2: the generator's variance :math:`\sigma_t^2 > 0`, a number or a tensor of the
            shape of ``t``.

    Returns:
        :math:`w_t`, float64, of the shape of ``t``.

    Raises:
        TypeError: if ``schedule`` is not a Schedule or ``t`` is not an integer.
        ValueError: if ``t`` is out of range or ``sigma2`` is not positive or mis-shaped.

    Used in: :doc:`/book/diffusion/ddpm-autoregressive-vae`, eq. :eq:`ddpmvae-loss-one-noise`.
    """
    check_schedule(schedule)
    t = check_t(t, schedule, None, low=1)
    n = None if isinstance(t, int) else t.shape[0]
    sigma2 = _variance(sigma2, "sigma2", n)
    s = schedule
    return s.beta[t] ** 4 / (s.beta_bar[t] ** 2 * s.alpha[t] ** 2 * sigma2)


# --- the ELBO term, estimated both ways ------------------------------------------------------

def elbo_term_two_noise(schedule: Schedule, eps_model: Any, x0: Any, t: Any,
                        eps_bar_prev: Any, eps_t: Any, sigma2: Any) -> torch.Tensor:
    r"""A one-sample estimate of :math:`L_{t-1}` from the two noises: the Gaussian NLL itself.

    .. math::

       -\log p_\theta(x_{t-1}\mid x_t)
       = \frac{d}{2}\log(2\pi\sigma_t^2) + \frac{\lVert x_{t-1} - \mu_\theta(x_t)\rVert^2}
       {2\sigma_t^2},

    with :math:`x_{t-1}, x_t` built from the two noises as in :func:`loss_two_noise` and
    :math:`\mu_\theta` the DDPM mean :func:`~kexue_notes.diffusion.ddpm.ddpm_mean`. It equals
    :math:`\tfrac d2\log(2\pi\sigma_t^2) + \beta_t^2\ell_2/(2\alpha_t^2\sigma_t^2)`.

    Args:
        schedule: the :class:`~kexue_notes.diffusion.schedule.Schedule`.
        eps_model: ``eps_model(x_t, t)``, returning a tensor the shape of ``x_t``.
        x0: clean data, shape ``(B, ...)``.
        t: step in :math:`1, \dots, T`; an ``int`` or integer tensor of shape ``(B,)``.
        eps_bar_prev: :math:`\bar\varepsilon_{t-1}`, the shape of ``x0``.
        eps_t: :math:`\varepsilon_t`, the shape of ``x0``.
        sigma2: :math:`\sigma_t^2 > 0`, a number or a tensor of shape ``(B,)``.

    Returns:
        Shape ``(B,)``, float64.

    Raises:
        TypeError: as :func:`loss_two_noise`.
        ValueError: as :func:`loss_two_noise`, or if ``sigma2`` is not positive or mis-shaped.

    Used in: :doc:`/book/diffusion/ddpm-autoregressive-vae`, eq. :eq:`ddpmvae-elbo-term`.
    """
    x_prev, x_t, t = _two_noise_pair(schedule, x0, t, eps_bar_prev, eps_t)
    sigma2 = _variance(sigma2, "sigma2", x_t.shape[0])
    mean = dn.ddpm_mean(schedule, x_t, _predict(eps_model, x_t, t), t)
    return gaussian_nll(x_prev, mean, sigma2)


def elbo_term_one_noise(schedule: Schedule, eps_model: Any, x0: Any, t: Any, eps: Any,
                        sigma2: Any) -> torch.Tensor:
    r"""A one-sample estimate of :math:`L_{t-1}` from one noise: the two-noise NLL averaged over
    :math:`\omega` exactly.

    .. math::

       \mathbb E_\omega\bigl[-\log p_\theta(x_{t-1}\mid x_t)\bigr]
       = \frac{d}{2}\log(2\pi\sigma_t^2) + \frac{w_t}{2}\,\ell_1
       + \frac{d}{2}\,\frac{\tilde\sigma_t^2}{\sigma_t^2},

    with :math:`\ell_1` from :func:`loss_one_noise`, :math:`w_t` from :func:`loss_weight` and
    :math:`\tilde\sigma_t^2 = \bar\beta_{t-1}^2\beta_t^2/\bar\beta_t^2` from
    :func:`~kexue_notes.diffusion.ddpm.posterior_variance`. It equals the DDPM paper's
    :math:`\mathrm{KL}(q(x_{t-1}\mid x_t, x_0)\,\Vert\,p_\theta(x_{t-1}\mid x_t))` plus the
    entropy of the posterior.

    Args:
        schedule: the :class:`~kexue_notes.diffusion.schedule.Schedule`.
        eps_model: ``eps_model(x_t, t)``, returning a tensor the shape of ``x_t``.
        x0: clean data, shape ``(B, ...)``.
        t: step in :math:`1, \dots, T`; an ``int`` or integer tensor of shape ``(B,)``.
        eps: :math:`\varepsilon`, the shape of ``x0``.
        sigma2: :math:`\sigma_t^2 > 0`, a number or a tensor of shape ``(B,)``.

    Returns:
        Shape ``(B,)``, float64.

    Raises:
        TypeError: as :func:`loss_two_noise`.
        ValueError: as :func:`loss_two_noise`, or if ``sigma2`` is not positive or mis-shaped.

    Used in: :doc:`/book/diffusion/ddpm-autoregressive-vae`, eq. :eq:`ddpmvae-elbo-one-noise`.
    """
    x_t, eps, t = _one_noise_point(schedule, x0, t, eps)
    sigma2 = _variance(sigma2, "sigma2", x_t.shape[0])
    d = x_t[0].numel()
    ell = _sq_norm(eps - _predict(eps_model, x_t, t))
    w = loss_weight(schedule, t, 1.0) / sigma2
    post = dn.posterior_variance(schedule, t)
    return 0.5 * d * torch.log(2 * math.pi * sigma2) + 0.5 * w * ell + 0.5 * d * post / sigma2


def two_noise_conditional_variance(schedule: Schedule, eps_model: Any, x0: Any, t: Any,
                                   eps: Any) -> torch.Tensor:
    r"""The variance of the two-noise loss that the one-noise loss removes, per sample.

    Given :math:`x_0` and :math:`\varepsilon` (so :math:`x_t`), :math:`\ell_2` still depends on
    :math:`\omega \sim \mathcal N(0, I_d)`, and

    .. math::

       \operatorname{Var}_\omega[\ell_2 \mid x_0, \varepsilon]
       = 4 c_t^2\, \frac{\beta_t^2}{\bar\beta_t^2}\, \ell_1 + 2 d\, c_t^4,

    with :math:`c_t^2` from :func:`merge_constant`. By the law of total variance,
    :math:`\operatorname{Var}[\ell_2] = \operatorname{Var}[(\beta_t^2/\bar\beta_t^2)\ell_1]
    + \mathbb E[\text{this}]`.

    Args:
        schedule: the :class:`~kexue_notes.diffusion.schedule.Schedule`.
        eps_model: ``eps_model(x_t, t)``, returning a tensor the shape of ``x_t``.
        x0: clean data, shape ``(B, ...)``.
        t: step in :math:`1, \dots, T`; an ``int`` or integer tensor of shape ``(B,)``.
        eps: :math:`\varepsilon`, the shape of ``x0``.

    Returns:
        Shape ``(B,)``, float64.

    Raises:
        TypeError: as :func:`loss_two_noise`.
        ValueError: as :func:`loss_two_noise`.

    Used in: :doc:`/book/diffusion/ddpm-autoregressive-vae`, eq. :eq:`ddpmvae-variance-gap`.
    """
    x_t, eps, t = _one_noise_point(schedule, x0, t, eps)
    d = x_t[0].numel()
    ell = _sq_norm(eps - _predict(eps_model, x_t, t))
    c2 = merge_constant(schedule, t)
    r2 = (schedule.beta[t] / schedule.beta_bar[t]) ** 2
    return 4 * c2 * r2 * ell + 2 * d * c2**2


def variance_ratio(a: Any, b: Any) -> tuple[float, float]:
    r"""The ratio of two sample variances and its delta-method standard error.

    For independent samples :math:`a` (size :math:`n_a`) and :math:`b` (size :math:`n_b`),

    .. math::

       R = \frac{\hat V_a}{\hat V_b}, \qquad
       \operatorname{se}(R) = R \sqrt{\frac{\hat\kappa_a - 1}{n_a} + \frac{\hat\kappa_b - 1}{n_b}},

    with :math:`\hat V` the sample variance (divisor :math:`n - 1`) and
    :math:`\hat\kappa = \hat m_4/\hat m_2^2` the sample kurtosis (3 for Gaussian data).

    Args:
        a: 1-D sample, at least 2 values.
        b: 1-D sample, at least 2 values, not all equal.

    Returns:
        ``(R, se)`` as floats.

    Raises:
        TypeError: if an input is not numeric.
        ValueError: if an input is not 1-D, has fewer than 2 values or holds NaN, or ``b`` has
            zero variance.

    Used in: :doc:`/book/diffusion/ddpm-autoregressive-vae`.
    """
    a, b = as_array(a, "a", ndim=1), as_array(b, "b", ndim=1)
    for arr, name in ((a, "a"), (b, "b")):
        if arr.shape[0] < 2:
            raise ValueError(f"{name} must hold at least 2 values, got {arr.shape[0]}")
    if np.var(b) == 0:
        raise ValueError("b must not be constant: its variance is the denominator")
    ratio = float(np.var(a, ddof=1) / np.var(b, ddof=1))
    if ratio == 0:
        return 0.0, 0.0
    rel2 = sum((_kurtosis(x) - 1) / x.shape[0] for x in (a, b))
    return ratio, ratio * math.sqrt(rel2)


# --- private helpers -------------------------------------------------------------------------

def _kurtosis(x: np.ndarray) -> float:
    c = x - x.mean()
    m2 = np.mean(c**2)
    return float(np.mean(c**4) / m2**2)


def _batch(x: Any, name: str) -> torch.Tensor:
    x = as_tensor(x, name).to(torch.float64)
    if x.ndim == 0:
        raise ValueError(f"{name} must have a batch axis, shape (B, ...), got a scalar")
    return x


def _same(x: torch.Tensor, x_name: str, y: torch.Tensor, y_name: str) -> None:
    if x.shape != y.shape:
        raise ValueError(
            f"{y_name} must have the shape of {x_name}, {tuple(x.shape)}, got {tuple(y.shape)}"
        )


def _variance(var: Any, name: str, n: int | None) -> torch.Tensor:
    """A positive variance: a number, a 0-d tensor, or a tensor of shape ``(n,)``."""
    if isinstance(var, bool):
        raise TypeError(f"{name} must be a positive number or tensor, got bool")
    v = as_tensor(var, name).to(torch.float64)
    if v.ndim > 1 or (v.ndim == 1 and (n is None or v.shape[0] != n)):
        want = "()" if n is None else f"() or ({n},)"
        raise ValueError(f"{name} must have shape {want}, got {tuple(v.shape)}")
    if bool((v <= 0).any()):
        raise ValueError(f"{name} must be > 0, got minimum {float(v.min()):.3g}")
    return v


def _predict(eps_model: Any, x_t: torch.Tensor, t: Any) -> torch.Tensor:
    if not callable(eps_model):
        raise TypeError(f"eps_model must be callable as eps_model(x_t, t), got "
                        f"{type(eps_model).__name__}")
    out = as_tensor(eps_model(x_t, t), "eps_model(x_t, t)").to(torch.float64)
    if out.shape != x_t.shape:
        raise ValueError(
            f"eps_model must return the shape of x_t, {tuple(x_t.shape)}, got {tuple(out.shape)}"
        )
    return out


def _two_noise_pair(schedule: Schedule, x0: Any, t: Any, eps_bar_prev: Any,
                    eps_t: Any) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """x_{t-1} and x_t from the two noises, and the checked t."""
    check_schedule(schedule)
    x0 = _batch(x0, "x0")
    eps_bar_prev, eps_t = _batch(eps_bar_prev, "eps_bar_prev"), _batch(eps_t, "eps_t")
    _same(x0, "x0", eps_bar_prev, "eps_bar_prev")
    _same(x0, "x0", eps_t, "eps_t")
    t = check_t(t, schedule, x0, low=1)
    x_prev = dn.q_sample(schedule, x0, eps_bar_prev, t - 1)
    return x_prev, dn.q_step(schedule, x_prev, eps_t, t), t


def _one_noise_point(schedule: Schedule, x0: Any, t: Any,
                     eps: Any) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """x_t from one noise, the noise as float64, and the checked t."""
    check_schedule(schedule)
    x0, eps = _batch(x0, "x0"), _batch(eps, "eps")
    _same(x0, "x0", eps, "eps")
    t = check_t(t, schedule, x0, low=1)
    return dn.q_sample(schedule, x0, eps, t), eps, t


def _sq_norm(r: torch.Tensor) -> torch.Tensor:
    return r.reshape(r.shape[0], -1).pow(2).sum(1)
