"""``semalign tasks``: the registered tasks as a table (no JAX)."""

from __future__ import annotations

from typing import Annotated

import typer


def tasks(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the tasks: data columns, selection metric, losses and what their runs support.

    Example: semalign tasks --json
    """
    import json

    from rich.console import Console
    from rich.table import Table

    from semalign import tasks as registry

    rows = [
        {
            "name": s.name,
            "summary": s.summary,
            "columns": list(s.columns),
            "metric": s.metric,
            "higher_is_better": s.higher_is_better,
            "losses": list(s.losses),
            "supports": sorted(s.capabilities),
        }
        for s in (registry.get(n) for n in registry.names())
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="tasks (semalign train --task NAME)", title_justify="left")
    for col in ("name", "data", "selects on", "losses", "supports", "what"):
        table.add_column(col)
    for r in rows:
        direction = "↑" if r["higher_is_better"] else "↓"
        table.add_row(
            r["name"],
            ", ".join(r["columns"]),
            f"{r['metric']} {direction}",
            ", ".join(r["losses"]),
            ", ".join(r["supports"]),
            r["summary"],
        )
    Console().print(table)
