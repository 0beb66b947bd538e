"""The runs under a folder (:class:`~semalign.workflows.listing.RunListing`) as rich tables."""

from __future__ import annotations

from itertools import groupby
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

    from semalign.workflows.listing import RunListing, RunRow

__all__ = ["tables"]

CAPTION = (
    "validation, test: the task's metric of the served checkpoint (unfinished runs: "
    "best epoch so far, no test); date: last written"
)


def _value(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _table(title: str, rows: list[RunRow]) -> Table:
    from rich.table import Table

    # What every row shares goes to the title; the columns keep what differs.
    tasks = {row.record.task for row in rows}
    metrics = {row.metric or "?" for row in rows}
    task = next(iter(tasks)) if len(tasks) == 1 else None
    metric = next(iter(metrics)) if len(metrics) == 1 else None
    shared = [f"task {task}"] if task else []
    shared += [f"metric {metric}"] if metric else []
    t = Table(title=" · ".join([title, *shared]), title_justify="left")
    # Names (what --run takes) and numbers stay whole; the rest wraps on a narrow terminal.
    t.add_column("name", no_wrap=True)
    if task is None:
        t.add_column("task")
    t.add_column("scoring")
    if metric is None:
        t.add_column("metric")
    for head in ("validation", "test", "epochs"):
        t.add_column(head, justify="right", no_wrap=True)
    t.add_column("date")
    for row in rows:
        r = row.record
        planned = "?" if r.epochs_planned is None else str(r.epochs_planned)
        t.add_row(
            row.name.rpartition("/")[2],
            *([] if task else [r.task]),
            r.scoring.replace(",", ", "),
            *([] if metric else [row.metric or "?"]),
            _value(row.validation),
            _value(row.test),
            f"{r.epochs_done}/{planned}" + ("" if r.finished else " unfinished"),
            r.modified.strftime("%Y-%m-%d %H:%M"),
        )
    return t


def tables(listing: RunListing) -> list[Table]:
    """One table per folder holding runs (the listed folder, then each study folder)."""
    out = []
    for folder, rows in groupby(listing.rows, key=lambda row: row.name.rpartition("/")[0]):
        rows = list(rows)
        where = listing.root / folder if folder else listing.root
        out.append(_table(f"runs in {where} ({len(rows)})", rows))
    return out
