"""Tests of kexue_notes.sequences.ode_rnn: closed forms, identities, and every error path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from kexue_notes.sequences import ode_rnn as orn

torch.set_num_threads(1)
F64 = torch.float64
POST = np.array(orn.POST_PARAMS)

#: Positive parameters around the post's scale: rates ~0.1, interactions ~1e-4, 1/N ~ 1e-3.
params_st = st.tuples(
    st.floats(0.05, 0.5), st.floats(0.05, 0.5), st.floats(1e-5, 5e-4), st.floats(1e-5, 5e-4),
    st.floats(1e-3, 5e-3), st.floats(1e-3, 5e-3)).map(np.array)
state_st = st.tuples(st.floats(0, 600), st.floats(0, 600)).map(np.array)


# --- the vector field -------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(params_st, state_st)
def test_field_numpy_and_torch_agree_and_match_the_formula(p: np.ndarray, x: np.ndarray) -> None:
    r1, r2, a1, a2, i1, i2 = p
    expected = [r1 * x[0] * (1 - x[0] * i1) - a1 * x[0] * x[1],
                r2 * x[1] * (1 - x[1] * i2) - a2 * x[0] * x[1]]
    assert_allclose(orn.competition_field(x, p), expected, rtol=1e-12, atol=1e-12)
    out_t = orn.competition_field(torch.tensor(x), torch.tensor(p))
    assert isinstance(out_t, torch.Tensor)
    assert_allclose(out_t.numpy(), expected, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(params_st, state_st)
def test_lotka_volterra_form_is_the_same_field(p: np.ndarray, x: np.ndarray) -> None:
    r, M = orn.lotka_volterra_form(torch.tensor(p))
    xt = torch.tensor(x)
    assert_allclose((xt * (r - M @ xt)).numpy(), orn.competition_field(x, p), rtol=1e-11,
                    atol=1e-10)


def test_field_broadcasts_over_leading_axes() -> None:
    x = np.random.default_rng(0).uniform(0, 500, size=(3, 4, 2))
    out = orn.competition_field(x, POST)
    assert out.shape == (3, 4, 2)
    assert_allclose(out[1, 2], orn.competition_field(x[1, 2], POST))


def test_field_errors() -> None:
    with pytest.raises(ValueError, match="x must have shape"):
        orn.competition_field(np.ones(3), POST)
    with pytest.raises(ValueError, match="x must have shape"):
        orn.competition_field(torch.ones(3, dtype=F64), torch.tensor(POST))
    with pytest.raises(ValueError, match="params must have shape"):
        orn.competition_field(np.ones(2), np.ones(5))
    with pytest.raises(ValueError, match="params must be >= 0"):
        orn.competition_field(np.ones(2), -POST)
    with pytest.raises(ValueError, match="params must be >= 0"):
        orn.competition_field(torch.ones(2, dtype=F64), -torch.tensor(POST))
    with pytest.raises(ValueError, match="x must be finite"):
        orn.competition_field(np.array([np.nan, 1.0]), POST)
    with pytest.raises(TypeError, match="x must be"):
        orn.competition_field("12", POST)
    with pytest.raises(ValueError, match="params must have shape"):
        orn.lotka_volterra_form(torch.ones(4))


# --- Euler as an RNN --------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(st.floats(-2, 2), st.floats(0.01, 0.5), st.integers(1, 40))
def test_euler_rnn_on_the_linear_equation(lam: float, h: float, steps: int) -> None:
    traj = orn.euler_rnn(lambda x, _t: lam * x, torch.tensor([1.0, -2.0], dtype=F64), h, steps)
    assert traj.shape == (steps + 1, 2)
    factor = (1 + lam * h) ** np.arange(steps + 1)
    assert_allclose(traj.numpy(), np.outer(factor, [1.0, -2.0]), rtol=1e-12, atol=1e-300)


def test_euler_rnn_passes_the_time() -> None:
    # x' = t: Euler gives x_n = h^2 (0 + 1 + ... + n-1) = h^2 n (n-1) / 2
    traj = orn.euler_rnn(lambda x, t: torch.full_like(x, t), torch.zeros(1, dtype=F64), 0.5, 6)
    n = np.arange(7)
    assert_allclose(traj[:, 0].numpy(), 0.25 * n * (n - 1) / 2, rtol=0, atol=1e-15)


def test_euler_rnn_errors() -> None:
    x0 = torch.ones(2, dtype=F64)
    with pytest.raises(ValueError, match="h must be"):
        orn.euler_rnn(lambda x, _t: x, x0, 0.0, 3)
    with pytest.raises(TypeError, match="h must be"):
        orn.euler_rnn(lambda x, _t: x, x0, "0.1", 3)
    with pytest.raises(ValueError, match="steps must be"):
        orn.euler_rnn(lambda x, _t: x, x0, 0.1, 0)
    with pytest.raises(TypeError, match="steps must be"):
        orn.euler_rnn(lambda x, _t: x, x0, 0.1, 2.0)
    with pytest.raises(ValueError, match="field must return"):
        orn.euler_rnn(lambda x, _t: x[:1], x0, 0.1, 3)
    with pytest.raises(ValueError, match="x0 must be finite"):
        orn.euler_rnn(lambda x, _t: x, torch.tensor([np.inf]), 0.1, 3)


@settings(max_examples=20, deadline=None)
@given(params_st, st.sampled_from([0.1, 0.5, 1.0]), st.integers(1, 60))
def test_module_float_and_generic_paths_agree(p: np.ndarray, h: float, steps: int) -> None:
    x0 = np.array([100.0, 150.0])
    floats = orn.euler_trajectory(p, x0, h, steps)
    with torch.no_grad():
        module = orn.CompetitionEulerRNN(p, h)(x0, steps).numpy()
        generic = orn.euler_rnn(lambda x, _t: orn.competition_field(x, torch.tensor(p)),
                                torch.tensor(x0), h, steps).numpy()
    assert_allclose(module, floats, rtol=1e-11)
    assert_allclose(generic, floats, rtol=1e-11)


def test_module_parameters_and_gradient() -> None:
    model = orn.CompetitionEulerRNN(POST, 1.0)
    assert_allclose(model.params.detach().numpy(), POST, rtol=1e-15)
    assert [name for name, _ in model.named_parameters()] == ["log_ratio"]

    def final(theta: torch.Tensor) -> torch.Tensor:
        model.log_ratio.data = theta
        return model(torch.tensor([100.0, 150.0], dtype=F64), 10)[-1]

    # autograd through the unrolled steps against central differences
    y0 = final(torch.zeros(6, dtype=F64, requires_grad=True))
    g = torch.autograd.grad(y0[1], model.log_ratio)[0].numpy()
    eps = 1e-6
    fd = []
    for i in range(6):
        e = torch.zeros(6, dtype=F64)
        e[i] = eps
        with torch.no_grad():
            fd.append(float((final(e)[1] - final(-e)[1]) / (2 * eps)))
    assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_module_errors() -> None:
    with pytest.raises(ValueError, match="init must be > 0"):
        orn.CompetitionEulerRNN(np.r_[POST[:5], 0.0], 1.0)
    with pytest.raises(ValueError, match="init must have shape"):
        orn.CompetitionEulerRNN(POST[:5], 1.0)
    with pytest.raises(ValueError, match="h must be"):
        orn.CompetitionEulerRNN(POST, -1.0)
    model = orn.CompetitionEulerRNN(POST, 1.0)
    with pytest.raises(ValueError, match="x0 must have shape"):
        model(torch.ones(3, dtype=F64), 5)
    with pytest.raises(ValueError, match="steps must be"):
        model(torch.ones(2, dtype=F64), 0)


def test_euler_trajectory_decoupled_logistic() -> None:
    # a1 = a2 = 0: each species follows the logistic Euler map on its own
    p = np.array([0.2, 0.3, 0.0, 0.0, 0.01, 0.02])
    traj = orn.euler_trajectory(p, [10.0, 5.0], 0.5, 30)
    for i, (r, inv_n) in enumerate(((0.2, 0.01), (0.3, 0.02))):
        x = traj[0, i]
        for k in range(1, 31):
            x = x + 0.5 * r * x * (1 - inv_n * x)
            assert math.isclose(traj[k, i], x, rel_tol=1e-14)


def test_euler_trajectory_overflow_is_returned_not_raised() -> None:
    traj = orn.euler_trajectory([10.0, 10.0, 0.0, 0.0, 0.0, 0.0], [1e300, 1e300], 1.0, 20)
    assert not np.all(np.isfinite(traj))


def test_euler_trajectory_errors() -> None:
    with pytest.raises(ValueError, match="x0 must have shape"):
        orn.euler_trajectory(POST, [1.0, 2.0, 3.0], 0.1, 3)
    with pytest.raises(ValueError, match="params must be >= 0"):
        orn.euler_trajectory(-POST, [1.0, 2.0], 0.1, 3)
    with pytest.raises(ValueError, match="h must be"):
        orn.euler_trajectory(POST, [1.0, 2.0], 0.0, 3)
    with pytest.raises(ValueError, match="steps must be"):
        orn.euler_trajectory(POST, [1.0, 2.0], 0.1, 0)


# --- data and fits ----------------------------------------------------------------------------

def test_table_indices() -> None:
    assert orn.table_indices(orn.POST_TIMES, 0.1).tolist() == [0, 100, 150, 300, 360, 400, 420]
    assert orn.table_indices(orn.POST_TIMES, 1.0).tolist() == [0, 10, 15, 30, 36, 40, 42]
    with pytest.raises(ValueError, match="times must be whole multiples of h"):
        orn.table_indices([0.0, 1.0, 2.5], 2.0)
    with pytest.raises(ValueError, match="times must be >= 0"):
        orn.table_indices([-1.0, 1.0], 1.0)
    with pytest.raises(ValueError, match="times must be 1-dimensional"):
        orn.table_indices(np.zeros((2, 2)), 1.0)
    with pytest.raises(ValueError, match="h must be"):
        orn.table_indices([0.0, 1.0], 0.0)


def planted_data(h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An exact Euler trajectory of known parameters, sampled at the post's times."""
    truth = np.array([0.12, 0.25, 1.5e-4, 1.5e-4, 2.5e-3, 3.5e-3])
    times = np.array(orn.POST_TIMES)
    traj = orn.euler_trajectory(truth, [100.0, 150.0], h, round(42 / h))
    return truth, times, traj[orn.table_indices(times, h)]


