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


#: What one more padded length costs, in padded token slots: each length compiles its own
#: train and eval steps (~3.5 s for the default classifier on a 2-core CPU, the time its
#: step takes for ~1.1M slots at ~3.2 us a slot). :func:`fitted_boundaries` adds a length
#: only where it saves more slots than this over the run.
COMPILE_SLOTS = 1_000_000


def fitted_boundaries(
    lengths: Sequence[int] | np.ndarray,
    max_len: int,
    *,
    max_buckets: int = 8,
    multiple: int = 32,
    passes: int = 1,
    compile_slots: int = COMPILE_SLOTS,
) -> tuple[int, ...]:
    """Padded lengths fitted to these sequence lengths: fewest slots, compilations counted.

    Among at most ``max_buckets`` boundaries (multiples of ``multiple``, the last
    ``max_len``), the ones that minimise ``passes * slots + compile_slots * used`` are
    found exactly (dynamic programming over the candidates), where ``slots`` counts the
    padded slots of ``lengths`` and ``used`` the lengths that hold a row (each compiles
    its own steps). Geometric lengths (:func:`bucket_boundaries`) ignore where the data
    lies: on IMDB at 512 tokens they compile a step for one batch of 32-token reviews
    and pad 16 % of the slots.

    Args:
        lengths: ``[N]`` sequence lengths (longer ones count as ``max_len``).
        max_len: The longest sequence, the last boundary.
        max_buckets: Most boundaries returned.
        multiple: Inner boundaries are multiples of this.
        passes: How often the rows are batched (epochs): slots count this many times.
        compile_slots: What one more boundary costs, in slots (:data:`COMPILE_SLOTS`).

    Returns:
        Strictly increasing lengths, at most ``max_buckets``, ending with ``max_len``.

    Raises:
        ValueError: If ``max_len``, ``max_buckets``, ``multiple`` or ``passes`` is not
            positive, or ``compile_slots`` is negative.

    >>> fitted_boundaries([10] * 1000 + [500] * 1000, 512)
    (32, 512)
    >>> fitted_boundaries([10, 500], 512)
    (512,)

    """
    if min(max_len, max_buckets, multiple, passes) < 1 or compile_slots < 0:
        raise ValueError(
            f"max_len, max_buckets, multiple and passes must be positive and compile_slots "
            f">= 0, got {max_len}, {max_buckets}, {multiple}, {passes}, {compile_slots}"
        )
    cands = np.array([*range(multiple, max_len, multiple), max_len], dtype=np.int64)
    clipped = np.minimum(np.asarray(lengths, dtype=np.int64).reshape(-1), max_len)
    # rows[i]: sequences whose smallest fitting candidate is cands[i]; a bucket ending at
    # cands[i] after one ending at cands[j] holds rows j+1..i, padded to cands[i].
    rows = np.bincount(np.searchsorted(cands, clipped, side="left"), minlength=cands.size)
    held = np.concatenate([[0], np.cumsum(rows)])  # held[i + 1]: rows up to cands[i]
    n, most = cands.size, min(max_buckets, cands.size)
    inf = np.iinfo(np.int64).max

    def cost(j: np.ndarray, i: int) -> np.ndarray:
        """A bucket ``(cands[j], cands[i]]``: its slots each pass, a compilation if used."""
        count = held[i + 1] - held[j + 1]
        return passes * count * cands[i] + compile_slots * (count > 0)

    # best[k, i]: least cost of the rows up to cands[i] in k + 1 buckets, the last cands[i].
    best = np.full((most, n), inf, dtype=np.int64)
    back = np.zeros((most, n), dtype=np.int64)
    best[0] = cost(np.full(n, -1), np.arange(n))
    for k in range(1, most):
        for i in range(k, n):
            j = np.arange(i)  # the previous bucket ends at cands[j]
            total = np.where(best[k - 1, :i] < inf, best[k - 1, :i] + cost(j, i), inf)
            back[k, i] = int(np.argmin(total))
            best[k, i] = total[back[k, i]]
    k = int(np.argmin(best[:, -1]))  # ties: the fewest buckets
    out, i = [int(cands[-1])], n - 1
    while k > 0:
        i = int(back[k, i])
        out.append(int(cands[i]))
        k -= 1
    return tuple(reversed(out))


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
