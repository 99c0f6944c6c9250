r"""BERT-whitening with two hyperparameters: shift :math:`\beta`, isotropy :math:`\gamma`.

Sentence (or word) embeddings are rows :math:`x_i \in \mathbb{R}^d`, stacked in an
:math:`N \times d` matrix. BERT-whitening maps each row linearly so that the cloud becomes
centred and isotropic, and its principal axes come sorted by energy, so that dropping the last
columns reduces the dimension.
Su (2022) adds two scalars to the map:

.. math::

   \tilde x_i = (x_i - \beta\mu)\, U \Lambda^{-\gamma/2}, \qquad
   \Sigma_\beta = \frac{1}{N}\sum_{i=1}^N (x_i - \beta\mu)^\top (x_i - \beta\mu) = U \Lambda U^\top,

with :math:`\mu` the mean row and :math:`\Lambda` sorted in descending order. :math:`\beta=\gamma=1`
is the original whitening, :math:`\beta=\gamma=0` a pure rotation :math:`\tilde x_i = x_i U`.

The module reads in the order of the method: the second moment about :math:`\beta\mu`, its
principal axes, the matrix :math:`W = U\Lambda^{-\gamma/2}` and the fitted map, the transform with
truncation to :math:`k` columns, the share of energy that truncation keeps, and the evaluation:
cosine similarity, Spearman's rank correlation against human scores with a paired bootstrap, and
a reader for word-pair files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import spearmanr

from kexue_notes._validate import as_array, check_positive

__all__ = [  # noqa: RUF022 -- in the order of the method, as the module reads
    "second_moment",
    "principal_axes",
    "whitening_matrix",
    "fit",
    "transform",
    "retained_energy",
    "cosine_similarity",
    "spearman_eval",
    "bootstrap_spearman",
    "load_word_pairs",
]


def _check_beta(beta: Any) -> float:
    if isinstance(beta, bool) or not isinstance(beta, int | float | np.integer | np.floating):
        raise TypeError(f"beta must be a real number, got {type(beta).__name__}")
    if not np.isfinite(beta):
        raise ValueError(f"beta must be finite, got {beta}")
    return float(beta)


def _check_samples(x: Any) -> NDArray[np.float64]:
    """An ``(N, d)`` finite float64 array with more samples than features."""
    x = as_array(x, "x", ndim=2)
    n, d = x.shape
    if d < 1:
        raise ValueError(f"x must have at least one column (feature), got shape {x.shape}")
    if n <= d:
        raise ValueError(
            f"x must have more rows (samples) than columns (features) to fit a {d}-dimensional "
            f"whitening, got N={n} samples for d={d}"
        )
    return x


def _check_k(k: Any, m: int, what: str) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise TypeError(f"k must be an integer, got {type(k).__name__}")
    if not 1 <= k <= m:
        raise ValueError(f"k must lie in [1, {m}] (the number of {what}), got {k}")
    return int(k)


def second_moment(x: Any, beta: float = 1.0) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Mean row and second-moment matrix of the rows of ``x`` about :math:`\beta\mu`.

    .. math::

       \mu = \frac{1}{N}\sum_{i=1}^N x_i, \qquad
       \Sigma_\beta = \frac{1}{N}\sum_{i=1}^N (x_i - \beta\mu)^\top (x_i - \beta\mu)
       = \Sigma_1 + (1-\beta)^2 \mu^\top \mu .

    At :math:`\beta = 1` this is the covariance with divisor :math:`N` (``ddof=0``); at
    :math:`\beta = 0` it is the uncentred second moment.

    Args:
        x: data, shape ``(N, d)``, one sample per row, with ``N > d``; NumPy array or torch tensor.
        beta: shift of the centre, a real number (1 centres at the mean, 0 not at all).

    Returns:
        ``(mu, sigma)``: the mean row, shape ``(d,)`` (not multiplied by ``beta``), and
        :math:`\Sigma_\beta`, shape ``(d, d)``.

    Raises:
        ValueError: if ``x`` is not 2-D, holds NaN or infinity, or has ``N <= d``; if ``beta`` is
            not finite.
        TypeError: if ``x`` is not numeric or ``beta`` is not a real number.

    Used in: :doc:`/book/representations/bert-whitening-hyperparams`, eq. :eq:`whiten-moment`.
    """
    x = _check_samples(x)
    beta = _check_beta(beta)
    mu = x.mean(axis=0)
    c = x - beta * mu
    return mu, c.T @ c / x.shape[0]


