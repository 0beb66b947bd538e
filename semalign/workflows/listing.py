"""The runs under a folder, with each task's selection metric named: ``semalign runs``.

Reads files only (:mod:`semalign.runs.listing`) and the JAX-free task specs, so listing
is instant. The validation number is the task's selection metric (``TaskSpec.metric``)
of the served checkpoint; the test number is the same metric in the test line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semalign import tasks
from semalign.errors import RunError
from semalign.runs.listing import RunRecord, find_runs, read_run

__all__ = ["RunListing", "RunRow", "list_runs", "row_of"]


@dataclass(frozen=True)
class RunRow:
    """One run in a listing.

    Attributes:
      name: the run's path relative to the listed folder (``study/dot-s0``).
      record: what its files say.
      metric: the task's selection metric (None: a task this semalign does not know).
      higher_is_better: its direction.
      validation: the metric on validation of the served (else best-so-far) epoch.
      test: the metric on the test split (None: unfinished or not recorded).
    """

    name: str
    record: RunRecord
    metric: str | None
    higher_is_better: bool | None
    validation: float | None
    test: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        r = self.record
        return {
            "name": self.name,
            "path": str(r.paths.root),
            "task": r.task,
            "scoring": r.scoring,
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "validation": self.validation,
            "test": self.test,
            "served": r.served,
            "served_epoch": r.served_epoch,
            "epochs_done": r.epochs_done,
            "epochs_planned": r.epochs_planned,
            "finished": r.finished,
            "version": r.version,
            "date": r.modified.isoformat(timespec="seconds"),
        }


@dataclass(frozen=True)
class RunListing:
    """Runs found under a folder, and the folders that could not be read (path, why)."""

    root: Path
    rows: tuple[RunRow, ...]
    unreadable: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "root": str(self.root),
            "runs": [r.to_dict() for r in self.rows],
            "unreadable": [{"path": p, "error": e} for p, e in self.unreadable],
        }


def row_of(record: RunRecord, name: str | None = None) -> RunRow:
    """A :class:`RunRow` of a record: the task's metric looked up and read."""
    spec = tasks.TASKS.get(record.task) if record.task in tasks.TASKS else None
    return RunRow(
        name=name or record.paths.name,
        record=record,
        metric=None if spec is None else spec.metric,
        higher_is_better=None if spec is None else spec.higher_is_better,
        validation=record.validation_score,
        test=None if spec is None else record.test_value(spec.test_metric),
    )


def list_runs(root: str | Path = "runs") -> RunListing:
    """Every run under ``root`` (study folders included), sorted by name.

    Raises:
      RunError: ``root`` is not a folder.
    """
    root = Path(root)
    rows, bad = [], []
    for path in find_runs(root):
        name = path.relative_to(root).as_posix() if path != root else path.name
        try:
            rows.append(row_of(read_run(path), name))
        except (RunError, OSError) as err:
            bad.append((str(path), str(err)))
    return RunListing(root, tuple(rows), tuple(bad))
