"""The product of a dense layer, ``x·W``, with a backward XLA CPU runs as plain matmuls.

Autodiff of ``x·W`` (``x: [..., d_in]`` flattened to ``[R, d_in]``) gives the kernel's
gradient as ``xᵀ·dy`` contracted over the ``R`` rows, the major axis of both operands.
XLA CPU lays that dot out with the left operand contracted on its major axis, a form its
YNNPACK path does not take: the four attention projections' kernel gradients ran on the
slow path (about 6 % of the D64H4 train step, benchmarks/README.md). Here
(``jax.custom_vjp``) the kernel's gradient is ``xᵀ·dy`` with ``xᵀ`` written out first
(``[d_in, R]``, a small copy), so the left operand is contracted on its minor axis and
the product is a plain matmul. The same sums, possibly in another order: float32
rounding apart, the values are autodiff's.

:func:`dense_dot_general` is a drop-in ``dot_general`` for ``nnx.Linear``; any other
contraction, a precision or output-type request, a sharding or a symbolic shape (an
export) takes ``jax.lax.dot_general`` unchanged.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["dense_dot_general"]


def dense_dot_general(
    lhs: jax.Array,
    rhs: jax.Array,
    dimension_numbers: Any,
    precision: Any = None,
    preferred_element_type: Any = None,
    **kwargs: Any,
) -> jax.Array:
    """``jax.lax.dot_general``; ``nnx.Linear``'s ``[..., d_in] x [d_in, d_out]`` case by hand.

    Args:
      lhs: ``[..., d_in]``.
      rhs: ``[d_in, d_out]``.
      dimension_numbers: as ``jax.lax.dot_general``'s.
      precision: as ``jax.lax.dot_general``'s (given: the plain path).
      preferred_element_type: as ``jax.lax.dot_general``'s (given: the plain path).
      **kwargs: passed on (``out_sharding``: the plain path unless None).

    Returns:
      ``[..., d_out]`` for a dense layer; ``jax.lax.dot_general``'s result otherwise.
    """
    linear = (((lhs.ndim - 1,), (0,)), ((), ()))
    plain = (
        _as_tuples(dimension_numbers) != linear
        or rhs.ndim != 2
        or precision is not None
        or preferred_element_type is not None
        or kwargs.get("out_sharding") is not None
        or not all(isinstance(n, int) for x in (lhs, rhs) for n in x.shape)
    )
    if plain:
        extra = (
            {}
            if preferred_element_type is None
            else {"preferred_element_type": preferred_element_type}
        )
        return jax.lax.dot_general(lhs, rhs, dimension_numbers, precision, **extra, **kwargs)
    return _dense(lhs, rhs)


def _as_tuples(dims: Any) -> Any:
    (lc, rc), (lb, rb) = dims
    return ((tuple(lc), tuple(rc)), (tuple(lb), tuple(rb)))


@jax.custom_vjp
def _dense(x: jax.Array, w: jax.Array) -> jax.Array:
    """``[..., d_in] x [d_in, d_out] -> [..., d_out]``."""
    return jnp.matmul(x, w)


def _dense_fwd(x: jax.Array, w: jax.Array):
    return _dense(x, w), (x, w)


def _dense_bwd(res: tuple[jax.Array, jax.Array], g: jax.Array):
    x, w = res
    rows_x = x.reshape(-1, x.shape[-1])  # [R, d_in]
    rows_g = g.reshape(-1, g.shape[-1])  # [R, d_out]
    # xᵀ written out (the barrier keeps XLA from folding the transpose back into the dot's
    # dimension numbers): then a [d_in, R]·[R, d_out] matmul, contracted on the left
    # operand's minor axis, which YNNPACK takes (benchmarks/README.md, session 13).
    dw = jnp.matmul(jax.lax.optimization_barrier(jnp.swapaxes(rows_x, 0, 1)), rows_g)
    return jnp.matmul(g, jnp.swapaxes(w, 0, 1)), dw


_dense.defvjp(_dense_fwd, _dense_bwd)
