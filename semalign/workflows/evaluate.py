"""Evaluate a trained run on its own split, a built-in dataset or a user file."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semalign.config import DataConfig
from semalign.errors import DataError
from semalign.metrics import ClassificationReport

SPLITS = ("train", "validation", "test", "all")


@dataclass(frozen=True)
class EvaluationRequest:
    """What to evaluate.

    Attributes:
      run: run folder; None = newest under ``runs_dir``.
      runs_dir: where runs live.
      dataset: a built-in dataset instead of the run's own data.
      data: a CSV / TSV / JSONL file or label folders instead of the run's own data.
      text_column: text column of ``data``.
      label_column: label column of ``data``.
      text_a_column: pair runs: first-text column of ``data`` (None: the run's).
      text_b_column: pair runs: second-text column of ``data`` (None: the run's).
      score_column: similarity runs: score column of ``data`` (None: the run's).
      split: ``train``, ``validation``, ``test`` or ``all``; None = ``test`` for the run's
        data and built-in datasets, ``all`` for a file.
      batch_size: None = the run's training batch size.
      checkpoint: ``best`` or ``last``.
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
    checkpoint: str = "best"

    def __post_init__(self):
        if self.dataset is not None and self.data is not None:
            raise ValueError("give --dataset or --data, not both")
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {self.split!r}")


@dataclass(frozen=True)
class EvaluationResult:
    """A report and where it came from.

    ``report`` is a :class:`ClassificationReport`, or for a similarity run a
    :class:`semalign.evaluate_pairs.SimilarityReport`.
    """

    run: Path
    source: str
    split: str
    checkpoint: str
    report: ClassificationReport | Any

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["run"] = str(self.run)
        out["report"] = self.report.to_dict()
        return out


def _data_for(req: EvaluationRequest, run_data: DataConfig) -> tuple[DataConfig, str]:
    if req.data is not None:
        cfg = dataclasses.replace(
            run_data,
            dataset=None,
            data=req.data,
            text_column=req.text_column,
            label_column=req.label_column,
        )
        return cfg, req.split or "all"
    if req.dataset is not None:
        return dataclasses.replace(run_data, dataset=req.dataset, data=None), req.split or "test"
    return run_data, req.split or "test"


def _evaluators() -> dict[str, Callable[[EvaluationRequest], EvaluationResult]]:
    """Run task (config.json ``"task"``) -> how to evaluate it."""
    from semalign.evaluate_pairs import evaluate_pair_run
    from semalign.pair_tasks import TASKS

    return {"classification": _evaluate_classification} | dict.fromkeys(TASKS, evaluate_pair_run)


def evaluate(req: EvaluationRequest) -> EvaluationResult:
    """Metrics of a run, by its task.

    Classification: accuracy, macro-F1, per-class P/R/F1, confusion matrix and loss.
    Similarity: Pearson and Spearman of cosine, −L2, −L1 and dot similarity of the
    embeddings (:mod:`semalign.evaluate_pairs`). Pair classification: as classification.

    Raises:
      RunError: no run, an incomplete one, or a task this version does not know.
      DataError: unreadable data, or labels the run never saw.
    """
    from semalign.errors import RunError
    from semalign.runs import resolve_run
    from semalign.workflows.loading import run_task

    task = run_task(resolve_run(req.run, runs_dir=req.runs_dir))
    evaluators = _evaluators()
    if task not in evaluators:
        raise RunError(f"cannot evaluate a {task!r} run: known tasks are {', '.join(evaluators)}")
    return evaluators[task](req)


def _evaluate_classification(req: EvaluationRequest) -> EvaluationResult:
    from semalign.pipeline import batches, encode, load_examples
    from semalign.workflows.loading import load_run
    from semalign.workflows.steps import Steps
    from semalign.workflows.train import evaluate_batches

    loaded = load_run(req.run, runs_dir=req.runs_dir, which=req.checkpoint)
    data, split = _data_for(req, loaded.data_config)
    if split == "all":
        examples = load_examples(data)
    else:
        from semalign.data import split_examples

        examples = getattr(split_examples(load_examples(data), seed=data.split_seed), split)
    if len(examples) == 0:
        raise DataError(f"the {split} split of {data.source} is empty: pick another --split")
    enc = encode(examples, loaded.tokenizer, loaded.labels, data.max_len)
    bs = req.batch_size or loaded.train_config.batch_size
    report = evaluate_batches(
        Steps(loaded.model, None), batches(enc, data, batch_size=bs, shuffle=False), loaded.labels
    )
    return EvaluationResult(loaded.paths.root, data.source, split, loaded.checkpoint, report)
