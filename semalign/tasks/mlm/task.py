"""Masked language modelling: data roles, masking, model, objective, report and ONNX graph."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from semalign.tasks.corpus_task import CorpusTask
from semalign.tasks.mlm.masking import continuation_table, mask_batch
from semalign.tasks.mlm.model import MaskedLM, bidirectional
from semalign.tasks.mlm.spec import SPEC

__all__ = ["TASK", "EncodedTexts", "MLMBatch", "MLMTask", "masked_sums"]

#: Mixed into the seed of the masks, so they are drawn apart from the batch shuffle.
_MASK_STREAM = 0x4D4C4D


class MLMBatch(NamedTuple):
    """One padded, masked batch; ``B`` rows of ``L`` ids, ``P`` prediction slots each.

    Attributes:
      ids: ``[B, L]`` int32 ids the model reads (masked), 0 = padding.
      positions: ``[B, P]`` int32 positions to predict (0 in unused slots).
      targets: ``[B, P]`` int32 original ids there; 0 = no prediction in this slot.
      weights: ``[B]`` float32, 0 for filler rows.
    """

    ids: np.ndarray
    positions: np.ndarray
    targets: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class EncodedTexts:
    """Texts as token ids (``[CLS]`` first, ``[SEP]`` last when the text fits).

    Attributes:
      sequences: one int32 array per text.
      vocab_size: the tokenizer's size (random replacements are drawn below it).
      continues: ``[vocab]`` bool, True for WordPiece ``##`` pieces (whole-word masking).
    """

    sequences: tuple[np.ndarray, ...]
    vocab_size: int
    continues: np.ndarray

    @property
    def real_tokens(self) -> int:
        """Tokens before padding."""
        return int(TASK.lengths(self.sequences).sum())


def masked_sums(model, batch):
    """``(NLL sum, correct, count)`` over the batch's masked positions only.

    Args:
      model: a :class:`MaskedLM`.
      batch: an :class:`MLMBatch`.
    """
    logits = model(batch.ids, positions=batch.positions).logits
    targets = batch.targets
    mask = (targets != 0).astype(jnp.float32) * batch.weights[:, None]
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    correct = (jnp.argmax(logits, -1) == targets).astype(jnp.float32)
    return jnp.sum(nll * mask), jnp.sum(correct * mask), jnp.sum(mask)


class MLMTask(CorpusTask):
    """Texts -> the original tokens at masked positions; selects on perplexity."""

    spec = SPEC
    onnx_doc = "masked language model: token scores at every position"
    run_tag = "mlm"

    def token_sums(self, model, batch):  # noqa: D102
        return masked_sums(model, batch)

    def encode(self, examples, tokenizer, classes: Sequence[str], max_len: int):  # noqa: D102
        del classes
        size = tokenizer.get_vocab_size()
        table = continuation_table(tokenizer.get_vocab(), size)
        return EncodedTexts(self.sequences(examples, tokenizer, max_len), size, table)

    def batches(self, encoded, data, *, batch_size: int, shuffle: bool, seed=0, epoch=0):
        """Masked batches: training masks anew each epoch, evaluation from ``mask_seed``.

        The masks of a training epoch come from ``(seed, epoch)`` alone, so a resumed run
        sees the masks it would have seen (streamed or not: the same draws in the same
        order; with several streaming processes each draws for its block from its own key).
        """
        count, make = self.planned(
            encoded.sequences, data, batch_size=batch_size, shuffle=shuffle, seed=seed, epoch=epoch
        )
        key = [seed, epoch, _MASK_STREAM] if shuffle else [data.mask_seed, _MASK_STREAM]
        continues = encoded.continues if data.whole_word_masking else None

        def masked():
            rng = None
            for length, first, rows in make():
                if rng is None:  # a process reading rows from ``first`` on draws its own
                    rng = np.random.default_rng([*key, first] if first else key)
                ids, positions, targets = mask_batch(
                    rows,
                    length,
                    rng,
                    rate=data.mask_rate,
                    vocab_size=encoded.vocab_size,
                    continues=continues,
                    batch_size=batch_size,
                )
                weights = np.zeros(batch_size, np.float32)
                weights[: len(rows)] = 1.0
                arrays = (ids, positions, targets, weights)
                yield MLMBatch(*(np.roll(a, first, axis=0) for a in arrays))

        return self.assembled(encoded.sequences, count, masked)

    def model_config(self, config):  # noqa: D102
        return bidirectional(config)

    def build(self, config, *, rngs):  # noqa: D102
        return MaskedLM(config, rngs=rngs)

    def inspect(self, model, ids):
        """``(token probabilities at every position [b, len, vocab], captures)``."""
        out = model(ids, capture=True)
        return jax.nn.softmax(out.logits, axis=-1), out.attention


TASK = MLMTask()
