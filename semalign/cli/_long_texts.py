"""Options shared by ``evaluate`` and ``predict`` (checkpoint, long texts), the long-text note."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from semalign.cli.train import Truncation

__all__ = [
    "CheckpointOption",
    "LongTexts",
    "LongTextsOption",
    "TruncationOption",
    "long_text_note",
]


class LongTexts(StrEnum):
    """What happens to a text longer than the run's max_len."""

    cut = "cut"
    chunks = "chunks"


CheckpointOption = Annotated[
    str,
    typer.Option(
        help="served (the one training reported: best, or last after --no-restore-best), "
        "best or last."
    ),
]
LongTextsOption = Annotated[
    LongTexts,
    typer.Option(
        help="A text longer than the run's max_len: cut (by --truncation, default the run's) "
        "or chunks (the mean probabilities of its max_len windows; classification, jax)."
    ),
]
TruncationOption = Annotated[
    Truncation | None,
    typer.Option(
        help="With --long-texts cut: keep the head, tail or head-tail of a long text instead "
        "of what the run was trained with."
    ),
]


def long_text_note(
    longer: int | None, total: int, long_texts: str, max_len: int | None = None
) -> str | None:
    """One line saying how many texts were longer than max_len and what became of them."""
    if not longer:
        return None
    fate = f"read in {max_len or 'max_len'}-token windows" if long_texts == "chunks" else "cut"
    limit = f"{max_len} tokens" if max_len else "the run's max_len"
    return f"note: {longer:,} of {total:,} texts were longer than {limit} and were {fate}"
