r"""Euler's method as a recurrent network, on the two-species competition model.

Euler's rule :math:`x_{n+1} = x_n + h\,f(x_n, nh)` is a recurrence of the form
:math:`y_t = F(y_{t-1}, t)`, so it is an RNN whose cell is fixed by the vector field :math:`f`
(:func:`euler_rnn`). Its forward pass solves the ODE; backpropagation through the unrolled steps
fits the parameters of :math:`f` to observations. The worked example is the competition model of
two species,

.. math::

   \dot x_1 = r_1 x_1 (1 - x_1/N_1) - a_1 x_1 x_2, \qquad
   \dot x_2 = r_2 x_2 (1 - x_2/N_2) - a_2 x_1 x_2,

with the six parameters ordered as in Su's code, ``(r1, r2, a1, a2, 1/N1, 1/N2)``
(``PARAM_NAMES``). :func:`competition_field` is the vector field (NumPy or torch),
:func:`lotka_volterra_form` writes it as :math:`x \odot (r - M x)`, :class:`CompetitionEulerRNN` is
the unrolled Euler RNN with trainable parameters, and :func:`euler_trajectory` the same recurrence
in plain floats, fast enough for SciPy's least squares. :func:`fit_bptt` (torch's L-BFGS through the
unrolled steps) and :func:`fit_least_squares` (``scipy.optimize.least_squares``) fit the model to a
table of observations, and :func:`gauss_newton_sd` gives the spread that the data's noise leaves;
:func:`equilibria`, :func:`jacobian` and :func:`competition_strengths` describe where it goes;
:func:`observed_order` measures a convergence order;
:func:`tanh_rnn_bias_gradient` differentiates a scalar tanh RNN by forward-mode recursion.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from kexue_notes._validate import (
    as_array,
    as_tensor,
    check_count,
    check_positive,
    check_real,
    is_tensor,
)

__all__ = [  # noqa: RUF022 -- in the order the module reads
    "competition_field",
    "lotka_volterra_form",
    "euler_rnn",
    "CompetitionEulerRNN",
    "euler_trajectory",
    "table_indices",
    "fit_bptt",
    "fit_least_squares",
    "gauss_newton_sd",
    "equilibria",
    "jacobian",
    "competition_strengths",
    "observed_order",
    "tanh_rnn_bias_gradient",
]

#: The order of the six parameters, as in Su's code: growth rates, interaction rates, 1/capacities.
PARAM_NAMES = ("r1", "r2", "a1", "a2", "inv_N1", "inv_N2")
#: The parameters of the forward-pass code of post 5643 (and of eq. (2) of post 3120).
POST_PARAMS = (0.1, 0.3, 0.0001, 0.0002, 0.002, 0.003)
#: The starting point of the post's fit (its ``my_init``).
POST_INIT = (0.1, 0.1, 0.001, 0.001, 0.001, 0.001)
#: The times of the post's table.
POST_TIMES = (0.0, 10.0, 15.0, 30.0, 36.0, 40.0, 42.0)
#: The post's table, one row ``(x1, x2)`` per time of :data:`POST_TIMES`.
POST_TABLE = ((100.0, 150.0), (165.0, 283.0), (197.0, 290.0), (280.0, 276.0),
              (305.0, 269.0), (318.0, 266.0), (324.0, 264.0))


def _check_params_array(params: Any) -> NDArray[np.float64]:
    p = as_array(params, "params", shape=(6,))
    if np.any(p < 0):
        raise ValueError(f"params must be >= 0 (rates and inverse capacities), got {p.tolist()}")
    return p


def _check_params_tensor(params: Any) -> Tensor:
    p = as_tensor(params, "params", shape=(6,))
    if bool((p < 0).any()):
        raise ValueError(f"params must be >= 0 (rates and inverse capacities), "
                         f"got {p.detach().tolist()}")
    return p


# --- the model --------------------------------------------------------------------------------

def competition_field(x: Any, params: Any) -> Any:
    r"""The vector field of the two-species competition model.

    .. math::

       f(x) = \begin{pmatrix} r_1 x_1 (1 - x_1/N_1) - a_1 x_1 x_2 \\
                              r_2 x_2 (1 - x_2/N_2) - a_2 x_1 x_2 \end{pmatrix}

    Args:
        x: populations, shape ``(..., 2)``; a torch tensor (the result keeps its autograd graph)
            or anything NumPy reads.
        params: ``(r1, r2, a1, a2, 1/N1, 1/N2)``, shape ``(6,)``, all ``>= 0``; a tensor when
            ``x`` is one.

    Returns:
        :math:`f(x)`, shape ``(..., 2)``, a tensor if ``x`` is a tensor, else a float64 array.

    Raises:
        ValueError: if ``x`` does not end in an axis of 2, or either input is not finite, or a
            parameter is negative.
        TypeError: if an input is not numeric.

    Used in: :doc:`/book/sequences/rnn-as-ode`, eq. :eq:`ode-competition`.
    """
    if is_tensor(x):
        xt = as_tensor(x, "x")
        p = _check_params_tensor(params)
        if xt.ndim == 0 or xt.shape[-1] != 2:
            raise ValueError(f"x must have shape (..., 2), got {tuple(xt.shape)}")
        r1, r2, a1, a2, i1, i2 = p.unbind()
        x1, x2 = xt[..., 0], xt[..., 1]
        return torch.stack([r1 * x1 * (1 - i1 * x1) - a1 * x1 * x2,
                            r2 * x2 * (1 - i2 * x2) - a2 * x1 * x2], dim=-1)
    xa = as_array(x, "x")
    pa = _check_params_array(params)
    if xa.ndim == 0 or xa.shape[-1] != 2:
        raise ValueError(f"x must have shape (..., 2), got {xa.shape}")
    q1, q2, b1, b2, j1, j2 = pa
    y1, y2 = xa[..., 0], xa[..., 1]
    return np.stack([q1 * y1 * (1 - j1 * y1) - b1 * y1 * y2,
                     q2 * y2 * (1 - j2 * y2) - b2 * y1 * y2], axis=-1)


def lotka_volterra_form(params: Any) -> tuple[Tensor, Tensor]:
    r"""The competition model in Lotka–Volterra form, :math:`f(x) = x \odot (r - M x)`.

    .. math::

       r = \begin{pmatrix} r_1 \\ r_2 \end{pmatrix}, \qquad
       M = \begin{pmatrix} r_1/N_1 & a_1 \\ a_2 & r_2/N_2 \end{pmatrix}

    Args:
        params: ``(r1, r2, a1, a2, 1/N1, 1/N2)``, shape ``(6,)``, all ``>= 0`` (a tensor keeps its
            autograd graph).

    Returns:
        ``(r, M)``, shapes ``(2,)`` and ``(2, 2)``.

    Raises:
        ValueError: if ``params`` has the wrong shape, is not finite or has a negative entry.
        TypeError: if ``params`` is not numeric.

    Used in: :doc:`/book/sequences/rnn-as-ode`, eq. :eq:`ode-lv-form`.
    """
    p = _check_params_tensor(params)
    r1, r2, a1, a2, i1, i2 = p.unbind()
    return torch.stack([r1, r2]), torch.stack([r1 * i1, a1, a2, r2 * i2]).reshape(2, 2)


def euler_rnn(field: Callable[[Tensor, float], Tensor], x0: Any, h: float,
              steps: int) -> Tensor:
    r"""Unroll Euler's method as a recurrent network: every step is the same cell.

    .. math::

       x_{n+1} = x_n + h\, f(x_n, nh), \qquad n = 0, \dots, \text{steps} - 1

    Args:
        field: :math:`f(x, t)`, mapping a state tensor of the shape of ``x0`` and a time to a
            tensor of the same shape.
        x0: the initial state, any shape (a tensor keeps its autograd graph).
        h: the step size, ``> 0``.
        steps: the number of steps, ``>= 1``.

    Returns:
        The states :math:`x_0, \dots, x_{\text{steps}}`, shape ``(steps + 1, *x0.shape)``.

    Raises:
        ValueError: if ``h`` is not positive, ``steps < 1``, ``x0`` is not finite, or ``field``
            returns the wrong shape.
        TypeError: if ``h`` or ``steps`` has the wrong type.

    Used in: :doc:`/book/sequences/rnn-as-ode`, eq. :eq:`ode-euler-rnn`.
    """
    h = check_positive(h, "h")
    steps = check_count(steps, "steps")
    x = as_tensor(x0, "x0")
    out = [x]
    for n in range(steps):
        dx = field(x, n * h)
        if not isinstance(dx, Tensor) or dx.shape != x.shape:
            raise ValueError(f"field must return a tensor of shape {tuple(x.shape)}, "
                             f"got {getattr(dx, 'shape', type(dx).__name__)}")
        x = x + h * dx
        out.append(x)
    return torch.stack(out)


class CompetitionEulerRNN(torch.nn.Module):
    r"""The unrolled Euler RNN of the competition model, with its six parameters trainable.

    The parameters are stored as log-ratios to a starting point :math:`p^{(0)}`,
    :math:`p = p^{(0)} \odot e^{\theta}`, so they stay positive and all six have the same scale
    for the optimiser; :math:`\theta = 0` at construction. The cell is

    .. math::

       x_{n+1} = x_n + h\, x_n \odot (r - M x_n)

    (eq. :eq:`ode-lv-form`), and :meth:`forward` returns all states.

    Args:
        init: the starting parameters :math:`p^{(0)}`, shape ``(6,)``, all ``> 0``.
        h: the step size, ``> 0``.
        dtype: the dtype of the parameters (float64 by default).

    Raises:
        ValueError: if ``init`` has the wrong shape or a non-positive entry, or ``h <= 0``.

    Used in: :doc:`/book/sequences/rnn-as-ode`, eq. :eq:`ode-euler-rnn`.
    """

    def __init__(self, init: Any, h: float, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        p0 = as_tensor(init, "init", shape=(6,), dtype=dtype).detach().to(dtype)
        if bool((p0 <= 0).any()):
            raise ValueError(f"init must be > 0 (the parameters are fitted on a log scale), "
                             f"got {p0.tolist()}")
        self.h = check_positive(h, "h")
        self.register_buffer("init", p0.clone())
        self.log_ratio = torch.nn.Parameter(torch.zeros(6, dtype=dtype))

    @property
    def params(self) -> Tensor:
        """The current parameters ``(r1, r2, a1, a2, 1/N1, 1/N2)``, shape ``(6,)``."""
        init: Tensor = self.init  # type: ignore[assignment]
        return init * torch.exp(self.log_ratio)

    def forward(self, x0: Any, steps: int) -> Tensor:
        """All states from ``x0`` (shape ``(2,)``) over ``steps`` steps: ``(steps + 1, 2)``."""
        steps = check_count(steps, "steps")
        x = as_tensor(x0, "x0", shape=(2,), dtype=self.log_ratio.dtype)
        r, M = lotka_volterra_form(self.params)
        out = [x]
        for _ in range(steps):
            x = torch.addcmul(x, x, r - torch.mv(M, x), value=self.h)
            out.append(x)
        return torch.stack(out)


def euler_trajectory(params: Any, x0: Any, h: float, steps: int) -> NDArray[np.float64]:
    r"""The Euler recurrence of the competition model in plain float64 (no autograd).

    .. math::

       x_{n+1} = x_n + h\, f(x_n), \qquad f \text{ as in eq. } (\text{ode-competition})

    The loop runs on Python floats, which for two states is much faster than NumPy or torch
    (SciPy's least squares calls it hundreds of times). A trajectory that overflows is returned
    as it is (holding inf or NaN), so a caller can reject the parameters.

    Args:
        params: ``(r1, r2, a1, a2, 1/N1, 1/N2)``, shape ``(6,)``, all ``>= 0``.
        x0: the initial populations, shape ``(2,)``.
        h: the step size, ``> 0``.
        steps: the number of steps, ``>= 1``.

    Returns:
        The states :math:`x_0, \dots, x_{\text{steps}}`, shape ``(steps + 1, 2)``.

    Raises:
        ValueError: if an input is not finite, has the wrong shape, a parameter is negative,
            ``h <= 0`` or ``steps < 1``.
        TypeError: if an input has the wrong type.

    Used in: :doc:`/book/sequences/rnn-as-ode`, eq. :eq:`ode-euler-rnn`.
    """
    r1, r2, a1, a2, i1, i2 = (float(v) for v in _check_params_array(params))
    a, b = (float(v) for v in as_array(x0, "x0", shape=(2,)))
    h = check_positive(h, "h")
    steps = check_count(steps, "steps")
    out = np.empty((steps + 1, 2))
    out[0] = a, b
    with np.errstate(over="ignore", invalid="ignore"):
        for n in range(steps):
            try:
                a, b = (a + h * (r1 * a * (1 - i1 * a) - a1 * a * b),
                        b + h * (r2 * b * (1 - i2 * b) - a2 * a * b))
            except OverflowError:  # pragma: no cover -- float arithmetic gives inf, not this
                a = b = math.inf
            out[n + 1] = a, b
    return out


def table_indices(times: Any, h: float) -> NDArray[np.int64]:
    r"""The Euler step at which each observation time falls, :math:`n_k = t_k / h`.

    Args:
        times: observation times, shape ``(K,)``, each ``>= 0`` and a whole multiple of ``h``.
        h: the step size, ``> 0``.

    Returns:
        The step numbers :math:`n_k`, shape ``(K,)``, int64.

    Raises:
        ValueError: if a time is negative, not finite or not a multiple of ``h`` (to 1e-9
            relative), or ``h <= 0``.
        TypeError: if an input has the wrong type.

    Used in: :doc:`/book/sequences/rnn-as-ode`, eq. :eq:`ode-fit-loss`.
    """
    t = as_array(times, "times", ndim=1)
    h = check_positive(h, "h")
    if np.any(t < 0):
        raise ValueError(f"times must be >= 0, got minimum {t.min()}")
    n = np.rint(t / h)
    if not np.allclose(n * h, t, rtol=1e-9, atol=1e-12):
        raise ValueError(f"times must be whole multiples of h = {h}, got {t.tolist()}")
    return n.astype(np.int64)


def _check_data(times: Any, values: Any, h: float) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    idx = table_indices(times, h)
    y = as_array(values, "values", ndim=2)
    if y.shape != (len(idx), 2):
        raise ValueError(f"values must have shape ({len(idx)}, 2), one row per time, "
                         f"got {y.shape}")
    if len(idx) < 2 or idx[0] != 0 or np.any(np.diff(idx) <= 0):
        raise ValueError("times must start at 0 (the initial condition) and increase, "
                         f"got {np.asarray(times).tolist()}")
    return idx, y


def fit_bptt(times: Any, values: Any, h: float, init: Any, *, max_iter: int = 500,
             history_size: int = 20) -> dict[str, Any]:
    r"""Fit the six parameters by backpropagation through the unrolled Euler RNN.

    The first row of ``values`` is the initial condition; the loss is the mean squared error of
    the other rows,

    .. math::

       \mathcal L(p) = \frac{1}{2(K-1)} \sum_{k=1}^{K-1}
       \bigl\lVert x_{n_k}(p) - y_k \bigr\rVert^2, \qquad n_k = t_k/h,

    minimised over :math:`\theta = \log(p/p^{(0)})` by ``torch.optim.LBFGS`` (strong Wolfe line
    search) with gradients from autograd through all :math:`n_{K-1}` steps, in float64.

    Args:
        times: observation times, shape ``(K,)``, starting at 0, multiples of ``h``.
        values: observations, shape ``(K, 2)``.
        h: the Euler step, ``> 0``.
        init: the starting parameters :math:`p^{(0)}`, shape ``(6,)``, all ``> 0``.
        max_iter: the most L-BFGS iterations (``>= 1``).
        history_size: the L-BFGS memory (``>= 1``).

    Returns:
        ``{"params": (6,) array, "rmse": float, "n_evals": int, "residuals": (K-1, 2) array}``:
        the fitted parameters, the root mean squared residual over the :math:`2(K-1)` entries,
        the number of loss-and-gradient evaluations, and the residuals :math:`x_{n_k} - y_k`.

    Raises:
        ValueError: if the data are inconsistent (see :func:`table_indices`), ``init`` is not
            positive, or a count is below 1.
        TypeError: if an input has the wrong type.

    Used in: :doc:`/book/sequences/rnn-as-ode`, eq. :eq:`ode-fit-loss`.
    """
    idx, y = _check_data(times, values, h)
    max_iter = check_count(max_iter, "max_iter")
    history_size = check_count(history_size, "history_size")
    model = CompetitionEulerRNN(init, h)
    target = torch.as_tensor(y[1:], dtype=torch.float64)
    x0 = torch.as_tensor(y[0], dtype=torch.float64)
    index = torch.as_tensor(idx[1:])
    steps = int(idx[-1])
    n_evals = 0

    def loss() -> Tensor:
        return torch.nn.functional.mse_loss(model(x0, steps)[index], target)

    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=max_iter,
                            max_eval=2 * max_iter, history_size=history_size,
                            tolerance_grad=1e-10, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        nonlocal n_evals
        opt.zero_grad()
        value = loss()
        value.backward()
        n_evals += 1
        return value

    opt.step(closure)
    with torch.no_grad():
        resid = (model(x0, steps)[index] - target).numpy()
        params = model.params.numpy().copy()
    return {"params": params, "rmse": float(np.sqrt(np.mean(resid**2))), "n_evals": n_evals,
            "residuals": resid}


def fit_least_squares(times: Any, values: Any, h: float, init: Any) -> dict[str, Any]:
    r"""Fit the six parameters with ``scipy.optimize.least_squares`` on the same Euler model.

    Minimises :math:`\sum_k \lVert x_{n_k}(p) - y_k\rVert^2` (the loss of :func:`fit_bptt` up to a
    constant factor) over :math:`\theta = \log(p/p^{(0)})`, with SciPy's trust-region reflective
    method and its finite-difference Jacobian, on :func:`euler_trajectory`: no autograd, no torch.
    Parameters whose trajectory overflows get a large constant residual.

    Args:
        times: observation times, shape ``(K,)``, starting at 0, multiples of ``h``.
        values: observations, shape ``(K, 2)``.
        h: the Euler step, ``> 0``.
        init: the starting parameters :math:`p^{(0)}`, shape ``(6,)``, all ``> 0``.

    Returns:
        A dict with the keys ``params`` (shape ``(6,)``), ``rmse``, ``n_evals``, ``residuals``
        (shape ``(K-1, 2)``) and ``jac`` (shape ``(2(K-1), 6)``), as for :func:`fit_bptt`
        (``n_evals`` counts SciPy's residual evaluations); ``jac`` is SciPy's Jacobian of the
        flattened residuals with respect to :math:`\log p` at the solution (for
        :func:`gauss_newton_sd`).

    Raises:
        ValueError: if the data are inconsistent or ``init`` is not positive.
        TypeError: if an input has the wrong type.

    Used in: :doc:`/book/sequences/rnn-as-ode`, eq. :eq:`ode-fit-loss`.
    """
    from scipy.optimize import least_squares

    idx, y = _check_data(times, values, h)
    p0 = as_array(init, "init", shape=(6,))
    if np.any(p0 <= 0):
        raise ValueError(f"init must be > 0 (the parameters are fitted on a log scale), "
                         f"got {p0.tolist()}")
    steps = int(idx[-1])

    def residuals(theta: NDArray[np.float64]) -> NDArray[np.float64]:
        traj = euler_trajectory(p0 * np.exp(theta), y[0], h, steps)
        r = (traj[idx[1:]] - y[1:]).ravel()
        return r if np.all(np.isfinite(r)) else np.full_like(r, 1e8)

    sol = least_squares(residuals, np.zeros(6), method="trf")
    resid = sol.fun.reshape(-1, 2)
    return {"params": p0 * np.exp(sol.x), "rmse": float(np.sqrt(np.mean(resid**2))),
            "n_evals": int(sol.nfev), "residuals": resid, "jac": np.asarray(sol.jac, dtype=float)}


def gauss_newton_sd(jac: Any, noise_var: float) -> NDArray[np.float64]:
    r"""Linearised standard deviations of least-squares estimates for independent data noise.

    For residuals :math:`r(\theta)` with Jacobian :math:`J` at the optimum and data noise of
    variance :math:`\sigma^2` on every entry,

    .. math::

       \operatorname{Cov}\hat\theta \approx \sigma^2 (J^\top J)^{-1},

    exact for a linear model. With :math:`\theta = \log p` (as in :func:`fit_least_squares`) the
    result is the relative standard deviation of each parameter. Rounding to integers is noise
    uniform on :math:`[-\tfrac12, \tfrac12]`, :math:`\sigma^2 = 1/12`.

    Args:
        jac: :math:`J`, shape ``(m, q)`` with ``m >= q`` and full column rank.
        noise_var: :math:`\sigma^2`, ``> 0``.

    Returns:
        :math:`\sqrt{\operatorname{diag}\operatorname{Cov}\hat\theta}`, shape ``(q,)``.

    Raises:
        ValueError: if ``jac`` is not a finite 2-D array with at least as many rows as columns
            and full column rank, or ``noise_var <= 0``.
        TypeError: if an input is not numeric.

    Used in: :doc:`/book/sequences/rnn-as-ode`, eq. :eq:`ode-fit-loss`.
    """
    J = as_array(jac, "jac", ndim=2)
    var = check_positive(noise_var, "noise_var")
    if J.shape[0] < J.shape[1] or np.linalg.matrix_rank(J) < J.shape[1]:
        raise ValueError(f"jac must have full column rank and at least as many rows as columns, "
                         f"got shape {J.shape}")
    return np.sqrt(var * np.diag(np.linalg.inv(J.T @ J)))


# --- where the model goes ---------------------------------------------------------------------

def competition_strengths(params: Any) -> tuple[float, float]:
    r"""The dimensionless competition strengths of the two species.

    .. math::

       \alpha = \frac{a_1 N_2}{r_1}, \qquad \beta = \frac{a_2 N_1}{r_2}

    :math:`\alpha` compares the damage species 2 at its capacity does to species 1 with species
    1's own growth rate, and :math:`\beta` the other way round.

    Args:
        params: ``(r1, r2, a1, a2, 1/N1, 1/N2)``, shape ``(6,)``, all ``> 0``.

    Returns:
        ``(alpha, beta)``.

    Raises:
        ValueError: if ``params`` has the wrong shape, is not finite or has an entry ``<= 0``.
        TypeError: if ``params`` is not numeric.

    Used in: :doc:`/book/sequences/rnn-as-ode`, eq. :eq:`ode-strengths`.
    """
    p = _check_params_array(params)
    if np.any(p <= 0):
        raise ValueError(f"params must be > 0 here, got {p.tolist()}")
    r1, r2, a1, a2, i1, i2 = p
    return float(a1 / (i2 * r1)), float(a2 / (i1 * r2))


def equilibria(params: Any) -> NDArray[np.float64]:
    r"""The four equilibria of the competition model.

    .. math::

       (0, 0), \quad (N_1, 0), \quad (0, N_2), \quad
       \Bigl(\frac{N_1 (1 - \alpha)}{1 - \alpha\beta},\;
             \frac{N_2 (1 - \beta)}{1 - \alpha\beta}\Bigr)

    with :math:`\alpha, \beta` from :func:`competition_strengths`. The last (coexistence) point is
    in the positive quadrant when :math:`\alpha, \beta` are both below 1 or both above 1.

    Args:
        params: ``(r1, r2, a1, a2, 1/N1, 1/N2)``, shape ``(6,)``, all ``> 0``.

    Returns:
        The equilibria in that order, shape ``(4, 2)``.

    Raises:
        ValueError: if ``params`` is invalid, or :math:`\alpha\beta = 1` (no isolated coexistence
            point: the nullclines are parallel).
        TypeError: if ``params`` is not numeric.

    Used in: :doc:`/book/sequences/rnn-as-ode`, eq. :eq:`ode-equilibria`.
    """
    p = _check_params_array(params)
    alpha, beta = competition_strengths(p)
    if math.isclose(alpha * beta, 1.0, rel_tol=1e-12):
        raise ValueError(f"params give alpha * beta = 1 ({alpha:.6g} * {beta:.6g}): "
                         "no isolated coexistence equilibrium")
    n1, n2 = 1 / p[4], 1 / p[5]
    d = 1 - alpha * beta
    return np.array([[0.0, 0.0], [n1, 0.0], [0.0, n2],
                     [n1 * (1 - alpha) / d, n2 * (1 - beta) / d]])


def jacobian(x: Any, params: Any) -> NDArray[np.float64]:
    r"""The Jacobian of the competition field at ``x``.

    .. math::

       J(x) = \begin{pmatrix} r_1 - 2 r_1 x_1/N_1 - a_1 x_2 & -a_1 x_1 \\
                              -a_2 x_2 & r_2 - 2 r_2 x_2/N_2 - a_2 x_1 \end{pmatrix}

    Args:
        x: a point, shape ``(2,)``.
        params: ``(r1, r2, a1, a2, 1/N1, 1/N2)``, shape ``(6,)``, all ``>= 0``.

    Returns:
        :math:`J(x)`, shape ``(2, 2)``.

    Raises:
        ValueError: if an input has the wrong shape, is not finite, or a parameter is negative.
        TypeError: if an input is not numeric.

    Used in: :doc:`/book/sequences/rnn-as-ode`, eq. :eq:`ode-jacobian`.
    """
    x1, x2 = as_array(x, "x", shape=(2,))
    r1, r2, a1, a2, i1, i2 = _check_params_array(params)
    return np.array([[r1 - 2 * r1 * i1 * x1 - a1 * x2, -a1 * x1],
                     [-a2 * x2, r2 - 2 * r2 * i2 * x2 - a2 * x1]])


# --- convergence, and the gradient of a tanh RNN ----------------------------------------------

def observed_order(h: Sequence[float] | NDArray[np.float64],
                   err: Sequence[float] | NDArray[np.float64]) -> float:
    r"""The convergence order read off errors at several step sizes.

    The least-squares slope :math:`q` of :math:`\log e = q \log h + c`; for an error that behaves
    like :math:`C h^q` it returns :math:`q`.

    Args:
        h: step sizes, shape ``(m,)``, ``m >= 2``, all ``> 0`` and not all equal.
        err: the errors at those steps, shape ``(m,)``, all ``> 0``.

    Returns:
        The slope :math:`q`.

    Raises:
        ValueError: if the shapes differ, fewer than two points are given, a value is not
            positive or finite, or all step sizes are equal.
        TypeError: if an input is not numeric.

    Used in: :doc:`/book/sequences/rnn-as-ode`, eq. :eq:`ode-global-error`.
    """
    hh = as_array(h, "h", ndim=1)
    ee = as_array(err, "err", ndim=1)
    if hh.shape != ee.shape or len(hh) < 2:
        raise ValueError(f"h and err must have the same length >= 2, got {hh.shape} and "
                         f"{ee.shape}")
    if np.any(hh <= 0):
        raise ValueError("h must be > 0")
    if np.any(ee <= 0):
        raise ValueError("err must be > 0")
    if np.ptp(hh) == 0:
        raise ValueError("h must hold at least two different step sizes")
    slope, _ = np.polyfit(np.log(hh), np.log(ee), 1)
    return float(slope)


def tanh_rnn_bias_gradient(w: float, b: float, steps: int,
                           y0: float = 0.0) -> tuple[float, float]:
    r"""The final state of a one-unit tanh RNN and its derivative in the bias, by forward mode.

    For :math:`y_t = \tanh(w\,y_{t-1} + b)` with :math:`y_0` fixed, the derivative
    :math:`d_t = \partial y_t / \partial b` obeys

    .. math::

       d_t = (1 - y_t^2)\,(w\,d_{t-1} + 1), \qquad d_0 = 0,

    computed alongside :math:`y_t` (no autograd). At :math:`b = y_0 = 0` every :math:`y_t = 0` and
    :math:`d_T = (w^T - 1)/(w - 1)`.

    Args:
        w: the recurrent weight (any finite real).
        b: the bias (any finite real).
        steps: :math:`T`, ``>= 1``.
        y0: the initial state, a finite real in :math:`(-1, 1)`.

    Returns:
        ``(y_T, d_T)``.

    Raises:
        ValueError: if a value is not finite, ``steps < 1``, or ``|y0| >= 1``.
        TypeError: if a value has the wrong type.

    Used in: :doc:`/book/sequences/rnn-as-ode`, eq. :eq:`ode-tanh-grad`.
    """
    w = check_real(w, "w")
    b = check_real(b, "b")
    steps = check_count(steps, "steps")
    y = check_real(y0, "y0")
    if abs(y) >= 1:
        raise ValueError(f"y0 must lie in (-1, 1), the range of tanh, got {y0}")
    d = 0.0
    for _ in range(steps):
        y = math.tanh(w * y + b)
        d = (1 - y * y) * (w * d + 1)
    return y, d
