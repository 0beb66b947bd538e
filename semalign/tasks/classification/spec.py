"""The classification task's JAX-free registration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from semalign.config import DataConfig, split_seed_option
from semalign.tasks import TaskSpec, register


def data_from_options(o: Mapping[str, Any]) -> DataConfig:
    """``semalign train`` options -> :class:`DataConfig` (a built-in dataset or a file)."""
    return DataConfig(
        dataset=o["dataset"],
        data=o["data"],
        text_column=o["text_column"],
        label_column=o["label_column"],
        tokenizer=o["tokenizer"],
        vocab_size=o["vocab_size"],
        max_len=o["max_len"],
        split_seed=split_seed_option(o),
        truncation=o.get("truncation", "head"),
    )


SPEC = register(
    TaskSpec(
        name="classification",
        summary="one text -> a label (built-in IMDB / rotten-tomatoes, CSV / TSV / JSONL, "
        "<label>/*.txt folders)",
        columns=("text", "label"),
        metric="accuracy",
        higher_is_better=True,
        losses=("cross-entropy",),
        row_sum_losses=frozenset({"cross-entropy"}),  # per-row (per-token) NLL sums
        row_outputs=frozenset({"cross-entropy"}),  # logits by row; the NLL sum and count
        capabilities=frozenset({"predict", "embed", "inspect", "align", "export"}),
        export_outputs=frozenset({"embedding", "attention"}),
        data_config=DataConfig,
        data_from_options=data_from_options,
        implementation="semalign.tasks.classification.task:TASK",
        # 256 tokens, a quarter from each review's start and the rest from its end, and
        # hashed bigrams: on IMDB the same test accuracy as 512 tokens of its start (3
        # seeds each) in ~2/3 of the time; width 32, 2 heads, no MLP: the same accuracy
        # again (3 seeds) in about half the step time (benchmarks/README.md, "The default
        # model").
        defaults=(
            ("max_len", 256),
            ("truncation", "head-tail"),
            ("bigram_buckets", 32768),
            ("dim", 32),
            ("heads", 2),
            ("mlp_ratio", 0),
        ),
    )
)
