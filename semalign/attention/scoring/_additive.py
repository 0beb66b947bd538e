"""Additive (Bahdanau) scoring: ``vᵀ tanh(W₁q_i + W₂k_j)``."""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
from flax import nnx

from semalign.attention.scoring._base import Scoring
from semalign.attention.scoring._blocks import map_key_blocks, scan_key_blocks, sum_by_coordinate
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
        return _graph_scores(a, c, v)
    return _additive_blocked(a, c, v, block)


def _scores(a: jax.Array, c: jax.Array, v: jax.Array) -> jax.Array:
    hidden = jnp.tanh(a[:, :, None] + c[:, None])  # [b, q, k, h, a]
    return jnp.einsum("bqkha,ha->bhqk", hidden, v)


def _graph_scores(a: jax.Array, c: jax.Array, v: jax.Array) -> jax.Array:
    """:func:`_scores` in the operators onnxruntime runs fast (the exported graph).

    ``[b, q, h, a], [b, k, h, a], [h, a] -> [b, h, q, k]``: :func:`outer_scores` on
    :func:`graph_layout`'s tensors.
    """
    return outer_scores(*graph_layout(a, c), v)


def graph_layout(a: jax.Array, c: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``[b, q, h, a], [b, k, h, a] -> [b, h, a, q, 1], [b, h, a, 1, k]`` (:func:`outer_scores`)."""
    return a.transpose(0, 2, 3, 1)[..., None], c.transpose(0, 2, 3, 1)[:, :, :, None]


def outer_scores(a: jax.Array, c: jax.Array, v: jax.Array) -> jax.Array:
    """``v_hᵀ tanh(a_i + c_j)`` with the hidden laid out ``[b, h, a, q, k]``.

    The broadcast ``Add`` then runs over ``k``-long contiguous spans and ``v``'s reduction
    is one batched ``MatMul`` (``[h, 1, a] @ [b, h, a, q·k]``), where the
    ``[b, q, k, h, a]`` form's ``Einsum`` and 16-wide spans ran 2-4x slower than
    ``jax.jit`` in onnxruntime (benchmarks/README.md).

    Args:
      a: ``[b, h, a, q, 1]`` (``W₁q``).
      c: ``[b, h, a, 1, k]`` (``W₂k``).
      v: ``[h, a]``.

    Returns:
      ``[b, h, q, k]``.

    """
    hidden = jnp.tanh(a + c)  # [b, h, a, q, k]
    b, heads, width, q_len, k_len = hidden.shape
    s = jnp.matmul(v[:, None, :], hidden.reshape(b, heads, width, -1))  # [b, h, 1, q·k]
    return s.reshape(b, heads, q_len, k_len)


def scores_by_coordinate(a: jax.Array, c: jax.Array, v: jax.Array) -> jax.Array:
    """:func:`_scores` one hidden unit at a time (:func:`sum_by_coordinate`).

    ``[b, q, h, a], [b, k, h, a], [h, a] -> [b, h, q, k]``.
    """
    return sum_by_coordinate(lambda t, x, y: v[None, :, t, None, None] * jnp.tanh(x + y), a, c)


@partial(jax.custom_vjp, nondiff_argnums=(3,))
def _additive_blocked(a: jax.Array, c: jax.Array, v: jax.Array, block: int) -> jax.Array:
    return map_key_blocks(lambda x, y: scores_by_coordinate(x, y, v), a, c, block)


def _additive_fwd(a: jax.Array, c: jax.Array, v: jax.Array, block: int):
    return _additive_blocked(a, c, v, block), (a, c, v)


def _additive_bwd(block: int, res: tuple[jax.Array, ...], g: jax.Array):
    """The VJP per key block: ``tanh`` once per pair, on ``[b, q, block, h·a]``.

    With ``u = tanh(a_i + c_j)``, ``p = g_ij u`` and ``t = g_ij (1 − u²) = g_ij − p u``:
    ``dv = Σ_ij p``, ``da_i = v ⊙ Σ_j t``, ``dc_j = v ⊙ Σ_i t``.
    """
    a, c, v = res
    b, q_len, heads, width = a.shape
    # Heads folded into the contiguous last axis (h·a): with a = 16 the inner loops were
    # too short; ``u`` shared by the three reductions (measured in benchmarks/README.md).
    af = a.reshape(b, q_len, 1, heads * width)

    def step(carry, cb, gb):
        da, dv = carry
        n = cb.shape[1]
        u = jnp.tanh(af + cb.reshape(b, 1, n, heads * width))  # [b, q, block, h·a]
        ge = jnp.broadcast_to(gb.transpose(0, 2, 3, 1)[..., None], (b, q_len, n, heads, width))
        ge = ge.reshape(u.shape)
        p = ge * u
        t = ge - p * u
        dc = jnp.sum(t, axis=1).reshape(b, n, heads, width) * v
        return (da + jnp.sum(t, axis=2), dv + jnp.sum(p, axis=(0, 1, 2))), dc

    init = (jnp.zeros((b, q_len, heads * width), a.dtype), jnp.zeros(heads * width, a.dtype))
    (da, dv), dc = scan_key_blocks(step, init, c, g.astype(a.dtype), block, a.size)
    return da.reshape(a.shape) * v, dc, dv.reshape(v.shape)


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

    #: Exported one example at a time, the projections outside the loop (split_logits):
    #: at batch 32 x 128 the [h, a, q, k] hidden of one example stays in cache
    #: (benchmarks/README.md, ONNX vs JAX).
    export_per_example = True

    def _projected(self, q: jax.Array, k: jax.Array):
        w_q, w_k, v = (p[...].astype(q.dtype) for p in (self.w_q, self.w_k, self.v))
        a = jnp.einsum("bqhd,hda->bqha", q, w_q)
        c = jnp.einsum("bkhd,hda->bkha", k, w_k)
        return a, c, v

    def logits(self, q: jax.Array, k: jax.Array) -> jax.Array:  # noqa: D102
        # Projected once, outside the blocks: the blocked part sees only W₁q, W₂k and v.
        a, c, v = self._projected(q, k)
        return additive_scores(a, c, v, block=self.key_block)

    def split_logits(self, q: jax.Array, k: jax.Array):
        """``(outer_scores(·, ·, v), W₁q [b, h, a, q, 1], W₂k [b, h, a, 1, k])``."""
        a, c, v = self._projected(q, k)
        return partial(outer_scores, v=v), *graph_layout(a, c)


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
