r"""Gaussian-mixture data: the exact denoiser of a diffusion model, and a two-sample distance.

For data drawn from an isotropic Gaussian mixture

.. math::

   x_0 \sim \sum_{k=1}^K \pi_k\, \mathcal N(m_k, s_k^2 I_d),

the noisy marginal of :math:`x_t = \bar\alpha_t x_0 + \bar\beta_t\varepsilon` (Su's notation, see
:mod:`kexue_notes.diffusion.ddpm`) is again a mixture, with component :math:`k` equal to
:math:`\mathcal N(\bar\alpha_t m_k, v_k I)`, :math:`v_k = \bar\alpha_t^2 s_k^2 + \bar\beta_t^2`.
Bayes' rule then gives everything a diffusion model tries to learn in closed form: the
responsibilities :math:`r_k(x_t)`, the posterior mean :math:`\mathbb E[x_0 \mid x_t]`, the optimal
noise predictor :math:`\epsilon^*(x_t)` and the posterior variance. A sampler run with these exact
functions can be compared with the true data distribution, with no training error in between.

Every function takes the noise level as the scalar :math:`\bar\alpha_t \in (0, 1]` (all samples at
the same step), with :math:`\bar\beta_t = \sqrt{1 - \bar\alpha_t^2}`. Tensors are float64 torch.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from kexue_notes._validate import as_tensor, check_fraction, check_probabilities

__all__ = [  # noqa: RUF022 -- in the order of the derivation, as the module reads
    "GaussianMixture",
    "gaussian_mixture",
    "sample_mixture",
    "noisy_log_density",
    "responsibilities",
    "posterior_mean_x0",
    "posterior_variance_x0",
    "optimal_eps",
    "energy_distance",
]


class GaussianMixture(NamedTuple):
    r"""An isotropic Gaussian mixture :math:`\sum_k \pi_k \mathcal N(m_k, s_k^2 I_d)`.

    ``weights`` :math:`\pi`, shape ``(K,)``; ``means`` :math:`m`, shape ``(K, d)``; ``stds``
    :math:`s`, shape ``(K,)``, all float64 tensors. Build one with :func:`gaussian_mixture`, which
    checks them.

    Used in: :doc:`/book/diffusion/ddim-high-level-ddpm`, eq. :eq:`mixture-posterior-mean`.
    """

    weights: torch.Tensor
    means: torch.Tensor
    stds: torch.Tensor


def gaussian_mixture(weights: Any, means: Any, stds: Any) -> GaussianMixture:
    r"""Check and build a :class:`GaussianMixture`.

    Args:
        weights: ``(K,)`` mixture weights :math:`\pi_k \ge 0` summing to one.
        means: ``(K, d)`` component means :math:`m_k`.
        stds: ``(K,)`` component standard deviations :math:`s_k > 0`.

    Returns:
        The mixture, as float64 tensors.

    Raises:
        ValueError: if the weights are not a probability vector, a standard deviation is not
            positive, shapes disagree, or an entry is NaN.

    Used in: :doc:`/book/diffusion/ddim-high-level-ddpm`, eq. :eq:`mixture-posterior-mean`;
    :doc:`/book/diffusion/optimal-diffusion-variance`.
    """
    pi = torch.as_tensor(check_probabilities(weights, "weights"), dtype=torch.float64)
    if pi.ndim != 1:
        raise ValueError(f"weights must be 1-dimensional, got shape {tuple(pi.shape)}")
    K = pi.shape[0]
    m = as_tensor(means, "means", ndim=2, shape=(K, None)).to(torch.float64)
    s = as_tensor(stds, "stds", shape=(K,)).to(torch.float64)
    if bool((s <= 0).any()):
        raise ValueError(f"stds must be > 0, got minimum {float(s.min()):.3g}")
    return GaussianMixture(pi, m, s)


def sample_mixture(mix: GaussianMixture, n: int, generator: torch.Generator) -> torch.Tensor:
    r"""Draw ``n`` samples of :math:`x_0`: a component :math:`k \sim \pi`, then
    :math:`m_k + s_k z` with :math:`z \sim \mathcal N(0, I_d)`.

    Returns:
        ``(n, d)`` float64 samples.

    Raises:
        TypeError: if ``mix`` is not a :class:`GaussianMixture` or ``n`` is not an integer.
        ValueError: if ``n`` < 1.

    Used in: :doc:`/book/diffusion/ddim-high-level-ddpm`, eq. :eq:`mixture-posterior-mean`;
    :doc:`/book/diffusion/optimal-diffusion-variance`.
    """
    _check_mixture(mix)
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an integer, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    k = torch.multinomial(mix.weights, n, replacement=True, generator=generator)
    z = torch.randn(n, mix.means.shape[1], generator=generator, dtype=torch.float64)
    return mix.means[k] + mix.stds[k, None] * z


def _noisy_components(mix: GaussianMixture, x_t: Any, alpha_bar: float
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Log joint of each component with ``x_t``, its variance :math:`v_k`, the data, and ᾱ."""
    _check_mixture(mix)
    a = check_fraction(alpha_bar, "alpha_bar")
    if a == 0:
        raise ValueError("alpha_bar must be > 0 (at alpha_bar = 0, x_t holds no signal)")
    d = mix.means.shape[1]
    x = as_tensor(x_t, "x_t", ndim=2, shape=(None, d)).to(torch.float64)
    v = a**2 * mix.stds**2 + (1.0 - a**2)                          # (K,)
    sq = (x[:, None, :] - a * mix.means).pow(2).sum(-1)          # (n, K), twice differentiable
    log_joint = torch.log(mix.weights) - 0.5 * sq / v - 0.5 * d * torch.log(2 * math.pi * v)
    return log_joint, v, x, a


