r"""ChildTuning: dropout on the gradient (ChildTuning-F) and a fixed Fisher mask (ChildTuning-D).

Xu et al. fine-tune a pre-trained model through a *child network*: the gradient is multiplied by a
0/1 mask :math:`M` before the optimizer sees it. ChildTuning-F draws a fresh Bernoulli(:math:`p`)
mask at every step and rescales by :math:`1/p` (:func:`gradient_dropout_`), which is dropout applied
to the gradient; ChildTuning-D keeps the top-:math:`p` fraction of coordinates by the empirical
Fisher information :math:`F_i = \frac1n\sum_j (\partial_{\theta_i}\log p(y_j\mid x_j))^2`
(:func:`fisher_diagonal`, :func:`fisher_mask`, :func:`mask_gradients_`) and never changes it.
Su's alternative, dropout on the *update* :math:`\Delta\theta` rather than on the gradient, is
:func:`update_dropout_step`.

The moments that the arguments about these methods turn on have closed forms:
:func:`dropout_moments` (the gradient itself), :func:`adam_steady_update` (the update of Adam in its
long-run limit :math:`\beta_2\to1`) and :func:`moved_fraction` (how many coordinates a momentum
optimizer moves after a masked gradient). :func:`softmax_regression_fisher` is the closed-form
diagonal Fisher of softmax regression, against which :func:`fisher_diagonal` is checked.
:func:`finetune_stacked` fine-tunes several seeds of a small network at once, with any of the
methods.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from kexue_notes._validate import as_array, as_tensor, check_count, check_fraction, check_positive

__all__ = [  # noqa: RUF022 -- in the order the page reads
    "dropout_moments",
    "adam_steady_update",
    "moved_fraction",
    "gradient_dropout_",
    "update_dropout_step",
    "fisher_diagonal",
    "fisher_mask",
    "mask_gradients_",
    "softmax_regression_fisher",
    "finetune_stacked",
    "stacked_accuracy",
    "load_digits_arrays",
]

METHODS = ("plain", "child-f", "child-d", "update-dropout")


def _keep_prob(p: object) -> float:
    v = check_fraction(p, "p")
    if v == 0.0:
        raise ValueError("p must lie in (0, 1], got 0")
    return v


# --- moments -------------------------------------------------------------------------------------

def dropout_moments(mu: float | Tensor, sigma: float | Tensor,
                    p: float) -> tuple[Tensor, Tensor]:
    r"""Mean and variance of a dropped-out gradient :math:`g\varepsilon/p`.

    With :math:`g` of mean :math:`\mu` and variance :math:`\sigma^2`, and
    :math:`\varepsilon\sim\mathrm{Bernoulli}(p)` independent of it,

    .. math::

       \mathbb E[g\varepsilon/p] = \mu, \qquad
       \operatorname{Var}[g\varepsilon/p] = \sigma^2 + \frac{1-p}{p}(\mu^2 + \sigma^2).

    Args:
        mu: the gradient's mean, a number or a tensor of any shape.
        sigma: its standard deviation (:math:`\ge 0`), broadcastable with ``mu``.
        p: the keep probability, in :math:`(0, 1]`.

    Returns:
        ``(mean, variance)``, float64 tensors of the broadcast shape.

    Raises:
        ValueError: if ``p`` is outside :math:`(0, 1]`, ``sigma`` is negative or an input is not
            finite.

    Used in: :doc:`/book/training/child-tuning`, eq. :eq:`ct-moments`.
    """
    mu_t = as_tensor(mu, "mu").to(torch.float64)
    sigma_t = as_tensor(sigma, "sigma").to(torch.float64)
    if bool((sigma_t < 0).any()):
        raise ValueError("sigma must be >= 0")
    q = _keep_prob(p)
    second = mu_t**2 + sigma_t**2
    mean, var = torch.broadcast_tensors(mu_t, sigma_t**2 + (1 - q) / q * second)
    return mean.clone(), var.clone()


def adam_steady_update(mu: float | Tensor, sigma: float | Tensor, p: float,
                       beta1: float) -> tuple[Tensor, Tensor]:
    r"""Mean and variance of Adam's update per unit learning rate, in the long run, with gradient
    dropout of keep probability :math:`p` (:math:`p = 1` is plain Adam).

    For i.i.d. gradients of mean :math:`\mu` and variance :math:`\sigma^2`, in the limit
    :math:`\beta_2\to1` the second moment settles at :math:`v = \mathbb E[\tilde g^2] =
    (\mu^2+\sigma^2)/p` and the update is :math:`m/\sqrt v`, where the first moment :math:`m`, an
    exponential moving average with weight :math:`\beta_1`, has mean :math:`\mu` and variance
    :math:`\frac{1-\beta_1}{1+\beta_1}\operatorname{Var}\tilde g`. With
    :math:`\rho = \mu^2/(\mu^2+\sigma^2)`,

    .. math::

       \mathbb E[u] = \sqrt{p}\,\frac{\mu}{\sqrt{\mu^2+\sigma^2}}, \qquad
       \operatorname{Var}[u] = \frac{1-\beta_1}{1+\beta_1}\,(1 - p\rho).

    Args:
        mu: the gradient's mean, a number or a tensor.
        sigma: its standard deviation, broadcastable with ``mu``; ``mu`` and ``sigma`` must not
            both be zero.
        p: the keep probability, in :math:`(0, 1]`.
        beta1: Adam's first-moment decay, in :math:`[0, 1)`.

    Returns:
        ``(mean, variance)``, float64 tensors of the broadcast shape.

    Raises:
        ValueError: on a keep probability outside :math:`(0, 1]`, ``beta1`` outside
            :math:`[0, 1)`, a negative ``sigma`` or :math:`\mu = \sigma = 0`.

    Used in: :doc:`/book/training/child-tuning`, eq. :eq:`ct-adam`.
    """
    mu_t = as_tensor(mu, "mu").to(torch.float64)
    sigma_t = as_tensor(sigma, "sigma").to(torch.float64)
    if bool((sigma_t < 0).any()):
        raise ValueError("sigma must be >= 0")
    q = _keep_prob(p)
    b1 = check_fraction(beta1, "beta1")
    if b1 == 1.0:
        raise ValueError("beta1 must lie in [0, 1), got 1")
    second = mu_t**2 + sigma_t**2
    if bool((second == 0).any()):
        raise ValueError("mu and sigma must not both be zero (the update is 0/0)")
    rho = mu_t**2 / second
    mean = math.sqrt(q) * mu_t / second.sqrt()
    var = (1 - b1) / (1 + b1) * (1 - q * rho)
    mean, var = torch.broadcast_tensors(mean, var)
    return mean.clone(), var.clone()


def moved_fraction(p: float, t: int | Tensor) -> Tensor:
    r"""Expected fraction of coordinates that a momentum optimizer moves at step :math:`t` when
    the gradient is dropped out with keep probability :math:`p` (nonzero gradients assumed).

    A coordinate's momentum is zero until the first step at which its gradient is kept, and
    nonzero from then on, so it moves at step :math:`t` unless all :math:`t` masks dropped it:

    .. math::

       \Pr[\Delta\theta_{i,t}\ne0] = 1 - (1-p)^t .

    Dropout on the update moves a fraction :math:`p` at every step.

    Args:
        p: the keep probability, in :math:`(0, 1]`.
        t: the step, 1-based; an int or an integer tensor.

    Returns:
        A float64 tensor of the shape of ``t``.

    Raises:
        ValueError: if ``p`` is outside :math:`(0, 1]` or a step is below 1.

    Used in: :doc:`/book/training/child-tuning`, eq. :eq:`ct-moved`.
    """
    q = _keep_prob(p)
    t_t = torch.as_tensor(t)
    if t_t.is_floating_point() or t_t.dtype == torch.bool:
        raise TypeError("t must be an integer or an integer tensor")
    if bool((t_t < 1).any()):
        raise ValueError("t must be >= 1")
    return 1 - (1 - q) ** t_t.to(torch.float64)


# --- the methods ---------------------------------------------------------------------------------

def _params_with_grad(params: Iterable[Tensor]) -> list[Tensor]:
    out = list(params)
    if not out:
        raise ValueError("params must hold at least one tensor")
    for k, prm in enumerate(out):
        if not isinstance(prm, Tensor):
            raise TypeError(f"params[{k}] must be a tensor, got {type(prm).__name__}")
    return out


def _bernoulli_like(x: Tensor, q: float, generator: torch.Generator | None) -> Tensor:
    """A 0/1 tensor like ``x`` with entries 1 with probability ``q`` (``U < q``, ``U`` uniform)."""
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return (u < q).to(x.dtype)


def gradient_dropout_(params: Iterable[Tensor], p: float,
                      generator: torch.Generator | None = None) -> list[Tensor]:
    r"""ChildTuning-F: replace every gradient by :math:`g\odot M/p` with a fresh mask
    :math:`M_i\sim\mathrm{Bernoulli}(p)`, in place (call it between ``backward`` and ``step``).

    Args:
        params: parameters whose ``.grad`` is set (any shapes); those without one are skipped.
        p: the keep probability, in :math:`(0, 1]`.
        generator: the random generator for the masks.

    Returns:
        The 0/1 masks, one per parameter with a gradient, of the parameters' shapes.

    Raises:
        ValueError: if ``p`` is outside :math:`(0, 1]` or ``params`` is empty.
        TypeError: if an element of ``params`` is not a tensor.

    Used in: :doc:`/book/training/child-tuning`, eq. :eq:`ct-methods`.
    """
    q = _keep_prob(p)
    masks = []
    for prm in _params_with_grad(params):
        if prm.grad is None:
            continue
        m = _bernoulli_like(prm.grad, q, generator)
        prm.grad.mul_(m).div_(q)
        masks.append(m)
    return masks


def update_dropout_step(optimizer: torch.optim.Optimizer, p: float,
                        generator: torch.Generator | None = None) -> list[Tensor]:
    r"""One optimizer step whose *update* is dropped out: :math:`\theta \leftarrow \theta +
    M\odot\Delta\theta/p`, with :math:`\Delta\theta` the step ``optimizer`` would take and a fresh
    mask :math:`M_i\sim\mathrm{Bernoulli}(p)`. The optimizer's own state (momenta) is updated with
    the full gradient, as usual.

    Args:
        optimizer: any ``torch.optim`` optimizer whose gradients are set.
        p: the keep probability, in :math:`(0, 1]`.
        generator: the random generator for the masks.

    Returns:
        The 0/1 masks, one per parameter of the optimizer, of the parameters' shapes.

    Raises:
        ValueError: if ``p`` is outside :math:`(0, 1]`.
        TypeError: if ``optimizer`` is not a ``torch.optim.Optimizer``.

    Used in: :doc:`/book/training/child-tuning`, eq. :eq:`ct-methods`.
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError("optimizer must be a torch.optim.Optimizer, got "
                        f"{type(optimizer).__name__}")
    q = _keep_prob(p)
    params = [prm for group in optimizer.param_groups for prm in group["params"]]
    old = [prm.detach().clone() for prm in params]
    optimizer.step()
    masks = []
    with torch.no_grad():
        for prm, before in zip(params, old, strict=True):
            m = _bernoulli_like(before, q, generator)
            prm.copy_(before + m * (prm - before) / q)
            masks.append(m)
    return masks


