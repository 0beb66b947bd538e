"""What the tasks on plain texts share (causal-lm, mlm): data roles, token sums, report.

Both read a corpus (built-in reviews' training split or the user's text files), encode
each text as ``[CLS] … [SEP]``, and score tokens: their objective is a sum of negative
log-likelihoods over the positions they predict, reported as perplexity.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from semalign.data import SEP_ID, encode_texts, load_builtin
from semalign.data.corpus import Texts, load_corpus, read_texts, with_data
from semalign.errors import DataError
from semalign.metrics.language import language_report
from semalign.tasks.base import OnnxGraph, Task

__all__ = ["CorpusTask"]


class CorpusTask(Task):
    """A task on texts alone; subclasses give :meth:`token_sums` and :attr:`run_tag`."""

    #: The tag of a default run name: ``<data>-<run_tag>-<scoring>``.
    run_tag = "lm"
    #: What the exported graph computes (its ONNX doc string).
    onnx_doc = "language model: token scores at every position"

    def token_sums(self, model, batch):
        """``(NLL sum, correct, count)`` over the positions the task predicts."""
        raise NotImplementedError

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

    def sequences(self, examples, tokenizer, max_len: int) -> tuple[np.ndarray, ...]:
        """Each text's ids ``[L_i]``: ``[CLS]`` first, ``[SEP]`` last when it fits."""
        seqs = []
        for ids in encode_texts(tokenizer, list(examples.texts), max_len=max_len):
            seqs.append(np.append(ids, np.int32(SEP_ID)) if len(ids) < max_len else ids)
        return tuple(seqs)

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
        stem = data.dataset if data.data is None else Path(data.data).stem
        return stem, f"{self.run_tag}-{scoring}"

    def loss(self, name: str, data):  # noqa: D102
        del name, data

        def loss_fn(model, batch):
            total, correct, count = self.token_sums(model, batch)
            sums = {"loss_sum": total, "correct": correct, "count": count}
            return total / jnp.maximum(count, 1.0), sums

        return loss_fn

    def outputs(self, name: str, data):  # noqa: D102
        del name, data
        return self.token_sums

    def report(self, pending, classes: Sequence[str]):  # noqa: D102
        del classes
        total, correct, count = (sum(float(o[i]) for _, o in pending) for i in range(3))
        return language_report(total, correct, count)

    def output_labels(self, loaded) -> tuple[str, ...]:
        """The vocabulary in id order (inspect shows a distribution over it)."""
        vocab = loaded.tokenizer.get_vocab()
        return tuple(sorted(vocab, key=vocab.__getitem__))

    def onnx_graph(self, model, *, embedding: bool = False, attention: bool = False):
        """Token ids + mask -> ``logits [B, S, vocab]``."""
        del embedding, attention

        def fn(input_ids, attention_mask):
            return (model(input_ids, attention_mask > 0).logits,)

        return OnnxGraph(
            texts=(("input_ids", "attention_mask"),),
            outputs=("logits",),
            fn=fn,
            doc=self.onnx_doc,
        )
