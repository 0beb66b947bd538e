"""``semalign embed``: sentence embeddings of a run, printed as JSON or saved (npy / JSON)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from semalign.cli._errors import user_errors
from semalign.cli.predict import Backend


def embed(
    texts: Annotated[
        list[str] | None,
        typer.Argument(help="Texts to embed (quote each one).", show_default=False),
    ] = None,
    run: Annotated[str | None, typer.Option(help="Run folder (default: newest in ./runs).")] = None,
    file: Annotated[
        str | None, typer.Option("--file", help="A UTF-8 file of texts, one a line.")
    ] = None,
    out: Annotated[
        str | None,
        typer.Option("--out", "-o", help="Save to a .npy (matrix) or .json file; else print JSON."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
    normalize: Annotated[
        bool,
        typer.Option("--normalize/--raw", help="L2-normalise (default) or keep the pooled state."),
    ] = True,
    backend: Annotated[
        Backend, typer.Option(help="jax (the checkpoint) or onnx (the run's model.onnx).")
    ] = Backend.jax,
    model: Annotated[
        str | None, typer.Option(help="An exported .onnx file (implies --backend onnx).")
    ] = None,
    checkpoint: Annotated[
        str, typer.Option(help="served (default), best or last (jax backend).")
    ] = "served",
    runs_dir: Annotated[str, typer.Option(help="Where runs live.")] = "runs",
) -> None:
    """Embed texts with a run (a similarity run's embedding; any run's pooled state).

    Example: semalign embed "A man plays a guitar." "Someone plays music." --out emb.npy
    """
    with user_errors():
        from semalign.workflows import embed as embedding
        from semalign.workflows import introspect

        given = list(texts or [])
        if file is not None:
            given += introspect.read_texts(file)
        given = introspect.check_texts(given)
        if out is not None:
            embedding.check_output(out, overwrite=overwrite)
        result = embedding.embed(
            run,
            given,
            runs_dir=runs_dir,
            which=checkpoint,
            normalize=normalize,
            backend=backend.value,
            model=model,
        )
        if out is not None:
            path = embedding.write_embeddings(result, out, overwrite=overwrite)
    if out is None:
        typer.echo(json.dumps(result.to_dict()))
        return
    n, dim = result.vectors.shape
    typer.echo(f"wrote {path} ({n} × {dim}, {'normalised' if normalize else 'raw'})", err=True)
