"""The causal-lm task's JAX-free registration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from semalign.data.corpus import CorpusConfig, corpus_fields
from semalign.tasks import TaskSpec, register


def data_from_options(o: Mapping[str, Any]) -> CorpusConfig:
    """``semalign train`` options -> :class:`CorpusConfig` (a built-in corpus or text files)."""
    return CorpusConfig(**corpus_fields(o))


SPEC = register(
    TaskSpec(
        name="causal-lm",
        summary="texts -> next-token prediction under a causal mask; `semalign generate` "
        "samples from it",
        columns=("text",),
        metric="perplexity",
        higher_is_better=False,
        losses=("cross-entropy",),
        row_sum_losses=frozenset({"cross-entropy"}),  # per-row (per-token) NLL sums
        capabilities=frozenset({"generate", "inspect", "export"}),
        data_config=CorpusConfig,
        data_from_options=data_from_options,
        options=frozenset({"stream"}),
        implementation="semalign.tasks.causal_lm.task:TASK",
    )
)
