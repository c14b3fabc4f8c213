"""SpRAy's steps from their definitions, on synthetic maps whose strategies are known."""

from __future__ import annotations

import numpy as np
import pytest

from whylabel import audit
from whylabel.audit import spectral
from whylabel.audit.maps import GRID, Item, evidence_grid


def blob(row: float, col: float, width: float = 1.5, size: int = GRID) -> np.ndarray:
    rows, cols = np.indices((size, size))
    return np.exp(-((rows - row) ** 2 + (cols - col) ** 2) / (2 * width**2))


def strategy_maps(rng: np.random.Generator, centres: list[tuple[float, float]], each: int) -> np.ndarray:
    """`each` noisy maps per centre, as evidence shares."""
    maps = []
    for row, col in centres:
        for _ in range(each):
            jitter = rng.normal(0, 0.5, 2)
            raw = blob(row + jitter[0], col + jitter[1]) + rng.uniform(0, 0.02, (GRID, GRID))
            maps.append(evidence_grid(raw)[0])
    return np.array(maps)


def test_features_are_square_roots_of_pooled_shares_so_distance_is_hellinger():
    rng = np.random.default_rng(0)
    p, q = (evidence_grid(rng.uniform(0, 1, (GRID, GRID)))[0] for _ in range(2))
    fp, fq = spectral.features(np.array([p, q]))
    pooled = [g.reshape(8, 2, 8, 2).sum(axis=(1, 3)).ravel() for g in (p, q)]
    hellinger = np.sqrt(0.5 * np.sum((np.sqrt(pooled[0]) - np.sqrt(pooled[1])) ** 2))
    assert np.linalg.norm(fp - fq) == pytest.approx(np.sqrt(2) * hellinger)
    assert np.sum(fp**2) == pytest.approx(1.0)  # the shares sum to 1


def test_affinity_is_a_symmetric_knn_graph():
    maps = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]])
    graph = spectral.affinity(maps, 1)
    assert np.array_equal(graph, graph.T)
    assert set(np.unique(graph)) <= {0.0, 0.5, 1.0}
    assert graph[0, 1] == 1.0  # mutual nearest neighbours
    assert graph[1, 2] == 0.5  # 2's nearest is 1; 1's nearest is 0 (a tie broken to the first)
    assert graph[3, 4] == 1.0 and graph[0, 3] == 0.0


def test_eigengap_counts_the_eigenvalues_before_the_largest_jump():
    assert spectral.eigengap(np.array([0.0, 0.0, 0.0, 0.8, 0.9])) == 3
    assert spectral.eigengap(np.array([0.0, 0.7, 0.8, 0.9])) == 1
    assert spectral.eigengap(np.array([0.0])) == 1


def test_two_disconnected_groups_give_two_zero_eigenvalues():
    block = np.ones((3, 3)) - np.eye(3)
    graph = np.block([[block, np.zeros((3, 3))], [np.zeros((3, 3)), block]])
    values = spectral.spectrum(graph, 4)
    assert values[:2] == pytest.approx([0.0, 0.0], abs=1e-9)
    assert values[2] > 0.5  # the normalised Laplacian of a triangle: 1.5
    assert spectral.eigengap(values) == 2


def test_two_known_strategies_are_split_exactly():
    rng = np.random.default_rng(1)
    maps = strategy_maps(rng, [(8, 8), (1.5, 1.5)], each=20)
    split = spectral.split(spectral.features(maps))
    assert split.note == ""
    assert split.count == 2
    assert len(set(split.labels[:20])) == 1 and len(set(split.labels[20:])) == 1
    assert split.labels[0] != split.labels[20]


