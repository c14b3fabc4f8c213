"""Spectral relevance analysis (SpRAy; Lapuschkin et al. 2019) of one class's maps, as small named steps.

    maps (n, G, G) -> features -> kNN affinity -> normalised Laplacian -> eigenvalues -> eigengap (k) -> k clusters

scikit-learn and SciPy do each step (`kneighbors_graph`, `csgraph.laplacian`, `SpectralClustering` on the
precomputed affinity, `LocalOutlierFactor`); CoRelAy wraps these same calls in a pipeline with an HDF5 store,
which a dashboard holding a few thousand small grids in memory does not need. The eigengap (the number of
clusters k is where the sorted eigenvalues of the normalised Laplacian jump most) is not in either library,
so it is written here.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import csgraph
from sklearn.cluster import SpectralClustering
from sklearn.neighbors import LocalOutlierFactor, kneighbors_graph

FEATURE_CELLS = 8
"""Cells a side the maps are pooled to before they are compared: finer cells make every shift of a stroke a
difference, and the habits the audit looks for (a mark, a border) still fill a cell at this size."""
MIN_IMAGES = 4
"""Fewer maps than this are not clustered: a kNN graph of three points says nothing."""
MAX_CLUSTERS = 8
IDENTICAL = 1e-9
"""Maps whose cells differ by no more than this are one map."""


@dataclass
class Split:
    """One class's maps cut into clusters: `labels[i]` is map i's cluster, 0 the largest."""

    labels: np.ndarray
    count: int
    eigenvalues: np.ndarray = field(default_factory=lambda: np.zeros(0))
    neighbours: int = 0
    outliers: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    note: str = ""
    """Why the maps were not clustered (one image, too few, all identical); empty when they were."""


def features(grids: np.ndarray) -> np.ndarray:
    """(n, G, G) evidence shares -> (n, FEATURE_CELLS**2) square roots of the pooled shares.

    Euclidean distance between square roots is the Hellinger distance between the two maps' distributions of
    evidence: a small share where another map has none counts, as a mark of a few pixels must.
    """
    n, size = len(grids), grids.shape[-1]
    if size % FEATURE_CELLS:
        raise ValueError(f"maps of {size} cells a side do not pool to {FEATURE_CELLS}")
    f = size // FEATURE_CELLS
    pooled = grids.reshape(n, FEATURE_CELLS, f, FEATURE_CELLS, f).sum(axis=(2, 4))
    return np.sqrt(pooled.reshape(n, -1))


NEIGHBOURS = 10
"""k of the kNN graph for a class of 40 images or more (SpRAy's choice): with fewer neighbours, the graph of
one strategy's maps falls apart into pieces of its noise, and the eigengap counts those pieces as clusters."""


def neighbours_for(n: int) -> int:
    """k of the kNN graph: `NEIGHBOURS`, a quarter of a smaller class (so a habit of a quarter of it can stand
    apart), the square root of a larger one; at least 3 and below n."""
    k = max(min(NEIGHBOURS, n // 4), round(np.sqrt(n)))
    return int(min(n - 1, max(3, k)))


def affinity(maps: np.ndarray, neighbours: int) -> np.ndarray:
    """A symmetric kNN graph: 1 where each is among the other's nearest, 0.5 where one way only."""
    graph = kneighbors_graph(maps, neighbours, mode="connectivity", include_self=False).toarray()
    return (graph + graph.T) / 2


def spectrum(graph: np.ndarray, count: int) -> np.ndarray:
    """The `count` smallest eigenvalues of the graph's normalised Laplacian, ascending."""
    laplacian = csgraph.laplacian(graph, normed=True)
    return np.linalg.eigvalsh(laplacian)[:count]


def eigengap(eigenvalues: np.ndarray) -> int:
    """The number of clusters: k where eigenvalue k (0-based) most exceeds eigenvalue k - 1."""
    if len(eigenvalues) < 2:
        return 1
    return int(np.argmax(np.diff(eigenvalues)) + 1)


def cut(graph: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """Cluster labels from the affinity, renumbered by size (0 the largest, ties by first member)."""
    if count == 1:
        return np.zeros(len(graph), dtype=int)
    model = SpectralClustering(count, affinity="precomputed", assign_labels="cluster_qr", random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "graph is not fully connected": the eigengap saw it
        raw = model.fit_predict(graph)
    order = sorted(set(raw), key=lambda c: (-np.sum(raw == c), int(np.argmax(raw == c))))
    return np.array([order.index(c) for c in raw])


def outliers(maps: np.ndarray, neighbours: int) -> np.ndarray:
    """Maps unlike their neighbours: the local outlier factor's own threshold (scores below -1.5)."""
    finder = LocalOutlierFactor(n_neighbors=neighbours)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicate maps
        return finder.fit_predict(maps) == -1


def split(maps: np.ndarray, max_clusters: int = MAX_CLUSTERS) -> Split:
    """SpRAy over one class's maps (n, cells); what it cannot cluster is said in `note`, with one cluster."""
    n = len(maps)
    one = np.zeros(n, dtype=int)
    if n == 1:
        return Split(one, 1, note="one image: nothing to compare it with")
    if np.ptp(maps, axis=0).max() <= IDENTICAL:
        return Split(one, 1, note=f"all {n} maps are identical: one strategy")
    if n < MIN_IMAGES:
        return Split(one, 1, note=f"{n} images: too few to cluster (at least {MIN_IMAGES})")
    k = neighbours_for(n)
    graph = affinity(maps, k)
    values = spectrum(graph, min(n, max_clusters + 1))
    count = eigengap(values)
    return Split(cut(graph, count), count, values, k, outliers(maps, k))
