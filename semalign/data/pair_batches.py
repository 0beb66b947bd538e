"""Sentence pairs as token ids, and length-bucketed padded batches of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from semalign.data.batching import bucket_groups
from semalign.data.pairs import PairExamples
from semalign.data.tokenizer import PAD_ID, token_ids
from semalign.errors import DataError

__all__ = ["EncodedPairs", "PairBatch", "encode_pairs", "make_pair_batches"]


@dataclass(frozen=True)
class EncodedPairs:
    """Pairs as token ids.

    Attributes:
      seqs_a: one int32 array ``[La_i]`` per first text (``[CLS]`` first, no padding).
      seqs_b: the same for the second texts.
      targets: ``[N]`` float32 scores or int32 class indices.
      truncated: pairs with a text longer than ``max_len`` tokens, so cut.
    """

    seqs_a: tuple[np.ndarray, ...]
    seqs_b: tuple[np.ndarray, ...]
    targets: np.ndarray
    truncated: int = 0

    @property
    def real_tokens(self) -> int:
        """Tokens before padding, both sides."""
        return int(sum(len(s) for s in (*self.seqs_a, *self.seqs_b)))


def encode_pairs(
    examples: PairExamples, tokenizer, *, max_len: int, classes: Sequence[str] = ()
) -> EncodedPairs:
    """Token ids of both sides and the targets (labels as indices into ``classes``).

    Raises:
      DataError: a label that is not in ``classes``.
    """
    if examples.labels is not None:
        index = {c: i for i, c in enumerate(classes)}
        unknown = sorted(set(examples.labels) - index.keys())
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:5])
            raise DataError(
                f"labels {shown} are not among the model's classes ({', '.join(classes)}); "
                "use data with the labels the run was trained on"
            )
        targets = np.array([index[y] for y in examples.labels], np.int32)
    else:
        targets = np.asarray(examples.scores, np.float32)
    ids_a, ids_b = token_ids(tokenizer, examples.texts_a), token_ids(tokenizer, examples.texts_b)
    cut = sum(max(len(a), len(b)) > max_len for a, b in zip(ids_a, ids_b, strict=True))
    return EncodedPairs(
        tuple(np.asarray(a[:max_len], np.int32) for a in ids_a),
        tuple(np.asarray(b[:max_len], np.int32) for b in ids_b),
        targets,
        int(cut),
    )


class PairBatch(NamedTuple):
    """One padded batch of pairs; both sides are padded to the same bucket length ``L``.

    Attributes:
      ids_a: ``[B, L]`` int32 ids of the first texts, right-padded with ``PAD_ID``.
      ids_b: ``[B, L]`` int32 ids of the second texts.
      targets: ``[B]`` float32 scores or int32 class ids; 0 for filler rows.
      weights: ``[B]`` float32, 1 for real rows and 0 for filler rows.
    """

    ids_a: np.ndarray
    ids_b: np.ndarray
    targets: np.ndarray
    weights: np.ndarray


def make_pair_batches(
    seqs_a: Sequence[np.ndarray],
    seqs_b: Sequence[np.ndarray],
    targets: np.ndarray,
    *,
    batch_size: int,
    boundaries: Sequence[int],
    shuffle: bool,
    seed: int = 0,
    epoch: int = 0,
) -> list[PairBatch]:
    """Length-bucketed pair batches of exactly ``batch_size`` rows.

    A pair goes to the smallest boundary holding its longer side; rows and batches are
    shuffled with ``np.random.default_rng([seed, epoch])`` as in
    :func:`semalign.data.make_batches`; the last batch of a bucket gets weight-0 filler.

    Raises:
      ValueError: mismatched lengths, a bad ``batch_size`` or a sequence too long.
    """
    if not len(seqs_a) == len(seqs_b) == len(targets):
        raise ValueError(
            f"got {len(seqs_a)} first, {len(seqs_b)} second sequences, {len(targets)} targets"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    bounds = np.asarray(boundaries, np.int64)
    lengths = np.fromiter(
        (max(len(x), len(y)) for x, y in zip(seqs_a, seqs_b, strict=True)), np.int64, len(seqs_a)
    )
    if lengths.size and lengths.max() > bounds[-1]:
        raise ValueError(f"a sequence has {lengths.max()} ids, more than {bounds[-1]}")
    targets = np.asarray(targets)
    out: list[PairBatch] = []
    for length, rows in bucket_groups(
        lengths, bounds, batch_size, shuffle=shuffle, seed=seed, epoch=epoch
    ):
        ids = np.full((2, batch_size, length), PAD_ID, np.int32)
        for r, i in enumerate(rows):
            ids[0, r, : len(seqs_a[i])] = seqs_a[i]
            ids[1, r, : len(seqs_b[i])] = seqs_b[i]
        tgt = np.zeros(batch_size, targets.dtype)
        tgt[: rows.size] = targets[rows]
        weights = np.zeros(batch_size, np.float32)
        weights[: rows.size] = 1.0
        out.append(PairBatch(ids[0], ids[1], tgt, weights))
    return out
