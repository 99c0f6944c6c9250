r"""The interval every trained result on the book's pages is reported with.

A page that trains a model repeats it over :math:`n` seeds and reports the mean of the :math:`n`
results with the Student-:math:`t` interval for that mean; a paired comparison applies the same
interval to the per-seed differences. Two results whose difference has an interval containing zero
are within noise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kexue_notes._validate import as_array, check_fraction

__all__ = ["mean_t_interval", "mean_t_intervals"]


def mean_t_interval(values: Any, level: float = 0.95) -> tuple[float, float]:
    r"""Mean and half-width of the Student-:math:`t` interval for the mean of :math:`n` values.

    .. math::

       \bar v \pm t_{n-1,\,(1+\ell)/2}\,\frac{s}{\sqrt n}, \qquad
       s^2 = \frac{1}{n-1}\sum_{i=1}^n (v_i - \bar v)^2 .

    Args:
        values: one number per seed (or per paired difference), at least two, shape ``(n,)``.
        level: the confidence level :math:`\ell`, in :math:`(0, 1)`.

    Returns:
        ``(mean, half_width)``.

    Raises:
        ValueError: if ``values`` is not one-dimensional, holds fewer than two values or a
            non-finite one, or ``level`` is outside :math:`(0, 1)`.

    Used in: :doc:`/book/training/adversarial-training`, section "Training on real text";
    :doc:`/book/training/child-tuning`, eq. :eq:`ct-interval`;
    :doc:`/book/sequences/seq2seq-exposure-bias`, section "Experiment: a GRU decoder on real text";
    :doc:`/book/classification/can-alternating-normalization`, section "CAN on real classifiers";
    :doc:`/book/classification/y-tuning`, section "The experiment";
    :doc:`/book/classification/devils-advocate-ensemble`, section "The experiment";
    :doc:`/book/classification/aeda-punctuation`, section "The experiment";
    :doc:`/book/classification/selective-text-augmentation`, section "The experiment";
    :doc:`/book/classification/virtual-data-augmentation`, section "Numerical check";
    :doc:`/book/classification/mlm-alternatives`, section "The tiny pre-training run".
    """
    mean, half = mean_t_intervals(as_array(values, "values", ndim=1), level)
    return float(mean), float(half)


def mean_t_intervals(values: Any, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    r""":func:`mean_t_interval` for many results at once: seeds on axis 0.

    For ``values`` of shape ``(n, ...)`` (one row per seed, e.g. ``(seeds, methods, noise
    rates)``), the mean and the half-width :math:`t_{n-1,\,(1+\ell)/2}\, s/\sqrt n` of every
    column, with :math:`s` the standard deviation over axis 0 (``ddof=1``).

    Args:
        values: shape ``(n, ...)`` with :math:`n \ge 2`, all finite.
        level: the confidence level :math:`\ell`, in :math:`(0, 1)`.

    Returns:
        ``(mean, half_width)``, each of shape ``(...)``.

    Raises:
        ValueError: if ``values`` holds fewer than two rows or a non-finite value, or ``level``
            is outside :math:`(0, 1)`.

    Used in: :doc:`/book/classification/class-imbalance-reweight-vs-loss`, section "Experiment:
    four losses on imbalanced reviews"; :doc:`/book/classification/lld-label-denoising`, section
    "Experiment: label noise on 20-Newsgroups posts".
    """
    from scipy.special import stdtrit

    x = as_array(values, "values")
    if x.ndim == 0 or x.shape[0] < 2:
        raise ValueError(f"values must hold at least two numbers on axis 0, got shape {x.shape}")
    lev = check_fraction(level, "level", closed=False)
    n = x.shape[0]
    half = float(stdtrit(n - 1, (1 + lev) / 2)) * x.std(axis=0, ddof=1) / math.sqrt(n)
    return x.mean(axis=0), np.asarray(half)