def noisy_log_density(mix: GaussianMixture, x_t: Any, alpha_bar: float) -> torch.Tensor:
    r"""The log density of :math:`x_t`,
    :math:`\log\sum_k \pi_k \mathcal N(x_t;\, \bar\alpha_t m_k,\, v_k I)`,
    :math:`v_k = \bar\alpha_t^2 s_k^2 + \bar\beta_t^2`.

    Args:
        mix: the data distribution.
        x_t: ``(n, d)`` noisy samples.
        alpha_bar: :math:`\bar\alpha_t \in (0, 1]`.

    Returns:
        ``(n,)`` log densities.

    Raises:
        ValueError: if ``alpha_bar`` is outside (0, 1] or ``x_t`` is not ``(n, d)``.

    Used in: :doc:`/book/diffusion/ddim-high-level-ddpm`, eq. :eq:`mixture-posterior-mean`;
    :doc:`/book/diffusion/optimal-diffusion-variance`.
    """
    log_joint, *_ = _noisy_components(mix, x_t, alpha_bar)
    return torch.logsumexp(log_joint, dim=1)


def responsibilities(mix: GaussianMixture, x_t: Any, alpha_bar: float) -> torch.Tensor:
    r"""The posterior probability of each component,
    :math:`r_k(x_t) = \pi_k \mathcal N(x_t; \bar\alpha_t m_k, v_k I) / p(x_t)`.

    Returns:
        ``(n, K)`` responsibilities; each row sums to one.

    Raises:
        ValueError: as :func:`noisy_log_density`.

    Used in: :doc:`/book/diffusion/ddim-high-level-ddpm`, eq. :eq:`mixture-posterior-mean`.
    """
    log_joint, *_ = _noisy_components(mix, x_t, alpha_bar)
    return torch.softmax(log_joint, dim=1)


