"""Tests of kexue_notes.graphs_physics.rotating_rope: the spinning rope's tension, closed forms and
solvers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.integrate import quad
from scipy.special import ellipk, j0, jn_zeros

from kexue_notes.graphs_physics import rotating_rope as rr

FAST = settings(max_examples=25, deadline=None)
OMEGA, SPAN, LENGTH = 2.0, 1.0, 1.5


def troposkien_state() -> tuple[float, float]:
    return rr.troposkien_constants(SPAN, LENGTH, OMEGA)


# --- tension and the catenary ------------------------------------------------------------------

def test_tension_closed_form_and_broadcasting() -> None:
    assert_allclose(rr.tension(1.0, 2.0, 2.0, 3.0, 0.5), 0.5 + 6.0 - 2.0)
    T = rr.tension(np.zeros((3, 1)), np.arange(4.0), 1.0, 1.0, -1.0)
    assert T.shape == (3, 4)
    assert_allclose(T[0], [-1.0, 0.0, 1.0, 2.0])


def test_tension_is_conserved_along_the_force_balance() -> None:
    """dT/ds = -f . t for T = K + g y - omega^2 x^2 / 2: check on an integrated rope."""
    shape = rr.shape_ivp(1.5, 2.0, (0.3, 0.1), 2.0, 0.4, 1.0)
    K = 2.0 - 2.0 * 0.1 + 0.5 * 1.5**2 * 0.3**2
    assert_allclose(shape.tension, rr.tension(shape.x, shape.y, 1.5, 2.0, K), atol=1e-10)


def test_catenary_solves_its_ode_and_has_its_vertex() -> None:
    x = np.linspace(-1.0, 2.0, 301)
    a, b = 0.7, 0.4
    y = rr.catenary(x, a, b)
    h = x[1] - x[0]
    ypp = (y[2:] - 2 * y[1:-1] + y[:-2]) / h**2
    assert_allclose(ypp, y[1:-1] / a**2, rtol=1e-4)  # y'' = y / a^2, second-order differences
    assert_allclose(rr.catenary(b, a, b), a)


@FAST
@given(st.floats(0.1, 10.0), st.floats(1.0001, 50.0))
def test_catenary_parameter_gives_the_length(span: float, ratio: float) -> None:
    a = rr.catenary_parameter(span, span * ratio)
    assert_allclose(2 * a * math.sinh(span / (2 * a)), span * ratio, rtol=1e-10)


def test_catenary_parameter_limits() -> None:
    assert rr.catenary_parameter(1.0, 1.0 + 1e-9) > 10.0  # almost taut: a huge
    assert rr.catenary_parameter(1.0, 1e3) < 0.1  # very slack: a small


# --- the troposkien ----------------------------------------------------------------------------

def test_troposkien_radii_factorise_the_slope() -> None:
    K, H = 3.0, 1.0
    xm, xp = rr.troposkien_radii(2.0, K, H)
    c = 2.0
    x = np.linspace(0.0, 0.9, 7)
    assert_allclose((K - c * x**2) ** 2 - H**2, c**2 * (xm**2 - x**2) * (xp**2 - x**2))
    assert_allclose((xm, xp), (1.0, math.sqrt(2.0)))


def test_troposkien_matches_the_catalog_numbers() -> None:
    """omega = 2, K = 3, H = 1: largest radius 1, half-span K(1/2) / (2 sqrt 2)."""
    xm, _ = rr.troposkien_radii(2.0, 3.0, 1.0)
    assert_allclose(rr.troposkien(xm, 2.0, 3.0, 1.0), ellipk(0.5) / (2 * math.sqrt(2.0)))
    assert_allclose(rr.troposkien(1.0, 2.0, 3.0, 1.0), 0.65551438857, rtol=1e-10)


def test_troposkien_against_quadrature() -> None:
    K, H = troposkien_state()
    c = OMEGA**2 / 2
    xm, _ = rr.troposkien_radii(OMEGA, K, H)
    for x in np.linspace(0.05, 0.98, 6) * xm:
        ref = quad(lambda q: H / math.sqrt((K - c * q * q) ** 2 - H**2), 0, x, epsabs=1e-13)[0]
        assert_allclose(rr.troposkien(x, OMEGA, K, H), ref, rtol=1e-11)


@FAST
@given(st.floats(0.2, 5.0), st.floats(1.01, 20.0), st.floats(0.1, 10.0))
def test_troposkien_constants_round_trip(span: float, ratio: float, omega: float) -> None:
    K, H = rr.troposkien_constants(span, span * ratio, omega)
    assert K > H > 0
    x, y, s = rr.troposkien_parametric(np.array([0.0, np.pi]), omega, K, H)
    assert_allclose(x, 0.0, atol=1e-12 * span)
    assert_allclose(y[-1], span, rtol=1e-10)
    assert_allclose(s[-1], span * ratio, rtol=1e-10)


@FAST
@given(st.floats(1.05, 10.0), st.floats(0.1, 10.0))
def test_troposkien_shape_does_not_depend_on_omega(ratio: float, omega: float) -> None:
    K1, H1 = rr.troposkien_constants(1.0, ratio, 1.0)
    K2, H2 = rr.troposkien_constants(1.0, ratio, omega)
    assert_allclose((K2 / omega**2, H2 / omega**2), (K1, H1), rtol=1e-10)
    phi = np.linspace(0, np.pi, 9)
    for a, b in zip(rr.troposkien_parametric(phi, 1.0, K1, H1),
                    rr.troposkien_parametric(phi, omega, K2, H2), strict=True):
        assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_troposkien_parametric_agrees_with_the_graph_and_is_symmetric() -> None:
    K, H = troposkien_state()
    phi = np.linspace(0, np.pi / 2, 50)
    x, y, s = rr.troposkien_parametric(phi, OMEGA, K, H)
    assert_allclose(rr.troposkien(x, OMEGA, K, H), y, rtol=1e-12, atol=1e-15)
    x2, y2, s2 = rr.troposkien_parametric(np.pi - phi, OMEGA, K, H)
    assert_allclose(x2, x, atol=1e-14)
    assert_allclose(y2, SPAN - y, atol=1e-12)
    assert_allclose(s2, LENGTH - s, atol=1e-12)


def test_troposkien_arclength_is_the_polygon_length() -> None:
    K, H = troposkien_state()
    phi = np.linspace(0, np.pi, 40001)
    x, y, s = rr.troposkien_parametric(phi, OMEGA, K, H)
    seg = np.hypot(np.diff(x), np.diff(y))
    assert_allclose(np.cumsum(seg)[-1], s[-1], rtol=1e-8)
    assert np.all(np.diff(s) > 0)


def test_beta_curve_against_quadrature_and_limits() -> None:
    beta = 4.0
    x0 = 0.5
    for x in (0.51, 0.7, 1.5, 4.0):
        ref = quad(lambda q: 1 / (beta * math.sqrt((q + x0) * (q * q + x0 * x0))), x0, x,
                   weight="alg", wvar=(-0.5, 0.0), epsabs=1e-14)[0]
        assert_allclose(rr.beta_curve(x, beta), ref, rtol=1e-11)
    assert rr.beta_curve(x0, beta) == 0.0
    assert_allclose(rr.beta_curve(1e8, beta), x0 / math.sqrt(2) * ellipk(0.5), rtol=1e-7)


# --- the equations and the solvers -------------------------------------------------------------

def test_rope_rhs_shapes_and_values() -> None:
    d = rr.rope_rhs(0.0, [1.0, 2.0, 3.0, 4.0], 2.0, 9.0)
    assert_allclose(d, [0.6, 0.8, -4.0, 9.0])
    z = np.array([[1.0, 0.5], [0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    dz = rr.rope_rhs(0.0, z, 1.0, 0.5)
    assert dz.shape == (4, 2)
    assert_allclose(dz[:, 1], [0.0, 1.0, -0.5, 0.5])


def test_first_integral_rhs_matches_the_regular_system() -> None:
    """At one point with T y' = g s + H, both systems give the same unit tangent."""
    omega, g, K, s = 1.3, 0.7, 2.0, 0.4
    x, y = 0.5, 0.2
    T = K + g * y - 0.5 * omega**2 * x**2
    yp = 0.3
    H = T * yp - g * s
    xp = math.sqrt(1 - yp**2)
    reduced = rr.first_integral_rhs(s, [x, y], omega, g, K, H, 1)
    regular = rr.rope_rhs(s, [x, y, T * xp, T * yp], omega, g)
    assert_allclose(reduced, regular[:2], rtol=1e-14)
    assert_allclose(rr.first_integral_rhs(s, [x, y], omega, g, K, H, -1)[0], -xp)


