"""Training end to end: data -> tokenizer -> batches -> jitted steps -> checkpoints -> test.

The library function :func:`train` does the work and reports through a :class:`Reporter`;
the CLI only renders what it is told. Everything a later command needs lands in the run
folder (see ``DESIGN.md``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from semalign.config import DataConfig, ModelConfig, TrainConfig
from semalign.data import (
    Splits,
    batch_stats,
    check_trainable,
    load_tokenizer,
    save_tokenizer,
    tokens_of,
    train_tokenizer,
)
from semalign.metrics import ClassificationReport, classification_report
from semalign.runs import (
    RunPaths,
    create_run,
    default_run_name,
    read_json,
    write_json,
)
from semalign.workflows.fit import Progress, open_for_resume

#: Model fields that depend on the data and are filled in by :func:`train`.
DATA_DEPENDENT = ("vocab_size", "num_classes", "max_len")


class Reporter(Protocol):
    """Receives progress; the CLI renders it, tests and scripts may ignore it."""

    def start(self, info: Mapping[str, Any]) -> None:
        """Run folder, data sizes, shapes, parameter count."""

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        """An epoch begins (1-based)."""

    def step(self, step: int, metrics: Mapping[str, float]) -> None:
        """Running train metrics within the epoch (step is 1-based, within the epoch)."""

    def epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """Train and validation metrics of an epoch."""

    def message(self, text: str) -> None:
        """A line worth showing."""


class SilentReporter:
    """Reports nothing."""

    def start(self, info: Mapping[str, Any]) -> None:  # noqa: D102
        pass

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:  # noqa: D102
        pass

    def step(self, step: int, metrics: Mapping[str, float]) -> None:  # noqa: D102
        pass

    def epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:  # noqa: D102
        pass

    def message(self, text: str) -> None:  # noqa: D102
        pass


@dataclass(frozen=True)
class TrainRequest:
    """Everything :func:`train` needs.

    Attributes:
      data: data source and tokenization.
      train: optimisation.
      model: model fields other than the data-dependent ones (``vocab_size``,
        ``num_classes``, ``max_len``), as keyword arguments of :class:`ModelConfig`.
      runs_dir: parent folder of runs.
      name: run folder name; None makes one from dataset, scoring and time.
      overwrite: replace an existing run of that name.
      resume: continue the run at this path (its saved config wins; ``epochs`` may grow).
      stop_after: stop after this many epochs in this call (continue later with resume).
      tensorboard: write TensorBoard events.
      mesh: ``"auto"`` (all devices on ``data``) or ``"data=N,model=M"``; None: a mesh
        only when there is more than one device.
      distributed: call ``jax.distributed.initialize()`` first (multi-host TPU/GPU).
    """

    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    model: Mapping[str, Any] = field(default_factory=dict)
    runs_dir: str = "runs"
    name: str | None = None
    overwrite: bool = False
    resume: str | None = None
    stop_after: int | None = None
    tensorboard: bool = True
    mesh: str | None = None
    distributed: bool = False


@dataclass(frozen=True)
class TrainResult:
    """What a training call produced.

    Attributes:
      run: the run folder.
      epochs_done: epochs completed in total (resumes included).
      best_epoch: epoch whose weights were kept.
      stopped_early: early stopping fired.
      finished: training is complete (not stopped by ``stop_after``).
      validation: report of the kept weights on the validation split.
      test: report on the test split (None when unfinished).
      seconds: wall time of this call.
      tokens_per_second: real (non-pad) training tokens per second of step time.
      compiled_shapes: distinct batch shapes (so compilations of the train step).
    """

    run: Path
    epochs_done: int
    best_epoch: int
    stopped_early: bool
    finished: bool
    validation: ClassificationReport | None
    test: ClassificationReport | None
    seconds: float
    tokens_per_second: float
    compiled_shapes: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        out = dataclasses.asdict(self)
        out["run"] = str(self.run)
        return out


def model_config(options: Mapping[str, Any], *, vocab_size: int, num_classes: int, max_len: int):
    """A validated :class:`ModelConfig` from options plus the data-dependent fields."""
    clash = sorted(set(options) & set(DATA_DEPENDENT))
    if clash:
        raise ValueError(f"model options {clash} are set from the data; pass them via DataConfig")
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown model options {unknown}; known: {', '.join(sorted(known))}")
    return ModelConfig(
        vocab_size=vocab_size, num_classes=num_classes, max_len=max_len, **dict(options)
    )


def evaluate_batches(steps, batches, labels: tuple[str, ...]) -> ClassificationReport:
    """Metrics of the model in ``steps`` over ``batches`` (filler rows ignored)."""
    y_true, y_pred, loss_sum, count = [], [], 0.0, 0.0
    pending = [(b, steps.evaluate(b)) for b in batches]  # dispatch all, then sync
    for b, (logits, total, n) in pending:
        keep = np.asarray(b.weights) > 0
        y_true.append(np.asarray(b.labels)[keep])
        y_pred.append(np.asarray(logits).argmax(-1)[keep])
        loss_sum += float(total)
        count += float(n)
    return classification_report(
        np.concatenate(y_true), np.concatenate(y_pred), labels, loss=loss_sum / max(count, 1.0)
    )


def _prepare_run(req: TrainRequest) -> tuple[RunPaths, TrainRequest, Progress | None]:
    """Create the run folder, or open the one to resume and reload its request."""
    if req.resume is None:
        name = req.name or default_run_name(
            req.data.dataset if req.data.data is None else Path(req.data.data).stem,
            str(req.model.get("attention", {}).get("scoring", "dot")),
        )
        return create_run(req.runs_dir, name, overwrite=req.overwrite), req, None
    run, saved, progress, train_cfg = open_for_resume(req.resume, req.train.epochs)
    resumed = dataclasses.replace(
        req,
        data=DataConfig(**saved["data"]),
        train=train_cfg,
        model={k: v for k, v in saved["model"].items() if k not in DATA_DEPENDENT},
    )
    return run, resumed, progress


def train(req: TrainRequest, reporter: Reporter | None = None) -> TrainResult:
    """Train a text classifier and leave a complete run folder.

    Args:
      req: what to train and where.
      reporter: progress sink (default: silent).

    Returns:
      The :class:`TrainResult`; the run folder holds config, tokenizer, labels,
      checkpoints (best and last), TensorBoard events and ``metrics.jsonl``.

    Raises:
      DataError: bad data (missing file or column, one class, ...).
      RunError: the run exists (without overwrite) or cannot be resumed.
      ValueError: an invalid option.
    """
    reporter = reporter or SilentReporter()
    t0 = time.perf_counter()
    # Validate the model options and the mesh before touching data or disk.
    from semalign.models import check_names

    probe = model_config(
        req.model, vocab_size=req.data.vocab_size, num_classes=2, max_len=req.data.max_len
    )
    check_names(probe)
    mesh = _mesh(req, probe.attention.heads)
    if req.resume is not None:
        run, req, progress = _prepare_run(req)
        splits = _load_splits(req.data)
        tokenizer = load_tokenizer(run.tokenizer)
        labels = tuple(read_json(run.labels))
    else:
        splits = _load_splits(req.data)  # fail on bad data before creating a run folder
        run, req, progress = _prepare_run(req)
        tokenizer = train_tokenizer(
            list(splits.train.texts),
            vocab_size=req.data.vocab_size,
            kind=req.data.tokenizer,
            lowercase=req.data.lowercase,
        )
        save_tokenizer(tokenizer, run.tokenizer)
        labels = splits.train.classes
        write_json(run.labels, list(labels))
    return _fit(req, run, splits, tokenizer, labels, progress, reporter, t0, mesh)


def _mesh(req: TrainRequest, heads: int):
    import jax

    from semalign import sharding

    if req.distributed:
        jax.distributed.initialize()  # coordinator and ranks from the usual environment
    if req.mesh is None and jax.device_count() == 1:
        return None
    spec = sharding.parse_mesh(req.mesh, jax.device_count())
    mesh = sharding.make_mesh(spec)
    sharding.check_fits(spec, batch_size=req.train.batch_size, heads=heads)
    return mesh


def _load_splits(data: DataConfig) -> Splits:
    from semalign.pipeline import load_splits

    splits = load_splits(data)
    check_trainable(splits.train, where=f"training split of {data.source}")
    return splits


def _fit(req, run, splits, tokenizer, labels, progress, reporter, t0, mesh) -> TrainResult:
    # JAX is imported here, not at module import: building a request stays cheap.
    import jax
    from flax import nnx

    from semalign.models import TextClassifier
    from semalign.pipeline import batches, encode
    from semalign.workflows.fit import (
        Objective,
        fit,
        parameter_count,
        restore_progress,
        write_run_config,
    )
    from semalign.workflows.optim import learning_rate, optimizer
    from semalign.workflows.steps import Steps

    cfg, data = req.train, req.data
    mcfg = model_config(
        req.model,
        vocab_size=tokenizer.get_vocab_size(),
        num_classes=len(labels),
        max_len=data.max_len,
    )
    write_run_config(run, task="classification", data=data, train=cfg, model=mcfg)
    enc = {
        name: encode(getattr(splits, name), tokenizer, labels, data.max_len)
        for name in ("train", "validation", "test")
    }

    def train_batches(epoch: int):
        return batches(
            enc["train"], data, batch_size=cfg.batch_size, shuffle=True, seed=cfg.seed, epoch=epoch
        )

    first = train_batches(0)
    steps_per_epoch = len(first)
    model = TextClassifier(mcfg, rngs=nnx.Rngs(params=cfg.seed, dropout=cfg.seed + 1))
    opt = nnx.Optimizer(model, optimizer(cfg, steps_per_epoch), wrt=nnx.Param)
    progress = restore_progress(run, progress, model, opt)
    steps = Steps(model, opt, l1=cfg.l1, l2=cfg.l2, mesh=mesh)
    stats = batch_stats(first)
    reporter.start(
        {
            "run": str(run.root),
            "data": data.source,
            "sizes": {k: len(getattr(splits, k)) for k in ("train", "validation", "test")},
            "duplicates_removed": splits.duplicates_removed,
            "labels": list(labels),
            "vocab": tokenizer.get_vocab_size(),
            "parameters": parameter_count(model),
            "shapes": sorted({tuple(b.ids.shape) for b in first}),
            "padding_fraction": stats.padding_fraction,
            "steps_per_epoch": steps_per_epoch,
            "resumed_from_epoch": progress.epoch,
            "model": mcfg.to_dict(),
            "mesh": None if mesh is None else dict(mesh.shape),
        }
    )
    probe = _probe_sentence(splits, tokenizer, data.max_len)
    objective = Objective(
        evaluate=lambda s, bs: evaluate_batches(s, bs, labels),
        score=lambda report: report.accuracy,
        score_name="accuracy",
        tokens=lambda b: int(np.count_nonzero(b.ids)),
        test_record=lambda r: {**r.scalars(), "confusion": [list(row) for row in r.confusion]},
        after_epoch=lambda m, tr, step: _attention_image(tr, m, probe, step, run.root.name),
    )
    out = fit(
        cfg=cfg,
        run=run,
        model=model,
        optimizer=opt,
        steps=steps,
        objective=objective,
        train_batches=lambda epoch: first if epoch == 0 else train_batches(epoch),
        val_batches=batches(enc["validation"], data, batch_size=cfg.batch_size, shuffle=False),
        test_batches=lambda: batches(enc["test"], data, batch_size=cfg.batch_size, shuffle=False),
        progress=progress,
        tokenizer=tokenizer,
        reporter=reporter,
        steps_per_epoch=steps_per_epoch,
        stop_after=req.stop_after,
        lead=jax.process_index() == 0,
        tensorboard=req.tensorboard,
        lr_at=learning_rate(cfg, steps_per_epoch),
    )
    return TrainResult(
        run=run.root,
        epochs_done=out.epochs_done,
        best_epoch=out.best_epoch,
        stopped_early=out.stopped_early,
        finished=out.finished,
        validation=out.validation,
        test=out.test,
        seconds=time.perf_counter() - t0,
        tokens_per_second=out.tokens_per_second,
        compiled_shapes=len(stats.shapes),
    )


def _probe_sentence(splits: Splits, tokenizer, max_len: int) -> tuple[np.ndarray, list[str]]:
    # A fixed, short validation text whose attention is drawn into TensorBoard each epoch.
    from semalign.data import encode_texts

    texts = sorted(splits.validation.texts, key=len)
    text = texts[len(texts) // 10] if texts else "a"
    length = min(max_len, 24)
    return encode_texts(tokenizer, [text], max_len=length)[0], tokens_of(tokenizer, text, length)


def _attention_image(tracker, model, probe, step: int, title: str) -> None:
    from semalign.tracking.plotting import attention_figure, figure_to_rgb

    ids, tokens = probe
    model.eval()
    out = model(ids[None], capture=True)
    weights = np.asarray(out.attention[0].weights[0, 0])
    fig = attention_figure(weights, tokens, tokens, title=f"{title}: layer 1, head 1")
    tracker.image("attention/layer1_head1", step, figure_to_rgb(fig))


__all__ = [
    "Reporter",
    "SilentReporter",
    "TrainRequest",
    "TrainResult",
    "evaluate_batches",
    "model_config",
    "train",
]
