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
    """

    paths: RunPaths
    model: Any
    tokenizer: tokenizers.Tokenizer
    labels: tuple[str, ...]
    model_config: ModelConfig
    data_config: DataConfig
    train_config: TrainConfig
    checkpoint: str


def read_configs(paths: RunPaths) -> tuple[ModelConfig, DataConfig, TrainConfig]:
    """The three configs of ``config.json``.

    Raises:
      RunError: when config.json lacks a section or holds invalid values.
    """
    raw = read_json(paths.config)
    try:
        return (
            ModelConfig.from_dict(raw["model"]),
            DataConfig(**raw["data"]),
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

    from semalign import checkpoints
    from semalign.models import TextClassifier

    paths = resolve_run(run, runs_dir=runs_dir)
    mcfg, dcfg, tcfg = read_configs(paths)
    labels = tuple(read_json(paths.labels))
    tokenizer = load_tokenizer(paths.tokenizer)
    model = TextClassifier(mcfg, rngs=nnx.Rngs(0))
    tag = checkpoints.restore(paths.checkpoints, {"model": model}, which)
    model.eval()
    return LoadedRun(paths, model, tokenizer, labels, mcfg, dcfg, tcfg, tag)
