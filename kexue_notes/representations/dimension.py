r"""How many dimensions do :math:`N` word vectors need? The entropy argument and its JL cousin.

A skip-gram model gives the pair of words :math:`(w_i, w_j)` the probability
:math:`p_{ij} = e^{\langle u_i, v_j\rangle} / Z`, with
:math:`Z = \sum_{i,j} e^{\langle u_i, v_j\rangle}`. If the :math:`2N` vectors point in uniformly
random directions on the sphere of radius :math:`\sqrt{\beta n}` in :math:`\mathbb{R}^n` (Su's
choice is :math:`\beta = 1`), then :math:`\langle u_i, v_j\rangle = \beta n \cos\theta`, with
:math:`\theta` the angle between two random directions, and replacing the sums by expectations
gives the entropy estimate :math:`H \approx 2\log N + h_n`. The rule "enough dimensions once
:math:`H < 0`" then reads :math:`n > \kappa \log N`,
with :math:`\kappa = 4/\log\varphi \approx 8.31`.

The module follows that chain: the angle density, :math:`h_n` by quadrature and in closed form,
the entropy estimate and the dimension rules, a Monte Carlo entropy of random embeddings, and
finally the Johnson–Lindenstrauss bound and the distortion of a Gaussian random projection, for
comparison.
All logarithms are natural.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import integrate, optimize, special
from scipy.spatial.distance import pdist

from kexue_notes._validate import as_array, check_count, check_positive

__all__ = [
    "angle_density",
    "dimension_coefficient",
    "entropy_approx",
    "gaussian_projection",
    "h_n",
    "h_n_bessel",
    "jl_min_dim",
    "max_distortion",
    "mc_entropy",
    "min_dim",
    "min_dim_exact",
    "row_entropy",
    "sample_sphere",
    "skipgram_entropy",
]


# --- checks shared by the functions below ----------------------------------------------------

def _check_dim(n: Any, name: str = "n") -> NDArray[np.float64]:
    """``n`` as a float array of dimensions, each at least 2."""
    arr = as_array(n, name)
    if np.any(arr < 2):
        raise ValueError(f"{name} must be >= 2 (a dimension of the embedding space), "
                         f"got minimum {arr.min():.3g}")
    return arr


def _check_vocab(N: Any, name: str = "N") -> NDArray[np.float64]:
    """``N`` as a float array of vocabulary sizes, each greater than 1."""
    arr = as_array(N, name)
    if np.any(arr <= 1):
        raise ValueError(f"{name} must be > 1 (a number of vectors), got minimum {arr.min():.3g}")
    return arr


def _check_rng(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _scalar_or_array(arr: NDArray[np.float64]) -> float | NDArray[np.float64]:
    return float(arr) if arr.ndim == 0 else arr


# --- the angle between two random directions -------------------------------------------------

def angle_density(theta: Any, n: float) -> float | NDArray[np.float64]:
    r"""Density of the angle between two independent uniform directions in :math:`\mathbb{R}^n`.

    .. math::

        p_n(\theta) = \frac{\Gamma(n/2)}{\Gamma\big((n-1)/2\big)\sqrt{\pi}}\,\sin^{n-2}\theta,
        \qquad 0 \le \theta \le \pi .

    Args:
        theta: angles in radians, any shape, each in :math:`[0, \pi]`.
        n: dimension, a real number :math:`\ge 2`.

    Returns:
        The density at each angle, with the shape of ``theta`` (a float for a scalar).

    Raises:
        ValueError: if ``theta`` leaves :math:`[0, \pi]` or ``n`` < 2.

    Used in: :doc:`/book/representations/word-embedding-dimension`, eq. :eq:`angle-density`.
    """
    θ = as_array(theta, "theta")
    if np.any((θ < 0) | (θ > np.pi)):
        raise ValueError("theta must lie in [0, pi]")
    n = float(_check_dim(check_positive(n, "n")))
    log_norm = special.gammaln(n / 2) - special.gammaln((n - 1) / 2) - 0.5 * np.log(np.pi)
    return _scalar_or_array(np.exp(log_norm + special.xlogy(n - 2, np.sin(θ))))


# --- h_n: the part of the entropy that does not depend on N ----------------------------------

def _peak_angle(n: float, beta: float) -> float:
    r"""θ at the maximum of (n-2) log sin θ + βn cos θ.

    Its cosine c solves βn c² + (n-2) c - βn = 0. With a = n - 2 and b = βn, the root written as
    1 - c = 2a / (2b + a + sqrt(a² + 4b²)) keeps its precision when n is near 2 and c near 1.
    """
    a, b = n - 2.0, beta * n
    one_minus_c = 2 * a / (2 * b + a + np.sqrt(a**2 + 4 * b**2))
    return float(2 * np.arcsin(np.sqrt(one_minus_c / 2)))


def _h_n_quad(n: float, beta: float) -> float:
    t = beta * n
    θp = _peak_angle(n, beta)

    def log_w(θ: float) -> float:  # log of sin^{n-2} θ e^{t cos θ}, up to a constant
        return float(special.xlogy(n - 2, np.sin(θ)) + t * np.cos(θ))

    m = log_w(θp)  # subtracted inside the exponent: the integrands peak at 1, nothing overflows
    opts: dict[str, Any] = {"epsabs": 1e-14, "epsrel": 1e-12, "limit": 200}
    if θp > 1e-2:  # mark the peak for quad; right next to θ = 0 that hurts more than it helps
        opts["points"] = [θp]
    Z, _ = integrate.quad(lambda θ: np.exp(log_w(θ) - m), 0.0, np.pi, **opts)
    C, _ = integrate.quad(lambda θ: np.cos(θ) * np.exp(log_w(θ) - m), 0.0, np.pi, **opts)
    log_B = 0.5 * np.log(np.pi) + special.gammaln((n - 1) / 2) - special.gammaln(n / 2)
    return float(m + np.log(Z) - log_B - t * C / Z)


def h_n(n: Any, beta: float = 1.0) -> float | NDArray[np.float64]:
    r"""The :math:`N`-free part of the skip-gram entropy, by quadrature in log space.

    With :math:`\theta \sim p_n` (see :func:`angle_density`) and :math:`t = \beta n`,

    .. math::

        h_n = \log \mathbb{E}_\theta\big[e^{t\cos\theta}\big]
              - \frac{\mathbb{E}_\theta\big[t\cos\theta\, e^{t\cos\theta}\big]}
                     {\mathbb{E}_\theta\big[e^{t\cos\theta}\big]} .

    Both expectations are integrals of :math:`\sin^{n-2}\theta\, e^{t\cos\theta}` over
    :math:`[0, \pi]`; ``scipy.integrate.quad`` integrates them after the log of the
    integrand's peak is subtracted in the exponent, so nothing overflows, and the normaliser
    :math:`\int_0^\pi \sin^{n-2}\theta\, d\theta = \sqrt{\pi}\,\Gamma((n-1)/2)/\Gamma(n/2)`
    is exact.
    Su's choice, vectors of norm :math:`\sqrt{n}`, is :math:`\beta = 1`.

    Args:
        n: dimension(s), any shape, each a real number :math:`\ge 2`.
        beta: squared norm of the vectors divided by :math:`n`, :math:`> 0`.

    Returns:
        :math:`h_n` with the shape of ``n`` (a float for a scalar).

    Raises:
        ValueError: if some ``n`` < 2 or ``beta`` <= 0.

    Used in: :doc:`/book/representations/word-embedding-dimension`, eq. :eq:`skipgram-entropy-hn`.
    """
    arr = _check_dim(n)
    β = check_positive(beta, "beta")
    out = np.array([_h_n_quad(float(v), β) for v in arr.ravel()]).reshape(arr.shape)
    return _scalar_or_array(out)


def h_n_bessel(n: Any, beta: float = 1.0) -> float | NDArray[np.float64]:
    r""":math:`h_n` in closed form through modified Bessel functions (an independent route).

    :math:`\cos\theta` is one coordinate of a uniform unit vector, whose moment generating
    function is :math:`\mathbb{E}[e^{t\cos\theta}] = \Gamma(n/2)\,(t/2)^{1-n/2} I_{n/2-1}(t)`;
    its log-derivative is :math:`I_{n/2}(t)/I_{n/2-1}(t)`. Hence, with :math:`\nu = n/2-1` and
    :math:`t = \beta n`,

    .. math::

        h_n = \log\Gamma(n/2) + (1 - n/2)\log(t/2) + \log I_\nu(t)
              - t\,\frac{I_{\nu+1}(t)}{I_\nu(t)} .

    The exponentially scaled ``scipy.special.ive`` keeps it finite for large :math:`n`.

    Args:
        n: dimension(s), any shape, each a real number :math:`\ge 2`.
        beta: squared norm of the vectors divided by :math:`n`, :math:`> 0`.

    Returns:
        :math:`h_n` with the shape of ``n`` (a float for a scalar).

    Raises:
        ValueError: if some ``n`` < 2, ``beta`` <= 0, or :math:`e^{-t} I_\nu(t)` or
            :math:`e^{-t} I_{\nu+1}(t)` underflows (for :math:`\beta = 1` above
            :math:`n \approx 5000`, earlier for small :math:`\beta`).

    Used in: :doc:`/book/representations/word-embedding-dimension`, eq. :eq:`hn-bessel`.
    """
    n = _check_dim(n)
    t = check_positive(beta, "beta") * n
    ν = n / 2 - 1
    ive_ν, ive_ν1 = special.ive(ν, t), special.ive(ν + 1, t)
    if np.any(np.minimum(ive_ν, ive_ν1) < np.finfo(float).tiny):
        raise ValueError("n is too large for the Bessel route: e^{-t} I_nu(t) underflows in "
                         "float64 (for beta = 1 above n of about 5000, sooner for small beta); "
                         "use h_n")
    log_mgf = special.gammaln(n / 2) + (1 - n / 2) * np.log(t / 2) + np.log(ive_ν) + t
    return _scalar_or_array(log_mgf - t * ive_ν1 / ive_ν)


def entropy_approx(N: Any, n: Any, beta: float = 1.0,
                   conditional: bool = False) -> float | NDArray[np.float64]:
    r"""Su's estimate of the entropy of a skip-gram model with :math:`N` random word vectors.

    .. math::

        H \approx 2\log N + h_n \quad\text{(joint, all } N^2 \text{ pairs)},\qquad
        H_{\text{row}} \approx \log N + h_n \quad\text{(one softmax row, as in attention)}.

    Args:
        N: vocabulary size(s) :math:`> 1`; broadcasts against ``n``.
        n: dimension(s) :math:`\ge 2`.
        beta: squared norm of the vectors divided by :math:`n`, :math:`> 0`.
        conditional: ``False`` for the joint distribution over pairs, ``True`` for one row
            :math:`p(w_j \mid w_i)`.

    Returns:
        The estimate in nats, broadcast shape of ``N`` and ``n`` (a float for scalars).

    Raises:
        ValueError: if some ``N`` <= 1, some ``n`` < 2 or ``beta`` <= 0.

    Used in: :doc:`/book/representations/word-embedding-dimension`, eq. :eq:`skipgram-entropy-hn`.
    """
    N = _check_vocab(N)
    pairs = 1.0 if conditional else 2.0
    return _scalar_or_array(np.asarray(pairs * np.log(N) + h_n(n, beta)))


# --- the dimension rules ---------------------------------------------------------------------

def dimension_coefficient(beta: float = 1.0, conditional: bool = False) -> float:
    r"""The constant :math:`\kappa` of the rule :math:`n > \kappa\log N`, from the limit of
    :math:`h_n/n`.

    Laplace's method gives :math:`h_n/n \to \tfrac12\log(1-c^2)`, where
    :math:`c = \cos\theta^*` maximises :math:`\log\sin\theta + \beta\cos\theta`, i.e. solves
    :math:`\beta c^2 + c - \beta = 0`. Setting the entropy estimate to zero gives

    .. math::

        \kappa = \frac{2m}{-\log(1 - c^2)}, \qquad c = \frac{\sqrt{1+4\beta^2}-1}{2\beta},

    with :math:`m = 2` for the joint distribution and :math:`m = 1` for one softmax row. For
    :math:`\beta = 1`, :math:`c = 1/\varphi` and :math:`\kappa = 4/\log\varphi \approx 8.31`.

    Args:
        beta: squared norm of the vectors divided by :math:`n`, :math:`> 0`.
        conditional: ``True`` for the row-wise (attention) form, which halves :math:`\kappa`.

    Returns:
        :math:`\kappa` as a float.

    Raises:
        ValueError: if ``beta`` <= 0.

    Used in: :doc:`/book/representations/word-embedding-dimension`, eq. :eq:`dimension-rule`.
    """
    β = check_positive(beta, "beta")
    c = (np.sqrt(1 + 4 * β**2) - 1) / (2 * β)
    m = 1.0 if conditional else 2.0
    return float(2 * m / -np.log1p(-(c**2)))


def min_dim(N: Any, coef: float | None = None) -> float | NDArray[np.float64]:
    r"""The linear rule for the smallest dimension, :math:`n(N) = \kappa \log N`.

    .. math::

        n(N) = \kappa \log N, \qquad \kappa = 4/\log\varphi \approx 8.3123 \text{ by default.}

    Args:
        N: vocabulary size(s) :math:`> 1`, any shape.
        coef: the constant :math:`\kappa > 0`; ``None`` means :func:`dimension_coefficient` ``()``.
            Su's rounded value is 8.33.

    Returns:
        :math:`n(N)` as real numbers, shape of ``N`` (a float for a scalar).

    Raises:
        ValueError: if some ``N`` <= 1 or ``coef`` <= 0.

    Used in: :doc:`/book/representations/word-embedding-dimension`, eq. :eq:`dimension-rule`.
    """
    N = _check_vocab(N)
    κ = dimension_coefficient() if coef is None else check_positive(coef, "coef")
    return _scalar_or_array(κ * np.log(N))


def min_dim_exact(N: Any, beta: float = 1.0,
                  conditional: bool = False) -> float | NDArray[np.float64]:
    r"""The dimension where the entropy estimate crosses zero, without the large-:math:`n` limit.

    Solves :math:`m\log N + h_n = 0` for real :math:`n \ge 2` (:math:`m = 2` joint, :math:`m = 1`
    row-wise) with ``scipy.optimize.brentq`` on :func:`h_n`; :math:`h_n` decreases in
    :math:`n`, so the root is unique.

    Args:
        N: vocabulary size(s) :math:`> 1`, any shape.
        beta: squared norm of the vectors divided by :math:`n`, :math:`> 0`.
        conditional: ``True`` for the row-wise (attention) form.

    Returns:
        The root :math:`n` for each ``N`` (a float for a scalar); 2.0 where the estimate is already
        negative at :math:`n = 2`.

    Raises:
        ValueError: if some ``N`` <= 1 or ``beta`` <= 0.

    Used in: :doc:`/book/representations/word-embedding-dimension`, eq. :eq:`skipgram-entropy-hn`.
    """
    N = _check_vocab(N)
    β = check_positive(beta, "beta")
    κ = dimension_coefficient(β, conditional)

    def root(size: float) -> float:
        def H(n: float) -> float:
            return float(entropy_approx(size, n, β, conditional))

        if H(2.0) <= 0:
            return 2.0
        hi = κ * np.log(size) + 10.0
        while H(hi) > 0:  # the large-n rule is a good first guess; widen until the sign flips
            hi *= 2.0
        return float(optimize.brentq(H, 2.0, hi, xtol=1e-12, rtol=1e-14))

    out = np.array([root(float(v)) for v in N.ravel()]).reshape(N.shape)
    return _scalar_or_array(out)


# --- Monte Carlo: the exact entropy of random embeddings -------------------------------------

def sample_sphere(N: int, n: int, rng: np.random.Generator,
                  radius: float | None = None) -> NDArray[np.float64]:
    r"""``N`` independent points, uniform on a sphere of radius ``radius`` in :math:`\mathbb{R}^n`.

    .. math:: x = r\, g / \lVert g\rVert, \qquad g \sim \mathcal{N}(0, I_n),\quad r = \sqrt{n}
       \text{ by default.}

    Args:
        N: number of points, :math:`\ge 1`.
        n: dimension, :math:`\ge 1`.
        rng: the random generator.
        radius: the radius :math:`r > 0`; ``None`` means :math:`\sqrt{n}` (coordinates of size 1).

    Returns:
        Array of shape ``(N, n)``.

    Raises:
        TypeError: if ``N`` or ``n`` is not an integer or ``rng`` is not a Generator.
        ValueError: if ``N`` < 1, ``n`` < 1 or ``radius`` <= 0.

    Used in: :doc:`/book/representations/word-embedding-dimension`.
    """
    N = check_count(N, "N", 1)
    n = check_count(n, "n", 1)
    rng = _check_rng(rng)
    r = np.sqrt(n) if radius is None else check_positive(radius, "radius")
    g = rng.standard_normal((N, n))
    return r * g / np.linalg.norm(g, axis=1, keepdims=True)


def _scores(U: Any, V: Any) -> NDArray[np.float64]:
    U = as_array(U, "U", ndim=2)
    V = as_array(V, "V", ndim=2)
    if U.shape[1] != V.shape[1]:
        raise ValueError(f"U and V must have the same number of columns, got {U.shape} and "
                         f"{V.shape}")
    return U @ V.T


def skipgram_entropy(U: Any, V: Any) -> float:
    r"""Exact entropy of the skip-gram distribution over all pairs, from the Gram matrix.

    With scores :math:`s_{ij} = \langle u_i, v_j\rangle` and :math:`p_{ij} = e^{s_{ij}}/Z`,

    .. math::

        H = -\sum_{i,j} p_{ij}\log p_{ij} = \log Z - \sum_{i,j} p_{ij}\, s_{ij},
        \qquad Z = \sum_{i,j} e^{s_{ij}},

    computed as :math:`H = \log\sum_{i,j} e^{s_{ij} - m} - \sum_{i,j} p_{ij}(s_{ij} - m)` with
    :math:`m = \max s_{ij}`, so that large scores do not overflow.

    Args:
        U: centre-word vectors, shape ``(N, n)`` (NumPy array or torch tensor).
        V: context-word vectors, shape ``(M, n)``.

    Returns:
        :math:`H` in nats, a float in :math:`[0, \log(NM)]`.

    Raises:
        ValueError: if ``U`` or ``V`` is not 2-D, their widths differ, or they hold NaN/inf.

    Used in: :doc:`/book/representations/word-embedding-dimension`, eq. :eq:`skipgram-entropy`.
    """
    s = _scores(U, V)
    s = s - s.max()  # H does not change when every score shifts by the same amount
    e = np.exp(s)
    Z = e.sum()
    return float(np.log(Z) - np.sum(e * s) / Z)


def row_entropy(U: Any, V: Any) -> float:
    r"""Mean entropy of the row-wise softmax :math:`p(w_j \mid w_i)`, the form attention uses.

    .. math::

        H_{\text{row}} = \frac1N \sum_i \Big(\log Z_i - \sum_j p_{j\mid i}\, s_{ij}\Big),
        \qquad p_{j\mid i} = e^{s_{ij}}/Z_i,\quad Z_i = \sum_j e^{s_{ij}} .

    Args:
        U: query (centre-word) vectors, shape ``(N, n)``.
        V: key (context-word) vectors, shape ``(M, n)``.

    Returns:
        :math:`H_{\text{row}}` in nats, a float in :math:`[0, \log M]`.

    Raises:
        ValueError: if ``U`` or ``V`` is not 2-D, their widths differ, or they hold NaN/inf.

    Used in: :doc:`/book/representations/word-embedding-dimension`.
    """
    s = _scores(U, V)
    s = s - s.max(axis=1, keepdims=True)  # each row's entropy is shift-invariant
    e = np.exp(s)
    Z = e.sum(axis=1)
    return float(np.mean(np.log(Z) - np.sum(e * s, axis=1) / Z))


def mc_entropy(N: int, n: int, rng: np.random.Generator, repeats: int = 1,
               conditional: bool = False) -> NDArray[np.float64]:
    r"""Monte Carlo entropies of skip-gram models with random word vectors.

    The :math:`2N` vectors are uniform on the sphere of radius :math:`\sqrt{n}` in
    :math:`\mathbb{R}^n`.
    Each repeat draws fresh :math:`U, V` with :func:`sample_sphere` and returns
    :func:`skipgram_entropy` (or :func:`row_entropy` when ``conditional``). For fixed :math:`n` and
    :math:`N\to\infty`, :math:`H - 2\log N \to h_n` (:math:`H_{\text{row}} - \log N \to h_n`).

    Args:
        N: number of word vectors in each set, :math:`\ge 1`.
        n: dimension, :math:`\ge 1`.
        rng: the random generator.
        repeats: number of independent draws, :math:`\ge 1`.
        conditional: ``True`` for the row-wise entropy.

    Returns:
        Array of shape ``(repeats,)`` with one entropy (nats) per draw.

    Raises:
        TypeError: if ``N``, ``n`` or ``repeats`` is not an integer or ``rng`` is not a Generator.
        ValueError: if ``N``, ``n`` or ``repeats`` is < 1.

    Used in: :doc:`/book/representations/word-embedding-dimension`.
    """
    N = check_count(N, "N", 1)
    n = check_count(n, "n", 1)
    repeats = check_count(repeats, "repeats", 1)
    rng = _check_rng(rng)
    entropy = row_entropy if conditional else skipgram_entropy
    return np.array([entropy(sample_sphere(N, n, rng), sample_sphere(N, n, rng))
                     for _ in range(repeats)])


# --- Johnson–Lindenstrauss: the bound and a random projection --------------------------------

def jl_min_dim(N: Any, eps: Any) -> float | NDArray[np.float64]:
    r"""Dasgupta and Gupta's Johnson–Lindenstrauss dimension (the form scikit-learn uses).

    A Gaussian random projection to :math:`k` dimensions keeps every squared pairwise distance of
    :math:`N` points within a factor :math:`1\pm\varepsilon` with positive probability when

    .. math::

        k \ge \frac{4\log N}{\varepsilon^2/2 - \varepsilon^3/3} .

    Args:
        N: number of points :math:`> 1`; broadcasts against ``eps``.
        eps: distortion :math:`\varepsilon`, each in :math:`(0, 1)`.

    Returns:
        The real-valued bound (not rounded), broadcast shape (a float for scalars).

    Raises:
        ValueError: if some ``N`` <= 1 or some ``eps`` outside :math:`(0, 1)`.

    Used in: :doc:`/book/representations/word-embedding-dimension`, eq. :eq:`jl-dasgupta-gupta`.
    """
    N = _check_vocab(N)
    ε = as_array(eps, "eps")
    if np.any((ε <= 0) | (ε >= 1)):
        raise ValueError("eps must lie in the open interval (0, 1)")
    return _scalar_or_array(np.asarray(4 * np.log(N) / (ε**2 / 2 - ε**3 / 3)))


def gaussian_projection(X: Any, k: int, rng: np.random.Generator) -> NDArray[np.float64]:
    r"""Project the rows of ``X`` with a Gaussian random matrix, as in the JL lemma.

    .. math:: Y = X A^\top, \qquad A_{ab} \sim \mathcal{N}(0, 1/k) \text{ i.i.d.},\quad
       A \in \mathbb{R}^{k\times d},

    so that :math:`\mathbb{E}\lVert A x\rVert^2 = \lVert x\rVert^2`.

    Args:
        X: points as rows, shape ``(N, d)``.
        k: target dimension, :math:`\ge 1`.
        rng: the random generator.

    Returns:
        Projected points, shape ``(N, k)``.

    Raises:
        TypeError: if ``k`` is not an integer or ``rng`` is not a Generator.
        ValueError: if ``X`` is not 2-D or not finite, or ``k`` < 1.

    Used in: :doc:`/book/representations/word-embedding-dimension`.
    """
    X = as_array(X, "X", ndim=2)
    k = check_count(k, "k", 1)
    rng = _check_rng(rng)
    A = rng.normal(0.0, 1.0 / np.sqrt(k), size=(k, X.shape[1]))
    return X @ A.T


def max_distortion(X: Any, Y: Any) -> float:
    r"""Largest relative change of a squared pairwise distance between two point sets.

    .. math::

        \varepsilon_{\max} = \max_{i<j}\,
        \left|\frac{\lVert y_i - y_j\rVert^2}{\lVert x_i - x_j\rVert^2} - 1\right| .

    Args:
        X: original points, shape ``(N, d)``, pairwise distinct, :math:`N \ge 2`.
        Y: their images, shape ``(N, k)`` (same number of rows).

    Returns:
        :math:`\varepsilon_{\max}` as a float.

    Raises:
        ValueError: if the shapes do not match, ``N`` < 2, or two rows of ``X`` coincide.

    Used in: :doc:`/book/representations/word-embedding-dimension`, eq. :eq:`jl-dasgupta-gupta`.
    """
    X = as_array(X, "X", ndim=2)
    Y = as_array(Y, "Y", ndim=2)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must have the same number of rows, got {X.shape[0]} and "
                         f"{Y.shape[0]}")
    if X.shape[0] < 2:
        raise ValueError(f"X must hold at least 2 points, got {X.shape[0]}")
    dx = pdist(X, "sqeuclidean")
    if np.any(dx == 0):
        raise ValueError("X must hold pairwise distinct points (a pair has distance 0)")
    return float(np.max(np.abs(pdist(Y, "sqeuclidean") / dx - 1)))

