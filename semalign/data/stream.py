"""A corpus larger than memory: split by position, its texts read from disk as used.

:func:`load_streamed` indexes the file or folder (:mod:`semalign.data.line_index`), drops
repeated texts by their digests and cuts the distinct ones with
:func:`~semalign.data.corpus.split_positions`, exactly as
:func:`~semalign.data.corpus.load_corpus` does in memory: the same seed puts the same
texts in the same split, and the run's ``data.json`` fingerprint is the same. A split is
a :class:`StreamedTexts`, positions into the index; memory grows by some 40 bytes a text,
not with the texts' length. Imports no JAX.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semalign.data.corpus import CorpusConfig, CorpusSplits, split_positions
from semalign.data.line_index import TextLines, index_texts
from semalign.errors import DataError

__all__ = [
    "SAMPLE_TEXTS",
    "STREAM_BYTES",
    "RowView",
    "StreamedTexts",
    "load_streamed",
    "streamed_all",
    "streams",
]

#: A file or folder larger than this streams unless ``stream=False``.
STREAM_BYTES = 256 << 20
#: At most this many texts, evenly spaced, train the tokenizer of a streamed corpus.
SAMPLE_TEXTS = 200_000


@dataclass(frozen=True)
class StreamedTexts:
    """One split of an indexed corpus: the example type of a streamed corpus task.

    Attributes:
      lines: the corpus index.
      rows: ``[n]`` int64 positions of the split's texts in ``lines``, increasing.
    """

    lines: TextLines
    rows: np.ndarray

    def __len__(self) -> int:
        return int(self.rows.size)

    def read(self, ks: np.ndarray) -> list[str]:
        """The texts at split positions ``ks`` (one open file for them all)."""
        return self.lines.read_many(self.rows[np.asarray(ks, np.int64)])

    def __iter__(self) -> Iterator[str]:
        """Every text in order, read in chunks."""
        for start in range(0, len(self), 1024):
            yield from self.read(np.arange(start, min(start + 1024, len(self))))

    def sample(self, limit: int = SAMPLE_TEXTS) -> Iterator[str]:
        """At most ``limit`` texts, evenly spaced (all of them when there are fewer)."""
        step = max(1, -(-len(self) // limit))
        ks = np.arange(0, len(self), step)
        for start in range(0, ks.size, 1024):
            yield from self.read(ks[start : start + 1024])


class RowView:
    """A split's fingerprint rows (``json.dumps([text])``), made while iterated."""

    def __init__(self, texts: StreamedTexts):
        self.texts = texts

    def __len__(self) -> int:
        return len(self.texts)

    def __iter__(self) -> Iterator[str]:
        return (json.dumps([t], ensure_ascii=False) for t in self.texts)


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*.txt") if p.is_file())
    return path.stat().st_size if path.is_file() else 0


def streams(cfg: CorpusConfig) -> bool:
    """Whether ``cfg``'s corpus is read from disk as it is used (never whole)."""
    if cfg.data is None:
        return False
    if cfg.stream is not None:
        return bool(cfg.stream)
    try:
        return _size(Path(cfg.data)) > STREAM_BYTES
    except OSError:
        return False  # the in-memory reader names the problem


def streamed_all(cfg: CorpusConfig) -> StreamedTexts:
    """Every text of the file or folder, in file order, repeats included."""
    lines = index_texts(str(cfg.data), text_column=cfg.text_column)
    return StreamedTexts(lines, np.arange(len(lines), dtype=np.int64))


def load_streamed(cfg: CorpusConfig) -> CorpusSplits:
    """The corpus of ``cfg.data`` split as :func:`~semalign.data.corpus.load_corpus` splits.

    A repeated text keeps its first position (found by 64-bit blake2b digest).

    Raises:
      DataError: a bad source or fewer than 3 distinct texts.
    """
    lines = index_texts(str(cfg.data), text_column=cfg.text_column)
    _, first = np.unique(lines.digests, return_index=True)
    unique = np.sort(first).astype(np.int64)
    if unique.size < 3:
        raise DataError(
            f"{cfg.source} holds {unique.size} distinct text(s); a train / validation / test "
            "split needs at least 3"
        )
    train, val, test = (
        StreamedTexts(lines, unique[p]) for p in split_positions(unique.size, cfg.split_seed)
    )
    return CorpusSplits(train, val, test, len(lines) - int(unique.size))