def test_ivp_reproduces_the_closed_form() -> None:
    K, H = troposkien_state()
    phi = np.linspace(0, np.pi, 61)
    x, y, s = rr.troposkien_parametric(phi, OMEGA, K, H)
    shape = rr.shape_ivp(OMEGA, 0.0, (0, 0), K, math.atan2(H, math.sqrt(K * K - H * H)), LENGTH,
                         s_eval=s)
    assert_allclose(shape.x, x, atol=1e-9)
    assert_allclose(shape.y, y, atol=1e-9)
    assert_allclose(shape.tension[0], K, rtol=1e-14)
    assert_allclose(np.hypot(np.gradient(shape.x, s), np.gradient(shape.y, s)), 1.0, atol=2e-3)


def test_ivp_conserves_both_integrals_with_gravity() -> None:
    shape = rr.shape_ivp(2.0, 1.0, (0.0, 0.0), 1.0, 0.3, 2.0, n_points=101)
    K, H = 1.0, math.sin(0.3)
    assert_allclose(shape.tension, rr.tension(shape.x, shape.y, 2.0, 1.0, K), atol=1e-9)
    assert_allclose(shape.v, 1.0 * shape.s + H, atol=1e-12)
    assert shape.s_end == 2.0 and shape.s.shape == (101,)


