"""Causal language modelling: data roles, model, objective, report and ONNX graph."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from semalign.data import SEP_ID, bucket_boundaries, encode_texts, load_builtin, make_batches
from semalign.data.corpus import Texts, load_corpus, read_texts, with_data
from semalign.errors import DataError
from semalign.metrics.language import language_report
from semalign.tasks.base import OnnxGraph, Task
from semalign.tasks.causal_lm.model import CausalLM, causal
from semalign.tasks.causal_lm.spec import SPEC

__all__ = ["TASK", "CausalLMTask", "EncodedTexts", "next_token_sums"]


@dataclass(frozen=True)
class EncodedTexts:
    """Texts as token ids: ``[CLS]`` first, ``[SEP]`` last when the text fits ``max_len``."""

    sequences: tuple[np.ndarray, ...]

    @property
    def real_tokens(self) -> int:
        """Tokens before padding."""
        return int(sum(len(s) for s in self.sequences))


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


class CausalLMTask(Task):
    """Texts -> the next token at every position; cross-entropy; selects on perplexity."""

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
        return EncodedTexts(tuple(seqs))

    def batches(self, encoded, data, *, batch_size: int, shuffle: bool, seed=0, epoch=0):  # noqa: D102
        return make_batches(
            list(encoded.sequences),
            np.zeros(len(encoded.sequences), np.int32),
            batch_size=batch_size,
            boundaries=bucket_boundaries(data.max_len, max_buckets=data.max_buckets),
            shuffle=shuffle,
            seed=seed,
            epoch=epoch,
        )

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
        return (data.dataset if data.data is None else Path(data.data).stem), f"lm-{scoring}"

    def model_config(self, config):  # noqa: D102
        return causal(config)

    def build(self, config, *, rngs):  # noqa: D102
        return CausalLM(config, rngs=rngs)

    def loss(self, name: str, data):  # noqa: D102
        del name, data

        def loss_fn(model, batch):
            total, correct, count = next_token_sums(model, batch.ids, batch.weights)
            sums = {"loss_sum": total, "correct": correct, "count": count}
            return total / jnp.maximum(count, 1.0), sums

        return loss_fn

    def outputs(self, name: str, data):  # noqa: D102
        del name, data

        def outputs_fn(model, batch):
            return next_token_sums(model, batch.ids, batch.weights)

        return outputs_fn

    def report(self, pending, classes: Sequence[str]):  # noqa: D102
        del classes
        total, correct, count = (sum(float(o[i]) for _, o in pending) for i in range(3))
        return language_report(total, correct, count)

    def output_labels(self, loaded) -> tuple[str, ...]:
        """The vocabulary in id order: inspect shows the next token's distribution."""
        vocab = loaded.tokenizer.get_vocab()
        return tuple(sorted(vocab, key=vocab.__getitem__))

    def inspect(self, model, ids):
        """``(next-token probabilities after each text's last token [b, vocab], captures)``."""
        out = model(ids, capture=True)
        last = jnp.maximum(jnp.sum(ids != 0, axis=1) - 1, 0)
        logits = jnp.take_along_axis(out.logits, last[:, None, None], axis=1)[:, 0]
        return jax.nn.softmax(logits, axis=-1), out.attention

    def onnx_graph(self, model, *, embedding: bool = False, attention: bool = False):  # noqa: D102
        del embedding, attention

        def fn(input_ids, attention_mask):
            return (model(input_ids, attention_mask > 0).logits,)

        return OnnxGraph(
            texts=(("input_ids", "attention_mask"),),
            outputs=("logits",),
            fn=fn,
            doc="causal language model",
        )


TASK = CausalLMTask()
