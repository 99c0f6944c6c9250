r"""Flooding: a floor under the training loss, and the gradient penalty hidden in it.

Ishida et al. train on the flooded loss :math:`\tilde L = |L - b| + b` instead of :math:`L`, for a
flood level :math:`b \ge 0`. Above :math:`b` nothing changes; below it the sign of the gradient
flips, so training descends while :math:`L > b` and ascends while :math:`L < b` (:func:`flood`).
Once the loss reaches :math:`b` it alternates between the two, and a descent step of size
:math:`\varepsilon_1` followed by an ascent step of size :math:`\varepsilon_2` (:func:`two_step`)
is, up to :math:`O(\varepsilon^3)`, one gradient step on a loss with a gradient-norm penalty,

.. math::

   \theta \mapsto \theta - (\varepsilon_1 - \varepsilon_2)\,g(\theta)
   - \frac{\varepsilon_1\varepsilon_2}{2}\,\nabla_\theta\lVert g(\theta)\rVert^2,
   \qquad g = \nabla_\theta L

(:func:`penalty_equivalent_step`, computed by double backpropagation; :func:`equivalent_penalty`
gives Su's learning rate and penalty weight).

Flooding-X chooses :math:`b` from *gradient accordance*, a measure of whether the gradient of one
part of the training set also lowers the loss of another. :func:`per_sample_grads` computes
per-sample gradients with ``torch.func``; :func:`gradient_accordance` is our reading of the
criterion (the mean cosine between group-mean gradients) and :func:`flood_level_from_accordance`
reads off :math:`b`. A small tanh MLP on a flat parameter vector (:func:`mlp_forward`) and a
vectorised logistic-regression trainer with flooding (:func:`train_logistic_flooded`) are the test
beds. All functions work on a flat float64 parameter vector ``theta`` of shape ``(P,)``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torch.func import grad, vmap

from kexue_notes._validate import as_tensor, check_count, check_positive

__all__ = [  # noqa: RUF022 -- in the order the module reads
    "flood",
    "two_step",
    "penalized_gradient",
    "penalty_equivalent_step",
    "equivalent_penalty",
    "mlp_num_params",
    "mlp_forward",
    "per_sample_grads",
    "gradient_accordance",
    "flood_level_from_accordance",
    "logistic_loss",
    "logistic_grad",
    "train_logistic_flooded",
]


def _check_real(value: object, name: str) -> float:
    """A finite real number of either sign."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value}")
    return v


def _check_theta(theta: object) -> Tensor:
    return as_tensor(theta, "theta", ndim=1)


# --- the flooded loss and its two-step dynamics --------------------------------------------------

def flood(loss: Tensor, b: float) -> Tensor:
    r"""The flooded loss of Ishida et al.

    .. math::

       \tilde L = |L - b| + b, \qquad
       \nabla_\theta \tilde L = \operatorname{sign}(L - b)\,\nabla_\theta L .

    The autograd graph of ``loss`` is kept, so ``flood(loss, b).backward()`` descends while
    :math:`L > b` and ascends while :math:`L < b` (and gives a zero gradient at :math:`L = b`, as
    torch's ``abs`` does).

    Args:
        loss: the training loss, a tensor of any shape (usually 0-d, a mini-batch mean).
        b: the flood level, a real number :math:`\ge 0`.

    Returns:
        A tensor of the shape of ``loss``.

    Raises:
        ValueError: if ``b`` is negative or not finite, or ``loss`` holds NaN.
        TypeError: if ``loss`` is not numeric or ``b`` is not a real number.

    Used in: :doc:`/book/optimization/flooding`, eq. :eq:`flood-loss`.
    """
    loss = as_tensor(loss, "loss")
    b = check_positive(b, "b", allow_zero=True)
    return (loss - b).abs() + b


