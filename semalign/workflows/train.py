"""Training end to end, one path for every task.

Data -> tokenizer -> batches -> jitted steps -> checkpoints -> test.

The task (:mod:`semalign.tasks`) says how its data is read and batched, which model sits
on the trunk, what the loss and the selection metric are; this module never names one.
Everything a later command needs lands in the run folder (see ``DESIGN.md``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semalign import tasks
from semalign.config import ModelConfig, TrainConfig
from semalign.data import load_tokenizer, save_tokenizer, train_tokenizer
from semalign.data.fingerprint import check_fingerprint
from semalign.errors import DataError, RunError
from semalign.runs import RunPaths, create_run, default_run_name, read_json, write_json
from semalign.workflows import hosts
from semalign.workflows import init_from as _init_from
from semalign.workflows.reporting import Reporter, SilentReporter
from semalign.workflows.resume import Progress, interrupted, open_for_resume

__all__ = [
    "DATA_DEPENDENT",
    "Reporter",
    "SilentReporter",
    "TrainRequest",
    "TrainResult",
    "model_config",
    "train",
]

#: Model fields that depend on the data and are filled in by :func:`train`.
DATA_DEPENDENT = ("vocab_size", "num_classes", "max_len")
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class TrainRequest:
    """Everything :func:`train` needs.

    Attributes:
      task: a name of :data:`semalign.tasks.TASKS`; None: ``classification`` for a new
        run, the run's own task when resuming.
      data: the task's data config (:class:`~semalign.config.DataConfig`,
        :class:`~semalign.data.pairs.PairDataConfig`); None: the task's default (the
        built-in IMDB reviews for classification).
      loss: one of the task's losses; None: its default.
      train: optimisation; None: :class:`TrainConfig` () for a new run, the run's saved
        plan when resuming (pass changes to it as ``overrides``).
      overrides: :class:`TrainConfig` fields that change the plan (``{"epochs": 6}``);
        the only way to change a resumed run's plan, reported as a message.
      model: model fields other than the data-dependent ones (``vocab_size``,
        ``num_classes``, ``max_len``), as keyword arguments of :class:`ModelConfig`.
      runs_dir: parent folder of runs.
      name: run folder name; None makes one from the data, task and scoring.
      overwrite: replace an existing run of that name.
      resume: continue the run at this path. Its saved task, data, model and train
        config are the plan; ``data``, ``model`` and ``train`` must be left unset.
      stop_after: stop after this many epochs in this call (continue later with resume).
      tensorboard: write TensorBoard events.
      mesh: ``"auto"`` (all devices on ``data``) or ``"data=N,model=M"``; None: a mesh
        only when there is more than one device.
      distributed: call ``jax.distributed.initialize()`` first (multi-host).
      init_from: a run whose trunk and tokenizer a new run starts from (a new head);
        ignored on resume (:mod:`semalign.workflows.init_from`).
    """

    task: str | None = None
    data: Any = None
    loss: str | None = None
    train: TrainConfig | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    model: Mapping[str, Any] = field(default_factory=dict)
    runs_dir: str = "runs"
    name: str | None = None
    overwrite: bool = False
    resume: str | None = None
    stop_after: int | None = None
    tensorboard: bool = True
    mesh: str | None = None
    distributed: bool = False
    init_from: str | None = None


@dataclass(frozen=True)
class TrainResult:
    """What a training call produced.

    Attributes:
      run: the run folder.
      task: the run's task.
      loss: the loss it was trained with.
      epochs_done: epochs completed in total (resumes included).
      best_epoch: epoch whose weights were kept.
      stopped_early: early stopping fired.
      finished: training is complete (not stopped by ``stop_after``).
      validation: the task's report of the kept weights on the validation split.
      test: the task's report on the test split (None when unfinished).
      seconds: wall time of this call.
      tokens_per_second: real (non-pad) training tokens per second of step time.
      compiled_shapes: distinct batch shapes (so compilations of the train step).
      served: ``best`` or ``last``: the checkpoint ``validation`` and ``test`` are of,
        the one evaluate / predict load by default; None when unfinished.
      served_epoch: that checkpoint's epoch (None when unfinished).
      lead: this process writes the run and shows the result (always, on one process;
        process 0 of a ``distributed`` training).
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
    served: str | None = None
    served_epoch: int | None = None
    lead: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["run"] = str(self.run)
        for key in ("validation", "test"):
            out[key] = None if out[key] is None else out[key].to_dict()
        return out


