"""Position encodings by name: ``learned``, ``sinusoidal``, ``none``.

Each is an NNX module ``positions(length) -> [length, dim]`` (or a scalar 0). Indices come
from ``lax.broadcasted_iota`` and a clipped gather, never ``arange`` or a dynamic slice,
so the graph exports with a symbolic sequence length.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from semalign.registry import Registry


def sinusoidal_table(length: int, dim: int) -> jax.Array:
    """Vaswani et al. (2017) encodings ``[length, dim]``: sin on even, cos on odd columns.

    Frequencies are a constant vector and positions an iota, so the table exports with a
    symbolic ``length`` (jax2onnx cannot convert the iota-over-columns form).
    """
    half = (dim + 1) // 2
    inv = jnp.power(10000.0, -2.0 * jnp.arange(half, dtype=jnp.float32) / dim)
    pos = jax.lax.broadcasted_iota(jnp.float32, (length, half), 0)
    angle = pos * inv[None, :]
    table = jnp.stack([jnp.sin(angle), jnp.cos(angle)], axis=-1).reshape(length, -1)
    return table[:, :dim]


class LearnedPositions(nnx.Module):
    """A learned ``[max_len, dim]`` table, gathered by index."""

    def __init__(self, max_len: int, dim: int, *, rngs: nnx.Rngs):
        self.table = nnx.Param(
            nnx.initializers.normal(0.02)(rngs.params(), (max_len, dim)),
            sharding_names=("length", "embed"),
            eager_sharding=False,
        )

    def __call__(self, length: int) -> jax.Array:
        """``-> [length, dim]``."""
        idx = jax.lax.broadcasted_iota(jnp.int32, (length,), 0)
        return jnp.take(self.table[...], idx, axis=0, mode="clip")


class SinusoidalPositions(nnx.Module):
    """Fixed sinusoidal encodings (no parameters)."""

    def __init__(self, max_len: int, dim: int, *, rngs: nnx.Rngs):
        del max_len, rngs
        self.dim = dim

    def __call__(self, length: int) -> jax.Array:
        """``-> [length, dim]``."""
        return sinusoidal_table(length, self.dim)


class NoPositions(nnx.Module):
    """No position information (a bag of contextualised tokens)."""

    def __init__(self, max_len: int, dim: int, *, rngs: nnx.Rngs):
        del max_len, dim, rngs

    def __call__(self, length: int) -> jax.Array:
        """``-> 0.0`` (broadcasts)."""
        del length
        return jnp.zeros((), jnp.float32)


POSITIONS: Registry = Registry("positions")
POSITIONS.register("learned", LearnedPositions)
POSITIONS.register("sinusoidal", SinusoidalPositions)
POSITIONS.register("none", NoPositions)


def build_positions(name: str, max_len: int, dim: int, *, rngs: nnx.Rngs) -> nnx.Module:
    """Build a position encoding by name.

    Raises:
      ValueError: naming the received value and the choices.

    """
    return POSITIONS.get(name)(max_len, dim, rngs=rngs)


__all__ = ["POSITIONS", "build_positions", "sinusoidal_table"]
