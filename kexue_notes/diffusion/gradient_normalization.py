r"""Gradient normalization of a WGAN critic, and where its Lipschitz promise holds.

A WGAN critic :math:`f:\mathbb{R}^d \to \mathbb{R}` must be 1-Lipschitz. Gradient normalization
(GN) does not constrain the weights; it rescales the output by the input gradient,

.. math::

   \hat f(x) = \frac{f(x)}{\lVert\nabla_x f(x)\rVert + \lvert f(x)\rvert},

and GraN, a sibling method, uses
:math:`\hat f = f\,\lVert\nabla f\rVert / (\lVert\nabla f\rVert^2 + \epsilon)`. Writing
:math:`g = \lVert\nabla_x f\rVert`, the input gradient of GN is

.. math::

   \nabla\hat f = \frac{g\,\nabla f - f\,\nabla g}{(g + \lvert f\rvert)^2},
   \qquad \nabla g = \frac{H\,\nabla f}{g},

with :math:`H` the Hessian of :math:`f`. On a piece where :math:`f` is linear, :math:`H = 0` and
:math:`\lVert\nabla\hat f\rVert = g^2/(g + \lvert f\rvert)^2 \le 1`. Across the boundary between
two pieces :math:`\hat f` jumps; near a critical point of a smooth critic
:math:`\lVert\nabla\hat f\rVert` reaches :math:`\lVert H\rVert_2/\lvert f\rvert`.

The module reads in that order: the three normalizations as formulas, the critic wrapper
:class:`GradientNormalizedCritic`, the input gradient, the jump and the critical-point slope, and
the tools that measure them (autograd derivatives, activation patterns, a bisection for the
boundary between two pieces, difference quotients). A critic here is any callable that maps a
batch ``x`` of shape ``(n, d)`` to values of shape ``(n,)`` or ``(n, 1)``, row by row (no batch
statistics: per-row input gradients are taken through the sum over rows).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import Any

import torch
from torch import nn

from kexue_notes._validate import as_tensor, check_positive

__all__ = [  # noqa: RUF022 -- in the order of the page, as the module reads
    "gn_normalize",
    "gran_normalize",
    "eps_normalize",
    "direction_critic",
    "GradientNormalizedCritic",
    "gn_input_gradient",
    "gn_jump",
    "gn_critical_slope",
    "mlp_critic",
    "value_and_input_grad",
    "input_hessian",
    "newton_critical_points",
    "relu_activation_pattern",
    "locate_gradient_jump",
    "lipschitz_ratios",
]

# Critics are annotated ``Any``: any callable from (n, d) tensors to (n,) or (n, 1) tensors works,
# and the book's strict Sphinx build cannot resolve an alias of ``collections.abc.Callable``.
_VARIANTS = ("gn", "gran", "eps", "direction")


# --- checks shared by the functions below ----------------------------------------------------

def _grad_norm(grad_norm: Any, name: str = "grad_norm") -> torch.Tensor:
    g = as_tensor(grad_norm, name)
    if bool((g < 0).any()):
        raise ValueError(f"{name} must be >= 0 (a norm), got minimum {g.min().item():.3g}")
    return g


def _batch(x: Any, name: str = "x") -> torch.Tensor:
    """``x`` as a finite floating tensor of shape ``(n, d)`` with ``n, d >= 1``."""
    t = as_tensor(x, name, ndim=2)
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name} must have shape (n, d) with n, d >= 1, got {tuple(t.shape)}")
    return t


def _check_critic(critic: Any) -> Any:
    if not callable(critic):
        raise TypeError(f"critic must be callable (a batch (n, d) to values (n,)), "
                        f"got {type(critic).__name__}")
    return critic


def _values(critic: Any, x: torch.Tensor) -> torch.Tensor:
    """The critic's values on the batch ``x``, as shape ``(n,)``."""
    f = critic(x)
    if not isinstance(f, torch.Tensor):
        raise TypeError(f"critic must return a tensor, got {type(f).__name__}")
    n = x.shape[0]
    if f.ndim == 2 and f.shape[1] == 1:
        f = f[:, 0]
    if tuple(f.shape) != (n,):
        raise ValueError(f"critic must map x of shape {tuple(x.shape)} to values of shape "
                         f"({n},) or ({n}, 1), got {tuple(f.shape)}")
    return f


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