def _apply_grad(grad_fn: Callable[[Tensor], Tensor], theta: Tensor) -> Tensor:
    g = grad_fn(theta)
    if not isinstance(g, Tensor) or g.shape != theta.shape:
        raise ValueError(f"grad_fn must return a tensor of shape {tuple(theta.shape)}, "
                         f"got {getattr(g, 'shape', type(g).__name__)}")
    return g


def two_step(grad_fn: Callable[[Tensor], Tensor], theta: Tensor, eps1: float,
             eps2: float | None = None) -> Tensor:
    r"""One descent step of size :math:`\varepsilon_1`, then one ascent step of size
    :math:`\varepsilon_2`, each with a freshly computed gradient.

    .. math::

       \theta' = \theta - \varepsilon_1\, g(\theta), \qquad
       \theta'' = \theta' + \varepsilon_2\, g(\theta') .

    With :math:`\varepsilon_2 = \varepsilon_1` this is what flooding does once the loss hovers at
    :math:`b`. Negative step sizes reverse a step: ``two_step(g, theta, -e, -e)`` ascends first,
    and ``two_step(g, theta, -a * lr, -(1 + a) * lr)`` is one backstitch step.

    Args:
        grad_fn: maps a parameter vector of shape ``(P,)`` to the gradient :math:`g`, of shape
            ``(P,)``.
        theta: the starting point, shape ``(P,)``.
        eps1: the size of the descent step (any finite real).
        eps2: the size of the ascent step; ``None`` means ``eps1``.

    Returns:
        :math:`\theta''`, shape ``(P,)``.

    Raises:
        ValueError: if ``theta`` is not 1-D or not finite, a step size is not finite, or
            ``grad_fn`` returns the wrong shape.
        TypeError: if a step size is not a real number.

    Used in: :doc:`/book/optimization/flooding`, eq. :eq:`flood-two-step`.
    """
    theta = _check_theta(theta)
    eps1 = _check_real(eps1, "eps1")
    eps2 = eps1 if eps2 is None else _check_real(eps2, "eps2")
    mid = theta - eps1 * _apply_grad(grad_fn, theta)
    return mid + eps2 * _apply_grad(grad_fn, mid)


def _grad_and_penalty_grad(loss_fn: Callable[[Tensor], Tensor],
                           theta: Tensor) -> tuple[Tensor, Tensor]:
    """g = grad L and grad ||g||^2 at theta, by double backpropagation."""
    theta = _check_theta(theta).detach().requires_grad_(True)
    with torch.enable_grad():
        loss = loss_fn(theta)
        if not isinstance(loss, Tensor) or loss.ndim != 0:
            raise ValueError("loss_fn must return a 0-d tensor (a scalar loss)")
        (g,) = torch.autograd.grad(loss, theta, create_graph=True)
        (penalty_grad,) = torch.autograd.grad((g * g).sum(), theta)
    return g.detach(), penalty_grad


def penalized_gradient(loss_fn: Callable[[Tensor], Tensor], theta: Tensor,
                       weight: float) -> Tensor:
    r"""The gradient of the loss with a gradient-norm penalty, by double backpropagation.

    .. math::

       \nabla_\theta\bigl[L(\theta) + \lambda \lVert \nabla_\theta L(\theta)\rVert^2\bigr]
       = g + 2\lambda\, H g, \qquad H = \nabla_\theta^2 L .

    The second term is computed by differentiating :math:`\lVert g\rVert^2` through the graph of
    :math:`g` (``torch.autograd.grad(..., create_graph=True)``); :math:`H` is never formed.

    Args:
        loss_fn: maps a parameter vector of shape ``(P,)`` to a 0-d loss tensor.
        theta: the point, shape ``(P,)``.
        weight: the penalty weight :math:`\lambda` (any finite real).

    Returns:
        The penalised gradient, shape ``(P,)``.

    Raises:
        ValueError: if ``theta`` is not a finite 1-D tensor, ``weight`` is not finite, or
            ``loss_fn`` does not return a scalar.
        TypeError: if ``weight`` is not a real number.

    Used in: :doc:`/book/optimization/flooding`, eq. :eq:`flood-bfree`.
    """
    weight = _check_real(weight, "weight")
    g, penalty_grad = _grad_and_penalty_grad(loss_fn, theta)
    return g + weight * penalty_grad


