r"""Token-level pre-training objectives that replace MLM's vocabulary-wide softmax by a small head.

Yamaguchi et al. (EMNLP 2021) pre-train an encoder on one of five token-level classification tasks
instead of masked language modelling (MLM). The label schemes here follow the authors' public data
collators (``gucci-j/light-transformer-emnlp2021``, ``src/model/data_collator.py``), adapted from
RoBERTa's byte-level pieces to BERT's word pieces (a continuation piece ``##xy`` is read as ``xy``):

===================  =====  ==============================================================
objective            K      label of a position
===================  =====  ==============================================================
Shuffle              2      selected with probability ``p`` and given the token at
                            ``pi(i)`` for one uniform permutation ``pi`` of the positions
Random               2      selected with probability ``p`` and given a uniform random id
Shuffle+Random       3      0 original, 1 shuffled (prob. ``p``), 2 random (prob. ``p(1-p)``)
Token Type           4      of a masked token: 0 content, 1 stop word, 2 digit, 3 punctuation
First Char           29     of a masked token: 0-25 its first letter, 26 punctuation,
                            27 digit, 28 anything else
===================  =====  ==============================================================

In the authors' Shuffle and Random collators a selected position whose new token is special (or,
for Shuffle, is the token it already had) keeps its original token but is still labelled as changed;
the functions here do the same, and :func:`shuffle_noop_rate` and :func:`random_noop_rate` count how
often. Two differences from that code: it draws one Shuffle permutation per batch (shared by the
rows), these functions one per row, which leaves each row's statistics unchanged; and its
Shuffle+Random step does not put drawn special ids back, while :func:`shuffle_random_corrupt` does
(the labels are the same either way).

The module also holds the closed forms the page checks (derangements, label-prior entropies, head
sizes), a one- or two-layer encoder built from ``torch.nn.TransformerEncoderLayer``, its
pre-training loop and a frozen mean-pooled feature map for a linear probe.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from kexue_notes._validate import check_count, check_fraction, check_probabilities

if TYPE_CHECKING:
    import torch

__all__ = [
    "TinyEncoder",
    "class_frequencies",
    "corrupt",
    "derangement_probability",
    "encoder_parameter_count",
    "first_char_classes",
    "label_entropy",
    "mask_tokens",
    "output_head_cost",
    "pretrain",
    "random_corrupt",
    "random_noop_rate",
    "shuffle_corrupt",
    "shuffle_noop_rate",
    "shuffle_random_corrupt",
    "shuffle_random_prior",
    "token_type_classes",
]

#: Number of classes of each objective's head; MLM's is the vocabulary size, given at run time.
OBJECTIVES: dict[str, int | None] = {"mlm": None, "shuffle": 2, "random": 2,
                                     "shuffle_random": 3, "token_type": 4, "first_char": 29}
TOKEN_TYPE_CLASSES = ("content", "stop word", "digit", "punctuation")
FIRST_CHAR_CLASSES = (*"abcdefghijklmnopqrstuvwxyz", "punctuation", "digit", "other")
IGNORE = -100


# --- input checks ---------------------------------------------------------------------------------

def _as_ids(x: Any, name: str) -> torch.Tensor:
    import torch

    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor of token ids, got {type(x).__name__}")
    if x.dtype != torch.int64:
        raise TypeError(f"{name} must hold int64 token ids, got {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-dimensional (batch, length), got shape "
                         f"{tuple(x.shape)}")
    if x.numel() and int(x.min()) < 0:
        raise ValueError(f"{name} must hold non-negative ids, got minimum {int(x.min())}")
    return x


def _as_mask(x: Any, name: str, like: torch.Tensor) -> torch.Tensor:
    import torch

    if not isinstance(x, torch.Tensor) or x.dtype != torch.bool:
        raise TypeError(f"{name} must be a bool torch tensor")
    if x.shape != like.shape:
        raise ValueError(f"{name} must have the shape of ids {tuple(like.shape)}, got "
                         f"{tuple(x.shape)}")
    return x


def _as_special_ids(special_ids: Any, vocab_size: int) -> torch.Tensor:
    import torch

    ids = torch.as_tensor(list(special_ids), dtype=torch.int64)
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(f"special_ids must lie in [0, vocab_size={vocab_size})")
    return ids


def _check_generator(generator: Any) -> torch.Generator:
    import torch

    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return generator


# --- permutations ---------------------------------------------------------------------------------

def derangement_probability(k: int) -> float:
    r"""Probability that a uniform permutation of :math:`k` items has no fixed point.

    .. math::

       P_k = \frac{!k}{k!} = \sum_{j=0}^{k} \frac{(-1)^j}{j!} \;\xrightarrow[k\to\infty]{}\; e^{-1},

    summed exactly in rationals, then rounded once. ``k >= 0`` (``P_0 = 1``).

    Used in: :doc:`/book/classification/mlm-alternatives`, eq. :eq:`mlmalt-derangement`
    """
    from fractions import Fraction

    k = check_count(k, "k", minimum=0)
    total, term = Fraction(1), Fraction(1)
    for j in range(1, k + 1):
        term = term * Fraction(-1, j)
        total += term
    return float(total)


# --- corruptions and their labels -----------------------------------------------------------------

def _select(shape: torch.Size, rate: float, special: torch.Tensor,
            generator: torch.Generator) -> torch.Tensor:
    import torch

    draw = torch.rand(shape, generator=generator) < rate
    return draw & ~special


def shuffle_corrupt(ids: torch.Tensor, special: torch.Tensor, rate: float,
                    generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Shuffle corruption: each non-special position is selected with probability ``rate`` and
    takes the token at :math:`\pi(i)`, for one uniform permutation :math:`\pi` of the positions
    drawn per sequence (the authors draw one per batch). If :math:`w_{\pi(i)}` is special the
    original token stays.

    Args:
        ids: token ids, int64, shape ``(B, L)``.
        special: bool, shape ``(B, L)``, true at special positions (never selected).
        rate: selection probability :math:`p \in [0, 1]`.
        generator: the ``torch.Generator`` for the selection and the permutations.

    Returns:
        ``(corrupted, labels)``: int64 ``(B, L)`` and bool ``(B, L)``, the label being "selected",
        whether or not the token changed (as in the authors' collator).

    Used in: :doc:`/book/classification/mlm-alternatives`, eq. :eq:`mlmalt-shuffle-noop`
    """
    import torch

    ids = _as_ids(ids, "ids")
    special = _as_mask(special, "special", ids)
    rate = check_fraction(rate, "rate")
    generator = _check_generator(generator)
    b, length = ids.shape
    perm = torch.argsort(torch.rand(b, length, generator=generator), dim=1)
    moved = torch.gather(ids, 1, perm)
    moved_special = torch.gather(special, 1, perm)
    moved = torch.where(moved_special, ids, moved)
    selected = _select(ids.shape, rate, special, generator)
    return torch.where(selected, moved, ids), selected


