"""Sentence pairs: the container, readers (STS Benchmark, CSV / TSV / JSONL), split, batches.

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

import csv
import functools
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from semalign.config import check_tokenization
from semalign.data.batching import bucket_groups
from semalign.data.examples import Examples
from semalign.data.readers import read_table_text, table_rows
from semalign.data.split import split_examples
from semalign.data.tokenizer import PAD_ID, encode_texts
from semalign.errors import DataError

__all__ = [
    "PAIR_FORMATS",
    "STSB_MIN_FIELDS",
    "TARGETS",
    "EncodedPairs",
    "PairBatch",
    "PairDataConfig",
    "PairExamples",
    "PairSplits",
    "encode_pairs",
    "load_pair_splits",
    "make_pair_batches",
    "read_pairs",
    "split_pairs",
]

#: What a pair's target is: a number (similarity) or a class name (pair classification).
TARGETS = ("score", "label")

#: STS-B rows: genre, file, year, id, score, sentence1, sentence2 (then optional extras).
STSB_MIN_FIELDS = 7
_STSB_SCORE, _STSB_A, _STSB_B = 4, 5, 6
_SPLIT_NAMES = {"train": ("train",), "validation": ("dev", "validation"), "test": ("test",)}


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


# --- readers ---------------------------------------------------------------------------------


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

PAIR_FORMATS: dict[str, PairReader] = {
    "stsb": _read_stsb,
    "csv": functools.partial(_read_table, delimiter=",", quoting=csv.QUOTE_MINIMAL),
    "tsv": functools.partial(_read_table, delimiter="\t", quoting=csv.QUOTE_NONE),
    "jsonl": _read_jsonl,
}
"""Pair file readers by format name: ``(path, config) -> PairExamples``."""


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
    return PAIR_FORMATS[_format_of(path, cfg)](path, cfg)


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


# --- token ids and batches -------------------------------------------------------------------


@dataclass(frozen=True)
class EncodedPairs:
    """Pairs as token ids.

    Attributes:
      seqs_a: one int32 array ``[La_i]`` per first text (``[CLS]`` first, no padding).
      seqs_b: the same for the second texts.
      targets: ``[N]`` float32 scores or int32 class indices.
    """

    seqs_a: tuple[np.ndarray, ...]
    seqs_b: tuple[np.ndarray, ...]
    targets: np.ndarray

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
    return EncodedPairs(
        tuple(encode_texts(tokenizer, list(examples.texts_a), max_len=max_len)),
        tuple(encode_texts(tokenizer, list(examples.texts_b), max_len=max_len)),
        targets,
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
