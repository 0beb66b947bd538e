"""The epoch loop shared by every task: train, validate, select, checkpoint, stop, test.

:func:`semalign.workflows.train.train` builds the data, model and compiled steps of any
task, then hands them to :func:`fit` with an :class:`Objective` that says what the task
decides: how to evaluate, which number model selection follows and in which direction,
and how many real tokens a batch holds. Resuming (:mod:`semalign.workflows.resume`) is
shared too, so every task resumes the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from semalign.config import TrainConfig
from semalign.errors import RunError
from semalign.runs import RunPaths, write_json
from semalign.runs.faults import crash_point
from semalign.workflows.resume import (  # noqa: F401 (re-exported)
    Progress,
    ResumePoint,
    open_for_resume,
    restore_progress,
    shielded,
)

__all__ = [
    "FitOutcome",
    "Objective",
    "Progress",
    "ResumePoint",
    "better",
    "embedding_projector",
    "fit",
    "open_for_resume",
    "parameter_count",
    "restore_progress",
    "running_metrics",
    "write_run_config",
]

#: Train metrics are fetched from the device every this many steps (fewer host syncs).
_SYNC_EVERY = 16


@dataclass(frozen=True)
class Objective:
    """What the epoch loop needs to know about a task.

    Attributes:
      evaluate: ``(steps, batches) -> report``; reports have ``loss`` and ``scalars()``.
      score: ``report -> float``, the task's selection metric, followed when
        ``TrainConfig.monitor == "accuracy"`` (the task's metric: accuracy, Spearman ...).
      score_name: that number's name, for messages.
      higher_is_better: the metric's direction (the loss is always lower-is-better).
      tokens: real (non-pad) tokens of a training batch, for tokens/s.
      test_record: ``report -> dict`` written to ``metrics.jsonl`` for the test split;
        None: ``report.scalars()``.
      after_epoch: ``(model, tracker, step)`` called after each epoch on every process
        when TensorBoard is on (the attention image; only the lead's tracker records).
    """

    evaluate: Callable[[Any, Sequence], Any]
    score: Callable[[Any], float]
    score_name: str
    tokens: Callable[[Any], int]
    higher_is_better: bool = True
    test_record: Callable[[Any], dict[str, Any]] | None = None
    after_epoch: Callable[[Any, Any, int], None] | None = None

    def monitored(self, cfg: TrainConfig, report: Any) -> float:
        """The number :func:`better` compares: the score, or the loss."""
        return self.score(report) if cfg.monitor == "accuracy" else report.loss

    def monitor_name(self, cfg: TrainConfig) -> str:
        """What is monitored, in words."""
        return self.score_name if cfg.monitor == "accuracy" else "loss"


@dataclass(frozen=True)
class FitOutcome:
    """What :func:`fit` did.

    Attributes:
      epochs_done: epochs completed in total (resumes included).
      best_epoch: epoch whose weights were kept.
      stopped_early: early stopping fired.
      finished: training is complete (not stopped by ``stop_after``).
      validation: report of the kept weights on the validation split (None if unfinished).
      test: report on the test split (None if unfinished).
      tokens_per_second: real training tokens per second of step time in this call.
      served: ``best`` or ``last``: the checkpoint reported, which evaluate / predict load
        by default (the ``served`` pointer); None if unfinished.
      served_epoch: its epoch (None if unfinished).
    """

    epochs_done: int
    best_epoch: int
    stopped_early: bool
    finished: bool
    validation: Any
    test: Any
    tokens_per_second: float
    served: str | None = None
    served_epoch: int | None = None


def better(
    cfg: TrainConfig, value: float, best: float | None, *, higher_is_better: bool = True
) -> bool:
    """Whether ``value`` improves on ``best`` by more than ``min_delta``.

    The task's metric in its direction (``higher_is_better``); the loss goes down.
    """
    if best is None:
        return True
    if cfg.monitor == "accuracy" and higher_is_better:
        return value > best + cfg.min_delta
    return value < best - cfg.min_delta


def running_metrics(sums: Mapping[str, float], tokens_per_second: float) -> dict[str, float]:
    """Mean loss (and accuracy when the step counts ``correct``) from device sums."""
    count = max(sums.get("count", 0.0), 1.0)
    out = {"loss": sums.get("loss_sum", 0.0) / count}
    if "correct" in sums:
        out["accuracy"] = sums["correct"] / count
    out["tokens_per_second"] = tokens_per_second
    return out


def fit(
    *,
    cfg: TrainConfig,
    run: RunPaths,
    model,
    optimizer,
    steps,
    objective: Objective,
    train_batches: Callable[[int], Sequence],
    val_batches: Sequence,
    test_batches: Callable[[], Sequence],
    progress: Progress,
    tokenizer,
    reporter,
    steps_per_epoch: int,
    stop_after: int | None = None,
    lead: bool = True,
    tensorboard: bool = True,
    lr_at: Callable[[int], Any] | None = None,
) -> FitOutcome:
    """Run epochs ``progress.epoch + 1 ..`` until done, stopped early or ``stop_after``.

    Each epoch: train on ``train_batches(epoch_index)`` (0-based, shuffled by the caller),
    evaluate on ``val_batches``, write an orbax checkpoint (best pointer when the
    monitored number improves), ``metrics.jsonl``, TensorBoard scalars and
    ``state.json``. When training is finished, the best weights are restored (if
    ``cfg.restore_best``) and evaluated on validation (their epoch's report when this
    call validated them: the same program on the same weights) and test, and the token
    embeddings go to TensorBoard's projector.

    Args:
      cfg: optimisation settings (epochs, patience, monitor, min_delta, restore_best).
      run: the run folder.
      model: the NNX model (synced from ``steps`` before saving).
      optimizer: its ``nnx.Optimizer``.
      steps: compiled :class:`semalign.workflows.steps.Steps` over both.
      objective: what differs by task.
      train_batches: epoch index -> that epoch's training batches.
      val_batches: validation batches.
      test_batches: builds the test batches (only when training finishes).
      progress: where a resumed run stands (:class:`Progress` () for a new run).
      tokenizer: the run's tokenizer (vocabulary of the embedding projector).
      reporter: progress sink (:class:`semalign.workflows.reporting.Reporter`).
      steps_per_epoch: optimisation steps in an epoch (global step of a resumed run).
      stop_after: stop after this many epochs in this call.
      lead: this process writes logs, events and pointers (process 0).
      tensorboard: write TensorBoard events (the lead process only).
      lr_at: step -> learning rate, for logs.

    Returns:
      The :class:`FitOutcome`.
    """
    import jax

    from semalign.nn.encoder import LEGACY_LAYOUTS
    from semalign.runs import checkpoints
    from semalign.tracking import MetricsLog, make_tracker

    tracker = make_tracker(run.events, enabled=tensorboard and lead)
    log = MetricsLog(run.metrics)
    start = progress.epoch
    best, best_epoch, bad = progress.best, progress.best_epoch, progress.bad_epochs
    step_seconds, step_tokens, stopped_early, epoch = 0.0, 0, False, start
    # Validation reports of this call's epochs by epoch (the best's and the last's kept):
    # the final report of those weights is the same program on the same numbers.
    reports: dict[int, Any] = {}
    last = cfg.epochs if stop_after is None else min(cfg.epochs, start + stop_after)
    global_step = start * steps_per_epoch
    for epoch in range(start + 1, last + 1):
        epoch_batches = train_batches(epoch - 1)
        reporter.epoch_start(epoch, cfg.epochs, len(epoch_batches))
        sums: dict[str, float] = {}
        pending, tokens, te = [], 0, time.perf_counter()
        for i, batch in enumerate(epoch_batches, 1):
            pending.append(steps.train(batch))
            if i == 1:
                crash_point(f"mid-epoch@{epoch}")
            tokens += objective.tokens(batch)
            global_step += 1
            if len(pending) >= _SYNC_EVERY or i == len(epoch_batches):
                for m in jax.device_get(pending):
                    for k, v in m.items():
                        sums[k] = sums.get(k, 0.0) + float(v)
                pending = []
                running = running_metrics(sums, tokens / max(time.perf_counter() - te, 1e-9))
                if lr_at is not None:
                    running["lr"] = float(lr_at(global_step))
                reporter.step(i, running)
                tracker.scalars(global_step, {f"train/{k}": v for k, v in running.items()})
        epoch_seconds = time.perf_counter() - te
        step_seconds += epoch_seconds
        step_tokens += tokens

        val = objective.evaluate(steps, val_batches)
        metric = objective.monitored(cfg, val)
        improved = better(cfg, metric, best, higher_is_better=objective.higher_is_better)
        if improved:
            best, best_epoch, bad = metric, epoch, 0
        else:
            bad += 1
        reports = {e: r for e, r in reports.items() if e == best_epoch} | {epoch: val}
        trained = running_metrics(sums, tokens / max(epoch_seconds, 1e-9))
        record = {
            "epoch": epoch,
            "step": global_step,
            "split": "validation",
            **{f"train_{k}": v for k, v in trained.items() if k != "tokens_per_second"},
            **{f"val_{k}": v for k, v in val.scalars().items()},
            "val_score": objective.score(val),
            "lr": None if lr_at is None else float(lr_at(global_step)),
            "grad_norm": sums.get("grad_norm", 0.0) / max(len(epoch_batches), 1),
            "tokens_per_second": trained["tokens_per_second"],
            "epoch_seconds": epoch_seconds,
            "best": improved,
        }
        stop = cfg.patience > 0 and bad >= cfg.patience and epoch < cfg.epochs
        steps.sync(model, optimizer)
        # The order makes a crash at any moment resumable: the checkpoint, then the state
        # (the commit), then the pointers. Ctrl-C waits until all three are written.
        with shielded():
            _write_checkpoint(run, epoch, {"model": model, "optimizer": optimizer}, lead)
            crash_point(f"before-commit@{epoch}")
            if lead:
                log.append(record)
                scalars = {f"val/{k}": v for k, v in val.scalars().items() if k != "count"}
                scalars |= {f"train/epoch_{k}": v for k, v in trained.items()}
                scalars["train/grad_norm"] = record["grad_norm"]
                if record["lr"] is not None:
                    scalars["train/lr"] = record["lr"]
                tracker.scalars(global_step, scalars)
                write_json(
                    run.state,
                    {
                        "epoch": epoch,
                        "step": global_step,
                        "best_epoch": best_epoch,
                        "best_metric": best,
                        "bad_epochs": bad,
                        "finished": stop or epoch == cfg.epochs,
                        "stopped_early": stop,
                    },
                )
            crash_point(f"before-pointers@{epoch}")
            checkpoints.point(run.checkpoints, f"epoch-{epoch:04d}", best=improved, primary=lead)
        if tensorboard and objective.after_epoch is not None:
            objective.after_epoch(model, tracker, global_step)
        reporter.epoch_end(epoch, record)
        if stop:
            stopped_early = True
            reporter.message(
                f"early stop: validation {objective.monitor_name(cfg)} did not improve for "
                f"{bad} epochs"
            )
            break

    finished = stopped_early or epoch >= cfg.epochs
    val_report = test_report = served = None
    served_epoch = best_epoch
    if finished:
        # The weights reported here are the ones evaluate / predict load by default.
        if cfg.restore_best and best_epoch:
            checkpoints.restore(run.checkpoints, {"model": model}, "best", layouts=LEGACY_LAYOUTS)
            served = "best"
        else:
            steps.sync(model)
            served, served_epoch = "last", epoch
        if lead:
            checkpoints.serve(run.checkpoints, served)
        steps.set_model(model)
        # Validated in this call already (a resumed run's earlier epochs were not).
        val_report = reports.get(served_epoch)
        if val_report is None:
            val_report = objective.evaluate(steps, val_batches)
        test_report = objective.evaluate(steps, test_batches())
        if lead:
            record = (objective.test_record or (lambda r: r.scalars()))(test_report)
            log.append({"epoch": served_epoch, "split": "test", "checkpoint": served, **record})
            tracker.scalars(
                global_step,
                {f"test/{k}": v for k, v in test_report.scalars().items() if k != "count"},
            )
        if lead and tensorboard:
            embedding_projector(tracker, model, tokenizer, global_step)
    tracker.flush()
    tracker.close()
    return FitOutcome(
        epochs_done=epoch,
        best_epoch=best_epoch,
        stopped_early=stopped_early,
        finished=finished,
        validation=val_report,
        test=test_report,
        tokens_per_second=step_tokens / max(step_seconds, 1e-9),
        served=served,
        served_epoch=served_epoch if served else None,
    )


def _write_checkpoint(run: RunPaths, epoch: int, items, lead: bool) -> None:
    """The epoch's checkpoint; a failed write says which checkpoint is still good."""
    from semalign.runs import checkpoints

    try:
        checkpoints.write(run.checkpoints, f"epoch-{epoch:04d}", items, primary=lead)
    except checkpoints.CheckpointWriteError as err:
        resume = f"semalign train --resume --name {run.name} --runs-dir {run.root.parent}"
        kept = int(err.good.removeprefix("epoch-")) if err.good else 0
        todo = (
            f"the checkpoint of epoch {kept} is still good: free space, then {resume}"
            if err.good
            else "no epoch is saved yet: free space, then train again with --overwrite"
        )
        raise RunError(
            f"could not write the checkpoint of epoch {epoch} to {run.checkpoints} "
            f"({err.reason}); {todo}"
        ) from None


def parameter_count(model) -> int:
    """Number of trainable (``nnx.Param``) scalars of ``model``."""
    import jax
    from flax import nnx

    return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


def write_run_config(run: RunPaths, *, task: str, data, train: TrainConfig, model, **extra) -> None:
    """``config.json``: version, task, data / train / model configs (+ task extras)."""
    import dataclasses

    from semalign import __version__

    write_json(
        run.config,
        {
            "version": __version__,
            "task": task,
            **extra,
            "data": dataclasses.asdict(data),
            "train": dataclasses.asdict(train),
            "model": model.to_dict(),
        },
    )


def embedding_projector(tracker, model, tokenizer, step: int) -> None:
    """Token embeddings with their vocabulary into TensorBoard's projector."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    table = np.asarray(model.encoder.embed.embedding[...])
    tracker.embedding("token_embeddings", step, table[: len(vocab)], [t for t, _ in vocab])