def test_three_strategies_of_unequal_size_never_share_a_cluster():
    """The eigengap may cut one strategy's noise in two (README: clusters are hypotheses); never mix two."""
    rng = np.random.default_rng(2)
    centres, sizes = [(8, 8), (1.5, 14), (14, 1.5)], (30, 20, 12)
    maps = np.concatenate([strategy_maps(rng, [centre], n) for centre, n in zip(centres, sizes, strict=True)])
    strategy = np.repeat([0, 1, 2], sizes)
    split = spectral.split(spectral.features(maps))
    assert split.count >= 3
    for cluster in range(split.count):
        assert len(set(strategy[split.labels == cluster])) == 1
    sizes_found = [int(np.sum(split.labels == c)) for c in range(split.count)]
    assert sizes_found == sorted(sizes_found, reverse=True)  # numbered by size


def test_a_habit_of_fewer_images_than_the_graphs_k_shows_as_outliers():
    """Each map has NEIGHBOURS edges, so six alike cannot stand alone: they are said as outliers instead."""
    rng = np.random.default_rng(2)
    maps = np.concatenate([strategy_maps(rng, [(8, 8)], 40), strategy_maps(rng, [(14, 1.5)], 6)])
    split = spectral.split(spectral.features(maps))
    assert split.outliers[40:].all()
    assert split.outliers[:40].sum() <= 4  # the local outlier factor's own threshold: a few of the main habit


def test_one_image_is_said_not_clustered():
    split = spectral.split(spectral.features(strategy_maps(np.random.default_rng(3), [(8, 8)], 1)))
    assert split.count == 1 and "one image" in split.note


def test_identical_maps_are_said_not_clustered():
    maps = np.repeat(evidence_grid(blob(8, 8))[0][None], 12, axis=0)
    split = spectral.split(spectral.features(maps))
    assert split.count == 1 and list(split.labels) == [0] * 12
    assert "all 12 maps are identical" in split.note


def test_too_few_images_are_said_not_clustered():
    split = spectral.split(spectral.features(strategy_maps(np.random.default_rng(4), [(8, 8), (2, 2)], 1)))
    assert split.count == 1 and "too few" in split.note


def test_a_map_unlike_its_neighbours_is_an_outlier():
    rng = np.random.default_rng(5)
    maps = np.concatenate([strategy_maps(rng, [(8, 8)], 30), strategy_maps(rng, [(1, 14)], 1)])
    split = spectral.split(spectral.features(maps))
    assert split.outliers[-1]
    assert split.outliers[:30].sum() <= 2


def items_from(maps: np.ndarray, cls: int = 3, group: str = "") -> list[Item]:
    return [Item(f"{group}/{cls}_{n}.png", group, cls, str(cls), 0.9, grid) for n, grid in enumerate(maps)]


def test_the_analysis_says_why_a_class_is_not_clustered_and_clusters_the_others():
    rng = np.random.default_rng(6)
    one = items_from(strategy_maps(rng, [(8, 8)], 1), cls=1)
    same = items_from(np.repeat(evidence_grid(blob(8, 8))[0][None], 6, axis=0), cls=2)
    split = items_from(strategy_maps(rng, [(8, 8), (1.5, 1.5)], 15), cls=3)
    result = audit.analyse(one + same + split, "m", "saliency")
    notes = {view.cls: view.note for view in result.classes}
    assert "one image" in notes[1] and "identical" in notes[2] and notes[3] == ""
    assert [len(view.clusters) for view in result.classes] == [1, 1, 2]
    assert not any(c.flagged for c in result.clusters if c.cls in (1, 2))  # nothing to compare with


def test_a_small_class_is_split_too():
    """Twenty maps, seven of another habit: k shrinks with the class so that seven can stand apart."""
    rng = np.random.default_rng(7)
    maps = np.concatenate([strategy_maps(rng, [(8, 8)], 13), strategy_maps(rng, [(1.5, 1.5)], 7)])
    split = spectral.split(spectral.features(maps))
    assert spectral.neighbours_for(20) == 5
    assert split.count >= 2
    assert not set(split.labels[:13]) & set(split.labels[13:])  # the seven share no cluster with the thirteen
    assert len(set(split.labels[13:])) == 1


def test_k_follows_the_class_size():
    assert [spectral.neighbours_for(n) for n in (4, 12, 20, 40, 100, 400)] == [3, 3, 5, 10, 10, 20]
