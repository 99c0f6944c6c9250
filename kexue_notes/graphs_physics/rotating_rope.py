r"""The shape of a spinning rope: tension, closed forms and three ways to solve for the curve.

Conventions. The rope is uniform with unit linear density and lies in a plane through the rotation
axis, which is the :math:`y`-axis; it turns at the angular velocity :math:`\omega`; :math:`x` is the
(signed) distance from the axis and gravity :math:`g` points along :math:`-y`. In the frame that
turns with the rope, the rope is at rest under the body force (per unit length)
:math:`f = \nabla\varphi = (\omega^2x, -g)` with :math:`\varphi = \tfrac12\omega^2x^2 - gy`. With
:math:`s` the arclength, :math:`t = (x', y')` the unit tangent and :math:`T` the tension, the force
balance :math:`(T\,t)' + f = 0` has the tangential first integral

.. math::

   T = K + g\,y - \tfrac12\omega^2x^2 ,

where the constant :math:`K` is the Lagrange multiplier of the fixed rope length
(:func:`tension`). Writing the *tension vector* :math:`(u, v) = T\,t`, the shape solves the regular
first-order system (:func:`rope_rhs`)

.. math::

   x' = u/T,\quad y' = v/T,\quad u' = -\omega^2 x,\quad v' = g,\qquad T = \sqrt{u^2+v^2},

whose last equation integrates to Su's first integral :math:`T\,y' = g s + H`. It is solved as an
initial-value problem (:func:`shape_ivp`), in the reduced form of the post
(:func:`first_integral_rhs`, :func:`shape_ivp_reduced`), and as a boundary-value problem with both
ends fixed and the length given (:func:`shape_bvp`). Closed forms: the catenary at
:math:`\omega = 0` (:func:`catenary`, :func:`catenary_parameter`), the troposkien at
:math:`g = 0` as incomplete elliptic integrals (:func:`troposkien_radii`, :func:`troposkien`,
:func:`troposkien_parametric`, :func:`troposkien_constants`), and the post's
:math:`\beta`-form (:func:`beta_curve`). Last, the whirling hanging chain and its Bessel modes
(:func:`whirling_critical_speeds`, :func:`whirling_linear_mode`, :func:`whirling_chain_ivp`,
:func:`whirling_shooting_speed`).

Every solver returns a :class:`RopeShape`: arrays of the arclength ``s`` and of ``x, y, u, v``
there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.integrate import solve_bvp, solve_ivp
from scipy.optimize import brentq
from scipy.special import ellipe, ellipeinc, ellipk, ellipkinc, j0, jn_zeros

from kexue_notes._validate import as_array, check_count, check_positive, check_real

__all__ = [  # noqa: RUF022 -- in the order the module reads
    "RopeShape",
    "tension",
    "catenary",
    "catenary_parameter",
    "troposkien_radii",
    "troposkien",
    "troposkien_parametric",
    "troposkien_constants",
    "beta_curve",
    "rope_rhs",
    "first_integral_rhs",
    "shape_ivp",
    "shape_ivp_reduced",
    "shape_bvp",
    "whirling_critical_speeds",
    "whirling_linear_mode",
    "whirling_chain_ivp",
    "whirling_shooting_speed",
]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class RopeShape:
    r"""A solved rope: the arclength ``s`` and, there, the position ``(x, y)`` and the tension
    vector ``(u, v)``, each of shape ``(n,)``. ``s_end`` is where the integration stopped (the
    rope's length, or a turning point for :func:`shape_ivp_reduced`).

    .. math::

       (u, v) = T\,(x', y'), \qquad |T| = \sqrt{u^2 + v^2}

    (the property ``tension``).

    Used in: :doc:`/book/graphs-physics/rotating-rope`, eq. :eq:`rope-system`.
    """

    s: Array
    x: Array
    y: Array
    u: Array
    v: Array
    s_end: float

    @property
    def tension(self) -> Array:
        r"""The size of the tension, :math:`|T| = \sqrt{u^2+v^2}`, along the rope, shape ``(n,)``.
        (:func:`shape_ivp_reduced` allows a negative :math:`T`; :func:`tension` gives its sign.)"""
        return np.asarray(np.hypot(self.u, self.v), dtype=np.float64)


# --- private checks ----------------------------------------------------------------------------

def _point(value: Any, name: str) -> Array:
    return as_array(value, name, shape=(2,))


def _s_eval(s_eval: Any, length: float, n_points: int) -> Array:
    if s_eval is None:
        return np.linspace(0.0, length, check_count(n_points, "n_points", minimum=2))
    s = as_array(s_eval, "s_eval", ndim=1)
    if s.size == 0 or np.any(np.diff(s) < 0) or s[0] < 0 or s[-1] > length * (1 + 1e-12):
        raise ValueError(f"s_eval must be sorted and lie in [0, length] = [0, {length}]")
    return np.clip(s, 0.0, length)


def _ivp_args(omega: Any, g: Any, start: Any, length: Any, s_eval: Any,
              n_points: int) -> tuple[float, float, float, float, float, Array]:
    """The checked loads, start point, length and output arclengths of the two IVP routes."""
    x0, y0 = _point(start, "start")
    L = check_positive(length, "length")
    return (check_positive(omega, "omega", allow_zero=True),
            check_positive(g, "g", allow_zero=True), float(x0), float(y0), L,
            _s_eval(s_eval, L, n_points))


def _troposkien_constants(omega: Any, K: Any, H: Any) -> tuple[float, float, float]:
    """c = ω²/2, and the checks K > H > 0 of a rope under tension that crosses the axis."""
    omega = check_positive(omega, "omega")
    K = check_positive(K, "K")
    H = check_positive(H, "H")
    if H >= K:
        raise ValueError(f"H must be smaller than K (tension at the axis), got H={H}, K={K}")
    return 0.5 * omega**2, K, H


# --- tension and the closed forms --------------------------------------------------------------

def tension(x: Any, y: Any, omega: float, g: float, K: float) -> Array:
    r"""The rope's tension from the tangential force balance.

    .. math::

       T(x, y) = K + g\,y - \tfrac12\omega^2x^2 ,

    with :math:`K` the multiplier of the length constraint (the tension where :math:`x = y = 0`).
    A rope needs :math:`T > 0`; where :math:`T < 0` the curve is a strut in compression.

    Args:
        x: distances from the axis, any shape.
        y: heights, broadcastable with ``x``.
        omega: angular velocity :math:`\omega \ge 0`.
        g: gravity :math:`g \ge 0`.
        K: the constant :math:`K`, any real number.

    Returns:
        Array of the broadcast shape of ``x`` and ``y``.

    Raises:
        ValueError: if an argument is NaN or infinite, or ``omega`` or ``g`` is negative.

    Used in: :doc:`/book/graphs-physics/rotating-rope`, eq. :eq:`rope-tension`.
    """
    x = as_array(x, "x")
    y = as_array(y, "y")
    omega = check_positive(omega, "omega", allow_zero=True)
    g = check_positive(g, "g", allow_zero=True)
    K = check_real(K, "K")
    return np.asarray(K + g * y - 0.5 * omega**2 * x**2, dtype=np.float64)


def catenary(x: Any, a: float, b: float = 0.0) -> Array:
    r"""The catenary, the hanging rope at :math:`\omega = 0`.

    .. math::

       y = a\cosh\frac{x - b}{a} ,

    with its directrix on :math:`y = 0` (there the tension :math:`T = g\,y` would vanish) and its
    lowest point at :math:`(b, a)`.

    Args:
        x: abscissae, any shape.
        a: the parameter :math:`a > 0`, the height of the lowest point above the directrix (and
            the horizontal tension divided by :math:`g`).
        b: abscissa :math:`b` of the lowest point.

    Returns:
        Array of the shape of ``x``.

    Raises:
        ValueError: if ``a`` is not positive or an argument is not finite.

    Used in: :doc:`/book/graphs-physics/rotating-rope`, eq. :eq:`rope-catenary`.
    """
    x = as_array(x, "x")
    a = check_positive(a, "a")
    b = check_real(b, "b")
    return np.asarray(a * np.cosh((x - b) / a), dtype=np.float64)


def catenary_parameter(span: float, length: float) -> float:
    r"""The parameter :math:`a` of the catenary of a given length between two points at the same
    height, a horizontal distance ``span`` apart.

    Solves :math:`2a\sinh\bigl(\tfrac{w}{2a}\bigr) = L` for :math:`a` (``brentq``); the left side
    falls from :math:`+\infty` to :math:`w` as :math:`a` grows, so the root is unique.

    Args:
        span: horizontal distance :math:`w > 0` between the ends.
        length: rope length :math:`L > w`.

    Returns:
        :math:`a` as a float.

    Raises:
        ValueError: if ``span`` is not positive or ``length`` does not exceed it.

    Used in: :doc:`/book/graphs-physics/rotating-rope`, eq. :eq:`rope-catenary`.
    """
    w = check_positive(span, "span")
    L = check_positive(length, "length")
    if w >= L:
        raise ValueError(f"length must exceed span (a rope longer than the gap), got {L} <= {w}")

    def excess(log_a: float) -> float:
        a = math.exp(log_a)
        z = w / (2 * a)
        return math.log(2 * a) + math.log(math.sinh(z)) - math.log(L) if z < 700 else \
            math.log(a) + z - math.log(L)

    lo, hi = math.log(w) - 8.0, math.log(w) + 8.0
    while excess(lo) < 0:
        lo -= 8.0
    while excess(hi) > 0:
        hi += 8.0
    return math.exp(brentq(excess, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps))


def troposkien_radii(omega: float, K: float, H: float) -> tuple[float, float]:
    r"""The two radii where the troposkien's slope equation changes character.

    .. math::

       x_\pm^2 = \frac{K \pm H}{c}, \qquad c = \tfrac12\omega^2 ,

    so that :math:`(K - cx^2)^2 - H^2 = c^2(x_-^2 - x^2)(x_+^2 - x^2)`. The rope under tension
    lives in :math:`|x| \le x_-` (its largest radius); the modulus of its elliptic integrals is
    :math:`k = x_-/x_+`, and scipy's parameter is :math:`m = k^2`.

    Args:
        omega: angular velocity :math:`\omega > 0`.
        K: tension at the axis, :math:`K > H`.
        H: axial tension (the constant :math:`T\,y'`), :math:`H > 0`.

    Returns:
        ``(x_minus, x_plus)``.

    Raises:
        ValueError: unless :math:`\omega > 0` and :math:`K > H > 0`.

    Used in: :doc:`/book/graphs-physics/rotating-rope`, eq. :eq:`rope-troposkien`.
    """
    c, K, H = _troposkien_constants(omega, K, H)
    return math.sqrt((K - H) / c), math.sqrt((K + H) / c)


def troposkien(x: Any, omega: float, K: float, H: float) -> Array:
    r"""The troposkien (the spinning rope without gravity) as a graph over the first half-rope.

    .. math::

       y(x) = \int_0^x \frac{H\,d\xi}{\sqrt{(K - c\xi^2)^2 - H^2}}
            = \frac{H}{c\,x_+}\,F\!\left(\arcsin\frac{x}{x_-}\,\middle|\,m\right),
       \qquad m = \frac{x_-^2}{x_+^2},

    with :math:`F(\phi\,|\,m)` the incomplete elliptic integral of the first kind in scipy's
    parameter convention (``ellipkinc(phi, m)``, :math:`m = k^2`), :math:`c = \omega^2/2` and
    :math:`x_\pm` from :func:`troposkien_radii`. The curve starts on the axis at the origin and
    reaches its largest radius :math:`x_-` at :math:`y = \tfrac{H}{c x_+}\mathcal K(m)`.

    Args:
        x: radii in :math:`[0, x_-]`, any shape.
        omega: angular velocity :math:`\omega > 0`.
        K: tension at the axis, :math:`K > H`.
        H: axial tension, :math:`H > 0`.

    Returns:
        Array of the shape of ``x``.

    Raises:
        ValueError: unless :math:`\omega > 0`, :math:`K > H > 0` and every ``x`` lies in
            :math:`[0, x_-]`.

    Used in: :doc:`/book/graphs-physics/rotating-rope`, eq. :eq:`rope-troposkien`.
    """
    x = as_array(x, "x")
    c, K, H = _troposkien_constants(omega, K, H)
    x_minus, x_plus = troposkien_radii(omega, K, H)
    if np.any(x < 0) or np.any(x > x_minus * (1 + 1e-12)):
        raise ValueError(f"x must lie in [0, x_-] = [0, {x_minus:.6g}]")
    phi = np.arcsin(np.clip(x / x_minus, 0.0, 1.0))
    return np.asarray(H / (c * x_plus) * ellipkinc(phi, (x_minus / x_plus) ** 2),
                      dtype=np.float64)


def troposkien_parametric(phi: Any, omega: float, K: float,
                          H: float) -> tuple[Array, Array, Array]:
    r"""The whole troposkien, axis to axis, with its arclength, in the angle :math:`\phi\in[0,\pi]`.

    .. math::

       x = x_-\sin\phi,\qquad y = \frac{H}{c\,x_+}F(\phi\,|\,m),\qquad
       s = x_+E(\phi\,|\,m) - y ,

    with :math:`E` the incomplete elliptic integral of the second kind (``ellipeinc``), :math:`m =
    x_-^2/x_+^2`. At :math:`\phi = \pi` the rope is back on the axis: the span between its ends is
    :math:`\tfrac{2H}{c x_+}\mathcal K(m)` and its length :math:`2x_+\mathcal E(m)` minus the span.

    Args:
        phi: angles in :math:`[0, \pi]`, any shape.
        omega: angular velocity :math:`\omega > 0`.
        K: tension at the axis, :math:`K > H`.
        H: axial tension, :math:`H > 0`.

    Returns:
        ``(x, y, s)``, each of the shape of ``phi``.

    Raises:
        ValueError: unless :math:`\omega > 0`, :math:`K > H > 0` and ``phi`` lies in
            :math:`[0, \pi]`.

    Used in: :doc:`/book/graphs-physics/rotating-rope`, eq. :eq:`rope-troposkien-arclength`.
    """
    phi = as_array(phi, "phi")
    if np.any(phi < 0) or np.any(phi > math.pi * (1 + 1e-12)):
        raise ValueError("phi must lie in [0, pi]")
    c, K, H = _troposkien_constants(omega, K, H)
    x_minus, x_plus = troposkien_radii(omega, K, H)
    m = (x_minus / x_plus) ** 2
    y = H / (c * x_plus) * ellipkinc(phi, m)
    s = x_plus * ellipeinc(phi, m) - y
    return (np.asarray(x_minus * np.sin(phi), dtype=np.float64), np.asarray(y, dtype=np.float64),
            np.asarray(s, dtype=np.float64))


def troposkien_constants(span: float, length: float, omega: float) -> tuple[float, float]:
    r"""The tension constants :math:`(K, H)` of a troposkien of given length with both ends on the
    axis, ``span`` apart.

    From :func:`troposkien_parametric` at :math:`\phi = \pi`, with :math:`p = x_+`:

    .. math::

       D = p\,(1 - m)\,\mathcal K(m), \qquad L + D = 2p\,\mathcal E(m), \qquad
       K = \tfrac{c}{2}p^2(1 + m),\quad H = \tfrac{c}{2}p^2(1 - m),

    so :math:`m` solves :math:`(1-m)\mathcal K(m)/(2\mathcal E(m)) = D/(L+D)` (``brentq`` on
    :math:`(0, 1)`; the left side falls from :math:`1/2` to :math:`0`), where :math:`\mathcal K` and
    :math:`\mathcal E` are the complete elliptic integrals (``ellipk``, ``ellipe``). The shape
    depends on :math:`L/D` only; the tensions scale with :math:`\omega^2`.

    Args:
        span: distance :math:`D > 0` between the ends along the axis.
        length: rope length :math:`L > D`.
        omega: angular velocity :math:`\omega > 0`.

    Returns:
        ``(K, H)`` with :math:`K > H > 0`.

    Raises:
        ValueError: if an argument is not positive or ``length`` does not exceed ``span``.

    Used in: :doc:`/book/graphs-physics/rotating-rope`, eq. :eq:`rope-troposkien-span`.
    """
    D = check_positive(span, "span")
    L = check_positive(length, "length")
    omega = check_positive(omega, "omega")
    if L <= D:
        raise ValueError(f"length must exceed span (a slack rope), got {L} <= {D}")
    ratio = D / (L + D)

    def gap(m: float) -> float:
        return float((1 - m) * ellipk(m) / (2 * ellipe(m)) - ratio)

    m_hi = 1.0 - 1e-16
    if gap(m_hi) > 0:  # pragma: no cover -- only for L/D beyond about 1e15
        raise ValueError(f"length/span = {L / D:.3g} is too large to resolve in float64")
    m = brentq(gap, 0.0, m_hi, xtol=1e-16, rtol=4 * np.finfo(float).eps)
    p = (L + D) / (2 * ellipe(m))
    c = 0.5 * omega**2
    return float(0.5 * c * p**2 * (1 + m)), float(0.5 * c * p**2 * (1 - m))


def beta_curve(x: Any, beta: float) -> Array:
    r"""The post's :math:`g = 0` curve, the first integral without the length multiplier
    (:math:`K = 0`).

    .. math::

       y(x) = \int_{x_0}^{x}\frac{d\xi}{\sqrt{\beta^2\xi^4 - 1}}
            = \frac{x_0}{\sqrt2}\,F\!\left(\arccos\frac{x_0}{x}\,\middle|\,\tfrac12\right),
       \qquad x_0 = \beta^{-1/2},

    an incomplete elliptic integral of the first kind with :math:`m = k^2 = 1/2`. It exists only for
    :math:`x \ge x_0`, so the curve never reaches the axis; its tension :math:`-\tfrac12\omega^2x^2`
    is negative.

    Args:
        x: radii :math:`\ge x_0`, any shape.
        beta: the post's constant :math:`\beta > 0`.

    Returns:
        Array of the shape of ``x``; :math:`y(x_0) = 0` and :math:`y \to
        \frac{x_0}{\sqrt2}\mathcal K(\tfrac12)` as :math:`x\to\infty`.

    Raises:
        ValueError: if ``beta`` is not positive or some ``x`` is below :math:`x_0`.

    Used in: :doc:`/book/graphs-physics/rotating-rope`, eq. :eq:`rope-beta-form`.
    """
    x = as_array(x, "x")
    beta = check_positive(beta, "beta")
    x0 = beta**-0.5
    if np.any(x < x0 * (1 - 1e-12)):
        raise ValueError(f"x must be >= beta**-0.5 = {x0:.6g}: the curve does not come closer")
    psi = np.arccos(np.clip(x0 / np.maximum(x, x0), -1.0, 1.0))
    return np.asarray(x0 / math.sqrt(2.0) * ellipkinc(psi, 0.5), dtype=np.float64)


# --- the equations of the shape ----------------------------------------------------------------

def rope_rhs(s: float, state: Any, omega: float, g: float) -> Array:
    r"""Right-hand side of the regular arclength system of the spinning rope.

    .. math::

       \frac{d}{ds}(x, y, u, v) = \Bigl(\frac{u}{T}, \frac{v}{T}, -\omega^2x, g\Bigr),
       \qquad T = \sqrt{u^2 + v^2},

    the force balance :math:`(T\,t)' = -f` for the tension vector :math:`(u, v) = T\,t`. Unlike the
    post's reduced form (:func:`first_integral_rhs`) it has no square root of :math:`1 - y'^2` and
    passes through turning points; it needs :math:`T > 0`.

    Args:
        s: arclength (unused: the system is autonomous; kept for ``solve_ivp``).
        state: ``(4,)`` or ``(4, n)`` array of :math:`(x, y, u, v)`.
        omega: angular velocity :math:`\omega \ge 0`.
        g: gravity :math:`g \ge 0`.

    Returns:
        Array of the shape of ``state``.

    Raises:
        ValueError: if ``state`` has the wrong shape or is not finite, or the tension vanishes.

    Used in: :doc:`/book/graphs-physics/rotating-rope`, eq. :eq:`rope-system`.
    """
    z = as_array(state, "state")
    if z.ndim not in (1, 2) or z.shape[0] != 4:
        raise ValueError(f"state must have shape (4,) or (4, n), got {z.shape}")
    omega = check_positive(omega, "omega", allow_zero=True)
    g = check_positive(g, "g", allow_zero=True)
    x, _, u, v = z
    T = np.hypot(u, v)
    if np.any(T == 0):
        raise ValueError("state has zero tension (u = v = 0): the tangent is undefined")
    return np.stack([u / T, v / T, -omega**2 * x, np.full_like(x, g)])


def first_integral_rhs(s: float, state: Any, omega: float, g: float, K: float, H: float,
                       sign: int) -> Array:
    r"""Right-hand side of the post's reduced arclength system, re-derived with the multiplier.

    From :math:`T\,y' = g s + H` and :math:`x'^2 + y'^2 = 1`, with
    :math:`T = K + g y - \tfrac12\omega^2x^2`:

    .. math::

       y' = \frac{g s + H}{T}, \qquad x' = \sigma\sqrt{1 - y'^2},\quad \sigma = \pm 1 .

    The post's :math:`\varphi` is :math:`-T` at :math:`K = 0`, and its :math:`C_1` is :math:`-H`.
    The square root vanishes at a turning point (largest radius), where the branch :math:`\sigma`
    must flip by hand; past it the system is not valid (it is clipped to zero here).

    Args:
        s: arclength from the point where :math:`T y' = H`.
        state: ``(2,)`` array :math:`(x, y)`.
        omega: angular velocity :math:`\omega \ge 0`.
        g: gravity :math:`g \ge 0`.
        K: tension constant :math:`K`.
        H: the constant :math:`H` (:math:`T y'` at :math:`s = 0`).
        sign: the branch :math:`\sigma`, ``+1`` (moving away from the axis) or ``-1``.

    Returns:
        ``(2,)`` array :math:`(x', y')`.

    Raises:
        ValueError: if ``state`` is not a finite ``(2,)`` array, ``sign`` is not ``±1`` or the
            tension vanishes.

    Used in: :doc:`/book/graphs-physics/rotating-rope`, eq. :eq:`rope-reduced`.
    """
    x, y = _point(state, "state")
    omega = check_positive(omega, "omega", allow_zero=True)
    g = check_positive(g, "g", allow_zero=True)
    if sign not in (1, -1) or isinstance(sign, bool):
        raise ValueError(f"sign must be +1 or -1, got {sign!r}")
    T = check_real(K, "K") + g * y - 0.5 * omega**2 * x**2
    if T == 0:
        raise ValueError("the tension K + g y - omega**2 x**2 / 2 vanishes at state")
    yp = (g * float(s) + check_real(H, "H")) / T
    return np.array([sign * math.sqrt(max(0.0, 1.0 - yp * yp)), yp])


# --- three solvers -----------------------------------------------------------------------------

def shape_ivp(omega: float, g: float, start: Any, tension: float, angle: float, length: float,
              s_eval: Any = None, n_points: int = 401, rtol: float = 1e-11,
              atol: float = 1e-12) -> RopeShape:
    r"""The rope as an initial-value problem in arclength (``solve_ivp``, DOP853).

    Integrates :func:`rope_rhs` from :math:`(x, y) = ` ``start`` with tension :math:`T_0` and
    tangent :math:`(\cos\theta_0, \sin\theta_0)`, i.e.
    :math:`(u, v)(0) = T_0(\cos\theta_0, \sin\theta_0)`, over :math:`s\in[0, L]`. The constants of
    :func:`tension` are then :math:`K = T_0 - g y_0 + \tfrac12\omega^2x_0^2` and :math:`H = v(0)`.

    Args:
        omega: angular velocity :math:`\omega \ge 0`.
        g: gravity :math:`g \ge 0`.
        start: ``(2,)`` starting point :math:`(x_0, y_0)`.
        tension: starting tension :math:`T_0 > 0`.
        angle: starting tangent angle :math:`\theta_0` (radians, from the :math:`+x` direction).
        length: arclength :math:`L > 0` to integrate over.
        s_eval: sorted arclengths in :math:`[0, L]` to report, shape ``(n,)``; default
            ``n_points`` uniform ones.
        n_points: number of uniform output points when ``s_eval`` is None (:math:`\ge 2`).
        rtol: relative tolerance of the integrator.
        atol: absolute tolerance of the integrator.

    Returns:
        A :class:`RopeShape` at the requested arclengths.

    Raises:
        ValueError: if an argument is out of range or the integration fails.

    Used in: :doc:`/book/graphs-physics/rotating-rope`, eq. :eq:`rope-system`.
    """
    omega, g, x0, y0, L, s = _ivp_args(omega, g, start, length, s_eval, n_points)
    T0 = check_positive(tension, "tension")
    theta = check_real(angle, "angle")
    z0 = [x0, y0, T0 * math.cos(theta), T0 * math.sin(theta)]
    sol = solve_ivp(rope_rhs, (0.0, L), z0, method="DOP853", t_eval=s, args=(omega, g),
                    rtol=check_positive(rtol, "rtol"), atol=check_positive(atol, "atol"))
    if not sol.success:  # pragma: no cover -- the system is regular while T > 0
        raise ValueError(f"solve_ivp failed: {sol.message}")
    x, y, u, v = sol.y
    return RopeShape(sol.t, x, y, u, v, L)


def shape_ivp_reduced(omega: float, g: float, start: Any, K: float, H: float, sign: int,
                      length: float, s_eval: Any = None, n_points: int = 401,
                      rtol: float = 1e-11, atol: float = 1e-12) -> RopeShape:
    r"""The post's route: integrate the reduced system :func:`first_integral_rhs` until the rope's
    length or the first turning point, whichever comes first.

    A terminal event stops the integration where :math:`1 - y'^2` reaches zero (:math:`x' = 0`),
    because the reduced system cannot pass it. The tension vector is reported as
    :math:`(u, v) = T\,(x', y')` with the signed :math:`T = K + gy - \tfrac12\omega^2x^2`.

    Args:
        omega: angular velocity :math:`\omega \ge 0`.
        g: gravity :math:`g \ge 0`.
        start: ``(2,)`` starting point :math:`(x_0, y_0)`, at arclength 0.
        K: tension constant :math:`K`.
        H: the constant :math:`H = T y'` at the start; needs :math:`|H| < |T(x_0, y_0)|`.
        sign: branch :math:`\sigma = \pm 1` of :math:`x'`.
        length: largest arclength :math:`L > 0`.
        s_eval: sorted arclengths in :math:`[0, L]`, shape ``(n,)``; only those before a turning
            point are returned. Default ``n_points`` uniform ones.
        n_points: number of uniform output points when ``s_eval`` is None (:math:`\ge 2`).
        rtol: relative tolerance of the integrator.
        atol: absolute tolerance of the integrator.

    Returns:
        A :class:`RopeShape`; its ``s_end`` is the turning point's arclength if one was met,
        else :math:`L`.

    Raises:
        ValueError: if an argument is out of range or the start is already a turning point.

    Used in: :doc:`/book/graphs-physics/rotating-rope`, eq. :eq:`rope-reduced`.
    """
    omega, g, x0, y0, L, s = _ivp_args(omega, g, start, length, s_eval, n_points)
    K = check_real(K, "K")
    H = check_real(H, "H")
    if sign not in (1, -1) or isinstance(sign, bool):
        raise ValueError(f"sign must be +1 or -1, got {sign!r}")
    T0 = K + g * y0 - 0.5 * omega**2 * x0**2
    if abs(H) >= abs(T0):
        raise ValueError(f"H must satisfy |H| < |T| at start (|y'| < 1), got H={H}, T={T0:.6g}")

    def turning(si: float, z: Array, *args: Any) -> float:
        T = K + g * z[1] - 0.5 * omega**2 * z[0] ** 2
        return 1.0 - ((g * si + H) / T) ** 2

    turning.terminal = True  # type: ignore[attr-defined]
    turning.direction = -1  # type: ignore[attr-defined]
    sol = solve_ivp(first_integral_rhs, (0.0, L), [x0, y0], method="DOP853", t_eval=s,
                    events=turning, args=(omega, g, K, H, sign),
                    rtol=check_positive(rtol, "rtol"), atol=check_positive(atol, "atol"))
    if sol.status == -1:  # pragma: no cover
        raise ValueError(f"solve_ivp failed: {sol.message}")
    s_end = float(sol.t_events[0][0]) if sol.t_events[0].size else L
    x, y = sol.y
    T = K + g * y - 0.5 * omega**2 * x**2
    yp = (g * sol.t + H) / T
    xp = sign * np.sqrt(np.clip(1.0 - yp**2, 0.0, None))
    return RopeShape(sol.t, x, y, T * xp, T * yp, s_end)


def shape_bvp(omega: float, g: float, start: Any, end: Any, length: float, s_eval: Any = None,
              n_points: int = 401, bulge: Any = (1.0, 0.0), n_nodes: int = 101,
              tol: float = 1e-8) -> RopeShape:
    r"""The rope with both ends fixed and its length given, as a boundary-value problem
    (``solve_bvp``).

    Solves :func:`rope_rhs` on :math:`s\in[0, L]` with :math:`(x, y)(0) = ` ``start`` and
    :math:`(x, y)(L) = ` ``end``: four equations, four boundary conditions, and the length is the
    interval itself. The first guess is the chord bowed by a half sine wave towards ``bulge`` (its
    part normal to the chord), scaled to length :math:`L`, with a constant tension of the size of
    the loads, :math:`\omega^2L^2/4 + gL`.

    Args:
        omega: angular velocity :math:`\omega \ge 0`.
        g: gravity :math:`g \ge 0`, with :math:`\omega + g > 0`.
        start: ``(2,)`` first end.
        end: ``(2,)`` second end.
        length: rope length, larger than the distance between the ends.
        s_eval: sorted arclengths in :math:`[0, L]` to report, shape ``(n,)``; default
            ``n_points`` uniform ones.
        n_points: number of uniform output points when ``s_eval`` is None (:math:`\ge 2`).
        bulge: ``(2,)`` direction the first guess bows towards; not parallel to the chord.
        n_nodes: mesh nodes of the first guess (:math:`\ge 5`).
        tol: ``solve_bvp``'s tolerance on the relative residual.

    Returns:
        A :class:`RopeShape` at the requested arclengths (from ``solve_bvp``'s interpolant).

    Raises:
        ValueError: if an argument is out of range (``length`` not above the chord, ``bulge``
            parallel to it, ``omega`` and ``g`` both zero).
        RuntimeError: if ``solve_bvp`` does not converge.

    Used in: :doc:`/book/graphs-physics/rotating-rope`, eq. :eq:`rope-bvp`.
    """
    omega = check_positive(omega, "omega", allow_zero=True)
    g = check_positive(g, "g", allow_zero=True)
    if omega == 0 and g == 0:
        raise ValueError("omega and g must not both be zero (no load: any slack shape is at rest)")
    a = _point(start, "start")
    b = _point(end, "end")
    L = check_positive(length, "length")
    chord = b - a
    D = float(np.hypot(*chord))
    if L <= D:
        raise ValueError(f"length must exceed the distance between the ends, got {L} <= {D:.6g}")
    s_out = _s_eval(s_eval, L, n_points)
    d = _point(bulge, "bulge")
    e = chord / D if D > 0 else np.array([0.0, 1.0])
    normal = d - (d @ e) * e if D > 0 else d
    if np.hypot(*normal) < 1e-12 * max(1.0, float(np.hypot(*d))):
        raise ValueError("bulge must not be parallel to the chord between the ends")
    normal = normal / np.hypot(*normal)
    s = np.linspace(0.0, L, check_count(n_nodes, "n_nodes", minimum=5))
    sigma = s / L

    def guess(amplitude: float) -> Array:
        return a[:, None] + chord[:, None] * sigma + amplitude * np.sin(np.pi * sigma) * \
            normal[:, None]

    def excess(amplitude: float) -> float:
        return float(np.hypot(*np.diff(guess(amplitude), axis=1)).sum() - L)

    amp = brentq(excess, 0.0, L)
    r = guess(amp)
    t = np.gradient(r, s, axis=1)
    t = t / np.hypot(*t)
    z0 = np.vstack([r, (omega**2 * L**2 / 4 + g * L) * t])

    def bc(za: Array, zb: Array) -> Array:
        return np.array([za[0] - a[0], za[1] - a[1], zb[0] - b[0], zb[1] - b[1]])

    sol = solve_bvp(lambda si, z: rope_rhs(si, z, omega, g), bc, s, z0,
                    tol=check_positive(tol, "tol"), max_nodes=50_000)
    if not sol.success:
        raise RuntimeError(f"solve_bvp did not converge: {sol.message}")
    x, y, u, v = sol.sol(s_out)
    return RopeShape(s_out, x, y, u, v, L)


# --- the whirling hanging chain ----------------------------------------------------------------

def whirling_critical_speeds(g: float, length: float, n_modes: int = 1) -> Array:
    r"""Critical speeds of a chain hanging from a point on the axis with a free lower end.

    Linearised about the vertical, the radius obeys :math:`(g\,s\,x')' + \omega^2x = 0` (:math:`s`
    from the free end), solved by :math:`x = J_0(2\omega\sqrt{s/g})`; the top :math:`s = \ell` is on
    the axis when

    .. math::

       \omega_n = \frac{j_{0,n}}{2}\sqrt{\frac{g}{\ell}},

    with :math:`j_{0,n}` the zeros of :math:`J_0` (``scipy.special.jn_zeros``).

    Args:
        g: gravity :math:`g > 0`.
        length: chain length :math:`\ell > 0`.
        n_modes: number of speeds (:math:`\ge 1`).

    Returns:
        ``(n_modes,)`` array of :math:`\omega_1 < \omega_2 < \dots`.

    Raises:
        ValueError: if an argument is not positive.

    Used in: :doc:`/book/graphs-physics/rotating-rope`, eq. :eq:`rope-whirling`.
    """
    g = check_positive(g, "g")
    ell = check_positive(length, "length")
    n = check_count(n_modes, "n_modes")
    return np.asarray(jn_zeros(0, n) / 2 * math.sqrt(g / ell), dtype=np.float64)


def whirling_linear_mode(s: Any, omega: float, g: float) -> Array:
    r"""The linear mode shape of the whirling chain, normalised to 1 at the free end.

    .. math::

       x(s) = J_0\!\bigl(2\omega\sqrt{s/g}\bigr),

    with :math:`s \ge 0` the arclength from the free end.

    Args:
        s: arclengths :math:`\ge 0`, any shape.
        omega: angular velocity :math:`\omega \ge 0`.
        g: gravity :math:`g > 0`.

    Returns:
        Array of the shape of ``s``.

    Raises:
        ValueError: if ``s`` is negative, ``omega`` negative or ``g`` not positive.

    Used in: :doc:`/book/graphs-physics/rotating-rope`, eq. :eq:`rope-whirling`.
    """
    s = as_array(s, "s")
    if np.any(s < 0):
        raise ValueError("s must be >= 0 (arclength from the free end)")
    omega = check_positive(omega, "omega", allow_zero=True)
    g = check_positive(g, "g")
    return np.asarray(j0(2 * omega * np.sqrt(s / g)), dtype=np.float64)


def whirling_chain_ivp(omega: float, g: float, length: float, x_free: float, s_eval: Any = None,
                       n_points: int = 201, eps: float = 1e-9) -> RopeShape:
    r"""The nonlinear whirling chain, integrated up from its free end.

    At the free end the tension vanishes, so :math:`(u, v) = -s\,f + O(s^2)` with
    :math:`f = (\omega^2x_f, -g)`: the tangent there is fixed by the free end's radius :math:`x_f`.
    The integration (:func:`rope_rhs`, DOP853) starts at :math:`s = \varepsilon` on that tangent
    (an :math:`O(\varepsilon^2)` error) from :math:`(x_f, 0)`, up to :math:`s = \ell`.

    Args:
        omega: angular velocity :math:`\omega > 0`.
        g: gravity :math:`g > 0`.
        length: chain length :math:`\ell > \varepsilon`.
        x_free: radius of the free end, any real number.
        s_eval: sorted arclengths in :math:`[0, \ell]`, shape ``(n,)`` (those below
            :math:`\varepsilon` are reported at :math:`\varepsilon`); default ``n_points`` uniform.
        n_points: number of uniform output points when ``s_eval`` is None (:math:`\ge 2`).
        eps: starting arclength :math:`\varepsilon > 0`.

    Returns:
        A :class:`RopeShape`, ``s`` measured from the free end.

    Raises:
        ValueError: if an argument is out of range.

    Used in: :doc:`/book/graphs-physics/rotating-rope`, eq. :eq:`rope-whirling`.
    """
    omega = check_positive(omega, "omega")
    g = check_positive(g, "g")
    ell = check_positive(length, "length")
    xf = check_real(x_free, "x_free")
    eps = check_positive(eps, "eps")
    if eps >= ell:
        raise ValueError(f"eps must be smaller than length, got {eps} >= {ell}")
    s = np.maximum(_s_eval(s_eval, ell, n_points), eps)
    load = np.array([-omega**2 * xf, g])
    t0 = load / np.hypot(*load)
    z0 = [xf + eps * t0[0], eps * t0[1], eps * load[0], eps * load[1]]
    sol = solve_ivp(rope_rhs, (eps, ell), z0, method="DOP853", t_eval=s, args=(omega, g),
                    rtol=1e-11, atol=1e-13)
    if not sol.success:  # pragma: no cover
        raise ValueError(f"solve_ivp failed: {sol.message}")
    x, y, u, v = sol.y
    return RopeShape(sol.t, x, y, u, v, ell)


def whirling_shooting_speed(g: float, length: float, x_free: float,
                            bracket: tuple[float, float]) -> float:
    r"""The speed at which the nonlinear chain with free-end radius :math:`x_f` has its top on the
    axis, found by shooting.

    Finds :math:`\omega` in ``bracket`` with :math:`x(\ell; \omega) = 0` (``brentq`` on the top
    radius from :func:`whirling_chain_ivp`). As :math:`x_f \to 0` the root tends to a critical speed
    of :func:`whirling_critical_speeds`.

    Args:
        g: gravity :math:`g > 0`.
        length: chain length :math:`\ell > 0`.
        x_free: free-end radius, nonzero.
        bracket: ``(lo, hi)`` with :math:`0 < lo < hi`, over which :math:`x(\ell)` changes sign.

    Returns:
        :math:`\omega` as a float.

    Raises:
        ValueError: if an argument is out of range or :math:`x(\ell)` does not change sign over
            ``bracket``.

    Used in: :doc:`/book/graphs-physics/rotating-rope`, eq. :eq:`rope-whirling`.
    """
    g = check_positive(g, "g")
    ell = check_positive(length, "length")
    xf = check_real(x_free, "x_free")
    if xf == 0:
        raise ValueError("x_free must be nonzero (x_free = 0 is the straight chain at any speed)")
    if not isinstance(bracket, tuple | list) or len(bracket) != 2:
        raise ValueError(f"bracket must be a pair (lo, hi), got {bracket!r}")
    lo = check_positive(bracket[0], "bracket")
    hi = check_positive(bracket[1], "bracket")
    if lo >= hi:
        raise ValueError(f"bracket must have lo < hi, got {bracket!r}")

    def top(omega: float) -> float:
        return float(whirling_chain_ivp(omega, g, ell, xf, s_eval=[ell]).x[-1])

    if top(lo) * top(hi) > 0:
        raise ValueError(f"bracket {bracket!r} does not bracket a root: x(length) keeps its sign")
    return float(brentq(top, lo, hi, xtol=1e-13, rtol=4 * np.finfo(float).eps))
