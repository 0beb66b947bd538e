"""Sentence-pair tasks by name: model, losses, evaluation outputs and report.

==========================  ==============  ====================  ==========================
task                        model           losses                model selection
==========================  ==============  ====================  ==========================
``similarity``              PairEncoder     cosent, cosine-mse    validation Spearman (cos)
``pair-classification``     PairClassifier  cross-entropy         validation accuracy
==========================  ==============  ====================  ==========================

The training workflow (:mod:`semalign.train_pairs`), evaluation and loading look a task
up in :data:`TASKS`; nothing switches on task names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
from flax import nnx

from semalign.evaluate_pairs import (
    classification_outputs_report,
    similarity_outputs_report,
)
from semalign.pair_models import PairClassifier, PairEncoder
from semalign.pair_steps import PairLoss, PairOutputs
from semalign.similarity import LOSSES, cosine
from semalign.workflows.steps import weighted_cross_entropy

__all__ = ["TASKS", "PairTask", "register"]


@dataclass(frozen=True)
class PairTask:
    """One sentence-pair task.

    Attributes:
      name: the ``--task`` value.
      target: what the data's target column holds: ``score`` or ``label``.
      model: the model class, built as ``model(config, rngs=...)``.
      losses: the ``--loss`` values it accepts; the first is the default.
      loss: ``(loss name, score range) -> PairLoss`` (the training objective).
      outputs: ``(loss name, score range) -> PairOutputs``: what an evaluation batch
        returns (the report's inputs).
      report: ``(pending [(batch, outputs)], classes) -> report``.
      score: the report's number that model selection maximises.
      score_name: that number's name, for messages and logs.

    Reports have ``loss`` and ``scalars()`` (flat numbers for logs and TensorBoard).
    """

    name: str
    target: str
    model: type[nnx.Module]
    losses: tuple[str, ...]
    loss: Callable[[str, tuple[float, float] | None], PairLoss]
    outputs: Callable[[str, tuple[float, float] | None], PairOutputs]
    report: Callable[[list, Sequence[str]], Any]
    score: Callable[[Any], float]
    score_name: str

    def check_loss(self, name: str | None) -> str:
        """The loss to use (``None``: the default).

        Raises:
          ValueError: naming the received value and the choices.
        """
        if name is None:
            return self.losses[0]
        if name not in self.losses:
            raise ValueError(
                f"--loss {name!r} does not fit task {self.name!r}; choose one of "
                f"{', '.join(self.losses)}"
            )
        return name


TASKS: dict[str, PairTask] = {}
"""Pair task name -> :class:`PairTask`, in registration order."""


def register(task: PairTask) -> PairTask:
    """Add a task.

    Raises:
      ValueError: if the name is taken.
    """
    if task.name in TASKS:
        raise ValueError(f"pair task {task.name!r} is already registered")
    TASKS[task.name] = task
    return task


# --- similarity ------------------------------------------------------------------------------


def _unit(targets: jnp.ndarray, score_range: tuple[float, float] | None) -> jnp.ndarray:
    # Scores mapped to [0, 1] by the training range; the order (all CoSENT uses) is kept.
    low, high = score_range or (0.0, 1.0)
    return (targets - low) / (high - low)


def _similarity_forward(name: str, score_range: tuple[float, float] | None):
    objective = LOSSES[name]

    def forward(model, ids_a, ids_b, targets, weights):
        # Both sides share one forward pass (they are padded to one bucket length).
        pooled = model(jnp.concatenate([ids_a, ids_b], axis=0)).pooled
        a, b = jnp.split(pooled, 2, axis=0)
        return a, b, objective(cosine(a, b), _unit(targets, score_range), weights)

    return forward


def _similarity_loss(name: str, score_range: tuple[float, float] | None) -> PairLoss:
    forward = _similarity_forward(name, score_range)

    def loss(model, ids_a, ids_b, targets, weights):
        _, _, value = forward(model, ids_a, ids_b, targets, weights)
        count = jnp.sum(weights)
        return value, {"loss_sum": value * count, "count": count}

    return loss


def _similarity_outputs(name: str, score_range: tuple[float, float] | None) -> PairOutputs:
    forward = _similarity_forward(name, score_range)

    def outputs(model, ids_a, ids_b, targets, weights):
        a, b, value = forward(model, ids_a, ids_b, targets, weights)
        count = jnp.sum(weights)
        return a, b, value * count, count

    return outputs


register(
    PairTask(
        name="similarity",
        target="score",
        model=PairEncoder,
        losses=tuple(LOSSES),
        loss=_similarity_loss,
        outputs=_similarity_outputs,
        report=similarity_outputs_report,
        score=lambda report: report.spearman,
        score_name="spearman",
    )
)


# --- pair classification ---------------------------------------------------------------------


def _classification_loss(name: str, score_range: tuple[float, float] | None) -> PairLoss:
    del name, score_range

    def loss(model, ids_a, ids_b, targets, weights):
        logits = model(ids_a, ids_b).logits
        total, count = weighted_cross_entropy(logits, targets, weights)
        correct = jnp.sum((jnp.argmax(logits, -1) == targets) * weights)
        return total / jnp.maximum(count, 1.0), {
            "loss_sum": total,
            "count": count,
            "correct": correct,
        }

    return loss


def _classification_outputs(name: str, score_range: tuple[float, float] | None) -> PairOutputs:
    del name, score_range

    def outputs(model, ids_a, ids_b, targets, weights):
        logits = model(ids_a, ids_b).logits
        total, count = weighted_cross_entropy(logits, targets, weights)
        return logits, total, count

    return outputs


register(
    PairTask(
        name="pair-classification",
        target="label",
        model=PairClassifier,
        losses=("cross-entropy",),
        loss=_classification_loss,
        outputs=_classification_outputs,
        report=classification_outputs_report,
        score=lambda report: report.accuracy,
        score_name="accuracy",
    )
)
