r"""Density estimation with a latent-variable model: importance sampling, with PPCA as ground truth.

A VAE defines the density of a sample :math:`x` as a continuous mixture,

.. math::

   p_\theta(x) &= \int p_\theta(x \mid z)\, p(z)\, dz
   = \mathbb E_{z \sim r(z \mid x)}\bigl[w(z)\bigr], \\
   w(z) &= \frac{p_\theta(x \mid z)\, p(z)}{r(z \mid x)},

for any proposal :math:`r(z\mid x)` (the encoder) that covers the posterior. (The book page writes
:math:`q(z\mid x)` for the proposal; here it is :math:`r`, which keeps :math:`q` free for the latent
dimension.) The estimate
:math:`\log \frac1K \sum_k w(z_k)` is the IWAE objective; at :math:`K = 1` its mean is the ELBO.

To see how good the estimate is, one needs a model whose density is known exactly. Probabilistic
PCA (Tipping and Bishop, 1999) is the linear-Gaussian VAE:

.. math::

   z \sim \mathcal N(0, I_q), \qquad x \mid z \sim \mathcal N(W z + \mu,\ \sigma^2 I_d),

   x \sim \mathcal N(\mu,\ W W^\top + \sigma^2 I_d).

Its marginal, its posterior and its maximum-likelihood fit are all in closed form. The module
reads in that order: the PPCA model, its fit, marginal and posterior; then Gaussian proposals and
the importance-sampling estimate; then the closed forms that predict how good the estimate is: the
ELBO gap (a KL divergence), the second moment of the weights, and the resulting bias and spread of
the estimate for large :math:`K`.

All arrays are float64 NumPy; torch tensors are accepted as input. Shapes: ``N`` samples of
dimension ``d``, latent dimension ``q``, ``K`` importance samples per data point.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import solve_triangular
from scipy.special import logsumexp

from kexue_notes._validate import as_array, check_count

__all__ = [  # noqa: RUF022 -- in the order of the derivation, as the module reads
    "PPCA",
    "ppca_fit",
    "ppca_covariance",
    "ppca_log_marginal",
    "ppca_posterior",
    "ppca_log_joint",
    "ppca_expected_log_lik",
    "gaussian_log_density",
    "sample_gaussian",
    "importance_log_likelihood",
    "gaussian_kl",
    "weight_log_second_moment",
    "iwae_asymptotics",
]

_LOG_2PI = float(np.log(2 * np.pi))


# --- checks shared by the functions below ----------------------------------------------------

def _check_model(model: Any) -> PPCA:
    if not isinstance(model, PPCA):
        raise TypeError(f"model must be a PPCA (see ppca_fit), got {type(model).__name__}")
    mean = as_array(model.mean, "model.mean", ndim=1)
    W = as_array(model.W, "model.W", ndim=2, shape=(mean.shape[0], None))
    sigma2 = as_array(model.sigma2, "model.sigma2", ndim=0)
    if not sigma2 > 0:
        raise ValueError(f"model.sigma2 must be > 0, got {float(sigma2)}")
    return PPCA(mean, W, float(sigma2))


def _check_data(x: Any, d: int) -> NDArray[np.float64]:
    return as_array(x, "x", ndim=2, shape=(None, d))


def _cholesky(cov: Any, name: str, q: int | None = None) -> tuple[NDArray[np.float64],
                                                                  NDArray[np.float64]]:
    """``cov`` as a symmetric positive definite ``(q, q)`` array, and its Cholesky factor."""
    cov = as_array(cov, name, ndim=2, shape=None if q is None else (q, q))
    if cov.shape[0] != cov.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {cov.shape}")
    if not np.allclose(cov, cov.T, rtol=1e-10, atol=1e-12 * np.abs(cov).max()):
        raise ValueError(f"{name} must be symmetric")
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError as err:
        raise ValueError(f"{name} must be positive definite") from err
    return cov, chol


def _check_means(mean: Any, name: str, q: int) -> NDArray[np.float64]:
    return as_array(mean, name, ndim=2, shape=(None, q))


def _check_rng(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _logdet_from_cholesky(chol: NDArray[Any]) -> float:
    return float(2 * np.sum(np.log(np.diag(chol))))


# --- the linear-Gaussian model: PPCA ---------------------------------------------------------

class PPCA(NamedTuple):
    r"""A probabilistic-PCA model :math:`x = W z + \mu + \sigma\varepsilon`, with
    :math:`z \sim \mathcal N(0, I_q)` and :math:`\varepsilon \sim \mathcal N(0, I_d)`.

    ``mean`` :math:`\mu`, shape ``(d,)``; ``W``, shape ``(d, q)``; ``sigma2``
    :math:`\sigma^2 > 0`, a float. Fit one with :func:`ppca_fit`.

    Used in: :doc:`/book/diffusion/vae-density-estimation`, eq. :eq:`ppca-ml`.
    """

    mean: NDArray[np.float64]
    W: NDArray[np.float64]
    sigma2: float


def ppca_fit(x: Any, q: int, ddof: int = 0) -> PPCA:
    r"""Maximum-likelihood PPCA in closed form (Tipping and Bishop, 1999).

    With :math:`S = \frac{1}{N - \mathrm{ddof}}\sum_i (x_i - \bar x)(x_i - \bar x)^\top
    = U \Lambda U^\top`, eigenvalues :math:`\lambda_1 \ge \dots \ge \lambda_d`,

    .. math::

       \mu = \bar x, \qquad
       \sigma^2 = \frac{1}{d - q}\sum_{j = q+1}^{d} \lambda_j, \qquad
       W = U_q\,(\Lambda_q - \sigma^2 I_q)^{1/2} .

    ``ddof=0`` is the maximum-likelihood fit. ``ddof=1`` rescales :math:`S`, hence
    :math:`\sigma^2` and :math:`WW^\top`, by :math:`N/(N-1)`; this is the model that
    ``sklearn.decomposition.PCA`` scores when :math:`N \ge d`. Of the rotations :math:`W R` with
    the same likelihood this returns :math:`R = I`, with the largest entry of each column positive.

    Args:
        x: data, shape ``(N, d)``, one sample per row, ``N >= 2``.
        q: latent dimension, ``1 <= q <= d - 1``.
        ddof: 0 (maximum likelihood) or 1 (unbiased covariance, as scikit-learn).

    Returns:
        The fitted :class:`PPCA`.

    Raises:
        TypeError: if ``q`` or ``ddof`` is not an integer or ``x`` is not numeric.
        ValueError: if ``x`` is not 2-D, holds NaN, has fewer than 2 rows; if ``q`` is out of
            range; if ``ddof`` is not 0 or 1; if the discarded eigenvalues are all zero
            (:math:`\sigma^2 = 0`: the data lie in a ``q``-dimensional subspace).

    Used in: :doc:`/book/diffusion/vae-density-estimation`, eq. :eq:`ppca-ml`.
    """
    x = as_array(x, "x", ndim=2)
    n, d = x.shape
    if n < 2:
        raise ValueError(f"x must have at least 2 rows (samples), got {n}")
    if d < 2:
        raise ValueError(f"x must have at least 2 columns (features), got {d}")
    q = check_count(q, "q", 1)
    if q > d - 1:
        raise ValueError(f"q must lie in [1, {d - 1}] (at most d - 1), got {q}")
    ddof = check_count(ddof, "ddof", 0)
    if ddof > 1:
        raise ValueError(f"ddof must be 0 or 1, got {ddof}")
    mean = x.mean(axis=0)
    c = x - mean
    lam, U = np.linalg.eigh(c.T @ c / (n - ddof))
    lam, U = np.clip(lam[::-1], 0.0, None), U[:, ::-1]
    sigma2 = float(lam[q:].mean())
    if not sigma2 > 0:
        raise ValueError(f"x spans only {q} dimensions or fewer: the noise variance of a q={q} "
                         "fit is 0; choose a smaller q")
    Uq = U[:, :q] * np.sign(U[np.argmax(np.abs(U[:, :q]), axis=0), np.arange(q)])
    W = Uq * np.sqrt(lam[:q] - sigma2)
    return PPCA(mean, W, sigma2)


def ppca_covariance(model: PPCA) -> NDArray[np.float64]:
    r"""Covariance of the PPCA marginal, :math:`C = W W^\top + \sigma^2 I_d`.

    Args:
        model: a :class:`PPCA` with ``W`` of shape ``(d, q)``.

    Returns:
        :math:`C`, shape ``(d, d)``.

    Raises:
        TypeError: if ``model`` is not a :class:`PPCA`.
        ValueError: if its fields have inconsistent shapes or ``sigma2 <= 0``.

    Used in: :doc:`/book/diffusion/vae-density-estimation`, eq. :eq:`ppca-marginal`.
    """
    mean, W, sigma2 = _check_model(model)
    return W @ W.T + sigma2 * np.eye(mean.shape[0])


def ppca_log_marginal(x: Any, model: PPCA) -> NDArray[np.float64]:
    r"""Exact log-density of PPCA, :math:`\log p(x) = \log \mathcal N(x;\ \mu,\ WW^\top +
    \sigma^2 I_d)`.

    Computed in the latent dimension with :math:`M = W^\top W + \sigma^2 I_q`, the determinant
    lemma and the Woodbury identity:

    .. math::

       \log\lvert C\rvert = (d - q)\log\sigma^2 + \log\lvert M\rvert,

       C^{-1} = \sigma^{-2}\bigl(I_d - W M^{-1} W^\top\bigr).

    Args:
        x: samples, shape ``(N, d)``.
        model: a :class:`PPCA`.

    Returns:
        :math:`\log p(x_i)` for each row, shape ``(N,)``.

    Raises:
        TypeError: if ``model`` is not a :class:`PPCA` or ``x`` is not numeric.
        ValueError: if ``x`` is not ``(N, d)`` or holds NaN; if the model is inconsistent.

    Used in: :doc:`/book/diffusion/vae-density-estimation`, eq. :eq:`ppca-marginal`.
    """
    mean, W, sigma2 = _check_model(model)
    d, q = W.shape
    c = _check_data(x, d) - mean
    M = W.T @ W + sigma2 * np.eye(q)
    chol = np.linalg.cholesky(M)
    proj = np.linalg.solve(chol, (c @ W).T)              # L^{-1} W^T c, shape (q, N)
    quad = (np.sum(c * c, axis=1) - np.sum(proj * proj, axis=0)) / sigma2
    logdet = (d - q) * np.log(sigma2) + _logdet_from_cholesky(chol)
    return -0.5 * (d * _LOG_2PI + logdet + quad)


def ppca_posterior(x: Any, model: PPCA) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Exact posterior of the latent variable, :math:`p(z \mid x) = \mathcal N(m(x), \Sigma)`.

    .. math::

       m(x) = M^{-1} W^\top (x - \mu), \qquad \Sigma = \sigma^2 M^{-1},

       M = W^\top W + \sigma^2 I_q .

    The covariance does not depend on :math:`x`.

    Args:
        x: samples, shape ``(N, d)``.
        model: a :class:`PPCA`.

    Returns:
        A pair ``(m, Sigma)``: posterior means, shape ``(N, q)``, and the shared covariance,
        shape ``(q, q)``.

    Raises:
        TypeError: if ``model`` is not a :class:`PPCA` or ``x`` is not numeric.
        ValueError: if ``x`` is not ``(N, d)`` or holds NaN; if the model is inconsistent.

    Used in: :doc:`/book/diffusion/vae-density-estimation`, eq. :eq:`ppca-posterior`.
    """
    mean, W, sigma2 = _check_model(model)
    d, q = W.shape
    c = _check_data(x, d) - mean
    M = W.T @ W + sigma2 * np.eye(q)
    m = np.asarray(np.linalg.solve(M, W.T @ c.T).T, dtype=np.float64)
    cov = sigma2 * np.linalg.inv(M)
    return m, (cov + cov.T) / 2


