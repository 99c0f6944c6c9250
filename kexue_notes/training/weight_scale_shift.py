r"""Weight-scale shifts of ReLU networks, the L2 penalty, and the shift-invariant WEISSI penalty.

A network :math:`h_l = \phi(W_l h_{l-1} + b_l)` with a positively homogeneous activation
(:math:`\phi(\gamma z) = \gamma\phi(z)` for :math:`\gamma \ge 0`, as ReLU) computes the same
function after the shift :math:`W_l \mapsto \gamma_l W_l`, :math:`b_l \mapsto \Gamma_l b_l` with
:math:`\Gamma_l = \prod_{k \le l}\gamma_k` and :math:`\Gamma_L = 1` (:func:`shift_weight_scales`,
:func:`mlp_forward`). The L2 penalty :math:`\sum_l\lVert W_l\rVert_F^2` (:func:`l2_penalty`) is not
invariant: over the shifts it is smallest when all layer norms are equal
(:func:`balancing_gammas`, :func:`l2_shift_minimum`). The WEISSI penalty of Liu, Cui and Chan,
:math:`\lambda_1\sum_l\log\lVert W_l\rVert + \lambda_2\sum_l\lVert W_l/\lVert W_l\rVert\rVert_1`
(:func:`log_norm_penalty`, :func:`direction_l1_penalty`, :func:`weissi_penalty`), is invariant.

:func:`decayed_sgd_step` is SGD with weight decay written out, :func:`optimizer_trajectory` runs a
torch optimizer on a loss and keeps every iterate, and :func:`init_mlp_stack` with
:func:`train_mlp_stack` train a stack of independent small MLPs (one per seed and penalty) in one
batched computation.

Weights follow torch's ``nn.Linear``: :math:`W_l` has shape ``(..., n_l, n_{l-1})`` and
:math:`b_l` shape ``(..., n_l)``; leading axes ``...`` index a stack of independent networks.
"""

from __future__ import annotations

import gzip
import importlib.util
import itertools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from kexue_notes._validate import as_tensor, check_count, check_positive

__all__ = [  # noqa: RUF022 -- in the order the module reads
    "mlp_forward",
    "shift_weight_scales",
    "l2_penalty",
    "log_norm_penalty",
    "direction_l1_penalty",
    "weissi_penalty",
    "balancing_gammas",
    "l2_shift_minimum",
    "decayed_sgd_step",
    "optimizer_trajectory",
    "init_mlp_stack",
    "train_mlp_stack",
    "digits_arrays",
]

BIAS_SCALINGS = ("cumulative", "per_layer")


def _check_layers(weights: Sequence[Tensor], name: str = "weights") -> list[Tensor]:
    if isinstance(weights, Tensor) or not isinstance(weights, Sequence) or len(weights) == 0:
        raise ValueError(f"{name} must be a non-empty sequence of tensors, one per layer")
    out = [as_tensor(w, f"{name}[{i}]") for i, w in enumerate(weights)]
    for i, w in enumerate(out):
        if w.ndim < 2:
            raise ValueError(f"{name}[{i}] must have shape (..., n_out, n_in), "
                             f"got {tuple(w.shape)}")
    return out


def _check_network(weights: Sequence[Tensor],
                   biases: Sequence[Tensor] | None) -> tuple[list[Tensor], list[Tensor] | None]:
    ws = _check_layers(weights)
    for i in range(1, len(ws)):
        if ws[i].shape[-1] != ws[i - 1].shape[-2]:
            raise ValueError(f"weights[{i}] must take {ws[i - 1].shape[-2]} inputs, got shape "
                             f"{tuple(ws[i].shape)}")
    if biases is None:
        return ws, None
    if isinstance(biases, Tensor) or not isinstance(biases, Sequence) or len(biases) != len(ws):
        raise ValueError(f"biases must be a sequence of {len(ws)} tensors, one per layer")
    bs = [as_tensor(b, f"biases[{i}]") for i, b in enumerate(biases)]
    for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
        if b.shape != w.shape[:-1]:
            raise ValueError(f"biases[{i}] must have shape {tuple(w.shape[:-1])}, "
                             f"got {tuple(b.shape)}")
    return ws, bs


