"""Dropout masks from 16 random bits per element: two draws from each 32-bit word.

``jax.random.bernoulli`` spends one 32-bit threefry word on each element, and XLA CPU
runs threefry as a rolled loop: in the micro-batched train step its three dropouts were
about 7 % of the step (benchmarks/README.md). Each word here gives two 16-bit draws, so half
the words are made. A draw keeps its element when it is below ``round(keep · 2¹⁶)``:
the keep probability is the one asked for, rounded to a multiple of 2⁻¹⁶ (at most
7.7e-6 off), and the kept values are scaled by the inverse of that rounded probability,
so the expectation is exactly the input.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["DRAW_BITS", "inverted_dropout", "keep_mask", "keep_threshold"]

#: Random bits per element.
DRAW_BITS = 16


def keep_threshold(keep: float) -> int:
    """Draws below this keep their element: ``round(keep · 2¹⁶)``, at least 1.

    Raises:
      ValueError: ``keep`` outside ``(0, 1]``.
    """
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep probability must be in (0, 1], got {keep}")
    return max(1, round(keep * (1 << DRAW_BITS)))


def keep_mask(key: jax.Array, keep: float, shape: tuple[int, ...]) -> jax.Array:
    """``bool[shape]``: True with probability ``keep_threshold(keep) / 2¹⁶`` each, independently.

    Args:
      key: a JAX random key.
      keep: probability of keeping an element.
      shape: the mask's shape.
    """
    size = int(np.prod(shape))
    per_word = 32 // DRAW_BITS
    words = jax.random.bits(key, (-(-size // per_word),), jnp.uint32)
    low = jnp.uint32((1 << DRAW_BITS) - 1)
    draws = jnp.stack([(words >> (DRAW_BITS * i)) & low for i in range(per_word)], axis=-1)
    draws = draws.reshape(-1)[:size].reshape(shape)
    return draws < jnp.uint32(keep_threshold(keep))


def inverted_dropout(
    x: jax.Array, rate: float, key: jax.Array, shape: tuple[int, ...] | None = None
) -> jax.Array:
    """``x`` with each element zeroed with probability ~``rate``, the rest scaled up.

    The kept elements are multiplied by the inverse of the rounded keep probability (see
    the module), so ``E[out] = x`` exactly. ``rate`` 0 returns ``x``.

    Args:
      x: any array.
      rate: drop probability in ``[0, 1)``.
      key: a JAX random key.
      shape: the mask's shape, broadcastable to ``x``'s (None: ``x``'s); axes of size 1
        share one draw.
    """
    if rate == 0.0:
        return x
    threshold = keep_threshold(1.0 - rate)
    mask = keep_mask(key, 1.0 - rate, x.shape if shape is None else shape)
    scale = jnp.asarray((1 << DRAW_BITS) / threshold, x.dtype)
    return jnp.where(mask, x * scale, jnp.zeros((), x.dtype))
