"""``semalign predict``: classify texts with a run (JAX) or its exported model (onnxruntime)."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from semalign.cli._errors import user_errors
from semalign.cli._long_texts import (
    CheckpointOption,
    LongTexts,
    LongTextsOption,
    TruncationOption,
    long_text_note,
)


class Backend(StrEnum):
    """Where the forward pass runs."""

    jax = "jax"
    onnx = "onnx"


def predict(
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to classify.")] = None,
    run: Annotated[str | None, typer.Option(help="Run folder (default: newest in ./runs).")] = None,
    file: Annotated[str | None, typer.Option(help="A UTF-8 file with one text per line.")] = None,
    backend: Annotated[
        Backend, typer.Option(help="jax (the checkpoint) or onnx (the run's model.onnx).")
    ] = Backend.jax,
    model: Annotated[
        str | None, typer.Option(help="An exported .onnx file (implies --backend onnx).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Texts per forward pass.")] = 32,
    checkpoint: CheckpointOption = "served",
    long_texts: LongTextsOption = LongTexts.cut,
    truncation: TruncationOption = None,
    runs_dir: Annotated[str, typer.Option(help="Where runs live.")] = "runs",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Label and class probabilities of each TEXT (and each line of --file).

    Example: semalign predict "A gripping, funny film." --file reviews.txt --long-texts chunks
    """
    with user_errors():
        # semalign.workflows.predict imports JAX only for the jax backend.
        from semalign.workflows.predict import predict as run_predict
        from semalign.workflows.predict import read_texts

        all_texts = list(texts or []) + (read_texts(file) if file is not None else [])
        result = run_predict(
            all_texts,
            run=run,
            runs_dir=runs_dir,
            backend=backend.value,
            model=model,
            batch_size=batch_size,
            checkpoint=checkpoint,
            long_texts=long_texts.value,
            truncation=truncation.value if truncation else None,
        )
    if as_json:  # the JSON carries the truncated count
        typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return
    note = long_text_note(
        result.truncated, len(result.predictions), long_texts.value, result.max_len
    )
    if note:
        typer.echo(note, err=True)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result.source} · {result.backend}")
    table.add_column("label")
    table.add_column("p", justify="right")
    table.add_column("text", overflow="fold")
    for p in result.predictions:
        table.add_row(p.label, f"{p.score:.3f}", p.text)
    Console().print(table)
