"""Batches of a streamed corpus, made as they are used: grain reads ahead, memory stays flat.

A training epoch is a plan, ``(padded length, rows)`` per batch
(:func:`~semalign.data.batching.bucket_groups` from ``(seed, epoch)``), so a resumed run
replays the same epoch without any saved iterator state. :class:`LazyBatches` holds the
plan and makes the batches each time it is iterated; :func:`read_ahead` reads and
tokenizes the rows of the coming batches on grain's threads while the current one trains.

With several processes (``--distributed``), every process reads only its block of each
batch (:func:`process_block`): the rows its devices hold, so no text is read twice.
grain (and so JAX) is imported only when batches are read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from typing import Any

import numpy as np

__all__ = ["LazyBatches", "process_block", "read_ahead"]

#: Batches read ahead of the one in use (each on one of grain's threads).
READ_AHEAD = 4


class LazyBatches(Sequence):
    """``count`` batches made anew by ``make()`` at each iteration (none is kept)."""

    def __init__(self, count: int, make: Callable[[], Iterator[Any]]):
        self.count, self.make = count, make

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Any]:
        return self.make()

    def __getitem__(self, i):
        if isinstance(i, slice):
            return list(islice(self.make(), *i.indices(self.count)))
        if not -self.count <= i < self.count:
            raise IndexError(i)
        return next(islice(self.make(), i % self.count, None))


def process_block(batch_size: int, index: int, count: int) -> tuple[int, int]:
    """``(first row, rows)`` of a global batch that process ``index`` of ``count`` holds.

    The batch's rows are split over the ``data`` axis in device order, and JAX orders a
    process's devices together, so process ``p`` holds the ``p``-th of ``count`` equal,
    contiguous blocks (``batch_size`` is a multiple of the device count).
    """
    if count < 1 or not 0 <= index < count or batch_size % count:
        raise ValueError(f"process {index} of {count} cannot share batches of {batch_size}")
    size = batch_size // count
    return index * size, size


def read_ahead(
    groups: Sequence[tuple[int, np.ndarray]],
    read: Callable[[np.ndarray], list[np.ndarray]],
    *,
    block: tuple[int, int] | None = None,
) -> Iterator[tuple[int, int, list[np.ndarray]]]:
    """``(padded length, first row, sequences)`` per group, read ahead on grain's threads.

    Args:
      groups: the epoch's plan, ``(padded length, row indices)`` per batch.
      read: row indices -> their token ids (reads the texts and tokenizes them).
      block: ``(first row, rows)`` this process reads of each batch (None: all).

    Yields:
      Groups in plan order; ``first row`` is where the sequences go in the batch.
    """
    import grain

    start, size = (0, None) if block is None else block

    def load(group):
        length, rows = group
        mine = rows if size is None else rows[start : start + size]
        return length, start, read(mine) if mine.size else []

    ds = grain.MapDataset.source(list(groups)).map(load)
    options = grain.ReadOptions(num_threads=2, prefetch_buffer_size=READ_AHEAD)
    return iter(ds.to_iter_dataset(options))
