r"""Approximate geodesic distances: trust local distances, chain them through a k-NN graph.

Points :math:`x_1, \dots, x_n \in \mathbb{R}^d` (sentence embeddings, say) are assumed to lie near a
curved manifold. A distance :math:`\delta(x_i, x_j)` measured straight through the ambient space is
trusted only between near points. Keep, for every point, the edges to its :math:`k` nearest
neighbours, weighted by :math:`\delta`; the shortest path through that graph,

.. math::

   g(x_i, x_j) = \min_{\text{paths } i = p_0, p_1, \dots, p_m = j}\ \sum_{r=1}^{m}
   \delta(x_{p_{r-1}}, x_{p_r}),

approximates the geodesic distance along the manifold. This is the first stage of Isomap
(Tenenbaum, de Silva and Langford, 2000), and the distance that Basu Roy Chowdhury et al. (2023)
use to score sentences against a topic, :math:`s_i = 1/g(x_i, c)`.

The module reads in the order of the method: the local distances, the symmetric k-NN graph, its
shortest paths (Dijkstra through ``scipy.sparse.csgraph``, and an independent dense
Floyd–Warshall), the distances from a new query point, the score; then the exact geodesics of two
test manifolds (the sphere and the Swiss roll); and last the measures that compare two distance
matrices: nearest-neighbour overlap, row-wise Spearman correlation, and average precision.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse.csgraph import shortest_path
from scipy.spatial.distance import pdist, squareform
from scipy.stats import rankdata

from kexue_notes._validate import as_array, check_count

__all__ = [  # noqa: RUF022 -- in the order of the method, as the module reads
    "pairwise_distances",
    "knn_graph",
    "graph_geodesic",
    "knn_geodesic",
    "floyd_warshall",
    "query_geodesic",
    "geodesic_score",
    "sphere_geodesic",
    "spiral_arc_length",
    "swiss_roll_geodesic",
    "neighbour_overlap",
    "row_spearman",
    "average_precision",
]

METRICS = ("euclidean", "cosine")


def _check_square(D: Any, name: str) -> NDArray[np.float64]:
    """A square matrix with a zero diagonal and no negative or NaN entries (inf allowed)."""
    if hasattr(D, "detach"):
        D = D.detach().cpu().numpy()
    try:
        D = np.asarray(D, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array of numbers, got {type(D).__name__}") from err
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(f"{name} must be a square (n, n) matrix, got shape {D.shape}")
    if np.any(np.isnan(D)):
        raise ValueError(f"{name} must not hold NaN")
    if np.any(D < 0):
        raise ValueError(f"{name} must be non-negative, got minimum {D.min():.3g}")
    if np.any(np.diag(D) != 0):
        raise ValueError(f"{name} must have a zero diagonal")
    return D


# --- the local distances and the k-NN graph ----------------------------------------------------

def pairwise_distances(X: Any, metric: str = "euclidean") -> NDArray[np.float64]:
    r"""All pairwise local distances :math:`\delta(x_i, x_j)` between the rows of ``X``.

    .. math::

       \delta_{\mathrm{euc}}(x_i, x_j) = \lVert x_i - x_j \rVert, \qquad
       \delta_{\cos}(x_i, x_j) = 1 - \frac{x_i \cdot x_j}{\lVert x_i\rVert\,\lVert x_j\rVert}.

    The Euclidean distance is computed pair by pair (``scipy.spatial.distance.pdist``), so equal
    points are exactly zero apart; the cosine distance from the normalised Gram matrix. Both
    matrices are exactly symmetric with a zero diagonal. The cosine distance is not a metric (for
    unit vectors it is half the squared chord), which matters once it is summed along paths.

    Args:
        X: points, shape ``(n, d)``; for ``"cosine"`` no row may be zero.
        metric: ``"euclidean"`` or ``"cosine"``.

    Returns:
        The ``(n, n)`` matrix of :math:`\delta(x_i, x_j)`.

    Raises:
        ValueError: if ``X`` is not 2-D or not finite, ``metric`` is unknown, or a row is zero
            under ``"cosine"``.
        TypeError: if ``X`` is not numeric.

    Used in: :doc:`/book/representations/geodesic-semantic-similarity`, eq. :eq:`geo-local-dist`.
    """
    X = as_array(X, "X", ndim=2)
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if metric == "cosine":
        norms = np.linalg.norm(X, axis=1)
        if np.any(norms == 0):
            raise ValueError(f"X has a zero row (index {int(np.argmin(norms))}); "
                             "its cosine distance is undefined")
        U = X / norms[:, None]
        D = 1.0 - U @ U.T
        D = np.maximum((D + D.T) / 2.0, 0.0)
    else:
        D = squareform(pdist(X, "euclidean"))
    np.fill_diagonal(D, 0.0)
    return D


def knn_graph(D: Any, k: int) -> NDArray[np.float64]:
    r"""Weight matrix of the symmetric :math:`k`-nearest-neighbour graph of a distance matrix.

    With :math:`N_k(i)` the :math:`k` points nearest to :math:`i` (itself excluded),

    .. math::

       W_{ij} = \begin{cases} \delta_{ij} & \text{if } j \in N_k(i) \text{ or } i \in N_k(j),\\
       \infty & \text{otherwise (no edge; also on the diagonal).} \end{cases}

    This is the undirected graph that ``sklearn.manifold.Isomap`` searches (its directed
    neighbour graph read with ``directed=False``). Ties at the :math:`k`-th distance are broken
    arbitrarily.

    Args:
        D: distances, shape ``(n, n)``, symmetric, zero diagonal, positive off the diagonal.
        k: number of neighbours, ``1 <= k <= n - 1``.

    Returns:
        ``W``, shape ``(n, n)``, symmetric, ``inf`` where there is no edge.

    Raises:
        ValueError: if ``D`` is not a valid distance matrix (shape, NaN, negative, nonzero
            diagonal, not symmetric, a zero distance between two different points) or ``k`` is out
            of range.
        TypeError: if ``k`` is not an integer.

    Used in: :doc:`/book/representations/geodesic-semantic-similarity`, eq. :eq:`geo-knn-graph`.
    """
    D = _check_square(D, "D")
    n = D.shape[0]
    if not np.all(np.isfinite(D)):
        raise ValueError("D must be finite")
    if not np.allclose(D, D.T, rtol=1e-12, atol=0):
        raise ValueError("D must be symmetric")
    off = D + np.diag(np.full(n, np.inf))
    if np.any(off == 0):
        i, j = np.argwhere(off == 0)[0]
        raise ValueError(f"D is zero between the distinct points {i} and {j}; "
                         "remove duplicate points first")
    k = check_count(k, "k")
    if k > n - 1:
        raise ValueError(f"k must be <= n - 1 = {n - 1}, got {k}")
    nbrs = np.argpartition(off, k - 1, axis=1)[:, :k]          # N_k(i), unordered
    rows = np.repeat(np.arange(n), k)
    A = np.full((n, n), np.inf)
    A[rows, nbrs.ravel()] = off[rows, nbrs.ravel()]
    return np.fmin(A, A.T)                                     # j in N_k(i) or i in N_k(j)


# --- shortest paths ------------------------------------------------------------------------------

def graph_geodesic(W: Any) -> NDArray[np.float64]:
    r"""Shortest-path lengths through a weighted undirected graph (Dijkstra, by scipy).

    .. math::

       g_{ij} = \min_{i = p_0, \dots, p_m = j}\ \sum_{r=1}^{m} W_{p_{r-1} p_r},

    computed by ``scipy.sparse.csgraph.shortest_path(method="D", directed=False)``. Pairs in
    different connected components get :math:`g_{ij} = \infty`.

    Args:
        W: weights, shape ``(n, n)``, positive on edges, ``inf`` (or 0) where there is no edge.

    Returns:
        ``g``, shape ``(n, n)``, symmetric with a zero diagonal.

    Raises:
        ValueError: if ``W`` is not square, holds NaN or a negative weight.
        TypeError: if ``W`` is not numeric.

    Used in: :doc:`/book/representations/geodesic-semantic-similarity`, eq. :eq:`geo-shortest-path`.
    """
    W = _check_weights(W)
    return shortest_path(W, method="D", directed=False)


def knn_geodesic(X: Any, k: int, metric: str = "euclidean") -> NDArray[np.float64]:
    r"""Approximate geodesic distances between the rows of ``X`` through their k-NN graph.

    The composition :func:`pairwise_distances` :math:`\to` :func:`knn_graph` :math:`\to`
    :func:`graph_geodesic`:

    .. math::

       g_{ij} = \min_{\text{paths in the } k\text{-NN graph}}\ \sum_{\text{edges } (a,b)}
       \delta(x_a, x_b).

    Args:
        X: points, shape ``(n, d)``, no two equal.
        k: number of neighbours, ``1 <= k <= n - 1``.
        metric: local distance, ``"euclidean"`` or ``"cosine"``.

    Returns:
        ``g``, shape ``(n, n)``; ``inf`` between points the graph does not connect.

    Raises:
        ValueError: as :func:`pairwise_distances` and :func:`knn_graph`.
        TypeError: if ``X`` is not numeric or ``k`` not an integer.

    Used in: :doc:`/book/representations/geodesic-semantic-similarity`, eq. :eq:`geo-shortest-path`.
    """
    return graph_geodesic(knn_graph(pairwise_distances(X, metric), k))


def floyd_warshall(W: Any) -> NDArray[np.float64]:
    r"""Shortest-path lengths by the Floyd–Warshall recursion, dense and in NumPy.

    Starting from :math:`g^{(0)} = W` (zero diagonal), allow one more intermediate node at a time:

    .. math::

       g^{(m)}_{ij} = \min\big(g^{(m-1)}_{ij},\ g^{(m-1)}_{im} + g^{(m-1)}_{mj}\big),
       \qquad m = 1, \dots, n .

    Each step is one vectorised :math:`n \times n` minimum, so the cost is :math:`O(n^3)`; it is an
    independent check of :func:`graph_geodesic` for graphs of a few hundred nodes.

    Args:
        W: weights, shape ``(n, n)``, symmetric, positive on edges, ``inf`` (or 0) where there is
            no edge.

    Returns:
        ``g``, shape ``(n, n)``.

    Raises:
        ValueError: if ``W`` is not square, holds NaN or a negative weight, or is not symmetric.
        TypeError: if ``W`` is not numeric.

    Used in: :doc:`/book/representations/geodesic-semantic-similarity`, eq. :eq:`geo-shortest-path`.
    """
    g = _check_weights(W).copy()
    if not np.array_equal(g, g.T):
        raise ValueError("W must be symmetric (an undirected graph)")
    g[g == 0] = np.inf
    np.fill_diagonal(g, 0.0)
    for m in range(g.shape[0]):      # over intermediate nodes: the recursion is sequential in m
        np.minimum(g, g[:, m:m + 1] + g[m:m + 1, :], out=g)
    return g


def _check_weights(W: Any) -> NDArray[np.float64]:
    if hasattr(W, "detach"):
        W = W.detach().cpu().numpy()
    try:
        W = np.array(W, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"W must be an array of numbers, got {type(W).__name__}") from err
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"W must be a square (n, n) matrix, got shape {W.shape}")
    if np.any(np.isnan(W)):
        raise ValueError("W must not hold NaN")
    if np.any(W < 0):
        raise ValueError(f"W must be non-negative, got minimum {W.min():.3g}")
    return W


def query_geodesic(g: Any, d: Any, k: int) -> NDArray[np.float64]:
    r"""Geodesic distances from a new point (a query) to every point of an existing graph.

    The query :math:`c` is linked to its :math:`k` nearest graph points :math:`N_k(c)` and the graph
    itself is left unchanged, so every shortest path leaves :math:`c` through one of those edges:

    .. math::

       g(c, x_i) = \min_{j \in N_k(c)} \big(\delta(c, x_j) + g_{ji}\big).

    Args:
        g: geodesic distances of the graph, shape ``(n, n)`` (from :func:`graph_geodesic`).
        d: local distances :math:`\delta(c, x_j)` from the query to the graph points, shape
            ``(n,)``.
        k: number of neighbours of the query, ``1 <= k <= n``.

    Returns:
        :math:`g(c, x_i)`, shape ``(n,)``; ``inf`` for points not connected to the query.

    Raises:
        ValueError: if ``g`` is not a valid distance matrix, ``d`` has the wrong shape, is negative
            or not finite, or ``k`` is out of range.
        TypeError: if ``k`` is not an integer.

    Used in: :doc:`/book/representations/geodesic-semantic-similarity`, eq. :eq:`geo-query`.
    """
    g = _check_square(g, "g")
    n = g.shape[0]
    d = as_array(d, "d", shape=(n,))
    if np.any(d < 0):
        raise ValueError(f"d must be non-negative, got minimum {d.min():.3g}")
    k = check_count(k, "k")
    if k > n:
        raise ValueError(f"k must be <= n = {n}, got {k}")
    nbrs = np.argpartition(d, k - 1)[:k]
    return np.min(d[nbrs, None] + g[nbrs, :], axis=0)


def geodesic_score(d: Any) -> NDArray[np.float64]:
    r"""Relevance of every point to a centre: the reciprocal of its distance to the centre.

    .. math::

       s_i = \frac{1}{d_i}, \qquad d_i = d(x_i, c),

    with :math:`s_i = \infty` where :math:`d_i = 0` (the centre itself) and :math:`s_i = 0` where
    :math:`d_i = \infty` (not connected). ``d`` may come from any distance: the direct one, or the
    geodesic one of :func:`knn_geodesic` or :func:`query_geodesic`.

    Args:
        d: distances to the centre, shape ``(n,)``, non-negative (``inf`` allowed).

    Returns:
        Scores ``s``, shape ``(n,)``.

    Raises:
        ValueError: if ``d`` is not 1-D, holds NaN or a negative value.
        TypeError: if ``d`` is not numeric.

    Used in: :doc:`/book/representations/geodesic-semantic-similarity`, eq. :eq:`geo-score`.
    """
    if hasattr(d, "detach"):
        d = d.detach().cpu().numpy()
    try:
        d = np.asarray(d, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"d must be an array of numbers, got {type(d).__name__}") from err
    if d.ndim != 1:
        raise ValueError(f"d must be 1-dimensional, got shape {d.shape}")
    if np.any(np.isnan(d)) or np.any(d < 0):
        raise ValueError("d must be non-negative and not NaN")
    with np.errstate(divide="ignore"):
        return 1.0 / d


# --- exact geodesics of two test manifolds -------------------------------------------------------

def sphere_geodesic(X: Any) -> NDArray[np.float64]:
    r"""Great-circle distances between points of the unit sphere: the angle between them.

    .. math::

       \theta_{ij} = \arccos\langle x_i, x_j\rangle, \qquad
       \lVert x_i - x_j\rVert = 2\sin\frac{\theta_{ij}}{2}.

    The rows are normalised first and the inner product clipped to :math:`[-1, 1]`.

    Args:
        X: points, shape ``(n, d)``, no zero row.

    Returns:
        ``theta``, shape ``(n, n)``, in :math:`[0, \pi]`.

    Raises:
        ValueError: if ``X`` is not 2-D, not finite, or has a zero row.
        TypeError: if ``X`` is not numeric.

    Used in: :doc:`/book/representations/geodesic-semantic-similarity`, eq. :eq:`geo-sphere-chord`.
    """
    X = as_array(X, "X", ndim=2)
    norms = np.linalg.norm(X, axis=1)
    if np.any(norms == 0):
        raise ValueError(f"X has a zero row (index {int(np.argmin(norms))})")
    U = X / norms[:, None]
    theta = np.arccos(np.clip(U @ U.T, -1.0, 1.0))
    theta = (theta + theta.T) / 2.0
    np.fill_diagonal(theta, 0.0)
    return theta


def spiral_arc_length(t: Any) -> NDArray[np.float64]:
    r"""Arc length of the spiral :math:`(t\cos t, t\sin t)` from :math:`0` to :math:`t`.

    .. math::

       \sigma(t) = \int_0^t \sqrt{1 + u^2}\,\mathrm{d}u
       = \tfrac12\big(t\sqrt{1+t^2} + \operatorname{arsinh} t\big).

    Args:
        t: spiral parameters, any shape.

    Returns:
        :math:`\sigma(t)`, same shape as ``t``.

    Raises:
        ValueError: if ``t`` holds NaN or infinity.
        TypeError: if ``t`` is not numeric.

    Used in: :doc:`/book/representations/geodesic-semantic-similarity`, eq. :eq:`geo-swiss-roll`.
    """
    t = as_array(t, "t")
    return 0.5 * (t * np.sqrt(1.0 + t**2) + np.arcsinh(t))


def swiss_roll_geodesic(t: Any, h: Any) -> NDArray[np.float64]:
    r"""Exact geodesic distances on the Swiss roll :math:`(t\cos t,\ h,\ t\sin t)`.

    The roll is a spiral swept along a straight line, so it unrolls onto the plane with
    coordinates :math:`(\sigma(t), h)` (:func:`spiral_arc_length`) without stretching:

    .. math::

       g_{ij} = \sqrt{\big(\sigma(t_i) - \sigma(t_j)\big)^2 + (h_i - h_j)^2}.

    Args:
        t: spiral parameters, shape ``(n,)`` (``sklearn.datasets.make_swiss_roll`` returns them).
        h: heights along the axis, shape ``(n,)`` (the second coordinate of that data set).

    Returns:
        ``g``, shape ``(n, n)``.

    Raises:
        ValueError: if the shapes differ or are not 1-D, or an input is not finite.
        TypeError: if an input is not numeric.

    Used in: :doc:`/book/representations/geodesic-semantic-similarity`, eq. :eq:`geo-swiss-roll`.
    """
    t = as_array(t, "t", ndim=1)
    h = as_array(h, "h", shape=t.shape)
    flat = np.stack([spiral_arc_length(t), h], axis=1)
    return pairwise_distances(flat, "euclidean")


# --- comparing two distance matrices -------------------------------------------------------------

def _ranked_neighbours(D: NDArray[np.float64]) -> NDArray[np.int64]:
    """Indices of every row's other points from nearest to farthest (self last), shape (n, n)."""
    off = D + np.diag(np.full(D.shape[0], np.inf))
    return np.argsort(off, axis=1, kind="stable")


