r"""The noise schedule of the diffusion part, and the input checks its modules share.

A :class:`Schedule` holds :math:`\alpha_t, \beta_t, \bar\alpha_t, \bar\beta_t` for
:math:`t = 0, \dots, T` in Su Jianlin's notation (see :mod:`kexue_notes.diffusion.ddpm` for the
forward chain they define). The checks below are used by every module of the part: a schedule
argument must be a :class:`Schedule`, a time ``t`` an int or a 1-D integer tensor in range and
fitting the data's first axis, data a finite float64 tensor. The checks are public, for the
part's modules, but not part of the API the pages use (``__all__``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from kexue_notes._validate import as_tensor, check_count, check_fraction

__all__ = [  # noqa: RUF022 -- in the order the module reads
    "Schedule",
    "schedule_from_betas",
    "schedule_su",
    "schedule_linear",
]


# --- the schedule ----------------------------------------------------------------------------

class Schedule(NamedTuple):
    r"""The four sequences of a noise schedule, each a float64 tensor of shape ``(T + 1,)``.

    Entry ``t`` holds :math:`\alpha_t, \beta_t, \bar\alpha_t, \bar\beta_t` for
    :math:`t = 0, \dots, T`, with :math:`(1, 0, 1, 0)` at :math:`t = 0`. They satisfy
    :math:`\alpha_t^2 + \beta_t^2 = 1`, :math:`\bar\alpha_t = \prod_{s \le t} \alpha_s` and
    :math:`\bar\alpha_t^2 + \bar\beta_t^2 = 1`. Build one with :func:`schedule_from_betas`,
    :func:`schedule_su` or :func:`schedule_linear` rather than by hand.

    Used in: :doc:`/book/diffusion/ddpm-bayes-denoise`, eq. :eq:`ddpm-schedule-mapping`.
    """

    #: :math:`\alpha_t`, the signal factor of one forward step.
    alpha: torch.Tensor
    #: :math:`\beta_t`, the noise scale of one forward step.
    beta: torch.Tensor
    #: :math:`\bar\alpha_t = \alpha_1 \cdots \alpha_t`, the signal factor of :math:`x_t \mid x_0`.
    alpha_bar: torch.Tensor
    #: :math:`\bar\beta_t = \sqrt{1 - \bar\alpha_t^2}`, the noise scale of :math:`x_t \mid x_0`.
    beta_bar: torch.Tensor

    @property
    def num_steps(self) -> int:
        r"""The number of forward steps :math:`T`."""
        return int(self.alpha.shape[0]) - 1


def schedule_from_betas(betas: Any) -> Schedule:
    r"""Build the schedule from the squared step noises :math:`\beta_t^2` (diffusers' ``betas``).

    .. math::

       \alpha_t = \sqrt{1 - \beta_t^2}, \qquad
       \bar\alpha_t^2 = \prod_{s=1}^{t} (1 - \beta_s^2), \qquad
       \bar\beta_t^2 = 1 - \bar\alpha_t^2 .

    The products are formed as :math:`\exp\sum\log(1-\beta_s^2)` with ``log1p``/``expm1``, so
    :math:`\bar\beta_t^2` keeps full relative precision when it is small.

    Args:
        betas: shape ``(T,)``, entry ``t - 1`` is :math:`\beta_t^2`, each in :math:`(0, 1]`.

    Returns:
        The :class:`Schedule`, four float64 tensors of shape ``(T + 1,)``.

    Raises:
        TypeError: if ``betas`` is not numeric.
        ValueError: if ``betas`` is not 1-D, is empty, holds NaN, or has an entry outside
            :math:`(0, 1]`.

    Used in: :doc:`/book/diffusion/ddpm-bayes-denoise`, eq. :eq:`ddpm-schedule-mapping`.
    """
    b = as_tensor(betas, "betas", ndim=1).detach().to(torch.float64)
    if b.shape[0] == 0:
        raise ValueError("betas must hold at least one step, got an empty array")
    if bool(((b <= 0) | (b > 1)).any()):
        raise ValueError(
            f"betas must lie in (0, 1], got values in [{b.min().item():.3g}, {b.max().item():.3g}]"
        )
    log_alpha_bar2 = torch.cumsum(torch.log1p(-b), dim=0)
    one, zero = b.new_ones(1), b.new_zeros(1)
    return Schedule(
        alpha=torch.cat([one, torch.sqrt(1 - b)]),
        beta=torch.cat([zero, torch.sqrt(b)]),
        alpha_bar=torch.cat([one, torch.exp(0.5 * log_alpha_bar2)]),
        beta_bar=torch.cat([zero, torch.sqrt(-torch.expm1(log_alpha_bar2))]),
    )


def schedule_su(T: int = 1000, beta_max: float = 0.02) -> Schedule:
    r"""Su's form of the DDPM schedule, :math:`\alpha_t = \sqrt{1 - \beta_{\max} t / T}`.

    That is :math:`\beta_t^2 = \beta_{\max} t / T`, a line from :math:`\beta_{\max}/T` to
    :math:`\beta_{\max}`.

    Args:
        T: number of steps, a positive integer.
        beta_max: :math:`\beta_T^2`, in :math:`(0, 1]`.

    Returns:
        The :class:`Schedule` (float64 tensors of shape ``(T + 1,)``).

    Raises:
        TypeError: if ``T`` is not an integer.
        ValueError: if ``T < 1`` or ``beta_max`` is outside :math:`(0, 1]`.

    Used in: :doc:`/book/diffusion/ddpm-bayes-denoise`;
    :doc:`/book/diffusion/ddpm-autoregressive-vae`;
    :doc:`/book/diffusion/ddim-high-level-ddpm`;
    :doc:`/book/diffusion/optimal-diffusion-variance`.
    """
    T = check_count(T, "T")
    beta_max = check_fraction(beta_max, "beta_max")
    if beta_max == 0:
        raise ValueError("beta_max must lie in (0, 1], got 0")
    t = torch.arange(1, T + 1, dtype=torch.float64)
    return schedule_from_betas(beta_max * t / T)


def schedule_linear(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> Schedule:
    r"""The DDPM paper's linear schedule (diffusers' ``beta_schedule="linear"``), in float64.

    :math:`\beta_t^2` runs linearly from ``beta_start`` at :math:`t = 1` to ``beta_end`` at
    :math:`t = T`.

    Args:
        T: number of steps, a positive integer.
        beta_start: :math:`\beta_1^2`, in :math:`(0, 1]`.
        beta_end: :math:`\beta_T^2`, in :math:`(0, 1]`.

    Returns:
        The :class:`Schedule` (float64 tensors of shape ``(T + 1,)``).

    Raises:
        TypeError: if ``T`` is not an integer.
        ValueError: if ``T < 1`` or an endpoint is outside :math:`(0, 1]`.

    Used in: :doc:`/book/diffusion/ddpm-bayes-denoise`.
    """
    T = check_count(T, "T")
    for value, name in ((beta_start, "beta_start"), (beta_end, "beta_end")):
        if check_fraction(value, name) == 0:
            raise ValueError(f"{name} must lie in (0, 1], got 0")
    return schedule_from_betas(torch.linspace(beta_start, beta_end, T, dtype=torch.float64))


# --- the checks shared by the part's modules ------------------------------------------

def check_schedule(schedule: Any) -> None:
    """Raise ``TypeError`` unless ``schedule`` is a :class:`Schedule`."""
    if not isinstance(schedule, Schedule):
        raise TypeError(
            f"schedule must be a Schedule (see schedule_from_betas), got {type(schedule).__name__}"
        )


def as_data(x: Any, name: str) -> torch.Tensor:
    """Return ``x`` as a finite float64 tensor, or raise naming ``name``."""
    return as_tensor(x, name).to(torch.float64)


def same_shape(x: Any, x_name: str, y: Any, y_name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``x`` and ``y`` as float64 tensors, or raise unless they have one shape."""
    x, y = as_data(x, x_name), as_data(y, y_name)
    if x.shape != y.shape:
        raise ValueError(
            f"{y_name} must have the shape of {x_name}, {tuple(x.shape)}, got {tuple(y.shape)}"
        )
    return x, y


