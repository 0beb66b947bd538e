"""``semalign inspect``: the attention of a run on texts, drawn or written to a file."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from semalign.cli._errors import user_errors


class Format(StrEnum):
    """Output formats (see :mod:`semalign.render`)."""

    terminal = "terminal"
    png = "png"
    svg = "svg"
    html = "html"
    json = "json"
    npz = "npz"


def inspect(
    texts: Annotated[
        list[str] | None,
        typer.Argument(help="Texts to inspect (quote each one).", show_default=False),
    ] = None,
    run: Annotated[str | None, typer.Option(help="Run folder (default: newest in ./runs).")] = None,
    file: Annotated[
        str | None, typer.Option("--file", help="A UTF-8 file of texts, one a line.")
    ] = None,
    layer: Annotated[
        str | None,
        typer.Option(help="Layer number (from 0) or all. Default: last in the terminal, all else."),
    ] = None,
    head: Annotated[str, typer.Option(help="Head number (from 0) or all.")] = "all",
    rollout: Annotated[
        bool, typer.Option("--rollout", help="Attention rollout across all layers and heads.")
    ] = False,
    fmt: Annotated[
        Format | None,
        typer.Option(
            "--format", "-f", help="Output format (default: from --out's suffix, else terminal)."
        ),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            "--out", "-o", help="File to write (default: attention.<format>; JSON prints)."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
    color: Annotated[
        bool, typer.Option("--color/--no-color", help="Colours in the terminal.")
    ] = True,
    checkpoint: Annotated[str, typer.Option(help="best or last.")] = "best",
    runs_dir: Annotated[str, typer.Option(help="Where runs live.")] = "runs",
) -> None:
    """Show which tokens attend to which: heat maps, PNG / SVG, HTML, JSON / NPZ, rollout."""
    from rich.console import Console

    console = Console(no_color=not color, highlight=False)
    with user_errors():
        from semalign import introspect, render

        given = list(texts or [])
        if file is not None:
            given += introspect.read_texts(file)
        given = introspect.check_texts(given)
        name = fmt.value if fmt is not None else render.format_for(out)
        paths = render.output_paths(name, out, len(given), overwrite=overwrite)
        report = introspect.attention(
            run,
            given,
            layer=layer if layer is not None else ("last" if name == "terminal" else "all"),
            head=head,
            rollout=rollout,
            runs_dir=runs_dir,
            which=checkpoint,
        )
        written = render.render(report, name, console=console, paths=paths)
    for path in written:
        Console(stderr=True, highlight=False).print(f"wrote {path}", markup=False)
