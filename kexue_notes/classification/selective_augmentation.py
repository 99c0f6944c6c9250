r"""Selective text augmentation (STA): word roles from label correlation and semantic similarity.

Guo, Han and Huang give each word of a labelled text one of four roles from two scores: its
statistical correlation with the text's label, the weighted log-likelihood ratio (WLLR), and its
semantic similarity to the label. Gold words score high on both, Venture words only on correlation,
Bonus words only on similarity, Trivial words on neither. Edits are then applied only to the roles
suited to each operation (never replace or delete a Gold word), where EDA-style augmentation picks
words uniformly.

This module holds the scores (:func:`class_word_rates`, :func:`wllr`, :func:`bernoulli_kl`,
:func:`presence_mutual_information`, :func:`llr_from_pmi`), nearest neighbours among static
MiniLM word vectors (:func:`nearest_neighbours`, on the vectors of
:func:`kexue_notes.text_data.piece_mean_vectors`), the role
assignment (:func:`assign_roles`), the closed forms for edits (:func:`expected_edits`,
:func:`p_untouched`, :func:`p_untouched_fixed`, :func:`matched_selective_rate`,
:func:`retained_evidence`) and the edit operations themselves (:func:`augment`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kexue_notes._validate import as_array, check_count, check_fraction, check_positive

__all__ = [
    "assign_roles",
    "augment",
    "bernoulli_kl",
    "class_word_rates",
    "expected_edits",
    "llr_from_pmi",
    "matched_selective_rate",
    "nearest_neighbours",
    "p_untouched",
    "p_untouched_fixed",
    "presence_mutual_information",
    "retained_evidence",
    "wllr",
]

GOLD, VENTURE, BONUS, TRIVIAL = 0, 1, 2, 3
ROLE_NAMES = ("Gold", "Venture", "Bonus", "Trivial")
OPERATIONS = ("delete", "replace", "insert", "select")
#: The roles STA edits for each operation (from the authors' README): replacement and deletion
#: touch every role but Gold; insertion inserts neighbours of Gold, Bonus and Trivial words;
#: positive selection keeps only the Gold words, as in the README's code example (its list of
#: rules also selects Trivial words and punctuation).
STA_CANDIDATES: dict[str, frozenset[int]] = {
    "delete": frozenset({VENTURE, BONUS, TRIVIAL}),
    "replace": frozenset({VENTURE, BONUS, TRIVIAL}),
    "insert": frozenset({GOLD, BONUS, TRIVIAL}),
    "select": frozenset({GOLD}),
}

# --- the correlation score ------------------------------------------------------------------------

def _counts_and_labels(counts: Any, labels: Any) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    if hasattr(counts, "toarray"):          # a scipy sparse matrix
        counts = counts.toarray()
    x = as_array(counts, "counts", ndim=2)
    if np.any(x < 0):
        raise ValueError("counts must be non-negative")
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"labels must have shape ({x.shape[0]},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"labels must be integers, got dtype {y.dtype}")
    if y.min() < 0:
        raise ValueError("labels must be >= 0")
    present = np.bincount(y)
    if present.size < 2 or np.any(present == 0):
        raise ValueError("labels must use every class 0..C-1, with C >= 2")
    return x, y.astype(np.int64)


def class_word_rates(counts: Any, labels: Any, *, presence: bool = True,
                     alpha: float = 1.0) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Smoothed rates :math:`p(w\mid c)`, :math:`p(w\mid\neg c)` of each word in and out of
    each class.

    With ``presence`` (the authors' code: document frequencies), :math:`p(w\mid c) =
    (\mathrm{df}_c(w) + \alpha)/(n_c + 2\alpha)`, the smoothed fraction of class-:math:`c`
    texts that contain :math:`w`, and likewise over the texts of all other classes for
    :math:`p(w\mid\neg c)`.
    Without it, token frequencies:
    :math:`p(w\mid c) = (\mathrm{tf}_c(w) + \alpha)/(T_c + \alpha V)`,
    a distribution over the :math:`V` words.

    Args:
        counts: word counts, shape ``(n_texts, V)`` (dense, or scipy sparse).
        labels: class of each text, shape ``(n_texts,)``, integers covering ``0..C-1``.
        presence: document (True) or token (False) frequencies.
        alpha: additive smoothing, ``>= 0``.

    Returns:
        ``(p_in, p_out)``, each of shape ``(C, V)``.

    Used in: :doc:`/book/classification/selective-text-augmentation`, eq. :eq:`sta-wllr`.
    """
    x, y = _counts_and_labels(counts, labels)
    if not isinstance(presence, bool):
        raise TypeError(f"presence must be a bool, got {type(presence).__name__}")
    a = check_positive(alpha, "alpha", allow_zero=True)
    n_classes = int(y.max()) + 1
    onehot = np.eye(n_classes)[y]                                   # (n, C)
    v = x.shape[1]
    if presence:
        per_class = onehot.T @ (x > 0).astype(np.float64)          # (C, V) document frequencies
        sizes = onehot.sum(0)[:, None]                              # texts per class
        p_in = (per_class + a) / (sizes + 2 * a)
        p_out = (per_class.sum(0) - per_class + a) / (sizes.sum() - sizes + 2 * a)
    else:
        per_class = onehot.T @ x                                    # (C, V) token counts
        sizes = per_class.sum(1, keepdims=True)
        p_in = (per_class + a) / (sizes + a * v)
        p_out = (per_class.sum(0) - per_class + a) / (sizes.sum() - sizes + a * v)
    if np.any(p_in <= 0) or np.any(p_out <= 0):
        raise ValueError("a word has zero rate in or out of a class; use alpha > 0")
    return p_in, p_out


