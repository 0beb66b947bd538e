"""The pair classifier: two texts -> class logits, with cross-attention between them.

Both texts go through the shared encoder trunk; each side's tokens then
attend to the other side's tokens through one cross-attention layer with the model's
scoring (A -> B and B -> A share weights); the pooled results ``u, v`` feed a linear head
on ``[u, v, |u − v|, u ⊙ v]``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx, struct

from semalign.attention import Capture
from semalign.config import ModelConfig
from semalign.nn.dropout import Dropout
from semalign.nn.encoder import Encoder
from semalign.nn.heads import linear_head
from semalign.nn.layers import MultiHeadAttention, layer_norm
from semalign.nn.pooling import build_pooling

__all__ = ["PairClassifier", "PairClassifierOutput"]


@struct.dataclass
class PairClassifierOutput:
    """A forward pass.

    Attributes:
      logits: ``[batch, classes]``.
      alignment: the A -> B cross-attention capture (``[batch, heads, La, Lb]``) when
        asked for, else None.
    """

    logits: jax.Array
    alignment: Capture | None = None


class PairClassifier(nnx.Module):
    """Two texts -> class logits.

    The cross-attention layer uses the model's attention config without causal or
    window masks (those order tokens of one text, not across two).

    Args:
      config: model config; ``num_classes`` (>= 2) is the number of pair labels.
      rngs: NNX random streams.
    """

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        if config.num_classes < 2:
            raise ValueError(f"a pair classifier needs num_classes >= 2, got {config.num_classes}")
        self.config = config
        self.encoder = Encoder(config, rngs=rngs)
        self.pool = build_pooling(config.pooling, config.dim, rngs=rngs)
        dtype = self.encoder.dtype
        cross = dataclasses.replace(config.attention, causal=False, window=None)
        self.cross_norm = layer_norm(config.dim, dtype=dtype, rngs=rngs)
        self.cross = MultiHeadAttention(
            config.dim,
            cross,
            layer_index=config.layers,
            num_layers=config.layers + 1,
            dtype=dtype,
            rngs=rngs,
        )
        self.cross_dropout = Dropout(config.dropout, rngs=rngs)
        self.head_dropout = Dropout(config.dropout, rngs=rngs)
        self.head = linear_head(4 * config.dim, config.num_classes, rngs=rngs)

    def __call__(
        self,
        ids_a: jax.Array,
        ids_b: jax.Array,
        valid_a: jax.Array | None = None,
        valid_b: jax.Array | None = None,
        *,
        capture: bool = False,
    ) -> PairClassifierOutput:
        """``ids_a [batch, La], ids_b [batch, Lb] -> PairClassifierOutput``.

        ``valid_a`` / ``valid_b`` (bool, same shapes) default to ``ids != 0``.
        """
        xa, va, _ = self.encoder(ids_a, valid_a)
        xb, vb, _ = self.encoder(ids_b, valid_b)
        # Two calls of one layer (A -> B, B -> A), not one call on the halves of a stacked
        # batch: a symbolic batch then exports to ONNX unchanged.
        na, nb = self.cross_norm(xa), self.cross_norm(xb)
        ha, cap = self.cross(na, va, context=nb, context_valid=vb, capture=capture)
        hb, _ = self.cross(nb, vb, context=na, context_valid=va)
        u = self.pool(xa + self.cross_dropout(ha), va)
        v = self.pool(xb + self.cross_dropout(hb), vb)
        features = jnp.concatenate([u, v, jnp.abs(u - v), u * v], axis=-1)
        logits = self.head(self.head_dropout(features)).astype(jnp.float32)
        return PairClassifierOutput(logits=logits, alignment=cap)

    def align(self, ids_a: jax.Array, ids_b: jax.Array) -> Capture:
        """The A -> B cross-attention the classifier uses (``[batch, heads, La, Lb]``)."""
        return self(ids_a, ids_b, capture=True).alignment
