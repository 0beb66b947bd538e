"""``semalign train --task similarity | pair-classification``: options -> request -> tables."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import typer
from rich.table import Table

from semalign.cli._errors import user_errors
from semalign.cli._progress import RichReporter, confusion_table, report_table


class PairReporter(RichReporter):
    """:class:`RichReporter` with the pair tasks' metrics (Spearman, or accuracy)."""

    def start(self, info: Mapping[str, Any]) -> None:  # noqa: D102
        self.console.print(f"[bold]task[/] {info['task']}  [bold]loss[/] {info['loss']}")
        super().start(info)

    def step(self, step: int, metrics: Mapping[str, float]) -> None:  # noqa: D102
        acc = f" acc {metrics['accuracy']:.2%}" if "accuracy" in metrics else ""
        self.progress.update(
            self.step_task,
            completed=step,
            stats=f"loss {metrics['loss']:.4f}{acc} {metrics['tokens_per_second']:,.0f} tok/s",
        )

    def epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:  # noqa: D102
        self.progress.update(self.epoch_task, completed=epoch)
        mark = " [green]best[/]" if metrics.get("best") else ""
        if "val_spearman_cosine" in metrics:
            val = f"val Spearman (cosine) {100 * metrics['val_spearman_cosine']:.2f}"
        else:
            val = f"val acc {metrics['val_accuracy']:.2%}"
        self.progress.console.print(
            f"epoch {epoch}: train loss {metrics['train_loss']:.4f} · {val} · "
            f"val loss {metrics['val_loss']:.4f} · {metrics['epoch_seconds']:.0f} s{mark}"
        )


def similarity_table(title: str, report: Any) -> Table:
    """Pearson and Spearman × 100 of every embedding similarity."""
    table = Table(title=title, title_justify="left")
    for col in ("similarity", "Pearson × 100", "Spearman × 100"):
        table.add_column(col, justify="left" if col == "similarity" else "right")
    names = {"cosine": "cosine", "l2": "−L2 (euclidean)", "l1": "−L1 (manhattan)", "dot": "dot"}
    for name, c in report.correlations.items():
        table.add_row(names.get(name, name), f"{100 * c.pearson:.2f}", f"{100 * c.spearman:.2f}")
    table.add_section()
    table.add_row("pairs", "", str(report.count))
    return table


def print_report(console, title: str, report: Any) -> None:
    """A similarity table, or the classification tables."""
    from semalign.evaluate_pairs import SimilarityReport

    if isinstance(report, SimilarityReport):
        console.print(similarity_table(title, report))
    else:
        console.print(report_table(title, report))
        console.print(confusion_table(report))


def train_pairs(o: dict[str, Any]) -> None:
    """Run ``semalign train`` for a pair task; ``o`` holds the command's options."""
    from rich.console import Console

    from semalign.cli.train import model_options, train_config

    task = o["task"].value
    with user_errors():
        from semalign.data.pairs import PairDataConfig
        from semalign.errors import DataError
        from semalign.runs import newest_run
        from semalign.train_pairs import PairTrainRequest
        from semalign.train_pairs import train_pairs as run_training
        from semalign.workflows.train import SilentReporter

        if o["data"] is None:
            raise DataError(
                f"--task {task} needs --data: a pair file (CSV / TSV / JSONL / STS-B) or a "
                "folder of split files"
            )
        if o["mesh"] is not None or o["distributed"]:
            raise ValueError(f"--mesh and --distributed are not supported for --task {task} yet")
        runs_dir, name = o["runs_dir"], o["name"]
        resume = None
        if o["resume"]:
            resume = str(newest_run(runs_dir).root) if name is None else f"{runs_dir}/{name}"
        req = PairTrainRequest(
            data=PairDataConfig(
                data=o["data"],
                text_a_column=o["text_a_column"],
                text_b_column=o["text_b_column"],
                score_column=o["score_column"],
                label_column=o["label_column"],
                tokenizer=o["tokenizer"].value,
                vocab_size=o["vocab_size"],
                max_len=o["max_len"],
                split_seed=o["seed"],
            ),
            task=task,
            loss=o["loss"],
            train=train_config(o),
            model=model_options(o),
            runs_dir=runs_dir,
            name=name,
            overwrite=o["overwrite"],
            resume=resume,
            stop_after=o["stop_after"],
            tensorboard=o["tensorboard"],
        )
        quiet = o["quiet"] or o["as_json"]
        reporter = SilentReporter() if quiet else PairReporter()
        try:
            result = run_training(req, reporter)
        finally:
            if isinstance(reporter, RichReporter):
                reporter.stop()
    if o["as_json"]:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    if o["quiet"]:
        return
    console = Console()
    if result.test is None:
        console.print(
            f"stopped after epoch {result.epochs_done}; continue with "
            f"`semalign train --task {task} --data {o['data']} --resume --name {result.run.name}`"
        )
        return
    print_report(console, f"test ({result.run})", result.test)
    console.print(
        f"best epoch {result.best_epoch} of {result.epochs_done}"
        f"{' (early stop)' if result.stopped_early else ''} · {result.seconds:.0f} s · "
        f"{result.tokens_per_second:,.0f} train tokens/s · {result.compiled_shapes} batch shapes"
    )