def mlp_forward(x: Tensor, weights: Sequence[Tensor], biases: Sequence[Tensor] | None = None,
                activation: Callable[[Tensor], Tensor] = torch.relu,
                final_activation: bool = False) -> Tensor:
    r"""A fully connected network, :math:`h_0 = x`, :math:`h_l = \phi(W_l h_{l-1} + b_l)`.

    .. math::

       z_l = h_{l-1} W_l^\top + b_l, \qquad h_l = \phi(z_l)\ (l < L), \qquad
       f(x) = z_L \text{ (or } \phi(z_L) \text{ if ``final_activation``)} .

    Args:
        x: inputs, shape ``(..., N, n_0)``; leading axes broadcast against those of the weights.
        weights: :math:`W_1, \dots, W_L`, shapes ``(..., n_l, n_{l-1})``.
        biases: :math:`b_1, \dots, b_L`, shapes ``(..., n_l)``; ``None`` for a network without
            biases.
        activation: :math:`\phi`, applied elementwise (default ReLU).
        final_activation: whether :math:`\phi` is applied to the last layer too (the post's
            :math:`h_L`); logits for a classifier leave it off.

    Returns:
        The outputs, shape ``(..., N, n_L)``.

    Raises:
        ValueError: if the layer shapes do not chain, a bias has the wrong shape, ``x`` has the
            wrong last axis, or an input is not finite.

    Used in: :doc:`/book/training/weight-scale-shift`, eq. :eq:`wss-network`.
    """
    ws, bs = _check_network(weights, biases)
    x = as_tensor(x, "x")
    if x.ndim < 2 or x.shape[-1] != ws[0].shape[-1]:
        raise ValueError(f"x must have shape (..., N, {ws[0].shape[-1]}), got {tuple(x.shape)}")
    h = x
    for i, w in enumerate(ws):
        h = h @ w.transpose(-1, -2)
        if bs is not None:
            h = h + bs[i].unsqueeze(-2)
        if i < len(ws) - 1 or final_activation:
            h = activation(h)
    return h


def _check_gammas(gammas: object, n_layers: int) -> Tensor:
    g = as_tensor(gammas, "gammas")
    if g.ndim < 1 or g.shape[-1] != n_layers:
        raise ValueError(f"gammas must have shape (..., {n_layers}), one per layer, "
                         f"got {tuple(g.shape)}")
    if bool((g <= 0).any()):
        raise ValueError("gammas must be > 0 (positive homogeneity holds for positive scales)")
    return g


def shift_weight_scales(weights: Sequence[Tensor], biases: Sequence[Tensor] | None,
                        gammas: Tensor | Sequence[float],
                        bias_scaling: str = "cumulative",
                        ) -> tuple[list[Tensor], list[Tensor] | None]:
    r"""Shift the layer scales: :math:`W_l \mapsto \gamma_l W_l`, :math:`b_l \mapsto c_l b_l`.

    .. math::

       c_l = \Gamma_l = \prod_{k=1}^{l}\gamma_k \ \text{(``"cumulative"``)}, \qquad
       c_l = \gamma_l \ \text{(``"per_layer"``, the scaling printed in the post)} .

    With ``"cumulative"`` every pre-activation is multiplied by :math:`\Gamma_l`, so a ReLU
    network's output is multiplied by :math:`\Gamma_L = \prod_l \gamma_l`: unchanged when the
    product is 1.
    With ``"per_layer"`` that holds only if the network has no biases.

    Args:
        weights: :math:`W_l`, shapes ``(..., n_l, n_{l-1})``.
        biases: :math:`b_l`, shapes ``(..., n_l)``, or ``None``.
        gammas: :math:`\gamma_l > 0`, shape ``(L,)`` or ``(..., L)`` (one set per stacked network).
        bias_scaling: ``"cumulative"`` or ``"per_layer"``.

    Returns:
        The shifted ``(weights, biases)`` (new tensors; ``biases`` is ``None`` if it was).

    Raises:
        ValueError: if a ``gamma`` is not positive, ``gammas`` has the wrong length,
            ``bias_scaling`` is unknown, or the layers are malformed.

    Used in: :doc:`/book/training/weight-scale-shift`, eq. :eq:`wss-shift`.
    """
    if bias_scaling not in BIAS_SCALINGS:
        raise ValueError(f"bias_scaling must be one of {BIAS_SCALINGS}, got {bias_scaling!r}")
    ws, bs = _check_network(weights, biases)
    g = _check_gammas(gammas, len(ws)).to(ws[0].dtype)
    cum = torch.cumprod(g, dim=-1)
    new_w = [w * g[..., i, None, None] for i, w in enumerate(ws)]
    if bs is None:
        return new_w, None
    scale = cum if bias_scaling == "cumulative" else g
    return new_w, [b * scale[..., i, None] for i, b in enumerate(bs)]


