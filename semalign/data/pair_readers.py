"""Readers of sentence-pair files: STS-B, CSV / TSV / JSONL with a header, split folders.

Bad input gets a one-line :class:`~semalign.errors.DataError` naming the file, the line
and what to do.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from semalign.data.examples import Examples
from semalign.data.pairs import (
    STSB_MIN_FIELDS,
    PairDataConfig,
    PairExamples,
    PairSplits,
)
from semalign.data.readers import read_table_text, table_rows
from semalign.data.split import split_examples
from semalign.errors import DataError
from semalign.registry import Registry

__all__ = ["PAIR_READERS", "load_pair_splits", "read_pairs", "split_pairs"]

_STSB_SCORE, _STSB_A, _STSB_B = 4, 5, 6
_SPLIT_NAMES = {"train": ("train",), "validation": ("dev", "validation"), "test": ("test",)}


def _text(value: str, where: str, column: str) -> str:
    if not value.strip():
        raise DataError(
            f"{where}: {column} is empty; every pair needs two texts, fill or remove it"
        )
    return value


def _score(value: str, where: str, column: str) -> float:
    try:
        score = float(value)
    except ValueError:
        raise DataError(
            f"{where}: {column} {value.strip()[:30]!r} is not a number; scores must be numeric "
            "(check the column order or --score-column)"
        ) from None
    if not math.isfinite(score):
        raise DataError(f"{where}: {column} is {value.strip()!r}; scores must be finite numbers")
    return score


def _label(value: str, where: str, column: str) -> str:
    if not value.strip():
        raise DataError(f"{where}: {column} is empty; fill or remove the pair")
    return value.strip()


def _target_parser(target: str) -> Callable[[str, str, str], float | str]:
    return _score if target == "score" else _label


def _build(a: list[str], b: list[str], targets: list, target: str, path: Path) -> PairExamples:
    if not a:
        raise DataError(f"{path} holds no pairs; add some")
    kw = {"scores": targets} if target == "score" else {"labels": targets}
    return PairExamples(tuple(a), tuple(b), **kw)


def _read_stsb(path: Path, cfg: PairDataConfig) -> PairExamples:
    parse = _target_parser(cfg.target)
    a, b, targets = [], [], []
    for line_no, raw in enumerate(read_table_text(path).split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        where = f"{path} line {line_no}"
        if len(fields) < STSB_MIN_FIELDS:
            raise DataError(
                f"{where}: {len(fields)} tab-separated fields, an STS-B row has at least "
                f"{STSB_MIN_FIELDS} (genre, file, year, id, score, sentence1, sentence2); "
                "check the tabs"
            )
        targets.append(parse(fields[_STSB_SCORE], where, "score"))
        a.append(_text(fields[_STSB_A], where, "sentence1"))
        b.append(_text(fields[_STSB_B], where, "sentence2"))
    return _build(a, b, targets, cfg.target, path)


def _read_table(path: Path, cfg: PairDataConfig, *, delimiter: str, quoting: int) -> PairExamples:
    rows = table_rows(path, delimiter=delimiter, quoting=quoting)
    parse = _target_parser(cfg.target)
    option = "--score-column" if cfg.target == "score" else "--label-column"
    wanted = (
        (cfg.text_a_column, "--text-a-column"),
        (cfg.text_b_column, "--text-b-column"),
        (cfg.target_column, option),
    )
    a, b, targets = [], [], []
    try:
        header = [name.strip() for name in next(rows)]
        at = []
        for column, flag in wanted:
            if column not in header:
                found = ", ".join(repr(h) for h in header)
                raise DataError(
                    f"{path} line 1: no column {column!r}; columns found: {found}; "
                    f"pick one with {flag}"
                )
            at.append(header.index(column))
        start = rows.line_num + 1
        for row in rows:
            line, start = start, rows.line_num + 1
            if not row:
                continue
            where = f"{path} line {line}"
            if len(row) != len(header):
                hint = "quote fields holding commas" if delimiter == "," else "check the tabs"
                raise DataError(
                    f"{where}: {len(row)} fields but the header has {len(header)}; {hint}"
                )
            a.append(_text(row[at[0]], where, cfg.text_a_column))
            b.append(_text(row[at[1]], where, cfg.text_b_column))
            targets.append(parse(row[at[2]], where, cfg.target_column))
    except csv.Error as err:
        raise DataError(
            f"{path} line {rows.line_num}: malformed {path.suffix[1:].upper()} ({err}); "
            "fix the quoting on that line"
        ) from None
    return _build(a, b, targets, cfg.target, path)


def _read_jsonl(path: Path, cfg: PairDataConfig) -> PairExamples:
    parse = _target_parser(cfg.target)
    keys = (cfg.text_a_column, cfg.text_b_column, cfg.target_column)
    a, b, targets = [], [], []
    for line_no, raw in enumerate(read_table_text(path).split("\n"), start=1):
        if not raw.strip():
            continue
        where = f"{path} line {line_no}"
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as err:
            raise DataError(
                f"{where} column {err.colno}: invalid JSON ({err.msg}); write one object per line"
            ) from None
        if not isinstance(record, dict):
            raise DataError(f"{where}: a JSON {type(record).__name__}, not an object")
        for key in keys:
            if key not in record:
                found = ", ".join(repr(k) for k in record) or "(none)"
                raise DataError(f"{where}: no key {key!r}; keys found: {found}")
        values = []
        for key in keys:
            value = record[key]
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise DataError(
                    f"{where} key {key!r}: {type(value).__name__} value; use a string or a number"
                )
            values.append(str(value))
        a.append(_text(values[0], where, keys[0]))
        b.append(_text(values[1], where, keys[1]))
        targets.append(parse(values[2], where, keys[2]))
    return _build(a, b, targets, cfg.target, path)


PairReader = Callable[[Path, PairDataConfig], PairExamples]

#: Pair file readers by format name (:data:`semalign.data.pairs.PAIR_FORMATS`).
PAIR_READERS: Registry[PairReader] = Registry("pair format")
PAIR_READERS.register("stsb", _read_stsb)
PAIR_READERS.register(
    "csv", functools.partial(_read_table, delimiter=",", quoting=csv.QUOTE_MINIMAL)
)
PAIR_READERS.register("tsv", functools.partial(_read_table, delimiter="\t", quoting=csv.QUOTE_NONE))
PAIR_READERS.register("jsonl", _read_jsonl)


def _looks_like_stsb(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as f:
        first = next((line for line in f if line.strip()), "")
    fields = first.rstrip("\r\n").split("\t")
    if len(fields) < STSB_MIN_FIELDS:
        return False
    try:
        float(fields[_STSB_SCORE])
    except ValueError:
        return False
    return True


def _format_of(path: Path, cfg: PairDataConfig) -> str:
    if cfg.format != "auto":
        return cfg.format
    suffix = path.suffix.lower().lstrip(".")
    if suffix == "jsonl":
        return "jsonl"
    if _looks_like_stsb(path):
        return "stsb"
    if suffix in ("csv", "tsv"):
        return suffix
    raise DataError(
        f"{path}: unknown pair format {path.suffix or '(no suffix)'!r}; use .csv, .tsv, .jsonl, "
        "an STS-B file, or pass the format"
    )


def read_pairs(path: str | os.PathLike[str], cfg: PairDataConfig) -> PairExamples:
    """Read one pair file (columns and format from ``cfg``; ``cfg.data`` is not used).

    Raises:
      DataError: missing file, unknown format, a missing column, a row with the wrong
        number of fields, a non-numeric score or an empty text; one line each.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder; give one pair file" if path.is_dir() else "does not exist"
        raise DataError(f"pair data {str(path)!r} {what}; check the path")
    return PAIR_READERS.get(_format_of(path, cfg))(path, cfg)


