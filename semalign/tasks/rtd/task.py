"""Replaced-token detection: the mlm task's masked batches, completed for ELECTRA's objective.

Data, tokenizer, masking and batching are the mlm task's (:class:`MLMTask`): each masked
batch gains the original ids, a sampling seed per row and the batch's two normalisers,
so the objective is a sum over rows (it accumulates over micro-batches) and a step's
samples depend on its batch alone.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from semalign.tasks.mlm.task import MLMBatch, MLMTask
from semalign.tasks.rtd.model import ReplacedTokenDetector
from semalign.tasks.rtd.objective import FIRST, detection_sums
from semalign.tasks.rtd.report import detection_report
from semalign.tasks.rtd.spec import SPEC, DetectionCorpusConfig

__all__ = ["TASK", "RTDBatch", "RTDTask", "detection_batch"]

#: Mixed into the seed of the sampling keys, apart from the shuffle and the masks.
_SAMPLE_STREAM = 0x525444


class RTDBatch(NamedTuple):
    """One masked batch, completed; ``B`` rows of ``L`` ids, ``P`` prediction slots each.

    Attributes:
      ids: ``[B, L]`` int32 the generator's input (masked), 0 = padding.
      positions: ``[B, P]`` int32 positions to predict (0 in unused slots).
      targets: ``[B, P]`` int32 original ids there; 0 = unused slot.
      weights: ``[B]`` float32, 0 for filler rows.
      original: ``[B, L]`` int32 the text before masking.
      seeds: ``[B]`` uint32 the key of each row's samples.
      generator_scale: ``[B]`` float32, ``real rows / masked slots`` of the batch.
      detector_scale: ``[B]`` float32, ``real rows / judged tokens`` of the batch.
    """

    ids: np.ndarray
    positions: np.ndarray
    targets: np.ndarray
    weights: np.ndarray
    original: np.ndarray
    seeds: np.ndarray
    generator_scale: np.ndarray
    detector_scale: np.ndarray


def detection_batch(batch: MLMBatch, rng: np.random.Generator) -> RTDBatch:
    """``batch`` with its originals restored, a seed drawn per row and its normalisers.

    With several streaming processes each holds its block of rows, and the normalisers
    are its block's: the loss is then the rows-weighted mean of the blocks' losses.
    """
    ids, positions, targets, weights = batch
    original = ids.copy()
    row, slot = np.nonzero(targets)
    original[row, positions[row, slot]] = targets[row, slot]
    rows = float(weights.sum())
    masked = np.count_nonzero(targets)
    judged = np.count_nonzero((original >= FIRST) & (weights[:, None] > 0))
    b = ids.shape[0]
    return RTDBatch(
        ids,
        positions,
        targets,
        weights,
        original,
        rng.integers(0, 2**32, b, dtype=np.uint32),
        np.full(b, rows / max(masked, 1), np.float32),
        np.full(b, rows / max(judged, 1), np.float32),
    )


class RTDTask(MLMTask):
    """Texts -> which tokens a small generator replaced; selects on the objective."""

    spec = SPEC
    onnx_doc = "replaced-token detector: a replaced score at every position"
    run_tag = "rtd"

    def batches(self, encoded, data, *, batch_size: int, shuffle: bool, seed=0, epoch=0):
        """The mlm task's batches (its masks), completed by :func:`detection_batch`.

        Sampling seeds come from ``(seed, epoch)`` in training and from ``mask_seed``
        otherwise, batch by batch in order, so evaluation draws the same samples each time
        and a resumed epoch the ones it would have drawn.
        """
        masked = super().batches(
            encoded, data, batch_size=batch_size, shuffle=shuffle, seed=seed, epoch=epoch
        )
        key = [seed, epoch, _SAMPLE_STREAM] if shuffle else [data.mask_seed, _SAMPLE_STREAM]

        def completed():
            for i, batch in enumerate(masked):
                yield detection_batch(batch, np.random.default_rng([*key, i]))

        return self.assembled(encoded.sequences, len(masked), completed)

    def build(self, config, *, rngs):  # noqa: D102
        return ReplacedTokenDetector(config, rngs=rngs)

    def loss(self, name: str, data):  # noqa: D102
        del name
        weight = data.detector_weight

        def loss_fn(model, batch):
            sums = detection_sums(model, batch, weight)
            sums = {"loss_sum": sums["loss_sum"], "count": sums["count"]}
            return sums["loss_sum"] / jnp.maximum(sums["count"], 1.0), sums

        return loss_fn

    def outputs(self, name: str, data):  # noqa: D102
        del name
        weight = data.detector_weight

        def outputs_fn(model, batch):
            sums = detection_sums(model, batch, weight)
            del sums["loss_sum"], sums["count"]
            return {**sums, "weight": jnp.float32(weight)}

        return outputs_fn

    def report(self, pending, classes):  # noqa: D102
        del classes
        weight = (
            float(pending[0][1]["weight"]) if pending else DetectionCorpusConfig.detector_weight
        )
        return detection_report(pending, weight)


TASK = RTDTask()
