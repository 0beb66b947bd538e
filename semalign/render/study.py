"""A scoring study (:class:`~semalign.workflows.compare.Study`): terminal table, PNG, HTML.

The table holds, per scoring, the task's metric on validation and on test (mean ± sample
standard deviation over seeds), training tokens/s, wall time per run and parameters;
the best scoring on validation is marked. The PNG draws the validation metric per epoch,
one colour per scoring: seeds as thin lines, their mean as a thick one (matplotlib
``Figure`` on Agg, no pyplot). The HTML page is one offline file: the table and the PNG
inlined as base64, no script, no stylesheet or font fetched.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING

from semalign.render._files import write_bytes
from semalign.tracking.plotting import save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from rich.table import Table

    from semalign.workflows.compare import Study

__all__ = ["caption", "cells", "curves_figure", "headers", "html_page", "table", "write_files"]

PNG_NAME = "curves.png"
HTML_NAME = "report.html"


def _pm(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "—"
    return f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f}"


def headers(study: Study) -> tuple[str, ...]:
    """The column titles, naming the task's metric."""
    return (
        "scoring",
        "seeds",
        f"validation {study.metric}",
        f"test {study.metric}",
        "train tokens/s",
        "wall s / run",
        "parameters",
    )


def cells(study: Study) -> list[tuple[str, ...]]:
    """One row of strings per scoring, in the study's order."""
    out = []
    for r in study.table:
        out.append(
            (
                r.scoring + (" (best)" if r.best else ""),
                str(r.seeds),
                _pm(r.validation_mean, r.validation_std),
                _pm(r.test_mean, r.test_std),
                "—" if r.tokens_per_second is None else f"{r.tokens_per_second:,.0f}",
                "—" if r.wall_seconds is None else f"{r.wall_seconds:,.1f}",
                "—" if r.parameters is None else f"{r.parameters:,}",
            )
        )
    return out


def caption(study: Study) -> str:
    """Direction, selection rule, std convention, what this call did, wall time."""
    direction = "higher" if study.higher_is_better else "lower"
    counts: dict[str, int] = {}
    for r in study.runs:
        counts[r.action] = counts.get(r.action, 0) + 1
    did = ", ".join(f"{n} {a}" for a, n in counts.items())
    unfinished = sum(not r.finished for r in study.runs)
    more = f"; {unfinished} unfinished (run the command again)" if unfinished else ""
    return (
        f"{study.metric}: {direction} is better; best: chosen on validation only. "
        f"mean ± sample std over seeds {', '.join(map(str, study.seeds))}. "
        f"runs: {did}{more}. study wall {study.wall_seconds:,.0f} s"
    )


def table(study: Study) -> Table:
    """The study as a rich table."""
    from rich.table import Table

    t = Table(
        title=f"study {study.folder} · task {study.task}",
        title_justify="left",
        caption=caption(study),
        caption_justify="left",
    )
    for i, head in enumerate(headers(study)):
        t.add_column(head, justify="left" if i == 0 else "right")
    for row, r in zip(cells(study), study.table, strict=True):
        t.add_row(*row, style="bold green" if r.best else None)
    return t


def curves_figure(study: Study) -> Figure:
    """Validation metric per epoch: thin line per seed, thick line for the seeds' mean."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    colours = [f"C{i % 10}" for i in range(len(study.scorings))]
    for colour, name in zip(colours, study.scorings, strict=True):
        runs = [r for r in study.runs if r.scoring == name and r.curve]
        for r in runs:
            xs, ys = zip(*r.curve, strict=True)
            ax.plot(xs, ys, color=colour, linewidth=0.8, alpha=0.45)
        epochs = sorted({e for r in runs for e, _ in r.curve})
        means = []
        for e in epochs:
            at = [s for r in runs for x, s in r.curve if x == e]
            means.append(sum(at) / len(at))
        best = " (best on validation)" if name == study.best else ""
        if epochs:
            ax.plot(epochs, means, color=colour, linewidth=2.2, marker="o", label=name + best)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {study.metric}")
    ax.set_title(f"{study.name}: {study.task}, {len(study.seeds)} seed(s) per scoring")
    ax.grid(alpha=0.3)
    ax.set_xticks(sorted({e for r in study.runs for e, _ in r.curve}))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def html_page(study: Study, png: bytes) -> str:
    """One offline page: the table, the caption, the curves inlined, every run."""
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in headers(study))
    body = "".join(
        f"<tr{' class=best' if r.best else ''}>"
        + "".join(f"<td>{e(c)}</td>" for c in row)
        + "</tr>"
        for row, r in zip(cells(study), study.table, strict=True)
    )
    runs = "".join(
        "<tr>"
        + "".join(
            f"<td>{e(str(c))}</td>"
            for c in (
                r.scoring,
                r.seed,
                r.run.name,
                r.action,
                f"{r.epochs_done}/{r.epochs_planned}",
                "—" if r.validation is None else f"{r.validation:.4f}",
                "—" if r.test is None else f"{r.test:.4f}",
            )
        )
        + "</tr>"
        for r in study.runs
    )
    image = base64.b64encode(png).decode("ascii")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(study.name)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
tr.best {{ background: #e6f4e6; font-weight: bold; }}
p.note {{ color: #555; max-width: 60em; }}
</style></head><body>
<h1>Scoring study {e(study.name)}</h1>
<p>task <b>{e(study.task)}</b>, folder <code>{e(str(study.folder))}</code></p>
<table><tr>{head}</tr>{body}</table>
<p class="note">{e(caption(study))}</p>
<img alt="validation {e(study.metric)} per epoch" src="data:image/png;base64,{image}">
<h2>Runs</h2>
<table><tr><th>scoring</th><th>seed</th><th>run</th><th>this call</th><th>epochs</th>
<th>validation {e(study.metric)}</th><th>test {e(study.metric)}</th></tr>{runs}</table>
</body></html>
"""


def write_files(study: Study) -> dict[str, Path]:
    """``curves.png`` and ``report.html`` in the study folder (replaced on each call)."""
    png = save_figure(curves_figure(study), study.folder / PNG_NAME)
    page = html_page(study, png.read_bytes())
    return {"png": png, "html": write_bytes(study.folder / HTML_NAME, page.encode("utf-8"))}