def penalty_equivalent_step(loss_fn: Callable[[Tensor], Tensor], theta: Tensor, eps1: float,
                            eps2: float | None = None) -> Tensor:
    r"""The gradient-penalty step that :func:`two_step` equals up to :math:`O(\varepsilon^3)`.

    .. math::

       \theta \mapsto \theta - (\varepsilon_1 - \varepsilon_2)\, g
       - \frac{\varepsilon_1 \varepsilon_2}{2}\, \nabla_\theta \lVert g \rVert^2 .

    For :math:`\varepsilon_1 = \varepsilon_2 = \varepsilon` it is a step of size
    :math:`\varepsilon^2/2` on :math:`\lVert g\rVert^2` alone; for :math:`\varepsilon_1 \ne
    \varepsilon_2` it is gradient descent with learning rate :math:`\varepsilon_1 - \varepsilon_2`
    on :math:`L + \lambda\lVert g\rVert^2` (:func:`equivalent_penalty`). Both gradients come from
    double backpropagation, not from the two-step map.

    Args:
        loss_fn: maps a parameter vector of shape ``(P,)`` to a 0-d loss tensor.
        theta: the starting point, shape ``(P,)``.
        eps1: the descent step size of the two-step map.
        eps2: its ascent step size; ``None`` means ``eps1``.

    Returns:
        The new parameters, shape ``(P,)``.

    Raises:
        ValueError: if ``theta`` is not a finite 1-D tensor, a step size is not finite, or
            ``loss_fn`` does not return a scalar.
        TypeError: if a step size is not a real number.

    Used in: :doc:`/book/optimization/flooding`, eq. :eq:`flood-bfree`.
    """
    eps1 = _check_real(eps1, "eps1")
    eps2 = eps1 if eps2 is None else _check_real(eps2, "eps2")
    g, penalty_grad = _grad_and_penalty_grad(loss_fn, theta)
    return theta.detach() - (eps1 - eps2) * g - 0.5 * eps1 * eps2 * penalty_grad


def equivalent_penalty(eps1: float, eps2: float) -> tuple[float, float]:
    r"""Learning rate and penalty weight of the objective that Su's :math:`b`-free alternation
    minimises.

    .. math::

       \eta = \varepsilon_1 - \varepsilon_2, \qquad
       \lambda = \frac{\varepsilon_1 \varepsilon_2}{2(\varepsilon_1 - \varepsilon_2)}, \qquad
       \text{objective } L + \lambda \lVert \nabla_\theta L \rVert^2 .

    Args:
        eps1: the descent step size.
        eps2: the ascent step size; must differ from ``eps1``.

    Returns:
        The pair :math:`(\eta, \lambda)`.

    Raises:
        ValueError: if a step size is not finite or ``eps1 == eps2`` (then :math:`\eta = 0` and only
            the penalty is left; use :func:`penalty_equivalent_step`).
        TypeError: if a step size is not a real number.

    Used in: :doc:`/book/optimization/flooding`, eq. :eq:`flood-bfree`.
    """
    eps1 = _check_real(eps1, "eps1")
    eps2 = _check_real(eps2, "eps2")
    if eps1 == eps2:
        raise ValueError("eps2 must differ from eps1: with equal steps the learning rate is 0")
    eta = eps1 - eps2
    return eta, eps1 * eps2 / (2 * eta)


# --- a small test model --------------------------------------------------------------------------

def _check_sizes(sizes: Sequence[int]) -> list[int]:
    if isinstance(sizes, str | bytes) or not isinstance(sizes, Sequence) or len(sizes) < 2:
        raise ValueError("sizes must be a sequence of at least two layer widths")
    return [check_count(s, "sizes") for s in sizes]


