"""The contrastive task's model: the shared encoder trunk and its pooling, no head.

SimCSE compares pooled states directly (the unsupervised variant's MLP is only a training
aid the paper drops at test time); what ``--init-from`` copies is the ``encoder``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from semalign.config import ModelConfig
from semalign.nn.encoder import Encoder
from semalign.nn.pooling import build_pooling

__all__ = ["SentenceEncoder"]


class SentenceEncoder(nnx.Module):
    """Text -> pooled sentence state (not normalised).

    Args:
      config: the encoder's config (its ``pooling`` pools; ``num_classes`` is not used).
      rngs: NNX random streams (``params``, ``dropout``: the two views' masks).

    Example:
      >>> from flax import nnx
      >>> import jax.numpy as jnp
      >>> enc = SentenceEncoder(ModelConfig(vocab_size=50, dim=16), rngs=nnx.Rngs(0))
      >>> enc(jnp.array([[2, 7, 9, 0], [2, 5, 0, 0]])).shape
      (2, 16)
    """

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        self.config = config
        self.encoder = Encoder(config, rngs=rngs)
        self.pool = build_pooling(config.pooling, config.dim, rngs=rngs)

    def __call__(self, ids: jax.Array, valid: jax.Array | None = None) -> jax.Array:
        """``ids [batch, len]`` (0 = padding) -> pooled ``[batch, dim]`` float32."""
        x, valid, _ = self.encoder(ids, valid)
        return self.pool(x, valid).astype(jnp.float32)
