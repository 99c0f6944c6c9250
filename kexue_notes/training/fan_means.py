r"""Means of the fan dimensions for initialising non-square layers, and how their error compounds.

A linear layer :math:`y = xW` with :math:`m` inputs and :math:`n` outputs and i.i.d. zero-mean
weights of variance :math:`\sigma^2` multiplies the second moment of the activations by
:math:`m\sigma^2` on the forward pass and that of the gradients by :math:`n\sigma^2` on the
backward pass. Initialising with :math:`\sigma^2 = 1/M(m, n)` for some mean :math:`M` of the two
fans trades the two off (:func:`fan_mean`, :func:`init_variance`). The means used here are Lehmer
means :math:`L_p(m, n) = (m^p + n^p)/(m^{p-1} + n^{p-1})` (:func:`lehmer_mean`): harmonic
(:math:`p = 0`), geometric (:math:`p = 1/2`), arithmetic (:math:`p = 1`, Xavier/Glorot) and
contraharmonic (:math:`p = 2`, the least-squares choice of Su's post), plus the power mean of
order two, the root mean square (:func:`power_mean`), which is what "quadratic mean" usually names.

Through a chain of widths :math:`d_0 \to d_1 \to \dots \to d_L` the predicted factors multiply
(:func:`chain_factors`, :func:`block_factor`); :func:`propagate` measures them through a stack of
``torch.nn.Linear`` layers initialised by :func:`init_linear_`. Weights use torch's
``(out_features, in_features)`` layout: :func:`fans` reads ``fan_in = weight.shape[1]``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from kexue_notes._validate import check_count, check_positive, check_real

if TYPE_CHECKING:
    import torch

__all__ = [  # noqa: RUF022 -- in the order the module reads
    "lehmer_mean",
    "power_mean",
    "fan_mean",
    "init_variance",
    "chain_factors",
    "block_factor",
    "fans",
    "init_linear_",
    "linear_chain",
    "propagate",
]

#: The averaging rules :func:`fan_mean` knows, from the smallest mean to the largest (for m != n
#: the two one-sided rules sit at the ends: min(m, n) and max(m, n) are not fixed by name).
KINDS = ("fan_in", "fan_out", "harmonic", "geometric", "arithmetic", "quadratic", "contraharmonic")
_LEHMER_ORDER = {"harmonic": 0.0, "geometric": 0.5, "arithmetic": 1.0, "contraharmonic": 2.0}
_DISTS = ("normal", "uniform")


def lehmer_mean(m: float, n: float, p: float) -> float:
    r"""The Lehmer mean of order :math:`p` of two positive numbers.

    .. math::

       L_p(m, n) = \frac{m^p + n^p}{m^{p-1} + n^{p-1}},

    so :math:`L_0` is the harmonic mean :math:`2mn/(m+n)`, :math:`L_{1/2} = \sqrt{mn}` the
    geometric, :math:`L_1` the arithmetic and :math:`L_2 = (m^2+n^2)/(m+n)` the contraharmonic mean.
    :math:`L_p` increases with :math:`p` and lies between :math:`\min(m, n)` and :math:`\max(m, n)`.

    Args:
        m, n: positive reals (the fan-in and fan-out of a layer).
        p: the order, any finite real.

    Returns:
        :math:`L_p(m, n)`, a float.

    Raises:
        ValueError: if ``m`` or ``n`` is not positive and finite, or ``p`` is not finite.
        TypeError: if an argument is not a real number.

    Used in: :doc:`/book/training/nonsquare-init-means`, eq. :eq:`fan-lehmer`.
    """
    m = check_positive(m, "m")
    n = check_positive(n, "n")
    p = check_real(p, "p")
    # in logarithms, so that large |p| neither overflows nor underflows
    return math.exp(_logsumexp(p * math.log(m), p * math.log(n))
                    - _logsumexp((p - 1) * math.log(m), (p - 1) * math.log(n)))


def _logsumexp(u: float, v: float) -> float:
    hi = max(u, v)
    return hi + math.log1p(math.exp(min(u, v) - hi))


def power_mean(m: float, n: float, p: float) -> float:
    r"""The power (Hölder) mean of order :math:`p` of two positive numbers.

    .. math::

       M_p(m, n) = \Bigl(\frac{m^p + n^p}{2}\Bigr)^{1/p}, \qquad M_0(m, n) = \sqrt{mn},

    so :math:`M_2 = \sqrt{(m^2+n^2)/2}` is the quadratic mean (root mean square).

    Args:
        m, n: positive reals.
        p: the order, any finite real (:math:`p = 0` is the geometric mean, its limit).

    Returns:
        :math:`M_p(m, n)`, a float.

    Raises:
        ValueError: if ``m`` or ``n`` is not positive and finite, or ``p`` is not finite.
        TypeError: if an argument is not a real number.

    Used in: :doc:`/book/training/nonsquare-init-means`, eq. :eq:`fan-chain-of-means`.
    """
    m = check_positive(m, "m")
    n = check_positive(n, "n")
    p = check_real(p, "p")
    if p == 0:
        return math.sqrt(m * n)
    return math.exp((_logsumexp(p * math.log(m), p * math.log(n)) - math.log(2)) / p)


def _check_kind(kind: object) -> str:
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return kind


def fan_mean(fan_in: float, fan_out: float, kind: str) -> float:
    r"""The averaged dimension :math:`M(m, n)` of a layer with :math:`m` inputs, :math:`n` outputs.

    .. math::

       M = m \ (\texttt{fan\_in}),\quad n \ (\texttt{fan\_out}),\quad
       L_0 \ (\texttt{harmonic}),\quad
       \sqrt{mn} \ (\texttt{geometric}),\quad \tfrac{m+n}{2} \ (\texttt{arithmetic}),\quad
       \sqrt{\tfrac{m^2+n^2}{2}} \ (\texttt{quadratic}),\quad
       \tfrac{m^2+n^2}{m+n} \ (\texttt{contraharmonic}).

    The initialisation variance is :math:`1/M` (:func:`init_variance`).

    Args:
        fan_in: :math:`m`, the number of inputs (a positive real).
        fan_out: :math:`n`, the number of outputs (a positive real).
        kind: one of ``KINDS`` (the module constant).

    Returns:
        :math:`M(m, n)`, a float.

    Raises:
        ValueError: if a fan is not positive and finite, or ``kind`` is unknown.
        TypeError: if a fan is not a real number.

    Used in: :doc:`/book/training/nonsquare-init-means`, eq. :eq:`fan-chain-of-means`.
    """
    m = check_positive(fan_in, "fan_in")
    n = check_positive(fan_out, "fan_out")
    kind = _check_kind(kind)
    if kind == "fan_in":
        return m
    if kind == "fan_out":
        return n
    if kind == "quadratic":
        return power_mean(m, n, 2.0)
    return lehmer_mean(m, n, _LEHMER_ORDER[kind])


def init_variance(fan_in: float, fan_out: float, kind: str) -> float:
    r"""The weight variance :math:`\sigma^2 = 1/M(m, n)` of an averaging rule (:func:`fan_mean`).

    With ``kind="arithmetic"`` this is Glorot and Bengio's :math:`2/(m+n)`; with ``"fan_in"`` it is
    LeCun's :math:`1/m` (He et al.'s without the ReLU gain 2).

    Args:
        fan_in, fan_out: the layer's :math:`m` and :math:`n` (positive reals).
        kind: one of ``KINDS`` (the module constant).

    Returns:
        :math:`\sigma^2`, a float.

    Raises:
        ValueError, TypeError: as :func:`fan_mean`.

    Used in: :doc:`/book/training/nonsquare-init-means`, eq. :eq:`fan-layer-factors`.
    """
    return 1.0 / fan_mean(fan_in, fan_out, kind)


def _check_dims(dims: object) -> list[int]:
    if isinstance(dims, str | bytes) or not isinstance(dims, Sequence | np.ndarray):
        raise TypeError(f"dims must be a sequence of integers, got {type(dims).__name__}")
    out = [check_count(d, "dims") for d in dims]
    if len(out) < 2:
        raise ValueError(f"dims must hold at least two widths (one layer), got {len(out)}")
    return out


def chain_factors(dims: Sequence[int],
                  kind: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Predicted second-moment factors through a chain of linear layers of widths ``dims``.

    Layer :math:`i` maps :math:`d_{i-1} \to d_i` with weight variance
    :math:`\sigma_i^2 = 1/M(d_{i-1}, d_i)`. With i.i.d. zero-mean weights, independent across
    layers,

    .. math::

       F_k = \prod_{i=1}^{k} d_{i-1}\sigma_i^2, \qquad
       B_k = \prod_{i=k+1}^{L} d_i\sigma_i^2, \qquad k = 0, \dots, L,

    are the expected second moments of the activation after layer :math:`k` relative to the input
    (forward) and of the gradient with respect to it relative to the gradient at the output
    (backward); :math:`F_0 = B_L = 1`.

    Args:
        dims: the widths :math:`d_0, \dots, d_L`, integers :math:`\ge 1`, at least two.
        kind: one of ``KINDS`` (the module constant).

    Returns:
        ``(F, B)``, two float64 arrays of shape ``(L + 1,)``.

    Raises:
        ValueError: if ``dims`` has fewer than two entries or one below 1, or ``kind`` is unknown.
        TypeError: if ``dims`` is not a sequence of integers.

    Used in: :doc:`/book/training/nonsquare-init-means`, eq. :eq:`fan-chain`.
    """
    d = _check_dims(dims)
    kind = _check_kind(kind)
    var = np.array([init_variance(a, b, kind) for a, b in itertools.pairwise(d)])
    d_arr = np.asarray(d, dtype=np.float64)
    fwd = np.concatenate([[1.0], np.cumprod(d_arr[:-1] * var)])
    per_layer_bwd = d_arr[1:] * var
    bwd = np.concatenate([np.cumprod(per_layer_bwd[::-1])[::-1], [1.0]])
    return fwd, bwd


