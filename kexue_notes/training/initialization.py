r"""Initialisation, parametrisation and normalisation: the second-moment book-keeping.

Su's post 8620 tracks one number through a network, the second moment :math:`\mathbb E[h^2]` of its
hidden units, and asks every design choice to keep it of order one. This module holds the pieces of
that book-keeping:

* the variance factors of the sampling distributions: a uniform law of given mean and standard
  deviation (:func:`uniform_bounds`) and a normal law truncated at standardised bounds
  (:func:`truncated_normal_variance_factor`, :func:`truncated_normal_std_correction`,
  :func:`trunc_normal_effective_std`, the last for ``torch.nn.init.trunc_normal_``'s absolute
  bounds);
* moments of activations under a standard normal input (:func:`gaussian_expectation`,
  :func:`second_moment_gain`) and the SELU constants solved from its two moment equations
  (:func:`selu_moments`, :func:`selu_constants`);
* a deep ReLU MLP initialised by torch's own initialisers (:func:`relu_mlp_second_moments`) and the
  closed form it should follow (:func:`relu_second_moment_ratio`);
* the attention logits with and without the :math:`1/\sqrt d` scale
  (:func:`attention_softmax_stats`);
* LayerNorm and RMSNorm as the post writes them (:func:`layer_norm`, :func:`rms_norm`) and the NTK
  parametrisation of a linear layer (:func:`ntk_linear`);
* the residual recursions of Post-Norm, Pre-Norm and ReZero at initialisation, in closed form
  (:func:`postnorm_branch_weights`, :func:`prenorm_stream_rms`, :func:`rezero_stream_rms`) and
  measured on a stack of torch layers (:func:`residual_stack`, :func:`branch_weights_lstsq`).

Tensors are float64 unless stated; randomness comes from an explicit ``torch.Generator``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from kexue_notes._validate import as_tensor, check_count, check_positive, check_real

__all__ = [  # noqa: RUF022 -- in the order the page reads
    "uniform_bounds",
    "truncated_normal_variance_factor",
    "truncated_normal_std_correction",
    "trunc_normal_effective_std",
    "gaussian_expectation",
    "second_moment_gain",
    "selu_moments",
    "selu_constants",
    "relu_second_moment_ratio",
    "relu_mlp_second_moments",
    "attention_softmax_stats",
    "layer_norm",
    "rms_norm",
    "ntk_linear",
    "postnorm_branch_weights",
    "prenorm_stream_rms",
    "rezero_stream_rms",
    "residual_stack",
    "branch_weights_lstsq",
]



def _phi(x: float) -> float:
    """The standard normal density."""
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _Phi(x: float) -> float:
    """The standard normal distribution function."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


# --- sampling distributions ----------------------------------------------------------------------

def uniform_bounds(mean: float, std: float) -> tuple[float, float]:
    r"""The interval of the uniform law with a given mean and standard deviation.

    :math:`U[a, b]` has mean :math:`(a + b)/2` and variance :math:`(b - a)^2/12`, so mean
    :math:`\mu` and standard deviation :math:`\sigma` need

    .. math:: [a, b] = [\mu - \sqrt3\,\sigma,\ \mu + \sqrt3\,\sigma] .

    Args:
        mean: :math:`\mu`, a finite real number.
        std: :math:`\sigma > 0`.

    Returns:
        ``(a, b)`` as floats.

    Raises:
        ValueError: if ``std`` is not positive or either argument is not finite.
        TypeError: if an argument is not a real number.

    Used in: :doc:`/book/training/transformer-init-param-norm`, eq. :eq:`init-uniform`.
    """
    mu = check_real(mean, "mean")
    sigma = check_positive(std, "std")
    half = math.sqrt(3.0) * sigma
    return mu - half, mu + half


