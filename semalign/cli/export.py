"""``semalign export onnx``: a run's classifier as one ONNX graph, parity-checked."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from semalign.cli._errors import user_errors

export_app = typer.Typer(
    help="Export a trained run (ONNX, checked against JAX in onnxruntime).",
    no_args_is_help=True,
    add_completion=False,
)


@export_app.command("onnx")
def onnx(
    run: Annotated[str | None, typer.Option(help="Run folder (default: newest in ./runs).")] = None,
    out: Annotated[
        str | None, typer.Option(help="The .onnx file (default: <run>/model.onnx).")
    ] = None,
    opset: Annotated[
        int, typer.Option(help="ONNX opset, 18-23 (23 has the fused Attention op).")
    ] = 23,
    with_attention: Annotated[
        bool, typer.Option(help="Add the attention weights output [B, layers, heads, S, S].")
    ] = False,
    embedding: Annotated[
        bool, typer.Option(help="Add the pooled embedding output [B, dim].")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
    checkpoint: Annotated[
        str, typer.Option(help="served (default: what training reported), best or last.")
    ] = "served",
    tolerance: Annotated[float, typer.Option(help="Largest |onnxruntime - JAX| accepted.")] = 1e-4,
    runs_dir: Annotated[str, typer.Option(help="Where runs live.")] = "runs",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Token ids + mask -> probabilities in one graph with symbolic batch and sequence axes.

    Example: semalign export onnx --run runs/imdb-dot --embedding
    """
    with user_errors():
        from semalign.workflows.export.onnx import export_onnx

        report = export_onnx(
            run,
            runs_dir=runs_dir,
            out=out,
            opset=opset,
            attention=with_attention,
            embedding=embedding,
            overwrite=overwrite,
            checkpoint=checkpoint,
            tolerance=tolerance,
        )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"onnxruntime vs JAX · max |Δ| per output (tolerance {tolerance:g})")
    table.add_column("batch", justify="right")
    table.add_column("seq", justify="right")
    for name in report.outputs:
        table.add_column(name, justify="right")
    for c in report.checks:
        table.add_row(
            str(c.batch), str(c.seq), *(f"{c.max_abs_diff[n]:.2e}" for n in report.outputs)
        )
    console = Console()
    console.print(table)
    console.print(
        f"wrote {report.path} ({report.size_bytes / 1e6:.1f} MB, opset {report.opset}) · "
        f"max |Δ| {report.max_abs_diff:.2e} · converted in {report.seconds['convert']:.1f} s, "
        f"verified in {report.seconds['verify']:.1f} s · report {report.run / 'export.json'}"
    )
