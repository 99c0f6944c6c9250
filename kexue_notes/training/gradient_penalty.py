r"""Input-gradient and parameter-gradient penalties of an MLP, and the inequality between them.

An MLP with :math:`l` layers maps :math:`h^{(1)} = x` through

.. math::

   z^{(t+1)} = W^{(t)} h^{(t)} + b^{(t)}, \qquad h^{(t+1)} = g^{(t)}\bigl(z^{(t+1)}\bigr),
   \qquad t = 1, \dots, l,

and :math:`f` is a scalar function of :math:`h^{(l+1)}`. With the back-propagated errors
:math:`\delta^{(t+1)} = \partial f/\partial z^{(t+1)}` and the input Jacobians
:math:`J^{(t)} = \partial h^{(t)}/\partial x` (so :math:`J^{(1)} = I`), the parameter gradients
are :math:`\nabla_{W^{(t)}} f = \delta^{(t+1)} h^{(t)\top}` and
:math:`\nabla_{b^{(t)}} f = \delta^{(t+1)}`, hence exactly

.. math::

   \lVert\nabla_\theta f\rVert^2 = \sum_{t=1}^{l} \bigl(1 + \lVert h^{(t)}\rVert^2\bigr)
   \lVert\delta^{(t+1)}\rVert^2,

and, because :math:`\nabla_x f = J^{(t)\top} W^{(t)\top}\delta^{(t+1)}` for every :math:`t`, the
inequality of Dherin et al. that Su re-derives,

.. math::

   \lVert\nabla_x f\rVert^2 \sum_{t=1}^{l}
   \frac{1 + \lVert h^{(t)}\rVert^2}{\lVert W^{(t)}\rVert_2^2\,\lVert J^{(t)}\rVert_2^2}
   \le \lVert\nabla_\theta f\rVert^2 .

:func:`mlp_forward`, :func:`backprop_deltas` and :func:`input_jacobians` compute the pieces by the
formulas themselves (that is the point; the book checks them against ``torch.func``);
:func:`penalty_terms` assembles both sides, the per-layer ratios and the tightness.
:func:`random_mlps` draws batches of networks with ``torch.nn.Linear``'s own initialisation and
:func:`to_sequential` rebuilds one of them from torch's layers. Every function accepts leading batch
dimensions ``...`` (one network per batch entry); the book uses float64 throughout.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from kexue_notes._validate import as_tensor, check_count, check_positive

__all__ = [  # noqa: RUF022 -- in the order the module reads
    "activation",
    "activation_derivative",
    "MLPPass",
    "mlp_forward",
    "backprop_deltas",
    "input_jacobians",
    "spectral_norm",
    "PenaltyTerms",
    "penalty_terms",
    "random_mlps",
    "to_sequential",
    "noise_penalty",
]

#: The activations this module knows, by name; ``identity`` is a linear layer.
ACTIVATIONS = ("identity", "tanh", "relu", "gelu", "softplus", "sigmoid")

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _check_name(name: object, argname: str) -> str:
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"{argname} must be one of {ACTIVATIONS}, got {name!r}")
    return name


def activation(name: str, z: Tensor) -> Tensor:
    r"""Apply the activation :math:`g` named ``name`` elementwise, with torch's own functions.

    ``identity``: :math:`g(z) = z`; ``tanh``; ``relu``: :math:`\max(z, 0)`; ``gelu`` (exact, with
    the error function): :math:`z\,\Phi(z)`; ``softplus``: :math:`\log(1 + e^z)`; ``sigmoid``.

    Args:
        name: one of ``ACTIVATIONS``.
        z: pre-activations, any shape.

    Returns:
        :math:`g(z)`, the shape of ``z``.

    Raises:
        ValueError: if ``name`` is unknown or ``z`` holds NaN or infinity.

    Used in: :doc:`/book/training/input-vs-param-gradient-penalty`, eq. :eq:`gp-mlp`.
    """
    name = _check_name(name, "name")
    z = as_tensor(z, "z")
    if name == "identity":
        return z
    if name == "tanh":
        return torch.tanh(z)
    if name == "relu":
        return torch.nn.functional.relu(z)
    if name == "gelu":
        return torch.nn.functional.gelu(z)
    if name == "softplus":
        return torch.nn.functional.softplus(z)
    return torch.sigmoid(z)


def activation_derivative(name: str, z: Tensor) -> Tensor:
    r"""The derivative :math:`g'(z)` of :func:`activation`, in closed form.

    ``identity``: 1; ``tanh``: :math:`1 - \tanh^2 z`; ``relu``: :math:`[z > 0]` (0 at 0, as torch's
    autograd); ``gelu``: :math:`\Phi(z) + z\varphi(z)`; ``softplus``: :math:`\sigma(z)`;
    ``sigmoid``: :math:`\sigma(z)(1 - \sigma(z))`.

    Args:
        name: one of ``ACTIVATIONS``.
        z: pre-activations, any shape.

    Returns:
        :math:`g'(z)`, the shape of ``z``.

    Raises:
        ValueError: if ``name`` is unknown or ``z`` holds NaN or infinity.

    Used in: :doc:`/book/training/input-vs-param-gradient-penalty`, eq. :eq:`gp-backprop`.
    """
    name = _check_name(name, "name")
    z = as_tensor(z, "z")
    if name == "identity":
        return torch.ones_like(z)
    if name == "tanh":
        return 1 - torch.tanh(z) ** 2
    if name == "relu":
        return (z > 0).to(z.dtype)
    if name == "gelu":
        cdf = 0.5 * (1 + torch.erf(z / math.sqrt(2.0)))
        return cdf + z * _INV_SQRT_2PI * torch.exp(-0.5 * z * z)
    if name == "softplus":
        return torch.sigmoid(z)
    s = torch.sigmoid(z)
    return s * (1 - s)


def _check_weights(weights: Sequence[Tensor]) -> list[Tensor]:
    if isinstance(weights, Tensor) or not isinstance(weights, Sequence) or len(weights) == 0:
        raise ValueError("weights must be a non-empty sequence of tensors of shape (..., out, in)")
    Ws = [as_tensor(W, f"weights[{t}]") for t, W in enumerate(weights)]
    for t, W in enumerate(Ws):
        if W.ndim < 2:
            raise ValueError(f"weights[{t}] must have shape (..., out, in), got {tuple(W.shape)}")
        if t and W.shape[-1] != Ws[t - 1].shape[-2]:
            raise ValueError(f"weights[{t}] takes {W.shape[-1]} inputs, but weights[{t - 1}] "
                             f"gives {Ws[t - 1].shape[-2]} outputs")
    return Ws


def _check_vectors(vectors: Sequence[Tensor], name: str, Ws: list[Tensor]) -> list[Tensor]:
    """One vector per layer, of the layer's output width (biases, pre-activations)."""
    if isinstance(vectors, Tensor) or not isinstance(vectors, Sequence) \
            or len(vectors) != len(Ws):
        raise ValueError(f"{name} must be a sequence of {len(Ws)} tensors, one per layer")
    vs = [as_tensor(v, f"{name}[{t}]") for t, v in enumerate(vectors)]
    for t, (W, v) in enumerate(zip(Ws, vs, strict=True)):
        if v.ndim < 1 or v.shape[-1] != W.shape[-2]:
            raise ValueError(f"{name}[{t}] must have shape (..., {W.shape[-2]}), "
                             f"got {tuple(v.shape)}")
    return vs


