"""ELECTRA's two models in one module: a small generator and the discriminator trunk.

The discriminator is the ``encoder`` trunk every task has (``--init-from`` copies it)
with a per-token head that scores "this token was replaced". The generator is a
:class:`~semalign.tasks.mlm.model.MaskedLM` of half the depth and half the MLP width whose
embeddings (tokens, bigrams, positions) are the discriminator's own, shared by reference
(ELECTRA §3.2: tied embeddings help, a generator 1/4-1/2 the discriminator's size works
best); the generator's output layer is that same token embedding.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx, struct

from semalign.config import ModelConfig
from semalign.nn.encoder import Encoder
from semalign.nn.layers import dense
from semalign.tasks.mlm.model import MaskedLM, bidirectional

__all__ = ["DetectorHead", "RTDOutput", "ReplacedTokenDetector", "generator_config"]

#: The embedding parts the generator shares with the discriminator (by reference).
SHARED = ("embed", "bigrams", "positions")


def generator_config(config: ModelConfig) -> ModelConfig:
    """The generator's config: half the blocks and half the MLP ratio (each at least 1).

    Width, heads, scoring and positions stay, so the embeddings can be shared.

    >>> generator_config(ModelConfig(vocab_size=10, dim=8, layers=2, mlp_ratio=2)).layers
    1
    """
    mlp = max(1, config.mlp_ratio // 2) if config.mlp_ratio else 0
    return config.replace(layers=max(1, config.layers // 2), mlp_ratio=mlp)


@struct.dataclass
class RTDOutput:
    """A discriminator pass.

    Attributes:
      logits: ``[batch, len]`` float32 scores of "replaced" (sigmoid: its probability).
    """

    logits: jax.Array


class DetectorHead(nnx.Module):
    """``Linear -> GELU -> Linear(1)`` on every token state (ELECTRA's discriminator head)."""

    def __init__(self, dim: int, *, dtype, rngs: nnx.Rngs):
        self.transform = dense(dim, dim, "embed", "mlp", dtype=dtype, rngs=rngs)
        self.out = dense(dim, 1, "mlp", "classes", dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """``x [..., dim]`` -> logits ``[...]`` float32."""
        return self.out(jax.nn.gelu(self.transform(x)))[..., 0].astype(jnp.float32)


class ReplacedTokenDetector(nnx.Module):
    """The discriminator (``encoder`` + ``detector``) and its ``generator``.

    Args:
      config: the discriminator's config (made bidirectional); the generator's follows
        from it (:func:`generator_config`).
      rngs: NNX random streams.

    Example:
      >>> from flax import nnx
      >>> import jax.numpy as jnp
      >>> m = ReplacedTokenDetector(ModelConfig(vocab_size=50, dim=16), rngs=nnx.Rngs(0))
      >>> m(jnp.array([[2, 7, 4, 9]])).logits.shape
      (1, 4)
      >>> m.generator.encoder.embed is m.encoder.embed
      True
    """

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        self.config = bidirectional(config)
        self.encoder = Encoder(self.config, rngs=rngs)
        self.detector = DetectorHead(config.dim, dtype=jnp.dtype(config.dtype), rngs=rngs)
        self.generator = MaskedLM(generator_config(self.config), rngs=rngs)
        for part in SHARED:  # the generator's own copies are dropped before any use
            setattr(self.generator.encoder, part, getattr(self.encoder, part))

    def __call__(self, ids: jax.Array, valid: jax.Array | None = None) -> RTDOutput:
        """The discriminator's "replaced" logits of ``ids [batch, len]`` (0 = padding)."""
        x, _, _ = self.encoder(ids, valid)
        return RTDOutput(self.detector(x))