def mlp_num_params(sizes: Sequence[int]) -> int:
    r"""Number of parameters of a fully connected network with layer widths ``sizes``.

    .. math::

       P = \sum_{l=1}^{m} (n_{l-1} + 1)\, n_l .

    Args:
        sizes: the widths :math:`(n_0, \dots, n_m)`, input first, at least two.

    Returns:
        :math:`P`.

    Raises:
        ValueError: if there are fewer than two widths or a width is below 1.
        TypeError: if a width is not an integer.

    Used in: :doc:`/book/optimization/flooding`.
    """
    sizes = _check_sizes(sizes)
    return sum((a + 1) * b for a, b in itertools.pairwise(sizes))


def mlp_forward(theta: Tensor, x: Tensor, sizes: Sequence[int]) -> Tensor:
    r"""A tanh network read from a flat parameter vector.

    .. math::

       h_0 = x, \qquad h_l = \tanh(h_{l-1} W_l + c_l)\ (l < m), \qquad
       f(x) = h_{m-1} W_m + c_m ,

    with :math:`W_l` of shape :math:`(n_{l-1}, n_l)` followed by :math:`c_l` in ``theta``, layer
    by layer. Written without ``nn.Module`` so that ``torch.func`` and double backpropagation see a
    plain function of ``theta``.

    Args:
        theta: the parameters, shape ``(P,)`` with ``P = mlp_num_params(sizes)``.
        x: inputs, shape ``(..., n_0)``.
        sizes: the widths :math:`(n_0, \dots, n_m)`.

    Returns:
        The outputs, shape ``(..., n_m)``.

    Raises:
        ValueError: if ``theta`` has the wrong length or ``x`` the wrong last axis.

    Used in: :doc:`/book/optimization/flooding`.
    """
    sizes = _check_sizes(sizes)
    n_params = mlp_num_params(sizes)
    if theta.ndim != 1 or theta.shape[0] != n_params:
        raise ValueError(f"theta must have shape ({n_params},) for sizes {sizes}, "
                         f"got {tuple(theta.shape)}")
    if x.shape[-1] != sizes[0]:
        raise ValueError(f"x must have last axis {sizes[0]}, got shape {tuple(x.shape)}")
    h, start = x, 0
    for layer, (a, b) in enumerate(itertools.pairwise(sizes)):
        W = theta[start:start + a * b].reshape(a, b)
        c = theta[start + a * b:start + (a + 1) * b]
        start += (a + 1) * b
        h = h @ W + c
        if layer < len(sizes) - 2:
            h = torch.tanh(h)
    return h


# --- Flooding-X: per-sample gradients and gradient accordance ------------------------------------

def per_sample_grads(loss_fn: Callable[[Tensor, Tensor, Tensor], Tensor], theta: Tensor,
                     x: Tensor, y: Tensor) -> Tensor:
    r"""Per-sample gradients :math:`g_i = \nabla_\theta \ell(\theta; x_i, y_i)`, stacked.

    Computed as ``torch.func.vmap(torch.func.grad(loss_fn), in_dims=(None, 0, 0))``: one
    vectorised call, no loop over samples.

    Args:
        loss_fn: ``loss_fn(theta, x_i, y_i)`` returns the 0-d loss of ONE sample, with ``x_i`` and
            ``y_i`` the rows of ``x`` and ``y`` (no batch axis).
        theta: the parameters, shape ``(P,)``.
        x: inputs, shape ``(n, ...)``.
        y: targets, shape ``(n, ...)``.

    Returns:
        The matrix of per-sample gradients, shape ``(n, P)``.

    Raises:
        ValueError: if ``theta`` is not a finite 1-D tensor or ``x`` and ``y`` hold different
            numbers of samples.

    Used in: :doc:`/book/optimization/flooding`, eq. :eq:`flood-loss-change`.
    """
    theta = _check_theta(theta).detach()
    x = as_tensor(x, "x", dtype=theta.dtype)
    y = as_tensor(y, "y", dtype=theta.dtype)
    if x.ndim == 0 or y.ndim == 0 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must hold the same number of samples on axis 0, got shapes "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    return vmap(grad(loss_fn), in_dims=(None, 0, 0))(theta, x, y)