def _check_acts(activations: Sequence[str], n_layers: int) -> list[str]:
    if isinstance(activations, str) or not isinstance(activations, Sequence) \
            or len(activations) != n_layers:
        raise ValueError(f"activations must be a sequence of {n_layers} names, one per layer")
    return [_check_name(a, f"activations[{t}]") for t, a in enumerate(activations)]


def _check_net(weights: Sequence[Tensor], biases: Sequence[Tensor],
               activations: Sequence[str]) -> tuple[list[Tensor], list[Tensor], list[str]]:
    Ws = _check_weights(weights)
    return Ws, _check_vectors(biases, "biases", Ws), _check_acts(activations, len(Ws))


class MLPPass(NamedTuple):
    """The forward pass of an MLP: ``hs[t - 1]`` is :math:`h^{(t)}` for :math:`t = 1..l+1`
    (shapes ``(..., d_t)``) and ``zs[t - 1]`` is :math:`z^{(t+1)}` for :math:`t = 1..l`.

    Used in: :doc:`/book/training/input-vs-param-gradient-penalty`, eq. :eq:`gp-mlp`.
    """

    hs: list[Tensor]
    zs: list[Tensor]


def mlp_forward(weights: Sequence[Tensor], biases: Sequence[Tensor], x: Tensor,
                activations: Sequence[str]) -> MLPPass:
    r"""The forward pass :math:`z^{(t+1)} = W^{(t)}h^{(t)} + b^{(t)}`,
    :math:`h^{(t+1)} = g^{(t)}(z^{(t+1)})`, :math:`h^{(1)} = x`.

    Args:
        weights: :math:`W^{(1)}, \dots, W^{(l)}`, shapes ``(..., d_{t+1}, d_t)``.
        biases: :math:`b^{(1)}, \dots, b^{(l)}`, shapes ``(..., d_{t+1})``.
        x: the input, shape ``(..., d_1)`` (batch dimensions broadcast with the weights').
        activations: the names of :math:`g^{(1)}, \dots, g^{(l)}` (see ``ACTIVATIONS``).

    Returns:
        An :class:`MLPPass` with the :math:`l + 1` activations and :math:`l` pre-activations.

    Raises:
        ValueError: if the shapes do not chain, a tensor is not finite, or a name is unknown.

    Used in: :doc:`/book/training/input-vs-param-gradient-penalty`, eq. :eq:`gp-mlp`.
    """
    Ws, bs, acts = _check_net(weights, biases, activations)
    x = as_tensor(x, "x")
    if x.ndim < 1 or x.shape[-1] != Ws[0].shape[-1]:
        raise ValueError(f"x must have shape (..., {Ws[0].shape[-1]}), got {tuple(x.shape)}")
    hs, zs = [x], []
    for W, b, a in zip(Ws, bs, acts, strict=True):
        z = (W @ hs[-1].unsqueeze(-1)).squeeze(-1) + b
        zs.append(z)
        hs.append(activation(a, z))
    return MLPPass(hs, zs)


