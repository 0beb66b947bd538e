"""Additive (Bahdanau) scoring: ``vᵀ tanh(W₁q_i + W₂k_j)``."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from semalign.attention.scoring._base import Scoring
from semalign.attention.scoring._blocks import map_key_blocks
from semalign.attention.scoring._registry import BuildContext, ScoringSpec, register


def additive_logits(
    q: jax.Array, k: jax.Array, w_q: jax.Array, w_k: jax.Array, v: jax.Array
) -> jax.Array:
    """``s(i, j) = v_hᵀ tanh(W₁q_i + W₂k_j)``.

    Args:
      q: ``[b, q, h, d]``.
      k: ``[b, k, h, d]``.
      w_q: ``[h, d, a]``.
      w_k: ``[h, d, a]``.
      v: ``[h, a]``.

    Returns:
      ``[b, h, q, k]``.

    """
    pq = jnp.einsum("bqhd,hda->bqha", q, w_q)
    pk = jnp.einsum("bkhd,hda->bkha", k, w_k)
    hidden = jnp.tanh(pq[:, :, None] + pk[:, None])  # [b, q, k, h, a]
    return jnp.einsum("bqkha,ha->bhqk", hidden, v)


class Additive(Scoring):
    """Bahdanau scoring per head, computed in key blocks (its hidden is O(L²·a)).

    Args:
      heads: number of heads.
      head_dim: per-head width ``d``; the hidden width ``a`` equals ``d``.
      key_block: keys per block.
      rngs: streams for parameter init.

    """

    def __init__(self, *, heads: int, head_dim: int, key_block: int, rngs: nnx.Rngs):
        super().__init__(heads=heads, head_dim=head_dim)
        init = nnx.initializers.lecun_normal(in_axis=-2, out_axis=-1, batch_axis=(0,))
        self.w_q = nnx.Param(init(rngs.params(), (heads, head_dim, head_dim)))
        self.w_k = nnx.Param(init(rngs.params(), (heads, head_dim, head_dim)))
        self.v = nnx.Param(
            jax.random.normal(rngs.params(), (heads, head_dim)) / math.sqrt(head_dim)
        )
        self.key_block = key_block

    def logits(self, q: jax.Array, k: jax.Array) -> jax.Array:  # noqa: D102
        w_q, w_k, v = (p[...].astype(q.dtype) for p in (self.w_q, self.w_k, self.v))
        return map_key_blocks(lambda a, b: additive_logits(a, b, w_q, w_k, v), q, k, self.key_block)


def _build(c: BuildContext) -> Scoring:
    return Additive(heads=c.heads, head_dim=c.head_dim, key_block=c.key_block, rngs=c.rngs)


register(
    ScoringSpec(
        name="additive",
        formula="vᵀ tanh(W₁q_i + W₂k_j)",
        fused=False,
        parametric=True,
        factory=_build,
        note="Bahdanau et al. 2015; computed in key blocks",
    )
)