def ppca_log_joint(x: Any, z: Any, model: PPCA) -> NDArray[np.float64]:
    r"""Log of the joint density, :math:`\log p(x \mid z) + \log p(z)`, the numerator of the
    importance weight.

    .. math::

       \log p(x \mid z) + \log p(z) &= -\frac{\lVert x - Wz - \mu\rVert^2}{2\sigma^2}
       - \frac d2 \log(2\pi\sigma^2) \\
       &\quad - \frac{\lVert z\rVert^2}{2} - \frac q2 \log(2\pi) .

    This is what a VAE computes from its decoder: it does not use the posterior. The square is
    expanded as :math:`\lVert c\rVert^2 - 2 z^\top W^\top c + z^\top W^\top W z` with
    :math:`c = x - \mu`: once :math:`W^\top c` is known (:math:`O(dq)` per sample), each latent
    point costs :math:`O(q^2)`.

    Args:
        x: samples, shape ``(N, d)``.
        z: latent points, shape ``(N, K, q)``: ``K`` of them for each sample.
        model: a :class:`PPCA`.

    Returns:
        The log joint density, shape ``(N, K)``.

    Raises:
        TypeError: if ``model`` is not a :class:`PPCA` or ``x``, ``z`` are not numeric.
        ValueError: on shapes that do not match, NaN, or an inconsistent model.

    Used in: :doc:`/book/diffusion/vae-density-estimation`, eq. :eq:`vae-importance-identity`.
    """
    mean, W, sigma2 = _check_model(model)
    d, q = W.shape
    x = _check_data(x, d)
    z = as_array(z, "z", ndim=3, shape=(x.shape[0], None, q))
    c = x - mean
    # ||c - W z||^2 expanded, so that the work is O(q^2) per point rather than O(d q)
    sq = np.sum(c**2, axis=1)[:, None] - 2 * np.sum(z * (c @ W)[:, None, :], axis=-1) \
        + np.sum((z.reshape(-1, q) @ (W.T @ W)).reshape(z.shape) * z, axis=-1)
    log_lik = -0.5 * (sq / sigma2 + d * (_LOG_2PI + np.log(sigma2)))
    return log_lik - 0.5 * (np.sum(z**2, axis=-1) + q * _LOG_2PI)


