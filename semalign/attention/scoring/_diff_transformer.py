"""DIFF Transformer attention (Ye et al. 2024, arXiv:2410.05258).

Each head splits q and k in halves ``(Q₁, Q₂)``, ``(K₁, K₂)`` of width ``d/2`` and uses

    A = softmax(Q₁K₁ᵀ/√(d/2)) − λ · softmax(Q₂K₂ᵀ/√(d/2))
    λ = exp(λ_q1·λ_k1) − exp(λ_q2·λ_k2) + λ_init,  λ_init = 0.8 − 0.6·exp(−0.3·(l−1))

with ``l`` the 1-based layer depth; the head output ``A V`` goes through an RMSNorm per
head and is scaled by ``(1 − λ_init)``. As in the reference code, the four λ vectors and
the RMSNorm gain are shared by the heads of one layer.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from semalign.attention import DotForm, fused_dot_attention, masked_softmax, query_key_dots
from semalign.attention.scoring._base import Scoring
from semalign.attention.scoring._registry import BuildContext, ScoringSpec, register

RMS_EPS = 1e-5


def lambda_init(depth: int) -> float:
    """``λ_init = 0.8 − 0.6·exp(−0.3·(l − 1))`` for 1-based depth ``l``."""
    return 0.8 - 0.6 * math.exp(-0.3 * (depth - 1))


def rms_norm(x: jax.Array, gain: jax.Array, eps: float = RMS_EPS) -> jax.Array:
    """RMSNorm over the last axis: ``x / sqrt(mean(x²) + eps) * gain``."""
    ms = jnp.mean(jnp.square(x.astype(jnp.float32)), axis=-1, keepdims=True)
    return (x * jax.lax.rsqrt(ms + eps)).astype(x.dtype) * gain


def split_halves(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``[..., d] -> ([..., d/2], [..., d/2])``."""
    half = x.shape[-1] // 2
    return x[..., :half], x[..., half:]


class DiffTransformer(Scoring):
    """Differential attention with re-parameterised λ and per-head RMSNorm.

    Args:
      heads: number of heads.
      head_dim: per-head width ``d`` (even).
      depth: 1-based layer depth for λ_init.
      rngs: streams for the λ vectors (normal, std 0.1).

    Raises:
      ValueError: if ``head_dim`` is odd.

    """

    fusable = True
    linear_forms = True  # dot_forms takes the halves of q and k

    def __init__(self, *, heads: int, head_dim: int, depth: int, rngs: nnx.Rngs):
        if head_dim % 2:
            raise ValueError(f"diff-transformer needs an even head dimension, got {head_dim}")
        super().__init__(heads=heads, head_dim=head_dim)
        half = head_dim // 2
        self.lambda_init = lambda_init(depth)
        init = nnx.initializers.normal(0.1)
        self.lambda_q1 = nnx.Param(init(rngs.params(), (half,)))
        self.lambda_k1 = nnx.Param(init(rngs.params(), (half,)))
        self.lambda_q2 = nnx.Param(init(rngs.params(), (half,)))
        self.lambda_k2 = nnx.Param(init(rngs.params(), (half,)))
        self.norm_gain = nnx.Param(jnp.ones((head_dim,)))

    @property
    def lam(self) -> jax.Array:
        """The scalar λ of this layer."""
        a = jnp.exp(jnp.sum(self.lambda_q1[...] * self.lambda_k1[...]))
        b = jnp.exp(jnp.sum(self.lambda_q2[...] * self.lambda_k2[...]))
        return a - b + self.lambda_init

    def _scale(self) -> float:
        return 1.0 / math.sqrt(self.head_dim // 2)

    def _two_logits(self, q: jax.Array, k: jax.Array) -> tuple[jax.Array, jax.Array]:
        (q1, q2), (k1, k2) = split_halves(q), split_halves(k)
        s = self._scale()
        return (
            query_key_dots(q1, k1) * s,
            query_key_dots(q2, k2) * s,
        )

    def logits(self, q: jax.Array, k: jax.Array) -> jax.Array:
        """For display: ``Q₁K₁ᵀ/√(d/2) − λ·Q₂K₂ᵀ/√(d/2)`` (the weights are not its softmax)."""
        a, b = self._two_logits(q, k)
        return a - self.lam.astype(a.dtype) * b

    def dot_forms(  # noqa: D102
        self, q: jax.Array, k: jax.Array
    ) -> tuple[tuple[DotForm, jax.Array | float], ...]:
        (q1, q2), (k1, k2) = split_halves(q), split_halves(k)
        s = self._scale()
        return ((DotForm(q=q1, k=k1, scale=s), 1.0), (DotForm(q=q2, k=k2, scale=s), -self.lam))

    def weights(  # noqa: D102
        self, q: jax.Array, k: jax.Array, mask: jax.Array | None
    ) -> tuple[jax.Array, jax.Array]:
        a, b = self._two_logits(q, k)
        lam = self.lam.astype(a.dtype)
        w = masked_softmax(a, mask) - lam * masked_softmax(b, mask)
        return a - lam * b, w

    def fused(  # noqa: D102
        self, q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array | None
    ) -> jax.Array:
        # (softmax₁ − λ softmax₂) V = softmax₁V − λ softmax₂V: two fused calls. The halves
        # are zero-padded to width d because the fused kernel wants key and value alike.
        (q1, q2), (k1, k2) = split_halves(q), split_halves(k)
        half = q1.shape[-1]

        def widen(x: jax.Array) -> jax.Array:
            return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, self.head_dim - half)))

        s = self._scale()
        o1 = fused_dot_attention(DotForm(q=widen(q1), k=widen(k1), scale=s), v, mask)
        o2 = fused_dot_attention(DotForm(q=widen(q2), k=widen(k2), scale=s), v, mask)
        return o1 - self.lam.astype(o1.dtype) * o2

    def finalize(self, out: jax.Array) -> jax.Array:
        """Per-head RMSNorm, then ``× (1 − λ_init)``: ``[b, q, h, d] -> [b, q, h, d]``."""
        return rms_norm(out, self.norm_gain[...].astype(out.dtype)) * (1.0 - self.lambda_init)


def _build(c: BuildContext) -> Scoring:
    return DiffTransformer(heads=c.heads, head_dim=c.head_dim, depth=c.layer_index + 1, rngs=c.rngs)


register(
    ScoringSpec(
        name="diff-transformer",
        formula="softmax(Q₁K₁ᵀ/√d) − λ·softmax(Q₂K₂ᵀ/√d)",
        fused=True,
        parametric=True,
        factory=_build,
        note="Ye et al. 2024: λ re-parameterised, λ_init by depth, per-head RMSNorm",
        signed=True,
    )
)
