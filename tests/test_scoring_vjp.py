"""The hand-written backward passes of ``l1`` (lane sums or key blocks) and ``additive``.

Each is checked against ``jax.grad`` through a plain, unblocked reference (the whole
``[b, q, k, h, d]`` tensor differentiated by autodiff), with key lengths that are and are
not multiples of the block, head widths on both sides of ``l1``'s lane threshold, inside
masked attention, under ``jit``; and its program is checked never to hold a
``[b, q, k, h, d]``-sized intermediate.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.test_util import check_grads

from semalign.attention import attend, build_mask, masked_softmax, weighted_sum
from semalign.attention.scoring import BuildContext, build
from semalign.attention.scoring._additive import additive_scores
from semalign.attention.scoring._distance import l1_logits

TOL = dict(atol=1e-5, rtol=1e-5)

# (batch, q_len, k_len, heads, d, block): k_len a multiple of the block, not one, shorter
# than one block, q_len != k_len; d under and over l1's LANE_MIN_WIDTH (8).
SHAPES = [
    (2, 8, 8, 2, 4, 4),
    (2, 9, 11, 3, 8, 4),
    (1, 5, 3, 2, 4, 8),
    (3, 13, 17, 2, 6, 5),
    (2, 12, 21, 2, 16, 128),
]


def plain_l1(q, k):
    """Independent reference: ``−Σ|q_i − k_j| / √d``, unblocked, autodiff's gradient."""
    return -jnp.sum(jnp.abs(q[:, :, None] - k[:, None]), -1).transpose(0, 3, 1, 2) / math.sqrt(
        q.shape[-1]
    )


def plain_additive(a, c, v):
    """Independent reference: ``vᵀ tanh(a_i + c_j)``, unblocked."""
    return jnp.einsum("bqkha,ha->bhqk", jnp.tanh(a[:, :, None] + c[:, None]), v)


def rand(seed, *shapes):
    r = np.random.default_rng(seed)
    return [jnp.asarray(r.standard_normal(s), jnp.float32) for s in shapes]


def grads(fn, args, g):
    """``d sum(fn(*args) * g) / d args`` under jit."""
    return jax.jit(jax.grad(lambda *a: jnp.sum(fn(*a) * g), argnums=tuple(range(len(args)))))(*args)


@pytest.mark.parametrize("shape", SHAPES)
def test_l1_gradient_equals_autodiff_of_plain_reference(shape):
    b, lq, lk, h, d, block = shape
    q, k, g = rand(0, (b, lq, h, d), (b, lk, h, d), (b, h, lq, lk))
    got = grads(lambda q, k: l1_logits(q, k, block=block), (q, k), g)
    want = grads(plain_l1, (q, k), g)
    for x, y in zip(got, want, strict=True):
        np.testing.assert_allclose(x, y, **TOL)
    # Forward unchanged.
    np.testing.assert_allclose(l1_logits(q, k, block=block), plain_l1(q, k), **TOL)


@pytest.mark.parametrize("shape", SHAPES)
def test_additive_gradient_equals_autodiff_of_plain_reference(shape):
    b, lq, lk, h, d, block = shape
    a, c, v, g = rand(1, (b, lq, h, d), (b, lk, h, d), (h, d), (b, h, lq, lk))
    got = grads(lambda a, c, v: additive_scores(a, c, v, block=block), (a, c, v), g)
    want = grads(plain_additive, (a, c, v), g)
    for x, y in zip(got, want, strict=True):
        np.testing.assert_allclose(x, y, **TOL)
    forward = additive_scores(a, c, v, block=block)
    np.testing.assert_allclose(forward, plain_additive(a, c, v), **TOL)


@pytest.mark.parametrize("d", [4, 8])
def test_l1_ties_follow_autodiff_sign_zero(d):
    """Equal coordinates (q_i = k_j): JAX differentiates |x| at 0 as +1; so does the VJP."""
    r = np.random.default_rng(2)
    q = jnp.asarray(r.integers(-2, 3, (2, 6, 2, d)), jnp.float32)
    k = jnp.asarray(r.integers(-2, 3, (2, 7, 2, d)), jnp.float32)
    assert np.any(np.asarray(q[:, :, None] == k[:, None]))  # there are ties
    (g,) = rand(3, (2, 2, 6, 7))
    got = grads(lambda q, k: l1_logits(q, k, block=3), (q, k), g)
    want = grads(plain_l1, (q, k), g)
    for x, y in zip(got, want, strict=True):
        np.testing.assert_allclose(x, y, **TOL)


def test_numerical_gradients():
    with jax.enable_x64(True):
        r = np.random.default_rng(4)
        q, k = (jnp.asarray(r.standard_normal((1, n, 2, 3))) for n in (4, 7))
        check_grads(lambda q, k: l1_logits(q, k, block=3), (q, k), order=1, modes=("rev",))
        a, c = (jnp.asarray(r.standard_normal((1, n, 2, 3))) for n in (4, 7))
        v = jnp.asarray(r.standard_normal((2, 3)))
        check_grads(
            lambda a, c, v: additive_scores(a, c, v, block=3), (a, c, v), order=1, modes=("rev",)
        )