def backprop_deltas(weights: Sequence[Tensor], zs: Sequence[Tensor], activations: Sequence[str],
                    out_grad: Tensor) -> list[Tensor]:
    r"""The back-propagated errors :math:`\delta^{(t+1)} = \partial f/\partial z^{(t+1)}`.

    .. math::

       \delta^{(l+1)} = g^{(l)\prime}(z^{(l+1)}) \odot \frac{\partial f}{\partial h^{(l+1)}},
       \qquad
       \delta^{(t)} = g^{(t-1)\prime}(z^{(t)}) \odot W^{(t)\top}\delta^{(t+1)} .

    Args:
        weights: :math:`W^{(1)}, \dots, W^{(l)}`, shapes ``(..., d_{t+1}, d_t)``.
        zs: the pre-activations :math:`z^{(2)}, \dots, z^{(l+1)}` of :func:`mlp_forward`.
        activations: the names of :math:`g^{(1)}, \dots, g^{(l)}`.
        out_grad: :math:`\partial f/\partial h^{(l+1)}`, shape ``(..., d_{l+1})``; for
            :math:`f = v^\top h^{(l+1)}` it is :math:`v`.

    Returns:
        :math:`[\delta^{(2)}, \dots, \delta^{(l+1)}]`, shapes ``(..., d_{t+1})``.

    Raises:
        ValueError: if the lengths or shapes do not match, or a tensor is not finite.

    Used in: :doc:`/book/training/input-vs-param-gradient-penalty`, eq. :eq:`gp-backprop`.
    """
    Ws = _check_weights(weights)
    zs = _check_vectors(zs, "zs", Ws)
    acts = _check_acts(activations, len(Ws))
    out_grad = as_tensor(out_grad, "out_grad")
    if out_grad.ndim < 1 or out_grad.shape[-1] != Ws[-1].shape[-2]:
        raise ValueError(f"out_grad must have shape (..., {Ws[-1].shape[-2]}), "
                         f"got {tuple(out_grad.shape)}")
    deltas = [activation_derivative(acts[-1], zs[-1]) * out_grad]
    for t in range(len(Ws) - 1, 0, -1):
        back = (Ws[t].transpose(-1, -2) @ deltas[0].unsqueeze(-1)).squeeze(-1)
        deltas.insert(0, activation_derivative(acts[t - 1], zs[t - 1]) * back)
    return deltas


