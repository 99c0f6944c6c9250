r"""A character-level GRU decoder that completes words of real text, trained by teacher forcing
or with the post's random replacement of decoder inputs.

The task, on gensim's ``lee_background.cor`` (300 Australian news articles, Lee et al.): given the
first ``prefix_len`` letters of a word, generate the rest and an end token. Source (the prefix) and
target (the rest) share one left-to-right sequence, as in the UniLM set-up of the post's
experiments: the decoder reads ``c_1 .. c_n`` and, from position ``prefix_len`` on, predicts
``c_{j+1}`` (or the end token after ``c_n``). :func:`load_lee_words` reads the words,
:func:`encode_completions` builds the tensors, :func:`init_gru_lm` and :func:`gru_lm_logits` are
``M`` independent one-layer GRU language models evaluated as one batched computation (same equations
and gate layout as ``torch.nn.GRU``, which :func:`gru_lm_to_torch` rebuilds for a cross-check),
:func:`train_gru_lms` trains them with Adam, :func:`completion_logprob` scores the true completions
and :func:`beam_complete` decodes with :func:`kexue_notes.sequences.exposure_bias.beam_search`.
Token 0 is the end token (also the input padding); letters ``a..z`` are 1..26.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from kexue_notes._validate import check_count, check_fraction, check_positive
from kexue_notes.sequences.exposure_bias import beam_search, random_replace
from kexue_notes.text_data import _gensim_data

__all__ = [  # noqa: RUF022 -- in the order the module reads
    "lee_background_path",
    "load_lee_words",
    "encode_completions",
    "init_gru_lm",
    "gru_lm_logits",
    "gru_lm_to_torch",
    "train_gru_lms",
    "completion_logprob",
    "beam_complete",
    "exact_match",
]

#: The end token (also the padding of inputs); letters are 1..26.
EOS = 0
#: The vocabulary size: the end token and the 26 lower-case letters.
VOCAB = 27
_PARAMS = ("emb", "w_ih", "w_hh", "b_ih", "b_hh", "w_out", "b_out")


def lee_background_path() -> Path:
    """Where gensim keeps ``lee_background.cor``, found without importing gensim (0.7 s).

    The same path as ``gensim.test.utils.datapath("lee_background.cor")`` (the reader that the
    shared text loaders of :mod:`kexue_notes.text_data` use).

    Raises:
        FileNotFoundError: if gensim, or the file, is not installed.

    Used in: :doc:`/book/sequences/seq2seq-exposure-bias`.
    """
    return _gensim_data("lee_background.cor")


def load_lee_words(min_len: int = 4, max_len: int = 8,
                   n_train_docs: int = 240) -> tuple[list[str], list[str]]:
    r"""The words of ``lee_background.cor``, split by document into training and held-out text.

    Each line of the file is one article; words are the maximal runs of letters after lower-casing
    (``[a-z]+``), kept when their length lies in ``[min_len, max_len]``, in text order (so frequent
    words appear often, as in running text).

    Args:
        min_len: the shortest word kept, at least 1.
        max_len: the longest word kept, at least ``min_len``.
        n_train_docs: the first ``n_train_docs`` articles are training text, the rest held out.

    Returns:
        ``(train_words, heldout_words)``.

    Raises:
        ValueError: if a length or ``n_train_docs`` is out of range.
        TypeError: if an argument is not an integer.

    Used in: :doc:`/book/sequences/seq2seq-exposure-bias`.
    """
    min_len = check_count(min_len, "min_len")
    max_len = check_count(max_len, "max_len", minimum=min_len)
    n_train_docs = check_count(n_train_docs, "n_train_docs")
    docs = lee_background_path().read_text(encoding="utf-8").splitlines()
    docs = [d for d in docs if d.strip()]
    if n_train_docs >= len(docs):
        raise ValueError(f"n_train_docs must be < {len(docs)} (the number of articles), got "
                         f"{n_train_docs}")
    words = [[w for w in re.findall(r"[a-z]+", d.lower()) if min_len <= len(w) <= max_len]
             for d in docs]
    return ([w for d in words[:n_train_docs] for w in d],
            [w for d in words[n_train_docs:] for w in d])


def encode_completions(words: Sequence[str], prefix_len: int, max_len: int) -> dict[str, Tensor]:
    r"""Tensors for completing each word from its first ``prefix_len`` letters.

    For a word :math:`c_1 \dots c_n` (:math:`n \le` ``max_len``), input position :math:`j`
    (0-based) holds :math:`c_{j+1}`; the target at position :math:`j \ge` ``prefix_len`` :math:`- 1`
    is :math:`c_{j+2}`, or the end token at :math:`j = n - 1`; other targets are ``-100`` (ignored
    by
    ``torch.nn.functional.cross_entropy``). The decoder inputs of the target part, positions
    ``prefix_len`` to :math:`n - 1`, are what random replacement may change.

    Args:
        words: lower-case words of ``a..z``, each longer than ``prefix_len`` and at most
            ``max_len``.
        prefix_len: the number of given letters, at least 1.
        max_len: the padded length.

    Returns:
        A dict of ``inputs`` ``(N, max_len)``, ``targets`` ``(N, max_len)``, ``replace_mask``
        ``(N, max_len)`` (bool), ``prefixes`` ``(N, prefix_len)`` and ``completions``
        ``(N, max_len - prefix_len + 1)`` (the rest of the word, the end token, then end-token
        padding), all integer tensors except the mask.

    Raises:
        ValueError: if a word has other characters or a length out of range.
        TypeError: if ``words`` is not a sequence of strings.

    Used in: :doc:`/book/sequences/seq2seq-exposure-bias`, eq. :eq:`eb-replace`.
    """
    prefix_len = check_count(prefix_len, "prefix_len")
    max_len = check_count(max_len, "max_len", minimum=prefix_len + 1)
    if isinstance(words, str) or not isinstance(words, Sequence) or len(words) == 0:
        raise TypeError("words must be a non-empty sequence of strings")
    if not all(isinstance(w, str) for w in words):
        raise TypeError("words must be a non-empty sequence of strings")
    bad = [w for w in words if not re.fullmatch(r"[a-z]+", w) or not prefix_len < len(w) <= max_len]
    if bad:
        raise ValueError(f"words must be lower-case letters a..z with length in ({prefix_len}, "
                         f"{max_len}], got {bad[0]!r}")
    N, C = len(words), max_len - prefix_len + 1
    # '`' is chr(96): padding a word with it and subtracting 96 gives the end token 0
    raw = "".join(w.ljust(max_len + 1, "`") for w in words).encode("ascii")
    codes = np.frombuffer(raw, dtype=np.uint8).reshape(N, max_len + 1).astype(np.int64)
    ext = torch.from_numpy(codes) - 96
    n = torch.tensor([len(w) for w in words])[:, None]
    j = torch.arange(max_len)[None, :]
    inputs = ext[:, :max_len].clone()
    targets = torch.where((j >= prefix_len - 1) & (j < n), ext[:, 1:], torch.tensor(-100))
    replace = (j >= prefix_len) & (j < n)
    completions = ext[:, prefix_len:prefix_len + C].clone()
    return {"inputs": inputs, "targets": targets, "replace_mask": replace,
            "prefixes": inputs[:, :prefix_len].clone(), "completions": completions}


def _check_params(params: dict[str, Tensor]) -> tuple[int, int, int]:
    """Validate a stack of GRU language models; return (M, V, H)."""
    if not isinstance(params, dict) or set(params) != set(_PARAMS):
        raise ValueError(f"params must be a dict with the keys {_PARAMS}")
    M, V, E = params["emb"].shape
    H = params["w_hh"].shape[1]
    want = {"emb": (M, V, E), "w_ih": (M, E, 3 * H), "w_hh": (M, H, 3 * H), "b_ih": (M, 1, 3 * H),
            "b_hh": (M, 1, 3 * H), "w_out": (M, H, V), "b_out": (M, 1, V)}
    for key, shape in want.items():
        if tuple(params[key].shape) != shape:
            raise ValueError(f"params[{key!r}] must have shape {shape}, got "
                             f"{tuple(params[key].shape)}")
    return M, V, H


def init_gru_lm(n_models: int, vocab: int, embed: int, hidden: int,
                generator: torch.Generator) -> dict[str, Tensor]:
    r"""Parameters of ``n_models`` independent GRU language models, initialised as torch does.

    Embedding :math:`\mathcal N(0, 1)` (``torch.nn.Embedding``); every GRU and output weight and
    bias
    :math:`\mathcal U(-1/\sqrt H, 1/\sqrt H)` (``torch.nn.GRU``, and ``torch.nn.Linear`` with
    fan-in :math:`H`). Gates are stacked in torch's order :math:`(r, z, n)`; weights act on the
    right (``x @ w_ih``), i.e. they are the transposes of torch's.

    Args:
        n_models: :math:`M`.
        vocab: :math:`V`.
        embed: the embedding width :math:`E`.
        hidden: the hidden width :math:`H`.
        generator: the source of randomness.

    Returns:
        The parameters as a dict, with ``emb`` ``(M, V, E)``, ``w_ih`` ``(M, E, 3H)``, ``w_hh``
        ``(M, H, 3H)``, ``b_ih`` and ``b_hh`` ``(M, 1, 3H)``, ``w_out`` ``(M, H, V)`` and ``b_out``
        ``(M, 1, V)`` (float32 leaves that require gradients).

    Raises:
        ValueError: if a size is below 1 (``vocab`` below 2).
        TypeError: if a size is not an integer or ``generator`` is not a ``torch.Generator``.

    Used in: :doc:`/book/sequences/seq2seq-exposure-bias`, eq. :eq:`eb-gru`.
    """
    M = check_count(n_models, "n_models")
    V = check_count(vocab, "vocab", minimum=2)
    E = check_count(embed, "embed")
    H = check_count(hidden, "hidden")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    bound = H ** -0.5

    def unif(*shape: int) -> Tensor:
        return (2 * torch.rand(*shape, generator=generator) - 1) * bound

    params = {"emb": torch.randn(M, V, E, generator=generator), "w_ih": unif(M, E, 3 * H),
              "w_hh": unif(M, H, 3 * H), "b_ih": unif(M, 1, 3 * H), "b_hh": unif(M, 1, 3 * H),
              "w_out": unif(M, H, V), "b_out": unif(M, 1, V)}
    return {k: v.requires_grad_(True) for k, v in params.items()}


def _embed_in(params: dict[str, Tensor], tokens: Tensor) -> Tensor:
    """Input-gate pre-activations x W_ih + b_ih for tokens (M, n) -> (M, n, 3H)."""
    M, n = tokens.shape
    E = params["emb"].shape[2]
    x = params["emb"].gather(1, tokens[..., None].expand(M, n, E))
    return torch.baddbmm(params["b_ih"], x, params["w_ih"])


def _cell(params: dict[str, Tensor], gi: Tensor, h: Tensor) -> Tensor:
    H = h.shape[-1]
    gh = torch.baddbmm(params["b_hh"], h, params["w_hh"])
    gi_rz, gi_n = gi.split((2 * H, H), -1)  # split, not slicing: one backward node, not two
    gh_rz, gh_n = gh.split((2 * H, H), -1)
    r, z = torch.sigmoid(gi_rz + gh_rz).chunk(2, -1)
    n = torch.tanh(gi_n + r * gh_n)
    return n + z * (h - n)


def gru_lm_logits(params: dict[str, Tensor], tokens: Tensor,
                  h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
    r"""Next-token logits of ``M`` GRU language models on their own batches of token sequences.

    .. math::

       \begin{aligned}
       r_t &= \sigma(x_t W_{ir} + b_{ir} + h_{t-1} W_{hr} + b_{hr}), \quad
       z_t = \sigma(x_t W_{iz} + b_{iz} + h_{t-1} W_{hz} + b_{hz}),\\
       n_t &= \tanh\bigl(x_t W_{in} + b_{in} + r_t \odot (h_{t-1} W_{hn} + b_{hn})\bigr), \quad
       h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1},\\
       \ell_t &= h_t W_{\text{out}} + b_{\text{out}},
       \end{aligned}

    with :math:`x_t` the embedding of token :math:`t`: ``torch.nn.GRU``'s equations, batched over
    models with ``torch.baddbmm``.

    Args:
        params: from :func:`init_gru_lm`, ``M`` models.
        tokens: integer tensor ``(M, B, T)`` (model ``m`` reads ``tokens[m]``), values in ``[0,
            V)``.
        h0: the initial hidden state ``(M, B, H)``; zeros by default.

    Returns:
        ``(logits, h_T)``: ``(M, B, T, V)`` and the last hidden state ``(M, B, H)``.

    Raises:
        ValueError: if ``params`` is malformed or the shapes or token values are wrong.
        TypeError: if ``tokens`` is not an integer tensor.

    Used in: :doc:`/book/sequences/seq2seq-exposure-bias`, eq. :eq:`eb-gru`.
    """
    M, V, H = _check_params(params)
    if not isinstance(tokens, Tensor) or tokens.dtype != torch.long:
        raise TypeError(f"tokens must be an int64 tensor, got "
                        f"{getattr(tokens, 'dtype', type(tokens).__name__)}")
    if tokens.ndim != 3 or tokens.shape[0] != M:
        raise ValueError(f"tokens must have shape ({M}, B, T), got {tuple(tokens.shape)}")
    if bool(((tokens < 0) | (tokens >= V)).any()):
        raise ValueError(f"tokens must lie in [0, {V})")
    _, B, T = tokens.shape
    h = torch.zeros(M, B, H) if h0 is None else h0
    if tuple(h.shape) != (M, B, H):
        raise ValueError(f"h0 must have shape ({M}, {B}, {H}), got {tuple(h.shape)}")
    gi = _embed_in(params, tokens.reshape(M, B * T)).reshape(M, B, T, 3 * H).unbind(2)
    hs = []
    for t in range(T):
        h = _cell(params, gi[t], h)
        hs.append(h)
    out = torch.stack(hs, 2).reshape(M, B * T, H)
    logits = torch.baddbmm(params["b_out"], out, params["w_out"]).reshape(M, B, T, V)
    return logits, h


def gru_lm_to_torch(params: dict[str, Tensor], m: int) -> torch.nn.ModuleDict:
    """Model ``m`` of a stack as torch's own layers, for cross-checking :func:`gru_lm_logits`.

    Returns ``ModuleDict(embedding=nn.Embedding, gru=nn.GRU(batch_first=True), out=nn.Linear)`` with
    the weights copied (transposed to torch's layout); ``out(gru(embedding(x))[0])`` gives the
    logits.

    Raises:
        ValueError: if ``params`` is malformed or ``m`` is out of range.
        TypeError: if ``m`` is not an integer.

    Used in: :doc:`/book/sequences/seq2seq-exposure-bias`, eq. :eq:`eb-gru`.
    """
    M, V, H = _check_params(params)
    m = check_count(m, "m", minimum=0)
    if m >= M:
        raise ValueError(f"m must be < {M}, got {m}")
    E = params["emb"].shape[2]
    mods = torch.nn.ModuleDict({"embedding": torch.nn.Embedding(V, E),
                                "gru": torch.nn.GRU(E, H, batch_first=True),
                                "out": torch.nn.Linear(H, V)})
    emb, gru, out = mods["embedding"], mods["gru"], mods["out"]
    assert isinstance(emb, torch.nn.Embedding) and isinstance(gru, torch.nn.GRU)
    assert isinstance(out, torch.nn.Linear)
    with torch.no_grad():
        emb.weight.copy_(params["emb"][m])
        for name, key in (("weight_ih_l0", "w_ih"), ("weight_hh_l0", "w_hh")):
            getattr(gru, name).copy_(params[key][m].T)
        for name, key in (("bias_ih_l0", "b_ih"), ("bias_hh_l0", "b_hh")):
            getattr(gru, name).copy_(params[key][m, 0])
        out.weight.copy_(params["w_out"][m].T)
        out.bias.copy_(params["b_out"][m, 0])
    return mods


def _masked_nll(logits: Tensor, targets: Tensor) -> Tensor:
    """Summed cross-entropy over target positions: logits (M, B, T, V), targets (M, B, T) -> (M,
    B)."""
    M, B, T, V = logits.shape
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1),
                                           reduction="none", ignore_index=-100)
    return ce.reshape(M, B, T).sum(-1)


def train_gru_lms(data: dict[str, Tensor], p_apply: Sequence[float], n_seeds: int, *, steps: int,
                  batch_size: int, lr: float, embed: int, hidden: int, rate: float = 0.3,
                  seed: int = 0) -> tuple[dict[str, Tensor], Tensor]:
    r"""Train ``len(p_apply) * n_seeds`` GRU language models on word completion with Adam.

    Model :math:`m = a \cdot n_{\text{seeds}} + s` uses arm :math:`a` (random replacement applied
    to a
    sequence with probability ``p_apply[a]``, rate ``rate``; ``p_apply[a] = 0`` is plain teacher
    forcing) and seed :math:`s`. Arms are paired: the models of one seed start from the same weights
    and see the same mini-batches; only the replacement differs. Each step minimises, for every
    model,
    the mean cross-entropy per target token of its batch,

    .. math::

       \mathcal L_m = \frac{\sum_{i, j} -\log p_m(y_{ij} \mid \tilde x_{i, \le j})}{\#\{(i, j)\}},

    with the (possibly replaced) inputs :math:`\tilde x` and the true targets :math:`y`. The models
    share nothing: the summed loss has block-separate gradients and Adam acts elementwise.

    Args:
        data: from :func:`encode_completions` (the training words).
        p_apply: one perturbation probability per arm, each in :math:`[0, 1]`.
        n_seeds: seeds per arm.
        steps: Adam steps.
        batch_size: words per step and model.
        lr: Adam's learning rate.
        embed: embedding width.
        hidden: GRU width.
        rate: replacement rate of each target input (0.3 in the post).
        seed: seeds the initial weights, the batches and the replacements.

    Returns:
        ``(params, losses)``: the trained stack (detached) and the training loss of every model at
        every step, ``(steps, M)``.

    Raises:
        ValueError: if a count is below 1, a probability lies outside :math:`[0, 1]` or ``data``
            lacks a key.
        TypeError: if a count is not an integer.

    Used in: :doc:`/book/sequences/seq2seq-exposure-bias`, eq. :eq:`eb-replace`.
    """
    for key in ("inputs", "targets", "replace_mask"):
        if key not in data:
            raise ValueError(f"data must hold {key!r} (use encode_completions)")
    if isinstance(p_apply, str) or not isinstance(p_apply, Sequence) or len(p_apply) == 0:
        raise ValueError("p_apply must be a non-empty sequence of probabilities")
    arms = [check_fraction(p, "p_apply") for p in p_apply]
    S = check_count(n_seeds, "n_seeds")
    steps = check_count(steps, "steps")
    batch_size = check_count(batch_size, "batch_size")
    lr = check_positive(lr, "lr")
    rate = check_fraction(rate, "rate")
    seed = check_count(seed, "seed", minimum=0)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.Generator().manual_seed(seed + 1)
    base = init_gru_lm(S, VOCAB, embed, hidden, gen)
    A = len(arms)
    params = {k: v.detach().repeat(A, *([1] * (v.ndim - 1))).requires_grad_(True)
              for k, v in base.items()}
    opt = torch.optim.Adam(list(params.values()), lr=lr)
    inputs, targets, mask = data["inputs"], data["targets"], data["replace_mask"]
    N, T = inputs.shape
    losses = torch.empty(steps, A * S)
    for step in range(steps):
        idx = torch.randint(0, N, (S, batch_size), generator=gen)
        x, y, msk = inputs[idx], targets[idx], mask[idx]
        xs = []
        for p in arms:
            if p > 0:
                xs.append(random_replace(x.reshape(-1, T), msk.reshape(-1, T), noise, p_apply=p,
                                         rate=rate).reshape(S, batch_size, T))
            else:
                xs.append(x)
        logits, _ = gru_lm_logits(params, torch.cat(xs, 0))
        ys = y.repeat(A, 1, 1)
        per_model = _masked_nll(logits, ys).sum(1) / (ys >= 0).sum((1, 2))
        opt.zero_grad()
        per_model.sum().backward()
        opt.step()
        losses[step] = per_model.detach()
    return {k: v.detach() for k, v in params.items()}, losses


def completion_logprob(params: dict[str, Tensor], data: dict[str, Tensor]) -> Tensor:
    r"""Teacher-forced log-probability of every true completion under every model.

    .. math::

       \log p_m(y \mid \text{prefix}) = \sum_{j} \log p_m(y_j \mid \text{prefix}, y_{<j}),

    summed over the target positions (the rest of the word and the end token).

    Args:
        params: ``M`` models.
        data: from :func:`encode_completions`, ``N`` words.

    Returns:
        Shape ``(M, N)``.

    Raises:
        ValueError: if ``params`` is malformed or ``data`` lacks a key.

    Used in: :doc:`/book/sequences/seq2seq-exposure-bias`, eq. :eq:`eb-half`.
    """
    M, _, _ = _check_params(params)
    for key in ("inputs", "targets"):
        if key not in data:
            raise ValueError(f"data must hold {key!r} (use encode_completions)")
    with torch.no_grad():
        x = data["inputs"].expand(M, -1, -1)
        logits, _ = gru_lm_logits(params, x)
        return -_masked_nll(logits, data["targets"].expand(M, -1, -1))


def beam_complete(params: dict[str, Tensor], prefixes: Tensor, beam: int,
                  max_len: int) -> tuple[Tensor, Tensor, Tensor]:
    r"""Complete every prefix with every model by beam search (beam 1 is greedy search).

    The GRU reads the prefix, then :func:`kexue_notes.sequences.exposure_bias.beam_search` extends
    it token by token, scoring hypotheses by their joint log-probability, until every hypothesis has
    emitted the end token or ``max_len`` tokens were generated.

    Args:
        params: ``M`` models.
        prefixes: integer tensor ``(N, P)`` of letters.
        beam: the beam size.
        max_len: the most tokens generated, end token included.

    Returns:
        ``(seqs, scores, finished)``: ``(M, N, k, T)``, ``(M, N, k)`` and ``(M, N, k)``, best first.

    Raises:
        ValueError: if ``params`` is malformed or ``prefixes`` has the wrong shape.
        TypeError: if ``beam`` or ``max_len`` is not an integer.

    Used in: :doc:`/book/sequences/seq2seq-exposure-bias`, eq. :eq:`eb-local`.
    """
    M, V, H = _check_params(params)
    if not isinstance(prefixes, Tensor) or prefixes.dtype != torch.long or prefixes.ndim != 2:
        raise ValueError("prefixes must be an int64 tensor of shape (N, P)")
    N = prefixes.shape[0]

    def step(h: Tensor, tok: Tensor, t: int) -> tuple[Tensor, Tensor]:
        k = tok.shape[1]
        h = _cell(params, _embed_in(params, tok.reshape(M, N * k)), h.reshape(M, N * k, H))
        logp = torch.log_softmax(torch.baddbmm(params["b_out"], h, params["w_out"]), -1)
        return logp.reshape(M * N, k, V), h.reshape(M * N, k, H)

    with torch.no_grad():
        logits, h = gru_lm_logits(params, prefixes.expand(M, -1, -1))
        first = torch.log_softmax(logits[:, :, -1], -1).reshape(M * N, V)
        seqs, scores, done = beam_search(step, first, h.reshape(M * N, H), beam, max_len, eos=EOS)
    k, T = seqs.shape[1:]
    return seqs.reshape(M, N, k, T), scores.reshape(M, N, k), done.reshape(M, N, k)


def exact_match(seqs: Tensor, finished: Tensor, completions: Tensor) -> Tensor:
    r"""Whether each decoded completion equals the true one, end token included.

    Args:
        seqs: decoded tokens ``(..., N, T)`` padded with the end token (the best hypothesis of
            :func:`beam_complete`, ``seqs[:, :, 0]``).
        finished: whether each emitted the end token, ``(..., N)``.
        completions: the true completions ``(N, C)`` from :func:`encode_completions`, ``T <= C``.

    Returns:
        A boolean tensor ``(..., N)``.

    Raises:
        ValueError: if the shapes disagree.

    Used in: :doc:`/book/sequences/seq2seq-exposure-bias`.
    """
    T, C = seqs.shape[-1], completions.shape[-1]
    if T > C or seqs.shape[-2] != completions.shape[0] or finished.shape != seqs.shape[:-1]:
        raise ValueError(f"seqs {tuple(seqs.shape)}, finished {tuple(finished.shape)} and "
                         f"completions {tuple(completions.shape)} do not match")
    pad = torch.full((*seqs.shape[:-1], C - T), EOS, dtype=seqs.dtype)
    return finished & (torch.cat([seqs, pad], -1) == completions).all(-1)
