"""Deterministic, duplicate-free, stratified train / validation / test split."""

from __future__ import annotations

import collections
import itertools
import math
from dataclasses import dataclass

import numpy as np

from semalign.data.examples import Examples
from semalign.errors import DataError


@dataclass(frozen=True)
class Splits:
    """A dataset cut in three disjoint parts.

    Attributes:
        train: Examples to fit on (and to train the tokenizer on).
        validation: Examples for early stopping and model selection.
        test: Examples held out for the final number.
        duplicates_removed: Exact duplicate texts dropped before splitting.

    """

    train: Examples
    validation: Examples
    test: Examples
    duplicates_removed: int = 0

    @property
    def sizes(self) -> tuple[int, int, int]:
        """``(len(train), len(validation), len(test))``."""
        return len(self.train), len(self.validation), len(self.test)


def split_examples(
    examples: Examples,
    *,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> Splits:
    """Split into train / validation / test, stratified by label.

    1. Exact duplicate texts are dropped, keeping the first occurrence (and
       its label), so the same text never lands in two splits.
    2. With ``N`` texts left, validation gets ``round(N * fractions[1])``
       examples and test ``round(N * fractions[2])`` (halves round up); train
       gets the rest.
    3. Each split's size is shared among the classes in proportion to their
       counts, rounding each share down or up (largest remainders first) so
       that every class has less than one example more or fewer than
       proportional in every split.
    4. Each class is shuffled with ``np.random.default_rng(seed)`` (classes in
       sorted order); its first examples go to validation, the next to test,
       the rest to train. Every split keeps the input order.

    IMDB from :func:`~semalign.data.builtin.load_builtin` with ``seed=0``
    gives 19,924 / 2,490 / 2,490 after dropping 96 duplicates.

    Args:
        examples: The examples to split, ``N`` before deduplication.
        seed: Seed of the shuffle; the same seed gives the same split.
        fractions: ``(train, validation, test)``, non-negative, summing to 1,
            train positive.

    Returns:
        The three splits and the number of duplicates removed.

    Raises:
        ValueError: If ``fractions`` is malformed.
        DataError: If too few examples remain to give train at least one.

    >>> ex = Examples(texts=[f"t{i}" for i in range(10)], labels=["a", "b"] * 5)
    >>> split_examples(ex, fractions=(0.6, 0.2, 0.2)).sizes
    (6, 2, 2)

    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or fractions[0] <= 0:
        raise ValueError(
            f"fractions must be (train > 0, validation >= 0, test >= 0), got {fractions}"
        )
    if not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise ValueError(f"fractions must sum to 1, got {fractions} (sum {sum(fractions)})")

    first: dict[str, int] = {}
    for i, text in enumerate(examples.texts):
        first.setdefault(text, i)
    keep = np.fromiter(first.values(), dtype=np.int64, count=len(first))
    unique = examples.subset(keep)
    n = len(unique)
    n_val = math.floor(n * fractions[1] + 0.5)
    n_test = math.floor(n * fractions[2] + 0.5)
    if n - n_val - n_test < 1:
        raise DataError(
            f"{n} distinct texts are too few to split {fractions}; add data or change the fractions"
        )

    labels = unique.label_ids()
    counts = np.bincount(labels, minlength=len(unique.classes))
    per_class = _allocate(counts, (n - n_val - n_test, n_val, n_test))

    rng = np.random.default_rng(seed)
    parts: tuple[list[np.ndarray], ...] = ([], [], [])
    for c in range(len(counts)):
        members = rng.permutation(np.flatnonzero(labels == c))
        v, t = per_class[c, 1], per_class[c, 2]
        parts[1].append(members[:v])
        parts[2].append(members[v : v + t])
        parts[0].append(members[v + t :])
    train, validation, test = (unique.subset(np.sort(np.concatenate(p))) for p in parts)
    return Splits(train, validation, test, duplicates_removed=len(examples) - n)


def _allocate(counts: np.ndarray, sizes: tuple[int, ...]) -> np.ndarray:
    """Share split sizes among classes: controlled rounding of the proportional table.

    The quota of class ``c`` in split ``s`` is ``counts[c] * sizes[s] / n``.
    Every cell of the result is its quota's floor or ceiling, rows sum to
    ``counts`` and columns to ``sizes``; such a table always exists (the
    quotas themselves are a fractional one). Cells round up in order of
    largest remainder; what that greedy pass cannot place is placed along
    augmenting paths, as in bipartite matching. Exact integer arithmetic.

    Args:
        counts: ``[C]`` examples per class, summing to ``n``.
        sizes: ``S`` split sizes, summing to ``n``.

    Returns:
        ``[C, S]`` int64 examples per class and split.

    """
    n = int(counts.sum())
    floor, remainder = np.divmod(np.outer(counts.astype(np.int64), np.asarray(sizes)), n)
    can_round_up = remainder > 0
    up = np.zeros(floor.shape, dtype=bool)
    row_left = counts - floor.sum(axis=1)
    col_left = np.asarray(sizes) - floor.sum(axis=0)
    order = np.argsort(-remainder, axis=None, kind="stable")
    for c, s in zip(*np.unravel_index(order, floor.shape), strict=True):
        if can_round_up[c, s] and row_left[c] and col_left[s]:
            up[c, s], row_left[c], col_left[s] = True, row_left[c] - 1, col_left[s] - 1
    while row_left.any():
        path = _augmenting_path(up, can_round_up, row_left, col_left)
        row_left[path[0][1]] -= 1
        col_left[path[-1][1]] -= 1
        for (kind, i), (_, j) in itertools.pairwise(path):
            if kind == "c":
                up[i, j] = True  # Class i gets one more in split j ...
            else:
                up[j, i] = False  # ... and class j one fewer in split i.
    return floor + up


_Node = tuple[str, int]  # ("c", class) or ("s", split).


def _augmenting_path(
    up: np.ndarray, can_round_up: np.ndarray, row_left: np.ndarray, col_left: np.ndarray
) -> list[_Node]:
    """Breadth-first search for an augmenting path of the rounding table.

    The path starts at a class with units left and ends at a split with room,
    alternating class -> split (a cell that may still round up) and
    split -> class (a cell now rounded up, to round back down).

    Args:
        up: ``[C, S]`` cells rounded up so far.
        can_round_up: ``[C, S]`` cells whose quota is not an integer.
        row_left: ``[C]`` units each class still has to place.
        col_left: ``[S]`` room each split still has.

    Returns:
        The path's nodes, class first, split last.

    """
    parent: dict[_Node, _Node | None] = {("c", int(c)): None for c in np.flatnonzero(row_left)}
    queue = collections.deque(parent)
    while queue:
        node = queue.popleft()
        kind, i = node
        if kind == "c":
            steps = [("s", int(s)) for s in np.flatnonzero(can_round_up[i] & ~up[i])]
        else:
            steps = [("c", int(c)) for c in np.flatnonzero(up[:, i])]
        for step in steps:
            if step in parent:
                continue
            parent[step] = node
            if step[0] == "s" and col_left[step[1]]:
                path = [step]
                while (prev := parent[path[-1]]) is not None:
                    path.append(prev)
                return path[::-1]
            queue.append(step)
    # Unreachable: the quotas are a fractional solution, so an integral one exists.
    raise AssertionError(f"no augmenting path; rows left {row_left}, columns left {col_left}")
