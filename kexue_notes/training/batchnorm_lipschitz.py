r"""Batch normalisation and the Lipschitz constant of the gradient.

Su's reading of batch normalisation starts from the descent lemma: if :math:`\nabla f` is
:math:`L`-Lipschitz, a gradient step of size :math:`\eta` changes the loss by at most
:math:`(L\eta^2/2 - \eta)\lVert\nabla f\rVert^2` (:func:`descent_bound`), so a smaller :math:`L`
permits a larger step. For a linear unit with a logistic loss the constant is a property of the
inputs alone: with :math:`\tilde x = (x - \mu, 1)` (a bias column),

.. math::

   L = \tfrac14\,\lambda_{\max}\bigl(\mathbb E[\tilde x\tilde x^\top]\bigr)
   \;\le\; \tfrac14\,\mathbb E\lVert\tilde x\rVert^2 ,

(:func:`second_moment`, :func:`logistic_lipschitz`, and the post's Cauchy–Schwarz route
:func:`trace_bound`); both sides are smallest when :math:`\mu` is the mean. :func:`gd_logistic`
runs full-batch gradient descent on several such problems at once with ``torch.optim.SGD``.

Batch normalisation itself, :math:`\hat y = (z - \bar z)/\sigma` with batch statistics, sends the
upstream gradient :math:`g` of :math:`\gamma\hat y + \beta` back as

.. math::

   \nabla_z = \frac{\gamma}{\sigma}\Bigl(g - \tfrac1m(\mathbf 1^\top g)\,\mathbf 1
   - \tfrac1m(\hat y^\top g)\,\hat y\Bigr),

the projection of :math:`g` off :math:`\operatorname{span}\{\mathbf 1, \hat y\}` scaled by
:math:`\gamma/\sigma` (:func:`batchnorm_input_grad`, :func:`batchnorm_grad_norm_sq`).
:func:`bn_mlp`, :func:`hessian_norm` and :func:`train_full_batch` build, probe and train a
one-hidden-layer network with ``torch.nn.BatchNorm1d`` before or after its first linear layer's
activation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from kexue_notes._validate import as_array, as_tensor, check_count, check_positive

__all__ = [  # noqa: RUF022 -- in the order the module reads
    "descent_bound",
    "second_moment",
    "logistic_lipschitz",
    "trace_bound",
    "gd_logistic",
    "batchnorm_input_grad",
    "batchnorm_grad_norm_sq",
    "bn_mlp",
    "hessian_norm",
    "train_full_batch",
]

PAGE = "/book/training/batchnorm-lipschitz"
PLACEMENTS = ("none", "after", "before")


def descent_bound(value: Any, grad_sq_norm: Any, lipschitz: float, lr: float) -> Tensor:
    r"""The descent lemma's upper bound on the loss after one gradient step.

    .. math::

       f(\theta - \eta\nabla f) \le f(\theta) + \Bigl(\frac{L\eta^2}{2} - \eta\Bigr)
       \lVert\nabla f(\theta)\rVert^2 ,

    valid when :math:`\nabla f` is :math:`L`-Lipschitz. The bracket is negative exactly for
    :math:`0 < \eta < 2/L` and smallest at :math:`\eta = 1/L`, where the bound is
    :math:`f - \lVert\nabla f\rVert^2/(2L)`.

    Args:
        value: :math:`f(\theta)`, a tensor or array of any shape.
        grad_sq_norm: :math:`\lVert\nabla f(\theta)\rVert^2`, broadcastable with ``value``, >= 0.
        lipschitz: :math:`L > 0`.
        lr: the step size :math:`\eta \ge 0`.

    Returns:
        The bound, a float64 tensor of the broadcast shape.

    Raises:
        ValueError: if ``grad_sq_norm`` is negative, ``lipschitz`` is not positive, ``lr`` is
            negative, or an input is not finite.
        TypeError: if an input is not numeric.

    Used in: :doc:`/book/training/batchnorm-lipschitz`, eq. :eq:`bn-descent`.
    """
    f = as_tensor(value, "value", dtype=torch.float64)
    g2 = as_tensor(grad_sq_norm, "grad_sq_norm", dtype=torch.float64)
    if bool((g2 < 0).any()):
        raise ValueError(f"grad_sq_norm must be >= 0, got minimum {float(g2.min()):.3g}")
    L = check_positive(lipschitz, "lipschitz")
    eta = check_positive(lr, "lr", allow_zero=True)
    return f + (0.5 * L * eta**2 - eta) * g2


def _shifted_with_bias(X: Any, shift: Any, bias: bool) -> NDArray[np.float64]:
    x = as_array(X, "X", ndim=2)
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"X must have at least one row and one column, got shape {x.shape}")
    if shift is not None:
        x = x - as_array(shift, "shift", shape=(x.shape[1],))
    if bias:
        x = np.hstack([x, np.ones((x.shape[0], 1))])
    return x


def second_moment(X: Any, shift: Any = None, *, bias: bool = True) -> NDArray[np.float64]:
    r"""The second-moment matrix of shifted inputs, with a bias column.

    .. math::

       M(\mu) = \frac1n\sum_{i=1}^n \tilde x_i\tilde x_i^\top, \qquad
       \tilde x_i = (x_i - \mu,\ 1)

    (the trailing 1 only when ``bias``). With :math:`a = \bar x - \mu`,
    :math:`M(\mu) = \operatorname{diag}(C, 0) + (a, 1)(a, 1)^\top` for the biased covariance
    :math:`C`, so :math:`\operatorname{tr} M` and :math:`\lambda_{\max}(M)` are smallest at
    :math:`\mu = \bar x`.

    Args:
        X: inputs, shape ``(n, d)``.
        shift: :math:`\mu`, shape ``(d,)``; ``None`` means no shift (:math:`\mu = 0`).
        bias: append the constant feature 1.

    Returns:
        A float64 array of shape ``(d + 1, d + 1)`` (``(d, d)`` without ``bias``).

    Raises:
        ValueError: if ``X`` is not 2-D or empty, ``shift`` has the wrong shape, or either holds
            NaN or infinity.
        TypeError: if ``X`` or ``shift`` is not numeric.

    Used in: :doc:`/book/training/batchnorm-lipschitz`, eq. :eq:`bn-centring`.
    """
    x = _shifted_with_bias(X, shift, bias)
    return x.T @ x / x.shape[0]


def logistic_lipschitz(X: Any, shift: Any = None, *, bias: bool = True) -> float:
    r"""The Lipschitz constant of the gradient of the mean logistic loss of a linear unit.

    For :math:`f(w) = \frac1n\sum_i \log(1 + e^{-s_i w^\top\tilde x_i})` with labels
    :math:`s_i = \pm 1` the Hessian is :math:`\frac1n\sum_i \sigma_i(1-\sigma_i)\tilde x_i\tilde
    x_i^\top \preceq \frac14 M`, with equality at :math:`w = 0`, so

    .. math::

       L = \tfrac14\,\lambda_{\max}\bigl(M(\mu)\bigr)

    exactly (the supremum of the Hessian's norm is attained at :math:`w = 0`). The labels do not
    enter.

    Args:
        X: inputs, shape ``(n, d)``.
        shift: :math:`\mu`, shape ``(d,)``, or ``None``.
        bias: whether the unit has a bias (a constant feature 1).

    Returns:
        :math:`L` as a float.

    Raises:
        ValueError, TypeError: as :func:`second_moment`.

    Used in: :doc:`/book/training/batchnorm-lipschitz`, eq. :eq:`bn-logistic-lipschitz`.
    """
    return float(np.linalg.eigvalsh(second_moment(X, shift, bias=bias))[-1]) / 4


def trace_bound(X: Any, shift: Any = None, *, bias: bool = True) -> float:
    r"""The post's Cauchy–Schwarz bound on the same constant, for the logistic loss.

    The post bounds :math:`\lVert\mathbb E[\lambda\,\tilde x]\rVert` by
    :math:`\sqrt{\mathbb E\lambda^2}\sqrt{\mathbb E\lVert\tilde x\rVert^2}`; with
    :math:`\lvert\lambda\rvert \le \frac14\lvert\Delta w^\top\tilde x\rvert \le
    \frac14\lVert\Delta w\rVert\,\lVert\tilde x\rVert` this gives

    .. math::

       L \le \tfrac14\,\mathbb E\lVert\tilde x\rVert^2 = \tfrac14\operatorname{tr} M(\mu),

    the sum of all eigenvalues where :func:`logistic_lipschitz` takes the largest.

    Args:
        X: inputs, shape ``(n, d)``.
        shift: :math:`\mu`, shape ``(d,)``, or ``None``.
        bias: whether to include the constant feature 1.

    Returns:
        The bound as a float.

    Raises:
        ValueError, TypeError: as :func:`second_moment`.

    Used in: :doc:`/book/training/batchnorm-lipschitz`, eq. :eq:`bn-trace-bound`.
    """
    return float(np.trace(second_moment(X, shift, bias=bias))) / 4


def gd_logistic(X: Any, y: Any, lr: Any, steps: int, *, bias: bool = True) -> dict[str, Tensor]:
    r"""Full-batch gradient descent on several logistic regressions at once, from zero.

    Run :math:`r` fits :math:`f_r(w_r, b_r) = \frac1n\sum_i \ell(w_r^\top x_{ri} + b_r, y_{ri})`
    with the binary cross-entropy :math:`\ell` (``binary_cross_entropy_with_logits``) and step
    :math:`\eta_r`:

    .. math::

       (w_r, b_r) \leftarrow (w_r, b_r) - \eta_r\,\nabla f_r .

    All runs share one ``torch.optim.SGD`` with learning rate 1 on :math:`\sum_r \eta_r f_r`,
    whose gradient with respect to run :math:`r`'s parameters is :math:`\eta_r\nabla f_r`.

    Args:
        X: inputs, shape ``(R, n, d)`` (``R`` runs of ``n`` samples).
        y: labels in {0, 1}, shape ``(R, n)``.
        lr: step sizes :math:`\eta_r > 0`, shape ``(R,)``.
        steps: number of steps, >= 1.
        bias: whether each unit has a bias.

    Returns:
        ``{"loss": (steps + 1, R), "grad_sq": (steps, R)}``: the loss before each step and after
        the last, and :math:`\lVert\nabla f_r\rVert^2` at each step; float64.

    Raises:
        ValueError: if shapes disagree, a label is not 0 or 1, a step size is not positive, or
            ``steps`` < 1.
        TypeError: if an input is not numeric or ``steps`` is not an integer.

    Used in: :doc:`/book/training/batchnorm-lipschitz`, eq. :eq:`bn-descent`.
    """
    x = as_tensor(X, "X", ndim=3, dtype=torch.float64).to(torch.float64)
    R, n, d = x.shape
    t = as_tensor(y, "y", shape=(R, n), dtype=torch.float64).to(torch.float64)
    if not bool(((t == 0) | (t == 1)).all()):
        raise ValueError("y must hold labels 0 or 1")
    eta = as_tensor(lr, "lr", shape=(R,), dtype=torch.float64).to(torch.float64)
    if not bool((eta > 0).all()):
        raise ValueError(f"lr must be > 0, got minimum {float(eta.min()):.3g}")
    steps = check_count(steps, "steps")
    w = torch.zeros(R, d, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(R, dtype=torch.float64, requires_grad=bias)
    params = [w, b] if bias else [w]
    opt = torch.optim.SGD(params, lr=1.0)

    def losses() -> Tensor:
        logits = torch.einsum("rnd,rd->rn", x, w) + b[:, None]
        return nn.functional.binary_cross_entropy_with_logits(
            logits, t, reduction="none").mean(1)

    loss_hist, grad_hist = [], []
    for _ in range(steps):
        opt.zero_grad()
        f = losses()
        (eta * f).sum().backward()
        g2 = (w.grad**2).sum(1) + (b.grad**2 if bias else 0.0)  # type: ignore[operator]
        loss_hist.append(f.detach())
        grad_hist.append(g2.detach() / eta**2)
        opt.step()
    with torch.no_grad():
        loss_hist.append(losses())
    return {"loss": torch.stack(loss_hist), "grad_sq": torch.stack(grad_hist)}


def _bn_inputs(z: Any, grad_out: Any, gamma: Any) -> tuple[Tensor, Tensor, Tensor]:
    zt = as_tensor(z, "z", ndim=2)
    if zt.shape[0] < 2:
        raise ValueError(f"z must hold a batch of at least 2 rows, got shape {tuple(zt.shape)}")
    g = as_tensor(grad_out, "grad_out", shape=tuple(zt.shape), dtype=zt.dtype).to(zt.dtype)
    gam = as_tensor(gamma, "gamma", dtype=zt.dtype).to(zt.dtype)
    if gam.ndim > 1 or (gam.ndim == 1 and gam.shape[0] != zt.shape[1]):
        raise ValueError(f"gamma must be a number or have shape ({zt.shape[1]},), "
                         f"got {tuple(gam.shape)}")
    return zt, g, gam


def batchnorm_input_grad(z: Any, grad_out: Any, gamma: Any = 1.0, eps: float = 0.0) -> Tensor:
    r"""The gradient that batch normalisation (training mode) sends back to its input.

    With batch statistics :math:`\bar z`, :math:`\sigma^2 = \frac1m\sum_i(z_i - \bar z)^2` (biased)
    per column, :math:`s = \sqrt{\sigma^2 + \varepsilon}`, :math:`\hat y = (z - \bar z)/s` and
    output :math:`\gamma\hat y + \beta`, the Jacobian is
    :math:`\partial\hat y_i/\partial z_j = (\delta_{ij} - \frac1m - \frac1m\hat y_i\hat y_j)/s`, so

    .. math::

       \nabla_z = \frac{\gamma}{s}\Bigl(g - \tfrac1m(\mathbf 1^\top g)\,\mathbf 1
       - \tfrac1m(\hat y^\top g)\,\hat y\Bigr)

    for any :math:`\varepsilon \ge 0`; for :math:`\varepsilon = 0`, :math:`\lVert\hat y\rVert^2 = m`
    and the bracket is the orthogonal projection of :math:`g` off
    :math:`\operatorname{span}\{\mathbf 1, \hat y\}`. Columns are independent (one channel each).

    Args:
        z: the input batch, shape ``(m, C)`` with ``m >= 2``.
        grad_out: the upstream gradient :math:`g`, shape ``(m, C)``.
        gamma: the scale :math:`\gamma`, a number or shape ``(C,)``.
        eps: :math:`\varepsilon \ge 0`, as in ``torch.nn.BatchNorm1d``.

    Returns:
        :math:`\nabla_z`, shape ``(m, C)``, in the dtype of ``z``.

    Raises:
        ValueError: if ``z`` is not 2-D or has fewer than 2 rows, ``grad_out`` or ``gamma`` has
            the wrong shape, ``eps`` is negative, a column of ``z`` is constant while
            ``eps == 0``, or an input holds NaN.
        TypeError: if an input is not numeric.

    Used in: :doc:`/book/training/batchnorm-lipschitz`, eq. :eq:`bn-backward`.
    """
    zt, g, gam = _bn_inputs(z, grad_out, gamma)
    e = check_positive(eps, "eps", allow_zero=True)
    c = zt - zt.mean(0)
    var = (c**2).mean(0)
    if e == 0 and bool((var == 0).any()):
        raise ValueError("z has a constant column, so its batch variance is 0: pass eps > 0")
    s = torch.sqrt(var + e)
    yhat = c / s
    proj = g - g.mean(0) - (yhat * g).mean(0) * yhat
    return gam * proj / s


def batchnorm_grad_norm_sq(z: Any, grad_out: Any, gamma: Any = 1.0) -> Tensor:
    r"""The squared norm of the batch-norm input gradient, per channel, for :math:`\varepsilon = 0`.

    Because the bracket of :func:`batchnorm_input_grad` is an orthogonal projection and
    :math:`\mathbf 1 \perp \hat y`, :math:`\lVert\mathbf 1\rVert^2 = \lVert\hat y\rVert^2 = m`,

    .. math::

       \lVert\nabla_z\rVert^2 = \frac{\gamma^2}{\sigma^2}\Bigl(\lVert g\rVert^2
       - \tfrac1m(\mathbf 1^\top g)^2 - \tfrac1m(\hat y^\top g)^2\Bigr)
       \le \frac{\gamma^2}{\sigma^2}\lVert g\rVert^2

    (the identity behind the bound of Santurkar et al.'s Theorem 4.1).

    Args:
        z: the input batch, shape ``(m, C)`` with ``m >= 2`` and no constant column.
        grad_out: the upstream gradient :math:`g`, shape ``(m, C)``.
        gamma: the scale :math:`\gamma`, a number or shape ``(C,)``.

    Returns:
        A tensor of shape ``(C,)``.

    Raises:
        ValueError, TypeError: as :func:`batchnorm_input_grad` with ``eps = 0``.

    Used in: :doc:`/book/training/batchnorm-lipschitz`, eq. :eq:`bn-backward-norm`.
    """
    zt, g, gam = _bn_inputs(z, grad_out, gamma)
    m = zt.shape[0]
    c = zt - zt.mean(0)
    var = (c**2).mean(0)
    if bool((var == 0).any()):
        raise ValueError("z has a constant column, so its batch variance is 0")
    yhat = c / torch.sqrt(var)
    bracket = (g**2).sum(0) - g.sum(0) ** 2 / m - (yhat * g).sum(0) ** 2 / m
    return gam**2 * bracket / var


def bn_mlp(placement: str, n_in: int, hidden: int, seed: int) -> nn.Sequential:
    r"""A one-hidden-layer ReLU network with batch normalisation in one of two places.

    * ``"none"``:   Linear → ReLU → Linear;
    * ``"after"``:  Linear → BatchNorm1d → ReLU → Linear (BN on the pre-activations, as in
      Ioffe and Szegedy);
    * ``"before"``: Linear → ReLU → BatchNorm1d → Linear (BN on the input of the second linear
      layer, Su's placement).

    The map is :math:`x \mapsto W_2\,\phi(W_1x + b_1) + b_2` with :math:`\phi` the ReLU and the
    normalisation inserted as listed. Layers use torch's default initialisation, drawn under
    ``torch.manual_seed(seed)`` inside ``torch.random.fork_rng`` (the global generator is left as
    it was); BN has ``track_running_stats=False``, so it always uses batch statistics. float64.

    Args:
        placement: ``"none"``, ``"after"`` or ``"before"``.
        n_in: input dimension, >= 1.
        hidden: hidden width, >= 1.
        seed: the initialisation seed, >= 0.

    Returns:
        The network, an ``nn.Sequential`` mapping ``(m, n_in)`` to ``(m, 1)``.

    Raises:
        ValueError: if ``placement`` is unknown or a count is out of range.
        TypeError: if a count is not an integer.

    Used in: :doc:`/book/training/batchnorm-lipschitz`, section "Beyond one layer".
    """
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
    n_in = check_count(n_in, "n_in")
    hidden = check_count(hidden, "hidden")
    seed = check_count(seed, "seed", minimum=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        first, last = nn.Linear(n_in, hidden), nn.Linear(hidden, 1)
    bn = nn.BatchNorm1d(hidden, track_running_stats=False)
    layers: list[nn.Module] = {"none": [first, nn.ReLU(), last],
                               "after": [first, bn, nn.ReLU(), last],
                               "before": [first, nn.ReLU(), bn, last]}[placement]
    return nn.Sequential(*layers).double()


def _bce_of(model: nn.Module, X: Any, y: Any) -> tuple[Tensor, Tensor]:
    x = as_tensor(X, "X", ndim=2, dtype=torch.float64).to(torch.float64)
    t = as_tensor(y, "y", shape=(x.shape[0],), dtype=torch.float64).to(torch.float64)
    if not bool(((t == 0) | (t == 1)).all()):
        raise ValueError("y must hold labels 0 or 1")
    return x, t


def hessian_norm(model: nn.Module, X: Any, y: Any, *, tol: float = 1e-8,
                 seed: int = 0) -> float:
    r"""The spectral norm of the Hessian of the training loss at the model's parameters.

    For the mean binary cross-entropy :math:`f(\theta)` of ``model`` on ``(X, y)`` this is
    :math:`\lVert\nabla^2 f(\theta)\rVert_2 = \max_k\lvert\lambda_k\rvert`, the local Lipschitz
    constant of :math:`\nabla f`. It is found by Lanczos iteration
    (``scipy.sparse.linalg.eigsh``, ``which="LM"``) on Hessian–vector products computed by double
    backpropagation, from a start vector drawn with ``numpy.random.default_rng(seed)``.

    Args:
        model: a float64 module mapping ``(n, d)`` to ``(n, 1)`` logits.
        X: inputs, shape ``(n, d)``.
        y: labels in {0, 1}, shape ``(n,)``.
        tol: relative tolerance of the eigenvalue, > 0.
        seed: seed of the start vector, >= 0.

    Returns:
        The norm as a float.

    Raises:
        ValueError: if shapes disagree, a label is not 0 or 1, or ``tol`` is not positive.
        TypeError: if an input is not numeric.

    Used in: :doc:`/book/training/batchnorm-lipschitz`, section "Beyond one layer".
    """
    from scipy.sparse.linalg import LinearOperator, eigsh

    x, t = _bce_of(model, X, y)
    tol = check_positive(tol, "tol")
    seed = check_count(seed, "seed", minimum=0)
    params = [p for p in model.parameters() if p.requires_grad]
    loss = nn.functional.binary_cross_entropy_with_logits(model(x).squeeze(-1), t)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    flat = torch.cat([g.reshape(-1) for g in grads])

    def hvp(v: NDArray[np.float64]) -> NDArray[np.float64]:
        vt = torch.as_tensor(np.ravel(v), dtype=torch.float64)
        hv = torch.autograd.grad(flat @ vt, params, retain_graph=True)
        return torch.cat([h.reshape(-1) for h in hv]).numpy()

    P = flat.numel()
    v0 = np.random.default_rng(seed).standard_normal(P)
    val = eigsh(LinearOperator((P, P), matvec=hvp, dtype=np.float64), k=1, which="LM",
                tol=tol, v0=v0, return_eigenvectors=False)
    return float(np.abs(val).max())


def train_full_batch(model: nn.Module, X: Any, y: Any, lr: float, steps: int) -> Tensor:
    r"""Full-batch gradient descent on the mean binary cross-entropy, with ``torch.optim.SGD``.

    .. math::

       \theta \leftarrow \theta - \eta\,\nabla_\theta\,\frac1n\sum_i
       \ell\bigl(\mathrm{model}(x_i;\theta), y_i\bigr)

    (the model is trained in place, in training mode).

    Args:
        model: a float64 module mapping ``(n, d)`` to ``(n, 1)`` logits.
        X: inputs, shape ``(n, d)``.
        y: labels in {0, 1}, shape ``(n,)``.
        lr: the step size :math:`\eta > 0`.
        steps: number of steps, >= 1.

    Returns:
        The loss before each step and after the last, shape ``(steps + 1,)``, float64.

    Raises:
        ValueError: if shapes disagree, a label is not 0 or 1, ``lr`` is not positive or
            ``steps`` < 1.
        TypeError: if an input is not numeric.

    Used in: :doc:`/book/training/batchnorm-lipschitz`, section "Beyond one layer".
    """
    x, t = _bce_of(model, X, y)
    eta = check_positive(lr, "lr")
    steps = check_count(steps, "steps")
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=eta)
    hist = []
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(model(x).squeeze(-1), t)
        loss.backward()
        hist.append(loss.detach())
        opt.step()
    with torch.no_grad():
        hist.append(nn.functional.binary_cross_entropy_with_logits(model(x).squeeze(-1), t))
    return torch.stack(hist)
