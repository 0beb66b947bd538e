"""``semalign pretrain``: ``semalign train --task mlm``, every other option the same."""

from __future__ import annotations

import inspect
import typing

from semalign.cli.train import train


def pretrain(ctx, **options) -> None:
    """Pretrain an encoder with masked-token prediction (the mlm task); write runs/<name>/.

    Start any task from it with `semalign train --init-from runs/<name>`.
    Example: semalign pretrain --dataset rotten-tomatoes --epochs 10
    """
    train(ctx, **{**options, "task": "mlm"})


# Typer reads the options from the signature: train's, without --task.
_signature = inspect.signature(train, eval_str=True)  # annotations resolved in train.py
pretrain.__signature__ = _signature.replace(
    parameters=[p for name, p in _signature.parameters.items() if name != "task"]
)
_hints = typing.get_type_hints(train, include_extras=True)  # resolved in train's module
pretrain.__annotations__ = {k: v for k, v in _hints.items() if k != "task"}
