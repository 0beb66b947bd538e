"""Models: :class:`TextClassifier` (token ids -> class logits, pooled embedding)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx, struct

from semalign.attention import Capture
from semalign.config import ModelConfig
from semalign.nn.layers import EncoderBlock, axes, layer_norm
from semalign.nn.ngrams import bigram_ids
from semalign.nn.pooling import POOLINGS, build_pooling
from semalign.nn.positions import POSITIONS, build_positions

PAD_ID = 0


def check_names(config: ModelConfig) -> None:
    """Fail early on a scoring, position or pooling name no registry knows.

    Raises:
      ValueError: naming the received value and the choices.
    """
    from semalign.attention import scoring

    for name in set(config.attention.head_scorings):
        scoring.get(name)
    if config.positions not in POSITIONS:
        raise ValueError(
            f"unknown positions {config.positions!r}; choose one of {', '.join(POSITIONS)}"
        )
    if config.pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {config.pooling!r}; choose one of {', '.join(POOLINGS)}")


@struct.dataclass
class ClassifierOutput:
    """What a forward pass returns.

    Attributes:
      logits: ``[batch, classes]``.
      embedding: ``[batch, dim]`` pooled representation.
      attention: one :class:`Capture` per layer when asked for, else None.

    """

    logits: jax.Array
    embedding: jax.Array
    attention: tuple[Capture, ...] | None = None


class TextClassifier(nnx.Module):
    """Token embedding + positions -> N encoder blocks -> LayerNorm -> pooling -> head.

    Args:
      config: the model config.
      rngs: NNX random streams (``params``, ``dropout``).

    Example:
      >>> from flax import nnx
      >>> import jax.numpy as jnp
      >>> from semalign.config import ModelConfig
      >>> cfg = ModelConfig(vocab_size=100, num_classes=2, dim=16)
      >>> model = TextClassifier(cfg, rngs=nnx.Rngs(0))
      >>> model(jnp.array([[2, 7, 9, 0]])).logits.shape
      (1, 2)

    """

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        self.config = config
        dtype = jnp.dtype(config.dtype)
        self.dtype = dtype
        self.embed = nnx.Embed(
            config.vocab_size,
            config.dim,
            embedding_init=nnx.initializers.normal(0.02),
            embedding_metadata=axes("vocab", "embed"),
            rngs=rngs,
        )
        # Hashed bigrams (fastText-style); None keeps older checkpoints loadable as is.
        self.bigrams = (
            nnx.Embed(
                config.bigram_buckets + 1,
                config.dim,
                embedding_init=nnx.initializers.normal(0.02),
                embedding_metadata=axes("vocab", "embed"),
                rngs=rngs,
            )
            if config.bigram_buckets
            else None
        )
        self.positions = build_positions(config.positions, config.max_len, config.dim, rngs=rngs)
        self.embed_dropout = nnx.Dropout(config.dropout, rngs=rngs)
        self.blocks = nnx.List(
            [
                EncoderBlock(
                    config.dim,
                    config.attention,
                    mlp_ratio=config.mlp_ratio,
                    dropout=config.dropout,
                    layer_index=i,
                    num_layers=config.layers,
                    dtype=dtype,
                    rngs=rngs,
                )
                for i in range(config.layers)
            ]
        )
        self.final_norm = layer_norm(config.dim, dtype=dtype, rngs=rngs)
        self.pool = build_pooling(config.pooling, config.dim, rngs=rngs)
        self.head_dropout = nnx.Dropout(config.dropout, rngs=rngs)
        self.head = nnx.Linear(
            config.dim,
            config.num_classes,
            rngs=rngs,
            kernel_metadata=axes("embed", "classes"),
            bias_metadata=axes("classes"),
        )

    def encode(
        self, ids: jax.Array, valid: jax.Array | None = None, *, capture: bool = False
    ) -> tuple[jax.Array, jax.Array, tuple[Capture, ...] | None]:
        """Contextual token states.

        Args:
          ids: ``[batch, len]`` int token ids, 0 = padding.
          valid: ``[batch, len]`` bool; defaults to ``ids != 0``.
          capture: collect attention of every layer.

        Returns:
          ``(states [batch, len, dim], valid [batch, len], captures or None)``.

        """
        if valid is None:
            valid = ids != PAD_ID
        # A clipped take, not Embed's default lookup: out-of-range ids must not turn into
        # NaN (which an ONNX converter can spread over the whole output).
        x = jnp.take(self.embed.embedding[...], ids, axis=0, mode="clip")
        if self.bigrams is not None:
            rows = bigram_ids(
                ids, valid, vocab_size=self.config.vocab_size, buckets=self.config.bigram_buckets
            )
            x = x + jnp.take(self.bigrams.embedding[...], rows, axis=0, mode="clip")
        x = (x + self.positions(ids.shape[1])).astype(self.dtype)
        x = self.embed_dropout(x)
        caps = []
        for block in self.blocks:
            x, cap = block(x, valid, capture=capture)
            caps.append(cap)
        return self.final_norm(x), valid, tuple(caps) if capture else None

    def __call__(
        self, ids: jax.Array, valid: jax.Array | None = None, *, capture: bool = False
    ) -> ClassifierOutput:
        """``ids [batch, len] -> ClassifierOutput`` (logits ``[batch, classes]``)."""
        x, valid, caps = self.encode(ids, valid, capture=capture)
        pooled = self.pool(x, valid)
        logits = self.head(self.head_dropout(pooled)).astype(jnp.float32)
        return ClassifierOutput(logits=logits, embedding=pooled.astype(jnp.float32), attention=caps)