@pytest.mark.parametrize("fit", [orn.fit_bptt, orn.fit_least_squares])
def test_fits_recover_planted_parameters(fit) -> None:
    truth, times, values = planted_data(1.0)
    out = fit(times, values, 1.0, orn.POST_INIT)
    assert {"params", "rmse", "n_evals", "residuals"} <= set(out)
    assert out["residuals"].shape == (6, 2) and out["n_evals"] > 0
    assert out["rmse"] < 1e-6
    assert_allclose(out["params"], truth, rtol=1e-5)


def test_the_two_fits_agree_on_the_post_table() -> None:
    a = orn.fit_bptt(orn.POST_TIMES, orn.POST_TABLE, 1.0, orn.POST_INIT)
    b = orn.fit_least_squares(orn.POST_TIMES, orn.POST_TABLE, 1.0, orn.POST_INIT)
    assert_allclose(a["params"], b["params"], rtol=1e-4)
    assert math.isclose(a["rmse"], b["rmse"], rel_tol=1e-7)


@pytest.mark.parametrize("fit", [orn.fit_bptt, orn.fit_least_squares])
def test_fit_errors(fit) -> None:
    times, table = np.array(orn.POST_TIMES), np.array(orn.POST_TABLE)
    with pytest.raises(ValueError, match="values must have shape"):
        fit(times, table[:, :1], 1.0, orn.POST_INIT)
    with pytest.raises(ValueError, match="values must have shape"):
        fit(times, table[:-1], 1.0, orn.POST_INIT)
    with pytest.raises(ValueError, match="times must start at 0"):
        fit(times + 1, table, 1.0, orn.POST_INIT)
    with pytest.raises(ValueError, match="times must start at 0"):
        fit(np.array([0.0, 15, 10, 30, 36, 40, 42]), table, 1.0, orn.POST_INIT)
    with pytest.raises(ValueError, match="times must be whole multiples"):
        fit(times, table, 4.0, orn.POST_INIT)
    with pytest.raises(ValueError, match="init must be > 0"):
        fit(times, table, 1.0, np.r_[orn.POST_INIT[:5], -1.0])
    with pytest.raises(ValueError, match="init must have shape"):
        fit(times, table, 1.0, orn.POST_INIT[:3])