def wllr(p_in: Any, p_out: Any) -> NDArray[np.float64]:
    r"""Weighted log-likelihood ratio :math:`r = p\,\log(p/q)`, elementwise, natural log.

    The authors' code takes :math:`\log_{10}`, a constant factor :math:`1/\ln 10` that changes no
    ranking. Summed over the words of a distribution :math:`p(\cdot\mid c)` (token rates) it is
    :math:`\mathrm{KL}(p(\cdot\mid c)\,\|\,p(\cdot\mid\neg c))`; with presence rates the sum
    is not a divergence (each term is the first of the two terms of :func:`bernoulli_kl`).

    Args:
        p_in: :math:`p(w\mid c)`, values in ``(0, 1]``, any shape.
        p_out: :math:`p(w\mid\neg c)`, values in ``(0, 1]``, the same shape.

    Returns:
        The array of :math:`r(w, c)`, the same shape.

    Used in: :doc:`/book/classification/selective-text-augmentation`, eq. :eq:`sta-wllr`.
    """
    p = as_array(p_in, "p_in")
    q = as_array(p_out, "p_out")
    if p.shape != q.shape:
        raise ValueError(f"p_out must have the shape of p_in {p.shape}, got {q.shape}")
    for arr, name in ((p, "p_in"), (q, "p_out")):
        if np.any(arr <= 0) or np.any(arr > 1):
            raise ValueError(f"{name} must lie in (0, 1]")
    return p * np.log(p / q)


def bernoulli_kl(p: Any, q: Any) -> NDArray[np.float64]:
    r""":math:`\mathrm{KL}(\mathrm{Bern}(p)\,\|\,\mathrm{Bern}(q)) = p\log\frac pq +
    (1-p)\log\frac{1-p}{1-q}`, elementwise, with :math:`0\log 0 = 0`.

    With presence rates the first term is the WLLR; the second, for the texts without the word, is
    what the WLLR leaves out.

    Args:
        p: values in ``[0, 1]``, any shape.
        q: values in ``(0, 1)``, the same shape.

    Used in: :doc:`/book/classification/selective-text-augmentation`, eq. :eq:`sta-bern`.
    """
    pa = as_array(p, "p")
    qa = as_array(q, "q")
    if pa.shape != qa.shape:
        raise ValueError(f"q must have the shape of p {pa.shape}, got {qa.shape}")
    if np.any(pa < 0) or np.any(pa > 1):
        raise ValueError("p must lie in [0, 1]")
    if np.any(qa <= 0) or np.any(qa >= 1):
        raise ValueError("q must lie in (0, 1)")
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = np.where(pa > 0, pa * np.log(pa / qa), 0.0)
        t0 = np.where(pa < 1, (1 - pa) * np.log((1 - pa) / (1 - qa)), 0.0)
    return t1 + t0