def input_jacobians(weights: Sequence[Tensor], zs: Sequence[Tensor],
                    activations: Sequence[str]) -> list[Tensor]:
    r"""The input Jacobians :math:`J^{(t)} = \partial h^{(t)}/\partial x` of the layers' inputs.

    .. math::

       J^{(1)} = I, \qquad J^{(t+1)} = \operatorname{diag}\bigl(g^{(t)\prime}(z^{(t+1)})\bigr)\,
       W^{(t)} J^{(t)} .

    Args:
        weights: :math:`W^{(1)}, \dots, W^{(l)}`, shapes ``(..., d_{t+1}, d_t)``.
        zs: the pre-activations :math:`z^{(2)}, \dots, z^{(l+1)}` of :func:`mlp_forward`.
        activations: the names of :math:`g^{(1)}, \dots, g^{(l)}`.

    Returns:
        :math:`[J^{(1)}, \dots, J^{(l+1)}]`, shapes ``(..., d_t, d_1)``: the Jacobians of the
        inputs of the :math:`l` layers and, last, that of the output :math:`h^{(l+1)}`.

    Raises:
        ValueError: if the lengths or shapes do not match, or a tensor is not finite.

    Used in: :doc:`/book/training/input-vs-param-gradient-penalty`, eq. :eq:`gp-chain`.
    """
    Ws = _check_weights(weights)
    zs = _check_vectors(zs, "zs", Ws)
    acts = _check_acts(activations, len(Ws))
    return _jacobians(Ws, zs, acts, len(Ws) + 1)


def _jacobians(Ws: list[Tensor], zs: list[Tensor], acts: list[str], count: int) -> list[Tensor]:
    """The first ``count`` input Jacobians J^(1), J^(2), ... (inputs already checked)."""
    d1 = Ws[0].shape[-1]
    batch = torch.broadcast_shapes(Ws[0].shape[:-2], zs[0].shape[:-1])
    eye = torch.eye(d1, dtype=Ws[0].dtype, device=Ws[0].device).expand(*batch, d1, d1)
    jacs = [eye]
    for t in range(count - 1):
        gp = activation_derivative(acts[t], zs[t])
        jacs.append(gp.unsqueeze(-1) * (Ws[t] @ jacs[-1]))
    return jacs


def spectral_norm(A: Tensor) -> Tensor:
    r"""The spectral norm :math:`\lVert A\rVert_2 = \sigma_{\max}(A)` of each matrix in a batch.

    Computed by ``torch.linalg.matrix_norm(A, ord=2)`` (an SVD).

    Args:
        A: matrices, shape ``(..., m, n)``.

    Returns:
        The largest singular values, shape ``(...)``.

    Raises:
        ValueError: if ``A`` has fewer than two dimensions or is not finite.

    Used in: :doc:`/book/training/input-vs-param-gradient-penalty`, eq. :eq:`gp-inequality`.
    """
    A = as_tensor(A, "A")
    if A.ndim < 2:
        raise ValueError(f"A must have shape (..., m, n), got {tuple(A.shape)}")
    return torch.linalg.matrix_norm(A, ord=2)


