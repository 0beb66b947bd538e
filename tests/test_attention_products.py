"""``query_key_dots`` and ``weighted_sum``: their hand-written backward against autodiff."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from semalign.attention import query_key_dots, weighted_sum

TOL = dict(atol=1e-5, rtol=1e-5)
SHAPES = [(2, 7, 11, 3, 4), (1, 16, 16, 2, 8), (3, 5, 1, 1, 2)]  # (b, q, k, h, d)


def rand(seed, *shapes):
    r = np.random.default_rng(seed)
    return [jnp.asarray(r.standard_normal(s), jnp.float32) for s in shapes]


def plain_dots(q, k):
    """Independent reference: the einsum, differentiated by autodiff."""
    return jnp.einsum("bqhd,bkhd->bhqk", q, k)


def plain_weighted_sum(w, v):
    return jnp.einsum("bhqk,bkhd->bqhd", w, v)


def grads(fn, args, g):
    return jax.jit(jax.grad(lambda *a: jnp.sum(fn(*a) * g), argnums=tuple(range(len(args)))))(*args)


@pytest.mark.parametrize("shape", SHAPES)
def test_query_key_dots_and_gradients_equal_autodiff_of_einsum(shape):
    b, lq, lk, h, d = shape
    q, k, g = rand(0, (b, lq, h, d), (b, lk, h, d), (b, h, lq, lk))
    np.testing.assert_allclose(jax.jit(query_key_dots)(q, k), plain_dots(q, k), **TOL)
    got_want = zip(grads(query_key_dots, (q, k), g), grads(plain_dots, (q, k), g), strict=True)
    for got, want in got_want:
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, **TOL)


@pytest.mark.parametrize("shape", SHAPES)
def test_weighted_sum_and_gradients_equal_autodiff_of_einsum(shape):
    b, lq, lk, h, d = shape
    w, v, g = rand(1, (b, h, lq, lk), (b, lk, h, d), (b, lq, h, d))
    np.testing.assert_allclose(jax.jit(weighted_sum)(w, v), plain_weighted_sum(w, v), **TOL)
    got, want = grads(weighted_sum, (w, v), g), grads(plain_weighted_sum, (w, v), g)
    got_want = zip(got, want, strict=True)
    for got, want in got_want:
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, **TOL)


def test_bfloat16_values_follow_the_weights_dtype():
    w, v = rand(2, (1, 2, 3, 4), (1, 4, 2, 5))
    out = weighted_sum(w.astype(jnp.bfloat16), v)
    assert out.dtype == jnp.bfloat16
    np.testing.assert_allclose(
        np.asarray(out, np.float32), plain_weighted_sum(w, v), atol=0.05, rtol=0.05
    )


def test_symbolic_lengths_take_the_plain_einsum():
    """An export traces with a symbolic length: no custom_vjp in the graph."""
    (n,) = jax.export.symbolic_shape("n")
    q = jax.ShapeDtypeStruct((1, n, 2, 4), jnp.float32)
    w = jax.ShapeDtypeStruct((1, 2, n, n), jnp.float32)
    for fn, args in ((query_key_dots, (q, q)), (weighted_sum, (w, q))):
        text = str(jax.make_jaxpr(fn)(*args))
        assert "custom_vjp" not in text and "dot_general" in text
    concrete = jax.make_jaxpr(query_key_dots)(*rand(3, (1, 3, 2, 4), (1, 3, 2, 4)))
    assert "custom_vjp" in str(concrete)
