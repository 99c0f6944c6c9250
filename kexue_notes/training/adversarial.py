r"""Adversarial training: FGSM, FGM and PGD, the first-order gain, the gradient-penalty view,
and the embedding-matrix attack with back-up and restore.

Adversarial training (Madry et al.) minimises :math:`\mathbb E\,\max_{\lVert
r\rVert\le\varepsilon} L(x + r, y;\theta)` over the parameters :math:`\theta`. To first order in
:math:`\varepsilon` the inner maximum is a linear programme, :math:`\max_{\lVert
r\rVert\le\varepsilon} g^\top r` with :math:`g = \nabla_x L`, whose solutions are FGM
(:func:`fgm_perturbation`, the Euclidean ball, :math:`r = \varepsilon g/\lVert g\rVert_2`) and
FGSM (:func:`fgsm_perturbation`, the cube, :math:`r = \varepsilon\,\mathrm{sign}\,g`); its value
is :math:`\varepsilon` times the dual norm of :math:`g` (:func:`first_order_gain`). PGD
(:func:`pgd_l2`) iterates normalised ascent steps and the projection onto the ball
(:func:`project_l2`). Training on :math:`L(x + r)` with :math:`r` held fixed has, to first
order, the parameter gradient of an input-gradient penalty (:func:`input_gradient_penalty`).

:class:`EmbeddingFGM` and :class:`EmbeddingPGD` perturb an embedding *matrix* in place and
restore it from a back-up, in the form of the PyTorch FGM/PGD classes that circulate for NLP;
:class:`MeanEmbeddingClassifier` is a small model to try them on. :func:`train_heads` trains
small classifiers on fixed features, clean or with FGM or PGD, and :func:`accuracy` /
:func:`robust_accuracy` evaluate them.

Inputs ``x`` have shape ``(B, *F)`` (a batch of ``B`` samples); every norm is taken per sample,
over ``F``. A ``loss_fn`` maps such a batch to the ``(B,)`` per-sample losses.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from kexue_notes._validate import as_tensor, check_count, check_positive

__all__ = [  # noqa: RUF022 -- in the order the module reads
    "fgm_perturbation",
    "fgsm_perturbation",
    "first_order_gain",
    "project_l2",
    "loss_and_input_grad",
    "fgm",
    "fgsm",
    "pgd_l2",
    "input_gradient_penalty",
    "EmbeddingFGM",
    "EmbeddingPGD",
    "MeanEmbeddingClassifier",
    "encode_tokens",
    "make_head",
    "cross_entropy_loss_fn",
    "StackedHead",
    "train_heads",
    "accuracy",
    "robust_accuracy",
]

LossFn = Callable[[Tensor], Tensor]


def _per_sample_norm(v: Tensor, p: float = 2.0) -> Tensor:
    """The p-norm of each sample of ``v`` (B, *F), with shape (B, 1, ..., 1) for broadcasting."""
    flat = v.reshape(v.shape[0], -1)
    n = torch.linalg.vector_norm(flat, ord=p, dim=1)
    return n.reshape((v.shape[0],) + (1,) * (v.ndim - 1))


def _batch(x: object, name: str) -> Tensor:
    t = as_tensor(x, name)
    if t.ndim < 1 or t.shape[0] == 0:
        raise ValueError(
            f"{name} must have a batch axis of length >= 1, got shape {tuple(t.shape)}")
    return t


def fgm_perturbation(grad: Tensor, eps: float) -> Tensor:
    r"""FGM: the maximiser of :math:`g^\top r` over the Euclidean ball :math:`\lVert
    r\rVert_2\le\varepsilon`.

    :math:`r = \varepsilon\, g/\lVert g\rVert_2` for each sample (zero where :math:`g = 0`).

    Args:
        grad: input gradients :math:`g`, shape ``(B, *F)``.
        eps: the radius :math:`\varepsilon > 0`.

    Returns:
        the perturbations, shape ``(B, *F)``.

    Used in: :doc:`/book/training/adversarial-training`, eq. :eq:`adv-fgm`.
    """
    return _fgm_raw(_batch(grad, "grad"), check_positive(eps, "eps"))


def _fgm_raw(g: Tensor, eps: float) -> Tensor:
    # where the norm is 0, g is 0 too, so dividing by the clamped norm gives 0
    return eps * g / _per_sample_norm(g).clamp_min(torch.finfo(g.dtype).tiny)


def fgsm_perturbation(grad: Tensor, eps: float) -> Tensor:
    r"""FGSM: the maximiser of :math:`g^\top r` over the cube :math:`\lVert
    r\rVert_\infty\le\varepsilon`.

    :math:`r = \varepsilon\,\mathrm{sign}(g)` elementwise (a zero component gives zero; any value in
    :math:`[-\varepsilon, \varepsilon]` would do there).

    Args:
        grad: input gradients, shape ``(B, *F)``.
        eps: the half-width :math:`\varepsilon > 0`.

    Returns:
        the perturbations, shape ``(B, *F)``.

    Used in: :doc:`/book/training/adversarial-training`, eq. :eq:`adv-fgsm`.
    """
    g = _batch(grad, "grad")
    return check_positive(eps, "eps") * torch.sign(g)


def first_order_gain(grad: Tensor, eps: float, norm: Literal["l2", "linf"] = "l2") -> Tensor:
    r"""The value of the linearised inner maximum, :math:`\varepsilon\lVert g\rVert_*`.

    The dual norm of :math:`\lVert\cdot\rVert_2` is :math:`\lVert\cdot\rVert_2`, that of
    :math:`\lVert\cdot\rVert_\infty` is :math:`\lVert\cdot\rVert_1`, so
    :math:`\max_{\lVert r\rVert\le\varepsilon} g^\top r = \varepsilon\lVert g\rVert_2`
    (``norm="l2"``) or
    :math:`\varepsilon\lVert g\rVert_1` (``norm="linf"``).

    Args:
        grad: input gradients, shape ``(B, *F)``.
        eps: the radius :math:`\varepsilon > 0`.
        norm: the norm of the ball, ``"l2"`` or ``"linf"``.

    Returns:
        the gains, shape ``(B,)``.

    Used in: :doc:`/book/training/adversarial-training`, eq. :eq:`adv-first-order`.
    """
    g = _batch(grad, "grad")
    eps = check_positive(eps, "eps")
    if norm not in ("l2", "linf"):
        raise ValueError(f"norm must be 'l2' or 'linf', got {norm!r}")
    p = 2.0 if norm == "l2" else 1.0
    return eps * _per_sample_norm(g, p).reshape(-1)


def project_l2(r: Tensor, eps: float) -> Tensor:
    r"""Euclidean projection onto the ball :math:`\lVert r\rVert_2\le\varepsilon`, per sample.

    :math:`\Pi(r) = r\,\min(1, \varepsilon/\lVert r\rVert_2)`, the solution of
    :math:`\min_{\lVert s\rVert\le\varepsilon}\lVert s - r\rVert_2`.

    Args:
        r: perturbations, shape ``(B, *F)``.
        eps: the radius :math:`\varepsilon > 0`.

    Returns:
        the projected perturbations, shape ``(B, *F)``.

    Used in: :doc:`/book/training/adversarial-training`, eq. :eq:`adv-project`.
    """
    return _project_raw(_batch(r, "r"), check_positive(eps, "eps"))


def _project_raw(r: Tensor, eps: float) -> Tensor:
    n = _per_sample_norm(r)  # points inside the ball are returned unchanged, bit for bit
    return torch.where(n > eps, r * (eps / n.clamp_min(eps)), r)


def loss_and_input_grad(loss_fn: LossFn, x: Tensor, *, create_graph: bool = False
                        ) -> tuple[Tensor, Tensor]:
    r"""Per-sample losses :math:`L_b` and input gradients :math:`g_b = \nabla_{x_b} L_b`.

    The gradient of :math:`\sum_b L_b` with respect to the batch is the stack of the per-sample
    gradients as long as samples do not interact (no batch normalisation in training mode).

    Args:
        loss_fn: maps a batch ``(B, *F)`` to per-sample losses ``(B,)``.
        x: the inputs, shape ``(B, *F)``; a leaf copy is differentiated, ``x`` itself is untouched.
        create_graph: keep the graph of the gradient (for penalties differentiated again).

    Returns:
        ``(losses, grad)`` of shapes ``(B,)`` and ``(B, *F)``.

    Used in: :doc:`/book/training/adversarial-training`, eq. :eq:`adv-first-order`.
    """
    return _loss_and_grad(loss_fn, _batch(x, "x"), create_graph)


def _loss_and_grad(loss_fn: LossFn, x: Tensor, create_graph: bool = False) -> tuple[Tensor, Tensor]:
    with torch.enable_grad():  # attacks work inside torch.no_grad() too
        xr = x.detach().requires_grad_(True)
        losses = loss_fn(xr)
        if not isinstance(losses, Tensor) or tuple(losses.shape) != (x.shape[0],):
            shape = tuple(losses.shape) if isinstance(losses, Tensor) else type(losses).__name__
            raise ValueError(
                f"loss_fn must return per-sample losses of shape ({x.shape[0]},), got {shape}")
        (g,) = torch.autograd.grad(losses.sum(), xr, create_graph=create_graph)
    return losses, g


def fgm(loss_fn: LossFn, x: Tensor, eps: float) -> Tensor:
    r"""The FGM perturbation at ``x``: :math:`r = \varepsilon\,\nabla_x L/\lVert\nabla_x L\rVert_2`.

    Args:
        loss_fn: per-sample losses ``(B,)`` of a batch ``(B, *F)``.
        x: the inputs, shape ``(B, *F)``.
        eps: the radius :math:`\varepsilon > 0`.

    Returns:
        the perturbations (detached), shape ``(B, *F)``.

    Used in: :doc:`/book/training/adversarial-training`, eq. :eq:`adv-fgm`.
    """
    eps = check_positive(eps, "eps")
    return _fgm_raw(_loss_and_grad(loss_fn, _batch(x, "x"))[1], eps)


def fgsm(loss_fn: LossFn, x: Tensor, eps: float) -> Tensor:
    r"""The FGSM perturbation at ``x``: :math:`r = \varepsilon\,\mathrm{sign}\,\nabla_x L`.

    Args:
        loss_fn: per-sample losses ``(B,)`` of a batch ``(B, *F)``.
        x: the inputs, shape ``(B, *F)``.
        eps: the half-width :math:`\varepsilon > 0`.

    Returns:
        the perturbations (detached), shape ``(B, *F)``.

    Used in: :doc:`/book/training/adversarial-training`, eq. :eq:`adv-fgsm`.
    """
    _, g = loss_and_input_grad(loss_fn, x)
    return fgsm_perturbation(g, eps)


def pgd_l2(loss_fn: LossFn, x: Tensor, eps: float, alpha: float, steps: int,
           r0: Tensor | None = None) -> Tensor:
    r"""L2 PGD: :math:`r_{t+1} = \Pi\bigl(r_t + \alpha\, g_t/\lVert g_t\rVert_2\bigr)`,
    :math:`g_t = \nabla_x L(x + r_t)`.

    Starts from :math:`r_0` (zero by default, as in the NLP recipes; Madry et al. start at
    random), and
    :math:`\Pi` is :func:`project_l2`. With ``steps=1`` and :math:`\alpha \ge \varepsilon` it is
    FGM.

    Args:
        loss_fn: per-sample losses ``(B,)`` of a batch ``(B, *F)``.
        x: the inputs, shape ``(B, *F)``.
        eps: the radius :math:`\varepsilon > 0`.
        alpha: the step length :math:`\alpha > 0`.
        steps: the number of steps, >= 1.
        r0: the start, shape ``(B, *F)``, or ``None`` for zero.

    Returns:
        the final perturbation :math:`r_{\mathrm{steps}}` (detached), shape ``(B, *F)``.

    Used in: :doc:`/book/training/adversarial-training`, eq. :eq:`adv-pgd`.
    """
    x = _batch(x, "x").detach()
    eps = check_positive(eps, "eps")
    alpha = check_positive(alpha, "alpha")
    steps = check_count(steps, "steps")
    if r0 is None:
        r = torch.zeros_like(x)
    else:
        r = as_tensor(r0, "r0").detach()
        if r.shape != x.shape:
            raise ValueError(f"r0 must have the shape of x, {tuple(x.shape)}, got {tuple(r.shape)}")
        r = _project_raw(r, eps)
    for _ in range(steps):
        _, g = _loss_and_grad(loss_fn, x + r)
        r = _project_raw(r + _fgm_raw(g, alpha), eps)
    return r


def input_gradient_penalty(loss_fn: LossFn, x: Tensor, eps: float, *, normalized: bool = True
                           ) -> Tensor:
    r"""The first-order surrogate of the adversarial loss, as a penalised loss (per sample).

    ``normalized=True`` (FGM): :math:`L(x) + \varepsilon\lVert\nabla_x L(x)\rVert_2`.
    ``normalized=False`` (Su's unnormalised :math:`\Delta x = \varepsilon\nabla_x L`):
    :math:`L(x) + \tfrac{\varepsilon}{2}\lVert\nabla_x L(x)\rVert_2^2`. Differentiable with
    respect to
    the parameters inside ``loss_fn`` (double backpropagation): its parameter gradient equals, to
    first
    order in :math:`\varepsilon`, that of :math:`L(x + r)` with the attack :math:`r` held fixed.

    Args:
        loss_fn: per-sample losses ``(B,)`` of a batch ``(B, *F)``.
        x: the inputs, shape ``(B, *F)``.
        eps: :math:`\varepsilon > 0`.
        normalized: which of the two penalties.

    Returns:
        the penalised losses, shape ``(B,)``, with a graph to the parameters.

    Used in: :doc:`/book/training/adversarial-training`, eq. :eq:`adv-gp`.
    """
    eps = check_positive(eps, "eps")
    losses, g = loss_and_input_grad(loss_fn, x, create_graph=True)
    n = _per_sample_norm(g).reshape(-1)
    return losses + (eps * n if normalized else 0.5 * eps * n**2)


# --- the embedding-matrix attack ------------------------------------------------------------------

def _matching_parameters(model: nn.Module, emb_name: str) -> list[tuple[str, nn.Parameter]]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(emb_name, str) or not emb_name:
        raise ValueError(f"emb_name must be a non-empty string, got {emb_name!r}")
    found = [(n, p) for n, p in model.named_parameters() if p.requires_grad and emb_name in n]
    if not found:
        raise ValueError(f"emb_name {emb_name!r} matches no trainable parameter of the model")
    return found


class EmbeddingFGM:
    r"""FGM on an embedding matrix, in place: back up, perturb, and later restore.

    ``attack()`` reads the gradient :math:`G` that the last ``backward()`` left on every trainable
    parameter whose name contains ``emb_name``, backs the parameter up and adds
    :math:`\varepsilon\,G/\lVert G\rVert_F`, the Frobenius norm being over the *whole* matrix (so
    the
    radius is shared by the batch, and only rows of tokens in the batch move). ``restore()`` puts
    the
    backed-up values back, bit for bit. Between the two, a forward and backward pass on the same
    batch
    adds the adversarial gradient to the clean one.

    Args:
        model: the model holding the embedding.
        emb_name: a substring of the embedding parameter's name.
        eps: the radius :math:`\varepsilon > 0`.

    Used in: :doc:`/book/training/adversarial-training`, eq. :eq:`adv-embedding`.
    """

    def __init__(self, model: nn.Module, emb_name: str = "emb", eps: float = 1.0) -> None:
        self.params = _matching_parameters(model, emb_name)
        self.eps = check_positive(eps, "eps")
        self.backup: dict[str, Tensor] = {}

    def attack(self) -> None:
        """Back up the embedding(s) and add the FGM perturbation of the current gradient."""
        for name, p in self.params:
            if p.grad is None:
                raise RuntimeError(f"parameter {name!r} has no gradient: call backward() first")
            self.backup[name] = p.data.clone()
            norm = torch.linalg.vector_norm(p.grad)
            if bool(norm > 0) and bool(torch.isfinite(norm)):
                p.data.add_(self.eps * p.grad / norm)

    def restore(self) -> None:
        """Put the backed-up values back and forget them."""
        if not self.backup:
            raise RuntimeError("restore() called without a preceding attack()")
        for name, p in self.params:
            p.data.copy_(self.backup[name])
        self.backup = {}


class EmbeddingPGD:
    r"""L2 PGD on an embedding matrix, in place, in the form of the circulating PyTorch PGD class.

    ``attack(first=True)`` backs the embedding up; every ``attack`` then adds
    :math:`\alpha\,G/\lVert G\rVert_F` and projects the accumulated change back onto the Frobenius
    ball of
    radius :math:`\varepsilon` around the back-up. ``backup_grad`` / ``restore_grad`` keep the clean
    parameter gradients while the intermediate steps overwrite them, so that the update uses the
    clean
    gradient plus the gradient at the last perturbation. ``restore`` resets the embedding.

    Args:
        model: the model holding the embedding.
        emb_name: a substring of the embedding parameter's name.
        eps: the radius :math:`\varepsilon > 0`.
        alpha: the step length :math:`\alpha > 0`.

    Used in: :doc:`/book/training/adversarial-training`, eq. :eq:`adv-embedding`.
    """

    def __init__(self, model: nn.Module, emb_name: str = "emb", eps: float = 1.0,
                 alpha: float = 0.3) -> None:
        self.model = model
        self.params = _matching_parameters(model, emb_name)
        self.eps = check_positive(eps, "eps")
        self.alpha = check_positive(alpha, "alpha")
        self.emb_backup: dict[str, Tensor] = {}
        self.grad_backup: dict[str, Tensor] = {}

    def attack(self, first: bool = False) -> None:
        """One ascent step on the embedding(s), then the projection onto the ball."""
        if not first and not self.emb_backup:
            raise RuntimeError("the first attack() must be called with first=True")
        for name, p in self.params:
            if p.grad is None:
                raise RuntimeError(f"parameter {name!r} has no gradient: call backward() first")
            if first:
                self.emb_backup[name] = p.data.clone()
            norm = torch.linalg.vector_norm(p.grad)
            if bool(norm > 0) and bool(torch.isfinite(norm)):
                p.data.add_(self.alpha * p.grad / norm)
                change = p.data - self.emb_backup[name]
                c = torch.linalg.vector_norm(change)
                if bool(c > self.eps):
                    p.data.copy_(self.emb_backup[name] + self.eps * change / c)

    def restore(self) -> None:
        """Put the backed-up embedding(s) back and forget them."""
        if not self.emb_backup:
            raise RuntimeError("restore() called without a preceding attack(first=True)")
        for name, p in self.params:
            p.data.copy_(self.emb_backup[name])
        self.emb_backup = {}

    def backup_grad(self) -> None:
        """Keep a copy of every parameter gradient of the model."""
        self.grad_backup = {n: p.grad.clone() for n, p in self.model.named_parameters()
                            if p.requires_grad and p.grad is not None}

    def restore_grad(self) -> None:
        """Put the kept gradients back (the caller then adds the last adversarial gradient)."""
        if not self.grad_backup:
            raise RuntimeError("restore_grad() called without a preceding backup_grad()")
        for n, p in self.model.named_parameters():
            if n in self.grad_backup:
                p.grad = self.grad_backup[n].clone()


class MeanEmbeddingClassifier(nn.Module):
    r"""Mean of token embeddings, then a linear layer: :math:`\mathrm{logits} = W\bar e + b`,
    :math:`\bar e = \frac{1}{n}\sum_{i\le n} E_{t_i}`.

    Token id 0 is padding: its row is zero and gets no gradient (``padding_idx=0``) and it is left
    out
    of the mean. The embedding parameter is named ``emb.weight``.

    Args:
        vocab_size: number of token ids including padding, >= 2.
        dim: embedding dimension, >= 1.
        n_classes: number of classes, >= 2.

    Used in: :doc:`/book/training/adversarial-training`, eq. :eq:`adv-embedding`.
    """

    def __init__(self, vocab_size: int, dim: int, n_classes: int = 2) -> None:
        super().__init__()
        self.emb = nn.Embedding(check_count(vocab_size, "vocab_size", 2), check_count(dim, "dim"),
                                padding_idx=0)
        self.out = nn.Linear(dim, check_count(n_classes, "n_classes", 2))

    def pool(self, embedded: Tensor, tokens: Tensor) -> Tensor:
        """The mean over the non-padding positions of ``embedded`` (B, n, dim), shape (B, dim).

        Split from :meth:`forward` so that a caller can differentiate with respect to the embedding
        *outputs* (one vector per token occurrence) as well as the matrix.
        """
        if tokens.dtype != torch.long or tokens.ndim != 2:
            raise ValueError(f"tokens must be a 2-D tensor of token ids, got {tokens.dtype}, "
                             f"{tuple(tokens.shape)}")
        mask = (tokens != 0).to(embedded.dtype).unsqueeze(-1)
        return (embedded * mask).sum(1) / mask.sum(1).clamp_min(1.0)

    def forward(self, tokens: Tensor) -> Tensor:
        """Logits, shape (B, n_classes), of the token ids (B, n)."""
        if tokens.dtype != torch.long:
            raise ValueError(f"tokens must be a tensor of token ids (long), got {tokens.dtype}")
        return self.out(self.pool(self.emb(tokens), tokens))


def encode_tokens(sentences: Sequence[str]) -> tuple[Tensor, dict[str, int]]:
    """Whitespace tokens to ids (1, 2, ... in order of first appearance), padded with 0.

    Args:
        sentences: the sentences, at least one, none empty.

    Returns:
        ``(tokens, vocab)``: a long tensor (B, longest sentence) and the token-to-id map.

    Used in: :doc:`/book/training/adversarial-training`, eq. :eq:`adv-embedding`.
    """
    if isinstance(sentences, str) or len(sentences) == 0:
        raise ValueError("sentences must be a non-empty sequence of strings")
    split = [s.split() for s in sentences]
    if any(len(t) == 0 for t in split):
        raise ValueError("sentences must not hold an empty sentence")
    vocab: dict[str, int] = {}
    for toks in split:
        for w in toks:
            vocab.setdefault(w, len(vocab) + 1)
    out = torch.zeros(len(split), max(len(t) for t in split), dtype=torch.long)
    for i, toks in enumerate(split):
        out[i, :len(toks)] = torch.tensor([vocab[w] for w in toks])
    return out, vocab


# --- training on fixed features -------------------------------------------------------------------

def make_head(in_dim: int, hidden: int, n_classes: int = 2, *, seed: int,
              dtype: torch.dtype = torch.float64) -> nn.Sequential:
    r"""A one-hidden-layer tanh classifier, :math:`W_2\tanh(W_1 x + b_1) + b_2`, with torch's
    default
    initialisation under ``torch.manual_seed(seed)`` (the global random state is left as it was).

    Args:
        in_dim: input dimension; hidden: hidden units; n_classes: output classes (>= 2).
        seed: the seed of the initial weights.
        dtype: the parameter dtype.

    Returns:
        ``nn.Sequential(Linear, Tanh, Linear)``.

    Used in: :doc:`/book/training/adversarial-training`, section "Training on real text".
    """
    in_dim, hidden = check_count(in_dim, "in_dim"), check_count(hidden, "hidden")
    n_classes = check_count(n_classes, "n_classes", 2)
    seed = check_count(seed, "seed", 0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh(),
                             nn.Linear(hidden, n_classes)).to(dtype)


def cross_entropy_loss_fn(model: nn.Module, y: Tensor) -> LossFn:
    """The per-sample cross-entropy of ``model`` against the labels ``y`` (B,), as a ``loss_fn``.

    Used in: :doc:`/book/training/adversarial-training`, eq. :eq:`adv-minmax`.
    """
    if not isinstance(y, Tensor) or y.dtype != torch.long or y.ndim != 1:
        raise ValueError("y must be a 1-D long tensor of class labels")

    def loss_fn(x: Tensor) -> Tensor:
        return nn.functional.cross_entropy(model(x), y, reduction="none")

    return loss_fn


def _linear(head: nn.Sequential, i: int) -> nn.Linear:
    layer = head[i]
    assert isinstance(layer, nn.Linear)
    return layer


class StackedHead(nn.Module):
    r"""``S`` :func:`make_head` classifiers side by side, evaluated in one batched call.

    Head ``s`` starts from ``make_head(in_dim, hidden, n_classes, seed=seeds[s])`` (torch's own
    initialisation) and maps its own batch ``x[s]`` to
    :math:`\tanh(x_s W_{1,s} + b_{1,s}) W_{2,s} + b_{2,s}` with ``torch.baddbmm``: the two
    ``nn.Linear``
    layers written out only so that ``S`` seeds train in one loop (Adam acts elementwise, so this
    is the
    same as training each head alone). :meth:`heads` returns them as ``nn.Sequential`` again.

    Args:
        in_dim, hidden, n_classes: as in :func:`make_head`.
        seeds: one seed per head.
        dtype: the parameter dtype.

    Used in: :doc:`/book/training/adversarial-training`, section "Training on real text".
    """

    def __init__(self, in_dim: int, hidden: int, n_classes: int, seeds: Sequence[int],
                 dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        if len(seeds) == 0:
            raise ValueError("seeds must hold at least one seed")
        heads = [make_head(in_dim, hidden, n_classes, seed=int(s), dtype=dtype) for s in seeds]
        first = [_linear(h, 0) for h in heads]
        second = [_linear(h, 2) for h in heads]
        self.w1 = nn.Parameter(torch.stack([lin.weight.detach().T for lin in first]))
        self.b1 = nn.Parameter(torch.stack([lin.bias.detach() for lin in first]).unsqueeze(1))
        self.w2 = nn.Parameter(torch.stack([lin.weight.detach().T for lin in second]))
        self.b2 = nn.Parameter(torch.stack([lin.bias.detach() for lin in second]).unsqueeze(1))
        self._template = heads

    def forward(self, x: Tensor) -> Tensor:
        """Logits (S, B, n_classes) of the inputs (S, B, in_dim)."""
        return torch.baddbmm(self.b2, torch.tanh(torch.baddbmm(self.b1, x, self.w1)), self.w2)

    def heads(self) -> list[nn.Sequential]:
        """The current heads, as separate ``nn.Sequential`` copies."""
        out = []
        with torch.no_grad():
            for s, h in enumerate(self._template):
                _linear(h, 0).weight.copy_(self.w1[s].T)
                _linear(h, 0).bias.copy_(self.b1[s, 0])
                _linear(h, 2).weight.copy_(self.w2[s].T)
                _linear(h, 2).bias.copy_(self.b2[s, 0])
                out.append(h)
        self._template = [copy.deepcopy(h) for h in out]
        return out


def train_heads(x: Tensor, y: Tensor, method: Literal["clean", "fgm", "pgd"], *, eps: float,
                hidden: int, steps: int, lr: float, seeds: Sequence[int], pgd_steps: int = 3,
                pgd_alpha: float | None = None) -> list[nn.Sequential]:
    r"""Full-batch Adam on ``S`` :func:`make_head` classifiers at once, clean or adversarial.

    Head ``s`` (seeded by ``seeds[s]``) trains on ``x[s]``, ``y[s]``. ``"clean"`` minimises
    :math:`\bar L(x)`; ``"fgm"`` and ``"pgd"`` minimise :math:`\bar L(x) + \bar L(x + r)`, with
    :math:`r`
    from :func:`fgm` or :func:`pgd_l2` (``pgd_steps`` steps of length ``pgd_alpha``, default
    :math:`\varepsilon/2`), recomputed at every step and held fixed: the clean and the adversarial
    gradients are added, as the circulating PyTorch FGM class does (Su's Keras code trains on
    :math:`\bar L(x + r)` alone). The heads are trained together as a
    :class:`StackedHead`; they share nothing.

    Args:
        x: features, shape (S, B, D); y: labels, shape (S, B), long.
        method: ``"clean"``, ``"fgm"`` or ``"pgd"``.
        eps: attack radius > 0 (checked even for ``"clean"``).
        hidden, steps: hidden units and Adam steps; lr: learning rate > 0.
        seeds: one seed per head, ``S`` of them.
        pgd_steps, pgd_alpha: the inner PGD.

    Returns:
        the ``S`` trained heads.

    Used in: :doc:`/book/training/adversarial-training`, eq. :eq:`adv-minmax`.
    """
    x = as_tensor(x, "x")
    if x.ndim != 3 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"x must have shape (S, B, D) with S, B >= 1, got {tuple(x.shape)}")
    if not isinstance(y, Tensor) or y.dtype != torch.long or tuple(y.shape) != tuple(x.shape[:2]):
        raise ValueError(f"y must be a long tensor of shape {tuple(x.shape[:2])}")
    if method not in ("clean", "fgm", "pgd"):
        raise ValueError(f"method must be 'clean', 'fgm' or 'pgd', got {method!r}")
    eps = check_positive(eps, "eps")
    steps = check_count(steps, "steps")
    lr = check_positive(lr, "lr")
    alpha = eps / 2 if pgd_alpha is None else check_positive(pgd_alpha, "pgd_alpha")
    pgd_steps = check_count(pgd_steps, "pgd_steps")
    if len(seeds) != x.shape[0]:
        raise ValueError(f"seeds must hold one seed per head, {x.shape[0]}, got {len(seeds)}")
    S, B, D = x.shape
    stack = StackedHead(D, hidden, max(2, int(y.max()) + 1), seeds, dtype=x.dtype)
    y_flat = y.reshape(-1)

    def loss_fn(v: Tensor) -> Tensor:  # (S*B, D) -> (S*B,)
        logits = stack(v.reshape(S, B, D)).reshape(S * B, -1)
        return nn.functional.cross_entropy(logits, y_flat, reduction="none")

    opt = torch.optim.Adam(stack.parameters(), lr=lr)
    flat = x.reshape(S * B, D)
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(flat).sum() / B
        if method == "fgm":
            loss = loss + loss_fn(flat + fgm(loss_fn, flat, eps)).sum() / B
        elif method == "pgd":
            loss = loss + loss_fn(flat + pgd_l2(loss_fn, flat, eps, alpha, pgd_steps)).sum() / B
        loss.backward()
        opt.step()
    return stack.heads()


def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """The fraction of rows of ``x`` that ``model`` classifies as ``y``.

    Used in: :doc:`/book/training/adversarial-training`, section "Training on real text".
    """
    with torch.no_grad():
        return float((model(x).argmax(-1) == y).double().mean())


def robust_accuracy(model: nn.Module, x: Tensor, y: Tensor, eps: float, *, alpha: float,
                    steps: int) -> float:
    r"""Accuracy on :math:`x + r`, :math:`r` from :func:`pgd_l2` against the true labels.

    Used in: :doc:`/book/training/adversarial-training`, section "Training on real text".
    """
    r = pgd_l2(cross_entropy_loss_fn(model, y), x, eps, alpha, steps)
    return accuracy(model, x + r, y)
