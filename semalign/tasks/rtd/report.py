"""The rtd task's report: the objective, the generator's and the discriminator's numbers."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["DetectionReport", "detection_auc", "detection_report"]


@dataclass(frozen=True)
class DetectionReport:
    """Replaced-token detection over a set of texts (fixed masks and samples).

    Attributes:
      loss: the objective, ``generator_loss + weight · detector_loss`` (selected on).
      generator_loss: mean NLL of the original token at the masked slots (nats).
      generator_perplexity: ``exp(generator_loss)``.
      generator_accuracy: share of masked slots whose top prediction is the original.
      detector_loss: mean binary cross-entropy of "replaced" over the judged tokens.
      detection_accuracy: share of judged tokens classified right (threshold 0.5).
      detection_auc: ROC AUC of the "replaced" scores over the judged tokens (NaN when
        one class is absent).
      replaced_share: share of judged tokens that were replaced.
      masked: masked slots counted.
      tokens: judged tokens counted (real, non-special).
    """

    loss: float
    generator_loss: float
    generator_perplexity: float
    generator_accuracy: float
    detector_loss: float
    detection_accuracy: float
    detection_auc: float
    replaced_share: float
    masked: int
    tokens: int

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)

    def scalars(self) -> dict[str, float]:
        """Flat numbers for ``metrics.jsonl`` and TensorBoard."""
        return {**self.to_dict(), "count": self.tokens}


def detection_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties sharing their mean rank.

    >>> detection_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    0.75
    """
    labels = np.asarray(labels, bool)
    pos = int(labels.sum())
    neg = labels.size - pos
    if pos == 0 or neg == 0:
        return math.nan
    _, inverse, counts = np.unique(np.asarray(scores), return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = ((ends - counts + 1 + ends) / 2.0)[inverse.ravel()]  # 1-based mean rank of ties
    return float((ranks[labels].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def detection_report(pending, weight: float) -> DetectionReport:
    """The report from ``[(batch, detection_sums outputs)]`` of an evaluation."""
    total = {k: sum(float(o[k]) for _, o in pending) for k in ("nll", "hits", "masked")}
    total |= {k: sum(float(o[k]) for _, o in pending) for k in ("bce", "detected", "tokens")}
    masked, tokens = max(total["masked"], 1.0), max(total["tokens"], 1.0)
    scores, labels = [], []
    for _, o in pending:
        judged = np.asarray(o["judged"])
        scores.append(np.asarray(o["logits"])[judged])
        labels.append(np.asarray(o["replaced"])[judged])
    generator, detector = total["nll"] / masked, total["bce"] / tokens
    replaced = np.concatenate(labels) if labels else np.zeros(0, bool)
    return DetectionReport(
        loss=generator + weight * detector,
        generator_loss=generator,
        generator_perplexity=math.exp(min(generator, 700.0)),
        generator_accuracy=total["hits"] / masked,
        detector_loss=detector,
        detection_accuracy=total["detected"] / tokens,
        detection_auc=detection_auc(np.concatenate(scores), replaced) if scores else math.nan,
        replaced_share=float(replaced.mean()) if replaced.size else 0.0,
        masked=int(total["masked"]),
        tokens=int(total["tokens"]),
    )