def test_least_squares_returns_its_jacobian() -> None:
    out = orn.fit_least_squares(orn.POST_TIMES, orn.POST_TABLE, 1.0, orn.POST_INIT)
    assert out["jac"].shape == (12, 6)
    # central differences of the residuals in log p, at the fitted parameters
    idx = orn.table_indices(orn.POST_TIMES, 1.0)
    table = np.array(orn.POST_TABLE)

    def res(theta: np.ndarray) -> np.ndarray:
        traj = orn.euler_trajectory(out["params"] * np.exp(theta), table[0], 1.0, 42)
        return (traj[idx[1:]] - table[1:]).ravel()

    fd = np.stack([(res(e) - res(-e)) / 2e-6 for e in 1e-6 * np.eye(6)], axis=1)
    assert_allclose(out["jac"], fd, rtol=1e-3, atol=1e-3 * np.abs(fd).max())


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.01, 4.0))
def test_gauss_newton_sd_is_exact_for_linear_regression(seed: int, var: float) -> None:
    X = np.random.default_rng(seed).normal(size=(20, 3))
    # ordinary least squares: Cov = var (X'X)^{-1}
    expected = np.sqrt(var * np.diag(np.linalg.inv(X.T @ X)))
    assert_allclose(orn.gauss_newton_sd(X, var), expected, rtol=1e-12)


