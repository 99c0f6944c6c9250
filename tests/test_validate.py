"""The shared input checks: what they accept, what they convert to, and every error they raise."""

from __future__ import annotations

import math

import matplotlib as mpl
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kexue_notes._validate import (
    as_array,
    as_labels,
    as_non_negative,
    as_tensor,
    check_count,
    check_fraction,
    check_positive,
    check_probabilities,
    check_real,
)
from kexue_notes.plotting import PALETTE, use_book_style


def test_as_array_converts_lists_and_tensors() -> None:
    out = as_array([[1, 2], [3, 4]], "x", ndim=2, shape=(None, 2))
    assert out.dtype == np.float64 and out.shape == (2, 2)
    np.testing.assert_array_equal(as_array(torch.tensor([1.0, 2.0]), "x"), [1.0, 2.0])


@pytest.mark.parametrize("bad", ["abc", None, {"a": 1}, [[1, 2], [3]]])
def test_as_array_rejects_non_numbers(bad: object) -> None:
    with pytest.raises(TypeError, match=r"^x must be an array of numbers"):
        as_array(bad, "x")


def test_as_array_rejects_wrong_shape_and_nan() -> None:
    with pytest.raises(ValueError, match="x must be 2-dimensional"):
        as_array([1.0, 2.0], "x", ndim=2)
    with pytest.raises(ValueError, match=r"x must have shape \(\*, 3\), got \(2, 2\)"):
        as_array(np.zeros((2, 2)), "x", shape=(None, 3))
    with pytest.raises(ValueError, match="x must be finite"):
        as_array([1.0, math.nan], "x")


def test_as_tensor_keeps_graph_and_dtype() -> None:
    x = torch.ones(3, dtype=torch.float32, requires_grad=True)
    y = as_tensor(x, "x", ndim=1)
    assert y is x and y.dtype == torch.float32
    assert as_tensor([1, 2], "x").dtype == torch.float64
    assert as_tensor(torch.tensor([1, 2]), "x").dtype == torch.float64


def test_as_tensor_errors() -> None:
    with pytest.raises(TypeError, match=r"^x must be a tensor"):
        as_tensor("abc", "x")
    with pytest.raises(TypeError, match=r"^x must be a tensor"):
        as_tensor([[1], [1, 2]], "x")
    with pytest.raises(ValueError, match="x must have shape"):
        as_tensor(torch.zeros(2, 3), "x", shape=(2, 2))
    with pytest.raises(ValueError, match="x must be finite"):
        as_tensor(torch.tensor([math.inf]), "x")


def test_as_non_negative() -> None:
    assert as_non_negative(0.5, "sigma").dtype == torch.float64
    with pytest.raises(TypeError, match="sigma must be a number or a tensor, got bool"):
        as_non_negative(True, "sigma")
    with pytest.raises(ValueError, match="sigma must be a number or a 1-D tensor"):
        as_non_negative(torch.zeros(2, 2), "sigma")
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        as_non_negative([0.1, -0.2], "sigma")


def test_check_count() -> None:
    assert check_count(np.int64(3), "n") == 3
    with pytest.raises(TypeError, match="n must be an integer, got float"):
        check_count(3.0, "n")
    with pytest.raises(TypeError, match="n must be an integer, got bool"):
        check_count(True, "n")
    with pytest.raises(ValueError, match="n must be >= 2, got 1"):
        check_count(1, "n", minimum=2)


def test_check_real() -> None:
    assert check_real(np.float32(-2.5), "m") == -2.5
    assert isinstance(check_real(3, "m"), float)
    with pytest.raises(TypeError, match="m must be a real number, got bool"):
        check_real(True, "m")
    with pytest.raises(TypeError, match="m must be a real number, got str"):
        check_real("1", "m")
    with pytest.raises(ValueError, match="m must be finite, got nan"):
        check_real(float("nan"), "m")


def test_check_positive_and_fraction() -> None:
    assert check_positive(2, "s") == 2.0
    assert check_positive(0, "s", allow_zero=True) == 0.0
    assert check_fraction(0.15, "tau") == 0.15
    with pytest.raises(ValueError, match=r"s must be finite and > 0, got 0"):
        check_positive(0, "s")
    with pytest.raises(ValueError, match="s must be finite"):
        check_positive(-1.0, "s", allow_zero=True)
    with pytest.raises(TypeError, match="s must be a real number"):
        check_positive(True, "s")
    with pytest.raises(TypeError, match="s must be a real number"):
        check_positive("1", "s")
    with pytest.raises(ValueError, match=r"tau must lie in \[0, 1\]"):
        check_fraction(1.5, "tau")
    with pytest.raises(ValueError, match=r"tau must lie in \(0, 1\)"):
        check_fraction(0.0, "tau", closed=False)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.01, 10.0), min_size=1, max_size=20))
def test_check_probabilities_accepts_every_normalised_vector(weights: list[float]) -> None:
    p = np.asarray(weights) / np.sum(weights)
    np.testing.assert_array_equal(check_probabilities(p, "p"), p)


def test_check_probabilities_errors() -> None:
    with pytest.raises(ValueError, match="p must be non-negative"):
        check_probabilities([1.5, -0.5], "p")
    with pytest.raises(ValueError, match="p must sum to 1 along axis -1"):
        check_probabilities([0.5, 0.4], "p")
    with pytest.raises(ValueError, match="p must hold at least one probability vector"):
        check_probabilities(1.0, "p")


def test_book_style_sets_the_shared_palette() -> None:
    with mpl.rc_context():
        use_book_style()
        colours = [c["color"] for c in mpl.rcParams["axes.prop_cycle"]]
        assert colours == PALETTE
        assert mpl.rcParams["axes.grid"]


def test_as_labels() -> None:
    y = as_labels([0, 2, 1], "y", 3, 3)
    assert y.dtype == torch.int64 and y.tolist() == [0, 2, 1]
    assert as_labels(np.array([], dtype=np.int32), "y", 0, 2).shape == (0,)
    with pytest.raises(TypeError, match="target must hold integer class labels"):
        as_labels([0.0, 1.0], "target", 2, 2)
    with pytest.raises(TypeError, match="y must hold integer"):
        as_labels(torch.tensor([True, False]), "y", 2, 2)
    with pytest.raises(ValueError, match=r"y must have shape \(3,\)"):
        as_labels([0, 1], "y", 3, 2)
    with pytest.raises(ValueError, match=r"y must hold class labels in \[0, 1\], got range \[-1"):
        as_labels([1, -1], "y", 2, 2)
    with pytest.raises(ValueError, match=r"got range \[0, 2\]"):
        as_labels([0, 2], "y", 2, 2)