def model_config(
    options: Mapping[str, Any], *, vocab_size: int, num_classes: int, max_len: int
) -> ModelConfig:
    """A validated :class:`ModelConfig` from options plus the data-dependent fields."""
    clash = sorted(set(options) & set(DATA_DEPENDENT))
    if clash:
        raise ValueError(f"model options {clash} are set from the data; pass them via the data")
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown model options {unknown}; known: {', '.join(sorted(known))}")
    return ModelConfig(
        vocab_size=vocab_size, num_classes=num_classes, max_len=max_len, **dict(options)
    )


def _default_data(spec):
    try:
        return spec.data_config()
    except (TypeError, ValueError):
        raise DataError(
            f"task {spec.name!r} has no built-in data: give it a {spec.data_config.__name__} "
            f"(on the command line: --data)"
        ) from None


def _resume(req: TrainRequest, reporter: Reporter) -> tuple[RunPaths, TrainRequest, Progress]:
    """Open the run to continue: the saved config is the plan, ``req.overrides`` change it."""
    if req.train is not None or req.data is not None or req.model:
        raise ValueError(
            "a resumed run keeps its saved data, model and train config: leave train, data "
            "and model unset and pass changes to the plan as overrides={'epochs': N, ...}"
        )

    def same_run(run, saved) -> None:
        saved_task = saved.get("task", tasks.DEFAULT_TASK)
        if req.task is not None and req.task != saved_task:
            raise RunError(
                f"run {run.root} is a {saved_task!r} run, not {req.task!r}: resume it with "
                f"--task {saved_task}"
            )
        saved_loss = saved.get("loss") or tasks.get(saved_task).losses[0]
        if req.loss is not None and req.loss != saved_loss:
            raise RunError(
                f"run {run.root} was trained with --loss {saved_loss}, not {req.loss}: a "
                "resumed run keeps its loss; train a new run to change it"
            )

    point = open_for_resume(req.resume, req.overrides, same_run)
    _init_from.check_resume_changes(point.changes)
    saved = point.saved
    spec = tasks.get(saved.get("task", tasks.DEFAULT_TASK))
    changed = ", ".join(f"{k} {old} -> {new}" for k, old, new in point.changes)
    reporter.message(
        f"resuming {point.run.root} after epoch {point.progress.epoch} of "
        f"{point.train.epochs}: "
        + (f"the saved plan, changed: {changed}" if changed else "the saved plan, unchanged")
    )
    resumed = dataclasses.replace(
        req,
        task=spec.name,
        data=spec.data_config(**saved["data"]),
        loss=saved.get("loss") or spec.losses[0],
        train=point.train,
        model={k: v for k, v in saved["model"].items() if k not in DATA_DEPENDENT},
    )
    return point.run, resumed, point.progress


