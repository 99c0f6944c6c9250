r"""The KL term of a VAE as an information bottleneck, solved exactly for a linear-Gaussian encoder.

**The bound.** An encoder :math:`p(z \mid x)` and a data distribution :math:`p(x)` define the
aggregate code distribution :math:`p(z) = \int p(z \mid x)\, p(x)\, dx`. For any fixed density
:math:`q(z)` (the prior),

.. math::

   \mathbb E_x\, \mathrm{KL}\bigl(p(z \mid x) \,\|\, q(z)\bigr)
   = I(X; Z) + \mathrm{KL}\bigl(p(z) \,\|\, q(z)\bigr) \;\ge\; I(X; Z),

with equality if and only if :math:`q = p(z)`. The left side is the KL term of the VAE loss and of
the variational information bottleneck (VIB); we call it the *rate*.

**The model.** Data :math:`x \sim \mathcal N(0, \Sigma_x)` in :math:`\mathbb R^d`; a linear-Gaussian
encoder :math:`z = A x + \nu`, :math:`\nu \sim \mathcal N(0, S)`, so :math:`p(z \mid x) =
\mathcal N(Ax, S)` in :math:`\mathbb R^k` and :math:`p(z) = \mathcal N(0, \Sigma_z)` with
:math:`\Sigma_z = A \Sigma_x A^\top + S`. Then the mutual information, the rate, the gap and the
distortion of the best decoder :math:`\mathbb E[x \mid z]` are all closed forms, and so is the
encoder that minimises distortion :math:`+\ \beta \times` rate: reverse water-filling over the
eigenvalues of :math:`\Sigma_x`.

The module reads in that order: Gaussian KL divergences, the channel's marginal, information,
rate, gap and distortion, sampling and the pointwise information density, and the optimal encoder.
Matrices are NumPy arrays (torch tensors are accepted and converted) and results are float64;
:func:`gaussian_kl_standard` also computes in torch, keeping autograd, when given tensors.
All logarithms are natural: information is in nats.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from kexue_notes._validate import as_array, as_tensor, is_tensor

if TYPE_CHECKING:
    import torch

__all__ = [  # noqa: RUF022 -- in the order of the derivation, as the module reads
    "gaussian_kl",
    "gaussian_kl_standard",
    "linear_gaussian_marginal",
    "linear_gaussian_mi",
    "linear_gaussian_rate",
    "linear_gaussian_gap",
    "linear_gaussian_distortion",
    "linear_vib_loss",
    "sample_linear_gaussian",
    "information_density",
    "water_filling",
    "optimal_linear_encoder",
]

_PAGE = ":doc:`/book/diffusion/vae-information-bottleneck`"


# --- input checks ----------------------------------------------------------------------------

def _check_cov(c: Any, name: str, k: int | None = None) -> NDArray[np.float64]:
    """A symmetric positive definite ``(k, k)`` float64 matrix, or raise naming ``name``."""
    c = as_array(c, name, ndim=2)
    if c.shape[0] != c.shape[1] or c.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty square matrix, got shape {c.shape}")
    if k is not None and c.shape[0] != k:
        raise ValueError(f"{name} must have shape ({k}, {k}), got {c.shape}")
    scale = max(float(np.abs(c).max()), np.finfo(np.float64).tiny)
    asymmetry = float(np.abs(c - c.T).max())
    if asymmetry > 1e-12 * scale:
        raise ValueError(f"{name} must be symmetric, but it differs from its transpose by "
                         f"{asymmetry:.3g}")
    try:
        np.linalg.cholesky(c)
    except np.linalg.LinAlgError as err:
        raise ValueError(f"{name} must be positive definite (a covariance of full rank), "
                         f"got smallest eigenvalue {float(np.linalg.eigvalsh(c).min()):.3g}"
                         ) from err
    return c


def _check_channel(A: Any, S: Any, sigma_x: Any
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """``A`` of shape ``(k, d)``, ``S`` of shape ``(k, k)``, ``sigma_x`` of shape ``(d, d)``."""
    A = as_array(A, "A", ndim=2)
    k, d = A.shape
    if k == 0 or d == 0:
        raise ValueError(f"A must have at least one row and one column, got shape {A.shape}")
    S = _check_cov(S, "S", k)
    sigma_x = _check_cov(sigma_x, "sigma_x", d)
    return A, S, sigma_x


def _check_beta(beta: Any) -> NDArray[np.float64]:
    """``beta`` as a float64 array (0-D or 1-D) of finite positive numbers."""
    if isinstance(beta, bool):
        raise TypeError("beta must be a positive number or a 1-D array of them, got bool")
    b = as_array(beta, "beta")
    if b.ndim > 1:
        raise ValueError(f"beta must be a number or a 1-D array, got shape {b.shape}")
    if np.any(b <= 0):
        raise ValueError(f"beta must be > 0, got minimum {float(b.min()):.3g}")
    return b


def _moments(A: Any, S: Any, sigma_x: Any) -> tuple[NDArray[np.float64], ...]:
    """The checked ``(A, S, sigma_x)`` and the code covariance, symmetrised against round-off."""
    A, S, sigma_x = _check_channel(A, S, sigma_x)
    sigma_z = A @ sigma_x @ A.T + S
    return A, S, sigma_x, 0.5 * (sigma_z + sigma_z.T)


def _logdet(c: NDArray[np.float64]) -> float:
    """log det of a symmetric positive definite matrix, from its Cholesky factor."""
    return float(2.0 * np.log(np.diag(np.linalg.cholesky(c))).sum())


def _prior(prior_mean: Any, prior_cov: Any, k: int
           ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The prior's mean and covariance; standard normal when both are ``None``."""
    m = np.zeros(k) if prior_mean is None else as_array(prior_mean, "prior_mean", shape=(k,))
    c = np.eye(k) if prior_cov is None else _check_cov(prior_cov, "prior_cov", k)
    return m, c


