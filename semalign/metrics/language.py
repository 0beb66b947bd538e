"""Language-model metrics: mean negative log-likelihood per token, perplexity, bits."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

__all__ = ["LanguageReport", "language_report"]


@dataclass(frozen=True)
class LanguageReport:
    """Next-token prediction over a set of texts.

    Attributes:
      loss: mean negative log-likelihood per predicted token (nats).
      perplexity: ``exp(loss)``.
      bits_per_token: ``loss / ln 2``.
      accuracy: share of tokens whose most probable prediction was right.
      tokens: predicted tokens counted.
    """

    loss: float
    perplexity: float
    bits_per_token: float
    accuracy: float
    tokens: int

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)

    def scalars(self) -> dict[str, float]:
        """Flat numbers for ``metrics.jsonl`` and TensorBoard."""
        return {**self.to_dict(), "count": self.tokens}


def language_report(nll_sum: float, correct: float, tokens: float) -> LanguageReport:
    """The report of summed token NLL (nats) and correct predictions over ``tokens``.

    >>> r = language_report(2 * math.log(4.0), 1, 2)
    >>> round(r.perplexity, 6), round(r.bits_per_token, 6), r.accuracy
    (4.0, 2.0, 0.5)
    """
    n = max(float(tokens), 1.0)
    loss = float(nll_sum) / n
    return LanguageReport(
        loss=loss,
        perplexity=math.exp(min(loss, 700.0)),  # exp overflows a float past ~709
        bits_per_token=loss / math.log(2.0),
        accuracy=float(correct) / n,
        tokens=int(tokens),
    )