def neighbour_overlap(A: Any, B: Any, m: int) -> NDArray[np.float64]:
    r"""Share of the :math:`m` nearest neighbours that two distance matrices agree on, per point.

    .. math::

       \mathrm{overlap}_i(m) = \frac{\lvert N^A_m(i) \cap N^B_m(i)\rvert}{m},

    with :math:`N^A_m(i)` the :math:`m` points nearest to :math:`i` under ``A`` (itself excluded).

    Args:
        A: distances, shape ``(n, n)``, zero diagonal.
        B: distances, shape ``(n, n)``, zero diagonal.
        m: neighbourhood size, ``1 <= m <= n - 1``.

    Returns:
        The ``n`` overlaps, each in :math:`[0, 1]`.

    Raises:
        ValueError: if a matrix is invalid, the shapes differ, or ``m`` is out of range.
        TypeError: if ``m`` is not an integer.

    Used in: :doc:`/book/representations/geodesic-semantic-similarity`, eq. :eq:`geo-local-agree`.
    """
    A = _check_square(A, "A")
    B = _check_square(B, "B")
    if A.shape != B.shape:
        raise ValueError(f"B must have the shape of A, {A.shape}, got {B.shape}")
    n = A.shape[0]
    m = check_count(m, "m")
    if m > n - 1:
        raise ValueError(f"m must be <= n - 1 = {n - 1}, got {m}")
    in_a = np.zeros((n, n), dtype=bool)
    rows = np.arange(n)[:, None]
    in_a[rows, _ranked_neighbours(A)[:, :m]] = True
    return in_a[rows, _ranked_neighbours(B)[:, :m]].sum(axis=1) / m


