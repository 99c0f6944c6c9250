r"""Relative position encodings and the position probe: why softmax attention cannot count.

The probe asks a model to map :math:`n` identical input tokens to the outputs :math:`1, \dots, n`.
With identical inputs every value vector is the same, :math:`v_j = v`, so attention gives
:math:`o_i = \bigl(\sum_j a_{ij}\bigr) v`. Softmax makes every row sum to one, whatever relative
bias :math:`b_{ij} = g(i - j)` (:func:`toeplitz_bias`) or rotary encoding (:func:`rope`) shaped the
logits, and then every position gets the same output; the best mean squared error of such a model
is the variance of :math:`1..n`, :func:`probe_mse_floor`. The fixes make the row sums differ
between positions (on a finite sequence, through its edges): a Toeplitz
gate :math:`A \odot C` (URPE), dropping the softmax denominator, :math:`\ell_2` normalisation
(all three in :func:`attention_weights` and :func:`relative_attention`), or boundary tokens
([CLS]/[SEP]) whose values differ from :math:`v`.

:class:`ProbeConfig`, :func:`init_probe`, :func:`probe_forward`, :func:`train_probe` and
:func:`train_probes` build and train tiny one- or two-layer models on the probe, with the parameters
of several seeds stacked along a leading axis so that all seeds train in one pass (each seed's loss
depends only on its own slice, and Adam is elementwise, so the seeds do not interact);
:func:`train_probes` trains several configurations under one optimiser in the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from kexue_notes._validate import as_tensor, check_count, check_positive

__all__ = [  # noqa: RUF022 -- in the order the module reads
    "probe_targets",
    "probe_mse_floor",
    "toeplitz_bias",
    "circulant_bias",
    "rope",
    "attention_weights",
    "relative_attention",
    "ProbeConfig",
    "init_probe",
    "probe_forward",
    "train_probe",
    "train_probes",
]

Norm = Literal["softmax", "l2", "exp", "relu2"]
Position = Literal["none", "absolute", "relative", "circular", "rope"]
NORMS = ("softmax", "l2", "exp", "relu2")
POSITIONS = ("none", "absolute", "relative", "circular", "rope")


# --- the probe --------------------------------------------------------------------------------

def probe_targets(n: int, *, dtype: torch.dtype = torch.float64) -> Tensor:
    r"""The probe's targets :math:`(1, 2, \dots, n)` for an input of :math:`n` identical tokens.

    Args:
        n: the sequence length, an integer :math:`\ge 1`.
        dtype: the floating dtype of the result.

    Returns:
        A tensor of shape ``(n,)``.

    Raises:
        ValueError: if ``n < 1``.
        TypeError: if ``n`` is not an integer.

    Used in: :doc:`/book/sequences/relative-position-probe-flaw`, eq. :eq:`rp-probe`.
    """
    n = check_count(n, "n")
    return torch.arange(1, n + 1, dtype=dtype)


def probe_mse_floor(n: int) -> float:
    r"""The least mean squared error on the probe of a model whose outputs are all equal.

    .. math::

       \min_c \frac1n\sum_{i=1}^n (i - c)^2 = \frac{n^2 - 1}{12}, \qquad c = \frac{n + 1}{2},

    the variance of the uniform distribution on :math:`\{1, \dots, n\}`.

    Args:
        n: the sequence length, an integer :math:`\ge 1`.

    Returns:
        :math:`(n^2 - 1)/12` as a float.

    Raises:
        ValueError: if ``n < 1``.
        TypeError: if ``n`` is not an integer.

    Used in: :doc:`/book/sequences/relative-position-probe-flaw`, eq. :eq:`rp-floor`.
    """
    n = check_count(n, "n")
    return (n * n - 1) / 12


# --- relative biases and rotary encodings -----------------------------------------------------

def toeplitz_bias(table: Tensor, n: int) -> Tensor:
    r"""A Toeplitz matrix of relative biases with clipped offsets.

    .. math::

       B_{ij} = g\bigl(\operatorname{clip}(i - j, -K, K)\bigr), \qquad i, j = 1, \dots, n,

    where ``table[..., m]`` holds :math:`g(m - K)` for :math:`m = 0, \dots, 2K`. This covers learned
    relative biases (T5 without buckets), ALiBi (:math:`g(r) = -s|r|`) and URPE's gate :math:`C`.

    Args:
        table: the values :math:`g(-K), \dots, g(K)`, shape ``(..., 2K + 1)``.
        n: the sequence length, an integer :math:`\ge 1`.

    Returns:
        A tensor of shape ``(..., n, n)``; gradients flow back into ``table``.

    Raises:
        ValueError: if ``table`` has an even last dimension, or holds NaN or infinity, or ``n < 1``.
        TypeError: if ``table`` is not numeric or ``n`` is not an integer.

    Used in: :doc:`/book/sequences/relative-position-probe-flaw`, eq. :eq:`rp-toeplitz`.
    """
    table = as_tensor(table, "table")
    n = check_count(n, "n")
    if table.ndim == 0 or table.shape[-1] % 2 == 0:
        raise ValueError("table must have an odd last dimension 2K + 1, "
                         f"got shape {tuple(table.shape)}")
    return _toeplitz(table, n)


def _toeplitz(table: Tensor, n: int) -> Tensor:
    K = (table.shape[-1] - 1) // 2
    i = torch.arange(n, device=table.device)
    return table[..., (i[:, None] - i[None, :]).clamp(-K, K) + K]


def circulant_bias(table: Tensor) -> Tensor:
    r"""A circulant matrix of relative biases: offsets taken modulo :math:`n`.

    .. math::

       B_{ij} = g\bigl((i - j) \bmod n\bigr), \qquad i, j = 1, \dots, n,

    where ``table[..., m]`` holds :math:`g(m)`. Every row is a cyclic shift of the first, so any
    row-wise normalisation gives every row the same sum.

    Args:
        table: the values :math:`g(0), \dots, g(n - 1)`, shape ``(..., n)``.

    Returns:
        A tensor of shape ``(..., n, n)``; gradients flow back into ``table``.

    Raises:
        ValueError: if ``table`` is 0-dimensional or holds NaN or infinity.
        TypeError: if ``table`` is not numeric.

    Used in: :doc:`/book/sequences/relative-position-probe-flaw`, eq. :eq:`rp-circulant`.
    """
    table = as_tensor(table, "table")
    if table.ndim == 0:
        raise ValueError("table must have at least one dimension, got a scalar")
    return _circulant(table)


def _circulant(table: Tensor) -> Tensor:
    n = table.shape[-1]
    i = torch.arange(n, device=table.device)
    return table[..., (i[:, None] - i[None, :]) % n]


def rope(x: Tensor, *, base: float = 10000.0, offset: int = 0) -> Tensor:
    r"""Rotary position embedding (RoPE) of a sequence of vectors, in real arithmetic.

    The features are taken in pairs :math:`(x_{2k}, x_{2k+1})`, and the pair at position :math:`m`
    is rotated by the angle :math:`m\theta_k`, :math:`\theta_k = \text{base}^{-2k/d}`:

    .. math::

       \begin{pmatrix} x'_{m,2k} \\ x'_{m,2k+1} \end{pmatrix}
       = \begin{pmatrix} \cos m\theta_k & -\sin m\theta_k \\ \sin m\theta_k & \cos m\theta_k
         \end{pmatrix}
         \begin{pmatrix} x_{m,2k} \\ x_{m,2k+1} \end{pmatrix},

    so that :math:`\langle x'_m, y'_l\rangle` depends on the positions only through :math:`m - l`.
    In complex notation the pair is :math:`x_{m,2k} + i\,x_{m,2k+1}`, multiplied by
    :math:`e^{i m\theta_k}`.

    Args:
        x: the vectors, shape ``(..., n, d)`` with an even ``d``; position ``m`` is row ``m`` of the
            second-to-last axis, counted from ``offset``.
        base: the base of the frequencies, a number :math:`> 0`.
        offset: the position of the first row, an integer :math:`\ge 0`.

    Returns:
        A tensor of the shape and dtype of ``x``.

    Raises:
        ValueError: if ``x`` has fewer than 2 dimensions, an odd last dimension, or holds NaN or
            infinity; if ``base`` is not positive or ``offset`` negative.
        TypeError: if ``x`` is not numeric, ``base`` is not a number or ``offset`` not an integer.

    Used in: :doc:`/book/sequences/relative-position-probe-flaw`, eq. :eq:`rp-rope`.
    """
    x = as_tensor(x, "x")
    base = check_positive(base, "base")
    offset = check_count(offset, "offset", minimum=0)
    if x.ndim < 2 or x.shape[-1] % 2 == 1:
        raise ValueError(f"x must have shape (..., n, d) with an even d, got {tuple(x.shape)}")
    return _rope(x, base, offset)


def _rope(x: Tensor, base: float = 10000.0, offset: int = 0) -> Tensor:
    n, d = x.shape[-2], x.shape[-1]
    theta = base ** (-torch.arange(0, d, 2, dtype=x.dtype, device=x.device) / d)
    angle = torch.arange(offset, offset + n, dtype=x.dtype, device=x.device)[:, None] * theta
    cos, sin = torch.cos(angle), torch.sin(angle)
    even, odd = x[..., 0::2], x[..., 1::2]
    out = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)
    return out.flatten(-2)


# --- attention with a choice of normaliser ----------------------------------------------------

def _check_norm(norm: object) -> str:
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    return str(norm)


def attention_weights(scores: Tensor, norm: Norm = "softmax", *, causal: bool = False) -> Tensor:
    r"""Attention weights from logits :math:`s_{ij}`, row by row, with one of four normalisers.

    .. math::

       \text{softmax: } a_{ij} = \frac{e^{s_{ij}}}{\sum_l e^{s_{il}}}, \quad
       \ell_2\text{: } a_{ij} = \frac{e^{s_{ij}}}{\sqrt{\sum_l e^{2 s_{il}}}}, \quad
       \text{exp: } a_{ij} = \frac{e^{s_{ij}}}{n}, \quad
       \text{relu2: } a_{ij} = \frac{\operatorname{relu}(s_{ij})^2}{n} .

    Only softmax makes every row sum to one; the :math:`\ell_2` row sums lie in
    :math:`[1, \sqrt{n}]` (Cauchy–Schwarz). ``relu2`` is GAU's normaliser; ``exp`` is softmax
    without its denominator, divided by the constant :math:`n` (as GAU does) so that the output
    keeps its scale. With ``causal``, entries :math:`j > i` are removed before normalising (and
    ``n`` in ``exp`` and ``relu2`` is the full length). Softmax and :math:`\ell_2` subtract the
    row maximum first, which changes nothing (both are invariant to a shift of the row).

    Args:
        scores: the logits, shape ``(..., n, n)``.
        norm: ``"softmax"``, ``"l2"``, ``"exp"`` or ``"relu2"``.
        causal: whether to mask out the entries above the diagonal.

    Returns:
        The weights, shape ``(..., n, n)``.

    Raises:
        ValueError: if ``scores`` is not a stack of square matrices or holds NaN or infinity, or
            ``norm`` is unknown.
        TypeError: if ``scores`` is not numeric.

    Used in: :doc:`/book/sequences/relative-position-probe-flaw`, eqs. :eq:`rp-softmax` and
    :eq:`rp-fixes`.
    """
    scores = as_tensor(scores, "scores")
    norm_name = _check_norm(norm)
    if scores.ndim < 2 or scores.shape[-1] != scores.shape[-2]:
        raise ValueError(f"scores must have shape (..., n, n), got {tuple(scores.shape)}")
    return _weights(scores, norm_name, causal)


def _weights(scores: Tensor, norm: str, causal: bool) -> Tensor:
    n = scores.shape[-1]
    mask = None
    if causal:
        mask = torch.ones(n, n, dtype=torch.bool, device=scores.device).triu(1)
    if norm == "relu2":
        w = torch.relu(scores) ** 2 / n
        return w if mask is None else w.masked_fill(mask, 0.0)
    if mask is not None:
        scores = scores.masked_fill(mask, -math.inf)
    if norm == "exp":
        return torch.exp(scores) / n
    e = torch.exp(scores - scores.amax(-1, keepdim=True).detach())
    if norm == "softmax":
        return e / e.sum(-1, keepdim=True)
    return e / e.square().sum(-1, keepdim=True).sqrt()


def relative_attention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None = None, *,
                       norm: Norm = "softmax", gate: Tensor | None = None,
                       causal: bool = False) -> Tensor:
    r"""Single-head attention with an additive relative bias, a normaliser and an optional gate.

    .. math::

       s_{ij} = \frac{q_i^\top k_j}{\sqrt d} + b_{ij}, \qquad
       a_{ij} = \operatorname{norm}(s_{i,:})_j, \qquad
       o_i = \sum_j a_{ij}\, c_{ij}\, v_j ,

    i.e. :math:`O = (A \odot C) V`; without a gate :math:`C` is all ones. With ``norm="softmax"``
    and no gate this is ``torch.nn.functional.scaled_dot_product_attention(q, k, v,
    attn_mask=bias)``. URPE takes a Toeplitz :math:`C`, :math:`c_{ij} = g_C(i - j)`
    (:func:`toeplitz_bias`).

    Args:
        q: queries, shape ``(..., n, d)``.
        k: keys, shape ``(..., n, d)``.
        v: values, shape ``(..., n, d_v)``.
        bias: the bias :math:`B`, broadcastable to ``(..., n, n)``; ``None`` for none.
        norm: the normaliser of :func:`attention_weights`.
        gate: the gate :math:`C`, broadcastable to ``(..., n, n)``; ``None`` for none.
        causal: whether position :math:`i` may attend only to :math:`j \le i`.

    Returns:
        The outputs :math:`o_i`, shape ``(..., n, d_v)``.

    Raises:
        ValueError: if the shapes do not match, an input holds NaN or infinity, or ``norm`` is
            unknown.
        TypeError: if an input is not numeric.

    Used in: :doc:`/book/sequences/relative-position-probe-flaw`, eqs. :eq:`rp-attention` and
    :eq:`rp-fixes`.
    """
    q = as_tensor(q, "q")
    k = as_tensor(k, "k")
    v = as_tensor(v, "v")
    norm_name = _check_norm(norm)
    if q.ndim < 2 or k.shape != q.shape:
        raise ValueError(f"q and k must have the same shape (..., n, d), got {tuple(q.shape)} "
                         f"and {tuple(k.shape)}")
    if v.ndim < 2 or v.shape[-2] != q.shape[-2]:
        raise ValueError(f"v must have shape (..., n, d_v) with n = {q.shape[-2]}, "
                         f"got {tuple(v.shape)}")
    n = q.shape[-2]
    checked = []
    for name, extra in (("bias", bias), ("gate", gate)):
        if extra is not None:
            extra = as_tensor(extra, name)
            if extra.ndim < 2 or extra.shape[-2:] != (n, n):
                raise ValueError(f"{name} must have shape (..., {n}, {n}), "
                                 f"got {tuple(extra.shape)}")
        checked.append(extra)
    return _attend(q, k, v, checked[0], norm_name, checked[1], causal)


def _attend(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None, norm: str,
            gate: Tensor | None, causal: bool) -> Tensor:
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if bias is not None:
        scores = scores + bias
    a = _weights(scores, norm, causal)
    if gate is not None:
        a = a * gate
    return a @ v


# --- tiny models on the probe -----------------------------------------------------------------

@dataclass(frozen=True)
class ProbeConfig:
    r"""A tiny Transformer for the probe: which position encoding, which normaliser, which fix.

    Each layer is pre-norm, :math:`x \leftarrow x + W_O\,\mathrm{Attn}(\mathrm{LN}(x))`, then
    :math:`x \leftarrow x + W_2\operatorname{relu}(W_1\,\mathrm{LN}(x) + b_1) + b_2`, with a layer
    norm without learned scale or shift; a linear read-out gives one number per position. ``pos`` is
    ``"none"``, ``"absolute"`` (a learned vector per position
    added to the input), ``"relative"`` (a learned Toeplitz bias, :func:`toeplitz_bias`, over all
    offsets), ``"circular"`` (a learned circulant bias, :func:`circulant_bias`) or ``"rope"``
    (:func:`rope` on queries and keys). ``gate`` adds URPE's learned Toeplitz gate;
    ``special_tokens`` surrounds the :math:`n` zeros with learned [CLS] and [SEP] tokens (their
    outputs are not scored).

    Attributes:
        n: the number of input zeros (and targets).
        d: the width of the model.
        layers: the number of layers.
        pos: the position encoding.
        norm: the attention normaliser (:func:`attention_weights`).
        gate: whether to use URPE's gate.
        special_tokens: whether to add [CLS] and [SEP].
        hidden: the width of the feed-forward block.

    Used in: :doc:`/book/sequences/relative-position-probe-flaw`, eq. :eq:`rp-model`.
    """

    n: int = 8
    d: int = 16
    layers: int = 1
    pos: Position = "relative"
    norm: Norm = "softmax"
    gate: bool = False
    special_tokens: bool = False
    hidden: int = 32

    def __post_init__(self) -> None:
        check_count(self.n, "n")
        check_count(self.d, "d", minimum=2)
        check_count(self.layers, "layers")
        check_count(self.hidden, "hidden")
        if self.pos not in POSITIONS:
            raise ValueError(f"pos must be one of {POSITIONS}, got {self.pos!r}")
        _check_norm(self.norm)
        if self.pos == "rope" and self.d % 2:
            raise ValueError(f"d must be even for rope, got {self.d}")

    @property
    def length(self) -> int:
        """Length of the model's input (``n``, plus two with the special tokens)."""
        return self.n + 2 * self.special_tokens