def ppca_expected_log_lik(x: Any, model: PPCA, mean_r: Any, cov_r: Any) -> NDArray[np.float64]:
    r"""Reconstruction term of the ELBO: :math:`\mathbb E_{z \sim \mathcal N(m_r, S_r)}
    [\log p(x \mid z)]` in closed form.

    .. math::

       \mathbb E_r[\log p(x \mid z)] &= -\frac d2 \log(2\pi\sigma^2) \\
       &\quad - \frac{\lVert x - W m_r - \mu\rVert^2 + \operatorname{tr}(W^\top W S_r)}{2\sigma^2} .

    Args:
        x: samples, shape ``(N, d)``.
        model: a :class:`PPCA`.
        mean_r: proposal means, shape ``(N, q)``.
        cov_r: proposal covariance, shape ``(q, q)``, symmetric positive definite.

    Returns:
        The expected log-likelihood, shape ``(N,)``.

    Raises:
        TypeError: if ``model`` is not a :class:`PPCA` or an array is not numeric.
        ValueError: on shapes that do not match, NaN, or a covariance that is not positive
            definite.

    Used in: :doc:`/book/diffusion/vae-density-estimation`, eq. :eq:`vae-elbo-recon-kl`.
    """
    mean, W, sigma2 = _check_model(model)
    d, q = W.shape
    x = _check_data(x, d)
    m = _check_means(mean_r, "mean_r", q)
    if m.shape[0] != x.shape[0]:
        raise ValueError(f"mean_r must have one row per sample ({x.shape[0]}), got {m.shape[0]}")
    S, _ = _cholesky(cov_r, "cov_r", q)
    resid = x - mean - m @ W.T
    sq = np.sum(resid**2, axis=1) + np.trace(W.T @ W @ S)
    return -0.5 * (d * (_LOG_2PI + np.log(sigma2)) + sq / sigma2)


