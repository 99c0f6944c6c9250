r"""Virtual data augmentation (Zhou et al., VDA): token embeddings replaced by mixtures of the
embedding matrix's rows, weighted by a noisy substitution distribution, and a consistency loss.

For a position with substitution logits :math:`z \in \mathbb R^V` over the vocabulary and an
embedding matrix :math:`E \in \mathbb R^{V\times d}`, the virtual embedding is

.. math::

   \tilde e = E^\top \operatorname{softmax}(u + \sigma\epsilon), \qquad \epsilon \sim
   \mathcal N(0, I_V),

with :math:`u = z` (noise on the logits, ``noise_space="logit"``) or :math:`u = z / \sum_w z_w`
(the authors' released code, ``noise_space="code"``; for logits of one sign :math:`u` lies in the
probability simplex). :func:`virtual_embedding` builds it, optionally from the top-:math:`k`
tokens only (:func:`topk_truncate`, :func:`topk_truncation_error`); :func:`softmax_jacobian` and
:func:`delta_method_covariance` give its covariance to first order in :math:`\sigma`;
:func:`flattening_bounds` says how close to uniform :math:`\operatorname{softmax}(u)` is when
:math:`u` lies in the simplex. :func:`consistency_loss` is the (symmetric) KL divergence between
the predictions on the original and the virtual input, :func:`consistency_grad` its gradient.

No masked-language-model head ships offline, so the pages build *proxy* substitution logits from
the embedding matrix itself (:func:`proxy_substitution_logits`): cosine similarity over a
temperature, on the offline MiniLM word-embedding matrix
(:func:`kexue_notes.text_data.minilm_word_embeddings`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from kexue_notes._validate import as_tensor, check_count, check_positive

__all__ = [
    "consistency_grad",
    "consistency_loss",
    "delta_method_covariance",
    "flattening_bounds",
    "proxy_substitution_logits",
    "softmax_jacobian",
    "topk_truncate",
    "topk_truncation_error",
    "virtual_embedding",
]

_NOISE_SPACES = ("logit", "code")
_REDUCTIONS = ("batchmean", "sum", "none")


def _choice(value: Any, name: str, options: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")
    return value


def _checked(x: Any, name: str, ndim: int) -> Tensor:
    """``x`` as a finite floating tensor with ``ndim`` axes, or raise naming ``name``.

    For a large floating tensor, a finite sum proves every entry finite (a NaN or an infinity makes
    the sum NaN or infinite) in one pass without a boolean copy; only when the sum is not finite
    does the entry-wise check of :func:`~kexue_notes._validate.as_tensor` run.
    """
    if isinstance(x, Tensor) and x.is_floating_point():
        if x.ndim != ndim:
            raise ValueError(f"{name} must be {ndim}-dimensional, got shape {tuple(x.shape)}")
        if bool(torch.isfinite(x.sum())):
            return x
    return as_tensor(x, name, ndim=ndim)


def _logits_and_table(logits: Any, table: Any) -> tuple[Tensor, Tensor]:
    """``logits`` as (n, V), ``table`` as (V, d), same dtype."""
    z = _checked(logits, "logits", 2)
    emb = _checked(table, "table", 2)
    if emb.shape[0] != z.shape[1]:
        raise ValueError(f"table must have {z.shape[1]} rows (one per logit), got {emb.shape[0]}")
    return z, emb.to(z.dtype)


def _distributions(p: Any) -> Tensor:
    """``p`` as an (n, V) tensor of probability rows (>= 0, each summing to one)."""
    q = _checked(p, "p", 2)
    if bool((q < 0).any()):
        raise ValueError("p must be non-negative")
    if not torch.allclose(q.sum(dim=1), torch.ones((), dtype=q.dtype), rtol=0, atol=1e-9):
        raise ValueError("p must sum to one along each row")
    return q


# --- the embedding matrix and the proxy distributions ---------------------------------------------

def proxy_substitution_logits(table: Any, token_ids: Any, temperature: float) -> Tensor:
    r"""Proxy substitution logits from the embedding matrix: cosine similarity over a temperature.

    .. math::

       z_{iw} = \frac{\cos(E_{x_i}, E_w)}{\tau}, \qquad w = 1, \dots, V .

    A stand-in for a masked language model's prediction at position :math:`i` (none ships
    offline): tokens whose embeddings point the same way as :math:`E_{x_i}` get high logits, the
    token itself the highest.

    Args:
        table: the embedding matrix :math:`E`, shape ``(V, d)``.
        token_ids: the tokens :math:`x_i`, integers in ``[0, V)``, shape ``(n,)``.
        temperature: :math:`\tau > 0`.

    Returns:
        Logits of shape ``(n, V)``, in ``table``'s dtype.

    Used in: :doc:`/book/classification/virtual-data-augmentation`, section "The embedding matrix".
    """
    emb = _checked(table, "table", 2)
    tau = check_positive(temperature, "temperature")
    ids = torch.as_tensor(np.asarray(token_ids))
    if ids.ndim != 1 or ids.is_floating_point() or ids.dtype == torch.bool:
        raise ValueError("token_ids must be a one-dimensional array of integers")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= emb.shape[0]):
        raise ValueError(f"token_ids must lie in [0, {emb.shape[0]})")
    unit = emb / emb.norm(dim=1, keepdim=True).clamp_min(torch.finfo(emb.dtype).tiny)
    return unit[ids.long()] @ unit.T / tau


# --- the virtual embedding ------------------------------------------------------------------------

def _noise_argument(z: Tensor, noise_space: str) -> Tensor:
    if noise_space == "logit":
        return z
    total = z.sum(dim=-1, keepdim=True)
    if bool((total == 0).any()):
        raise ValueError("logits must not sum to zero along a row for noise_space='code'")
    return z / total


def virtual_embedding(logits: Any, table: Any, sigma: float = 0.0, *, noise_space: str = "logit",
                      topk: int | None = None, generator: torch.Generator | None = None) -> Tensor:
    r"""Virtual embeddings: rows of ``table`` mixed by a noisy substitution distribution.

    .. math::

       \tilde e_i = E^\top \operatorname{softmax}(u_i + \sigma\epsilon_i), \qquad
       u_i = z_i \ \ (\texttt{"logit"}) \quad\text{or}\quad
       u_i = z_i \big/ \textstyle\sum_w z_{iw} \ \ (\texttt{"code"}),

    with :math:`\epsilon_i \sim \mathcal N(0, I)`. ``"code"`` is the released VDA code's form (the
    logits divided by their sum, then noise, then softmax). With ``topk = k`` only the :math:`k`
    tokens of largest logit enter: noise and softmax act on those :math:`k` entries of
    :math:`u_i`, and the mixture uses :math:`k` rows of :math:`E` (at :math:`\sigma = 0`, logit
    space, this is :math:`E^\top\bar p_i` with :math:`\bar p_i` from :func:`topk_truncate`). The
    selection uses ``torch.topk`` on the logits; :func:`topk_truncate` uses NumPy, so the two can be
    compared.

    Args:
        logits: substitution logits :math:`z`, shape ``(n, V)``.
        table: the embedding matrix :math:`E`, shape ``(V, d)``.
        sigma: the noise's standard deviation :math:`\sigma \ge 0`.
        noise_space: ``"logit"`` or ``"code"``.
        topk: ``None`` (all :math:`V` tokens) or :math:`1 \le k \le V`.
        generator: the random generator for :math:`\epsilon` (needed when :math:`\sigma > 0`).

    Returns:
        The virtual embeddings, shape ``(n, d)``.

    Raises:
        ValueError: on wrong shapes, a negative ``sigma``, an unknown ``noise_space``, a ``topk``
            out of range, rows summing to zero under ``"code"``, or ``sigma > 0`` without a
            ``generator``.

    Used in: :doc:`/book/classification/virtual-data-augmentation`, eq. :eq:`vda-virtual`.
    """
    z, emb = _logits_and_table(logits, table)
    sig = check_positive(sigma, "sigma", allow_zero=True)
    space = _choice(noise_space, "noise_space", _NOISE_SPACES)
    if sig > 0 and generator is None:
        raise ValueError("generator is required when sigma > 0 (the noise must be seeded)")
    if topk is not None:
        k = check_count(topk, "topk")
        if k > z.shape[1]:
            raise ValueError(f"topk must be at most the vocabulary size {z.shape[1]}, got {k}")
        _, idx = torch.topk(z, k, dim=1)            # the k largest logits are the k likeliest
        u = _noise_argument(z, space).gather(1, idx)
    else:
        u = _noise_argument(z, space)
    if sig > 0:
        u = u + sig * torch.randn(u.shape, generator=generator, dtype=u.dtype)
    weights = torch.softmax(u, dim=1)
    if topk is None:
        return weights @ emb
    # a weighted sum of k rows per position, without materialising the (n, k, d) gathered rows
    return torch.nn.functional.embedding_bag(idx, emb, per_sample_weights=weights, mode="sum")


def flattening_bounds(vocab_size: int) -> tuple[float, float, float]:
    r"""How close :math:`q = \operatorname{softmax}(u)` is to uniform when :math:`u` is a
    probability vector (:math:`u_w \ge 0`, :math:`\sum_w u_w = 1`) over :math:`V` tokens.

    .. math::

       \frac{1}{V - 1 + e} \le q_w \le \frac{e}{V - 1 + e}, \qquad
       \Bigl\lVert q - \tfrac1V\mathbf 1 \Bigr\rVert_1 \le \frac{2(e-1)}{V - 1 + e} .

    Both weight bounds are attained at a vertex of the simplex, so no weight is more than
    :math:`e` times another.

    Args:
        vocab_size: :math:`V \ge 2`.

    Returns:
        ``(lowest weight, highest weight, l1 bound)``.

    Used in: :doc:`/book/classification/virtual-data-augmentation`, eq. :eq:`vda-flat`.
    """
    v = check_count(vocab_size, "vocab_size", minimum=2)
    e = math.e
    return 1 / (v - 1 + e), e / (v - 1 + e), 2 * (e - 1) / (v - 1 + e)


# --- top-k truncation -----------------------------------------------------------------------------

def topk_truncate(p: Any, k: int) -> tuple[Tensor, Tensor, Tensor]:
    r"""The top-:math:`k` truncation of each distribution, renormalised.

    .. math::

       S_k = \sum_{w \in T_k} p_w, \qquad \bar p_w = \frac{p_w}{S_k}\,\mathbb 1[w \in T_k],

    where :math:`T_k` holds the :math:`k` largest entries of :math:`p` (found with NumPy's
    ``argpartition``, independently of ``torch.topk``; ties are broken arbitrarily).

    Args:
        p: distributions, shape ``(n, V)``, rows non-negative and summing to one.
        k: :math:`1 \le k \le V`.

    Returns:
        ``(weights, indices, mass)``: :math:`\bar p` on :math:`T_k`, shape ``(n, k)``, sorted in
        decreasing order; the token ids, shape ``(n, k)``, int64; :math:`S_k`, shape ``(n,)``.

    Used in: :doc:`/book/classification/virtual-data-augmentation`, eq. :eq:`vda-l1`.
    """
    return _topk(_distributions(p), k)


def _topk(q: Tensor, k: Any) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`topk_truncate` on already validated distributions ``q``."""
    k = check_count(k, "k")
    if k > q.shape[1]:
        raise ValueError(f"k must be at most the vocabulary size {q.shape[1]}, got {k}")
    arr = q.detach().cpu().numpy()
    part = np.argpartition(arr, -k, axis=1)[:, -k:]                 # the k largest, unordered
    vals = np.take_along_axis(arr, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    idx = torch.from_numpy(np.take_along_axis(part, order, axis=1).astype(np.int64))
    top = q.gather(1, idx)
    mass = top.sum(dim=1)
    return top / mass[:, None], idx, mass


class TruncationError(NamedTuple):
    """The errors of top-:math:`k` truncation, each of shape ``(n,)``."""

    mass: Tensor
    """:math:`S_k`, the mass of the top :math:`k` tokens."""
    l1: Tensor
    r""":math:`\lVert p - \bar p\rVert_1`, computed over all :math:`V` entries."""
    embedding: Tensor
    r""":math:`\lVert E^\top(p - \bar p)\rVert_2`, computed from the dense vectors."""
    bound: Tensor
    r""":math:`2(1 - S_k)\max_w \lVert E_w\rVert_2`."""
    weights: Tensor
    r""":math:`\bar p` on the kept tokens, shape ``(n, k)``, as from :func:`topk_truncate`."""
    indices: Tensor
    """The kept tokens, shape ``(n, k)``."""


def topk_truncation_error(p: Any, table: Any, k: int) -> TruncationError:
    r"""What top-:math:`k` truncation costs, measured directly.

    .. math::

       \lVert p - \bar p\rVert_1 = 2(1 - S_k), \qquad
       \lVert E^\top(p - \bar p)\rVert_2 = (1 - S_k)\,\lVert \mu_{\rm rest} - \mu_{\rm top}\rVert_2
       \le 2(1 - S_k)\max_w \lVert E_w\rVert_2,

    with :math:`\mu_{\rm top}, \mu_{\rm rest}` the mean embeddings under :math:`p` restricted to
    :math:`T_k` and to its complement. ``l1`` and ``embedding`` are computed from the dense
    difference :math:`p - \bar p`, not from these formulas, so the page can test them.

    Returns:
        A ``TruncationError`` named tuple: ``mass``, ``l1``, ``embedding`` and ``bound``, each of
        shape ``(n,)``, and the ``weights`` and ``indices`` of :func:`topk_truncate`.

    Args:
        p: distributions, shape ``(n, V)``.
        table: the embedding matrix :math:`E`, shape ``(V, d)``.
        k: :math:`1 \le k \le V`.

    Used in: :doc:`/book/classification/virtual-data-augmentation`, eq. :eq:`vda-l1`.
    """
    q = _distributions(p)
    emb = _checked(table, "table", 2).to(q.dtype)
    if emb.shape[0] != q.shape[1]:
        raise ValueError(f"table must have {q.shape[1]} rows (one per token), got {emb.shape[0]}")
    weights, idx, mass = _topk(q, k)
    bar = torch.zeros_like(q).scatter_(1, idx, weights)
    diff = q - bar
    l1 = diff.abs().sum(dim=1)
    embedding = (diff @ emb).norm(dim=1)
    bound = 2 * (1 - mass) * emb.norm(dim=1).max()
    return TruncationError(mass, l1, embedding, bound, weights, idx)


# --- the noise's covariance -----------------------------------------------------------------------

def softmax_jacobian(p: Any) -> Tensor:
    r"""Jacobian of the softmax at a point where it equals :math:`p`.

    .. math::

       J = \partial \operatorname{softmax}(z) / \partial z = \operatorname{diag}(p) - pp^\top .

    Args:
        p: a distribution, shape ``(V,)``.

    Returns:
        :math:`J`, shape ``(V, V)``, symmetric.

    Used in: :doc:`/book/classification/virtual-data-augmentation`, eq. :eq:`vda-delta`.
    """
    q = _distributions(as_tensor(p, "p", ndim=1)[None, :])[0]
    return torch.diag(q) - torch.outer(q, q)


def delta_method_covariance(logits: Any, table: Any, sigma: float) -> Tensor:
    r"""First-order (delta-method) covariance of :math:`\tilde e = E^\top\operatorname{softmax}(z +
    \sigma\epsilon)`, :math:`\epsilon \sim \mathcal N(0, I)`.

    .. math::

       \operatorname{Cov}(\tilde e) = \sigma^2 E^\top J^2 E + O(\sigma^4), \qquad
       E^\top J = E^\top\operatorname{diag}(p) - (E^\top p)\,p^\top,

    computed as :math:`\sigma^2 (E^\top J)(E^\top J)^\top` without forming the :math:`V\times V`
    matrix :math:`J`.

    Args:
        logits: :math:`z`, shape ``(V,)``.
        table: :math:`E`, shape ``(V, d)``.
        sigma: :math:`\sigma \ge 0`.

    Returns:
        The covariance, shape ``(d, d)``.

    Used in: :doc:`/book/classification/virtual-data-augmentation`, eq. :eq:`vda-delta`.
    """
    z = _checked(logits, "logits", 1)
    emb = _checked(table, "table", 2).to(z.dtype)
    if emb.shape[0] != z.shape[0]:
        raise ValueError(f"table must have {z.shape[0]} rows (one per logit), got {emb.shape[0]}")
    sig = check_positive(sigma, "sigma", allow_zero=True)
    p = torch.softmax(z, dim=0)
    ej = emb.T * p - torch.outer(emb.T @ p, p)          # E^T J, shape (d, V)
    return sig**2 * ej @ ej.T


# --- the consistency loss -------------------------------------------------------------------------

def _pair(logits: Any, logits_aug: Any) -> tuple[Tensor, Tensor]:
    a = as_tensor(logits, "logits", ndim=2)
    b = as_tensor(logits_aug, "logits_aug", ndim=2)
    if a.shape != b.shape:
        raise ValueError(f"logits_aug must have shape {tuple(a.shape)}, got {tuple(b.shape)}")
    if a.shape[1] < 2:
        raise ValueError(f"logits must have at least 2 columns (classes), got {a.shape[1]}")
    return a, b.to(a.dtype)


def consistency_loss(logits: Any, logits_aug: Any, *, symmetric: bool = True,
                     reduction: str = "batchmean") -> Tensor:
    r"""KL consistency between the predictions on the original and on the virtual input.

    With :math:`p = \operatorname{softmax}(s)` (original) and :math:`q =
    \operatorname{softmax}(\tilde s)` (virtual), per example

    .. math::

       \mathrm{KL}(p\,\Vert\,q) = \sum_c p_c(\log p_c - \log q_c), \qquad
       \ell_{\rm sym} = \tfrac12\mathrm{KL}(p\,\Vert\,q) + \tfrac12\mathrm{KL}(q\,\Vert\,p) .

    ``symmetric=False`` gives :math:`\mathrm{KL}(p\Vert q)`. Computed from ``log_softmax``.

    Args:
        logits: :math:`s`, shape ``(N, C)``.
        logits_aug: :math:`\tilde s`, shape ``(N, C)``.
        symmetric: the symmetric form (the released code's) or the one-sided one.
        reduction: ``"batchmean"`` (mean over examples), ``"sum"`` or ``"none"`` (shape ``(N,)``).

    Used in: :doc:`/book/classification/virtual-data-augmentation`, eq. :eq:`vda-kl`.
    """
    a, b = _pair(logits, logits_aug)
    red = _choice(reduction, "reduction", _REDUCTIONS)
    lp, lq = torch.log_softmax(a, dim=1), torch.log_softmax(b, dim=1)
    kl_pq = (lp.exp() * (lp - lq)).sum(dim=1)
    per = 0.5 * (kl_pq + (lq.exp() * (lq - lp)).sum(dim=1)) if symmetric else kl_pq
    if red == "batchmean":
        return per.mean()
    return per.sum() if red == "sum" else per


def consistency_grad(logits: Any, logits_aug: Any, *, symmetric: bool = True) -> Tensor:
    r"""Gradient of the per-example :func:`consistency_loss` with respect to the virtual logits
    :math:`\tilde s`, the original prediction :math:`p` held fixed (stop-gradient).

    .. math::

       \frac{\partial\,\mathrm{KL}(p\Vert q)}{\partial\tilde s} = q - p, \qquad
       \frac{\partial\,\ell_{\rm sym}}{\partial\tilde s} = \tfrac12(q - p)
       + \tfrac12\,q\odot\bigl(\log q - \log p - \mathrm{KL}(q\Vert p)\bigr) .

    Args:
        logits: :math:`s`, shape ``(N, C)``.
        logits_aug: :math:`\tilde s`, shape ``(N, C)``.
        symmetric: as in :func:`consistency_loss`.

    Returns:
        The gradient, shape ``(N, C)`` (of the summed loss; divide by :math:`N` for
        ``"batchmean"``).

    Used in: :doc:`/book/classification/virtual-data-augmentation`, eq. :eq:`vda-grad`.
    """
    a, b = _pair(logits, logits_aug)
    lp, lq = torch.log_softmax(a, dim=1), torch.log_softmax(b, dim=1)
    p, q = lp.exp(), lq.exp()
    if not symmetric:
        return q - p
    kl_qp = (q * (lq - lp)).sum(dim=1, keepdim=True)
    return 0.5 * (q - p) + 0.5 * q * (lq - lp - kl_qp)
