r"""Simpler GloVe: word vectors whose inner products are pointwise mutual information.

Su (2017) asks that word analogies be additive and derives from that wish a model in which the
inner product of two word vectors :math:`v_i, v_j \in \mathbb{R}^d` is the pointwise mutual
information (PMI) of the two words,

.. math::

   \langle v_i, v_j \rangle = \mathrm{PMI}(w_i, w_j)
   = \log \frac{P(w_i, w_j)}{P(w_i)\, P(w_j)} ,

with one set of vectors (no separate context vectors, no biases). The vectors are fitted by a
weighted least-squares loss over the word pairs seen in a corpus, with GloVe's weights, and
Adagrad.

The module reads in the order of the method: turn documents into token ids, count co-occurrences
in a window, estimate the PMI, weight the pairs, the loss and its gradient, the fit, the original
GloVe loss (for its shift degeneracy), Su's "redefined similarity" (the correlation of PMI
profiles as a cosine after a linear map) and the lookup of evaluation word pairs.

All matrices over the vocabulary are dense ``(V, V)`` float64 arrays, which suits vocabularies of
a few thousand words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kexue_notes._validate import as_array, as_tensor, check_count, check_positive, is_tensor

__all__ = [  # noqa: RUF022 -- in the order of the method, as the module reads
    "encode_corpus",
    "cooccurrence",
    "pmi",
    "glove_weight",
    "simpler_glove_loss",
    "simpler_glove_grad",
    "fit_simpler_glove",
    "glove_loss",
    "profile_features",
    "pair_indices",
]

def _square(x: Any, name: str) -> NDArray[np.float64]:
    arr = as_array(x, name, ndim=2)
    if arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be a square (V, V) matrix, got shape {arr.shape}")
    return arr


def _counts_matrix(counts: Any) -> NDArray[np.float64]:
    X = _square(counts, "counts")
    if np.any(X < 0):
        raise ValueError(f"counts must be >= 0, got minimum {X.min():.3g}")
    return X


# --- the corpus ---------------------------------------------------------------------------------

def encode_corpus(documents: Sequence[Sequence[str]], min_count: int = 1,
                  ) -> tuple[list[str], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    r"""Token ids of a tokenised corpus, keeping the words seen at least ``min_count`` times.

    The vocabulary is sorted by falling frequency (ties alphabetically). Rarer words are removed
    from the text before any window is taken, as GloVe's and word2vec's counters do, so the
    words on either side of a removed word become neighbours.

    Args:
        documents: the corpus, a sequence of documents, each a sequence of word strings.
        min_count: the smallest frequency a word needs to enter the vocabulary, an integer >= 1.

    Returns:
        ``(vocab, freq, tokens, doc)``: the ``V`` words, their corpus frequencies, shape ``(V,)``,
        the id of every kept token in reading order, shape ``(n,)``, and the index of the
        document each token comes from, shape ``(n,)``.

    Raises:
        TypeError: if ``documents`` is a string or a document is not a sequence of strings, or
            ``min_count`` is not an integer.
        ValueError: if ``min_count < 1`` or no word reaches ``min_count``.

    Used in: :doc:`/book/representations/simpler-glove`.
    """
    min_count = check_count(min_count, "min_count")
    if isinstance(documents, str | bytes):
        raise TypeError("documents must be a sequence of token lists, got a string")
    docs = list(documents)
    for k, d in enumerate(docs):
        if isinstance(d, str | bytes) or not all(isinstance(w, str) for w in d):
            raise TypeError(f"documents[{k}] must be a sequence of word strings")
    lengths = np.array([len(d) for d in docs], dtype=np.int64)
    words = np.array([w for d in docs for w in d], dtype=str)
    if words.size == 0:
        raise ValueError("documents holds no words")
    uniq, inverse, freq = np.unique(words, return_inverse=True, return_counts=True)
    keep = freq >= min_count
    if not np.any(keep):
        raise ValueError(f"no word occurs min_count={min_count} times")
    order = np.lexsort((uniq, -freq))                # by frequency, then alphabetically
    order = order[keep[order]]
    new_id = np.full(uniq.size, -1, dtype=np.int64)
    new_id[order] = np.arange(order.size)
    ids = new_id[inverse]
    doc = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)
    kept = ids >= 0
    return [str(w) for w in uniq[order]], freq[order].astype(np.int64), ids[kept], doc[kept]


def cooccurrence(tokens: Any, n_words: int, window: int, documents: Any = None,
                 distance_weighting: bool = False) -> NDArray[np.float64]:
    r"""Symmetric co-occurrence counts within a window, without a word's pairs with itself.

    .. math::

       X_{ij} = \sum_{t} \sum_{k=1}^{K} \omega_k\,
       \big([w_t = i,\ w_{t+k} = j] + [w_t = j,\ w_{t+k} = i]\big), \qquad i \neq j,

    over positions :math:`t` and :math:`t+k` of the same document, with :math:`\omega_k = 1` or
    :math:`\omega_k = 1/k` (``distance_weighting``, GloVe's default). Following Su, a word is never
    counted as co-occurring with itself: :math:`X_{ii} = 0` and the model learns that entry.

    Args:
        tokens: token ids in reading order, integers in ``[0, n_words)``, shape ``(n,)``.
        n_words: the vocabulary size ``V``.
        window: the window half-width ``K >= 1``.
        documents: the document index of every token, shape ``(n,)``; pairs never cross a change
            of index. ``None`` treats the tokens as one document.
        distance_weighting: weight a pair at distance :math:`k` by :math:`1/k`.

    Returns:
        :math:`X`, shape ``(V, V)``, symmetric, with a zero diagonal.

    Raises:
        ValueError: if ``tokens`` is not 1-D or holds ids outside ``[0, n_words)``, or
            ``documents`` has a different shape.
        TypeError: if ``tokens`` or ``documents`` is not integer, or ``n_words`` / ``window`` is
            not an integer.

    Used in: :doc:`/book/representations/simpler-glove`, eq. :eq:`glove-pmi-estimate`.
    """
    V = check_count(n_words, "n_words")
    K = check_count(window, "window")
    ids = _int_array(tokens, "tokens")
    if ids.size and (ids.min() < 0 or ids.max() >= V):
        raise ValueError(f"tokens must lie in [0, n_words={V}), got range "
                         f"[{ids.min()}, {ids.max()}]")
    doc = np.zeros_like(ids) if documents is None else _int_array(documents, "documents")
    if doc.shape != ids.shape:
        raise ValueError(f"documents must have shape {ids.shape}, got {doc.shape}")
    flat = np.zeros(V * V)
    for k in range(1, K + 1):                        # a loop over offsets, not over tokens
        same = doc[:-k] == doc[k:]
        i, j = ids[:-k][same], ids[k:][same]
        other = i != j
        flat += np.bincount(i[other] * V + j[other], minlength=V * V) / (
            k if distance_weighting else 1)
    X = flat.reshape(V, V)
    return X + X.T


def _int_array(x: Any, name: str) -> NDArray[np.int64]:
    if is_tensor(x):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def pmi(counts: Any, fill: float = 0.0) -> NDArray[np.float64]:
    r"""Pointwise mutual information estimated from co-occurrence counts.

    .. math::

       \widetilde{\mathrm{PMI}}_{ij} = \log \frac{\tilde P(w_i, w_j)}{\tilde P(w_i)\,\tilde P(w_j)}
       = \log \frac{X_{ij}\, T}{X_{i\cdot}\, X_{\cdot j}}, \qquad
       T = \sum_{i,j} X_{ij},

    with the marginals :math:`X_{i\cdot} = \sum_j X_{ij}`, :math:`X_{\cdot j} = \sum_i X_{ij}`, so
    that :math:`\tilde P(w_i) = \sum_j \tilde P(w_i, w_j)`. Pairs never seen
    (:math:`X_{ij} = 0`, PMI :math:`-\infty`) get ``fill``; they carry zero weight in the loss.
    ``fill=0`` makes :math:`\max(\widetilde{\mathrm{PMI}}, 0)` the positive PMI (PPMI).

    Args:
        counts: co-occurrence counts :math:`X`, shape ``(V, V)``, non-negative.
        fill: the value for pairs with :math:`X_{ij} = 0`.

    Returns:
        The PMI matrix, shape ``(V, V)``.

    Raises:
        ValueError: if ``counts`` is not square, is negative somewhere, holds NaN, or sums to 0.
        TypeError: if ``counts`` is not numeric or ``fill`` not a real number.

    Used in: :doc:`/book/representations/simpler-glove`, eq. :eq:`glove-pmi-estimate`.
    """
    X = _counts_matrix(counts)
    if isinstance(fill, bool) or not isinstance(fill, int | float | np.integer | np.floating):
        raise TypeError(f"fill must be a real number, got {type(fill).__name__}")
    T = X.sum()
    if T <= 0:
        raise ValueError("counts must hold at least one co-occurrence, got all zeros")
    seen = X > 0
    row, col = X.sum(1), X.sum(0)
    with np.errstate(divide="ignore"):
        value = (np.log(np.where(seen, X, 1.0)) + np.log(T)
                 - np.log(np.where(row > 0, row, 1.0))[:, None]
                 - np.log(np.where(col > 0, col, 1.0))[None, :])
    return np.where(seen, value, float(fill))


def glove_weight(counts: Any, x_max: float = 100.0, alpha: float = 0.75,
                 truncate: bool = True) -> NDArray[np.float64]:
    r"""GloVe's pair weights, with Su's option to skip the truncation at :math:`x_{\max}`.

    .. math::

       \lambda_{ij} = \Big(\min\big\{X_{ij}/x_{\max},\, 1\big\}\Big)^{\alpha}
       \quad\text{(truncated)}, \qquad
       \lambda_{ij} = \big(X_{ij}/x_{\max}\big)^{\alpha} \quad\text{(not truncated)} .

    Unseen pairs get :math:`\lambda_{ij} = 0`, so they drop out of the loss.

    Args:
        counts: co-occurrence counts :math:`X`, shape ``(V, V)``, non-negative.
        x_max: the count at which the weight saturates, > 0.
        alpha: the exponent, > 0.
        truncate: cap the weight at 1.

    Returns:
        :math:`\lambda`, shape ``(V, V)``.

    Raises:
        ValueError: if ``counts`` is not square or negative somewhere, or ``x_max`` / ``alpha``
            is not positive.
        TypeError: if an argument is not numeric.

    Used in: :doc:`/book/representations/simpler-glove`, eq. :eq:`glove-weight`.
    """
    X = _counts_matrix(counts)
    x_max = check_positive(x_max, "x_max")
    alpha = check_positive(alpha, "alpha")
    r = X / x_max
    return (np.minimum(r, 1.0) if truncate else r) ** alpha


# --- the loss, its gradient and the fit -------------------------------------------------------

def _loss_inputs(vectors: Any, target: Any, weights: Any) -> tuple[Any, Any, Any]:
    if is_tensor(vectors):
        v = as_tensor(vectors, "vectors", ndim=2)
        n = v.shape[0]
        m = as_tensor(target, "target", shape=(n, n), dtype=v.dtype).to(v.dtype)
        w = as_tensor(weights, "weights", shape=(n, n), dtype=v.dtype).to(v.dtype)
        if bool((w < 0).any()):
            raise ValueError("weights must be >= 0")
        return v, m, w
    va = as_array(vectors, "vectors", ndim=2)
    n = va.shape[0]
    ma = as_array(target, "target", shape=(n, n))
    wa = as_array(weights, "weights", shape=(n, n))
    if np.any(wa < 0):
        raise ValueError(f"weights must be >= 0, got minimum {wa.min():.3g}")
    return va, ma, wa


def simpler_glove_loss(vectors: Any, target: Any, weights: Any) -> Any:
    r"""The simpler-GloVe loss: weighted squared error of inner products against the PMI.

    .. math::

       L(v) = \sum_{i,j} \lambda_{ij}
       \Big(\langle v_i, v_j\rangle - \widetilde{\mathrm{PMI}}_{ij}\Big)^2 ,

    a sum over ordered pairs, so a symmetric :math:`\lambda` counts each unordered pair twice.

    Args:
        vectors: word vectors :math:`v_i` as rows, shape ``(V, d)``; a NumPy array or a torch
            tensor (then the result is a 0-d tensor that autograd can differentiate).
        target: the PMI targets, shape ``(V, V)``.
        weights: the pair weights :math:`\lambda_{ij} \ge 0`, shape ``(V, V)``.

    Returns:
        :math:`L`, a float (or a 0-d tensor for tensor input).

    Raises:
        ValueError: if the shapes do not match, an input holds NaN or infinity, or a weight is
            negative.
        TypeError: if an input is not numeric.

    Used in: :doc:`/book/representations/simpler-glove`, eq. :eq:`simpler-glove-loss`.
    """
    v, m, w = _loss_inputs(vectors, target, weights)
    loss = (w * (v @ v.T - m) ** 2).sum()
    return loss if is_tensor(v) else float(loss)


def simpler_glove_grad(vectors: Any, target: Any, weights: Any) -> NDArray[np.float64]:
    r"""Gradient of :func:`simpler_glove_loss` with respect to the vectors.

    .. math::

       \nabla_{v_i} L = 2 \sum_j \big(\lambda_{ij} r_{ij} + \lambda_{ji} r_{ji}\big)\, v_j,
       \qquad r_{ij} = \langle v_i, v_j\rangle - \widetilde{\mathrm{PMI}}_{ij},

    that is :math:`\nabla L = 2(R + R^\top)V` with :math:`R = \lambda \odot r`. For one pair this
    is Su's per-pair gradient :math:`\lambda_{ij} r_{ij} v_j` up to the factor 2 that his
    formula drops (which Adagrad ignores).

    Args:
        vectors: word vectors as rows, shape ``(V, d)``.
        target: the PMI targets, shape ``(V, V)``.
        weights: the pair weights, shape ``(V, V)``, non-negative.

    Returns:
        :math:`\nabla L`, shape ``(V, d)``.

    Raises:
        ValueError: as :func:`simpler_glove_loss`.
        TypeError: if an input is not numeric.

    Used in: :doc:`/book/representations/simpler-glove`, eq. :eq:`simpler-glove-grad`.
    """
    v, m, w = _loss_inputs(as_array(vectors, "vectors", ndim=2), target, weights)
    R = w * (v @ v.T - m)
    return 2.0 * (R + R.T) @ v


def fit_simpler_glove(target: Any, weights: Any, dim: int, rng: np.random.Generator,
                      epochs: int = 100, lr: float = 0.1,
                      ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Fit simpler GloVe by full-batch Adagrad from GloVe's random start.

    Start from :math:`v_i \sim \mathcal U(-\tfrac12, \tfrac12)^d / d` and repeat, with
    :math:`g = \nabla L` from :func:`simpler_glove_grad` and :math:`G_0 = 0`,

    .. math::

       G_n = G_{n-1} + g_n \odot g_n, \qquad
       v_n = v_{n-1} - \eta\, \frac{g_n}{\sqrt{G_n}}

    (elementwise; a coordinate whose gradient has always been 0 stays put). Multiplying the loss
    by :math:`c > 0` multiplies :math:`g_n` by :math:`c` and :math:`\sqrt{G_n}` by :math:`c`, so
    the iterates do not change. Su and GloVe update pair by pair; this is the deterministic
    full-batch version of the same rule.

    Args:
        target: the PMI targets, shape ``(V, V)``.
        weights: the pair weights, shape ``(V, V)``, non-negative (0 drops a pair).
        dim: the vector dimension ``d``.
        rng: the random generator for the start, e.g. ``np.random.default_rng(0)``.
        epochs: the number of full-batch steps, >= 1.
        lr: the learning rate :math:`\eta > 0` (Su's default 0.1).

    Returns:
        ``(vectors, losses)``: the fitted vectors, shape ``(V, d)``, and the loss before each step,
        shape ``(epochs,)``.

    Raises:
        ValueError: if the shapes are wrong, an input holds NaN, a weight is negative, or
            ``dim`` / ``epochs`` / ``lr`` is not positive.
        TypeError: if ``rng`` is not a :class:`numpy.random.Generator` or a count is not an
            integer.

    Used in: :doc:`/book/representations/simpler-glove`, eq. :eq:`glove-adagrad`.
    """
    m = _square(target, "target")
    n = m.shape[0]
    w = as_array(weights, "weights", shape=(n, n))
    if np.any(w < 0):
        raise ValueError(f"weights must be >= 0, got minimum {w.min():.3g}")
    d = check_count(dim, "dim")
    epochs = check_count(epochs, "epochs")
    lr = check_positive(lr, "lr")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    v = (rng.random((n, d)) - 0.5) / d
    symmetric = np.array_equal(w, w.T) and np.array_equal(m, m.T)
    G = np.zeros_like(v)
    losses = np.empty(epochs)
    r = np.empty((n, n))
    R = np.empty((n, n))
    for t in range(epochs):                          # a loop over optimisation steps
        np.matmul(v, v.T, out=r)
        r -= m                                       # r = V Vᵀ − PMI
        np.multiply(w, r, out=R)                     # R = λ ⊙ r
        losses[t] = float(np.vdot(R, r))
        g = 4.0 * (R @ v) if symmetric else 2.0 * ((R + R.T) @ v)
        G += g * g
        step = np.divide(g, np.sqrt(G), out=np.zeros_like(g), where=G > 0)
        v -= lr * step
    return v, losses


def glove_loss(w: Any, w_hat: Any, b: Any, b_hat: Any, log_counts: Any, weights: Any) -> float:
    r"""The original GloVe loss, with context vectors and two sets of biases.

    .. math::

       L_{\mathrm{GloVe}} = \sum_{i,j} \lambda_{ij}
       \Big(\langle w_i, \hat w_j\rangle + b_i + \hat b_j - \log X_{ij}\Big)^2 .

    Args:
        w: word vectors, shape ``(V, d)``.
        w_hat: context vectors, shape ``(V, d)``.
        b: word biases, shape ``(V,)``.
        b_hat: context biases, shape ``(V,)``.
        log_counts: the targets :math:`\log X_{ij}`, shape ``(V, V)`` (any finite value where
            :math:`\lambda_{ij} = 0`).
        weights: the pair weights :math:`\lambda_{ij} \ge 0`, shape ``(V, V)``.

    Returns:
        :math:`L_{\mathrm{GloVe}}`, a float.

    Raises:
        ValueError: if the shapes do not match, an input holds NaN or infinity, or a weight is
            negative.
        TypeError: if an input is not numeric.

    Used in: :doc:`/book/representations/simpler-glove`, eq. :eq:`glove-shift`.
    """
    w = as_array(w, "w", ndim=2)
    n, d = w.shape
    w_hat = as_array(w_hat, "w_hat", shape=(n, d))
    b = as_array(b, "b", shape=(n,))
    b_hat = as_array(b_hat, "b_hat", shape=(n,))
    target = as_array(log_counts, "log_counts", shape=(n, n))
    lam = as_array(weights, "weights", shape=(n, n))
    if np.any(lam < 0):
        raise ValueError(f"weights must be >= 0, got minimum {lam.min():.3g}")
    score = w @ w_hat.T + b[:, None] + b_hat[None, :]
    return float(np.sum(lam * (score - target) ** 2))


# --- what the vectors are used for ------------------------------------------------------------

def profile_features(vectors: Any) -> NDArray[np.float64]:
    r"""Map the vectors so that cosines become correlations of PMI profiles.

    The PMI profile of word :math:`i` is the row :math:`(\langle v_i, v_k\rangle)_{k=1}^{V}`.
    Its Pearson correlation with the profile of word :math:`j` is

    .. math::

       \rho_{ij} = \frac{v_i S v_j^\top}{\sqrt{v_i S v_i^\top}\sqrt{v_j S v_j^\top}}
       = \cos(v_i U, v_j U), \qquad
       S = \sum_k (v_k - \bar v)^\top (v_k - \bar v) = U U^\top ,

    with :math:`U` the (lower) Cholesky factor of :math:`S`. This returns the rows :math:`v_i U`.

    Args:
        vectors: word vectors as rows, shape ``(V, d)`` with ``V > d``.

    Returns:
        :math:`VU`, shape ``(V, d)``.

    Raises:
        ValueError: if ``vectors`` is not 2-D, holds NaN, or the centred vectors do not span
            :math:`\mathbb{R}^d` (then :math:`S` is singular).
        TypeError: if ``vectors`` is not numeric.

    Used in: :doc:`/book/representations/simpler-glove`, eq. :eq:`pmi-profile-correlation`.
    """
    v = as_array(vectors, "vectors", ndim=2)
    c = v - v.mean(axis=0)
    try:
        U = np.linalg.cholesky(c.T @ c)
    except np.linalg.LinAlgError as err:
        raise ValueError("vectors: the centred vectors must span R^d (need V > d and full "
                         "rank) for the Cholesky factor") from err
    return v @ U


def pair_indices(words_a: Sequence[str], words_b: Sequence[str], vocab: Sequence[str],
                 normalise: Callable[[str], str] | None = None,
                 ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]:
    r"""Vocabulary indices of evaluation word pairs, and which pairs are covered.

    Args:
        words_a: first words of the ``n`` pairs.
        words_b: second words, same length.
        vocab: the vocabulary, a sequence of ``V`` distinct words.
        normalise: applied to every pair word before lookup (e.g. lower-casing and stemming);
            ``None`` lower-cases.

    Returns:
        ``(ia, ib, covered)``: indices into ``vocab`` of the covered pairs, shape ``(m,)`` each,
        and the mask of covered pairs (both words in ``vocab``), shape ``(n,)``.

    Raises:
        ValueError: if ``words_a`` and ``words_b`` differ in length.

    Used in: :doc:`/book/representations/simpler-glove`.
    """
    if len(words_a) != len(words_b):
        raise ValueError(f"words_a and words_b must have the same length, got {len(words_a)} "
                         f"and {len(words_b)}")
    norm = normalise if normalise is not None else str.lower
    index = {w: k for k, w in enumerate(vocab)}
    a = np.array([index.get(norm(x), -1) for x in words_a], dtype=np.int64)
    b = np.array([index.get(norm(x), -1) for x in words_b], dtype=np.int64)
    covered = (a >= 0) & (b >= 0)
    return a[covered], b[covered], covered