def truncated_normal_variance_factor(lower: float, upper: float) -> float:
    r"""The variance of a standard normal truncated to ``[lower, upper]``.

    With :math:`Z = \Phi(b) - \Phi(a)` and the standard normal density :math:`\varphi`,

    .. math::

       \gamma(a, b) = 1 + \frac{a\varphi(a) - b\varphi(b)}{Z}
                      - \Bigl(\frac{\varphi(a) - \varphi(b)}{Z}\Bigr)^2 ,

    which for symmetric bounds :math:`\pm c` is
    :math:`\gamma = 1 - 2c\,\varphi(c)/(2\Phi(c) - 1)`; a normal :math:`\mathcal N(\mu, \sigma^2)`
    truncated to :math:`[\mu + a\sigma, \mu + b\sigma]` has variance :math:`\gamma\sigma^2`. The
    bounds are in units of :math:`\sigma` (``-inf``/``inf`` allowed). Accurate while the interval
    holds a non-negligible share of the mass (:math:`Z` is computed directly, without log-space
    tricks).

    Args:
        lower: :math:`a`, a real number or ``-inf``.
        upper: :math:`b > a`, a real number or ``inf``.

    Returns:
        :math:`\gamma(a, b) \in (0, 1]` as a float.

    Raises:
        ValueError: if ``upper <= lower``, a bound is NaN, or the interval holds no mass in float64.
        TypeError: if a bound is not a real number.

    Used in: :doc:`/book/training/transformer-init-param-norm`, eq. :eq:`init-truncnorm`.
    """
    a = _check_bound(lower, "lower")
    b = _check_bound(upper, "upper")
    if not b > a:
        raise ValueError(f"upper must be > lower, got lower={lower}, upper={upper}")
    z = _Phi(b) - _Phi(a)
    if not z > 0:
        raise ValueError(f"lower and upper bound an interval with no mass in float64: [{a}, {b}]")
    pa, pb = _phi(a) if math.isfinite(a) else 0.0, _phi(b) if math.isfinite(b) else 0.0
    apa = a * pa if math.isfinite(a) else 0.0
    bpb = b * pb if math.isfinite(b) else 0.0
    return 1.0 + (apa - bpb) / z - ((pa - pb) / z) ** 2