def init_probe(cfg: ProbeConfig, seeds: int, generator: torch.Generator) -> dict[str, Tensor]:
    r"""Initial parameters of ``seeds`` independent probe models, stacked on a leading axis.

    Weight matrices are :math:`\mathcal N(0, 1/\text{fan-in})`, embeddings and position vectors
    :math:`\mathcal N(0, 1)`, bias tables :math:`\mathcal N(0, 0.1^2)`; the gate table starts at
    one, the biases of the feed-forward block at zero and the read-out's bias at the targets' mean
    :math:`(n + 1)/2`, a common choice for regression (in an earlier version without layer norms,
    starting it at zero gave large initial errors that drove some seeds to switch attention off).
    All tensors are float64 leaves with ``requires_grad=True``.

    Args:
        cfg: the model.
        seeds: the number of models, an integer :math:`\ge 1`.
        generator: the source of randomness.

    Returns:
        A dict of tensors, each of shape ``(seeds, ...)``.

    Raises:
        ValueError: if ``seeds < 1``.
        TypeError: if ``cfg`` is not a :class:`ProbeConfig`, ``seeds`` not an integer or
            ``generator`` not a ``torch.Generator``.

    Used in: :doc:`/book/sequences/relative-position-probe-flaw`, eq. :eq:`rp-model`.
    """
    if not isinstance(cfg, ProbeConfig):
        raise TypeError(f"cfg must be a ProbeConfig, got {type(cfg).__name__}")
    S = check_count(seeds, "seeds")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    d, h, L = cfg.d, cfg.hidden, cfg.length
    f64 = torch.float64

    def randn(*shape: int, scale: float = 1.0) -> Tensor:
        return scale * torch.randn(S, *shape, generator=generator, dtype=f64)

    p: dict[str, Tensor] = {"emb": randn(d)}
    if cfg.special_tokens:
        p["cls"], p["sep"] = randn(d), randn(d)
    if cfg.pos == "absolute":
        p["pos"] = randn(L, d)
    for layer in range(cfg.layers):
        for name in ("wq", "wk", "wv", "wo"):
            p[f"{name}{layer}"] = randn(d, d, scale=d**-0.5)
        if cfg.pos == "relative":
            p[f"bias{layer}"] = randn(2 * L - 1, scale=0.1)
        elif cfg.pos == "circular":
            p[f"bias{layer}"] = randn(L, scale=0.1)
        if cfg.gate:
            p[f"gate{layer}"] = torch.ones(S, 2 * L - 1, dtype=f64)
        p[f"w1{layer}"] = randn(d, h, scale=d**-0.5)
        p[f"b1{layer}"] = torch.zeros(S, 1, h, dtype=f64)
        p[f"w2{layer}"] = randn(h, d, scale=h**-0.5)
        p[f"b2{layer}"] = torch.zeros(S, 1, d, dtype=f64)
    p["w_out"] = randn(d, 1, scale=d**-0.5)
    p["b_out"] = torch.full((S, 1, 1), (cfg.n + 1) / 2, dtype=f64)  # the targets' mean
    return {k: v.requires_grad_(True) for k, v in p.items()}