def block_factor(m: float, n: float, kind: str) -> float:
    r"""The variance factor of one :math:`m \to n \to m` block: :math:`mn\,\sigma^4 = mn/M(m, n)^2`.

    It is the same forward and backward for the symmetric means (and equals 1 for ``fan_in`` and
    ``fan_out``, whose two layers get different variances: :math:`(m/m)(n/n)`).

    Args:
        m, n: the outer and inner widths (positive reals).
        kind: one of ``KINDS`` (the module constant).

    Returns:
        The factor, a float; after :math:`K` blocks it is raised to the power :math:`K`.

    Raises:
        ValueError, TypeError: as :func:`fan_mean`, with the names ``fan_in``/``fan_out``.

    Used in: :doc:`/book/training/nonsquare-init-means`, eq. :eq:`fan-block`.
    """
    return m * init_variance(m, n, kind) * n * init_variance(n, m, kind)


def fans(weight: torch.Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a 2-D weight in torch's ``(out_features, in_features)`` layout.

    Args:
        weight: a 2-D tensor of shape ``(fan_out, fan_in)``, as ``torch.nn.Linear.weight``.

    Returns:
        ``(weight.shape[1], weight.shape[0])``, as ``torch.nn.init`` reads them.

    Raises:
        TypeError: if ``weight`` is not a torch tensor.
        ValueError: if ``weight`` is not 2-D.

    Used in: :doc:`/book/training/nonsquare-init-means`, section "Cross-check".
    """
    import torch

    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"weight must be a torch tensor, got {type(weight).__name__}")
    if weight.ndim != 2:
        raise ValueError(f"weight must be 2-D (out_features, in_features), got shape "
                         f"{tuple(weight.shape)}")
    return int(weight.shape[1]), int(weight.shape[0])


def init_linear_(weight: torch.Tensor, kind: str, dist: str = "normal",
                 generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Fill a linear layer's weight in place with zero-mean noise of variance :math:`1/M(m, n)`.

    .. math::

       w \sim \mathcal N\bigl(0, 1/M\bigr) \quad\text{or}\quad
       w \sim \mathcal U\bigl(-\sqrt{3/M}, \sqrt{3/M}\bigr),
       \qquad M = M(m, n) \text{ of } \texttt{kind},

    with :math:`m, n` read by :func:`fans` (torch's layout). Sampling goes through
    ``torch.nn.init.normal_`` / ``uniform_``, so ``kind="arithmetic"`` draws what
    ``torch.nn.init.xavier_normal_`` / ``xavier_uniform_`` draw from the same generator state.

    Args:
        weight: a 2-D floating tensor of shape ``(fan_out, fan_in)``.
        kind: one of ``KINDS`` (the module constant).
        dist: ``"normal"`` or ``"uniform"``.
        generator: the ``torch.Generator`` to sample from (``None``: torch's global one).

    Returns:
        ``weight``, filled.

    Raises:
        ValueError: if ``weight`` is not 2-D or not floating, or ``kind`` or ``dist`` is unknown.
        TypeError: if ``weight`` is not a tensor.

    Used in: :doc:`/book/training/nonsquare-init-means`, eq. :eq:`fan-layer-factors`.
    """
    import torch

    m, n = fans(weight)
    kind = _check_kind(kind)
    if dist not in _DISTS:
        raise ValueError(f"dist must be one of {_DISTS}, got {dist!r}")
    if not weight.is_floating_point():
        raise ValueError(f"weight must be a floating tensor, got dtype {weight.dtype}")
    std = math.sqrt(init_variance(m, n, kind))
    if dist == "normal":
        return torch.nn.init.normal_(weight, 0.0, std, generator=generator)
    bound = math.sqrt(3.0) * std
    return torch.nn.init.uniform_(weight, -bound, bound, generator=generator)


def linear_chain(dims: Sequence[int], kind: str, dist: str = "normal",
                 generator: torch.Generator | None = None,
                 dtype: torch.dtype | None = None) -> torch.nn.Sequential:
    r"""A stack of bias-free ``torch.nn.Linear`` layers :math:`d_0 \to d_1 \to \dots \to d_L`.

    Each weight is filled by :func:`init_linear_` with ``kind`` and ``dist``, layer after layer from
    ``generator``.

    Args:
        dims: the widths, integers :math:`\ge 1`, at least two.
        kind: one of ``KINDS`` (the module constant).
        dist: ``"normal"`` or ``"uniform"``.
        generator: the ``torch.Generator`` to sample from.
        dtype: the layers' dtype (default float64).

    Returns:
        A ``torch.nn.Sequential`` of :math:`L` linear layers.

    Raises:
        ValueError, TypeError: as :func:`chain_factors` and :func:`init_linear_`.

    Used in: :doc:`/book/training/nonsquare-init-means`, section "Numerical check".
    """
    import torch

    d = _check_dims(dims)
    kind = _check_kind(kind)
    dtype = torch.float64 if dtype is None else dtype
    layers = [torch.nn.Linear(a, b, bias=False, dtype=dtype)
              for a, b in itertools.pairwise(d)]
    with torch.no_grad():
        for layer in layers:
            init_linear_(layer.weight, kind, dist, generator)
    return torch.nn.Sequential(*layers)


def propagate(net: torch.nn.Sequential, batch: int,
              generator: torch.Generator | None = None) -> tuple[NDArray[np.float64],
                                                                 NDArray[np.float64]]:
    r"""Measure second moments forward and backward through a stack of linear layers.

    Draws :math:`x \in \mathbb R^{B \times d_0}` and an output gradient
    :math:`g \in \mathbb R^{B \times d_L}` with i.i.d. standard normal entries, runs
    :math:`h_k = h_{k-1} W_k^\top` (``net``'s layers) and back-propagates :math:`g` with autograd.

    .. math::

       \hat F_k = \frac{\overline{h_k^2}}{\overline{x^2}}, \qquad
       \hat B_k = \frac{\overline{(\partial \ell/\partial h_k)^2}}{\overline{g^2}},
       \qquad \ell = \textstyle\sum h_L \odot g,

    with bars the mean over batch and units; their expectations are :func:`chain_factors`.

    Args:
        net: a ``torch.nn.Sequential`` of ``torch.nn.Linear`` layers (as :func:`linear_chain`
            builds).
        batch: :math:`B`, the number of input rows (an integer :math:`\ge 1`).
        generator: the ``torch.Generator`` for :math:`x` and :math:`g`.

    Returns:
        ``(F_hat, B_hat)``, two float64 arrays of shape ``(L + 1,)``.

    Raises:
        TypeError: if ``net`` is not a ``Sequential`` of ``Linear`` layers.
        ValueError: if ``batch`` is below 1, or consecutive layers' widths do not match.

    Used in: :doc:`/book/training/nonsquare-init-means`, section "Numerical check".
    """
    import torch

    if not isinstance(net, torch.nn.Sequential) or len(net) == 0 or not all(
            isinstance(layer, torch.nn.Linear) for layer in net):
        raise TypeError("net must be a non-empty torch.nn.Sequential of torch.nn.Linear layers")
    batch = check_count(batch, "batch")
    layers = [layer for layer in net if isinstance(layer, torch.nn.Linear)]
    for a, b in itertools.pairwise(layers):
        if a.out_features != b.in_features:
            raise ValueError(f"net's widths do not chain: {a.out_features} -> {b.in_features}")
    w0 = layers[0].weight
    x = torch.randn(batch, layers[0].in_features, generator=generator, dtype=w0.dtype,
                    device=w0.device).requires_grad_(True)
    hs = [x]
    for layer in layers:
        hs.append(layer(hs[-1]))
    g = torch.randn(hs[-1].shape, generator=generator, dtype=w0.dtype, device=w0.device)
    grads = torch.autograd.grad(hs[-1], hs, grad_outputs=g)   # leaves the weights' .grad alone
    x2 = float((x.detach() ** 2).mean())
    g2 = float((g**2).mean())
    fwd = np.array([float((h.detach() ** 2).mean()) / x2 for h in hs])
    bwd = np.array([float((gr**2).mean()) / g2 for gr in grads])
    return fwd, bwd
