"""Rebuild a trained model, its tokenizer and labels from a run folder, for any task."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tokenizers

from semalign import tasks
from semalign.config import ModelConfig, TrainConfig
from semalign.data import load_tokenizer
from semalign.errors import RunError
from semalign.runs import RunPaths, read_json, resolve_run

__all__ = ["LoadedRun", "load_run", "read_configs", "run_spec"]


@dataclass(frozen=True)
class LoadedRun:
    """A run ready for inference.

    Attributes:
      paths: the run folder.
      model: the task's model in eval mode with the chosen checkpoint's weights.
      tokenizer: the run's tokenizer.
      labels: class names, index order (empty for tasks without classes).
      model_config: the architecture.
      data_config: how the run's data was read and tokenized (the task's data config).
      train_config: how it was trained.
      checkpoint: which checkpoint directory was loaded.
      task: the task's name (runs without the field are classification runs).
      loss: the training loss (the task's default for runs that did not record it).
    """

    paths: RunPaths
    model: Any
    tokenizer: tokenizers.Tokenizer
    labels: tuple[str, ...]
    model_config: ModelConfig
    data_config: Any
    train_config: TrainConfig
    checkpoint: str
    task: str = tasks.DEFAULT_TASK
    loss: str = "cross-entropy"

    @property
    def spec(self) -> tasks.TaskSpec:
        """The task's :class:`~semalign.tasks.TaskSpec`."""
        return tasks.get(self.task)

    @property
    def task_impl(self) -> Any:
        """The task's implementation (:class:`semalign.tasks.base.Task`)."""
        return self.spec.load()

    @property
    def max_len(self) -> int:
        """The longest token sequence the model reads."""
        return min(self.data_config.max_len, self.model_config.max_len)


def run_spec(paths: RunPaths) -> tasks.TaskSpec:
    """The task of a run, from its config.json.

    Raises:
      RunError: a task this version of semalign does not know.
    """
    name = read_json(paths.config).get("task", tasks.DEFAULT_TASK)
    if name not in tasks.TASKS:
        raise RunError(
            f"run task {name!r} is unknown to this semalign (known: "
            f"{', '.join(tasks.names())}): upgrade semalign or retrain"
        )
    return tasks.get(name)


def read_configs(paths: RunPaths) -> tuple[ModelConfig, Any, TrainConfig]:
    """The three configs of ``config.json`` (the data config is the task's).

    Raises:
      RunError: when config.json lacks a section or holds invalid values.
    """
    raw = read_json(paths.config)
    spec = run_spec(paths)
    try:
        return (
            ModelConfig.from_dict(raw["model"]),
            spec.data_config(**raw["data"]),
            TrainConfig(**raw["train"]),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise RunError(
            f"{paths.config} is not a valid semalign config ({err}): retrain or restore it"
        ) from None


def load_run(
    run: str | Path | None = None, *, runs_dir: str | Path = "runs", which: str = "served"
) -> LoadedRun:
    """Load the run at ``run`` (or the newest under ``runs_dir``).

    ``which``: ``served`` (the checkpoint training reported: ``best``, or ``last`` for a
    run trained with ``restore_best=False``), ``best`` or ``last``.

    Runs written by semalign 0.1.0 (trunk parameters at the top of the model) load too.

    Raises:
      RunError: no run, an incomplete run, or a checkpoint that does not fit the config.
    """
    from flax import nnx

    from semalign.nn.encoder import LEGACY_LAYOUTS
    from semalign.runs import checkpoints

    paths = resolve_run(run, runs_dir=runs_dir)
    mcfg, dcfg, tcfg = read_configs(paths)
    raw = read_json(paths.config)
    spec = run_spec(paths)
    labels = tuple(read_json(paths.labels))
    tokenizer = load_tokenizer(paths.tokenizer)
    try:
        model = spec.load().build(mcfg, rngs=nnx.Rngs(0))
    except ValueError as err:
        raise RunError(f"{paths.config} does not describe a {spec.name} model ({err})") from None
    tag = checkpoints.restore(paths.checkpoints, {"model": model}, which, layouts=LEGACY_LAYOUTS)
    model.eval()
    return LoadedRun(
        paths,
        model,
        tokenizer,
        labels,
        mcfg,
        dcfg,
        tcfg,
        tag,
        spec.name,
        raw.get("loss") or spec.losses[0],
    )
