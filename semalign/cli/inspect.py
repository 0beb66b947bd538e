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
    pair: Annotated[
        str | None,
        typer.Option(
            "--pair",
            help="A second text: show how the text's tokens align with its tokens "
            "(terminal, json, png or svg).",
        ),
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
    checkpoint: Annotated[
        str, typer.Option(help="served (default: what training reported), best or last.")
    ] = "served",
    runs_dir: Annotated[str, typer.Option(help="Where runs live.")] = "runs",
) -> None:
    """Show which tokens attend to which: heat maps, PNG / SVG, HTML, JSON / NPZ, rollout.

    With --pair, the token-to-token alignment of two texts under the run's scoring.

    Example: semalign inspect "The cat sat on the mat" -o attention.html
    """
    if pair is not None:
        _inspect_pair(dict(locals()))
        return
    from rich.console import Console

    console = Console(no_color=not color, highlight=False)
    with user_errors():
        from semalign import render
        from semalign.workflows import introspect

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
        typer.echo(f"wrote {path}", err=True)  # whole, never wrapped: a path to copy


def _inspect_pair(o: dict) -> None:
    """``inspect TEXT --pair TEXT``; ``o`` holds the command's options."""
    from rich.console import Console

    console = Console(no_color=not o["color"], highlight=False)
    with user_errors():
        from semalign import render
        from semalign.errors import SemalignError
        from semalign.render.alignment import ALIGNMENT_FORMATS
        from semalign.workflows import align as alignment

        given = list(o["texts"] or [])
        if len(given) != 1 or o["file"] is not None:
            extra = " and --file" if o["file"] is not None else ""
            raise SemalignError(
                "--pair aligns one text with another: give exactly one TEXT "
                f"(got {len(given)}{extra})"
            )
        for flag, used in (("--layer", o["layer"] is not None), ("--rollout", o["rollout"])):
            if used:
                raise SemalignError(f"{flag} does not apply with --pair: drop it")
        fmt = o["fmt"]
        name = fmt.value if fmt is not None else render.format_for(o["out"])
        if name not in ALIGNMENT_FORMATS:
            raise SemalignError(
                f"--format {name} is not available with --pair: use {', '.join(ALIGNMENT_FORMATS)}"
            )
        paths = render.output_paths(name, o["out"], 1, overwrite=o["overwrite"])
        report = alignment.align(
            o["run"],
            given[0],
            o["pair"],
            head=o["head"],
            runs_dir=o["runs_dir"],
            which=o["checkpoint"],
        )
        renderer = ALIGNMENT_FORMATS[name]
        if renderer.draw is not None:
            renderer.draw(report, console)
        elif not paths:
            console.file.write(renderer.stdout(report) + "\n")
            console.file.flush()
        else:
            renderer.write(report, paths)
    for path in paths:
        typer.echo(f"wrote {path}", err=True)  # whole, never wrapped: a path to copy
