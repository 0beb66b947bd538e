"""The rtd task's JAX-free registration and its data config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from semalign.data.corpus import corpus_fields
from semalign.tasks import TaskSpec, register
from semalign.tasks.mlm.spec import MaskedCorpusConfig

__all__ = ["SPEC", "DetectionCorpusConfig", "data_from_options"]


@dataclass(frozen=True)
class DetectionCorpusConfig(MaskedCorpusConfig):
    """A masked corpus (:class:`MaskedCorpusConfig`) and the weight of the detection loss.

    Attributes:
      detector_weight: λ of ``loss = generator MLM loss + λ · detection loss`` (ELECTRA:
        50, Clark et al. 2020, §3 and appendix A).
    """

    detector_weight: float = 50.0

    def __post_init__(self):
        super().__post_init__()
        if not self.detector_weight > 0.0:
            raise ValueError(f"detector_weight must be > 0, got {self.detector_weight!r}")


def data_from_options(o: Mapping[str, Any]) -> DetectionCorpusConfig:
    """``semalign train`` options -> :class:`DetectionCorpusConfig`."""
    return DetectionCorpusConfig(
        **corpus_fields(o), whole_word_masking=bool(o.get("whole_word_masking", False))
    )


SPEC = register(
    TaskSpec(
        name="rtd",
        summary="texts -> replaced-token detection (ELECTRA-style pretraining: a small "
        "generator fills the masks, the trunk spots them); `--init-from` a run of it "
        "starts any task from its encoder",
        columns=("text",),
        metric="loss",
        higher_is_better=False,
        losses=("electra",),
        # Each row's term is scaled by its batch's normalisers, carried in the batch.
        row_sum_losses=frozenset({"electra"}),
        capabilities=frozenset(),
        data_config=DetectionCorpusConfig,
        data_from_options=data_from_options,
        options=frozenset({"stream", "whole_word_masking"}),
        implementation="semalign.tasks.rtd.task:TASK",
    )
)
