"""Plain text corpora for language modelling: texts only, no labels.

Sources: a built-in dataset's reviews (the **training split of the classification split**
for training, so no validation or test review is ever trained on), a ``.txt`` file (one
text a line), a CSV / TSV / JSONL file's text column, or a folder of ``.txt`` files (one
text each, searched recursively). A file or folder is de-duplicated and split 80/10/10
with the seed (:func:`split_positions`); a large one streams instead
(:mod:`semalign.data.stream`), split the same way. Imports no JAX.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semalign.config import check_tokenization, split_seed_option
from semalign.data.builtin import load_builtin
from semalign.data.readers import read_examples, read_table_text
from semalign.data.split import split_examples
from semalign.errors import DataError

__all__ = [
    "CorpusConfig",
    "CorpusSplits",
    "Texts",
    "corpus_fields",
    "load_corpus",
    "read_texts",
    "split_positions",
    "with_data",
]


@dataclass(frozen=True)
class CorpusConfig:
    """Where a corpus comes from and how it becomes token ids.

    Attributes:
      dataset: built-in dataset name (``imdb``, ``rotten-tomatoes``); ignored when
        ``data`` is set.
      data: a ``.txt`` file, a CSV / TSV / JSONL file (``text_column``) or a folder of
        ``.txt`` files.
      text_column: text column of a table file.
      tokenizer: ``wordpiece`` or ``word``.
      vocab_size: tokenizer vocabulary size (special tokens included).
      max_len: tokens per sequence (``[CLS]`` first, ``[SEP]`` last when the text fits).
      lowercase: lower-case before tokenizing.
      split_seed: seed of the split.
      max_buckets: at most this many padded lengths (so compilations).
      stream: read a file or folder from disk as it is used, never whole
        (:mod:`semalign.data.stream`); None: when it is larger than
        :data:`~semalign.data.stream.STREAM_BYTES`. Both ways give the same splits.
    """

    dataset: str | None = "imdb"
    data: str | None = None
    text_column: str = "text"
    tokenizer: str = "wordpiece"
    vocab_size: int = 8_000
    max_len: int = 128
    lowercase: bool = True
    split_seed: int = 0
    max_buckets: int = 4
    stream: bool | None = None

    def __post_init__(self):
        if self.dataset is None and self.data is None:
            raise ValueError("give a built-in dataset name or a text file or folder")
        check_tokenization(self.vocab_size, self.max_len, self.max_buckets)
        if self.stream and self.data is None:
            raise ValueError(
                "--stream reads a file or folder given with --data; a built-in dataset is "
                "read into memory"
            )

    @property
    def source(self) -> str:
        """Human name of the data source."""
        return self.data if self.data is not None else str(self.dataset)


@dataclass(frozen=True)
class Texts:
    """Texts in a fixed order (``texts``), the example type of a corpus split."""

    texts: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class CorpusSplits:
    """Train / validation / test texts; ``duplicates_removed`` repeated texts dropped.

    Each split is :class:`Texts`, or a :class:`~semalign.data.stream.StreamedTexts` when
    the corpus streams.
    """

    train: Texts
    validation: Texts
    test: Texts
    duplicates_removed: int = 0


def corpus_fields(o: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`CorpusConfig` fields from ``semalign train``'s options."""
    return {
        "dataset": o["dataset"],
        "data": o["data"],
        "text_column": o["text_column"],
        "tokenizer": o["tokenizer"],
        "vocab_size": o["vocab_size"],
        "max_len": o["max_len"],
        "split_seed": split_seed_option(o),
        "stream": o.get("stream"),
    }


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in read_table_text(path).splitlines() if line.strip()]


def read_texts(cfg: CorpusConfig) -> list[str]:
    """Every text of ``cfg.data`` in file order.

    Raises:
      DataError: a missing, unreadable or empty source, or a missing column.
    """
    path = Path(str(cfg.data))
    if not path.exists():
        raise DataError(f"text data '{path}' does not exist; check --data")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise DataError(f"{path} holds no .txt files; put one text in each")
        texts = [read_table_text(f).strip() for f in files]
    elif path.suffix.lower() == ".txt":
        texts = _lines(path)
    else:
        table = read_examples(path, text_column=cfg.text_column, label_column=cfg.text_column)
        texts = list(table.texts)
    texts = [t for t in texts if t]
    if not texts:
        raise DataError(f"{path} holds no text")
    return texts


def load_corpus(cfg: CorpusConfig) -> CorpusSplits:
    """The corpus split into train / validation / test texts.

    A built-in dataset uses the classification split (same seed), so the texts a
    classifier is tested on never reach the language model's training split.

    Raises:
      DataError: a bad source or fewer than 3 distinct texts.
    """
    if cfg.data is None:
        splits = split_examples(load_builtin(str(cfg.dataset)), seed=cfg.split_seed)
        return CorpusSplits(
            Texts(tuple(splits.train.texts)),
            Texts(tuple(splits.validation.texts)),
            Texts(tuple(splits.test.texts)),
            splits.duplicates_removed,
        )
    texts = read_texts(cfg)
    unique = list(dict.fromkeys(texts))
    if len(unique) < 3:
        raise DataError(
            f"{cfg.source} holds {len(unique)} distinct text(s); a train / validation / test "
            "split needs at least 3"
        )
    train, val, test = (
        Texts(tuple(unique[i] for i in p)) for p in split_positions(len(unique), cfg.split_seed)
    )
    return CorpusSplits(train, val, test, len(texts) - len(unique))


def split_positions(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions ``0 .. n-1`` of distinct texts cut 80/10/10: ``(train, validation, test)``.

    Validation and test get ``max(1, n // 10)`` each, drawn by a permutation seeded with
    ``seed``; each part is sorted (file order). Streamed and in-memory corpora share it,
    so both put the same texts in the same split.
    """
    order = np.random.default_rng(seed).permutation(n)
    n_val = n_test = max(1, n // 10)
    parts = np.split(order, [n - n_val - n_test, n - n_test])
    return tuple(np.sort(p) for p in parts)


def with_data(cfg: CorpusConfig, data: str) -> CorpusConfig:
    """``cfg`` reading another file or folder."""
    return dataclasses.replace(cfg, dataset=None, data=data)
