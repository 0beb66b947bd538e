"""Token alignment across two texts with an attention layer's own projections and scoring.

What ``semalign inspect --pair`` shows for encoders: the final token states of text A are
the queries and those of text B the keys of the last encoder block's attention.
"""

from __future__ import annotations

import jax
from flax import nnx

from semalign.attention import Capture
from semalign.nn.layers import MultiHeadAttention

__all__ = ["cross_alignment", "last_block_alignment"]


def cross_alignment(
    attn: MultiHeadAttention, xa: jax.Array, va: jax.Array, xb: jax.Array, vb: jax.Array
) -> Capture:
    """Attention of text A's tokens over text B's tokens with ``attn``'s scoring.

    Args:
      attn: an attention layer (its projections, scoring and masks are used).
      xa: ``[batch, La, dim]`` token states of the first texts (queries).
      va: ``[batch, La]`` bool.
      xb: ``[batch, Lb, dim]`` token states of the second texts (keys).
      vb: ``[batch, Lb]`` bool.

    Returns:
      A :class:`Capture` with ``[batch, heads, La, Lb]`` logits and weights; the weight
      rows of softmax scorings are distributions over B's real tokens.
    """
    _, cap = attn(xa, va, context=xb, context_valid=vb, capture=True)
    return cap


def last_block_alignment(model: nnx.Module, ids_a: jax.Array, ids_b: jax.Array) -> Capture:
    """Alignment of A over B by the last block's attention of ``model.encoder``."""
    encoder = model.encoder
    xa, va, _ = encoder(ids_a)
    xb, vb, _ = encoder(ids_b)
    return cross_alignment(encoder.blocks[-1].attn, xa, va, xb, vb)
