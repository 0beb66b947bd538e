"""Evaluate a trained run on its own split, a built-in dataset or a user file."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

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
    """A report and where it came from."""

    run: Path
    source: str
    split: str
    checkpoint: str
    report: ClassificationReport

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        out = dataclasses.asdict(self)
        out["run"] = str(self.run)
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


def evaluate(req: EvaluationRequest) -> EvaluationResult:
    """Accuracy, macro-F1, per-class P/R/F1, confusion matrix and loss of a run.

    Raises:
      RunError: no run, or an incomplete one.
      DataError: unreadable data, or labels the run never saw.
    """
    from semalign.loading import load_run
    from semalign.pipeline import batches, encode, load_examples
    from semalign.steps import Steps  # noqa: F401  (compiled eval lives with the train step)
    from semalign.train import evaluate_batches

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
        _EvalOnly(loaded.model), batches(enc, data, batch_size=bs, shuffle=False), loaded.labels
    )
    return EvaluationResult(loaded.paths.root, data.source, split, loaded.checkpoint, report)


class _EvalOnly:
    """The eval half of :class:`semalign.steps.Steps` without an optimizer."""

    def __init__(self, model):
        import jax
        from flax import nnx

        from semalign.steps import weighted_cross_entropy

        graphdef, self.state = nnx.split(model)

        def step(state, ids, labels, weights):
            logits = nnx.merge(graphdef, state)(ids).logits
            total, count = weighted_cross_entropy(logits, labels, weights)
            return logits, total, count

        self._step = jax.jit(step)

    def evaluate(self, batch):
        return self._step(self.state, batch.ids, batch.labels, batch.weights)
