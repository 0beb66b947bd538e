"""Masks and the masked softmax, against closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from semalign.attention import (
    build_mask,
    causal_mask,
    check_window,
    local_mask,
    masked_softmax,
    padding_mask,
)


def test_causal_mask_is_lower_triangular():
    np.testing.assert_array_equal(causal_mask(4, 4)[0, 0], np.tril(np.ones((4, 4), bool)))


@pytest.mark.parametrize("left,right", [(0, 0), (1, 2), (None, 1), (2, None), (None, None)])
def test_local_mask_closed_form(left, right):
    m = np.asarray(local_mask(6, 7, left, right))[0, 0]
    for i in range(6):
        for j in range(7):
            ok = (left is None or j >= i - left) and (right is None or j <= i + right)
            assert m[i, j] == ok


def test_masks_combine_and_broadcast():
    valid = jnp.array([[True, True, False], [True, False, False]])
    m = build_mask(3, 3, key_valid=valid, causal=True, window=(1, 0))
    assert m.shape == (2, 1, 3, 3)
    ref = (
        np.asarray(padding_mask(valid))
        & np.tril(np.ones((3, 3), bool))
        & ~np.tril(np.ones((3, 3), bool), -2)
    )
    np.testing.assert_array_equal(m, ref)
    assert build_mask(3, 3) is None


@pytest.mark.parametrize("window", [(-1, 0), (0, -2), (1,), (1.5, 0)])
def test_bad_window_named(window):
    with pytest.raises(ValueError, match=r"window"):
        check_window(window)
    if len(window) == 2 and all(isinstance(w, int) for w in window):
        with pytest.raises(ValueError, match=str(window[0])):
            local_mask(3, 3, *window)


def test_masked_softmax_matches_closed_form():
    x = jnp.array([[0.0, 1.0, 2.0, 3.0]])
    m = jnp.array([[True, False, True, False]])
    w = jax.jit(masked_softmax)(x, m)
    e = np.exp([0.0, 2.0])
    np.testing.assert_allclose(w, [[e[0] / e.sum(), 0, e[1] / e.sum(), 0]], atol=1e-7)


def test_masked_softmax_fully_masked_row_zero_with_finite_grad():
    x = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    m = jnp.array([[False, False], [True, True]])
    w = masked_softmax(x, m)
    np.testing.assert_array_equal(w[0], 0.0)
    g = jax.grad(lambda x: jnp.sum(masked_softmax(x, m) * jnp.array([1.0, 2.0])))(x)
    assert np.isfinite(np.asarray(g)).all()
    np.testing.assert_array_equal(g[0], 0.0)


def test_masked_softmax_stable_for_large_logits():
    x = jnp.array([[1000.0, 999.0, -1000.0]])
    w = masked_softmax(x, jnp.array([[True, True, True]]))
    np.testing.assert_allclose(
        w, [[1 / (1 + np.exp(-1)), np.exp(-1) / (1 + np.exp(-1)), 0]], atol=1e-6
    )


def test_explicit_dot_matches_jax_reference():
    """Our explicit dot path against jax.nn.dot_product_attention itself."""
    from flax import nnx

    from semalign.attention import attend, scoring

    r = np.random.default_rng(0)
    q, k, v = (r.standard_normal((2, 6, 2, 8)).astype(np.float32) for _ in range(3))
    valid = np.ones((2, 6), bool)
    valid[0, 4:] = False
    mask = build_mask(6, 6, key_valid=jnp.asarray(valid), causal=True)
    s = scoring.build("dot", scoring.BuildContext(heads=2, head_dim=8, rngs=nnx.Rngs(0)))
    ours, _ = jax.jit(lambda q, k, v: attend(s, q, k, v, mask, fused=False))(q, k, v)
    ref = jax.nn.dot_product_attention(q, k, v, mask=mask)
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)