# --- Gaussian proposals and the importance-sampling estimate ---------------------------------

def gaussian_log_density(z: Any, mean: Any, cov: Any) -> NDArray[np.float64]:
    r"""Log-density of :math:`\mathcal N(m_n, S)` at ``K`` points per row :math:`n`.

    .. math::

       \log \mathcal N(z; m, S) = -\tfrac12 (z - m)^\top S^{-1} (z - m)
       - \tfrac12 \log\lvert S\rvert - \tfrac q2 \log(2\pi) .

    Args:
        z: points, shape ``(N, K, q)``.
        mean: one mean per row, shape ``(N, q)``.
        cov: shared covariance, shape ``(q, q)``, symmetric positive definite.

    Returns:
        Log-densities, shape ``(N, K)``.

    Raises:
        TypeError: if an argument is not numeric.
        ValueError: on shapes that do not match, NaN, or a covariance that is not positive
            definite.

    Used in: :doc:`/book/diffusion/vae-density-estimation`, eq. :eq:`vae-importance-identity`.
    """
    S, chol = _cholesky(cov, "cov")
    q = S.shape[0]
    m = _check_means(mean, "mean", q)
    z = as_array(z, "z", ndim=3, shape=(m.shape[0], None, q))
    diff = (z - m[:, None, :]).reshape(-1, q)
    white = solve_triangular(chol, diff.T, lower=True)   # L^{-1}(z - m), shape (q, N*K)
    quad = np.sum(white**2, axis=0).reshape(z.shape[:2])
    return -0.5 * (quad + _logdet_from_cholesky(chol) + q * _LOG_2PI)


