"""``semalign evaluate``: metrics of a run on a split, a built-in dataset or a file."""

from __future__ import annotations

import json
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


def evaluate(
    run: Annotated[str | None, typer.Option(help="Run folder (default: newest in ./runs).")] = None,
    dataset: Annotated[
        str | None, typer.Option(help="Built-in dataset instead of the run's.")
    ] = None,
    data: Annotated[
        str | None, typer.Option(help="CSV / TSV / JSONL file or label folders.")
    ] = None,
    text_column: Annotated[str, typer.Option(help="Text column of --data.")] = "text",
    label_column: Annotated[str, typer.Option(help="Label column of --data.")] = "label",
    text_a_column: Annotated[
        str | None,
        typer.Option(help="Pair runs: first-text column of --data (default: the run's)."),
    ] = None,
    text_b_column: Annotated[
        str | None,
        typer.Option(help="Pair runs: second-text column of --data (default: the run's)."),
    ] = None,
    score_column: Annotated[
        str | None,
        typer.Option(help="Similarity runs: score column of --data (default: the run's)."),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(help="train, validation, test or all (default: test; all for --data)."),
    ] = None,
    checkpoint: CheckpointOption = "served",
    long_texts: LongTextsOption = LongTexts.cut,
    truncation: TruncationOption = None,
    runs_dir: Annotated[str, typer.Option(help="Where runs live.")] = "runs",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Accuracy, macro-F1, per-class P/R/F1 and confusion; Pearson/Spearman for similarity.

    Example: semalign evaluate --run runs/imdb-dot --split validation
    """
    with user_errors():
        from semalign.workflows.evaluate import EvaluationRequest
        from semalign.workflows.evaluate import evaluate as run_evaluation

        result = run_evaluation(
            EvaluationRequest(
                run=run,
                runs_dir=runs_dir,
                dataset=dataset,
                data=data,
                text_column=text_column,
                label_column=label_column,
                text_a_column=text_a_column,
                text_b_column=text_b_column,
                score_column=score_column,
                split=split,
                checkpoint=checkpoint,
                truncation=truncation.value if truncation else None,
                long_texts=long_texts.value,
            )
        )
    if as_json:  # the JSON carries the notes and the truncated count
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    for note in result.notes:
        typer.echo(note, err=True)
    note = long_text_note(result.truncated, result.examples, long_texts.value)
    if note:
        typer.echo(note, err=True)
    from rich.console import Console

    from semalign.cli._progress import print_report

    title = f"{result.source} · {result.split} · {result.run} ({result.checkpoint})"
    print_report(Console(), title, result.report)
