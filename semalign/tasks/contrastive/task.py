"""Unsupervised SimCSE: data roles, the two dropout views, objective, report.

Data, tokenizer and batching are a corpus's (:class:`CorpusTask`: the built-ins, a text
file, streaming). A batch's texts go through the trunk twice in one forward pass (the
batch stacked on itself), so each text's two pooled states differ only by their dropout
masks: every element draws its own mask. Training draws them from the run's dropout
stream (a new key each step); evaluation draws them from ``view_seed``, so validation,
test and ``evaluate`` see the same views every time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from flax import nnx

from semalign.tasks.contrastive.model import SentenceEncoder
from semalign.tasks.contrastive.objective import info_nce_rows
from semalign.tasks.contrastive.report import contrastive_report
from semalign.tasks.contrastive.spec import SPEC
from semalign.tasks.corpus_task import CorpusTask

__all__ = ["TASK", "ContrastiveBatch", "ContrastiveTask", "EncodedCorpus", "contrastive_sums"]


class ContrastiveBatch(NamedTuple):
    """One padded batch of ``B`` texts of ``L`` ids.

    Attributes:
      ids: ``[B, L]`` int32 token ids, 0 = padding.
      weights: ``[B]`` float32, 0 for filler rows.
    """

    ids: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class EncodedCorpus:
    """Texts as token ids (``[CLS]`` first, ``[SEP]`` last when the text fits).

    Attributes:
      sequences: one int32 array per text (or a streamed split's lazy sequences).
    """

    sequences: tuple[np.ndarray, ...]

    @property
    def real_tokens(self) -> int:
        """Tokens before padding."""
        return int(TASK.lengths(self.sequences).sum())


def two_views(model: SentenceEncoder, ids):
    """``(z [B, D], z2 [B, D])``: the pooled states of one forward pass over ``ids`` twice."""
    pooled = model(jnp.concatenate([ids, ids], axis=0))
    return tuple(jnp.split(pooled, 2, axis=0))


def contrastive_sums(model, batch: ContrastiveBatch, temperature: float) -> dict:
    """The batch's InfoNCE sums: ``loss_sum``, ``correct``, ``count`` and the cosines'.

    Args:
      model: a :class:`SentenceEncoder` (in train mode its dropout makes the two views).
      batch: a :class:`ContrastiveBatch`.
      temperature: τ.
    """
    z, z2 = two_views(model, batch.ids)
    rows = info_nce_rows(z, z2, batch.weights, temperature)
    return {
        "loss_sum": jnp.sum(rows["loss"]),
        "correct": jnp.sum(rows["hit"]),
        "count": jnp.sum(batch.weights),
        "positive": jnp.sum(rows["positive"]),
        "negative": jnp.sum(rows["negative"]),
        "others": jnp.sum(rows["others"]),
    }


class ContrastiveTask(CorpusTask):
    """Texts -> sentence embeddings by SimCSE; selects on the InfoNCE loss."""

    spec = SPEC
    run_tag = "contrastive"

    def encode(self, examples, tokenizer, classes: Sequence[str], max_len: int):  # noqa: D102
        del classes
        return EncodedCorpus(self.sequences(examples, tokenizer, max_len))

    def batches(self, encoded, data, *, batch_size: int, shuffle: bool, seed=0, epoch=0):
        """Length-bucketed padded batches of :func:`CorpusTask.planned`'s plan."""
        count, make = self.planned(
            encoded.sequences, data, batch_size=batch_size, shuffle=shuffle, seed=seed, epoch=epoch
        )

        def padded():
            for length, first, rows in make():
                ids = np.zeros((batch_size, length), np.int32)
                for r, row in enumerate(rows):
                    ids[r, : len(row)] = row
                weights = np.zeros(batch_size, np.float32)
                weights[: len(rows)] = 1.0
                yield ContrastiveBatch(np.roll(ids, first, axis=0), np.roll(weights, first))

        return self.assembled(encoded.sequences, count, padded)

    def build(self, config, *, rngs):  # noqa: D102
        return SentenceEncoder(config, rngs=rngs)

    def loss(self, name: str, data):  # noqa: D102
        del name
        temperature = data.temperature

        def loss_fn(model, batch):
            sums = contrastive_sums(model, batch, temperature)
            return sums["loss_sum"] / jnp.maximum(sums["count"], 1.0), sums

        return loss_fn

    def outputs(self, name: str, data):
        """The sums with dropout on, its masks drawn from ``data.view_seed`` (fixed)."""
        del name
        temperature, seed = data.temperature, data.view_seed

        def outputs_fn(model, batch):
            model.train()  # this trace's copy of the model: the two views need dropout
            # Dropout draws from the ``dropout`` stream (``default`` when the model was built
            # with one seed only, as in ``nnx.Rngs(0)``).
            nnx.reseed(model, dropout=seed, default=seed)
            return contrastive_sums(model, batch, temperature)

        return outputs_fn

    def report(self, pending, classes: Sequence[str]):  # noqa: D102
        del classes
        return contrastive_report(pending)


TASK = ContrastiveTask()