def probe_forward(params: dict[str, Tensor], cfg: ProbeConfig) -> Tensor:
    r"""The probe models' outputs for the input :math:`n` zeros (and [CLS], [SEP] if configured).

    The input is the zero token's embedding at every position, :math:`x_i = e` (plus a position
    vector :math:`p_i` with absolute encodings); the layers are those of :class:`ProbeConfig`.

    Args:
        params: the parameters of :func:`init_probe`, each of shape ``(S, ...)``.
        cfg: the model they belong to.

    Returns:
        The outputs at the :math:`n` zeros, shape ``(S, n)``.

    Raises:
        KeyError: if a parameter that ``cfg`` needs is missing.
        TypeError: if ``cfg`` is not a :class:`ProbeConfig`.

    Used in: :doc:`/book/sequences/relative-position-probe-flaw`, eq. :eq:`rp-model`.
    """
    if not isinstance(cfg, ProbeConfig):
        raise TypeError(f"cfg must be a ProbeConfig, got {type(cfg).__name__}")
    L, S = cfg.length, params["emb"].shape[0]
    x = params["emb"][:, None, :].expand(S, cfg.n, cfg.d)
    if cfg.special_tokens:
        x = torch.cat((params["cls"][:, None], x, params["sep"][:, None]), dim=1)
    if cfg.pos == "absolute":
        x = x + params["pos"]
    for layer in range(cfg.layers):
        xn = torch.nn.functional.layer_norm(x, (cfg.d,))
        q, k, v = (xn @ params[f"{name}{layer}"] for name in ("wq", "wk", "wv"))
        if cfg.pos == "rope":
            q, k = _rope(q), _rope(k)
        bias = None
        if cfg.pos == "relative":
            bias = _toeplitz(params[f"bias{layer}"], L)
        elif cfg.pos == "circular":
            bias = _circulant(params[f"bias{layer}"])
        gate = _toeplitz(params[f"gate{layer}"], L) if cfg.gate else None
        o = _attend(q, k, v, bias, cfg.norm, gate, False)
        x = x + o @ params[f"wo{layer}"]
        hid = torch.relu(torch.nn.functional.layer_norm(x, (cfg.d,)) @ params[f"w1{layer}"]
                         + params[f"b1{layer}"])
        x = x + hid @ params[f"w2{layer}"] + params[f"b2{layer}"]
    y = (x @ params["w_out"] + params["b_out"]).squeeze(-1)
    return y[:, 1:-1] if cfg.special_tokens else y


