"""Sentence pairs: the container, its splits and its data config.

Readers are in :mod:`semalign.data.pair_readers`, batches in :mod:`semalign.data.pair_batches`.

A pair dataset is two texts and one target per row: a similarity score (STS-B: 0-5) or a
class label (paraphrase / entailment). Readers report bad input as a one-line
:class:`~semalign.errors.DataError` naming the file, the line and what to do.

Formats (``format="auto"`` picks one by looking at the path):

- a folder holding split files, ``sts-{train,dev,test}.csv`` (the STS Benchmark as
  distributed) or ``{train,dev|validation,test}.{csv,tsv,jsonl}``: its own splits are used;
- ``stsb``: headerless, tab-separated (whatever the suffix), at least 7 fields: genre,
  file, year, id, score, sentence1, sentence2; trailing extra fields are ignored (197
  rows of the STS-B train split carry two source tags). A file whose first line looks
  like that is read as ``stsb``;
- ``csv`` / ``tsv``: a header row naming the columns (``--text-a-column``,
  ``--text-b-column``, ``--score-column`` or ``--label-column``);
- ``jsonl``: one object per line with those keys.

Imports numpy and ``tokenizers`` only, never JAX.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from semalign.config import check_tokenization
from semalign.errors import DataError

__all__ = [
    "PAIR_FORMATS",
    "STSB_MIN_FIELDS",
    "TARGETS",
    "PairDataConfig",
    "PairExamples",
    "PairSplits",
]

#: What a pair's target is: a number (similarity) or a class name (pair classification).
TARGETS = ("score", "label")

#: Pair file formats (their readers: :data:`semalign.data.pair_readers.PAIR_READERS`).
PAIR_FORMATS = ("stsb", "csv", "tsv", "jsonl")

#: STS-B rows: genre, file, year, id, score, sentence1, sentence2 (then optional extras).
STSB_MIN_FIELDS = 7


@dataclass(frozen=True)
class PairExamples:
    """Text pairs with one target each, in a fixed order.

    Exactly one of ``scores`` and ``labels`` is set.

    Attributes:
      texts_a: first texts, ``N`` of them.
      texts_b: second texts, ``N`` of them.
      scores: ``N`` similarity scores (similarity data), or None.
      labels: ``N`` class names (pair classification), or None.

    Raises:
      DataError: lengths differ, a text is not a string, or not exactly one target kind.

    >>> ex = PairExamples(("a cat", "a dog"), ("one cat", "a car"), scores=(4.5, 1.0))
    >>> len(ex), ex.target
    (2, 'score')
    """

    texts_a: tuple[str, ...]
    texts_b: tuple[str, ...]
    scores: tuple[float, ...] | None = None
    labels: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("texts_a", "texts_b", "scores", "labels"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(value))
        if (self.scores is None) == (self.labels is None):
            raise DataError("PairExamples needs exactly one of scores= and labels=")
        targets = self.scores if self.scores is not None else self.labels
        if not len(self.texts_a) == len(self.texts_b) == len(targets):
            raise DataError(
                f"PairExamples got {len(self.texts_a)} first texts, {len(self.texts_b)} "
                f"second texts and {len(targets)} targets; give one target per pair"
            )
        for name in ("texts_a", "texts_b"):
            values = getattr(self, name)
            bad = next((i for i, v in enumerate(values) if not isinstance(v, str)), None)
            if bad is not None:
                raise DataError(
                    f"PairExamples.{name}[{bad}] is {type(values[bad]).__name__}, not str"
                )

    def __len__(self) -> int:
        return len(self.texts_a)

    @property
    def target(self) -> str:
        """``"score"`` or ``"label"``."""
        return "score" if self.scores is not None else "label"

    @functools.cached_property
    def classes(self) -> tuple[str, ...]:
        """Distinct labels, sorted (empty for scored pairs)."""
        return tuple(sorted(set(self.labels))) if self.labels is not None else ()

    def subset(self, indices: Sequence[int] | np.ndarray) -> PairExamples:
        """The pairs at ``indices``, in that order."""
        idx = [int(i) for i in indices]

        def take(values):
            return None if values is None else tuple(values[i] for i in idx)

        return PairExamples(
            take(self.texts_a),
            take(self.texts_b),
            scores=take(self.scores),
            labels=take(self.labels),
        )

    def texts(self) -> list[str]:
        """Both sides' distinct texts, first-seen order (what a tokenizer is trained on)."""
        return list(dict.fromkeys((*self.texts_a, *self.texts_b)))


@dataclass(frozen=True)
class PairSplits:
    """Train / validation / test pairs.

    Attributes:
      train: pairs to fit on (and to train the tokenizer on).
      validation: pairs for model selection.
      test: pairs held out for the final number.
      duplicates_removed: repeated (text A, text B) pairs dropped before a split made
        here (0 when the data came with its own splits).
    """

    train: PairExamples
    validation: PairExamples
    test: PairExamples
    duplicates_removed: int = 0

    @property
    def sizes(self) -> tuple[int, int, int]:
        """``(len(train), len(validation), len(test))``."""
        return len(self.train), len(self.validation), len(self.test)


@dataclass(frozen=True)
class PairDataConfig:
    """Where sentence pairs come from and how they become token ids.

    Attributes:
      data: a pair file or a folder of split files (see the module docstring).
      format: ``auto``, ``stsb``, ``csv``, ``tsv`` or ``jsonl``.
      target: ``score`` (similarity) or ``label`` (pair classification).
      text_a_column: column (or JSON key) of the first text.
      text_b_column: column (or JSON key) of the second text.
      score_column: column of the score (``target="score"``).
      label_column: column of the label (``target="label"``).
      tokenizer: ``wordpiece`` or ``word``.
      vocab_size: tokenizer vocabulary size (special tokens included).
      max_len: tokens per text after truncation, ``[CLS]`` included.
      lowercase: lower-case before tokenizing.
      split_seed: seed of the 80/10/10 split of a single file.
      max_buckets: at most this many padded lengths (so compilations).
      score_range: ``(low, high)`` of the training scores, set by training; cosine-MSE
        maps scores to ``[0, 1]`` with it.
    """

    data: str
    format: str = "auto"
    target: str = "score"
    text_a_column: str = "sentence1"
    text_b_column: str = "sentence2"
    score_column: str = "score"
    label_column: str = "label"
    tokenizer: str = "wordpiece"
    vocab_size: int = 20_000
    max_len: int = 128
    lowercase: bool = True
    split_seed: int = 0
    max_buckets: int = 4
    score_range: tuple[float, float] | None = None

    def __post_init__(self):
        if not self.data:
            raise ValueError("give a pair file or a folder of split files with --data")
        if self.format not in ("auto", *PAIR_FORMATS):
            raise ValueError(
                f"format must be auto or one of {', '.join(PAIR_FORMATS)}, got {self.format!r}"
            )
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {self.target!r}")
        check_tokenization(self.vocab_size, self.max_len, self.max_buckets)
        if self.score_range is not None:
            low, high = (float(x) for x in self.score_range)
            if not high > low:
                raise ValueError(
                    f"score_range must be (low, high) with high > low, got {self.score_range!r}"
                )
            object.__setattr__(self, "score_range", (low, high))

    @property
    def source(self) -> str:
        """Human name of the data source."""
        return self.data

    @property
    def target_column(self) -> str:
        """The score or the label column, whichever ``target`` names."""
        return self.score_column if self.target == "score" else self.label_column
