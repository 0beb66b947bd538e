"""``semalign.train``: the options of ``semalign train`` as keyword arguments."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from semalign.api.run import Run

__all__ = ["train"]


def train(  # noqa: D417 (each option is `semalign train`'s, described by its --help)
    task: str | None = None,
    *,
    scoring: str | Sequence[str] = "dot",
    dataset: str = "imdb",
    data: str | os.PathLike[str] | None = None,
    text_column: str = "text",
    label_column: str = "label",
    text_a_column: str = "sentence1",
    text_b_column: str = "sentence2",
    score_column: str = "score",
    loss: str | None = None,
    epochs: int = 3,
    batch_size: int = 32,
    dim: int | None = None,
    heads: int | None = None,
    layers: int = 1,
    mlp_ratio: int | None = None,
    max_len: int | None = None,
    vocab_size: int = 20_000,
    truncation: str | None = None,
    tokenizer: str = "wordpiece",
    positions: str = "learned",
    pooling: str = "mean",
    bigram_buckets: int | None = None,
    causal: bool = False,
    window: int | str | tuple[int | None, int | None] | None = None,
    tie_qk: bool = False,
    dropout: float = 0.3,
    attention_dropout: float = 0.0,
    l1: float = 0.0,
    l2: float = 0.0,
    lr: float = 1e-3,
    schedule: str = "cosine",
    warmup_steps: int | None = None,
    decay_rate: float = 0.5,
    decay_steps: int | None = None,
    weight_decay: float = 0.01,
    clip_norm: float = 1.0,
    patience: int = 2,
    min_delta: float = 0.0,
    restore_best: bool = True,
    seed: int = 0,
    split_seed: int | None = None,
    stream: bool | None = None,
    whole_word_masking: bool = False,
    temperature: float | None = None,
    init_from: str | os.PathLike[str] | None = None,
    freeze_encoder: bool = False,
    encoder_lr_scale: float = 1.0,
    dtype: str = "float32",
    micro_batch: int | None = None,
    name: str | None = None,
    runs_dir: str | os.PathLike[str] = "runs",
    overwrite: bool = False,
    stop_after: int | None = None,
    tensorboard: bool = True,
    mesh: str | None = None,
    distributed: bool = False,
    reporter: Any = None,
) -> Run:
    """Train a model and write a run folder, as ``semalign train`` with the same options.

    Every keyword is the command's option of that name (``--batch-size`` is
    ``batch_size``), with the same default; ``semalign train --help`` describes them. None
    for ``dim``, ``heads``, ``mlp_ratio``, ``max_len``, ``truncation`` and
    ``bigram_buckets`` means the task's default.
    ``scoring`` may also be a sequence, one scoring per head; ``window`` an int or a
    ``(left, right)`` pair.

    Args:
      task: ``classification`` (default), ``similarity``, ``pair-classification``,
        ``causal-lm``, or a task a plugin registered.
      reporter: a :class:`~semalign.workflows.reporting.Reporter` for progress
        (default: silent).

    Returns:
      The :class:`~semalign.api.run.Run`: ``.path``, ``.test``, ``.result`` and ``.load()``.

    Raises:
      DataError: bad data (missing file or column, one class, ...).
      RunError: the run exists (pass ``overwrite=True``).
      ValueError: an invalid option (one line naming it).
    """
    import inspect

    from semalign.workflows.options import inherit, new_plan
    from semalign.workflows.train import TrainRequest
    from semalign.workflows.train import train as run_training

    options = dict(locals())
    del options["reporter"], options["inspect"]
    options["data"] = None if data is None else os.fspath(data)
    if init_from is not None:
        options["init_from"] = os.fspath(init_from)
        defaults = {k: p.default for k, p in inspect.signature(train).parameters.items()}
        # As on the command line: options left at their default take the source's values.
        options = inherit(options, {k for k, v in options.items() if v != defaults.get(k)})
    request = TrainRequest(
        **new_plan(options),
        loss=loss,
        runs_dir=os.fspath(runs_dir),
        name=name,
        overwrite=overwrite,
        stop_after=stop_after,
        tensorboard=tensorboard,
        mesh=mesh,
        distributed=distributed,
        init_from=options["init_from"],
    )
    result = run_training(request, reporter)
    return Run(result.run, result)
