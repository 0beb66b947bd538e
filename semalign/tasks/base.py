"""The contract of a task's implementation.

What the one train / evaluate / predict / embed / inspect / align / export path asks of it.

A task subclasses :class:`Task` and fills in its data roles, model, objective and
outputs; defaults here serve every task whose model has an ``encoder`` trunk and a
``pool``. Batches are NamedTuples of arrays with a ``weights`` field (0 for filler rows),
so the compiled steps and their shardings follow the batch's structure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from semalign.errors import DataError

__all__ = ["Aligner", "OnnxGraph", "Task"]

#: ``(model, batch) -> (loss, device sums)``: sums hold ``loss_sum`` and ``count`` (and
#: ``correct`` when the task counts it).
LossFn = Callable[[Any, Any], tuple[Any, dict[str, Any]]]
#: ``(model, batch) -> outputs`` in eval mode; the task's :meth:`Task.report` reads them.
OutputsFn = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class OnnxGraph:
    """The graph a task exports.

    Attributes:
      texts: ``(ids name, mask name)`` per text input, each int32 ``[B, S]``.
      outputs: output names, in the order ``fn`` returns them.
      fn: ``(*arrays in texts order) -> outputs``.
      doc: what the model is, for the file's doc string.
      metadata: extra metadata entries the runtime reads.
    """

    texts: tuple[tuple[str, str], ...]
    outputs: tuple[str, ...]
    fn: Callable[..., tuple[Any, ...]]
    doc: str
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def inputs(self) -> tuple[str, ...]:
        """Input names, flat."""
        return tuple(name for pair in self.texts for name in pair)


@dataclass(frozen=True)
class Aligner:
    """How ``inspect --pair`` aligns two texts for a task.

    Attributes:
      layer: which attention does it, in words.
      align: ``(model, ids_a [1, L], ids_b [1, L]) -> Capture [1, heads, L, L]``.
      summary: ``(model, ids_a, ids_b) ->`` a scalar similarity or ``[classes]``
        probabilities.
    """

    layer: str
    align: Callable[..., Any]
    summary: Callable[..., Any]


class Task:
    """Base of every task implementation. ``spec`` is the task's :class:`TaskSpec`."""

    spec: Any = None

    # --- data -----------------------------------------------------------------------
    def load_splits(self, data) -> Any:
        """Train / validation / test examples (``.train``, ``.duplicates_removed`` ...)."""
        raise NotImplementedError

    def load_all(self, data) -> Any:
        """Every example of ``data`` (``evaluate --split all``)."""
        raise NotImplementedError

    def check_trainable(self, train, where: str) -> None:
        """Raise :class:`DataError` when ``train`` cannot be fitted."""

    def prepare_data(self, data, train) -> Any:
        """The data config to save, once the training split is known."""
        del train
        return data

    def corpus(self, examples) -> list[str]:
        """The texts of ``examples`` (the tokenizer is trained on the train split's)."""
        raise NotImplementedError

    def classes(self, train) -> tuple[str, ...]:
        """Class names of the run (``labels.json``); empty for tasks without classes."""
        del train
        return ()

    def encode(self, examples, tokenizer, classes: Sequence[str], max_len: int) -> Any:
        """Examples as token ids and targets (``.real_tokens``)."""
        raise NotImplementedError

    def encode_with(self, data, examples, tokenizer, classes: Sequence[str]) -> Any:
        """:meth:`encode` as the data config says (``max_len``; a task may read more).

        An encoding with a ``truncated`` count (texts longer than ``max_len``) is reported.
        """
        return self.encode(examples, tokenizer, classes, data.max_len)

    def batches(self, encoded, data, *, batch_size: int, shuffle: bool, seed=0, epoch=0):
        """Length-bucketed padded batches (NamedTuples with ``weights``)."""
        raise NotImplementedError

    def tokens(self, batch) -> int:
        """Real (non-pad) tokens of a batch."""
        raise NotImplementedError

    def fit_buckets(self, data, encoded_train, epochs: int):
        """``data`` with the padded lengths of its batches fitted to the training rows.

        ``semalign train`` calls it once, before batching; by default a task keeps its own
        lengths and ``data`` is returned as it is.
        """
        del encoded_train, epochs
        return data

    def evaluation_data(self, data, request) -> tuple[Any, str]:
        """``(data config, split)`` that ``evaluate`` reads for ``request``."""
        raise NotImplementedError

    def data_path(self, data) -> str | None:
        """The file or folder ``data`` reads (None: built-in data)."""
        return getattr(data, "data", None)

    def rows(self, examples) -> list[str]:
        """One canonical string per example, in order (the split fingerprint hashes them)."""
        from semalign.data.fingerprint import example_rows

        return example_rows(examples)

    def fingerprint(self, data, splits: Mapping[str, Any]) -> dict[str, Any]:
        """``data.json``: sha256 of the data's file(s) and of each split's rows.

        Args:
          data: the task's data config.
          splits: split name -> examples (any subset of train / validation / test).
        """
        from semalign.data.fingerprint import fingerprint

        rows = {name: self.rows(examples) for name, examples in splits.items()}
        return fingerprint(data.source, self.data_path(data), rows)

    def run_name(self, data, scoring: str) -> tuple[str, str]:
        """``(data part, tag)`` of a default run name."""
        raise NotImplementedError

    # --- model ----------------------------------------------------------------------
    def num_classes(self, classes: Sequence[str]) -> int:
        """``ModelConfig.num_classes`` for these classes (0: no class head)."""
        del classes
        return 0

    def model_config(self, config) -> Any:
        """The model config the task trains and saves (a language model makes it causal)."""
        return config

    def build(self, config, *, rngs) -> Any:
        """The task's model (trunk + head)."""
        raise NotImplementedError

    # --- objective ------------------------------------------------------------------
    def loss(self, name: str, data) -> LossFn:
        """The training objective for loss ``name``."""
        raise NotImplementedError

    def outputs(self, name: str, data) -> OutputsFn:
        """What an evaluation batch returns."""
        raise NotImplementedError

    def report(self, pending: list, classes: Sequence[str]) -> Any:
        """A report (``loss``, ``scalars()``, ``to_dict()``) from ``[(batch, outputs)]``."""
        raise NotImplementedError

    def score(self, report) -> float:
        """The report's selection metric (``spec.metric``)."""
        return float(getattr(report, self.spec.metric))

    def test_record(self, report) -> dict[str, Any]:
        """The ``metrics.jsonl`` line of the test split."""
        return report.scalars()

    # --- outputs --------------------------------------------------------------------
    def embed(self, model, ids) -> Any:
        """``[batch, dim]`` pooled state (before any normalisation)."""
        x, valid, _ = model.encoder(ids)
        return model.pool(x, valid)

    def output_labels(self, loaded) -> tuple[str, ...]:
        """Names of what :meth:`inspect`'s probabilities range over (the run's labels)."""
        return tuple(loaded.labels)

    def probabilities(self, model, ids, valid) -> Any:
        """``[batch, classes]`` class probabilities of single texts (``predict``)."""
        raise NotImplementedError

    def chunked_report(self, examples, probabilities_of, classes: Sequence[str]) -> Any:
        """The report from whole-text probabilities (``evaluate --long-texts chunks``).

        ``probabilities_of(texts) -> [N, classes]`` averages each text's ``max_len``
        windows; tasks whose examples are not single labelled texts do not offer it.
        """
        del examples, probabilities_of, classes
        raise DataError(
            f"--long-texts chunks averages windows of one labelled text; a {self.spec.name} "
            "run has no such examples: evaluate it without --long-texts"
        )

    def aligner(self) -> Aligner:
        """How two texts are aligned (``inspect --pair``)."""
        raise NotImplementedError

    def onnx_graph(self, model, *, embedding: bool = False, attention: bool = False) -> OnnxGraph:
        """The exported graph of ``model``."""
        raise NotImplementedError


def gather(pending, *fields: int, target: str) -> tuple[np.ndarray, ...]:
    """The targets and the chosen output fields of real rows, over all batches."""
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fields) + 1)]
    for batch, outputs in pending:
        keep = np.asarray(batch.weights) > 0
        parts[0].append(np.asarray(getattr(batch, target))[keep])
        for i, f in enumerate(fields, 1):
            parts[i].append(np.asarray(outputs[f])[keep])
    return tuple(np.concatenate(p) for p in parts)


def mean_loss(pending, total: int, count: int) -> float:
    """Summed loss over summed weight of ``pending``'s outputs."""
    return sum(float(o[total]) for _, o in pending) / max(
        sum(float(o[count]) for _, o in pending), 1.0
    )


def non_empty(examples, split: str, source: str):
    """``examples``, or a one-line error when the split is empty."""
    if len(examples) == 0:
        raise DataError(f"the {split} split of {source} is empty: pick another --split")
    return examples


def pooled_cosine(model, ids_a, ids_b):
    """Cosine of the two texts' pooled states (the first row of each)."""
    from semalign.metrics.similarity import cosine

    pooled = [model.pool(*model.encoder(ids)[:2]) for ids in (ids_a, ids_b)]
    return cosine(*pooled)[0]
