"""From a :class:`DataConfig` to labelled splits, a tokenizer and padded batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tokenizers

from semalign.config import DataConfig
from semalign.data import (
    Batch,
    Examples,
    Splits,
    bucket_boundaries,
    encode_counted,
    load_builtin,
    make_batches,
    read_examples,
    split_examples,
)
from semalign.errors import DataError


def load_examples(data: DataConfig) -> Examples:
    """The whole labelled dataset named by ``data`` (built-in or a user file)."""
    if data.data is not None:
        return read_examples(
            Path(data.data), text_column=data.text_column, label_column=data.label_column
        )
    return load_builtin(str(data.dataset))


def load_splits(data: DataConfig) -> Splits:
    """Deterministic stratified train/validation/test split of ``data``."""
    return split_examples(load_examples(data), seed=data.split_seed)


@dataclass(frozen=True)
class Encoded:
    """A split as token ids with integer labels.

    Attributes:
      sequences: one int32 array ``[L_i]`` per text (``[CLS]`` first, no padding).
      labels: ``[N]`` int32 class indices.
      truncated: texts longer than ``max_len`` tokens, so cut.
    """

    sequences: tuple[np.ndarray, ...]
    labels: np.ndarray
    truncated: int = 0

    @property
    def real_tokens(self) -> int:
        """Tokens before padding."""
        return int(sum(len(s) for s in self.sequences))


def encode(
    examples: Examples,
    tokenizer: tokenizers.Tokenizer,
    labels: tuple[str, ...],
    max_len: int,
    truncation: str = "head",
) -> Encoded:
    """Token ids and class indices (``labels`` fixes the order); texts cut by ``truncation``.

    Raises:
      DataError: when a label is not one the model knows.
    """
    ids = class_indices(examples.labels, labels)
    seqs, truncated = encode_counted(
        tokenizer, list(examples.texts), max_len=max_len, truncation=truncation
    )
    return Encoded(sequences=tuple(seqs), labels=ids, truncated=truncated)


def class_indices(names: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """``[N]`` int32 index of each label name in ``labels`` (the model's class order).

    Raises:
      DataError: when a label is not one the model knows.
    """
    index = {lab: i for i, lab in enumerate(labels)}
    unknown = sorted({lab for lab in names if lab not in index})
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:5])
        raise DataError(
            f"labels {shown} are not among the model's classes ({', '.join(labels)}): "
            "evaluate on data with the classes the run was trained on"
        )
    return np.array([index[lab] for lab in names], np.int32)


def batches(
    encoded: Encoded,
    data: DataConfig,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    epoch: int = 0,
) -> list[Batch]:
    """Length-bucketed batches; shapes are ``(batch_size, bucket)``, no example dropped."""
    return make_batches(
        list(encoded.sequences),
        encoded.labels,
        batch_size=batch_size,
        boundaries=data.buckets or bucket_boundaries(data.max_len, max_buckets=data.max_buckets),
        shuffle=shuffle,
        seed=seed,
        epoch=epoch,
    )
