"""Tests of kexue_notes.representations.geodesic: each function against a closed form, an
independent algorithm
(scikit-learn, networkx, scipy) or an identity, and every error path."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import integrate
from scipy.spatial.distance import cdist
from scipy.stats import spearmanr
from sklearn.datasets import make_swiss_roll
from sklearn.manifold import Isomap
from sklearn.metrics import average_precision_score

from kexue_notes.representations import geodesic as geo


def points(n: int = 60, d: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d))


def sphere(n: int = 300, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, 3))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# --- pairwise_distances -------------------------------------------------------------------------

@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_pairwise_distances_match_scipy(metric: str) -> None:
    x = points()
    D = geo.pairwise_distances(x, metric)
    assert_allclose(D, cdist(x, x, metric), rtol=1e-12, atol=1e-12)
    if metric == "euclidean":                             # brute force, by differences
        brute = np.sqrt(np.sum((x[:, None, :] - x[None, :, :]) ** 2, axis=-1))
        assert_allclose(D, brute, rtol=1e-14, atol=0)
    assert np.array_equal(D, D.T) and np.all(np.diag(D) == 0)


def test_pairwise_distances_accept_torch() -> None:
    x = points()
    assert_allclose(geo.pairwise_distances(torch.as_tensor(x)), geo.pairwise_distances(x),
                    rtol=0, atol=0)


def test_cosine_distance_is_half_the_squared_chord_of_unit_vectors() -> None:
    u = sphere(50)
    assert_allclose(geo.pairwise_distances(u, "cosine"),
                    geo.pairwise_distances(u) ** 2 / 2, rtol=1e-10, atol=1e-13)


def test_pairwise_distances_errors() -> None:
    with pytest.raises(ValueError, match="metric"):
        geo.pairwise_distances(points(), "manhattan")
    with pytest.raises(ValueError, match="X"):
        geo.pairwise_distances(np.ones(3))
    with pytest.raises(ValueError, match="X"):
        geo.pairwise_distances([[1.0, np.nan]])
    with pytest.raises(ValueError, match="X has a zero row"):
        geo.pairwise_distances([[1.0, 0.0], [0.0, 0.0]], "cosine")
    with pytest.raises(TypeError, match="X"):
        geo.pairwise_distances("abc")


# --- knn_graph ----------------------------------------------------------------------------------

def test_knn_graph_is_the_symmetrised_neighbour_graph() -> None:
    x = points(40)
    D = geo.pairwise_distances(x)
    k = 3
    W = geo.knn_graph(D, k)
    assert np.array_equal(W, W.T) and np.all(np.isinf(np.diag(W)))
    order = np.argsort(D + np.diag(np.full(40, np.inf)), axis=1)[:, :k]
    A = np.zeros((40, 40), dtype=bool)
    A[np.arange(40)[:, None], order] = True
    edge = A | A.T                                   # j in N_k(i) or i in N_k(j)
    assert np.array_equal(np.isfinite(W), edge)
    assert np.array_equal(W[edge], D[edge])
    assert np.all(np.isfinite(W).sum(axis=1) >= k)


def test_knn_graph_has_n_minus_1_neighbours_at_most() -> None:
    D = geo.pairwise_distances(points(6))
    W = geo.knn_graph(D, 5)
    assert np.array_equal(W[~np.eye(6, dtype=bool)], D[~np.eye(6, dtype=bool)])


def test_knn_graph_errors() -> None:
    D = geo.pairwise_distances(points(5))
    with pytest.raises(ValueError, match="k must be <= n - 1"):
        geo.knn_graph(D, 5)
    with pytest.raises(ValueError, match="k must be >= 1"):
        geo.knn_graph(D, 0)
    with pytest.raises(TypeError, match="k must be an integer"):
        geo.knn_graph(D, 2.0)
    with pytest.raises(ValueError, match="D must be a square"):
        geo.knn_graph(D[:3], 2)
    with pytest.raises(ValueError, match="D must be symmetric"):
        geo.knn_graph(D + np.triu(np.ones((5, 5)), 1), 2)
    with pytest.raises(ValueError, match="D must have a zero diagonal"):
        geo.knn_graph(D + np.eye(5), 2)
    with pytest.raises(ValueError, match="D must be non-negative"):
        geo.knn_graph(-D, 2)
    with pytest.raises(ValueError, match="D must not hold NaN"):
        geo.knn_graph(np.where(D > 0, np.nan, 0.0), 2)
    with pytest.raises(ValueError, match="D must be finite"):
        geo.knn_graph(np.where(D > 0, np.inf, 0.0), 2)
    dup = geo.pairwise_distances(np.vstack([points(4), points(4)[:1]]))
    with pytest.raises(ValueError, match="D is zero between the distinct points 0 and 4"):
        geo.knn_graph(dup, 2)
    with pytest.raises(TypeError, match="D must be an array"):
        geo.knn_graph("abc", 2)


# --- shortest paths -----------------------------------------------------------------------------

@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_knn_geodesic_equals_isomap(metric: str) -> None:
    x, _ = make_swiss_roll(300, noise=0.0, random_state=0)
    g = geo.knn_geodesic(x, 8, metric)
    assert np.all(np.isfinite(g)), "the test graph must be connected"
    ref = Isomap(n_neighbors=8, n_components=2, metric=metric).fit(x).dist_matrix_
    assert_allclose(g, ref, rtol=1e-11, atol=1e-12)


def test_dijkstra_floyd_warshall_and_networkx_agree() -> None:
    x = points(80, 3, seed=1)
    W = geo.knn_graph(geo.pairwise_distances(x), 4)
    g = geo.graph_geodesic(W)
    assert_allclose(geo.floyd_warshall(W), g, rtol=1e-13, atol=0)
    i, j = np.nonzero(np.isfinite(W))
    G = nx.Graph()
    G.add_nodes_from(range(80))
    G.add_weighted_edges_from(zip(i.tolist(), j.tolist(), W[i, j].tolist(), strict=True))
    ref = np.full((80, 80), np.inf)
    for src, lengths in nx.all_pairs_dijkstra_path_length(G):
        ref[src, list(lengths)] = list(lengths.values())
    assert_allclose(g, ref, rtol=1e-13, atol=0)


def test_disconnected_graph_gives_infinite_geodesics() -> None:
    x = np.vstack([points(10, 2), points(10, 2, seed=2) + 100.0])
    g = geo.knn_geodesic(x, 3)
    assert np.all(np.isinf(g[:10, 10:])) and np.all(np.isfinite(g[:10, :10]))
    assert_allclose(geo.floyd_warshall(geo.knn_graph(geo.pairwise_distances(x), 3)), g)


def test_geodesic_on_a_path_graph_is_the_sum_of_steps() -> None:
    # points on a line with steps in [0.9, 1.1]: the 2 nearest are the two adjacent points
    t = np.cumsum(np.random.default_rng(3).uniform(0.9, 1.1, 12))
    g = geo.knn_geodesic(np.c_[t, np.zeros(12)], 2)
    assert_allclose(g, np.abs(t[:, None] - t[None, :]), rtol=1e-12, atol=1e-12)


def test_geodesic_on_the_sphere_approaches_the_great_circle() -> None:
    u = sphere(600)
    g = geo.knn_geodesic(u, 10)
    theta = geo.sphere_geodesic(u)
    off = ~np.eye(600, dtype=bool)
    rel = np.abs(g - theta)[off] / theta[off]
    chord = np.abs(geo.pairwise_distances(u) - theta)[off] / theta[off]
    assert np.all(g[off] >= geo.pairwise_distances(u)[off] - 1e-12)   # never below the chord
    assert np.median(rel) < 0.1 and np.median(rel) < np.median(chord)


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=5, max_value=40), st.integers(min_value=1, max_value=4),
       st.integers(min_value=0, max_value=10_000))
def test_geodesic_is_a_metric_above_the_direct_distance(n: int, k: int, seed: int) -> None:
    """With a metric as the local distance: g >= delta, g = delta on edges, g obeys the triangle
    inequality, and the k nearest neighbours agree exactly."""
    x = points(n, 3, seed)
    D = geo.pairwise_distances(x)
    W = geo.knn_graph(D, min(k, n - 1))
    g = geo.graph_geodesic(W)
    assert np.all(g >= D - 1e-12)
    edge = np.isfinite(W)
    assert_allclose(g[edge], D[edge], rtol=1e-12)
    fin = np.isfinite(g)
    via = np.min(g[:, :, None] + g[None, :, :], axis=1)        # min over intermediate points
    assert np.all(g[fin] <= via[fin] + 1e-9)
    if np.all(fin):
        assert np.all(geo.neighbour_overlap(D, g, min(k, n - 1)) == 1.0)


def test_shortest_path_errors() -> None:
    W = geo.knn_graph(geo.pairwise_distances(points(6)), 2)
    for f in (geo.graph_geodesic, geo.floyd_warshall):
        with pytest.raises(ValueError, match="W must be a square"):
            f(W[:3])
        with pytest.raises(ValueError, match="W must not hold NaN"):
            f(np.where(np.isinf(W), np.nan, W))
        with pytest.raises(ValueError, match="W must be non-negative"):
            f(-W)
        with pytest.raises(TypeError, match="W must be an array"):
            f("abc")
    with pytest.raises(ValueError, match="W must be symmetric"):
        geo.floyd_warshall(W + np.triu(np.ones((6, 6)), 1))


def test_floyd_warshall_accepts_torch_and_zero_as_no_edge() -> None:
    W = geo.knn_graph(geo.pairwise_distances(points(20)), 3)
    W0 = np.where(np.isinf(W), 0.0, W)
    assert_allclose(geo.floyd_warshall(torch.as_tensor(W0)), geo.graph_geodesic(W), rtol=1e-13)


# --- query_geodesic and geodesic_score ---------------------------------------------------------

@pytest.mark.parametrize("k", [1, 3, 7])
def test_query_geodesic_equals_the_graph_with_the_query_attached(k: int) -> None:
    """Attach the query to its k nearest points only, leave the graph alone: Dijkstra on the
    augmented graph must give the same distances from the query."""
    x = points(50, 3, seed=4)
    c = np.random.default_rng(5).standard_normal(3)
    W = geo.knn_graph(geo.pairwise_distances(x), 4)
    g = geo.graph_geodesic(W)
    d = np.linalg.norm(x - c, axis=1)
    W_aug = np.full((51, 51), np.inf)
    W_aug[:50, :50] = W
    nbrs = np.argsort(d)[:k]
    W_aug[50, nbrs] = W_aug[nbrs, 50] = d[nbrs]
    ref = geo.graph_geodesic(W_aug)[50, :50]
    assert_allclose(geo.query_geodesic(g, d, k), ref, rtol=1e-13)
    assert np.all(geo.query_geodesic(g, d, k) >= d * (1 - 1e-12))   # never below the direct one


def test_query_geodesic_with_all_neighbours_is_a_minimum_over_all_entries() -> None:
    g = geo.knn_geodesic(points(20), 3)
    d = np.random.default_rng(6).uniform(1.0, 2.0, 20)
    assert_allclose(geo.query_geodesic(g, d, 20), np.min(d[:, None] + g, axis=0))


def test_query_geodesic_errors() -> None:
    g = geo.knn_geodesic(points(5), 2)
    with pytest.raises(ValueError, match="d must have shape"):
        geo.query_geodesic(g, np.ones(4), 2)
    with pytest.raises(ValueError, match="d must be non-negative"):
        geo.query_geodesic(g, -np.ones(5), 2)
    with pytest.raises(ValueError, match="k must be <= n = 5"):
        geo.query_geodesic(g, np.ones(5), 6)
    with pytest.raises(TypeError, match="k must be an integer"):
        geo.query_geodesic(g, np.ones(5), 1.5)
    with pytest.raises(ValueError, match="g must be a square"):
        geo.query_geodesic(g[:2], np.ones(5), 2)


def test_geodesic_score_is_the_reciprocal_distance() -> None:
    assert_allclose(geo.geodesic_score([0.5, 0.0, np.inf, 4.0]), [2.0, np.inf, 0.0, 0.25])
    assert_allclose(geo.geodesic_score(torch.tensor([2.0])), [0.5])


def test_geodesic_score_errors() -> None:
    with pytest.raises(ValueError, match="d must be 1-dimensional"):
        geo.geodesic_score(np.ones((2, 2)))
    with pytest.raises(ValueError, match="d must be non-negative and not NaN"):
        geo.geodesic_score([1.0, -1.0])
    with pytest.raises(ValueError, match="d must be non-negative and not NaN"):
        geo.geodesic_score([np.nan])
    with pytest.raises(TypeError, match="d must be an array"):
        geo.geodesic_score("abc")


# --- exact geodesics of the test manifolds ------------------------------------------------------

def test_sphere_geodesic_and_chord() -> None:
    u = sphere(100)
    theta = geo.sphere_geodesic(3.0 * u)                      # scale does not matter
    assert_allclose(geo.pairwise_distances(u), 2 * np.sin(theta / 2), rtol=1e-9, atol=1e-12)
    assert_allclose(geo.sphere_geodesic([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0]]),
                    [[0, np.pi, np.pi / 2], [np.pi, 0, np.pi / 2], [np.pi / 2, np.pi / 2, 0]])


def test_sphere_geodesic_errors() -> None:
    with pytest.raises(ValueError, match="X has a zero row"):
        geo.sphere_geodesic([[0.0, 0.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match="X must be 2-dimensional"):
        geo.sphere_geodesic([1.0, 0.0])


@settings(max_examples=50, deadline=None)
@given(st.floats(min_value=-20, max_value=20, allow_nan=False))
def test_spiral_arc_length_is_the_integral_of_the_speed(t: float) -> None:
    ref, _ = integrate.quad(lambda u: np.sqrt(1 + u**2), 0.0, t)
    assert_allclose(geo.spiral_arc_length(t), ref, rtol=1e-10, atol=1e-12)


def test_swiss_roll_geodesic_by_a_fine_polyline() -> None:
    """Two points at the same height: the geodesic runs along the spiral; a fine polyline on the
    roll measures the same length."""
    t = np.linspace(1.5 * np.pi, 4.5 * np.pi, 20_001)
    curve = np.c_[t * np.cos(t), t * np.sin(t)]
    polyline = np.sum(np.linalg.norm(np.diff(curve, axis=0), axis=1))
    g = geo.swiss_roll_geodesic([t[0], t[-1]], [3.0, 3.0])
    assert_allclose(g[0, 1], polyline, rtol=1e-7)
    g2 = geo.swiss_roll_geodesic([t[0], t[0]], [0.0, 5.0])   # straight along the axis
    assert_allclose(g2[0, 1], 5.0, rtol=1e-14)


def test_swiss_roll_geodesic_is_approached_by_the_knn_geodesic() -> None:
    x, t = make_swiss_roll(800, noise=0.0, random_state=0)
    true = geo.swiss_roll_geodesic(t, x[:, 1])
    g = geo.knn_geodesic(x, 10)
    off = ~np.eye(800, dtype=bool)
    assert np.median(np.abs(g - true)[off] / true[off]) < 0.08
    assert spearmanr(g[off], true[off]).statistic > 0.99


def test_swiss_roll_geodesic_errors() -> None:
    with pytest.raises(ValueError, match="h must have shape"):
        geo.swiss_roll_geodesic([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="t must be 1-dimensional"):
        geo.swiss_roll_geodesic([[1.0]], [1.0])
    with pytest.raises(ValueError, match="t must be finite"):
        geo.spiral_arc_length(np.inf)


# --- comparing distance matrices ----------------------------------------------------------------

def test_neighbour_overlap_and_row_spearman_by_brute_force() -> None:
    x = points(30)
    A = geo.pairwise_distances(x)
    B = geo.pairwise_distances(x, "cosine")
    for m in (1, 5, 29):
        want = [len(set(np.argsort(np.r_[A[i, :i], A[i, i + 1:]])[:m])
                    & set(np.argsort(np.r_[B[i, :i], B[i, i + 1:]])[:m])) / m for i in range(30)]
        assert_allclose(geo.neighbour_overlap(A, B, m), want)
    assert np.all(geo.neighbour_overlap(A, B, 29) == 1.0)
    want = [spearmanr(np.delete(A[i], i), np.delete(B[i], i)).statistic for i in range(30)]
    assert_allclose(geo.row_spearman(A, B), want, rtol=1e-12)
    assert_allclose(geo.row_spearman(A, A), 1.0, rtol=1e-14)
    assert_allclose(geo.row_spearman(A, A**2 + 3 * A), 1.0, rtol=1e-14)  # monotone map


def test_comparison_errors() -> None:
    A = geo.pairwise_distances(points(5))
    with pytest.raises(ValueError, match="B must have the shape of A"):
        geo.neighbour_overlap(A, A[:4, :4], 2)
    with pytest.raises(ValueError, match="m must be <= n - 1"):
        geo.neighbour_overlap(A, A, 5)
    with pytest.raises(TypeError, match="m must be an integer"):
        geo.neighbour_overlap(A, A, "2")
    with pytest.raises(ValueError, match="B must have the shape of A"):
        geo.row_spearman(A, A[:4, :4])
    with pytest.raises(ValueError, match="A must hold at least 3 points"):
        geo.row_spearman(A[:2, :2], A[:2, :2])
    with pytest.raises(ValueError, match="B must be finite"):
        geo.row_spearman(A, np.where(A > 0, np.inf, 0.0))
    flat = np.ones((4, 4)) - np.eye(4)
    with pytest.raises(ValueError, match="A has a row whose distances are all equal"):
        geo.row_spearman(flat, A[:4, :4])
    with pytest.raises(ValueError, match="A must be non-negative"):
        geo.neighbour_overlap(-A, A, 2)


def test_average_precision_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    s = rng.standard_normal(200)
    rel = rng.random(200) < 0.3
    assert_allclose(geo.average_precision(s, rel), average_precision_score(rel, s), rtol=1e-12)
    assert geo.average_precision([3.0, 2.0, 1.0], np.array([True, False, True])) == \
        pytest.approx((1 + 2 / 3) / 2)
    # a tie is scored pessimistically: the relevant item goes last
    assert geo.average_precision([1.0, 1.0], np.array([False, True])) == pytest.approx(0.5)
    assert geo.average_precision([np.inf, 1.0], np.array([True, False])) == 1.0


def test_average_precision_errors() -> None:
    with pytest.raises(TypeError, match="relevant must be boolean"):
        geo.average_precision([1.0, 2.0], [1, 0])
    with pytest.raises(ValueError, match="scores and relevant must have the same"):
        geo.average_precision([1.0, 2.0], np.array([True]))
    with pytest.raises(ValueError, match="scores must not hold NaN"):
        geo.average_precision([np.nan, 2.0], np.array([True, False]))
    with pytest.raises(ValueError, match="relevant must mark at least one"):
        geo.average_precision([1.0, 2.0], np.array([False, False]))
