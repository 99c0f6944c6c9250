"""Tests for kexue_notes.classification.aeda."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from kexue_notes.classification import aeda as ae

WORDS = ["the", "film", "is", "a", "quiet", "and", "patient", "study", "of", "grief"]


def test_max_insertions_matches_exact_floor() -> None:
    for n in range(1, 3000):
        assert ae.max_insertions(n) == (3 * n) // 10 + 1
    assert ae.max_insertions(5, 1.0) == 5                        # clipped to L


def test_count_moments_closed_form() -> None:
    assert ae.count_moments(10) == (2.5, (16 - 1) / 12)
    assert ae.count_moments(1) == (1.0, 0.0)


def test_position_rate() -> None:
    assert ae.position_rate(20) == pytest.approx(4.0 / 20)


@given(hs.integers(1, 300), hs.integers(1, 8))
@settings(max_examples=60, deadline=None)
def test_count_and_collision_identities(n: int, m: int) -> None:
    # at r = 1 the sum runs to q = L: binomial theorem
    assert ae.n_distinct_outputs(n, 1.0, m) == (1 + m) ** n - 1
    p = ae.collision_probability(n, 0.3, m)
    assert isinstance(p, float)
    q_max = ae.max_insertions(n)
    first = 1 / (q_max**2 * n * m)
    assert first <= p * (1 + 1e-12)
    if m == 6:                                # term ratios <= 1/9 for six marks: tail <= first / 8
        assert p <= first * 9 / 8 * (1 + 1e-12)
    if n <= 40:
        assert p == pytest.approx(float(ae.collision_probability(n, 0.3, m, exact=True)),
                                  rel=1e-13)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_output_law_matches_closed_forms(n: int) -> None:
    law = ae.output_law(" ".join(WORDS[:n]))
    assert sum(law.values()) == 1
    assert len(law) == ae.n_distinct_outputs(n)
    assert sum(p * p for p in law.values()) == ae.collision_probability(n, exact=True)
    mean_q = sum(p * (len(s.split(" ")) - n) for s, p in law.items())
    assert mean_q == Fraction(ae.max_insertions(n) + 1, 2)


def test_output_law_merges_when_marks_present() -> None:
    law = ae.output_law("good , fun")
    assert sum(law.values()) == 1
    assert len(law) < ae.n_distinct_outputs(3)
    assert ae.output_law("a b", marks=["!"]) == {"! a b": Fraction(1, 2), "a ! b": Fraction(1, 2)}
    # "! a": "! ! a" arises from a mark before "!" and from one before "a"
    assert ae.output_law("! a", marks=["!"]) == {"! ! a": Fraction(1)}


@pytest.mark.parametrize("sentence", ["a b c .", "good fun !", "x y z w ?"])
def test_output_law_exact_when_only_the_last_word_is_a_mark(sentence: str) -> None:
    n = len(sentence.split(" "))
    law = ae.output_law(sentence)
    assert len(law) == ae.n_distinct_outputs(n)
    assert sum(p * p for p in law.values()) == ae.collision_probability(n, exact=True)


def test_draw_insertions_shapes_and_support() -> None:
    rng = np.random.default_rng(0)
    q, ids = ae.draw_insertions(12, 5000, rng)
    assert q.shape == (5000,) and ids.shape == (5000, 12)
    assert q.min() >= 1 and q.max() <= ae.max_insertions(12)
    assert ((ids >= 0).sum(axis=1) == q).all()
    assert ids.min() >= -1 and ids.max() <= 5
    mean, var = ae.count_moments(12)
    assert abs(q.mean() - mean) < 5 * math.sqrt(var / 5000)
    rate = (ids >= 0).mean(axis=0)
    se = math.sqrt(ae.position_rate(12) * (1 - ae.position_rate(12)) / 5000)
    assert np.abs(rate - ae.position_rate(12)).max() < 5 * se


def test_aeda_keeps_words_in_order_and_is_seeded() -> None:
    s = " ".join(WORDS)
    out = ae.aeda(s, np.random.default_rng(3))
    toks = out.split(" ")
    assert [t for t in toks if t not in ae.AEDA_MARKS] == WORDS
    assert 1 <= len(toks) - len(WORDS) <= ae.max_insertions(len(WORDS))
    assert toks[-1] == WORDS[-1]                                 # marks go in front of words
    assert out == ae.aeda(s, np.random.default_rng(3))


def test_insert_marks() -> None:
    assert ae.insert_marks(["a", "b", "c"], [-1, 0, 5]) == "a . b : c"
    assert ae.insert_marks(["a"], [-1]) == "a"


def test_augment_corpus_nested_and_sized() -> None:
    out = ae.augment_corpus(["a b c", "d e"], 3, np.random.default_rng(0))
    assert [len(c) for c in out] == [3, 3]
    again = ae.augment_corpus(["a b c", "d e"], 3, np.random.default_rng(0))
    assert out == again


def test_error_paths() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="n_words"):
        ae.max_insertions(0)
    with pytest.raises(TypeError, match="n_words"):
        ae.max_insertions(2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="punc_ratio"):
        ae.max_insertions(3, 1.5)
    with pytest.raises(ValueError, match="punc_ratio"):
        ae.count_moments(3, -0.1)
    with pytest.raises(ValueError, match="n_marks"):
        ae.n_distinct_outputs(3, 0.3, 0)
    with pytest.raises(ValueError, match="n_marks"):
        ae.collision_probability(3, 0.3, 0)
    with pytest.raises(TypeError, match="exact"):
        ae.collision_probability(3, exact=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="size"):
        ae.draw_insertions(3, 0, rng)
    with pytest.raises(TypeError, match="rng"):
        ae.draw_insertions(3, 2, 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sentence"):
        ae.aeda(3, rng)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="marks"):
        ae.aeda("a b", rng, marks=".")
    with pytest.raises(ValueError, match="marks"):
        ae.aeda("a b", rng, marks=[])
    with pytest.raises(ValueError, match="marks"):
        ae.aeda("a b", rng, marks=[". ", ","])
    with pytest.raises(ValueError, match="marks"):
        ae.aeda("a b", rng, marks=[".", "."])
    with pytest.raises(TypeError, match="words"):
        ae.insert_marks("ab", [0, 0])
    with pytest.raises(ValueError, match="mark_ids"):
        ae.insert_marks(["a", "b"], [0])
    with pytest.raises(ValueError, match="mark_ids"):
        ae.insert_marks(["a", "b"], [0, 6])
    with pytest.raises(TypeError, match="texts"):
        ae.augment_corpus("a b", 1, rng)
    with pytest.raises(ValueError, match="n_copies"):
        ae.augment_corpus(["a b"], 0, rng)
    with pytest.raises(TypeError, match="sentence"):
        ae.output_law(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sentence"):
        ae.output_law(" ".join(["w"] * 11))
