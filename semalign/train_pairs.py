"""Training on sentence pairs: similarity (CoSENT / cosine-MSE) or pair classification.

The run folder, checkpoints (best and last, resumable), tokenizer, TensorBoard events,
``metrics.jsonl`` and the :class:`~semalign.workflows.train.Reporter` protocol are those of
:func:`semalign.workflows.train.train`; ``config.json`` also records ``"task"`` and ``"loss"``, and
its ``"data"`` section is a :class:`~semalign.data.pairs.PairDataConfig`. What differs
by task (model, loss, evaluation, the number model selection maximises) comes from
:data:`semalign.pair_tasks.TASKS`.

Model selection: ``TrainConfig.monitor="accuracy"`` (the default) maximises the task's
validation score (Spearman of the cosine for similarity, accuracy for pair
classification); ``"loss"`` minimises the validation loss.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semalign.config import TrainConfig
from semalign.data.pairs import PairDataConfig, PairExamples, PairSplits
from semalign.errors import DataError, RunError
from semalign.runs import create_run, default_run_name, read_json, write_json
from semalign.workflows.fit import open_for_resume
from semalign.workflows.train import DATA_DEPENDENT, Reporter, SilentReporter, model_config

__all__ = ["PairTrainRequest", "PairTrainResult", "train_pairs"]


@dataclass(frozen=True)
class PairTrainRequest:
    """Everything :func:`train_pairs` needs.

    Attributes:
      data: the pairs and their tokenization.
      task: a key of :data:`semalign.pair_tasks.TASKS` (``similarity``,
        ``pair-classification``).
      loss: the task's loss (``cosent``, ``cosine-mse``); None = the task's default.
      train: optimisation (see the module docstring for ``monitor``).
      model: model fields other than ``vocab_size``, ``num_classes`` and ``max_len``.
      runs_dir: parent folder of runs.
      name: run folder name; None makes one from the data, task and scoring.
      overwrite: replace an existing run of that name.
      resume: continue the run at this path (its saved config wins; ``epochs`` may grow).
      stop_after: stop after this many epochs in this call.
      tensorboard: write TensorBoard events.
    """

    data: PairDataConfig
    task: str = "similarity"
    loss: str | None = None
    train: TrainConfig = field(default_factory=TrainConfig)
    model: Mapping[str, Any] = field(default_factory=dict)
    runs_dir: str = "runs"
    name: str | None = None
    overwrite: bool = False
    resume: str | None = None
    stop_after: int | None = None
    tensorboard: bool = True


@dataclass(frozen=True)
class PairTrainResult:
    """What a pair training call produced (see :class:`semalign.workflows.train.TrainResult`).

    ``validation`` and ``test`` are :class:`~semalign.evaluate_pairs.SimilarityReport`
    (similarity) or :class:`~semalign.metrics.ClassificationReport` (pair classification).
    """

    run: Path
    task: str
    loss: str
    epochs_done: int
    best_epoch: int
    stopped_early: bool
    finished: bool
    validation: Any
    test: Any
    seconds: float
    tokens_per_second: float
    compiled_shapes: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["run"] = str(self.run)
        for key in ("validation", "test"):
            out[key] = None if out[key] is None else out[key].to_dict()
        return out


def _task(name: str):
    from semalign.pair_tasks import TASKS

    if name not in TASKS:
        raise ValueError(f"unknown pair task {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[name]


def _check_trainable(train: PairExamples, where: str) -> None:
    if len(train) < 2:
        raise DataError(f"{where} holds {len(train)} pair(s); give it at least two")
    if train.scores is not None and len(set(train.scores)) < 2:
        raise DataError(
            f"{where}: every pair has the score {train.scores[0]}; similarity training needs "
            "pairs with different scores, check --score-column"
        )
    if train.labels is not None and len(train.classes) < 2:
        raise DataError(
            f"{where} has a single label {train.classes[0]!r}; pair classification needs at "
            "least 2, check --label-column"
        )


def _load(data: PairDataConfig) -> PairSplits:
    from semalign.data.pairs import load_pair_splits

    splits = load_pair_splits(data)
    _check_trainable(splits.train, f"training split of {data.source}")
    return splits


def _resume(req: PairTrainRequest):
    def same_task(run, saved) -> None:
        if saved.get("task") != req.task:
            raise RunError(
                f"run {run.root} is a {saved.get('task', 'classification')!r} run, not "
                f"{req.task!r}: resume it with --task {saved.get('task', 'classification')}"
            )

    run, saved, progress, train_cfg = open_for_resume(req.resume, req.train.epochs, same_task)
    resumed = dataclasses.replace(
        req,
        data=PairDataConfig(**saved["data"]),
        loss=saved["loss"],
        train=train_cfg,
        model={k: v for k, v in saved["model"].items() if k not in DATA_DEPENDENT},
    )
    return run, resumed, progress


def train_pairs(req: PairTrainRequest, reporter: Reporter | None = None) -> PairTrainResult:
    """Train a pair model and leave a complete run folder.

    Args:
      req: what to train and where.
      reporter: progress sink (default: silent).

    Returns:
      The :class:`PairTrainResult`.

    Raises:
      DataError: bad data (missing file or column, wrong field count, non-numeric score,
        empty text, a single label or a single score value).
      RunError: the run exists (without overwrite) or cannot be resumed.
      ValueError: an invalid option (task, loss, model field).
    """
    from semalign.data import load_tokenizer, save_tokenizer, train_tokenizer
    from semalign.models import check_names

    reporter = reporter or SilentReporter()
    t0 = time.perf_counter()
    task = _task(req.task)
    req = dataclasses.replace(req, loss=task.check_loss(req.loss))
    check_names(
        model_config(
            req.model, vocab_size=req.data.vocab_size, num_classes=2, max_len=req.data.max_len
        )
    )
    if req.resume is not None:
        run, req, progress = _resume(req)
        splits = _load(req.data)
        tokenizer = load_tokenizer(run.tokenizer)
        classes = tuple(read_json(run.labels))
    else:
        data = dataclasses.replace(req.data, target=task.target)
        splits = _load(data)  # fail on bad data before creating a run folder
        if splits.train.scores is not None:
            scores = splits.train.scores
            data = dataclasses.replace(data, score_range=(min(scores), max(scores)))
        req = dataclasses.replace(req, data=data)
        name = req.name or default_run_name(
            Path(data.data).stem,
            f"{task.name}-{req.model.get('attention', {}).get('scoring', 'dot')}",
        )
        run = create_run(req.runs_dir, name, overwrite=req.overwrite)
        progress = None
        tokenizer = train_tokenizer(
            splits.train.texts(),
            vocab_size=data.vocab_size,
            kind=data.tokenizer,
            lowercase=data.lowercase,
        )
        save_tokenizer(tokenizer, run.tokenizer)
        classes = splits.train.classes
        write_json(run.labels, list(classes))
    return _fit(task, req, run, splits, tokenizer, classes, progress, reporter, t0)


def _batches(enc, data: PairDataConfig, batch_size: int, *, shuffle: bool, seed=0, epoch=0):
    from semalign.data import bucket_boundaries
    from semalign.data.pairs import make_pair_batches

    return make_pair_batches(
        enc.seqs_a,
        enc.seqs_b,
        enc.targets,
        batch_size=batch_size,
        boundaries=bucket_boundaries(data.max_len, max_buckets=data.max_buckets),
        shuffle=shuffle,
        seed=seed,
        epoch=epoch,
    )


def _fit(task, req, run, splits, tokenizer, classes, progress, reporter, t0) -> PairTrainResult:
    from flax import nnx

    from semalign.data.pairs import encode_pairs
    from semalign.evaluate_pairs import evaluate_pair_batches
    from semalign.pair_steps import PairSteps
    from semalign.workflows.fit import (
        Objective,
        fit,
        parameter_count,
        restore_progress,
        write_run_config,
    )
    from semalign.workflows.optim import learning_rate, optimizer

    cfg, data = req.train, req.data
    mcfg = model_config(
        req.model,
        vocab_size=tokenizer.get_vocab_size(),
        num_classes=max(len(classes), 2),
        max_len=data.max_len,
    )
    write_run_config(run, task=task.name, loss=req.loss, data=data, train=cfg, model=mcfg)
    enc = {
        name: encode_pairs(getattr(splits, name), tokenizer, max_len=data.max_len, classes=classes)
        for name in ("train", "validation", "test")
    }
    first = _batches(enc["train"], data, cfg.batch_size, shuffle=True, seed=cfg.seed)
    steps_per_epoch = len(first)

    model = task.model(mcfg, rngs=nnx.Rngs(params=cfg.seed, dropout=cfg.seed + 1))
    opt = nnx.Optimizer(model, optimizer(cfg, steps_per_epoch), wrt=nnx.Param)
    progress = restore_progress(run, progress, model, opt)
    steps = PairSteps(
        model,
        opt,
        loss=task.loss(req.loss, data.score_range),
        outputs=task.outputs(req.loss, data.score_range),
        l1=cfg.l1,
        l2=cfg.l2,
    )
    shapes = sorted({tuple(int(d) for d in b.ids_a.shape) for b in first})
    padded = sum(2 * b.ids_a.size for b in first)
    reporter.start(
        {
            "run": str(run.root),
            "task": task.name,
            "loss": req.loss,
            "data": data.source,
            "sizes": {k: len(getattr(splits, k)) for k in ("train", "validation", "test")},
            "duplicates_removed": splits.duplicates_removed,
            "labels": list(classes),
            "vocab": tokenizer.get_vocab_size(),
            "parameters": parameter_count(model),
            "shapes": shapes,
            "padding_fraction": 1.0 - enc["train"].real_tokens / max(padded, 1),
            "steps_per_epoch": steps_per_epoch,
            "resumed_from_epoch": progress.epoch,
            "model": mcfg.to_dict(),
            "mesh": None,
        }
    )
    objective = Objective(
        evaluate=lambda s, bs: evaluate_pair_batches(task, s, bs, classes),
        score=task.score,
        score_name=task.score_name,
        tokens=lambda b: int(np.count_nonzero(b.ids_a) + np.count_nonzero(b.ids_b)),
    )
    out = fit(
        cfg=cfg,
        run=run,
        model=model,
        optimizer=opt,
        steps=steps,
        objective=objective,
        train_batches=lambda epoch: (
            first
            if epoch == 0
            else _batches(
                enc["train"], data, cfg.batch_size, shuffle=True, seed=cfg.seed, epoch=epoch
            )
        ),
        val_batches=_batches(enc["validation"], data, cfg.batch_size, shuffle=False),
        test_batches=lambda: _batches(enc["test"], data, cfg.batch_size, shuffle=False),
        progress=progress,
        tokenizer=tokenizer,
        reporter=reporter,
        steps_per_epoch=steps_per_epoch,
        stop_after=req.stop_after,
        tensorboard=req.tensorboard,
        lr_at=learning_rate(cfg, steps_per_epoch),
    )
    return PairTrainResult(
        run=run.root,
        task=task.name,
        loss=req.loss,
        epochs_done=out.epochs_done,
        best_epoch=out.best_epoch,
        stopped_early=out.stopped_early,
        finished=out.finished,
        validation=out.validation,
        test=out.test,
        seconds=time.perf_counter() - t0,
        tokens_per_second=out.tokens_per_second,
        compiled_shapes=len(shapes),
    )
