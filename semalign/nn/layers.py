"""NNX building blocks: pluggable-scoring :class:`MultiHeadAttention`, :class:`EncoderBlock`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from semalign.attention import Capture, attend, build_mask, scoring
from semalign.config import AttentionConfig
from semalign.nn.dense_product import dense_dot_general
from semalign.nn.dropout import Dropout


def axes(*names: str) -> dict:
    """Parameter metadata naming its logical axes (mapped to the mesh by ``sharding.py``).

    ``eager_sharding=False``: a model is built without a mesh (tests, export, inspect);
    training on a mesh places the state by these names.
    """
    return {"sharding_names": names, "eager_sharding": False}


def head_groups(names: tuple[str, ...]) -> tuple[tuple[str, int, int], ...]:
    """Runs of consecutive heads with one scoring: ``(name, first_head, count)``."""
    groups: list[tuple[str, int, int]] = []
    for i, name in enumerate(names):
        if groups and groups[-1][0] == name:
            groups[-1] = (name, groups[-1][1], groups[-1][2] + 1)
        else:
            groups.append((name, i, 1))
    return tuple(groups)


class MultiHeadAttention(nnx.Module):
    """Multi-head attention whose query–key comparison is a registered scoring.

    Heads may use different scorings (``AttentionConfig(scoring="dot,cosine,l1,l2")``):
    consecutive heads with the same scoring share one scoring module and one kernel call.

    Args:
      dim: model width (input and output).
      config: the attention config (scoring, heads, masks, dropout).
      layer_index: 0-based depth (DIFF-Transformer's λ_init).
      num_layers: total depth.
      dtype: computation dtype.
      rngs: NNX random streams (``params``, ``dropout``).

    Raises:
      ValueError: unknown scoring, heads not dividing ``dim``, a per-head list of the
        wrong length, a negative window.

    """

    def __init__(
        self,
        dim: int,
        config: AttentionConfig,
        *,
        layer_index: int = 0,
        num_layers: int = 1,
        dtype: jnp.dtype = jnp.float32,
        rngs: nnx.Rngs,
    ):
        if dim % config.heads:
            raise ValueError(
                f"heads must divide the width: dim={dim} is not divisible by heads={config.heads}"
            )
        names = config.head_scorings
        for name in set(names):
            scoring.get(name)  # fail on an unknown name before any parameter is made
        self.config = config
        self.heads = config.heads
        self.head_dim = dim // config.heads

        def projection() -> nnx.Linear:  # [embed] -> [heads * head_dim]
            return dense(dim, dim, "embed", "heads", dtype=dtype, rngs=rngs)

        self.query = projection()
        self.key = self.query if config.tie_qk else projection()
        self.value = projection()
        self.out = dense(dim, dim, "heads", "embed", dtype=dtype, rngs=rngs)
        self.groups = head_groups(names)
        self.scorers = nnx.List(
            [
                scoring.build(
                    name,
                    scoring.BuildContext(
                        heads=count,
                        head_dim=self.head_dim,
                        rngs=rngs,
                        layer_index=layer_index,
                        num_layers=num_layers,
                        key_block=config.key_block,
                    ),
                )
                for name, _, count in self.groups
            ]
        )
        on_cpu = jax.default_backend() == "cpu"
        self.fused = config.fused if config.fused is not None else not on_cpu
        auto_chunk = 2 if on_cpu else 0
        self.chunk = config.batch_chunk if config.batch_chunk is not None else auto_chunk
        self.dropout_rate = config.dropout
        self.rngs = rngs.dropout.fork() if config.dropout > 0 else None
        self.deterministic = False

    def _split(self, x: jax.Array) -> jax.Array:
        return x.reshape(*x.shape[:-1], self.heads, self.head_dim)

    def __call__(
        self,
        x: jax.Array,
        valid: jax.Array | None = None,
        *,
        context: jax.Array | None = None,
        context_valid: jax.Array | None = None,
        capture: bool = False,
    ) -> tuple[jax.Array, Capture | None]:
        """Self-attention over ``x``, or cross-attention to ``context`` when given.

        Args:
          x: ``[batch, q_len, dim]``.
          valid: ``[batch, q_len]`` bool, True for real tokens.
          context: ``[batch, k_len, dim]`` for cross-attention.
          context_valid: ``[batch, k_len]`` bool.
          capture: also return logits and weights.

        Returns:
          ``(y [batch, q_len, dim], Capture with [batch, heads, q_len, k_len] or None)``.

        """
        kv, kv_valid = (x, valid) if context is None else (context, context_valid)
        q, k, v = self._split(self.query(x)), self._split(self.key(kv)), self._split(self.value(kv))
        mask = build_mask(
            q.shape[1],
            k.shape[1],
            key_valid=kv_valid,
            causal=self.config.causal,
            window=self.config.window,
        )
        training = self.rngs is not None and not self.deterministic
        outs, caps = [], []
        for (_, start, count), scorer in zip(self.groups, self.scorers, strict=True):
            heads = slice(start, start + count)
            out, cap = attend(
                scorer,
                q[:, :, heads],
                k[:, :, heads],
                v[:, :, heads],
                mask,
                fused=self.fused,
                chunk=self.chunk,
                dropout_rate=self.dropout_rate if training else 0.0,
                dropout_rng=self.rngs() if training else None,
                capture=capture,
            )
            outs.append(out)
            caps.append(cap)
        out = outs[0] if len(outs) == 1 else jnp.concatenate(outs, axis=2)
        y = self.out(out.reshape(*out.shape[:2], -1))
        if not capture:
            return y, None
        return y, Capture(
            logits=jnp.concatenate([c.logits for c in caps], axis=1),
            weights=jnp.concatenate([c.weights for c in caps], axis=1),
        )

    def init_cache(self, batch: int, length: int) -> dict[str, jax.Array]:
        """An empty KV cache for :meth:`decode` of ``length`` positions.

        Holds keys and values ``[batch, length, heads, d]`` and the queries
        ``[batch, length + 1, heads, d]`` one slot late (slot 0 stays zero): a scoring that
        compares neighbours (differential) needs the previous query too.
        """
        shape = (batch, length, self.heads, self.head_dim)
        dtype = self.query.kernel[...].dtype
        return {
            "k": jnp.zeros(shape, dtype),
            "v": jnp.zeros(shape, dtype),
            "q": jnp.zeros((batch, length + 1, self.heads, self.head_dim), dtype),
        }

    def decode(
        self, x: jax.Array, cache: dict[str, jax.Array], t: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Self-attention of one new token at position ``t`` over the cached ones.

        The new token's query, key and value go into the cache; its query attends to the
        keys at positions ``<= t`` (and inside the window) with the layer's scorings. The
        scorings see a query window ``[q_{t-1}, q_t]`` against every cached key, so a
        scoring that shifts queries and keys (differential) gets exactly its full-sequence
        logits; the first row is discarded.

        Args:
          x: ``[batch, 1, dim]`` the new token's input.
          cache: from :meth:`init_cache` (or the previous step).
          t: int32 scalar, the new token's position (``< length``).

        Returns:
          ``(y [batch, 1, dim], updated cache)``.
        """
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        cache = {
            "k": jax.lax.dynamic_update_slice_in_dim(cache["k"], k, t, axis=1),
            "v": jax.lax.dynamic_update_slice_in_dim(cache["v"], v, t, axis=1),
            "q": jax.lax.dynamic_update_slice_in_dim(cache["q"], q, t + 1, axis=1),
        }
        window_q = jax.lax.dynamic_slice_in_dim(cache["q"], t, 2, axis=1)  # q_{t-1}, q_t
        length = cache["k"].shape[1]
        keys = jnp.arange(length)[None, :]
        rows = (t - 1 + jnp.arange(2))[:, None]
        allowed = keys <= rows
        if self.config.window is not None:
            left, right = self.config.window
            if left is not None:
                allowed &= keys >= rows - left
            if right is not None:
                allowed &= keys <= rows + right
        mask = allowed[None, None]  # [1, 1, 2, length]
        outs = []
        for (_, start, count), scorer in zip(self.groups, self.scorers, strict=True):
            heads = slice(start, start + count)
            out, _ = attend(
                scorer,
                window_q[:, :, heads],
                cache["k"][:, :, heads],
                cache["v"][:, :, heads],
                mask,
                fused=False,
            )
            outs.append(out[:, 1:])
        out = outs[0] if len(outs) == 1 else jnp.concatenate(outs, axis=2)
        return self.out(out.reshape(*out.shape[:2], -1)), cache


def dense(
    d_in: int, d_out: int, in_axis: str, out_axis: str, *, rngs: nnx.Rngs, dtype=None
) -> nnx.Linear:
    """``[..., d_in] -> [..., d_out]`` Linear whose kernel and bias name their logical axes.

    Its product's backward is :func:`~semalign.nn.dense_product.dense_dot_general`'s (the
    same values; plain matmuls for XLA CPU).
    """
    return nnx.Linear(
        d_in,
        d_out,
        dtype=dtype,
        dot_general=dense_dot_general,
        rngs=rngs,
        kernel_metadata=axes(in_axis, out_axis),
        bias_metadata=axes(out_axis),
    )


def layer_norm(dim: int, *, dtype, rngs: nnx.Rngs) -> nnx.LayerNorm:
    """LayerNorm over ``embed`` with named parameters."""
    return nnx.LayerNorm(
        dim, dtype=dtype, rngs=rngs, scale_metadata=axes("embed"), bias_metadata=axes("embed")
    )


class MLP(nnx.Module):
    """``Linear -> GELU -> dropout -> Linear``: ``[..., dim] -> [..., dim]``."""

    def __init__(self, dim: int, hidden: int, *, dropout: float, dtype, rngs: nnx.Rngs):
        self.up = dense(dim, hidden, "embed", "mlp", dtype=dtype, rngs=rngs)
        self.down = dense(hidden, dim, "mlp", "embed", dtype=dtype, rngs=rngs)
        self.dropout = Dropout(dropout, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:  # noqa: D102
        return self.down(self.dropout(jax.nn.gelu(self.up(x))))


class EncoderBlock(nnx.Module):
    """Pre-LN transformer block: ``x + attn(LN(x))``, then ``x + mlp(LN(x))``.

    Args:
      dim: model width.
      attention: attention config.
      mlp_ratio: MLP hidden width over ``dim``; 0 drops the MLP sub-block.
      dropout: residual-branch dropout.
      layer_index: 0-based depth.
      num_layers: total depth.
      dtype: computation dtype.
      rngs: NNX random streams.

    """

    def __init__(
        self,
        dim: int,
        attention: AttentionConfig,
        *,
        mlp_ratio: int = 2,
        dropout: float = 0.1,
        layer_index: int = 0,
        num_layers: int = 1,
        dtype: jnp.dtype = jnp.float32,
        rngs: nnx.Rngs,
    ):
        self.attn_norm = layer_norm(dim, dtype=dtype, rngs=rngs)
        self.attn = MultiHeadAttention(
            dim, attention, layer_index=layer_index, num_layers=num_layers, dtype=dtype, rngs=rngs
        )
        self.attn_dropout = Dropout(dropout, rngs=rngs)
        if mlp_ratio > 0:
            self.mlp_norm = layer_norm(dim, dtype=dtype, rngs=rngs)
            self.mlp = MLP(dim, mlp_ratio * dim, dropout=dropout, dtype=dtype, rngs=rngs)
            self.mlp_dropout = Dropout(dropout, rngs=rngs)
        else:
            self.mlp = None

    def __call__(
        self, x: jax.Array, valid: jax.Array | None = None, *, capture: bool = False
    ) -> tuple[jax.Array, Capture | None]:
        """``[batch, len, dim], [batch, len] -> ([batch, len, dim], Capture or None)``."""
        h, cap = self.attn(self.attn_norm(x), valid, capture=capture)
        x = x + self.attn_dropout(h)
        if self.mlp is not None:
            x = x + self.mlp_dropout(self.mlp(self.mlp_norm(x)))
        return x, cap

    def decode(
        self, x: jax.Array, cache: dict[str, jax.Array], t: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """One new token (eval mode): ``[batch, 1, dim]`` -> ``([batch, 1, dim], cache)``."""
        h, cache = self.attn.decode(self.attn_norm(x), cache, t)
        x = x + h
        if self.mlp is not None:
            x = x + self.mlp(self.mlp_norm(x))
        return x, cache
