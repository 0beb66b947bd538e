"""The pair-classification task's JAX-free registration."""

from __future__ import annotations

import functools

from semalign.data.pairs import PairDataConfig
from semalign.tasks import TaskSpec, register
from semalign.tasks.pair_data import pair_data_from_options

SPEC = register(
    TaskSpec(
        name="pair-classification",
        summary="two texts -> a label (paraphrase, entailment), with cross-attention",
        columns=("text_a", "text_b", "label"),
        metric="accuracy",
        higher_is_better=True,
        losses=("cross-entropy",),
        row_sum_losses=frozenset({"cross-entropy"}),  # per-row (per-token) NLL sums
        row_outputs=frozenset({"cross-entropy"}),  # logits by pair; the NLL sum and count
        capabilities=frozenset({"embed", "align", "export"}),
        data_config=PairDataConfig,
        data_from_options=functools.partial(pair_data_from_options, target="label"),
        implementation="semalign.tasks.pair_classification.task:TASK",
    )
)
