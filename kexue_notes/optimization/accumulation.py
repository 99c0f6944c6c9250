r"""Gradient accumulation: when :math:`k` micro-batches make one big batch, and momentum hides it.

A big batch of :math:`N` samples is split into :math:`k` micro-batches of sizes
:math:`n_1, \dots, n_k` (:math:`\sum_j n_j = N`) with per-sample losses :math:`\ell_i`. Write
:math:`S_j = \sum_{i \in j} \ell_i` for the sum and :math:`\bar L_j = S_j / n_j` for the mean over
micro-batch :math:`j`. The big batch's mean loss is a weighted sum of the micro-batch means,

.. math::

   \frac1N \sum_{i=1}^N \ell_i = \sum_{j=1}^k \frac{n_j}{N}\,\bar L_j ,

and since the gradient is linear, the same weights turn micro-batch gradients into the big-batch
gradient. The usual recipe, "divide each micro-batch loss by :math:`k`", uses the weight
:math:`1/k` instead of :math:`n_j/N`: exact when all :math:`n_j` are equal, off otherwise. Any
coupling between the samples of a batch (batch normalization, fresh random masks) breaks the
identity, because then :math:`\ell_i` itself depends on which micro-batch sample :math:`i` sits in.

The second half follows Su's observation that an optimizer with momentum can accumulate
gradients without an extra buffer: the momentum decays only at the start of a window of
:math:`k` micro-steps, collects :math:`g_t/k` within it, and the parameters move only at the end
of a window (:class:`AccumSGDM`, exact; :class:`AccumAdam`, approximate). Su's shortcut replaces
:math:`\beta` by :math:`\tilde\beta = 1 - (1 - \beta)/k` in a standard optimizer and gates its
learning rate by the indicator :math:`\chi_{t/k}` (:func:`beta_tilde`, :func:`accumulation_gate`).

The module reads in that order: the weights and the gap of the "divide by :math:`k`" recipe,
accumulation and training with any torch optimizer, batch normalization's running statistics, and
then the optimizers with accumulation built in. Loss functions map a micro-batch to per-sample
losses of shape ``(..., n)``: the last axis holds the ``n`` samples; leading axes, if any, index
independent replicas (for example one model per seed) and are summed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch.optim.lr_scheduler import LambdaLR

from kexue_notes._validate import as_tensor, check_count, check_fraction, check_positive

__all__ = [  # noqa: RUF022 -- in the order of the pages, as the module reads
    "micro_batch_weights",
    "mean_of_means_gap",
    "accumulate_gradients_",
    "train_accumulated_",
    "ema_after_updates",
    "accumulation_indicator",
    "beta_tilde",
    "accumulation_gate",
    "accum_adam_step_ratio",
    "AccumSGDM",
    "AccumAdam",
]

_SCALINGS = ("mean", "mean_of_means", "sum")


# --- checks shared by the functions below ----------------------------------------------------

def _scaling(scaling: Any) -> str:
    if scaling not in _SCALINGS:
        raise ValueError(f"scaling must be one of {_SCALINGS}, got {scaling!r}")
    return str(scaling)


def _sizes(sizes: Any) -> torch.Tensor:
    """Micro-batch sizes as a 1-D float64 tensor of positive integers."""
    n = as_tensor(sizes, "sizes", ndim=1, dtype=torch.float64).to(torch.float64)
    if n.numel() == 0:
        raise ValueError("sizes must hold at least one micro-batch size, got none")
    if bool((n < 1).any()) or not bool((n == n.round()).all()):
        raise ValueError(f"sizes must be positive integers, got {n.tolist()}")
    return n


def _momentum(value: Any, name: str) -> float:
    """A decay rate in [0, 1)."""
    v = check_fraction(value, name)
    if v == 1.0:
        raise ValueError(f"{name} must lie in [0, 1), got {value}")
    return v


# --- micro-batches against one big batch -----------------------------------------------------

def micro_batch_weights(sizes: Any, scaling: str = "mean") -> torch.Tensor:
    r"""Weights :math:`w_j` that turn micro-batch mean losses into the accumulated loss.

    The accumulated loss is :math:`\sum_j w_j \bar L_j` with

    .. math::

       w_j = \frac{n_j}{N}\ (\texttt{"mean"}), \qquad
       w_j = \frac1k\ (\texttt{"mean\_of\_means"}), \qquad
       w_j = n_j\ (\texttt{"sum"}),

    where :math:`N = \sum_j n_j`. ``"mean"`` and ``"sum"`` reproduce the big batch's mean and sum
    loss exactly; ``"mean_of_means"`` is the usual "divide each micro-loss by :math:`k`" recipe.

    Args:
        sizes: micro-batch sizes :math:`n_j`, shape ``(k,)``, positive integers.
        scaling: ``"mean"``, ``"mean_of_means"`` or ``"sum"``.

    Returns:
        The weights, a float64 tensor of shape ``(k,)``.

    Raises:
        ValueError: if ``sizes`` is empty or not positive integers, or ``scaling`` is unknown.

    Used in: :doc:`/book/optimization/gradient-accumulation`, eq. :eq:`accum-mean-weights`.
    """
    n = _sizes(sizes)
    scaling = _scaling(scaling)
    if scaling == "mean":
        return n / n.sum()
    if scaling == "sum":
        return n.clone()
    return torch.full_like(n, 1.0 / n.numel())


def mean_of_means_gap(means: Any, sizes: Any) -> torch.Tensor:
    r"""Error of the "divide by :math:`k`" recipe: mean of micro-batch means minus the big mean.

    .. math::

       \Delta = \frac1k\sum_{j=1}^k \bar L_j - \sum_{j=1}^k \frac{n_j}{N}\bar L_j
       = -\frac{1}{\bar n}\cdot\frac1k\sum_{j=1}^k (n_j - \bar n)\,(\bar L_j - \bar{\bar L}),

    with :math:`\bar n = N/k` and :math:`\bar{\bar L}` the plain average of the :math:`\bar L_j`:
    minus the covariance of sizes and means over the micro-batches, divided by the mean size. It
    vanishes when all sizes are equal or all means are equal. The means may be vectors (for
    example micro-batch gradients); the gap is then taken entry by entry.

    Args:
        means: micro-batch means :math:`\bar L_j`, shape ``(k,)`` or ``(k, ...)``.
        sizes: micro-batch sizes :math:`n_j`, shape ``(k,)``, positive integers.

    Returns:
        :math:`\Delta`, float64, of shape ``means.shape[1:]``.

    Raises:
        ValueError: if ``means`` is not finite or its first axis does not match ``sizes``.

    Used in: :doc:`/book/optimization/gradient-accumulation`, eq. :eq:`accum-mean-gap`.
    """
    n = _sizes(sizes)
    L = as_tensor(means, "means").to(torch.float64)
    if L.ndim == 0 or L.shape[0] != n.numel():
        raise ValueError(f"means must have shape ({n.numel()}, ...) to match sizes, "
                         f"got {tuple(L.shape)}")
    dn = (n - n.mean()).reshape((-1,) + (1,) * (L.ndim - 1))
    return -(dn * (L - L.mean(dim=0))).mean(dim=0) / n.mean()


def accumulate_gradients_(loss_fn: Any, micro_batches: Sequence[Any],
                          params: Iterable[torch.Tensor], *,
                          scaling: str = "mean") -> torch.Tensor:
    r"""Accumulate the gradient of one big batch over its micro-batches, in ``.grad``.

    Each micro-batch is run forward and backward on its own; the parameters' ``.grad`` is first
    set to zero and ends as :math:`\nabla_\theta \sum_j w_j \bar L_j` with the weights of
    :func:`micro_batch_weights`. For ``"mean"`` the sums :math:`S_j` are back-propagated and the
    total divided by :math:`N` at the end (so :math:`N` need not be known in advance); for
    ``"mean_of_means"`` each :math:`\bar L_j/k` is back-propagated, as in the usual recipe.

    Args:
        loss_fn: callable mapping one micro-batch to per-sample losses of shape ``(..., n)``.
            Leading axes index independent replicas and are summed.
        micro_batches: the :math:`k \ge 1` micro-batches, each passed to ``loss_fn`` unchanged.
        params: the tensors whose ``.grad`` receives the gradient (``requires_grad=True``).
        scaling: ``"mean"``, ``"mean_of_means"`` or ``"sum"``.

    Returns:
        The accumulated loss :math:`\sum_j w_j \bar L_j` (summed over replicas), a 0-d tensor.

    Raises:
        ValueError: if ``micro_batches`` is empty, a loss is not finite or has no sample axis, a
            parameter does not require a gradient, or ``scaling`` is unknown.

    Used in: :doc:`/book/optimization/gradient-accumulation`, eq. :eq:`accum-mean-weights`;
    :doc:`/book/optimization/momentum-grad-accum`.
    """
    scaling = _scaling(scaling)
    params = list(params)
    if not params:
        raise ValueError("params must hold at least one tensor, got none")
    if any(not p.requires_grad for p in params):
        raise ValueError("params must all require gradients (requires_grad=True)")
    if len(micro_batches) == 0:
        raise ValueError("micro_batches must hold at least one micro-batch, got none")
    k = len(micro_batches)
    for p in params:
        p.grad = torch.zeros_like(p)
    total, count = None, 0
    for batch in micro_batches:
        losses = loss_fn(batch)
        if not isinstance(losses, torch.Tensor) or losses.ndim == 0:
            raise ValueError("loss_fn must return per-sample losses of shape (..., n), got a "
                             f"{type(losses).__name__} of shape {getattr(losses, 'shape', ())}")
        if not bool(torch.isfinite(losses).all()):
            raise ValueError("loss_fn returned losses that are not finite")
        n = losses.shape[-1]
        micro = losses.sum() / (n * k) if scaling == "mean_of_means" else losses.sum()
        micro.backward()
        total = micro.detach() if total is None else total + micro.detach()
        count += n
    assert total is not None
    if scaling == "mean":
        for p in params:
            assert p.grad is not None
            p.grad.div_(count)
        total = total / count
    return total


def train_accumulated_(loss_fn: Any, micro_batches: Sequence[Any],
                       optimizer: torch.optim.Optimizer, k: int, *,
                       scaling: str = "mean") -> torch.Tensor:
    r"""Train with any torch optimizer, one step per window of :math:`k` micro-batches.

    Window :math:`s` holds micro-batches :math:`(s-1)k+1, \dots, sk`; its gradient is accumulated
    by :func:`accumulate_gradients_` and then ``optimizer.step()`` is called once:
    :math:`\theta_s = \mathrm{step}(\theta_{s-1}, \nabla \sum_j w_j \bar L_j)`. With ``k = 1``
    this is plain training, one step per micro-batch.

    Args:
        loss_fn: callable mapping one micro-batch to per-sample losses of shape ``(..., n)``.
        micro_batches: the micro-batches in order, a multiple of ``k`` of them.
        optimizer: a torch optimizer over the parameters that ``loss_fn`` depends on.
        k: micro-batches per optimizer step, an integer >= 1.
        scaling: ``"mean"``, ``"mean_of_means"`` or ``"sum"`` (see :func:`micro_batch_weights`).

    Returns:
        All parameters, flattened and concatenated, after each step (row 0 is the start), as a
        float64 tensor of shape ``(len(micro_batches) // k + 1, P)``.

    Raises:
        ValueError: if ``k`` is not a positive integer, ``len(micro_batches)`` is not a multiple
            of ``k``, or ``scaling`` is unknown.

    Used in: :doc:`/book/optimization/gradient-accumulation`,
    :doc:`/book/optimization/momentum-grad-accum`.
    """
    k = check_count(k, "k")
    scaling = _scaling(scaling)
    if len(micro_batches) == 0 or len(micro_batches) % k:
        raise ValueError(f"micro_batches must hold a positive multiple of k = {k} micro-batches, "
                         f"got {len(micro_batches)}")
    params = [p for group in optimizer.param_groups for p in group["params"]]

    def flat() -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1).to(torch.float64) for p in params])

    rows = [flat()]
    for start in range(0, len(micro_batches), k):
        accumulate_gradients_(loss_fn, micro_batches[start:start + k], params, scaling=scaling)
        optimizer.step()
        rows.append(flat())
    return torch.stack(rows)


def ema_after_updates(initial: Any, stats: Any, momentum: float) -> torch.Tensor:
    r"""A running statistic after :math:`k` exponential-moving-average updates, in closed form.

    Batch normalization updates its running mean and variance as
    :math:`r \leftarrow (1 - \mu) r + \mu s` once per forward pass, with :math:`s` the batch
    statistic and :math:`\mu` torch's ``momentum``. After :math:`k` micro-batches,

    .. math::

       r_k = (1 - \mu)^k r_0 + \mu \sum_{j=1}^k (1 - \mu)^{k-j} s_j ,

    while one big batch gives :math:`(1 - \mu) r_0 + \mu s`.

    Args:
        initial: the running statistic :math:`r_0`, any shape ``(...)``.
        stats: the batch statistics :math:`s_1, \dots, s_k`, shape ``(k, ...)``.
        momentum: :math:`\mu` in [0, 1].

    Returns:
        :math:`r_k`, float64, of the shape of ``initial``.

    Raises:
        ValueError: if ``momentum`` lies outside [0, 1], the inputs are not finite, or the shapes
            do not match.

    Used in: :doc:`/book/optimization/gradient-accumulation`, eq. :eq:`accum-bn-running`.
    """
    mu = check_fraction(momentum, "momentum")
    r0 = as_tensor(initial, "initial").to(torch.float64)
    s = as_tensor(stats, "stats").to(torch.float64)
    if s.ndim != r0.ndim + 1 or tuple(s.shape[1:]) != tuple(r0.shape) or s.shape[0] == 0:
        raise ValueError(f"stats must have shape (k, *initial.shape) = (k, {tuple(r0.shape)}), "
                         f"got {tuple(s.shape)}")
    k = s.shape[0]
    powers = (1.0 - mu) ** torch.arange(k - 1, -1, -1, dtype=torch.float64)
    weights = (mu * powers).reshape((k,) + (1,) * r0.ndim)
    return (1.0 - mu) ** k * r0 + (weights * s).sum(dim=0)


# --- accumulation hidden in momentum ---------------------------------------------------------

def accumulation_indicator(t: Any, k: int) -> Any:
    r"""The indicator :math:`\chi_{t/k}`: 1 when :math:`k` divides the step :math:`t`, else 0.

    .. math::

       \chi_{t/k} = \begin{cases} 1, & t \equiv 0 \pmod k,\\ 0, & \text{otherwise.}\end{cases}

    Args:
        t: step number(s), an integer or an integer array/tensor of any shape.
        k: the window length, an integer >= 1.

    Returns:
        An int for an int ``t``; otherwise an array/tensor of ``t``'s shape holding 0 and 1.

    Raises:
        TypeError: if ``t`` is not integer-valued.
        ValueError: if ``k`` is not a positive integer.

    Used in: :doc:`/book/optimization/momentum-grad-accum`, eq. :eq:`mga-accum-sgdm`.
    """
    k = check_count(k, "k")
    if isinstance(t, bool):
        raise TypeError("t must be an integer or an integer array, got bool")
    if isinstance(t, int | np.integer):
        return int(t % k == 0)
    if isinstance(t, torch.Tensor):
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"t must hold integers, got dtype {t.dtype}")
        return (t % k == 0).to(t.dtype)
    arr = np.asarray(t)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"t must hold integers, got dtype {arr.dtype}")
    return (arr % k == 0).astype(arr.dtype)


def beta_tilde(beta: float, k: int) -> float:
    r"""Su's replacement momentum for accumulating :math:`k` steps: :math:`1 - (1 - \beta)/k`.

    .. math::

       \tilde\beta = 1 - \frac{1 - \beta}{k}, \qquad
       \tilde\beta^k = 1 - \varepsilon + \frac{k-1}{2k}\varepsilon^2 + O(\varepsilon^3),
       \quad \varepsilon = 1 - \beta .

    Args:
        beta: the momentum :math:`\beta` in [0, 1).
        k: the window length, an integer >= 1.

    Returns:
        :math:`\tilde\beta`, a float in [0, 1).

    Raises:
        ValueError: if ``beta`` lies outside [0, 1) or ``k`` is not a positive integer.

    Used in: :doc:`/book/optimization/momentum-grad-accum`, eq. :eq:`mga-beta-tilde`.
    """
    b = _momentum(beta, "beta")
    k = check_count(k, "k")
    return 1.0 - (1.0 - b) / k


def accumulation_gate(optimizer: torch.optim.Optimizer, k: int) -> LambdaLR:
    r"""Gate any torch optimizer's learning rate by :math:`\chi_{t/k}`: move only every k-th step.

    Returns a :class:`~torch.optim.lr_scheduler.LambdaLR` whose factor at step :math:`t`
    (1-based, the :math:`t`-th call of ``optimizer.step()``) is :math:`\chi_{t/k}`; call its
    ``step()`` after every ``optimizer.step()``. The optimizer's moments still update at every
    step (with learning rate 0 in between), which is Su's "gating only" recipe,
    :math:`\alpha_t \to \chi_{t/k}\alpha_t`.

    Args:
        optimizer: any torch optimizer; its current learning rates become the base rates.
        k: the window length, an integer >= 1.

    Returns:
        The scheduler; it has already set the factor of step 1.

    Raises:
        ValueError: if ``k`` is not a positive integer.

    Used in: :doc:`/book/optimization/momentum-grad-accum`, eq. :eq:`mga-recipe`.
    """
    k = check_count(k, "k")
    return LambdaLR(optimizer, lambda e: float((e + 1) % k == 0))


def accum_adam_step_ratio(mu: Any, sigma2: Any, k: int) -> torch.Tensor:
    r"""How much :class:`AccumAdam` shrinks Adam's step, for i.i.d. gradient noise.

    If the gradients in a window are i.i.d. with mean :math:`\mu` and variance :math:`\sigma^2`,
    true accumulation feeds Adam's second moment with
    :math:`\mathbb E[\bar g^2] = \mu^2 + \sigma^2/k`, while :class:`AccumAdam` feeds it with
    :math:`\mathbb E[\overline{g^2}] = \mu^2 + \sigma^2`. In the steady state the step sizes differ
    by the factor

    .. math::

       \rho = \sqrt{\frac{\mu^2 + \sigma^2/k}{\mu^2 + \sigma^2}}
       \in \Big[\tfrac{1}{\sqrt k}, 1\Big].

    Args:
        mu: gradient mean(s), any shape.
        sigma2: gradient variance(s) :math:`\sigma^2 \ge 0`, broadcastable with ``mu``.
        k: the window length, an integer >= 1.

    Returns:
        :math:`\rho`, float64, of the broadcast shape (1 where :math:`\mu = \sigma = 0`).

    Raises:
        ValueError: if ``sigma2`` is negative, the inputs are not finite, or ``k`` is not a
            positive integer.

    Used in: :doc:`/book/optimization/momentum-grad-accum`, eq. :eq:`mga-adam-ratio`.
    """
    k = check_count(k, "k")
    m = as_tensor(mu, "mu").to(torch.float64)
    s2 = as_tensor(sigma2, "sigma2").to(torch.float64)
    if bool((s2 < 0).any()):
        raise ValueError(f"sigma2 must be >= 0 (a variance), got minimum {s2.min().item():.3g}")
    num, den = m**2 + s2 / k, m**2 + s2
    return torch.where(den > 0, torch.sqrt(num / torch.where(den > 0, den, 1.0)), 1.0)


class AccumSGDM(torch.optim.Optimizer):
    r"""SGD with momentum that accumulates :math:`k` micro-steps inside its momentum buffer.

    At micro-step :math:`t = 1, 2, \dots` with gradient :math:`g_t`,

    .. math::

       m_t = \big[(\beta - 1)\chi_{(t-1)/k} + 1\big] m_{t-1} + \frac{1 - d}{k} g_t, \qquad
       \theta_t = \theta_{t-1} - \chi_{t/k}\,\alpha\, m_t ,

    with :math:`m_0 = 0`: the buffer decays once at the start of each window and the parameters
    move once at its end. With dampening :math:`d = \beta` (the default) this is the
    exponential-moving-average form :math:`m = \beta m + (1-\beta)\bar g` on the window mean
    :math:`\bar g`; with :math:`d = 0` it is torch's heavy-ball form :math:`m = \beta m + \bar g`.
    Either way it equals a plain momentum optimizer stepped once per window on :math:`\bar g`,
    without a separate buffer for the accumulated gradient. Call ``zero_grad()`` after every
    micro-step, as in plain training.

    Args:
        params: parameters or parameter groups, as for any torch optimizer.
        lr: learning rate :math:`\alpha > 0`.
        beta: momentum :math:`\beta` in [0, 1).
        k: micro-steps per update, an integer >= 1.
        dampening: :math:`d` in [0, 1]; ``None`` means :math:`d = \beta`.

    Raises:
        ValueError: if a hyper-parameter is out of range (the message names it).

    Used in: :doc:`/book/optimization/momentum-grad-accum`, eq. :eq:`mga-accum-sgdm`.
    """

    def __init__(self, params: Any, lr: float = 1e-2, beta: float = 0.9, k: int = 1,
                 dampening: float | None = None) -> None:
        lr = check_positive(lr, "lr")
        beta = _momentum(beta, "beta")
        k = check_count(k, "k")
        dampening = beta if dampening is None else check_fraction(dampening, "dampening")
        super().__init__(params, {"lr": lr, "beta": beta, "k": k, "dampening": dampening})

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        r"""One micro-step: fold :math:`g_t/k` into the buffer; update the parameters when
        :math:`k \mid t`.

        Args:
            closure: optional callable that re-evaluates the model and returns the loss.

        Returns:
            The closure's loss, or ``None``.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta, k, d, lr = group["beta"], group["k"], group["dampening"], group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["momentum_buffer"] = torch.zeros_like(p)
                state["step"] += 1
                t, m = state["step"], state["momentum_buffer"]
                if (t - 1) % k == 0:
                    m.mul_(beta)
                m.add_(p.grad, alpha=(1.0 - d) / k)
                if t % k == 0:
                    p.add_(m, alpha=-lr)
        return loss


class AccumAdam(torch.optim.Optimizer):
    r"""Adam with Su's built-in accumulation of :math:`k` micro-steps (approximate).

    Both moments are accumulated like :class:`AccumSGDM`'s buffer, and the parameters move once
    per window with bias corrections counted in windows, :math:`n = t/k`:

    .. math::

       m_t &= \big[(\beta_1 - 1)\chi_{(t-1)/k} + 1\big] m_{t-1} + \frac{1 - \beta_1}{k} g_t,\\
       v_t &= \big[(\beta_2 - 1)\chi_{(t-1)/k} + 1\big] v_{t-1} + \frac{1 - \beta_2}{k} g_t^2,\\
       \theta_t &= \theta_{t-1} - \chi_{t/k}\,\alpha\,
       \frac{m_t/(1 - \beta_1^{t/k})}{\sqrt{v_t/(1 - \beta_2^{t/k})} + \epsilon} .

    :math:`m` is exactly Adam's first moment of the window means :math:`\bar g`, but :math:`v`
    collects the mean of squares :math:`\overline{g^2}` instead of the square of the mean
    :math:`\bar g^2`; it exceeds true accumulation's :math:`v` by the decayed sum of the windows'
    gradient variances. The :math:`\epsilon` sits outside the root, as in ``torch.optim.Adam``
    (Su's post puts it inside). Call ``zero_grad()`` after every micro-step.

    Args:
        params: parameters or parameter groups, as for any torch optimizer.
        lr: learning rate :math:`\alpha > 0`.
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: :math:`\epsilon > 0`.
        k: micro-steps per update, an integer >= 1.

    Raises:
        ValueError: if a hyper-parameter is out of range (the message names it).

    Used in: :doc:`/book/optimization/momentum-grad-accum`, eq. :eq:`mga-accum-adam`.
    """

    def __init__(self, params: Any, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 k: int = 1) -> None:
        lr = check_positive(lr, "lr")
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        b1, b2 = _momentum(betas[0], "betas[0]"), _momentum(betas[1], "betas[1]")
        eps = check_positive(eps, "eps")
        k = check_count(k, "k")
        super().__init__(params, {"lr": lr, "betas": (b1, b2), "eps": eps, "k": k})

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        r"""One micro-step: fold :math:`g_t/k` and :math:`g_t^2/k` into the moments; update the
        parameters when :math:`k \mid t`.

        Args:
            closure: optional callable that re-evaluates the model and returns the loss.

        Returns:
            The closure's loss, or ``None``.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            (b1, b2), eps, k, lr = group["betas"], group["eps"], group["k"], group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
                if (t - 1) % k == 0:
                    m.mul_(b1)
                    v.mul_(b2)
                m.add_(g, alpha=(1.0 - b1) / k)
                v.addcmul_(g, g, value=(1.0 - b2) / k)
                if t % k == 0:
                    n = t // k
                    bc1, bc2 = 1.0 - b1**n, 1.0 - b2**n
                    denom = (v.sqrt() / math.sqrt(bc2)).add_(eps)
                    p.addcdiv_(m, denom, value=-lr / bc1)
        return loss