# --- the three normalizations, as formulas ---------------------------------------------------

def gn_normalize(f: Any, grad_norm: Any) -> torch.Tensor:
    r"""Gradient normalization (GN) of critic values, :math:`\hat f = f/(g + \lvert f\rvert)`.

    .. math::

       \hat f = \frac{f}{\lVert\nabla_x f\rVert + \lvert f\rvert} \in [-1, 1] .

    Tensors keep their autograd graph, so ``grad_norm`` may itself depend on parameters.

    Args:
        f: critic values, any shape.
        grad_norm: :math:`g = \lVert\nabla_x f\rVert \ge 0`, broadcastable against ``f``.

    Returns:
        :math:`\hat f`, the broadcast shape of the inputs.

    Raises:
        TypeError: if an input is not numeric.
        ValueError: if an input holds NaN or infinity, ``grad_norm`` is negative, or
            :math:`f = g = 0` somewhere (there GN is :math:`0/0`).

    Used in: :doc:`/book/diffusion/gradient-normalization-gan`, eq. :eq:`gn-definition`.
    """
    f = as_tensor(f, "f")
    g = _grad_norm(grad_norm)
    denominator = g + f.abs()
    if bool((denominator == 0).any()):
        raise ValueError("f and grad_norm are both zero at some point: GN is 0/0 there")
    return f / denominator


def gran_normalize(f: Any, grad_norm: Any, eps: float = 1e-4) -> torch.Tensor:
    r"""GraN's normalization of critic values, :math:`\hat f = f g/(g^2 + \epsilon)`.

    .. math::

       \hat f = \frac{f\,\lVert\nabla_x f\rVert}{\lVert\nabla_x f\rVert^2 + \epsilon} .

    Args:
        f: critic values, any shape.
        grad_norm: :math:`g = \lVert\nabla_x f\rVert \ge 0`, broadcastable against ``f``.
        eps: :math:`\epsilon > 0`.

    Returns:
        :math:`\hat f`, the broadcast shape of the inputs.

    Raises:
        TypeError: if an input is not numeric.
        ValueError: if an input holds NaN or infinity, ``grad_norm`` is negative, or
            ``eps`` is not positive.

    Used in: :doc:`/book/diffusion/gradient-normalization-gan`, eq. :eq:`gran-definition`.
    """
    f = as_tensor(f, "f")
    g = _grad_norm(grad_norm)
    ε = check_positive(eps, "eps")
    return f * g / (g**2 + ε)


def eps_normalize(f: Any, grad_norm: Any, eps: float = 1e-4) -> torch.Tensor:
    r"""The plain variant that GraN's authors also tried, :math:`\hat f = f/(g + \epsilon)`.

    .. math::

       \hat f = \frac{f}{\lVert\nabla_x f\rVert + \epsilon} .

    Args:
        f: critic values, any shape.
        grad_norm: :math:`g = \lVert\nabla_x f\rVert \ge 0`, broadcastable against ``f``.
        eps: :math:`\epsilon > 0`.

    Returns:
        :math:`\hat f`, the broadcast shape of the inputs.

    Raises:
        TypeError: if an input is not numeric.
        ValueError: if an input holds NaN or infinity, ``grad_norm`` is negative, or
            ``eps`` is not positive.

    Used in: :doc:`/book/diffusion/gradient-normalization-gan`, eq. :eq:`gran-definition`.
    """
    f = as_tensor(f, "f")
    g = _grad_norm(grad_norm)
    ε = check_positive(eps, "eps")
    return f / (g + ε)