def shuffle_noop_rate(ids: torch.Tensor, special: torch.Tensor) -> torch.Tensor:
    r"""Expected fraction of Shuffle-selected positions whose token does not change, per sequence.

    A selected position :math:`i` with token :math:`w` keeps it when :math:`\pi(i)` holds the same
    token (:math:`\pi(i) = i` included) or a special one. With :math:`n_w` the count of :math:`w`
    among the :math:`L - s` non-special positions and :math:`s` special positions,

    .. math::

       \rho = \frac{1}{L - s}\sum_{i\ \text{non-special}} \frac{n_{w_i} + s}{L}
            = \frac{\sum_w n_w^2 + s\,(L - s)}{L\,(L - s)} .

    Args:
        ids: int64 ``(B, L)``; special: bool ``(B, L)`` with at least one non-special position
            per row.

    Returns:
        float64 ``(B,)``.

    Used in: :doc:`/book/classification/mlm-alternatives`, eq. :eq:`mlmalt-shuffle-noop`
    """
    import torch

    ids = _as_ids(ids, "ids")
    special = _as_mask(special, "special", ids)
    b, length = ids.shape
    normal = (~special).sum(1)
    if bool((normal == 0).any()):
        r = int(torch.nonzero(normal == 0)[0, 0])
        raise ValueError(f"special marks every position of row {r}; nothing can be selected")
    rows = torch.arange(b).unsqueeze(1).expand(b, length)[~special]
    keys = rows * (int(ids.max()) + 1) + ids[~special]
    uniq, counts = torch.unique(keys, return_counts=True)
    sq = torch.zeros(b, dtype=torch.float64).index_add_(
        0, uniq // (int(ids.max()) + 1), counts.to(torch.float64).pow(2))
    n = normal.to(torch.float64)
    out = (sq + (length - n) * n) / (length * n)
    return out


def random_corrupt(ids: torch.Tensor, special: torch.Tensor, rate: float, vocab_size: int,
                   special_ids: Collection[int], generator: torch.Generator
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Random corruption: each non-special position is selected with probability ``rate`` and
    takes a uniform id in :math:`[0, |V|)`; a special id drawn this way is put back.

    Args:
        ids: int64 ``(B, L)``; special: bool ``(B, L)``; rate: :math:`p \in [0, 1]`;
        vocab_size: :math:`|V|`; special_ids: the ids treated as special; generator: a
        ``torch.Generator``.

    Returns:
        ``(corrupted, labels)``, int64 and bool ``(B, L)``; a label is "selected".

    Used in: :doc:`/book/classification/mlm-alternatives`, eq. :eq:`mlmalt-random-noop`
    """
    import torch

    ids = _as_ids(ids, "ids")
    special = _as_mask(special, "special", ids)
    rate = check_fraction(rate, "rate")
    vocab_size = check_count(vocab_size, "vocab_size", minimum=2)
    if ids.numel() and int(ids.max()) >= vocab_size:
        raise ValueError(f"ids must lie below vocab_size={vocab_size}, got {int(ids.max())}")
    sids = _as_special_ids(special_ids, vocab_size)
    generator = _check_generator(generator)
    draw = torch.randint(0, vocab_size, ids.shape, generator=generator)
    draw = torch.where(torch.isin(draw, sids), ids, draw)
    selected = _select(ids.shape, rate, special, generator)
    return torch.where(selected, draw, ids), selected


def random_noop_rate(vocab_size: int, n_special: int) -> float:
    r"""Probability that a Random-selected token is unchanged: the draw is the token itself or one
    of the :math:`S` special ids (put back), :math:`(1 + S)/|V|` for a non-special original.

    Used in: :doc:`/book/classification/mlm-alternatives`, eq. :eq:`mlmalt-random-noop`
    """
    vocab_size = check_count(vocab_size, "vocab_size", minimum=2)
    n_special = check_count(n_special, "n_special", minimum=0)
    if n_special >= vocab_size:
        raise ValueError(f"n_special must be below vocab_size={vocab_size}, got {n_special}")
    return (1 + n_special) / vocab_size


def shuffle_random_corrupt(ids: torch.Tensor, special: torch.Tensor, rate: float,
                           vocab_size: int, special_ids: Collection[int],
                           generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Shuffle+Random corruption with three labels: shuffle as :func:`shuffle_corrupt` with
    probability ``rate``, then replace by a uniform id, as :func:`random_corrupt`, with probability
    ``rate`` among the positions not shuffled. Drawn special ids are put back here; the authors'
    collator keeps them (same labels; inputs differ at rate :math:`S/|V|`).

    Returns:
        ``(corrupted, labels)``: int64 ``(B, L)`` each; labels 0 (original), 1 (shuffled),
        2 (random), and ``-100`` at special positions (ignored by ``cross_entropy``).

    Used in: :doc:`/book/classification/mlm-alternatives`, eq. :eq:`mlmalt-sr-prior`
    """
    import torch

    shuffled, is_shuffled = shuffle_corrupt(ids, special, rate, generator)
    replaced, is_random = random_corrupt(shuffled, special | is_shuffled, rate, vocab_size,
                                         special_ids, generator)
    labels = torch.zeros_like(ids)
    labels[is_shuffled] = 1
    labels[is_random] = 2
    labels[special] = IGNORE
    return replaced, labels


def shuffle_random_prior(rate: float) -> np.ndarray:
    r"""Label prior of Shuffle+Random on non-special positions, shape ``(3,)``:

    .. math:: \bigl((1-p)^2,\ p,\ p(1-p)\bigr) .

    Used in: :doc:`/book/classification/mlm-alternatives`, eq. :eq:`mlmalt-sr-prior`
    """
    p = check_fraction(rate, "rate")
    return np.array([(1 - p) ** 2, p, p * (1 - p)])


def mask_tokens(ids: torch.Tensor, special: torch.Tensor, rate: float, mask_id: int,
                generator: torch.Generator, *, vocab_size: int | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Select each non-special position with probability ``rate`` and hide it.

    Without ``vocab_size`` every selected token becomes ``mask_id`` (Token Type, First Char).
    With it, BERT's split: 80% ``mask_id``, 10% a uniform id in :math:`[0, |V|)`, 10% unchanged.

    Returns:
        ``(inputs, selected)``: int64 and bool ``(B, L)``.

    Used in: :doc:`/book/classification/mlm-alternatives`, section "The tiny pre-training run"
    """
    import torch

    ids = _as_ids(ids, "ids")
    special = _as_mask(special, "special", ids)
    rate = check_fraction(rate, "rate")
    mask_id = check_count(mask_id, "mask_id", minimum=0)
    generator = _check_generator(generator)
    selected = _select(ids.shape, rate, special, generator)
    inputs = ids.clone()
    if vocab_size is None:
        inputs[selected] = mask_id
        return inputs, selected
    vocab_size = check_count(vocab_size, "vocab_size", minimum=2)
    u = torch.rand(ids.shape, generator=generator)
    draw = torch.randint(0, vocab_size, ids.shape, generator=generator)
    inputs[selected & (u < 0.8)] = mask_id
    rnd = selected & (u >= 0.8) & (u < 0.9)
    inputs[rnd] = draw[rnd]
    return inputs, selected


# --- token classes --------------------------------------------------------------------------------

def _strip(piece: str) -> str:
    return piece[2:] if piece.startswith("##") and len(piece) > 2 else piece


def _is_punct(text: str) -> bool:
    return bool(text) and all(unicodedata.category(c)[0] in "PS" for c in text)


def token_type_classes(tokens: Sequence[str], stopwords: Collection[str]) -> np.ndarray:
    r"""Token Type class of each word piece: 0 content, 1 stop word, 2 digit, 3 punctuation.

    A piece is read without its ``##`` prefix. It is punctuation if every character is a Unicode
    punctuation or symbol, a digit if all are decimal digits, a stop word if it is a whole word
    (no ``##``) in ``stopwords`` (compared lower-cased), and content otherwise.

    Returns:
        int64 array, shape ``(len(tokens),)``.

    Used in: :doc:`/book/classification/mlm-alternatives`, eq. :eq:`mlmalt-floor`
    """
    if isinstance(tokens, str) or not all(isinstance(t, str) for t in tokens):
        raise TypeError("tokens must be a sequence of strings")
    stop = {s.lower() for s in stopwords}
    out = np.zeros(len(tokens), dtype=np.int64)
    for i, piece in enumerate(tokens):
        text = _strip(piece)
        if _is_punct(text):
            out[i] = 3
        elif text.isdecimal():
            out[i] = 2
        elif not piece.startswith("##") and text.lower() in stop:
            out[i] = 1
    return out


def first_char_classes(tokens: Sequence[str]) -> np.ndarray:
    r"""First Char class of each word piece, 29 classes: 0-25 the first letter ``a``-``z`` (of the
    piece without ``##``, lower-cased), 26 punctuation, 27 digit (as in
    :func:`token_type_classes`), 28 anything else (an accented or non-Latin first letter, a piece
    like ``3rd``).

    Returns:
        int64 array, shape ``(len(tokens),)``.

    Used in: :doc:`/book/classification/mlm-alternatives`, eq. :eq:`mlmalt-floor`
    """
    if isinstance(tokens, str) or not all(isinstance(t, str) for t in tokens):
        raise TypeError("tokens must be a sequence of strings")
    out = np.full(len(tokens), 28, dtype=np.int64)
    for i, piece in enumerate(tokens):
        text = _strip(piece)
        if _is_punct(text):
            out[i] = 26
        elif text.isdecimal():
            out[i] = 27
        elif text and "a" <= text[0].lower() <= "z" and text[0].isascii():
            out[i] = ord(text[0].lower()) - ord("a")
    return out


def class_frequencies(labels: Any, num_classes: int) -> np.ndarray:
    r"""Empirical class frequencies of integer ``labels`` (any shape; ``-100`` ignored), shape
    ``(num_classes,)``, summing to one.

    Used in: :doc:`/book/classification/mlm-alternatives`, eq. :eq:`mlmalt-floor`
    """
    num_classes = check_count(num_classes, "num_classes", minimum=2)
    arr = np.asarray(labels.numpy() if hasattr(labels, "numpy") else labels)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"labels must be integers, got dtype {arr.dtype}")
    arr = arr[arr != IGNORE].ravel()
    if arr.size == 0:
        raise ValueError("labels must hold at least one label that is not -100")
    if arr.min() < 0 or arr.max() >= num_classes:
        raise ValueError(f"labels must lie in [0, num_classes={num_classes}) or be -100")
    return np.bincount(arr, minlength=num_classes) / arr.size


def label_entropy(prior: Any) -> float:
    r"""Entropy of a label prior in nats, the cross-entropy of the best constant predictor:

    .. math:: H(q) = -\sum_c q_c \log q_c = \min_{r} \; -\sum_c q_c \log r_c ,

    the minimum taken at :math:`r = q` (Gibbs' inequality). ``prior`` has shape ``(K,)``.

    Used in: :doc:`/book/classification/mlm-alternatives`, eq. :eq:`mlmalt-floor`
    """
    q = check_probabilities(prior, "prior")
    if q.ndim != 1:
        raise ValueError(f"prior must be 1-dimensional, got shape {q.shape}")
    nz = q[q > 0]
    return float(-(nz * np.log(nz)).sum())


# --- cost -----------------------------------------------------------------------------------------

def output_head_cost(hidden: int, num_classes: int) -> tuple[int, int]:
    r"""Parameters and multiply-adds per token of a linear output head :math:`\mathbb R^d \to
    \mathbb R^K` with bias: :math:`(dK + K,\ dK)`.

    Used in: :doc:`/book/classification/mlm-alternatives`, eq. :eq:`mlmalt-head-cost`
    """
    d = check_count(hidden, "hidden")
    k = check_count(num_classes, "num_classes")
    return d * k + k, d * k


def encoder_parameter_count(vocab_size: int, hidden: int, layers: int, intermediate: int,
                            positions: int, type_vocab: int = 1, *, pooler: bool = True) -> int:
    r"""Parameters of a BERT/RoBERTa encoder (embeddings with LayerNorm, ``layers`` post-norm
    blocks, optional pooler), without an output head:

    .. math::

       (|V| + P + T)\,d + 2d
       \;+\; n_\ell\bigl(4d^2 + 4d + 2 d d_{ff} + d_{ff} + d + 4d\bigr)
       \;+\; [\text{pooler}]\,(d^2 + d) .

    Used in: :doc:`/book/classification/mlm-alternatives`, eq. :eq:`mlmalt-encoder-params`
    """
    v = check_count(vocab_size, "vocab_size")
    d = check_count(hidden, "hidden")
    n = check_count(layers, "layers", minimum=0)
    f = check_count(intermediate, "intermediate")
    p = check_count(positions, "positions")
    t = check_count(type_vocab, "type_vocab")
    if not isinstance(pooler, bool):
        raise TypeError("pooler must be a bool")
    emb = (v + p + t) * d + 2 * d
    block = 4 * d * d + 4 * d + 2 * d * f + f + d + 4 * d
    return emb + n * block + (d * d + d if pooler else 0)


# --- the tiny encoder -----------------------------------------------------------------------------

def _encoder_class() -> type:
    import torch
    from torch import nn

    class _TinyEncoder(nn.Module):
        """See :class:`TinyEncoder`."""

        def __init__(self, vocab_size: int, num_classes: int, *, hidden: int, layers: int,
                     heads: int, intermediate: int, max_len: int, seed: int) -> None:
            super().__init__()
            torch.manual_seed(seed)
            self.embed = nn.Embedding(vocab_size, hidden)
            self.pos = nn.Parameter(0.02 * torch.randn(max_len, hidden))
            self.blocks = nn.ModuleList(
                nn.TransformerEncoderLayer(hidden, heads, intermediate, dropout=0.0,
                                           batch_first=True) for _ in range(layers))
            self.head = nn.Linear(hidden, num_classes)

        def states(self, ids: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
            h = self.embed(ids) + self.pos[: ids.shape[1]]
            for block in self.blocks:
                h = block(h, src_key_padding_mask=pad)
            return h

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.head(self.states(ids))

        @torch.no_grad()
        def features(self, ids: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
            h = self.states(ids, pad)
            keep = (~pad).unsqueeze(-1).to(h.dtype)
            return (h * keep).sum(1) / keep.sum(1)

    return _TinyEncoder


def TinyEncoder(vocab_size: int, num_classes: int, *, hidden: int = 32, layers: int = 1,
                heads: int = 2, intermediate: int = 64, max_len: int = 32,
                seed: int = 0) -> torch.nn.Module:
    r"""A small encoder from torch's own layers: token embedding plus learned positions, ``layers``
    ``nn.TransformerEncoderLayer`` blocks (post-norm, ReLU, no dropout) and a linear head to
    ``num_classes``. ``model(ids)`` gives logits ``(B, L, K)``; ``model.features(ids, pad)`` the
    mean of the final token states over the non-padding positions, ``(B, hidden)``, without
    gradients. Initialised from ``torch.manual_seed(seed)``.

    Used in: :doc:`/book/classification/mlm-alternatives`, section "The tiny pre-training run"
    """
    v = check_count(vocab_size, "vocab_size", minimum=2)
    k = check_count(num_classes, "num_classes", minimum=2)
    d = check_count(hidden, "hidden")
    n = check_count(layers, "layers")
    h = check_count(heads, "heads")
    if d % h:
        raise ValueError(f"heads must divide hidden={d}, got {h}")
    model: torch.nn.Module = _encoder_class()(
        v, k, hidden=d, layers=n, heads=h, intermediate=check_count(intermediate, "intermediate"),
        max_len=check_count(max_len, "max_len"), seed=check_count(seed, "seed", minimum=0))
    return model


def corrupt(objective: str, ids: torch.Tensor, *, rate: float, vocab_size: int, mask_id: int,
            special_ids: Collection[int], token_classes: torch.Tensor | None,
            generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Inputs and int64 targets (``-100`` = no loss) of one objective for a batch ``ids`` with no
    special positions. ``mlm``: targets are the ids at the selected positions (80/10/10 split);
    ``shuffle``, ``random``: 0/1 at every position; ``shuffle_random``: 0/1/2 at every position;
    ``token_type``, ``first_char``: ``token_classes[id]`` at the masked positions.

    Used in: :doc:`/book/classification/mlm-alternatives`, section "The tiny pre-training run"
    """
    import torch

    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {sorted(OBJECTIVES)}, got {objective!r}")
    ids = _as_ids(ids, "ids")
    special = torch.zeros_like(ids, dtype=torch.bool)
    if objective == "mlm":
        x, sel = mask_tokens(ids, special, rate, mask_id, generator, vocab_size=vocab_size)
        return x, torch.where(sel, ids, torch.full_like(ids, IGNORE))
    if objective == "shuffle":
        x, lab = shuffle_corrupt(ids, special, rate, generator)
        return x, lab.long()
    if objective == "random":
        x, lab = random_corrupt(ids, special, rate, vocab_size, special_ids, generator)
        return x, lab.long()
    if objective == "shuffle_random":
        return shuffle_random_corrupt(ids, special, rate, vocab_size, special_ids, generator)
    if token_classes is None:
        raise ValueError(f"token_classes is required for objective {objective!r}")
    x, sel = mask_tokens(ids, special, rate, mask_id, generator)
    return x, torch.where(sel, token_classes[ids], torch.full_like(ids, IGNORE))


def pretrain(model: torch.nn.Module, chunks: torch.Tensor, objective: str, *, steps: int,
             batch_size: int, lr: float, rate: float, vocab_size: int, mask_id: int,
             special_ids: Collection[int], token_classes: torch.Tensor | None = None,
             seed: int = 0) -> np.ndarray:
    r"""Train ``model`` in place on ``objective`` with Adam and token-level cross-entropy,
    :math:`\mathcal L = -\frac1{|A|}\sum_{(b,i)\in A}
    \log \mathrm{softmax}(f(\tilde x)_{b,i})_{y_{b,i}}`
    over the positions :math:`A` with a target; the head is applied only there, so MLM pays its
    :math:`d\,|V|` head on the masked positions alone. Each step draws ``batch_size`` rows of
    ``chunks`` (int64 ``(N, L)``) and a fresh corruption, from
    ``torch.Generator().manual_seed(seed)``.

    Returns:
        the training loss of each step, float64 ``(steps,)``.

    Used in: :doc:`/book/classification/mlm-alternatives`, section "The tiny pre-training run"
    """
    import torch
    import torch.nn.functional as F  # noqa: N812

    chunks = _as_ids(chunks, "chunks")
    steps = check_count(steps, "steps")
    batch_size = check_count(batch_size, "batch_size")
    if not (isinstance(lr, float | int) and not isinstance(lr, bool) and math.isfinite(lr)
            and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {sorted(OBJECTIVES)}, got {objective!r}")
    gen = torch.Generator().manual_seed(check_count(seed, "seed", minimum=0))
    opt = torch.optim.Adam(model.parameters(), lr=float(lr))
    losses = np.empty(steps)
    model.train()
    for t in range(steps):
        rows = torch.randint(0, chunks.shape[0], (batch_size,), generator=gen)
        x, y = corrupt(objective, chunks[rows], rate=rate, vocab_size=vocab_size,
                       mask_id=mask_id, special_ids=special_ids, token_classes=token_classes,
                       generator=gen)
        keep = y != IGNORE                      # the head runs only where there is a target
        logits = model.head(model.states(x)[keep])  # type: ignore[operator]
        loss = F.cross_entropy(logits, y[keep])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses[t] = loss.item()
    model.eval()
    return losses
