"""Causal language modelling: data roles, model, objective, report and ONNX graph."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

from semalign.data import Batch
from semalign.tasks.causal_lm.model import CausalLM, causal
from semalign.tasks.causal_lm.spec import SPEC
from semalign.tasks.corpus_task import CorpusTask

__all__ = ["TASK", "CausalLMTask", "EncodedTexts", "next_token_sums"]


@dataclass(frozen=True)
class EncodedTexts:
    """Texts as token ids: ``[CLS]`` first, ``[SEP]`` last when the text fits ``max_len``."""

    sequences: tuple[np.ndarray, ...]

    @property
    def real_tokens(self) -> int:
        """Tokens before padding."""
        return int(TASK.lengths(self.sequences).sum())


def next_token_sums(model, ids, weights):
    """``(NLL sum, correct, count)`` of predicting ``ids[:, 1:]`` from the prefixes.

    Args:
      model: a :class:`CausalLM`.
      ids: ``[batch, len]`` int32, 0 = padding.
      weights: ``[batch]`` row weights (0 for filler rows).
    """
    logits = model(ids).logits[:, :-1]
    targets = ids[:, 1:]
    mask = (targets != 0).astype(jnp.float32) * weights[:, None]
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    correct = (jnp.argmax(logits, -1) == targets).astype(jnp.float32)
    return jnp.sum(nll * mask), jnp.sum(correct * mask), jnp.sum(mask)


class CausalLMTask(CorpusTask):
    """Texts -> the next token at every position; cross-entropy; selects on perplexity."""

    spec = SPEC
    onnx_doc = "causal language model"
    run_tag = "lm"

    def token_sums(self, model, batch):  # noqa: D102
        return next_token_sums(model, batch.ids, batch.weights)

    def encode(self, examples, tokenizer, classes: Sequence[str], max_len: int):  # noqa: D102
        del classes
        return EncodedTexts(self.sequences(examples, tokenizer, max_len))

    def batches(self, encoded, data, *, batch_size: int, shuffle: bool, seed=0, epoch=0):
        """Length-bucketed padded batches (made as used when the corpus streams).

        One path for both: the plan of :meth:`planned`, each batch padded with ``PAD_ID``
        (0) and weighted 1 on the rows this process holds (all of them on one process).
        """
        count, make = self.planned(
            encoded.sequences, data, batch_size=batch_size, shuffle=shuffle, seed=seed, epoch=epoch
        )

        def padded():
            for length, first, rows in make():
                ids = np.zeros((batch_size, length), np.int32)
                for r, seq in enumerate(rows, first):
                    ids[r, : len(seq)] = seq
                weights = np.zeros(batch_size, np.float32)
                weights[first : first + len(rows)] = 1.0
                yield Batch(ids, np.zeros(batch_size, np.int32), weights)

        return self.assembled(encoded.sequences, count, padded)

    def model_config(self, config):  # noqa: D102
        return causal(config)

    def build(self, config, *, rngs):  # noqa: D102
        return CausalLM(config, rngs=rngs)

    def inspect(self, model, ids):
        """``(next-token probabilities after each text's last token [b, vocab], captures)``."""
        out = model(ids, capture=True)
        last = jnp.maximum(jnp.sum(ids != 0, axis=1) - 1, 0)
        logits = jnp.take_along_axis(out.logits, last[:, None, None], axis=1)[:, 0]
        return jax.nn.softmax(logits, axis=-1), out.attention


TASK = CausalLMTask()
