"""Similarity losses on the cosines of a batch of pairs, their gold targets and row weights.

* :func:`cosent_loss`, CoSENT (Su 2022, "CoSENT: a more efficient sentence vector scheme
  than Sentence-BERT"): ``log(1 + Σ_{s_i > s_j} exp(λ (cos_j − cos_i)))``; only the
  order of the scores matters.
* :func:`cosine_mse_loss`, sentence-transformers' ``CosineSimilarityLoss``:
  ``mean((cos − t)²)`` with the targets ``t`` mapped to ``[0, 1]``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

__all__ = ["COSENT_SCALE", "LOSSES", "cosent_loss", "cosine_mse_loss"]

#: λ of CoSENT (Su 2022 and sentence-transformers' ``CoSENTLoss`` use 20).
COSENT_SCALE = 20.0


def cosent_loss(
    cos: jax.Array, targets: jax.Array, weights: jax.Array, *, scale: float = COSENT_SCALE
) -> jax.Array:
    """CoSENT: ``log(1 + Σ exp(λ (cos_j − cos_i)))`` over real pairs with ``s_i > s_j``.

    Args:
      cos: ``[n]`` cosine similarities of the pairs.
      targets: ``[n]`` gold scores (any scale: only their order is used).
      weights: ``[n]`` 1 for real rows, 0 for filler rows.
      scale: λ.

    Returns:
      The scalar loss; 0 when no two real pairs differ in score.

    >>> import jax.numpy as jnp
    >>> wrong_order = cosent_loss(jnp.array([0.1, 0.9]), jnp.array([5.0, 1.0]), jnp.ones(2))
    >>> round(float(wrong_order), 3)  # log(1 + exp(20 · 0.8))
    16.0
    """
    real = weights > 0
    ordered = (targets[:, None] > targets[None, :]) & real[:, None] & real[None, :]
    diff = scale * (cos[None, :] - cos[:, None])  # [i, j] = λ (cos_j − cos_i)
    terms = jnp.where(ordered, diff, -jnp.inf).reshape(-1)
    return jax.nn.logsumexp(jnp.concatenate([jnp.zeros((1,), terms.dtype), terms]))


def cosine_mse_loss(cos: jax.Array, targets: jax.Array, weights: jax.Array) -> jax.Array:
    """Mean squared error of the cosine against targets already mapped to ``[0, 1]``.

    Args:
      cos: ``[n]`` cosine similarities.
      targets: ``[n]`` scores in ``[0, 1]``.
      weights: ``[n]`` row weights.

    Returns:
      The weighted mean of ``(cos − targets)²``.
    """
    err = jnp.square(cos - targets) * weights
    return jnp.sum(err) / jnp.maximum(jnp.sum(weights), 1.0)


LOSSES: dict[str, Callable[[jax.Array, jax.Array, jax.Array], jax.Array]] = {
    "cosent": cosent_loss,
    "cosine-mse": cosine_mse_loss,
}
"""Similarity losses by name: ``(cos [n], targets [n], weights [n]) -> scalar``."""