def train_probe(cfg: ProbeConfig, *, seeds: int = 5, steps: int = 300, lr: float = 1e-2,
                seed: int = 0) -> dict[str, Tensor]:
    r"""Train ``seeds`` probe models with full-batch Adam on the mean squared error.

    .. math::

       \mathcal L_s = \frac1n \sum_{i=1}^n \bigl(y_{s,i} - i\bigr)^2 ,

    one loss per seed :math:`s` (``torch.nn.functional.mse_loss``); the optimiser
    (``torch.optim.Adam``, fused) steps on their sum, which leaves the seeds independent. This is
    :func:`train_probes` with one model.

    Args:
        cfg: the model.
        seeds: the number of models, an integer :math:`\ge 1`.
        steps: the number of Adam steps, an integer :math:`\ge 1`.
        lr: the learning rate, :math:`> 0`.
        seed: the seed of the initialisation, an integer :math:`\ge 0`.

    Returns:
        ``{"loss": (steps + 1, seeds), "pred": (seeds, n)}``: the loss of every seed before each
        step and after the last, and the final outputs.

    Raises:
        ValueError: if ``seeds`` or ``steps`` is below one, ``lr`` not positive or ``seed``
            negative.
        TypeError: if ``cfg`` is not a :class:`ProbeConfig` or a count is not an integer.

    Used in: :doc:`/book/sequences/relative-position-probe-flaw`, eq. :eq:`rp-model`.
    """
    return train_probes([cfg], seeds=seeds, steps=steps, lr=lr, seed=seed)[0]