def test_reduced_ivp_stops_at_the_turning_point() -> None:
    K, H = troposkien_state()
    red = rr.shape_ivp_reduced(OMEGA, 0.0, (0.0, 0.0), K, H, 1, LENGTH, n_points=301)
    # the widest point, half-way along; 1 - y'^2 has a double zero there, so the event is located
    # only to about the square root of the integrator's tolerance
    assert_allclose(red.s_end, LENGTH / 2, rtol=1e-5)
    xm, _ = rr.troposkien_radii(OMEGA, K, H)
    assert red.s[-1] <= red.s_end and red.x.max() <= xm * (1 + 1e-9)
    assert_allclose(rr.troposkien(red.x, OMEGA, K, H), red.y, atol=1e-8)


def test_reduced_ivp_runs_to_the_end_without_a_turning_point() -> None:
    red = rr.shape_ivp_reduced(0.0, 1.0, (0.0, 1.0), 2.0, 0.0, 1, 0.5)
    assert red.s_end == 0.5
    assert_allclose(red.tension, rr.tension(red.x, red.y, 0.0, 1.0, 2.0), rtol=1e-12)


def test_bvp_reproduces_the_troposkien() -> None:
    K, H = troposkien_state()
    phi = np.linspace(0, np.pi, 41)
    x, y, s = rr.troposkien_parametric(phi, OMEGA, K, H)
    shape = rr.shape_bvp(OMEGA, 0.0, (0.0, 0.0), (0.0, SPAN), LENGTH, s_eval=s)
    assert_allclose(shape.x, x, atol=1e-8)
    assert_allclose(shape.y, y, atol=1e-8)
    assert_allclose((shape.tension[0], shape.v[0]), (K, H), rtol=1e-8)


def test_bvp_reproduces_the_catenary_and_is_symmetric() -> None:
    a = rr.catenary_parameter(1.0, 1.6)
    shape = rr.shape_bvp(0.0, 2.5, (-0.5, 1.0), (0.5, 1.0), 1.6, bulge=(0.0, -1.0))
    y = 1.0 + rr.catenary(shape.x, a) - rr.catenary(0.5, a)
    assert_allclose(shape.y, y, atol=1e-8)
    assert_allclose(shape.x, -shape.x[::-1], atol=1e-8)
    assert_allclose(shape.u[0], 2.5 * a, rtol=1e-7)  # horizontal tension g a