def train(req: TrainRequest, reporter: Reporter | None = None) -> TrainResult:
    """Train a model for the request's task and leave a complete run folder.

    Args:
      req: what to train and where.
      reporter: progress sink (default: silent).

    Returns:
      The :class:`TrainResult`; the run folder holds config, tokenizer, labels,
      checkpoints (best and last), TensorBoard events and ``metrics.jsonl``.

    Raises:
      DataError: bad data (missing file or column, one class, ...).
      RunError: the run exists (without overwrite) or cannot be resumed.
      ValueError: an invalid option (task, loss, model field, mesh).
    """
    from semalign.nn.encoder import check_names

    reporter = reporter or SilentReporter()
    t0 = time.perf_counter()
    progress = None
    if req.resume is not None:
        run, req, progress = _resume(req, reporter)
    else:
        try:
            train_cfg = dataclasses.replace(req.train or TrainConfig(), **req.overrides)
        except TypeError as err:
            raise ValueError(f"overrides: {err}") from None
        req = dataclasses.replace(req, train=train_cfg)
    spec = tasks.get(req.task or tasks.DEFAULT_TASK)
    data = req.data if req.data is not None else _default_data(spec)
    req = dataclasses.replace(req, task=spec.name, data=data, loss=spec.check_loss(req.loss))
    # Validate the model options and the mesh before touching data or disk.
    probe = model_config(req.model, vocab_size=data.vocab_size, num_classes=0, max_len=data.max_len)
    check_names(probe)
    mesh = hosts.training_mesh(
        req.mesh, req.distributed, batch_size=req.train.batch_size, heads=probe.attention.heads
    )
    if not hosts.is_lead():  # one progress display for the whole training, process 0's
        reporter = SilentReporter()
    from semalign.workflows.microbatch import with_micro_batch

    req = dataclasses.replace(req, train=with_micro_batch(req.train, spec, req.loss, mesh))
    task = spec.load()
    source = (
        _init_from.open_source(req.init_from, task.model_config(probe), data)
        if (req.init_from and progress is None)
        else None
    )  # a mismatch fails before any folder
    splits = _load_splits(task, data)  # bad data fails before a run folder is made
    seen = task.fingerprint(data, {s: getattr(splits, s) for s in SPLITS})
    if progress is not None:
        saved = read_json(run.data) if run.data.is_file() else None
        for note in check_fingerprint(
            saved,
            seen,
            splits=SPLITS,
            run=str(run.root),
            action="a resumed run needs the data it was trained on: restore it, or train a new run",
        ):
            reporter.message(note)
        tokenizer = load_tokenizer(run.tokenizer)
        classes = tuple(read_json(run.labels))
    else:
        data = task.prepare_data(data, splits.train)
        req = dataclasses.replace(req, data=data)
        scoring = req.model.get("attention", {}).get("scoring", "dot")
        if not isinstance(scoring, str):
            scoring = ",".join(scoring)
        name = req.name or default_run_name(*task.run_name(data, scoring))

        # Process 0 writes the run's files; the others wait, then read what it wrote.
        def make() -> str:
            return str(create_run(req.runs_dir, name, overwrite=req.overwrite).root)

        run = RunPaths(hosts.from_lead(make))
        if hosts.is_lead():
            write_json(run.data, seen)
            tokenizer = (
                source.tokenizer
                if source
                else train_tokenizer(
                    task.corpus(splits.train),
                    vocab_size=data.vocab_size,
                    kind=data.tokenizer,
                    lowercase=data.lowercase,
                )
            )
            save_tokenizer(tokenizer, run.tokenizer)
            classes = task.classes(splits.train)
            write_json(run.labels, list(classes))
        hosts.barrier("run folder")
        if not hosts.is_lead():
            tokenizer = load_tokenizer(run.tokenizer)
            classes = tuple(read_json(run.labels))
    req = dataclasses.replace(req, init_from=source)  # the opened source travels to _fit
    try:
        return _fit(task, req, run, splits, tokenizer, classes, progress, reporter, t0, mesh)
    except KeyboardInterrupt:
        raise interrupted(run) from None  # says what the run kept


def _load_splits(task, data):
    splits = task.load_splits(data)
    task.check_trainable(splits.train, f"training split of {data.source}")
    return splits


