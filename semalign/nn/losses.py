"""Losses shared by heads: weighted cross-entropy over class logits."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

__all__ = ["weighted_cross_entropy"]


def weighted_cross_entropy(
    logits: jax.Array, labels: jax.Array, weights: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """``(sum of weighted CE, sum of weights)`` over ``[batch, classes]`` logits."""
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return jnp.sum(ce * weights), jnp.sum(weights)