def direction_critic(grad: Any, x: Any) -> torch.Tensor:
    r"""Su's test critic: the input projected on the unit gradient direction.

    .. math::

       \tilde f(x) = \Big\langle \frac{\nabla_x f(x)}{\lVert\nabla_x f(x)\rVert},\ x \Big\rangle .

    On a piece where :math:`f = w^\top x + b` it equals :math:`(f - b)/\lVert w\rVert`, the ideal
    normalization :math:`f/\lVert\nabla f\rVert` up to a constant on each piece.

    Args:
        grad: :math:`\nabla_x f`, shape ``(n, d)``, no zero row.
        x: the inputs, shape ``(n, d)``.

    Returns:
        :math:`\tilde f`, shape ``(n,)``.

    Raises:
        TypeError: if an input is not numeric.
        ValueError: if the shapes differ or are not ``(n, d)``, an input is not finite, or a
            row of ``grad`` is zero.

    Used in: :doc:`/book/diffusion/gradient-normalization-gan`, eq. :eq:`gn-direction-critic`.
    """
    grad = _batch(grad, "grad")
    x = _batch(x, "x")
    if grad.shape != x.shape:
        raise ValueError(f"grad and x must have the same shape, got {tuple(grad.shape)} "
                         f"and {tuple(x.shape)}")
    g = grad.norm(dim=-1)
    if bool((g == 0).any()):
        raise ValueError("grad must have no zero row: the direction is undefined there")
    return (grad * x).sum(dim=-1) / g


# --- the critic wrapper ----------------------------------------------------------------------

class GradientNormalizedCritic(nn.Module):
    r"""A critic :math:`f` wrapped so that it returns :math:`\hat f`, differentiably.

    The forward pass computes :math:`f(x)` and :math:`\nabla_x f(x)` with ``create_graph=True``,
    so that a loss on :math:`\hat f` can be backpropagated to the critic's parameters (the
    discriminator step) and to :math:`x` (the generator step). The variants are

    .. math::

       \text{gn: } \frac{f}{g + \lvert f\rvert}, \qquad
       \text{gran: } \frac{f g}{g^2 + \epsilon}, \qquad
       \text{eps: } \frac{f}{g + \epsilon}, \qquad
       \text{direction: } \frac{\langle\nabla f, x\rangle}{g},

    with :math:`g = \lVert\nabla_x f\rVert`. With ``detach_grad_norm=True`` the factor :math:`g`
    is treated as a constant (no second-order terms), which is exact for :math:`\nabla_x` on a
    piecewise-linear critic but not for the parameters.

    Args:
        critic: a callable (usually an ``nn.Module``) from ``(n, d)`` to ``(n,)`` or ``(n, 1)``
            that treats rows independently.
        variant: ``"gn"`` (default), ``"gran"``, ``"eps"`` or ``"direction"``.
        eps: :math:`\epsilon > 0` of ``"gran"`` and ``"eps"``.
        detach_grad_norm: treat :math:`g` (and, for ``"direction"``, the unit gradient) as a
            constant.

    Raises:
        TypeError: if ``critic`` is not callable or ``detach_grad_norm`` is not a bool.
        ValueError: if ``variant`` is unknown or ``eps`` is not positive.

    Used in: :doc:`/book/diffusion/gradient-normalization-gan`, eq. :eq:`gn-definition`.
    """

    def __init__(self, critic: Any, variant: str = "gn", eps: float = 1e-4,
                 detach_grad_norm: bool = False) -> None:
        super().__init__()
        _check_critic(critic)
        if variant not in _VARIANTS:
            raise ValueError(f"variant must be one of {_VARIANTS}, got {variant!r}")
        if not isinstance(detach_grad_norm, bool):
            raise TypeError(f"detach_grad_norm must be a bool, "
                            f"got {type(detach_grad_norm).__name__}")
        self.critic = critic
        self.variant = variant
        self.eps = check_positive(eps, "eps")
        self.detach_grad_norm = detach_grad_norm

    def forward(self, x: Any) -> torch.Tensor:
        r"""Return :math:`\hat f(x)` for a batch ``x`` of shape ``(n, d)``, shape ``(n,)``.

        Works under ``torch.no_grad()`` too (the input gradient is taken inside); the result
        then carries no graph.
        """
        graph = torch.is_grad_enabled()
        x = _batch(x)
        with torch.enable_grad():
            if not x.requires_grad:
                x = x.detach().requires_grad_(True)
            f = _values(self.critic, x)
            (grad,) = torch.autograd.grad(f.sum(), x, create_graph=True)
            g = grad.norm(dim=-1)
            if self.detach_grad_norm:
                g = g.detach()
            if self.variant == "gn":
                out = gn_normalize(f, g)
            elif self.variant == "gran":
                out = gran_normalize(f, g, self.eps)
            elif self.variant == "eps":
                out = eps_normalize(f, g, self.eps)
            else:
                unit = (grad.detach() if self.detach_grad_norm else grad) / g[:, None]
                out = (unit * x).sum(dim=-1)
        return out if graph else out.detach()