def test_gauss_newton_sd_matches_monte_carlo() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 2))
    beta = [np.linalg.lstsq(X, rng.uniform(-0.5, 0.5, 30), rcond=None)[0] for _ in range(4000)]
    sd_mc = np.std(beta, axis=0, ddof=1)
    # 4000 draws: the standard error of a standard deviation is about 1 / sqrt(2 * 4000) ~ 1.1 %
    assert_allclose(orn.gauss_newton_sd(X, 1 / 12), sd_mc, rtol=0.05)


def test_gauss_newton_sd_errors() -> None:
    with pytest.raises(ValueError, match="jac must have full column rank"):
        orn.gauss_newton_sd(np.ones((2, 3)), 1.0)
    with pytest.raises(ValueError, match="jac must have full column rank"):
        orn.gauss_newton_sd(np.ones((5, 2)), 1.0)
    with pytest.raises(ValueError, match="jac must be 2-dimensional"):
        orn.gauss_newton_sd(np.ones(5), 1.0)
    with pytest.raises(ValueError, match="noise_var must be"):
        orn.gauss_newton_sd(np.eye(3), 0.0)


def test_fit_bptt_count_errors() -> None:
    with pytest.raises(ValueError, match="max_iter must be"):
        orn.fit_bptt(orn.POST_TIMES, orn.POST_TABLE, 1.0, orn.POST_INIT, max_iter=0)
    with pytest.raises(ValueError, match="history_size must be"):
        orn.fit_bptt(orn.POST_TIMES, orn.POST_TABLE, 1.0, orn.POST_INIT, history_size=0)


# --- equilibria and stability -----------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(params_st)
def test_equilibria_are_zeros_of_the_field(p: np.ndarray) -> None:
    alpha, beta = orn.competition_strengths(p)
    if abs(alpha * beta - 1) < 1e-3:
        return
    eq = orn.equilibria(p)
    assert eq.shape == (4, 2)
    scale = np.abs(orn.competition_field(np.array([1 / p[4], 1 / p[5]]) / 2, p)).max()
    assert np.abs(orn.competition_field(eq, p)).max() <= 1e-9 * max(scale, 1.0)


