r"""Gradient accumulation for contrastive losses: cache the embeddings, then back-propagate.

An in-batch contrastive loss couples the samples of a batch: every row's softmax runs over the
whole batch, so the loss is not a sum of per-sample terms and plain gradient accumulation (one
loss per micro-batch) optimises a different loss, with fewer negatives. The loss depends on the
parameters :math:`\theta` only through the embeddings :math:`h_i = f_\theta(x_i)`, though, so by
the chain rule

.. math::

   \nabla_\theta \mathcal L = \sum_i \Big(\frac{\partial h_i}{\partial\theta}\Big)^{\!\top}
   \frac{\partial \mathcal L}{\partial h_i}
   = \nabla_\theta \sum_i \big\langle h_i,\ \mathrm{sg}(\tilde h_i) \big\rangle,
   \qquad \tilde h_i = \frac{\partial \mathcal L}{\partial h_i},

with :math:`\mathrm{sg}` the stop-gradient. The right-hand side *is* a sum over samples. The
recipe (Su's post; GradCache of Gao et al.) is therefore: embed the whole batch without a graph,
compute the surrogate vectors :math:`\tilde h_i` from the cached embeddings, then re-embed one
micro-batch at a time with a graph and back-propagate :math:`\sum_i \langle h_i, \tilde h_i\rangle`.
If the encoder is random (dropout), the second pass must draw the same masks as the first, which
:func:`cached_backward_` ensures by restoring the random state of each micro-batch.

The module reads: Su's inner-product loss and its closed-form surrogate vectors, the surrogate
loss, the general cache for any loss, the two-pass backward, naive accumulation and its loss gap.
The cosine InfoNCE loss itself lives in :mod:`kexue_notes.contrastive`; any loss of the
embeddings works here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from kexue_notes._validate import as_tensor, check_count, check_positive
from kexue_notes.contrastive import info_nce_from_logits, info_nce_logit_gradient, partner_targets

__all__ = [  # noqa: RUF022 -- in the order of the method, as the module reads
    "inner_product_info_nce_loss",
    "surrogate_vectors",
    "surrogate_loss",
    "embedding_gradients",
    "cached_backward_",
    "naive_accumulate_",
    "naive_loss_gap",
]

Column = torch.Tensor | Mapping[str, torch.Tensor]


# --- the loss with inner-product logits ------------------------------------------------------

def _pair_default(targets: Any, n: int) -> Any:
    """The given targets, or by default the partners of consecutive rows (n must be even)."""
    if targets is not None:
        return targets
    if n % 2:
        raise ValueError(f"h must have an even number of rows for the default pair targets, "
                         f"got {n}")
    return partner_targets(n // 2)


def inner_product_info_nce_loss(h: Any, tau: float = 1.0, targets: Any = None,
                                exclude_self: bool = False) -> torch.Tensor:
    r"""Su's in-batch loss: one set of embeddings, inner-product logits, mean over rows.

    With :math:`s_{ij} = \langle h_i, h_j\rangle/\tau` and one-hot targets :math:`t_{ij}`,

    .. math::

       \mathcal L = \frac1n \sum_{i=1}^n \Big( -\sum_j t_{ij} s_{ij}
       + \log \sum_{j \in J_i} e^{s_{ij}} \Big),

    where :math:`J_i` is the whole batch, or the batch without :math:`i` when ``exclude_self``
    (otherwise the self-similarity :math:`\lVert h_i\rVert^2/\tau` competes with the positive).
    Su writes the sum over rows and folds :math:`\tau` into :math:`s`; the mean is
    :math:`1/n` times it. Unlike :func:`kexue_notes.contrastive.info_nce_loss` the logits are not
    normalised by the norms.

    Args:
        h: embeddings, shape ``(n, d)``.
        tau: temperature, ``> 0``.
        targets: index of each row's positive, ``n`` integers in ``[0, n)``; default
            :func:`kexue_notes.contrastive.partner_targets`.
        exclude_self: drop :math:`j = i` from row :math:`i`'s softmax.

    Returns:
        The mean loss, a 0-d tensor (with a graph if ``h`` has one).

    Raises:
        ValueError: if ``h`` is not 2-D or not finite, ``tau <= 0``, or targets are out of range
            or point at their own row while ``exclude_self``.
        TypeError: if ``targets`` are not integers.

    Used in: :doc:`/book/optimization/contrastive-grad-accum`, eq. :eq:`gradcache-loss`.
    """
    h = as_tensor(h, "h", ndim=2)
    tau = check_positive(tau, "tau")
    return info_nce_from_logits(h @ h.T / tau, _pair_default(targets, h.shape[0]), exclude_self)


# --- the surrogate -------------------------------------------------------------------------------

def surrogate_vectors(h: Any, tau: float = 1.0, targets: Any = None,
                      exclude_self: bool = False) -> torch.Tensor:
    r"""Su's vectors :math:`\tilde h_i = \partial\mathcal L/\partial h_i`, in closed form.

    With :math:`p_{ij}` the row softmax of the logits (zero on excluded entries),

    .. math::

       \tilde h_i = \frac{1}{n\tau} \sum_j \big(p_{ij} + p_{ji} - t_{ij} - t_{ji}\big)\, h_j ,

    which for symmetric targets is Su's :math:`\frac{2}{n\tau}\sum_j (\bar p_{ij} - t_{ij}) h_j`,
    :math:`\bar p = (p + p^\top)/2`. In matrix form :math:`\tilde H = (G + G^\top) H / \tau`
    with :math:`G` from :func:`kexue_notes.contrastive.info_nce_logit_gradient`. The result
    carries no graph: it is a constant, the :math:`\mathrm{sg}(\tilde h_i)` of the surrogate.

    Args:
        h: embeddings, shape ``(n, d)``.
        tau: temperature, ``> 0``.
        targets: as in :func:`inner_product_info_nce_loss`.
        exclude_self: as in :func:`inner_product_info_nce_loss`.

    Returns:
        :math:`\tilde H`, shape ``(n, d)``, detached.

    Raises:
        ValueError: as :func:`inner_product_info_nce_loss`.
        TypeError: if ``targets`` are not integers.

    Used in: :doc:`/book/optimization/contrastive-grad-accum`, eq. :eq:`gradcache-surrogate`.
    """
    h = as_tensor(h, "h", ndim=2).detach()
    tau = check_positive(tau, "tau")
    t = _pair_default(targets, h.shape[0])
    g = info_nce_logit_gradient(h @ h.T / tau, t, exclude_self=exclude_self)
    return (g + g.T) @ h / tau


def surrogate_loss(h: torch.Tensor, h_tilde: Any) -> torch.Tensor:
    r"""The surrogate :math:`\sum_i \langle h_i, \mathrm{sg}(\tilde h_i)\rangle`.

    .. math::

       \tilde{\mathcal L} = \sum_{i} \big\langle h_i,\ \mathrm{sg}(\tilde h_i) \big\rangle ,
       \qquad \nabla_\theta \tilde{\mathcal L} = \nabla_\theta \mathcal L
       \ \text{ when } \ \tilde h_i = \partial \mathcal L / \partial h_i .

    It is a sum over samples, so it can be split into micro-batches and accumulated. Only its
    gradient means anything: its value is not the loss, and it need not be positive or decrease.

    Args:
        h: embeddings with a graph, shape ``(n, d)``.
        h_tilde: the cached gradients, shape ``(n, d)``; detached here.

    Returns:
        A 0-d tensor.

    Raises:
        ValueError: if the shapes differ or an input is not finite.
        TypeError: if ``h`` is not a floating tensor.

    Used in: :doc:`/book/optimization/contrastive-grad-accum`, eq. :eq:`gradcache-surrogate-loss`.
    """
    if not isinstance(h, torch.Tensor) or not h.is_floating_point():
        raise TypeError(f"h must be a floating torch tensor, got {type(h).__name__}")
    h = as_tensor(h, "h")
    c = as_tensor(h_tilde, "h_tilde", shape=tuple(h.shape)).detach().to(h.dtype)
    return (h * c).sum()


def embedding_gradients(loss_fn: Callable[..., torch.Tensor],
                        embeddings: Sequence[Any]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    r"""GradCache's cache for any loss: :math:`c^{(k)}_i = \partial\mathcal L/\partial e^{(k)}_i`.

    For a loss of one or more embedding tables :math:`e^{(1)}, \dots, e^{(K)}` (for example
    queries and documents), autograd on detached copies gives

    .. math::

       c^{(k)}_i = \frac{\partial \mathcal L(e^{(1)}, \dots, e^{(K)})}{\partial e^{(k)}_i},

    and :math:`\nabla_\theta\mathcal L = \nabla_\theta \sum_{k,i}\langle e^{(k)}_i,
    \mathrm{sg}(c^{(k)}_i)\rangle`. Normalisation, temperature and masks inside ``loss_fn`` are
    all covered; for :func:`inner_product_info_nce_loss` the cache equals
    :func:`surrogate_vectors`.

    Args:
        loss_fn: callable ``loss_fn(e1, ..., eK)`` returning a 0-d tensor.
        embeddings: the ``K >= 1`` tables, each of shape ``(n_k, d)``.

    Returns:
        The loss (detached 0-d tensor) and the list of ``K`` caches, each shaped like its table.

    Raises:
        ValueError: if ``embeddings`` is empty, a table is not finite, or the loss is not a
            finite scalar.

    Used in: :doc:`/book/optimization/contrastive-grad-accum`, eq. :eq:`gradcache-general`.
    """
    if len(embeddings) == 0:
        raise ValueError("embeddings must hold at least one table, got none")
    leaves = [as_tensor(e, f"embeddings[{k}]").detach().requires_grad_()
              for k, e in enumerate(embeddings)]
    with torch.enable_grad():
        loss = loss_fn(*leaves)
        _check_loss(loss)
        grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    caches = [torch.zeros_like(e) if c is None else c for e, c in zip(leaves, grads, strict=True)]
    return loss.detach(), caches


def _check_loss(loss: Any) -> None:
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        raise ValueError(f"loss_fn must return a 0-d tensor, got {type(loss).__name__} "
                         f"of shape {tuple(getattr(loss, 'shape', ()))}")
    if not bool(torch.isfinite(loss)):
        raise ValueError("loss_fn returned a loss that is not finite")


# --- micro-batches ----------------------------------------------------------------------------

def _columns(columns: Any) -> list[Column]:
    """One column (a tensor or a dict of tensors, as a tokenizer returns) or a sequence of them."""
    if isinstance(columns, torch.Tensor | Mapping):
        columns = [columns]
    if isinstance(columns, str | bytes) or not isinstance(columns, Sequence):
        raise TypeError("columns must be a tensor, a dict of tensors, or a sequence of these, "
                        f"got {type(columns).__name__}")
    if len(columns) == 0:
        raise ValueError("columns must hold at least one column, got none")
    for k, col in enumerate(columns):
        if _rows(col, k) == 0:
            raise ValueError(f"columns[{k}] has no rows")
    return list(columns)


def _rows(col: Any, k: int) -> int:
    if isinstance(col, torch.Tensor):
        if col.ndim == 0:
            raise ValueError(f"columns[{k}] must have a batch axis, got a 0-d tensor")
        return col.shape[0]
    if isinstance(col, Mapping):
        sizes = {v.shape[0] for v in col.values() if isinstance(v, torch.Tensor) and v.ndim > 0}
        if len(sizes) != 1:
            raise ValueError(f"columns[{k}] must hold tensors with one common batch size, "
                             f"got sizes {sorted(sizes)}")
        return sizes.pop()
    raise TypeError(f"columns[{k}] must be a tensor or a dict of tensors, got {type(col).__name__}")


def _chunks(col: Column, k: int, size: int) -> list[Column]:
    n = _rows(col, k)
    spans = [(a, min(a + size, n)) for a in range(0, n, size)]
    if isinstance(col, torch.Tensor):
        return [col[a:b] for a, b in spans]
    return [{key: v[a:b] if isinstance(v, torch.Tensor) and v.ndim > 0 else v
             for key, v in col.items()} for a, b in spans]


def _embed(encoder: Callable[[Any], torch.Tensor], chunk: Column, name: str) -> torch.Tensor:
    e = encoder(chunk)
    if not isinstance(e, torch.Tensor) or e.ndim != 2 or not e.is_floating_point():
        raise ValueError(f"encoder must return a 2-D floating tensor for {name}, got "
                         f"{type(e).__name__} of shape {tuple(getattr(e, 'shape', ()))}")
    return e


def cached_backward_(encoder: Callable[[Any], torch.Tensor], columns: Any,
                     loss_fn: Callable[..., torch.Tensor], micro_batch_size: int, *,
                     cache_fn: Callable[[list[torch.Tensor]], Sequence[Any]] | None = None,
                     replay_rng: bool = True) -> tuple[torch.Tensor, list[torch.Tensor]]:
    r"""Back-propagate a contrastive loss of a big batch one micro-batch at a time (two passes).

    1. Embed every micro-batch of every column without a graph, remembering the CPU random state
       before each one, and concatenate: :math:`e^{(k)} = f_\theta(x^{(k)})`.
    2. Cache :math:`c^{(k)} = \partial\mathcal L/\partial e^{(k)}`, by
       :func:`embedding_gradients` or by ``cache_fn`` (e.g. :func:`surrogate_vectors`).
    3. Re-embed each micro-batch with a graph (after restoring its random state if
       ``replay_rng``) and back-propagate its share of :func:`surrogate_loss`,

    .. math::

       \nabla_\theta \mathcal L = \sum_{\text{micro-batches } m} \nabla_\theta
       \sum_{(k, i) \in m} \big\langle f_\theta(x^{(k)}_i),\ \mathrm{sg}(c^{(k)}_i) \big\rangle .

    Gradients are *added* to the parameters' ``.grad``, as ``loss.backward()`` would; zero them
    first. With ``replay_rng`` the global random state afterwards is the one after step 1, as if
    the batch had been embedded once. Without it, a random encoder (dropout) sees new masks in
    step 3, and the result is not the gradient of any one forward pass.

    Args:
        encoder: callable mapping a micro-batch of one column to embeddings ``(b, d)``; it must
            be deterministic given the global random state (no batch statistics).
        columns: a tensor, a dict of tensors (a tokenizer's output), or a sequence of these; each
            is split along its first axis. Micro-batches run column by column.
        loss_fn: callable ``loss_fn(e1, ..., eK)`` on the full embedding tables, a 0-d tensor.
        micro_batch_size: rows per micro-batch, ``>= 1`` (the last one may be smaller).
        cache_fn: optional callable mapping the list of tables to the list of caches; default
            autograd of ``loss_fn``.
        replay_rng: restore each micro-batch's random state before re-embedding it.

    Returns:
        The loss of the big batch (detached, from step 1) and the caches, one per column.

    Raises:
        ValueError: if ``micro_batch_size < 1``, a column has no rows or ragged tensors, the
            encoder does not return 2-D embeddings, a cache has the wrong shape, or the loss is
            not a finite scalar.
        TypeError: if ``columns`` is not a tensor, dict or sequence of them.

    Used in: :doc:`/book/optimization/contrastive-grad-accum`, eq. :eq:`gradcache-general`.
    """
    size = check_count(micro_batch_size, "micro_batch_size")
    cols = _columns(columns)
    chunks = [_chunks(col, k, size) for k, col in enumerate(cols)]
    states: list[list[torch.Tensor]] = []
    tables = []
    with torch.no_grad():
        for k, col_chunks in enumerate(chunks):
            states.append([])
            parts = []
            for chunk in col_chunks:
                states[k].append(torch.get_rng_state())
                parts.append(_embed(encoder, chunk, f"columns[{k}]"))
            tables.append(torch.cat(parts))
    if cache_fn is None:
        loss, caches = embedding_gradients(loss_fn, tables)
    else:
        with torch.no_grad():
            loss = loss_fn(*tables)
        _check_loss(loss)
        caches = [c.detach() if isinstance(c, torch.Tensor) else c for c in cache_fn(tables)]
        if len(caches) != len(tables):
            raise ValueError(f"cache_fn must return {len(tables)} caches, got {len(caches)}")
    for k, (c, e) in enumerate(zip(caches, tables, strict=True)):
        caches[k] = as_tensor(c, f"cache {k}", shape=tuple(e.shape)).to(e.dtype)
    after = torch.get_rng_state()
    for k, col_chunks in enumerate(chunks):
        for chunk, state, c in zip(col_chunks, states[k], caches[k].split(size), strict=True):
            if replay_rng:
                torch.set_rng_state(state)
            surrogate_loss(_embed(encoder, chunk, f"columns[{k}]"), c).backward()
    if replay_rng:
        torch.set_rng_state(after)
    return loss.detach(), caches


def naive_accumulate_(encoder: Callable[[Any], torch.Tensor], columns: Any,
                      loss_fn: Callable[..., torch.Tensor],
                      micro_batch_size: int) -> torch.Tensor:
    r"""Plain gradient accumulation of a contrastive loss: each micro-batch is its own batch.

    Micro-batch :math:`m` (rows :math:`B_m` of every column, :math:`n_m` of them) is embedded
    with a graph, its loss :math:`\mathcal L_m` is computed from its rows only, and

    .. math::

       \mathcal L_{\text{naive}} = \sum_m \frac{n_m}{n}\,\mathcal L_m

    is back-propagated, micro-batch by micro-batch. Each row's softmax then sees only the
    negatives in its own micro-batch, so this is a different loss from the big batch's (see
    :func:`naive_loss_gap`). ``loss_fn``'s default targets must make sense inside a micro-batch
    (diagonal targets do; :func:`kexue_notes.contrastive.partner_targets` do for even sizes).

    Args:
        encoder: as in :func:`cached_backward_`.
        columns: as in :func:`cached_backward_`; all columns must have the same number of rows.
        loss_fn: callable ``loss_fn(e1, ..., eK)`` on one micro-batch's tables, a 0-d tensor.
        micro_batch_size: rows per micro-batch, ``>= 1``.

    Returns:
        :math:`\mathcal L_{\text{naive}}`, detached. Gradients are added to ``.grad``.

    Raises:
        ValueError: as :func:`cached_backward_`, or if the columns differ in length.
        TypeError: as :func:`cached_backward_`.

    Used in: :doc:`/book/optimization/contrastive-grad-accum`, eq. :eq:`gradcache-naive-gap`.
    """
    size = check_count(micro_batch_size, "micro_batch_size")
    cols = _columns(columns)
    rows = {_rows(col, k) for k, col in enumerate(cols)}
    if len(rows) != 1:
        raise ValueError(f"columns must all have the same number of rows, got {sorted(rows)}")
    n = rows.pop()
    chunks = [_chunks(col, k, size) for k, col in enumerate(cols)]
    total = torch.zeros((), dtype=torch.float64)
    for m in range(len(chunks[0])):
        tables = [_embed(encoder, chunks[k][m], f"columns[{k}]") for k in range(len(cols))]
        loss = loss_fn(*tables)
        _check_loss(loss)
        weighted = loss * (tables[0].shape[0] / n)
        weighted.backward()
        total = total + weighted.detach().to(torch.float64)
    return total


def naive_loss_gap(logits: Any, micro_batch_size: int, exclude_self: bool = False) -> torch.Tensor:
    r"""How much the big batch's loss exceeds naive accumulation's: the cross-micro-batch terms.

    For logits :math:`z` of shape ``(n, n)`` whose micro-batches are the diagonal blocks
    :math:`B(i)` of size :math:`b` (the positives inside them), the positive terms cancel and

    .. math::

       \mathcal L - \mathcal L_{\text{naive}} = \frac1n \sum_{i=1}^n \log
       \frac{\sum_{j \in J_i} e^{z_{ij}}}{\sum_{j \in J_i \cap B(i)} e^{z_{ij}}}
       = \frac1n\sum_{i=1}^n \log\Big(1 + \frac{\sum_{j \in J_i \setminus B(i)} e^{z_{ij}}}
       {\sum_{j \in J_i \cap B(i)} e^{z_{ij}}}\Big) \ \ge 0 ,

    with :math:`J_i` all columns, or all but :math:`i` when ``exclude_self``. It vanishes only
    when :math:`b = n`: naive accumulation always reports a smaller loss.

    Args:
        logits: shape ``(n, n)``.
        micro_batch_size: :math:`b`, a divisor of :math:`n` (``>= 2`` when ``exclude_self``).
        exclude_self: as in :func:`inner_product_info_nce_loss`.

    Returns:
        The gap, a 0-d tensor.

    Raises:
        ValueError: if ``logits`` is not square or not finite, or ``micro_batch_size`` does not
            divide ``n`` (or is 1 with ``exclude_self``).

    Used in: :doc:`/book/optimization/contrastive-grad-accum`, eq. :eq:`gradcache-naive-gap`.
    """
    z = as_tensor(logits, "logits", ndim=2)
    n = z.shape[0]
    if z.shape[1] != n:
        raise ValueError(f"logits must be square, got shape {tuple(z.shape)}")
    b = check_count(micro_batch_size, "micro_batch_size", minimum=2 if exclude_self else 1)
    if n % b:
        raise ValueError(f"micro_batch_size must divide n = {n}, got {b}")
    block = torch.arange(n, device=z.device) // b
    same = block[:, None] == block[None, :]
    if exclude_self:
        z = z.masked_fill(torch.eye(n, dtype=torch.bool, device=z.device), float("-inf"))
    full = torch.logsumexp(z, dim=1)
    own = torch.logsumexp(z.masked_fill(~same, float("-inf")), dim=1)
    return (full - own).mean()