# --- the input gradient of GN ----------------------------------------------------------------

def gn_input_gradient(f: Any, grad: Any, hess_grad: Any = None) -> torch.Tensor:
    r"""The input gradient of GN, :math:`\nabla\hat f`, from :math:`f`, :math:`\nabla f` and
    :math:`H\nabla f`.

    .. math::

       \nabla\hat f = \frac{g\,\nabla f - f\,\nabla g}{(g + \lvert f\rvert)^2},
       \qquad g = \lVert\nabla f\rVert, \qquad \nabla g = \frac{H\,\nabla f}{g} .

    Without ``hess_grad`` the curvature term is dropped (:math:`H = 0`): this is the closed form
    on a linear piece, :math:`g\,\nabla f/(g + \lvert f\rvert)^2`, the rule that the fast GN
    implementation applies in the generator step.

    Args:
        f: critic values, shape ``(n,)``.
        grad: :math:`\nabla_x f`, shape ``(n, d)``.
        hess_grad: :math:`H\nabla f`, shape ``(n, d)``, or ``None`` for :math:`H = 0`.

    Returns:
        :math:`\nabla_x\hat f`, shape ``(n, d)``.

    Raises:
        TypeError: if an input is not numeric.
        ValueError: if a shape is wrong, an input is not finite, :math:`f = g = 0` at a row,
            or :math:`g = 0` at a row while ``hess_grad`` is given (:math:`\nabla g` undefined).

    Used in: :doc:`/book/diffusion/gradient-normalization-gan`, eq. :eq:`gn-gradient`.
    """
    grad = _batch(grad, "grad")
    n, d = grad.shape
    f = as_tensor(f, "f", shape=(n,))
    g = grad.norm(dim=-1)
    denominator = (g + f.abs()) ** 2
    if bool((denominator == 0).any()):
        raise ValueError("f and grad are both zero at some row: GN is 0/0 there")
    numerator = g[:, None] * grad
    if hess_grad is not None:
        hess_grad = as_tensor(hess_grad, "hess_grad", shape=(n, d))
        if bool((g == 0).any()):
            raise ValueError("grad has a zero row: the gradient of its norm is undefined there")
        numerator = numerator - f[:, None] * hess_grad / g[:, None]
    return numerator / denominator[:, None]


# --- what goes wrong: the jump between pieces, the slope at a critical point ------------------

