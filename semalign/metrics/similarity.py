"""Embedding similarities, ``[n, d], [n, d] -> [n]`` row by row.

Written with array methods only, so they run on numpy and JAX arrays alike.
:data:`SIMILARITIES` holds the four that sentence-transformers' STS evaluator reports.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["SIMILARITIES", "cosine", "dot", "negative_l1", "negative_l2"]

_EPS = 1e-8  # norms are clipped here; its cube stays a normal float32


def cosine(a, b):
    """Cosine similarity of matching rows: ``[n, d], [n, d] -> [n]`` (0 for a zero row).

    Squared norms are clipped before the square root and the rows are normalised before
    their product, so the gradient stays finite at a zero row (the padded filler rows of
    a batch pool to zeros).
    """
    unit_a = a / (a * a).sum(-1, keepdims=True).clip(_EPS * _EPS) ** 0.5
    unit_b = b / (b * b).sum(-1, keepdims=True).clip(_EPS * _EPS) ** 0.5
    return (unit_a * unit_b).sum(-1)


def negative_l2(a, b):
    """``−‖a − b‖₂`` of matching rows (higher is more similar)."""
    d = a - b
    return -((d * d).sum(-1) ** 0.5)


def negative_l1(a, b):
    """``−‖a − b‖₁`` of matching rows (higher is more similar)."""
    return -abs(a - b).sum(-1)


def dot(a, b):
    """``a · b`` of matching rows."""
    return (a * b).sum(-1)


SIMILARITIES: dict[str, Callable] = {
    "cosine": cosine,
    "l2": negative_l2,
    "l1": negative_l1,
    "dot": dot,
}
"""Embedding similarities by name (sentence-transformers calls ``l2`` euclidean and
``l1`` manhattan)."""