def gradient_accordance(grads: Tensor, groups: Tensor) -> Tensor:
    r"""Gradient accordance between groups of samples (our reading of Flooding-X's criterion).

    A step :math:`-\eta\,\bar g_k` on group :math:`k` changes the loss of group :math:`l` by
    :math:`-\eta\,\bar g_k^\top \bar g_l + O(\eta^2)`. Accordance is the mean cosine of that inner
    product over ordered pairs of distinct groups,

    .. math::

       A = \frac{1}{K(K-1)} \sum_{k \ne l}
       \frac{\bar g_k^\top \bar g_l}{\lVert \bar g_k\rVert\,\lVert \bar g_l\rVert},
       \qquad \bar g_k = \frac{1}{|G_k|}\sum_{i \in G_k} g_i ,

    positive while the groups help each other and negative when a step on one raises the loss of
    the others. Groups may be classes (Flooding-X's class-wise sub-batches) or mini-batches.

    Args:
        grads: per-sample gradients, shape ``(n, P)`` (e.g. from :func:`per_sample_grads`).
        groups: integer group label of each sample, shape ``(n,)``; at least two groups.

    Returns:
        :math:`A \in [-1, 1]`, a 0-d tensor.

    Raises:
        ValueError: if the shapes disagree, there are fewer than two groups, or a group's mean
            gradient is zero.
        TypeError: if ``groups`` is not an integer tensor.

    Used in: :doc:`/book/optimization/flooding`, eq. :eq:`flood-accordance`.
    """
    grads = as_tensor(grads, "grads", ndim=2)
    if not isinstance(groups, Tensor):
        groups = torch.as_tensor(groups)
    if groups.is_floating_point() or groups.is_complex() or groups.dtype == torch.bool:
        raise TypeError(f"groups must be an integer tensor, got dtype {groups.dtype}")
    if groups.shape != grads.shape[:1]:
        raise ValueError(f"groups must have shape ({grads.shape[0]},), got {tuple(groups.shape)}")
    labels, index = torch.unique(groups, return_inverse=True)
    K = labels.numel()
    if K < 2:
        raise ValueError(f"groups must hold at least two distinct labels, got {K}")
    sums = torch.zeros(K, grads.shape[1], dtype=grads.dtype).index_add_(0, index, grads)
    counts = torch.bincount(index, minlength=K).to(grads.dtype)
    means = sums / counts[:, None]
    norms = means.norm(dim=1)
    if bool((norms == 0).any()):
        raise ValueError("grads: a group's mean gradient is zero, its direction is undefined")
    unit = means / norms[:, None]
    cos = unit @ unit.T
    return (cos.sum() - cos.diagonal().sum()) / (K * (K - 1))


def flood_level_from_accordance(train_loss: Tensor, accordance: Tensor,
                                threshold: float = 0.0) -> tuple[float, int]:
    r"""Flood level read off a training run: the training loss when accordance first falls below a
    threshold (our reading of Flooding-X's rule).

    .. math::

       t^\ast = \min\{t : A_t < \tau\}, \qquad b = L_{t^\ast} .

    Args:
        train_loss: training loss after each epoch of an unflooded run, shape ``(T,)``.
        accordance: gradient accordance at the same epochs, shape ``(T,)``.
        threshold: :math:`\tau` (default 0: the sign change).

    Returns:
        The pair :math:`(b, t^\ast)`.

    Raises:
        ValueError: if the shapes differ, a value is not finite, or accordance never falls
            below the threshold.
        TypeError: if ``threshold`` is not a real number.

    Used in: :doc:`/book/optimization/flooding`, eq. :eq:`flood-accordance`.
    """
    train_loss = as_tensor(train_loss, "train_loss", ndim=1)
    accordance = as_tensor(accordance, "accordance", shape=tuple(train_loss.shape))
    threshold = _check_real(threshold, "threshold")
    below = torch.nonzero(accordance < threshold)
    if below.numel() == 0:
        raise ValueError(f"accordance never falls below threshold {threshold}")
    t = int(below[0, 0])
    return float(train_loss[t]), t


