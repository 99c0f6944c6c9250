r"""Class imbalance: smoothed metrics, reweighted cross-entropy and logit adjustment.

Binary labels :math:`y \in \{0, 1\}`, logits :math:`z`, probabilities :math:`p = \sigma(z)`; the
positive class is the rare one. Su's post asks why cross-entropy trains better than the smoothed
accuracy it stands in for, and what the same move gives for F1.

- Smoothed metrics (:func:`smooth_accuracy`, :func:`smooth_f1`) and the hard ones they smooth
  (:func:`f1_binary`, :func:`balanced_accuracy`).
- Reweighted cross-entropy: fixed class weights (:func:`weighted_bce`, with the "balanced" weights
  of :func:`balanced_class_weights`), and the weights :math:`1 - F_s/2` and :math:`F_s/2` that the
  smoothed F1's gradient turns into (:func:`f1_weights`, :func:`f1_weighted_bce`).
- Logit adjustment (Menon et al.): train on logits shifted by the log prior
  (:func:`logit_adjusted_bce`, :func:`logit_adjusted_cross_entropy`) or shift a trained model's
  logits afterwards (:func:`posthoc_logit_adjustment`), and Su's "territory" margin loss
  (:func:`territory_margin_cross_entropy`).
- Where each loss puts the decision boundary on the true posterior
  :math:`\eta(x) = P(y = 1 \mid x)` at its population optimum (:func:`weighted_threshold`,
  :func:`logit_adjusted_threshold`, :func:`margin_threshold`).
- Linear models trained on several losses at once, on dense or sparse (TF-IDF) features
  (:func:`linear_logits`, :func:`train_linear_adam`, :func:`fit_linear_lbfgs`) and a seeded
  imbalanced train/test split (:func:`imbalanced_split`); the intervals over seeds are
  :func:`kexue_notes.intervals.mean_t_intervals`.

Losses and metrics take tensors of shape ``(n, ...)``: ``n`` samples on axis 0, over which they
reduce, and any number of models scored on the same samples on the trailing axes; labels are always
``(n,)``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F  # noqa: N812 -- torch's own idiom

from kexue_notes._validate import (
    as_labels,
    as_tensor,
    check_count,
    check_fraction,
    check_positive,
    check_real,
)

__all__ = [  # noqa: RUF022 -- in the order the module reads
    "smooth_accuracy",
    "smooth_f1",
    "f1_binary",
    "balanced_accuracy",
    "balanced_class_weights",
    "weighted_bce",
    "f1_weights",
    "f1_weighted_bce",
    "logit_adjusted_bce",
    "logit_adjusted_cross_entropy",
    "posthoc_logit_adjustment",
    "territory_margin_cross_entropy",
    "weighted_threshold",
    "logit_adjusted_threshold",
    "margin_threshold",
    "imbalanced_split",
    "linear_logits",
    "train_linear_adam",
    "fit_linear_lbfgs",
    ]


LossFn = Callable[[Tensor, Tensor], Tensor]


# --- input checks ---------------------------------------------------------------------------------

def _labels(y: Any, n: int | None = None, dtype: torch.dtype = torch.float64) -> Tensor:
    """Binary labels as a float tensor of shape (n,), or raise naming ``y``."""
    y = as_tensor(y, "y", ndim=1, dtype=dtype)
    if n is not None and y.shape[0] != n:
        raise ValueError(f"y must have shape ({n},), got {tuple(y.shape)}")
    if not bool(((y == 0) | (y == 1)).all()):
        raise ValueError("y must hold labels 0 or 1")
    return y


def _scores(x: Any, name: str) -> Tensor:
    """Logits or probabilities: a finite float tensor of shape (n, ...) with n >= 1."""
    x = as_tensor(x, name)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape (n, ...) with n >= 1, got {tuple(x.shape)}")
    return x


def _probs(p: Any) -> Tensor:
    p = _scores(p, "probs")
    if bool(((p < 0) | (p > 1)).any()):
        raise ValueError("probs must lie in [0, 1]")
    return p


def _pair(x: Tensor, y: Any) -> tuple[Tensor, Tensor]:
    """Labels shaped to broadcast against ``x`` of shape (n, ...)."""
    yy = _labels(y, x.shape[0], dtype=x.dtype).to(x.dtype)
    return x, yy.reshape(-1, *([1] * (x.ndim - 1)))


def _hard(pred: Any) -> Tensor:
    """Hard predictions in {0, 1} (bool or numbers), as float64 of shape (n, ...)."""
    if isinstance(pred, Tensor) and pred.dtype == torch.bool:
        pred = pred.to(torch.float64)
    pred = _scores(pred, "pred")
    if not bool(((pred == 0) | (pred == 1)).all()):
        raise ValueError("pred must hold predictions 0 or 1")
    return pred


def _prior(prior: Any) -> float:
    return check_fraction(prior, "prior", closed=False)


# --- smoothed and hard metrics --------------------------------------------------------------------

def smooth_accuracy(probs: Tensor, y: Tensor) -> Tensor:
    r"""Smoothed accuracy: the expected accuracy of a classifier that says 1 with probability p.

    .. math::

       \mathrm{ACC}_s = \frac1n \sum_{i=1}^n \bigl[y_i p_i + (1 - y_i)(1 - p_i)\bigr] .

    Args:
        probs: :math:`p_i \in [0, 1]`, shape ``(n, ...)``.
        y: labels in :math:`\{0, 1\}`, shape ``(n,)``.

    Returns:
        :math:`\mathrm{ACC}_s`, shape ``(...)``, the trailing axes.

    Raises:
        ValueError: if a probability is outside [0, 1], a label is not 0 or 1, or the shapes differ.

    Used in: :doc:`/book/classification/class-imbalance-reweight-vs-loss`, eq. :eq:`ci-smooth-acc`.
    """
    p, yy = _pair(_probs(probs), y)
    return (yy * p + (1 - yy) * (1 - p)).mean(dim=0)


def smooth_f1(probs: Tensor, y: Tensor) -> Tensor:
    r"""Smoothed F1 of the positive class (the soft Dice coefficient).

    .. math::

       F_s = \frac{2\sum_i y_i p_i}{\sum_i (y_i + p_i)},

    and 0 where the denominator is 0. With hard :math:`p_i \in \{0, 1\}` it is the F1 score
    :math:`2\,TP/(2\,TP + FP + FN)` (:func:`f1_binary`).

    Args:
        probs: :math:`p_i \in [0, 1]`, shape ``(n, ...)``.
        y: labels in :math:`\{0, 1\}`, shape ``(n,)``.

    Returns:
        :math:`F_s \in [0, 1]`, shape ``(...)``, the trailing axes.

    Raises:
        ValueError: if a probability is outside [0, 1], a label is not 0 or 1, or the shapes differ.

    Used in: :doc:`/book/classification/class-imbalance-reweight-vs-loss`, eq. :eq:`ci-smooth-f1`.
    """
    p, yy = _pair(_probs(probs), y)
    num = 2 * (yy * p).sum(dim=0)
    den = (yy + p).sum(dim=0)
    return torch.where(den > 0, num / torch.where(den > 0, den, 1), torch.zeros_like(num))


def f1_binary(pred: Tensor, y: Tensor) -> Tensor:
    r"""F1 score of the positive class from hard predictions.

    .. math::

       F_1 = \frac{2\,TP}{2\,TP + FP + FN},

    and 0 where the denominator is 0 (no positive label and no positive prediction), as
    ``sklearn.metrics.f1_score(..., zero_division=0)``.

    Args:
        pred: predictions in :math:`\{0, 1\}` (or bool), shape ``(n, ...)``.
        y: labels in :math:`\{0, 1\}`, shape ``(n,)``.

    Returns:
        :math:`F_1`, shape ``(...)``, the trailing axes.

    Raises:
        ValueError: if a prediction or label is not 0 or 1, or the shapes differ.

    Used in: :doc:`/book/classification/class-imbalance-reweight-vs-loss`.
    """
    p, yy = _pair(_hard(pred), y)
    tp = (p * yy).sum(dim=0)
    den = 2 * tp + (p * (1 - yy)).sum(dim=0) + ((1 - p) * yy).sum(dim=0)
    return torch.where(den > 0, 2 * tp / torch.where(den > 0, den, 1), torch.zeros_like(tp))


def balanced_accuracy(pred: Tensor, y: Tensor) -> Tensor:
    r"""Balanced accuracy: the mean of the two classes' recalls (one minus the balanced error).

    .. math::

       \mathrm{BA} = \frac12\left(\frac{TP}{TP + FN} + \frac{TN}{TN + FP}\right) .

    Args:
        pred: predictions in :math:`\{0, 1\}` (or bool), shape ``(n, ...)``.
        y: labels in :math:`\{0, 1\}`, shape ``(n,)``, holding both classes.

    Returns:
        :math:`\mathrm{BA}`, shape ``(...)``, the trailing axes.

    Raises:
        ValueError: if a prediction or label is not 0 or 1, the shapes differ, or ``y`` lacks a
            class.

    Used in: :doc:`/book/classification/class-imbalance-reweight-vs-loss`.
    """
    p, yy = _pair(_hard(pred), y)
    n_pos = yy.sum(dim=0)
    n_neg = (1 - yy).sum(dim=0)
    if bool((n_pos == 0).any()) or bool((n_neg == 0).any()):
        raise ValueError("y must hold both classes for balanced accuracy")
    return ((p * yy).sum(dim=0) / n_pos + ((1 - p) * (1 - yy)).sum(dim=0) / n_neg) / 2


# --- reweighted cross-entropy ---------------------------------------------------------------------

def balanced_class_weights(y: Tensor) -> tuple[float, float]:
    r"""The "balanced" class weights: each class weighs as much in total as the other.

    .. math::

       w_c = \frac{n}{2\,n_c}, \qquad c \in \{0, 1\},

    so that :math:`\sum_i w_{y_i} = n` (mean weight 1), as scikit-learn's
    ``class_weight="balanced"``.

    Args:
        y: labels in :math:`\{0, 1\}`, shape ``(n,)``, holding both classes.

    Returns:
        The pair :math:`(w_1, w_0)`: positive weight first, as :func:`weighted_bce` takes them.

    Raises:
        ValueError: if a label is not 0 or 1, or ``y`` lacks a class.

    Used in: :doc:`/book/classification/class-imbalance-reweight-vs-loss`, eq. :eq:`ci-weighted-ce`.
    """
    yy = _labels(y)
    n, n1 = yy.numel(), float(yy.sum())
    if n1 == 0 or n1 == n:
        raise ValueError("y must hold both classes")
    return n / (2 * n1), n / (2 * (n - n1))


def weighted_bce(logits: Tensor, y: Tensor, w_pos: float, w_neg: float = 1.0) -> Tensor:
    r"""Class-weighted binary cross-entropy with logits.

    .. math::

       L = -\frac1n \sum_{i=1}^n \bigl[w_1\, y_i \log\sigma(z_i)
           + w_0\,(1 - y_i)\log\bigl(1 - \sigma(z_i)\bigr)\bigr] ,

    computed by ``torch.nn.functional.binary_cross_entropy_with_logits`` with per-sample weights
    :math:`w_{y_i}`. With :math:`w_0 = 1` it equals that function's ``pos_weight=w_1``.

    Args:
        logits: :math:`z_i`, shape ``(n, ...)``.
        y: labels in :math:`\{0, 1\}`, shape ``(n,)``.
        w_pos: :math:`w_1 \ge 0`.
        w_neg: :math:`w_0 \ge 0` (default 1).

    Returns:
        :math:`L`, shape ``(...)``, the trailing axes.

    Raises:
        ValueError: if a weight is negative or not finite, a label is not 0 or 1, or the shapes
            differ.
        TypeError: if a weight is not a real number.

    Used in: :doc:`/book/classification/class-imbalance-reweight-vs-loss`, eq. :eq:`ci-weighted-ce`.
    """
    z, yy = _pair(_scores(logits, "logits"), y)
    w1 = check_positive(w_pos, "w_pos", allow_zero=True)
    w0 = check_positive(w_neg, "w_neg", allow_zero=True)
    w = yy * w1 + (1 - yy) * w0
    per = F.binary_cross_entropy_with_logits(z, yy.expand_as(z), weight=w.expand_as(z),
                                             reduction="none")
    return per.mean(dim=0)


def f1_weights(probs: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    r"""The class weights that the smoothed F1's gradient turns into (no gradient flows).

    .. math::

       w_1 = 1 - \frac{F_s}{2}, \qquad w_0 = \frac{F_s}{2}, \qquad
       F_s = \mathrm{stopgrad}\bigl(\text{smooth\_f1}(p, y)\bigr) .

    Args:
        probs: :math:`p_i \in [0, 1]`, shape ``(n, ...)``.
        y: labels in :math:`\{0, 1\}`, shape ``(n,)``.

    Returns:
        The pair :math:`(w_1, w_0)`, each of shape ``(...)``, the trailing axes, detached.

    Used in: :doc:`/book/classification/class-imbalance-reweight-vs-loss`, eq. :eq:`ci-f1-weighted`.
    """
    f = smooth_f1(_probs(probs).detach(), y)
    return 1 - f / 2, f / 2


def f1_weighted_bce(logits: Tensor, y: Tensor, *, normalize: bool = False) -> Tensor:
    r"""Su's F1-weighted cross-entropy: positives weighted by :math:`1 - F_s/2`, negatives by
    :math:`F_s/2`, with :math:`F_s` the smoothed F1 of the current predictions, held constant.

    .. math::

       L = -\frac1n \sum_{i=1}^n \Bigl[\Bigl(1 - \frac{F_s}{2}\Bigr) y_i \log p_i
           + \frac{F_s}{2}(1 - y_i)\log(1 - p_i)\Bigr], \qquad p_i = \sigma(z_i) .

    Its gradient is that of :math:`-F_s` with :math:`\nabla p` replaced by :math:`\nabla\log p`
    for positives and :math:`-\nabla p` by :math:`\nabla\log(1 - p)` for negatives, up to the
    positive factor :math:`2/\sum_i(y_i + p_i)`. With ``normalize`` the sum is divided by
    :math:`\sum_i w_{y_i}` instead of :math:`n` (a positive constant for the gradient, which makes
    the loss's scale comparable with an unweighted mean).

    Args:
        logits: :math:`z_i`, shape ``(n, ...)`` (one :math:`F_s` per column).
        y: labels in :math:`\{0, 1\}`, shape ``(n,)``.
        normalize: divide by the total weight rather than by :math:`n`.

    Returns:
        :math:`L`, shape ``(...)``, the trailing axes.

    Raises:
        TypeError: if ``normalize`` is not a bool.

    Used in: :doc:`/book/classification/class-imbalance-reweight-vs-loss`, eq. :eq:`ci-f1-weighted`.
    """
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be a bool, got {type(normalize).__name__}")
    z, yy = _pair(_scores(logits, "logits"), y)
    w1, w0 = f1_weights(torch.sigmoid(z), y)
    w = yy * w1 + (1 - yy) * w0
    per = F.binary_cross_entropy_with_logits(z, yy.expand_as(z), reduction="none") * w
    return per.sum(dim=0) / (w.sum(dim=0) if normalize else z.shape[0])


# --- logit adjustment and margins -----------------------------------------------------------------

def logit_adjusted_bce(logits: Tensor, y: Tensor, prior: float, tau: float = 1.0) -> Tensor:
    r"""Binary logit-adjusted loss: cross-entropy on logits shifted by the log prior odds.

    .. math::

       L = \frac1n \sum_{i=1}^n \ell_{\mathrm{BCE}}\!\Bigl(z_i + \tau\log\frac{\pi}{1 - \pi},\,
           y_i\Bigr),

    the two-class case of :func:`logit_adjusted_cross_entropy` with logits :math:`(0, z)`. The
    model predicts with the unshifted :math:`z`.

    Args:
        logits: :math:`z_i`, shape ``(n, ...)``.
        y: labels in :math:`\{0, 1\}`, shape ``(n,)``.
        prior: :math:`\pi = P(y = 1) \in (0, 1)`, usually the training frequency.
        tau: :math:`\tau` (1 targets the balanced error).

    Returns:
        :math:`L`, shape ``(...)``, the trailing axes.

    Raises:
        ValueError: if ``prior`` is not in (0, 1) or ``tau`` is not finite.
        TypeError: if ``prior`` or ``tau`` is not a real number.

    Used in: :doc:`/book/classification/class-imbalance-reweight-vs-loss`, eq. :eq:`ci-la-binary`.
    """
    z, yy = _pair(_scores(logits, "logits"), y)
    pi = _prior(prior)
    shift = check_real(tau, "tau") * math.log(pi / (1 - pi))
    return F.binary_cross_entropy_with_logits(z + shift, yy.expand_as(z),
                                              reduction="none").mean(dim=0)


def logit_adjusted_cross_entropy(logits: Tensor, y: Tensor, prior: Tensor,
                                 tau: float = 1.0) -> Tensor:
    r"""Menon et al.'s logit-adjusted softmax cross-entropy.

    .. math::

       L = -\frac1n \sum_{i=1}^n \log
           \frac{e^{s_{i y_i} + \tau\log\pi_{y_i}}}{\sum_k e^{s_{ik} + \tau\log\pi_k}},

    computed as ``torch.nn.functional.cross_entropy(logits + tau * log(prior), y)``.

    Args:
        logits: scores :math:`s_{ik}`, shape ``(n, K)``.
        y: class indices in :math:`\{0, \dots, K-1\}`, shape ``(n,)``, an integer tensor.
        prior: class prior :math:`\pi`, shape ``(K,)``, positive and summing to 1 (within 1e-6).
        tau: :math:`\tau`.

    Returns:
        :math:`L`, a 0-d tensor.

    Raises:
        ValueError: on wrong shapes, class indices out of range, or a prior that is not a positive
            probability vector.
        TypeError: if ``y`` is not an integer tensor or ``tau`` not a real number.

    Used in: :doc:`/book/classification/class-imbalance-reweight-vs-loss`, eq. :eq:`ci-la`.
    """
    s = as_tensor(logits, "logits", ndim=2)
    n, K = s.shape
    yi = as_labels(y, "y", n, K)
    pi = as_tensor(prior, "prior", shape=(K,), dtype=s.dtype).to(s.dtype)
    if bool((pi <= 0).any()) or abs(float(pi.sum()) - 1) > 1e-6:
        raise ValueError("prior must be positive and sum to 1")
    return F.cross_entropy(s + check_real(tau, "tau") * torch.log(pi), yi)


def posthoc_logit_adjustment(logits: Tensor, prior: float, tau: float = 1.0) -> Tensor:
    r"""Post-hoc logit adjustment of a binary model trained with plain cross-entropy.

    .. math::

       \tilde z = z - \tau\log\frac{\pi}{1 - \pi}, \qquad \text{predict } \tilde z > 0 ,

    i.e. threshold :math:`\sigma(z)` at :math:`\pi^\tau/(\pi^\tau + (1 - \pi)^\tau)` instead of
    1/2.

    Args:
        logits: :math:`z`, any shape.
        prior: :math:`\pi = P(y = 1) \in (0, 1)`.
        tau: :math:`\tau`.

    Returns:
        :math:`\tilde z`, the shape of ``logits``.

    Raises:
        ValueError: if ``prior`` is not in (0, 1).

    Used in: :doc:`/book/classification/class-imbalance-reweight-vs-loss`, eq. :eq:`ci-la-binary`.
    """
    z = as_tensor(logits, "logits")
    pi = _prior(prior)
    return z - check_real(tau, "tau") * math.log(pi / (1 - pi))


def territory_margin_cross_entropy(features: Tensor, class_vectors: Tensor, y: Tensor,
                                   radii: Tensor) -> Tensor:
    r"""Su's margin loss from class "territories" of radius :math:`r_y` (the post's eq. 12).

    Every point within :math:`r_y` of the feature :math:`f` should still score highest for class
    :math:`y`; the worst case lowers the target score and raises the others,

    .. math::

       L = -\frac1n\sum_{i=1}^n \log
           \frac{e^{\langle f_i, u_{y_i}\rangle - r_{y_i}\lVert u_{y_i}\rVert}}
                {e^{\langle f_i, u_{y_i}\rangle - r_{y_i}\lVert u_{y_i}\rVert}
                 + \sum_{k \ne y_i} e^{\langle f_i, u_k\rangle + r_{y_i}\lVert u_k\rVert}} .

    Each shift uses the radius of the sample's own class :math:`y_i`, never that of :math:`k`.

    Args:
        features: :math:`f_i`, shape ``(n, d)``.
        class_vectors: :math:`u_k`, shape ``(K, d)``.
        y: class indices, shape ``(n,)``, an integer tensor.
        radii: :math:`r_k \ge 0`, shape ``(K,)``.

    Returns:
        :math:`L`, a 0-d tensor.

    Raises:
        ValueError: on wrong shapes, class indices out of range or negative radii.
        TypeError: if ``y`` is not an integer tensor.

    Used in: :doc:`/book/classification/class-imbalance-reweight-vs-loss`, eq. :eq:`ci-territory`.
    """
    f = as_tensor(features, "features", ndim=2)
    U = as_tensor(class_vectors, "class_vectors", shape=(None, f.shape[1]), dtype=f.dtype)
    K = U.shape[0]
    yi = as_labels(y, "y", f.shape[0], K)
    r = as_tensor(radii, "radii", shape=(K,), dtype=f.dtype).to(f.dtype)
    if bool((r < 0).any()):
        raise ValueError("radii must be >= 0")
    norms = U.norm(dim=1)
    ry = r[yi][:, None]
    onehot = F.one_hot(yi, K).to(f.dtype)
    scores = f @ U.T + ry * norms[None, :] * (1 - 2 * onehot)
    return F.cross_entropy(scores, yi)


# --- where each loss puts the boundary ------------------------------------------------------------

def weighted_threshold(w_pos: float, w_neg: float) -> float:
    r"""Posterior threshold of the class-weighted cross-entropy's population minimiser.

    Minimising :math:`\eta w_1(-\log p) + (1 - \eta) w_0(-\log(1 - p))` over :math:`p` gives
    :math:`p^\ast = w_1\eta / (w_1\eta + w_0(1 - \eta))`, and :math:`p^\ast > 1/2` exactly when

    .. math::

       \eta > \frac{w_0}{w_0 + w_1} .

    Args:
        w_pos: :math:`w_1 > 0`.
        w_neg: :math:`w_0 > 0`.

    Returns:
        The threshold on :math:`\eta`.

    Raises:
        ValueError: if a weight is not finite and > 0.

    Used in: :doc:`/book/classification/class-imbalance-reweight-vs-loss`, eq. :eq:`ci-thresholds`.
    """
    w1 = check_positive(w_pos, "w_pos")
    w0 = check_positive(w_neg, "w_neg")
    return w0 / (w0 + w1)


def logit_adjusted_threshold(prior: float, tau: float = 1.0) -> float:
    r"""Posterior threshold of the binary logit-adjusted loss's population minimiser.

    The minimiser satisfies :math:`\sigma(z^\ast + \tau\log\frac{\pi}{1-\pi}) = \eta`, so the
    unshifted logit is positive exactly when

    .. math::

       \eta > \frac{\pi^\tau}{\pi^\tau + (1 - \pi)^\tau}
       \qquad (= \pi \text{ for } \tau = 1,\ \text{the balanced-error Bayes rule}) .

    Args:
        prior: :math:`\pi \in (0, 1)`.
        tau: :math:`\tau`.

    Returns:
        The threshold on :math:`\eta`.

    Raises:
        ValueError: if ``prior`` is not in (0, 1) or ``tau`` is not finite.

    Used in: :doc:`/book/classification/class-imbalance-reweight-vs-loss`, eq. :eq:`ci-thresholds`.
    """
    pi = _prior(prior)
    t = check_real(tau, "tau")
    return 1 / (1 + math.exp(-t * math.log(pi / (1 - pi))))


def margin_threshold(m_pos: float, m_neg: float) -> float:
    r"""Posterior threshold of a two-class margin loss's population minimiser.

    With :math:`d = s_1 - s_0`, positives pay :math:`\log(1 + e^{-(d - m_1)})` and negatives
    :math:`\log(1 + e^{d + m_0})` (the two-class :func:`territory_margin_cross_entropy` has
    :math:`m_y = r_y(\lVert u_0\rVert + \lVert u_1\rVert)`). The pointwise risk is convex in
    :math:`d`, and its minimiser is positive exactly when

    .. math::

       \eta > \frac{\sigma(m_0)}{\sigma(m_0) + \sigma(m_1)},

    which lies in :math:`(1/3, 2/3)` for all margins :math:`m_0, m_1 \ge 0`.

    Args:
        m_pos: :math:`m_1`, the margin asked of positives.
        m_neg: :math:`m_0`, the margin asked of negatives.

    Returns:
        The threshold on :math:`\eta`.

    Raises:
        ValueError: if a margin is not finite.
        TypeError: if a margin is not a real number.

    Used in: :doc:`/book/classification/class-imbalance-reweight-vs-loss`, eq. :eq:`ci-thresholds`.
    """
    s1 = 1 / (1 + math.exp(-check_real(m_pos, "m_pos")))
    s0 = 1 / (1 + math.exp(-check_real(m_neg, "m_neg")))
    return s0 / (s0 + s1)


# --- data and linear models -----------------------------------------------------------------------

def imbalanced_split(y: np.ndarray, n_train: tuple[int, int], n_test: tuple[int, int], *,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    r"""A seeded train/test split with chosen class counts, drawn without replacement.

    From the indices of each class :math:`c`, a random permutation by ``rng``; the first
    :math:`n^{\mathrm{train}}_c` go to the training set, the next :math:`n^{\mathrm{test}}_c` to
    the test set, so the two are disjoint. Subsampling one class this way makes it rare.

    Args:
        y: labels in :math:`\{0, 1\}`, shape ``(N,)``.
        n_train: :math:`(n^{\mathrm{train}}_0, n^{\mathrm{train}}_1)`, counts >= 1.
        n_test: :math:`(n^{\mathrm{test}}_0, n^{\mathrm{test}}_1)`, counts >= 1.
        rng: a ``numpy.random.Generator``.

    Returns:
        ``(train, test)``: index arrays of lengths :math:`\sum_c n^{\mathrm{train}}_c` and
        :math:`\sum_c n^{\mathrm{test}}_c`, class 0 first and each class in increasing order, so
        that splits with the same counts have the same label vector (replicates for
        :func:`train_linear_adam`).

    Raises:
        ValueError: if a label is not 0 or 1, a count is below 1, or a class has too few samples.
        TypeError: if ``rng`` is not a ``numpy.random.Generator``.

    Used in: :doc:`/book/classification/class-imbalance-reweight-vs-loss`.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    labels = np.asarray(y)
    if labels.ndim != 1 or not np.isin(labels, (0, 1)).all():
        raise ValueError("y must be 1-dimensional and hold labels 0 or 1")
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for c in (0, 1):
        a = check_count(_pick(n_train, c, "n_train"), "n_train")
        b = check_count(_pick(n_test, c, "n_test"), "n_test")
        idx = np.flatnonzero(labels == c)
        if a + b > idx.size:
            raise ValueError(f"y has {idx.size} samples of class {c}, fewer than the {a + b} "
                             f"asked for by n_train and n_test")
        idx = rng.permutation(idx)
        train.append(np.sort(idx[:a]))
        test.append(np.sort(idx[a:a + b]))
    return np.concatenate(train), np.concatenate(test)


