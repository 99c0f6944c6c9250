"""Tests of kexue_notes.classification.splits (stratified training subsets)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from kexue_notes.classification.splits import stratified_subsets


@settings(max_examples=40, deadline=None)
@given(counts=hs.lists(hs.integers(2, 12), min_size=1, max_size=4),
       n_splits=hs.integers(1, 5), seed=hs.integers(0, 2**32 - 1), data=hs.data())
def test_every_class_gets_its_count(counts: list[int], n_splits: int, seed: int,
                                    data: hs.DataObject) -> None:
    y = np.random.default_rng(seed).permutation(np.repeat(np.arange(len(counts)), counts))
    k = data.draw(hs.integers(1, min(counts) - 1))
    masks = stratified_subsets(y, k, n_splits, seed)
    assert masks.shape == (n_splits, y.size) and masks.dtype == bool
    for c in range(len(counts)):
        assert (masks[:, y == c].sum(axis=1) == k).all()
    halves = stratified_subsets(y, 0.5, n_splits, seed)
    for c, n in enumerate(counts):
        assert (halves[:, y == c].sum(axis=1) == n // 2).all()


def test_seeded_and_uniform() -> None:
    y = np.array([0] * 10 + [1] * 7)
    m = stratified_subsets(y, 0.5, 4, seed=0)
    assert (m == stratified_subsets(y, 0.5, 4, seed=0)).all()
    assert not (m == stratified_subsets(y, 0.5, 4, seed=1)).all()
    # Each example of a class is drawn with probability m_c / n_c: 5/10 and 3/7 here. Over 4000
    # splits the frequencies lie within 4 binomial standard errors of those rates.
    freq = stratified_subsets(y, 0.5, 4000, seed=2).mean(axis=0)
    rate = np.where(y == 0, 5 / 10, 3 / 7)
    se = np.sqrt(rate * (1 - rate) / 4000)
    assert (np.abs(freq - rate) < 4 * se).all()


def test_error_paths() -> None:
    y = np.array([0, 0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="labels"):
        stratified_subsets(np.array([0.5, 1.0]), 1, 1, 0)
    with pytest.raises(ValueError, match="labels"):
        stratified_subsets(np.array([], dtype=int), 1, 1, 0)
    with pytest.raises(ValueError, match="size must leave every class"):
        stratified_subsets(y, 3, 1, 0)
    with pytest.raises(ValueError, match="size must leave every class"):
        stratified_subsets(np.array([0, 0, 0, 0, 1]), 0.5, 1, 0)  # class 1 gets no training example
    with pytest.raises(ValueError, match="size must be >= 1"):
        stratified_subsets(y, 0, 1, 0)
    with pytest.raises(ValueError, match=r"size must lie in \(0, 1\)"):
        stratified_subsets(y, 1.0, 1, 0)
    with pytest.raises(TypeError, match="size must be an int or a float"):
        stratified_subsets(y, True, 1, 0)
    with pytest.raises(TypeError, match="size must be an int or a float"):
        stratified_subsets(y, "2", 1, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_splits"):
        stratified_subsets(y, 1, 0, 0)
    with pytest.raises(TypeError, match="seed"):
        stratified_subsets(y, 1, 1, 0.5)  # type: ignore[arg-type]