def _fit(task, req, run, splits, tokenizer, classes, progress, reporter, t0, mesh) -> TrainResult:
    # JAX is imported here, not at module import: building a request stays cheap.
    from flax import nnx

    from semalign.workflows.evaluate import evaluate_batches
    from semalign.workflows.fit import (
        Objective,
        fit,
        parameter_count,
        restore_progress,
        write_run_config,
    )
    from semalign.workflows.optim import learning_rate, optimizer
    from semalign.workflows.probe import attention_image, probe_sentence
    from semalign.workflows.steps import Steps

    spec, cfg, data = task.spec, req.train, req.data
    sizes = {"vocab_size": tokenizer.get_vocab_size(), "num_classes": task.num_classes(classes)}
    mcfg = task.model_config(model_config(req.model, **sizes, max_len=data.max_len))
    model = task.build(mcfg, rngs=nnx.Rngs(params=cfg.seed, dropout=cfg.seed + 1))
    record = _init_from.copy_trunk(model, req.init_from) if req.init_from else None
    extras = _init_from.run_extras(run, record)
    if hosts.is_lead():
        write_run_config(
            run, task=spec.name, loss=req.loss, data=data, train=cfg, model=mcfg, **extras
        )
    enc = {s: task.encode_with(data, getattr(splits, s), tokenizer, classes) for s in SPLITS}
    data = task.fit_buckets(data, enc["train"], cfg.epochs)  # the batches' padded lengths

    def batches(split: str, *, shuffle: bool, epoch: int = 0):
        return task.batches(
            enc[split], data, batch_size=cfg.batch_size, shuffle=shuffle, seed=cfg.seed, epoch=epoch
        )

    first = batches("train", shuffle=True)
    steps_per_epoch = len(first)
    opt = nnx.Optimizer(model, optimizer(cfg, steps_per_epoch), wrt=nnx.Param)
    progress = restore_progress(run, progress, model, opt)
    # The task's loss and outputs; its eval step by micro-batches too where they are by rows.
    kw = {"l1": cfg.l1, "l2": cfg.l2, "mesh": mesh, "micro_batch": cfg.micro_batch}
    steps = Steps.for_task(task, model, opt, loss=req.loss, data=data, **kw)
    shapes, slots, real = set(), 0, 0
    for b in first:  # one pass: a streamed corpus reads and tokenizes its texts for it
        steps.precompile(b)  # each new shape, in the background while the first ones train
        shapes.add(tuple(int(d) for d in b[0].shape))
        slots += sum(a.size for a in b if a.ndim == 2)
        real += task.tokens(b)
    reporter.start(
        {
            "run": str(run.root),
            "task": spec.name,
            "loss": req.loss,
            "metric": spec.metric,
            "data": data.source,
            "sizes": {s: len(getattr(splits, s)) for s in SPLITS},
            "duplicates_removed": splits.duplicates_removed,
            "labels": list(classes),
            "vocab": tokenizer.get_vocab_size(),
            "parameters": parameter_count(model),
            "shapes": sorted(shapes),
            "padding_fraction": 1.0 - real / max(slots, 1),
            "steps_per_epoch": steps_per_epoch,
            "resumed_from_epoch": progress.epoch,
            # Texts longer than max_len, per split (None: the task does not count them).
            "truncated": {s: getattr(enc[s], "truncated", None) for s in SPLITS},
            "max_len": data.max_len,
            "truncation": getattr(data, "truncation", "head"),
            "model": mcfg.to_dict(),
            "mesh": None if mesh is None else dict(mesh.shape),
        }
    )
    probe = probe_sentence(task.corpus(splits.validation), tokenizer, data.max_len)
    objective = Objective(
        evaluate=lambda s, bs: evaluate_batches(task, s, bs, classes),
        score=task.score,
        score_name=spec.metric,
        tokens=task.tokens,
        higher_is_better=spec.higher_is_better,
        test_record=task.test_record,
        after_epoch=lambda m, tr, step: attention_image(tr, m, probe, step, run.root.name),
    )
    out = fit(
        cfg=cfg,
        run=run,
        model=model,
        optimizer=opt,
        steps=steps,
        objective=objective,
        train_batches=lambda e: first if e == 0 else batches("train", shuffle=True, epoch=e),
        val_batches=batches("validation", shuffle=False),
        test_batches=lambda: batches("test", shuffle=False),
        progress=progress,
        tokenizer=tokenizer,
        reporter=reporter,
        steps_per_epoch=steps_per_epoch,
        stop_after=req.stop_after,
        lead=hosts.is_lead(),
        tensorboard=req.tensorboard,
        lr_at=learning_rate(cfg, steps_per_epoch),
    )
    return TrainResult(
        run=run.root,
        task=spec.name,
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
        served=out.served,
        served_epoch=out.served_epoch,
        lead=hosts.is_lead(),
    )
