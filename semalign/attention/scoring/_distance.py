"""Distance family: negative squared L2 (``l2``) and negative L1 (``l1``)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from semalign.attention import DotForm
from semalign.attention.scoring._base import FunctionScoring
from semalign.attention.scoring._blocks import map_key_blocks
from semalign.attention.scoring._registry import BuildContext, ScoringSpec, register


def l2_logits(q: jax.Array, k: jax.Array) -> jax.Array:
    """``s(i, j) = −‖q_i − k_j‖² / √d`` at matmul cost (‖q‖² + ‖k‖² − 2q·k).

    ``[b, q, h, d], [b, k, h, d] -> [b, h, q, k]``.
    """
    qq = jnp.sum(jnp.square(q), axis=-1)  # [b, q, h]
    kk = jnp.sum(jnp.square(k), axis=-1)  # [b, k, h]
    qk = jnp.einsum("bqhd,bkhd->bhqk", q, k)
    sq = qq.transpose(0, 2, 1)[..., None] + kk.transpose(0, 2, 1)[:, :, None, :] - 2.0 * qk
    return -sq / math.sqrt(q.shape[-1])


def l2_dot_form(q: jax.Array, k: jax.Array) -> DotForm:
    """``2q·k/√d − ‖k‖²/√d``; the ``−‖q‖²`` term is constant per row and cancels."""
    scale = 1.0 / math.sqrt(q.shape[-1])
    kk = jnp.sum(jnp.square(k), axis=-1).transpose(0, 2, 1)[:, :, None, :]  # [b, h, 1, k]
    return DotForm(q=2.0 * q, k=k, scale=scale, bias=-kk * scale)


def l1_naive(q: jax.Array, k: jax.Array) -> jax.Array:
    """``s(i, j) = −Σ|q_i − k_j| / √d`` materialising ``[b, q, k, h, d]``."""
    diff = jnp.abs(q[:, :, None] - k[:, None])  # [b, q, k, h, d]
    return -jnp.sum(diff, axis=-1).transpose(0, 3, 1, 2) / math.sqrt(q.shape[-1])


def l1_logits(q: jax.Array, k: jax.Array, *, block: int = 128) -> jax.Array:
    """``−Σ|q_i − k_j| / √d`` computed in key blocks (memory O(L·block·d)).

    ``[b, q, h, d], [b, k, h, d] -> [b, h, q, k]``.
    """
    return map_key_blocks(l1_naive, q, k, block)


def _build_l1(c: BuildContext) -> FunctionScoring:
    def logits(q: jax.Array, k: jax.Array) -> jax.Array:
        return l1_logits(q, k, block=c.key_block)

    return FunctionScoring(logits, None, heads=c.heads, head_dim=c.head_dim)


register(
    ScoringSpec(
        name="l2",
        formula="−‖q_i − k_j‖² / √d",
        fused=True,
        parametric=False,
        factory=lambda c: FunctionScoring(
            l2_logits, l2_dot_form, heads=c.heads, head_dim=c.head_dim
        ),
        note="matmul form; --tie-qk ties W_q = W_k (Lipschitz, Kim et al. 2021)",
    )
)
register(
    ScoringSpec(
        name="l1",
        formula="−Σ|q_i − k_j| / √d",
        fused=False,
        parametric=False,
        factory=_build_l1,
        note="no matmul form; computed in key blocks",
    )
)