def train_probes(cfgs: Sequence[ProbeConfig], *, seeds: int = 5, steps: int = 300,
                 lr: float = 1e-2, seed: int = 0) -> list[dict[str, Tensor]]:
    r"""Train several probe models side by side, each exactly as :func:`train_probe` would.

    Every configuration gets its own ``seeds`` models, initialised from ``seed`` as in
    :func:`train_probe`. One ``torch.optim.Adam`` (fused) holds the parameters of all of them and
    steps on the sum of all their losses; the models share no parameter, so each gradient is that
    of its own model's loss, and Adam acts elementwise with the same settings for every tensor:
    each configuration follows the same trajectory as when trained alone (one backward pass and
    one optimiser step per iteration instead of one per configuration).

    Args:
        cfgs: the models, a non-empty sequence of :class:`ProbeConfig`.
        seeds: the number of models per configuration, an integer :math:`\ge 1`.
        steps: the number of Adam steps, an integer :math:`\ge 1`.
        lr: the learning rate, :math:`> 0`.
        seed: the seed of the initialisation, an integer :math:`\ge 0`.

    Returns:
        One dict per configuration, in order, as returned by :func:`train_probe`.

    Raises:
        ValueError: if ``cfgs`` is empty, ``seeds`` or ``steps`` is below one, ``lr`` not positive
            or ``seed`` negative.
        TypeError: if an element of ``cfgs`` is not a :class:`ProbeConfig` or a count is not an
            integer.

    Used in: :doc:`/book/sequences/relative-position-probe-flaw`, eq. :eq:`rp-model`.
    """
    cfgs = list(cfgs)
    if not cfgs:
        raise ValueError("cfgs must hold at least one ProbeConfig")
    steps = check_count(steps, "steps")
    lr = check_positive(lr, "lr")
    seed = check_count(seed, "seed", minimum=0)
    models = [init_probe(cfg, seeds, torch.Generator().manual_seed(seed)) for cfg in cfgs]
    targets = [probe_targets(cfg.n).expand(p["emb"].shape[0], cfg.n)
               for cfg, p in zip(cfgs, models, strict=True)]
    opt = torch.optim.Adam([t for p in models for t in p.values()], lr=lr, fused=True)
    history: list[list[Tensor]] = [[] for _ in cfgs]
    for _ in range(steps):
        losses = [torch.nn.functional.mse_loss(probe_forward(params, cfg), target,
                                               reduction="none").mean(-1)
                  for cfg, params, target in zip(cfgs, models, targets, strict=True)]
        for hist, loss in zip(history, losses, strict=True):
            hist.append(loss.detach())
        opt.zero_grad(set_to_none=True)
        torch.stack([loss.sum() for loss in losses]).sum().backward()
        opt.step()
    out = []
    with torch.no_grad():
        for cfg, params, target, hist in zip(cfgs, models, targets, history, strict=True):
            pred = probe_forward(params, cfg)
            hist.append(torch.nn.functional.mse_loss(pred, target, reduction="none").mean(-1))
            out.append({"loss": torch.stack(hist), "pred": pred})
    return out