def test_post_equilibria_and_strengths() -> None:
    assert_allclose(orn.competition_strengths(POST), (1 / 3, 1 / 3), rtol=1e-14)
    assert_allclose(orn.equilibria(POST),
                    [[0, 0], [500, 0], [0, 1000 / 3], [375, 250]], rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(params_st, state_st)
def test_jacobian_matches_autograd(p: np.ndarray, x: np.ndarray) -> None:
    auto = torch.autograd.functional.jacobian(
        lambda y: orn.competition_field(y, torch.tensor(p)), torch.tensor(x)).numpy()
    assert_allclose(orn.jacobian(x, p), auto, rtol=1e-12, atol=1e-14)


def test_stability_follows_the_strengths() -> None:
    # alpha, beta < 1: the coexistence point is a stable node; both > 1: a saddle
    for factor, stable in ((1.0, True), (4.0, False)):
        p = POST * np.array([1, 1, factor, factor, 1, 1])
        ev = np.linalg.eigvals(orn.jacobian(orn.equilibria(p)[3], p)).real
        assert (ev.max() < 0) == stable


def test_equilibria_errors() -> None:
    # alpha * beta = 1: a1 N2 / r1 = 2 and a2 N1 / r2 = 1/2
    p = np.array([0.1, 0.2, 2e-4, 1e-4, 1e-3, 1e-3])
    assert math.isclose(np.prod(orn.competition_strengths(p)), 1.0)
    with pytest.raises(ValueError, match="alpha \\* beta = 1"):
        orn.equilibria(p)
    with pytest.raises(ValueError, match="params must be > 0"):
        orn.competition_strengths(np.r_[POST[:2], 0.0, POST[3:]])
    with pytest.raises(ValueError, match="params must have shape"):
        orn.equilibria(POST[:4])
    with pytest.raises(ValueError, match="x must have shape"):
        orn.jacobian([1.0, 2.0, 3.0], POST)
    with pytest.raises(ValueError, match="params must be >= 0"):
        orn.jacobian([1.0, 2.0], -POST)


# --- convergence order and the tanh RNN -------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(st.floats(0.5, 4.0), st.floats(1e-3, 1e3))
def test_observed_order_of_a_power_law(q: float, C: float) -> None:
    h = 2.0 ** -np.arange(6)
    assert math.isclose(orn.observed_order(h, C * h**q), q, rel_tol=1e-9)


def test_observed_order_errors() -> None:
    with pytest.raises(ValueError, match="same length"):
        orn.observed_order([1.0, 0.5], [1.0])
    with pytest.raises(ValueError, match="same length"):
        orn.observed_order([1.0], [1.0])
    with pytest.raises(ValueError, match="h must be > 0"):
        orn.observed_order([1.0, -0.5], [1.0, 0.5])
    with pytest.raises(ValueError, match="err must be > 0"):
        orn.observed_order([1.0, 0.5], [1.0, 0.0])
    with pytest.raises(ValueError, match="two different step sizes"):
        orn.observed_order([0.5, 0.5], [1.0, 0.5])
    with pytest.raises(ValueError, match="err must be finite"):
        orn.observed_order([1.0, 0.5], [1.0, np.nan])


@settings(max_examples=30, deadline=None)
@given(st.floats(-1.2, 1.2), st.floats(-1, 1), st.integers(1, 20), st.floats(-0.9, 0.9))
def test_tanh_gradient_matches_finite_differences(w: float, b: float, steps: int,
                                                  y0: float) -> None:
    y, d = orn.tanh_rnn_bias_gradient(w, b, steps, y0)
    eps = 1e-6
    fd = (orn.tanh_rnn_bias_gradient(w, b + eps, steps, y0)[0]
          - orn.tanh_rnn_bias_gradient(w, b - eps, steps, y0)[0]) / (2 * eps)
    assert abs(y) < 1
    assert math.isclose(d, fd, rel_tol=1e-4, abs_tol=1e-6)


@pytest.mark.parametrize("w", [0.5, 2.0, 3.0])
def test_tanh_gradient_at_the_origin_is_geometric(w: float) -> None:
    assert orn.tanh_rnn_bias_gradient(w, 0.0, 25) == (0.0, (w**25 - 1) / (w - 1))


def test_tanh_gradient_errors() -> None:
    with pytest.raises(ValueError, match="y0 must lie in"):
        orn.tanh_rnn_bias_gradient(1.0, 0.0, 5, y0=1.0)
    with pytest.raises(ValueError, match="steps must be"):
        orn.tanh_rnn_bias_gradient(1.0, 0.0, 0)
    with pytest.raises(ValueError, match="w must be finite"):
        orn.tanh_rnn_bias_gradient(math.inf, 0.0, 3)
    with pytest.raises(TypeError, match="b must be a real number"):
        orn.tanh_rnn_bias_gradient(1.0, True, 3)
