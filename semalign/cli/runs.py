"""``semalign runs``: the runs under a folder (study folders included), as a table."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from semalign.cli._errors import user_errors


def runs(
    folder: Annotated[
        str, typer.Argument(help="Folder of runs; study folders inside are listed too.")
    ] = "runs",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List runs: name, task, scoring, validation and test metric, epochs, date.

    Example: semalign runs runs/compare-classification-rotten-tomatoes
    """
    from rich.console import Console

    with user_errors():
        from semalign.workflows.listing import list_runs

        listing = list_runs(folder)
    if as_json:
        typer.echo(json.dumps(listing.to_dict(), indent=2))
        return
    from semalign.render.run_list import CAPTION, tables

    console = Console()
    for table in tables(listing):
        console.print(table)
    if listing.rows:
        console.print(CAPTION, style="dim", highlight=False)
    else:
        console.print(f"no runs under {folder}: train one with `semalign train`", highlight=False)
    for path, error in listing.unreadable:
        console.print(f"not listed: {path}: {error}", highlight=False, markup=False)
