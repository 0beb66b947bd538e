"""Length-bucketed, padded, fixed-size batches of token ids.

Every batch has shape ``(batch_size, bucket)`` for one of a few bucket lengths,
so a jitted step compiles once per bucket rather than once per length. The
last batch of a bucket is topped up with filler rows of weight 0, so no
example is ever dropped and no extra shape appears.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from semalign.data.tokenizer import PAD_ID


class Batch(NamedTuple):
    """One padded batch; ``B`` rows, each ``L`` ids long.

    Attributes:
        ids: ``[B, L]`` int32 token ids, right-padded with ``PAD_ID`` (0).
        labels: ``[B]`` int32 class ids; 0 for filler rows.
        weights: ``[B]`` float32, 1 for real rows and 0 for filler rows
            (all ids ``PAD_ID``). Weight losses and metrics by it.

    """

    ids: np.ndarray
    labels: np.ndarray
    weights: np.ndarray


def bucket_boundaries(max_len: int, *, max_buckets: int = 8, multiple: int = 32) -> tuple[int, ...]:
    """Choose padded lengths spaced roughly geometrically up to ``max_len``.

    All but the last are multiples of ``multiple`` (rounded up, duplicates
    merged); the last is ``max_len`` itself, so every sequence of at most
    ``max_len`` ids fits.

    Args:
        max_len: The longest sequence, the last boundary.
        max_buckets: Most boundaries returned.
        multiple: Round intermediate boundaries up to a multiple of this.

    Returns:
        Strictly increasing lengths, at most ``max_buckets``, ending with ``max_len``.

    Raises:
        ValueError: If an argument is not positive.

    >>> bucket_boundaries(512)
    (32, 64, 96, 128, 160, 256, 352, 512)
    >>> bucket_boundaries(250, max_buckets=4)
    (32, 64, 128, 250)

    """
    if min(max_len, max_buckets, multiple) < 1:
        raise ValueError(
            f"max_len, max_buckets and multiple must be positive, "
            f"got {max_len}, {max_buckets}, {multiple}"
        )
    if max_buckets == 1 or max_len <= multiple:
        return (max_len,)
    ratio = (max_len / multiple) ** (1 / (max_buckets - 1))
    # The 1e-9 keeps float noise (1.0000000001) from rounding up a whole step.
    inner = {multiple * math.ceil(ratio**k - 1e-9) for k in range(max_buckets - 1)}
    return (*sorted(b for b in inner if b < max_len), max_len)


def make_batches(
    sequences: Sequence[np.ndarray],
    labels: Sequence[int] | np.ndarray,
    *,
    batch_size: int,
    boundaries: Sequence[int],
    shuffle: bool,
    seed: int = 0,
    epoch: int = 0,
) -> list[Batch]:
    """Group sequences by length into padded batches of exactly ``batch_size`` rows.

    Each sequence goes to the smallest boundary that holds it. Within a bucket,
    rows are taken in input order (``shuffle=False``) or in a shuffled order;
    the last batch of a bucket is filled with weight-0 rows. Batches come
    bucket by bucket (``shuffle=False``) or in a shuffled order. The shuffle
    draws from ``np.random.default_rng([seed, epoch])``: the same
    ``(seed, epoch)`` gives the same batches, so a resumed run repeats them.

    Args:
        sequences: ``N`` int arrays ``[L_i]`` with ``L_i <= boundaries[-1]``,
            e.g. from :func:`~semalign.data.tokenizer.encode_texts`.
        labels: ``[N]`` class ids.
        batch_size: Rows per batch, ``B``.
        boundaries: Increasing padded lengths, e.g. from :func:`bucket_boundaries`.
        shuffle: Shuffle rows within buckets and the order of batches.
        seed: Seed of the shuffle.
        epoch: Epoch number, mixed into the seed so each epoch differs.

    Returns:
        ``ceil(n_b / B)`` batches for each bucket holding ``n_b`` sequences;
        every batch is ``Batch(ids [B, L], labels [B], weights [B])`` with
        ``L`` in ``boundaries``.

    Raises:
        ValueError: If the lengths disagree, ``batch_size`` is not positive,
            ``boundaries`` is not increasing, or a sequence is too long.

    """
    bounds = np.asarray(boundaries, dtype=np.int64)
    if bounds.ndim != 1 or bounds.size == 0 or bounds[0] < 1 or np.any(np.diff(bounds) <= 0):
        raise ValueError(f"boundaries must be increasing positive lengths, got {list(boundaries)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    label_ids = np.asarray(labels, dtype=np.int32)
    if label_ids.shape != (len(sequences),):
        raise ValueError(f"got {len(sequences)} sequences but labels of shape {label_ids.shape}")
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    too_long = np.flatnonzero(lengths > bounds[-1])
    if too_long.size:
        i = int(too_long[0])
        raise ValueError(
            f"sequence {i} has {lengths[i]} ids, more than the last boundary {bounds[-1]}; "
            "encode with max_len <= the last boundary"
        )

    batches: list[Batch] = []
    for length, rows in bucket_groups(
        lengths, bounds, batch_size, shuffle=shuffle, seed=seed, epoch=epoch
    ):
        ids = np.full((batch_size, length), PAD_ID, dtype=np.int32)
        for r, i in enumerate(rows):
            ids[r, : lengths[i]] = sequences[i]
        batch_labels = np.zeros(batch_size, dtype=np.int32)
        batch_labels[: rows.size] = label_ids[rows]
        weights = np.zeros(batch_size, dtype=np.float32)
        weights[: rows.size] = 1.0
        batches.append(Batch(ids, batch_labels, weights))
    return batches


def bucket_groups(
    lengths: np.ndarray,
    bounds: Sequence[int],
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    epoch: int = 0,
) -> list[tuple[int, np.ndarray]]:
    """Which rows form each batch, and its padded length.

    Every row goes to the smallest bound that fits it; each bucket is cut into groups of
    at most ``batch_size`` rows. With ``shuffle``, rows within a bucket and then the order
    of the groups are permuted by ``np.random.default_rng([seed, epoch])``.

    Args:
        lengths: ``[N]`` row lengths, each ``<= bounds[-1]``.
        bounds: increasing padded lengths.
        batch_size: rows per group at most.
        shuffle: permute rows and groups.
        seed: shuffling seed.
        epoch: mixed into the seed so every epoch differs.

    Returns:
        ``(padded length, row indices)`` per batch, in batch order.
    """
    rng = np.random.default_rng([seed, epoch]) if shuffle else None
    bucket_of = np.searchsorted(bounds, lengths, side="left")
    groups: list[tuple[int, np.ndarray]] = []
    for b, length in enumerate(bounds):
        members = np.flatnonzero(bucket_of == b)
        if rng is not None:
            members = rng.permutation(members)
        for start in range(0, members.size, batch_size):
            groups.append((int(length), members[start : start + batch_size]))
    if rng is not None:
        groups = [groups[i] for i in rng.permutation(len(groups))]
    return groups


@dataclass(frozen=True)
class BatchStats:
    """How well a list of batches packs its tokens.

    Attributes:
        batches: Number of batches.
        examples: Real rows (weight 1).
        filler_rows: Rows of weight 0.
        shapes: The distinct ``(B, L)`` shapes, sorted: one compilation each.
        real_tokens: Non-pad ids in real rows.
        padded_tokens: All id slots, ``sum(B * L)``: what the model computes on.

    """

    batches: int
    examples: int
    filler_rows: int
    shapes: tuple[tuple[int, int], ...]
    real_tokens: int
    padded_tokens: int

    @property
    def padding_fraction(self) -> float:
        """Share of the slots that hold padding, in ``[0, 1]``."""
        return 1.0 - self.real_tokens / self.padded_tokens if self.padded_tokens else 0.0


def batch_stats(batches: Sequence[Batch]) -> BatchStats:
    """Count batches, shapes and padding; ``dataclasses.asdict`` turns it into a dict.

    Args:
        batches: Batches from :func:`make_batches`.

    Returns:
        The counts.

    """
    real_rows = [b.weights > 0 for b in batches]
    return BatchStats(
        batches=len(batches),
        examples=int(sum(r.sum() for r in real_rows)),
        filler_rows=int(sum((~r).sum() for r in real_rows)),
        shapes=tuple(sorted({tuple(int(d) for d in b.ids.shape) for b in batches})),
        real_tokens=int(
            sum(
                np.count_nonzero(b.ids[r] != PAD_ID)
                for b, r in zip(batches, real_rows, strict=True)
            )
        ),
        padded_tokens=int(sum(b.ids.size for b in batches)),
    )
