"""Heads that sit on the encoder trunk.

A linear classifier head and L2 normalisation of a pooled state; the pair
cross-attention is an :class:`~semalign.nn.layers.MultiHeadAttention` given a context.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from semalign.nn.layers import dense

__all__ = ["l2_normalize", "linear_head"]


def linear_head(dim_in: int, classes: int, *, rngs: nnx.Rngs) -> nnx.Linear:
    """``[..., dim_in] -> [..., classes]`` logits, with named (shardable) parameters."""
    return dense(dim_in, classes, "embed", "classes", rngs=rngs)


def l2_normalize(x: jax.Array, eps: float = 1e-8) -> jax.Array:
    """``x / max(‖x‖₂, eps)`` over the last axis (finite gradient at ``x = 0``)."""
    return x / jnp.sqrt(jnp.maximum(jnp.sum(jnp.square(x), axis=-1, keepdims=True), eps * eps))