def principal_axes(x: Any, beta: float = 1.0) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Eigenvalues (descending) and eigenvectors of :math:`\Sigma_\beta`, from an SVD of the data.

    With :math:`C = X - \mathbf{1}\beta\mu = P S V^\top` (thin SVD),

    .. math::

       \Sigma_\beta = \frac{1}{N} C^\top C = V \frac{S^2}{N} V^\top = U \Lambda U^\top, \qquad
       U = V,\ \Lambda = S^2 / N,

    which never forms :math:`\Sigma_\beta` (forming it would square the condition number). Each
    column of :math:`U` has an arbitrary sign; it is fixed so that the entry of largest magnitude
    in each column is positive, which makes the result deterministic.

    Args:
        x: data, shape ``(N, d)`` with ``N > d``.
        beta: shift of the centre, a real number.

    Returns:
        ``(lam, U)``: eigenvalues :math:`\lambda_1 \ge \dots \ge \lambda_d \ge 0`, shape ``(d,)``,
        and the orthogonal matrix of eigenvectors (columns), shape ``(d, d)``.

    Raises:
        ValueError: as :func:`second_moment`.
        TypeError: as :func:`second_moment`.

    Used in: :doc:`/book/representations/bert-whitening-hyperparams`, eq. :eq:`whiten-moment`.
    """
    x = _check_samples(x)
    beta = _check_beta(beta)
    c = x - beta * x.mean(axis=0)
    _, s, vt = np.linalg.svd(c, full_matrices=False)
    u = vt.T
    rows = np.argmax(np.abs(u), axis=0)
    u = u * np.sign(u[rows, np.arange(u.shape[1])])
    return s**2 / x.shape[0], u


def whitening_matrix(lam: Any, U: Any, gamma: float = 1.0,
                     k: int | None = None) -> NDArray[np.float64]:
    r"""The matrix of the map, :math:`W = \big[U\Lambda^{-\gamma/2}\big]_{:, 1:k}`.

    .. math::

       W_{:, j} = \lambda_j^{-\gamma/2}\, U_{:, j}, \qquad j = 1, \dots, k,

    so that :math:`W^\top \Sigma_\beta W = \Lambda_{1:k}^{1-\gamma}` when
    :math:`\Sigma_\beta = U\Lambda U^\top`. Split from :func:`fit` so that one
    :func:`principal_axes` serves several values of :math:`\gamma` and :math:`k`.

    Args:
        lam: eigenvalues :math:`\lambda_1 \ge \dots \ge \lambda_d \ge 0`, shape ``(d,)``.
        U: eigenvectors as columns, shape ``(d, d)``.
        gamma: exponent of the rescaling, a real number ``>= 0``; 1 makes the output isotropic,
            0 only rotates.
        k: number of columns to form, an integer in ``[1, d]``; ``None`` means ``d``.

    Returns:
        :math:`W`, shape ``(d, k)``.

    Raises:
        ValueError: if ``lam`` is not 1-D, negative, not descending or not finite; if ``U`` is
            not ``(d, d)``; if ``gamma`` is negative; if ``k`` is out of range; if ``gamma > 0``
            and one of the first ``k`` eigenvalues is numerically zero (at most
            :math:`d\,\varepsilon\,\lambda_1`), since :math:`\lambda^{-\gamma/2}` would blow
            up there; the message gives the numerical rank.
        TypeError: if ``gamma`` is not a real number or ``k`` not an integer.

    Used in: :doc:`/book/representations/bert-whitening-hyperparams`, eq. :eq:`whiten-beta-gamma`.
    """
    lam = as_array(lam, "lam", ndim=1)
    d = lam.size
    U = as_array(U, "U", shape=(d, d))
    if d == 0 or np.any(lam < 0):
        raise ValueError("lam must hold at least one eigenvalue, all of them >= 0")
    if np.any(np.diff(lam) > 0):
        raise ValueError("lam must be sorted in descending order")
    gamma = check_positive(gamma, "gamma", allow_zero=True)
    k = d if k is None else _check_k(k, d, "eigenvalues")
    rank = int(np.sum(lam > d * np.finfo(np.float64).eps * lam[0]))
    if gamma > 0 and k > rank:
        raise ValueError(
            f"lam: the second-moment matrix has numerical rank {rank} < k={k}; whitening with "
            f"gamma > 0 divides by its eigenvalues, so use k <= {rank} or gamma=0"
        )
    return U[:, :k] * lam[:k] ** (-gamma / 2)


def fit(x: Any, beta: float = 1.0, gamma: float = 1.0,
        k: int | None = None) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Fit the whitening map: the centre :math:`\beta\mu` and :math:`W = U\Lambda^{-\gamma/2}`.

    .. math::

       \tilde x = (x - \beta\mu)\, W, \qquad W = \big[U \Lambda^{-\gamma/2}\big]_{:, 1:k},

    with :math:`U, \Lambda` from :func:`principal_axes` and :math:`W` from
    :func:`whitening_matrix`, so that the rows of the whitened training data have second moment
    :math:`\frac1N\sum_i \tilde x_i^\top \tilde x_i = \Lambda_{1:k}^{1-\gamma}` (the identity at
    :math:`\gamma = 1`). Columns of :math:`W` follow the eigenvalues in descending order, so the
    first :math:`k` columns are the :math:`k` directions of largest second moment. Fitting
    fewer columns than ``d`` is needed when :math:`\Sigma_\beta` is singular and ``gamma > 0``;
    :func:`transform` can cut the columns further.

    Args:
        x: data, shape ``(N, d)`` with ``N > d``.
        beta: shift of the centre, a real number; 1 centres at the mean.
        gamma: exponent of the rescaling, a real number ``>= 0``; 1 makes the output isotropic,
            0 only rotates.
        k: number of columns of :math:`W` to form, an integer in ``[1, d]``; ``None`` means ``d``.

    Returns:
        ``(center, W)``: the centre :math:`\beta\mu`, shape ``(d,)``, and :math:`W`, shape
        ``(d, k)``.

    Raises:
        ValueError: as :func:`second_moment` and :func:`whitening_matrix` (in particular when
            ``gamma > 0`` and ``k`` exceeds the numerical rank of :math:`\Sigma_\beta`).
        TypeError: if ``beta`` or ``gamma`` is not a real number, ``k`` not an integer, or ``x``
            not numeric.

    Used in: :doc:`/book/representations/bert-whitening-hyperparams`, eq. :eq:`whiten-beta-gamma`.
    """
    x = _check_samples(x)
    beta = _check_beta(beta)
    lam, U = principal_axes(x, beta)
    try:
        W = whitening_matrix(lam, U, gamma, k)
    except ValueError as err:
        if str(err).startswith("lam: "):      # a rank problem of the data, so name x
            raise ValueError("x: " + str(err)[len("lam: "):]) from None
        raise
    return beta * x.mean(axis=0), W