def gn_jump(f0: Any, g_left: Any, g_right: Any) -> torch.Tensor:
    r"""The jump of GN's :math:`\hat f` across the boundary between two linear pieces.

    At a boundary point where :math:`f = f_0` and the gradient norm is :math:`g_1` on one side and
    :math:`g_2` on the other,

    .. math::

       \bigl\lvert\hat f_1 - \hat f_2\bigr\rvert
       = \frac{\lvert f_0\rvert\,\lvert g_1 - g_2\rvert}
              {(g_1 + \lvert f_0\rvert)(g_2 + \lvert f_0\rvert)} .

    Args:
        f0: critic value at the boundary, any shape.
        g_left: :math:`g_1 \ge 0`, broadcastable against ``f0``.
        g_right: :math:`g_2 \ge 0`, broadcastable against ``f0``.

    Returns:
        The jump, the broadcast shape of the inputs.

    Raises:
        TypeError: if an input is not numeric.
        ValueError: if an input is not finite or a gradient norm is negative, or
            :math:`f_0 = 0` where a gradient norm is zero.

    Used in: :doc:`/book/diffusion/gradient-normalization-gan`, eq. :eq:`gn-jump`.
    """
    f0 = as_tensor(f0, "f0")
    g1 = _grad_norm(g_left, "g_left")
    g2 = _grad_norm(g_right, "g_right")
    if bool(((f0 == 0) & ((g1 == 0) | (g2 == 0))).any()):
        raise ValueError("f0 and a gradient norm are both zero at some point: GN is 0/0 there")
    return (gn_normalize(f0, g1) - gn_normalize(f0, g2)).abs()


def gn_critical_slope(f0: Any, hessian: Any) -> torch.Tensor:
    r"""The limit of :math:`\lVert\nabla\hat f\rVert` at a critical point of a smooth critic.

    Where :math:`\nabla f(x^*) = 0` and :math:`f(x^*) = f_0 \neq 0`, GN's :math:`\hat f` has a
    cone-shaped kink, and along the top eigenvector of the Hessian :math:`H`

    .. math::

       \lim_{r \to 0^+} \bigl\lVert\nabla\hat f(x^* + r v)\bigr\rVert
       = \frac{\lVert H\rVert_2}{\lvert f_0\rvert} .

    Args:
        f0: :math:`f(x^*)`, shape ``(m,)``, nonzero.
        hessian: :math:`H`, shape ``(m, d, d)``, symmetric.

    Returns:
        The limit, shape ``(m,)``.

    Raises:
        TypeError: if an input is not numeric.
        ValueError: if a shape is wrong, an input is not finite, ``hessian`` is not symmetric,
            or ``f0`` is zero.

    Used in: :doc:`/book/diffusion/gradient-normalization-gan`, eq. :eq:`gn-critical-slope`.
    """
    H = as_tensor(hessian, "hessian", ndim=3)
    m, d, d2 = H.shape
    if d != d2:
        raise ValueError(f"hessian must have shape (m, d, d), got {tuple(H.shape)}")
    f0 = as_tensor(f0, "f0", shape=(m,))
    if not torch.allclose(H, H.transpose(1, 2), rtol=1e-10, atol=1e-12):
        raise ValueError("hessian must be symmetric")
    if bool((f0 == 0).any()):
        raise ValueError("f0 must be nonzero (the limit assumes f(x*) != 0)")
    return torch.linalg.eigvalsh(H).abs().amax(dim=-1) / f0.abs()


# --- tools: critics, autograd derivatives, pieces, difference quotients ------------------------

