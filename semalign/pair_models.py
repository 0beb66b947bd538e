"""Sentence-pair models: :class:`PairEncoder` (similarity) and :class:`PairClassifier`.

Both share the encoder trunk of :class:`semalign.models.TextClassifier` (token embedding +
positions -> encoder blocks with the chosen scoring -> LayerNorm -> pooling), built by
the classifier itself so that there is one definition of it; the classifier head is not
kept. Both sides of a pair go through the same weights.

* :class:`PairEncoder`: the pooled state, L2-normalised, is the sentence embedding; two
  texts are compared by the cosine of their embeddings (a siamese bi-encoder, as in
  Sentence-BERT).
* :class:`PairClassifier`: each side's tokens attend to the other side's tokens through
  one cross-attention layer with the model's scoring (A -> B and B -> A share weights);
  the pooled results ``u, v`` feed a linear head on ``[u, v, |u − v|, u ⊙ v]``.

:func:`cross_alignment` compares the tokens of two texts with an attention layer's own
projections and scoring: the alignment matrix ``semalign inspect --pair`` shows.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx, struct

from semalign.attention import Capture
from semalign.config import ModelConfig
from semalign.models import TextClassifier, check_names
from semalign.nn.layers import MultiHeadAttention, axes, layer_norm

__all__ = [
    "PairClassifier",
    "PairClassifierOutput",
    "PairEncoder",
    "PairEncoderOutput",
    "cross_alignment",
    "last_block_alignment",
    "l2_normalize",
]

#: Attributes of a TextClassifier that make up the encoder trunk (what ``encode`` uses).
_TRUNK = ("embed", "bigrams", "positions", "embed_dropout", "blocks", "final_norm", "pool")


def _adopt_trunk(module: nnx.Module, config: ModelConfig, rngs: nnx.Rngs) -> None:
    check_names(config)
    donor = TextClassifier(config, rngs=rngs)
    for name in _TRUNK:
        setattr(module, name, getattr(donor, name))
    module.config = config
    module.dtype = donor.dtype


def l2_normalize(x: jax.Array, eps: float = 1e-8) -> jax.Array:
    """``x / max(‖x‖₂, eps)`` over the last axis (finite gradient at ``x = 0``)."""
    return x / jnp.sqrt(jnp.maximum(jnp.sum(jnp.square(x), axis=-1, keepdims=True), eps * eps))


def cross_alignment(
    attn: MultiHeadAttention,
    xa: jax.Array,
    va: jax.Array,
    xb: jax.Array,
    vb: jax.Array,
) -> Capture:
    """Attention of text A's tokens over text B's tokens with ``attn``'s scoring.

    Args:
      attn: an attention layer (its projections, scoring and masks are used).
      xa: ``[batch, La, dim]`` token states of the first texts (queries).
      va: ``[batch, La]`` bool.
      xb: ``[batch, Lb, dim]`` token states of the second texts (keys).
      vb: ``[batch, Lb]`` bool.

    Returns:
      A :class:`Capture` with ``[batch, heads, La, Lb]`` logits and weights; the weight
      rows of softmax scorings are distributions over B's real tokens.
    """
    _, cap = attn(xa, va, context=xb, context_valid=vb, capture=True)
    return cap


def last_block_alignment(model: nnx.Module, ids_a: jax.Array, ids_b: jax.Array) -> Capture:
    """Alignment of A over B by the last encoder block's attention, across the texts.

    The final token states of A are the queries and those of B the keys of the last
    block's attention (its projections, its scoring). Works for any model with the
    classifier's trunk (:class:`~semalign.models.TextClassifier`, :class:`PairEncoder`).
    """
    xa, va, _ = model.encode(ids_a)
    xb, vb, _ = model.encode(ids_b)
    return cross_alignment(model.blocks[-1].attn, xa, va, xb, vb)


@struct.dataclass
class PairEncoderOutput:
    """A :class:`PairEncoder` forward pass.

    Attributes:
      embedding: ``[batch, dim]`` float32 pooled state, L2-normalised.
      pooled: ``[batch, dim]`` float32 pooled state before normalisation.
      attention: one :class:`Capture` per layer when asked for, else None.
    """

    embedding: jax.Array
    pooled: jax.Array
    attention: tuple[Capture, ...] | None = None


class PairEncoder(nnx.Module):
    """Text -> normalised sentence embedding; pairs are compared by cosine.

    ``config.num_classes`` is not used (there is no head).

    Args:
      config: the encoder's config (scoring, width, depth, pooling, ...).
      rngs: NNX random streams (``params``, ``dropout``).

    Example:
      >>> from flax import nnx
      >>> import jax.numpy as jnp
      >>> enc = PairEncoder(ModelConfig(vocab_size=50, num_classes=2, dim=16), rngs=nnx.Rngs(0))
      >>> out = enc(jnp.array([[2, 7, 9, 0]]))
      >>> out.embedding.shape, round(float(jnp.linalg.norm(out.embedding)), 4)
      ((1, 16), 1.0)
    """

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        _adopt_trunk(self, config, rngs)

    # The trunk's attributes carry TextClassifier's names, so its encode is reused as is.
    encode = TextClassifier.encode

    def __call__(
        self, ids: jax.Array, valid: jax.Array | None = None, *, capture: bool = False
    ) -> PairEncoderOutput:
        """``ids [batch, len] -> PairEncoderOutput`` (embedding ``[batch, dim]``)."""
        x, valid, caps = self.encode(ids, valid, capture=capture)
        pooled = self.pool(x, valid).astype(jnp.float32)
        return PairEncoderOutput(embedding=l2_normalize(pooled), pooled=pooled, attention=caps)

    def similarity(self, ids_a: jax.Array, ids_b: jax.Array) -> jax.Array:
        """``[batch]`` cosine similarity of the pairs' embeddings."""
        return jnp.sum(self(ids_a).embedding * self(ids_b).embedding, axis=-1)

    def align(self, ids_a: jax.Array, ids_b: jax.Array) -> Capture:
        """Token alignment of A over B (:func:`last_block_alignment`)."""
        return last_block_alignment(self, ids_a, ids_b)


