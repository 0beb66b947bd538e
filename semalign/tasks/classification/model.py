"""The classifier: encoder trunk -> pooling -> dropout -> linear head."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx, struct

from semalign.attention import Capture
from semalign.config import ModelConfig
from semalign.nn.dropout import Dropout
from semalign.nn.encoder import Encoder
from semalign.nn.heads import linear_head
from semalign.nn.pooling import build_pooling

__all__ = ["Classifier", "ClassifierOutput"]


@struct.dataclass
class ClassifierOutput:
    """A forward pass.

    Attributes:
      logits: ``[batch, classes]``.
      embedding: ``[batch, dim]`` pooled representation.
      attention: one :class:`Capture` per layer when asked for, else None.
    """

    logits: jax.Array
    embedding: jax.Array
    attention: tuple[Capture, ...] | None = None


class Classifier(nnx.Module):
    """Token ids -> class logits.

    Args:
      config: the model config (``num_classes >= 2``).
      rngs: NNX random streams (``params``, ``dropout``).

    Raises:
      ValueError: fewer than 2 classes, or an invalid trunk config.

    Example:
      >>> from flax import nnx
      >>> import jax.numpy as jnp
      >>> cfg = ModelConfig(vocab_size=100, num_classes=2, dim=16)
      >>> Classifier(cfg, rngs=nnx.Rngs(0))(jnp.array([[2, 7, 9, 0]])).logits.shape
      (1, 2)
    """

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        if config.num_classes < 2:
            raise ValueError(f"a classifier needs num_classes >= 2, got {config.num_classes}")
        self.config = config
        # Built in 0.1.0's order (trunk, pool, head) so one seed gives the same weights.
        self.encoder = Encoder(config, rngs=rngs)
        self.pool = build_pooling(config.pooling, config.dim, rngs=rngs)
        self.head_dropout = Dropout(config.dropout, rngs=rngs)
        self.head = linear_head(config.dim, config.num_classes, rngs=rngs)

    def __call__(
        self, ids: jax.Array, valid: jax.Array | None = None, *, capture: bool = False
    ) -> ClassifierOutput:
        """``ids [batch, len] -> ClassifierOutput`` (logits ``[batch, classes]``)."""
        x, valid, caps = self.encoder(ids, valid, capture=capture)
        pooled = self.pool(x, valid)
        logits = self.head(self.head_dropout(pooled)).astype(jnp.float32)
        return ClassifierOutput(logits=logits, embedding=pooled.astype(jnp.float32), attention=caps)