def presence_mutual_information(counts: Any, labels: Any) -> NDArray[np.float64]:
    r"""Mutual information (nats) between each word's presence and the label, unsmoothed.

    .. math::

       I_w = \sum_c \pi_c\,\mathrm{KL}\bigl(\mathrm{Bern}(p(w\mid c))\,\|\,
             \mathrm{Bern}(p(w))\bigr),
       \qquad p(w) = \sum_c \pi_c\,p(w\mid c),

    with :math:`\pi_c` the class frequencies and :math:`p(w\mid c)` the raw document frequencies.
    A word in every text or in none has :math:`I_w = 0`.

    Args:
        counts: word counts, shape ``(n_texts, V)``.
        labels: classes, shape ``(n_texts,)``.

    Returns:
        Shape ``(V,)``.

    Used in: :doc:`/book/classification/selective-text-augmentation`, eq. :eq:`sta-mi`.
    """
    x, y = _counts_and_labels(counts, labels)
    n_classes = int(y.max()) + 1
    onehot = np.eye(n_classes)[y]
    sizes = onehot.sum(0)
    prior = sizes / sizes.sum()
    rate = (onehot.T @ (x > 0).astype(np.float64)) / sizes[:, None]        # (C, V)
    marginal = prior @ rate                                                  # (V,)
    out = np.zeros(x.shape[1])
    inside = (marginal > 0) & (marginal < 1)
    for c in range(n_classes):
        out[inside] += prior[c] * bernoulli_kl(rate[c, inside], marginal[inside])
    return out


def llr_from_pmi(pmi: Any, prior: float) -> NDArray[np.float64]:
    r"""Log-likelihood ratio :math:`\log\frac{p(w\mid c)}{p(w\mid\neg c)}` from the PMI of
    :math:`(w, c)` and the class prior :math:`\pi = p(c)`:

    .. math:: \log\frac{p(w\mid c)}{p(w\mid\neg c)} = \log\frac{1-\pi}{e^{-\mathrm{PMI}} - \pi},
              \qquad \mathrm{PMI} = \log\frac{p(w\mid c)}{p(w)} < \log\frac1\pi .

    Args:
        pmi: PMI values, any shape, each below :math:`\log(1/\pi)`.
        prior: :math:`\pi \in (0, 1)`.

    Used in: :doc:`/book/classification/selective-text-augmentation`, eq. :eq:`sta-pmi`.
    """
    m = as_array(pmi, "pmi")
    pi = check_fraction(prior, "prior", closed=False)
    if np.any(m >= -np.log(pi)):
        raise ValueError("pmi must be below log(1/prior)")
    return np.log(1 - pi) - np.log(np.exp(-m) - pi)


# --- semantic similarity: MiniLM's static word-piece table ----------------------------------------

def nearest_neighbours(words: Sequence[str], vectors: Any, k: int) -> dict[str, list[str]]:
    r"""For each word, the ``k`` other words of the list with the largest cosine similarity.

    The stand-in for a synonym dictionary: :math:`N_k(w) = \operatorname{top-}k_{u\ne w}\,
    v_u^\top v_w` over the given vocabulary (``vectors`` are unit rows), most similar first.

    Args:
        words: ``n`` distinct words.
        vectors: their unit vectors, shape ``(n, d)``.
        k: neighbours per word, ``1 <= k < n``.

    Used in: :doc:`/book/classification/selective-text-augmentation`, section "The experiment".
    """
    vecs = as_array(vectors, "vectors", ndim=2)
    if len(words) != vecs.shape[0]:
        raise ValueError(f"words must have one entry per row of vectors ({vecs.shape[0]})")
    if len(set(words)) != len(words):
        raise ValueError("words must be distinct")
    kk = check_count(k, "k")
    if kk >= len(words):
        raise ValueError(f"k must be below the number of words ({len(words)}), got {kk}")
    sims = vecs @ vecs.T
    np.fill_diagonal(sims, -np.inf)
    top = np.argpartition(sims, -kk, axis=1)[:, -kk:]              # the k largest, unordered
    order = np.take_along_axis(top, np.argsort(-np.take_along_axis(sims, top, 1), 1), 1)
    return {w: [words[j] for j in row] for w, row in zip(words, order, strict=True)}


# --- roles ----------------------------------------------------------------------------------------

def assign_roles(correlation: Any, similarity: Any, *, q: float = 0.5) -> NDArray[np.int64]:
    r"""Role of each word from its two scores, split at their ``q``-quantiles over the given words.

    High means :math:`\ge` the quantile (``numpy.quantile``, linear; ``q = 0.5`` is the median, the
    authors' per-text default). Gold = high/high, Venture = high correlation / low similarity,
    Bonus = low / high, Trivial = low / low; coded ``GOLD, VENTURE, BONUS, TRIVIAL = 0, 1, 2, 3``.

    Args:
        correlation: e.g. the WLLR with the text's label, shape ``(n,)``.
        similarity: e.g. the cosine with the label, shape ``(n,)``.
        q: quantile in ``[0, 1]``.

    Returns:
        Shape ``(n,)``, integers in ``0..3``.

    Used in: :doc:`/book/classification/selective-text-augmentation`, eq. :eq:`sta-roles`.
    """
    r = as_array(correlation, "correlation", ndim=1)
    s = as_array(similarity, "similarity", shape=r.shape)
    if r.size == 0:
        raise ValueError("correlation must hold at least one word")
    qq = check_fraction(q, "q")
    high_r = r >= np.quantile(r, qq)
    high_s = s >= np.quantile(s, qq)
    return np.where(high_r, np.where(high_s, GOLD, VENTURE),
                    np.where(high_s, BONUS, TRIVIAL)).astype(np.int64)


