"""Everything after the logits: masks, masked softmax, dropout, the weighted sum.

Pure functions. Shapes follow ``jax.nn.dot_product_attention``:

* ``q``: ``[batch, q_len, heads, d]``, ``k`` / ``v``: ``[batch, k_len, heads, d]``
* logits, weights and masks: ``[batch, heads, q_len, k_len]`` (masks broadcastable)

A scorer (see :mod:`semalign.attention.scoring`) turns ``q`` and ``k`` into logits; this module
turns logits into attention. Two paths share one meaning:

* the explicit path materialises logits and weights (needed for dropout on the weights
  and for capturing them);
* the fused path hands the scorer's dot-product form to ``jax.nn.dot_product_attention``.

Both return zeros for a query row whose keys are all masked, never NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import jax
import jax.numpy as jnp
from flax import struct

from semalign.attention.dropout import inverted_dropout
from semalign.attention.products import weighted_sum

# Masked logits get this value instead of -inf: -inf turns a fully masked row into NaN
# (and an exported graph with it into all-NaN output).
MASK_VALUE = -1e9


def padding_mask(valid: jax.Array) -> jax.Array:
    """Key mask from token validity.

    Args:
      valid: ``[batch, k_len]`` bool, True for real tokens.

    Returns:
      ``[batch, 1, 1, k_len]`` bool.

    """
    return valid[:, None, None, :]


def _offsets(q_len: int, k_len: int) -> jax.Array:
    # broadcasted_iota, not arange: it survives symbolic (exported) sequence lengths.
    i = jax.lax.broadcasted_iota(jnp.int32, (q_len, k_len), 0)
    j = jax.lax.broadcasted_iota(jnp.int32, (q_len, k_len), 1)
    return j - i


def causal_mask(q_len: int, k_len: int) -> jax.Array:
    """Query ``i`` sees keys ``j <= i``.

    Returns:
      ``[1, 1, q_len, k_len]`` bool.

    """
    return (_offsets(q_len, k_len) <= 0)[None, None]


def local_mask(q_len: int, k_len: int, left: int | None, right: int | None) -> jax.Array:
    """Query ``i`` sees keys ``i - left <= j <= i + right``; ``None`` is unbounded.

    Returns:
      ``[1, 1, q_len, k_len]`` bool.

    Raises:
      ValueError: if a window side is negative.

    """
    check_window((left, right))
    off = _offsets(q_len, k_len)
    ok = jnp.ones_like(off, dtype=bool)
    if left is not None:
        ok &= off >= -left
    if right is not None:
        ok &= off <= right
    return ok[None, None]


def check_window(window: Sequence[int | None] | None) -> None:
    """Validate a ``(left, right)`` local window.

    Raises:
      ValueError: naming the received window if it is malformed or negative.

    """
    if window is None:
        return
    if len(window) != 2:
        raise ValueError(f"window must be (left, right), got {tuple(window)!r}")
    for side in window:
        if side is not None and (not isinstance(side, int) or side < 0):
            raise ValueError(f"window sides must be integers >= 0 or None, got {tuple(window)!r}")


def combine_masks(*masks: jax.Array | None) -> jax.Array | None:
    """Logical AND of broadcastable boolean masks; ``None`` entries are skipped."""
    present = [m for m in masks if m is not None]
    if not present:
        return None
    out = present[0]
    for m in present[1:]:
        out = jnp.logical_and(out, m)
    return out


def build_mask(
    q_len: int,
    k_len: int,
    *,
    key_valid: jax.Array | None = None,
    causal: bool = False,
    window: Sequence[int | None] | None = None,
) -> jax.Array | None:
    """Combine padding, causal and local-window masks.

    Args:
      q_len: query length.
      k_len: key length.
      key_valid: ``[batch, k_len]`` bool or None.
      causal: add a causal mask.
      window: ``(left, right)`` or None.

    Returns:
      ``[batch or 1, 1, q_len, k_len]`` bool, or None when nothing is masked.

    """
    return combine_masks(
        padding_mask(key_valid) if key_valid is not None else None,
        causal_mask(q_len, k_len) if causal else None,
        local_mask(q_len, k_len, *window) if window is not None else None,
    )


def masked_softmax(logits: jax.Array, mask: jax.Array | None) -> jax.Array:
    """Softmax over the last axis that ignores masked keys.

    A fully masked row yields zeros (not NaN, not uniform), with finite gradients.
    Computed in float32 whatever the input dtype.

    Args:
      logits: ``[..., k_len]``.
      mask: bool broadcastable to ``logits`` or None.

    Returns:
      Weights of ``logits``' shape and dtype; unmasked entries of a row sum to 1.

    """
    x = logits.astype(jnp.float32)
    if mask is None:
        return jax.nn.softmax(x, axis=-1).astype(logits.dtype)
    x = jnp.where(mask, x, MASK_VALUE)
    e = jnp.exp(x - jax.lax.stop_gradient(jnp.max(x, axis=-1, keepdims=True)))
    # A masked key's exp(MASK_VALUE − max) is exactly 0 in float32 once its row has a key
    # (whose logit is above −1e9 + 104), so no second select over [q, k] is needed; a
    # fully masked row (uniform here) is zeroed by a factor reduced over the mask's own,
    # often broadcast, shape. One select fewer: the D64H4 / D16H8 step 1.03x / 1.08x.
    keep = jnp.max(mask.astype(jnp.float32), axis=-1, keepdims=True)
    return (e * (keep / jnp.sum(e, axis=-1, keepdims=True))).astype(logits.dtype)


def row_has_keys(mask: jax.Array | None, q_len: int) -> jax.Array | None:
    """Which query rows see at least one key, shaped to scale an output.

    Args:
      mask: ``[batch or 1, heads or 1, q_len or 1, k_len]`` bool or None.
      q_len: query length (to broadcast a mask with a singleton query axis).

    Returns:
      ``[batch or 1, q_len, heads or 1, 1]`` float32, or None.

    """
    if mask is None:
        return None
    any_key = jnp.any(mask, axis=-1)  # [b, h, q]
    any_key = jnp.broadcast_to(any_key, (*any_key.shape[:2], q_len))
    return jnp.transpose(any_key, (0, 2, 1))[..., None].astype(jnp.float32)


def dropout_weights(weights: jax.Array, rate: float, rng: jax.Array | None) -> jax.Array:
    """Inverted dropout on attention weights; identity when ``rate == 0`` or no rng."""
    if rate <= 0.0 or rng is None:
        return weights
    return inverted_dropout(weights, rate, rng)


@struct.dataclass
class DotForm:
    """A scoring rewritten as a scaled dot product: ``scale * q·k + bias``.

    Attributes:
      q: ``[batch, q_len, heads, d']``.
      k: ``[batch, k_len, heads, d']``.
      scale: python float.
      bias: None or broadcastable to ``[batch, heads, q_len, k_len]``; only terms that
        vary with the key may appear (terms that vary only with the query cancel in
        the softmax).

    """

    q: jax.Array
    k: jax.Array
    scale: float = struct.field(pytree_node=False)
    bias: jax.Array | None = None


def fused_dot_attention(form: DotForm, v: jax.Array, mask: jax.Array | None) -> jax.Array:
    """``jax.nn.dot_product_attention`` on a :class:`DotForm`.

    Value is zero-padded when the form widened the head dimension (differential), and
    the result is sliced back, because the fused call needs key and value of one shape.

    Returns:
      ``[batch, q_len, heads, d_v]``.

    """
    d_v = v.shape[-1]
    width = form.k.shape[-1]
    if width > d_v:
        v = jnp.pad(v, ((0, 0), (0, 0), (0, 0), (0, width - d_v)))
    dtype = form.k.dtype
    out = jax.nn.dot_product_attention(
        form.q.astype(dtype),
        form.k,
        v.astype(dtype),
        bias=form.bias,
        mask=mask,
        scale=form.scale,
    )
    return out[..., :d_v] if width > d_v else out


class Scorer(Protocol):
    """What :func:`attend` needs from a scoring (:class:`semalign.attention.scoring.Scoring`)."""

    fusable: bool

    def weights(
        self, q: jax.Array, k: jax.Array, mask: jax.Array | None
    ) -> tuple[jax.Array, jax.Array]:
        """Return ``(logits, weights)``, each ``[batch, heads, q_len, k_len]``."""

    def fused(self, q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array | None) -> jax.Array:
        """Return the attention output ``[batch, q_len, heads, d_v]`` without weights."""

    def finalize(self, out: jax.Array) -> jax.Array:
        """Post-process the per-head output (identity for most scorings)."""


@struct.dataclass
class Capture:
    """Attention captured for inspection.

    Attributes:
      logits: ``[batch, heads, q_len, k_len]`` raw scores.
      weights: ``[batch, heads, q_len, k_len]`` attention weights (can be negative for
        ``diff-transformer``).

    """

    logits: jax.Array
    weights: jax.Array


def _explicit(scorer, q, k, v, mask, dropout_rate, dropout_rng, capture):
    logits, weights = scorer.weights(q, k, mask)
    out = weighted_sum(dropout_weights(weights, dropout_rate, dropout_rng), v)
    return out, (Capture(logits=logits, weights=weights) if capture else None)


def _explicit_chunked(scorer, q, k, v, mask, dropout_rate, dropout_rng, capture, chunk):
    # A few examples at a time keep their [chunk, heads, q, k] scores in cache; on a CPU
    # this is about twice as fast as streaming the whole batch's scores through memory,
    # and recomputing them in the backward pass (jax.checkpoint) beats storing them.
    # A batch of one chunk (the micro-batched CPU train step's 2 rows) is not mapped and
    # its scores are stored: they are in cache already, and recomputing them cost about
    # 1.2x the step (benchmarks/README.md, "Between the steps and inside them").
    # chunk=1 is avoided by callers: XLA CPU's backward dot is slow with a size-1 batch.
    b = q.shape[0]
    n = -(-b // chunk)
    pad = n * chunk - b
    masks = None if mask is None else jnp.broadcast_to(mask, (b, *mask.shape[1:]))

    def split(x):
        if x is None:
            return None
        x = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)) if pad else x
        return x.reshape(n, chunk, *x.shape[1:])

    rngs = None if dropout_rng is None else jax.random.split(dropout_rng, n)

    def one(xs):
        q1, k1, v1, m1, r1 = xs
        return _explicit(scorer, q1, k1, v1, m1, dropout_rate, r1, capture)

    xs = (split(q), split(k), split(v), split(masks), rngs)
    if n == 1:
        out, cap = jax.tree.map(lambda x: x[None], one(jax.tree.map(lambda x: x[0], xs)))
    else:
        fn = one if capture else jax.checkpoint(one)
        out, cap = jax.lax.map(fn, xs)

    def merge(x):
        return x.reshape(n * chunk, *x.shape[2:])[:b]

    return merge(out), None if cap is None else Capture(merge(cap.logits), merge(cap.weights))


def attend(
    scorer: Scorer,
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    mask: jax.Array | None = None,
    *,
    fused: bool = True,
    chunk: int = 0,
    dropout_rate: float = 0.0,
    dropout_rng: jax.Array | None = None,
    capture: bool = False,
) -> tuple[jax.Array, Capture | None]:
    """Attention with a pluggable scoring.

    The fused path is taken when asked, when the scorer supports it, and when neither
    weight dropout nor capture needs the weights materialised. The explicit path can run
    a few examples at a time (``chunk``): same numbers, better cache use on CPUs.

    Args:
      scorer: a built scoring.
      q: ``[batch, q_len, heads, d]``.
      k: ``[batch, k_len, heads, d]``.
      v: ``[batch, k_len, heads, d_v]``.
      mask: bool broadcastable to ``[batch, heads, q_len, k_len]`` or None.
      fused: allow the fused path.
      chunk: if > 0, run the explicit path ``chunk`` examples at a time (``lax.map``,
        batch padded to a multiple) with the scores recomputed in the backward pass; a
        batch of at most ``chunk`` examples runs at once, its scores stored.
      dropout_rate: dropout on the weights (explicit path only).
      dropout_rng: key for that dropout; None disables it.
      capture: also return the logits and weights.

    Returns:
      ``(out [batch, q_len, heads, d_v], Capture or None)``.
    """
    needs_weights = capture or (dropout_rate > 0.0 and dropout_rng is not None)
    if fused and scorer.fusable and not needs_weights:
        out = scorer.fused(q, k, v, mask)
        keep = row_has_keys(mask, q.shape[1])
        if keep is not None:  # the fused kernel spreads a fully masked row uniformly
            out = out * keep.astype(out.dtype)
        return scorer.finalize(out), None
    if chunk > 0:
        out, cap = _explicit_chunked(
            scorer, q, k, v, mask, dropout_rate, dropout_rng, capture, chunk
        )
    else:
        out, cap = _explicit(scorer, q, k, v, mask, dropout_rate, dropout_rng, capture)
    return scorer.finalize(out), cap