def transform(x: Any, center: Any, W: Any, k: int | None = None) -> NDArray[np.float64]:
    r"""Apply a fitted whitening map and keep the first ``k`` output columns.

    .. math::

       \tilde x_i = \big[(x_i - c)\, W\big]_{1:k}, \qquad c = \beta\mu .

    Args:
        x: data to transform, shape ``(n, d)`` (any number of rows).
        center: the centre :math:`\beta\mu` from :func:`fit`, shape ``(d,)``.
        W: the matrix from :func:`fit`, shape ``(d, m)``.
        k: number of leading columns to keep, an integer in ``[1, m]``; ``None`` keeps all ``m``.

    Returns:
        The transformed rows, shape ``(n, k)``.

    Raises:
        ValueError: if shapes do not match, an input holds NaN or infinity, or ``k`` is out of
            range.
        TypeError: if ``k`` is not an integer or an input is not numeric.

    Used in: :doc:`/book/representations/bert-whitening-hyperparams`, eq. :eq:`whiten-beta-gamma`.
    """
    W = as_array(W, "W", ndim=2)
    d, m = W.shape
    x = as_array(x, "x", ndim=2, shape=(None, d))
    center = as_array(center, "center", shape=(d,))
    k = m if k is None else _check_k(k, m, "columns of W")
    return (x - center) @ W[:, :k]


