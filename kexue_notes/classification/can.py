r"""CAN (classification with alternating normalization): re-normalising doubtful predictions.

Jia et al. post-process a classifier's predicted distributions :math:`p^{(1)}, \dots, p^{(N)}` over
:math:`m` classes with the class prior :math:`\pi`. A top-:math:`k` entropy score
(:func:`topk_uncertainty`; its largest value in the paper's un-renormalised form is
:func:`paper_uncertainty_max`) splits them at a threshold :math:`\tau` into confident and doubtful
ones. Each doubtful :math:`p` is stacked under the :math:`n` confident rows as
:math:`L = [A_0;\, p]` and the matrix is normalised in turn

.. math::

   L \leftarrow L^{\alpha}, \qquad
   L \leftarrow L\, \mathrm{diag}(\bar L)^{-1} \mathrm{diag}(\pi), \qquad
   L \leftarrow \mathrm{diag}(L\mathbf 1)^{-1} L ,

the column step making the column means :math:`\bar L` equal :math:`\pi`
(:func:`normalize_columns`), the row step making each row a distribution again
(:func:`normalize_rows`), :func:`alternating_normalization` repeating both. The last row is
the corrected prediction (:func:`can_correct`; one iteration has a closed form that needs only the
column sums of :math:`A_0^\alpha`). :func:`can_postprocess` runs the whole procedure on a matrix of
predictions. Iterated to convergence (with :math:`\alpha` applied once) the two steps are
Sinkhorn–Knopp scaling of :math:`L^\alpha` to row sums 1 and column sums :math:`(n+1)\pi`
(:func:`can_fixed_point`); both steps leave the cross-ratios of the matrix unchanged
(:func:`log_cross_ratios`).

Arrays are NumPy float64; rows are samples and columns classes throughout.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import entr

from kexue_notes._validate import (
    as_array,
    check_count,
    check_fraction,
    check_positive,
    check_probabilities,
)

__all__ = [  # noqa: RUF022 -- in the order the page reads
    "topk_uncertainty",
    "paper_uncertainty_max",
    "normalize_columns",
    "normalize_rows",
    "alternating_normalization",
    "can_correct",
    "can_postprocess",
    "can_fixed_point",
    "log_cross_ratios",
]

Array = NDArray[np.float64]


def _check_k(k: object, m: int) -> int:
    k = check_count(k, "k", minimum=2)
    if k > m:
        raise ValueError(f"k must be at most the number of classes m = {m}, got {k}")
    return k


def _check_alpha(alpha: object) -> float:
    return check_positive(alpha, "alpha")


def _check_prior(prior: Any, m: int | None = None) -> Array:
    prior = check_probabilities(prior, "prior")
    if prior.ndim != 1:
        raise ValueError(f"prior must be 1-dimensional, got shape {prior.shape}")
    if m is not None and prior.shape[0] != m:
        raise ValueError(f"prior must have {m} entries (one per class), got {prior.shape[0]}")
    return prior


def _check_nonnegative(x: Any, name: str, **kw: Any) -> Array:
    arr = as_array(x, name, **kw)
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} must be non-negative, got minimum {arr.min():.3g}")
    return arr


# --- the uncertainty score -----------------------------------------------------------------------

def topk_uncertainty(p: Any, k: int = 3, *, renormalize: bool = True) -> Array:
    r"""Top-:math:`k` entropy of predicted distributions, scaled to :math:`[0, 1]`.

    With :math:`p_{(1)} \ge \dots \ge p_{(m)}` the sorted probabilities, Su's form
    (``renormalize=True``) renormalises the top :math:`k` and divides by :math:`\log k`,

    .. math::

       u(p) = -\frac{1}{\log k}\sum_{i=1}^k \tilde p_i \log \tilde p_i, \qquad
       \tilde p_i = \frac{p_{(i)}}{\sum_{j=1}^k p_{(j)}} ,

    and the form the post attributes to the paper (``renormalize=False``) keeps the raw
    top-:math:`k` probabilities and divides by :math:`\log m`,

    .. math::

       u_{\text{paper}}(p) = -\frac{1}{\log m}\sum_{i=1}^k p_{(i)} \log p_{(i)} ,

    with :math:`0 \log 0 = 0` in both. Su's form is 1 exactly when the top :math:`k` are equal; the
    paper's never exceeds :func:`paper_uncertainty_max`.

    Args:
        p: probabilities, shape ``(m,)`` or ``(N, m)``, each row summing to one.
        k: how many of the largest probabilities to use, :math:`2 \le k \le m`.
        renormalize: Su's form (True) or the paper's (False).

    Returns:
        The scores, shape ``()`` or ``(N,)``.

    Raises:
        ValueError: if ``p`` is not a matrix of probability rows or ``k`` is outside
            :math:`[2, m]`.
        TypeError: if ``k`` is not an integer or ``renormalize`` not a bool.

    Used in: :doc:`/book/classification/can-alternating-normalization`, eq. :eq:`can-uncertainty`.
    """
    p = check_probabilities(p, "p")
    if p.ndim > 2:
        raise ValueError(f"p must be 1- or 2-dimensional, got shape {p.shape}")
    if not isinstance(renormalize, bool):
        raise TypeError(f"renormalize must be a bool, got {type(renormalize).__name__}")
    m = p.shape[-1]
    k = _check_k(k, m)
    top = np.sort(p, axis=-1)[..., m - k:]
    if renormalize:
        top = top / top.sum(axis=-1, keepdims=True)
        return np.asarray(entr(top).sum(axis=-1) / math.log(k))
    return np.asarray(entr(top).sum(axis=-1) / math.log(m))


def paper_uncertainty_max(k: int, m: int) -> float:
    r"""The largest value of the paper's un-renormalised top-:math:`k` score over all distributions.

    For :math:`k` probabilities with sum :math:`s`, concavity of :math:`-x\log x` bounds the
    partial entropy by :math:`g(s) = -s\log(s/k)`, which increases up to :math:`s = k/e`. For
    :math:`k \ge 3` that point lies beyond :math:`s = 1`, so the bound is :math:`g(1) = \log k`,
    reached by the uniform distribution on :math:`k` classes; for :math:`k = 2 < m` it is
    :math:`g(2/e) = 2/e`, reached by :math:`(1/e, 1/e, \dots)`; for :math:`k = m` the score is the
    normalised entropy:

    .. math::

       \sup_p u_{\text{paper}}(p) = \begin{cases}
       1, & k = m,\\
       \log k / \log m, & 3 \le k < m,\\
       (2/e) / \log m, & k = 2 < m.
       \end{cases}

    Args:
        k: the number of top probabilities, :math:`2 \le k \le m`.
        m: the number of classes, at least 2.

    Returns:
        The supremum, a float in :math:`(0, 1]`.

    Raises:
        ValueError: if ``m < 2`` or ``k`` is outside :math:`[2, m]`.
        TypeError: if ``k`` or ``m`` is not an integer.

    Used in: :doc:`/book/classification/can-alternating-normalization`, eq. :eq:`can-paper-max`.
    """
    m = check_count(m, "m", minimum=2)
    k = _check_k(k, m)
    if k == m:
        return 1.0
    if k >= 3:
        return math.log(k) / math.log(m)
    return 2.0 / math.e / math.log(m)


# --- the two normalisations ----------------------------------------------------------------------

def normalize_columns(L: Any, prior: Any) -> Array:
    r"""The column ("between rows") step: scale each class column so its mean is the prior.

    .. math::

       L_{ic} \leftarrow L_{ic}\, \frac{\pi_c}{\bar L_c}, \qquad
       \bar L_c = \frac{1}{r}\sum_{i=1}^r L_{ic} .

    Args:
        L: non-negative matrix, shape ``(..., r, m)`` (rows are samples, columns classes), with no
            all-zero column.
        prior: the class prior :math:`\pi`, shape ``(m,)``.

    Returns:
        The scaled matrix, shape of ``L``; its column means are exactly ``prior``.

    Raises:
        ValueError: on a negative or non-finite entry, an all-zero column, or a prior that is not a
            distribution over the ``m`` columns.

    Used in: :doc:`/book/classification/can-alternating-normalization`, eq. :eq:`can-column-step`.
    """
    L = _check_nonnegative(L, "L")
    if L.ndim < 2:
        raise ValueError(f"L must be at least 2-dimensional (rows, classes), got shape {L.shape}")
    prior = _check_prior(prior, L.shape[-1])
    mean = L.mean(axis=-2, keepdims=True)
    if np.any(mean == 0):
        raise ValueError("L has an all-zero column: its mean cannot be scaled to the prior")
    return L / mean * prior


def normalize_rows(L: Any) -> Array:
    r"""The row ("within a row") step: rescale each row to sum to one.

    .. math::

       L_{ic} \leftarrow \frac{L_{ic}}{\sum_{c'=1}^m L_{ic'}} .

    Args:
        L: non-negative matrix, shape ``(..., r, m)``, with no all-zero row.

    Returns:
        The row-stochastic matrix, shape of ``L``.

    Raises:
        ValueError: on a negative or non-finite entry or an all-zero row.

    Used in: :doc:`/book/classification/can-alternating-normalization`, eq. :eq:`can-row-step`.
    """
    L = _check_nonnegative(L, "L")
    if L.ndim < 1:
        raise ValueError("L must hold at least one row")
    s = L.sum(axis=-1, keepdims=True)
    if np.any(s == 0):
        raise ValueError("L has an all-zero row: it cannot be normalised")
    return L / s


def alternating_normalization(L: Any, prior: Any, *, alpha: float = 1.0,
                              iters: int = 1) -> Array:
    r"""``iters`` rounds of power, column step and row step, as in the post's and paper's code.

    .. math::

       L \leftarrow \mathrm{rownorm}\bigl(\mathrm{colnorm}_\pi(L^{\alpha})\bigr)
       \quad (\texttt{iters}\ \text{times}).

    The power :math:`\alpha` is applied in every round, so after :math:`t` rounds the matrix is a
    row and column scaling of :math:`L^{\alpha^t}`; only for :math:`\alpha = 1` do the rounds
    converge to the Sinkhorn scaling of :func:`can_fixed_point`.

    Args:
        L: non-negative matrix, shape ``(..., r, m)``.
        prior: the class prior :math:`\pi`, shape ``(m,)``.
        alpha: the power :math:`\alpha > 0`.
        iters: the number of rounds, at least 1.

    Returns:
        The matrix after the last row step, shape of ``L``.

    Raises:
        ValueError: on bad ``L`` or ``prior`` (see :func:`normalize_columns`), ``alpha <= 0`` or
            ``iters < 1``.

    Used in: :doc:`/book/classification/can-alternating-normalization`, eq. :eq:`can-round`.
    """
    alpha = _check_alpha(alpha)
    iters = check_count(iters, "iters")
    L = _check_nonnegative(L, "L")
    for _ in range(iters):
        L = normalize_rows(normalize_columns(L**alpha, prior))
    return L


def can_correct(confident: Any, uncertain: Any, prior: Any, *, alpha: float = 1.0,
                iters: int = 1, chunk: int = 256) -> Array:
    r"""CAN's correction of each doubtful prediction, one at a time, against the confident ones.

    Each row :math:`p` of ``uncertain`` is stacked under the ``n`` rows :math:`A_0` of
    ``confident``, :func:`alternating_normalization` runs on :math:`[A_0;\, p]`, and the last row
    is kept; every correction starts again from the original :math:`A_0`. For one round the last
    row has the closed form (the factor :math:`n + 1` of the column mean cancels in the row step)

    .. math::

       p' \propto \pi \odot \frac{p^{\alpha}}{S + p^{\alpha}}, \qquad
       S = \sum_{i=1}^n \bigl(A_0^{(i)}\bigr)^{\alpha} ,

    computed here without forming the stacked matrices; more rounds form them, ``chunk`` doubtful
    predictions at a time.

    Args:
        confident: the confident predictions :math:`A_0`, shape ``(n, m)``; ``n`` may be 0.
        uncertain: the predictions to correct, shape ``(m,)`` or ``(B, m)``.
        prior: the class prior :math:`\pi`, shape ``(m,)``.
        alpha: the power :math:`\alpha > 0`.
        iters: the number of rounds, at least 1.
        chunk: how many stacked matrices to form at once when ``iters > 1``.

    Returns:
        The corrected distributions, shape of ``uncertain``.

    Raises:
        ValueError: on rows that are not distributions, mismatched class counts, ``alpha <= 0``,
            ``iters < 1`` or ``chunk < 1``.

    Used in: :doc:`/book/classification/can-alternating-normalization`, eq. :eq:`can-one-step`.
    """
    confident = check_probabilities(confident, "confident")
    if confident.ndim != 2:
        raise ValueError(f"confident must be 2-dimensional (n, m), got shape {confident.shape}")
    uncertain = check_probabilities(uncertain, "uncertain")
    if uncertain.ndim > 2:
        raise ValueError(f"uncertain must be 1- or 2-dimensional, got shape {uncertain.shape}")
    m = uncertain.shape[-1]
    if confident.shape[1] != m:
        raise ValueError(f"confident must have {m} columns like uncertain, "
                         f"got {confident.shape[1]}")
    prior = _check_prior(prior, m)
    alpha = _check_alpha(alpha)
    iters = check_count(iters, "iters")
    chunk = check_count(chunk, "chunk")
    U = uncertain.reshape(-1, m)
    if iters == 1:
        Ua = U**alpha
        denom = (confident**alpha).sum(axis=0) + Ua
        if np.any(denom == 0):
            raise ValueError("uncertain: a class has zero mass in the stacked matrix")
        out = normalize_rows(prior * Ua / denom)
    else:
        out = np.empty_like(U)
        n = confident.shape[0]
        for start in range(0, U.shape[0], chunk):
            u = U[start:start + chunk]
            stack = np.concatenate(
                [np.broadcast_to(confident, (u.shape[0], n, m)), u[:, None, :]], axis=1)
            out[start:start + chunk] = alternating_normalization(
                stack, prior, alpha=alpha, iters=iters)[:, -1, :]
    return out.reshape(uncertain.shape)


def can_postprocess(P: Any, prior: Any, *, k: int = 3, tau: float = 0.9, alpha: float = 1.0,
                    iters: int = 1, joint: bool = False) -> tuple[Array, NDArray[np.bool_]]:
    r"""The whole CAN post-processing of a set of predictions.

    Rows with :func:`topk_uncertainty` :math:`u(p) \ge \tau` are doubtful; the others form
    :math:`A_0` and are kept. Each doubtful row is replaced by :func:`can_correct` (one at a time,
    as the post and the paper do) or, with ``joint=True``, all doubtful rows are stacked under
    :math:`A_0` together and normalised at once (the batch variant the post compares against):

    .. math::

       \hat p^{(j)} = \begin{cases} p^{(j)}, & u(p^{(j)}) < \tau,\\
       \mathrm{CAN}\bigl(A_0, p^{(j)}\bigr), & u(p^{(j)}) \ge \tau. \end{cases}

    Args:
        P: predicted distributions, shape ``(N, m)``.
        prior: the class prior :math:`\pi`, shape ``(m,)``, usually the label frequencies of the
            training set.
        k: the top-:math:`k` of the score, :math:`2 \le k \le m`.
        tau: the threshold :math:`\tau \in [0, 1]`.
        alpha: the power :math:`\alpha > 0`.
        iters: the number of rounds, at least 1.
        joint: correct all doubtful rows together instead of one at a time.

    Returns:
        ``(P_new, doubtful)``: the post-processed predictions, shape ``(N, m)``, and the boolean
        mask of the corrected rows, shape ``(N,)``.

    Raises:
        ValueError: on bad ``P``, ``prior``, ``k``, ``tau``, ``alpha`` or ``iters``.
        TypeError: if ``joint`` is not a bool.

    Used in: :doc:`/book/classification/can-alternating-normalization`, eq. :eq:`can-postprocess`.
    """
    P = check_probabilities(P, "P")
    if P.ndim != 2:
        raise ValueError(f"P must be 2-dimensional (N, m), got shape {P.shape}")
    tau = check_fraction(tau, "tau")
    if not isinstance(joint, bool):
        raise TypeError(f"joint must be a bool, got {type(joint).__name__}")
    doubtful = topk_uncertainty(P, k) >= tau
    out = P.copy()
    if doubtful.any():
        if joint:
            stack = np.concatenate([P[~doubtful], P[doubtful]])
            out[doubtful] = alternating_normalization(
                stack, prior, alpha=alpha, iters=iters)[int((~doubtful).sum()):]
        else:
            out[doubtful] = can_correct(P[~doubtful], P[doubtful], prior, alpha=alpha,
                                        iters=iters)
    else:
        _check_prior(prior, P.shape[1])
    return out, doubtful


# --- the fixed point -----------------------------------------------------------------------------

def can_fixed_point(L: Any, prior: Any, *, alpha: float = 1.0, tol: float = 1e-13,
                    max_iter: int = 100_000) -> tuple[Array, int]:
    r"""Column and row steps on :math:`K = L^{\alpha}` repeated to convergence: Sinkhorn–Knopp.

    The limit is the unique matrix of the form :math:`D_r K D_c` (positive diagonal
    :math:`D_r, D_c`) with

    .. math::

       \sum_c \bigl(D_r K D_c\bigr)_{ic} = 1, \qquad
       \sum_i \bigl(D_r K D_c\bigr)_{ic} = r\,\pi_c ,

    for a positive :math:`K` with :math:`r` rows. Here :math:`\alpha` is applied once, before the
    iteration; :func:`alternating_normalization` applies it in every round instead. Stops when,
    after a row step, every column mean is within ``tol`` of :math:`\pi`.

    Args:
        L: positive matrix, shape ``(r, m)``.
        prior: the class prior :math:`\pi`, shape ``(m,)``, positive.
        alpha: the power :math:`\alpha > 0`.
        tol: the tolerance on the column means, :math:`> 0`.
        max_iter: the most rounds to run.

    Returns:
        ``(matrix, rounds)``: the scaled matrix, shape ``(r, m)``, and the number of rounds run.

    Raises:
        ValueError: if ``L`` has a non-positive entry, ``prior`` a zero, or an argument is out of
            range.
        RuntimeError: if the column means are not within ``tol`` after ``max_iter`` rounds.

    Used in: :doc:`/book/classification/can-alternating-normalization`, eq. :eq:`can-sinkhorn`.
    """
    L = as_array(L, "L", ndim=2)
    if L.min() <= 0:
        raise ValueError(f"L must be positive, got minimum {L.min():.3g}")
    prior = _check_prior(prior, L.shape[1])
    if prior.min() <= 0:
        raise ValueError("prior must be positive for the scaling to exist")
    alpha = _check_alpha(alpha)
    tol = check_positive(tol, "tol")
    max_iter = check_count(max_iter, "max_iter")
    K = L**alpha
    for t in range(1, max_iter + 1):
        K = normalize_rows(normalize_columns(K, prior))
        if np.max(np.abs(K.mean(axis=0) - prior)) < tol:
            return K, t
    raise RuntimeError(f"can_fixed_point did not converge within max_iter={max_iter} rounds")


def log_cross_ratios(L: Any) -> Array:
    r"""Log cross-ratios of a positive matrix against its first row and column.

    .. math::

       C_{ic} = \log\frac{L_{ic}\, L_{11}}{L_{i1}\, L_{1c}} .

    Scaling rows and columns by positive factors, :math:`L \mapsto D_r L D_c`, leaves every
    :math:`C_{ic}` unchanged; raising entries to a power :math:`\alpha` multiplies them by
    :math:`\alpha`. Two positive matrices with the same shape are row and column scalings of each
    other exactly when their cross-ratios agree.

    Args:
        L: positive matrix, shape ``(..., r, m)``.

    Returns:
        :math:`C`, shape of ``L`` (its first row and column are zero).

    Raises:
        ValueError: if ``L`` has a non-positive entry or fewer than two dimensions.

    Used in: :doc:`/book/classification/can-alternating-normalization`, eq. :eq:`can-cross-ratio`.
    """
    L = as_array(L, "L")
    if L.ndim < 2:
        raise ValueError(f"L must be at least 2-dimensional, got shape {L.shape}")
    if L.min() <= 0:
        raise ValueError(f"L must be positive, got minimum {L.min():.3g}")
    lg = np.log(L)
    return lg - lg[..., :, :1] - lg[..., :1, :] + lg[..., :1, :1]


# --- intervals over seeds ------------------------------------------------------------------------
