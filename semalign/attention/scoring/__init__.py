"""Pluggable attention scoring: ``logits = scoring(q, k) -> [batch, heads, q_len, k_len]``.

>>> from semalign.attention import scoring
>>> scoring.available()
('dot', 'general', 'cosine', 'l2', 'l1', 'differential', 'diff-transformer', 'additive')
"""

# Importing the family modules registers them, in this order.
from semalign.attention.scoring import _dot as _dot  # noqa: I001
from semalign.attention.scoring import _cosine as _cosine
from semalign.attention.scoring import _distance as _distance
from semalign.attention.scoring import _differential as _differential
from semalign.attention.scoring import _diff_transformer as _diff_transformer
from semalign.attention.scoring import _additive as _additive
from semalign.attention.scoring._base import FunctionScoring, Scoring
from semalign.attention.scoring._registry import (
    BuildContext,
    ScoringSpec,
    available,
    build,
    get,
    register,
)

__all__ = [
    "BuildContext",
    "FunctionScoring",
    "Scoring",
    "ScoringSpec",
    "available",
    "build",
    "get",
    "register",
]
