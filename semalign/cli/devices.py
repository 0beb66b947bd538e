"""``semalign devices``: the devices JAX sees and the mesh training would use."""

from __future__ import annotations

from typing import Annotated

import typer

from semalign.cli._errors import user_errors


def devices(
    mesh: Annotated[str | None, typer.Option(help="Mesh to check: auto or data=N,model=M.")] = None,
) -> None:
    """Show devices (platform, kind, process) and the ("data", "model") mesh.

    Example: semalign devices --mesh data=4,model=2
    """
    from rich.console import Console
    from rich.table import Table

    with user_errors():
        from semalign import sharding

        report = sharding.describe_devices(mesh)
    table = Table(title=f"{len(report.devices)} device(s), backend {report.backend}")
    for col in ("id", "platform", "kind", "process", "mesh position"):
        table.add_column(col)
    for device_id, platform, kind, process, pos in report.devices:
        table.add_row(
            str(device_id),
            platform,
            kind,
            str(process),
            f"data {pos[0]}, model {pos[1]}" if pos else "unused",
        )
    console = Console()
    console.print(table)
    console.print(f"mesh {report.spec} over axes {sharding.AXES}; processes: {report.processes}")
    from semalign.compile_cache import describe
    from semalign.data import token_cache

    console.print(describe(), highlight=False)
    console.print(token_cache.describe(), highlight=False)
