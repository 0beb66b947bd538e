"""Renderers of an :class:`~semalign.workflows.introspect.AttentionReport`, one module per format.

============  ==========================================================  ========
format        what                                                        module
============  ==========================================================  ========
``terminal``  heat maps drawn with rich, legend, top-3 attended tokens    terminal
``png``       a layers × heads grid of heat maps per text (matplotlib)    figures
``svg``       the same as vector graphics                                 figures
``html``      offline page: layers × heads, one head large, token lines   html
``json``      every number needed to redraw elsewhere                     dump
``npz``       the same as numpy arrays                                    dump
============  ==========================================================  ========

:data:`RENDERERS` maps a format name to its :class:`Renderer`. A console format draws on
a :class:`rich.console.Console`; a file format writes files, which
:func:`output_paths` plans and checks (folder exists, suffix fits, nothing overwritten
unless asked) before any work is done. The format modules are imported when used, so
importing this package loads neither JAX nor matplotlib.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from semalign.errors import SemalignError
from semalign.registry import Registry

if TYPE_CHECKING:
    from rich.console import Console

    from semalign.workflows.introspect import AttentionReport

__all__ = [
    "RENDERERS",
    "Renderer",
    "format_for",
    "get",
    "output_paths",
    "register",
    "render",
]


@dataclass(frozen=True)
class Renderer:
    """One output format.

    Attributes:
      name: the ``--format`` value.
      suffix: file suffix (``.png``); None for a format drawn on a console.
      per_text: one file per text (figures); else one file for all texts.
      draw: ``(report, console) -> None`` for console formats.
      write: ``(report, paths) -> None`` for file formats; ``paths`` come from
        :func:`output_paths`.
      stdout: ``(report) -> str`` printed when a file format gets no ``--out`` (JSON);
        None means such a format writes ``attention<suffix>`` instead.
      help: one line for ``--help``.
    """

    name: str
    suffix: str | None
    help: str
    per_text: bool = False
    draw: Callable[[AttentionReport, Console], None] | None = None
    write: Callable[[AttentionReport, Sequence[Path]], None] | None = None
    stdout: Callable[[AttentionReport], str] | None = None


RENDERERS: Registry[Renderer] = Registry("format")
"""Format name -> renderer, in registration order."""


def register(renderer: Renderer) -> Renderer:
    """Add a format.

    Raises:
      ValueError: if the name is taken or the renderer has neither ``draw`` nor ``write``.
    """
    if (renderer.draw is None) == (renderer.write is None):
        raise ValueError(f"format {renderer.name!r} needs exactly one of draw or write")
    return RENDERERS.register(renderer.name, renderer)


def get(name: str) -> Renderer:
    """Look a format up by name.

    Raises:
      SemalignError: naming the value and the choices.
    """
    if name not in RENDERERS:
        raise SemalignError(f"unknown format {name!r}: choose one of {', '.join(RENDERERS)}")
    return RENDERERS.get(name)


def format_for(out: str | Path | None, default: str = "terminal") -> str:
    """The format an ``--out`` path asks for by its suffix, else ``default``.

    Raises:
      SemalignError: when the suffix names no format.
    """
    if out is None:
        return default
    suffix = Path(out).suffix.lower()
    for r in RENDERERS.values():
        if r.suffix == suffix:
            return r.name
    choices = ", ".join(r.suffix for r in RENDERERS.values() if r.suffix)
    got = f"suffix '{Path(out).suffix}'" if suffix else "no suffix"
    raise SemalignError(f"--out '{out}' has {got}: end it in one of {choices}, or pass --format")


def output_paths(
    name: str, out: str | Path | None, count: int, *, overwrite: bool = False
) -> tuple[Path, ...]:
    """Plan and check the files a format will write for ``count`` texts.

    A per-text format writing several texts numbers the files: ``a.png`` becomes
    ``a-1.png``, ``a-2.png``…

    Args:
      name: the format.
      out: the ``--out`` value; None: ``attention<suffix>`` in the current folder, or
        nothing for a format printed to stdout (console formats, JSON).
      count: how many texts.
      overwrite: allow replacing existing files.

    Returns:
      The paths, or ``()`` when the output is printed.

    Raises:
      SemalignError: a console format given ``--out``, a suffix that does not fit the
        format, a folder that does not exist, or a file that exists (without
        ``overwrite``).
    """
    r = get(name)
    if r.suffix is None:
        if out is not None:
            raise SemalignError(
                f"--out is for file formats; the {name} format prints: drop --out or pass "
                "--format png, svg, html, json or npz"
            )
        return ()
    if out is None:
        if r.stdout is not None:
            return ()
        out = f"attention{r.suffix}"
    path = Path(out)
    if path.suffix.lower() != r.suffix:
        got = f"'{path.suffix}'" if path.suffix else "no suffix"
        raise SemalignError(
            f"--out '{path}' has {got} but --format {name} writes {r.suffix}: "
            f"end it in {r.suffix} or change --format"
        )
    if not path.parent.is_dir():
        raise SemalignError(
            f"cannot write '{path}': folder '{path.parent}' does not exist; "
            "create it first or pick another --out"
        )
    if r.per_text and count > 1:
        paths = tuple(path.with_name(f"{path.stem}-{i}{path.suffix}") for i in range(1, count + 1))
    else:
        paths = (path,)
    for p in paths:
        if p.is_dir():
            raise SemalignError(f"cannot write '{p}': it is a folder; pick a file name for --out")
        if p.exists() and not overwrite:
            raise SemalignError(
                f"'{p}' already exists: pass --overwrite to replace it or pick another --out"
            )
    return paths


def render(
    report: AttentionReport,
    name: str,
    *,
    console: Console,
    paths: Sequence[Path] = (),
) -> tuple[Path, ...]:
    """Draw ``report`` on ``console`` or write it to ``paths`` (see :func:`output_paths`).

    Returns:
      The files written (``()`` when drawn or printed).
    """
    r = get(name)
    if r.draw is not None:
        r.draw(report, console)
        return ()
    if not paths:
        if r.stdout is None:
            raise SemalignError(f"the {name} format writes a file: pass --out")
        console.file.write(r.stdout(report) + "\n")
        console.file.flush()
        return ()
    paths = tuple(Path(p) for p in paths)
    expected = len(report.texts) if r.per_text else 1
    if len(paths) != expected:
        raise ValueError(f"the {name} format writes {expected} file(s), got {len(paths)} paths")
    r.write(report, paths)
    return paths


# The format modules load when a format is used: matplotlib only for figures.
def _draw_terminal(report: AttentionReport, console: Console) -> None:
    from semalign.render.terminal import draw

    draw(report, console)


def _write_figures(report: AttentionReport, paths: Sequence[Path]) -> None:
    from semalign.render.figures import write

    write(report, paths)


def _write_html(report: AttentionReport, paths: Sequence[Path]) -> None:
    from semalign.render.html import write

    write(report, paths)


def _write_json(report: AttentionReport, paths: Sequence[Path]) -> None:
    from semalign.render.dump import write_json

    write_json(report, paths)


def _json_text(report: AttentionReport) -> str:
    from semalign.render.dump import json_text

    return json_text(report)


def _write_npz(report: AttentionReport, paths: Sequence[Path]) -> None:
    from semalign.render.dump import write_npz

    write_npz(report, paths)


register(
    Renderer(
        "terminal",
        None,
        "heat maps in the terminal, legend, top-3 attended tokens",
        draw=_draw_terminal,
    )
)
register(Renderer("png", ".png", "layers × heads grid image", per_text=True, write=_write_figures))
register(
    Renderer("svg", ".svg", "layers × heads grid, vector", per_text=True, write=_write_figures)
)
register(Renderer("html", ".html", "one self-contained page", write=_write_html))
register(
    Renderer(
        "json",
        ".json",
        "tokens, ids, logits, weights, prediction",
        write=_write_json,
        stdout=_json_text,
    )
)
register(Renderer("npz", ".npz", "the same numbers as numpy arrays", write=_write_npz))
