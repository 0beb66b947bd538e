"""Rich rendering of training progress (the library reports, this draws)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table


class RichReporter:
    """Epoch bar and step bar with ETA, loss, accuracy, tokens/s; epoch lines."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[stats]}"),
            console=self.console,
            transient=False,
        )
        self.epoch_task = None
        self.step_task = None
        self.metric = "accuracy"

    def start(self, info: Mapping[str, Any]) -> None:  # noqa: D102
        self.metric = info.get("metric", "accuracy")
        sizes = info["sizes"]
        att = info["model"]["attention"]
        self.console.print(
            f"[bold]task[/] {info.get('task', 'classification')} "
            f"[bold]loss[/] {info.get('loss', 'cross-entropy')}  "
            f"[bold]run[/] {info['run']}  [bold]data[/] {info['data']} "
            f"(train {sizes['train']:,} · val {sizes['validation']:,} · test {sizes['test']:,}; "
            f"{info['duplicates_removed']} duplicates dropped)"
        )
        shapes = info["shapes"]
        self.console.print(
            f"[bold]model[/] scoring={att['scoring']} heads={att['heads']} "
            f"dim={info['model']['dim']} layers={info['model']['layers']} "
            f"params={info['parameters']:,} vocab={info['vocab']:,}  "
            f"[bold]batches[/] {info['steps_per_epoch']}/epoch in {len(shapes)} shapes "
            f"(lengths {', '.join(str(s[1]) for s in shapes)}; "
            f"{info['padding_fraction']:.1%} padding)"
        )
        cut = info.get("truncated") or {}
        if any(n is not None for n in cut.values()):
            self.console.print(truncation_line(cut, sizes, info["max_len"], info["truncation"]))
        if info.get("resumed_from_epoch"):
            self.console.print(f"resuming after epoch {info['resumed_from_epoch']}")
        self.progress.start()

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:  # noqa: D102
        if self.epoch_task is None:
            self.epoch_task = self.progress.add_task(
                "epochs", total=epochs, completed=epoch - 1, stats=""
            )
        if self.step_task is not None:
            self.progress.remove_task(self.step_task)
        self.step_task = self.progress.add_task(f"epoch {epoch}", total=steps, stats="")

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
        acc = f" acc {metrics['train_accuracy']:.2%}" if "train_accuracy" in metrics else ""
        self.progress.console.print(
            f"epoch {epoch}: train loss {metrics['train_loss']:.4f}{acc} · val loss "
            f"{metrics['val_loss']:.4f} {self.metric} {metrics['val_score']:.4f} · "
            f"{metrics['epoch_seconds']:.0f} s{mark}"
        )

    def message(self, text: str) -> None:  # noqa: D102
        self.progress.console.print(text)

    def stop(self) -> None:
        """Close the live display (if it ever started: stopping prints a line)."""
        if self.progress.live.is_started:
            self.progress.stop()


def truncation_line(
    cut: Mapping[str, int | None], sizes: Mapping[str, int], max_len: int, truncation: str
) -> str:
    """``texts cut at 512 tokens (head): train 2,431 of 19,924 (12.2 %) · ...``."""
    short = {"validation": "val"}
    parts = [
        f"{short.get(s, s)} {n:,} of {sizes[s]:,} ({n / max(sizes[s], 1):.1%})"
        for s, n in cut.items()
        if n is not None
    ]
    return f"texts cut at {max_len} tokens ({truncation}): {' · '.join(parts)}"


def report_table(title: str, report: Any) -> Table:
    """Per-class precision/recall/F1 plus accuracy and macro-F1."""
    table = Table(title=title, title_justify="left")
    for col in ("class", "precision", "recall", "f1", "support"):
        table.add_column(col, justify="right" if col != "class" else "left")
    for c in report.per_class:
        table.add_row(
            c.label, f"{c.precision:.4f}", f"{c.recall:.4f}", f"{c.f1:.4f}", str(c.support)
        )
    table.add_section()
    table.add_row("accuracy", "", "", f"{report.accuracy:.4f}", str(report.count))
    table.add_row("macro F1", "", "", f"{report.macro_f1:.4f}", "")
    table.add_row("loss", "", "", f"{report.loss:.4f}", "")
    return table


def confusion_table(report: Any) -> Table:
    """Confusion matrix, rows true, columns predicted."""
    table = Table(title="confusion (rows: true, columns: predicted)", title_justify="left")
    table.add_column("")
    for lab in report.labels:
        table.add_column(lab, justify="right")
    for lab, row in zip(report.labels, report.confusion, strict=True):
        table.add_row(lab, *(str(c) for c in row))
    return table


def similarity_table(title: str, report: Any) -> Table:
    """Pearson and Spearman × 100 of every embedding similarity."""
    table = Table(title=title, title_justify="left")
    table.add_column("similarity", justify="left")
    for col in ("Pearson × 100", "Spearman × 100"):
        table.add_column(col, justify="right")
    names = {"cosine": "cosine", "l2": "−L2 (euclidean)", "l1": "−L1 (manhattan)", "dot": "dot"}
    for name, c in report.correlations.items():
        table.add_row(names.get(name, name), f"{100 * c.pearson:.2f}", f"{100 * c.spearman:.2f}")
    table.add_section()
    table.add_row("pairs", "", str(report.count))
    return table


def scalars_table(title: str, report: Any) -> Table:
    """Every number of a report (perplexity, bits per token, ...), one row each."""
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in report.to_dict().items():
        table.add_row(name, f"{value:,.4f}" if isinstance(value, float) else f"{value:,}")
    return table


def print_report(console: Console, title: str, report: Any) -> None:
    """A task report's tables: correlations, per-class metrics and confusion, or numbers."""
    if hasattr(report, "correlations"):
        console.print(similarity_table(title, report))
    elif hasattr(report, "per_class"):
        console.print(report_table(title, report))
        console.print(confusion_table(report))
    else:
        console.print(scalars_table(title, report))
