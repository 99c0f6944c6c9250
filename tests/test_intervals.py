"""Tests of kexue_notes.intervals: the Student-t interval of per-seed results."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kexue_notes.intervals import mean_t_interval, mean_t_intervals


def test_against_scipy_interval() -> None:
    from scipy import stats

    data = np.array([0.3, 0.1, 0.4, 0.15, 0.9, 0.26])
    mean, half = mean_t_interval(data, 0.9)
    lo, hi = stats.t.interval(0.9, len(data) - 1, loc=data.mean(), scale=stats.sem(data))
    assert math.isclose(mean, data.mean(), rel_tol=1e-14)
    assert math.isclose(mean - half, lo, rel_tol=1e-12)
    assert math.isclose(mean + half, hi, rel_tol=1e-12)


def test_three_values_closed_form() -> None:
    mean, half = mean_t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert half == pytest.approx(4.30265273 / math.sqrt(3), rel=1e-8)  # t_{0.975, 2} = 4.30265273


@given(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=20), st.floats(-1e3, 1e3))
def test_shift_moves_the_mean_not_the_width(values: list[float], shift: float) -> None:
    m0, h0 = mean_t_interval(values)
    m1, h1 = mean_t_interval(np.asarray(values) + shift)
    assert m1 == pytest.approx(m0 + shift, abs=1e-9)
    assert h1 == pytest.approx(h0, abs=1e-6)


def test_higher_level_is_wider() -> None:
    data = [0.1, 0.5, 0.2, 0.7]
    assert mean_t_interval(data, 0.99)[1] > mean_t_interval(data, 0.9)[1] > 0


@pytest.mark.parametrize("bad,match", [([1.0], "values"), ([[1.0, 2.0]], "values"),
                                       ([1.0, float("nan")], "values")])
def test_bad_values(bad: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        mean_t_interval(bad)


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5])
def test_bad_level(level: float) -> None:
    with pytest.raises(ValueError, match="level"):
        mean_t_interval([1.0, 2.0], level)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 12), st.floats(0.5, 0.99))
def test_columns_are_the_one_dimensional_interval(seed: int, n: int, level: float) -> None:
    """Seeds on axis 0: each column gets scipy's interval, and mean_t_interval's."""
    from scipy import stats

    x = np.random.default_rng(seed).normal(size=(n, 3, 2))
    mean, half = mean_t_intervals(x, level)
    assert mean.shape == half.shape == (3, 2)
    for k, j in np.ndindex(3, 2):
        lo, hi = stats.t.interval(level, n - 1, loc=x[:, k, j].mean(), scale=stats.sem(x[:, k, j]))
        assert math.isclose(mean[k, j] - half[k, j], lo, rel_tol=1e-10, abs_tol=1e-12)
        assert math.isclose(mean[k, j] + half[k, j], hi, rel_tol=1e-10, abs_tol=1e-12)
        assert (mean[k, j], half[k, j]) == pytest.approx(mean_t_interval(x[:, k, j], level),
                                                         rel=1e-12)


@pytest.mark.parametrize("bad", [np.ones(1), np.float64(2.0), np.array([1.0, np.nan])])
def test_columns_bad_values(bad: object) -> None:
    with pytest.raises(ValueError, match="values"):
        mean_t_intervals(bad)
    with pytest.raises(ValueError, match="level"):
        mean_t_intervals(np.ones((3, 2)), 1.0)
