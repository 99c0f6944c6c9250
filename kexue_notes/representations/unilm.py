r"""The UniLM sequence-to-sequence attention mask and the batch layout of SimBERT.

A UniLM input is one sequence ``[CLS] A [SEP] B [SEP]`` with segment ids :math:`s_k = 0` on the
source part A and :math:`s_k = 1` on the target part B. Its attention mask lets every token see all
of A, and lets a token of B see, in addition, the tokens of B up to itself. With the running count
:math:`c_k = \sum_{m \le k} s_m` of target tokens this is a single comparison,

.. math::

   M_{ij} = [\, c_j \le c_i \,],

so tokens of A encode A alone (the vector at ``[CLS]`` is a sentence vector of A) while B is
predicted left to right. SimBERT trains both halves at once: every pair of similar sentences
:math:`(a_k, b_k)` enters the batch twice, as ``a → b`` and ``b → a``, and the ``[CLS]`` vectors of
the batch feed an in-batch softmax (:func:`kexue_notes.contrastive.info_nce_loss`) whose target
for each row is the row of its partner.

The module reads: the mask from segment ids, and the same mask as an additive bias for attention
scores. The batch layout (:func:`kexue_notes.contrastive.interleave_pairs`,
:func:`kexue_notes.contrastive.partner_targets`) and the loss live in
:mod:`kexue_notes.contrastive`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from kexue_notes._validate import is_tensor

if TYPE_CHECKING:
    import torch

__all__ = [  # noqa: RUF022 -- in the order of the method, as the module reads
    "unilm_mask",
    "unilm_attention_bias",
]


def _segment_ids(segment_ids: Any) -> torch.Tensor:
    """A ``(..., L)`` integer tensor of 0s then 1s along the last axis, ``L >= 1``."""
    import torch

    if isinstance(segment_ids, str | bytes) or segment_ids is None:
        raise TypeError(f"segment_ids must be an array of 0/1 integers, "
                        f"got {type(segment_ids).__name__}")
    if not is_tensor(segment_ids):
        arr = np.asarray(segment_ids)
        if arr.dtype.kind not in "biu":
            raise TypeError(f"segment_ids must hold integers (0 for A, 1 for B), "
                            f"got dtype {arr.dtype}")
        segment_ids = torch.as_tensor(arr.astype(np.int64))
    s = segment_ids
    if s.dtype.is_floating_point or s.dtype.is_complex:
        raise TypeError(f"segment_ids must hold integers (0 for A, 1 for B), got dtype {s.dtype}")
    if s.ndim == 0 or s.shape[-1] == 0:
        raise ValueError(f"segment_ids must have shape (..., L) with L >= 1, got {tuple(s.shape)}")
    s = s.long()
    if bool(((s != 0) & (s != 1)).any()):
        raise ValueError("segment_ids must hold only 0 (source A) and 1 (target B)")
    if bool((s[..., 1:] < s[..., :-1]).any()):
        raise ValueError("segment_ids must be non-decreasing along the last axis: "
                         "all of segment A (0) before all of segment B (1)")
    return s


def unilm_mask(segment_ids: Any) -> torch.Tensor:
    r"""The UniLM seq2seq attention mask: who may attend to whom, from the segment ids.

    With :math:`c = \mathrm{cumsum}(s)` along the sequence,

    .. math::

       M_{ij} = [\, c_j \le c_i \,]
       = \begin{cases} 1 & j \in A, \\ 1 & i, j \in B,\ j \le i, \\
         0 & \text{otherwise.} \end{cases}

    Row :math:`i` is the query, column :math:`j` the key. An all-zero row of segment ids gives a
    fully bidirectional mask (BERT), an all-one row a causal mask (a left-to-right language model).

    Args:
        segment_ids: shape ``(..., L)``, integers, 0 on segment A and 1 on segment B, with all 0s
            before all 1s; NumPy array, list or torch tensor.

    Returns:
        A boolean tensor of shape ``(..., L, L)``, ``True`` where query ``i`` may attend to key
        ``j`` (the convention of ``torch.nn.functional.scaled_dot_product_attention``; note that
        ``torch.nn.MultiheadAttention`` uses the opposite one for boolean masks).

    Raises:
        TypeError: if ``segment_ids`` are not integers.
        ValueError: if ``segment_ids`` are empty, hold values other than 0 and 1, or a 1 comes
            before a 0.

    Used in: :doc:`/book/representations/simbert-unilm`, eq. :eq:`unilm-mask`.
    """
    c = _segment_ids(segment_ids).cumsum(dim=-1)
    return c.unsqueeze(-2) <= c.unsqueeze(-1)


def unilm_attention_bias(segment_ids: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
    r"""The UniLM mask as an additive attention bias: 0 if allowed, :math:`-\infty` if not.

    .. math::

       b_{ij} = \begin{cases} 0 & M_{ij} = 1, \\ -\infty & M_{ij} = 0, \end{cases}
       \qquad \mathrm{softmax}_j(z_{ij} + b_{ij})
       = \frac{M_{ij}\, e^{z_{ij}}}{\sum_k M_{ik}\, e^{z_{ik}}} .

    The diagonal is always allowed (:math:`c_i \le c_i`), so no row is all :math:`-\infty` and the
    softmax never divides by zero. An additive float mask means the same thing to
    ``torch.nn.MultiheadAttention``, ``scaled_dot_product_attention`` and Hugging Face models.

    Args:
        segment_ids: as in :func:`unilm_mask`, shape ``(..., L)``.
        dtype: a floating torch dtype; float64 by default.

    Returns:
        A tensor of shape ``(..., L, L)``.

    Raises:
        TypeError: if ``segment_ids`` are not integers or ``dtype`` is not a floating dtype.
        ValueError: as :func:`unilm_mask`.

    Used in: :doc:`/book/representations/simbert-unilm`, eq. :eq:`unilm-mask`.
    """
    import torch

    dtype = torch.float64 if dtype is None else dtype
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch dtype, got {dtype!r}")
    allowed = unilm_mask(segment_ids)
    bias = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return bias.masked_fill(~allowed, float("-inf"))
