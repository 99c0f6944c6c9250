r"""AEDA, random insertion of punctuation marks, with the exact law of its output.

The augmentation follows the authors' reference code (``akkarimi/aeda_nlp``, ``code/aeda.py``):
split a sentence on single spaces into :math:`L` words, draw the number of insertions
:math:`q \sim \mathrm{Uniform}\{1, \dots, Q\}` with :math:`Q = \lfloor rL + 1 \rfloor` (ratio
:math:`r = 0.3`), choose :math:`q` distinct word positions uniformly, and put one mark, drawn
uniformly from six, in front of each chosen word. The closed forms below give the moments of
:math:`q`, the per-position rate, the number of distinct outputs and the probability that two
independent augmentations coincide; :func:`output_law` enumerates the law exactly for short
sentences. The page's second model embeds text with MiniLM's word-piece input embeddings
(:func:`kexue_notes.text_data.piece_mean_vectors`), a cheap model that sees punctuation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from itertools import combinations, product
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kexue_notes._validate import check_count, check_fraction

__all__ = [
    "aeda",
    "augment_corpus",
    "collision_probability",
    "count_moments",
    "draw_insertions",
    "insert_marks",
    "max_insertions",
    "n_distinct_outputs",
    "output_law",
    "position_rate",
]

#: The six marks of the reference code, in its order.
AEDA_MARKS: tuple[str, ...] = (".", ",", "!", "?", ";", ":")



def _ratio(punc_ratio: Any) -> float:
    return check_fraction(punc_ratio, "punc_ratio")


def _marks(marks: Any) -> tuple[str, ...]:
    if isinstance(marks, str) or not isinstance(marks, Sequence):
        raise TypeError("marks must be a sequence of strings")
    out = tuple(marks)
    if not out:
        raise ValueError("marks must not be empty")
    if not all(isinstance(m, str) and m and " " not in m for m in out):
        raise ValueError("marks must be non-empty strings without spaces")
    if len(set(out)) != len(out):
        raise ValueError("marks must be distinct")
    return out


def _rng(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def max_insertions(n_words: int, punc_ratio: float = 0.3) -> int:
    r"""The largest number of insertions, :math:`Q = \lfloor rL + 1 \rfloor`.

    Computed as the reference code does, ``int(punc_ratio * n_words + 1)`` in floating point
    (for :math:`r = 0.3` this equals the exact :math:`\lfloor 3L/10 \rfloor + 1`, which the page
    checks). Never more than :math:`L` for :math:`r \le 0.3` and :math:`L \ge 1`.

    Args:
        n_words: the sentence length :math:`L \ge 1` in space-separated words.
        punc_ratio: the ratio :math:`r \in [0, 1]`.

    Returns:
        :math:`Q`, clipped to at most :math:`L` so that :math:`q` distinct positions exist. The
        clip never acts for :math:`r \le 0.3`; for larger ratios, where it can, the reference code
        has no clip and its ``random.sample`` would raise instead.

    Used in: :doc:`/book/classification/aeda-punctuation`, eq. :eq:`aeda-q`.
    """
    n = check_count(n_words, "n_words")
    r = _ratio(punc_ratio)
    return min(int(r * n + 1), n)


def count_moments(n_words: int, punc_ratio: float = 0.3) -> tuple[float, float]:
    r"""Mean and variance of the number of insertions :math:`q \sim \mathrm{Uniform}\{1..Q\}`.

    .. math:: \mathbb E[q] = \frac{Q+1}{2}, \qquad \operatorname{Var} q = \frac{Q^2-1}{12}.

    Args:
        n_words: the sentence length :math:`L \ge 1`.
        punc_ratio: the ratio :math:`r`.

    Returns:
        ``(mean, variance)``.

    Used in: :doc:`/book/classification/aeda-punctuation`, eq. :eq:`aeda-moments`.
    """
    q_max = max_insertions(n_words, punc_ratio)
    return (q_max + 1) / 2, (q_max**2 - 1) / 12


def position_rate(n_words: int, punc_ratio: float = 0.3) -> float:
    r"""The probability that a given word receives a mark in front of it, :math:`\mathbb E[q]/L`.

    Args:
        n_words: the sentence length :math:`L \ge 1`.
        punc_ratio: the ratio :math:`r`.

    Returns:
        :math:`(Q+1)/(2L)`, the same for every position.

    Used in: :doc:`/book/classification/aeda-punctuation`, eq. :eq:`aeda-rate`.
    """
    mean, _ = count_moments(n_words, punc_ratio)
    return mean / n_words


def n_distinct_outputs(n_words: int, punc_ratio: float = 0.3, n_marks: int = 6) -> int:
    r"""The number of (position set, marks) outcomes, :math:`\sum_{q=1}^{Q}\binom Lq m^q`.

    It is the number of distinct output strings when no word of the sentence other than the last
    is itself one of the marks; otherwise different outcomes give the same string (a mark inserted
    in front of an equal mark reads like one inserted in front of the next word) and this is a
    strict upper bound.

    Args:
        n_words: the sentence length :math:`L \ge 1`.
        punc_ratio: the ratio :math:`r`.
        n_marks: the number :math:`m \ge 1` of marks.

    Returns:
        The exact count, a Python int.

    Used in: :doc:`/book/classification/aeda-punctuation`, eq. :eq:`aeda-count`.
    """
    m = check_count(n_marks, "n_marks")
    q_max = max_insertions(n_words, punc_ratio)
    return sum(math.comb(n_words, q) * m**q for q in range(1, q_max + 1))


def collision_probability(n_words: int, punc_ratio: float = 0.3, n_marks: int = 6, *,
                          exact: bool = False) -> float | Fraction:
    r"""The probability that two independent augmentations give the same outcome.

    .. math:: P_{\mathrm{coll}} = \sum_{q=1}^{Q} \frac{1}{Q^2}\,\frac{1}{\binom Lq m^q},

    since each outcome with :math:`q` insertions has probability
    :math:`1/(Q\binom Lq m^q)`. Equal to the probability that the two output strings coincide
    when no word of the sentence other than the last is one of the marks (a lower bound otherwise).

    Args:
        n_words: the sentence length :math:`L \ge 1`.
        punc_ratio: the ratio :math:`r`.
        n_marks: the number :math:`m \ge 1` of marks.
        exact: return a :class:`fractions.Fraction` (exact rational arithmetic, slow for long
            sentences) instead of a float (summed by the ratio of successive terms, stopping once
            a term falls below :math:`10^{-17}` of the sum).

    Returns:
        :math:`P_{\mathrm{coll}}`.

    Used in: :doc:`/book/classification/aeda-punctuation`, eq. :eq:`aeda-collision`.
    """
    m = check_count(n_marks, "n_marks")
    if not isinstance(exact, bool):
        raise TypeError(f"exact must be a bool, got {type(exact).__name__}")
    q_max = max_insertions(n_words, punc_ratio)
    if exact:
        return sum(Fraction(1, q_max**2 * math.comb(n_words, q) * m**q)
                   for q in range(1, q_max + 1))
    # float: terms t_q = 1 / (Q^2 C(L, q) m^q) by the ratio t_{q+1} / t_q = (q+1) / ((L-q) m)
    term = 1.0 / (q_max**2 * n_words * m)
    total = 0.0
    for q in range(1, q_max + 1):
        total += term
        term *= (q + 1) / ((n_words - q) * m) if q < n_words else 0.0
        if term < 1e-17 * total:
            break
    return total


def draw_insertions(n_words: int, size: int, rng: np.random.Generator, *,
                    punc_ratio: float = 0.3, n_marks: int = 6
                    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    r"""Draw ``size`` independent AEDA outcomes for a sentence of :math:`L` words, vectorised.

    For each draw: :math:`q \sim \mathrm{Uniform}\{1..Q\}`; a uniform set of :math:`q` distinct
    positions (the :math:`q` smallest of :math:`L` i.i.d. uniform keys, which makes every
    :math:`q`-subset equally likely, as ``random.sample`` does); and for each chosen position a
    mark index uniform on :math:`\{0..m-1\}`.

    Args:
        n_words: the sentence length :math:`L \ge 1`.
        size: the number of draws.
        rng: the generator.
        punc_ratio: the ratio :math:`r`.
        n_marks: the number of marks :math:`m`.

    Returns:
        ``(q, marks)``: ``q`` of shape ``(size,)``, and ``marks`` of shape ``(size, L)`` holding
        the mark index inserted before each word, or ``-1`` where none is.

    Used in: :doc:`/book/classification/aeda-punctuation`, eq. :eq:`aeda-law`.
    """
    n = check_count(n_words, "n_words")
    size = check_count(size, "size")
    m = check_count(n_marks, "n_marks")
    gen = _rng(rng)
    q_max = max_insertions(n, punc_ratio)
    q = gen.integers(1, q_max + 1, size=size)
    ranks = np.argsort(np.argsort(gen.random((size, n)), axis=1), axis=1)
    chosen = ranks < q[:, None]
    marks = np.where(chosen, gen.integers(0, m, size=(size, n)), -1)
    return q.astype(np.int64), marks.astype(np.int64)


def insert_marks(words: Sequence[str], mark_ids: Sequence[int] | NDArray[np.integer],
                 marks: Sequence[str] = AEDA_MARKS) -> str:
    r"""Put ``marks[mark_ids[j]]`` in front of word :math:`j` wherever ``mark_ids[j] >= 0``,
    and join with single spaces.

    Args:
        words: the :math:`L` words, as ``sentence.split(" ")`` gives them.
        mark_ids: shape ``(L,)``: a mark index per word, ``-1`` for none.
        marks: the marks.

    Returns:
        The augmented sentence.

    Used in: :doc:`/book/classification/aeda-punctuation`, eq. :eq:`aeda-law`.
    """
    mk = _marks(marks)
    if isinstance(words, str) or not isinstance(words, Sequence):
        raise TypeError("words must be a sequence of strings")
    ids = np.asarray(mark_ids)
    if ids.shape != (len(words),) or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"mark_ids must be integers of shape ({len(words)},), got {ids.shape}")
    if ids.size and (ids.min() < -1 or ids.max() >= len(mk)):
        raise ValueError(f"mark_ids must lie in [-1, {len(mk) - 1}]")
    out: list[str] = []
    for word, k in zip(words, ids.tolist(), strict=True):
        if k >= 0:
            out.append(mk[k])
        out.append(word)
    return " ".join(out)


def aeda(sentence: str, rng: np.random.Generator, *, punc_ratio: float = 0.3,
         marks: Sequence[str] = AEDA_MARKS) -> str:
    r"""One AEDA augmentation of ``sentence`` (the reference code's semantics).

    Splits on single spaces (``sentence.split(" ")``, so :math:`L \ge 1`), draws one outcome with
    :func:`draw_insertions` and applies it with :func:`insert_marks`. The output always holds at
    least one inserted mark.

    Args:
        sentence: the text.
        rng: the generator.
        punc_ratio: the ratio :math:`r`.
        marks: the marks to draw from, uniformly.

    Returns:
        The augmented sentence.

    Used in: :doc:`/book/classification/aeda-punctuation`, eq. :eq:`aeda-law`.
    """
    if not isinstance(sentence, str):
        raise TypeError(f"sentence must be a str, got {type(sentence).__name__}")
    mk = _marks(marks)
    words = sentence.split(" ")
    _, ids = draw_insertions(len(words), 1, rng, punc_ratio=punc_ratio, n_marks=len(mk))
    return insert_marks(words, ids[0], mk)


def augment_corpus(texts: Sequence[str], n_copies: int, rng: np.random.Generator, *,
                   punc_ratio: float = 0.3) -> list[list[str]]:
    r"""``n_copies`` independent AEDA augmentations of every text.

    Args:
        texts: the :math:`N` texts.
        n_copies: copies per text, :math:`\ge 1`.
        rng: the generator; text :math:`i`'s copies are drawn before text :math:`i+1`'s.
        punc_ratio: the ratio :math:`r`.

    Returns:
        A list of :math:`N` lists of ``n_copies`` strings. A training set with :math:`k` copies
        takes the first :math:`k`, so the sets for :math:`k = 1, 2, 4` are nested.

    Used in: :doc:`/book/classification/aeda-punctuation`, section "The experiment".
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError("texts must be a sequence of strings")
    k = check_count(n_copies, "n_copies")
    return [[aeda(t, rng, punc_ratio=punc_ratio) for _ in range(k)] for t in texts]


def output_law(sentence: str, *, punc_ratio: float = 0.3,
               marks: Sequence[str] = AEDA_MARKS) -> dict[str, Fraction]:
    r"""The exact law of :func:`aeda`'s output string, by enumerating every outcome.

    Each outcome with :math:`q` insertions has probability :math:`1/(Q\binom Lq m^q)`; outcomes
    that give the same string are merged. The work grows like :math:`\binom LQ m^Q`, so the
    sentence must be short (:math:`L \le 10`).

    Args:
        sentence: the text.
        punc_ratio: the ratio :math:`r`.
        marks: the marks.

    Returns:
        ``{output string: probability}``; the probabilities sum to exactly 1.

    Used in: :doc:`/book/classification/aeda-punctuation`, eqs. :eq:`aeda-count` and
    :eq:`aeda-collision`.
    """
    if not isinstance(sentence, str):
        raise TypeError(f"sentence must be a str, got {type(sentence).__name__}")
    mk = _marks(marks)
    words = sentence.split(" ")
    n = len(words)
    if n > 10:
        raise ValueError(f"sentence must have at most 10 words to enumerate, got {n}")
    q_max = max_insertions(n, punc_ratio)
    law: dict[str, Fraction] = {}
    for q in range(1, q_max + 1):
        weight = Fraction(1, q_max * math.comb(n, q) * len(mk) ** q)
        for positions in combinations(range(n), q):
            for choice in product(range(len(mk)), repeat=q):
                ids = np.full(n, -1, dtype=np.int64)
                ids[list(positions)] = choice
                s = insert_marks(words, ids, mk)
                law[s] = law.get(s, Fraction(0)) + weight
    return law