class PenaltyTerms(NamedTuple):
    r"""Both sides of the inequality and their pieces; batch shape ``(...)``, layer axis last.

    ``input_grad_sq``: :math:`\lVert\nabla_x f\rVert^2`; ``param_grad_sq``:
    :math:`\lVert\nabla_\theta f\rVert^2` by the exact identity; ``h_sq``, ``delta_sq``:
    :math:`\lVert h^{(t)}\rVert^2`, :math:`\lVert\delta^{(t+1)}\rVert^2`; ``w_norm``, ``j_norm``:
    :math:`\lVert W^{(t)}\rVert_2`, :math:`\lVert J^{(t)}\rVert_2`; ``coefficient``: the bracket
    :math:`C = \sum_t (1 + \lVert h^{(t)}\rVert^2)/
    (\lVert W^{(t)}\rVert_2^2\lVert J^{(t)}\rVert_2^2)`;
    ``lhs``: :math:`C\lVert\nabla_x f\rVert^2`; ``layer_ratio``: :math:`\rho_t`;
    ``tightness``: ``lhs / param_grad_sq``.

    Used in: :doc:`/book/training/input-vs-param-gradient-penalty`, eq. :eq:`gp-tightness`.
    """

    input_grad_sq: Tensor
    param_grad_sq: Tensor
    h_sq: Tensor
    delta_sq: Tensor
    w_norm: Tensor
    j_norm: Tensor
    coefficient: Tensor
    lhs: Tensor
    layer_ratio: Tensor
    tightness: Tensor


def penalty_terms(weights: Sequence[Tensor], biases: Sequence[Tensor], x: Tensor,
                  activations: Sequence[str], out_grad: Tensor | None = None) -> PenaltyTerms:
    r"""Both sides of the input/parameter gradient-penalty inequality, layer by layer.

    .. math::

       \lVert\nabla_\theta f\rVert^2
       = \sum_t (1 + \lVert h^{(t)}\rVert^2)\lVert\delta^{(t+1)}\rVert^2,
       \qquad
       \rho_t = \frac{\lVert\nabla_x f\rVert^2}
       {\lVert W^{(t)}\rVert_2^2 \lVert J^{(t)}\rVert_2^2 \lVert\delta^{(t+1)}\rVert^2} \in [0, 1],

    and the tightness of the inequality, :math:`\mathrm{LHS}/\mathrm{RHS} = \sum_t w_t\rho_t` with
    weights :math:`w_t = (1 + \lVert h^{(t)}\rVert^2)\lVert\delta^{(t+1)}\rVert^2 /
    \lVert\nabla_\theta f\rVert^2` that sum to one. :math:`\nabla_x f` is computed as
    :math:`W^{(1)\top}\delta^{(2)}`.

    Args:
        weights: :math:`W^{(1)}, \dots, W^{(l)}`, shapes ``(..., d_{t+1}, d_t)``.
        biases: :math:`b^{(1)}, \dots, b^{(l)}`, shapes ``(..., d_{t+1})``.
        x: the input, shape ``(..., d_1)``.
        activations: the names of :math:`g^{(1)}, \dots, g^{(l)}`.
        out_grad: :math:`\partial f/\partial h^{(l+1)}`, shape ``(..., d_{l+1})``; ``None`` means
            ones, i.e. :math:`f` is the sum of the outputs (the output itself when
            :math:`d_{l+1} = 1`).

    Returns:
        A :class:`PenaltyTerms`; per-layer fields have shape ``(..., l)``, the others ``(...)``.
        Where a denominator vanishes (a dead ReLU layer makes :math:`J^{(t)}` or
        :math:`\delta^{(t+1)}` zero) so does :math:`\nabla_x f`; then ``lhs`` and :math:`\rho_t`
        are set to 0 (the inequality reads :math:`0 \le` RHS) and ``coefficient`` may be ``inf``.

    Raises:
        ValueError: if the shapes do not chain, a tensor is not finite, or a name is unknown.

    Used in: :doc:`/book/training/input-vs-param-gradient-penalty`, eqs. :eq:`gp-identity` and
    :eq:`gp-inequality`.
    """
    Ws, bs, acts = _check_net(weights, biases, activations)
    fwd = mlp_forward(Ws, bs, x, acts)
    if out_grad is None:
        out_grad = torch.ones_like(fwd.hs[-1])
    deltas = backprop_deltas(Ws, fwd.zs, acts, out_grad)
    jacs = _jacobians(Ws, fwd.zs, acts, len(Ws))
    grad_x = (Ws[0].transpose(-1, -2) @ deltas[0].unsqueeze(-1)).squeeze(-1)
    input_sq = (grad_x**2).sum(-1)
    h_sq = torch.stack([(h**2).sum(-1) for h in fwd.hs[:-1]], -1)
    d_sq = torch.stack([(d**2).sum(-1) for d in deltas], -1)
    w_norm = torch.stack([spectral_norm(W) for W in Ws], -1)
    j_norm = torch.stack([spectral_norm(J) for J in jacs], -1)
    w_norm, j_norm, h_sq = torch.broadcast_tensors(w_norm, j_norm, h_sq)
    param_sq = ((1 + h_sq) * d_sq).sum(-1)
    scale = w_norm**2 * j_norm**2
    coefficient = ((1 + h_sq) / scale).sum(-1)
    # A vanishing denominator forces grad_x f = 0 (it is J'W'delta); count 0 * inf as 0 there.
    zero = input_sq == 0
    lhs = torch.where(zero, torch.zeros_like(input_sq), input_sq * coefficient)
    denom = scale * d_sq
    ratio = torch.where(denom == 0, torch.zeros_like(denom),
                        input_sq.unsqueeze(-1) / torch.where(denom == 0, 1.0, denom))
    return PenaltyTerms(input_sq, param_sq, h_sq, d_sq, w_norm, j_norm, coefficient, lhs, ratio,
                        lhs / param_sq)


