"""The contrastive task's report: the InfoNCE loss and what it is made of."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["ContrastiveReport", "contrastive_report"]


@dataclass(frozen=True)
class ContrastiveReport:
    """InfoNCE over a set of texts, batch by batch (fixed dropout masks: ``view_seed``).

    Attributes:
      loss: mean InfoNCE loss per text (selected on, lower is better); a batch of ``n``
        texts that cannot tell its views apart scores ``log n``.
      accuracy: share of texts whose own second view is the most similar of the batch's.
      positive_cosine: mean cosine of a text's two views (alignment).
      negative_cosine: mean cosine of a text's view and another text's (a high value is
        a collapsed, anisotropic space).
      texts: texts counted.
    """

    loss: float
    accuracy: float
    positive_cosine: float
    negative_cosine: float
    texts: int

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)

    def scalars(self) -> dict[str, float]:
        """Flat numbers for ``metrics.jsonl`` and TensorBoard."""
        return {**self.to_dict(), "count": self.texts}


def contrastive_report(pending) -> ContrastiveReport:
    """The report from ``[(batch, outputs)]``; outputs hold the sums of :func:`sums`."""
    total = {
        k: sum(float(o[k]) for _, o in pending)
        for k in ("loss_sum", "correct", "count", "positive", "negative", "others")
    }
    count = max(total["count"], 1.0)
    return ContrastiveReport(
        loss=total["loss_sum"] / count,
        accuracy=total["correct"] / count,
        positive_cosine=total["positive"] / count,
        negative_cosine=total["negative"] / max(total["others"], 1.0),
        texts=int(total["count"]),
    )
