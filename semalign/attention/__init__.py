"""Layer 2: attention as pure functions; masks, masked softmax, weighted sum, capture.

Scorings (how a query is compared with a key) live in :mod:`semalign.attention.scoring`,
one file per family and one registration each.
"""

from semalign.attention.core import (
    MASK_VALUE,
    Capture,
    DotForm,
    Scorer,
    attend,
    build_mask,
    causal_mask,
    check_window,
    combine_masks,
    dropout_weights,
    fused_dot_attention,
    local_mask,
    masked_softmax,
    padding_mask,
    row_has_keys,
)
from semalign.attention.products import query_key_dots, weighted_sum

__all__ = [
    "MASK_VALUE",
    "Capture",
    "DotForm",
    "Scorer",
    "attend",
    "build_mask",
    "causal_mask",
    "check_window",
    "combine_masks",
    "dropout_weights",
    "fused_dot_attention",
    "local_mask",
    "masked_softmax",
    "padding_mask",
    "query_key_dots",
    "row_has_keys",
    "weighted_sum",
]
