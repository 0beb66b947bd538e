"""Jitted steps for sentence-pair models: :class:`Steps` with a pair task's loss injected.

A step takes a :class:`~semalign.data.pairs.PairBatch` ``(ids_a, ids_b, targets,
weights)``. What the loss and the evaluation outputs are comes from the task
(:mod:`semalign.pair_tasks`); the split state, donation, L1/L2 penalties, syncing and
restoring are those of :class:`semalign.workflows.steps.Steps`. Single device: the mesh path of
:class:`Steps` is not used for pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax
from flax import nnx

from semalign.data.pairs import PairBatch
from semalign.workflows.steps import Steps, weight_penalty

__all__ = ["PairEvaluator", "PairLoss", "PairOutputs", "PairSteps"]

#: ``(model, ids_a, ids_b, targets, weights) -> (loss, metrics)``; metrics hold device
#: sums (``loss_sum``, ``count``, ...).
PairLoss = Callable[..., tuple[jax.Array, dict[str, jax.Array]]]
#: ``(model, ids_a, ids_b, targets, weights) -> outputs`` in eval mode.
PairOutputs = Callable[..., Any]


class PairSteps(Steps):
    """Compiled train and eval steps of a pair model.

    Args:
      model: a :class:`~semalign.pair_models.PairEncoder` or ``PairClassifier``.
      optimizer: an ``nnx.Optimizer`` over ``nnx.Param``.
      loss: the task's training loss.
      outputs: the task's evaluation outputs.
      l1: L1 penalty on weight matrices.
      l2: L2 penalty on weight matrices.
    """

    def __init__(
        self,
        model: nnx.Module,
        optimizer: nnx.Optimizer,
        *,
        loss: PairLoss,
        outputs: PairOutputs,
        l1: float = 0.0,
        l2: float = 0.0,
    ):
        self.loss, self.outputs = loss, outputs
        super().__init__(model, optimizer, l1=l1, l2=l2, mesh=None)

    def _train_step(self, state: Any, ids_a, ids_b, targets, weights):
        model = nnx.merge(self.train_def, state[0])
        optimizer = nnx.merge(self.opt_def, state[1])

        def objective(model):
            value, metrics = self.loss(model, ids_a, ids_b, targets, weights)
            return value + weight_penalty(model, self.l1, self.l2), metrics

        grads, metrics = nnx.grad(objective, has_aux=True)(model)
        optimizer.update(model, grads)
        metrics = {**metrics, "grad_norm": optax.global_norm(grads)}
        return (nnx.state(model), nnx.state(optimizer)), metrics

    def _eval_step(self, model_state: Any, ids_a, ids_b, targets, weights):
        model = nnx.merge(self.eval_def, model_state)
        return self.outputs(model, ids_a, ids_b, targets, weights)

    def _place(self, batch: PairBatch) -> tuple:
        return tuple(batch)


class PairEvaluator:
    """The eval half of :class:`PairSteps` for a loaded model (no optimizer)."""

    def __init__(self, model: nnx.Module, outputs: PairOutputs):
        model.eval()
        graphdef, self.state = nnx.split(model)

        def step(state, *arrays):
            return outputs(nnx.merge(graphdef, state), *arrays)

        self._step = jax.jit(step)

    def evaluate(self, batch: PairBatch) -> Any:
        """The task's outputs for one batch (device arrays, no host sync)."""
        return self._step(self.state, *batch)
