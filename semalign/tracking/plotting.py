"""Attention heat maps as matplotlib figures, PNG / SVG files and TensorBoard images.

Figures are built with :class:`matplotlib.figure.Figure` and drawn with
``FigureCanvasAgg``: no pyplot, no global backend, nothing shown on screen, safe in
threads and on machines without a display. matplotlib is imported inside the
functions, so importing this module stays cheap.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from semalign.errors import SemalignError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["SAVE_FORMATS", "attention_figure", "figure_to_rgb", "save_figure"]

#: File suffixes :func:`save_figure` writes.
SAVE_FORMATS: tuple[str, ...] = (".png", ".svg")

_SEQUENTIAL_CMAP = "viridis"
_DIVERGING_CMAP = "RdBu_r"
_CELL_INCHES = 0.25  # side of one token cell before clamping
_SINGLE_PANEL_INCHES = (2.5, 9.0)  # min, max side of a lone heat map
_GRID_PANEL_INCHES = (1.5, 5.0)  # min, max side of one panel of a grid
_MAX_FIGURE_INCHES = 32.0  # 3200 px at 100 dpi
_MAX_TICK_LABELS = 50  # per axis; beyond it every k-th token is labelled
_MAX_TOKEN_CHARS = 14
# Fonts lack glyphs for some tokens (emoji, rare scripts); the box is drawn anyway.
_GLYPH_WARNING = r"Glyph .* missing from"


def _token_label(token: str) -> str:
    """Shortens a token and escapes ``$`` so matplotlib never reads it as mathtext."""
    token = str(token)
    if len(token) > _MAX_TOKEN_CHARS:
        token = token[: _MAX_TOKEN_CHARS - 1] + "…"
    return token.replace("$", r"\$")


def _panel_side(n_tokens: int, bounds: tuple[float, float]) -> float:
    return min(max(n_tokens * _CELL_INCHES + 0.8, bounds[0]), bounds[1])


def _set_token_ticks(ax, axis: str, tokens: Sequence[str], fontsize: float) -> None:
    step = max(1, math.ceil(len(tokens) / _MAX_TICK_LABELS))
    positions = np.arange(0, len(tokens), step)
    labels = [_token_label(tokens[i]) for i in positions]
    if axis == "x":
        ax.set_xticks(positions, labels, rotation=90, fontsize=fontsize)
    else:
        ax.set_yticks(positions, labels, fontsize=fontsize)


def _color_scale(w: np.ndarray, diverging: bool | None) -> tuple[bool, float, float]:
    """Chooses (diverging, vmin, vmax) from the finite weights."""
    finite = w[np.isfinite(w)]
    lo = float(finite.min()) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 1.0
    if diverging is None:
        diverging = lo < 0.0
    if diverging:
        m = max(abs(lo), abs(hi)) or 1.0
        return True, -m, m
    vmin = min(lo, 0.0)
    vmax = hi if hi > vmin else vmin + 1.0
    return False, vmin, vmax


def attention_figure(
    weights: np.ndarray,
    tokens_q: Sequence[str],
    tokens_k: Sequence[str],
    *,
    title: str = "",
    diverging: bool | None = None,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
) -> Figure:
    """Draws attention weights as heat maps with the tokens on the axes.

    Queries run down the rows, keys along the columns. All panels share one colour
    scale and one colour bar. Non-negative weights (softmax) use a sequential colour
    map from 0; signed weights (``diff-transformer``, raw logits) use a diverging map
    centred at 0 with symmetric limits. The figure grows with the token count and is
    capped at 32 inches a side; beyond 50 tokens on an axis every k-th is labelled.

    Args:
        weights: ``[q_len, k_len]`` for one map, or ``[rows, cols, q_len, k_len]`` for
            a grid (usually layers × heads). NaN cells are left blank.
        tokens_q: ``q_len`` query tokens.
        tokens_k: ``k_len`` key tokens.
        title: the figure title.
        diverging: force the diverging (``True``) or sequential (``False``) colour
            map; ``None`` picks diverging when any weight is negative.
        row_labels: ``rows`` panel labels of a grid; default ``layer 0``, ``layer 1``…
        col_labels: ``cols`` panel labels of a grid; default ``head 0``, ``head 1``…

    Returns:
        A :class:`matplotlib.figure.Figure`, not registered with pyplot.

    Raises:
        ValueError: if ``weights`` is not 2-D or 4-D, or a token or label list does
            not match its axis.
    """
    from matplotlib.figure import Figure

    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 2:
        grid = w[None, None]
    elif w.ndim == 4:
        grid = w
    else:
        raise ValueError(
            f"weights must be [q_len, k_len] or [rows, cols, q_len, k_len], got shape {w.shape}"
        )
    rows, cols, q_len, k_len = grid.shape
    if len(tokens_q) != q_len or len(tokens_k) != k_len:
        raise ValueError(
            f"weights of shape {w.shape} need {q_len} query and {k_len} key tokens, "
            f"got {len(tokens_q)} and {len(tokens_k)}"
        )
    is_grid = w.ndim == 4
    if is_grid:
        row_labels = [f"layer {i}" for i in range(rows)] if row_labels is None else row_labels
        col_labels = [f"head {j}" for j in range(cols)] if col_labels is None else col_labels
        if len(row_labels) != rows or len(col_labels) != cols:
            raise ValueError(
                f"a {rows}x{cols} grid needs {rows} row labels and {cols} column labels, "
                f"got {len(row_labels)} and {len(col_labels)}"
            )

    is_div, vmin, vmax = _color_scale(grid, diverging)
    bounds = _GRID_PANEL_INCHES if is_grid else _SINGLE_PANEL_INCHES
    width = cols * _panel_side(k_len, bounds) + 1.5  # + colour bar and query labels
    height = rows * _panel_side(q_len, bounds) + 1.0 + (0.4 if title else 0.0)
    shrink = min(1.0, _MAX_FIGURE_INCHES / max(width, height))
    fontsize = min(max(10.0 - max(q_len, k_len) / 12.0, 5.0), 9.0)

    fig = Figure(figsize=(width * shrink, height * shrink), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    image = None
    for i in range(rows):
        for j in range(cols):
            ax = axes[i, j]
            image = ax.imshow(
                grid[i, j],
                cmap=_DIVERGING_CMAP if is_div else _SEQUENTIAL_CMAP,
                vmin=vmin,
                vmax=vmax,
                aspect="auto",
                interpolation="nearest",
            )
            if is_grid:
                ax.set_title(f"{row_labels[i]} · {col_labels[j]}", fontsize=fontsize + 1)
            if j == 0:
                _set_token_ticks(ax, "y", tokens_q, fontsize)
                ax.set_ylabel("query")
            else:
                ax.set_yticks([])
            if i == rows - 1:
                _set_token_ticks(ax, "x", tokens_k, fontsize)
                ax.set_xlabel("key")
            else:
                ax.set_xticks([])
    fig.colorbar(image, ax=axes.ravel().tolist(), label="weight")
    if title:
        fig.suptitle(title)
    return fig


def _agg_canvas(fig: Figure):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    # Interactive Agg-based canvases (TkAgg, QtAgg, inline) are FigureCanvasAgg too.
    return fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)


def figure_to_rgb(fig: Figure) -> np.ndarray:
    """Renders a figure to pixels, e.g. for :meth:`semalign.tracking.Tracker.image`.

    Args:
        fig: the figure; its size in inches times its dpi gives the pixel size.

    Returns:
        ``[height, width, 3]`` uint8 RGB.
    """
    canvas = _agg_canvas(fig)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_GLYPH_WARNING, category=UserWarning)
        canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3])


def save_figure(fig: Figure, path: str | Path, *, dpi: float | None = None) -> Path:
    """Saves a figure as PNG or SVG; the format follows the suffix.

    Args:
        fig: the figure.
        path: the destination, ending in ``.png`` or ``.svg``; its folder must exist.
        dpi: pixels per inch of a PNG; the figure's own dpi when ``None``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        SemalignError: if the suffix is not ``.png`` / ``.svg`` or the folder does not
            exist.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SAVE_FORMATS:
        got = f"suffix '{path.suffix}'" if path.suffix else "no suffix"
        raise SemalignError(
            f"cannot save figure to '{path}': {got} is not supported; "
            f"end the file name in {' or '.join(SAVE_FORMATS)}"
        )
    if not path.parent.is_dir():
        raise SemalignError(
            f"cannot save figure to '{path}': folder '{path.parent}' does not exist; "
            "create it first or pick another path"
        )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_GLYPH_WARNING, category=UserWarning)
        fig.savefig(path, format=suffix[1:], dpi="figure" if dpi is None else dpi)
    return path