def plain_attention(name, scorer, q, k, v, mask):
    if name == "l1":
        logits = plain_l1(q, k)
    else:
        a = jnp.einsum("bqhd,hda->bqha", q, scorer.w_q[...])
        c = jnp.einsum("bkhd,hda->bkha", k, scorer.w_k[...])
        logits = plain_additive(a, c, scorer.v[...])
    return weighted_sum(masked_softmax(logits, mask), v)


@pytest.mark.parametrize(("name", "d"), [("l1", 4), ("l1", 8), ("additive", 4)])
@pytest.mark.parametrize("chunk", [0, 2])
def test_masked_attention_gradients_equal_plain_reference(name, d, chunk):
    """Through attend(): padding + causal mask, batch chunks, keys 11 in blocks of 4."""
    b, length, h = 3, 11, 2
    scorer = build(name, BuildContext(heads=h, head_dim=d, rngs=nnx.Rngs(0), key_block=4))
    q, k, v, g = rand(5, *[(b, length, h, d)] * 4)
    valid = np.ones((b, length), bool)
    valid[1, 7:] = False
    valid[2, 3:] = False
    mask = build_mask(length, length, key_valid=jnp.asarray(valid), causal=True)
    graph, state = nnx.split(scorer)

    def blocked(state, q, k, v):
        out, _ = attend(nnx.merge(graph, state), q, k, v, mask, fused=False, chunk=chunk)
        return jnp.sum(out * g)

    def plain(state, q, k, v):
        return jnp.sum(plain_attention(name, nnx.merge(graph, state), q, k, v, mask) * g)

    got = jax.jit(jax.grad(blocked, argnums=(0, 1, 2, 3)))(state, q, k, v)
    want = jax.jit(jax.grad(plain, argnums=(0, 1, 2, 3)))(state, q, k, v)
    for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(x, y, **TOL)


def largest_intermediate(fn, *args) -> int:
    """Element count of the largest value anywhere in ``fn``'s jaxpr (sub-jaxprs too)."""
    biggest = 0

    def walk(jaxpr):
        nonlocal biggest
        for eqn in jaxpr.eqns:
            for var in eqn.outvars:
                biggest = max(biggest, math.prod(getattr(var.aval, "shape", ())))
            for sub in jax.core.jaxprs_in_params(eqn.params):
                walk(sub)

    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return biggest


@pytest.mark.parametrize("name", ["l1", "additive"])
def test_backward_never_holds_a_full_pairwise_tensor(name):
    b, lq, lk, h, d, block = 2, 96, 128, 2, 8, 16
    full = b * lq * lk * h * d
    term = b * lq * block * h * d  # one block's [b, q, block, h, d]
    scores = b * h * lq * lk  # the cotangent the backward is given
    q, k, g = rand(6, (b, lq, h, d), (b, lk, h, d), (b, h, lq, lk))
    if name == "l1":
        args = (q, k)
        fn = lambda q, k: l1_logits(q, k, block=block)  # noqa: E731
    else:
        args = (q, k, rand(7, (h, d))[0])
        fn = lambda a, c, v: additive_scores(a, c, v, block=block)  # noqa: E731
    step = jax.grad(lambda *a: jnp.sum(fn(*a) * g), argnums=tuple(range(len(args))))
    # Nothing larger than one block's term or the scores themselves (l1's lane sums,
    # [b, h, d, L, 8], are smaller still).
    assert largest_intermediate(step, *args) <= max(term, scores)
    assert largest_intermediate(step, *args) <= full // 8
    temp = jax.jit(step).lower(*args).compile().memory_analysis().temp_size_in_bytes
    # A few block-sized buffers at once (additive's backward: tanh, g·tanh and
    # g·(1 − tanh²)), never the whole tensor.
    assert temp < 4 * term * 4, (temp, term * 4)
    assert temp < full * 4 / 2, (temp, full * 4)


def test_l1_lane_sums_and_block_walk_agree(monkeypatch):
    """Both l1 backward paths on the same inputs: the lane sums, then the block walk."""
    from semalign.attention.scoring import _distance

    q, k, g = rand(8, (2, 19, 2, 16), (2, 23, 2, 16), (2, 2, 19, 23))
    lanes = grads(lambda q, k: l1_logits(q, k, block=128), (q, k), g)
    monkeypatch.setattr(_distance, "LANE_ELEMENTS", 0)
    walk = grads(lambda q, k: l1_logits(q, k, block=128), (q, k), g)
    want = grads(plain_l1, (q, k), g)
    for x, y, z in zip(lanes, walk, want, strict=True):
        np.testing.assert_allclose(x, z, **TOL)
        np.testing.assert_allclose(y, z, **TOL)
