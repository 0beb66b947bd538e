"""Pair classification: cross-entropy over the pair labels; selects on accuracy."""

from __future__ import annotations

from collections.abc import Sequence

import jax

from semalign.tasks.base import Aligner, OnnxGraph
from semalign.tasks.class_objective import ClassObjective
from semalign.tasks.pair_classification.model import PairClassifier
from semalign.tasks.pair_classification.spec import SPEC
from semalign.tasks.pair_data import PairDataTask

__all__ = ["TASK", "PairClassificationTask"]

#: The exported graph's inputs: two texts, each padded to one length ``S``.
TEXTS = (("input_ids_a", "attention_mask_a"), ("input_ids_b", "attention_mask_b"))


def _probabilities(model, ids_a, ids_b):
    return jax.nn.softmax(model(ids_a, ids_b).logits[0])


class PairClassificationTask(PairDataTask, ClassObjective):
    """Two texts -> one of the run's pair labels."""

    spec = SPEC
    target = "label"
    target_field = "targets"

    def num_classes(self, classes: Sequence[str]) -> int:  # noqa: D102
        return max(len(classes), 2)

    def build(self, config, *, rngs):  # noqa: D102
        return PairClassifier(config, rngs=rngs)

    def logits(self, model, batch):  # noqa: D102
        return model(batch.ids_a, batch.ids_b).logits

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
