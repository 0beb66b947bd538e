"""Scores computed one block of keys at a time, for scorings with no matmul form."""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp


def map_key_blocks(
    fn: Callable[[jax.Array, jax.Array], jax.Array],
    q: jax.Array,
    k: jax.Array,
    block: int,
) -> jax.Array:
    """Apply ``fn(q, k_block) -> [b, h, q, block]`` over key blocks and stitch the result.

    Each block is rematerialised in the backward pass (``jax.checkpoint``), so neither
    direction holds more than ``[b, q, block, h, d]`` of intermediates at once: memory is
    O(L·block·d) instead of O(L²·d).

    Args:
      fn: scores of all queries against one key block.
      q: ``[batch, q_len, heads, d]``.
      k: ``[batch, k_len, heads, d]``.
      block: keys per block; when ``k_len <= block`` ``fn`` runs once on all keys.

    Returns:
      ``[batch, heads, q_len, k_len]``.

    """
    k_len = k.shape[1]
    if not isinstance(k_len, int) or k_len <= block:
        return fn(q, k)
    n = math.ceil(k_len / block)
    k = jnp.pad(k, ((0, 0), (0, n * block - k_len), (0, 0), (0, 0)))
    blocks = jnp.moveaxis(k.reshape(k.shape[0], n, block, *k.shape[2:]), 1, 0)
    out = jax.lax.map(jax.checkpoint(lambda kb: fn(q, kb)), blocks)  # [n, b, h, q, block]
    out = jnp.moveaxis(out, 0, 3)  # [b, h, q, n, block]
    return out.reshape(*out.shape[:3], n * block)[..., :k_len]
