"""Additive (Bahdanau) scoring: ``vᵀ tanh(W₁q_i + W₂k_j)``."""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
from flax import nnx

from semalign.attention.scoring._base import Scoring
from semalign.attention.scoring._blocks import map_key_blocks, scan_key_blocks
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
    return _scores(pq, pk, v)


def additive_scores(a: jax.Array, c: jax.Array, v: jax.Array, *, block: int = 128) -> jax.Array:
    """``s(i, j) = v_hᵀ tanh(a_i + c_j)`` on projected queries and keys, in key blocks.

    The backward pass is written per key block (:func:`_additive_bwd`), so memory stays
    O(L·block·a) in both directions.

    Args:
      a: ``[b, q, h, a]`` (``W₁q``).
      c: ``[b, k, h, a]`` (``W₂k``).
      v: ``[h, a]``.
      block: keys per block.

    Returns:
      ``[b, h, q, k]``.

    """
    if not isinstance(c.shape[1], int):  # symbolic length (export): no blocks, no backward
        return _scores(a, c, v)
    return _additive_blocked(a, c, v, block)


def _scores(a: jax.Array, c: jax.Array, v: jax.Array) -> jax.Array:
    hidden = jnp.tanh(a[:, :, None] + c[:, None])  # [b, q, k, h, a]
    return jnp.einsum("bqkha,ha->bhqk", hidden, v)


@partial(jax.custom_vjp, nondiff_argnums=(3,))
def _additive_blocked(a: jax.Array, c: jax.Array, v: jax.Array, block: int) -> jax.Array:
    return map_key_blocks(lambda x, y: _scores(x, y, v), a, c, block, a.size)


def _additive_fwd(a: jax.Array, c: jax.Array, v: jax.Array, block: int):
    return _additive_blocked(a, c, v, block), (a, c, v)


def _additive_bwd(block: int, res: tuple[jax.Array, ...], g: jax.Array):
    """The VJP per key block: one ``[b, q, block, h, a]`` term per step.

    With ``u = tanh(a_i + c_j)`` and ``t = g_ij v ⊙ (1 − u²)``: ``da_i = Σ_j t``,
    ``dc_j = Σ_i t``, ``dv = Σ_ij g_ij u``.
    """
    a, c, v = res

    def step(carry, cb, gb):
        da, dv = carry
        # Two copies of the inputs behind a barrier keep dv's reduction apart from
        # da's and dc's: sharing tanh made XLA materialise it, 3x slower (measured).
        (a1, c1, g1), (a2, c2, g2) = jax.lax.optimization_barrier(((a, cb, gb), (a, cb, gb)))
        gu = g1.transpose(0, 2, 3, 1)[..., None] * jnp.tanh(a1[:, :, None] + c1[:, None])
        dv = dv + jnp.sum(jnp.sum(gu, axis=2), axis=(0, 1))
        u = jnp.tanh(a2[:, :, None] + c2[:, None])  # [b, q, block, h, a]
        t = g2.transpose(0, 2, 3, 1)[..., None] * (1.0 - u * u)
        return (da + jnp.sum(t, axis=2) * v, dv), jnp.sum(t, axis=1) * v

    init = (jnp.zeros_like(a), jnp.zeros_like(v))
    (da, dv), dc = scan_key_blocks(step, init, c, g.astype(a.dtype), block, a.size)
    return da, dc, dv


_additive_blocked.defvjp(_additive_fwd, _additive_bwd)


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
        # Projected once, outside the blocks: the blocked part sees only W₁q, W₂k and v.
        a = jnp.einsum("bqhd,hda->bqha", q, w_q)
        c = jnp.einsum("bkhd,hda->bkha", k, w_k)
        return additive_scores(a, c, v, block=self.key_block)


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
