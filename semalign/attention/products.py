"""Attention's two batched products, ``q·kᵀ`` and ``weights·v``, with their own backward.

Autodiff of the two einsums leaves XLA CPU products that contract the large ``[q, k]``
operand on its major axis (``dk = dSᵀ·q``, ``dv = Wᵀ·dO``), which it runs on a slow path:
one of them was the largest single operation of the D64H4 train step (0.87 ms per
micro-batch against 0.38 ms for the forward ``q·kᵀ`` of the same size). The backward here
(``jax.custom_vjp``) writes each as ``(xᵀ·S)ᵀ`` with the small ``[L, d]`` operand
transposed instead, so every product is a plain batched matmul. Same sums, same numbers.
Shapes that are not concrete (an export with a symbolic length) take the plain einsum.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["query_key_dots", "weighted_sum"]


def _concrete(*xs: jax.Array) -> bool:
    return all(isinstance(n, int) for x in xs for n in x.shape)


def query_key_dots(q: jax.Array, k: jax.Array) -> jax.Array:
    """``Σ_d q_i·k_j`` per head: ``[b, q, h, d], [b, k, h, d] -> [b, h, q, k]``."""
    if not _concrete(q, k):
        return jnp.einsum("bqhd,bkhd->bhqk", q, k)
    return _qk(q.transpose(0, 2, 1, 3), k.transpose(0, 2, 1, 3))


def weighted_sum(weights: jax.Array, v: jax.Array) -> jax.Array:
    """``Σ_j w_ij v_j`` per head: ``[b, h, q, k] x [b, k, h, d] -> [b, q, h, d]``.

    ``v`` goes to ``[b, h, k, d]`` first, so the product is a plain batched matmul: XLA
    CPU laid the einsum out ``[b, h, d, q]`` with both operands contracted on their minor
    axes (benchmarks/README.md).
    """
    v = v.astype(weights.dtype)
    if not _concrete(weights, v):
        return jnp.einsum("bhqk,bkhd->bqhd", weights, v)
    return _wv(weights, v.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)


@jax.custom_vjp
def _qk(q: jax.Array, k: jax.Array) -> jax.Array:
    """``[b, h, q, d], [b, h, k, d] -> [b, h, q, k]``."""
    return jnp.matmul(q, jnp.swapaxes(k, -1, -2))


def _qk_fwd(q: jax.Array, k: jax.Array):
    return _qk(q, k), (q, k)


def _qk_bwd(res: tuple[jax.Array, jax.Array], g: jax.Array):
    q, k = res
    # dk = gᵀ·q written as (qᵀ·g)ᵀ: the [q, k] cotangent stays the right-hand operand.
    return jnp.matmul(g, k), jnp.swapaxes(jnp.matmul(jnp.swapaxes(q, -1, -2), g), -1, -2)


_qk.defvjp(_qk_fwd, _qk_bwd)


@jax.custom_vjp
def _wv(w: jax.Array, v: jax.Array) -> jax.Array:
    """``[b, h, q, k], [b, h, k, d] -> [b, h, q, d]``."""
    return jnp.matmul(w, v)


def _wv_fwd(w: jax.Array, v: jax.Array):
    return _wv(w, v), (w, v)


def _wv_bwd(res: tuple[jax.Array, jax.Array], g: jax.Array):
    w, v = res
    # dv = wᵀ·g written as (gᵀ·w)ᵀ, as in _qk_bwd.
    dv = jnp.swapaxes(jnp.matmul(jnp.swapaxes(g, -1, -2), w), -1, -2)
    return jnp.matmul(g, jnp.swapaxes(v, -1, -2)), dv


_wv.defvjp(_wv_fwd, _wv_bwd)