def _split_files(folder: Path) -> dict[str, Path] | None:
    """The folder's ``train`` / ``validation`` / ``test`` files, or None if it has none."""
    found: dict[str, Path] = {}
    files = {f.name.lower(): f for f in folder.iterdir() if f.is_file()}
    for split, names in _SPLIT_NAMES.items():
        for name in names:
            for candidate in (f"sts-{name}.csv", *(f"{name}.{s}" for s in ("csv", "tsv", "jsonl"))):
                if candidate in files and split not in found:
                    found[split] = files[candidate]
    return found or None


def load_pair_splits(cfg: PairDataConfig) -> PairSplits:
    """Train / validation / test pairs of ``cfg.data``.

    A folder's own split files are used as they are; a single file is split 80/10/10
    by :func:`split_pairs` with ``cfg.split_seed``.

    Raises:
      DataError: bad data, or a folder that lacks a split file.
    """
    path = Path(cfg.data)
    if not path.exists():
        raise DataError(f"pair data {str(path)!r} does not exist; check the path")
    if path.is_dir():
        files = _split_files(path)
        missing = [s for s in _SPLIT_NAMES if files is None or s not in files]
        if missing:
            raise DataError(
                f"{path} lacks the {', '.join(missing)} split file(s); a pair folder holds "
                "sts-{train,dev,test}.csv or {train,dev,test}.{csv,tsv,jsonl}"
            )
        return PairSplits(*(read_pairs(files[s], cfg) for s in _SPLIT_NAMES))
    return split_pairs(read_pairs(path, cfg), seed=cfg.split_seed)


def split_pairs(
    examples: PairExamples,
    *,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> PairSplits:
    """Deterministic, duplicate-free, stratified split of pairs.

    Repeated ``(text A, text B)`` pairs are dropped (the first is kept). Labelled pairs
    are stratified by label, scored pairs by score quintile; the rules are those of
    :func:`semalign.data.split_examples`, which does the work.

    >>> ex = PairExamples([f"a{i}" for i in range(10)], ["b"] * 10, scores=range(10))
    >>> split_pairs(ex, fractions=(0.6, 0.2, 0.2)).sizes
    (6, 2, 2)
    """
    keys = tuple(f"{a}\x1f{b}" for a, b in zip(examples.texts_a, examples.texts_b, strict=True))
    if examples.labels is not None:
        strata = examples.labels
    else:
        scores = np.asarray(examples.scores, np.float64)
        edges = np.quantile(scores, [0.2, 0.4, 0.6, 0.8]) if len(scores) else []
        strata = tuple(str(int(s)) for s in np.searchsorted(edges, scores, side="right"))
    index = {}
    for i, key in enumerate(keys):
        index.setdefault(key, i)
    parts = split_examples(Examples(keys, strata), seed=seed, fractions=fractions)
    subsets = (
        examples.subset([index[k] for k in part.texts])
        for part in (parts.train, parts.validation, parts.test)
    )
    return PairSplits(*subsets, duplicates_removed=parts.duplicates_removed)
