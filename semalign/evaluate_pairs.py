"""Metrics of sentence-pair models, and ``semalign evaluate`` for pair runs.

Correlations are computed here in numpy (no SciPy at run time): :func:`rankdata` gives
tied values their average rank, :func:`spearman` is the Pearson correlation of those
ranks, as in ``scipy.stats.spearmanr``. A similarity report holds Pearson and Spearman of
the gold scores against four similarities of the two sides' embeddings (cosine, −L2,
−L1, dot: what sentence-transformers' STS evaluator reports). They are computed on the
pooled embeddings *before* L2 normalisation; after it, dot equals cosine and −L2 is a
monotone function of it, so three of the four would rank pairs identically.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semalign.errors import DataError
from semalign.metrics import ClassificationReport, classification_report

__all__ = [
    "Correlation",
    "SimilarityReport",
    "classification_outputs_report",
    "evaluate_pair_batches",
    "evaluate_pair_run",
    "pearson",
    "rankdata",
    "similarity_outputs_report",
    "similarity_report",
    "spearman",
]


def rankdata(x: Sequence[float] | np.ndarray) -> np.ndarray:
    """1-based ranks of ``x``; tied values share the mean of their ranks.

    >>> rankdata([10, 20, 10, 30]).tolist()
    [1.5, 3.0, 1.5, 4.0]
    """
    x = np.asarray(x, np.float64).reshape(-1)
    n = x.size
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    first = np.r_[True, xs[1:] != xs[:-1]] if n else np.zeros(0, bool)
    group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], n]  # one past each group's last position
    ranks = np.empty(n, np.float64)
    ranks[order] = ((starts + ends - 1) / 2.0 + 1.0)[group]
    return ranks


def pearson(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Pearson correlation; NaN when a side is constant or has fewer than 2 values.

    >>> pearson([1, 2, 3], [2, 4, 7])
    0.9933992677987828
    """
    x = np.asarray(x, np.float64).reshape(-1)
    y = np.asarray(y, np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"pearson needs two arrays of one length, got {x.size} and {y.size}")
    if x.size < 2:
        return float("nan")
    dx, dy = x - x.mean(), y - y.mean()
    denom = np.sqrt(np.dot(dx, dx) * np.dot(dy, dy))
    if denom == 0:
        return float("nan")
    return float(np.clip(np.dot(dx, dy) / denom, -1.0, 1.0))


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman rank correlation: Pearson of the average ranks.

    >>> spearman([1, 2, 3, 4], [1, 3, 2, 4])
    0.8
    """
    return pearson(rankdata(x), rankdata(y))


@dataclass(frozen=True)
class Correlation:
    """Agreement of one similarity with the gold scores."""

    pearson: float
    spearman: float


@dataclass(frozen=True)
class SimilarityReport:
    """Correlations of a similarity model with gold scores.

    Attributes:
      correlations: similarity name (``cosine``, ``l2``, ``l1``, ``dot``) ->
        :class:`Correlation`; ``l2`` and ``l1`` are negative distances.
      loss: mean training loss over the evaluation batches (NaN when not computed).
      count: pairs evaluated.
    """

    correlations: Mapping[str, Correlation]
    loss: float
    count: int

    @property
    def spearman(self) -> float:
        """Spearman of the cosine: the number model selection uses."""
        return self.correlations["cosine"].spearman

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "correlations": {k: dataclasses.asdict(v) for k, v in self.correlations.items()},
            "loss": self.loss,
            "count": self.count,
        }

    def scalars(self) -> dict[str, float]:
        """Flat numbers: ``loss``, ``count``, ``spearman_<sim>``, ``pearson_<sim>``."""
        out: dict[str, float] = {"loss": self.loss, "count": self.count}
        for name, c in self.correlations.items():
            out[f"spearman_{name}"] = c.spearman
            out[f"pearson_{name}"] = c.pearson
        return out


def similarity_report(
    emb_a: np.ndarray, emb_b: np.ndarray, scores: np.ndarray, *, loss: float = float("nan")
) -> SimilarityReport:
    """Pearson and Spearman of ``scores`` against every similarity of the embeddings.

    Args:
      emb_a: ``[n, d]`` embeddings of the first texts.
      emb_b: ``[n, d]`` embeddings of the second texts.
      scores: ``[n]`` gold scores.
      loss: the loss to carry along.
    """
    from semalign.similarity import SIMILARITIES

    a = np.asarray(emb_a, np.float64)
    b = np.asarray(emb_b, np.float64)
    gold = np.asarray(scores, np.float64)
    correlations = {}
    for name, fn in SIMILARITIES.items():
        sim = fn(a, b)
        correlations[name] = Correlation(pearson(sim, gold), spearman(sim, gold))
    return SimilarityReport(correlations, float(loss), int(gold.size))


def _gather(pending, *fields: int) -> tuple[np.ndarray, ...]:
    """Targets and the chosen output fields of real rows, over all batches."""
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fields) + 1)]
    for batch, outputs in pending:
        keep = np.asarray(batch.weights) > 0
        parts[0].append(np.asarray(batch.targets)[keep])
        for i, f in enumerate(fields, 1):
            parts[i].append(np.asarray(outputs[f])[keep])
    return tuple(np.concatenate(p) for p in parts)


def _mean_loss(pending, total: int, count: int) -> float:
    return sum(float(o[total]) for _, o in pending) / max(
        sum(float(o[count]) for _, o in pending), 1.0
    )


def similarity_outputs_report(pending, classes: Sequence[str] = ()) -> SimilarityReport:
    """A :class:`SimilarityReport` from ``(batch, (emb_a, emb_b, loss_sum, count))`` pairs."""
    del classes
    targets, a, b = _gather(pending, 0, 1)
    return similarity_report(a, b, targets, loss=_mean_loss(pending, 2, 3))


def classification_outputs_report(pending, classes: Sequence[str]) -> ClassificationReport:
    """A classification report from ``(batch, (logits, loss_sum, count))`` pairs."""
    targets, logits = _gather(pending, 0)
    return classification_report(
        targets.astype(np.int64),
        logits.argmax(-1),
        tuple(classes),
        loss=_mean_loss(pending, 1, 2),
    )


def evaluate_pair_batches(task, evaluator, batches, classes: Sequence[str] = ()):
    """The task's report of ``evaluator`` over ``batches`` (dispatch all, then sync)."""
    pending = [(b, evaluator.evaluate(b)) for b in batches]
    return task.report(pending, classes)