def _pick(pair: Any, c: int, name: str) -> Any:
    if not isinstance(pair, Sequence) or len(pair) != 2:
        raise ValueError(f"{name} must be a pair (count of class 0, count of class 1)")
    return pair[c]


class _Design:
    """A design matrix, dense or sparse CSR, with its transpose kept for the backward pass."""

    def __init__(self, x: Any, name: str = "x") -> None:
        if _is_scipy_sparse(x):
            csr = x.tocsr().astype(np.float64)
            if not np.all(np.isfinite(csr.data)):
                raise ValueError(f"{name} must be finite, but it holds NaN or infinity")
            self.shape = tuple(csr.shape)
            self.X = _torch_csr(csr)
            self.XT = _torch_csr(csr.T.tocsr())
        else:
            dense = as_tensor(x, name, ndim=2).to(torch.float64)
            self.shape = tuple(dense.shape)
            self.X, self.XT = dense, dense.T

    def to(self, dtype: torch.dtype) -> _Design:
        self.X, self.XT = self.X.to(dtype), self.XT.to(dtype)
        return self

    def matmul(self, W: Tensor) -> Tensor:
        return _DesignMatmul.apply(self.X, self.XT, W)


def _torch_csr(m: Any) -> Tensor:
    with warnings.catch_warnings():                     # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(torch.from_numpy(m.indptr.astype(np.int64)),
                                       torch.from_numpy(m.indices.astype(np.int64)),
                                       torch.from_numpy(m.data), size=m.shape,
                                       dtype=torch.float64)


