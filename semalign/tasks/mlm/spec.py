"""The mlm task's JAX-free registration and its data config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from semalign.data.corpus import CorpusConfig, corpus_fields
from semalign.tasks import TaskSpec, register

__all__ = ["SPEC", "MaskedCorpusConfig", "data_from_options"]


@dataclass(frozen=True)
class MaskedCorpusConfig(CorpusConfig):
    """A corpus (:class:`CorpusConfig`) and how its tokens are masked.

    Attributes:
      mask_rate: share of a text's non-special tokens to predict (BERT: 0.15); of them
        80 % become ``[MASK]``, 10 % a random token, 10 % stay.
      whole_word_masking: mask every piece of a chosen word (a WordPiece ``##`` piece
        belongs to the word before it); a ``word`` tokenizer's tokens are words already.
      mask_seed: seed of the fixed masks of validation, test and ``evaluate`` (training
        masks are drawn anew each epoch from the training seed).
    """

    mask_rate: float = 0.15
    whole_word_masking: bool = False
    mask_seed: int = 0

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 < self.mask_rate < 1.0:
            raise ValueError(f"mask_rate must be in (0, 1), got {self.mask_rate!r}")


def data_from_options(o: Mapping[str, Any]) -> MaskedCorpusConfig:
    """``semalign train`` options -> :class:`MaskedCorpusConfig`."""
    return MaskedCorpusConfig(
        **corpus_fields(o), whole_word_masking=bool(o.get("whole_word_masking", False))
    )


SPEC = register(
    TaskSpec(
        name="mlm",
        summary="texts -> masked-token prediction (BERT-style pretraining); "
        "`--init-from` a run of it starts any task from its encoder",
        columns=("text",),
        metric="perplexity",
        higher_is_better=False,
        losses=("cross-entropy",),
        row_sum_losses=frozenset({"cross-entropy"}),  # per-row (per-token) NLL sums
        capabilities=frozenset({"inspect", "export"}),
        data_config=MaskedCorpusConfig,
        data_from_options=data_from_options,
        options=frozenset({"stream", "whole_word_masking"}),
        implementation="semalign.tasks.mlm.task:TASK",
    )
)
