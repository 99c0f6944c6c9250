r"""Exposure bias in locally normalised sequence models: margins, beam search, the post's toy.

Cross-entropy on logits :math:`x \in \mathbb R^n` with target :math:`t` is
:math:`\operatorname{LSE}(x) - x_t`, and :math:`\max_i x_i \le \operatorname{LSE}(x) \le \max_i x_i
+ \log n` (:func:`logsumexp_gap`); written with the margin :math:`m = x_t - \max_{i \ne t} x_i`
(:func:`target_margin`) it is a soft hinge (:func:`cross_entropy_margin_bounds`).

A *locally normalised* model of sequences of length :math:`L` over :math:`V` tokens is a table of
next-token distributions, one per prefix. We store it as a list ``tables`` of :math:`L`
log-probability tensors, ``tables[t]`` of shape ``(B, V**t, V)`` for ``B`` independent models; row
``c`` of ``tables[t]`` is the distribution after the prefix whose base-:math:`V` code is ``c``
(first token most significant). :func:`random_local_model` draws such tables, :func:`table_logprob`
scores sequences, :func:`greedy_tables`, :func:`beam_search_tables` and :func:`brute_force_tables`
decode them, and :func:`beam_search` is the generic, batched beam search that
:func:`beam_search_tables` and the GRU decoder of :mod:`kexue_notes.sequences.char_decoder` share.
:func:`two_step_model` builds the post's length-2 toy from :math:`(p(a), p(b\mid a), p(d\mid c))`
and :func:`beam2_beats_greedy_region` is the derived region where greedy search finds the target and
beam size 2 does not.

:func:`random_replace` is the post's remedy: replace decoder inputs at random by tokens drawn from a
pool (the target sequence, as the post describes it, or the whole input, as its code does).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from kexue_notes._validate import as_tensor, check_count, check_fraction, check_positive

__all__ = [  # noqa: RUF022 -- in the order the module reads
    "logsumexp_gap",
    "target_margin",
    "cross_entropy_margin_bounds",
    "random_local_model",
    "two_step_model",
    "table_logprob",
    "greedy_tables",
    "beam_search",
    "beam_search_tables",
    "brute_force_tables",
    "beam2_beats_greedy_region",
    "random_replace",
]

State = Tensor | tuple[Tensor, ...]
StepFn = Callable[[Any, Tensor, int], tuple[Tensor, Any]]


def _check_generator(generator: object) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return generator


def _check_long(x: object, name: str, ndim: int | None = None) -> Tensor:
    if not isinstance(x, Tensor) or x.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name} must be an integer tensor (int64), got "
                        f"{getattr(x, 'dtype', type(x).__name__)}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {tuple(x.shape)}")
    return x.long()


# --- cross-entropy as a soft max-margin ----------------------------------------------------------

def logsumexp_gap(logits: Tensor) -> Tensor:
    r"""How far the log-sum-exp lies above the maximum: :math:`\operatorname{LSE}(x) - \max_i x_i`.

    .. math::

       \operatorname{LSE}(x) - \max_i x_i = \log \sum_i e^{x_i - \max_j x_j} \in [0, \log n],

    zero in the limit where one entry dominates, :math:`\log n` when all entries are equal.

    Args:
        logits: shape ``(..., n)``.

    Returns:
        Shape ``(...)``.

    Raises:
        ValueError: if ``logits`` is 0-d or holds NaN or infinity.

    Used in: :doc:`/book/sequences/seq2seq-exposure-bias`, eq. :eq:`eb-lse-bounds`.
    """
    logits = as_tensor(logits, "logits")
    if logits.ndim == 0:
        raise ValueError("logits must have at least one axis (the classes), got a scalar")
    return torch.logsumexp(logits, dim=-1) - logits.amax(dim=-1)


def target_margin(logits: Tensor, target: Tensor) -> Tensor:
    r"""The margin of the target class: :math:`m = x_t - \max_{i \ne t} x_i`.

    Positive exactly when the target is the unique arg-max.

    Args:
        logits: shape ``(..., n)`` with ``n >= 2``.
        target: integer tensor of shape ``(...)``, values in ``[0, n)``.

    Returns:
        Shape ``(...)``.

    Raises:
        ValueError: if the shapes disagree, ``n < 2`` or a target is out of range.
        TypeError: if ``target`` is not an integer tensor.

    Used in: :doc:`/book/sequences/seq2seq-exposure-bias`, eq. :eq:`eb-ce-margin`.
    """
    logits = as_tensor(logits, "logits")
    target = _check_long(target, "target")
    if logits.ndim == 0 or logits.shape[-1] < 2:
        raise ValueError(f"logits must have a last axis of at least 2 classes, got shape "
                         f"{tuple(logits.shape)}")
    if target.shape != logits.shape[:-1]:
        raise ValueError(f"target must have shape {tuple(logits.shape[:-1])}, got "
                         f"{tuple(target.shape)}")
    n = logits.shape[-1]
    if bool(((target < 0) | (target >= n)).any()):
        raise ValueError(f"target must hold class indices in [0, {n})")
    x_t = logits.gather(-1, target[..., None]).squeeze(-1)
    others = logits.scatter(-1, target[..., None], float("-inf"))
    return x_t - others.amax(dim=-1)


def cross_entropy_margin_bounds(margin: Tensor, n: int) -> tuple[Tensor, Tensor]:
    r"""Bounds on the cross-entropy of a target with margin :math:`m` among :math:`n` classes.

    .. math::

       \log\bigl(1 + e^{-m}\bigr) \;\le\; -\log p_t \;\le\; \log\bigl(1 + (n-1)\,e^{-m}\bigr),

    computed as ``logaddexp(0, -m)`` and ``logaddexp(0, log(n-1) - m)``, exact to round-off for
    every :math:`m` (``softplus`` would be off by up to :math:`e^{-20}` beyond its threshold). Both
    tend to :math:`\max(0, -m)` far from
    :math:`m = 0`: cross-entropy is a soft hinge on the margin that keeps rewarding :math:`m > 0`.

    Args:
        margin: the margin :math:`m` (:func:`target_margin`), any shape.
        n: the number of classes, at least 2.

    Returns:
        ``(lower, upper)``, each of the shape of ``margin``.

    Raises:
        ValueError: if ``n < 2`` or ``margin`` is not finite.
        TypeError: if ``n`` is not an integer.

    Used in: :doc:`/book/sequences/seq2seq-exposure-bias`, eq. :eq:`eb-ce-margin`.
    """
    margin = as_tensor(margin, "margin")
    n = check_count(n, "n", minimum=2)
    # log(1 + e^u) = logaddexp(0, u): exact to round-off for every u (torch's softplus switches to
    # the identity above u = 20, an absolute error of up to e^-20 = 2e-9)
    zero = torch.zeros_like(margin)
    return torch.logaddexp(zero, -margin), torch.logaddexp(zero, math.log(n - 1) - margin)


# --- locally normalised table models -------------------------------------------------------------

def _check_tables(tables: Sequence[Tensor]) -> tuple[int, int, int]:
    """Validate a table model; return (B, V, L)."""
    if isinstance(tables, Tensor) or not isinstance(tables, Sequence) or len(tables) == 0:
        raise ValueError("tables must be a non-empty list of log-probability tensors")
    first = tables[0]
    if not isinstance(first, Tensor) or first.ndim != 3 or first.shape[1] != 1:
        raise ValueError(f"tables[0] must have shape (B, 1, V), got "
                         f"{tuple(getattr(first, 'shape', ()))}")
    B, _, V = first.shape
    for t, tab in enumerate(tables):
        if not isinstance(tab, Tensor) or tuple(tab.shape) != (B, V**t, V):
            raise ValueError(f"tables[{t}] must have shape ({B}, {V**t}, {V}), got "
                             f"{tuple(getattr(tab, 'shape', ()))}")
        if not bool(torch.isfinite(tab).all()):
            raise ValueError(f"tables[{t}] must be finite log-probabilities")
        if not torch.allclose(tab.exp().sum(-1), torch.ones((), dtype=tab.dtype), atol=1e-6):
            raise ValueError(f"tables[{t}] must be log-probabilities that sum to 1 over the "
                             "last axis")
    return B, V, len(tables)


def random_local_model(n_models: int, vocab: int, length: int, scale: float,
                       generator: torch.Generator,
                       dtype: torch.dtype = torch.float64) -> list[Tensor]:
    r"""Random locally normalised models: every next-token distribution is a softmax of Gaussian
    logits.

    .. math::

       \log p(\cdot \mid y_{<t}) = \operatorname{log\,softmax}(s\, z_{y_{<t}}), \qquad
       z_{y_{<t}} \sim \mathcal N(0, I_V) \text{ independently for every prefix},

    so the scale :math:`s` sets how peaked the distributions are.

    Args:
        n_models: the number :math:`B` of independent models.
        vocab: the vocabulary size :math:`V \ge 2`.
        length: the sequence length :math:`L \ge 1`; ``vocab**length`` must not exceed :math:`10^6`.
        scale: the logit scale :math:`s > 0`.
        generator: the source of randomness.
        dtype: floating dtype of the tables.

    Returns:
        ``tables``, a list of :math:`L` tensors, ``tables[t]`` of shape ``(B, V**t, V)``.

    Raises:
        ValueError: if a size is out of range or ``scale`` is not positive.
        TypeError: if ``generator`` is not a ``torch.Generator``.

    Used in: :doc:`/book/sequences/seq2seq-exposure-bias`, eq. :eq:`eb-local`.
    """
    n_models = check_count(n_models, "n_models")
    vocab = check_count(vocab, "vocab", minimum=2)
    length = check_count(length, "length")
    scale = check_positive(scale, "scale")
    generator = _check_generator(generator)
    if vocab**length > 10**6:
        raise ValueError(f"vocab**length must be <= 1e6, got {vocab}**{length}")
    return [torch.log_softmax(scale * torch.randn(n_models, vocab**t, vocab, generator=generator,
                                                  dtype=dtype), dim=-1)
            for t in range(length)]


def two_step_model(p_a: Any, p_b_given_a: Any, p_d_given_c: Any) -> list[Tensor]:
    r"""The post's length-2 toy as a table model, one model per entry of the arguments.

    Tokens are numbered 0 and 1 at each step: :math:`a = 0, c = 1` first, :math:`b = 0, d = 1`
    second, so the target :math:`(a, b)` is the sequence ``(0, 0)``:

    .. math::

       p(y_1) = (p_a,\ 1 - p_a), \qquad
       p(y_2 \mid a) = (p_{b\mid a},\ 1 - p_{b\mid a}), \qquad
       p(y_2 \mid c) = (1 - p_{d\mid c},\ p_{d\mid c}).

    Args:
        p_a: :math:`p(a)`, shape ``(B,)`` (or a number), values in :math:`(0, 1)`.
        p_b_given_a: :math:`p(b \mid a)`, same shape.
        p_d_given_c: :math:`p(d \mid c)`, same shape.

    Returns:
        ``tables`` of shapes ``(B, 1, 2)`` and ``(B, 2, 2)``, float64 log-probabilities.

    Raises:
        ValueError: if an argument lies outside :math:`(0, 1)` or the shapes differ.

    Used in: :doc:`/book/sequences/seq2seq-exposure-bias`, eq. :eq:`eb-region`.
    """
    probs = []
    for name, value in (("p_a", p_a), ("p_b_given_a", p_b_given_a), ("p_d_given_c", p_d_given_c)):
        x = as_tensor(value, name).to(torch.float64).reshape(-1)
        if bool(((x <= 0) | (x >= 1)).any()):
            raise ValueError(f"{name} must lie in (0, 1)")
        probs.append(x)
    u, v, w = probs
    if not u.shape == v.shape == w.shape:
        raise ValueError(f"p_a, p_b_given_a and p_d_given_c must have one shape, got "
                         f"{tuple(u.shape)}, {tuple(v.shape)}, {tuple(w.shape)}")
    first = torch.stack([u, 1 - u], -1)[:, None, :]
    second = torch.stack([torch.stack([v, 1 - v], -1), torch.stack([1 - w, w], -1)], 1)
    return [first.log(), second.log()]


def _codes(seqs: Tensor, V: int) -> list[Tensor]:
    """Prefix codes of every prefix of seqs (..., L): codes[t] is the code of seqs[..., :t]."""
    codes = [torch.zeros(seqs.shape[:-1], dtype=torch.long)]
    for t in range(seqs.shape[-1] - 1):
        codes.append(codes[-1] * V + seqs[..., t])
    return codes


def table_logprob(tables: Sequence[Tensor], seqs: Tensor) -> Tensor:
    r"""Joint log-probability of sequences under table models.

    .. math::

       \log p(y) = \sum_{t=1}^{L} \log p(y_t \mid y_{<t}).

    Args:
        tables: a table model (see the module docstring), ``B`` models.
        seqs: integer tensor ``(B, L)`` or ``(B, K, L)``, values in ``[0, V)``.

    Returns:
        Shape ``(B,)`` or ``(B, K)``.

    Raises:
        ValueError: if ``tables`` is malformed or ``seqs`` has the wrong shape or values.
        TypeError: if ``seqs`` is not an integer tensor.

    Used in: :doc:`/book/sequences/seq2seq-exposure-bias`, eq. :eq:`eb-local`.
    """
    B, V, L = _check_tables(tables)
    seqs = _check_long(seqs, "seqs")
    squeeze = seqs.ndim == 2
    if squeeze:
        seqs = seqs[:, None, :]
    if seqs.ndim != 3 or seqs.shape[0] != B or seqs.shape[2] != L:
        raise ValueError(f"seqs must have shape ({B}, {L}) or ({B}, K, {L}), got "
                         f"{tuple(seqs.shape)}")
    if bool(((seqs < 0) | (seqs >= V)).any()):
        raise ValueError(f"seqs must hold tokens in [0, {V})")
    codes = _codes(seqs, V)
    total = torch.zeros(seqs.shape[:2], dtype=tables[0].dtype)
    for t in range(L):
        rows = tables[t].gather(1, codes[t][..., None].expand(-1, -1, V))   # (B, K, V)
        total = total + rows.gather(-1, seqs[..., t:t + 1]).squeeze(-1)
    return total[:, 0] if squeeze else total


def greedy_tables(tables: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    r"""Greedy decoding of table models: the arg-max token at every step, given the tokens so far.

    .. math::

       \hat y_t = \arg\max_{y} p(y \mid \hat y_{<t}) .

    Written as its own loop (not as a beam of size 1) so the two can check each other.

    Args:
        tables: a table model, ``B`` models.

    Returns:
        ``(seqs, logp)``: the greedy sequences ``(B, L)`` and their joint log-probabilities
            ``(B,)``.

    Raises:
        ValueError: if ``tables`` is malformed.

    Used in: :doc:`/book/sequences/seq2seq-exposure-bias`, eq. :eq:`eb-local`.
    """
    B, V, L = _check_tables(tables)
    code = torch.zeros(B, dtype=torch.long)
    rows = torch.arange(B)
    toks, logp = [], torch.zeros(B, dtype=tables[0].dtype)
    for t in range(L):
        dist = tables[t][rows, code]                 # (B, V)
        best = dist.argmax(-1)
        logp = logp + dist[rows, best]
        toks.append(best)
        code = code * V + best
    return torch.stack(toks, -1), logp


def _take(state: State, rows: Tensor, cols: Tensor) -> State:
    if isinstance(state, tuple):
        return tuple(s[rows, cols] for s in state)
    return state[rows, cols]


def beam_search(step_fn: StepFn, first_logp: Tensor, state: State, beam: int, max_len: int,
                eos: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
    r"""Batched beam search over a locally normalised model, scored by the joint log-probability.

    Keeps, after every step, the ``beam`` prefixes :math:`y_{\le t}` with the largest
    :math:`\sum_{s \le t} \log p(y_s \mid y_{<s})` among all one-token extensions of the kept ones
    (no length normalisation). With ``eos``, a hypothesis that has emitted it is finished: it
    keeps its
    score, is padded with ``eos`` and competes with the unfinished ones; the search stops when all
    are finished or after ``max_len`` tokens. A beam of 1 is greedy search; a beam of at least
    :math:`V^{L-1}` on sequences of length :math:`L` prunes nothing and is exact.

    Args:
        step_fn: ``step_fn(state, tokens, t) -> (logp, state)``: given the decoder state of each
            hypothesis (leading axes ``(B, k)``), the last tokens ``(B, k)`` and the number ``t`` of
            tokens generated so far, the log-probabilities ``(B, k, V)`` of the next token and the
            new state.
        first_logp: log-probabilities of the first token, shape ``(B, V)``.
        state: the decoder state before the first token, a tensor (or tuple of tensors) with
            leading axis ``B``; hypotheses inherit it.
        beam: the beam size, at least 1.
        max_len: the largest number of tokens generated, at least 1.
        eos: the end-of-sequence token, or ``None`` for fixed-length sequences.

    Returns:
        ``(seqs, scores, finished)``: tokens ``(B, k, T)`` with ``k = min(beam, ...)`` and
        ``T <= max_len``, joint log-probabilities ``(B, k)`` sorted in decreasing order, and whether
        each hypothesis emitted ``eos`` ``(B, k)`` (all ``False`` without ``eos``).

    Raises:
        ValueError: if ``first_logp`` is not 2-D and finite-or-minus-infinity, ``eos`` is out of
            range, or ``step_fn`` returns the wrong shape.
        TypeError: if ``beam`` or ``max_len`` is not an integer.

    Used in: :doc:`/book/sequences/seq2seq-exposure-bias`, eq. :eq:`eb-local`.
    """
    beam = check_count(beam, "beam")
    max_len = check_count(max_len, "max_len")
    if not isinstance(first_logp, Tensor) or first_logp.ndim != 2:
        raise ValueError(f"first_logp must be a 2-D tensor (B, V), got "
                         f"{tuple(getattr(first_logp, 'shape', ()))}")
    if bool(torch.isnan(first_logp).any()):
        raise ValueError("first_logp must not hold NaN")
    B, V = first_logp.shape
    if eos is not None:
        eos = check_count(eos, "eos", minimum=0)
        if eos >= V:
            raise ValueError(f"eos must be a token in [0, {V}), got {eos}")
    rows = torch.arange(B)[:, None]
    k = min(beam, V)
    scores, tok = first_logp.topk(k, dim=-1)
    parent = torch.zeros(B, k, dtype=torch.long)
    state = _take(tuple(s[:, None] for s in state) if isinstance(state, tuple) else state[:, None],
                  rows, parent)
    seqs = tok[..., None]
    finished = tok == eos if eos is not None else torch.zeros(B, k, dtype=torch.bool)
    for t in range(1, max_len):
        if eos is not None and bool(finished.all()):
            break
        logp, state = step_fn(state, tok, t)
        if not isinstance(logp, Tensor) or tuple(logp.shape) != (B, tok.shape[1], V):
            raise ValueError(f"step_fn must return log-probabilities of shape "
                             f"({B}, {tok.shape[1]}, {V}), got {tuple(getattr(logp, 'shape', ()))}")
        if eos is not None:
            pad = torch.full((V,), float("-inf"), dtype=logp.dtype)
            pad[eos] = 0.0
            logp = torch.where(finished[..., None], pad, logp)
        cand = (scores[..., None] + logp).reshape(B, -1)
        scores, idx = cand.topk(min(beam, cand.shape[1]), dim=-1)
        parent, tok = idx // V, idx % V
        seqs = torch.cat([seqs[rows, parent], tok[..., None]], dim=-1)
        state = _take(state, rows, parent)
        finished = finished[rows, parent]
        if eos is not None:
            finished = finished | (tok == eos)
    return seqs, scores, finished


def beam_search_tables(tables: Sequence[Tensor], beam: int) -> tuple[Tensor, Tensor]:
    r"""Beam search on table models (:func:`beam_search` with the tables as the step function).

    Args:
        tables: a table model, ``B`` models, sequences of length ``L``.
        beam: the beam size.

    Returns:
        ``(seqs, scores)``: the kept hypotheses ``(B, k, L)`` and their joint log-probabilities
        ``(B, k)``, best first; ``seqs[:, 0]`` is the decoded sequence.

    Raises:
        ValueError: if ``tables`` is malformed.
        TypeError: if ``beam`` is not an integer.

    Used in: :doc:`/book/sequences/seq2seq-exposure-bias`, eq. :eq:`eb-local`.
    """
    B, V, L = _check_tables(tables)

    def step(code: Tensor, tok: Tensor, t: int) -> tuple[Tensor, Tensor]:
        code = code * V + tok
        return tables[t].gather(1, code[..., None].expand(-1, -1, V)), code

    seqs, scores, _ = beam_search(step, tables[0][:, 0], torch.zeros(B, dtype=torch.long), beam, L)
    return seqs, scores


def brute_force_tables(tables: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    r"""Exact decoding of table models by scoring all :math:`V^L` sequences.

    .. math::

       \hat y = \arg\max_{y \in \{0..V-1\}^L} \sum_t \log p(y_t \mid y_{<t}),

    computed by broadcasting the tables along every path (no search).

    Args:
        tables: a table model, ``B`` models.

    Returns:
        The tuple ``(best, best_logp, all_logp)``, with the best sequences ``(B, L)``, their
        log-probabilities ``(B,)``, and the log-probabilities of all sequences ``(B, V**L)`` indexed
        by their base-V code.

    Raises:
        ValueError: if ``tables`` is malformed.

    Used in: :doc:`/book/sequences/seq2seq-exposure-bias`, eq. :eq:`eb-local`.
    """
    B, V, L = _check_tables(tables)
    joint = tables[0][:, 0]
    for t in range(1, L):
        joint = (joint[..., None] + tables[t]).reshape(B, -1)
    best_logp, code = joint.max(dim=-1)
    digits = []
    for _ in range(L):
        digits.append(code % V)
        code = code // V
    return torch.stack(digits[::-1], -1), best_logp, joint


def beam2_beats_greedy_region(p_a: Any, p_b_given_a: Any, p_d_given_c: Any) -> Tensor:
    r"""Where, in the post's length-2 toy, greedy search returns the target and beam size 2 does
    not.

    With :math:`u = p(a)`, :math:`v = p(b\mid a)`, :math:`w = p(d \mid c)` (two tokens per step):

    .. math::

       u > \tfrac12, \qquad v > \tfrac12, \qquad (1 - u)\max(w, 1 - w) > u v ,

    greedy finds :math:`(a, b)` (first two conditions) and beam 2, which here is exact, finds
    :math:`(c, d)` (if :math:`w > 1/2`) or :math:`(c, b)` (if :math:`w < 1/2`).

    Args:
        p_a: :math:`u`, any shape, values in :math:`[0, 1]`.
        p_b_given_a: :math:`v`, broadcastable with ``p_a``.
        p_d_given_c: :math:`w`, broadcastable with ``p_a``.

    Returns:
        A boolean tensor of the broadcast shape.

    Raises:
        ValueError: if an argument lies outside :math:`[0, 1]` or holds NaN.

    Used in: :doc:`/book/sequences/seq2seq-exposure-bias`, eq. :eq:`eb-region`.
    """
    vals = []
    for name, value in (("p_a", p_a), ("p_b_given_a", p_b_given_a), ("p_d_given_c", p_d_given_c)):
        x = as_tensor(value, name)
        if bool(((x < 0) | (x > 1)).any()):
            raise ValueError(f"{name} must lie in [0, 1]")
        vals.append(x)
    u, v, w = vals
    return (u > 0.5) & (v > 0.5) & ((1 - u) * torch.maximum(w, 1 - w) > u * v)


# --- the post's remedy ---------------------------------------------------------------------------

def random_replace(tokens: Tensor, replace_mask: Tensor, generator: torch.Generator, *,
                   pool_mask: Tensor | None = None, p_apply: float = 0.5,
                   rate: float = 0.3) -> Tensor:
    r"""Random replacement of decoder inputs, the post's remedy for exposure bias.

    Each sequence is left alone with probability :math:`1 - p_{\text{apply}}`; otherwise every
    position with ``replace_mask`` is replaced, independently with probability ``rate``, by a token
    drawn uniformly (with replacement) from the positions of the same sequence with ``pool_mask``:

    .. math::

       \tilde x_j = \begin{cases} x_{J} & \text{with probability } p_{\text{apply}}\cdot r,\
       J \sim \mathcal U\{i : \text{pool}_i\}\\ x_j & \text{otherwise}\end{cases}
       \qquad (j \text{ with replace\_mask}).

    The post describes the pool as the target sequence (``pool_mask = replace_mask``, the default);
    the code linked from the post draws from the whole input, source and special tokens included.
    Only the inputs change: the loss still uses the true next tokens.

    Args:
        tokens: integer tensor ``(N, T)``.
        replace_mask: boolean ``(N, T)``, the positions that may be replaced (decoder inputs).
        generator: the source of randomness.
        pool_mask: boolean ``(N, T)``, the positions whose tokens are drawn; default
            ``replace_mask``. A sequence with an empty pool is left alone.
        p_apply: the probability that a sequence is perturbed at all (0.5 in the post).
        rate: the replacement probability of each maskable position (0.3 in the post).

    Returns:
        The perturbed tokens, ``(N, T)``; ``tokens`` itself is not modified.

    Raises:
        ValueError: if the shapes differ or ``p_apply``/``rate`` lie outside :math:`[0, 1]`.
        TypeError: if ``tokens`` is not an integer tensor, a mask is not boolean, or ``generator``
            is not a ``torch.Generator``.

    Used in: :doc:`/book/sequences/seq2seq-exposure-bias`, eq. :eq:`eb-replace`.
    """
    tokens = _check_long(tokens, "tokens", ndim=2)
    generator = _check_generator(generator)
    p_apply = check_fraction(p_apply, "p_apply")
    rate = check_fraction(rate, "rate")
    masks = []
    for name, m in (("replace_mask", replace_mask),
                    ("pool_mask", replace_mask if pool_mask is None else pool_mask)):
        if not isinstance(m, Tensor) or m.dtype != torch.bool:
            raise TypeError(f"{name} must be a boolean tensor, got "
                            f"{getattr(m, 'dtype', type(m).__name__)}")
        if m.shape != tokens.shape:
            raise ValueError(f"{name} must have shape {tuple(tokens.shape)}, got {tuple(m.shape)}")
        masks.append(m)
    replace_mask, pool = masks
    N, T = tokens.shape
    apply = torch.rand(N, generator=generator) < p_apply
    hit = (torch.rand(N, T, generator=generator) < rate) & replace_mask & apply[:, None]
    has_pool = pool.any(dim=1)
    weights = torch.where(has_pool[:, None], pool.double(), torch.ones(N, T, dtype=torch.float64))
    src = torch.multinomial(weights, T, replacement=True, generator=generator)
    hit = hit & has_pool[:, None]
    return torch.where(hit, tokens.gather(1, src), tokens)