def _check_bound(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if math.isnan(v):
        raise ValueError(f"{name} must not be NaN")
    return v


def truncated_normal_std_correction(bound: float = 2.0) -> float:
    r"""The factor by which to enlarge the standard deviation passed to a truncated normal
    sampler that truncates at :math:`\pm c\,\sigma`, so that the samples have variance
    :math:`\sigma^2`:

    .. math:: \frac{1}{\sqrt{\gamma(-c, c)}}, \qquad
              \gamma(-c, c) = 1 - \frac{2c\,\varphi(c)}{2\Phi(c) - 1} .

    ``tf.random.truncated_normal`` truncates at :math:`c = 2`, giving :math:`1.1368\ldots`.

    Args:
        bound: :math:`c > 0`, the truncation point in units of :math:`\sigma`.

    Returns:
        The correction factor (a float :math:`\ge 1`).

    Raises:
        ValueError: if ``bound`` is not positive and finite.
        TypeError: if ``bound`` is not a real number.

    Used in: :doc:`/book/training/transformer-init-param-norm`, eq. :eq:`init-truncnorm`.
    """
    c = check_positive(bound, "bound")
    return 1.0 / math.sqrt(truncated_normal_variance_factor(-c, c))


def trunc_normal_effective_std(std: float, a: float = -2.0, b: float = 2.0,
                               mean: float = 0.0) -> float:
    r"""The standard deviation of ``torch.nn.init.trunc_normal_(t, mean, std, a, b)``.

    torch's bounds ``a``, ``b`` are *absolute* values, not multiples of ``std``; the samples come
    from :math:`\mathcal N(\mu, \sigma^2)` truncated to :math:`[a, b]`, whose standard deviation is

    .. math:: \sigma\,\sqrt{\gamma\bigl(\tfrac{a - \mu}{\sigma}, \tfrac{b - \mu}{\sigma}\bigr)}

    with :math:`\gamma` of :func:`truncated_normal_variance_factor`. With the defaults
    :math:`a = -2`, :math:`b = 2` and a small ``std`` such as 0.02 the bounds sit at
    :math:`\pm 100\sigma` and nothing is truncated.

    Args:
        std: :math:`\sigma > 0`.
        a: the lower bound (absolute).
        b: the upper bound (absolute), :math:`> a`.
        mean: :math:`\mu`.

    Returns:
        The standard deviation of the samples, a float.

    Raises:
        ValueError: if ``std`` is not positive, ``b <= a``, or an argument is not finite.
        TypeError: if an argument is not a real number.

    Used in: :doc:`/book/training/transformer-init-param-norm`, eq. :eq:`init-truncnorm`.
    """
    sigma = check_positive(std, "std")
    mu = check_real(mean, "mean")
    lo, hi = check_real(a, "a"), check_real(b, "b")
    if not hi > lo:
        raise ValueError(f"b must be > a, got a={a}, b={b}")
    return sigma * math.sqrt(truncated_normal_variance_factor((lo - mu) / sigma, (hi - mu) / sigma))


# --- moments of activations ----------------------------------------------------------------------

def gaussian_expectation(fn: Callable[[float], float], variance: float = 1.0) -> float:
    r"""The expectation of ``fn`` under a centred normal law, by adaptive quadrature.

    .. math:: \mathbb E_{z\sim\mathcal N(0, v)}[f(z)]
              = \int_{-\infty}^{0} f(z)\,\frac{e^{-z^2/2v}}{\sqrt{2\pi v}}\,dz
              + \int_{0}^{\infty} f(z)\,\frac{e^{-z^2/2v}}{\sqrt{2\pi v}}\,dz ,

    split at 0 so that activations with a kink there (ReLU, ELU, SELU) are integrated to full
    accuracy (``scipy.integrate.quad`` on :math:`[-40\sqrt v, 0]` and :math:`[0, 40\sqrt v]`,
    relative tolerance :math:`10^{-12}`; the tails beyond carry a weight below :math:`e^{-800}`).

    Args:
        fn: a scalar function of one float, of at most polynomial growth.
        variance: :math:`v > 0`.

    Returns:
        The expectation, a float.

    Raises:
        ValueError: if ``variance`` is not positive, or the integral does not converge to a finite
            value.
        TypeError: if ``fn`` is not callable.

    Used in: :doc:`/book/training/transformer-init-param-norm`, eq. :eq:`init-sigmoid-moment`.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    v = check_positive(variance, "variance")
    from scipy.integrate import quad

    s = math.sqrt(v)

    def integrand(z: float) -> float:
        return float(fn(s * z)) * _phi(z)

    # |z| > 40 carries mass below e^{-800}: cut there, so fn is never called at huge arguments
    left = quad(integrand, -40.0, 0.0, epsabs=1e-13, epsrel=1e-12, limit=200)[0]
    right = quad(integrand, 0.0, 40.0, epsabs=1e-13, epsrel=1e-12, limit=200)[0]
    total = left + right
    if not math.isfinite(total):
        raise ValueError("fn: the Gaussian expectation is not finite")
    return total


def second_moment_gain(fn: Callable[[float], float]) -> float:
    r"""The gain that keeps the second moment of pre-activations at one through ``fn``.

    A layer :math:`y = W\phi(x)` with :math:`W_{ij}` of mean 0 and variance :math:`g^2/m` (fan-in
    :math:`m`) and :math:`x \sim \mathcal N(0, 1)` has
    :math:`\mathbb E[y^2] = g^2\,\mathbb E[\phi(x)^2]`,
    so :math:`\mathbb E[y^2] = 1` needs

    .. math:: g = \mathbb E_{z\sim\mathcal N(0,1)}[\phi(z)^2]^{-1/2} .

    Args:
        fn: the activation, a scalar function of one float.

    Returns:
        :math:`g`, a float.

    Raises:
        ValueError: if the second moment is zero or not finite.
        TypeError: if ``fn`` is not callable.

    Used in: :doc:`/book/training/transformer-init-param-norm`, eq. :eq:`init-gain`.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    m2 = gaussian_expectation(lambda z: float(fn(z)) ** 2)
    if not m2 > 0:
        raise ValueError("fn: its second moment under N(0, 1) is zero")
    return 1.0 / math.sqrt(m2)


def selu_moments(scale: float, alpha: float) -> tuple[float, float]:
    r"""Mean and second moment of :math:`\mathrm{selu}(z)`, :math:`z \sim \mathcal N(0, 1)`, in
    closed form.

    With :math:`\mathrm{selu}(z) = \lambda z` for :math:`z > 0` and :math:`\lambda\alpha(e^z - 1)`
    otherwise,

    .. math::

       \mathbb E[\mathrm{selu}] &= \lambda\Bigl[\tfrac{1}{\sqrt{2\pi}}
           + \alpha\bigl(\sqrt e\,\Phi(-1) - \tfrac12\bigr)\Bigr], \\
       \mathbb E[\mathrm{selu}^2] &= \lambda^2\Bigl[\tfrac12
           + \alpha^2\bigl(e^2\Phi(-2) - 2\sqrt e\,\Phi(-1) + \tfrac12\bigr)\Bigr] .

    Args:
        scale: :math:`\lambda > 0`.
        alpha: :math:`\alpha > 0`.

    Returns:
        ``(mean, second_moment)`` as floats.

    Raises:
        ValueError: if an argument is not positive and finite.
        TypeError: if an argument is not a real number.

    Used in: :doc:`/book/training/transformer-init-param-norm`, eq. :eq:`init-selu-moments`.
    """
    lam = check_positive(scale, "scale")
    al = check_positive(alpha, "alpha")
    e1 = math.sqrt(math.e) * _Phi(-1.0)          # E[e^z; z <= 0]
    e2 = math.e**2 * _Phi(-2.0)                  # E[e^{2z}; z <= 0]
    mean = lam * (1.0 / math.sqrt(2.0 * math.pi) + al * (e1 - 0.5))
    second = lam**2 * (0.5 + al**2 * (e2 - 2.0 * e1 + 0.5))
    return mean, second


def selu_constants() -> tuple[float, float]:
    r"""The SELU constants :math:`(\lambda, \alpha)` that solve
    :math:`\mathbb E[\mathrm{selu}(z)] = 0`,
    :math:`\mathbb E[\mathrm{selu}(z)^2] = 1` for :math:`z \sim \mathcal N(0, 1)`.

    The mean equation does not involve :math:`\lambda` and is linear in :math:`\alpha`; the second
    then fixes :math:`\lambda` (see :func:`selu_moments`):

    .. math::

       \alpha = \frac{1}{\sqrt{2\pi}\,\bigl(\tfrac12 - \sqrt e\,\Phi(-1)\bigr)}, \qquad
       \lambda = \Bigl[\tfrac12 + \alpha^2\bigl(e^2\Phi(-2) - 2\sqrt e\,\Phi(-1)
                 + \tfrac12\bigr)\Bigr]^{-1/2} .

    Returns:
        ``(scale, alpha)`` = :math:`(\lambda, \alpha)` as floats.

    Used in: :doc:`/book/training/transformer-init-param-norm`, eq. :eq:`init-selu-constants`.
    """
    e1 = math.sqrt(math.e) * _Phi(-1.0)
    e2 = math.e**2 * _Phi(-2.0)
    alpha = 1.0 / (math.sqrt(2.0 * math.pi) * (0.5 - e1))
    scale = 1.0 / math.sqrt(0.5 + alpha**2 * (e2 - 2.0 * e1 + 0.5))
    return scale, alpha


# --- a deep ReLU MLP -----------------------------------------------------------------------------

def relu_second_moment_ratio(depth: int, weight_gain_sq: float) -> float:
    r"""The expected ratio of the second moments of pre-activations after ``depth`` ReLU layers.

    For :math:`h_{l+1} = W_l\,\mathrm{relu}(h_l)` with independent zero-mean weights of variance
    :math:`c/m` (fan-in :math:`m`) and a symmetric law of :math:`h_l` given the earlier layers,
    :math:`\mathbb E[h_{l+1}^2] = \tfrac{c}{2}\,\mathbb E[h_l^2]`, so

    .. math:: \frac{\mathbb E[h_L^2]}{\mathbb E[h_0^2]} = \Bigl(\frac{c}{2}\Bigr)^{L} ;

    He initialisation (:math:`c = 2`) keeps it at 1, LeCun's (:math:`c = 1`) gives :math:`2^{-L}`.

    Args:
        depth: :math:`L \ge 0`.
        weight_gain_sq: :math:`c > 0`, the weight variance times the fan-in.

    Returns:
        :math:`(c/2)^L` as a float.

    Raises:
        ValueError: if ``depth`` is negative or ``weight_gain_sq`` not positive.
        TypeError: if an argument has the wrong type.

    Used in: :doc:`/book/training/transformer-init-param-norm`, eq. :eq:`init-relu-recursion`.
    """
    L = check_count(depth, "depth", minimum=0)
    c = check_positive(weight_gain_sq, "weight_gain_sq")
    return (c / 2.0) ** L


def relu_mlp_second_moments(x: Tensor, depth: int, width: int,
                            init: Literal["he", "lecun"], generator: torch.Generator) -> Tensor:
    r"""The second moment of the pre-activations, layer by layer, of a random ReLU MLP.

    :math:`h_1 = W_0 x`, :math:`h_{l+1} = W_l\,\mathrm{relu}(h_l)`, no biases, all weights drawn by
    ``torch.nn.init.kaiming_normal_`` in ``fan_in`` mode: ``nonlinearity="relu"`` (He, variance
    :math:`2/m`) or ``nonlinearity="linear"`` (LeCun, variance :math:`1/m`). Returns
    :math:`q_l = \overline{h_l^2}`, the mean over samples and units, for :math:`l = 0, \ldots, L`
    with :math:`q_0 = \overline{x^2}`. The first layer acts on :math:`x` itself, so its gain is
    that of a linear layer whatever ``init`` says (:math:`q_1 = q_0` in expectation for both).

    Args:
        x: inputs of shape ``(n, d)`` (any sign; float32 or float64, kept).
        depth: :math:`L \ge 1`, the number of weight matrices.
        width: the number of hidden units :math:`\ge 1`.
        init: ``"he"`` or ``"lecun"``.
        generator: the ``torch.Generator`` the weights are drawn from.

    Returns:
        A tensor of shape ``(depth + 1,)``, float64.

    Raises:
        ValueError: if ``x`` is not 2-D or not finite, ``depth``/``width`` are not positive, or
            ``init`` is unknown.
        TypeError: if ``generator`` is not a ``torch.Generator``.

    Used in: :doc:`/book/training/transformer-init-param-norm`, eq. :eq:`init-relu-recursion`.
    """
    x = as_tensor(x, "x", ndim=2)
    L = check_count(depth, "depth")
    n_hidden = check_count(width, "width")
    if init not in ("he", "lecun"):
        raise ValueError(f"init must be 'he' or 'lecun', got {init!r}")
    _check_generator(generator)
    nonlinearity: Literal["relu", "linear"] = "relu" if init == "he" else "linear"
    moments = [float((x.double() ** 2).mean())]
    h = x
    fan_in = x.shape[1]
    for layer in range(L):
        w = torch.empty(n_hidden, fan_in, dtype=x.dtype)
        if layer == 0:
            torch.nn.init.kaiming_normal_(w, nonlinearity="linear", generator=generator)
            h = h @ w.T
        else:
            torch.nn.init.kaiming_normal_(w, nonlinearity=nonlinearity, generator=generator)
            h = torch.relu(h) @ w.T
        moments.append(float((h.double() ** 2).mean()))
        fan_in = n_hidden
    return torch.tensor(moments, dtype=torch.float64)


def _check_generator(generator: object) -> None:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")


# --- attention ------------------------------------------------------------------------------------

def attention_softmax_stats(d: int, n_keys: int, n_queries: int, scaled: bool,
                            generator: torch.Generator) -> dict[str, float]:
    r"""How peaked the attention weights of random unit-variance queries and keys are.

    Draws :math:`q_i, k_j \sim \mathcal N(0, I_d)`, forms the weights
    :math:`p_{ij} = \mathrm{softmax}_j(s\,q_i\cdot k_j)` with :math:`s = 1/\sqrt d` (``scaled``) or
    :math:`s = 1`, and averages over the queries: the largest weight :math:`\max_j p_{ij}`, the
    share of queries whose largest weight exceeds 0.9, the entropy :math:`-\sum_j p_{ij}\log p_{ij}`
    (nats) and two norms of the softmax Jacobian :math:`J = \mathrm{diag}(p) - pp^\top` (the
    derivative of the weights with respect to the logits): the Frobenius norm
    :math:`\lVert J\rVert_F = (\sum p^2 - 2\sum p^3 + (\sum p^2)^2)^{1/2}`, at most :math:`1/2`, and
    the entrywise L1 norm :math:`\sum_{jl}|J_{jl}| = 2(1 - \sum_j p_j^2)`, at most
    :math:`2(1 - 1/n)`; both vanish at a one-hot :math:`p`. The logits have mean 0 and second moment
    :math:`s^2 d`.

    Args:
        d: the head dimension :math:`\ge 1`.
        n_keys: the number of keys :math:`\ge 2`.
        n_queries: the number of queries averaged over :math:`\ge 1`.
        scaled: whether to divide the logits by :math:`\sqrt d`.
        generator: the ``torch.Generator`` of the draws.

    Returns:
        A dict with float values under ``"logit_second_moment"``, ``"max_weight"``,
        ``"share_above_0.9"``, ``"entropy"``, ``"jacobian_norm"`` (Frobenius) and ``"jacobian_l1"``.

    Raises:
        ValueError: if a count is too small.
        TypeError: if ``generator`` is not a ``torch.Generator`` or a count is not an integer.

    Used in: :doc:`/book/training/transformer-init-param-norm`, eq. :eq:`init-qk-moment`.
    """
    d = check_count(d, "d")
    n_keys = check_count(n_keys, "n_keys", minimum=2)
    n_queries = check_count(n_queries, "n_queries")
    _check_generator(generator)
    q = torch.randn(n_queries, d, generator=generator, dtype=torch.float64)
    k = torch.randn(n_keys, d, generator=generator, dtype=torch.float64)
    s = 1.0 / math.sqrt(d) if scaled else 1.0
    logits = s * q @ k.T
    p = torch.softmax(logits, dim=-1)
    pmax = p.max(dim=-1).values
    entropy = -torch.special.xlogy(p, p).sum(dim=-1)
    # ||diag(p) - p p^T||_F^2 = sum p^2 - 2 sum p^3 + (sum p^2)^2, written around the largest weight
    # p_m so that nothing cancels near one-hot. With the other weights o_j, r = sum o_j = 1 - p_m,
    # S = sum o_j^2:
    # ||J||_F^2 = p_m^2 r^2 + sum o_j^2 (1 - o_j)^2 + 2 p_m^2 S + (S^2 - sum o_j^4)
    # and sum |J| = 2 (1 - sum p^2) = 2 (r (1 + p_m) - S).
    others = p.scatter(-1, p.argmax(dim=-1, keepdim=True), 0.0)
    r, S = others.sum(-1), (others**2).sum(-1)
    fro2 = (pmax**2 * r**2 + (others**2 * (1.0 - others) ** 2).sum(-1) + 2.0 * pmax**2 * S
            + (S**2 - (others**4).sum(-1)).clamp_min(0.0))
    jac = torch.sqrt(fro2)
    l1 = 2.0 * (r * (1.0 + pmax) - S)
    return {
        "logit_second_moment": float((logits**2).mean()),
        "max_weight": float(pmax.mean()),
        "share_above_0.9": float((pmax > 0.9).double().mean()),
        "entropy": float(entropy.mean()),
        "jacobian_norm": float(jac.mean()),
        "jacobian_l1": float(l1.mean()),
    }


# --- normalisation and parametrisation ------------------------------------------------------------

def layer_norm(x: Tensor, eps: float = 1e-5, weight: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
    r"""Layer normalisation over the last axis, as the post writes it.

    .. math:: y_k = \frac{x_k - \mu}{\sqrt{\sigma^2 + \epsilon}}\,\gamma_k + \beta_k, \quad
              \mu = \frac1d\sum_k x_k, \quad \sigma^2 = \frac1d\sum_k (x_k - \mu)^2

    (the biased variance, as ``torch.nn.LayerNorm`` uses).

    Args:
        x: a tensor of shape ``(..., d)``.
        eps: :math:`\epsilon \ge 0`.
        weight: :math:`\gamma` of shape ``(d,)`` (default ones).
        bias: :math:`\beta` of shape ``(d,)`` (default zeros).

    Returns:
        A tensor of the shape of ``x``.

    Raises:
        ValueError: if ``x`` is 0-d or not finite, ``eps`` is negative, or ``weight``/``bias`` have
            the wrong shape.

    Used in: :doc:`/book/training/transformer-init-param-norm`, eq. :eq:`init-norms`.
    """
    x = as_tensor(x, "x")
    if x.ndim == 0:
        raise ValueError("x must have at least one axis, got a 0-d tensor")
    e = check_positive(eps, "eps", allow_zero=True)
    mu = x.mean(dim=-1, keepdim=True)
    var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)
    y = (x - mu) / torch.sqrt(var + e)
    return _affine(y, weight, bias)


def rms_norm(x: Tensor, eps: float = 1e-5, weight: Tensor | None = None) -> Tensor:
    r"""RMS normalisation over the last axis (LayerNorm without centring), as the post writes it.

    .. math:: y_k = \frac{x_k}{\sqrt{\sigma^2 + \epsilon}}\,\gamma_k, \qquad
              \sigma^2 = \frac1d\sum_k x_k^2 ;

    with :math:`\epsilon = 0` it is :math:`\sqrt d\,x/\lVert x\rVert`, a rescaled L2 normalisation.

    Args:
        x: a tensor of shape ``(..., d)``.
        eps: :math:`\epsilon \ge 0`.
        weight: :math:`\gamma` of shape ``(d,)`` (default ones).

    Returns:
        A tensor of the shape of ``x``.

    Raises:
        ValueError: if ``x`` is 0-d or not finite, ``eps`` is negative, or ``weight`` has the wrong
            shape.

    Used in: :doc:`/book/training/transformer-init-param-norm`, eq. :eq:`init-norms`.
    """
    x = as_tensor(x, "x")
    if x.ndim == 0:
        raise ValueError("x must have at least one axis, got a 0-d tensor")
    e = check_positive(eps, "eps", allow_zero=True)
    y = x / torch.sqrt((x**2).mean(dim=-1, keepdim=True) + e)
    return _affine(y, weight, None)


def _affine(y: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    d = y.shape[-1]
    if weight is not None:
        y = y * as_tensor(weight, "weight", shape=(d,))
    if bias is not None:
        y = y + as_tensor(bias, "bias", shape=(d,))
    return y


def ntk_linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    r"""A linear layer in the NTK parametrisation.

    .. math:: y_j = b_j + \frac{1}{\sqrt m}\sum_{i=1}^m x_i w_{ij},

    with :math:`w_{ij}` drawn with variance 1 instead of :math:`1/m`; at initialisation it has the
    output statistics of a LeCun-initialised layer.

    Args:
        x: inputs of shape ``(..., m)``.
        weight: :math:`W` of shape ``(m, n)``.
        bias: :math:`b` of shape ``(n,)`` (default none).

    Returns:
        A tensor of shape ``(..., n)``.

    Raises:
        ValueError: if the shapes do not match or an input is not finite.

    Used in: :doc:`/book/training/transformer-init-param-norm`, eq. :eq:`init-ntk`.
    """
    x = as_tensor(x, "x")
    if x.ndim == 0:
        raise ValueError("x must have at least one axis, got a 0-d tensor")
    m = x.shape[-1]
    w = as_tensor(weight, "weight", ndim=2)
    if w.shape[0] != m:
        raise ValueError(f"weight must have shape ({m}, n) to match x, got {tuple(w.shape)}")
    y = x @ w / math.sqrt(m)
    if bias is not None:
        y = y + as_tensor(bias, "bias", shape=(w.shape[1],))
    return y


# --- residual recursions ------------------------------------------------------------------------

def postnorm_branch_weights(depth: int) -> NDArray[np.float64]:
    r"""The weights of the input and of every branch in a Post-Norm stack at initialisation.

    With unit-RMS branches orthogonal to the stream, :math:`x_{t+1} = (x_t + F_t)/\sqrt2`, so

    .. math:: x_L = 2^{-L/2}x_0 + \sum_{k=0}^{L-1} 2^{-(L-k)/2}F_k .

    Args:
        depth: :math:`L \ge 1`.

    Returns:
        An array of shape ``(L + 1,)``: the weight of :math:`x_0`, then those of
        :math:`F_0, \ldots, F_{L-1}`.

    Raises:
        ValueError: if ``depth < 1``.
        TypeError: if ``depth`` is not an integer.

    Used in: :doc:`/book/training/transformer-init-param-norm`, eq. :eq:`init-postnorm`.
    """
    L = check_count(depth, "depth")
    k = np.arange(L, dtype=np.float64)
    return np.concatenate([[2.0 ** (-L / 2)], 2.0 ** (-(L - k) / 2)])


def prenorm_stream_rms(depth: int) -> NDArray[np.float64]:
    r"""The RMS of the residual stream of a Pre-Norm stack at initialisation.

    With :math:`x_{t+1} = x_t + F_t(\mathrm{Norm}(x_t))`, unit-RMS branches orthogonal to the stream
    and a unit-RMS :math:`x_0`, :math:`\mathrm{RMS}(x_t)^2 = t + 1`, so
    :math:`x_L = x_0 + \sum_{t=0}^{L-1} F_t(x_t/\sqrt{t+1})` with every branch at weight one.

    Args:
        depth: :math:`L \ge 1`.

    Returns:
        :math:`\sqrt{t+1}` for :math:`t = 0, \ldots, L`, an array of shape ``(L + 1,)``.

    Raises:
        ValueError: if ``depth < 1``.
        TypeError: if ``depth`` is not an integer.

    Used in: :doc:`/book/training/transformer-init-param-norm`, eq. :eq:`init-prenorm`.
    """
    L = check_count(depth, "depth")
    return np.sqrt(np.arange(1, L + 2, dtype=np.float64))


def rezero_stream_rms(depth: int, alpha: float) -> NDArray[np.float64]:
    r"""The RMS of the stream of an un-normalised residual stack,
    :math:`x_{t+1} = x_t + \alpha F_t(x_t)`.

    For branches that are positively homogeneous with unit gain (:math:`\mathrm{RMS}(F_t(x)) =
    \mathrm{RMS}(x)`, e.g. a He/LeCun-initialised ReLU MLP without biases) and orthogonal to the
    stream, :math:`\mathrm{RMS}(x_t)^2 = (1 + \alpha^2)^t` for a unit-RMS :math:`x_0`: the identity
    at
    :math:`\alpha = 0` (ReZero, SkipInit), and doubling per layer at :math:`\alpha = 1`.

    Args:
        depth: :math:`L \ge 1`.
        alpha: the branch scale :math:`\alpha` (any finite real).

    Returns:
        :math:`(1 + \alpha^2)^{t/2}` for :math:`t = 0, \ldots, L`, shape ``(L + 1,)``.

    Raises:
        ValueError: if ``depth < 1`` or ``alpha`` is not finite.
        TypeError: if an argument has the wrong type.

    Used in: :doc:`/book/training/transformer-init-param-norm`, eq. :eq:`init-rezero`.
    """
    L = check_count(depth, "depth")
    a = check_real(alpha, "alpha")
    return (1.0 + a * a) ** (np.arange(L + 1, dtype=np.float64) / 2)


def residual_stack(x0: Tensor, depth: int, scheme: Literal["post", "pre", "rezero"],
                   generator: torch.Generator, alpha: float = 0.0) -> dict[str, Tensor]:
    r"""Run a random residual stack at initialisation and record its stream and branches.

    Each branch is :math:`F_t(u) = W_2\,\mathrm{relu}(W_1 u)` with :math:`W_1` from
    ``kaiming_normal_(nonlinearity="relu")`` and :math:`W_2` from
    ``kaiming_normal_(nonlinearity="linear")`` (both :math:`d \times d`, no biases), so a unit-RMS
    input gives a unit-RMS output in expectation. The norm is ``torch.nn.LayerNorm(d,
    elementwise_affine=False)``. The schemes are

    * ``"post"``: :math:`x_{t+1} = \mathrm{LN}(x_t + F_t(x_t))`;
    * ``"pre"``: :math:`x_{t+1} = x_t + F_t(\mathrm{LN}(x_t))`;
    * ``"rezero"``: :math:`x_{t+1} = x_t + \alpha F_t(x_t)`.

    Args:
        x0: the input stream, shape ``(n, d)``.
        depth: :math:`L \ge 1` blocks.
        scheme: ``"post"``, ``"pre"`` or ``"rezero"``.
        generator: the ``torch.Generator`` the weights are drawn from.
        alpha: the branch scale of ``"rezero"`` (ignored otherwise).

    Returns:
        A dict with ``"stream"``, shape ``(L + 1, n, d)``, holding :math:`x_0, \ldots, x_L`, and
        ``"branches"``, shape ``(L, n, d)``, holding the branch outputs :math:`F_t(\cdot)` as they
        entered the sum.

    Raises:
        ValueError: if ``x0`` is not 2-D or not finite, ``depth < 1`` or ``scheme`` is unknown.
        TypeError: if ``generator`` is not a ``torch.Generator``.

    Used in: :doc:`/book/training/transformer-init-param-norm`, eq. :eq:`init-postnorm`.
    """
    x = as_tensor(x0, "x0", ndim=2)
    L = check_count(depth, "depth")
    if scheme not in ("post", "pre", "rezero"):
        raise ValueError(f"scheme must be 'post', 'pre' or 'rezero', got {scheme!r}")
    _check_generator(generator)
    a = check_real(alpha, "alpha")
    d = x.shape[1]
    norm = torch.nn.LayerNorm(d, elementwise_affine=False, dtype=x.dtype)
    stream, branches = [x], []
    for _ in range(L):
        w1 = torch.empty(d, d, dtype=x.dtype)
        w2 = torch.empty(d, d, dtype=x.dtype)
        torch.nn.init.kaiming_normal_(w1, nonlinearity="relu", generator=generator)
        torch.nn.init.kaiming_normal_(w2, nonlinearity="linear", generator=generator)

        def branch(u: Tensor, w1: Tensor = w1, w2: Tensor = w2) -> Tensor:
            return torch.relu(u @ w1.T) @ w2.T

        with torch.no_grad():
            if scheme == "post":
                f = branch(x)
                x = norm(x + f)
            elif scheme == "pre":
                f = branch(norm(x))
                x = x + f
            else:
                f = branch(x)
                x = x + a * f
        stream.append(x)
        branches.append(f)
    return {"stream": torch.stack(stream), "branches": torch.stack(branches)}


def branch_weights_lstsq(target: Tensor, parts: Tensor, with_constant: bool = True) -> Tensor:
    r"""The weights that write each row of ``target`` as a combination of the matching rows of
    ``parts``.

    For each sample :math:`i`, solves
    :math:`\min_c \lVert t_i - \sum_k c_k p_{k,i} - c_0\mathbf 1\rVert` by least squares
    (``torch.linalg.lstsq``); with ``with_constant`` the all-ones vector is one more
    column (a LayerNorm's centring shifts every coordinate by the same amount). Exact when
    ``target`` lies in the span, as :math:`x_L` of a Post-Norm stack does in the span of
    :math:`x_0, F_0, \ldots, F_{L-1}, \mathbf 1`.

    Args:
        target: shape ``(n, d)``.
        parts: shape ``(K, n, d)``, with :math:`K + 1 \le d` when ``with_constant``.
        with_constant: whether to add the all-ones column.

    Returns:
        The weights of the parts, shape ``(n, K)`` (the constant's weight is dropped).

    Raises:
        ValueError: if the shapes do not match or there are more columns than coordinates.

    Used in: :doc:`/book/training/transformer-init-param-norm`, eq. :eq:`init-postnorm`.
    """
    t = as_tensor(target, "target", ndim=2)
    p = as_tensor(parts, "parts", ndim=3)
    K, n, d = p.shape
    if (n, d) != tuple(t.shape):
        raise ValueError(f"parts must have shape (K, {t.shape[0]}, {t.shape[1]}), "
                         f"got {tuple(p.shape)}")
    cols = K + int(with_constant)
    if cols > d:
        raise ValueError(f"parts: {cols} columns but only {d} coordinates; the fit is not unique")
    A = p.permute(1, 2, 0)                                   # (n, d, K)
    if with_constant:
        A = torch.cat([A, torch.ones(n, d, 1, dtype=A.dtype)], dim=-1)
    sol = torch.linalg.lstsq(A, t.to(A.dtype).unsqueeze(-1)).solution.squeeze(-1)
    return sol[:, :K]
