"""The similarity task's JAX-free registration."""

from __future__ import annotations

import functools

from semalign.data.pairs import PairDataConfig
from semalign.tasks import TaskSpec, register
from semalign.tasks.pair_data import pair_data_from_options

SPEC = register(
    TaskSpec(
        name="similarity",
        summary="two texts -> a similarity score (STS-B files, CSV / TSV / JSONL pairs)",
        columns=("text_a", "text_b", "score"),
        metric="spearman",
        test_key="spearman_cosine",  # SimilarityReport.spearman is the cosine's
        higher_is_better=True,
        losses=("cosent", "cosine-mse"),
        # CoSENT ranks every pair against every other of the batch: not a sum over rows.
        row_sum_losses=frozenset({"cosine-mse"}),
        capabilities=frozenset({"embed", "align", "export"}),
        data_config=PairDataConfig,
        data_from_options=functools.partial(pair_data_from_options, target="score"),
        implementation="semalign.tasks.similarity.task:TASK",
    )
)