def test_bvp_and_ivp_agree_with_gravity() -> None:
    bvp = rr.shape_bvp(2.0, 1.0, (0.0, 0.0), (0.0, 1.0), 1.5, n_points=201)
    ivp = rr.shape_ivp(2.0, 1.0, (0.0, 0.0), float(bvp.tension[0]),
                       math.atan2(bvp.v[0], bvp.u[0]), 1.5, s_eval=bvp.s)
    assert_allclose(ivp.x, bvp.x, atol=1e-8)
    assert_allclose(ivp.y, bvp.y, atol=1e-8)
    assert bvp.tension.min() > 0


# --- the whirling chain ------------------------------------------------------------------------

def test_whirling_critical_speeds() -> None:
    w = rr.whirling_critical_speeds(9.81, 2.0, 4)
    assert_allclose(w, jn_zeros(0, 4) / 2 * math.sqrt(9.81 / 2.0))
    for w_n in w:  # the top, s = length, is on the axis
        assert_allclose(rr.whirling_linear_mode(2.0, w_n, 9.81), 0.0, atol=1e-14)


@FAST
@given(st.floats(0.1, 5.0), st.floats(0.5, 20.0))
def test_whirling_linear_mode_solves_its_ode(omega: float, g: float) -> None:
    s = np.linspace(0.5, 2.0, 2001)
    x = rr.whirling_linear_mode(s, omega, g)
    h = s[1] - s[0]
    flux = g * s * np.gradient(x, h)
    assert_allclose(np.gradient(flux, h)[5:-5], -omega**2 * x[5:-5], atol=2e-4 * (1 + omega**2))
    assert rr.whirling_linear_mode(0.0, omega, g) == 1.0
    assert_allclose(rr.whirling_linear_mode(s, omega, g), j0(2 * omega * np.sqrt(s / g)))


def test_whirling_chain_is_linear_at_small_amplitude() -> None:
    w1 = rr.whirling_critical_speeds(1.0, 1.0)[0]
    chain = rr.whirling_chain_ivp(w1, 1.0, 1.0, 1e-5, n_points=21)
    assert_allclose(chain.x, 1e-5 * rr.whirling_linear_mode(chain.s, w1, 1.0), atol=1e-12)
    assert_allclose(chain.y, chain.s, atol=1e-9)  # nearly vertical
    assert_allclose(chain.tension, chain.s, rtol=1e-6)  # T = g s


def test_whirling_shooting_speed_tends_to_the_critical_speed() -> None:
    w = rr.whirling_critical_speeds(1.0, 1.0, 2)
    for n in range(2):
        shot = rr.whirling_shooting_speed(1.0, 1.0, 1e-4, (0.97 * w[n], 1.03 * w[n]))
        assert_allclose(shot, w[n], rtol=1e-6)
    big = rr.whirling_shooting_speed(1.0, 1.0, 0.2, (0.99 * w[0], 1.2 * w[0]))
    assert big > w[0] * 1.005  # supercritical: a larger bow needs a faster spin


# --- error paths -------------------------------------------------------------------------------