def _component_posteriors(mix: GaussianMixture, x_t: Any, alpha_bar: float
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Responsibilities ``(n, K)``, per-component means ``(n, K, d)`` and variances ``(K,)``."""
    log_joint, v, x, a = _noisy_components(mix, x_t, alpha_bar)
    r = torch.softmax(log_joint, dim=1)
    gain = a * mix.stds**2 / v                                     # (K,)
    means = mix.means + gain[:, None] * (x[:, None, :] - a * mix.means)
    variances = mix.stds**2 * (1.0 - a**2) / v
    return r, means, variances


def posterior_mean_x0(mix: GaussianMixture, x_t: Any, alpha_bar: float) -> torch.Tensor:
    r"""The exact denoiser :math:`\mathbb E[x_0 \mid x_t]` for mixture data.

    .. math::

       \mathbb E[x_0 \mid x_t] = \sum_k r_k(x_t)\Bigl[m_k
       + \frac{\bar\alpha_t s_k^2}{v_k}\,(x_t - \bar\alpha_t m_k)\Bigr].

    Args:
        mix: the data distribution.
        x_t: ``(n, d)`` noisy samples.
        alpha_bar: :math:`\bar\alpha_t \in (0, 1]`.

    Returns:
        ``(n, d)`` posterior means.

    Raises:
        ValueError: as :func:`noisy_log_density`.

    Used in: :doc:`/book/diffusion/ddim-high-level-ddpm`, eq. :eq:`mixture-posterior-mean`;
    :doc:`/book/diffusion/optimal-diffusion-variance`.
    """
    r, means, _ = _component_posteriors(mix, x_t, alpha_bar)
    return torch.einsum("nk,nkd->nd", r, means)


def posterior_variance_x0(mix: GaussianMixture, x_t: Any, alpha_bar: float) -> torch.Tensor:
    r"""The mean per-coordinate posterior variance :math:`\operatorname{tr}\operatorname{Cov}[x_0
    \mid x_t] / d`.

    By the law of total variance over the components,

    .. math::

       \frac1d \operatorname{tr}\operatorname{Cov}[x_0 \mid x_t] = \sum_k r_k \frac{s_k^2
       \bar\beta_t^2}{v_k} + \frac1d\Bigl(\sum_k r_k \lVert\mu_k\rVert^2
       - \bigl\lVert \textstyle\sum_k r_k \mu_k \bigr\rVert^2\Bigr),

    with :math:`\mu_k` the component posterior means of :func:`posterior_mean_x0`.

    Returns:
        ``(n,)`` variances.

    Raises:
        ValueError: as :func:`noisy_log_density`.

    Used in: :doc:`/book/diffusion/ddim-high-level-ddpm`, eq. :eq:`mixture-posterior-mean`;
    :doc:`/book/diffusion/optimal-diffusion-variance`.
    """
    r, means, variances = _component_posteriors(mix, x_t, alpha_bar)
    mean = torch.einsum("nk,nkd->nd", r, means)
    spread = torch.einsum("nk,nk->n", r, means.pow(2).sum(-1)) - mean.pow(2).sum(-1)
    return r @ variances + spread / means.shape[-1]


def optimal_eps(mix: GaussianMixture, x_t: Any, alpha_bar: float) -> torch.Tensor:
    r"""The optimal noise predictor :math:`\epsilon^*(x_t) = \mathbb E[\varepsilon \mid x_t]`.

    .. math::

       \epsilon^*(x_t) = \frac{x_t - \bar\alpha_t\, \mathbb E[x_0 \mid x_t]}{\bar\beta_t}
       = -\bar\beta_t \nabla_{x_t} \log p(x_t).

    Returns:
        ``(n, d)`` predicted noise.

    Raises:
        ValueError: as :func:`noisy_log_density`, and at ``alpha_bar = 1`` (no noise to predict).

    Used in: :doc:`/book/diffusion/ddim-high-level-ddpm`, eq. :eq:`mixture-optimal-eps`;
    :doc:`/book/diffusion/ddpm-autoregressive-vae`;
    :doc:`/book/diffusion/optimal-diffusion-variance`.
    """
    if alpha_bar == 1:
        raise ValueError("alpha_bar must be < 1 for eps: at alpha_bar = 1 there is no noise")
    x0_hat = posterior_mean_x0(mix, x_t, alpha_bar)
    x = as_tensor(x_t, "x_t").to(torch.float64)
    return (x - alpha_bar * x0_hat) / math.sqrt(1.0 - alpha_bar**2)


def energy_distance(x: Any, y: Any) -> float:
    r"""The squared energy distance between two samples, a two-sample statistic.

    .. math::

       D^2(X, Y) = 2\,\mathbb E\lVert X - Y\rVert - \mathbb E\lVert X - X'\rVert
       - \mathbb E\lVert Y - Y'\rVert \;\ge\; 0,

    estimated with all pairs (the V-statistic, zero when the samples coincide). It is zero only
    when the two distributions are equal; for one-dimensional data it is twice the integrated
    squared difference of the two empirical CDFs, and scipy's ``energy_distance`` is its square
    root.

    Args:
        x: ``(n, d)`` samples.
        y: ``(m, d)`` samples.

    Returns:
        :math:`D^2` as a float.

    Raises:
        ValueError: if the samples are not 2-D with the same number of columns, or hold NaN.

    Used in: :doc:`/book/diffusion/ddim-high-level-ddpm`, eq. :eq:`energy-distance`;
    :doc:`/book/diffusion/optimal-diffusion-variance`.
    """
    x = as_tensor(x, "x", ndim=2).to(torch.float64)
    y = as_tensor(y, "y", ndim=2, shape=(None, x.shape[1])).to(torch.float64)
    xy = torch.cdist(x, y).mean()
    xx = torch.cdist(x, x).mean()
    yy = torch.cdist(y, y).mean()
    return float(2 * xy - xx - yy)


def _check_mixture(mix: Any) -> None:
    if not isinstance(mix, GaussianMixture):
        raise TypeError(
            f"mix must be a GaussianMixture (see gaussian_mixture), got {type(mix).__name__}"
        )