def mlp_critic(widths: list[int], activation: str = "relu",
               generator: torch.Generator | None = None, weight_scale: float = 1.0,
               bias_scale: float = 0.5) -> nn.Sequential:
    r"""A float64 multilayer perceptron critic with seeded Gaussian weights.

    Layer :math:`l` maps :math:`\mathbb{R}^{n_{l-1}} \to \mathbb{R}^{n_l}` by
    :math:`W_l h + b_l` with :math:`W_l \sim \mathcal N(0, s_w^2/n_{l-1})` and
    :math:`b_l \sim \mathcal N(0, s_b^2)`, followed by the activation except after the last
    layer. With ``"relu"`` or ``"leaky_relu"`` the critic is piecewise linear.

    Args:
        widths: :math:`[d, n_1, \dots, 1]`, at least two positive integers, the last one 1.
        activation: ``"relu"``, ``"leaky_relu"``, ``"tanh"`` or ``"softplus"``.
        generator: the ``torch.Generator`` that draws the weights (required).
        weight_scale: :math:`s_w > 0`.
        bias_scale: :math:`s_b \ge 0`.

    Returns:
        An ``nn.Sequential`` of ``nn.Linear`` and activation layers, in float64.

    Raises:
        TypeError: if ``generator`` is not a ``torch.Generator`` or a width is not an integer.
        ValueError: if ``widths`` is too short, holds a non-positive entry or does not end in 1,
            ``activation`` is unknown, or a scale is out of range.

    Used in: :doc:`/book/diffusion/gradient-normalization-gan`.
    """
    acts: dict[str, Callable[[], nn.Module]] = {
        "relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "tanh": nn.Tanh,
        "softplus": nn.Softplus}
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if activation not in acts:
        raise ValueError(f"activation must be one of {tuple(acts)}, got {activation!r}")
    if not isinstance(widths, list | tuple) or len(widths) < 2:
        raise ValueError(f"widths must list at least two layer widths, got {widths!r}")
    sizes = [_check_int(w, "widths", 1) for w in widths]
    if sizes[-1] != 1:
        raise ValueError(f"widths must end in 1 (a scalar critic), got {sizes[-1]}")
    s_w = check_positive(weight_scale, "weight_scale")
    s_b = check_positive(bias_scale, "bias_scale", allow_zero=True)
    layers: list[nn.Module] = []
    for k, (n_in, n_out) in enumerate(pairwise(sizes)):
        linear = nn.Linear(n_in, n_out, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.randn(n_out, n_in, generator=generator,
                                            dtype=torch.float64) * s_w / n_in**0.5)
            linear.bias.copy_(torch.randn(n_out, generator=generator, dtype=torch.float64) * s_b)
        layers.append(linear)
        if k < len(sizes) - 2:
            layers.append(acts[activation]())
    return nn.Sequential(*layers)