# --- logistic regression with flooding, vectorised over flood levels -----------------------------

def logistic_loss(w: Tensor, x: Tensor, y: Tensor) -> Tensor:
    r"""Mean logistic loss (binary cross-entropy with logits) of a linear model.

    .. math::

       L(w) = \frac1n \sum_{i=1}^n \bigl[\log(1 + e^{z_i}) - y_i z_i\bigr],
       \qquad z_i = x_i^\top w .

    Add a column of ones to ``x`` for an intercept. Works on one sample (``x`` of shape ``(d,)``,
    ``y`` 0-d), so :func:`per_sample_grads` can use it directly.

    Args:
        w: weights, shape ``(d,)``.
        x: inputs, shape ``(n, d)`` or ``(d,)``.
        y: labels in :math:`\{0, 1\}`, shape ``(n,)`` or ``()``.

    Returns:
        The mean loss, a 0-d tensor.

    Used in: :doc:`/book/optimization/flooding`.
    """
    z = x @ w
    return (torch.nn.functional.softplus(z) - y * z).mean()


def logistic_grad(w: Tensor, x: Tensor, y: Tensor) -> Tensor:
    r"""Closed-form gradient of :func:`logistic_loss`, for several weight vectors at once.

    .. math::

       \nabla_w L = \frac1n \sum_{i=1}^n \bigl(\sigma(x_i^\top w) - y_i\bigr)\, x_i .

    Args:
        w: weights, shape ``(R, d)`` (one row per run).
        x: inputs, shape ``(n, d)``.
        y: labels in :math:`\{0, 1\}`, shape ``(n,)``.

    Returns:
        The gradients, shape ``(R, d)``.

    Used in: :doc:`/book/optimization/flooding`.
    """
    return _grads_from_logits(x @ w.T, x, y)


def _losses_from_logits(z: Tensor, y: Tensor) -> Tensor:
    """Mean logistic loss of each run from its logits ``z = x @ w.T``, shape ``(n, R)``."""
    return (torch.nn.functional.softplus(z) - y[:, None] * z).mean(dim=0)