def _frobenius(ws: list[Tensor]) -> Tensor:
    """Layer norms stacked on the last axis, shape (..., L)."""
    return torch.stack([torch.linalg.matrix_norm(w) for w in ws], dim=-1)


def l2_penalty(weights: Sequence[Tensor]) -> Tensor:
    r"""The L2 penalty on the weights, :math:`\sum_l \lVert W_l\rVert_F^2`.

    Args:
        weights: :math:`W_l`, shapes ``(..., n_l, n_{l-1})``.

    Returns:
        The penalty, shape ``(...)``.

    Raises:
        ValueError: if ``weights`` is empty, a weight is not at least 2-D, or not finite.

    Used in: :doc:`/book/training/weight-scale-shift`, eq. :eq:`wss-l2-shift`.
    """
    ws = _check_layers(weights)
    return sum((w * w).sum(dim=(-2, -1)) for w in ws)  # type: ignore[return-value]


def log_norm_penalty(weights: Sequence[Tensor]) -> Tensor:
    r"""The log-norm part of WEISSI, :math:`\sum_l \log\lVert W_l\rVert_F
    = \log\prod_l \lVert W_l\rVert_F`.

    Its gradient with respect to :math:`W_l` is :math:`W_l/\lVert W_l\rVert_F^2`.

    Args:
        weights: :math:`W_l`, shapes ``(..., n_l, n_{l-1})``, none of them zero.

    Returns:
        The penalty, shape ``(...)``.

    Raises:
        ValueError: if a weight matrix is zero (its log-norm is :math:`-\infty`) or malformed.

    Used in: :doc:`/book/training/weight-scale-shift`, eq. :eq:`wss-weissi`.
    """
    norms = _frobenius(_check_layers(weights))
    if bool((norms == 0).any()):
        raise ValueError("weights: a weight matrix is zero, its log-norm is -inf")
    return torch.log(norms).sum(dim=-1)


def direction_l1_penalty(weights: Sequence[Tensor]) -> Tensor:
    r"""The direction part of WEISSI, :math:`\sum_l \lVert W_l/\lVert W_l\rVert_F\rVert_1`.

    The L1 norm is the sum of absolute entries; the term depends on each :math:`W_l` only
    through its direction, so it is invariant under any positive rescaling of a layer.

    Args:
        weights: :math:`W_l`, shapes ``(..., n_l, n_{l-1})``, none of them zero.

    Returns:
        The penalty, shape ``(...)``.

    Raises:
        ValueError: if a weight matrix is zero (its direction is undefined) or malformed.

    Used in: :doc:`/book/training/weight-scale-shift`, eq. :eq:`wss-weissi`.
    """
    ws = _check_layers(weights)
    norms = _frobenius(ws)
    if bool((norms == 0).any()):
        raise ValueError("weights: a weight matrix is zero, its direction is undefined")
    return sum(w.abs().sum(dim=(-2, -1)) / norms[..., i]  # type: ignore[return-value]
               for i, w in enumerate(ws))


def weissi_penalty(weights: Sequence[Tensor], lam1: float, lam2: float) -> Tensor:
    r"""The WEISSI penalty of Liu, Cui and Chan, as written in the post.

    .. math::

       \mathcal L_{\mathrm{reg}} = \lambda_1 \sum_l \log\lVert W_l\rVert_F
       + \lambda_2 \sum_l \bigl\lVert W_l/\lVert W_l\rVert_F\bigr\rVert_1 .

    Args:
        weights: :math:`W_l`, shapes ``(..., n_l, n_{l-1})``, none of them zero.
        lam1: :math:`\lambda_1 \ge 0`.
        lam2: :math:`\lambda_2 \ge 0`.

    Returns:
        The penalty, shape ``(...)``.

    Raises:
        ValueError: if ``lam1`` or ``lam2`` is negative or not finite, or a weight is zero.
        TypeError: if ``lam1`` or ``lam2`` is not a real number.

    Used in: :doc:`/book/training/weight-scale-shift`, eq. :eq:`wss-weissi`.
    """
    lam1 = check_positive(lam1, "lam1", allow_zero=True)
    lam2 = check_positive(lam2, "lam2", allow_zero=True)
    return lam1 * log_norm_penalty(weights) + lam2 * direction_l1_penalty(weights)