def value_and_input_grad(critic: Any, x: Any,
                         create_graph: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The critic's values and input gradients, :math:`f(x_i)` and :math:`\nabla_x f(x_i)`.

    .. math::

       \nabla_x f(x_i) = \frac{\partial}{\partial x_i} \sum_j f(x_j)
       \quad \text{(rows are independent)} .

    Args:
        critic: a callable from ``(n, d)`` to ``(n,)`` or ``(n, 1)``.
        x: the inputs, shape ``(n, d)``.
        create_graph: keep the graph of the gradient (for second derivatives).

    Returns:
        ``(f, grad)`` with shapes ``(n,)`` and ``(n, d)``; detached unless ``create_graph``.

    Raises:
        TypeError: if ``critic`` is not callable or returns no tensor, or ``x`` is not numeric.
        ValueError: if ``x`` is not a finite ``(n, d)`` batch or the critic's output has the
            wrong shape.

    Used in: :doc:`/book/diffusion/gradient-normalization-gan`.
    """
    critic = _check_critic(critic)
    x = _batch(x)
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        f = _values(critic, x)
        (grad,) = torch.autograd.grad(f.sum(), x, create_graph=create_graph)
    if create_graph:
        return f, grad
    return f.detach(), grad.detach()


def input_hessian(critic: Any, x: Any) -> torch.Tensor:
    r"""The input Hessian of the critic, row by row, by differentiating the gradient again.

    .. math::

       H_{i,jk} = \frac{\partial^2 f(x_i)}{\partial x_j\,\partial x_k} .

    It is zero almost everywhere for a piecewise-linear critic.

    Args:
        critic: a callable from ``(n, d)`` to ``(n,)`` or ``(n, 1)``.
        x: the inputs, shape ``(n, d)``.

    Returns:
        :math:`H`, shape ``(n, d, d)``, detached.

    Raises:
        TypeError: if ``critic`` is not callable or ``x`` is not numeric.
        ValueError: if ``x`` is not a finite ``(n, d)`` batch.

    Used in: :doc:`/book/diffusion/gradient-normalization-gan`.
    """
    critic = _check_critic(critic)
    x = _batch(x).detach()
    with torch.enable_grad():
        x = x.requires_grad_(True)
        (grad,) = torch.autograd.grad(_values(critic, x).sum(), x, create_graph=True)
        rows = []
        for j in range(x.shape[1]):  # one backward pass per input dimension
            if grad.requires_grad:
                (row,) = torch.autograd.grad(grad[:, j].sum(), x, retain_graph=True,
                                             allow_unused=True)
            else:
                row = None
            rows.append(torch.zeros_like(x) if row is None else row)
    return torch.stack(rows, dim=1).detach()


def newton_critical_points(critic: Any, x0: Any, steps: int = 40,
                           max_step: float = 0.5) -> torch.Tensor:
    r"""Critical points of a smooth critic by damped Newton steps on :math:`\nabla f = 0`.

    .. math::

       x \leftarrow x - \operatorname{clip}\big(H(x)^{-1}\nabla f(x),\ \pm s_{\max}\big) .

    Each row of ``x0`` is one start; rows that do not converge keep their last iterate, so check
    :math:`\lVert\nabla f\rVert` at the result.

    Args:
        critic: a twice-differentiable callable from ``(n, d)`` to ``(n,)`` or ``(n, 1)``.
        x0: the starts, shape ``(n, d)``.
        steps: number of Newton steps, a positive integer.
        max_step: :math:`s_{\max} > 0`, the largest move per coordinate and step.

    Returns:
        The final iterates, shape ``(n, d)``.

    Raises:
        TypeError: if ``critic`` is not callable or ``steps`` is not an integer.
        ValueError: if ``x0`` is not a finite ``(n, d)`` batch, ``steps < 1`` or ``max_step``
            is not positive.

    Used in: :doc:`/book/diffusion/gradient-normalization-gan`, eq. :eq:`gn-critical-slope`.
    """
    x = _batch(x0, "x0").detach().clone()
    steps = _check_int(steps, "steps", 1)
    s_max = check_positive(max_step, "max_step")
    for _ in range(steps):
        _, grad = value_and_input_grad(critic, x)
        H = input_hessian(critic, x)
        eye = torch.eye(x.shape[1], dtype=x.dtype)
        step = torch.linalg.lstsq(H + 1e-12 * eye, grad[..., None]).solution[..., 0]
        x = x - step.clamp(-s_max, s_max)
    return x


def relu_activation_pattern(critic: nn.Sequential, x: Any) -> torch.Tensor:
    r"""Which hidden units of a ReLU/LeakyReLU critic are active, :math:`[z_{l,k}(x) > 0]`.

    Two inputs with the same pattern lie in the same linear piece, which is a convex polyhedron;
    on it the critic is :math:`w^\top x + b` with one :math:`w, b`.

    Args:
        critic: an ``nn.Sequential`` of ``nn.Linear``, ``nn.ReLU`` and ``nn.LeakyReLU`` layers.
        x: the inputs, shape ``(n, d)``.

    Returns:
        A boolean tensor of shape ``(n, number of hidden units)``.

    Raises:
        TypeError: if ``critic`` is not such an ``nn.Sequential``.
        ValueError: if ``x`` is not a finite ``(n, d)`` batch.

    Used in: :doc:`/book/diffusion/gradient-normalization-gan`.
    """
    if not isinstance(critic, nn.Sequential) or not all(
            isinstance(m, nn.Linear | nn.ReLU | nn.LeakyReLU) for m in critic):
        raise TypeError("critic must be an nn.Sequential of Linear, ReLU and LeakyReLU layers")
    h = _batch(x).detach()
    signs = []
    with torch.no_grad():
        for layer in critic:
            if isinstance(layer, nn.ReLU | nn.LeakyReLU):
                signs.append(h > 0)
            h = layer(h)
    if not signs:
        return torch.zeros(h.shape[0], 0, dtype=torch.bool)
    return torch.cat(signs, dim=1)


def locate_gradient_jump(critic: Any, a: Any, b: Any, iters: int = 52,
                         rtol: float = 1e-9) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Bisect each segment :math:`[a_i, b_i]` for a point where :math:`\nabla f` changes.

    Keeps :math:`t_{\mathrm{lo}} < t_{\mathrm{hi}}` with :math:`\nabla f` at
    :math:`a + t_{\mathrm{lo}}(b - a)` equal to :math:`\nabla f(a)` (within ``rtol``) and different
    at :math:`a + t_{\mathrm{hi}}(b - a)`; after ``iters`` halvings
    :math:`t_{\mathrm{hi}} - t_{\mathrm{lo}} = 2^{-\mathrm{iters}}`. For a piecewise-linear
    critic the two points straddle the boundary of :math:`a`'s piece.

    Args:
        critic: a callable from ``(m, d)`` to ``(m,)`` or ``(m, 1)``.
        a: segment starts, shape ``(m, d)``.
        b: segment ends, shape ``(m, d)``, with :math:`\nabla f(b) \ne \nabla f(a)`.
        iters: number of halvings, a positive integer.
        rtol: relative tolerance for "the same gradient", :math:`\ge 0`.

    Returns:
        ``(t_lo, t_hi)``, each of shape ``(m,)``.

    Raises:
        TypeError: if ``critic`` is not callable or ``iters`` is not an integer.
        ValueError: if the shapes differ, ``iters < 1``, ``rtol < 0``, or the gradient is the same
            at both ends of a segment.

    Used in: :doc:`/book/diffusion/gradient-normalization-gan`, eq. :eq:`gn-jump`.
    """
    a = _batch(a, "a").detach()
    b = _batch(b, "b").detach()
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    iters = _check_int(iters, "iters", 1)
    tol = check_positive(rtol, "rtol", allow_zero=True)
    _, ref = value_and_input_grad(critic, a)
    scale = 1 + ref.norm(dim=-1)

    def same(t: torch.Tensor) -> torch.Tensor:
        _, grad = value_and_input_grad(critic, a + t[:, None] * (b - a))
        return (grad - ref).norm(dim=-1) <= tol * scale

    lo, hi = torch.zeros(a.shape[0], dtype=a.dtype), torch.ones(a.shape[0], dtype=a.dtype)
    if bool(same(hi).any()):
        raise ValueError("the gradient must differ between a and b on every segment")
    for _ in range(iters):
        mid = (lo + hi) / 2
        keep = same(mid)
        lo = torch.where(keep, mid, lo)
        hi = torch.where(keep, hi, mid)
    return lo, hi


def lipschitz_ratios(fn: Any, x: Any, y: Any) -> torch.Tensor:
    r"""Difference quotients of a function between paired points.

    .. math::

       q_i = \frac{\lvert \phi(x_i) - \phi(y_i)\rvert}{\lVert x_i - y_i\rVert} ;

    a function is :math:`L`-Lipschitz exactly when every such quotient is at most :math:`L`.

    Args:
        fn: a callable :math:`\phi` from ``(n, d)`` to ``(n,)`` or ``(n, 1)``.
        x: first points, shape ``(n, d)``.
        y: second points, shape ``(n, d)``, with :math:`y_i \ne x_i`.

    Returns:
        The quotients, shape ``(n,)``, detached.

    Raises:
        TypeError: if ``fn`` is not callable or returns no tensor.
        ValueError: if the shapes differ, an input is not finite, or :math:`x_i = y_i` for some
            :math:`i`.

    Used in: :doc:`/book/diffusion/gradient-normalization-gan`.
    """
    fn = _check_critic(fn)
    x = _batch(x).detach()
    y = _batch(y, "y").detach()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} "
                         f"and {tuple(y.shape)}")
    distance = (x - y).norm(dim=-1)
    if bool((distance == 0).any()):
        raise ValueError("x and y must differ in every row (the quotient is 0/0 otherwise)")
    return ((_values(fn, x) - _values(fn, y)).abs() / distance).detach()
