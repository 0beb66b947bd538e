"""Turn a user's mistake into one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from rich.console import Console

from semalign.errors import SemalignError

EXIT_BAD_INPUT = 2


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Print a :class:`SemalignError` (or a config ``ValueError``) as one line, exit 2."""
    try:
        yield
    except (SemalignError, ValueError) as err:
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"[bold red]error:[/] {err}", markup=True
        )
        raise typer.Exit(EXIT_BAD_INPUT) from None
