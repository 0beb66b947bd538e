"""The runs under a folder (:class:`~semalign.workflows.listing.RunListing`) as a rich table."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

    from semalign.workflows.listing import RunListing

__all__ = ["table"]


def _value(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def table(listing: RunListing) -> Table:
    """Name, task, scoring, validation and test metric, epochs, date; one row a run."""
    from rich.table import Table

    t = Table(
        title=f"runs under {listing.root} ({len(listing.rows)})",
        title_justify="left",
        caption="validation and test: the task's metric of the served checkpoint "
        "(unfinished runs: best epoch so far, no test)",
        caption_justify="left",
    )
    for col in ("name", "task", "scoring", "metric", "validation", "test", "epochs", "date"):
        t.add_column(col, justify="right" if col in ("validation", "test", "epochs") else "left")
    for row in listing.rows:
        r = row.record
        planned = "?" if r.epochs_planned is None else str(r.epochs_planned)
        t.add_row(
            row.name,
            r.task,
            r.scoring,
            row.metric or "?",
            _value(row.validation),
            _value(row.test),
            f"{r.epochs_done}/{planned}" + ("" if r.finished else " (unfinished)"),
            r.modified.strftime("%Y-%m-%d %H:%M"),
        )
    return t
