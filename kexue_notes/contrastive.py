r"""The in-batch contrastive loss (InfoNCE) and the geometry it produces.

A batch gives anchors :math:`a_i` and candidates :math:`c_j`; each anchor has one positive
candidate :math:`c_{t_i}` and the rest of the batch serves as negatives. With the cosine
:math:`s_{ij} = \cos(a_i, c_j)` and a temperature :math:`\tau > 0` the loss is the cross-entropy
of a softmax over the candidates,

.. math::

   \mathcal{L} = \frac{1}{n} \sum_{i=1}^n -\log
   \frac{e^{s_{i t_i}/\tau}}{\sum_{j} e^{s_{ij}/\tau}} .

SimCSE, SimBERT and sentence-transformers' ``MultipleNegativesRankingLoss`` are all this loss with
different choices of batch (two dropout views, paired sentences, query/answer pairs); the
temperature decides how the gradient spreads over the negatives.

The module reads: the logits, the loss, its gradient with respect to the logits, the weights it
puts on the negatives, and the two diagnostics of Wang and Isola (alignment and uniformity) with
the exact uniformity of the uniform distribution on the sphere as a reference.

All functions take torch tensors (or arrays, converted to float64) and keep autograd graphs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from scipy.special import gammaln, ive

from kexue_notes._validate import as_tensor, check_count, check_positive

if TYPE_CHECKING:
    import torch

__all__ = [  # noqa: RUF022 -- in the order of the method, as the module reads
    "interleave_pairs",
    "partner_targets",
    "cosine_logits",
    "info_nce_from_logits",
    "info_nce_loss",
    "info_nce_logit_gradient",
    "negative_weights",
    "hinge_limit",
    "alignment",
    "uniformity",
    "sphere_uniformity",
]


def _unit_rows(x: torch.Tensor, name: str) -> torch.Tensor:
    norms = x.norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        raise ValueError(f"{name} has a zero row (index {int(norms.argmin())}); "
                         "its direction is undefined")
    return x / norms


def _targets(targets: Any, n: int, m: int, exclude_self: bool) -> torch.Tensor:
    import torch

    if targets is None:
        if n > m:
            raise ValueError(f"default targets need at least as many candidates as anchors, "
                             f"got {m} < {n}")
        targets = torch.arange(n)
    t = torch.as_tensor(targets)
    if t.dtype.is_floating_point or t.dtype == torch.bool or t.shape != (n,):
        raise TypeError(f"targets must be {n} integer indices, got dtype {t.dtype} "
                        f"and shape {tuple(t.shape)}")
    if bool(((t < 0) | (t >= m)).any()):
        raise ValueError(f"targets must lie in [0, {m}), got {t.min().item()}..{t.max().item()}")
    if exclude_self and bool((t == torch.arange(n)).any()):
        raise ValueError("targets must not point at the anchor itself when exclude_self=True")
    return t.long()


def _masked(logits: torch.Tensor, exclude_self: bool) -> torch.Tensor:
    if not exclude_self:
        return logits
    import torch

    n, m = logits.shape
    if n > m:
        raise ValueError(f"exclude_self needs at least as many candidates as anchors, "
                         f"got {m} < {n}")
    eye = torch.zeros(n, m, dtype=torch.bool, device=logits.device)
    eye[:, :n] = torch.eye(n, dtype=torch.bool, device=logits.device)
    return logits.masked_fill(eye, float("-inf"))


def interleave_pairs(a: Any, b: Any) -> torch.Tensor:
    r"""Stack paired rows into one batch: :math:`a_1, b_1, a_2, b_2, \dots`.

    .. math::

       h_{2k} = a_k, \qquad h_{2k+1} = b_k, \qquad k = 0, \dots, B-1 .

    The batch of SimBERT (a sentence and its paraphrase), of SimCSE's NT-Xent form (two dropout
    views of one sentence) and of Su's accumulation trick: each row's positive is its neighbour.

    Args:
        a: first members, shape ``(B, d)``.
        b: their partners, shape ``(B, d)``.

    Returns:
        A tensor of shape ``(2B, d)`` (float64 unless the inputs are floating tensors; autograd
        graphs are kept).

    Raises:
        ValueError: if the shapes differ or are not 2-D, or an input holds NaN or infinity.
        TypeError: if an input is not numeric.

    Used in: :doc:`/book/representations/simbert-unilm`, eq. :eq:`simbert-similarity-loss`;
    :doc:`/book/representations/simcse`, eq. :eq:`simcse-ntxent`.
    """
    import torch

    a = as_tensor(a, "a", ndim=2)
    b = as_tensor(b, "b", ndim=2, shape=tuple(a.shape))
    if a.dtype != b.dtype:
        b = b.to(a.dtype)
    return torch.stack([a, b], dim=1).reshape(2 * a.shape[0], a.shape[1])


def partner_targets(n_pairs: int) -> torch.Tensor:
    r"""The index of each row's partner in the batch of :func:`interleave_pairs`.

    .. math::

       \pi(i) = i \oplus 1
       = \begin{cases} i + 1 & i \text{ even}, \\ i - 1 & i \text{ odd}, \end{cases}
       \qquad i = 0, \dots, 2B-1,

    an involution without fixed points (``1, 0, 3, 2, ...``), so it is a valid ``targets`` with
    ``exclude_self=True`` in :func:`info_nce_loss`, and the target matrix is symmetric.

    Args:
        n_pairs: the number of pairs :math:`B`, ``>= 1``.

    Returns:
        A long tensor of shape ``(2B,)``.

    Raises:
        TypeError: if ``n_pairs`` is not an integer.
        ValueError: if ``n_pairs < 1``.

    Used in: :doc:`/book/representations/simbert-unilm`, eq. :eq:`simbert-similarity-loss`;
    :doc:`/book/representations/simcse`;
    :doc:`/book/optimization/contrastive-grad-accum`.
    """
    import torch

    n_pairs = check_count(n_pairs, "n_pairs", minimum=1)
    return torch.arange(2 * n_pairs) ^ 1


def cosine_logits(a: Any, b: Any, tau: float) -> torch.Tensor:
    r"""The matrix of scaled cosines :math:`s_{ij}/\tau = \cos(a_i, b_j)/\tau`.

    .. math::

       \frac{s_{ij}}{\tau} = \frac{1}{\tau}\,
       \frac{a_i \cdot b_j}{\lVert a_i\rVert\, \lVert b_j\rVert} .

    Args:
        a: anchors, shape ``(n, d)``.
        b: candidates, shape ``(m, d)``.
        tau: temperature, ``> 0`` (sentence-transformers' ``scale`` is ``1/tau``).

    Returns:
        The logits, shape ``(n, m)``.

    Raises:
        ValueError: if the shapes do not match, an input holds NaN or infinity, a row is zero, or
            ``tau <= 0``.
        TypeError: if an input is not numeric.

    Used in: :doc:`/book/representations/simcse`, eq. :eq:`simcse-infonce`;
    :doc:`/book/representations/simbert-unilm`.
    """
    a = as_tensor(a, "a", ndim=2)
    b = as_tensor(b, "b", ndim=2, shape=(None, a.shape[1]))
    tau = check_positive(tau, "tau")
    return _unit_rows(a, "a") @ _unit_rows(b, "b").T / tau


def info_nce_from_logits(logits: Any, targets: Any = None,
                         exclude_self: bool = False) -> torch.Tensor:
    r"""The InfoNCE loss from given logits :math:`z_{ij}`: softmax cross-entropy, mean over rows.

    .. math::

       \mathcal{L} = \frac{1}{n} \sum_{i=1}^n \Big( -z_{i t_i}
       + \log \sum_{j \in J_i} e^{z_{ij}} \Big),

    with :math:`J_i` all candidates, or all but :math:`j = i` when ``exclude_self``. The logits may
    be scaled cosines (:func:`info_nce_loss`) or plain inner products.

    Args:
        logits: shape ``(n, m)``.
        targets: index of each row's positive, ``n`` integers in ``[0, m)``; default the diagonal.
        exclude_self: drop entry ``(i, i)`` from row ``i``'s softmax.

    Returns:
        The mean loss, a 0-d tensor (with the logits' graph).

    Raises:
        ValueError: on non-2-D or non-finite logits, targets out of range, or a target equal to
            its row while ``exclude_self``.
        TypeError: if ``targets`` are not integers.

    Used in: :doc:`/book/optimization/contrastive-grad-accum`, eq. :eq:`gradcache-loss`.
    """
    import torch

    z = as_tensor(logits, "logits", ndim=2)
    t = _targets(targets, z.shape[0], z.shape[1], exclude_self)
    return torch.nn.functional.cross_entropy(_masked(z, exclude_self), t.to(z.device))


def info_nce_loss(anchors: Any, candidates: Any, tau: float, targets: Any = None,
                  exclude_self: bool = False) -> torch.Tensor:
    r"""The InfoNCE loss: softmax cross-entropy over cosine logits, averaged over anchors.

    .. math::

       \mathcal{L} = \frac{1}{n} \sum_{i=1}^n \Big( -\frac{s_{i t_i}}{\tau}
       + \log \sum_{j \in J_i} e^{s_{ij}/\tau} \Big),

    with :math:`J_i` all candidates, or all but :math:`j = i` when ``exclude_self`` (a batch that
    serves as its own candidates, as in SimBERT and NT-Xent).

    Args:
        anchors: shape ``(n, d)``.
        candidates: shape ``(m, d)``.
        tau: temperature, ``> 0``.
        targets: index of each anchor's positive candidate, ``n`` integers in ``[0, m)``;
            default ``0, 1, ..., n-1`` (positives on the diagonal).
        exclude_self: drop candidate ``i`` from anchor ``i``'s softmax.

    Returns:
        The mean loss, a 0-d tensor.

    Raises:
        ValueError: on mismatched shapes, non-finite input, zero rows, ``tau <= 0``, targets out
            of range, or a target equal to its anchor while ``exclude_self``.
        TypeError: if ``targets`` are not integers.

    Used in: :doc:`/book/representations/simcse`, eq. :eq:`simcse-infonce`;
    :doc:`/book/representations/simbert-unilm`;
    :doc:`/book/representations/contrastive-temperature`;
    :doc:`/book/optimization/contrastive-grad-accum`.
    """
    return info_nce_from_logits(cosine_logits(anchors, candidates, tau), targets, exclude_self)


def info_nce_logit_gradient(logits: Any, targets: Any = None,
                            exclude_self: bool = False) -> torch.Tensor:
    r"""Gradient of the mean InfoNCE loss with respect to its logits :math:`z_{ij} = s_{ij}/\tau`.

    .. math::

       \frac{\partial \mathcal{L}}{\partial z_{ij}} = \frac{1}{n}
       \big( P_{ij} - [\, j = t_i \,] \big), \qquad
       P_{ij} = \frac{e^{z_{ij}}}{\sum_{k \in J_i} e^{z_{ik}}},

    and zero for an excluded entry. Each row sums to zero: what the positive gains, the negatives
    lose in proportion to their softmax weights.

    Args:
        logits: shape ``(n, m)``.
        targets: as in :func:`info_nce_loss`.
        exclude_self: as in :func:`info_nce_loss`.

    Returns:
        The gradient, shape ``(n, m)``.

    Raises:
        ValueError: on non-2-D or non-finite logits, or invalid targets.
        TypeError: if ``targets`` are not integers.

    Used in: :doc:`/book/representations/simcse`, eq. :eq:`simcse-gradient`;
    :doc:`/book/representations/contrastive-temperature`;
    :doc:`/book/representations/simbert-unilm`;
    :doc:`/book/optimization/contrastive-grad-accum`.
    """
    import torch

    z = as_tensor(logits, "logits", ndim=2)
    n, m = z.shape
    t = _targets(targets, n, m, exclude_self)
    p = torch.softmax(_masked(z, exclude_self), dim=1)
    onehot = torch.nn.functional.one_hot(t, m).to(p.dtype)
    return (p - onehot) / n


def negative_weights(sim: Any, tau: float) -> torch.Tensor:
    r"""How the loss spreads its push over the negatives: a Boltzmann distribution per anchor.

    For a square similarity matrix with positives on the diagonal,

    .. math::

       r_{ij} = \frac{e^{s_{ij}/\tau}}{\sum_{k \ne i} e^{s_{ik}/\tau}} \quad (j \ne i),
       \qquad r_{ii} = 0 .

    The gradient of anchor :math:`i`'s loss on negative :math:`j` is proportional to
    :math:`r_{ij}`: a small :math:`\tau` concentrates it on the hardest negatives.

    Args:
        sim: similarities, shape ``(n, n)``, ``n >= 2``.
        tau: temperature, ``> 0``.

    Returns:
        The weights, shape ``(n, n)``; each row sums to one.

    Raises:
        ValueError: if ``sim`` is not square with ``n >= 2``, holds NaN or infinity, or
            ``tau <= 0``.

    Used in: :doc:`/book/representations/contrastive-temperature`.
    """
    import torch

    s = as_tensor(sim, "sim", ndim=2)
    if s.shape[0] != s.shape[1] or s.shape[0] < 2:
        raise ValueError(f"sim must be square with at least 2 rows, got shape {tuple(s.shape)}")
    tau = check_positive(tau, "tau")
    return torch.softmax(_masked(s / tau, exclude_self=True), dim=1)


def hinge_limit(sim: Any, targets: Any = None, exclude_self: bool = False) -> torch.Tensor:
    r"""The zero-temperature limit of :math:`\tau \mathcal{L}_i`: a hinge on the hardest negative.

    .. math::

       \lim_{\tau \to 0^+} \tau\, \mathcal{L}_i
       = \max\Big(0,\; \max_{j \in J_i,\, j \ne t_i} s_{ij} - s_{i t_i}\Big),

    a triplet loss with margin zero against the single hardest negative: at a small temperature
    the loss counts only the negative that beats the positive by most, and nothing once the
    positive wins.

    Args:
        sim: similarities :math:`s_{ij}` (not divided by :math:`\tau`), shape ``(n, m)``.
        targets: as in :func:`info_nce_loss`; default the diagonal.
        exclude_self: as in :func:`info_nce_loss`.

    Returns:
        The hinge of each anchor, shape ``(n,)``.

    Raises:
        ValueError: if ``sim`` is not 2-D, holds NaN or infinity, leaves an anchor without a
            negative, or ``targets`` are invalid.
        TypeError: if ``targets`` are not integers.

    Used in: :doc:`/book/representations/contrastive-temperature`, eq. :eq:`ctemp-limit-zero`;
    :doc:`/book/representations/simbert-unilm`, eq. :eq:`simbert-hinge-limit`.
    """
    import torch

    s = as_tensor(sim, "sim", ndim=2)
    n, m = s.shape
    if m - int(exclude_self) < 2:
        raise ValueError(f"sim must leave each anchor a negative: got {m} candidates"
                         + (" with self excluded" if exclude_self else ""))
    t = _targets(targets, n, m, exclude_self).to(s.device)
    rows = torch.arange(n, device=s.device)
    inf = torch.tensor(float("-inf"), dtype=s.dtype, device=s.device)
    negatives = _masked(s, exclude_self).index_put((rows, t), inf)
    return torch.clamp(negatives.amax(dim=1) - s[rows, t], min=0.0)


def alignment(x: Any, y: Any, alpha: float = 2.0) -> torch.Tensor:
    r"""Alignment of positive pairs (Wang and Isola): mean distance of their unit vectors.

    .. math::

       \ell_{\text{align}} = \frac{1}{n} \sum_{i=1}^n
       \lVert \hat x_i - \hat y_i \rVert^{\alpha}, \qquad \hat x = x / \lVert x \rVert .

    Args:
        x: shape ``(n, d)``.
        y: positives of ``x``, shape ``(n, d)``.
        alpha: exponent, ``> 0``.

    Returns:
        A 0-d tensor in ``[0, 2^alpha]``; lower is better aligned.

    Raises:
        ValueError: on mismatched shapes, non-finite input, zero rows or ``alpha <= 0``.

    Used in: :doc:`/book/representations/simcse`, eq. :eq:`simcse-alignment`.
    """
    x = as_tensor(x, "x", ndim=2)
    y = as_tensor(y, "y", ndim=2, shape=tuple(x.shape))
    alpha = check_positive(alpha, "alpha")
    return (_unit_rows(x, "x") - _unit_rows(y, "y")).norm(dim=1).pow(alpha).mean()


def uniformity(x: Any, t: float = 2.0) -> torch.Tensor:
    r"""Uniformity (Wang and Isola): log of the mean Gaussian potential over distinct pairs.

    .. math::

       \ell_{\text{uniform}} = \log \frac{2}{n(n-1)} \sum_{i<j}
       e^{-t \lVert \hat x_i - \hat x_j \rVert^2} .

    Args:
        x: shape ``(n, d)``, ``n >= 2``.
        t: potential scale, ``> 0``.

    Returns:
        A 0-d tensor in ``[-4t, 0]``; lower is more uniform.

    Raises:
        ValueError: on non-finite input, zero rows, fewer than two rows or ``t <= 0``.

    Used in: :doc:`/book/representations/simcse`, eq. :eq:`simcse-uniformity`;
    :doc:`/book/representations/contrastive-temperature`.
    """
    import torch

    x = as_tensor(x, "x", ndim=2)
    check_count(x.shape[0], "number of rows of x", minimum=2)
    t = check_positive(t, "t")
    sq = torch.nn.functional.pdist(_unit_rows(x, "x")).pow(2)
    return torch.logsumexp(-t * sq, dim=0) - math.log(sq.numel())


def sphere_uniformity(d: int, t: float = 2.0) -> float:
    r"""Exact uniformity of the uniform distribution on the unit sphere :math:`S^{d-1}`.

    For independent uniform unit vectors :math:`\lVert u - v\rVert^2 = 2 - 2c` with
    :math:`c = u \cdot v`, whose density is proportional to :math:`(1-c^2)^{(d-3)/2}`; its moment
    generating function is a modified Bessel function, so with :math:`\kappa = 2t`

    .. math::

       \ell_{\text{uniform}}^{S^{d-1}} = -2t + \log\Big[ \Gamma\big(\tfrac d2\big)
       \big(\tfrac{2}{\kappa}\big)^{d/2-1} I_{d/2-1}(\kappa) \Big] .

    This is the floor that :func:`uniformity` approaches for many well-spread points.

    Args:
        d: dimension of the ambient space, ``>= 2``.
        t: potential scale, ``> 0``.

    Returns:
        The uniformity, a float.

    Raises:
        ValueError: if ``d < 2`` or ``t <= 0``.
        TypeError: if ``d`` is not an integer.

    Used in: :doc:`/book/representations/simcse`, eq. :eq:`simcse-sphere-uniformity`.
    """
    d = check_count(d, "d", minimum=2)
    t = check_positive(t, "t")
    kappa, nu = 2.0 * t, d / 2.0 - 1.0
    # ive(nu, k) = I_nu(k) e^{-k}: scaled so that large d or t cannot overflow
    log_mgf = gammaln(d / 2.0) + nu * math.log(2.0 / kappa) + math.log(ive(nu, kappa)) + kappa
    return -2.0 * t + float(log_mgf)