def check_t(t: Any, schedule: Schedule, x: torch.Tensor | None, *, low: int) -> Any:
    """Return ``t`` as an int or a 1-D int64 tensor in ``[low, T]`` fitting ``x``'s first axis."""
    T = schedule.num_steps
    if isinstance(t, bool):
        raise TypeError("t must be an int or an integer tensor, got bool")
    if isinstance(t, int | np.integer):
        t_min = t_max = int(t)
        out: Any = int(t)
    else:
        if isinstance(t, np.ndarray):
            t = torch.from_numpy(t)
        if not isinstance(t, torch.Tensor) or t.is_floating_point() or t.is_complex() \
                or t.dtype == torch.bool:
            raise TypeError(f"t must be an int or an integer tensor, got {type(t).__name__}"
                            + (f" of dtype {t.dtype}" if isinstance(t, torch.Tensor) else ""))
        if t.ndim != 1 or t.shape[0] == 0:
            raise ValueError(
                f"t must be an int or a non-empty 1-D tensor, got shape {tuple(t.shape)}"
            )
        if x is not None and (x.ndim == 0 or x.shape[0] != t.shape[0]):
            raise ValueError(
                f"t must have one entry per row of the data, {tuple(x.shape)[:1]}, "
                f"got shape {tuple(t.shape)}"
            )
        out = t.to(torch.int64)
        t_min, t_max = int(out.min()), int(out.max())
    if t_min < low or t_max > T:
        raise ValueError(f"t must lie in [{low}, {T}], got values in [{t_min}, {t_max}]")
    return out


def shape_like(coef: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape a per-row coefficient of shape ``(B,)`` to broadcast over ``x`` of shape (B, ...)."""
    if coef.ndim == 0:
        return coef
    return coef.reshape(coef.shape + (1,) * (x.ndim - 1))


def at(values: torch.Tensor, t: Any, x: torch.Tensor) -> torch.Tensor:
    """Entry ``t`` of a schedule sequence, shaped to broadcast over ``x`` (see
    :func:`shape_like`)."""
    return shape_like(values[t], x)
