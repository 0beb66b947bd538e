"""Data roles shared by the sentence-pair tasks: two texts and one target per example.

:class:`PairDataTask` reads pair files (:mod:`semalign.data.pairs`), checks that the
training split can be fitted, encodes both sides and buckets them into
:class:`~semalign.data.pair_batches.PairBatch` es. The similarity and pair-classification tasks
subclass it and add their model and objective.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semalign.config import split_seed_option
from semalign.data import bucket_boundaries
from semalign.data.pair_batches import encode_pairs, make_pair_batches
from semalign.data.pair_readers import load_pair_splits, read_pairs
from semalign.data.pairs import PairDataConfig
from semalign.errors import DataError
from semalign.tasks.base import Task

__all__ = ["PairDataTask", "pair_data_from_options"]


def pair_data_from_options(o: Mapping[str, Any], *, target: str) -> PairDataConfig:
    """``semalign train`` options -> :class:`PairDataConfig` (``--data`` is required).

    Raises:
      DataError: no ``--data``.
    """
    if o["data"] is None:
        raise DataError(
            f"--task {o['task']} needs --data: a pair file (CSV / TSV / JSONL / STS-B) or a "
            "folder of split files"
        )
    return PairDataConfig(
        data=o["data"],
        target=target,
        text_a_column=o["text_a_column"],
        text_b_column=o["text_b_column"],
        score_column=o["score_column"],
        label_column=o["label_column"],
        tokenizer=o["tokenizer"],
        vocab_size=o["vocab_size"],
        max_len=o["max_len"],
        split_seed=split_seed_option(o),
    )


class PairDataTask(Task):
    """Data methods of a task on text pairs; ``target`` is ``score`` or ``label``."""

    target = "score"

    def load_splits(self, data):  # noqa: D102
        return load_pair_splits(dataclasses.replace(data, target=self.target))

    def load_all(self, data):  # noqa: D102
        data = dataclasses.replace(data, target=self.target)
        if Path(data.data).is_dir():
            raise DataError(
                f"{data.data} is a folder of splits: pick one with --split train, validation "
                "or test"
            )
        return read_pairs(data.data, data)

    def check_trainable(self, train, where: str) -> None:  # noqa: D102
        if len(train) < 2:
            raise DataError(f"{where} holds {len(train)} pair(s); give it at least two")
        if train.scores is not None and len(set(train.scores)) < 2:
            raise DataError(
                f"{where}: every pair has the score {train.scores[0]}; similarity training "
                "needs pairs with different scores, check --score-column"
            )
        if train.labels is not None and len(train.classes) < 2:
            raise DataError(
                f"{where} has a single label {train.classes[0]!r}; pair classification needs "
                "at least 2, check --label-column"
            )

    def prepare_data(self, data, train):
        """Record the training scores' range (cosine-MSE maps scores to [0, 1] with it)."""
        data = dataclasses.replace(data, target=self.target)
        if train.scores is None:
            return data
        return dataclasses.replace(data, score_range=(min(train.scores), max(train.scores)))

    def corpus(self, examples) -> list[str]:  # noqa: D102
        return examples.texts()

    def classes(self, train) -> tuple[str, ...]:  # noqa: D102
        return tuple(train.classes)

    def encode(self, examples, tokenizer, classes: Sequence[str], max_len: int):  # noqa: D102
        return encode_pairs(examples, tokenizer, max_len=max_len, classes=classes)

    def batches(self, encoded, data, *, batch_size: int, shuffle: bool, seed=0, epoch=0):  # noqa: D102
        return make_pair_batches(
            encoded.seqs_a,
            encoded.seqs_b,
            encoded.targets,
            batch_size=batch_size,
            boundaries=bucket_boundaries(data.max_len, max_buckets=data.max_buckets),
            shuffle=shuffle,
            seed=seed,
            epoch=epoch,
        )

    def tokens(self, batch) -> int:  # noqa: D102
        return int(np.count_nonzero(batch.ids_a) + np.count_nonzero(batch.ids_b))

    def evaluation_data(self, data, request):
        """The run's pairs, or another pair file / folder (columns from the request)."""
        if request.dataset is not None:
            raise DataError(
                "pair runs have no built-in datasets: evaluate on a pair file or folder with --data"
            )
        columns = {
            "text_a_column": request.text_a_column,
            "text_b_column": request.text_b_column,
            "score_column": request.score_column,
        }
        if request.label_column != "label":
            columns["label_column"] = request.label_column
        if request.data is not None:
            given = {k: v for k, v in columns.items() if v is not None}
            data = dataclasses.replace(data, data=request.data, **given)
        is_file = request.data is not None and Path(request.data).is_file()
        return data, request.split or ("all" if is_file else "test")

    def run_name(self, data, scoring: str) -> tuple[str, str]:  # noqa: D102
        return Path(data.data).stem, f"{self.spec.name}-{scoring}"
