"""BERT-style masking of token ids (numpy; no JAX).

Of a text's maskable tokens (every token but the special ones: ``[PAD]``, ``[UNK]``,
``[CLS]``, ``[SEP]``, ``[MASK]``), ``round(rate · n)`` (at least one) are chosen to be
predicted; each chosen token becomes ``[MASK]`` with probability 0.8, a random ordinary
token with 0.1, and stays with 0.1 (Devlin et al. 2019, §3.1 and appendix C.2). With
whole-word masking the draw is over words: a WordPiece ``##`` piece belongs to the word
before it, and words are added in random order while they fit the budget (Google's
``create_pretraining_data.py`` does the same).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from semalign.data.tokenizer import MASK_ID, SPECIAL_TOKENS

__all__ = [
    "MASK_SHARE",
    "RANDOM_SHARE",
    "continuation_table",
    "mask_batch",
    "mask_row",
    "predictions_per_row",
]

#: Shares of the chosen tokens replaced by ``[MASK]`` and by a random token; the rest stay.
MASK_SHARE, RANDOM_SHARE = 0.8, 0.1


def continuation_table(vocab: dict[str, int], size: int) -> np.ndarray:
    """``[size]`` bool: whether token id ``i`` continues the word before it (``##x``)."""
    table = np.zeros(size, bool)
    for token, i in vocab.items():
        if token.startswith("##") and i < size:
            table[i] = True
    return table


def predictions_per_row(length: int, rate: float) -> int:
    """Prediction slots of a batch of padded length ``length``: enough for any row."""
    return max(1, int(np.ceil(rate * length)))


def _words(ids: np.ndarray, continues: np.ndarray | None) -> list[np.ndarray]:
    """Maskable positions grouped into words (one position a word without ``continues``)."""
    maskable = np.flatnonzero(ids >= len(SPECIAL_TOKENS))
    if continues is None or maskable.size == 0:
        return [maskable[i : i + 1] for i in range(maskable.size)]
    starts = ~continues[ids[maskable]]
    # A continuation right after a special token (or another word's gap) starts a word.
    gap = np.diff(maskable, prepend=-2) != 1
    starts = starts | gap
    return np.split(maskable, np.flatnonzero(starts)[1:])


def mask_row(
    ids: np.ndarray,
    rng: np.random.Generator,
    *,
    rate: float,
    vocab_size: int,
    continues: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mask one text.

    Args:
      ids: ``[L]`` int token ids (``[CLS]`` first, no padding).
      rng: the draw (the same generator state gives the same masks).
      rate: share of maskable tokens to predict.
      vocab_size: random replacements are drawn from the ordinary ids
        ``[len(SPECIAL_TOKENS), vocab_size)``.
      continues: :func:`continuation_table` for whole-word masking; None masks tokens.

    Returns:
      ``(inputs [L], positions [n], targets [n])``: the ids the model reads, the
      positions to predict (increasing) and their original ids.

    >>> ids = np.array([2, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 3])
    >>> inputs, positions, targets = mask_row(ids, np.random.default_rng(0), rate=0.15,
    ...                                       vocab_size=30)
    >>> positions.size, bool(np.all(targets == ids[positions]))
    (2, True)
    """
    ids = np.asarray(ids)
    words = _words(ids, continues)
    total = sum(w.size for w in words)
    inputs = ids.copy()
    if total == 0:
        return inputs, np.zeros(0, np.int64), np.zeros(0, ids.dtype)
    budget = max(1, int(round(rate * total)))
    chosen: list[np.ndarray] = []
    taken = 0
    for k in rng.permutation(len(words)):
        if taken + words[k].size > budget:
            continue
        chosen.append(words[k])
        taken += words[k].size
        if taken == budget:
            break
    if not chosen:  # every word is longer than the budget: nothing to predict here
        return inputs, np.zeros(0, np.int64), np.zeros(0, ids.dtype)
    positions = np.sort(np.concatenate(chosen))
    u = rng.random(positions.size)
    replace = rng.integers(len(SPECIAL_TOKENS), vocab_size, positions.size)
    inputs[positions] = np.where(
        u < MASK_SHARE,
        MASK_ID,
        np.where(u < MASK_SHARE + RANDOM_SHARE, replace, ids[positions]),
    )
    return inputs, positions, ids[positions]


def mask_batch(
    rows: Sequence[np.ndarray],
    length: int,
    rng: np.random.Generator,
    *,
    rate: float,
    vocab_size: int,
    continues: np.ndarray | None = None,
    batch_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mask and pad rows: ``(ids [B, length], positions [B, P], targets [B, P])``.

    ``P`` is :func:`predictions_per_row` of ``length``; unused slots hold position 0 and
    target 0 (``[PAD]``, never a target), so the loss skips them. ``B`` is ``batch_size``
    (filler rows all zeros) or ``len(rows)``.
    """
    b = len(rows) if batch_size is None else batch_size
    p = predictions_per_row(length, rate)
    ids = np.zeros((b, length), np.int32)
    positions = np.zeros((b, p), np.int32)
    targets = np.zeros((b, p), np.int32)
    for r, row in enumerate(rows):
        inputs, pos, tgt = mask_row(row, rng, rate=rate, vocab_size=vocab_size, continues=continues)
        ids[r, : len(row)] = inputs
        positions[r, : pos.size] = pos
        targets[r, : pos.size] = tgt
    return ids, positions, targets