def balancing_gammas(weights: Sequence[Tensor]) -> Tensor:
    r"""The shift with :math:`\prod_l\gamma_l = 1` that makes all layer norms equal.

    .. math::

       \gamma_l = \frac{\bar a}{a_l}, \qquad a_l = \lVert W_l\rVert_F, \qquad
       \bar a = \Bigl(\prod_{k=1}^L a_k\Bigr)^{1/L},

    so :math:`\lVert\gamma_l W_l\rVert_F = \bar a` for every layer. Computed through logarithms.

    Args:
        weights: :math:`W_l`, shapes ``(..., n_l, n_{l-1})``, none of them zero.

    Returns:
        :math:`\gamma`, shape ``(..., L)``; pass it to :func:`shift_weight_scales`.

    Raises:
        ValueError: if a weight matrix is zero or malformed.

    Used in: :doc:`/book/training/weight-scale-shift`, eq. :eq:`wss-amgm`.
    """
    norms = _frobenius(_check_layers(weights))
    if bool((norms == 0).any()):
        raise ValueError("weights: a weight matrix is zero, it cannot be balanced")
    log_a = torch.log(norms)
    return torch.exp(log_a.mean(dim=-1, keepdim=True) - log_a)


def l2_shift_minimum(norms: Tensor | Sequence[float]) -> Tensor:
    r"""The smallest L2 penalty over all shifts with :math:`\prod_l\gamma_l = 1` (AM–GM).

    .. math::

       \min_{\prod_l\gamma_l = 1}\ \sum_{l=1}^L \gamma_l^2 a_l^2
       = L\Bigl(\prod_{l=1}^L a_l\Bigr)^{2/L}, \qquad a_l = \lVert W_l\rVert_F .

    Args:
        norms: the layer norms :math:`a_l > 0`, shape ``(..., L)``.

    Returns:
        The minimum, shape ``(...)``.

    Raises:
        ValueError: if a norm is not positive or not finite.

    Used in: :doc:`/book/training/weight-scale-shift`, eq. :eq:`wss-amgm`.
    """
    a = as_tensor(norms, "norms")
    if a.ndim < 1 or a.shape[-1] == 0:
        raise ValueError(f"norms must have shape (..., L) with L >= 1, got {tuple(a.shape)}")
    if bool((a <= 0).any()):
        raise ValueError("norms must be > 0")
    n_layers = a.shape[-1]
    return n_layers * torch.exp(2 * torch.log(a).mean(dim=-1))


def decayed_sgd_step(theta: Tensor, grad: Tensor, lr: float, weight_decay: float) -> Tensor:
    r"""One SGD step with weight decay, written out.

    .. math::

       \theta_t = (1 - \varepsilon\lambda)\,\theta_{t-1} - \varepsilon\, g_t ,

    which is plain SGD on :math:`\mathcal L + \tfrac{\lambda}{2}\lVert\theta\rVert^2`.

    Args:
        theta: :math:`\theta_{t-1}`, any shape.
        grad: :math:`g_t`, the gradient of the task loss, the shape of ``theta``.
        lr: :math:`\varepsilon > 0`.
        weight_decay: :math:`\lambda \ge 0`.

    Returns:
        :math:`\theta_t`, the shape of ``theta``.

    Raises:
        ValueError: if the shapes differ, ``lr`` is not positive, ``weight_decay`` is negative, or
            an input is not finite.
        TypeError: if ``lr`` or ``weight_decay`` is not a real number.

    Used in: :doc:`/book/training/weight-scale-shift`, eq. :eq:`wss-sgd-decay`.
    """
    theta = as_tensor(theta, "theta")
    grad = as_tensor(grad, "grad")
    if grad.shape != theta.shape:
        raise ValueError(f"grad must have the shape of theta {tuple(theta.shape)}, "
                         f"got {tuple(grad.shape)}")
    lr = check_positive(lr, "lr")
    weight_decay = check_positive(weight_decay, "weight_decay", allow_zero=True)
    return (1 - lr * weight_decay) * theta - lr * grad


