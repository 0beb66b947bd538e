"""``semalign scorings``: the registered scorings as a table."""

from __future__ import annotations

from typing import Annotated

import typer


def scorings(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the attention scorings: name, formula, fused or not, learnable or not.

    Example: semalign scorings --json
    """
    import json

    from rich.console import Console
    from rich.table import Table

    from semalign.attention import scoring

    specs = [scoring.get(name) for name in scoring.available()]
    if as_json:
        rows = [
            {
                "name": s.name,
                "formula": s.formula,
                "fused": s.fused,
                "parametric": s.parametric,
                "note": s.note,
            }
            for s in specs
        ]
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table(title="attention scorings", title_justify="left")
    for col in ("name", "score s(i, j)", "fused", "learnable", "note"):
        table.add_column(col)
    for s in specs:
        table.add_row(
            s.name, s.formula, "yes" if s.fused else "no", "yes" if s.parametric else "no", s.note
        )
    Console().print(table)
