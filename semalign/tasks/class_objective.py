"""The objective of every task that picks one of the run's classes: cross-entropy, accuracy.

Classification and pair classification differ only in how a batch becomes logits and in
the name of the batch's target field; :class:`ClassObjective` holds the rest once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from semalign.metrics import classification_report
from semalign.nn.losses import weighted_cross_entropy
from semalign.tasks.base import Task, gather, mean_loss

__all__ = ["ClassObjective"]


class ClassObjective(Task):
    """Cross-entropy loss, logits as outputs, the classification report and test record.

    Subclasses set :attr:`target_field` (the batch field of class indices, ``[batch]`` int32)
    and :meth:`logits`.
    """

    target_field: str = "labels"

    def logits(self, model, batch) -> Any:
        """``[batch, classes]`` logits of the model on ``batch``."""
        raise NotImplementedError

    def loss(self, name: str, data):  # noqa: D102
        del name, data

        def loss_fn(model, batch):
            logits, targets = self.logits(model, batch), getattr(batch, self.target_field)
            total, count = weighted_cross_entropy(logits, targets, batch.weights)
            correct = jnp.sum((jnp.argmax(logits, -1) == targets) * batch.weights)
            sums = {"loss_sum": total, "correct": correct, "count": count}
            return total / jnp.maximum(count, 1.0), sums

        return loss_fn

    def outputs(self, name: str, data):  # noqa: D102
        del name, data

        def outputs_fn(model, batch):
            logits = self.logits(model, batch)
            total, count = weighted_cross_entropy(
                logits, getattr(batch, self.target_field), batch.weights
            )
            return logits, total, count

        return outputs_fn

    def report(self, pending, classes: Sequence[str]):  # noqa: D102
        targets, logits = gather(pending, 0, target=self.target_field)
        return classification_report(
            targets.astype(np.int64),
            logits.argmax(-1),
            tuple(classes),
            loss=mean_loss(pending, 1, 2),
        )

    def test_record(self, report):  # noqa: D102
        return {**report.scalars(), "confusion": [list(row) for row in report.confusion]}
