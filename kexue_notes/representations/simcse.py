r"""SimCSE: dropout as the only augmentation, and what the contrastive loss does to the sphere.

Unsupervised SimCSE encodes each sentence twice with dropout switched on. The two noisy
embeddings :math:`h^{(0)}_i, h^{(1)}_i` of sentence :math:`i` form a positive pair; the other
sentences of the batch are its negatives. The loss itself, InfoNCE over cosine logits, lives in
:mod:`kexue_notes.contrastive`; this module holds what is particular to SimCSE:

* the two dropout views of a batch, and the cosine that dropout alone leaves between two views of a
  fixed vector;
* the symmetric :math:`2N`-row form of the loss (NT-Xent), with both views interleaved in one batch
  (the ``[A, A, B, B, ...]`` layout) and each row excluded from its own softmax;
* the quantities of the anisotropy argument: the negatives' log-mean-exp term of the loss, its
  Jensen lower bound (the mean entry of the Gram matrix of unit vectors), and the share of the
  largest eigenvalue of that Gram matrix.

All functions take torch tensors (or arrays, converted to float64) and return torch tensors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kexue_notes._validate import as_tensor, check_count, check_fraction, check_positive
from kexue_notes.contrastive import cosine_logits, info_nce_loss, interleave_pairs, partner_targets

if TYPE_CHECKING:
    import torch

__all__ = [  # noqa: RUF022 -- in the order of the method, as the module reads
    "dropout_views",
    "dropout_cosine_limit",
    "ntxent_loss",
    "log_mean_exp_similarity",
    "gram_mean",
    "top_eigenvalue_share",
]


def _embedding(out: Any) -> torch.Tensor:
    """The sentence embedding in an encoder's output: a tensor, or a sentence-transformers dict."""
    import torch

    if isinstance(out, Mapping) and "sentence_embedding" in out:
        out = out["sentence_embedding"]
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise TypeError("encoder must return an (n, d) tensor or a mapping with a "
                        f"'sentence_embedding' (n, d) tensor, got {type(out).__name__}")
    return out


def _copy(inputs: Any) -> Any:
    """A shallow copy of a mapping of features (sentence-transformers adds keys to it)."""
    return dict(inputs) if isinstance(inputs, Mapping) else inputs


# --- dropout as augmentation -------------------------------------------------------------------