def retained_energy(lam: Any, gamma: float, k: int) -> float:
    r"""Share of the output second moment that the first ``k`` whitened columns keep.

    .. math::

       \rho_k(\gamma) = \frac{\sum_{i=1}^{k} \lambda_i^{1-\gamma}}
                             {\sum_{i=1}^{d} \lambda_i^{1-\gamma}},

    the trace of the truncated output second moment over the full one. It is :math:`k/d` at
    :math:`\gamma = 1` and the usual PCA share of energy at :math:`\gamma = 0`.

    Args:
        lam: eigenvalues of :math:`\Sigma_\beta`, shape ``(d,)``, positive and in descending order.
        gamma: exponent of the rescaling, a real number ``>= 0``.
        k: number of kept columns, an integer in ``[1, d]``.

    Returns:
        :math:`\rho_k(\gamma)` in ``(0, 1]``.

    Raises:
        ValueError: if ``lam`` is not 1-D, not positive, not sorted in descending order or not
            finite; if ``gamma`` is negative; if ``k`` is out of range.
        TypeError: if ``k`` is not an integer or ``gamma`` not a real number.

    Used in: :doc:`/book/representations/bert-whitening-hyperparams`, eq. :eq:`whiten-energy`.
    """
    lam = as_array(lam, "lam", ndim=1)
    gamma = check_positive(gamma, "gamma", allow_zero=True)
    if lam.size == 0 or np.any(lam <= 0):
        raise ValueError("lam must hold at least one eigenvalue, all of them > 0")
    if np.any(np.diff(lam) > 0):
        raise ValueError("lam must be sorted in descending order")
    k = _check_k(k, lam.size, "eigenvalues")
    # lambda_i^(1-gamma) / lambda_1^(1-gamma): scaled so that large gamma cannot overflow
    w = np.exp((1.0 - gamma) * (np.log(lam) - np.log(lam[0])))
    return float(w[:k].sum() / w.sum())


def cosine_similarity(a: Any, b: Any) -> NDArray[np.float64]:
    r"""Cosine of the angle between paired rows: :math:`\cos(a_i, b_i)`.

    .. math::

       \cos(a_i, b_i) = \frac{a_i \cdot b_i}{\lVert a_i \rVert\, \lVert b_i \rVert} .

    Args:
        a: first vectors, shape ``(n, d)``.
        b: second vectors, shape ``(n, d)``, row ``i`` paired with row ``i`` of ``a``.

    Returns:
        The ``n`` cosines, shape ``(n,)``.

    Raises:
        ValueError: if the shapes differ or are not 2-D, an input holds NaN or infinity, or a row
            has zero length (its cosine is undefined).
        TypeError: if an input is not numeric.

    Used in: :doc:`/book/representations/bert-whitening-hyperparams`, eq. :eq:`whiten-cosine`;
    :doc:`/book/representations/simcse`;
    :doc:`/book/representations/simpler-glove`.
    """
    a = as_array(a, "a", ndim=2)
    b = as_array(b, "b", ndim=2, shape=a.shape)
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    for name, norms in (("a", na), ("b", nb)):
        if np.any(norms == 0):
            raise ValueError(f"{name} has a zero row (index {int(np.argmin(norms))}); "
                             "its cosine is undefined")
    return np.einsum("ij,ij->i", a, b) / (na * nb)