def sample_gaussian(mean: Any, cov: Any, K: int, rng: np.random.Generator) -> NDArray[np.float64]:
    r"""``K`` draws from :math:`\mathcal N(m_n, S)` for each row :math:`n`, by
    reparameterisation.

    .. math:: z_{nk} = m_n + L\,\varepsilon_{nk}, \qquad S = L L^\top,\quad
       \varepsilon_{nk} \sim \mathcal N(0, I_q) .

    Args:
        mean: one mean per row, shape ``(N, q)``.
        cov: shared covariance, shape ``(q, q)``, symmetric positive definite.
        K: draws per row, ``K >= 1``.
        rng: the random generator.

    Returns:
        Draws, shape ``(N, K, q)``.

    Raises:
        TypeError: if ``K`` is not an integer or ``rng`` is not a Generator.
        ValueError: if ``K < 1``, on bad shapes, NaN, or a covariance that is not positive
            definite.

    Used in: :doc:`/book/diffusion/vae-density-estimation`, eq. :eq:`vae-importance-identity`.
    """
    S, chol = _cholesky(cov, "cov")
    q = S.shape[0]
    m = _check_means(mean, "mean", q)
    K = check_count(K, "K", 1)
    rng = _check_rng(rng)
    eps = rng.standard_normal((m.shape[0] * K, q))
    return m[:, None, :] + (eps @ chol.T).reshape(m.shape[0], K, q)


def importance_log_likelihood(log_w: Any, running: bool = False) -> NDArray[np.float64]:
    r"""The importance-sampled log-likelihood (the IWAE estimate) from log-weights.

    .. math::

       \log \hat p_K(x) = \log \frac1K \sum_{k=1}^K w_k
       = \operatorname{logsumexp}_k(\log w_k) - \log K .

    Args:
        log_w: log importance weights :math:`\log w_k`, shape ``(N, K)``.
        running: if true, return the estimate from the first :math:`k` weights for every
            :math:`k = 1, \dots, K` (a running log-sum-exp).

    Returns:
        Shape ``(N,)``; with ``running``, shape ``(N, K)``.

    Raises:
        TypeError: if ``log_w`` is not numeric.
        ValueError: if ``log_w`` is not 2-D, is empty along the last axis, or holds NaN or
            infinity.

    Used in: :doc:`/book/diffusion/vae-density-estimation`, eq. :eq:`iwae-estimator`.
    """
    log_w = as_array(log_w, "log_w", ndim=2)
    K = log_w.shape[1]
    if K < 1:
        raise ValueError("log_w must hold at least one weight per row, got shape "
                         f"{log_w.shape}")
    if running:
        return np.logaddexp.accumulate(log_w, axis=1) - np.log(np.arange(1, K + 1))
    return logsumexp(log_w, axis=1) - np.log(K)