def _distortion(A: NDArray[np.float64], sigma_x: NDArray[np.float64],
                sigma_z: NDArray[np.float64]) -> float:
    """The distortion from checked inputs (see :func:`linear_gaussian_distortion`)."""
    cross = A @ sigma_x                                           # Cov[z, x], shape (k, d)
    return float(np.trace(sigma_x) - np.trace(cross.T @ np.linalg.solve(sigma_z, cross)))


# --- Gaussian KL divergences -----------------------------------------------------------------

def gaussian_kl(mu_p: Any, cov_p: Any, mu_q: Any, cov_q: Any) -> NDArray[np.float64]:
    r"""KL divergence between two multivariate normals, for a batch of means.

    .. math::

       \mathrm{KL}\bigl(\mathcal N(\mu_p, C_p) \,\|\, \mathcal N(\mu_q, C_q)\bigr) = \frac12\Bigl[
       \operatorname{tr}(C_q^{-1} C_p) + (\mu_q - \mu_p)^\top C_q^{-1} (\mu_q - \mu_p) - k
       + \log\det C_q - \log\det C_p\Bigr].

    Args:
        mu_p: mean(s) of the first normal, shape ``(..., k)``.
        cov_p: its covariance, shape ``(k, k)``, symmetric positive definite.
        mu_q: mean(s) of the second normal, shape ``(..., k)``, broadcastable against ``mu_p``.
        cov_q: its covariance, shape ``(k, k)``, symmetric positive definite.

    Returns:
        The divergence in nats, an array with the broadcast batch shape of the means (``()``
        for two single means).

    Raises:
        ValueError: if a covariance is not square, symmetric and positive definite, if the means'
            last axis is not ``k`` or their batch shapes do not broadcast, or on NaN or infinity.
        TypeError: if an argument is not numeric.

    Used in: :doc:`/book/diffusion/vae-information-bottleneck`, eq. :eq:`vib-gaussian-kl`.
    """
    cov_p = _check_cov(cov_p, "cov_p")
    k = cov_p.shape[0]
    cov_q = _check_cov(cov_q, "cov_q", k)
    mu_p = as_array(mu_p, "mu_p")
    mu_q = as_array(mu_q, "mu_q")
    for name, mu in (("mu_p", mu_p), ("mu_q", mu_q)):
        if mu.ndim == 0 or mu.shape[-1] != k:
            raise ValueError(f"{name} must have shape (..., {k}), got {mu.shape}")
    try:
        diff = mu_q - mu_p
    except ValueError as err:
        raise ValueError(f"mu_p and mu_q must broadcast, got shapes {mu_p.shape} and "
                         f"{mu_q.shape}") from err
    L_q = np.linalg.cholesky(cov_q)
    w = np.linalg.solve(L_q, diff.reshape(-1, k).T)              # L_q^{-1} (mu_q - mu_p)
    mahalanobis = (w**2).sum(axis=0).reshape(diff.shape[:-1])
    trace = float(np.trace(np.linalg.solve(cov_q, cov_p)))
    return 0.5 * (trace + mahalanobis - k + _logdet(cov_q) - _logdet(cov_p))