@struct.dataclass
class PairClassifierOutput:
    """A :class:`PairClassifier` forward pass.

    Attributes:
      logits: ``[batch, classes]``.
      alignment: the A -> B cross-attention capture (``[batch, heads, La, Lb]``) when
        asked for, else None.
    """

    logits: jax.Array
    alignment: Capture | None = None


class PairClassifier(nnx.Module):
    """Two texts -> class logits, with cross-attention between them.

    The cross-attention layer uses the model's attention config without causal or
    window masks (those order tokens of one text, not across two).

    Args:
      config: model config; ``num_classes`` is the number of pair labels.
      rngs: NNX random streams.
    """

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        _adopt_trunk(self, config, rngs)
        cross = dataclasses.replace(config.attention, causal=False, window=None)
        self.cross_norm = layer_norm(config.dim, dtype=self.dtype, rngs=rngs)
        self.cross = MultiHeadAttention(
            config.dim,
            cross,
            layer_index=config.layers,
            num_layers=config.layers + 1,
            dtype=self.dtype,
            rngs=rngs,
        )
        self.cross_dropout = nnx.Dropout(config.dropout, rngs=rngs)
        self.head_dropout = nnx.Dropout(config.dropout, rngs=rngs)
        self.head = nnx.Linear(
            4 * config.dim,
            config.num_classes,
            rngs=rngs,
            kernel_metadata=axes("embed", "classes"),
            bias_metadata=axes("classes"),
        )

    encode = TextClassifier.encode

    def _encode_pair(self, ids_a: jax.Array, ids_b: jax.Array):
        """Both sides in one pass of ``2·batch`` rows, padded to one length ``L``.

        Returns:
          ``(x [2b, L, dim], valid [2b, L])``: rows ``:b`` are A, rows ``b:`` are B;
          padding is masked, so real tokens get the states of separate passes.
        """
        length = max(ids_a.shape[1], ids_b.shape[1])

        def pad(ids):
            return jnp.pad(ids, ((0, 0), (0, length - ids.shape[1])))

        x, valid, _ = self.encode(jnp.concatenate([pad(ids_a), pad(ids_b)], axis=0))
        return x, valid

    def _cross(self, x: jax.Array, valid: jax.Array, capture: bool):
        """A attends to B and B to A in one call: the context is ``x`` with halves swapped."""
        n = x.shape[0] // 2
        context = jnp.concatenate([x[n:], x[:n]], axis=0)
        context_valid = jnp.concatenate([valid[n:], valid[:n]], axis=0)
        h, cap = self.cross(
            self.cross_norm(x),
            valid,
            context=self.cross_norm(context),
            context_valid=context_valid,
            capture=capture,
        )
        return h, cap

    def __call__(
        self, ids_a: jax.Array, ids_b: jax.Array, *, capture: bool = False
    ) -> PairClassifierOutput:
        """``ids_a [batch, La], ids_b [batch, Lb] -> PairClassifierOutput``."""
        n, la, lb = ids_a.shape[0], ids_a.shape[1], ids_b.shape[1]
        x, valid = self._encode_pair(ids_a, ids_b)
        h, cap = self._cross(x, valid, capture)
        pooled = self.pool(x + self.cross_dropout(h), valid)
        u, v = pooled[:n], pooled[n:]
        features = jnp.concatenate([u, v, jnp.abs(u - v), u * v], axis=-1)
        logits = self.head(self.head_dropout(features)).astype(jnp.float32)
        if cap is not None:
            cap = Capture(cap.logits[:n, :, :la, :lb], cap.weights[:n, :, :la, :lb])
        return PairClassifierOutput(logits=logits, alignment=cap)

    def align(self, ids_a: jax.Array, ids_b: jax.Array) -> Capture:
        """The A -> B cross-attention the classifier uses (``[batch, heads, La, Lb]``)."""
        return self(ids_a, ids_b, capture=True).alignment