def row_spearman(A: Any, B: Any) -> NDArray[np.float64]:
    r"""Spearman correlation between the rankings that two distance matrices give each point.

    For point :math:`i`, rank the other :math:`n-1` points by :math:`A_{i\cdot}` and by
    :math:`B_{i\cdot}` (average ranks for ties) and take the Pearson correlation of the ranks:

    .. math::

       \rho_i = \operatorname{corr}\big(\operatorname{rank}(A_{ij})_{j\ne i},\
       \operatorname{rank}(B_{ij})_{j\ne i}\big).

    Args:
        A: distances, shape ``(n, n)``, zero diagonal, finite, ``n >= 3``.
        B: distances, same shape.

    Returns:
        The ``n`` correlations :math:`\rho_i` in :math:`[-1, 1]`.

    Raises:
        ValueError: if a matrix is invalid or not finite, the shapes differ, ``n < 3``, or a row
            has all its distances equal (no ranking).

    Used in: :doc:`/book/representations/geodesic-semantic-similarity`.
    """
    A = _check_square(A, "A")
    B = _check_square(B, "B")
    if A.shape != B.shape:
        raise ValueError(f"B must have the shape of A, {A.shape}, got {B.shape}")
    n = A.shape[0]
    if n < 3:
        raise ValueError(f"A must hold at least 3 points, got {n}")
    mask = ~np.eye(n, dtype=bool)
    ranks = []
    for name, M in (("A", A), ("B", B)):
        if not np.all(np.isfinite(M)):
            raise ValueError(f"{name} must be finite (a disconnected graph has no ranking)")
        r = rankdata(M[mask].reshape(n, n - 1), axis=1)
        r -= r.mean(axis=1, keepdims=True)
        norm = np.linalg.norm(r, axis=1)
        if np.any(norm == 0):
            raise ValueError(f"{name} has a row whose distances are all equal (no ranking)")
        ranks.append(r / norm[:, None])
    return np.einsum("ij,ij->i", *ranks)


