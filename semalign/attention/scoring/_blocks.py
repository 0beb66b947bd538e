"""Scores computed one block of keys at a time, for scorings with no matmul form.

The forward pass maps a per-block score function over blocks of a few keys; the
scorings that use it (``l1``, ``additive``) give their own backward pass
(``jax.custom_vjp``) that walks cache-sized key blocks with :func:`scan_key_blocks`, so
neither direction holds more than one ``[b, q, block, h, d]`` intermediate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp


def split_keys(x: jax.Array, block: int) -> jax.Array:
    """``[b, k, ...] -> [n, b, block, ...]``, the key axis zero-padded to ``n * block``."""
    n = math.ceil(x.shape[1] / block)
    pad = [(0, 0), (0, n * block - x.shape[1])] + [(0, 0)] * (x.ndim - 2)
    x = jnp.pad(x, pad)
    return jnp.moveaxis(x.reshape(x.shape[0], n, block, *x.shape[2:]), 1, 0)


def merge_keys(blocks: jax.Array, k_len: int) -> jax.Array:
    """Inverse of :func:`split_keys`: ``[n, b, block, ...] -> [b, k_len, ...]``."""
    x = jnp.moveaxis(blocks, 0, 1)
    return x.reshape(x.shape[0], -1, *x.shape[3:])[:, :k_len]


def split_scores(s: jax.Array, block: int) -> jax.Array:
    """``[b, h, q, k] -> [n, b, h, q, block]``, the key axis zero-padded."""
    n = math.ceil(s.shape[-1] / block)
    s = jnp.pad(s, [(0, 0)] * 3 + [(0, n * block - s.shape[-1])])
    return jnp.moveaxis(s.reshape(*s.shape[:3], n, block), 3, 0)


def merge_scores(blocks: jax.Array, k_len: int) -> jax.Array:
    """Inverse of :func:`split_scores`: ``[n, b, h, q, block] -> [b, h, q, k_len]``."""
    out = jnp.moveaxis(blocks, 0, 3)  # [b, h, q, n, block]
    return out.reshape(*out.shape[:3], -1)[..., :k_len]


def map_key_blocks(
    fn: Callable[[jax.Array, jax.Array], jax.Array],
    q: jax.Array,
    k: jax.Array,
    block: int,
) -> jax.Array:
    """Apply ``fn(q, k_block) -> [b, h, q, block]`` over key blocks and stitch the result.

    Blocks hold at most :data:`SCORE_BLOCK` keys. Each block is rematerialised if
    autodiff goes through it (``jax.checkpoint``), so neither direction holds more than
    one block's intermediates at once: memory is O(L·block·d) instead of O(L²·d).

    Args:
      fn: scores of all queries against one key block.
      q: ``[batch, q_len, heads, d]``.
      k: ``[batch, k_len, heads, d]``.
      block: the configured keys per block (the most a block takes); when ``k_len`` is
        no longer than a block (or is symbolic, as in an export) ``fn`` runs once on all
        keys.

    Returns:
      ``[batch, heads, q_len, k_len]``.

    """
    k_len = k.shape[1]
    if not isinstance(k_len, int):
        return fn(q, k)
    block = min(block, SCORE_BLOCK)
    if k_len <= block:
        return fn(q, k)
    out = jax.lax.map(jax.checkpoint(lambda kb: fn(q, kb)), split_keys(k, block))
    return merge_scores(out, k_len)


def sum_by_coordinate(
    term: Callable[[int, jax.Array, jax.Array], jax.Array], q: jax.Array, k: jax.Array
) -> jax.Array:
    """``Σ_t term(t, q_t, k_t)`` over the last axis, each term laid out ``[b, h, q, k]``.

    ``q_t`` is coordinate ``t`` of the queries as ``[b, h, q, 1]``, ``k_t`` of the keys
    as ``[b, h, 1, k]``. XLA fuses the terms into one loop over the scores with ``k``
    innermost: no ``[q, k, h, d]`` temporary and no reduction over the (16-wide) last
    axis, 1.1-1.5x faster per key block than the ``[b, q, k, h, d]`` form for ``l1`` and
    ``additive`` on a CPU (benchmarks/README.md). ``[b, q, h, d], [b, k, h, d] ->
    [b, h, q, k]``.
    """
    qt, kt = q.transpose(0, 2, 3, 1), k.transpose(0, 2, 3, 1)  # [b, h, d, L]
    total = term(0, qt[:, :, 0, :, None], kt[:, :, 0, None, :])
    for t in range(1, q.shape[-1]):
        total = total + term(t, qt[:, :, t, :, None], kt[:, :, t, None, :])
    return total


#: Keys per block of a forward pass by coordinate (:func:`map_key_blocks`): one
#: ``[b, h, q, 8]`` row of scores per query. Measured on a 2-core Xeon against the
#: cache-sized blocks the backward uses (benchmarks/README.md): l1's forward at
#: ``[2, 250, 4, 16]`` 1.4-1.6 ms against 3.4-3.8 ms with 16 keys and 2.6 ms unblocked; never
#: slower at the larger shapes measured, where the cache-sized block was already 8 keys.
SCORE_BLOCK = 8

#: Elements of one block's ``[b, q, block, h, d]`` term: blocks of keys are cut to about
#: this (512 KiB of float32: the backward holds a few such terms, in a 2 MiB L2), at least
#: 8 keys and at most the configured block. Measured on a 2-core Xeon: at
#: ``[2, 128, ·, 4, 64]`` blocks of 8 keys made l1's backward ~10x faster than one block
#: of 128; in the micro-batched train step (``[2, 250, ·, 4, 16]``) ``additive`` with 8 keys
#: instead of 2¹⁹ elements' 16 was 1.19x faster (benchmarks/README.md).
BLOCK_ELEMENTS = 1 << 17


def cache_block(block: int, per_key: int) -> int:
    """Keys per block: ``block`` cut so one block's term holds ~:data:`BLOCK_ELEMENTS`."""
    return max(1, min(block, max(8, BLOCK_ELEMENTS // max(per_key, 1))))


def scan_key_blocks(
    step: Callable[[Any, jax.Array, jax.Array], tuple[Any, jax.Array]],
    init: Any,
    k: jax.Array,
    g: jax.Array,
    block: int,
    per_key: int,
) -> tuple[Any, jax.Array]:
    """Walk key blocks with the matching blocks of a score cotangent (a backward pass).

    Args:
      step: ``(carry, k_block [b, block, h, d], g_block [b, h, q, block]) -> (carry,
        dk_block [b, block, h, d])``; padded keys come with zero cotangents.
      init: the initial carry (the query-side gradients, accumulated over blocks).
      k: ``[batch, k_len, heads, d]``.
      g: ``[batch, heads, q_len, k_len]``.
      block: the configured keys per block (the most a step takes).
      per_key: elements of one step's pairwise term per key (``b · q · h · d``).

    Returns:
      ``(carry, dk [batch, k_len, heads, d])``.

    """
    k_len = k.shape[1]
    block = min(cache_block(block, per_key), k_len)
    carry, dk = jax.lax.scan(
        lambda c, xs: step(c, *xs), init, (split_keys(k, block), split_scores(g, block))
    )
    return carry, merge_keys(dk, k_len)