@pytest.mark.parametrize("call, match", [
    (lambda: rr.tension(1.0, 0.0, -1.0, 0.0, 0.0), "omega"),
    (lambda: rr.tension(1.0, 0.0, 1.0, -1.0, 0.0), "g"),
    (lambda: rr.tension(np.nan, 0.0, 1.0, 1.0, 0.0), "x"),
    (lambda: rr.tension(0.0, np.inf, 1.0, 1.0, 0.0), "y"),
    (lambda: rr.tension(0.0, 0.0, 1.0, 1.0, np.nan), "K"),
    (lambda: rr.catenary(0.0, 0.0), "a"),
    (lambda: rr.catenary(0.0, 1.0, np.inf), "b"),
    (lambda: rr.catenary([np.nan], 1.0), "x"),
    (lambda: rr.catenary_parameter(0.0, 1.0), "span"),
    (lambda: rr.catenary_parameter(1.0, -1.0), "length"),
    (lambda: rr.catenary_parameter(1.0, 1.0), "length"),
    (lambda: rr.troposkien_radii(0.0, 3.0, 1.0), "omega"),
    (lambda: rr.troposkien_radii(1.0, 0.0, 1.0), "K"),
    (lambda: rr.troposkien_radii(1.0, 3.0, 0.0), "H"),
    (lambda: rr.troposkien_radii(1.0, 1.0, 1.0), "H"),
    (lambda: rr.troposkien(-0.1, 2.0, 3.0, 1.0), "x"),
    (lambda: rr.troposkien(1.5, 2.0, 3.0, 1.0), "x"),
    (lambda: rr.troposkien(0.5, 2.0, 1.0, 3.0), "H"),
    (lambda: rr.troposkien_parametric(-0.1, 2.0, 3.0, 1.0), "phi"),
    (lambda: rr.troposkien_parametric(4.0, 2.0, 3.0, 1.0), "phi"),
    (lambda: rr.troposkien_constants(0.0, 1.0, 1.0), "span"),
    (lambda: rr.troposkien_constants(1.0, 0.0, 1.0), "length"),
    (lambda: rr.troposkien_constants(1.0, 1.0, 1.0), "length"),
    (lambda: rr.troposkien_constants(1.0, 2.0, 0.0), "omega"),
    (lambda: rr.beta_curve(1.0, 0.0), "beta"),
    (lambda: rr.beta_curve(0.4, 4.0), "x"),
    (lambda: rr.rope_rhs(0.0, [1.0, 2.0, 3.0], 1.0, 1.0), "state"),
    (lambda: rr.rope_rhs(0.0, [1.0, 2.0, 0.0, 0.0], 1.0, 1.0), "state"),
    (lambda: rr.rope_rhs(0.0, [1.0, 2.0, 1.0, 0.0], -1.0, 1.0), "omega"),
    (lambda: rr.rope_rhs(0.0, [1.0, 2.0, 1.0, 0.0], 1.0, -1.0), "g"),
    (lambda: rr.first_integral_rhs(0.0, [1.0], 1.0, 1.0, 1.0, 0.0, 1), "state"),
    (lambda: rr.first_integral_rhs(0.0, [1.0, 0.0], 1.0, 1.0, 1.0, 0.0, 0), "sign"),
    (lambda: rr.first_integral_rhs(0.0, [1.0, 0.0], 1.0, 1.0, 0.5, 0.0, 1), "vanishes at state"),
    (lambda: rr.first_integral_rhs(0.0, [1.0, 0.0], 1.0, 1.0, np.nan, 0.0, 1), "K"),
    (lambda: rr.first_integral_rhs(0.0, [1.0, 0.0], 1.0, 1.0, 1.0, np.inf, 1), "H"),
    (lambda: rr.shape_ivp(1.0, 0.0, (0.0,), 1.0, 0.0, 1.0), "start"),
    (lambda: rr.shape_ivp(1.0, 0.0, (0.0, 0.0), 0.0, 0.0, 1.0), "tension"),
    (lambda: rr.shape_ivp(1.0, 0.0, (0.0, 0.0), 1.0, np.nan, 1.0), "angle"),
    (lambda: rr.shape_ivp(1.0, 0.0, (0.0, 0.0), 1.0, 0.0, 0.0), "length"),
    (lambda: rr.shape_ivp(1.0, 0.0, (0.0, 0.0), 1.0, 0.0, 1.0, s_eval=[0.5, 0.2]), "s_eval"),
    (lambda: rr.shape_ivp(1.0, 0.0, (0.0, 0.0), 1.0, 0.0, 1.0, s_eval=[0.5, 2.0]), "s_eval"),
    (lambda: rr.shape_ivp(1.0, 0.0, (0.0, 0.0), 1.0, 0.0, 1.0, n_points=1), "n_points"),
    (lambda: rr.shape_ivp(1.0, 0.0, (0.0, 0.0), 1.0, 0.0, 1.0, rtol=0.0), "rtol"),
    (lambda: rr.shape_ivp(1.0, 0.0, (0.0, 0.0), 1.0, 0.0, 1.0, atol=-1.0), "atol"),
    (lambda: rr.shape_ivp_reduced(1.0, 0.0, (0.0, 0.0), 1.0, 1.0, 1, 1.0), "H"),
    (lambda: rr.shape_ivp_reduced(1.0, 0.0, (0.0, 0.0), np.nan, 0.5, 1, 1.0), "K"),
    (lambda: rr.shape_ivp_reduced(1.0, 0.0, (0.0, 0.0), 1.0, 0.5, 1, -1.0), "length"),
    (lambda: rr.shape_ivp_reduced(1.0, 0.0, (0.0, 0.0), 1.0, 0.5, 2, 1.0), "sign"),
    (lambda: rr.shape_bvp(0.0, 0.0, (0.0, 0.0), (0.0, 1.0), 1.5), "omega and g"),
    (lambda: rr.shape_bvp(1.0, 0.0, (0.0, 0.0), (0.0, 1.0), 1.0), "length"),
    (lambda: rr.shape_bvp(1.0, 0.0, (0.0, 0.0, 0.0), (0.0, 1.0), 1.5), "start"),
    (lambda: rr.shape_bvp(1.0, 0.0, (0.0, 0.0), (np.nan, 1.0), 1.5), "end"),
    (lambda: rr.shape_bvp(1.0, 0.0, (0.0, 0.0), (0.0, 1.0), 1.5, bulge=(0.0, 1.0)), "bulge"),
    (lambda: rr.shape_bvp(1.0, 0.0, (0.0, 0.0), (0.0, 1.0), 1.5, n_nodes=3), "n_nodes"),
    (lambda: rr.shape_bvp(1.0, 0.0, (0.0, 0.0), (0.0, 1.0), 1.5, tol=0.0), "tol"),
    (lambda: rr.whirling_critical_speeds(0.0, 1.0), "g"),
    (lambda: rr.whirling_critical_speeds(1.0, -1.0), "length"),
    (lambda: rr.whirling_critical_speeds(1.0, 1.0, 0), "n_modes"),
    (lambda: rr.whirling_linear_mode(-1.0, 1.0, 1.0), "s"),
    (lambda: rr.whirling_linear_mode(1.0, -1.0, 1.0), "omega"),
    (lambda: rr.whirling_linear_mode(1.0, 1.0, 0.0), "g"),
    (lambda: rr.whirling_chain_ivp(0.0, 1.0, 1.0, 0.1), "omega"),
    (lambda: rr.whirling_chain_ivp(1.0, 1.0, 1.0, np.nan), "x_free"),
    (lambda: rr.whirling_chain_ivp(1.0, 1.0, 1.0, 0.1, eps=2.0), "eps"),
    (lambda: rr.whirling_shooting_speed(1.0, 1.0, 0.0, (1.0, 1.5)), "x_free"),
    (lambda: rr.whirling_shooting_speed(1.0, 1.0, 0.1, (1.5, 1.0)), "bracket"),
    (lambda: rr.whirling_shooting_speed(1.0, 1.0, 0.1, (1.0,)), "bracket"),
    (lambda: rr.whirling_shooting_speed(1.0, 1.0, 0.1, (0.0, 1.0)), "bracket"),
    (lambda: rr.whirling_shooting_speed(1.0, 1.0, 0.1, (0.3, 0.5)), "bracket"),
])
def test_bad_input_raises_value_error(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("call, match", [
    (lambda: rr.tension("a", 0.0, 1.0, 1.0, 0.0), "x"),
    (lambda: rr.catenary(0.0, "1"), "a"),
    (lambda: rr.troposkien_constants(1.0, 2.0, None), "omega"),
    (lambda: rr.shape_ivp(True, 0.0, (0.0, 0.0), 1.0, 0.0, 1.0), "omega"),
    (lambda: rr.shape_bvp(1.0, 0.0, None, (0.0, 1.0), 1.5), "start"),
    (lambda: rr.whirling_critical_speeds(1.0, 1.0, 1.5), "n_modes"),
])
def test_bad_types_raise_type_error(call, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        call()


def test_bvp_that_does_not_converge_raises_runtime_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed solve_bvp (stood in for here: real failures take seconds) is an error, not a
    silent shape."""

    class Failed:
        success = False
        message = "The maximum number of mesh nodes is exceeded."

    monkeypatch.setattr(rr, "solve_bvp", lambda *args, **kwargs: Failed())
    with pytest.raises(RuntimeError, match="solve_bvp did not converge"):
        rr.shape_bvp(2.0, 1.0, (0.0, 0.0), (0.0, 1.0), 1.5)
