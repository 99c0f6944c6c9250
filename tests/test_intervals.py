"""Tests of kexue_notes.intervals: the Student-t interval of per-seed results."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kexue_notes.intervals import mean_t_interval


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
