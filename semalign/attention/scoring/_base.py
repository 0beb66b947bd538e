"""The scoring contract: ``logits = scoring(q, k) -> [batch, heads, q_len, k_len]``.

``q: [batch, q_len, heads, d]``, ``k: [batch, k_len, heads, d]``. The math of every
family lives in pure functions in its own file; :class:`Scoring` is the thin NNX module
that owns parameters (if any) and tells :func:`semalign.attention.attend` how to run it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
from flax import nnx

from semalign.attention import DotForm, fused_dot_attention, masked_softmax

LogitsFn = Callable[[jax.Array, jax.Array], jax.Array]
DotFormFn = Callable[[jax.Array, jax.Array], DotForm]


class Scoring(nnx.Module):
    """Base class of every scoring.

    Subclasses implement :meth:`logits`; matmul-reducible ones also implement
    :meth:`dot_form` (which sets ``fusable``). Scorings whose weights are not a softmax
    of logits (DIFF-Transformer) override :meth:`weights` and :meth:`fused`.

    Args:
      heads: number of heads this scoring serves.
      head_dim: per-head width ``d`` of q and k.

    """

    def __init__(self, *, heads: int, head_dim: int):
        self.heads = heads
        self.head_dim = head_dim

    #: Whether :meth:`fused` may run through ``jax.nn.dot_product_attention``.
    fusable: bool = False

    #: Whether an exported graph computes this scoring's softmax attention one example
    #: at a time (an ONNX ``Loop``) on :meth:`split_logits`'s tensors: a win when the
    #: logits build a large intermediate (``l1``: ``[heads, d, q, k]``, ``additive``:
    #: ``[heads, a, q, k]``) that then stays in cache; measured, not assumed.
    export_per_example: bool = False

    #: Whether :meth:`dot_forms` maps q and k position by position and linearly (it
    #: selects and scales their columns, DIFF-Transformer's halves): an exported graph
    #: then folds the forms into the query and key projections' weights.
    linear_forms: bool = False

    def __call__(self, q: jax.Array, k: jax.Array) -> jax.Array:
        """``[b, q, h, d], [b, k, h, d] -> [b, h, q, k]`` logits."""
        return self.logits(q, k)

    def logits(self, q: jax.Array, k: jax.Array) -> jax.Array:
        """Raw scores ``[batch, heads, q_len, k_len]``."""
        raise NotImplementedError

    def split_logits(self, q: jax.Array, k: jax.Array) -> tuple[LogitsFn, jax.Array, jax.Array]:
        """The logits as ``fn(q', k')``: ``q'``, ``k'`` hold the per-position work.

        An exported graph computes ``q'``, ``k'`` once for the whole batch and runs ``fn``
        (the pairwise rest) one example at a time. Both keep the batch axis first; ``fn``
        gives ``[b, h, q_len, k_len]``. Default: ``(self.logits, q, k)``.
        """
        return self.logits, q, k

    def dot_form(self, q: jax.Array, k: jax.Array) -> DotForm:
        """The same scores as ``scale * q'·k' + bias`` (softmax-equivalent)."""
        raise NotImplementedError(f"{type(self).__name__} has no dot-product form")

    def dot_forms(self, q: jax.Array, k: jax.Array) -> tuple[tuple[DotForm, Any], ...]:
        """The weights as ``Σ_m c_m · softmax(form_m)``: ``((form, c), ...)``.

        One term, ``(dot_form, 1)``, unless a scoring mixes several softmaxes
        (DIFF-Transformer); an exported graph runs each term as one fused attention.
        """
        return ((self.dot_form(q, k), 1.0),)

    def weights(
        self, q: jax.Array, k: jax.Array, mask: jax.Array | None
    ) -> tuple[jax.Array, jax.Array]:
        """``(logits, weights)``, both ``[batch, heads, q_len, k_len]``."""
        logits = self.logits(q, k)
        return logits, masked_softmax(logits, mask)

    def fused(self, q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array | None) -> jax.Array:
        """Attention output ``[batch, q_len, heads, d_v]`` via the fused kernel."""
        return fused_dot_attention(self.dot_form(q, k), v, mask)

    def finalize(self, out: jax.Array) -> jax.Array:
        """Per-head output transform; identity unless a scoring needs one."""
        return out


class FunctionScoring(Scoring):
    """A parameter-free scoring made of pure functions.

    Args:
      logits_fn: ``(q, k) -> logits``.
      dot_form_fn: ``(q, k) -> DotForm`` or None when not matmul-reducible.
      heads: number of heads.
      head_dim: per-head width.
      export_per_example: see :attr:`Scoring.export_per_example`.

    """

    def __init__(
        self,
        logits_fn: LogitsFn,
        dot_form_fn: DotFormFn | None = None,
        *,
        heads: int,
        head_dim: int,
        export_per_example: bool = False,
    ):
        super().__init__(heads=heads, head_dim=head_dim)
        self.logits_fn = logits_fn
        self.dot_form_fn = dot_form_fn
        self.fusable = dot_form_fn is not None
        self.export_per_example = export_per_example

    def logits(self, q: jax.Array, k: jax.Array) -> jax.Array:  # noqa: D102
        return self.logits_fn(q, k)

    def dot_form(self, q: jax.Array, k: jax.Array) -> DotForm:  # noqa: D102
        if self.dot_form_fn is None:
            return super().dot_form(q, k)
        return self.dot_form_fn(q, k)