def gaussian_kl_standard(mu: Any, logvar: Any) -> NDArray[np.float64] | torch.Tensor:
    r"""KL divergence of a diagonal normal from the standard normal: the VAE and VIB penalty.

    With :math:`\ell_i = \log\sigma_i^2`,

    .. math::

       \mathrm{KL}\bigl(\mathcal N(\mu, \operatorname{diag}\sigma^2) \,\|\, \mathcal N(0, I)\bigr)
       = \frac12 \sum_{i=1}^k \bigl(\mu_i^2 + e^{\ell_i} - \ell_i - 1\bigr).

    Given torch tensors it computes in torch and keeps the autograd graph (the gradients are
    :math:`\mu_i` and :math:`\tfrac12(e^{\ell_i} - 1)`); otherwise in NumPy float64.

    Args:
        mu: means, shape ``(..., k)``.
        logvar: log-variances :math:`\ell`, the same shape as ``mu``.

    Returns:
        The divergence in nats, shape ``(...)`` (summed over the last axis); a tensor if either
        input is a tensor.

    Raises:
        ValueError: if the shapes differ, the input is 0-D, or holds NaN or infinity.
        TypeError: if an argument is not numeric.

    Used in: :doc:`/book/diffusion/vae-information-bottleneck`, eq. :eq:`vib-kl-diagonal`.
    """
    if is_tensor(mu) or is_tensor(logvar):
        import torch

        mu_t = as_tensor(mu, "mu")
        lv_t = as_tensor(logvar, "logvar")
        if mu_t.ndim == 0 or mu_t.shape != lv_t.shape:
            raise ValueError(f"mu and logvar must have the same shape (..., k), got "
                             f"{tuple(mu_t.shape)} and {tuple(lv_t.shape)}")
        return 0.5 * (mu_t**2 + torch.exp(lv_t) - lv_t - 1).sum(dim=-1)
    mu_a = as_array(mu, "mu")
    lv_a = as_array(logvar, "logvar")
    if mu_a.ndim == 0 or mu_a.shape != lv_a.shape:
        raise ValueError(f"mu and logvar must have the same shape (..., k), got {mu_a.shape} "
                         f"and {lv_a.shape}")
    return 0.5 * (mu_a**2 + np.expm1(lv_a) - lv_a).sum(axis=-1)


# --- the linear-Gaussian channel -------------------------------------------------------------

def linear_gaussian_marginal(A: Any, S: Any, sigma_x: Any) -> NDArray[np.float64]:
    r"""Covariance of the aggregate code distribution :math:`p(z) = \mathcal N(0, \Sigma_z)`.

    .. math::

       \Sigma_z = A \Sigma_x A^\top + S .

    Args:
        A: encoder matrix, shape ``(k, d)``.
        S: encoder noise covariance, shape ``(k, k)``, symmetric positive definite.
        sigma_x: data covariance, shape ``(d, d)``, symmetric positive definite.

    Returns:
        :math:`\Sigma_z`, shape ``(k, k)``.

    Raises:
        ValueError: if a shape does not match, a covariance is not symmetric positive definite,
            or an input holds NaN or infinity.
        TypeError: if an argument is not numeric.

    Used in: :doc:`/book/diffusion/vae-information-bottleneck`, eq. :eq:`vib-linear-mi`.
    """
    return _moments(A, S, sigma_x)[3]


