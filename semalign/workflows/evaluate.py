"""Evaluate a trained run, any task: its own split, a built-in dataset or a user file.

The task decides which data an evaluation request reads and what its report holds
(classification: accuracy, macro-F1, per-class P/R/F1, confusion; similarity: Pearson
and Spearman of four embedding similarities).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semalign.config import TRUNCATIONS
from semalign.tasks.base import non_empty
from semalign.workflows.predict import LONG_TEXTS

__all__ = ["SPLITS", "EvaluationRequest", "EvaluationResult", "evaluate", "evaluate_batches"]

SPLITS = ("train", "validation", "test", "all")
#: Evaluation batches dispatched ahead of the oldest one awaited.
IN_FLIGHT = 8


@dataclass(frozen=True)
class EvaluationRequest:
    """What to evaluate.

    Attributes:
      run: run folder; None = newest under ``runs_dir``.
      runs_dir: where runs live.
      dataset: a built-in dataset instead of the run's own data.
      data: a data file or folder instead of the run's own data.
      text_column: text column of ``data``.
      label_column: label column of ``data``.
      text_a_column: pair runs: first-text column of ``data`` (None: the run's).
      text_b_column: pair runs: second-text column of ``data`` (None: the run's).
      score_column: similarity runs: score column of ``data`` (None: the run's).
      split: ``train``, ``validation``, ``test`` or ``all``; None = ``test`` for the run's
        data and built-in datasets, ``all`` for a file.
      batch_size: None = the run's training batch size.
      checkpoint: ``served`` (the one training reported), ``best`` or ``last``.
      truncation: ``head``, ``tail`` or ``head-tail`` instead of the run's own (tasks
        whose data cuts texts by it).
      long_texts: ``cut`` (by the truncation) or ``chunks``: a text longer than
        ``max_len`` gets the mean probabilities of its ``max_len`` windows
        (classification).
    """

    run: str | None = None
    runs_dir: str = "runs"
    dataset: str | None = None
    data: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    text_a_column: str | None = None
    text_b_column: str | None = None
    score_column: str | None = None
    split: str | None = None
    batch_size: int | None = None
    checkpoint: str = "served"
    truncation: str | None = None
    long_texts: str = "cut"

    def __post_init__(self):
        if self.dataset is not None and self.data is not None:
            raise ValueError("give --dataset or --data, not both")
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if self.long_texts not in LONG_TEXTS:
            raise ValueError(
                f"long_texts must be one of {', '.join(LONG_TEXTS)}, got {self.long_texts!r}"
            )
        if self.truncation is not None and self.truncation not in TRUNCATIONS:
            raise ValueError(
                f"truncation must be one of {', '.join(TRUNCATIONS)}, got {self.truncation!r}"
            )
        if self.truncation is not None and self.long_texts == "chunks":
            raise ValueError("--long-texts chunks reads every window: drop --truncation")


@dataclass(frozen=True)
class EvaluationResult:
    """A report and where it came from.

    Attributes:
      run: the run folder.
      source: the data evaluated.
      split: its split.
      checkpoint: the checkpoint directory loaded (``epoch-0003``).
      report: the task's report.
      notes: lines worth showing (an older run whose data is not checked ...).
      truncated: examples longer than ``max_len`` tokens, so cut (None: not counted).
      examples: examples evaluated.
    """

    run: Path
    source: str
    split: str
    checkpoint: str
    report: Any
    notes: tuple[str, ...] = ()
    truncated: int | None = None
    examples: int = 0

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["run"] = str(self.run)
        out["report"] = self.report.to_dict()
        out["notes"] = list(self.notes)
        return out


def evaluate_batches(task, steps, batches, classes: Sequence[str] = ()) -> Any:
    """The task's report of the model in ``steps`` over ``batches``.

    At most :data:`IN_FLIGHT` batches are dispatched ahead of the oldest one awaited, so
    the device stays busy while memory stays flat on a streamed split: what the report
    keeps of a batch is its per-row fields (:func:`per_row`), not its token ids.
    """
    done: list = []
    flight: deque = deque()
    for b in batches:
        flight.append((per_row(b), steps.evaluate(b)))
        if len(flight) > IN_FLIGHT:
            batch, outputs = flight.popleft()
            done.append((batch, _ready(outputs)))
    done.extend(flight)
    return task.report(done, classes)


def per_row(batch: Any) -> Any:
    """``batch`` with its token-level fields (2-D and more: ids, positions) set to None.

    Reports read per-row fields of a batch (weights, labels, targets) beside the outputs.
    """
    if not hasattr(batch, "_replace"):
        return batch
    return batch._replace(
        **{f: None for f, a in zip(batch._fields, batch, strict=True) if np.ndim(a) >= 2}
    )


def _ready(outputs: Any) -> Any:
    """``outputs`` once computed (bounds the queue of dispatched evaluations)."""
    import jax

    return jax.block_until_ready(outputs)


def evaluate(req: EvaluationRequest) -> EvaluationResult:
    """Metrics of a run on the data the request names, by the run's task.

    Raises:
      RunError: no run, an incomplete one, or a task this version does not know.
      DataError: unreadable data, labels the run never saw, or an empty split.
    """
    from semalign.workflows.loading import load_run

    loaded = load_run(req.run, runs_dir=req.runs_dir, which=req.checkpoint)
    task = loaded.task_impl
    data, split = task.evaluation_data(loaded.data_config, req)
    examples = task.load_all(data) if split == "all" else getattr(task.load_splits(data), split)
    notes = _check_split(task, loaded, data, split, examples)
    examples = non_empty(examples, split, data.source)
    size = req.batch_size or loaded.train_config.batch_size
    if req.long_texts == "chunks":
        report, truncated = _chunked(task, loaded, examples, size)
    else:
        data = _with_truncation(data, req.truncation, loaded.spec.name)
        encoded = task.encode_with(data, examples, loaded.tokenizer, loaded.labels)
        batches = task.batches(encoded, data, batch_size=size, shuffle=False)
        steps = _eval_steps(task, loaded, data, size)
        report = evaluate_batches(task, steps, batches, loaded.labels)
        truncated = getattr(encoded, "truncated", None)
    return EvaluationResult(
        loaded.paths.root,
        data.source,
        split,
        loaded.checkpoint,
        report,
        tuple(notes),
        truncated,
        len(examples),
    )


def _eval_steps(task, loaded, data, batch_size: int):
    """The run's eval step as training builds it.

    Batches are split over the host's devices and, on a CPU, computed by micro-batches
    for outputs by rows (the same numbers as whole batches, about 2x faster).
    """
    from semalign.workflows.hosts import training_mesh
    from semalign.workflows.microbatch import plan_micro_batch
    from semalign.workflows.steps import Steps

    heads = loaded.model_config.attention.heads
    mesh = training_mesh(None, False, batch_size=batch_size, heads=heads)
    rows = plan_micro_batch(
        None,
        sums_over_rows=loaded.loss in task.spec.row_outputs,
        what=f"the {task.spec.name} task's outputs",
        batch_size=batch_size,
        mesh=mesh,
    )
    return Steps.for_task(
        task, loaded.model, None, loss=loaded.loss, data=data, mesh=mesh, micro_batch=rows
    )


def _with_truncation(data, truncation: str | None, task: str):
    """``data`` cutting long texts by ``truncation`` (None: as the run does)."""
    if truncation is None:
        return data
    if not hasattr(data, "truncation"):
        raise ValueError(f"a {task} run does not cut texts by --truncation: drop it")
    return dataclasses.replace(data, truncation=truncation)


def _chunked(task, loaded, examples, batch_size: int):
    """The report of ``--long-texts chunks`` and how many texts were longer than max_len."""
    from semalign.workflows.predict import text_probabilities

    longer = []

    def probabilities_of(texts):
        probs, cut = text_probabilities(loaded, texts, batch_size, "chunks")
        longer.append(cut)
        return probs

    report = task.chunked_report(examples, probabilities_of, loaded.labels)
    return report, sum(longer)


def _check_split(task, loaded, data, split: str, examples) -> list[str]:
    """A split of the run's own data must still be the run's (``data.json``)."""
    from semalign.data.fingerprint import check_fingerprint
    from semalign.runs import read_json

    if split == "all" or data != loaded.data_config:
        return []  # another file or dataset: all its rows are new to the run
    saved = read_json(loaded.paths.data) if loaded.paths.data.is_file() else None
    return check_fingerprint(
        saved,
        task.fingerprint(data, {split: examples}),
        splits=(split,),
        run=str(loaded.paths.root),
        action=f"evaluate all its rows with --data {data.source}, or retrain",
    )