class _DesignMatmul(torch.autograd.Function):
    """:math:`XW`, with :math:`X^\\top G` as the backward pass (sparse or dense)."""

    @staticmethod
    def forward(ctx: Any, X: Tensor, XT: Tensor, W: Tensor) -> Tensor:
        ctx.save_for_backward(XT)
        return X @ W

    @staticmethod
    def backward(ctx: Any, *grads: Tensor) -> tuple[None, None, Tensor]:
        (XT,) = ctx.saved_tensors
        return None, None, XT @ grads[0]


def linear_logits(x: Any, weights: Tensor, bias: Tensor) -> Tensor:
    r"""Logits of linear models on dense or sparse features.

    .. math::

       Z = X W + \mathbf 1 b^\top ,

    differentiable in :math:`W` and :math:`b`; a ``scipy.sparse`` ``X`` is multiplied as a torch
    CSR tensor (its transpose is used for the gradient).

    Args:
        x: features :math:`X`, shape ``(n, d)``, a float array, tensor or ``scipy.sparse`` matrix.
        weights: :math:`W`, shape ``(d, m)`` (one column per model).
        bias: :math:`b`, shape ``(m,)``.

    Returns:
        :math:`Z`, shape ``(n, m)``.

    Raises:
        ValueError: on mismatched shapes or non-finite features.

    Used in: :doc:`/book/classification/class-imbalance-reweight-vs-loss`.
    """
    X = x if isinstance(x, _Design) else _Design(x)
    W = as_tensor(weights, "weights", shape=(X.shape[1], None))
    b = as_tensor(bias, "bias", shape=(W.shape[1],), dtype=W.dtype).to(W.dtype)
    return X.to(W.dtype).matmul(W) + b


