"""Rebuild a trained model, its tokenizer and labels from a run folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tokenizers

from semalign.config import DataConfig, ModelConfig, TrainConfig
from semalign.data import load_tokenizer
from semalign.errors import RunError
from semalign.runs import RunPaths, read_json, resolve_run


@dataclass(frozen=True)
class LoadedRun:
    """A run ready for inference.

    Attributes:
      paths: the run folder.
      model: the classifier in eval mode with the chosen checkpoint's weights.
      tokenizer: the run's tokenizer.
      labels: class names, index order.
      model_config: the architecture.
      data_config: how the run's data was read and tokenized.
      train_config: how it was trained.
      checkpoint: which checkpoint directory was loaded.
      task: ``classification``, ``similarity`` or ``pair-classification`` (from
        config.json; runs without the field are classification runs).
      loss: the training loss of a pair run, None for classification.
    """

    paths: RunPaths
    model: Any
    tokenizer: tokenizers.Tokenizer
    labels: tuple[str, ...]
    model_config: ModelConfig
    data_config: DataConfig
    train_config: TrainConfig
    checkpoint: str
    task: str = "classification"
    loss: str | None = None


def run_task(paths: RunPaths) -> str:
    """The run's task as config.json records it (``classification`` when absent)."""
    return read_json(paths.config).get("task", "classification")


def _tasks() -> dict[str, tuple[type, type]]:
    """Task name -> (model class, data config class) of the run's config.json."""
    from semalign.data.pairs import PairDataConfig
    from semalign.models import TextClassifier
    from semalign.pair_tasks import TASKS

    pairs = {name: (task.model, PairDataConfig) for name, task in TASKS.items()}
    return {"classification": (TextClassifier, DataConfig), **pairs}


def _task_parts(task: str) -> tuple[type, type]:
    known = _tasks()
    if task not in known:
        raise RunError(
            f"run task {task!r} is unknown to this semalign (known: {', '.join(known)}): "
            "upgrade semalign or retrain"
        )
    return known[task]


def read_configs(paths: RunPaths) -> tuple[ModelConfig, DataConfig, TrainConfig]:
    """The three configs of ``config.json``.

    A pair run's data config is a :class:`~semalign.data.pairs.PairDataConfig`.

    Raises:
      RunError: when config.json lacks a section or holds invalid values.
    """
    raw = read_json(paths.config)
    try:
        return (
            ModelConfig.from_dict(raw["model"]),
            _task_parts(raw.get("task", "classification"))[1](**raw["data"]),
            TrainConfig(**raw["train"]),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise RunError(
            f"{paths.config} is not a valid semalign config ({err}): retrain or restore it"
        ) from None


def load_run(
    run: str | Path | None = None, *, runs_dir: str | Path = "runs", which: str = "best"
) -> LoadedRun:
    """Load the run at ``run`` (or the newest under ``runs_dir``).

    Raises:
      RunError: no run, an incomplete run, or a checkpoint that does not fit the config.
    """
    from flax import nnx

    from semalign.runs import checkpoints

    paths = resolve_run(run, runs_dir=runs_dir)
    mcfg, dcfg, tcfg = read_configs(paths)
    raw = read_json(paths.config)
    task = raw.get("task", "classification")
    labels = tuple(read_json(paths.labels))
    tokenizer = load_tokenizer(paths.tokenizer)
    model = _task_parts(task)[0](mcfg, rngs=nnx.Rngs(0))
    tag = checkpoints.restore(paths.checkpoints, {"model": model}, which)
    model.eval()
    return LoadedRun(paths, model, tokenizer, labels, mcfg, dcfg, tcfg, tag, task, raw.get("loss"))