# --- what the proposal costs: closed forms ---------------------------------------------------

def gaussian_kl(mean_r: Any, cov_r: Any, mean_p: Any, cov_p: Any) -> NDArray[np.float64]:
    r"""Kullback–Leibler divergence between Gaussians, one per row.

    .. math::

       \mathrm{KL}\bigl(\mathcal N(m_r, S_r)\,\big\|\,\mathcal N(m_p, S_p)\bigr)
       &= \tfrac12\Bigl[\operatorname{tr}(S_p^{-1}S_r) + (m_p - m_r)^\top S_p^{-1}(m_p - m_r) \\
       &\qquad - q + \log\frac{\lvert S_p\rvert}{\lvert S_r\rvert}\Bigr] .

    With :math:`r` the proposal and :math:`p` the exact posterior this is the ELBO gap; with
    :math:`p = \mathcal N(0, I)` it is the KL term of the VAE loss.

    Args:
        mean_r: means of the first Gaussian, shape ``(N, q)``.
        cov_r: its covariance, shape ``(q, q)``.
        mean_p: means of the second Gaussian, shape ``(N, q)``.
        cov_p: its covariance, shape ``(q, q)``. Both covariances symmetric positive definite.

    Returns:
        The divergence for each row, shape ``(N,)``.

    Raises:
        TypeError: if an argument is not numeric.
        ValueError: on shapes that do not match, NaN, or a covariance that is not positive
            definite.

    Used in: :doc:`/book/diffusion/vae-density-estimation`, eq. :eq:`vae-elbo-gap`.
    """
    Sr, Lr = _cholesky(cov_r, "cov_r")
    q = Sr.shape[0]
    _, Lp = _cholesky(cov_p, "cov_p", q)
    mr = _check_means(mean_r, "mean_r", q)
    mp = _check_means(mean_p, "mean_p", q)
    if mr.shape != mp.shape:
        raise ValueError(f"mean_r and mean_p must have the same shape, got {mr.shape} and "
                         f"{mp.shape}")
    white = np.linalg.solve(Lp, (mp - mr).T)
    trace = np.sum(np.linalg.solve(Lp, Lr) ** 2)
    logdet = _logdet_from_cholesky(Lp) - _logdet_from_cholesky(Lr)
    return 0.5 * (trace + np.sum(white**2, axis=0) - q + logdet)


