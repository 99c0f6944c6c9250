"""Tests of kexue_notes.graphs_physics.map_equation: flows on a graph and the map equation of
Infomap."""

from __future__ import annotations

import warnings

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from kexue_notes.graphs_physics import map_equation as meq

FAST = settings(max_examples=40, deadline=None)


# --- helpers -----------------------------------------------------------------------------------

def random_transition(rng: np.random.Generator, n: int) -> np.ndarray:
    A = rng.random((n, n)) + 0.01
    return A / A.sum(axis=1, keepdims=True)


def random_flow(rng: np.random.Generator, n: int) -> np.ndarray:
    p = rng.random(n) + 1e-3
    return p / p.sum()


@st.composite
def flows_and_partitions(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A teleporting walk on a dense random graph and a random partition of its nodes."""
    n = draw(st.integers(2, 9))
    seed = draw(st.integers(0, 2**32 - 1))
    tau = draw(st.floats(0.0, 1.0))
    rng = np.random.default_rng(seed)
    P = random_transition(rng, n)
    p = meq.stationary_flow(P, tau)
    labels = rng.integers(0, draw(st.integers(1, n)), size=n)
    return meq.flow_matrix(P, p, tau), p, labels


def two_triangles() -> nx.Graph:
    """Two triangles joined by one edge: nodes 0-2 and 3-5, bridge 2-3."""
    return nx.Graph([(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5), (2, 3)])


# --- plogp and entropy -------------------------------------------------------------------------

def test_plogp_closed_forms() -> None:
    assert_allclose(meq.plogp([0.0, 0.5, 1.0, 4.0]), [0.0, -0.5, 0.0, 8.0], atol=1e-15)
    assert_allclose(meq.plogp(np.e, base=np.e), np.e, rtol=1e-15)
    assert meq.plogp(np.zeros((2, 3))).shape == (2, 3)
    assert_allclose(meq.plogp(torch.tensor([0.25])), [-0.5])


def test_entropy_closed_forms() -> None:
    assert meq.entropy([1.0]) == 0.0
    assert_allclose(meq.entropy(np.full(8, 1 / 8)), 3.0, rtol=1e-15)
    assert_allclose(meq.entropy([0.5, 0.25, 0.25, 0.0]), 1.5, rtol=1e-15)
    assert_allclose(meq.entropy([0.5, 0.5], base=np.e), np.log(2), rtol=1e-15)


@FAST
@given(st.integers(1, 30), st.integers(0, 2**32 - 1))
def test_entropy_between_zero_and_log_n(n: int, seed: int) -> None:
    p = random_flow(np.random.default_rng(seed), n)
    h = meq.entropy(p)
    assert -1e-12 <= h <= np.log2(n) + 1e-12


@pytest.mark.parametrize(("x", "base", "match"), [
    ([-0.1, 0.5], 2.0, "x must be non-negative"),
    ([np.nan], 2.0, "x must be finite"),
    ([0.5], 1.0, "base must differ from 1"),
    ([0.5], -2.0, "base must be finite and > 0"),
])
def test_plogp_rejects(x: list[float], base: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        meq.plogp(x, base)


def test_plogp_and_entropy_reject_types() -> None:
    with pytest.raises(TypeError, match="x must be an array"):
        meq.plogp("abc")
    with pytest.raises(TypeError, match="base must be a real number"):
        meq.plogp([0.5], "2")
    with pytest.raises(ValueError, match="p must sum to 1"):
        meq.entropy([0.5, 0.6])
    with pytest.raises(ValueError, match="p must have shape"):
        meq.entropy(np.full((2, 2), 0.5))


# --- transition matrix and partitions ----------------------------------------------------------

def test_transition_matrix_undirected_weighted() -> None:
    G = nx.Graph()
    G.add_edge("a", "b", weight=1.0)
    G.add_edge("b", "c", weight=3.0)
    assert_allclose(meq.transition_matrix(G), [[0, 1, 0], [0.25, 0, 0.75], [0, 1, 0]])
    assert_allclose(meq.transition_matrix(G, weight=None),
                    [[0, 1, 0], [0.5, 0, 0.5], [0, 1, 0]])


def test_transition_matrix_directed_with_dangling_node() -> None:
    D = nx.DiGraph([(0, 1), (0, 2), (1, 2)])
    assert_allclose(meq.transition_matrix(D),
                    [[0, 0.5, 0.5], [0, 0, 1], [1 / 3, 1 / 3, 1 / 3]])


def test_transition_matrix_rejects() -> None:
    with pytest.raises(TypeError, match="G must be a networkx Graph"):
        meq.transition_matrix(np.eye(3))
    with pytest.raises(ValueError, match="G must have at least one node"):
        meq.transition_matrix(nx.Graph())
    G = nx.Graph()
    G.add_edge(0, 1, weight=-1.0)
    with pytest.raises(ValueError, match="G's edge weights"):
        meq.transition_matrix(G)


def test_partition_labels_from_mapping_and_sets() -> None:
    G = two_triangles()
    as_sets = meq.partition_labels(G, [{3, 4, 5}, {0, 1, 2}])
    assert as_sets.tolist() == [1, 1, 1, 0, 0, 0]
    as_map = meq.partition_labels(G, {0: 7, 1: 7, 2: 7, 3: 9, 4: 9, 5: 9})
    assert as_map.tolist() == [0, 0, 0, 1, 1, 1]
    named = meq.partition_labels(G, dict.fromkeys(G, "x") | {5: "y"})
    assert named.tolist() == [0, 0, 0, 0, 0, 1]


def test_partition_labels_rejects() -> None:
    G = two_triangles()
    with pytest.raises(TypeError, match="G must be a networkx"):
        meq.partition_labels([1, 2], [{1, 2}])
    with pytest.raises(TypeError, match="communities must be a mapping"):
        meq.partition_labels(G, 3)
    with pytest.raises(ValueError, match="communities puts node 2 in two modules"):
        meq.partition_labels(G, [{0, 1, 2}, {2, 3, 4, 5}])
    with pytest.raises(ValueError, match="communities names nodes that are not in G"):
        meq.partition_labels(G, [{0, 1, 2, 99}, {3, 4, 5}])
    with pytest.raises(ValueError, match="communities leaves nodes of G without a module"):
        meq.partition_labels(G, [{0, 1, 2}, {3, 4}])


# --- stationary flow ---------------------------------------------------------------------------

def test_stationary_flow_undirected_is_strength_over_total() -> None:
    G = nx.les_miserables_graph()
    P = meq.transition_matrix(G)
    s = np.array([G.degree(v, weight="weight") for v in G], dtype=float)
    assert_allclose(meq.stationary_flow(P, 0.0), s / s.sum(), rtol=1e-12)


def test_stationary_flow_periodic_chain_and_full_teleportation() -> None:
    P = np.array([[0.0, 1.0], [1.0, 0.0]])  # bipartite: power iteration would oscillate
    assert_allclose(meq.stationary_flow(P, 0.0), [0.5, 0.5], rtol=1e-14)
    v = np.array([0.2, 0.8])
    assert_allclose(meq.stationary_flow(P, 1.0, teleport=v), v, rtol=1e-14)


@FAST
@given(st.integers(2, 12), st.floats(0.0, 1.0), st.integers(0, 2**32 - 1))
def test_stationary_flow_is_a_fixed_point(n: int, tau: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    P = random_transition(rng, n)
    v = random_flow(rng, n)
    p = meq.stationary_flow(P, tau, teleport=v)
    assert_allclose(p.sum(), 1.0, rtol=1e-13)
    assert_allclose((1 - tau) * p @ P + tau * v, p, atol=1e-13)


def test_stationary_flow_matches_power_iteration_with_dangling_node() -> None:
    P = meq.transition_matrix(nx.DiGraph([(0, 1), (1, 2), (2, 0), (2, 3)]))
    p = np.full(4, 0.25)
    for _ in range(400):
        p = 0.85 * p @ P + 0.15 / 4
    assert_allclose(meq.stationary_flow(P, 0.15), p, atol=1e-14)


def test_stationary_flow_rejects() -> None:
    P = np.eye(2)  # two closed classes
    with pytest.raises(ValueError, match="not unique; use a larger tau"):
        meq.stationary_flow(P, 0.0)
    with pytest.raises(ValueError, match="tau must lie in"):
        meq.stationary_flow(P, 1.5)
    with pytest.raises(ValueError, match="tau must be finite and >= 0"):
        meq.stationary_flow(P, -0.1)
    with pytest.raises(ValueError, match="P must sum to 1 along axis 1"):
        meq.stationary_flow([[0.5, 0.6], [0.5, 0.5]], 0.1)
    with pytest.raises(ValueError, match="P must be non-negative"):
        meq.stationary_flow([[1.5, -0.5], [0.5, 0.5]], 0.1)
    with pytest.raises(ValueError, match="P must be a non-empty square matrix"):
        meq.stationary_flow(np.full((2, 3), 1 / 3), 0.1)
    with pytest.raises(ValueError, match="P must be 2-dimensional"):
        meq.stationary_flow([1.0], 0.1)
    with pytest.raises(ValueError, match="teleport must have shape"):
        meq.stationary_flow(P, 0.1, teleport=[1.0])
    with pytest.raises(ValueError, match="teleport must sum to 1"):
        meq.stationary_flow(P, 0.1, teleport=[0.5, 0.2])


# --- flows along links and out of modules ------------------------------------------------------

@FAST
@given(flows_and_partitions())
def test_flow_matrix_margins_are_the_stationary_flow(case: tuple) -> None:
    F, p, _ = case
    assert_allclose(F.sum(), 1.0, rtol=1e-13)
    assert_allclose(F.sum(axis=1), p, atol=1e-14)
    assert_allclose(F.sum(axis=0), p, atol=1e-13)


@FAST
@given(flows_and_partitions())
def test_exit_equals_enter_for_stationary_flow(case: tuple) -> None:
    F, _, labels = case
    assert_allclose(meq.exit_flows(F, labels), meq.exit_flows(F.T, labels), atol=1e-13)


@FAST
@given(st.integers(2, 9), st.floats(0.0, 1.0), st.integers(0, 2**32 - 1))
def test_exit_flow_splits_into_teleport_and_link_parts(n: int, tau: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    P = random_transition(rng, n)
    p = meq.stationary_flow(P, tau)
    labels = rng.integers(0, 3, size=n)
    codes = np.unique(labels, return_inverse=True)[1]
    M = np.eye(codes.max() + 1)[codes]
    n_i, p_i = M.sum(axis=0), M.T @ p
    link = meq.exit_flows(meq.flow_matrix(P, p, 0.0), labels)
    expected = tau * (n - n_i) / n * p_i + (1 - tau) * link
    assert_allclose(meq.exit_flows(meq.flow_matrix(P, p, tau), labels), expected,
                    atol=1e-14)


def test_exit_flows_of_two_triangles_is_bridge_over_total() -> None:
    G = two_triangles()
    P = meq.transition_matrix(G)
    p = meq.stationary_flow(P, 0.0)
    q = meq.exit_flows(meq.flow_matrix(P, p, 0.0), np.array([0, 0, 0, 1, 1, 1]))
    assert_allclose(q, [1 / 14, 1 / 14], rtol=1e-13)  # one bridge, 2m = 14


def test_flow_and_exit_reject() -> None:
    P = np.full((3, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"p must have shape \(3,\)"):
        meq.flow_matrix(P, [0.5, 0.5], 0.1)
    with pytest.raises(ValueError, match="p must sum to 1"):
        meq.flow_matrix(P, [0.5, 0.5, 0.5], 0.1)
    with pytest.raises(ValueError, match="F must be square"):
        meq.exit_flows(np.ones((2, 3)), [0, 1])
    with pytest.raises(ValueError, match="F must be non-negative"):
        meq.exit_flows(-np.ones((2, 2)), [0, 1])
    with pytest.raises(ValueError, match="modules must have shape"):
        meq.exit_flows(P, [0, 1])
    with pytest.raises(TypeError, match="modules must hold integer labels"):
        meq.exit_flows(P, [0.0, 1.0, 1.0])
    with pytest.raises(TypeError, match="modules must be an array of integer labels"):
        meq.exit_flows(P, "abc")


# --- the map equation --------------------------------------------------------------------------

@FAST
@given(flows_and_partitions())
def test_two_level_form_equals_plogp_form(case: tuple) -> None:
    F, p, labels = case
    q = meq.exit_flows(F, labels)
    assert_allclose(meq.map_equation(p, q, labels),
                    meq.map_equation_plogp(p, q, labels), rtol=1e-12, atol=1e-12)
    e = meq.exit_flows(F.T, labels) * 1.1  # enter flows that differ from the exit flows
    assert_allclose(meq.map_equation(p, q, labels, enter_flow=e),
                    meq.map_equation_plogp(p, q, labels, enter_flow=e), rtol=1e-12, atol=1e-12)


@FAST
@given(st.integers(1, 20), st.integers(0, 2**32 - 1))
def test_one_module_gives_the_entropy(n: int, seed: int) -> None:
    p = random_flow(np.random.default_rng(seed), n)
    labels = np.zeros(n, dtype=int)
    for form in (meq.map_equation, meq.map_equation_plogp):
        assert_allclose(form(p, [0.0], labels), meq.entropy(p), rtol=1e-13)


def test_singletons_cost_entropy_plus_two_bits() -> None:
    """Each node its own module and no self-links: q_i = p_i, so L = H(p) + 2 sum p_i."""
    G = nx.les_miserables_graph()
    P = meq.transition_matrix(G)
    p = meq.stationary_flow(P, 0.0)
    labels = np.arange(len(p))
    q = meq.exit_flows(meq.flow_matrix(P, p, 0.0), labels)
    assert_allclose(q, p, rtol=1e-12)
    for form in (meq.map_equation, meq.map_equation_plogp):
        assert_allclose(form(p, q, labels), meq.entropy(p) + 2.0, rtol=1e-13)
        assert_allclose(form(p, q, labels, base=np.e), (meq.entropy(p) + 2.0) * np.log(2),
                        rtol=1e-13)


def test_two_modules_by_hand() -> None:
    """p = (1/4,)*4 in two modules with q = 1/10 each, written out term by term."""
    p = np.full(4, 0.25)
    labels = np.array([0, 0, 1, 1])
    q = np.array([0.1, 0.1])
    index = 0.2 * 1.0  # two equally used module codewords: one bit each
    tot = 0.6
    module = 2 * -(0.1 * np.log2(0.1 / tot) + 2 * 0.25 * np.log2(0.25 / tot))
    for form in (meq.map_equation, meq.map_equation_plogp):
        assert_allclose(form(p, q, labels), index + module, rtol=1e-14)


def test_graph_codelength_matches_infomap_on_karate() -> None:
    infomap = pytest.importorskip("infomap")
    G = nx.karate_club_graph()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net = infomap.Network.from_networkx(G, weight=None)
        result = infomap.run(net, seed=7, num_trials=5, two_level=True)
        modules = {net.node_id_to_label[i]: m for i, m in result.modules().items()}
    assert_allclose(meq.graph_codelength(G, modules, 0.0, weight=None), result.codelength,
                    rtol=0, atol=1e-12)
    labels = meq.partition_labels(G, modules)
    assert_allclose(meq.graph_codelength(G, labels, 0.0, weight=None), result.codelength,
                    rtol=0, atol=1e-12)


def test_graph_codelength_matches_infomap_directed_recorded() -> None:
    infomap = pytest.importorskip("infomap")
    D = nx.stochastic_block_model([5, 5], [[0.6, 0.1], [0.1, 0.6]], directed=True, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net = infomap.Network.from_networkx(D)
        result = infomap.run(net, seed=7, num_trials=5, two_level=True, directed=True,
                             recorded_teleportation=True, to_nodes=True,
                             teleportation_probability=0.15)
        modules = {net.node_id_to_label[i]: m for i, m in result.modules().items()}
    assert_allclose(meq.graph_codelength(D, modules, 0.15), result.codelength,
                    rtol=0, atol=1e-12)


def test_map_equation_rejects() -> None:
    p = np.full(4, 0.25)
    labels = np.array([0, 0, 1, 1])
    for form in (meq.map_equation, meq.map_equation_plogp):
        with pytest.raises(ValueError, match=r"exit_flow must have shape \(2,\)"):
            form(p, [0.1], labels)
        with pytest.raises(ValueError, match="exit_flow must be non-negative"):
            form(p, [0.1, -0.1], labels)
        with pytest.raises(ValueError, match=r"enter_flow must have shape \(2,\)"):
            form(p, [0.1, 0.1], labels, enter_flow=[0.1, 0.1, 0.1])
        with pytest.raises(ValueError, match="p must sum to 1"):
            form(p * 2, [0.1, 0.1], labels)
        with pytest.raises(ValueError, match=r"modules must have shape \(4,\)"):
            form(p, [0.1, 0.1], labels[:3])
        with pytest.raises(ValueError, match="base must differ from 1"):
            form(p, [0.1, 0.1], labels, base=1)


def test_graph_codelength_rejects() -> None:
    G = two_triangles()
    with pytest.raises(ValueError, match="communities leaves nodes"):
        meq.graph_codelength(G, [{0, 1, 2}], 0.0)
    with pytest.raises(ValueError, match="tau must lie in"):
        meq.graph_codelength(G, [{0, 1, 2}, {3, 4, 5}], 2.0)
    with pytest.raises(ValueError, match=r"modules must have shape \(6,\)"):
        meq.graph_codelength(G, np.zeros(5, dtype=int), 0.0)


# --- Monte Carlo -------------------------------------------------------------------------------

def test_simulate_walk_deterministic_cycle_and_teleport() -> None:
    P = np.roll(np.eye(4), 1, axis=1)  # 0 -> 1 -> 2 -> 3 -> 0
    walk = meq.simulate_walk(P, np.array([0, 2]), 5, np.random.default_rng(0))
    assert walk[:, 0].tolist() == [0, 1, 2, 3, 0, 1]
    assert walk[:, 1].tolist() == [2, 3, 0, 1, 2, 3]
    v = np.array([0.0, 0.0, 1.0, 0.0])
    jumps = meq.simulate_walk(P, np.array([0, 1, 3]), 3, np.random.default_rng(0), tau=1.0,
                                 teleport=v)
    assert (jumps[1:] == 2).all()


def test_simulate_walk_is_seeded() -> None:
    P = np.full((5, 5), 0.2)
    a = meq.simulate_walk(P, np.zeros(10, dtype=int), 20, np.random.default_rng(1), tau=0.3)
    b = meq.simulate_walk(P, np.zeros(10, dtype=int), 20, np.random.default_rng(1), tau=0.3)
    assert (a == b).all()


def test_walk_rates_count_by_hand() -> None:
    walk = np.array([[0, 3], [1, 3], [2, 2], [0, 1], [3, 0]])  # two walkers, T = 4
    visits, exits = meq.walk_rates(walk, np.array([5, 5, 8, 8]))
    assert_allclose(visits, [[0.5, 0.25, 0.25, 0.0], [0.0, 0.25, 0.25, 0.5]])
    # walker 0: 0->1 stay, 1->2 exits module 0, 2->0 exits module 1, 0->3 exits module 0
    # walker 1: 3->3, 3->2 stay, 2->1 exits module 1, 1->0 stays
    assert_allclose(exits, [[0.5, 0.25], [0.0, 0.25]])
    visits, exits = meq.walk_rates(walk, np.array([5, 5, 8, 8]), burn_in=2)
    assert_allclose(visits, [[0.5, 0.0, 0.5, 0.0], [0.0, 0.5, 0.5, 0.0]])


def test_monte_carlo_reproduces_flows_on_two_triangles() -> None:
    G = two_triangles()
    P = meq.transition_matrix(G)
    labels = np.array([0, 0, 0, 1, 1, 1])
    tau = 0.2
    p = meq.stationary_flow(P, tau)
    q = meq.exit_flows(meq.flow_matrix(P, p, tau), labels)
    rng = np.random.default_rng(0)
    walk = meq.simulate_walk(P, rng.integers(0, 6, 500), 400, rng, tau=tau)
    visits, exits = meq.walk_rates(walk, labels, burn_in=50)
    se_p = visits.std(axis=0, ddof=1) / np.sqrt(500)
    se_q = exits.std(axis=0, ddof=1) / np.sqrt(500)
    assert (np.abs(visits.mean(axis=0) - p) < 5 * se_p).all()
    assert (np.abs(exits.mean(axis=0) - q) < 5 * se_q).all()


def test_simulate_walk_and_rates_reject() -> None:
    P = np.full((3, 3), 1 / 3)
    rng = np.random.default_rng(0)
    start = np.zeros(2, dtype=int)
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator"):
        meq.simulate_walk(P, start, 3, 0)
    with pytest.raises(TypeError, match="n_steps must be an int"):
        meq.simulate_walk(P, start, 3.0, rng)
    with pytest.raises(ValueError, match="n_steps must be >= 1"):
        meq.simulate_walk(P, start, 0, rng)
    with pytest.raises(TypeError, match="start must hold integer node indices"):
        meq.simulate_walk(P, [0.0, 1.0], 3, rng)
    with pytest.raises(ValueError, match=r"start must have shape \(W,\)"):
        meq.simulate_walk(P, np.zeros((2, 2), dtype=int), 3, rng)
    with pytest.raises(ValueError, match=r"start must hold node indices in 0\.\.2"):
        meq.simulate_walk(P, np.array([0, 3]), 3, rng)
    with pytest.raises(ValueError, match="tau must lie in"):
        meq.simulate_walk(P, start, 3, rng, tau=1.1)
    walk = np.zeros((4, 2), dtype=int)
    labels = np.array([0, 1, 1])
    with pytest.raises(TypeError, match="walk must hold integer node indices"):
        meq.walk_rates(walk.astype(float), labels)
    with pytest.raises(ValueError, match=r"walk must have shape \(T \+ 1, W\)"):
        meq.walk_rates(np.zeros((1, 2), dtype=int), labels)
    with pytest.raises(ValueError, match=r"walk must hold node indices in 0\.\.2"):
        meq.walk_rates(walk + 5, labels)
    with pytest.raises(TypeError, match="burn_in must be an int"):
        meq.walk_rates(walk, labels, burn_in=1.0)
    with pytest.raises(ValueError, match=r"burn_in must lie in 0\.\.2"):
        meq.walk_rates(walk, labels, burn_in=3)
    with pytest.raises(ValueError, match=r"modules must have shape \(n,\)"):
        meq.walk_rates(walk, np.zeros((3, 1), dtype=int))
