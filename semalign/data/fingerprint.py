"""Where a run's data came from: a fingerprint of the files and of each split's rows.

A run stores it as ``data.json``. ``evaluate`` on the run's own split and ``train --resume``
compute it again and refuse data whose split is no longer the run's (rows appended to a
CSV move rows between splits: the "test" split would hold training rows).

Standard library only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from semalign.errors import DataError

__all__ = ["check_fingerprint", "example_rows", "fingerprint", "path_sha256", "rows_sha256"]

_CHUNK = 1 << 20


def path_sha256(path: str | Path) -> str:
    """sha256 of a file, or of a folder's files (relative paths and contents, sorted)."""
    path = Path(path)
    if path.is_file():
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()
    digest = hashlib.sha256()
    for child in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(child.relative_to(path).as_posix().encode() + b"\0")
        digest.update(path_sha256(child).encode())
    return digest.hexdigest()


def example_rows(examples: Any) -> list[str]:
    """One canonical string per example of a container of parallel tuples.

    Works for any dataclass whose fields are sequences of one value per example
    (:class:`~semalign.data.Examples`, :class:`~semalign.data.pairs.PairExamples`);
    other fields (``None``, scalars) are skipped.
    """
    values = [getattr(examples, f.name) for f in dataclasses.fields(examples)]
    columns = [v for v in values if isinstance(v, (tuple, list))]
    return [json.dumps(list(row), ensure_ascii=False) for row in zip(*columns, strict=True)]


def rows_sha256(rows: Iterable[str]) -> str:
    """sha256 of rows in order (each row's bytes, then a separator)."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(row.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()


def fingerprint(
    source: str, path: str | Path | None, splits: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """The ``data.json`` of a run.

    Args:
      source: the data's name (a path or a built-in dataset).
      path: the file or folder read (None: a built-in dataset, fingerprinted by its rows).
      splits: split name -> its rows (:func:`example_rows`), in order.

    Returns:
      ``{"source", "sha256" (of the file or folder; None when built in), "splits":
      {name: {"rows", "sha256"}}}``.
    """
    return {
        "source": source,
        "sha256": None if path is None else path_sha256(path),
        "splits": {s: {"rows": len(r), "sha256": rows_sha256(r)} for s, r in splits.items()},
    }


def check_fingerprint(
    saved: Mapping[str, Any] | None,
    current: Mapping[str, Any],
    *,
    splits: Sequence[str],
    run: str,
    action: str,
) -> list[str]:
    """Refuse data whose ``splits`` are not the run's; returns note lines otherwise.

    Args:
      saved: the run's ``data.json`` (None: an older run without one).
      current: :func:`fingerprint` of the data now (only ``splits`` need to be in it).
      splits: the splits that must be the run's.
      run: the run folder, for messages.
      action: what the user can do instead, for the error.

    Raises:
      DataError: a split differs, naming the file and what changed.
    """
    if saved is None:
        return [f"note: run {run} has no data.json (older semalign): its data is not checked"]
    source = current["source"]
    was, now = saved.get("sha256"), current.get("sha256")
    file_changed = was is not None and now is not None and was != now
    what = (
        f"'{source}' changed (sha256 {was[:12]} -> {now[:12]})" if file_changed else f"'{source}'"
    )
    for name in splits:
        old, new = saved["splits"].get(name), current["splits"][name]
        if old is None or old == new:
            continue
        rows = (
            f"{old['rows']} rows -> {new['rows']} rows"
            if old["rows"] != new["rows"]
            else f"{new['rows']} rows, not the same ones"
        )
        raise DataError(
            f"data {what} since run {run} was trained: its {name} split is not the run's "
            f"({rows}); {action}"
        )
    if file_changed:
        return [
            f"note: data '{source}' changed since run {run} was trained, but its "
            f"{', '.join(splits)} split{'s are' if len(splits) > 1 else ' is'} the run's"
        ]
    return []
