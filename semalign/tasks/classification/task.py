"""Classification: data roles, model, objective, outputs and ONNX graph."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from semalign.data import check_trainable, fitted_boundaries, split_examples
from semalign.metrics import classification_report
from semalign.nn.alignment import last_block_alignment
from semalign.tasks.base import Aligner, OnnxGraph, pooled_cosine
from semalign.tasks.class_objective import ClassObjective
from semalign.tasks.classification.data import batches, class_indices, encode, load_examples
from semalign.tasks.classification.model import Classifier
from semalign.tasks.classification.spec import SPEC

__all__ = ["TASK", "ClassificationTask", "output_names"]


def output_names(*, embedding: bool = False, attention: bool = False) -> tuple[str, ...]:
    """Graph outputs in order: ``probabilities``, ``logits`` [, ``embedding``][, ``attention``]."""
    return (
        "probabilities",
        "logits",
        *(("embedding",) if embedding else ()),
        *(("attention",) if attention else ()),
    )


class ClassificationTask(ClassObjective):
    """One text -> one of the run's labels; cross-entropy; selects on accuracy."""

    spec = SPEC

    def load_splits(self, data):  # noqa: D102
        return split_examples(load_examples(data), seed=data.split_seed)

    def load_all(self, data):  # noqa: D102
        return load_examples(data)

    def check_trainable(self, train, where: str) -> None:  # noqa: D102
        check_trainable(train, where=where)

    def corpus(self, examples) -> list[str]:  # noqa: D102
        return list(examples.texts)

    def classes(self, train) -> tuple[str, ...]:  # noqa: D102
        return tuple(train.classes)

    def encode(self, examples, tokenizer, classes: Sequence[str], max_len: int):  # noqa: D102
        return encode(examples, tokenizer, tuple(classes), max_len)

    def encode_with(self, data, examples, tokenizer, classes: Sequence[str]):
        """Encoded with the run's ``truncation`` (older runs: ``head``)."""
        truncation = getattr(data, "truncation", "head")
        return encode(examples, tokenizer, tuple(classes), data.max_len, truncation)

    def batches(self, encoded, data, *, batch_size: int, shuffle: bool, seed=0, epoch=0):  # noqa: D102
        return batches(
            encoded, data, batch_size=batch_size, shuffle=shuffle, seed=seed, epoch=epoch
        )

    def tokens(self, batch) -> int:  # noqa: D102
        return int(np.count_nonzero(batch.ids))

    def fit_buckets(self, data, encoded_train, epochs: int):
        """Lengths where the training rows lie (:func:`~semalign.data.fitted_boundaries`).

        Each compilation is weighed against the padding it saves over ``epochs``; every
        split is batched to the lengths. Lengths set in ``data.buckets`` are kept.
        """
        if data.buckets is not None:
            return data
        rows = encoded_train.sequences
        lengths = np.fromiter((len(s) for s in rows), np.int64, len(rows))
        fitted = fitted_boundaries(
            lengths, data.max_len, max_buckets=data.max_buckets, passes=epochs
        )
        return dataclasses.replace(data, buckets=fitted)

    def evaluation_data(self, data, request):
        """The run's data, a built-in dataset (its test split) or a file (all rows)."""
        if request.data is not None:
            cfg = dataclasses.replace(
                data,
                dataset=None,
                data=request.data,
                text_column=request.text_column,
                label_column=request.label_column,
            )
            return cfg, request.split or "all"
        if request.dataset is not None:
            return dataclasses.replace(data, dataset=request.dataset, data=None), (
                request.split or "test"
            )
        return data, request.split or "test"

    def run_name(self, data, scoring: str) -> tuple[str, str]:  # noqa: D102
        return (data.dataset if data.data is None else Path(data.data).stem), scoring

    def num_classes(self, classes: Sequence[str]) -> int:  # noqa: D102
        return len(classes)

    def build(self, config, *, rngs):  # noqa: D102
        return Classifier(config, rngs=rngs)

    def logits(self, model, batch):  # noqa: D102
        return model(batch.ids).logits

    def chunked_report(self, examples, probabilities_of, classes: Sequence[str]):  # noqa: D102
        y = class_indices(examples.labels, classes).astype(np.int64)
        probs = np.asarray(probabilities_of(list(examples.texts)), np.float64)
        nll = -np.log(np.maximum(probs[np.arange(len(y)), y], np.finfo(np.float32).tiny))
        return classification_report(y, probs.argmax(-1), tuple(classes), loss=float(nll.mean()))

    def probabilities(self, model, ids, valid):  # noqa: D102
        return jax.nn.softmax(model(ids, valid).logits, axis=-1)

    def inspect(self, model, ids):
        """``(probabilities [batch, classes], one Capture per layer)`` of single texts."""
        out = model(ids, capture=True)
        return jax.nn.softmax(out.logits.astype(jnp.float32), axis=-1), out.attention

    def aligner(self) -> Aligner:  # noqa: D102
        return Aligner(
            "last encoder layer's attention, across the texts",
            last_block_alignment,
            pooled_cosine,
        )

    def onnx_graph(self, model, *, embedding: bool = False, attention: bool = False):  # noqa: D102
        def fn(input_ids, attention_mask):
            out = model(input_ids, attention_mask > 0, capture=attention)
            outs = [jax.nn.softmax(out.logits, axis=-1), out.logits]
            if embedding:
                outs.append(out.embedding)
            if attention:
                outs.append(jnp.stack([c.weights.astype(jnp.float32) for c in out.attention], 1))
            return tuple(outs)

        return OnnxGraph(
            texts=(("input_ids", "attention_mask"),),
            outputs=output_names(embedding=embedding, attention=attention),
            fn=fn,
            doc="classifier",
        )


TASK = ClassificationTask()