def spearman_eval(a: Any, b: Any, scores: Any) -> float:
    r"""Spearman's rank correlation between the cosines of paired rows and human scores.

    .. math::

       \rho_S = \operatorname{corr}\big(\operatorname{rank}(\cos(a_i, b_i)),\
       \operatorname{rank}(s_i)\big),

    the Pearson correlation of the (average-tie) ranks, computed by ``scipy.stats.spearmanr``.
    It depends only on the order of the cosines, so any map that keeps that order keeps
    :math:`\rho_S`.

    Args:
        a: first vectors, shape ``(n, d)``.
        b: second vectors, shape ``(n, d)``.
        scores: human similarity scores :math:`s_i`, shape ``(n,)``, with ``n >= 2``.

    Returns:
        :math:`\rho_S` in ``[-1, 1]``.

    Raises:
        ValueError: as :func:`cosine_similarity`; if ``scores`` has the wrong shape, fewer than two
            entries or holds NaN; if the cosines or the scores are all equal (no ranking).
        TypeError: if an input is not numeric.

    Used in: :doc:`/book/representations/bert-whitening-hyperparams`;
    :doc:`/book/representations/simpler-glove`.
    """
    cos = cosine_similarity(a, b)
    scores = as_array(scores, "scores", shape=(cos.shape[0],))
    if scores.size < 2:
        raise ValueError(f"scores must hold at least 2 pairs, got {scores.size}")
    for name, v in (("scores", scores), ("cosines of a and b", cos)):
        if np.all(v == v[0]):
            raise ValueError(f"{name} are all equal, so they have no ranking")
    return float(spearmanr(cos, scores).statistic)


def _centred_resample_ranks(values: NDArray[np.float64],
                            counts: NDArray[np.float64]) -> NDArray[np.float64]:
    """Average-tie ranks of ``values`` within each resample, minus their mean, shape ``(B, n)``.

    Row ``b`` of ``counts`` says how often each item was drawn. An item's rank in the resample is
    the number of drawn items with a smaller value plus ``(c + 1) / 2`` for the ``c`` drawn items
    tied with it, which is what ranking the resample with duplicates would give. Items that were
    not drawn get a rank too, but their count (weight) is zero.
    """
    n = values.size
    order = np.argsort(values, kind="stable")
    v = values[order]
    new = np.concatenate([[True], v[1:] != v[:-1]])
    starts = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    in_group = np.add.reduceat(counts[:, order], starts, axis=1)
    group_rank = np.cumsum(in_group, axis=1) - in_group + (in_group + 1) / 2
    ranks = np.empty_like(counts)
    ranks[:, order] = group_rank[:, group]
    return ranks - (n + 1) / 2                       # the mean rank of n drawn items


