"""The contrastive task's JAX-free registration and its data config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from semalign.data.corpus import CorpusConfig, corpus_fields
from semalign.tasks import TaskSpec, register

__all__ = ["SPEC", "ContrastiveCorpusConfig", "data_from_options"]

#: SimCSE's temperature (Gao et al. 2021, §3 and table D.1: 0.05 is best of 0.001-1).
TEMPERATURE = 0.05


@dataclass(frozen=True)
class ContrastiveCorpusConfig(CorpusConfig):
    """A corpus (:class:`CorpusConfig`) and the temperature of its InfoNCE loss.

    Attributes:
      temperature: τ of ``softmax(cos(z_i, z'_j) / τ)`` over the batch (SimCSE: 0.05).
      view_seed: seed of the dropout masks of validation, test and ``evaluate`` (training
        masks come from the run's dropout stream, anew each step).
    """

    temperature: float = TEMPERATURE
    view_seed: int = 0

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 < self.temperature <= 10.0:
            raise ValueError(f"temperature must be in (0, 10], got {self.temperature!r}")


def data_from_options(o: Mapping[str, Any]) -> ContrastiveCorpusConfig:
    """``semalign train`` options -> :class:`ContrastiveCorpusConfig`."""
    temperature = o.get("temperature")
    return ContrastiveCorpusConfig(
        **corpus_fields(o), temperature=TEMPERATURE if temperature is None else float(temperature)
    )


SPEC = register(
    TaskSpec(
        name="contrastive",
        summary="texts -> unsupervised contrastive sentence embeddings (SimCSE: two dropout "
        "views of each text are positives, the batch's other texts negatives); "
        "`--init-from` a run of it starts any task from its encoder",
        columns=("text",),
        metric="loss",
        higher_is_better=False,
        # In-batch negatives: a row's term depends on the whole batch (no micro-batches).
        losses=("infonce",),
        capabilities=frozenset({"embed"}),
        data_config=ContrastiveCorpusConfig,
        data_from_options=data_from_options,
        options=frozenset({"stream", "temperature"}),
        implementation="semalign.tasks.contrastive.task:TASK",
    )
)
