"""Masked language modelling: data roles, masking, model, objective, report and ONNX graph."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from semalign.data import SEP_ID, bucket_boundaries, encode_texts, load_builtin
from semalign.data.batching import bucket_groups
from semalign.data.corpus import Texts, load_corpus, read_texts, with_data
from semalign.errors import DataError
from semalign.metrics.language import language_report
from semalign.tasks.base import OnnxGraph, Task
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
        return int(sum(len(s) for s in self.sequences))


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


class MLMTask(Task):
    """Texts -> the original tokens at masked positions; selects on perplexity."""

    spec = SPEC

    def load_splits(self, data):  # noqa: D102
        return load_corpus(data)

    def load_all(self, data):  # noqa: D102
        if data.data is None:
            return Texts(tuple(load_builtin(str(data.dataset)).texts))
        return Texts(tuple(read_texts(data)))

    def check_trainable(self, train, where: str) -> None:  # noqa: D102
        if len(train) < 2:
            raise DataError(f"{where} holds {len(train)} text(s); give it at least two")

    def corpus(self, examples) -> list[str]:  # noqa: D102
        return list(examples.texts)

    def encode(self, examples, tokenizer, classes: Sequence[str], max_len: int):  # noqa: D102
        del classes
        seqs = []
        for ids in encode_texts(tokenizer, list(examples.texts), max_len=max_len):
            seqs.append(np.append(ids, np.int32(SEP_ID)) if len(ids) < max_len else ids)
        size = tokenizer.get_vocab_size()
        table = continuation_table(tokenizer.get_vocab(), size)
        return EncodedTexts(tuple(seqs), size, table)

    def batches(self, encoded, data, *, batch_size: int, shuffle: bool, seed=0, epoch=0):
        """Masked batches: training masks anew each epoch, evaluation from ``mask_seed``.

        The masks of a training epoch come from ``(seed, epoch)`` alone, so a resumed run
        sees the masks it would have seen.
        """
        seqs = encoded.sequences
        lengths = np.fromiter((len(s) for s in seqs), np.int64, len(seqs))
        bounds = bucket_boundaries(data.max_len, max_buckets=data.max_buckets)
        groups = bucket_groups(lengths, bounds, batch_size, shuffle=shuffle, seed=seed, epoch=epoch)
        key = [seed, epoch, _MASK_STREAM] if shuffle else [data.mask_seed, _MASK_STREAM]
        rng = np.random.default_rng(key)
        continues = encoded.continues if data.whole_word_masking else None
        out = []
        for length, rows in groups:
            ids, positions, targets = mask_batch(
                [seqs[i] for i in rows],
                length,
                rng,
                rate=data.mask_rate,
                vocab_size=encoded.vocab_size,
                continues=continues,
                batch_size=batch_size,
            )
            weights = np.zeros(batch_size, np.float32)
            weights[: rows.size] = 1.0
            out.append(MLMBatch(ids, positions, targets, weights))
        return out

    def tokens(self, batch) -> int:  # noqa: D102
        return int(np.count_nonzero(batch.ids))

    def evaluation_data(self, data, request):
        """The run's corpus (test split), a built-in one, or every text of a file."""
        if request.data is not None:
            cfg = dataclasses.replace(
                with_data(data, request.data), text_column=request.text_column
            )
            return cfg, request.split or "all"
        if request.dataset is not None:
            return dataclasses.replace(data, dataset=request.dataset, data=None), (
                request.split or "test"
            )
        return data, request.split or "test"

    def run_name(self, data, scoring: str) -> tuple[str, str]:  # noqa: D102
        return (data.dataset if data.data is None else Path(data.data).stem), f"mlm-{scoring}"

    def model_config(self, config):  # noqa: D102
        return bidirectional(config)

    def build(self, config, *, rngs):  # noqa: D102
        return MaskedLM(config, rngs=rngs)

    def loss(self, name: str, data):  # noqa: D102
        del name, data

        def loss_fn(model, batch):
            total, correct, count = masked_sums(model, batch)
            sums = {"loss_sum": total, "correct": correct, "count": count}
            return total / jnp.maximum(count, 1.0), sums

        return loss_fn

    def outputs(self, name: str, data):  # noqa: D102
        del name, data
        return masked_sums

    def report(self, pending, classes: Sequence[str]):  # noqa: D102
        del classes
        total, correct, count = (sum(float(o[i]) for _, o in pending) for i in range(3))
        return language_report(total, correct, count)

    def output_labels(self, loaded) -> tuple[str, ...]:
        """The vocabulary in id order: inspect shows what each ``[MASK]`` may be."""
        vocab = loaded.tokenizer.get_vocab()
        return tuple(sorted(vocab, key=vocab.__getitem__))

    def inspect(self, model, ids):
        """``(token probabilities at every position [b, len, vocab], captures)``."""
        out = model(ids, capture=True)
        return jax.nn.softmax(out.logits, axis=-1), out.attention

    def onnx_graph(self, model, *, embedding: bool = False, attention: bool = False):  # noqa: D102
        del embedding, attention

        def fn(input_ids, attention_mask):
            return (model(input_ids, attention_mask > 0).logits,)

        return OnnxGraph(
            texts=(("input_ids", "attention_mask"),),
            outputs=("logits",),
            fn=fn,
            doc="masked language model: token scores at every position",
        )


TASK = MLMTask()