def optimizer_trajectory(loss_fn: Callable[[Tensor], Tensor], theta0: Tensor,
                         make_optimizer: Callable[[list[Tensor]], torch.optim.Optimizer],
                         steps: int,
                         before_step: Callable[[Tensor], None] | None = None) -> Tensor:
    r"""Run a torch optimizer on ``loss_fn`` from ``theta0`` and keep every iterate.

    .. math::

       \theta_0, \theta_1 = \mathrm{opt}(\theta_0, \nabla\mathcal L(\theta_0)), \dots,
       \theta_T .

    Args:
        loss_fn: maps the parameter tensor (shape of ``theta0``) to a 0-d loss.
        theta0: the starting point, any shape (copied; not modified).
        make_optimizer: builds the optimizer from ``[param]``, e.g.
            ``lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1)``.
        steps: the number of steps :math:`T \ge 1`.
        before_step: optional, called as ``before_step(param)`` under ``torch.no_grad()`` after the
            gradient is computed and before ``optimizer.step()`` (e.g. a manual decoupled decay).

    Returns:
        The iterates, shape ``(T + 1, *theta0.shape)``.

    Raises:
        ValueError: if ``theta0`` is not finite, ``steps`` is below 1, or ``loss_fn`` does not
            return a 0-d tensor.
        TypeError: if ``steps`` is not an integer.

    Used in: :doc:`/book/training/weight-scale-shift`, eq. :eq:`wss-adamw`.
    """
    theta0 = as_tensor(theta0, "theta0")
    steps = check_count(steps, "steps")
    p = theta0.detach().clone().requires_grad_(True)
    opt = make_optimizer([p])
    out = [p.detach().clone()]
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(p)
        if not isinstance(loss, Tensor) or loss.ndim != 0:
            raise ValueError("loss_fn must return a 0-d tensor (a scalar loss)")
        loss.backward()
        if before_step is not None:
            with torch.no_grad():
                before_step(p)
        opt.step()
        out.append(p.detach().clone())
    return torch.stack(out)


def init_mlp_stack(sizes: Sequence[int], seeds: Sequence[int],
                   dtype: torch.dtype = torch.float32) -> tuple[list[Tensor], list[Tensor]]:
    r"""Weights and biases of ``len(seeds)`` networks, each initialised as ``torch.nn.Linear`` does.

    Every network :math:`m` gets its own ``torch.Generator().manual_seed(seeds[m])``, and each
    layer draws :math:`W_l` by ``torch.nn.init.kaiming_uniform_(W, a=sqrt(5))`` and :math:`b_l`
    uniformly on :math:`\pm 1/\sqrt{n_{l-1}}`, the default of ``nn.Linear``.

    Args:
        sizes: the widths :math:`(n_0, \dots, n_L)`, at least two.
        seeds: one integer seed per network.
        dtype: the floating dtype.

    Returns:
        ``(weights, biases)`` with shapes ``(M, n_l, n_{l-1})`` and ``(M, n_l)``,
        ``M = len(seeds)``.

    Raises:
        ValueError: if there are fewer than two widths, a width is below 1, or no seed.
        TypeError: if a width or a seed is not an integer.

    Used in: :doc:`/book/training/weight-scale-shift`, eq. :eq:`wss-network`.
    """
    if isinstance(sizes, str | bytes) or not isinstance(sizes, Sequence) or len(sizes) < 2:
        raise ValueError("sizes must be a sequence of at least two layer widths")
    sizes = [check_count(s, "sizes") for s in sizes]
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Sequence) or len(seeds) == 0:
        raise ValueError("seeds must be a non-empty sequence of integers")
    seeds = [check_count(s, "seeds", minimum=0) for s in seeds]
    weights: list[list[Tensor]] = [[] for _ in sizes[1:]]
    biases: list[list[Tensor]] = [[] for _ in sizes[1:]]
    for seed in seeds:
        gen = torch.Generator().manual_seed(seed)
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            w = torch.empty(n_out, n_in, dtype=dtype)
            torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=gen)
            bound = 1 / math.sqrt(n_in)
            b = torch.empty(n_out, dtype=dtype)
            torch.nn.init.uniform_(b, -bound, bound, generator=gen)
            weights[i].append(w)
            biases[i].append(b)
    return [torch.stack(w) for w in weights], [torch.stack(b) for b in biases]