# --- closed forms for edits -----------------------------------------------------------------------

def _rates(rates: Any, name: str) -> NDArray[np.float64]:
    arr = as_array(rates, name)
    if np.any(arr < 0) or np.any(arr > 1):
        raise ValueError(f"{name} must lie in [0, 1]")
    return arr


def expected_edits(role_counts: Any, rates: Any) -> float:
    r"""Expected number of edited words, :math:`\mathbb E[E] = \sum_r \rho_r n_r`, when each word of
    role :math:`r` is edited independently with probability :math:`\rho_r`.

    Args:
        role_counts: :math:`n_r \ge 0`, shape ``(R,)``.
        rates: :math:`\rho_r \in [0, 1]`, shape ``(R,)``.

    Used in: :doc:`/book/classification/selective-text-augmentation`, eq. :eq:`sta-edits`.
    """
    n = as_array(role_counts, "role_counts", ndim=1)
    if np.any(n < 0):
        raise ValueError("role_counts must be >= 0")
    rho = _rates(rates, "rates")
    if rho.shape != n.shape:
        raise ValueError(f"rates must have shape {n.shape}, got {rho.shape}")
    return float(n @ rho)


def p_untouched(n_protected: int, rate: float) -> float:
    r"""Probability that none of :math:`g` words is edited when each is edited independently with
    probability :math:`\rho`: :math:`(1-\rho)^{g}`.

    Used in: :doc:`/book/classification/selective-text-augmentation`, eq. :eq:`sta-edits`.
    """
    g = check_count(n_protected, "n_protected", minimum=0)
    return float((1 - check_fraction(rate, "rate")) ** g)


def p_untouched_fixed(length: int, n_protected: int, n_edits: int) -> float:
    r"""Probability that none of :math:`g` words is among :math:`k` positions drawn uniformly
    without replacement from :math:`L` (EDA's replacement and swap pick a fixed count):

    .. math:: \binom{L-g}{k}\Big/\binom{L}{k} = \prod_{i=0}^{k-1}\frac{L-g-i}{L-i}.

    Used in: :doc:`/book/classification/selective-text-augmentation`, eq. :eq:`sta-fixed`.
    """
    L = check_count(length, "length")
    g = check_count(n_protected, "n_protected", minimum=0)
    k = check_count(n_edits, "n_edits", minimum=0)
    if g > L:
        raise ValueError(f"n_protected must be <= length ({L}), got {g}")
    if k > L:
        raise ValueError(f"n_edits must be <= length ({L}), got {k}")
    i = np.arange(k)
    return float(np.prod(np.maximum(L - g - i, 0) / (L - i)))


def matched_selective_rate(rate: float, length: int, n_protected: int) -> float:
    r"""Per-word rate on the :math:`L-g` unprotected words that gives the same expected number of
    edits as rate :math:`\rho` on all :math:`L`: :math:`\rho' = \rho L/(L-g)`, at most 1.

    Used in: :doc:`/book/classification/selective-text-augmentation`, eq. :eq:`sta-matched`.
    """
    rho = check_fraction(rate, "rate")
    L = check_count(length, "length")
    g = check_count(n_protected, "n_protected", minimum=0)
    if g >= L:
        raise ValueError(f"n_protected must be < length ({L}), got {g}")
    out = rho * L / (L - g)
    if out > 1:
        raise ValueError(f"rate {rho} on {L} words cannot be matched on {L - g}: needs {out:.3g}")
    return out


