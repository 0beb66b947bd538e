"""Attention in the terminal, drawn with rich.

Per text: the run and scoring, the prediction with a bar per class, then a heat map of
token × token weights for each selected layer and head (queries down, keys across; the
maps sit side by side when the console is wide enough), a colour legend, and the three
keys each token attends to most. Cells hold the weight × 100, on a sequential palette
from 0, or a diverging one centred at 0 when weights can be negative (DIFF-Transformer).
Without colour (``--no-color``, ``NO_COLOR``, or output that is not a terminal) the
same grid prints as plain numbers. Texts longer than :data:`MAX_TOKENS` tokens, or than
fits the console width, are cut to their first tokens with a note, never wrapped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console, Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from semalign.workflows.introspect import AttentionReport, TextAttention

#: Most tokens a heat map shows; more need ``--format html``.
MAX_TOKENS = 40
CELL_CHARS = 4  # characters per cell: the weight × 100, right-aligned
LABEL_CHARS = 14  # longest token shown in a row label
_GAP = 3  # columns between maps side by side
_TOP = 3
_BAR = 20

# viridis and RdBu_r, as in the PNG / SVG figures.
_SEQUENTIAL = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))
_DIVERGING = ((5, 48, 97), (67, 147, 195), (247, 247, 247), (214, 96, 77), (103, 0, 31))


def has_color(console: Console) -> bool:
    """Whether ``console`` shows colours (a terminal, colour not switched off)."""
    return console.color_system is not None and not console.no_color and console.is_terminal


def _rgb(stops, t: float) -> tuple[int, int, int]:
    t = min(1.0, max(0.0, t))
    x = t * (len(stops) - 1)
    i = min(len(stops) - 2, int(x))
    f = x - i
    a, b = stops[i], stops[i + 1]
    return tuple(round(a[k] + f * (b[k] - a[k])) for k in range(3))


class ColorScale:
    """Maps a weight to a cell style; sequential from 0, or diverging around 0."""

    def __init__(self, values: np.ndarray, signed: bool):
        finite = values[np.isfinite(values)]
        lo = float(finite.min()) if finite.size else 0.0
        hi = float(finite.max()) if finite.size else 1.0
        self.diverging = signed or lo < 0.0
        if self.diverging:
            m = max(-lo, hi) or 1.0
            self.vmin, self.vmax = -m, m
        else:
            self.vmin, self.vmax = 0.0, hi if hi > 0.0 else 1.0
        self.stops = _DIVERGING if self.diverging else _SEQUENTIAL

    def style(self, value: float) -> Style:
        r, g, b = _rgb(self.stops, (value - self.vmin) / (self.vmax - self.vmin))
        dark = 0.299 * r + 0.587 * g + 0.114 * b < 140
        return Style(bgcolor=f"rgb({r},{g},{b})", color="white" if dark else "black")

    def legend(self, color: bool) -> Text:
        if not color:
            return Text(
                "cells: weight × 100 (rows: queries, columns: keys by number; · masked)",
                style="dim",
            )
        out = Text("legend  ")
        out.append(f"{self.vmin:.2f} ")
        for k in range(12):
            v = self.vmin + (self.vmax - self.vmin) * k / 11
            out.append("  ", style=Style(bgcolor=self.style(v).bgcolor))
        out.append(f" {self.vmax:.2f}")
        kind = "diverging: weights can be negative" if self.diverging else "sequential from 0"
        out.append(f"   cells: weight × 100 · {kind}", style="dim")
        return out


def _label(i: int, token: str, index_width: int, width: int) -> Text:
    token = token if len(token) <= LABEL_CHARS else token[: LABEL_CHARS - 1] + "…"
    return Text(f"{i:>{index_width}} {token}"[:width], no_wrap=True)


def _heat_map(
    title: str,
    m: np.ndarray,
    visible: np.ndarray,
    tokens: tuple[str, ...],
    n: int,
    label_width: int,
    scale: ColorScale,
    color: bool,
) -> RenderableType:
    index_width = len(str(n - 1))
    table = Table(
        box=None,
        padding=0,
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )
    table.add_column(Text("query \\ key", style="dim"), width=label_width, no_wrap=True)
    for j in range(n):
        table.add_column(
            Text(f"{j:>{CELL_CHARS}}"), width=CELL_CHARS, no_wrap=True, justify="right"
        )
    for i in range(n):
        cells = []
        for j in range(n):
            if not visible[i, j]:
                cells.append(Text(f"{'·':>{CELL_CHARS}}", style="dim"))
                continue
            v = float(m[i, j])
            cell = f"{round(v * 100):>{CELL_CHARS}d}"
            cells.append(Text(cell, style=scale.style(v)) if color else Text(cell))
        table.add_row(_label(i, tokens[i], index_width, label_width), *cells)
    return Group(Text(title, style="bold", no_wrap=True, overflow="ellipsis"), table)


def _maps(report: AttentionReport, t: TextAttention) -> list[tuple[str, np.ndarray]]:
    if t.rollout is not None:
        return [
            (
                f"rollout · {report.num_layers} layers × {report.num_heads} heads (mean |w|)",
                t.rollout,
            )
        ]
    return [
        (f"layer {layer} · head {head} ({report.head_scorings[head]})", t.weights[a, b])
        for a, layer in enumerate(report.layers)
        for b, head in enumerate(report.heads)
    ]


#: Labels shown in full up to this many; beyond (a vocabulary), the most probable ones.
TOP_LABELS = 8


def _prediction(report: AttentionReport, t: TextAttention) -> Table:
    table = Table(box=None, padding=(0, 1), show_header=False, pad_edge=False)
    table.add_column(no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_column(no_wrap=True)
    # The most probable first; a language model's vocabulary is cut to the top few.
    order = np.argsort(-np.asarray(t.probabilities), kind="stable")[:TOP_LABELS]
    for k in range(len(report.labels)) if len(report.labels) <= TOP_LABELS else order:
        name = report.labels[k]
        p = float(t.probabilities[k])
        chosen = k == t.predicted
        table.add_row(
            Text(name, style="bold" if chosen else ""),
            Text(f"{p:.3f}"),
            Text("█" * round(p * _BAR), style="green" if chosen else "dim"),
        )
    return table


def _fills(t: TextAttention) -> Table:
    table = Table(box=None, padding=(0, 1), pad_edge=False)
    table.add_column(Text("#"), justify="right", no_wrap=True)
    table.add_column(Text("[MASK] may be (probability)"), overflow="fold")
    for f in t.fills:
        best = Text()
        for rank, (token, p) in enumerate(zip(f.tokens, f.probabilities, strict=True)):
            if rank:
                best.append(" · ", style="dim")
            best.append(token, style="bold" if rank == 0 else "")
            best.append(f" {float(p):.3f}", style="dim")
        table.add_row(Text(str(f.position)), best)
    return table


def _top(report: AttentionReport, t: TextAttention, n: int) -> RenderableType:
    if t.rollout is not None:
        m, source = t.rollout, "rollout"
    else:
        m = t.weights[-1].mean(axis=0)
        heads = report.heads
        which = f"head {heads[0]}" if len(heads) == 1 else f"mean of heads {_span(heads)}"
        source = f"layer {report.layers[-1]}, {which}"
    table = Table(box=None, padding=(0, 1), pad_edge=False)
    table.add_column(Text("#"), justify="right", no_wrap=True)
    table.add_column(Text("token"), no_wrap=True)
    table.add_column(Text("attends most to (weight)"), overflow="fold")
    for i in range(n):
        row = np.where(t.mask[i], m[i], -np.inf)
        order = [j for j in np.argsort(-row, kind="stable")[:_TOP] if np.isfinite(row[j])]
        best = Text()
        for rank, j in enumerate(order):
            if rank:
                best.append(" · ", style="dim")
            best.append(t.tokens[j])
            best.append(f" {float(m[i, j]):.2f}", style="dim")
        table.add_row(Text(str(i)), Text(t.tokens[i]), best)
    return Group(Text(f"top-{_TOP} attended tokens ({source})", style="bold"), table)


def _span(indices: tuple[int, ...]) -> str:
    if indices == tuple(range(indices[0], indices[-1] + 1)) and len(indices) > 2:
        return f"{indices[0]}–{indices[-1]}"
    return ",".join(map(str, indices))


def draw(report: AttentionReport, console: Console, *, max_tokens: int = MAX_TOKENS) -> None:
    """Print ``report`` on ``console`` (one block per text).

    Args:
      report: from :func:`semalign.workflows.introspect.attention`.
      console: where to draw; its width bounds the maps and decides whether several sit
        side by side; colour follows :func:`has_color`.
      max_tokens: most tokens per map.
    """
    color = has_color(console)
    for k, t in enumerate(report.texts):
        if k:
            console.rule(style="dim")
        _draw_text(report, t, console, color, max_tokens)


def _draw_text(
    report: AttentionReport, t: TextAttention, console: Console, color: bool, max_tokens: int
) -> None:
    where = f"{report.run}" + (f" ({report.checkpoint})" if report.checkpoint else "")
    console.print(Text(f"{where} · scoring {report.scoring}", style="dim"))
    console.print(Text(f"“{t.text.strip()}”", overflow="fold"))
    if t.fills:
        console.print(Text(f"top-{len(t.fills[0].tokens)} predictions per [MASK]", style="bold"))
        console.print(_fills(t))
    else:
        console.print(
            Text.assemble(
                "prediction: ", (t.label, "bold"), f" ({t.probabilities[t.predicted]:.3f})"
            )
        )
        console.print(_prediction(report, t))

    total = t.length
    index_width = len(str(min(total, max_tokens) - 1))
    longest = max(len(tok) for tok in t.tokens)
    label_width = max(index_width + 1 + min(longest, LABEL_CHARS), len("query \\ key"))
    fit = max(1, (console.width - label_width) // CELL_CHARS)
    n = min(total, max_tokens, fit)
    notes = []
    if n < total:
        notes.append(f"showing first {n} of {total} tokens; use --format html for all")
    if t.dropped:
        notes.append(f"text cut to the model's {total} tokens: {t.dropped} dropped")

    maps = _maps(report, t)
    shown = np.stack([m[:n, :n] for _, m in maps])
    visible = t.mask[:n, :n]
    scale = ColorScale(shown[:, visible], signed=report.signed and t.rollout is None)
    tables = [
        _heat_map(title, m, visible, t.tokens, n, label_width, scale, color) for title, m in maps
    ]
    map_width = max(label_width + n * CELL_CHARS, *(len(title) for title, _ in maps))
    per_row = max(1, (console.width + _GAP) // (map_width + _GAP))
    console.print()
    if per_row == 1 or len(tables) == 1:
        for table in tables:
            console.print(table)
            console.print()
    else:
        columns = min(per_row, len(tables))
        grid = Table.grid(padding=(0, _GAP, 0, 0))
        for _ in range(columns):
            grid.add_column(width=map_width, no_wrap=True)
        for start in range(0, len(tables), per_row):
            row = tables[start : start + per_row]
            grid.add_row(*row, *([""] * (columns - len(row))))
            grid.add_row(*([""] * columns))
        console.print(grid)
    console.print(scale.legend(color))
    for note in notes:
        console.print(Text(f"note: {note}", style="yellow"))
    console.print()
    console.print(_top(report, t, n))


__all__ = ["MAX_TOKENS", "draw", "has_color"]