def linear_gaussian_mi(A: Any, S: Any, sigma_x: Any) -> float:
    r"""Mutual information between the data and the code of a linear-Gaussian encoder.

    .. math::

       I(X; Z) = h(Z) - h(Z \mid X) = \frac12 \log\det \Sigma_z - \frac12 \log\det S
       = \frac12 \log\det\bigl(I + S^{-1} A \Sigma_x A^\top\bigr).

    Args:
        A: encoder matrix, shape ``(k, d)``.
        S: encoder noise covariance, shape ``(k, k)``.
        sigma_x: data covariance, shape ``(d, d)``.

    Returns:
        :math:`I(X; Z)` in nats.

    Raises:
        ValueError: as :func:`linear_gaussian_marginal`.
        TypeError: as :func:`linear_gaussian_marginal`.

    Used in: :doc:`/book/diffusion/vae-information-bottleneck`, eq. :eq:`vib-linear-mi`.
    """
    _, S, _, sigma_z = _moments(A, S, sigma_x)
    return 0.5 * (_logdet(sigma_z) - _logdet(S))


def linear_gaussian_rate(A: Any, S: Any, sigma_x: Any, prior_mean: Any = None,
                         prior_cov: Any = None) -> float:
    r"""The rate: average KL divergence of the encoder from the prior :math:`q = \mathcal N(m, C)`.

    .. math::

       R_q = \mathbb E_x\, \mathrm{KL}\bigl(\mathcal N(Ax, S) \,\|\, \mathcal N(m, C)\bigr)
       = \frac12\Bigl[\operatorname{tr}\bigl(C^{-1}\Sigma_z\bigr) + m^\top C^{-1} m - k
       + \log\det C - \log\det S\Bigr],

    because :math:`\mathbb E_x (Ax - m)^\top C^{-1} (Ax - m) = \operatorname{tr}(C^{-1} A\Sigma_x
    A^\top) + m^\top C^{-1} m`. For the standard normal prior (the default) it is
    :math:`\tfrac12[\operatorname{tr}\Sigma_z - k - \log\det S]`.

    Args:
        A: encoder matrix, shape ``(k, d)``.
        S: encoder noise covariance, shape ``(k, k)``.
        sigma_x: data covariance, shape ``(d, d)``.
        prior_mean: :math:`m`, shape ``(k,)``; zero if ``None``.
        prior_cov: :math:`C`, shape ``(k, k)``; the identity if ``None``.

    Returns:
        :math:`R_q` in nats.

    Raises:
        ValueError: as :func:`linear_gaussian_marginal`, and for a prior of the wrong shape or a
            ``prior_cov`` that is not symmetric positive definite.
        TypeError: if an argument is not numeric.

    Used in: :doc:`/book/diffusion/vae-information-bottleneck`, eq. :eq:`vib-linear-rate`.
    """
    _, S, _, sigma_z = _moments(A, S, sigma_x)
    return _rate(S, sigma_z, prior_mean, prior_cov)


def _rate(S: NDArray[np.float64], sigma_z: NDArray[np.float64], prior_mean: Any,
          prior_cov: Any) -> float:
    """The rate from checked ``S`` and ``sigma_z`` (see :func:`linear_gaussian_rate`)."""
    k = sigma_z.shape[0]
    m, c = _prior(prior_mean, prior_cov, k)
    trace = float(np.trace(np.linalg.solve(c, sigma_z)))
    quad = float(m @ np.linalg.solve(c, m))
    return 0.5 * (trace + quad - k + _logdet(c) - _logdet(S))


