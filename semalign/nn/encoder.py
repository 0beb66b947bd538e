"""The encoder trunk every task sits on: token ids -> contextual token states.

Token embedding (+ hashed bigram embedding) + positions -> dropout -> N pre-LN encoder
blocks with the configured scoring -> final LayerNorm. Heads (a classifier, a pair
cross-attention, an LM head) are the task's; the trunk knows none of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from semalign.attention import Capture
from semalign.config import ModelConfig
from semalign.nn.dropout import Dropout
from semalign.nn.layers import EncoderBlock, axes, layer_norm
from semalign.nn.ngrams import bigram_ids
from semalign.nn.pooling import POOLINGS
from semalign.nn.positions import POSITIONS, build_positions

__all__ = [
    "LEGACY_LAYOUTS",
    "PAD_ID",
    "TRUNK_PARTS",
    "Encoder",
    "check_names",
    "hoist_trunk",
    "nest_trunk",
]

PAD_ID = 0

#: Attributes of :class:`Encoder`. semalign 0.1.0 kept them at the top of every model;
#: :func:`nest_trunk` / :func:`hoist_trunk` convert between the two checkpoint layouts.
TRUNK_PARTS = ("embed", "bigrams", "positions", "embed_dropout", "blocks", "final_norm")


def check_names(config: ModelConfig) -> None:
    """Fail early on a scoring, position or pooling name no registry knows.

    Raises:
      ValueError: naming the received value and the choices.
    """
    from semalign.attention import scoring

    for name in set(config.attention.head_scorings):
        scoring.get(name)
    POSITIONS.get(config.positions)
    POOLINGS.get(config.pooling)


class Encoder(nnx.Module):
    """Token ids ``[batch, len]`` -> token states ``[batch, len, dim]``.

    Args:
      config: the model config (width, depth, scoring, positions, bigram buckets).
      rngs: NNX random streams (``params``, ``dropout``).

    Example:
      >>> from flax import nnx
      >>> import jax.numpy as jnp
      >>> enc = Encoder(ModelConfig(vocab_size=100, dim=16), rngs=nnx.Rngs(0))
      >>> x, valid, _ = enc(jnp.array([[2, 7, 9, 0]]))
      >>> x.shape, valid.tolist()
      ((1, 4, 16), [[True, True, True, False]])
    """

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        check_names(config)
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
        # Hashed bigrams (fastText-style); None keeps checkpoints without them loadable.
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
        self.embed_dropout = Dropout(config.dropout, rngs=rngs)
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

    def __call__(
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

    def init_cache(self, batch: int) -> list[dict[str, jax.Array]]:
        """An empty KV cache per block for :meth:`decode` (``max_len`` positions)."""
        return [block.attn.init_cache(batch, self.config.max_len) for block in self.blocks]

    def decode(
        self, ids: jax.Array, cache: list[dict[str, jax.Array]], t: jax.Array
    ) -> tuple[jax.Array, list[dict[str, jax.Array]]]:
        """The state of one new token at position ``t`` (incremental decoding, eval mode).

        Args:
          ids: ``[batch, 2]`` the previous token (0 at ``t = 0``) and the new one; the
            previous one only feeds the bigram features.
          cache: from :meth:`init_cache` or the previous step.
          t: int32 scalar position of the new token.

        Returns:
          ``(state [batch, 1, dim] after the final norm, updated cache)``; equal to
          position ``t`` of a causal full forward pass over the same tokens.
        """
        x = jnp.take(self.embed.embedding[...], ids[:, 1:], axis=0, mode="clip")
        if self.bigrams is not None:
            rows = bigram_ids(
                ids,
                ids != PAD_ID,
                vocab_size=self.config.vocab_size,
                buckets=self.config.bigram_buckets,
            )[:, 1:]
            x = x + jnp.take(self.bigrams.embedding[...], rows, axis=0, mode="clip")
        table = self.positions(self.config.max_len)
        if table.ndim:
            table = jax.lax.dynamic_slice_in_dim(table, t, 1, axis=0)
        x = (x + table).astype(self.dtype)
        caches = []
        for block, layer_cache in zip(self.blocks, cache, strict=True):
            x, layer_cache = block.decode(x, layer_cache, t)
            caches.append(layer_cache)
        return self.final_norm(x), caches


def nest_trunk(tree: Any, key: str = "encoder") -> Any:
    """A 0.1.0 state tree (trunk parts at the top) in today's layout (under ``key``).

    Works on any tree that holds the model's layout somewhere (a model state, or an
    optimizer state whose moments mirror it): every mapping with ``embed`` and
    ``blocks`` side by side gets its trunk parts moved under ``key``.
    """
    if not isinstance(tree, Mapping):
        return tree
    if "embed" in tree and "blocks" in tree:
        trunk = {k: v for k, v in tree.items() if k in TRUNK_PARTS}
        rest = {k: nest_trunk(v, key) for k, v in tree.items() if k not in TRUNK_PARTS}
        return {**rest, key: trunk}
    return {k: nest_trunk(v, key) for k, v in tree.items()}


def hoist_trunk(tree: Any, key: str = "encoder") -> Any:
    """The inverse of :func:`nest_trunk`: today's layout as 0.1.0 stored it."""
    if not isinstance(tree, Mapping):
        return tree
    inner = tree.get(key)
    if isinstance(inner, Mapping) and "embed" in inner and "blocks" in inner:
        rest = {k: hoist_trunk(v, key) for k, v in tree.items() if k != key}
        return {**rest, **inner}
    return {k: hoist_trunk(v, key) for k, v in tree.items()}


#: Checkpoint layouts of older semalign versions, for ``checkpoints.restore(layouts=...)``.
LEGACY_LAYOUTS = ((hoist_trunk, nest_trunk),)
