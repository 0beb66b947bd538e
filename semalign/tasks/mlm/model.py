"""The masked language model: a bidirectional trunk, an output layer tied to the embedding."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx, struct

from semalign.attention import Capture
from semalign.config import ModelConfig
from semalign.nn.encoder import Encoder
from semalign.nn.layers import axes, dense, layer_norm

__all__ = ["MLMHead", "MLMOutput", "MaskedLM", "bidirectional"]


def bidirectional(config: ModelConfig) -> ModelConfig:
    """``config`` without a causal mask: every token sees the whole text."""
    if not config.attention.causal:
        return config
    return config.replace(attention=dataclasses.replace(config.attention, causal=False))


@struct.dataclass
class MLMOutput:
    """A forward pass.

    Attributes:
      logits: ``[batch, P, vocab]`` float32 token scores at the asked positions (or
        ``[batch, len, vocab]`` at every position).
      attention: one :class:`Capture` per layer when asked for, else None.
    """

    logits: jax.Array
    attention: tuple[Capture, ...] | None = None


class MLMHead(nnx.Module):
    """``Linear -> GELU -> LayerNorm``, then the embedding transposed plus a bias (BERT).

    The output matrix is the trunk's token embedding itself (not a copy), so the head
    owns only the transform and the ``[vocab]`` bias.
    """

    def __init__(self, dim: int, vocab_size: int, *, dtype, rngs: nnx.Rngs):
        self.transform = dense(dim, dim, "embed", "mlp", dtype=dtype, rngs=rngs)
        self.norm = layer_norm(dim, dtype=dtype, rngs=rngs)
        self.bias = nnx.Param(jnp.zeros((vocab_size,), jnp.float32), **axes("vocab"))

    def __call__(self, x: jax.Array, table: jax.Array) -> jax.Array:
        """``x [..., dim]``, ``table [vocab, dim]`` -> logits ``[..., vocab]`` float32."""
        h = self.norm(jax.nn.gelu(self.transform(x))).astype(jnp.float32)
        return jnp.einsum("...d,vd->...v", h, table.astype(jnp.float32)) + self.bias[...]


class MaskedLM(nnx.Module):
    """Token ids -> scores of the original token at chosen (masked) positions.

    Args:
      config: the model config (its attention is made bidirectional).
      rngs: NNX random streams.

    Example:
      >>> from flax import nnx
      >>> import jax.numpy as jnp
      >>> lm = MaskedLM(ModelConfig(vocab_size=50, dim=16), rngs=nnx.Rngs(0))
      >>> lm(jnp.array([[2, 7, 4, 9]]), positions=jnp.array([[2]])).logits.shape
      (1, 1, 50)
    """

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        self.config = bidirectional(config)
        self.encoder = Encoder(self.config, rngs=rngs)
        self.head = MLMHead(config.dim, config.vocab_size, dtype=jnp.dtype(config.dtype), rngs=rngs)

    def __call__(
        self,
        ids: jax.Array,
        valid: jax.Array | None = None,
        *,
        positions: jax.Array | None = None,
        capture: bool = False,
    ) -> MLMOutput:
        """Logits at ``positions`` (``[batch, P]`` int) or, without them, everywhere.

        Args:
          ids: ``[batch, len]`` int token ids, 0 = padding.
          valid: ``[batch, len]`` bool; defaults to ``ids != 0``.
          positions: ``[batch, P]`` positions to score; the vocabulary projection, the
            costly part, then runs on ``P`` rows instead of ``len``.
          capture: collect attention of every layer.
        """
        x, _, caps = self.encoder(ids, valid, capture=capture)
        if positions is not None:
            x = jnp.take_along_axis(x, positions[..., None].astype(jnp.int32), axis=1)
        return MLMOutput(self.head(x, self.encoder.embed.embedding[...]), caps)