def linear_gaussian_gap(A: Any, S: Any, sigma_x: Any, prior_mean: Any = None,
                        prior_cov: Any = None) -> float:
    r"""The gap of the bound: KL divergence of the aggregate code distribution from the prior.

    .. math::

       R_q - I(X; Z) = \mathrm{KL}\bigl(\mathcal N(0, \Sigma_z) \,\|\, \mathcal N(m, C)\bigr)
       = \frac12\Bigl[\operatorname{tr}\bigl(C^{-1}\Sigma_z\bigr) + m^\top C^{-1} m - k
       + \log\det C - \log\det \Sigma_z\Bigr] \;\ge\; 0,

    zero if and only if :math:`m = 0` and :math:`C = \Sigma_z`.

    Args:
        A: encoder matrix, shape ``(k, d)``.
        S: encoder noise covariance, shape ``(k, k)``.
        sigma_x: data covariance, shape ``(d, d)``.
        prior_mean: :math:`m`, shape ``(k,)``; zero if ``None``.
        prior_cov: :math:`C`, shape ``(k, k)``; the identity if ``None``.

    Returns:
        The gap in nats.

    Raises:
        ValueError: as :func:`linear_gaussian_rate`.
        TypeError: as :func:`linear_gaussian_rate`.

    Used in: :doc:`/book/diffusion/vae-information-bottleneck`, eq. :eq:`vib-linear-gap`.
    """
    sigma_z = _moments(A, S, sigma_x)[3]
    m, c = _prior(prior_mean, prior_cov, sigma_z.shape[0])
    return float(gaussian_kl(np.zeros_like(m), sigma_z, m, c))


def linear_gaussian_distortion(A: Any, S: Any, sigma_x: Any) -> float:
    r"""Mean squared error of the best decoder :math:`\hat x(z) = \mathbb E[x \mid z]`.

    .. math::

       D = \mathbb E\,\|x - \mathbb E[x \mid z]\|^2
       = \operatorname{tr}\bigl(\Sigma_x - \Sigma_x A^\top \Sigma_z^{-1} A \Sigma_x\bigr),

    the trace of the posterior covariance :math:`\operatorname{Cov}[x \mid z]`; the decoder is
    :math:`\mathbb E[x \mid z] = \Sigma_x A^\top \Sigma_z^{-1} z`.

    Args:
        A: encoder matrix, shape ``(k, d)``.
        S: encoder noise covariance, shape ``(k, k)``.
        sigma_x: data covariance, shape ``(d, d)``.

    Returns:
        :math:`D`, in squared data units.

    Raises:
        ValueError: as :func:`linear_gaussian_marginal`.
        TypeError: as :func:`linear_gaussian_marginal`.

    Used in: :doc:`/book/diffusion/vae-information-bottleneck`, eq. :eq:`vib-linear-distortion`.
    """
    A, _, sigma_x, sigma_z = _moments(A, S, sigma_x)
    return _distortion(A, sigma_x, sigma_z)


def linear_vib_loss(A: Any, S: Any, sigma_x: Any, beta: float) -> float:
    r"""The bottleneck objective of a linear-Gaussian encoder: distortion plus beta times rate.

    .. math::

       \mathcal L_\beta(A, S) = D(A, S) + \beta\, R(A, S), \qquad
       R = \mathbb E_x\, \mathrm{KL}\bigl(\mathcal N(Ax, S) \,\|\, \mathcal N(0, I)\bigr),

    the VAE loss with a Gaussian decoder of fixed variance :math:`\beta/2`, up to a constant, or
    the VIB loss with :math:`y = x`.

    Args:
        A: encoder matrix, shape ``(k, d)``.
        S: encoder noise covariance, shape ``(k, k)``.
        sigma_x: data covariance, shape ``(d, d)``.
        beta: weight of the rate, a positive number (squared data units per nat).

    Returns:
        :math:`\mathcal L_\beta`.

    Raises:
        ValueError: as :func:`linear_gaussian_marginal`, or if ``beta`` is not a positive number.
        TypeError: if an argument is not numeric.

    Used in: :doc:`/book/diffusion/vae-information-bottleneck`, eq. :eq:`vib-linear-loss`.
    """
    b = _check_beta(beta)
    if b.ndim != 0:
        raise ValueError(f"beta must be a single positive number, got shape {b.shape}")
    A, S, sigma_x, sigma_z = _moments(A, S, sigma_x)             # checked once for both terms
    return _distortion(A, sigma_x, sigma_z) + float(b) * _rate(S, sigma_z, None, None)


