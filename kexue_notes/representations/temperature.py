r"""The temperature of the contrastive loss: how it spreads the push over the negatives.

An anchor :math:`i` meets a row of cosine similarities :math:`s_{ij}`; the positive sits on the
diagonal, :math:`s_{ii}`, and every :math:`j \ne i` is a negative. The InfoNCE loss of the anchor,

.. math::

   \mathcal{L}_i = -\frac{s_{ii}}{\tau} + \log \sum_{j} e^{s_{ij}/\tau},

pushes each negative with a force proportional to the Boltzmann weight
:math:`r_{ij} = e^{s_{ij}/\tau} / \sum_{k \ne i} e^{s_{ik}/\tau}`
(:func:`kexue_notes.contrastive.negative_weights`). Wang and Liu (2021) read the temperature
:math:`\tau` off this distribution. The module follows them: the entropy of the weights and its
slope in :math:`\tau`, the loss at high temperature (linear, with uniform weights; its
zero-temperature limit, a hinge, is :func:`kexue_notes.contrastive.hinge_limit`), the share of
the push that lands on negatives of the anchor's own class, and the tolerance of an embedding to
members of the same class.

All functions take torch tensors (or arrays, converted to float64), return torch tensors and
keep autograd graphs. Similarity matrices are square, ``(n, n)``, positives on the diagonal,
as in :func:`kexue_notes.contrastive.negative_weights`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from kexue_notes._validate import as_tensor, check_positive

if TYPE_CHECKING:
    import torch

__all__ = [  # noqa: RUF022 -- in the order of the method, as the module reads
    "weight_entropy",
    "weight_entropy_slope",
    "high_temperature_loss",
    "same_label_share",
    "tolerance",
]


def _square_sim(sim: Any) -> torch.Tensor:
    s = as_tensor(sim, "sim", ndim=2)
    if s.shape[0] != s.shape[1] or s.shape[0] < 2:
        raise ValueError(f"sim must be square with at least 2 rows, got shape {tuple(s.shape)}")
    return s


def _off_diagonal(n: int, device: Any) -> torch.Tensor:
    import torch

    return ~torch.eye(n, dtype=torch.bool, device=device)


def _negative_logits(s: torch.Tensor, tau: float) -> torch.Tensor:
    """``s / tau`` with the diagonal (the positives) set to ``-inf``."""
    return (s / tau).masked_fill(~_off_diagonal(s.shape[0], s.device), float("-inf"))


def _labels(labels: Any, n: int) -> torch.Tensor:
    import numpy as np
    import torch

    if isinstance(labels, torch.Tensor):
        lab = labels
    else:
        arr = np.asarray(labels)
        if arr.dtype.kind not in "iu":
            raise TypeError(f"labels must be {n} integers, got dtype {arr.dtype}")
        lab = torch.as_tensor(arr)
    if lab.dtype.is_floating_point or lab.dtype.is_complex or lab.dtype == torch.bool:
        raise TypeError(f"labels must be {n} integers, got dtype {lab.dtype}")
    if tuple(lab.shape) != (n,):
        raise ValueError(f"labels must have shape ({n},), got {tuple(lab.shape)}")
    return lab.long()


def weight_entropy(sim: Any, tau: float) -> torch.Tensor:
    r"""Entropy of each anchor's Boltzmann weights over its negatives.

    .. math::

       H_i(\tau) = -\sum_{j \ne i} r_{ij} \log r_{ij}
       = \log \sum_{k \ne i} e^{s_{ik}/\tau} - \frac{1}{\tau} \sum_{j \ne i} r_{ij} s_{ij},

    computed in the second form (a log-sum-exp), which stays finite for any :math:`\tau > 0`.
    It runs from :math:`\log(\text{number of tied hardest negatives})` at :math:`\tau \to 0` to
    :math:`\log(n-1)` at :math:`\tau \to \infty`; :math:`e^{H_i}` is the effective number of
    negatives that share the push.

    Args:
        sim: similarities, shape ``(n, n)``, ``n >= 2``, positives on the diagonal.
        tau: temperature, ``> 0``.

    Returns:
        The entropies in nats, shape ``(n,)``.

    Raises:
        ValueError: if ``sim`` is not square with ``n >= 2`` or holds NaN or infinity, or
            ``tau <= 0``.
        TypeError: if ``sim`` is not numeric or ``tau`` not a real number.

    Used in: :doc:`/book/representations/contrastive-temperature`, eq. :eq:`ctemp-entropy`.
    """
    import torch

    s = _square_sim(sim)
    tau = check_positive(tau, "tau")
    z = _negative_logits(s, tau)
    log_norm = torch.logsumexp(z, dim=1)
    r = torch.softmax(z, dim=1)
    mean_z = (r * z.masked_fill(torch.isinf(z), 0.0)).sum(dim=1)
    return log_norm - mean_z


def weight_entropy_slope(sim: Any, tau: float) -> torch.Tensor:
    r"""Slope of the weight entropy in the temperature: a variance over :math:`\tau^3`.

    .. math::

       \frac{\partial H_i}{\partial \tau} = \frac{\operatorname{Var}_{r_i}(s)}{\tau^3}
       = \frac{1}{\tau^3} \sum_{j \ne i} r_{ij} \big(s_{ij} - \bar s_i\big)^2,
       \qquad \bar s_i = \sum_{j \ne i} r_{ij} s_{ij} .

    It is never negative: raising :math:`\tau` spreads the weights, lowering it concentrates
    them on the hardest negatives; it is zero only when all negatives of the anchor tie.

    Args:
        sim: similarities, shape ``(n, n)``, ``n >= 2``, positives on the diagonal.
        tau: temperature, ``> 0``.

    Returns:
        The slopes, shape ``(n,)``, in nats per unit of :math:`\tau`.

    Raises:
        ValueError: if ``sim`` is not square with ``n >= 2`` or holds NaN or infinity, or
            ``tau <= 0``.
        TypeError: if ``sim`` is not numeric or ``tau`` not a real number.

    Used in: :doc:`/book/representations/contrastive-temperature`, eq. :eq:`ctemp-entropy-slope`.
    """
    import torch

    s = _square_sim(sim)
    tau = check_positive(tau, "tau")
    r = torch.softmax(_negative_logits(s, tau), dim=1)
    s_off = s.masked_fill(~_off_diagonal(s.shape[0], s.device), 0.0)
    mean = (r * s_off).sum(dim=1, keepdim=True)
    var = (r * (s_off - mean) ** 2).sum(dim=1)
    return var / tau**3


def high_temperature_loss(sim: Any, tau: float) -> torch.Tensor:
    r"""The loss of each anchor to first order in :math:`1/\tau`: uniform weights, linear in s.

    .. math::

       \mathcal{L}_i = \log n - \frac{1}{n\tau} \sum_{k \ne i} \big(s_{ii} - s_{ik}\big)
       + O(\tau^{-2}),

    with :math:`n` the number of candidates (the positive and :math:`n-1` negatives). Every
    negative is pushed equally hard, whatever its similarity.

    Args:
        sim: similarities, shape ``(n, n)``, ``n >= 2``, positives on the diagonal.
        tau: temperature, ``> 0``.

    Returns:
        The first-order loss of each anchor, shape ``(n,)``.

    Raises:
        ValueError: if ``sim`` is not square with ``n >= 2`` or holds NaN or infinity, or
            ``tau <= 0``.
        TypeError: if ``sim`` is not numeric or ``tau`` not a real number.

    Used in: :doc:`/book/representations/contrastive-temperature`, eq. :eq:`ctemp-limit-inf`.
    """
    import torch

    s = _square_sim(sim)
    tau = check_positive(tau, "tau")
    n = s.shape[0]
    gap = (torch.diagonal(s).unsqueeze(1) - s).sum(dim=1)   # the k = i term is zero
    return math.log(n) - gap / (n * tau)


def same_label_share(weights: Any, labels: Any) -> torch.Tensor:
    r"""Share of each anchor's negative weights that falls on negatives with its own label.

    .. math::

       q_i = \sum_{j \ne i,\; \ell_j = \ell_i} r_{ij} .

    With :math:`r` from :func:`kexue_notes.contrastive.negative_weights` and class labels
    :math:`\ell`, :math:`q_i` is the part of the push that separates anchor :math:`i` from its
    own class; uniform weights give :math:`(n_{\ell_i} - 1)/(n - 1)`.

    Args:
        weights: non-negative weights, shape ``(n, n)``, each row summing to one.
        labels: integer class labels, shape ``(n,)``.

    Returns:
        The shares, shape ``(n,)``, each in ``[0, 1]``.

    Raises:
        ValueError: if ``weights`` is not square, holds NaN, infinity or negative entries, a row
            does not sum to one (within ``1e-9``), or ``labels`` has the wrong shape.
        TypeError: if ``labels`` are not integers.

    Used in: :doc:`/book/representations/contrastive-temperature`, eq. :eq:`ctemp-share`.
    """
    w = as_tensor(weights, "weights", ndim=2)
    n = w.shape[0]
    if w.shape[1] != n:
        raise ValueError(f"weights must be square, got shape {tuple(w.shape)}")
    if bool((w < 0).any()):
        raise ValueError(f"weights must be non-negative, got minimum {float(w.min()):.3g}")
    worst = float((w.sum(dim=1) - 1).abs().max())
    if worst > 1e-9:
        raise ValueError(f"weights must have rows that sum to 1; off by up to {worst:.3g}")
    lab = _labels(labels, n).to(w.device)
    same = (lab.unsqueeze(0) == lab.unsqueeze(1)) & _off_diagonal(n, w.device)
    return (w * same).sum(dim=1)


def tolerance(x: Any, labels: Any) -> torch.Tensor:
    r"""Tolerance of an embedding (Wang and Liu): mean cosine over distinct same-label pairs.

    .. math::

       T = \frac{1}{|\mathcal{P}|} \sum_{(i, j) \in \mathcal{P}} \hat x_i \cdot \hat x_j,
       \qquad \mathcal{P} = \{(i, j) : i \ne j,\ \ell_i = \ell_j\},
       \qquad \hat x = x / \lVert x \rVert .

    High tolerance means that members of a class stay close; a loss that pushes all instances
    apart lowers it.

    Args:
        x: embeddings, shape ``(n, d)``.
        labels: integer class labels, shape ``(n,)``; at least one label must occur twice.

    Returns:
        The tolerance, a 0-d tensor in ``[-1, 1]``.

    Raises:
        ValueError: if ``x`` is not 2-D, holds NaN, infinity or a zero row, ``labels`` has the
            wrong shape, or no label occurs twice.
        TypeError: if ``x`` is not numeric or ``labels`` are not integers.

    Used in: :doc:`/book/representations/contrastive-temperature`, eq. :eq:`ctemp-tolerance`.
    """
    x = as_tensor(x, "x", ndim=2)
    n = x.shape[0]
    lab = _labels(labels, n).to(x.device)
    norms = x.norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        raise ValueError(f"x has a zero row (index {int(norms.argmin())}); "
                         "its direction is undefined")
    u = x / norms
    same = (lab.unsqueeze(0) == lab.unsqueeze(1)) & _off_diagonal(n, x.device)
    pairs = int(same.sum())
    if pairs == 0:
        raise ValueError("labels must repeat at least once: tolerance needs a same-label pair")
    return ((u @ u.T) * same).sum() / pairs
