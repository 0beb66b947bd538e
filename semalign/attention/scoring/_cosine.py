"""Cosine scoring with a learnable, clamped temperature per head (Swin-v2 style)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from semalign.attention import DotForm, query_key_dots
from semalign.attention.scoring._base import Scoring
from semalign.attention.scoring._registry import BuildContext, ScoringSpec, register

#: τ starts at 10 and is clamped to at most 100 (Liu et al. 2022, Swin Transformer V2).
TAU_INIT = 10.0
TAU_MAX = 100.0
_EPS = 1e-6


def unit(x: jax.Array) -> jax.Array:
    """Normalise the last axis to unit length; a zero vector stays zero (finite grad)."""
    sq = jnp.sum(jnp.square(x), axis=-1, keepdims=True)
    return x * jax.lax.rsqrt(jnp.maximum(sq, _EPS**2))


def cosine_logits(q: jax.Array, k: jax.Array, tau: jax.Array) -> jax.Array:
    """``s(i, j) = τ_h cos(q_i, k_j)`` with ``tau: [h]`` -> ``[b, h, q, k]``."""
    return query_key_dots(unit(q), unit(k)) * tau[None, :, None, None]


def clamp_tau(log_tau: jax.Array) -> jax.Array:
    """``τ = exp(min(log τ, log τ_max))``."""
    return jnp.exp(jnp.minimum(log_tau, math.log(TAU_MAX)))


class Cosine(Scoring):
    """``τ_h · cos(q_i, k_j)``; τ is learned in log space per head and clamped."""

    fusable = True

    def __init__(self, *, heads: int, head_dim: int):
        super().__init__(heads=heads, head_dim=head_dim)
        # float32, not a weakly typed Python float: the first update makes it strong,
        # and the changed type would compile the train step again (twice, with momentum).
        self.log_tau = nnx.Param(jnp.full((heads,), math.log(TAU_INIT), jnp.float32))

    @property
    def tau(self) -> jax.Array:
        """Per-head temperature ``[heads]``."""
        return clamp_tau(self.log_tau[...])

    def logits(self, q: jax.Array, k: jax.Array) -> jax.Array:  # noqa: D102
        return cosine_logits(q, k, self.tau.astype(q.dtype))

    def dot_form(self, q: jax.Array, k: jax.Array) -> DotForm:  # noqa: D102
        # τ is per head, the fused scale is a scalar: fold τ into the queries.
        q_scaled = unit(q) * self.tau.astype(q.dtype)[None, None, :, None]
        return DotForm(q=q_scaled, k=unit(k), scale=1.0)


def _build(c: BuildContext) -> Scoring:
    return Cosine(heads=c.heads, head_dim=c.head_dim)


register(
    ScoringSpec(
        name="cosine",
        formula="τ · cos(q_i, k_j)",
        fused=True,
        parametric=True,
        factory=_build,
        note="learnable τ per head, clamped to ≤ 100 (Swin-v2)",
    )
)
