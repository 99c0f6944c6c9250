r"""Random training subsets stratified by label, for the experiments that repeat a fit over splits.

Every split draws, for each class :math:`c` in turn, :math:`m_c` of its :math:`n_c` examples without
replacement for training; the rest of the data is that split's test set. :math:`m_c` is either the
same count for every class (``size`` an int) or :math:`\lfloor f\,n_c \rfloor` (``size`` a float
:math:`f`), as ``train_size`` is read in scikit-learn. Unlike scikit-learn's
``StratifiedShuffleSplit``, which spreads one total over the classes in proportion, an int gives
every class exactly that many training examples, balanced data or not.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kexue_notes._validate import check_count, check_fraction

__all__ = ["stratified_subsets"]


def stratified_subsets(labels: Any, size: int | float, n_splits: int, seed: int
                       ) -> NDArray[np.bool_]:
    r"""Training masks of ``n_splits`` random splits, stratified by label.

    In each split and for each class :math:`c` (in increasing order), :math:`m_c` indices of the
    class are drawn by ``rng.choice(..., replace=False)``, ``rng = numpy.random.default_rng(seed)``:
    :math:`m_c = \text{size}` for an int, :math:`m_c = \lfloor \text{size}\cdot n_c \rfloor` for a
    float in :math:`(0, 1)`. Every class must keep at least one training and one test example.

    Args:
        labels: integer labels, shape ``(N,)``.
        size: training examples per class (int), or the fraction of every class (float in (0, 1)).
        n_splits: number of splits.
        seed: seed of ``numpy.random.default_rng``.

    Returns:
        Boolean training masks, shape ``(n_splits, N)``.

    Used in: :doc:`/book/classification/aeda-punctuation` (50 of each class, section "The
    experiment") and :doc:`/book/classification/y-tuning` (half of each class, section "The
    experiment").
    """
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError("labels must be a non-empty 1-D array of integers")
    n_splits = check_count(n_splits, "n_splits")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    classes, counts = np.unique(y, return_counts=True)
    if isinstance(size, int | np.integer) and not isinstance(size, bool):
        per_class = np.full(classes.size, check_count(size, "size"))
    elif isinstance(size, float | np.floating):
        fraction = check_fraction(size, "size", closed=False)
        per_class = np.array([math.floor(fraction * n) for n in counts])
    else:
        raise TypeError(f"size must be an int or a float, got {type(size).__name__}")
    if (per_class < 1).any() or (per_class >= counts).any():
        raise ValueError(f"size must leave every class at least one training and one test "
                         f"example; class sizes {counts.tolist()}, training sizes "
                         f"{per_class.tolist()}")
    rng = np.random.default_rng(int(seed))
    masks = np.zeros((n_splits, y.size), dtype=bool)
    for split in masks:
        for c, m in zip(classes, per_class, strict=True):
            split[rng.choice(np.flatnonzero(y == c), size=int(m), replace=False)] = True
    return masks
