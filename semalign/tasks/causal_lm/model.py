"""The language model: the encoder trunk under a causal mask, output tied to the embedding."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx, struct

from semalign.attention import Capture
from semalign.config import ModelConfig
from semalign.nn.encoder import Encoder

__all__ = ["CausalLM", "LMOutput", "causal"]


def causal(config: ModelConfig) -> ModelConfig:
    """``config`` with a causal mask on every attention layer (what a language model needs)."""
    if config.attention.causal:
        return config
    return config.replace(attention=dataclasses.replace(config.attention, causal=True))


@struct.dataclass
class LMOutput:
    """A forward pass.

    Attributes:
      logits: ``[batch, len, vocab]`` float32 scores of the next token at every position.
      attention: one :class:`Capture` per layer when asked for, else None.
    """

    logits: jax.Array
    attention: tuple[Capture, ...] | None = None


class CausalLM(nnx.Module):
    """Token ids -> next-token logits; position ``i`` sees tokens ``<= i`` only.

    The output layer is the token embedding transposed (tied weights, as in GPT-2), so
    the model adds no parameters to the trunk.

    Args:
      config: the model config (its attention is made causal).
      rngs: NNX random streams.

    Example:
      >>> from flax import nnx
      >>> import jax.numpy as jnp
      >>> lm = CausalLM(ModelConfig(vocab_size=50, dim=16), rngs=nnx.Rngs(0))
      >>> lm(jnp.array([[2, 7, 9, 0]])).logits.shape
      (1, 4, 50)
    """

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        self.config = causal(config)
        self.encoder = Encoder(self.config, rngs=rngs)

    def _logits(self, x: jax.Array) -> jax.Array:
        table = self.encoder.embed.embedding[...]
        return jnp.einsum("bld,vd->blv", x.astype(jnp.float32), table.astype(jnp.float32))

    def __call__(
        self, ids: jax.Array, valid: jax.Array | None = None, *, capture: bool = False
    ) -> LMOutput:
        """``ids [batch, len] -> LMOutput`` (logits ``[batch, len, vocab]``)."""
        x, _, caps = self.encoder(ids, valid, capture=capture)
        return LMOutput(logits=self._logits(x), attention=caps)

    def init_cache(self, batch: int) -> list[dict[str, jax.Array]]:
        """An empty KV cache (:meth:`semalign.nn.encoder.Encoder.init_cache`)."""
        return self.encoder.init_cache(batch)

    def decode(self, ids: jax.Array, cache, t: jax.Array):
        """Next-token logits ``[batch, vocab]`` after the token at ``t``, and the cache.

        Args:
          ids: ``[batch, 2]``: the token before ``t`` (0 at ``t = 0``) and the one at ``t``.
          cache: from :meth:`init_cache` or the previous step.
          t: int32 scalar position.
        """
        x, cache = self.encoder.decode(ids, cache, t)
        return self._logits(x)[:, 0], cache
