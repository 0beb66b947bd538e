"""A corpus on disk, read by byte offsets: any text by its position, none held in memory.

One pass over the file(s) records where each text starts and ends (and a 64-bit digest
of it, so duplicates can be dropped without keeping the texts); a text is read back by
seeking there. :class:`TextLines` is a random-access data source in grain's sense
(``len`` and ``[i]``), so ``grain.MapDataset.source`` reads it. It holds 28 bytes a text
whatever the texts' length.

Texts are those :func:`semalign.data.corpus.read_texts` reads: a ``.txt`` file's
stripped, non-empty lines (split as :meth:`str.splitlines` splits), a ``.jsonl`` file's
``text_column``, or each ``.txt`` file of a folder (searched recursively). Imports no JAX.
"""

from __future__ import annotations

import codecs
import hashlib
import json
from array import array
from pathlib import Path

import numpy as np

from semalign.data.readers import json_line
from semalign.errors import DataError

__all__ = ["STREAM_SUFFIXES", "TextLines", "index_texts"]

#: File kinds a corpus can stream from (a folder of ``.txt`` files streams too).
STREAM_SUFFIXES = (".txt", ".jsonl")


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


class TextLines:
    """Texts of a file or folder by position, read from disk on each access.

    Attributes:
      path: the file or folder.
      kind: ``lines`` (``.txt``), ``jsonl`` or ``files`` (a folder).
      starts: ``[N]`` int64 byte offset of each text's line (its file index for a folder).
      ends: ``[N]`` int64 end of that line.
      parts: ``[N]`` int32 which :meth:`str.splitlines` piece of the line the text is.
      digests: ``[N]`` uint64 blake2b digest of each text (duplicates share one).
      text_column: the JSONL key of the text.
      files: a folder's ``.txt`` files, sorted.
    """

    def __init__(self, path, kind, starts, ends, parts, digests, text_column="text", files=()):
        self.path, self.kind, self.text_column = Path(path), kind, text_column
        self.starts, self.ends, self.parts, self.digests = starts, ends, parts, digests
        self.files = tuple(files)

    def __len__(self) -> int:
        return int(self.starts.size)

    def __getitem__(self, i: int) -> str:
        """The ``i``-th text (stripped), read from disk."""
        if self.kind == "files":
            file = self.files[int(self.starts[i])]
            return _decode(file.read_bytes().removeprefix(codecs.BOM_UTF8), file, 1).strip()
        return self.read_many(np.asarray([i]))[0]

    def read_many(self, positions: np.ndarray) -> list[str]:
        """The texts at ``positions``, in that order, through one open file."""
        if self.kind == "files":
            return [self[int(i)] for i in positions]
        out = []
        with open(self.path, "rb") as f:
            for i in positions:
                start = int(self.starts[i])
                f.seek(start)
                line = f.read(int(self.ends[i]) - start).decode("utf-8")
                if self.kind == "jsonl":
                    out.append(json.loads(line)[self.text_column].strip())
                else:
                    out.append(line.splitlines()[int(self.parts[i])].strip())
        return out

    def __repr__(self) -> str:
        return f"TextLines({str(self.path)!r}, {len(self)} texts)"


def _decode(raw: bytes, path: Path, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path} line {line} column {err.start + 1}: byte 0x{raw[err.start]:02x} is not "
            "valid UTF-8; re-save the file as UTF-8"
        ) from None


def _jsonl_text(line: str, path: Path, n: int, column: str) -> str:
    record = json_line(line, path, n)
    if not isinstance(record, dict) or column not in record:
        keys = record if isinstance(record, dict) else ()
        found = ", ".join(repr(k) for k in keys) or "(none, or not an object)"
        raise DataError(
            f"{path} line {n}: no key {column!r}; keys found: {found}; pick one with --text-column"
        )
    text = record[column]
    if not isinstance(text, str) or not text.strip():
        raise DataError(
            f"{path} line {n} key {column!r}: the text is empty or not a string; "
            "remove the line or write the text as a JSON string"
        )
    return text.strip()


def index_texts(path: str | Path, *, text_column: str = "text") -> TextLines:
    """Index every text of a ``.txt`` / ``.jsonl`` file or a folder of ``.txt`` files.

    Raises:
      DataError: a missing, unreadable, empty or malformed source (line named), or a
        file kind that cannot stream.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"text data '{path}' does not exist; check --data")
    try:
        if path.is_dir():
            return _index_folder(path)
        kind = {".txt": "lines", ".jsonl": "jsonl"}.get(path.suffix.lower())
        if kind is None:
            raise DataError(
                f"{path}: a corpus streams from a .txt or .jsonl file or a folder of .txt "
                "files; convert it to JSONL, or read it into memory with --no-stream"
            )
        return _index_file(path, kind, text_column)
    except OSError as err:
        raise DataError(
            f"cannot read {err.filename or path} ({err.strerror}); check that it exists "
            "and is readable"
        ) from None


def _index_folder(path: Path) -> TextLines:
    files = sorted(p for p in path.rglob("*.txt") if p.is_file())
    if not files:
        raise DataError(f"{path} holds no .txt files; put one text in each")
    keep, digests = array("q"), array("Q")
    for i, f in enumerate(files):
        raw = f.read_bytes()
        if raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        text = _decode(raw, f, 1).strip()
        if text:
            keep.append(i)
            digests.append(_digest(text))
    if not keep:
        raise DataError(f"{path} holds no text")
    starts = np.frombuffer(keep, np.int64).copy()
    return TextLines(
        path, "files", starts, starts, np.zeros(starts.size, np.int32), _np(digests), files=files
    )


def _np(digests: array) -> np.ndarray:
    return np.frombuffer(digests, np.uint64).copy()


def _index_file(path: Path, kind: str, column: str) -> TextLines:
    starts, ends, parts, digests = array("q"), array("q"), array("i"), array("Q")
    pos = 0
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            start, pos = pos, pos + len(raw)
            if n == 1 and raw.startswith(codecs.BOM_UTF8):
                start, raw = start + len(codecs.BOM_UTF8), raw[len(codecs.BOM_UTF8) :]
            line = _decode(raw, path, n)
            if kind == "jsonl":
                if line.strip():
                    texts = [(0, _jsonl_text(line, path, n, column))]
                else:
                    texts = []
            else:
                texts = [(k, t.strip()) for k, t in enumerate(line.splitlines()) if t.strip()]
            for k, text in texts:
                starts.append(start)
                ends.append(pos)
                parts.append(k)
                digests.append(_digest(text))
    if not starts:
        raise DataError(f"{path} holds no text; give it one text a line")
    return TextLines(
        path,
        kind,
        np.frombuffer(starts, np.int64).copy(),
        np.frombuffer(ends, np.int64).copy(),
        np.frombuffer(parts, np.int32).copy(),
        _np(digests),
        text_column=column,
    )