def evaluate_pair_run(req) -> Any:
    """``semalign evaluate`` for a similarity or pair-classification run.

    Args:
      req: a :class:`semalign.workflows.evaluate.EvaluationRequest`; ``data`` may name another
        pair file or folder (its columns from the request, else the run's).

    Returns:
      A :class:`semalign.workflows.evaluate.EvaluationResult` whose report is a
      :class:`SimilarityReport` or a classification report.

    Raises:
      RunError: no run, or an incomplete one.
      DataError: unreadable data, labels the run never saw, or an empty split.
    """
    from semalign.data import bucket_boundaries
    from semalign.data.pairs import (
        encode_pairs,
        load_pair_splits,
        make_pair_batches,
        read_pairs,
    )
    from semalign.pair_steps import PairEvaluator
    from semalign.pair_tasks import TASKS
    from semalign.workflows.evaluate import EvaluationResult
    from semalign.workflows.loading import load_run

    if req.dataset is not None:
        raise DataError(
            "pair runs have no built-in datasets: evaluate on a pair file or folder with --data"
        )
    loaded = load_run(req.run, runs_dir=req.runs_dir, which=req.checkpoint)
    task = TASKS[loaded.task]
    data = loaded.data_config
    columns = {
        "text_a_column": req.text_a_column,
        "text_b_column": req.text_b_column,
        "score_column": req.score_column,
    }
    if req.label_column != "label":
        columns["label_column"] = req.label_column
    if req.data is not None:
        data = dataclasses.replace(
            data, data=req.data, **{k: v for k, v in columns.items() if v is not None}
        )
    split = req.split or ("all" if req.data is not None and Path(req.data).is_file() else "test")
    if split == "all":
        if Path(data.data).is_dir():
            raise DataError(
                f"{data.data} is a folder of splits: pick one with --split train, validation "
                "or test"
            )
        examples = read_pairs(data.data, data)
    else:
        examples = getattr(load_pair_splits(data), split)
    if len(examples) == 0:
        raise DataError(f"the {split} split of {data.source} is empty: pick another --split")
    enc = encode_pairs(examples, loaded.tokenizer, max_len=data.max_len, classes=loaded.labels)
    batches = make_pair_batches(
        enc.seqs_a,
        enc.seqs_b,
        enc.targets,
        batch_size=req.batch_size or loaded.train_config.batch_size,
        boundaries=bucket_boundaries(data.max_len, max_buckets=data.max_buckets),
        shuffle=False,
    )
    evaluator = PairEvaluator(loaded.model, task.outputs(loaded.loss, data.score_range))
    report = evaluate_pair_batches(task, evaluator, batches, loaded.labels)
    return EvaluationResult(loaded.paths.root, data.source, split, loaded.checkpoint, report)
