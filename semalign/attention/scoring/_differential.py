"""Differential scoring: the change of query–key affinity between consecutive tokens."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from semalign.attention import DotForm, query_key_dots
from semalign.attention.scoring._base import FunctionScoring
from semalign.attention.scoring._registry import ScoringSpec, register


def shift_right(x: jax.Array) -> jax.Array:
    """``x_{i−1}`` along the sequence axis with ``x_{−1} = 0``: ``[b, l, h, d]``.

    Written as pad + slice, not concatenate: a concatenate on a symbolic sequence axis
    exports to ONNX but fails in onnxruntime.
    """
    return jnp.pad(x, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, : x.shape[1]]


def differential_logits(q: jax.Array, k: jax.Array) -> jax.Array:
    """``s(i, j) = (q_i·k_j − q_{i−1}·k_{j−1}) / √d`` -> ``[b, h, q, k]``.

    The product rule: ``Δ(q·k) = Δq·k + q·Δk`` summed over consecutive states.
    """
    cur = query_key_dots(q, k)
    prev = query_key_dots(shift_right(q), shift_right(k))
    return (cur - prev) / math.sqrt(q.shape[-1])


def differential_dot_form(q: jax.Array, k: jax.Array) -> DotForm:
    """``[q_i; q_{i−1}] · [k_j; −k_{j−1}] / √d``: one matmul of width ``2d``."""
    q2 = jnp.concatenate([q, shift_right(q)], axis=-1)
    k2 = jnp.concatenate([k, -shift_right(k)], axis=-1)
    return DotForm(q=q2, k=k2, scale=1.0 / math.sqrt(q.shape[-1]))


register(
    ScoringSpec(
        name="differential",
        formula="(q_i·k_j − q_{i−1}·k_{j−1}) / √d",
        fused=True,
        parametric=False,
        factory=lambda c: FunctionScoring(
            differential_logits, differential_dot_form, heads=c.heads, head_dim=c.head_dim
        ),
        note="product rule Δq·k + q·Δk; a dot product of width 2d",
    )
)
