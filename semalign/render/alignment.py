"""Renderers of an :class:`~semalign.workflows.align.AlignmentReport` (``inspect --pair``).

``terminal``: the A × B matrix (mean over the selected heads; text A's tokens down, text
B's across, cells weight × 100) and the best-aligned token pairs; ``json``: every number;
``png`` / ``svg``: one heat map per head. :data:`ALIGNMENT_FORMATS` maps a format name to
its :class:`~semalign.render.Renderer`, as :data:`semalign.render.RENDERERS` does for
single-text attention.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from semalign.render import Renderer
from semalign.render.terminal import CELL_CHARS, LABEL_CHARS, ColorScale, has_color
from semalign.workflows.introspect import is_signed

if TYPE_CHECKING:
    from semalign.workflows.align import AlignmentReport

__all__ = ["ALIGNMENT_FORMATS", "BEST_PAIRS", "draw", "json_text", "write_figure", "write_json"]

#: Best-aligned pairs listed in the terminal.
BEST_PAIRS = 10
#: Most tokens per side drawn in the terminal.
MAX_TOKENS = 40


def _short(token: str) -> str:
    return token if len(token) <= LABEL_CHARS else token[: LABEL_CHARS - 1] + "…"


def _heads(report: AlignmentReport) -> str:
    if len(report.heads) == 1:
        h = report.heads[0]
        return f"head {h} ({report.head_scorings[h]})"
    names = sorted({report.head_scorings[h] for h in report.heads})
    return f"mean of {len(report.heads)} heads ({','.join(names)})"


def _matrix(report: AlignmentReport, console: Console, color: bool) -> Group:
    m = report.matrix
    rows = min(len(report.tokens_a), MAX_TOKENS)
    label_width = max(len("A \\ B"), 3 + max(len(_short(t)) for t in report.tokens_a[:rows]))
    cols = min(
        len(report.tokens_b), MAX_TOKENS, max(1, (console.width - label_width) // CELL_CHARS)
    )
    signed = any(is_signed(report.head_scorings[h]) for h in report.heads)
    scale = ColorScale(m[:rows, :cols], signed=signed)
    table = Table(box=None, padding=0, pad_edge=False, show_edge=False, collapse_padding=True)
    table.add_column(Text("A \\ B", style="dim"), width=label_width, no_wrap=True)
    for j in range(cols):
        table.add_column(
            Text(f"{j:>{CELL_CHARS}}"), width=CELL_CHARS, no_wrap=True, justify="right"
        )
    width = len(str(rows - 1))
    for i in range(rows):
        cells = []
        for j in range(cols):
            v = float(m[i, j])
            cell = f"{round(v * 100):>{CELL_CHARS}d}"
            cells.append(Text(cell, style=scale.style(v)) if color else Text(cell))
        label = Text(f"{i:>{width}} {_short(report.tokens_a[i])}"[:label_width], no_wrap=True)
        table.add_row(label, *cells)
    key = "  ".join(f"{j} {_short(t)}" for j, t in enumerate(report.tokens_b[:cols]))
    parts = [table, Text(f"B: {key}", style="dim", overflow="fold"), scale.legend(color)]
    if rows < len(report.tokens_a) or cols < len(report.tokens_b):
        parts.append(
            Text(f"note: showing {rows} × {cols} of the tokens; use --format json", "yellow")
        )
    return Group(*parts)


def _best(report: AlignmentReport) -> Group:
    table = Table(box=None)
    for col, just in (("A", "left"), ("", "center"), ("B", "left"), ("weight", "right")):
        table.add_column(col, justify=just)
    for p in report.best_pairs(BEST_PAIRS):
        table.add_row(
            f"{p.a_index} {p.a_token}", "→", f"{p.b_index} {p.b_token}", f"{p.weight:.3f}"
        )
    return Group(Text("best-aligned tokens (A → B)", style="bold"), table)


def draw(report: AlignmentReport, console: Console) -> None:
    """Print the alignment on ``console``."""
    color = has_color(console)
    console.print(Text(f"{report.run} ({report.checkpoint}) · {report.task}", style="dim"))
    console.print(Text(f"A: “{report.text_a.strip()}”", overflow="fold"))
    console.print(Text(f"B: “{report.text_b.strip()}”", overflow="fold"))
    if report.similarity is not None:
        console.print(Text.assemble("cosine similarity: ", (f"{report.similarity:.4f}", "bold")))
    if report.probabilities is not None:
        best = max(report.probabilities, key=report.probabilities.get)
        shown = ", ".join(f"{k} {v:.3f}" for k, v in report.probabilities.items())
        console.print(Text.assemble("prediction: ", (best, "bold"), f" ({shown})"))
    console.print(Text(f"alignment: {report.layer} · {_heads(report)}", style="dim"))
    console.print()
    console.print(_matrix(report, console, color))
    console.print()
    console.print(_best(report))


def json_text(report: AlignmentReport) -> str:
    """The report as JSON text."""
    return json.dumps(report.to_dict(), ensure_ascii=False)


def write_json(report: AlignmentReport, paths: Sequence[Path]) -> None:
    """Write the JSON to ``paths[0]``."""
    Path(paths[0]).write_text(json_text(report) + "\n", encoding="utf-8")


def write_figure(report: AlignmentReport, paths: Sequence[Path]) -> None:
    """One heat map per selected head; PNG or SVG by the suffix."""
    from semalign.tracking.plotting import attention_figure, save_figure

    fig = attention_figure(
        np.asarray(report.weights)[None],
        report.tokens_a,
        report.tokens_b,
        title=f"{report.run}: {report.layer}",
        row_labels=["A → B"],
        col_labels=[f"head {h} ({report.head_scorings[h]})" for h in report.heads],
    )
    save_figure(fig, paths[0])


ALIGNMENT_FORMATS: dict[str, Renderer] = {
    "terminal": Renderer("terminal", None, "A × B matrix and best pairs", draw=draw),
    "json": Renderer(
        "json", ".json", "tokens, weights, best pairs", write=write_json, stdout=json_text
    ),
    "png": Renderer("png", ".png", "a heat map per head", write=write_figure),
    "svg": Renderer("svg", ".svg", "the same as vector graphics", write=write_figure),
}
"""Format name -> renderer of an alignment report."""
