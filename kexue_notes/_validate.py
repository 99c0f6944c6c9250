"""Input checks shared by every module: bad input raises a clear error that names the argument.

Each helper returns the validated value converted to the type the caller computes with, so a
function reads ``x = as_array(x, "x", ndim=2)`` and then uses ``x``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:  # torch is imported only when a tensor is asked for: it takes seconds to load
    import torch

__all__ = [
    "as_array",
    "as_non_negative",
    "as_tensor",
    "check_count",
    "check_fraction",
    "check_positive",
    "check_probabilities",
    "check_real",
    "is_tensor",
]


def _shape_text(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"


def _check_shape(actual: tuple[int, ...], name: str, ndim: int | None,
                 shape: Sequence[int | None] | None) -> None:
    if ndim is not None and len(actual) != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {actual}")
    if shape is not None and (len(actual) != len(shape) or any(
        want is not None and want != got for want, got in zip(shape, actual, strict=False)
    )):
        raise ValueError(f"{name} must have shape {_shape_text(shape)}, got {actual}")


def is_tensor(x: Any) -> bool:
    """Whether ``x`` is a torch tensor; without importing torch if nothing has imported it yet."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def as_array(x: Any, name: str, *, ndim: int | None = None,
             shape: Sequence[int | None] | None = None) -> NDArray[np.float64]:
    """Return ``x`` as a finite float64 NumPy array, or raise naming ``name``.

    ``shape`` may hold ``None`` for a free axis, e.g. ``(None, 3)``.
    """
    if is_tensor(x):
        x = x.detach().cpu().numpy()
    if isinstance(x, str | bytes) or x is None:
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}")
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}") from err
    _check_shape(arr.shape, name, ndim, shape)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, but it holds NaN or infinity")
    return arr


def as_tensor(x: Any, name: str, *, ndim: int | None = None,
              shape: Sequence[int | None] | None = None,
              dtype: torch.dtype | None = None) -> torch.Tensor:
    """Return ``x`` as a finite floating torch tensor, or raise naming ``name``.

    Tensors keep their device and autograd graph; a floating tensor keeps its dtype, other input is
    converted to ``dtype`` (float64 by default).
    """
    import torch

    dtype = torch.float64 if dtype is None else dtype
    if not isinstance(x, torch.Tensor):
        if isinstance(x, str | bytes) or x is None:
            raise TypeError(
                f"{name} must be a tensor or an array of numbers, got {type(x).__name__}"
            )
        try:
            x = torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=dtype)
        except (TypeError, ValueError) as err:
            raise TypeError(
                f"{name} must be a tensor or an array of numbers, got {type(x).__name__}"
            ) from err
    elif not x.is_floating_point():
        x = x.to(dtype)
    _check_shape(tuple(x.shape), name, ndim, shape)
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must be finite, but it holds NaN or infinity")
    return x


def as_non_negative(value: Any, name: str) -> torch.Tensor:
    """Return ``value`` as a finite, non-negative float64 tensor, 0-d or 1-D (a scale or a
    variance, one per step), or raise naming ``name``."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number or a tensor, got bool")
    import torch

    v = as_tensor(value, name).to(torch.float64)
    if v.ndim > 1:
        raise ValueError(f"{name} must be a number or a 1-D tensor, got shape {tuple(v.shape)}")
    if bool((v < 0).any()):
        raise ValueError(f"{name} must be >= 0, got minimum {float(v.min()):.3g}")
    return v


def as_labels(y: Any, name: str, n: int, n_classes: int) -> torch.Tensor:
    """Return ``y`` as an int64 tensor of ``n`` class labels in ``[0, n_classes)``, or raise naming
    ``name``: a TypeError for a float, complex or bool dtype, a ValueError for another shape than
    ``(n,)`` or a label out of range."""
    import torch

    if not isinstance(y, torch.Tensor):
        y = torch.as_tensor(np.asarray(y))
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if tuple(y.shape) != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {tuple(y.shape)}")
    if n and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(f"{name} must hold class labels in [0, {n_classes - 1}], got range "
                         f"[{int(y.min())}, {int(y.max())}]")
    return y.to(torch.int64)


def check_count(value: Any, name: str, minimum: int = 1) -> int:
    """Return ``value`` as a Python int if it is an integer >= ``minimum``, else raise."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float if it is positive (or zero when ``allow_zero``), else raise."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value}")
    return v


def check_fraction(value: Any, name: str, *, closed: bool = True) -> float:
    """Return ``value`` as a float in [0, 1] (or (0, 1) when not ``closed``), else raise."""
    v = check_positive(value, name, allow_zero=True)
    if v > 1 or (not closed and v in (0.0, 1.0)):
        interval = "[0, 1]" if closed else "(0, 1)"
        raise ValueError(f"{name} must lie in {interval}, got {value}")
    return v


def check_probabilities(p: Any, name: str, *, axis: int = -1,
                        atol: float = 1e-9) -> NDArray[np.float64]:
    """Return ``p`` as an array of probabilities that are >= 0 and sum to one along ``axis``."""
    arr = as_array(p, name)
    if arr.ndim == 0:
        raise ValueError(f"{name} must hold at least one probability vector, got a scalar")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative, got minimum {arr.min():.3g}")
    sums = arr.sum(axis=axis)
    if not np.allclose(sums, 1.0, rtol=0, atol=atol):
        worst = float(np.max(np.abs(sums - 1.0)))
        raise ValueError(f"{name} must sum to 1 along axis {axis}; off by up to {worst:.3g}")
    return arr


def check_real(value: Any, name: str) -> float:
    """Return ``value`` as a float if it is a finite real number, else raise."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not np.isfinite(float(value)):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)