def average_precision(scores: Any, relevant: Any) -> float:
    r"""Average precision of a ranking by score against a set of relevant items.

    Sort the items by decreasing score; with :math:`P@r` the share of relevant items among the
    first :math:`r` and :math:`R` the number of relevant items,

    .. math::

       \mathrm{AP} = \frac{1}{R} \sum_{r\,:\ \text{item } r \text{ relevant}} P@r .

    Ties in the scores are broken in the pessimistic order (relevant items last among equals), so
    the value never rewards a tie; without ties it equals
    ``sklearn.metrics.average_precision_score``.

    Args:
        scores: scores, shape ``(n,)``; ``+inf`` is allowed (a distance of zero).
        relevant: booleans, shape ``(n,)``, at least one ``True``.

    Returns:
        AP in :math:`(0, 1]`.

    Raises:
        ValueError: if the shapes differ, ``scores`` holds NaN or ``-inf``, or nothing is
            relevant.
        TypeError: if ``relevant`` is not boolean.

    Used in: :doc:`/book/representations/geodesic-semantic-similarity`.
    """
    s = np.asarray(scores, dtype=np.float64)
    rel = np.asarray(relevant)
    if rel.dtype != bool:
        raise TypeError(f"relevant must be boolean, got dtype {rel.dtype}")
    if s.ndim != 1 or rel.shape != s.shape:
        raise ValueError(f"scores and relevant must have the same 1-D shape, got {s.shape} "
                         f"and {rel.shape}")
    if np.any(np.isnan(s)) or np.any(s == -np.inf):
        raise ValueError("scores must not hold NaN or -inf")
    if not rel.any():
        raise ValueError("relevant must mark at least one item")
    order = np.lexsort((rel, -s))           # by score, descending; relevant last among ties
    hits = rel[order]
    precision = np.cumsum(hits) / np.arange(1, s.size + 1)
    return float(precision[hits].mean())