def retained_evidence(evidence: Any, edit_prob: Any) -> tuple[float, float]:
    r"""Mean and variance of the label evidence left after independent deletions.

    With additive evidence :math:`s(x) = \sum_w s_w` and word :math:`w` deleted with probability
    :math:`\rho_w`: :math:`\mathbb E = \sum_w (1-\rho_w)s_w`,
    :math:`\operatorname{Var} = \sum_w \rho_w(1-\rho_w)s_w^2`.

    Args:
        evidence: :math:`s_w`, shape ``(L,)``.
        edit_prob: :math:`\rho_w \in [0, 1]`, shape ``(L,)``.

    Used in: :doc:`/book/classification/selective-text-augmentation`, eq. :eq:`sta-evidence`.
    """
    s = as_array(evidence, "evidence", ndim=1)
    rho = _rates(edit_prob, "edit_prob")
    if rho.shape != s.shape:
        raise ValueError(f"edit_prob must have shape {s.shape}, got {rho.shape}")
    return float(((1 - rho) * s).sum()), float((rho * (1 - rho) * s ** 2).sum())


# --- the edit operations --------------------------------------------------------------------------

def augment(tokens: Sequence[str], rng: np.random.Generator, *, op: str, rate: float,
            roles: Sequence[int] | None = None,
            neighbours: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    r"""One edited copy of ``tokens``: EDA-style (``roles=None``) or selective (STA).

    Let :math:`L` be the length and :math:`A` the positions an operation may touch: all of them
    uniformly (EDA), or those whose role is in ``STA_CANDIDATES[op]`` (STA); replacement and
    insertion further need a word with neighbours.

    - ``"delete"``: each position in :math:`A` is deleted independently with probability
      :math:`\min(1, \rho L/|A|)`, so the expected count is :math:`\rho L` whenever that is feasible
      (for EDA, :math:`|A| = L` and the rate is :math:`\rho`). An empty result returns ``tokens``.
    - ``"replace"``: :math:`\max(1, \lfloor\rho L\rfloor)` distinct positions of :math:`A` (fewer if
      :math:`A` is smaller) get a uniform draw from their word's neighbours.
    - ``"insert"``: as many times, a neighbour of the word at a uniform position of :math:`A` is
      inserted at a uniform position.
    - ``"select"`` (STA only): keep the Gold words in order; none, and ``tokens`` come back.

    Args:
        tokens: the text as words, length ``L >= 1``.
        rng: a ``numpy.random.Generator``.
        op: one of ``OPERATIONS``.
        rate: :math:`\rho \in [0, 1]`.
        roles: role of each token (``0..3``), or ``None`` for uniform edits.
        neighbours: word to candidate replacements; needed by ``"replace"`` and ``"insert"``.

    Used in: :doc:`/book/classification/selective-text-augmentation`, section "The experiment".
    """
    toks = list(tokens)
    if len(toks) == 0 or not all(isinstance(t, str) for t in toks):
        raise ValueError("tokens must be a non-empty sequence of strings")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if op not in OPERATIONS:
        raise ValueError(f"op must be one of {OPERATIONS}, got {op!r}")
    rho = check_fraction(rate, "rate")
    L = len(toks)
    if roles is None:
        if op == "select":
            raise ValueError("roles are needed for op='select' (it keeps the Gold words)")
        allowed = np.ones(L, dtype=bool)
    else:
        role_arr = np.asarray(roles)
        if role_arr.shape != (L,) or not np.isin(role_arr, (GOLD, VENTURE, BONUS, TRIVIAL)).all():
            raise ValueError(f"roles must hold one role in 0..3 per token ({L})")
        allowed = np.isin(role_arr, list(STA_CANDIDATES[op]))
    if op == "select":
        kept = [t for t, a in zip(toks, allowed, strict=True) if a]
        return kept if kept else toks
    if op == "delete":
        m = int(allowed.sum())
        if m == 0:
            return toks
        p = min(1.0, rho * L / m)
        drop = allowed & (rng.random(L) < p)
        kept = [t for t, d in zip(toks, drop, strict=True) if not d]
        return kept if kept else toks
    if neighbours is None:
        raise ValueError(f"neighbours are needed for op={op!r}")
    eligible = np.flatnonzero(allowed & np.array([len(neighbours.get(t, ())) > 0 for t in toks]))
    n_edits = max(1, int(rho * L))
    if eligible.size == 0:
        return toks
    if op == "replace":
        chosen = rng.choice(eligible, size=min(n_edits, eligible.size), replace=False)
        for i in chosen:
            options = neighbours[toks[i]]
            toks[i] = options[int(rng.integers(len(options)))]
        return toks
    out = toks.copy()
    for _ in range(n_edits):                                   # op == "insert"
        src = toks[int(eligible[int(rng.integers(eligible.size))])]
        options = neighbours[src]
        out.insert(int(rng.integers(len(out) + 1)), options[int(rng.integers(len(options)))])
    return out
