"""What the tasks on plain texts share (causal-lm, mlm): data roles, token sums, report.

Both read a corpus (built-in reviews' training split or the user's text files), encode
each text as ``[CLS] … [SEP]``, and score tokens: their objective is a sum of negative
log-likelihoods over the positions they predict, reported as perplexity.

A file or folder too large for memory streams (:mod:`semalign.data.stream`): its splits
are positions into an index of the file, its encodings read and tokenize texts when a
batch needs them, and its batches are made as they are used (:class:`LazyBatches`),
read ahead by grain; with several processes each reads only its block of every batch.
The batch plan and the masks come from ``(seed, epoch)`` alone, streamed or not, so a
streamed epoch holds the very batches of the in-memory one and resumes exactly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from semalign.data import bucket_boundaries, encode_texts, load_builtin
from semalign.data.batching import bucket_groups
from semalign.data.corpus import Texts, load_corpus, read_texts, with_data
from semalign.data.stream import RowView, StreamedTexts, load_streamed, streamed_all, streams
from semalign.data.stream_batches import LazyBatches, process_block, read_ahead
from semalign.data.stream_tokens import StreamedSequences, closed
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
        return load_streamed(data) if streams(data) else load_corpus(data)

    def load_all(self, data):  # noqa: D102
        if data.data is None:
            return Texts(tuple(load_builtin(str(data.dataset)).texts))
        if streams(data):
            return streamed_all(data)
        return Texts(tuple(read_texts(data)))

    def check_trainable(self, train, where: str) -> None:  # noqa: D102
        if len(train) < 2:
            raise DataError(f"{where} holds {len(train)} text(s); give it at least two")

    def corpus(self, examples):
        """The texts (a streamed split: an evenly spaced sample of at most 200,000)."""
        if isinstance(examples, StreamedTexts):
            return examples.sample()
        return list(examples.texts)

    def rows(self, examples):  # noqa: D102
        if isinstance(examples, StreamedTexts):
            return RowView(examples)  # the rows Texts gives, made while hashed
        return super().rows(examples)

    def sequences(self, examples, tokenizer, max_len: int):
        """Each text's ids ``[L_i]``: ``[CLS]`` first, ``[SEP]`` last when it fits."""
        if isinstance(examples, StreamedTexts):
            return StreamedSequences(examples, tokenizer, max_len)
        ids = encode_texts(tokenizer, list(examples.texts), max_len=max_len)
        return tuple(closed(ids, max_len))

    def lengths(self, sequences) -> np.ndarray:
        """``[N]`` ids of each sequence; a streamed split's are counted once, by shards."""
        if not isinstance(sequences, StreamedSequences):
            return np.fromiter((len(s) for s in sequences), np.int64, len(sequences))
        if sequences.lengths is None:
            sequences.lengths = _shared_lengths(sequences)
        return sequences.lengths

    def planned(self, sequences, data, *, batch_size: int, shuffle: bool, seed=0, epoch=0):
        """``(batch count, make)``: ``make()`` yields ``(length, first row, ids)`` a batch.

        The plan is :func:`bucket_groups`'s for ``(seed, epoch)``; a streamed split's rows
        are read (this process's block of each batch) as ``make()``'s iterator goes.
        """
        bounds = bucket_boundaries(data.max_len, max_buckets=data.max_buckets)
        groups = bucket_groups(
            self.lengths(sequences), bounds, batch_size, shuffle=shuffle, seed=seed, epoch=epoch
        )
        if isinstance(sequences, StreamedSequences):
            index, count = _process()
            block = None if count == 1 else process_block(batch_size, index, count)
            return len(groups), lambda: read_ahead(groups, sequences.read, block=block)
        return len(groups), lambda: ((n, 0, [sequences[i] for i in rows]) for n, rows in groups)

    def assembled(self, sequences, count: int, make):
        """The batches ``make()`` yields: a list, or :class:`LazyBatches` when streamed."""
        if isinstance(sequences, StreamedSequences):
            return LazyBatches(count, make)
        return list(make())

    def tokens(self, batch) -> int:  # noqa: D102
        return int(np.count_nonzero(batch.ids))

    def evaluation_data(self, data, request):
        """The run's corpus (test split), a built-in one, or every text of a file."""
        if request.data is not None:
            cfg = dataclasses.replace(  # another file streams by its own size
                with_data(data, request.data), text_column=request.text_column, stream=None
            )
            return cfg, request.split or "all"
        if request.dataset is not None:
            return dataclasses.replace(data, dataset=request.dataset, data=None, stream=None), (
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


def _process() -> tuple[int, int]:
    """``(index, count)`` of this process among the training's (grain's JAX shard)."""
    import grain

    shard = grain.sharding.ShardByJaxProcess()
    return shard.shard_index, shard.shard_count


def _shared_lengths(sequences: StreamedSequences) -> np.ndarray:
    """Every text's id count: each process counts every ``count``-th, then all share."""
    index, count = _process()
    n = len(sequences)
    local = sequences.count(np.arange(index, n, count))
    if count == 1:
        return local
    from jax.experimental import multihost_utils

    width = -(-n // count)
    padded = np.zeros(width, np.int32)
    padded[: local.size] = local
    every = np.asarray(multihost_utils.process_allgather(padded))  # [count, width]
    out = np.zeros(n, np.int32)
    for p in range(count):
        out[p::count] = every[p, : out[p::count].size]
    return out
