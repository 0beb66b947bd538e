"""Read labelled texts from CSV, TSV, JSONL or a folder-per-label tree.

Every reader returns :class:`~semalign.data.examples.Examples` and reports bad
input as a one-line :class:`~semalign.errors.DataError` naming the file, the
row or line, and the column.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from semalign.data.examples import Examples
from semalign.errors import DataError
from semalign.registry import Registry

Reader = Callable[[Path, str, str], Examples]
"""A file reader: ``(path, text_column, label_column) -> Examples``."""

_FIELD_LIMIT = min(sys.maxsize, 2**31 - 1)


def read_examples(
    path: str | os.PathLike[str],
    *,
    text_column: str = "text",
    label_column: str = "label",
) -> Examples:
    """Read labelled texts from a file or a folder.

    Formats, chosen by the file suffix (case-insensitive):

    - ``.csv``: comma-separated with a header row; quote fields holding commas,
      quotes or newlines (RFC 4180).
    - ``.tsv``: tab-separated with a header row, no quoting: a field cannot
      hold a tab or a newline.
    - ``.jsonl``: one JSON object per line; labels may be strings or integers.
    - a directory: ``path/<label>/*.txt``, one text per file, like aclImdb's
      ``train/pos/*.txt``. Every subfolder holding ``.txt`` files is a class;
      other subfolders and hidden ones are ignored.

    Files must be UTF-8 (a byte-order mark is allowed). Texts are kept as they
    are; labels are stripped of surrounding whitespace.

    Args:
        path: The file or folder.
        text_column: Column (or JSON key) holding the text.
        label_column: Column (or JSON key) holding the label.

    Returns:
        The examples in file order (for a folder: classes sorted, files sorted
        by name).

    Raises:
        DataError: If the path is missing, the format unknown, the file empty
            or not UTF-8, a column missing, or a text or label empty.

    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"data path {str(path)!r} does not exist; check the path")
    if path.is_dir():
        return _read_folder(path)
    if path.suffix.lower() not in READERS:
        supported = ", ".join(sorted(READERS))
        raise DataError(
            f"{path}: unknown data format {path.suffix or '(no suffix)'!r}; "
            f"use one of {supported} or a folder of <label>/*.txt"
        )
    return READERS.get(path.suffix.lower())(path, text_column, label_column)


def _decode(path: Path) -> str:
    """Read ``path`` as UTF-8; the DataError names the line of a bad byte."""
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise DataError(
            f"{path} line {line} column {column}: byte 0x{data[err.start]:02x} is not "
            "valid UTF-8; re-save the file as UTF-8"
        ) from None
    return text


def read_table_text(path: Path) -> str:
    """The UTF-8 text of a data file that must hold more than whitespace.

    Raises:
      DataError: unreadable, not UTF-8 (line and column named) or empty.
    """
    text = _decode(path)
    if not text.strip():
        raise DataError(f"{path} is empty; give it a header row and labelled texts")
    return text


def table_rows(path: Path, *, delimiter: str, quoting: int) -> Iterator[list[str]]:
    """Rows of a delimited file (CSV / TSV), header first; fields of any size.

    Raises:
      DataError: as :func:`read_table_text`. Malformed quoting surfaces as
        ``csv.Error`` while iterating.
    """
    csv.field_size_limit(_FIELD_LIMIT)  # reviews can exceed the 128 KiB default
    return csv.reader(
        io.StringIO(read_table_text(path), newline=""),
        delimiter=delimiter,
        quoting=quoting,
        strict=True,
    )


def _require(value: str, where: str, what: str) -> str:
    """Return ``value``; DataError if it is empty or whitespace."""
    if not value.strip():
        raise DataError(f"{where}: the {what} is empty; remove or fill it")
    return value


def _read_delimited(
    path: Path, text_column: str, label_column: str, *, delimiter: str, quoting: int
) -> Examples:
    """Read a header-first delimited file (CSV or TSV)."""
    rows = table_rows(path, delimiter=delimiter, quoting=quoting)
    try:
        header = [name.strip() for name in next(rows)]
        columns = []
        for column in (text_column, label_column):
            if column not in header:
                found = ", ".join(repr(h) for h in header)
                option = "--text-column" if column == text_column else "--label-column"
                raise DataError(
                    f"{path} line 1: no column {column!r}; columns found: {found}; "
                    f"pick one with {option}"
                )
            columns.append(header.index(column))
        text_at, label_at = columns
        texts: list[str] = []
        labels: list[str] = []
        start = rows.line_num + 1  # The line a record starts on; records may span lines.
        for row in rows:
            line, start = start, rows.line_num + 1
            if not row:
                continue  # A blank line.
            where = f"{path} row {len(texts) + 1} (line {line})"
            if len(row) != len(header):
                hint = "quote fields holding commas" if delimiter == "," else "check the tabs"
                raise DataError(
                    f"{where}: {len(row)} fields but the header has {len(header)}; {hint}"
                )
            texts.append(_require(row[text_at], f"{where} column {text_column!r}", "text"))
            label = _require(row[label_at], f"{where} column {label_column!r}", "label")
            labels.append(label.strip())
    except csv.Error as err:
        raise DataError(
            f"{path} line {rows.line_num}: malformed {path.suffix[1:].upper()} ({err}); "
            "fix the quoting on that line"
        ) from None
    if not texts:
        raise DataError(f"{path} has a header but no rows; add labelled texts")
    return Examples(texts=tuple(texts), labels=tuple(labels))


def _json_label(value: object, path: Path, line: int, column: str) -> str:
    """Turn a JSON label into a string: strip strings, spell out integers and booleans."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _require(value, f"{path} line {line} key {column!r}", "label").strip()
    if value is None:
        raise DataError(f"{path} line {line} key {column!r}: the label is null; remove or fill it")
    raise DataError(
        f"{path} line {line} key {column!r}: label {value!r} is {type(value).__name__}; "
        "use a string or an integer"
    )


def json_line(raw: str, path: Path, line: int):
    """One line of a JSONL file, parsed; invalid JSON is a one-line :class:`DataError`."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError as err:
        raise DataError(
            f"{path} line {line} column {err.colno}: invalid JSON ({err.msg}); "
            "write one JSON object per line"
        ) from None


def _read_jsonl(path: Path, text_column: str, label_column: str) -> Examples:
    """Read one JSON object per line."""
    texts: list[str] = []
    labels: list[str] = []
    # JSON strings cannot hold a raw newline, so "\n" is the only line separator.
    for line, raw in enumerate(read_table_text(path).split("\n"), start=1):
        if not raw.strip():
            continue
        record = json_line(raw, path, line)
        if not isinstance(record, dict):
            raise DataError(
                f"{path} line {line}: a JSON {type(record).__name__}, not an object; "
                'write one object per line, e.g. {"text": "...", "label": "pos"}'
            )
        for key in (text_column, label_column):
            if key not in record:
                found = ", ".join(repr(k) for k in record)
                option = "--text-column" if key == text_column else "--label-column"
                raise DataError(
                    f"{path} line {line}: no key {key!r}; keys found: {found or '(none)'}; "
                    f"pick one with {option}"
                )
        text = record[text_column]
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise DataError(
                f"{path} line {line} key {text_column!r}: the text is "
                f"{type(text).__name__}, not a string; write the text as a JSON string"
            )
        texts.append(_require(text, f"{path} line {line} key {text_column!r}", "text"))
        labels.append(_json_label(record[label_column], path, line, label_column))
    return Examples(texts=tuple(texts), labels=tuple(labels))


def _class_folders(root: Path) -> Iterator[tuple[str, list[Path]]]:
    """``(label, sorted .txt files)`` for each non-hidden subfolder holding any."""
    for folder in sorted(root.iterdir()):
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        files = sorted(f for f in folder.glob("*.txt") if f.is_file())
        if files:
            yield folder.name, files


def _read_folder(root: Path) -> Examples:
    """Read ``root/<label>/*.txt``, one text per file."""
    texts: list[str] = []
    labels: list[str] = []
    for label, files in _class_folders(root):
        for file in files:
            text = _decode(file)
            if not text.strip():
                raise DataError(f"{file} holds no text; remove or fill it")
            texts.append(text)
            labels.append(label)
    if not texts:
        raise DataError(f"{root} holds no <label>/*.txt files; put each class in its own subfolder")
    return Examples(texts=tuple(texts), labels=tuple(labels))


READERS: Registry[Reader] = Registry("reader")
READERS.register(
    ".csv", functools.partial(_read_delimited, delimiter=",", quoting=csv.QUOTE_MINIMAL)
)
READERS.register(".tsv", functools.partial(_read_delimited, delimiter="\t", quoting=csv.QUOTE_NONE))
READERS.register(".jsonl", _read_jsonl)
"""File readers keyed on the lower-case suffix. Folders are read separately."""