def dropout_views(encoder: Any, inputs: Any, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Encode the same batch twice with dropout on: SimCSE's two views of each sentence.

    .. math::

       h^{(0)}_i = f_\theta(x_i; m^{(0)}), \qquad h^{(1)}_i = f_\theta(x_i; m^{(1)}),

    where :math:`m^{(0)}, m^{(1)}` are independent dropout masks. The encoder is put in training
    mode for the two passes and returned to its previous mode afterwards. The masks are drawn from
    torch's global generator inside ``torch.random.fork_rng``, seeded with ``seed``, so the
    result is reproducible and the caller's random state is left untouched. Gradients flow unless
    the caller disables them (a training step needs them).

    Args:
        encoder: a :class:`torch.nn.Module`; called as ``encoder(inputs)``, it returns an
            ``(n, d)`` tensor or a mapping with key ``"sentence_embedding"`` (as a
            sentence-transformers model does on the features of ``model.preprocess``).
        inputs: what ``encoder`` takes: a tensor, or a mapping of features (copied before each
            pass, since sentence-transformers writes into it).
        seed: seed of the two dropout masks, an integer ``>= 0``.

    Returns:
        ``(h0, h1)``, two tensors of shape ``(n, d)``.

    Raises:
        TypeError: if ``encoder`` is not a module, ``seed`` is not an integer, or the output is
            not an ``(n, d)`` tensor.
        ValueError: if ``seed < 0``.

    Used in: :doc:`/book/representations/simcse`.
    """
    import torch

    if not isinstance(encoder, torch.nn.Module):
        raise TypeError(f"encoder must be a torch.nn.Module, got {type(encoder).__name__}")
    seed = check_count(seed, "seed", minimum=0)
    was_training = encoder.training
    encoder.train()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            h0 = _embedding(encoder(_copy(inputs)))
            h1 = _embedding(encoder(_copy(inputs)))
    finally:
        encoder.train(was_training)
    return h0, h1


def dropout_cosine_limit(p: float) -> float:
    r"""Cosine between two dropout copies of one long vector, in the limit of many coordinates.

    With keep probability :math:`q = 1 - p`, inverted dropout maps :math:`x` to
    :math:`y = m \odot x / q` with independent :math:`m_k \sim \mathrm{Bernoulli}(q)`. For two
    independent masks, :math:`\mathbb{E}[m_k m'_k] = q^2` and :math:`\mathbb{E}[m_k^2] = q`; when
    no coordinate dominates :math:`\lVert x\rVert^2`, the sums concentrate and

    .. math::

       \cos(y, y') \;\to\; \frac{q^2 \sum_k x_k^2}{q \sum_k x_k^2} = 1 - p .

    The rescaling by :math:`1/q` cancels in the cosine. This is the noise of a single dropout layer
    applied to the embedding itself, a reference for the noise that dropout inside an encoder
    leaves on its output.

    Args:
        p: drop probability, in ``[0, 1)``.

    Returns:
        The limiting cosine :math:`1 - p`.

    Raises:
        ValueError: if ``p`` is outside ``[0, 1)``.
        TypeError: if ``p`` is not a real number.

    Used in: :doc:`/book/representations/simcse`, eq. :eq:`simcse-dropout-cosine`.
    """
    p = check_fraction(p, "p")
    if p == 1.0:
        raise ValueError("p must be < 1: with every coordinate dropped the cosine is undefined")
    return 1.0 - p


# --- the symmetric 2N-row loss (NT-Xent) ---------------------------------------------------------

def ntxent_loss(h0: Any, h1: Any, tau: float) -> torch.Tensor:
    r"""The symmetric SimCSE loss over both views (NT-Xent), averaged over the :math:`2n` rows.

    Each of the :math:`2n` embeddings is an anchor; its positive is the other view of the same
    sentence, and its softmax runs over the other :math:`2n - 1` embeddings of both views:

    .. math::

       \mathcal{L}_{\text{NT-Xent}} = \frac{1}{2n} \sum_{i=1}^{n} \sum_{\alpha=0}^{1}
       -\log \frac{e^{\cos(h^{(\alpha)}_i, h^{(1-\alpha)}_i)/\tau}}
       {\sum_{j \ne i} e^{\cos(h^{(\alpha)}_i, h^{(\alpha)}_j)/\tau}
        + \sum_{j} e^{\cos(h^{(\alpha)}_i, h^{(1-\alpha)}_j)/\tau}} .

    Computed as :func:`kexue_notes.contrastive.info_nce_loss` on
    :func:`kexue_notes.contrastive.interleave_pairs` with targets
    :func:`kexue_notes.contrastive.partner_targets` and ``exclude_self=True``.

    Args:
        h0: first view, shape ``(n, d)``.
        h1: second view, shape ``(n, d)``.
        tau: temperature, ``> 0``.

    Returns:
        The mean loss, a 0-d tensor (autograd flows to both views).

    Raises:
        ValueError: on mismatched shapes, non-finite input, zero rows or ``tau <= 0``.
        TypeError: if an input is not numeric or ``tau`` is not a real number.

    Used in: :doc:`/book/representations/simcse`, eq. :eq:`simcse-ntxent`.
    """
    tau = check_positive(tau, "tau")
    h0 = as_tensor(h0, "h0", ndim=2)
    h1 = as_tensor(h1, "h1", ndim=2, shape=tuple(h0.shape))
    z = interleave_pairs(h0, h1)
    targets = partner_targets(z.shape[0] // 2).to(z.device)
    return info_nce_loss(z, z, tau, targets=targets, exclude_self=True)


# --- the anisotropy argument --------------------------------------------------------------------

def _self_mask(m: int, device: Any) -> torch.Tensor:
    import torch

    return torch.eye(m, dtype=torch.bool, device=device)


def log_mean_exp_similarity(a: Any, tau: float, b: Any = None,
                            exclude_self: bool = False) -> torch.Tensor:
    r"""The negatives' term of the InfoNCE loss: mean over anchors of a log-mean-exp of cosines.

    .. math::

       U_\tau(a, b) = \frac{1}{n} \sum_{i=1}^{n} \log \frac{1}{|J_i|} \sum_{j \in J_i}
       e^{\cos(a_i, b_j)/\tau},

    with :math:`J_i` all :math:`m` candidates, or all but :math:`j = i` when ``exclude_self``.
    With the positives on the diagonal and all candidates kept, the InfoNCE loss splits exactly
    into :math:`\log m - \frac{1}{n\tau}\sum_i \cos(a_i, b_i) + U_\tau(a, b)`. With ``b``
    omitted the candidates are the anchors themselves; with ``exclude_self`` as well this is the
    empirical version of :math:`\mathbb{E}_x \log \mathbb{E}_{x^-} e^{f(x)^\top f(x^-)/\tau}`
    for :math:`x^-` drawn independently of :math:`x`.

    Args:
        a: anchors, shape ``(n, d)``.
        tau: temperature, ``> 0``.
        b: candidates, shape ``(m, d)``; default ``a``.
        exclude_self: drop candidate ``i`` from anchor ``i``'s mean (needs ``m >= n`` and
            ``m >= 2``).

    Returns:
        A 0-d tensor in ``[-1/tau, 1/tau]``.

    Raises:
        ValueError: on mismatched shapes, non-finite input, zero rows, ``tau <= 0``, or too few
            candidates for ``exclude_self``.
        TypeError: if an input is not numeric.

    Used in: :doc:`/book/representations/simcse`, eqs. :eq:`simcse-decomposition` and
    :eq:`simcse-jensen`.
    """
    import torch

    a = as_tensor(a, "a", ndim=2)
    b = a if b is None else b
    logits = cosine_logits(a, b, tau)
    n, m = logits.shape
    if not exclude_self:
        return (torch.logsumexp(logits, dim=1) - math.log(m)).mean()
    if m < max(n, 2):
        raise ValueError(f"exclude_self needs at least max(n, 2) = {max(n, 2)} candidates, "
                         f"got {m}")
    mask = torch.zeros(n, m, dtype=torch.bool, device=logits.device)
    mask[:, :n] = _self_mask(n, logits.device)
    logits = logits.masked_fill(mask, float("-inf"))
    return (torch.logsumexp(logits, dim=1) - math.log(m - 1)).mean()


def gram_mean(h: Any, exclude_self: bool = False) -> torch.Tensor:
    r"""Mean entry of the Gram matrix of the unit rows: the squared norm of their mean.

    With :math:`\hat h_i = h_i / \lVert h_i \rVert` and :math:`G = \hat H \hat H^\top`,

    .. math::

       \bar G = \frac{1}{m^2} \sum_{i,j} \hat h_i^\top \hat h_j
       = \Big\lVert \frac{1}{m} \sum_i \hat h_i \Big\rVert^2, \qquad
       \bar G_{\ne} = \frac{1}{m(m-1)} \sum_{i \ne j} \hat h_i^\top \hat h_j
       = \frac{m \bar G - 1}{m - 1} .

    By Jensen's inequality, :math:`\bar G / \tau \le U_\tau(h)` and
    :math:`\bar G_{\ne} / \tau \le U_\tau(h)` with ``exclude_self`` in both
    (:func:`log_mean_exp_similarity`); and :math:`\bar G \le \lambda_{\max}(G)/m`
    (:func:`top_eigenvalue_share`), from the Rayleigh quotient at :math:`\mathbf{1}/\sqrt m`.

    Args:
        h: shape ``(m, d)`` (``m >= 2`` with ``exclude_self``).
        exclude_self: average over the off-diagonal entries :math:`i \ne j` only.

    Returns:
        :math:`\bar G` (in ``[0, 1]``), or with ``exclude_self``
        :math:`\bar G_{\ne}` (in ``[-1/(m-1), 1]``), as a 0-d tensor.

    Raises:
        ValueError: on non-2-D or non-finite input, a zero row, or one row with
            ``exclude_self``.
        TypeError: if ``h`` is not numeric.

    Used in: :doc:`/book/representations/simcse`, eq. :eq:`simcse-jensen`.
    """
    h = as_tensor(h, "h", ndim=2)
    g = cosine_logits(h, h, 1.0)
    if not exclude_self:
        return g.mean()
    m = check_count(h.shape[0], "number of rows of h", minimum=2)
    return g.masked_fill(_self_mask(m, g.device), 0.0).sum() / (m * (m - 1))


def top_eigenvalue_share(h: Any) -> torch.Tensor:
    r"""Share of the largest eigenvalue in the Gram matrix of the unit rows (anisotropy).

    .. math::

       \rho_{\max} = \frac{\lambda_{\max}(G)}{\operatorname{tr} G}
       = \frac{\lambda_{\max}(G)}{m}, \qquad G = \hat H \hat H^\top .

    It equals :math:`1/\min(m, d)` at best (a perfectly even spread) and 1 when all rows are
    parallel. Computed from the :math:`d \times d` matrix :math:`\hat H^\top \hat H`, which has
    the same nonzero eigenvalues.

    Args:
        h: shape ``(m, d)``.

    Returns:
        A 0-d tensor in ``(0, 1]``.

    Raises:
        ValueError: on non-2-D or non-finite input or a zero row.
        TypeError: if ``h`` is not numeric.

    Used in: :doc:`/book/representations/simcse`, eq. :eq:`simcse-jensen`.
    """
    import torch

    h = as_tensor(h, "h", ndim=2)
    norms = h.norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        raise ValueError(f"h has a zero row (index {int(norms.argmin())}); "
                         "its direction is undefined")
    u = h / norms
    return torch.linalg.eigvalsh(u.T @ u)[-1] / h.shape[0]