def random_mlps(widths: Sequence[int], n: int, *, seed: int, gain: float = 1.0,
                dtype: torch.dtype = torch.float64) -> tuple[list[Tensor], list[Tensor]]:
    r"""``n`` independent MLPs with PyTorch's default ``nn.Linear`` initialisation, times a gain.

    Layer :math:`t` of network :math:`k` is cut from one ``torch.nn.Linear(d_t, n * d_{t+1})``, so
    every entry of :math:`W^{(t)}` and :math:`b^{(t)}` is drawn by torch's own initialiser,
    :math:`\mathcal U(-1/\sqrt{d_t}, 1/\sqrt{d_t})` (kaiming-uniform with :math:`a = \sqrt5`), then
    multiplied by ``gain``. The global random state is seeded inside ``torch.random.fork_rng``
    and left as it was.

    Args:
        widths: :math:`d_1, \dots, d_{l+1}`, at least two positive integers.
        n: the number of networks (the batch size of every returned tensor).
        seed: the seed of the draw.
        gain: a positive factor applied to weights and biases.
        dtype: the floating dtype.

    Returns:
        ``(weights, biases)``: lists of :math:`l` tensors of shapes ``(n, d_{t+1}, d_t)`` and
        ``(n, d_{t+1})``.

    Raises:
        ValueError: if ``widths`` has fewer than two entries or a width, ``n`` or ``gain`` is not
            positive.
        TypeError: if a width, ``n`` or ``seed`` is not an integer.

    Used in: :doc:`/book/training/input-vs-param-gradient-penalty`, section "Numerical check".
    """
    if isinstance(widths, str) or not isinstance(widths, Sequence) or len(widths) < 2:
        raise ValueError(f"widths must be a sequence of at least two widths, got {widths!r}")
    ds = [check_count(w, f"widths[{i}]") for i, w in enumerate(widths)]
    n = check_count(n, "n")
    seed = check_count(seed, "seed", minimum=0)
    gain = check_positive(gain, "gain")
    Ws, bs = [], []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for d_in, d_out in itertools.pairwise(ds):
            layer = nn.Linear(d_in, n * d_out, dtype=dtype)
            Ws.append(gain * layer.weight.detach().reshape(n, d_out, d_in))
            bs.append(gain * layer.bias.detach().reshape(n, d_out))
    return Ws, bs


_MODULES = {"identity": nn.Identity, "tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU,
            "softplus": nn.Softplus, "sigmoid": nn.Sigmoid}


