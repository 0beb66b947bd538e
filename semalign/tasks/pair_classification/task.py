"""Pair classification: cross-entropy over the pair labels; selects on accuracy."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from semalign.metrics import classification_report
from semalign.nn.losses import weighted_cross_entropy
from semalign.tasks.base import Aligner, OnnxGraph, gather, mean_loss
from semalign.tasks.pair_classification.model import PairClassifier
from semalign.tasks.pair_classification.spec import SPEC
from semalign.tasks.pair_data import PairDataTask

__all__ = ["TASK", "PairClassificationTask"]

#: The exported graph's inputs: two texts, each padded to one length ``S``.
TEXTS = (("input_ids_a", "attention_mask_a"), ("input_ids_b", "attention_mask_b"))


def _probabilities(model, ids_a, ids_b):
    return jax.nn.softmax(model(ids_a, ids_b).logits[0])


class PairClassificationTask(PairDataTask):
    """Two texts -> one of the run's pair labels."""

    spec = SPEC
    target = "label"

    def num_classes(self, classes: Sequence[str]) -> int:  # noqa: D102
        return max(len(classes), 2)

    def build(self, config, *, rngs):  # noqa: D102
        return PairClassifier(config, rngs=rngs)

    def loss(self, name: str, data):  # noqa: D102
        del name, data

        def loss_fn(model, batch):
            logits = model(batch.ids_a, batch.ids_b).logits
            total, count = weighted_cross_entropy(logits, batch.targets, batch.weights)
            correct = jnp.sum((jnp.argmax(logits, -1) == batch.targets) * batch.weights)
            sums = {"loss_sum": total, "count": count, "correct": correct}
            return total / jnp.maximum(count, 1.0), sums

        return loss_fn

    def outputs(self, name: str, data):  # noqa: D102
        del name, data

        def outputs_fn(model, batch):
            logits = model(batch.ids_a, batch.ids_b).logits
            total, count = weighted_cross_entropy(logits, batch.targets, batch.weights)
            return logits, total, count

        return outputs_fn

    def report(self, pending, classes: Sequence[str]):  # noqa: D102
        targets, logits = gather(pending, 0, target="targets")
        return classification_report(
            targets.astype(np.int64),
            logits.argmax(-1),
            tuple(classes),
            loss=mean_loss(pending, 1, 2),
        )

    def test_record(self, report):  # noqa: D102
        return {**report.scalars(), "confusion": [list(row) for row in report.confusion]}

    def aligner(self) -> Aligner:  # noqa: D102
        return Aligner("cross-attention", PairClassifier.align, _probabilities)

    def onnx_graph(self, model, *, embedding: bool = False, attention: bool = False):  # noqa: D102
        del embedding, attention

        def fn(input_ids_a, attention_mask_a, input_ids_b, attention_mask_b):
            logits = model(
                input_ids_a, input_ids_b, attention_mask_a > 0, attention_mask_b > 0
            ).logits
            return jax.nn.softmax(logits, axis=-1), logits

        return OnnxGraph(
            texts=TEXTS, outputs=("probabilities", "logits"), fn=fn, doc="pair classifier"
        )


TASK = PairClassificationTask()