def _grads_from_logits(z: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """:func:`logistic_grad` from the logits ``z = x @ w.T``, shape ``(n, R)`` (the trainer shares
    them with the loss)."""
    return (torch.sigmoid(z) - y[:, None]).T @ x / x.shape[0]


def train_logistic_flooded(x: Tensor, y: Tensor, b: Tensor, *, lr: float, epochs: int,
                           batch_size: int, generator: torch.Generator,
                           x_test: Tensor | None = None,
                           y_test: Tensor | None = None,
                           history: bool = True) -> dict[str, Tensor]:
    r"""Mini-batch SGD on the flooded logistic loss, one run per flood level, same data order.

    Each step on a mini-batch :math:`B` updates every run :math:`r` by

    .. math::

       w_r \leftarrow w_r
       - \eta\, \operatorname{sign}\bigl(L_B(w_r) - b_r\bigr)\, \nabla_w L_B(w_r),

    which is SGD on :func:`flood` of the mini-batch loss; :math:`b_r = 0` is plain SGD. Weights
    start at zero; each epoch visits the training set in a fresh random order drawn from
    ``generator`` (shared by all runs), in mini-batches of ``batch_size`` (the last one may be
    smaller).

    Args:
        x: training inputs, shape ``(n, d)`` (add a column of ones for an intercept).
        y: training labels in :math:`\{0, 1\}`, shape ``(n,)``.
        b: flood levels, shape ``(R,)``, each :math:`\ge 0`.
        lr: the learning rate :math:`\eta > 0`.
        epochs: number of passes over the data.
        batch_size: mini-batch size.
        generator: the torch generator for the data order.
        x_test: optional test inputs, shape ``(m, d)``.
        y_test: optional test labels, shape ``(m,)``.
        history: record after every epoch (the default); ``False`` records only the start and
            the end (2 rows), for a caller that needs only the final values. The training is the
            same either way.

    Returns:
        A dict of histories recorded at the start and after every epoch (``epochs + 1`` rows;
        2 rows with ``history=False``):
        ``"w"`` of shape ``(epochs + 1, R, d)``; ``"train_loss"`` and ``"grad_norm"`` (full
        training set, unflooded loss and :math:`\lVert\nabla_w L\rVert`), and with test data
        ``"test_loss"`` and ``"test_acc"``, each of shape ``(epochs + 1, R)``.

    Raises:
        ValueError: on wrong shapes, labels outside :math:`\{0, 1\}`, negative flood levels,
            a non-positive learning rate, or counts below 1.
        TypeError: if ``generator`` is not a ``torch.Generator`` or ``history`` not a bool.

    Used in: :doc:`/book/optimization/flooding`, eq. :eq:`flood-loss`.
    """
    x = as_tensor(x, "x", ndim=2)
    n, d = x.shape
    y = as_tensor(y, "y", shape=(n,), dtype=x.dtype).to(x.dtype)
    if not bool(((y == 0) | (y == 1)).all()):
        raise ValueError("y must hold labels 0 or 1")
    b = as_tensor(b, "b", ndim=1, dtype=x.dtype).to(x.dtype)
    if bool((b < 0).any()):
        raise ValueError(f"b must be >= 0, got minimum {float(b.min()):.3g}")
    lr = check_positive(lr, "lr")
    epochs = check_count(epochs, "epochs")
    batch_size = check_count(batch_size, "batch_size")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if not isinstance(history, bool):
        raise TypeError(f"history must be a bool, got {type(history).__name__}")
    test: tuple[Tensor, Tensor] | None = None
    if x_test is not None or y_test is not None:
        xt = as_tensor(x_test, "x_test", shape=(None, d), dtype=x.dtype).to(x.dtype)
        yt = as_tensor(y_test, "y_test", shape=(xt.shape[0],), dtype=x.dtype).to(x.dtype)
        test = (xt, yt)

    w = torch.zeros(b.shape[0], d, dtype=x.dtype)
    records: dict[str, list[Tensor]] = {k: [] for k in ("w", "train_loss", "grad_norm",
                                                        "test_loss", "test_acc")}

    def record() -> None:
        records["w"].append(w.clone())
        z = x @ w.T                          # the logits, once for the loss and the gradient
        records["train_loss"].append(_losses_from_logits(z, y))
        records["grad_norm"].append(_grads_from_logits(z, x, y).norm(dim=1))
        if test is not None:
            xt, yt = test
            zt = xt @ w.T
            records["test_loss"].append(_losses_from_logits(zt, yt))
            correct = ((zt > 0).to(x.dtype) == yt[:, None]).to(x.dtype)
            records["test_acc"].append(correct.mean(dim=0))

    record()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            xb, yb = x[idx], y[idx]
            z = xb @ w.T                     # the logits, once for the loss and the gradient
            sign = torch.sign(_losses_from_logits(z, yb) - b)
            w = w - lr * sign[:, None] * _grads_from_logits(z, xb, yb)
        if history or epoch == epochs:
            record()
    return {k: torch.stack(v) for k, v in records.items() if v}