def _per_model(value: Tensor | Sequence[float] | float, n_models: int, name: str,
               dtype: torch.dtype) -> Tensor:
    v = as_tensor(value, name, dtype=dtype).to(dtype)
    if v.ndim == 0:
        v = v.expand(n_models)
    if v.shape != (n_models,):
        raise ValueError(f"{name} must be a number or have shape ({n_models},), "
                         f"got {tuple(v.shape)}")
    if bool((v < 0).any()):
        raise ValueError(f"{name} must be >= 0")
    return v


def train_mlp_stack(x: Tensor, y: Tensor, weights: Sequence[Tensor], biases: Sequence[Tensor], *,
                    l2: Tensor | Sequence[float] | float = 0.0,
                    log_norm: Tensor | Sequence[float] | float = 0.0,
                    direction_l1: Tensor | Sequence[float] | float = 0.0,
                    steps: int = 300, lr: float = 0.1, momentum: float = 0.9,
                    x_test: Tensor | None = None, y_test: Tensor | None = None,
                    record_every: int = 10) -> dict[str, Any]:
    r"""Full-batch SGD on a stack of ``M`` independent ReLU classifiers, each with its own penalty.

    Network :math:`m` minimises

    .. math::

       \mathcal L_m = \mathrm{CE}_m + \mu_m\sum_l\lVert W_l\rVert_F^2
       + \lambda_{1,m}\sum_l\log\lVert W_l\rVert_F
       + \lambda_{2,m}\sum_l\bigl\lVert W_l/\lVert W_l\rVert_F\bigr\rVert_1 ,

    with :math:`\mathrm{CE}_m` the mean cross-entropy of its logits on ``(x, y)``. The sum
    :math:`\sum_m \mathcal L_m` is minimised by one ``torch.optim.SGD`` (``momentum``); SGD acts
    elementwise, so each network follows exactly the trajectory it would follow alone.
    Biases are not penalised.

    Args:
        x: training inputs, shape ``(N, n_0)``.
        y: training labels, integers in ``[0, n_L)``, shape ``(N,)``.
        weights: initial :math:`W_l`, shapes ``(M, n_l, n_{l-1})`` (from :func:`init_mlp_stack`).
        biases: initial :math:`b_l`, shapes ``(M, n_l)``.
        l2: :math:`\mu_m \ge 0`, a number or shape ``(M,)``.
        log_norm: :math:`\lambda_{1,m} \ge 0`, a number or shape ``(M,)``.
        direction_l1: :math:`\lambda_{2,m} \ge 0`, a number or shape ``(M,)``.
        steps: number of full-batch steps.
        lr: the learning rate.
        momentum: SGD momentum in ``[0, 1)``.
        x_test: optional test inputs, shape ``(N', n_0)``.
        y_test: optional test labels, shape ``(N',)``.
        record_every: record the history every this many steps (and at the end).

    Returns:
        A dict with ``"step"`` (shape ``(R,)``), ``"train_loss"`` and ``"train_acc"`` (``(R, M)``),
        ``"norms"`` (the layer norms, ``(R, M, L)``), ``"test_loss"`` and ``"test_acc"``
        (``(R, M)``, if a test set is given), and the final ``"weights"`` and ``"biases"``.

    Raises:
        ValueError: if shapes disagree, a label is out of range, a penalty weight is negative, or
            ``momentum`` is outside ``[0, 1)``.
        TypeError: if ``steps`` or ``record_every`` is not an integer.

    Used in: :doc:`/book/training/weight-scale-shift`, eq. :eq:`wss-weissi`.
    """
    ws, bs = _check_network(weights, biases)
    assert bs is not None
    if ws[0].ndim != 3:
        raise ValueError(f"weights must be stacked, shape (M, n_out, n_in), got "
                         f"{tuple(ws[0].shape)}")
    dtype = ws[0].dtype
    n_models, n_classes = ws[0].shape[0], ws[-1].shape[-2]
    x = as_tensor(x, "x", ndim=2, dtype=dtype).to(dtype)
    if x.shape[1] != ws[0].shape[-1]:
        raise ValueError(f"x must have shape (N, {ws[0].shape[-1]}), got {tuple(x.shape)}")

    def labels(t: Tensor, name: str, n: int) -> Tensor:
        t = torch.as_tensor(t)
        if t.is_floating_point() or t.shape != (n,):
            raise ValueError(f"{name} must be an integer tensor of shape ({n},)")
        if bool(((t < 0) | (t >= n_classes)).any()):
            raise ValueError(f"{name} must hold labels in [0, {n_classes})")
        return t.long()

    y = labels(y, "y", x.shape[0])
    has_test = x_test is not None and y_test is not None
    if has_test:
        x_test = as_tensor(x_test, "x_test", ndim=2, dtype=dtype).to(dtype)
        y_test = labels(y_test, "y_test", x_test.shape[0])  # type: ignore[arg-type]
    mu = _per_model(l2, n_models, "l2", dtype)
    lam1 = _per_model(log_norm, n_models, "log_norm", dtype)
    lam2 = _per_model(direction_l1, n_models, "direction_l1", dtype)
    steps = check_count(steps, "steps")
    record_every = check_count(record_every, "record_every")
    lr = check_positive(lr, "lr")
    momentum = check_positive(momentum, "momentum", allow_zero=True)
    if momentum >= 1:
        raise ValueError(f"momentum must lie in [0, 1), got {momentum}")

    params = [t.detach().clone().requires_grad_(True) for t in (*ws, *bs)]
    n_layers = len(ws)
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum)
    hist: dict[str, list[Tensor]] = {k: [] for k in ("step", "train_loss", "train_acc", "norms",
                                                     "test_loss", "test_acc")}

    def ce(inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        h = inputs
        for i in range(n_layers):                      # mlp_forward without the input checks
            h = h @ params[i].transpose(-1, -2) + params[n_layers + i].unsqueeze(-2)
            if i < n_layers - 1:
                h = torch.relu(h)
        picked = h.gather(-1, targets.expand(n_models, -1).unsqueeze(-1)).squeeze(-1)
        per = torch.logsumexp(h, dim=-1) - picked      # cross-entropy of each sample, (M, N)
        return per.mean(-1), h

    def accuracy(logits: Tensor, targets: Tensor) -> Tensor:
        return (logits.detach().argmax(-1) == targets).to(dtype).mean(-1)

    def record(step: int, loss: Tensor, acc: Tensor) -> None:
        hist["step"].append(torch.tensor(step))
        hist["train_loss"].append(loss.detach())
        hist["train_acc"].append(acc)
        hist["norms"].append(_frobenius([p.detach() for p in params[:n_layers]]))
        if has_test:
            with torch.no_grad():
                tl, logits_test = ce(x_test, y_test)  # type: ignore[arg-type]
            hist["test_loss"].append(tl)
            hist["test_acc"].append(accuracy(logits_test, y_test))  # type: ignore[arg-type]

    for step in range(steps + 1):
        loss_m, logits_m = ce(x, y)
        if step % record_every == 0 or step == steps:    # accuracy only where it is recorded
            record(step, loss_m, accuracy(logits_m, y))
        if step == steps:
            break
        norms = torch.stack([torch.linalg.matrix_norm(w) for w in params[:n_layers]], dim=-1)
        total = loss_m
        if bool((mu > 0).any()):
            total = total + mu * (norms**2).sum(-1)
        if bool((lam1 > 0).any()):
            total = total + lam1 * torch.log(norms).sum(-1)
        if bool((lam2 > 0).any()):
            total = total + lam2 * sum(w.abs().sum(dim=(-2, -1)) / norms[:, i]
                                       for i, w in enumerate(params[:n_layers]))
        opt.zero_grad()
        total.sum().backward()
        opt.step()
    out: dict[str, Any] = {k: torch.stack(v) for k, v in hist.items() if v}
    out["weights"] = [p.detach() for p in params[:n_layers]]
    out["biases"] = [p.detach() for p in params[n_layers:]]
    return out


def digits_arrays() -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    r"""scikit-learn's ``digits`` (1797 images, 8×8 pixels, values 0–16), from its bundled file.

    The same arrays as ``sklearn.datasets.load_digits(return_X_y=True)``, without importing
    scikit-learn (about a second): the file ``sklearn/datasets/data/digits.csv.gz`` holds one image
    per row, 64 pixel values and then the label.

    Returns:
        ``(X, y)``: pixels of shape ``(1797, 64)`` (float64) and labels in ``0..9``, shape
        ``(1797,)``.

    Raises:
        FileNotFoundError: if scikit-learn (or its data file) is not installed.

    Used in: :doc:`/book/training/weight-scale-shift`, eq. :eq:`wss-weissi`.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-learn is not installed: its digits file is not available")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    with gzip.open(path, "rt") as f:
        data = np.loadtxt(f, delimiter=",")
    return data[:, :-1], data[:, -1].astype(np.int64)
