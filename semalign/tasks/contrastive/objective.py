"""SimCSE's objective as pure functions: InfoNCE over in-batch negatives (Gao et al. 2021).

Each text is encoded twice with independent dropout masks, ``z`` and ``z'``. Row ``i``'s
loss is the cross-entropy of finding its own second view among the batch's:

    ℓ_i = −log( exp(cos(z_i, z'_i)/τ) / Σ_j exp(cos(z_i, z'_j)/τ) )

(SimCSE eq. 4; one direction, as the paper's code). Filler rows (weight 0) are neither
anchors nor negatives. A row's term depends on every other row of the batch, so the loss
is not a sum over rows and its gradient is never accumulated over micro-batches.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from semalign.nn.heads import l2_normalize

__all__ = ["NEVER", "info_nce_rows", "similarity_matrix"]

#: The logit of a filler column: finite (no ``inf - inf``), far below any real one.
NEVER = -1e9


def similarity_matrix(z: jax.Array, z2: jax.Array, weights: jax.Array, temperature: float):
    """``cos(z_i, z2_j) / τ`` with filler columns at :data:`NEVER`.

    Args:
      z: ``[B, D]`` first views (pooled states).
      z2: ``[B, D]`` second views.
      weights: ``[B]`` float, 0 for filler rows.
      temperature: τ > 0.

    Returns:
      ``(logits [B, B] float32, cosines [B, B] float32)``.
    """
    u, u2 = l2_normalize(z.astype(jnp.float32)), l2_normalize(z2.astype(jnp.float32))
    cos = jnp.einsum("id,jd->ij", u, u2)
    return jnp.where(weights[None, :] > 0, cos / temperature, NEVER), cos


def info_nce_rows(
    z: jax.Array, z2: jax.Array, weights: jax.Array, temperature: float
) -> dict[str, jax.Array]:
    """Per-row InfoNCE terms and what the report counts, each ``[B]`` (0 on filler rows).

    Args:
      z: ``[B, D]`` first views.
      z2: ``[B, D]`` second views of the same texts, row for row.
      weights: ``[B]`` float, 0 for filler rows.
      temperature: τ > 0.

    Returns:
      ``loss`` (ℓ_i), ``hit`` (1 where the own second view scores highest), ``positive``
      (``cos(z_i, z2_i)``), ``negative`` (sum of ``cos(z_i, z2_j)`` over the other real
      rows) and ``others`` (how many those are).

    >>> import jax.numpy as jnp
    >>> z = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    >>> out = info_nce_rows(z, z, jnp.ones(2), 1.0)
    >>> round(float(out["loss"][0]), 4), float(out["hit"].sum())  # log(1 + e^-1)
    (0.3133, 2.0)
    """
    logits, cos = similarity_matrix(z, z2, weights, temperature)
    real = (weights > 0).astype(jnp.float32)
    own = jnp.diagonal(logits)
    loss = jax.nn.logsumexp(logits, axis=-1) - own
    hit = (jnp.argmax(logits, axis=-1) == jnp.arange(logits.shape[0])).astype(jnp.float32)
    others = real[None, :] * (1.0 - jnp.eye(logits.shape[0], dtype=jnp.float32))
    return {
        "loss": jnp.where(real > 0, loss, 0.0),
        "hit": hit * real,
        "positive": jnp.diagonal(cos) * real,
        "negative": jnp.sum(cos * others, axis=-1) * real,
        "others": jnp.sum(others, axis=-1) * real,
    }
