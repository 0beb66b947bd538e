"""Dropout masks from 16-bit draws: against numpy written out by hand, and their statistics.

The reference splits the same ``jax.random.bits`` words into 16-bit halves in numpy; the
statistics use closed-form binomial bounds (5 standard deviations) on 2²⁰ draws.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from semalign.attention import dropout_weights
from semalign.attention.dropout import inverted_dropout, keep_mask, keep_threshold
from semalign.nn.dropout import Dropout

N = 1 << 20


def _reference_mask(key, keep: float, shape) -> np.ndarray:
    size = int(np.prod(shape))
    words = np.asarray(jax.random.bits(key, ((size + 1) // 2,), jnp.uint32))
    draws = np.empty(2 * words.size, np.uint32)
    draws[0::2] = words & 0xFFFF  # low half first, then high
    draws[1::2] = words >> 16
    return (draws[:size] < round(keep * 65536)).reshape(shape)


def test_threshold_rounds_the_keep_probability_to_16_bits():
    assert keep_threshold(1.0) == 65536
    assert keep_threshold(0.5) == 32768
    assert keep_threshold(0.7) == round(0.7 * 65536) == 45875
    assert keep_threshold(1e-9) == 1  # never a mask that keeps nothing
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="keep probability"):
            keep_threshold(bad)


@pytest.mark.parametrize("shape", [(3, 5), (2, 4, 7), (1,), (64,)])
def test_mask_is_the_hand_split_of_the_same_words(shape):
    key = jax.random.key(3)
    got = jax.jit(keep_mask, static_argnums=(1, 2))(key, 0.7, shape)
    assert got.shape == shape and got.dtype == jnp.bool_
    np.testing.assert_array_equal(np.asarray(got), _reference_mask(key, 0.7, shape))


@pytest.mark.parametrize("keep", [0.9, 0.7, 0.5])
def test_kept_share_and_independence_of_a_word_s_two_draws(keep):
    mask = np.asarray(keep_mask(jax.random.key(0), keep, (N,))).astype(np.float64)
    p = keep_threshold(keep) / 65536
    sd = np.sqrt(p * (1 - p) / N)
    assert abs(mask.mean() - p) < 5 * sd
    # Low and high halves alike, and uncorrelated (same word, neighbouring elements).
    low, high = mask[0::2], mask[1::2]
    for half in (low, high):
        assert abs(half.mean() - p) < 5 * np.sqrt(p * (1 - p) / half.size)
    corr = np.corrcoef(low, high)[0, 1]
    assert abs(corr) < 5 / np.sqrt(low.size)
    # Different keys, different masks.
    other = np.asarray(keep_mask(jax.random.key(1), keep, (N,)))
    assert (other != mask.astype(bool)).mean() > 0.5 * 2 * p * (1 - p)


def test_inverted_dropout_zeroes_or_rescales_and_keeps_the_expectation():
    key = jax.random.key(5)
    x = jax.random.normal(jax.random.key(6), (4, 33, 8))
    out = np.asarray(jax.jit(inverted_dropout, static_argnums=(1,))(x, 0.3, key))
    mask = _reference_mask(key, 0.7, x.shape)
    want = np.where(mask, np.asarray(x) * np.float32(65536 / keep_threshold(0.7)), 0.0)
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=0)
    # E[out] = x: the scale is the inverse of the rounded keep probability.
    ones = np.asarray(inverted_dropout(jnp.ones(N), 0.3, key), np.float64)
    p = keep_threshold(0.7) / 65536
    assert abs(ones.mean() - 1.0) < 5 * np.sqrt((1 - p) / (p * N))
    assert inverted_dropout(x, 0.0, key) is x


def test_a_mask_shape_of_ones_shares_one_draw_along_that_axis():
    x = jnp.ones((3, 50, 4))
    out = np.asarray(inverted_dropout(x, 0.5, jax.random.key(2), shape=(3, 1, 4)))
    assert (out == out[:, :1]).all()
    assert 0 < (out == 0).mean() < 1


def test_attention_weight_dropout_uses_the_same_masks():
    w = jax.nn.softmax(jax.random.normal(jax.random.key(0), (2, 2, 5, 5)))
    key = jax.random.key(9)
    np.testing.assert_array_equal(
        np.asarray(dropout_weights(w, 0.2, key)), np.asarray(inverted_dropout(w, 0.2, key))
    )
    assert dropout_weights(w, 0.2, None) is w


def test_module_switches_with_train_and_eval_and_has_nnx_dropout_s_state():
    ours = Dropout(0.4, rngs=nnx.Rngs(dropout=7))
    theirs = nnx.Dropout(0.4, rngs=nnx.Rngs(dropout=7))
    # The same variables at the same paths: checkpoints of either load into the other.
    a, b = nnx.state(ours), nnx.state(theirs)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(
            np.asarray(
                jax.random.key_data(u) if jnp.issubdtype(u.dtype, jax.dtypes.prng_key) else u
            ),
            np.asarray(
                jax.random.key_data(v) if jnp.issubdtype(v.dtype, jax.dtypes.prng_key) else v
            ),
        )
    x = jnp.ones((16, 16))
    ours.train()
    first, second = np.asarray(ours(x)), np.asarray(ours(x))
    assert (first == 0).any() and not np.array_equal(first, second)  # the stream advances
    ours.eval()
    assert ours(x) is x
    assert (np.asarray(Dropout(1.0, rngs=nnx.Rngs(0))(x, deterministic=False)) == 0).all()
    with pytest.raises(ValueError, match="random streams"):
        Dropout(0.5)(x, deterministic=False)