def bootstrap_spearman(cos: Any, scores: Any, n_boot: int,
                       rng: np.random.Generator) -> NDArray[np.float64]:
    r"""Paired bootstrap of Spearman's :math:`\rho_S` for several scorings of the same pairs.

    Each replicate :math:`b` draws :math:`n` pair indices :math:`I_b` with replacement and computes,
    for every scoring :math:`j` (a row of ``cos``),

    .. math::

       \rho^{(b)}_j = \operatorname{corr}\big(\operatorname{rank}(c_{j, I_b}),\
       \operatorname{rank}(s_{I_b})\big),

    with average ranks for ties, as ``scipy.stats.spearmanr`` does; the ranks come from the draw
    counts by a cumulative sum, so no replicate is sorted. All scorings share the
    same draws, so differences :math:`\rho^{(b)}_j - \rho^{(b)}_{j'}` are paired and their
    spread measures how sure we are that scoring :math:`j` beats :math:`j'` on pairs like these.

    Args:
        cos: similarity scores, shape ``(m, n)`` (``m`` scorings of ``n`` pairs) or ``(n,)``.
        scores: human scores, shape ``(n,)``, with ``n >= 3``.
        n_boot: number of replicates, a positive integer.
        rng: the random generator, e.g. ``np.random.default_rng(0)``.

    Returns:
        :math:`\rho^{(b)}_j`, shape ``(n_boot, m)`` (``m = 1`` for 1-D ``cos``). A replicate whose
        draw makes one side constant gives NaN there (a ranking needs two distinct values).

    Raises:
        ValueError: if shapes do not match, an input holds NaN or infinity, ``n < 3`` or
            ``n_boot < 1``.
        TypeError: if ``rng`` is not a :class:`numpy.random.Generator` or ``n_boot`` not an
            integer.

    Used in: :doc:`/book/representations/bert-whitening-hyperparams`;
    :doc:`/book/representations/geodesic-semantic-similarity`;
    :doc:`/book/representations/simpler-glove`.
    """
    cos = as_array(cos, "cos")
    if cos.ndim == 1:
        cos = cos[None, :]
    if cos.ndim != 2:
        raise ValueError(f"cos must be 1- or 2-dimensional, got shape {cos.shape}")
    n = cos.shape[1]
    scores = as_array(scores, "scores", shape=(n,))
    if n < 3:
        raise ValueError(f"scores must hold at least 3 pairs, got {n}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer):
        raise TypeError(f"n_boot must be an integer, got {type(n_boot).__name__}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    n_boot = int(n_boot)
    idx = rng.integers(0, n, size=(n_boot, n))
    # multiplicity of each pair in each replicate: ranking the resample is then a cumulative sum
    counts = np.bincount((idx + n * np.arange(n_boot)[:, None]).ravel(),
                         minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)
    rs = _centred_resample_ranks(scores, counts)
    rho = np.empty((n_boot, cos.shape[0]))
    for j, c in enumerate(cos):                      # a loop over scorings, not over data points
        rc = _centred_resample_ranks(c, counts)
        with np.errstate(invalid="ignore", divide="ignore"):
            rho[:, j] = (counts * rc * rs).sum(1) / np.sqrt(
                (counts * rc**2).sum(1) * (counts * rs**2).sum(1))
    return rho


def load_word_pairs(path: str) -> tuple[list[str], list[str], NDArray[np.float64]]:
    r"""Read a word-similarity file: lines ``word1<TAB>word2<TAB>score``, ``#`` starts a comment.

    This is the format of the WordSim-353 and SimLex-999 files that gensim ships
    (``gensim.test.utils.datapath("wordsim353.tsv")``, ``datapath("simlex999.txt")``). Blank
    lines and lines starting with ``#`` are skipped; columns after the third are ignored.

    Args:
        path: the file to read, a string (a ``pathlib.Path`` works too).

    Returns:
        ``(words_a, words_b, scores)``: two lists of ``n`` words and the human scores, shape
        ``(n,)``.

    Raises:
        ValueError: if a data line has fewer than three tab-separated fields, a score is not a
            number, or the file holds no pairs.

    Used in: :doc:`/book/representations/bert-whitening-hyperparams`;
    :doc:`/book/representations/geodesic-semantic-similarity`;
    :doc:`/book/representations/simpler-glove`.
    """
    words_a: list[str] = []
    words_b: list[str] = []
    scores: list[float] = []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) < 3:
            raise ValueError(f"path: line {number} must hold 'word1<TAB>word2<TAB>score', "
                             f"got {line!r}")
        try:
            scores.append(float(fields[2]))
        except ValueError as err:
            raise ValueError(f"path: line {number} has a score that is not a number: "
                             f"{fields[2]!r}") from err
        words_a.append(fields[0].strip())
        words_b.append(fields[1].strip())
    if not scores:
        raise ValueError(f"path: {path} holds no word pairs")
    return words_a, words_b, as_array(scores, "scores")
