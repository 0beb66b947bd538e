"""``semalign devices``: the devices JAX sees and the mesh training would use."""

from __future__ import annotations

from typing import Annotated

import typer

from semalign.cli._errors import user_errors


def devices(
    mesh: Annotated[str | None, typer.Option(help="Mesh to check: auto or data=N,model=M.")] = None,
) -> None:
    """Show devices (platform, kind, process) and the ("data", "model") mesh."""
    from rich.console import Console
    from rich.table import Table

    with user_errors():
        import jax

        from semalign import sharding

        spec = sharding.parse_mesh(mesh, jax.device_count())
        built = sharding.make_mesh(spec)
    table = Table(title=f"{jax.device_count()} device(s), backend {jax.default_backend()}")
    for col in ("id", "platform", "kind", "process", "mesh position"):
        table.add_column(col)
    where = {
        d.id: pos
        for pos, d in zip(
            [(i, j) for i in range(spec.data) for j in range(spec.model)],
            built.devices.flat,
            strict=True,
        )
    }
    for d in jax.devices():
        pos = where.get(d.id)
        table.add_row(
            str(d.id),
            d.platform,
            d.device_kind,
            str(d.process_index),
            f"data {pos[0]}, model {pos[1]}" if pos else "unused",
        )
    console = Console()
    console.print(table)
    console.print(f"mesh {spec} over axes {sharding.AXES}; processes: {jax.process_count()}")
