"""Train options (the flat names of ``semalign train``) -> the pieces of a TrainRequest.

One mapping shared by the command line and the library face (``semalign.train``), so both
build the same request from the same options. JAX-free: importing it stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from semalign.config import AttentionConfig, DataConfig, ModelConfig

__all__ = [
    "inherit",
    "model_options",
    "new_plan",
    "parse_window",
    "refuse_other_tasks_options",
    "train_config",
]


def _value(option: Any) -> str:
    # An enum member of the CLI (a StrEnum) or a plain string from Python: its value.
    return str(getattr(option, "value", option))


def parse_window(value: Any) -> tuple[int | None, int | None] | None:
    """``"N"`` or ``"LEFT,RIGHT"`` (``none`` or empty: unbounded) -> a window, or None.

    An int or a ``(left, right)`` pair (from Python) is taken as it is.

    Raises:
      ValueError: a part that is not an integer.
    """
    if value is None:
        return None
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, tuple | list):
        return tuple(value)
    parts = str(value).split(",")
    if len(parts) == 1:
        parts = parts * 2
    try:
        left, right = (None if p.strip() in ("", "none") else int(p) for p in parts)
    except ValueError:
        raise ValueError(f"--window takes N or LEFT,RIGHT (integers), got {value!r}") from None
    return (left, right)


def train_config(o: Mapping[str, Any]):
    """The :class:`~semalign.config.TrainConfig` of the options."""
    from semalign.config import TrainConfig

    return TrainConfig(
        epochs=o["epochs"],
        batch_size=o["batch_size"],
        lr=o["lr"],
        schedule=_value(o["schedule"]),
        warmup_steps=o["warmup_steps"],
        decay_rate=o["decay_rate"],
        decay_steps=o["decay_steps"],
        weight_decay=o["weight_decay"],
        l1=o["l1"],
        l2=o["l2"],
        clip_norm=o["clip_norm"],
        patience=o["patience"],
        min_delta=o["min_delta"],
        restore_best=o["restore_best"],
        seed=o["seed"],
        freeze_encoder=o.get("freeze_encoder", False),
        encoder_lr_scale=o.get("encoder_lr_scale", 1.0),
        micro_batch=o.get("micro_batch"),
    )


def model_options(o: Mapping[str, Any]) -> dict:
    """The model fields of the options."""
    return {
        "dim": o["dim"],
        "layers": o["layers"],
        "mlp_ratio": o["mlp_ratio"],
        "positions": _value(o["positions"]),
        "pooling": _value(o["pooling"]),
        "dropout": o["dropout"],
        "dtype": _value(o["dtype"]),
        "bigram_buckets": o["bigram_buckets"],
        "attention": {
            "scoring": o["scoring"] if isinstance(o["scoring"], str) else ",".join(o["scoring"]),
            "heads": o["heads"],
            "causal": o["causal"],
            "window": parse_window(o["window"]),
            "dropout": o["attention_dropout"],
            "tie_qk": o["tie_qk"],
        },
    }


def inherit(o: Mapping[str, Any], typed: set[str]) -> dict[str, Any]:
    """``o`` with the options not in ``typed`` taken from the ``init_from`` run's trunk.

    Typed options stay as given; :mod:`semalign.workflows.init_from` refuses those that
    do not match the source in one line.
    """
    from semalign.workflows.init_from import source_options

    out = dict(o)
    for name, value in source_options(o["init_from"]).items():
        if name not in typed:
            out[name] = value
    return out


def refuse_other_tasks_options(o: Mapping[str, Any], spec) -> None:
    """Refuse a task-only option (``TaskSpec.options``) given to a task that ignores it.

    Unset is None or False (``--no-stream`` asks for what every other task does anyway).

    Raises:
      ValueError: one line naming the option and the tasks that read it.
    """
    from semalign import tasks

    for name in sorted({n for s in tasks.TASKS.values() for n in s.options} - spec.options):
        if o.get(name) not in (None, False):
            users = ", ".join(s.name for s in tasks.TASKS.values() if name in s.options)
            flag = "--" + name.replace("_", "-")
            raise ValueError(
                f"{flag} is an option of --task {users}, not of --task {spec.name}: leave it out"
            )


#: Options whose default depends on the task (``TaskSpec.defaults``); None on the command
#: line and in :func:`semalign.train` means "the task's", else the config classes' own.
OPTION_DEFAULTS: dict[str, Any] = {
    "dim": ModelConfig.dim,
    "heads": AttentionConfig.heads,
    "mlp_ratio": ModelConfig.mlp_ratio,
    "max_len": DataConfig.max_len,
    "truncation": DataConfig.truncation,
    "bigram_buckets": ModelConfig.bigram_buckets,
}


def new_plan(o: Mapping[str, Any]) -> dict[str, Any]:
    """``task``, ``data``, ``train`` and ``model`` of a TrainRequest for a new run.

    Raises:
      ValueError / DataError: an unknown task, an option of another task, bad data
        options (one line each).
    """
    from semalign import tasks

    spec = tasks.get(o["task"] or tasks.DEFAULT_TASK)
    refuse_other_tasks_options(o, spec)
    o = {**o}
    for name, value in {**OPTION_DEFAULTS, **dict(spec.defaults)}.items():
        if o.get(name) is None:  # not given: the task's default, else everyone's
            o[name] = value
    options = {
        **o,
        "task": spec.name,
        "tokenizer": _value(o["tokenizer"]),
        "truncation": _value(o["truncation"]),
    }
    return {
        "task": spec.name,
        "data": spec.data_from_options(options),
        "train": train_config(options),
        "model": model_options(options),
    }