def weight_log_second_moment(mean_p: Any, cov_p: Any, mean_r: Any,
                             cov_r: Any) -> NDArray[np.float64]:
    r"""Log second moment of the normalised importance weight,
    :math:`\log \mathbb E_r[(w/p(x))^2] = \log(1 + \rho)`, for a Gaussian posterior and proposal.

    With posterior :math:`\pi = \mathcal N(a, A)`, proposal :math:`r = \mathcal N(b, B)`,
    :math:`\delta = b - a` and :math:`P = 2A^{-1} - B^{-1}`,

    .. math::

       \log \int \frac{\pi(z)^2}{r(z)}\,dz
       &= \tfrac12\log\lvert B\rvert - \log\lvert A\rvert - \tfrac12\log\lvert P\rvert \\
       &\quad + \tfrac12\,\delta^\top\bigl(B^{-1}P^{-1}B^{-1} + B^{-1}\bigr)\delta ,

    finite if and only if :math:`P` is positive definite; otherwise the weights have infinite
    variance and ``inf`` is returned. :math:`\rho = \chi^2(\pi\,\|\,r)` is the relative variance of
    one weight.

    Args:
        mean_p: posterior means :math:`a`, shape ``(N, q)``.
        cov_p: posterior covariance :math:`A`, shape ``(q, q)``.
        mean_r: proposal means :math:`b`, shape ``(N, q)``.
        cov_r: proposal covariance :math:`B`, shape ``(q, q)``. Both symmetric positive definite.

    Returns:
        :math:`\log(1 + \rho)` for each row, shape ``(N,)``; ``inf`` where it diverges.

    Raises:
        TypeError: if an argument is not numeric.
        ValueError: on shapes that do not match, NaN, or a covariance that is not positive
            definite.

    Used in: :doc:`/book/diffusion/vae-density-estimation`, eq. :eq:`is-weight-second-moment`.
    """
    A, La = _cholesky(cov_p, "cov_p")
    q = A.shape[0]
    B, Lb = _cholesky(cov_r, "cov_r", q)
    a = _check_means(mean_p, "mean_p", q)
    b = _check_means(mean_r, "mean_r", q)
    if a.shape != b.shape:
        raise ValueError(f"mean_p and mean_r must have the same shape, got {a.shape} and "
                         f"{b.shape}")
    A_inv = np.linalg.inv(A)
    B_inv = np.linalg.inv(B)
    P = 2 * A_inv - B_inv
    P = (P + P.T) / 2
    try:
        Lp = np.linalg.cholesky(P)
    except np.linalg.LinAlgError:
        return np.full(a.shape[0], np.inf)
    delta = b - a
    Bd = delta @ B_inv                                   # rows B^{-1} delta (B symmetric)
    white = np.linalg.solve(Lp, Bd.T)                    # L_P^{-1} B^{-1} delta
    quad = np.sum(white**2, axis=0) + np.sum(Bd * delta, axis=1)
    logdet = 0.5 * _logdet_from_cholesky(Lb) - _logdet_from_cholesky(La) \
        - 0.5 * _logdet_from_cholesky(Lp)
    return logdet + 0.5 * quad


def iwae_asymptotics(log_second_moment: Any, K: Any) -> tuple[NDArray[np.float64],
                                                              NDArray[np.float64]]:
    r"""Large-:math:`K` bias and standard deviation of the IWAE estimate :math:`\log\hat p_K`.

    With :math:`\rho = \mathbb E_r[(w/p(x))^2] - 1` finite, the delta method gives

    .. math::

       \mathbb E\log\hat p_K(x) - \log p(x) &= -\frac{\rho}{2K} + O(K^{-2}), \\
       \operatorname{sd}\log\hat p_K(x) &= \sqrt{\rho/K}\,\bigl(1 + O(K^{-1})\bigr) .

    Valid only for :math:`K \gg \rho`; the :math:`O(K^{-2})` remainder also needs a finite third
    moment of the weights (for a proposal whose covariance is :math:`\tau^2` times that of a
    Gaussian posterior: :math:`\tau^2 > 2/3`); without it that rate is not guaranteed.

    Args:
        log_second_moment: :math:`\log(1+\rho) \ge 0`, any shape (e.g. from
            :func:`weight_log_second_moment`); ``inf`` gives ``inf``.
        K: numbers of samples, any shape broadcastable with it, each ``>= 1``.

    Returns:
        A pair ``(bias, sd)`` of arrays, broadcast from the two arguments.

    Raises:
        TypeError: if an argument is not numeric.
        ValueError: if ``log_second_moment`` is negative or NaN, or ``K < 1``.

    Used in: :doc:`/book/diffusion/vae-density-estimation`, eq. :eq:`iwae-asymptotics`.
    """
    if isinstance(log_second_moment, str | bytes) or log_second_moment is None:
        raise TypeError("log_second_moment must be an array of numbers, got "
                        f"{type(log_second_moment).__name__}")
    s = np.asarray(log_second_moment, dtype=np.float64)
    if np.any(np.isnan(s)) or np.any(s < 0):
        raise ValueError("log_second_moment must be >= 0 and not NaN (it is log(1 + rho))")
    k = as_array(K, "K")
    if np.any(k < 1):
        raise ValueError(f"K must be >= 1, got minimum {k.min()}")
    rho = np.expm1(s)
    return -rho / (2 * k), np.sqrt(rho / k)
