"""How alike two maps rank the pixels: Spearman's correlation, the top-10% overlap, and the matrix over panels."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from scipy.stats import spearmanr


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps; 0 when either is constant (no ranking to compare)."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(np.ravel(a), np.ravel(b)).statistic)


def top_overlap(a: np.ndarray, b: np.ndarray, fraction: float = 0.1) -> float:
    """Share of the top `fraction` of pixels (by value) that two maps have in common."""
    k = max(1, round(a.size * fraction))
    top_a = set(np.argsort(-a.ravel(), kind="stable")[:k].tolist())
    top_b = set(np.argsort(-b.ravel(), kind="stable")[:k].tolist())
    return len(top_a & top_b) / k


def agreement(maps: Sequence[np.ndarray]) -> np.ndarray:
    """Spearman rank correlations between every pair of maps (1 on the diagonal)."""
    n = len(maps)
    out = np.eye(n)
    for i, j in itertools.combinations(range(n), 2):
        out[i, j] = out[j, i] = rank_correlation(maps[i], maps[j])
    return out