# --- samples and the pointwise information ---------------------------------------------------

def sample_linear_gaussian(A: Any, S: Any, sigma_x: Any, n: int, rng: np.random.Generator
                           ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Draw data and codes: :math:`x \sim \mathcal N(0, \Sigma_x)`, :math:`z = Ax + \nu`,
    :math:`\nu \sim \mathcal N(0, S)`.

    Both are drawn through Cholesky factors, :math:`x = L_x \varepsilon_1`,
    :math:`\nu = L_S \varepsilon_2`, from ``rng.standard_normal``.

    Args:
        A: encoder matrix, shape ``(k, d)``.
        S: encoder noise covariance, shape ``(k, k)``.
        sigma_x: data covariance, shape ``(d, d)``.
        n: number of pairs, a positive integer.
        rng: a ``numpy.random.Generator``, the only source of randomness.

    Returns:
        ``(x, z)``, shapes ``(n, d)`` and ``(n, k)``.

    Raises:
        ValueError: as :func:`linear_gaussian_marginal`, or if ``n < 1``.
        TypeError: if ``n`` is not an integer or ``rng`` is not a ``numpy.random.Generator``.

    Used in: :doc:`/book/diffusion/vae-information-bottleneck`.
    """
    A, S, sigma_x = _check_channel(A, S, sigma_x)
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise TypeError(f"n must be an integer, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    k, d = A.shape
    x = rng.standard_normal((int(n), d)) @ np.linalg.cholesky(sigma_x).T
    z = x @ A.T + rng.standard_normal((int(n), k)) @ np.linalg.cholesky(S).T
    return x, z


def _gaussian_logpdf(u: NDArray[np.float64], c: NDArray[np.float64]) -> NDArray[np.float64]:
    """log N(u; 0, c) for the rows of u."""
    k = c.shape[0]
    w = np.linalg.solve(np.linalg.cholesky(c), u.T)
    return -0.5 * ((w**2).sum(axis=0) + k * np.log(2 * np.pi) + _logdet(c))


def information_density(x: Any, z: Any, A: Any, S: Any, sigma_x: Any) -> NDArray[np.float64]:
    r"""Pointwise information of each pair: its mean over the joint distribution is :math:`I(X;Z)`.

    .. math::

       i(x, z) = \log\frac{p(z \mid x)}{p(z)} = \log\mathcal N(z; Ax, S) - \log\mathcal N(z; 0,
       \Sigma_z), \qquad \mathbb E_{p(x, z)}\, i(x, z) = I(X; Z).

    Args:
        x: data, shape ``(n, d)``.
        z: codes, shape ``(n, k)``.
        A: encoder matrix, shape ``(k, d)``.
        S: encoder noise covariance, shape ``(k, k)``.
        sigma_x: data covariance, shape ``(d, d)``.

    Returns:
        :math:`i(x_j, z_j)` in nats, shape ``(n,)``.

    Raises:
        ValueError: as :func:`linear_gaussian_marginal`, or if ``x`` or ``z`` has the wrong shape.
        TypeError: if an argument is not numeric.

    Used in: :doc:`/book/diffusion/vae-information-bottleneck`, eq. :eq:`vib-linear-mi`.
    """
    A, S, _, sigma_z = _moments(A, S, sigma_x)
    k, d = A.shape
    x = as_array(x, "x", shape=(None, d))
    z = as_array(z, "z", shape=(x.shape[0], k))
    return _gaussian_logpdf(z - x @ A.T, S) - _gaussian_logpdf(z, sigma_z)


# --- the optimal encoder ---------------------------------------------------------------------

def water_filling(eigenvalues: Any, beta: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Rate and distortion of the optimal encoder, per principal direction (reverse water-filling).

    Minimising :math:`D + \beta R` over all encoders of a Gaussian source with covariance
    eigenvalues :math:`\lambda_i` gives

    .. math::

       D_i = \min(\lambda_i, \beta/2), \qquad
       R_i = \max\Bigl(\tfrac12 \log\frac{2\lambda_i}{\beta},\, 0\Bigr),

    so direction :math:`i` is forgotten (:math:`R_i = 0`) once :math:`\beta \ge 2\lambda_i`.

    Args:
        eigenvalues: :math:`\lambda`, shape ``(d,)``, positive.
        beta: a positive number, or a 1-D array of them, shape ``(m,)``.

    Returns:
        ``(rate, distortion)``, each of shape ``(d,)`` for a scalar ``beta`` or ``(m, d)``.

    Raises:
        ValueError: if ``eigenvalues`` is not 1-D, empty or not positive, or ``beta`` is not
            positive or has more than one axis.
        TypeError: if an argument is not numeric.

    Used in: :doc:`/book/diffusion/vae-information-bottleneck`, eq. :eq:`vib-water-filling`.
    """
    lam = as_array(eigenvalues, "eigenvalues", ndim=1)
    if lam.shape[0] == 0 or np.any(lam <= 0):
        raise ValueError("eigenvalues must be a non-empty 1-D array of positive numbers")
    half_beta = 0.5 * _check_beta(beta)[..., None]
    rate = 0.5 * np.log(np.maximum(lam / half_beta, 1.0))
    distortion = np.minimum(lam, half_beta)
    return rate, distortion


def optimal_linear_encoder(sigma_x: Any, beta: float
                           ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""The linear encoder that minimises :math:`D + \beta R` for the standard normal prior.

    With :math:`\Sigma_x = U \operatorname{diag}(\lambda) U^\top` (eigenvalues in descending
    order) and :math:`r_i = \max(1 - \beta/(2\lambda_i), 0)`,

    .. math::

       A = \operatorname{diag}\Bigl(\sqrt{r_i / \lambda_i}\Bigr) U^\top, \qquad
       S = \operatorname{diag}\bigl(1 - r_i\bigr),

    so each code coordinate has unit variance, :math:`\Sigma_z = I`: the aggregate code
    distribution *is* the prior and the bound is tight. Any orthogonal :math:`Q` gives another
    optimum :math:`(QA, QSQ^\top)`; this function returns the one aligned with the principal axes.

    Args:
        sigma_x: data covariance, shape ``(d, d)``, symmetric positive definite.
        beta: weight of the rate, a positive number.

    Returns:
        ``(A, S)``, shapes ``(d, d)`` and ``(d, d)``; row :math:`i` of ``A`` encodes the
        :math:`i`-th principal direction and is zero once it is forgotten.

    Raises:
        ValueError: if ``sigma_x`` is not symmetric positive definite or ``beta`` is not a
            positive number.
        TypeError: if an argument is not numeric.

    Used in: :doc:`/book/diffusion/vae-information-bottleneck`, eq. :eq:`vib-optimal-encoder`.
    """
    sigma_x = _check_cov(sigma_x, "sigma_x")
    b = _check_beta(beta)
    if b.ndim != 0:
        raise ValueError(f"beta must be a single positive number, got shape {b.shape}")
    lam, U = np.linalg.eigh(sigma_x)
    lam, U = lam[::-1], U[:, ::-1]
    U = U * np.where(U[np.abs(U).argmax(axis=0), np.arange(U.shape[1])] < 0, -1.0, 1.0)
    r = np.maximum(1.0 - float(b) / (2.0 * lam), 0.0)
    return np.sqrt(r / lam)[:, None] * U.T, np.diag(1.0 - r)
