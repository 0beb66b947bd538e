"""PNG and SVG: per text, a layers × heads grid of heat maps (or the rollout map).

Drawn with :func:`semalign.tracking.plotting.attention_figure` (matplotlib without pyplot, safe
headless): token labels on both axes, one shared colour scale (diverging when weights
can be negative, as DIFF-Transformer's), panels labelled ``layer l`` and
``head h (scoring)``, and a title naming the run, the scoring, the layers and heads,
the text and the prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from semalign.tracking.plotting import attention_figure, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from semalign.workflows.introspect import AttentionReport

_TITLE_TEXT_CHARS = 60


def _which(indices: tuple[int, ...], count: int) -> str:
    if len(indices) == 1:
        return str(indices[0])
    if indices == tuple(range(count)):
        return f"all ({count})"
    return ",".join(str(i) for i in indices)


def _plain(text: str) -> str:
    # matplotlib reads $...$ as mathtext.
    return text.replace("$", r"\$")


def title(report: AttentionReport, index: int) -> str:
    """Two lines: run, scoring, layer(s), head(s); then the text and the prediction."""
    t = report.texts[index]
    text = " ".join(t.text.split())
    if len(text) > _TITLE_TEXT_CHARS:
        text = text[: _TITLE_TEXT_CHARS - 1] + "…"
    if t.rollout is not None:
        what = f"rollout over {report.num_layers} layers × {report.num_heads} heads"
    else:
        what = (
            f"layer {_which(report.layers, report.num_layers)} · "
            f"head {_which(report.heads, report.num_heads)}"
        )
    p = float(t.probabilities[t.predicted])
    return _plain(
        f"{report.run} · scoring {report.scoring} · {what}\n“{text}” → {t.label} ({p:.2f})"
    )


def figure(report: AttentionReport, index: int) -> Figure:
    """The figure of text ``index``: the selected layers × heads, or the rollout."""
    t = report.texts[index]
    if t.rollout is not None:
        return attention_figure(t.rollout, t.tokens, t.tokens, title=title(report, index))
    return attention_figure(
        t.weights,
        t.tokens,
        t.tokens,
        title=title(report, index),
        diverging=True if report.signed else None,
        row_labels=[f"layer {i}" for i in report.layers],
        col_labels=[f"head {h} ({report.head_scorings[h]})" for h in report.heads],
    )


def write(report: AttentionReport, paths: Sequence[Path]) -> None:
    """Save one figure per text; the suffix of each path (.png / .svg) picks the format."""
    for i, path in enumerate(paths):
        fig = figure(report, i)
        save_figure(fig, path)
