"""Similarity: a siamese encoder trained with CoSENT or cosine-MSE; selects on Spearman."""

from __future__ import annotations

import json
from collections.abc import Sequence

import jax.numpy as jnp

from semalign.metrics.correlation import similarity_report
from semalign.metrics.similarity import cosine
from semalign.nn.alignment import last_block_alignment
from semalign.tasks.base import Aligner, OnnxGraph, gather, mean_loss, pooled_cosine
from semalign.tasks.pair_data import PairDataTask
from semalign.tasks.similarity.losses import LOSSES
from semalign.tasks.similarity.model import PairEncoder
from semalign.tasks.similarity.spec import SPEC

__all__ = ["TASK", "SimilarityTask"]


def _unit(targets, score_range):
    # Scores mapped to [0, 1] by the training range; the order (all CoSENT uses) is kept.
    low, high = score_range or (0.0, 1.0)
    return (targets - low) / (high - low)


class SimilarityTask(PairDataTask):
    """Two texts -> the cosine of their embeddings, trained to rank like the gold scores."""

    spec = SPEC
    target = "score"

    def build(self, config, *, rngs):  # noqa: D102
        return PairEncoder(config, rngs=rngs)

    def _forward(self, name: str, data):
        objective = LOSSES[name]
        score_range = data.score_range

        def forward(model, batch):
            # Both sides share one forward pass (they are padded to one bucket length).
            pooled = model(jnp.concatenate([batch.ids_a, batch.ids_b], axis=0)).pooled
            a, b = jnp.split(pooled, 2, axis=0)
            value = objective(cosine(a, b), _unit(batch.targets, score_range), batch.weights)
            return a, b, value

        return forward

    def loss(self, name: str, data):  # noqa: D102
        forward = self._forward(name, data)

        def loss_fn(model, batch):
            _, _, value = forward(model, batch)
            count = jnp.sum(batch.weights)
            return value, {"loss_sum": value * count, "count": count}

        return loss_fn

    def outputs(self, name: str, data):  # noqa: D102
        forward = self._forward(name, data)

        def outputs_fn(model, batch):
            a, b, value = forward(model, batch)
            count = jnp.sum(batch.weights)
            return a, b, value * count, count

        return outputs_fn

    def report(self, pending, classes: Sequence[str]):  # noqa: D102
        del classes
        targets, a, b = gather(pending, 0, 1, target="targets")
        return similarity_report(a, b, targets, loss=mean_loss(pending, 2, 3))

    def aligner(self) -> Aligner:  # noqa: D102
        return Aligner(
            "last encoder layer's attention, across the texts",
            last_block_alignment,
            pooled_cosine,
        )

    def onnx_graph(self, model, *, embedding: bool = False, attention: bool = False):  # noqa: D102
        del embedding, attention  # the embedding is the graph's one output

        def fn(input_ids, attention_mask):
            return (model(input_ids, attention_mask > 0).embedding,)

        return OnnxGraph(
            texts=(("input_ids", "attention_mask"),),
            outputs=("embedding",),
            fn=fn,
            doc="sentence encoder",
            metadata={"semalign.normalized": json.dumps(True)},
        )


TASK = SimilarityTask()
