"""``dense_dot_general``: a dense layer's product with a hand-written backward.

Values and gradients against numpy written out by hand (float64) and against autodiff of
``jax.lax.dot_general``, under ``jit``; every case it does not serve takes the plain
``dot_general`` (same jaxpr), and an ``nnx.Linear`` built with it keeps its state tree.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from semalign.nn.dense_product import dense_dot_general

LINEAR = lambda x: (((x.ndim - 1,), (0,)), ((), ()))  # noqa: E731


def _data(shape, d_out, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape).astype(np.float32)
    w = rng.normal(size=(shape[-1], d_out)).astype(np.float32)
    c = rng.normal(size=(*shape[:-1], d_out)).astype(np.float32)
    return x, w, c


@pytest.mark.parametrize("shape,d_out", [((2, 250, 64), 64), ((3, 7, 5), 11), ((4, 16), 2)])
def test_values_and_gradients_match_numpy_by_hand(shape, d_out):
    x, w, c = _data(shape, d_out)

    def loss(x, w):
        return jnp.sum(dense_dot_general(x, w, LINEAR(x)) * c)

    y = jax.jit(lambda x, w: dense_dot_general(x, w, LINEAR(x)))(x, w)
    dx, dw = jax.jit(jax.grad(loss, (0, 1)))(x, w)
    x64, w64, c64 = (a.astype(np.float64) for a in (x, w, c))
    rows = x64.reshape(-1, shape[-1])
    np.testing.assert_allclose(y, (rows @ w64).reshape(*shape[:-1], d_out), rtol=1e-5, atol=1e-4)
    # loss = Σ c ⊙ (x·W): dx = c·Wᵀ, dW = Σ_rows xᵀ c
    np.testing.assert_allclose(dx, c64 @ w64.T, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(dw, rows.T @ c64.reshape(-1, d_out), rtol=1e-5, atol=1e-4)


def test_gradients_equal_autodiff_of_dot_general_under_jit():
    x, w, c = _data((2, 250, 64), 64, seed=1)

    def loss(dot):
        def f(x, w):
            y = x
            for i in range(3):  # a chain, as a block's projections
                y = jnp.tanh(dot(y, w * (1.0 + i), LINEAR(y)))
            return jnp.sum(y * c)

        return jax.jit(jax.grad(f, (0, 1)))

    ours, theirs = loss(dense_dot_general)(x, w), loss(jax.lax.dot_general)(x, w)
    for a, b in zip(ours, theirs, strict=True):
        # float32 sums of 500 rows, possibly in another order: relative to the largest entry
        assert float(jnp.max(jnp.abs(a - b))) <= 1e-5 * float(jnp.max(jnp.abs(b)))


def _primitives(fn, *args):
    return {e.primitive.name for e in jax.make_jaxpr(fn)(*args).jaxpr.eqns}


def test_only_a_dense_layers_contraction_takes_the_hand_written_backward():
    x, w, _ = _data((2, 5, 4), 4)
    assert "custom_vjp_call" in _primitives(lambda x, w: dense_dot_general(x, w, LINEAR(x)), x, w)
    other = [
        ((x, w.T), (((2,), (1,)), ((), ())), {}),  # contracts the kernel's other axis
        ((x, w), LINEAR(x), {"precision": jax.lax.Precision.HIGHEST}),
        ((x, w), LINEAR(x), {"preferred_element_type": jnp.float32}),
    ]
    for (a, b), dims, kw in other:
        got = _primitives(lambda a, b, dims=dims, kw=kw: dense_dot_general(a, b, dims, **kw), a, b)
        assert "custom_vjp_call" not in got and "dot_general" in got
        np.testing.assert_array_equal(
            dense_dot_general(a, b, dims, **kw), jax.lax.dot_general(a, b, dims, **kw)
        )


def test_a_symbolic_shape_takes_the_plain_product():
    # An export traces a symbolic batch; the plain dot_general exports as before.
    (b,) = jax.export.symbolic_shape("b")
    spec = jax.ShapeDtypeStruct((b, 5, 4), jnp.float32)
    w = jax.ShapeDtypeStruct((4, 3), jnp.float32)
    got = _primitives(lambda x, w: dense_dot_general(x, w, LINEAR(x)), spec, w)
    assert "custom_vjp_call" not in got and "dot_general" in got


def test_a_linear_built_with_it_has_nnx_linears_state_and_output():
    x, _, _ = _data((3, 6, 8), 5)
    ours = nnx.Linear(8, 5, dot_general=dense_dot_general, rngs=nnx.Rngs(0))
    theirs = nnx.Linear(8, 5, rngs=nnx.Rngs(0))
    a, b = nnx.state(ours, nnx.Param), nnx.state(theirs, nnx.Param)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for p, q in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(p, q)
    np.testing.assert_allclose(ours(x), theirs(x), rtol=1e-6, atol=1e-6)