def to_sequential(weights: Sequence[Tensor], biases: Sequence[Tensor],
                  activations: Sequence[str]) -> nn.Sequential:
    r"""One MLP as a ``torch.nn.Sequential`` of torch's own ``Linear`` and activation layers.

    Layer :math:`t` becomes ``nn.Linear(d_t, d_{t+1})`` holding copies of :math:`W^{(t)}` and
    :math:`b^{(t)}`, followed by the module of :math:`g^{(t)}` (omitted for ``identity``), so the
    result computes :math:`h^{(l+1)}` of eq. (gp-mlp) by an independent code path.

    Args:
        weights: :math:`W^{(1)}, \dots, W^{(l)}`, shapes ``(d_{t+1}, d_t)`` (no batch dimension).
        biases: :math:`b^{(1)}, \dots, b^{(l)}`, shapes ``(d_{t+1},)``.
        activations: the names of :math:`g^{(1)}, \dots, g^{(l)}`.

    Returns:
        The network; its parameters are named ``"<2t-2>.weight"``, ``"<2t-2>.bias"`` in the order of
        the layers when no activation is ``identity``.

    Raises:
        ValueError: if a weight is not 2-D, the shapes do not chain, or a name is unknown.

    Used in: :doc:`/book/training/input-vs-param-gradient-penalty`, section "Cross-check".
    """
    Ws, bs, acts = _check_net(weights, biases, activations)
    layers: list[nn.Module] = []
    for t, (W, b, a) in enumerate(zip(Ws, bs, acts, strict=True)):
        if W.ndim != 2 or b.ndim != 1:
            raise ValueError(f"weights[{t}] must be 2-D and biases[{t}] 1-D (one network), "
                             f"got {tuple(W.shape)} and {tuple(b.shape)}")
        lin = nn.Linear(W.shape[1], W.shape[0], dtype=W.dtype)
        with torch.no_grad():
            lin.weight.copy_(W)
            lin.bias.copy_(b)
        layers.append(lin)
        if a != "identity":
            layers.append(_MODULES[a]())
    return nn.Sequential(*layers)


def noise_penalty(jac: Tensor, sigma: float, curvature: Tensor | None = None) -> Tensor:
    r"""The input-gradient penalty that small Gaussian input noise adds to a smoothness loss.

    For a loss :math:`\ell(F, y) \ge 0` with :math:`\ell(y, y) = 0` whose Hessian in :math:`F` at
    :math:`F = y` is :math:`\operatorname{diag}(\lambda)`, and noise
    :math:`\varepsilon \sim \mathcal N(0, \sigma^2 I)`,

    .. math::

       \mathbb E_\varepsilon\, \ell\bigl(f(x + \varepsilon), f(x)\bigr)
       = \frac{\sigma^2}{2}\sum_i \lambda_i \lVert\nabla_x f_i(x)\rVert^2 + O(\sigma^4);

    :math:`\lambda_i = 2` for the squared error :math:`\lVert F - y\rVert^2`, and
    :math:`\lambda_i = 1/f_i` for :math:`\mathrm{KL}(y \Vert F)` on probability vectors.

    Args:
        jac: the Jacobian :math:`\partial f/\partial x`, shape ``(..., k, d)`` (for an MLP, the
            last entry of :func:`input_jacobians`).
        sigma: the noise standard deviation, :math:`> 0`.
        curvature: :math:`\lambda`, shape ``(..., k)`` and non-negative; ``None`` means 2 (squared
            error).

    Returns:
        The penalty, shape ``(...)``.

    Raises:
        ValueError: if ``jac`` is not at least 2-D or not finite, ``sigma`` is not positive, or
            ``curvature`` has the wrong shape or a negative entry.

    Used in: :doc:`/book/training/input-vs-param-gradient-penalty`, eq. :eq:`gp-noise`.
    """
    jac = as_tensor(jac, "jac")
    if jac.ndim < 2:
        raise ValueError(f"jac must have shape (..., k, d), got {tuple(jac.shape)}")
    sigma = check_positive(sigma, "sigma")
    row_sq = (jac**2).sum(-1)
    if curvature is None:
        lam = torch.full_like(row_sq, 2.0)
    else:
        lam = as_tensor(curvature, "curvature")
        if lam.ndim < 1 or lam.shape[-1] != jac.shape[-2]:
            raise ValueError(f"curvature must have shape (..., {jac.shape[-2]}), "
                             f"got {tuple(lam.shape)}")
        if bool((lam < 0).any()):
            raise ValueError("curvature must be non-negative")
    return 0.5 * sigma**2 * (lam * row_sq).sum(-1)