def fisher_diagonal(model: nn.Module, x: Tensor, y: Tensor,
                    names: Sequence[str] | None = None) -> dict[str, Tensor]:
    r"""The diagonal empirical Fisher information of a classifier, from per-sample gradients.

    .. math::

       F_i = \frac1n\sum_{j=1}^n\Bigl(\frac{\partial\log p(y_j\mid x_j;\theta)}
       {\partial\theta_i}\Bigr)^2, \qquad
       \log p(y\mid x;\theta) = \operatorname{log\_softmax}(\mathrm{model}(x))_y .

    Per-sample gradients come from ``torch.func`` (``vmap`` of ``grad``), so this is exact and
    not the square of a mini-batch gradient.

    Args:
        model: maps inputs of shape ``(n, ...)`` to logits of shape ``(n, K)``.
        x: inputs, shape ``(n, ...)``.
        y: integer labels in ``[0, K)``, shape ``(n,)``.
        names: the parameters to score (default: all of them).

    Returns:
        A dict from parameter name to :math:`F`, each of its parameter's shape.

    Raises:
        ValueError: if ``x`` and ``y`` disagree in length, ``y`` is not 1-D, or a name is unknown.
        TypeError: if ``model`` is not an ``nn.Module`` or ``y`` is not an integer tensor.

    Used in: :doc:`/book/training/child-tuning`, eq. :eq:`ct-fisher`.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    x = as_tensor(x, "x")
    if not isinstance(y, Tensor) or y.is_floating_point() or y.dtype == torch.bool:
        raise TypeError("y must be an integer tensor of labels")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"y must have shape ({len(x)},), got {tuple(y.shape)}")
    params = {k: v.detach() for k, v in model.named_parameters()}
    chosen = list(params) if names is None else list(names)
    unknown = [k for k in chosen if k not in params]
    if unknown:
        raise ValueError(f"names holds unknown parameters {unknown}")
    fixed = {k: v for k, v in params.items() if k not in chosen}

    def log_lik(sub: dict[str, Tensor], xj: Tensor, yj: Tensor) -> Tensor:
        logits = functional_call(model, {**fixed, **sub}, (xj.unsqueeze(0),))
        return torch.log_softmax(logits, -1)[0].gather(0, yj.reshape(1))[0]

    per_sample = vmap(grad(log_lik), in_dims=(None, 0, 0))({k: params[k] for k in chosen}, x, y)
    return {k: (g**2).mean(0) for k, g in per_sample.items()}


def fisher_mask(scores: Mapping[str, Tensor], p: float) -> dict[str, Tensor]:
    r"""ChildTuning-D's mask: keep the top-:math:`p` fraction of all coordinates, ranked together
    across every tensor in ``scores``.

    .. math::

       M_i = \mathbb 1[F_i \ge F_{(k)}], \qquad k = \lceil p\,N\rceil,

    where :math:`F_{(k)}` is the :math:`k`-th largest of the :math:`N` scores (ties at the threshold
    are all kept).

    Args:
        scores: a dict from name to a tensor of non-negative scores (any shapes).
        p: the fraction to keep, in :math:`(0, 1]`.

    Returns:
        A dict from name to a boolean mask of the score's shape.

    Raises:
        ValueError: if ``scores`` is empty, ``p`` is outside :math:`(0, 1]`, or a score is
            negative or not finite.

    Used in: :doc:`/book/training/child-tuning`, eq. :eq:`ct-mask`.
    """
    q = _keep_prob(p)
    if not scores:
        raise ValueError("scores must hold at least one tensor")
    checked = {k: as_tensor(v, f"scores[{k!r}]") for k, v in scores.items()}
    if any(bool((v < 0).any()) for v in checked.values()):
        raise ValueError("scores must be >= 0")
    flat = torch.cat([v.reshape(-1) for v in checked.values()])
    k = max(1, math.ceil(q * flat.numel()))
    threshold = torch.topk(flat, k).values[-1]
    return {name: v >= threshold for name, v in checked.items()}


def mask_gradients_(params: Iterable[Tensor], masks: Iterable[Tensor | None],
                    scale: float = 1.0) -> None:
    r"""ChildTuning-D's step: :math:`g \leftarrow g\odot M\cdot s`, in place, with a fixed mask
    per parameter (``None`` leaves a parameter unmasked). The post writes :math:`s = 1/p`; the
    authors' code uses :math:`s = 1`; under Adam the two agree up to its :math:`\epsilon`.

    Args:
        params: parameters whose ``.grad`` is set.
        masks: one boolean or 0/1 mask per parameter, of its shape (or ``None``).
        scale: the factor :math:`s > 0`.

    Raises:
        ValueError: if the numbers of params and masks differ, a mask has the wrong shape, or
            ``scale`` is not positive.

    Used in: :doc:`/book/training/child-tuning`, eq. :eq:`ct-methods`.
    """
    s = check_positive(scale, "scale")
    plist, mlist = _params_with_grad(params), list(masks)
    if len(plist) != len(mlist):
        raise ValueError(f"masks must hold one entry per parameter ({len(plist)}), "
                         f"got {len(mlist)}")
    for prm, m in zip(plist, mlist, strict=True):
        if m is None or prm.grad is None:
            continue
        if m.shape != prm.shape:
            raise ValueError(f"masks: a mask of shape {tuple(m.shape)} for a parameter of shape "
                             f"{tuple(prm.shape)}")
        prm.grad.mul_(m.to(prm.grad.dtype)).mul_(s)


def softmax_regression_fisher(x: object, y: object, proba: object) -> tuple[Tensor, Tensor]:
    r"""The diagonal empirical Fisher of softmax regression :math:`p(k\mid x) =
    \operatorname{softmax}(Wx + b)_k`, in closed form.

    Since :math:`\partial\log p(y\mid x)/\partial W_{kd} = (\delta_{yk} - p_k)\,x_d`,

    .. math::

       F_{W,kd} = \frac1n\sum_j (\delta_{y_jk} - p_{jk})^2\,x_{jd}^2, \qquad
       F_{b,k} = \frac1n\sum_j (\delta_{y_jk} - p_{jk})^2 .

    Args:
        x: inputs, shape ``(n, d)``.
        y: integer labels in ``[0, K)``, shape ``(n,)``.
        proba: the model's class probabilities, shape ``(n, K)`` (e.g. scikit-learn's
            ``predict_proba``).

    Returns:
        ``(F_W, F_b)``, float64 tensors of shapes ``(K, d)`` and ``(K,)``.

    Raises:
        ValueError: on inconsistent shapes, labels outside ``[0, K)`` or rows of ``proba`` that
            are not probability vectors.

    Used in: :doc:`/book/training/child-tuning`, eq. :eq:`ct-logistic-fisher`.
    """
    x_a = as_array(x, "x", ndim=2)
    prob = as_array(proba, "proba", ndim=2)
    if np.any(prob < 0) or not np.allclose(prob.sum(1), 1.0, rtol=0, atol=1e-9):
        raise ValueError("proba must hold probability vectors in its rows")
    y_a = np.asarray(y.detach().cpu().numpy() if isinstance(y, Tensor) else y)
    if y_a.ndim != 1 or not np.issubdtype(y_a.dtype, np.integer):
        raise ValueError("y must be a 1-D array of integer labels")
    n, K = prob.shape
    if len(x_a) != n or len(y_a) != n:
        raise ValueError("x, y and proba must have the same length, got "
                         f"{len(x_a)}, {len(y_a)}, {n}")
    if y_a.min() < 0 or y_a.max() >= K:
        raise ValueError(f"y must lie in [0, {K})")
    r2 = (np.eye(K)[y_a] - prob) ** 2                                      # (n, K)
    return torch.from_numpy(r2.T @ x_a**2 / n), torch.from_numpy(r2.mean(0))


# --- a stacked fine-tuning run -------------------------------------------------------------------

def _sequential_leaves(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """The modules of a (nested) ``nn.Sequential`` in execution order, with their name prefixes."""
    if isinstance(module, nn.Sequential):
        out = []
        for name, child in module.named_children():
            out += _sequential_leaves(child, f"{prefix}{name}.")
        return out
    return [(prefix, module)]


StackedForward = Callable[[Mapping[str, Tensor], Mapping[str, Tensor], Tensor], Tensor]


def _stacked_forward(base: nn.Module) -> StackedForward:
    """A forward pass over stacked copies: parameters ``(S, *shape)``, inputs ``(S, n, d)``.

    A (nested) ``nn.Sequential`` of ``nn.Linear`` layers and parameter-free modules runs as batched
    matrix products (``torch.baddbmm``, the same affine map as ``nn.Linear``); anything else goes
    through ``torch.func.vmap`` of ``functional_call``, which is slower but general.
    """
    leaves = _sequential_leaves(base)
    fast = isinstance(base, nn.Sequential) and all(
        isinstance(m, nn.Linear) or not any(True for _ in m.parameters()) for _, m in leaves)
    if not fast:
        def forward(prm: Mapping[str, Tensor], buf: Mapping[str, Tensor], xs: Tensor) -> Tensor:
            return functional_call(base, (dict(prm), dict(buf)), (xs,))
        return vmap(forward)

    def stacked(prm: Mapping[str, Tensor], buf: Mapping[str, Tensor], xs: Tensor) -> Tensor:
        h = xs
        for prefix, m in leaves:
            if isinstance(m, nn.Linear):
                w = prm[prefix + "weight"].transpose(1, 2)
                b = prm.get(prefix + "bias")
                h = torch.bmm(h, w) if b is None else torch.baddbmm(b.unsqueeze(1), h, w)
            else:
                h = m(h)
        return h
    return stacked


def finetune_stacked(models: Sequence[nn.Module], x: Tensor, y: Tensor, *, method: str,
                     lr: float, steps: int, p: float = 1.0,
                     masks: Sequence[Mapping[str, Tensor]] | None = None,
                     generator: torch.Generator | None = None) -> dict[str, Tensor]:
    r"""Fine-tune :math:`S` copies of one architecture at once, full batch, with Adam.

    The copies' parameters are stacked along a new leading axis (``torch.func.stack_module_state``)
    and the loss is the sum over copies of each copy's mean cross-entropy, so every copy gets its
    own gradient and, Adam being elementwise, its own optimizer. Per step, with :math:`g` the
    gradient and :math:`\Delta\theta` Adam's step:

    * ``"plain"``: Adam on :math:`g`;
    * ``"child-f"``: Adam on :math:`g\odot M_t/p`, a fresh :math:`M_t` each step
      (:func:`gradient_dropout_`), on every parameter;
    * ``"child-d"``: Adam on :math:`g\odot M`, the fixed ``masks`` (:func:`mask_gradients_`);
      parameters missing from a copy's masks are not masked;
    * ``"update-dropout"``: :math:`\theta\leftarrow\theta + M_t\odot\Delta\theta/p`
      (:func:`update_dropout_step`).

    A learning rate scaled by :math:`\sqrt p` is ``"plain"`` with ``lr * p ** 0.5``.

    Args:
        models: :math:`S` modules of the same architecture, mapping ``(n, d)`` to logits ``(n, K)``.
        x: training inputs, shape ``(S, n, d)`` (one training set per copy).
        y: integer labels, shape ``(S, n)``.
        method: one of ``"plain"``, ``"child-f"``, ``"child-d"``, ``"update-dropout"``.
        lr: Adam's learning rate, > 0.
        steps: the number of full-batch steps, >= 1.
        p: the keep probability for the three masked methods, in :math:`(0, 1]`.
        masks: for ``"child-d"``, one dict per copy from parameter name to a boolean mask.
        generator: the random generator for the masks of ``"child-f"`` and ``"update-dropout"``.

    Returns:
        A dict from parameter name to its trained, stacked tensor of shape ``(S, *shape)``.

    Raises:
        ValueError: on an unknown method, inconsistent shapes, missing masks for ``"child-d"``, or
            a bad ``lr``, ``steps`` or ``p``.

    Used in: :doc:`/book/training/child-tuning`, eq. :eq:`ct-methods`.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    lr = check_positive(lr, "lr")
    steps = check_count(steps, "steps")
    q = _keep_prob(p)
    S = len(models)
    if S < 1:
        raise ValueError("models must hold at least one module")
    x = as_tensor(x, "x", ndim=3)
    if x.shape[0] != S or y.shape != x.shape[:2]:
        raise ValueError(f"x must have shape ({S}, n, d) and y shape ({S}, n), got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    if method == "child-d" and (masks is None or len(masks) != S):
        raise ValueError("masks must hold one dict per model for method 'child-d'")
    params, buffers = torch.func.stack_module_state(list(models))
    base = models[0]
    names = list(params)
    leaves = [params[k] for k in names]
    stacked_masks: list[Tensor | None] = []
    if method == "child-d":
        assert masks is not None
        for k in names:
            present = [k in m for m in masks]
            if any(present) and not all(present):
                raise ValueError(f"masks: parameter {k!r} is masked in some copies only")
            stacked_masks.append(torch.stack([m[k] for m in masks]) if all(present) else None)

    batched = _stacked_forward(base)
    opt = torch.optim.Adam(leaves, lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        logits = batched(params, buffers, x)                                   # (S, n, K)
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum")
        (loss / x.shape[1]).backward()
        if method == "child-f":
            gradient_dropout_(leaves, q, generator)
        elif method == "child-d":
            mask_gradients_(leaves, stacked_masks)
        if method == "update-dropout":
            update_dropout_step(opt, q, generator)
        else:
            opt.step()
    return {k: v.detach() for k, v in params.items()}


def stacked_accuracy(model: nn.Module, params: Mapping[str, Tensor], x: Tensor,
                     y: Tensor) -> Tensor:
    r"""Test accuracy of each of :math:`S` stacked copies of ``model`` on one shared test set.

    .. math::

       \mathrm{acc}_s = \frac1n\sum_j \mathbb 1\bigl[\arg\max_k f_{\theta_s}(x_j)_k = y_j\bigr] .

    Args:
        model: the architecture (its own parameter values are not used).
        params: stacked parameters, a dict from name to a tensor of shape ``(S, *shape)``, as
            returned by :func:`finetune_stacked`.
        x: test inputs, shape ``(n, d)``.
        y: integer labels, shape ``(n,)``.

    Returns:
        A float64 tensor of shape ``(S,)``.

    Raises:
        ValueError: if ``params`` is empty or ``y`` does not match ``x``.

    Used in: :doc:`/book/training/child-tuning`, eq. :eq:`ct-methods`.
    """
    if not params:
        raise ValueError("params must hold the stacked parameters")
    x = as_tensor(x, "x")
    if y.shape != (len(x),):
        raise ValueError(f"y must have shape ({len(x)},), got {tuple(y.shape)}")
    buffers = {k: v.expand(next(iter(params.values())).shape[0], *v.shape)
               for k, v in model.named_buffers()}

    def forward(prm: dict[str, Tensor], buf: dict[str, Tensor]) -> Tensor:
        return functional_call(model, (prm, buf), (x,))

    with torch.no_grad():
        logits = vmap(forward)(dict(params), buffers)
    return (logits.argmax(-1) == y).to(torch.float64).mean(-1)


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    r"""scikit-learn's 8x8 digits, read straight from the file that scikit-learn ships.

    The same arrays as ``sklearn.datasets.load_digits(return_X_y=True)``, with the pixels scaled
    from :math:`\{0,\dots,16\}` to :math:`[0, 1]`, :math:`x = \text{pixel}/16`, but without
    importing ``sklearn.datasets`` (about a second of a page's time budget).

    Returns:
        ``(x, y)``: float64 pixels of shape ``(1797, 64)`` and int64 labels of shape ``(1797,)``.

    Raises:
        FileNotFoundError: if scikit-learn (or its data file) is not installed.

    Used in: :doc:`/book/training/child-tuning`, eq. :eq:`ct-methods`.
    """
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-learn is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    data = np.loadtxt(path, delimiter=",")
    return data[:, :-1] / 16.0, data[:, -1].astype(np.int64)
