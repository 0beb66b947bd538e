"""Sequence pooling by name: ``mean``, ``cls``, ``max``, ``attention``.

Every pooling is an NNX module ``pool(x [b, l, d], valid [b, l]) -> [b, d]`` that ignores
padded positions.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from semalign.attention import MASK_VALUE, masked_softmax
from semalign.registry import Registry


def mean_pool(x: jax.Array, valid: jax.Array) -> jax.Array:
    """Mean over valid positions; a row with none gives zeros."""
    w = valid.astype(x.dtype)[..., None]
    return jnp.sum(x * w, axis=1) / jnp.maximum(jnp.sum(w, axis=1), 1.0)


def max_pool(x: jax.Array, valid: jax.Array) -> jax.Array:
    """Max over valid positions; a row with none gives zeros."""
    m = jnp.max(jnp.where(valid[..., None], x, MASK_VALUE), axis=1)
    return jnp.where(jnp.any(valid, axis=1)[:, None], m, 0.0).astype(x.dtype)


def cls_pool(x: jax.Array, valid: jax.Array) -> jax.Array:
    """The first position (the ``[CLS]`` token)."""
    del valid
    return x[:, 0]


class FunctionPool(nnx.Module):
    """A parameter-free pooling."""

    def __init__(self, fn: Callable[[jax.Array, jax.Array], jax.Array]):
        self.fn = fn

    def __call__(self, x: jax.Array, valid: jax.Array) -> jax.Array:
        """``[b, l, d], [b, l] -> [b, d]``."""
        return self.fn(x, valid)


class AttentionPool(nnx.Module):
    """Softmax-weighted mean with a learned query ``u``: ``α = softmax(x·u/√d)``."""

    def __init__(self, dim: int, *, rngs: nnx.Rngs):
        self.query = nnx.Param(nnx.initializers.normal(0.02)(rngs.params(), (dim,)))

    def __call__(self, x: jax.Array, valid: jax.Array) -> jax.Array:
        """``[b, l, d], [b, l] -> [b, d]``."""
        scores = x @ self.query[...].astype(x.dtype) / math.sqrt(x.shape[-1])  # [b, l]
        alpha = masked_softmax(scores, valid)
        return jnp.einsum("bl,bld->bd", alpha, x)


POOLINGS: Registry = Registry("pooling")
POOLINGS.register("mean", lambda dim, rngs: FunctionPool(mean_pool))
POOLINGS.register("cls", lambda dim, rngs: FunctionPool(cls_pool))
POOLINGS.register("max", lambda dim, rngs: FunctionPool(max_pool))
POOLINGS.register("attention", lambda dim, rngs: AttentionPool(dim, rngs=rngs))


def build_pooling(name: str, dim: int, *, rngs: nnx.Rngs) -> nnx.Module:
    """Build a pooling by name.

    Raises:
      ValueError: naming the received value and the choices.

    """
    return POOLINGS.get(name)(dim, rngs)
