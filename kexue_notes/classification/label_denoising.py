r"""LLD, a "light" label denoiser: cross-entropy plus a term that ties how often two predictions
agree to how similar the two texts are (our formalisation of the method).

For a batch of :math:`n` texts with frozen embeddings :math:`e_i` and predicted class distributions
:math:`p_i = \operatorname{softmax}(z_i) \in \Delta^{K-1}`, the *agreement* of two predictions is
the probability that independent draws from them coincide, :math:`A_{ij} = p_i^\top p_j`
(:func:`agreement`). The penalty compares it with a target :math:`T_{ij}` built from the text
similarity, on the pairs that a weight matrix :math:`M_{ij}` selects (:func:`similarity_targets`):

.. math::

   \Omega = \frac{1}{n(n-1)} \sum_{i \ne j} M_{ij}\,\bigl(T_{ij} - p_i^\top p_j\bigr)^2 ,
   \qquad
   \mathcal L = \frac1n\sum_i \mathrm{CE}(p_i, \tilde y_i) + \lambda\,\Omega
   + \ell_2\lVert W\rVert^2 .

Two readings are provided: *track* (:math:`T_{ij} = \max(0, \cos(e_i, e_j))`, every pair) and
*threshold* (:math:`T_{ij} = 1` on the pairs with :math:`\cos(e_i, e_j) > \tau`, no other pair).
:func:`lld_penalty` evaluates :math:`\Omega` in :math:`O(n^2K^2)` without forming the
:math:`n \times n` agreement matrix; :func:`lld_penalty_grad` is its closed-form gradient with
respect to the logits. :func:`train_linear_heads` trains many binary (one-logit) linear heads on
frozen features at once (full batch, ``torch.optim.Adam``), with the two-class form of the
penalty. :func:`symmetric_label_noise` injects label noise, and
:func:`toy_overrule_lambda`, :func:`toy_memorize_lambda` and :func:`toy_noisy_probability` solve the
two-point toy: one noisy point next to a neighbour whose prediction is held at :math:`c`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from kexue_notes._validate import as_tensor, check_count, check_fraction, check_positive, check_real

__all__ = [  # noqa: RUF022 -- in the order the module reads
    "symmetric_label_noise",
    "similarity_targets",
    "agreement",
    "lld_penalty",
    "lld_penalty_grad",
    "train_linear_heads",
    "toy_memorize_lambda",
    "toy_overrule_lambda",
    "toy_noisy_probability",
]

F64 = torch.float64


# --- label noise ----------------------------------------------------------------------------------

def symmetric_label_noise(labels: Any, rate: float, n_classes: int, rng: np.random.Generator
                          ) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    r"""Flip :math:`\operatorname{round}(\eta n)` labels, each to a uniformly drawn other class.

    A uniform sample of :math:`m = \operatorname{round}(\eta n)` positions, without replacement,
    gets
    :math:`\tilde y_i = (y_i + u_i) \bmod K` with :math:`u_i` uniform on :math:`\{1, \dots, K-1\}`;
    the rest keep :math:`\tilde y_i = y_i`. For :math:`K = 2` every chosen label is flipped.

    Args:
        labels: shape ``(n,)``, integers in :math:`\{0, \dots, K-1\}`.
        rate: the noise rate :math:`\eta \in [0, 1]`.
        n_classes: :math:`K \ge 2`.
        rng: a ``numpy.random.Generator``.

    Returns:
        ``(noisy, flipped)``: the noisy labels, shape ``(n,)`` int64, and the boolean mask of the
        changed positions.

    Raises:
        ValueError: if ``labels`` is not 1-D or holds a value outside the classes, or ``rate`` or
            ``n_classes`` is out of range.
        TypeError: if ``labels`` is not integer or ``rng`` is not a ``numpy.random.Generator``.

    Used in: :doc:`/book/classification/lld-label-denoising`, section "Experiment".
    """
    n_classes = check_count(n_classes, "n_classes", minimum=2)
    rate = check_fraction(rate, "rate")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-dimensional, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"labels must be integers, got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}, got {y.min()}..{y.max()}")
    n = y.size
    m = round(rate * n)
    idx = rng.choice(n, size=m, replace=False)
    noisy = y.astype(np.int64).copy()
    noisy[idx] = (noisy[idx] + rng.integers(1, n_classes, size=m)) % n_classes
    flipped = np.zeros(n, dtype=bool)
    flipped[idx] = True
    return noisy, flipped


# --- the penalty ----------------------------------------------------------------------------------

def similarity_targets(embeddings: Any, threshold: float | None = None) -> tuple[Tensor, Tensor]:
    r"""Targets :math:`T` and pair weights :math:`M` of the penalty from frozen text embeddings.

    With :math:`C_{ij} = \cos(e_i, e_j)`:

    - ``threshold=None`` (*track*): :math:`T_{ij} = \max(0, C_{ij})` and :math:`M_{ij} = 1` for
      every :math:`i \ne j`;
    - ``threshold=τ`` (*threshold*): :math:`T_{ij} = 1` and :math:`M_{ij} = [C_{ij} > \tau]` for
      :math:`i \ne j`.

    In both, :math:`M_{ii} = 0`. Both matrices are symmetric.

    Args:
        embeddings: shape ``(..., n, d)``, no zero rows.
        threshold: ``None`` or a real number :math:`\tau \in [-1, 1]`.

    Returns:
        ``(targets, weights)``, float64 tensors of shape ``(..., n, n)``.

    Raises:
        ValueError: if ``embeddings`` has fewer than two dimensions, a zero row, or is not finite,
            or ``threshold`` lies outside :math:`[-1, 1]`.

    Used in: :doc:`/book/classification/lld-label-denoising`, eq. :eq:`lld-penalty`.
    """
    e = as_tensor(embeddings, "embeddings").to(F64)
    if e.ndim < 2:
        raise ValueError(f"embeddings must have shape (..., n, d), got {tuple(e.shape)}")
    norms = e.norm(dim=-1, keepdim=True)
    if bool((norms == 0).any()):
        raise ValueError("embeddings must not hold a zero row (its cosine is undefined)")
    u = e / norms
    cos = (u @ u.transpose(-1, -2)).clamp(-1.0, 1.0)
    off = 1.0 - torch.eye(e.shape[-2], dtype=F64)
    if threshold is None:
        return cos.clamp_min(0.0), off.expand_as(cos).clone()
    tau = check_real(threshold, "threshold")
    if not -1.0 <= tau <= 1.0:
        raise ValueError(f"threshold must lie in [-1, 1], got {threshold}")
    return torch.ones_like(cos), (cos > tau).to(F64) * off


def _check_probs(probs: Any) -> Tensor:
    p = as_tensor(probs, "probs").to(F64)
    if p.ndim < 2:
        raise ValueError(f"probs must have shape (..., n, K), got {tuple(p.shape)}")
    if bool((p < 0).any()):
        raise ValueError("probs must be non-negative")
    worst = float((p.detach().sum(-1) - 1).abs().max())
    if worst > 1e-9:
        raise ValueError(f"probs must sum to 1 over the last axis; off by up to {worst:.3g}")
    return p


def agreement(probs: Any) -> Tensor:
    r"""Agreement matrix :math:`A_{ij} = p_i^\top p_j = \Pr(c_i = c_j)` for independent
    :math:`c_i \sim p_i`, :math:`c_j \sim p_j`.

    Args:
        probs: shape ``(..., n, K)``, rows on the probability simplex.

    Returns:
        Shape ``(..., n, n)``, entries in :math:`[0, 1]`.

    Raises:
        ValueError: if ``probs`` is negative, does not sum to one, or has fewer than two dimensions.

    Used in: :doc:`/book/classification/lld-label-denoising`, eq. :eq:`lld-agreement`.
    """
    p = _check_probs(probs)
    return p @ p.transpose(-1, -2)


def _check_pairs(targets: Any, weights: Any, n: int) -> tuple[Tensor, Tensor]:
    t = as_tensor(targets, "targets").to(F64)
    w = as_tensor(weights, "weights").to(F64)
    for name, m in (("targets", t), ("weights", w)):
        if m.ndim < 2 or m.shape[-2:] != (n, n):
            raise ValueError(f"{name} must have shape (..., {n}, {n}), got {tuple(m.shape)}")
        if not torch.allclose(m, m.transpose(-1, -2), rtol=0, atol=1e-12):
            raise ValueError(f"{name} must be symmetric")
    if bool((w < 0).any()):
        raise ValueError("weights must be non-negative")
    if bool((torch.diagonal(w, dim1=-2, dim2=-1) != 0).any()):
        raise ValueError("weights must have a zero diagonal (a text is not paired with itself)")
    return t, w


def _penalty(p: Tensor, t: Tensor, w: Tensor) -> Tensor:
    """The penalty by three contractions with the n x n matrices (no validation)."""
    n = p.shape[-2]
    wt = w * t
    c0 = (wt * t).sum((-2, -1))
    c1 = (p * (wt @ p)).sum((-2, -1))
    v = (p.unsqueeze(-1) * p.unsqueeze(-2)).flatten(-2)            # (..., n, K^2): p_i p_i^T
    c2 = (v * (w @ v)).sum((-2, -1))
    return (c0 - 2 * c1 + c2) / (n * (n - 1))


def _binary_penalty(u: Tensor, b_mat: Tensor, w: Tensor, c0: Tensor) -> Tensor:
    """The penalty for K = 2 of R heads per training set that share T and M (no validation).

    With q the probability of class 1 and u = 1 - 2q, the agreement is (1 + u_i u_j) / 2, so
    n(n-1) Omega = sum M (T - 1/2)^2 - u'(M * (T - 1/2))u + (u^2)'M(u^2) / 4. ``u`` has shape
    (S, n, R); ``b_mat = M * (T - 1/2)`` and ``c0 = sum M (T - 1/2)^2`` (shape (S, 1)) are fixed.
    """
    n = u.shape[1]
    u2 = u * u
    c1 = (u * (b_mat @ u)).sum(1)
    c2 = (u2 * (w @ u2)).sum(1)
    return (c0 - c1 + c2 / 4) / (n * (n - 1))


def lld_penalty(probs: Any, targets: Any, weights: Any) -> Tensor:
    r"""The pair penalty :math:`\Omega = \frac{1}{n(n-1)}\sum_{i\ne j} M_{ij}(T_{ij} - A_{ij})^2`,
    :math:`A_{ij} = p_i^\top p_j`.

    Evaluated without the :math:`n \times n` agreement matrix, by expanding the square:

    .. math::

       n(n-1)\,\Omega = \sum_{ij} M_{ij}T_{ij}^2
       - 2\operatorname{tr}\bigl(P^\top (M \odot T) P\bigr)
       + \operatorname{tr}\bigl(V^\top M V\bigr), \qquad V_i = \operatorname{vec}(p_i p_i^\top),

    since :math:`(p_i^\top p_j)^2 = \operatorname{vec}(p_ip_i^\top)^\top
    \operatorname{vec}(p_jp_j^\top)`.
    Differentiable in ``probs`` by autograd.

    Args:
        probs: shape ``(..., n, K)``, rows on the simplex.
        targets: :math:`T`, symmetric, shape ``(..., n, n)`` (broadcast against ``probs``).
        weights: :math:`M`, symmetric, non-negative, zero diagonal, shape ``(..., n, n)``.

    Returns:
        Shape ``(...)``, the broadcast batch shape.

    Raises:
        ValueError: for probabilities off the simplex, asymmetric or mis-shaped ``targets`` or
            ``weights``, negative weights or a non-zero diagonal, or fewer than two texts.

    Used in: :doc:`/book/classification/lld-label-denoising`, eq. :eq:`lld-penalty`.
    """
    p = _check_probs(probs)
    n = p.shape[-2]
    if n < 2:
        raise ValueError(f"probs must hold at least two texts, got n = {n}")
    t, w = _check_pairs(targets, weights, n)
    return _penalty(p, t, w)


def lld_penalty_grad(logits: Any, targets: Any, weights: Any) -> Tensor:
    r"""Closed-form gradient of :math:`\Omega(\operatorname{softmax}(z))` in the logits.

    With :math:`R_{ij} = M_{ij}(T_{ij} - p_i^\top p_j)` and :math:`g_i = -\frac{2}{n(n-1)}
    \sum_j (R_{ij} + R_{ji})\,p_j` (the gradient in :math:`p_i`), the chain rule through the softmax
    Jacobian :math:`\partial p_i/\partial z_i = \operatorname{diag}(p_i) - p_ip_i^\top` gives

    .. math::

       \frac{\partial \Omega}{\partial z_i}
       = \bigl(\operatorname{diag}(p_i) - p_ip_i^\top\bigr)\,g_i .

    Args:
        logits: shape ``(..., n, K)``.
        targets: symmetric, shape ``(..., n, n)``.
        weights: symmetric, non-negative, zero diagonal, shape ``(..., n, n)``.

    Returns:
        Shape ``(..., n, K)``; each row sums to zero.

    Raises:
        ValueError: as :func:`lld_penalty`, or if ``logits`` is not finite.

    Used in: :doc:`/book/classification/lld-label-denoising`, eq. :eq:`lld-grad`.
    """
    z = as_tensor(logits, "logits").to(F64)
    if z.ndim < 2 or z.shape[-2] < 2:
        raise ValueError(f"logits must have shape (..., n, K) with n >= 2, got {tuple(z.shape)}")
    n = z.shape[-2]
    t, w = _check_pairs(targets, weights, n)
    p = z.softmax(-1)
    r = w * (t - p @ p.transpose(-1, -2))
    g = -2.0 / (n * (n - 1)) * ((r + r.transpose(-1, -2)) @ p)
    return p * g - p * (p * g).sum(-1, keepdim=True)


# --- training -------------------------------------------------------------------------------------

def train_linear_heads(features: Any, labels: Any, targets: Any, weights: Any, lam: Any, l2: Any, *,
                       sample_weight: Any = None, steps: int = 300,
                       lr: float = 0.05) -> tuple[Tensor, Tensor]:
    r"""Train :math:`S \times R` binary linear heads :math:`z = x^\top w + b` on frozen features.

    The head gives :math:`\Pr(\text{class } 1) = \sigma(z)`, i.e. :math:`p = (1 - \sigma(z),
    \sigma(z))`. Head :math:`(s, r)` minimises, full batch, by ``torch.optim.Adam`` from zero
    weights,

    .. math::

       \frac{\sum_i v_{sri}\,\mathrm{CE}(z_{sri}, \tilde y_{sri})}{\sum_i v_{sri}}
       + \lambda_r\,\Omega\bigl(p_{sr}; T_s, M_s\bigr) + \ell_{2,r}\,\lVert w_{sr}\rVert^2 ,

    with the cross-entropy of ``torch.nn.functional.binary_cross_entropy_with_logits`` and
    :math:`\Omega` of :func:`lld_penalty`, computed through :math:`p_i^\top p_j = (1 + u_iu_j)/2`,
    :math:`u = 1 - 2\sigma(z)`. The heads are trained together (the objective is their sum, and Adam
    updates each coordinate on its own), so each follows the trajectory it would follow alone.
    Deterministic: no randomness is used.

    Args:
        features: shape ``(S, n, d)``: :math:`S` training sets of :math:`n` texts.
        labels: shape ``(S, R, n)``, labels in :math:`\{0, 1\}`, one set per head.
        targets: shape ``(S, n, n)``, :math:`T` of :func:`similarity_targets`.
        weights: shape ``(S, n, n)``, :math:`M` of :func:`similarity_targets`.
        lam: shape ``(R,)``, :math:`\lambda_r \ge 0`.
        l2: shape ``(R,)``, :math:`\ell_{2,r} \ge 0`.
        sample_weight: ``None`` (all ones) or :math:`v`, shape ``(S, R, n)``, non-negative, with a
            positive sum for every head.
        steps: number of full-batch Adam steps.
        lr: Adam's learning rate.

    Returns:
        ``(w, b)`` of shapes ``(S, R, d)`` and ``(S, R)``, float64, detached; the logit of a text
        with features ``x`` under head ``(s, r)`` is ``x @ w[s, r] + b[s, r]``.

    Raises:
        ValueError: for mis-shaped or out-of-range arguments.
        TypeError: if ``labels`` is not integer.

    Used in: :doc:`/book/classification/lld-label-denoising`, eq. :eq:`lld-loss`.
    """
    x = as_tensor(features, "features", ndim=3).to(F64)
    n_sets, n, d = x.shape
    if n < 2:
        raise ValueError(f"features must hold at least two texts per set, got n = {n}")
    steps = check_count(steps, "steps")
    lr = check_positive(lr, "lr")
    y = torch.as_tensor(np.asarray(labels))
    if y.is_floating_point() or y.dtype == torch.bool:
        raise TypeError(f"labels must be integers, got dtype {y.dtype}")
    if y.ndim != 3 or y.shape[0] != n_sets or y.shape[2] != n:
        raise ValueError(f"labels must have shape ({n_sets}, R, {n}), got {tuple(y.shape)}")
    if bool((y < 0).any()) or bool((y > 1).any()):
        raise ValueError("labels must lie in {0, 1}")
    n_runs = y.shape[1]
    lam_t = as_tensor(lam, "lam", shape=(n_runs,)).to(F64)
    l2_t = as_tensor(l2, "l2", shape=(n_runs,)).to(F64)
    for name, v in (("lam", lam_t), ("l2", l2_t)):
        if bool((v < 0).any()):
            raise ValueError(f"{name} must be >= 0")
    t, w = _check_pairs(as_tensor(targets, "targets", shape=(n_sets, n, n)),
                        as_tensor(weights, "weights", shape=(n_sets, n, n)), n)
    if sample_weight is None:
        sw = torch.ones(n_sets, n_runs, n, dtype=F64)
    else:
        sw = as_tensor(sample_weight, "sample_weight", shape=(n_sets, n_runs, n)).to(F64)
        if bool((sw < 0).any()) or bool((sw.sum(-1) == 0).any()):
            raise ValueError("sample_weight must be non-negative with a positive sum for each head")
    sw = (sw / sw.sum(-1, keepdim=True)).permute(0, 2, 1)                 # (S, n, R)

    # layout (S, n, R): the R heads of a training set sit side by side in the columns, so the
    # features and each pair matrix enter one matrix product per training set
    weight = torch.zeros(n_sets, d, n_runs, dtype=F64, requires_grad=True)
    bias = torch.zeros(n_sets, 1, n_runs, dtype=F64, requires_grad=True)
    opt = torch.optim.Adam([weight, bias], lr=lr)
    target = y.permute(0, 2, 1).to(F64)
    b_mat = w * (t - 0.5)
    c0 = (w * (t - 0.5) ** 2).sum((-2, -1)).unsqueeze(-1)
    use_pen = bool((lam_t > 0).any())
    for _ in range(steps):
        opt.zero_grad()
        z = x @ weight + bias                                                # (S, n, R)
        ce = torch.nn.functional.binary_cross_entropy_with_logits(z, target, reduction="none")
        loss = (sw * ce).sum(1) + l2_t * (weight**2).sum(1)
        if use_pen:
            loss = loss + lam_t * _binary_penalty(-torch.tanh(z / 2), b_mat, w, c0)
        loss.sum().backward()
        opt.step()
    return weight.detach().permute(0, 2, 1).contiguous(), bias.detach().squeeze(1).contiguous()


# --- the two-point toy ----------------------------------------------------------------------------

def _check_toy(c: float, s: float) -> tuple[float, float]:
    c = check_fraction(c, "c")
    s = check_fraction(s, "s")
    if c <= 0.5:
        raise ValueError(f"c must exceed 1/2 (the neighbour must favour the other class), got {c}")
    return c, s


def toy_overrule_lambda(c: float, s: float) -> float:
    r"""The weight :math:`\lambda^\ast` above which the toy's noisy label is overruled.

    Toy: a point labelled 0 with free prediction :math:`q = \Pr(\text{class } 1)`, next to a
    neighbour of similarity :math:`s` whose prediction is held at :math:`c > 1/2`, so that the
    agreement is :math:`(1-q)(1-c) + qc`. Its loss :math:`-\log(1-q) + \lambda(s - (1-q)(1-c) -
    qc)^2` is convex in :math:`q`, and its minimiser exceeds :math:`1/2` exactly when

    .. math::

       \lambda > \lambda^\ast = \frac{2}{(2c-1)(2s-1)} \qquad (s > 1/2);

    for :math:`s \le 1/2` no weight overrules the label (returns ``inf``).

    Args:
        c: the neighbour's probability of class 1, in :math:`(1/2, 1]`.
        s: the similarity target, in :math:`[0, 1]`.

    Returns:
        :math:`\lambda^\ast` (``math.inf`` when :math:`s \le 1/2`).

    Raises:
        ValueError: if ``c`` is not in :math:`(1/2, 1]` or ``s`` not in :math:`[0, 1]`.

    Used in: :doc:`/book/classification/lld-label-denoising`, eq. :eq:`lld-toy-threshold`.
    """
    c, s = _check_toy(c, s)
    if s <= 0.5:
        return math.inf
    return 2.0 / ((2 * c - 1) * (2 * s - 1))


def toy_memorize_lambda(c: float, s: float) -> float:
    r"""The weight :math:`\lambda_0` below which the toy's noisy point memorises its label.

    For :math:`\lambda \le \lambda_0 = 1/\bigl(2(2c-1)(s+c-1)\bigr)` the loss of
    :func:`toy_overrule_lambda` decreases all the way to :math:`q \to 0` (the logit of the noisy
    point runs to :math:`-\infty`, no minimiser); above it the minimiser is interior. For
    :math:`s + c \le 1` the label is memorised at every weight (returns ``inf``).

    Args:
        c: the neighbour's probability of class 1, in :math:`(1/2, 1]`.
        s: the similarity target, in :math:`[0, 1]`.

    Returns:
        :math:`\lambda_0` (``math.inf`` when :math:`s + c \le 1`).

    Raises:
        ValueError: if ``c`` is not in :math:`(1/2, 1]` or ``s`` not in :math:`[0, 1]`.

    Used in: :doc:`/book/classification/lld-label-denoising`, eq. :eq:`lld-toy-threshold`.
    """
    c, s = _check_toy(c, s)
    if s + c <= 1:
        return math.inf
    return 1.0 / (2 * (2 * c - 1) * (s + c - 1))


def toy_noisy_probability(c: float, s: float, lam: float) -> float:
    r"""The minimiser :math:`q^\ast` of the two-point toy loss of :func:`toy_overrule_lambda`.

    With :math:`a = 2c - 1` and :math:`b = s + c - 1`, the stationarity condition is the quadratic
    :math:`2\lambda a^2 q^2 - 2\lambda a(a+b)\,q + 2\lambda ab - 1 = 0`, whose smaller root is

    .. math::

       q^\ast = \frac{a + b - \sqrt{(b - a)^2 + 2/\lambda}}{2a}
       \quad\text{for } \lambda > \lambda_0, \qquad q^\ast = 0 \text{ otherwise}

    (``0`` stands for the infimum at :math:`q \to 0`, which is not attained).

    Args:
        c: the neighbour's probability of class 1, in :math:`(1/2, 1]`.
        s: the similarity target, in :math:`[0, 1]`.
        lam: the weight :math:`\lambda \ge 0`.

    Returns:
        :math:`q^\ast \in [0, 1)`.

    Raises:
        ValueError: if ``c``, ``s`` or ``lam`` is out of range.

    Used in: :doc:`/book/classification/lld-label-denoising`, eq. :eq:`lld-toy-minimiser`.
    """
    c, s = _check_toy(c, s)
    lam = check_positive(lam, "lam", allow_zero=True)
    if lam <= toy_memorize_lambda(c, s):
        return 0.0
    a, b = 2 * c - 1, s + c - 1
    return (a + b - math.sqrt((b - a) ** 2 + 2 / lam)) / (2 * a)
