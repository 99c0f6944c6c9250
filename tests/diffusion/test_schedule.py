"""kexue_notes.diffusion.schedule: the schedules against closed forms and identities, and the input
checks that every module of the diffusion part shares."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from conftest import random_schedule
from kexue_notes.diffusion import schedule as sch

EPS = np.finfo(np.float64).eps


schedules = st.builds(random_schedule, st.integers(0, 10_000), st.integers(1, 60))


# --- the schedule ----------------------------------------------------------------------------

def test_schedule_su_closed_form() -> None:
    s = sch.schedule_su(10, beta_max=0.3)
    t = np.arange(11)
    assert s.num_steps == 10
    assert all(v.dtype == torch.float64 and v.shape == (11,) for v in s)
    assert_allclose(s.alpha.numpy(), np.sqrt(1 - 0.3 * t / 10), rtol=1e-15)
    assert_allclose(s.beta.numpy(), np.sqrt(0.3 * t / 10), rtol=1e-15)
    assert_allclose(s.alpha_bar.numpy(), np.cumprod(np.sqrt(1 - 0.3 * t / 10)), rtol=1e-14)
    assert_allclose(s.beta_bar.numpy()**2, 1 - np.cumprod(1 - 0.3 * t / 10), rtol=1e-13)
    assert s.alpha[0] == 1 and s.beta[0] == 0 and s.alpha_bar[0] == 1 and s.beta_bar[0] == 0


def test_schedule_linear_matches_linspace() -> None:
    s = sch.schedule_linear(5, 0.1, 0.5)
    assert_allclose(s.beta[1:].numpy()**2, [0.1, 0.2, 0.3, 0.4, 0.5], rtol=1e-14)
    assert sch.schedule_linear(1).beta[1].item()**2 == pytest.approx(1e-4)


def test_schedule_from_betas_accepts_lists_arrays_and_float32() -> None:
    a = sch.schedule_from_betas([0.1, 0.2])
    b = sch.schedule_from_betas(np.array([0.1, 0.2]))
    c = sch.schedule_from_betas(torch.tensor([0.1, 0.2], dtype=torch.float32))
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    assert c.alpha.dtype == torch.float64
    # beta = 1 wipes out the signal for good
    d = sch.schedule_from_betas([0.5, 1.0, 0.3])
    assert d.alpha_bar[2] == 0 and d.alpha_bar[3] == 0 and d.beta_bar[3] == 1


def test_small_noise_keeps_relative_precision() -> None:
    s = sch.schedule_from_betas([1e-12, 1e-12])
    assert s.beta_bar[1].item()**2 == pytest.approx(1e-12, rel=1e-10)
    assert s.beta_bar[2].item()**2 == pytest.approx(2e-12, rel=1e-10)


@settings(max_examples=40, deadline=None)
@given(schedules)
def test_schedule_identities(s: sch.Schedule) -> None:
    assert_allclose((s.alpha**2 + s.beta**2).numpy(), 1, rtol=0, atol=4 * EPS)
    assert_allclose((s.alpha_bar**2 + s.beta_bar**2).numpy(), 1, rtol=0, atol=8 * EPS)
    assert_allclose(s.alpha_bar.numpy(), np.cumprod(s.alpha.numpy()), rtol=1e-12)
    # the variance recursion alpha_t^2 beta_bar_{t-1}^2 + beta_t^2 = beta_bar_t^2
    rec = s.alpha[1:]**2 * s.beta_bar[:-1]**2 + s.beta[1:]**2
    assert_allclose(rec.numpy(), s.beta_bar[1:].numpy()**2, rtol=1e-12)


# --- error paths of the schedules ---------------------------------------------------------

@pytest.mark.parametrize("bad, match", [
    ([0.1, -0.1], r"betas must lie in \(0, 1\]"),
    ([0.1, 1.5], r"betas must lie in \(0, 1\]"),
    ([0.0, 0.1], r"betas must lie in \(0, 1\]"),
    ([0.1, float("nan")], "betas must be finite"),
    ([[0.1, 0.2]], "betas must be 1-dimensional"),
    ([], "betas must hold at least one step"),
])
def test_schedule_from_betas_rejects_bad_betas(bad: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sch.schedule_from_betas(bad)


def test_schedule_from_betas_rejects_non_numbers() -> None:
    with pytest.raises(TypeError, match="betas must be"):
        sch.schedule_from_betas("0.1")


@pytest.mark.parametrize("kwargs, err, match", [
    ({"T": 0}, ValueError, "T must be >= 1"),
    ({"T": 10.0}, TypeError, "T must be an integer"),
    ({"T": True}, TypeError, "T must be an integer"),
    ({"T": 10, "beta_max": 0.0}, ValueError, r"beta_max must lie in \(0, 1\]"),
    ({"T": 10, "beta_max": 1.5}, ValueError, r"beta_max must lie in \[0, 1\]"),
    ({"T": 10, "beta_max": -0.1}, ValueError, "beta_max must be finite and >= 0"),
])
def test_schedule_su_errors(kwargs: dict, err: type, match: str) -> None:
    with pytest.raises(err, match=match):
        sch.schedule_su(**kwargs)


@pytest.mark.parametrize("kwargs, err, match", [
    ({"T": -1}, ValueError, "T must be >= 1"),
    ({"T": "5"}, TypeError, "T must be an integer"),
    ({"beta_start": 0.0}, ValueError, r"beta_start must lie in \(0, 1\]"),
    ({"beta_end": 2.0}, ValueError, r"beta_end must lie in \[0, 1\]"),
    ({"beta_end": float("nan")}, ValueError, "beta_end must be finite"),
])
def test_schedule_linear_errors(kwargs: dict, err: type, match: str) -> None:
    with pytest.raises(err, match=match):
        sch.schedule_linear(**kwargs)



# --- the shared checks -----------------------------------------------------------------------

def test_check_schedule_accepts_only_a_schedule(su: sch.Schedule) -> None:
    sch.check_schedule(su)
    with pytest.raises(TypeError, match="schedule must be a Schedule"):
        sch.check_schedule(tuple(su))


def test_check_t_returns_ints_and_int64_tensors(su: sch.Schedule) -> None:
    assert sch.check_t(np.int32(7), su, None, low=1) == 7
    assert isinstance(sch.check_t(np.int32(7), su, None, low=1), int)
    out = sch.check_t(np.array([0, 1000], dtype=np.int16), su, torch.zeros(2, 3), low=0)
    assert out.dtype == torch.int64 and out.tolist() == [0, 1000]
    with pytest.raises(ValueError, match=r"t must lie in \[1, 1000\], got values in \[0, 0\]"):
        sch.check_t(0, su, None, low=1)
    with pytest.raises(ValueError, match="t must have one entry per row of the data"):
        sch.check_t(torch.tensor([1, 2]), su, torch.zeros(3), low=1)
    with pytest.raises(ValueError, match="one entry per row"):
        sch.check_t(torch.tensor([1]), su, torch.tensor(0.0), low=1)


def test_as_data_and_same_shape() -> None:
    x = sch.as_data(np.arange(3, dtype=np.float32), "x")
    assert x.dtype == torch.float64 and x.tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="x must be finite"):
        sch.as_data([1.0, float("inf")], "x")
    a, b = sch.same_shape([1.0, 2.0], "a", np.ones(2), "b")
    assert a.dtype == b.dtype == torch.float64
    with pytest.raises(ValueError, match=r"b must have the shape of a, \(2,\), got \(3,\)"):
        sch.same_shape([1.0, 2.0], "a", np.ones(3), "b")


def test_shape_like_and_at_broadcast_per_row(su: sch.Schedule) -> None:
    x = torch.zeros(3, 2, 5)
    coef = torch.tensor([1.0, 2.0, 3.0])
    assert sch.shape_like(coef, x).shape == (3, 1, 1)
    assert sch.shape_like(torch.tensor(2.0), x).shape == ()
    t = torch.tensor([1, 10, 100])
    assert torch.equal((sch.at(su.alpha_bar, t, x) * torch.ones_like(x))[:, 1, 4], su.alpha_bar[t])
    assert sch.at(su.alpha_bar, 10, x).shape == ()