def train_linear_adam(x: Any, y: Tensor, loss: LossFn, *, n_models: int,
                      l2: float | Sequence[float], steps: int, lr: float,
                      dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    r"""Train :math:`m` linear models on each of :math:`S` data sets at once, full batch, with
    ``torch.optim.Adam``.

    ``x`` is one design matrix or a list of :math:`S` of them (replicates, e.g. one training set
    per seed), all of shape ``(n, d)`` and all with the same labels ``y`` in the same order.
    Model :math:`k` on replicate :math:`s` has logits :math:`z_{sk} = X_s w_{sk} + b_{sk}`;
    ``loss`` maps the logits of all models, ``Z`` of shape ``(n, S, m)``, to their losses
    :math:`L_{sk}` of shape ``(S, m)``, and each model minimises

    .. math::

       J_{sk}(w_{sk}, b_{sk}) = L_{sk}(Z, y) + \frac{\lambda_k}{2}\lVert w_{sk}\rVert^2

    (the intercept is not penalised). As long as :math:`L_{sk}` depends on :math:`z_{sk}` only,
    the models share nothing, and one Adam step on :math:`\sum_{sk} J_{sk}` is one Adam step on
    each :math:`J_{sk}` (Adam acts elementwise). The replicates are multiplied as one
    block-diagonal matrix (rows interleaved so that ``Z`` comes out contiguous), so each step
    costs one sparse product. All models start from zero.

    Args:
        x: features, shape ``(n, d)`` (a float array, tensor or ``scipy.sparse`` matrix), or a
            non-empty list of such matrices of equal shape.
        y: labels in :math:`\{0, 1\}`, shape ``(n,)``, shared by the replicates.
        loss: ``loss(Z, y)`` returning the ``(S, m)`` losses for logits ``Z`` of shape
            ``(n, S, m)`` (:math:`S = 1` for a single matrix).
        n_models: :math:`m`.
        l2: :math:`\lambda_k \ge 0`, one for all models or one per model.
        steps: number of Adam steps.
        lr: Adam's learning rate.
        dtype: the floating type of the features, parameters and logits (float32 halves the
            cost of the sparse products).

    Returns:
        ``(W, b)`` of shapes ``(d, m)`` and ``(m,)`` for a single matrix, ``(S, d, m)`` and
        ``(S, m)`` for a list; detached.

    Raises:
        ValueError: on bad shapes or labels, ``l2 < 0``, a non-positive ``lr``, ``steps < 1``
            or ``n_models < 1``, or if ``loss`` does not return ``(S, m)`` finite values.
        TypeError: if ``loss`` is not callable.

    Used in: :doc:`/book/classification/class-imbalance-reweight-vs-loss`.
    """
    single = not isinstance(x, list | tuple)
    mats = [x] if single else list(x)
    if not mats:
        raise ValueError("x must be a matrix or a non-empty list of matrices")
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    X, S, n, d = _stack(mats)
    X = X.to(dtype)
    yy = _labels(y, n).to(dtype)
    if not callable(loss):
        raise TypeError("loss must be a callable loss(logits, y)")
    m = check_count(n_models, "n_models")
    if isinstance(l2, Sequence):
        if len(l2) != m:
            raise ValueError(f"l2 must be one number or one per model ({m}), got {len(l2)}")
        lams = [check_positive(v, "l2", allow_zero=True) for v in l2]
    else:
        lams = [check_positive(l2, "l2", allow_zero=True)] * m
    lam = torch.tensor(lams, dtype=dtype)
    steps = check_count(steps, "steps")
    lr = check_positive(lr, "lr")
    W = torch.zeros(S * d, m, dtype=dtype, requires_grad=True)
    b = torch.zeros(S, m, dtype=dtype, requires_grad=True)
    opt = torch.optim.Adam([W, b], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        Z = X.matmul(W).reshape(n, S, m) + b
        L = loss(Z, yy)
        if not isinstance(L, Tensor) or tuple(L.shape) != (S, m) or not bool(
                torch.isfinite(L).all()):
            raise ValueError(f"loss must return finite values of shape ({S}, {m})")
        (L.sum() + (lam / 2 * (W * W).reshape(S, d, m).sum(dim=1)).sum()).backward()
        opt.step()
    W_out, b_out = W.detach().reshape(S, d, m), b.detach()
    return (W_out[0], b_out[0]) if single else (W_out, b_out)


def _is_scipy_sparse(x: Any) -> bool:
    return hasattr(x, "tocsr") and hasattr(x, "nnz")


def _stack(mats: list[Any]) -> tuple[_Design, int, int, int]:
    """One design for a list of replicates: their block-diagonal matrix, and S, n, d."""
    if len(mats) == 1:
        X = _Design(mats[0])
        return X, 1, X.shape[0], X.shape[1]
    if all(_is_scipy_sparse(mat) for mat in mats):
        import scipy.sparse as sps

        shapes = [tuple(mat.shape) for mat in mats]
        blocks: Any = sps.block_diag([mat.tocsr() for mat in mats], format="csr")
    else:
        dense = [as_tensor(mat.toarray() if _is_scipy_sparse(mat) else mat, "x", ndim=2)
                 .to(torch.float64) for mat in mats]
        shapes = [tuple(t.shape) for t in dense]
        blocks = torch.block_diag(*dense)
    if any(sh != shapes[0] for sh in shapes):
        raise ValueError(f"x: every matrix must have the shape {shapes[0]} of the first")
    n, d = shapes[0]
    S = len(mats)
    rows = (np.arange(n)[:, None] + n * np.arange(S)[None, :]).ravel()   # sample-major rows,
    return _Design(blocks[rows]), S, n, d                                # so Z is (n, S, m)


def _loss_value(v: Any) -> Tensor:
    if not isinstance(v, Tensor) or v.ndim != 0 or not bool(torch.isfinite(v)):
        raise ValueError("loss must return a finite 0-d tensor")
    return v


def fit_linear_lbfgs(x: Any, y: Tensor, loss: LossFn, *, l2: float, max_iter: int = 500,
                     tol: float = 1e-12) -> tuple[Tensor, Tensor]:
    r"""Minimise one regularised loss of a linear model with ``torch.optim.LBFGS``.

    .. math::

       (w^\ast, b^\ast) = \arg\min_{w, b}\; L(Xw + b, y) + \frac{\lambda}{2}\lVert w\rVert^2,

    from zero, with a strong-Wolfe line search, in float64; for a convex :math:`L` (any class
    weighting of cross-entropy) this is the unique optimum when :math:`\lambda > 0`.

    Args:
        x: features, shape ``(n, d)``: a float array, tensor or ``scipy.sparse`` matrix.
        y: labels in :math:`\{0, 1\}`, shape ``(n,)``.
        loss: ``loss(z, y)`` returning a 0-d tensor for logits ``z`` of shape ``(n,)``.
        l2: :math:`\lambda \ge 0`.
        max_iter: the most L-BFGS iterations.
        tol: the gradient tolerance (``tolerance_grad``); ``tolerance_change`` is ``tol**2``.

    Returns:
        ``(w, b)`` of shapes ``(d,)`` and ``()``, detached.

    Raises:
        ValueError: on bad shapes or labels, ``l2 < 0``, ``max_iter < 1`` or ``tol <= 0``.
        TypeError: if ``loss`` is not callable.

    Used in: :doc:`/book/classification/class-imbalance-reweight-vs-loss`.
    """
    X = _Design(x)
    yy = _labels(y, X.shape[0])
    if not callable(loss):
        raise TypeError("loss must be a callable loss(logits, y)")
    lam = check_positive(l2, "l2", allow_zero=True)
    max_iter = check_count(max_iter, "max_iter")
    tol = check_positive(tol, "tol")
    w = torch.zeros(X.shape[1], 1, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, history_size=20,
                            tolerance_grad=tol, tolerance_change=tol**2,
                            line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        z = (X.matmul(w) + b)[:, 0]
        J = _loss_value(loss(z, yy)) + lam / 2 * (w * w).sum()
        J.backward()
        return J

    opt.step(closure)
    return w.detach()[:, 0], b.detach()[0]
