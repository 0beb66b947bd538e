"""Dot-product family: scaled dot (``dot``) and Luong's bilinear (``general``)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from semalign.attention import DotForm, query_key_dots
from semalign.attention.scoring._base import FunctionScoring, Scoring
from semalign.attention.scoring._registry import ScoringSpec, register


def dot_logits(q: jax.Array, k: jax.Array) -> jax.Array:
    """``s(i, j) = q_i·k_j / √d``: ``[b, q, h, d], [b, k, h, d] -> [b, h, q, k]``."""
    return query_key_dots(q, k) / math.sqrt(q.shape[-1])


def dot_dot_form(q: jax.Array, k: jax.Array) -> DotForm:
    """Scaled dot product is already a dot form."""
    return DotForm(q=q, k=k, scale=1.0 / math.sqrt(q.shape[-1]))


def general_logits(q: jax.Array, k: jax.Array, w: jax.Array) -> jax.Array:
    """``s(i, j) = q_iᵀ W_h k_j`` with ``w: [h, d, d]`` -> ``[b, h, q, k]``."""
    return query_key_dots(jnp.einsum("bqhd,hde->bqhe", q, w), k)


class General(Scoring):
    """Luong's ``general`` score with one ``W_h`` per head.

    ``W_h`` starts at ``I/√d``, so an untrained layer scores like ``dot``.
    """

    fusable = True

    def __init__(self, *, heads: int, head_dim: int, rngs: nnx.Rngs):
        super().__init__(heads=heads, head_dim=head_dim)
        eye = jnp.eye(head_dim) / math.sqrt(head_dim)
        noise = 0.02 * jax.random.normal(rngs.params(), (heads, head_dim, head_dim))
        self.w = nnx.Param(eye[None] + noise / math.sqrt(head_dim))

    def logits(self, q: jax.Array, k: jax.Array) -> jax.Array:  # noqa: D102
        return general_logits(q, k, self.w[...].astype(q.dtype))

    def dot_form(self, q: jax.Array, k: jax.Array) -> DotForm:  # noqa: D102
        return DotForm(
            q=jnp.einsum("bqhd,hde->bqhe", q, self.w[...].astype(q.dtype)), k=k, scale=1.0
        )


register(
    ScoringSpec(
        name="dot",
        formula="q_i·k_j / √d",
        fused=True,
        parametric=False,
        factory=lambda c: FunctionScoring(
            dot_logits, dot_dot_form, heads=c.heads, head_dim=c.head_dim
        ),
        note="scaled dot product (Vaswani et al. 2017)",
    )
)
register(
    ScoringSpec(
        name="general",
        formula="q_iᵀ W k_j",
        fused=True,
        parametric=True,
        factory=lambda c: General(heads=c.heads, head_dim=c.head_dim, rngs=c.rngs),
        note="bilinear, one W per head (Luong et al. 2015)",
    )
)
