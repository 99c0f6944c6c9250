r"""Devil's Advocate ensembles: a model trained on random wrong labels, and its effect on the rest.

A Devil's Advocate (DA) model is trained with cross-entropy on labels drawn uniformly from the
:math:`C-1` wrong classes (:func:`random_wrong_labels`, :func:`random_wrong_label_loss`). Averaged
over the draws its loss is :math:`-\sum_{c\ne y}\log p_c` (:func:`expected_wrong_label_loss`), whose
infimum on the probability simplex is the *ideal DA output*
:math:`s = (\mathbf 1 - e_y)/(C-1)` (:func:`ideal_da_output`). The other members ("Norm" models) are
then fine-tuned with :math:`\mathrm{CE}(z + q, y)`, :math:`q` the DA's softmax
(:func:`da_boosted_cross_entropy`); with the ideal :math:`q = s` that loss is the additive-margin
softmax with margin :math:`m = 1/(C-1)` (:func:`am_softmax_cross_entropy`). :func:`soft_vote`
and :func:`da_ensemble_scores` combine the members. :func:`init_mlps`, :func:`mlp_logits` and
:func:`run_devils_advocate` train many small MLPs at once, through the two phases of the authors'
notebook and three control variants.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 -- torch's own idiom
from torch import Tensor

from kexue_notes._validate import as_tensor, check_count, check_positive, check_real

__all__ = [  # noqa: RUF022 -- in the order the module reads
    "random_wrong_labels",
    "random_wrong_label_loss",
    "expected_wrong_label_loss",
    "ideal_da_output",
    "da_boosted_cross_entropy",
    "am_softmax_cross_entropy",
    "soft_vote",
    "da_ensemble_scores",
    "init_mlps",
    "mlp_logits",
    "run_devils_advocate",
]

F64 = torch.float64
PHASE2_VARIANTS = ("da", "ideal", "mse", "ce")
"""The phase-2 variants of :func:`run_devils_advocate`, in the order of its output."""

PAGE = ":doc:`/book/classification/devils-advocate-ensemble`"


def _labels(y: Any, name: str = "y", n_classes: int | None = None) -> Tensor:
    if not isinstance(y, Tensor):
        try:
            y = torch.as_tensor(y)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"{name} must be an array of class indices") from err
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer class indices, got dtype {y.dtype}")
    y = y.long()
    if n_classes is not None and y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(f"{name} must lie in [0, {n_classes}), "
                         f"got [{int(y.min())}, {int(y.max())}]")
    return y


def _logits_and_labels(logits: Any, y: Any) -> tuple[Tensor, Tensor]:
    z = as_tensor(logits, "logits")
    if z.ndim < 2:
        raise ValueError(f"logits must have shape (..., n, C), got {tuple(z.shape)}")
    if z.shape[-1] < 2:
        raise ValueError(f"logits must have at least two classes, got {z.shape[-1]}")
    yy = _labels(y, "y", z.shape[-1])
    if tuple(yy.shape) != tuple(z.shape[:-1]):
        raise ValueError(f"y must have shape {tuple(z.shape[:-1])}, got {tuple(yy.shape)}")
    return z, yy


def _ce(z: Tensor, y: Tensor) -> Tensor:
    """Mean cross-entropy over the last-but-one axis; shape ``z.shape[:-2]``."""
    per = F.cross_entropy(z.reshape(-1, z.shape[-1]), y.reshape(-1), reduction="none")
    return per.reshape(y.shape).mean(-1)


def _ce_summed_over_draws(z: Tensor, labels: Tensor) -> Tensor:
    r"""``_ce`` of the logits ``z`` (shape ``(..., n, C)``) against each of the ``K`` label sets
    ``labels`` (shape ``(K, ..., n)``), summed over the sets; shape ``z.shape[:-2]``.

    One ``F.cross_entropy`` call with the draws' class frequencies as soft targets: for each
    example, :math:`\sum_k -\log p_{y_k} = K \sum_c (n_c / K)(-\log p_c)`, with :math:`n_c` the
    number of draws equal to :math:`c`, so the logits are not copied :math:`K` times.
    """
    K = labels.shape[0]
    idx = labels.movedim(0, -1)                                          # (..., n, K)
    counts = torch.zeros(z.shape, dtype=z.dtype).scatter_add_(
        -1, idx, torch.ones(idx.shape, dtype=z.dtype))
    C = z.shape[-1]
    per = F.cross_entropy(z.reshape(-1, C), (counts / K).reshape(-1, C), reduction="none")
    return K * per.reshape(z.shape[:-1]).mean(-1)


# --- the Devil's Advocate loss --------------------------------------------------------------------

def random_wrong_labels(y: Any, n_classes: int, n_draws: int, *,
                        generator: torch.Generator | None = None) -> Tensor:
    r"""Draw ``n_draws`` labels per example, each uniform on the :math:`C-1` classes not its own.

    .. math::

       \tilde y^{(k)}_i = \bigl(y_i + u^{(k)}_i\bigr) \bmod C, \qquad
       u^{(k)}_i \sim \mathrm U\{1, \dots, C-1\}\ \text{i.i.d.},

    so :math:`\Pr(\tilde y = c) = 1/(C-1)` for every :math:`c \ne y_i` (the authors redraw until the
    label differs, which gives the same law). Draws may repeat a class.

    Args:
        y: integer labels in :math:`[0, C)`, any shape ``S``.
        n_classes: :math:`C \ge 2`.
        n_draws: :math:`K \ge 1`; the authors use :math:`K = C - 1`.
        generator: the ``torch.Generator`` to draw from.

    Returns:
        integer tensor of shape ``(K, *S)``.

    Raises:
        ValueError, TypeError: for labels out of range or of a float dtype, :math:`C < 2`,
            :math:`K < 1`.

    Used in: :doc:`/book/classification/devils-advocate-ensemble`, eq. :eq:`da-expected`.
    """
    C = check_count(n_classes, "n_classes", 2)
    K = check_count(n_draws, "n_draws", 1)
    yy = _labels(y, "y", C)
    u = torch.randint(1, C, (K, *yy.shape), generator=generator)
    return (yy.unsqueeze(0) + u) % C


def random_wrong_label_loss(logits: Any, y: Any, *, n_draws: int | None = None,
                            generator: torch.Generator | None = None) -> Tensor:
    r"""The DA model's training loss: cross-entropy summed over :math:`K` random wrong labels.

    .. math::

       \ell_{\mathrm{DA}} = \sum_{k=1}^{K} \frac1n\sum_{i=1}^n
       -\log \operatorname{softmax}(z_i)_{\tilde y^{(k)}_i},

    with :math:`\tilde y` from :func:`random_wrong_labels` and the cross-entropy of
    ``torch.nn.functional.cross_entropy`` (the authors' notebook, with :math:`K = C-1`). The
    :math:`K` terms are taken in one call, with each example's draw frequencies
    :math:`n_c/K` as soft targets: :math:`\sum_k -\log p_{\tilde y^{(k)}} = K\sum_c
    (n_c/K)(-\log p_c)`.

    Args:
        logits: shape ``(..., n, C)``.
        y: true labels, shape ``(..., n)``.
        n_draws: :math:`K`; ``None`` means :math:`C - 1`.
        generator: the ``torch.Generator`` for the draws.

    Returns:
        tensor of shape ``logits.shape[:-2]`` (a 0-d tensor for one model).

    Raises:
        ValueError, TypeError: for mismatched shapes, labels out of range, NaN logits,
            :math:`K < 1`.

    Used in: :doc:`/book/classification/devils-advocate-ensemble`, eq. :eq:`da-expected`.
    """
    z, yy = _logits_and_labels(logits, y)
    C = z.shape[-1]
    K = C - 1 if n_draws is None else check_count(n_draws, "n_draws", 1)
    wrong = random_wrong_labels(yy, C, K, generator=generator)
    return _ce_summed_over_draws(z, wrong)


def expected_wrong_label_loss(logits: Any, y: Any) -> Tensor:
    r"""The mean over the draws of :func:`random_wrong_label_loss` (:math:`K = C-1`), exactly.

    .. math::

       \mathbb E\,\ell_{\mathrm{DA}} = \frac1n\sum_{i=1}^n \sum_{c \ne y_i} -\log p_{ic},
       \qquad p_i = \operatorname{softmax}(z_i).

    Args:
        logits: shape ``(..., n, C)``.
        y: true labels, shape ``(..., n)``.

    Returns:
        tensor of shape ``logits.shape[:-2]``.

    Raises:
        ValueError, TypeError: for mismatched shapes, labels out of range, NaN logits.

    Used in: :doc:`/book/classification/devils-advocate-ensemble`, eq. :eq:`da-expected`.
    """
    z, yy = _logits_and_labels(logits, y)
    logp = torch.log_softmax(z, dim=-1)
    own = logp.gather(-1, yy.unsqueeze(-1)).squeeze(-1)
    return -(logp.sum(-1) - own).mean(-1)


def ideal_da_output(y: Any, n_classes: int, *, dtype: torch.dtype = F64) -> Tensor:
    r"""The minimiser of :func:`expected_wrong_label_loss` on the simplex: zero on the true class,
    :math:`1/(C-1)` elsewhere.

    .. math::

       s_i = \frac{\mathbf 1 - e_{y_i}}{C - 1} .

    Args:
        y: integer labels in :math:`[0, C)`, any shape ``S``.
        n_classes: :math:`C \ge 2`.
        dtype: floating dtype of the result.

    Returns:
        tensor of shape ``(*S, C)``; each row sums to one.

    Raises:
        ValueError, TypeError: for labels out of range or of a float dtype, :math:`C < 2`.

    Used in: :doc:`/book/classification/devils-advocate-ensemble`, eq. :eq:`da-optimum`.
    """
    C = check_count(n_classes, "n_classes", 2)
    yy = _labels(y, "y", C)
    return (1.0 - F.one_hot(yy, C).to(dtype)) / (C - 1)


def da_boosted_cross_entropy(logits: Any, da_probs: Any, y: Any) -> Tensor:
    r"""The Norm models' phase-2 loss term: cross-entropy of the logits plus the DA's probabilities.

    .. math::

       \ell = \frac1n\sum_i \mathrm{CE}\bigl(z_i + q_i,\ y_i\bigr)
       = \frac1n\sum_i \log\sum_c e^{z_{ic} - z_{iy_i} + q_{ic} - q_{iy_i}},

    with :math:`q_i` the DA model's softmax, treated as a constant (detached), and the cross-entropy
    of ``torch.nn.functional.cross_entropy``. Its gradient in :math:`z_i` is
    :math:`(\operatorname{softmax}(z_i + q_i) - e_{y_i})/n`.

    Args:
        logits: the Norm model's logits :math:`z`, shape ``(..., n, C)``.
        da_probs: :math:`q`, same shape, non-negative rows that sum to one.
        y: true labels, shape ``(..., n)``.

    Returns:
        tensor of shape ``logits.shape[:-2]``.

    Raises:
        ValueError, TypeError: for mismatched shapes, labels out of range, NaN input, ``da_probs``
            that are not distributions.

    Used in: :doc:`/book/classification/devils-advocate-ensemble`, eq. :eq:`da-boosted`.
    """
    z, yy = _logits_and_labels(logits, y)
    q = as_tensor(da_probs, "da_probs", dtype=z.dtype).detach().to(z.dtype)
    if tuple(q.shape) != tuple(z.shape):
        raise ValueError(f"da_probs must have shape {tuple(z.shape)}, got {tuple(q.shape)}")
    if bool((q < 0).any()) or not torch.allclose(q.sum(-1), torch.ones((), dtype=q.dtype),
                                                  rtol=0, atol=1e-6):
        raise ValueError("da_probs must hold probability vectors (non-negative, summing to one)")
    return _ce(z + q, yy)


def am_softmax_cross_entropy(logits: Any, y: Any, margin: float) -> Tensor:
    r"""Additive-margin softmax cross-entropy: the true class must win by :math:`m` before the loss
    treats it as a win.

    .. math::

       \ell = \frac1n\sum_i \log\Bigl(1 + e^{m}\sum_{c \ne y_i} e^{z_{ic} - z_{iy_i}}\Bigr)
       = \frac1n\sum_i \mathrm{CE}\bigl(z_i - m\,e_{y_i},\ y_i\bigr),

    computed from the first form with ``torch.logsumexp`` (no cross-entropy routine).

    Args:
        logits: shape ``(..., n, C)``.
        y: true labels, shape ``(..., n)``.
        margin: :math:`m`, any finite real (:math:`m = 0` is plain cross-entropy).

    Returns:
        tensor of shape ``logits.shape[:-2]``.

    Raises:
        ValueError, TypeError: for mismatched shapes, labels out of range, NaN logits, a margin
            that is not a finite number.

    Used in: :doc:`/book/classification/devils-advocate-ensemble`, eq. :eq:`da-margin`.
    """
    z, yy = _logits_and_labels(logits, y)
    m = check_real(margin, "margin")
    own = z.gather(-1, yy.unsqueeze(-1))
    rest = (z - own).masked_fill(F.one_hot(yy, z.shape[-1]).bool(), float("-inf"))
    lse = torch.logsumexp(rest, dim=-1)
    return torch.logaddexp(torch.zeros((), dtype=z.dtype), m + lse).mean(-1)   # log(1 + e^x)


# --- combining the members ------------------------------------------------------------------------

def soft_vote(probs: Any, weights: Any = None) -> Tensor:
    r"""Soft voting: the (weighted) mean of the members' predicted distributions.

    .. math::

       \bar p_i = \frac{\sum_j w_j\,p^{(j)}_i}{\sum_j w_j} .

    Args:
        probs: shape ``(M, ..., C)``: :math:`M` members, rows that sum to one.
        weights: ``None`` (equal) or shape ``(M,)``, non-negative with a positive sum.

    Returns:
        tensor of shape ``probs.shape[1:]``.

    Raises:
        ValueError, TypeError: for rows that are not distributions, NaN, weights of the wrong shape,
            negative or all zero.

    Used in: :doc:`/book/classification/devils-advocate-ensemble`, eq. :eq:`da-ensembles`.
    """
    p = as_tensor(probs, "probs")
    if p.ndim < 2:
        raise ValueError(f"probs must have shape (M, ..., C), got {tuple(p.shape)}")
    if bool((p < 0).any()) or not torch.allclose(p.sum(-1), torch.ones((), dtype=p.dtype),
                                                  rtol=0, atol=1e-6):
        raise ValueError("probs must hold probability vectors (non-negative, summing to one)")
    if weights is None:
        return p.mean(0)
    w = as_tensor(weights, "weights", shape=(p.shape[0],), dtype=p.dtype).to(p.dtype)
    if bool((w < 0).any()) or float(w.sum()) <= 0:
        raise ValueError("weights must be non-negative with a positive sum")
    return torch.tensordot(w / w.sum(), p, dims=1)


def da_ensemble_scores(norm_logits: Any, da_logits: Any = None, *, da_weight: float = 1.0
                       ) -> Tensor:
    r"""The paper's decision scores: the sum of the Norm models' logits minus the DA model's.

    .. math::

       g_i = \sum_{j=1}^{M} z^{(j)}_i - \lambda\, z^{\mathrm{DA}}_i ,

    and the ensemble predicts :math:`\arg\max_c g_{ic}`. Without ``da_logits`` (or with
    :math:`\lambda = 0`) it is the logit sum of the authors' notebook's first test.

    Args:
        norm_logits: shape ``(M, ..., C)``.
        da_logits: ``None`` or shape ``norm_logits.shape[1:]``.
        da_weight: :math:`\lambda \ge 0`.

    Returns:
        tensor of shape ``norm_logits.shape[1:]``.

    Raises:
        ValueError, TypeError: for NaN, mismatched shapes, a negative weight.

    Used in: :doc:`/book/classification/devils-advocate-ensemble`, eq. :eq:`da-ensembles`.
    """
    z = as_tensor(norm_logits, "norm_logits")
    if z.ndim < 2:
        raise ValueError(f"norm_logits must have shape (M, ..., C), got {tuple(z.shape)}")
    lam = check_positive(da_weight, "da_weight", allow_zero=True)
    g = z.sum(0)
    if da_logits is None:
        return g
    d = as_tensor(da_logits, "da_logits", shape=tuple(z.shape[1:]), dtype=z.dtype).to(z.dtype)
    return g - lam * d


# --- many small MLPs at once ----------------------------------------------------------------------

def init_mlps(n_models: int, d_in: int, hidden: int, n_classes: int, *,
              generator: torch.Generator, dtype: torch.dtype = F64) -> list[Tensor]:
    r"""Parameters of :math:`B` one-hidden-layer ReLU networks, initialised as ``nn.Linear`` is.

    Each weight and bias is uniform on :math:`[-1/\sqrt{\text{fan-in}}, 1/\sqrt{\text{fan-in}}]`
    (PyTorch's default for ``nn.Linear``), drawn from ``generator``.

    Args:
        n_models: :math:`B \ge 1`.
        d_in, hidden, n_classes: the layer widths :math:`d`, :math:`h`, :math:`C`.
        generator: the ``torch.Generator`` to draw from.
        dtype: floating dtype.

    Returns:
        ``[W1, b1, W2, b2]`` of shapes ``(B, d, h)``, ``(B, 1, h)``, ``(B, h, C)``, ``(B, 1, C)``,
        each a leaf with ``requires_grad``.

    Raises:
        ValueError, TypeError: for a width below one (below two for the classes).

    Used in: :doc:`/book/classification/devils-advocate-ensemble`, section "The experiment".
    """
    B = check_count(n_models, "n_models", 1)
    d = check_count(d_in, "d_in", 1)
    h = check_count(hidden, "hidden", 1)
    C = check_count(n_classes, "n_classes", 2)

    def unif(shape: tuple[int, ...], fan_in: int) -> Tensor:
        r = 1.0 / fan_in**0.5
        t = (torch.rand(shape, generator=generator, dtype=dtype) * 2 - 1) * r
        return t.requires_grad_(True)

    return [unif((B, d, h), d), unif((B, 1, h), d), unif((B, h, C), h), unif((B, 1, C), h)]


def mlp_logits(params: list[Tensor], x: Any) -> Tensor:
    r"""Logits of the :math:`B` networks of :func:`init_mlps`.

    .. math::

       z = \max(0,\ x W_1 + b_1)\, W_2 + b_2 .

    Args:
        params: ``[W1, b1, W2, b2]`` as returned by :func:`init_mlps`.
        x: inputs of shape ``(B, n, d)`` (one set per network), or ``(n, d)`` (shared).

    Returns:
        tensor of shape ``(B, n, C)``.

    Raises:
        ValueError, TypeError: for NaN input, or shapes that do not fit the parameters.

    Used in: :doc:`/book/classification/devils-advocate-ensemble`, section "The experiment".
    """
    if len(params) != 4:
        raise ValueError(f"params must be [W1, b1, W2, b2], got {len(params)} tensors")
    W1 = params[0]
    xx = as_tensor(x, "x", dtype=W1.dtype).to(W1.dtype)
    if xx.ndim == 2:
        xx = xx.unsqueeze(0).expand(W1.shape[0], *xx.shape)
    if xx.ndim != 3 or xx.shape[0] != W1.shape[0] or xx.shape[-1] != W1.shape[1]:
        raise ValueError(f"x must have shape ({W1.shape[0]}, n, {W1.shape[1]}) or "
                         f"(n, {W1.shape[1]}), got {tuple(xx.shape)}")
    return _mlp(params, xx)


def _mlp(params: list[Tensor], x: Tensor) -> Tensor:
    W1, b1, W2, b2 = params
    return torch.relu(x @ W1 + b1) @ W2 + b2


def _adam(params: list[Tensor], loss_fn: Any, steps: int, lr: float) -> None:
    """``steps`` full-batch steps of ``torch.optim.Adam`` (its defaults, learning rate ``lr``)."""
    opt = torch.optim.Adam(params, lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()


def run_devils_advocate(x_train: Any, y_train: Any, x_test: Any, n_classes: int, *,
                        n_norm: int = 3, hidden: int = 32, steps1: int = 200, steps2: int = 100,
                        lr: float = 0.01, generator: torch.Generator) -> dict[str, Tensor]:
    r"""The two phases of the authors' notebook on :math:`S` training sets at once, with controls.

    **Phase 1.** Per training set: one DA network trained with :func:`random_wrong_label_loss`
    (:math:`K = C-1` fresh draws per step) and ``n_norm`` Norm networks trained with cross-entropy,
    ``steps1`` full-batch steps of ``torch.optim.Adam`` (its defaults), all from independent
    ``nn.Linear``-style initialisations
    (:func:`init_mlps`).

    **Phase 2.** Norm networks 1 and 2 (the authors' ensemble of two) are fine-tuned from their
    phase-1 weights for ``steps2`` steps with a fresh Adam, the DA frozen, in four variants
    (``PHASE2_VARIANTS``: ``da``, ``ideal``, ``mse``, ``ce``), each member :math:`j` with partner
    :math:`j'` (the other one):

    .. math::

       \texttt{da}:\ \mathrm{CE}(z_j + \operatorname{sg}q, y)
       + \mathrm{MSE}(z_j, \operatorname{sg}z_{j'}),
       \quad \texttt{ideal}:\ q \to s = \tfrac{\mathbf 1 - e_y}{C-1},
       \quad \texttt{mse}:\ q \to 0,
       \quad \texttt{ce}:\ \mathrm{CE}(z_j, y)\ \text{only},

    with :math:`q` the frozen DA's softmax on the training inputs. ``da`` is the notebook's loss,
    ``ideal`` replaces the DA by its optimum (:func:`ideal_da_output`), ``mse`` drops the DA and
    keeps the mutual MSE, ``ce`` just trains longer. MSE is ``torch.nn.functional.mse_loss``
    (mean over examples and classes), cross-entropy ``torch.nn.functional.cross_entropy``. The
    networks are trained together (the objective is a sum of independent terms and Adam is
    coordinate-wise, so each follows the trajectory it would follow alone).

    Args:
        x_train: shape ``(S, n, d)``.
        y_train: shape ``(S, n)``, labels in :math:`[0, C)`.
        x_test: shape ``(S, n_t, d)``.
        n_classes: :math:`C \ge 2`.
        n_norm: Norm networks in phase 1, at least 2.
        hidden: hidden width.
        steps1, steps2: Adam steps of the two phases (``steps2`` may be 0).
        lr: Adam's learning rate.
        generator: the ``torch.Generator`` for initialisation and the wrong labels.

    Returns:
        Detached float64 logits by name. The DA's on the test and training inputs
        (``"da_test"``, ``(S, n_t, C)``; ``"da_train"``, ``(S, n, C)``), the phase-1 Norm
        networks' on the test and training inputs (``"norm_test"``, ``(S, n_norm, n_t, C)``;
        ``"norm_train"``, ``(S, n_norm, n, C)``), and the fine-tuned pair's on the test inputs
        (``"phase2_test"``, ``(S, 4, 2, n_t, C)``, variants in the order of ``PHASE2_VARIANTS``).

    Raises:
        ValueError, TypeError: for mismatched shapes, labels out of range, NaN, counts below their
            minimum, a non-positive learning rate.

    Used in: :doc:`/book/classification/devils-advocate-ensemble`, section "The experiment".
    """
    C = check_count(n_classes, "n_classes", 2)
    R = check_count(n_norm, "n_norm", 2)
    h = check_count(hidden, "hidden", 1)
    T1 = check_count(steps1, "steps1", 1)
    T2 = check_count(steps2, "steps2", 0)
    rate = check_positive(lr, "lr")
    xtr = as_tensor(x_train, "x_train", ndim=3).to(F64)
    S, n, d = xtr.shape
    ytr = _labels(y_train, "y_train", C)
    if tuple(ytr.shape) != (S, n):
        raise ValueError(f"y_train must have shape {(S, n)}, got {tuple(ytr.shape)}")
    xte = as_tensor(x_test, "x_test", ndim=3).to(F64)
    if xte.shape[0] != S or xte.shape[2] != d:
        raise ValueError(f"x_test must have shape ({S}, n_t, {d}), got {tuple(xte.shape)}")

    # phase 1: network 0 of each set is the DA, 1..R the Norm networks
    P1 = init_mlps(S * (R + 1), d, h, C, generator=generator)
    x1 = xtr.repeat_interleave(R + 1, 0)
    y1 = ytr.repeat_interleave(R + 1, 0).reshape(S, R + 1, n)

    def loss1() -> Tensor:
        z = _mlp(P1, x1).reshape(S, R + 1, n, C)
        wrong = random_wrong_labels(y1[:, 0], C, C - 1, generator=generator)
        da = _ce_summed_over_draws(z[:, 0], wrong)
        return da.sum() + _ce(z[:, 1:], y1[:, 1:]).sum()

    _adam(P1, loss1, T1, rate)
    with torch.no_grad():
        z_tr = mlp_logits(P1, x1).reshape(S, R + 1, n, C)
        z_te = mlp_logits(P1, xte.repeat_interleave(R + 1, 0)).reshape(S, R + 1, -1, C)
    q = torch.softmax(z_tr[:, 0], -1)                                  # (S, n, C), frozen DA

    # phase 2: four variants x the pair (Norm 1, Norm 2), initialised from phase 1
    V = len(PHASE2_VARIANTS)
    pair = [p.detach().reshape(S, R + 1, *p.shape[1:])[:, 1:3] for p in P1]   # (S, 2, ...)
    P2 = [p.unsqueeze(1).expand(S, V, *p.shape[1:]).reshape(S * V * 2, *p.shape[2:])
          .clone().requires_grad_(True) for p in pair]
    x2 = xtr.repeat_interleave(V * 2, 0)
    y2 = ytr[:, None, None, :].expand(S, V, 2, n)
    zero = torch.zeros_like(q)
    shift = torch.stack([q, ideal_da_output(ytr, C), zero, zero], 1)    # (S, V, n, C)
    shift = shift[:, :, None].expand(S, V, 2, n, C)
    mse_w = torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=F64)[None, :, None]

    def loss2() -> Tensor:
        z = _mlp(P2, x2).reshape(S, V, 2, n, C)
        ce = _ce(z + shift, y2)
        partner = z.detach().flip(2)
        mse = F.mse_loss(z, partner, reduction="none").mean((-1, -2))
        return (ce + mse_w * mse).sum()

    _adam(P2, loss2, T2, rate)
    with torch.no_grad():
        z2 = mlp_logits(P2, xte.repeat_interleave(V * 2, 0)).reshape(S, V, 2, -1, C)
    return {"da_test": z_te[:, 0].clone(), "da_train": z_tr[:, 0].clone(),
            "norm_test": z_te[:, 1:].clone(), "phase2_test": z2,
            "norm_train": z_tr[:, 1:].clone()}
