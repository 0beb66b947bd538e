"""Correlations with gold scores, and the report of a similarity model.

Computed here in numpy (no SciPy at run time): :func:`rankdata` gives tied values their
average rank, :func:`spearman` is the Pearson correlation of those ranks, as in
``scipy.stats.spearmanr``. A :class:`SimilarityReport` holds Pearson and Spearman of the
gold scores against four similarities of the two sides' embeddings (cosine, −L2, −L1, dot:
what sentence-transformers' STS evaluator reports). They are computed on the pooled
embeddings *before* L2 normalisation; after it, dot equals cosine and −L2 is a monotone
function of it, so three of the four would rank pairs identically.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Correlation",
    "SimilarityReport",
    "pearson",
    "rankdata",
    "similarity_report",
    "spearman",
]


def rankdata(x: Sequence[float] | np.ndarray) -> np.ndarray:
    """1-based ranks of ``x``; tied values share the mean of their ranks.

    >>> rankdata([10, 20, 10, 30]).tolist()
    [1.5, 3.0, 1.5, 4.0]
    """
    x = np.asarray(x, np.float64).reshape(-1)
    n = x.size
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    first = np.r_[True, xs[1:] != xs[:-1]] if n else np.zeros(0, bool)
    group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], n]  # one past each group's last position
    ranks = np.empty(n, np.float64)
    ranks[order] = ((starts + ends - 1) / 2.0 + 1.0)[group]
    return ranks


def pearson(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Pearson correlation; NaN when a side is constant or has fewer than 2 values.

    >>> pearson([1, 2, 3], [2, 4, 7])
    0.9933992677987828
    """
    x = np.asarray(x, np.float64).reshape(-1)
    y = np.asarray(y, np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"pearson needs two arrays of one length, got {x.size} and {y.size}")
    if x.size < 2:
        return float("nan")
    dx, dy = x - x.mean(), y - y.mean()
    denom = np.sqrt(np.dot(dx, dx) * np.dot(dy, dy))
    if denom == 0:
        return float("nan")
    return float(np.clip(np.dot(dx, dy) / denom, -1.0, 1.0))


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman rank correlation: Pearson of the average ranks.

    >>> spearman([1, 2, 3, 4], [1, 3, 2, 4])
    0.8
    """
    return pearson(rankdata(x), rankdata(y))


@dataclass(frozen=True)
class Correlation:
    """Agreement of one similarity with the gold scores."""

    pearson: float
    spearman: float


@dataclass(frozen=True)
class SimilarityReport:
    """Correlations of a similarity model with gold scores.

    Attributes:
      correlations: similarity name (``cosine``, ``l2``, ``l1``, ``dot``) ->
        :class:`Correlation`; ``l2`` and ``l1`` are negative distances.
      loss: mean training loss over the evaluation batches (NaN when not computed).
      count: pairs evaluated.
    """

    correlations: Mapping[str, Correlation]
    loss: float
    count: int

    @property
    def spearman(self) -> float:
        """Spearman of the cosine: the number model selection uses."""
        return self.correlations["cosine"].spearman

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "correlations": {k: dataclasses.asdict(v) for k, v in self.correlations.items()},
            "loss": self.loss,
            "count": self.count,
        }

    def scalars(self) -> dict[str, float]:
        """Flat numbers: ``loss``, ``count``, ``spearman_<sim>``, ``pearson_<sim>``."""
        out: dict[str, float] = {"loss": self.loss, "count": self.count}
        for name, c in self.correlations.items():
            out[f"spearman_{name}"] = c.spearman
            out[f"pearson_{name}"] = c.pearson
        return out


def similarity_report(
    emb_a: np.ndarray, emb_b: np.ndarray, scores: np.ndarray, *, loss: float = float("nan")
) -> SimilarityReport:
    """Pearson and Spearman of ``scores`` against every similarity of the embeddings.

    Args:
      emb_a: ``[n, d]`` embeddings of the first texts.
      emb_b: ``[n, d]`` embeddings of the second texts.
      scores: ``[n]`` gold scores.
      loss: the loss to carry along.
    """
    from semalign.metrics.similarity import SIMILARITIES

    a = np.asarray(emb_a, np.float64)
    b = np.asarray(emb_b, np.float64)
    gold = np.asarray(scores, np.float64)
    correlations = {}
    for name, fn in SIMILARITIES.items():
        sim = fn(a, b)
        correlations[name] = Correlation(pearson(sim, gold), spearman(sim, gold))
    return SimilarityReport(correlations, float(loss), int(gold.size))
