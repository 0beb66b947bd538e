"""``semalign pretrain``: ``semalign train --task mlm`` (rtd, contrastive), same options."""

from __future__ import annotations

import inspect
import typing
from enum import StrEnum
from typing import Annotated

import typer

from semalign.cli.train import train


class Objective(StrEnum):
    """The pretraining tasks."""

    mlm = "mlm"
    rtd = "rtd"
    contrastive = "contrastive"


def pretrain(ctx, objective: Objective = Objective.mlm, **options) -> None:
    """Pretrain an encoder with masked-token prediction (the mlm task); write runs/<name>/.

    `--objective rtd` trains it with ELECTRA's replaced-token detection instead,
    `--objective contrastive` with SimCSE (two dropout views, in-batch negatives).
    Start any task from it with `semalign train --init-from runs/<name>`.
    Example: semalign pretrain --dataset rotten-tomatoes --epochs 10
    """
    train(ctx, **{**options, "task": str(objective)})


_OBJECTIVE = Annotated[
    Objective,
    typer.Option(
        help="mlm: masked-token prediction (BERT); rtd: replaced-token detection (ELECTRA); "
        "contrastive: SimCSE sentence embeddings. On --resume: give the run's again."
    ),
]
# Typer reads the options from the signature: train's, without --task, with --objective.
_signature = inspect.signature(train, eval_str=True)  # annotations resolved in train.py
_params = [p for name, p in _signature.parameters.items() if name != "task"]
_params.append(
    inspect.Parameter(
        "objective", inspect.Parameter.KEYWORD_ONLY, default=Objective.mlm, annotation=_OBJECTIVE
    )
)
pretrain.__signature__ = _signature.replace(parameters=_params)
_hints = typing.get_type_hints(train, include_extras=True)  # resolved in train's module
pretrain.__annotations__ = {k: v for k, v in _hints.items() if k != "task"} | {
    "objective": _OBJECTIVE
}
