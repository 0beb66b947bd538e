"""The similarity model: a siamese bi-encoder (Sentence-BERT style).

Text -> encoder trunk -> pooling -> L2 normalisation; two texts are compared by the cosine
of their embeddings. Both sides of a pair go through the same weights.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx, struct

from semalign.attention import Capture
from semalign.config import ModelConfig
from semalign.nn.encoder import Encoder
from semalign.nn.heads import l2_normalize
from semalign.nn.pooling import build_pooling

__all__ = ["PairEncoder", "PairEncoderOutput"]


@struct.dataclass
class PairEncoderOutput:
    """A forward pass.

    Attributes:
      embedding: ``[batch, dim]`` float32 pooled state, L2-normalised.
      pooled: ``[batch, dim]`` float32 pooled state before normalisation.
      attention: one :class:`Capture` per layer when asked for, else None.
    """

    embedding: jax.Array
    pooled: jax.Array
    attention: tuple[Capture, ...] | None = None


class PairEncoder(nnx.Module):
    """Text -> normalised sentence embedding.

    Args:
      config: the encoder's config (``num_classes`` is not used).
      rngs: NNX random streams (``params``, ``dropout``).

    Example:
      >>> from flax import nnx
      >>> import jax.numpy as jnp
      >>> enc = PairEncoder(ModelConfig(vocab_size=50, dim=16), rngs=nnx.Rngs(0))
      >>> out = enc(jnp.array([[2, 7, 9, 0]]))
      >>> out.embedding.shape, round(float(jnp.linalg.norm(out.embedding)), 4)
      ((1, 16), 1.0)
    """

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        self.config = config
        self.encoder = Encoder(config, rngs=rngs)
        self.pool = build_pooling(config.pooling, config.dim, rngs=rngs)

    def __call__(
        self, ids: jax.Array, valid: jax.Array | None = None, *, capture: bool = False
    ) -> PairEncoderOutput:
        """``ids [batch, len] -> PairEncoderOutput`` (embedding ``[batch, dim]``)."""
        x, valid, caps = self.encoder(ids, valid, capture=capture)
        pooled = self.pool(x, valid).astype(jnp.float32)
        return PairEncoderOutput(embedding=l2_normalize(pooled), pooled=pooled, attention=caps)

    def similarity(self, ids_a: jax.Array, ids_b: jax.Array) -> jax.Array:
        """``[batch]`` cosine similarity of the pairs' embeddings."""
        return jnp.sum(self(ids_a).embedding * self(ids_b).embedding, axis=-1)
