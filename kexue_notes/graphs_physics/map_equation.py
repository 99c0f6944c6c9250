r"""The map equation of Infomap: random-walk flow on a graph and its two-level codelength.

A random walker moves on a graph with transition matrix :math:`P`, :math:`P_{\alpha\beta}` being
the probability of the step :math:`\alpha\to\beta`. With probability :math:`\tau` it instead
teleports to a node drawn from a distribution :math:`v` (uniform unless said otherwise). Its
stationary visit rates :math:`p_\alpha` are the *node flows*. A partition of the nodes into modules
is scored by the *map equation*: the average number of bits per step needed to describe the walk
with a two-level code (a codebook naming modules, and one codebook per module naming its nodes
and an exit word),

.. math::

   L(M) = q_{\curvearrowright} H(\mathcal Q) + \sum_i p_{i\circlearrowright} H(\mathcal P^i).

The module reads in the order of the computation: entropy helpers, the transition matrix of a
networkx graph, the stationary flow, the flow along links, the exit flow of each module, the map
equation in its two-level and its expanded :math:`p\log p` form, and a Monte Carlo random walk that
measures the same rates by counting.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np
from numpy.typing import NDArray

from kexue_notes._validate import (
    as_array,
    check_fraction,
    check_positive,
    check_probabilities,
)

__all__ = [  # noqa: RUF022 -- in the order of the computation, as the module reads
    "plogp",
    "entropy",
    "transition_matrix",
    "partition_labels",
    "stationary_flow",
    "flow_matrix",
    "exit_flows",
    "map_equation",
    "map_equation_plogp",
    "graph_codelength",
    "simulate_walk",
    "walk_rates",
]

# --- private checks ----------------------------------------------------------------------------

def _check_base(base: Any) -> float:
    b = check_positive(base, "base")
    if b == 1.0:
        raise ValueError("base must differ from 1 (log base 1 is undefined), got 1")
    return b


def _check_transition(P: Any) -> NDArray[np.float64]:
    """A square, row-stochastic ``(n, n)`` matrix."""
    P = as_array(P, "P", ndim=2)
    if P.shape[0] != P.shape[1] or P.shape[0] == 0:
        raise ValueError(f"P must be a non-empty square matrix (n, n), got shape {P.shape}")
    return check_probabilities(P, "P", axis=1)


def _check_teleport(teleport: Any, n: int) -> NDArray[np.float64]:
    if teleport is None:
        return np.full(n, 1.0 / n)
    v = check_probabilities(teleport, "teleport")
    if v.shape != (n,):
        raise ValueError(f"teleport must have shape ({n},) to match P, got {v.shape}")
    return v


def _check_flow(p: Any, n: int | None = None) -> NDArray[np.float64]:
    p = check_probabilities(p, "p")
    if p.ndim != 1 or (n is not None and p.shape != (n,)):
        want = "(n,)" if n is None else f"({n},)"
        raise ValueError(f"p must have shape {want}, got {p.shape}")
    return p


def _module_indicator(modules: Any, n: int | None = None) -> NDArray[np.float64]:
    """One-hot ``(n, k)`` membership matrix; modules are the sorted distinct labels."""
    if isinstance(modules, str | bytes) or modules is None:
        raise TypeError(f"modules must be an array of integer labels, got {type(modules).__name__}")
    labels = np.asarray(modules)
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"modules must hold integer labels, got dtype {labels.dtype}")
    if labels.ndim != 1 or labels.size == 0 or (n is not None and labels.shape != (n,)):
        want = "(n,)" if n is None else f"({n},)"
        raise ValueError(f"modules must have shape {want}, one label per node, got {labels.shape}")
    _, inverse = np.unique(labels, return_inverse=True)
    return np.eye(inverse.max() + 1)[inverse]


def _check_module_flows(x: Any, name: str, k: int) -> NDArray[np.float64]:
    x = as_array(x, name, ndim=1)
    if x.shape != (k,):
        raise ValueError(f"{name} must have shape ({k},), one entry per module, got {x.shape}")
    if np.any(x < 0):
        raise ValueError(f"{name} must be non-negative, got minimum {x.min():.3g}")
    return x


# --- entropy -----------------------------------------------------------------------------------

def plogp(x: Any, base: float = 2.0) -> NDArray[np.float64]:
    r"""The summand of an entropy, :math:`x\log_b x`, with :math:`0\log 0 = 0`.

    .. math::

       \operatorname{plogp}(x) = x \log_b x .

    Args:
        x: non-negative array of any shape.
        base: base :math:`b` of the logarithm; 2 gives bits.

    Returns:
        Array of the same shape as ``x``.

    Raises:
        ValueError: if ``x`` holds a negative, NaN or infinite value, or ``base`` is not a positive
            number other than 1.
        TypeError: if ``x`` is not numeric.

    Used in: :doc:`/book/graphs-physics/infomap-map-equation`, eq. :eq:`map-equation-plogp`.
    """
    x = as_array(x, "x")
    b = _check_base(base)
    if np.any(x < 0):
        raise ValueError(f"x must be non-negative, got minimum {x.min():.3g}")
    safe = np.where(x > 0, x, 1.0)
    return np.where(x > 0, x * np.log(safe) / np.log(b), 0.0)


def entropy(p: Any, base: float = 2.0) -> float:
    r"""Shannon entropy of a probability vector, the shortest mean code length.

    .. math::

       H(p) = -\sum_{i=1}^n p_i \log_b p_i .

    Args:
        p: probabilities, shape ``(n,)``, non-negative and summing to one.
        base: base :math:`b` of the logarithm; 2 gives bits.

    Returns:
        :math:`H(p)` as a float.

    Raises:
        ValueError: if ``p`` is not a probability vector or ``base`` is invalid.

    Used in: :doc:`/book/graphs-physics/infomap-map-equation`, eq. :eq:`shannon-code-length`.
    """
    p = _check_flow(p)
    return float(-plogp(p, base).sum())


# --- the graph and its random walk -------------------------------------------------------------

def transition_matrix(G: nx.Graph, weight: str | None = "weight") -> NDArray[np.float64]:
    r"""Row-stochastic transition matrix of the random walk on a networkx graph.

    .. math::

       P_{\alpha\beta} = \frac{w_{\alpha\beta}}{\sum_\gamma w_{\alpha\gamma}},

    where :math:`w_{\alpha\beta}` is the weight of the edge :math:`\alpha\to\beta` (both directions
    for an undirected graph). A node without out-going edges (a dangling node) gets the uniform row
    :math:`1/n`: the walker teleports from it, as Infomap does with teleportation to nodes.

    Args:
        G: a networkx ``Graph`` or ``DiGraph`` with :math:`n \ge 1` nodes; rows and columns follow
            ``list(G)``.
        weight: edge attribute holding the weight (missing ones count 1), or ``None`` for 1 on
            every edge.

    Returns:
        ``(n, n)`` array whose rows sum to one.

    Raises:
        TypeError: if ``G`` is not a networkx graph.
        ValueError: if ``G`` has no node or a negative or non-finite edge weight.

    Used in: :doc:`/book/graphs-physics/infomap-map-equation`.
    """
    if not isinstance(G, nx.Graph):
        raise TypeError(f"G must be a networkx Graph or DiGraph, got {type(G).__name__}")
    n = G.number_of_nodes()
    if n == 0:
        raise ValueError("G must have at least one node")
    A = nx.to_numpy_array(G, weight=weight, dtype=np.float64)
    if not np.all(np.isfinite(A)) or np.any(A < 0):
        raise ValueError(f"G's edge weights ({weight!r}) must be finite and non-negative")
    s = A.sum(axis=1, keepdims=True)
    return np.where(s > 0, A / np.where(s > 0, s, 1.0), 1.0 / n)


def partition_labels(G: nx.Graph, communities: Any) -> NDArray[np.int64]:
    r"""Integer module label of every node of ``G``, in the order ``list(G)``.

    Turns the two usual ways of writing a partition :math:`M` into one array: a mapping
    ``{node: module}`` (as Infomap reports it) or a list of node sets (as networkx's community
    functions return it; set :math:`i` gets label :math:`i`).

    Args:
        G: the networkx graph the partition belongs to.
        communities: a mapping from every node to a hashable module id, or an iterable of disjoint
            node sets covering every node.

    Returns:
        ``(n,)`` integer array with labels :math:`0,\dots,k-1`.

    Raises:
        TypeError: if ``G`` is not a networkx graph or ``communities`` is neither form.
        ValueError: if a node of ``G`` has no module, belongs to two, or a module names an unknown
            node.

    Used in: :doc:`/book/graphs-physics/infomap-map-equation`.
    """
    if not isinstance(G, nx.Graph):
        raise TypeError(f"G must be a networkx Graph or DiGraph, got {type(G).__name__}")
    if isinstance(communities, dict):
        mapping = dict(communities)
    elif isinstance(communities, str | bytes) or not hasattr(communities, "__iter__"):
        raise TypeError(
            "communities must be a mapping {node: module} or an iterable of node sets, "
            f"got {type(communities).__name__}"
        )
    else:
        mapping = {}
        for i, block in enumerate(communities):
            for node in block:
                if node in mapping:
                    raise ValueError(f"communities puts node {node!r} in two modules")
                mapping[node] = i
    nodes = list(G)
    unknown = [node for node in mapping if node not in G]
    missing = [node for node in nodes if node not in mapping]
    if unknown:
        raise ValueError(f"communities names nodes that are not in G: {unknown[:5]}")
    if missing:
        raise ValueError(f"communities leaves nodes of G without a module: {missing[:5]}")
    keys = [mapping[node] for node in nodes]
    if all(isinstance(key, int | np.integer) and not isinstance(key, bool) for key in keys):
        labels = np.unique(np.array(keys, dtype=np.int64), return_inverse=True)[1]
    else:
        index: dict[Any, int] = {}
        labels = np.array([index.setdefault(key, len(index)) for key in keys])
    return labels.astype(np.int64)


def stationary_flow(P: Any, tau: float, teleport: Any = None) -> NDArray[np.float64]:
    r"""Stationary node flow of the random walk with teleportation.

    .. math::

       p_\beta = (1-\tau)\sum_\alpha p_\alpha P_{\alpha\beta} + \tau v_\beta ,
       \qquad \sum_\beta p_\beta = 1 .

    This is the linear system :math:`\bigl(I-(1-\tau)P^\top\bigr)p = \tau v` together with
    the normalisation, solved directly by least squares rather than by power iteration; at
    :math:`\tau=0` it gives the left eigenvector of :math:`P` for eigenvalue 1, which is unique when
    the walk has a single closed class (periodic walks included). An undirected graph without
    teleportation gives :math:`p_\alpha = s_\alpha/\sum_\gamma s_\gamma`, with :math:`s_\alpha` the
    node strength.

    Args:
        P: ``(n, n)`` row-stochastic transition matrix.
        tau: teleportation probability :math:`\tau\in[0,1]` (Infomap's default is 0.15).
        teleport: ``(n,)`` teleportation distribution :math:`v`; ``None`` for uniform :math:`1/n`.

    Returns:
        ``(n,)`` node flows, non-negative and summing to one.

    Raises:
        ValueError: if ``P`` is not square and row-stochastic, ``tau`` lies outside
            :math:`[0,1]`, ``teleport`` is not a probability vector of length :math:`n`, or
            the walk has more than one closed class and :math:`\tau` is zero or too small to
            make the flow unique.

    Used in: :doc:`/book/graphs-physics/infomap-map-equation`, eq. :eq:`teleport-stationary-flow`.
    """
    P = _check_transition(P)
    tau = check_fraction(tau, "tau")
    n = P.shape[0]
    v = _check_teleport(teleport, n)
    K = np.eye(n) - (1.0 - tau) * P.T
    if np.linalg.matrix_rank(K) < n - 1:
        raise ValueError(
            f"P has more than one closed class, so the stationary flow with tau={tau} is not "
            "unique; use a larger tau"
        )
    rhs = np.concatenate([tau * v, [1.0]])
    p = np.linalg.lstsq(np.vstack([K, np.ones((1, n))]), rhs, rcond=None)[0]
    p = np.clip(p, 0.0, None)
    return p / p.sum()


def flow_matrix(P: Any, p: Any, tau: float, teleport: Any = None) -> NDArray[np.float64]:
    r"""Flow along each ordered pair per step, teleportation steps included (recorded).

    .. math::

       F_{\alpha\beta} = p_\alpha\bigl[(1-\tau)P_{\alpha\beta} + \tau v_\beta\bigr].

    :math:`F` sums to one. Its row sums are :math:`p`; its column sums are :math:`p` again when
    :math:`p` is the stationary flow for the same :math:`\tau`. With ``tau=0`` and :math:`p` the
    stationary flow of a teleporting walk, :math:`F` is the flow of the link steps only, Infomap's
    *unrecorded* teleportation (valid when no node is dangling).

    Args:
        P: ``(n, n)`` row-stochastic transition matrix.
        p: ``(n,)`` node flows summing to one.
        tau: teleportation probability :math:`\tau\in[0,1]`.
        teleport: ``(n,)`` teleportation distribution :math:`v`; ``None`` for uniform.

    Returns:
        ``(n, n)`` non-negative array.

    Raises:
        ValueError: on an invalid ``P``, ``p``, ``tau`` or ``teleport`` (see
            :func:`stationary_flow`).

    Used in: :doc:`/book/graphs-physics/infomap-map-equation`, eq. :eq:`map-exit-flow`.
    """
    P = _check_transition(P)
    n = P.shape[0]
    p = _check_flow(p, n)
    tau = check_fraction(tau, "tau")
    v = _check_teleport(teleport, n)
    return p[:, None] * ((1.0 - tau) * P + tau * v[None, :])


def exit_flows(F: Any, modules: Any) -> NDArray[np.float64]:
    r"""Exit flow of every module: the rate of steps that leave it.

    .. math::

       q_{i\curvearrowright} = \sum_{\alpha\in i}\sum_{\beta\notin i} F_{\alpha\beta}.

    The enter flows :math:`q_{i\curvearrowleft}` are ``exit_flows(F.T, modules)``; both agree when
    :math:`F` comes from a stationary flow with recorded teleportation.

    Args:
        F: ``(n, n)`` non-negative flow matrix (see :func:`flow_matrix`).
        modules: ``(n,)`` integer module labels; module :math:`i` is the :math:`i`-th smallest
            label.

    Returns:
        ``(k,)`` exit flows, one per distinct label.

    Raises:
        ValueError: if ``F`` is not square and non-negative or ``modules`` has the wrong length.
        TypeError: if ``modules`` does not hold integers.

    Used in: :doc:`/book/graphs-physics/infomap-map-equation`, eq. :eq:`map-exit-flow`.
    """
    F = as_array(F, "F", ndim=2)
    if F.shape[0] != F.shape[1]:
        raise ValueError(f"F must be square (n, n), got shape {F.shape}")
    if np.any(F < 0):
        raise ValueError(f"F must be non-negative, got minimum {F.min():.3g}")
    M = _module_indicator(modules, F.shape[0])
    C = M.T @ F @ M
    return C.sum(axis=1) - np.diag(C)


# --- the map equation --------------------------------------------------------------------------

def _module_terms(p: Any, exit_flow: Any, modules: Any, enter_flow: Any
                  ) -> tuple[NDArray[np.float64], ...]:
    p = _check_flow(p)
    M = _module_indicator(modules, p.shape[0])
    k = M.shape[1]
    q = _check_module_flows(exit_flow, "exit_flow", k)
    e = q if enter_flow is None else _check_module_flows(enter_flow, "enter_flow", k)
    return p, M, q, e


def map_equation(p: Any, exit_flow: Any, modules: Any, enter_flow: Any = None,
                 base: float = 2.0) -> float:
    r"""Two-level map equation, as a weighted sum of codebook entropies.

    .. math::

       L(M) = q_{\curvearrowright} H(\mathcal Q)
       + \sum_{i=1}^k p_{i\circlearrowright} H(\mathcal P^i),

    with :math:`q_{\curvearrowright}=\sum_i q_{i\curvearrowright}`, :math:`\mathcal Q` the module
    use rates :math:`q_{i\curvearrowright}/q_{\curvearrowright}`,
    :math:`p_{i\circlearrowright} = q_{i\curvearrowright}+\sum_{\alpha\in i}p_\alpha` and
    :math:`\mathcal P^i = (q_{i\curvearrowright}, \{p_\alpha\}_{\alpha\in i})
    /p_{i\circlearrowright}`. If ``enter_flow`` is given, the index codebook (first term) uses the
    enter flows instead, as Infomap does for unrecorded teleportation. A module with no flow
    contributes nothing.

    Args:
        p: ``(n,)`` node flows summing to one.
        exit_flow: ``(k,)`` exit flows :math:`q_{i\curvearrowright}` (see :func:`exit_flows`).
        modules: ``(n,)`` integer module labels with :math:`k` distinct values.
        enter_flow: optional ``(k,)`` enter flows for the index codebook; default ``exit_flow``.
        base: base of the logarithm; 2 gives bits per step.

    Returns:
        :math:`L(M)` as a float.

    Raises:
        ValueError: if ``p`` is not a probability vector, a flow is negative, or shapes disagree.
        TypeError: if ``modules`` does not hold integers.

    Used in: :doc:`/book/graphs-physics/infomap-map-equation`, eq. :eq:`map-equation`.
    """
    p, M, q, e = _module_terms(p, exit_flow, modules, enter_flow)
    b = _check_base(base)
    index = 0.0
    if e.sum() > 0:
        index = e.sum() * -plogp(e / e.sum(), b).sum()
    within = M.T @ p
    total = q + within
    safe = np.where(total > 0, total, 1.0)
    node_total = M @ safe
    H_i = -(plogp(q / safe, b) + M.T @ plogp(p / node_total, b))
    return float(index + (total * H_i).sum())


def map_equation_plogp(p: Any, exit_flow: Any, modules: Any, enter_flow: Any = None,
                       base: float = 2.0) -> float:
    r"""The same map equation expanded into :math:`p\log p` terms (Infomap's bookkeeping).

    .. math::

       L(M) = \operatorname{plogp}(q_{\curvearrowleft})
       - \sum_i \operatorname{plogp}(q_{i\curvearrowleft})
       - \sum_i \operatorname{plogp}(q_{i\curvearrowright})
       - \sum_\alpha \operatorname{plogp}(p_\alpha)
       + \sum_i \operatorname{plogp}(p_{i\circlearrowright}),

    where the enter flows :math:`q_{i\curvearrowleft}` default to the exit flows, which turns the
    first three terms into :math:`\operatorname{plogp}(q_{\curvearrowright})
    - 2\sum_i\operatorname{plogp}(q_{i\curvearrowright})`.

    Args:
        p: ``(n,)`` node flows summing to one.
        exit_flow: ``(k,)`` exit flows.
        modules: ``(n,)`` integer module labels with :math:`k` distinct values.
        enter_flow: optional ``(k,)`` enter flows; default ``exit_flow``.
        base: base of the logarithm; 2 gives bits per step.

    Returns:
        :math:`L(M)` as a float.

    Raises:
        ValueError: if ``p`` is not a probability vector, a flow is negative, or shapes disagree.
        TypeError: if ``modules`` does not hold integers.

    Used in: :doc:`/book/graphs-physics/infomap-map-equation`, eq. :eq:`map-equation-plogp`.
    """
    p, M, q, e = _module_terms(p, exit_flow, modules, enter_flow)
    b = _check_base(base)
    total = q + M.T @ p
    return float(plogp(e.sum(), b) - plogp(e, b).sum() - plogp(q, b).sum()
                 - plogp(p, b).sum() + plogp(total, b).sum())


def graph_codelength(G: nx.Graph, modules: Any, tau: float, weight: str | None = "weight",
                     base: float = 2.0) -> float:
    r"""Map equation of a partition of a networkx graph, with recorded teleportation to nodes.

    Chains :func:`transition_matrix`, :func:`stationary_flow`, :func:`flow_matrix`,
    :func:`exit_flows` and :func:`map_equation`:

    .. math::

       L(M) = q_{\curvearrowright} H(\mathcal Q) + \sum_i p_{i\circlearrowright} H(\mathcal P^i),
       \qquad q_{i\curvearrowright} = \sum_{\alpha\in i}\sum_{\beta\notin i}
       p_\alpha\Bigl[(1-\tau)P_{\alpha\beta}+\frac{\tau}{n}\Bigr].

    ``tau=0`` is Infomap's model for undirected graphs; ``tau=0.15`` on a directed graph matches
    Infomap run with ``recorded_teleportation=True, to_nodes=True``.

    Args:
        G: networkx graph with :math:`n` nodes.
        modules: ``(n,)`` integer labels in the order ``list(G)``, a mapping ``{node: module}``
            or a list of node sets (see :func:`partition_labels`).
        tau: teleportation probability :math:`\tau\in[0,1]`.
        weight: edge attribute holding the weight, or ``None`` for unweighted.
        base: base of the logarithm; 2 gives bits per step.

    Returns:
        :math:`L(M)` as a float.

    Raises:
        TypeError: if ``G`` is not a networkx graph or ``modules`` has the wrong type.
        ValueError: if the partition does not match ``G`` or ``tau`` is invalid.

    Used in: :doc:`/book/graphs-physics/infomap-map-equation`, eq. :eq:`map-equation`.
    """
    P = transition_matrix(G, weight)
    labels = modules if isinstance(modules, np.ndarray) else partition_labels(G, modules)
    p = stationary_flow(P, tau)
    q = exit_flows(flow_matrix(P, p, tau), labels)
    return map_equation(p, q, labels, base=base)


# --- Monte Carlo -------------------------------------------------------------------------------

def simulate_walk(P: Any, start: Any, n_steps: int, rng: np.random.Generator, tau: float = 0.0,
                  teleport: Any = None) -> NDArray[np.int64]:
    r"""Independent random walkers with teleportation, all moved at once.

    At each step every walker at :math:`\alpha` teleports with probability :math:`\tau` to a node
    drawn from :math:`v`, and otherwise moves to :math:`\beta` with probability
    :math:`P_{\alpha\beta}`; so the next node has law :math:`(1-\tau)P_{\alpha\cdot} + \tau v`.

    Args:
        P: ``(n, n)`` row-stochastic transition matrix.
        start: ``(W,)`` integer start nodes, one per walker.
        n_steps: number of steps :math:`T \ge 1`.
        rng: a ``numpy.random.Generator``, the only source of randomness.
        tau: teleportation probability :math:`\tau\in[0,1]`.
        teleport: ``(n,)`` teleportation distribution; ``None`` for uniform.

    Returns:
        ``(T + 1, W)`` integer array of visited nodes; row 0 is ``start``.

    Raises:
        TypeError: if ``rng`` is not a Generator, ``start`` is not integer or ``n_steps`` is not an
            int.
        ValueError: if ``start`` holds a node outside :math:`0..n-1`, ``n_steps < 1``, or ``P``,
            ``tau``, ``teleport`` are invalid.

    Used in: :doc:`/book/graphs-physics/infomap-map-equation`.
    """
    P = _check_transition(P)
    n = P.shape[0]
    tau = check_fraction(tau, "tau")
    v = _check_teleport(teleport, n)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, int | np.integer):
        raise TypeError(f"n_steps must be an int, got {type(n_steps).__name__}")
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    start = np.asarray(start)
    if start.dtype == bool or not np.issubdtype(start.dtype, np.integer):
        raise TypeError(f"start must hold integer node indices, got dtype {start.dtype}")
    if start.ndim != 1 or start.size == 0:
        raise ValueError(f"start must have shape (W,) with W >= 1, got {start.shape}")
    if start.min() < 0 or start.max() >= n:
        raise ValueError(
            f"start must hold node indices in 0..{n - 1}, got {start.min()}..{start.max()}"
        )
    cum_P = np.cumsum(P, axis=1)
    cum_P[:, -1] = 1.0
    cum_v = np.cumsum(v)
    cum_v[-1] = 1.0
    W = start.size
    walk = np.empty((n_steps + 1, W), dtype=np.int64)
    walk[0] = start
    for t in range(n_steps):  # steps are sequential; the walkers are vectorised
        link = (cum_P[walk[t]] < rng.random(W)[:, None]).sum(axis=1)
        jump = rng.random(W) < tau
        hop = np.searchsorted(cum_v, rng.random(W), side="right")
        walk[t + 1] = np.minimum(np.where(jump, hop, link), n - 1)
    return walk


def walk_rates(walk: Any, modules: Any, burn_in: int = 0
               ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Visit rate of every node and exit rate of every module, per walker, by counting.

    Over the steps :math:`t = t_0,\dots,T-1` of each walker,

    .. math::

       \hat p_\alpha = \frac{\#\{t: x_t=\alpha\}}{T-t_0}, \qquad
       \hat q_{i\curvearrowright} = \frac{\#\{t: x_t\in i,\ x_{t+1}\notin i\}}{T-t_0}.

    Each walker gives one independent estimate, so their spread gives the standard error.

    Args:
        walk: ``(T + 1, W)`` integer node indices (see :func:`simulate_walk`).
        modules: ``(n,)`` integer module labels of the :math:`n` nodes.
        burn_in: number :math:`t_0` of initial steps to drop, :math:`0 \le t_0 < T`.

    Returns:
        ``(visits, exits)`` of shapes ``(W, n)`` and ``(W, k)``.

    Raises:
        TypeError: if ``walk`` or ``modules`` does not hold integers, or ``burn_in`` is not an int.
        ValueError: if ``walk`` is not 2-D with at least two rows, holds a node outside the labels,
            or ``burn_in`` is out of range.

    Used in: :doc:`/book/graphs-physics/infomap-map-equation`.
    """
    walk = np.asarray(walk)
    if walk.dtype == bool or not np.issubdtype(walk.dtype, np.integer):
        raise TypeError(f"walk must hold integer node indices, got dtype {walk.dtype}")
    if walk.ndim != 2 or walk.shape[0] < 2 or walk.shape[1] < 1:
        raise ValueError(f"walk must have shape (T + 1, W) with T, W >= 1, got {walk.shape}")
    M = _module_indicator(modules)
    n, k = M.shape
    if walk.min() < 0 or walk.max() >= n:
        raise ValueError(f"walk must hold node indices in 0..{n - 1} to match modules")
    if isinstance(burn_in, bool) or not isinstance(burn_in, int | np.integer):
        raise TypeError(f"burn_in must be an int, got {type(burn_in).__name__}")
    T, W = walk.shape[0] - 1, walk.shape[1]
    if not 0 <= burn_in < T:
        raise ValueError(f"burn_in must lie in 0..{T - 1}, got {burn_in}")
    module_of = M.argmax(axis=1)
    now, nxt = walk[burn_in:-1], walk[burn_in + 1:]
    walker = np.broadcast_to(np.arange(W), now.shape)
    visits = np.bincount((walker * n + now).ravel(), minlength=W * n).reshape(W, n)
    left = module_of[now] != module_of[nxt]
    exits = np.bincount((walker * k + module_of[now])[left], minlength=W * k).reshape(W, k)
    steps = T - burn_in
    return visits / steps, exits / steps
