"""Every registered scoring through one contract, against numpy references."""

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference
from flax import nnx

from semalign.attention import MASK_VALUE, attend, build_mask, masked_softmax, scoring
from semalign.attention.scoring._diff_transformer import lambda_init, rms_norm

ALL = scoring.available()
FUSED = [n for n in ALL if scoring.get(n).fused]
B, LQ, LK, H, D = 2, 5, 7, 3, 8


def make(name, *, heads=H, head_dim=D, key_block=3, layer_index=0, seed=0):
    ctx = scoring.BuildContext(
        heads=heads,
        head_dim=head_dim,
        rngs=nnx.Rngs(seed),
        key_block=key_block,
        layer_index=layer_index,
    )
    return scoring.build(name, ctx)


def params_of(name, s, depth=1) -> dict:
    """Pull the learned values out to feed the independent reference (``depth``: 1-based)."""
    get = {
        "cosine": lambda: {"tau": np.asarray(s.tau)},
        "general": lambda: {"w": np.asarray(s.w[...])},
        "additive": lambda: {k: np.asarray(getattr(s, k)[...]) for k in ("w_q", "w_k", "v")},
        # The raw parameters and the depth: the reference builds λ and λ_init itself.
        "diff-transformer": lambda: {
            **{
                n: np.asarray(getattr(s, n)[...], np.float64)
                for n in ("lambda_q1", "lambda_k1", "lambda_q2", "lambda_k2", "norm_gain")
            },
            "depth": depth,
        },
    }
    return get.get(name, dict)()


def inputs(seed=0, lq=LQ, lk=LK):
    r = np.random.default_rng(seed)
    q = r.standard_normal((B, lq, H, D)).astype(np.float32)
    k = r.standard_normal((B, lk, H, D)).astype(np.float32)
    v = r.standard_normal((B, lk, H, D)).astype(np.float32)
    valid = np.ones((B, lk), bool)
    valid[1, 4:] = False  # padding in the second example
    return q, k, v, valid


MASKS = {
    "none": dict(),
    "padding": dict(pad=True),
    "causal": dict(pad=True, causal=True),
    "local": dict(pad=True, window=(1, 2)),
}


def mask_for(kind, valid, lq, lk):
    o = MASKS[kind]
    return build_mask(
        lq,
        lk,
        key_valid=jnp.asarray(valid) if o.get("pad") else None,
        causal=o.get("causal", False),
        window=o.get("window"),
    )


def test_registry_lists_all_eight():
    assert set(ALL) == {
        "dot",
        "cosine",
        "l2",
        "l1",
        "differential",
        "diff-transformer",
        "additive",
        "general",
    }


def test_unknown_scoring_names_value_and_suggests():
    with pytest.raises(ValueError, match=r"unknown scoring 'cosin'.*Did you mean 'cosine'"):
        scoring.get("cosin")


def test_duplicate_registration_refused():
    with pytest.raises(ValueError, match="already registered"):
        scoring.register(scoring.get("dot"))


@pytest.mark.parametrize("mask_kind", list(MASKS))
@pytest.mark.parametrize("name", ALL)
def test_matches_numpy_reference_under_jit(name, mask_kind):
    s = make(name)
    q, k, v, valid = inputs()
    mask = mask_for(mask_kind, valid, LQ, LK)

    @nnx.jit
    def run(s, q, k, v):
        return attend(s, q, k, v, mask, fused=False, capture=True)

    out, cap = run(s, q, k, v)
    m = np.ones((1, 1, LQ, LK), bool) if mask is None else np.asarray(mask)
    ref_logits, ref_w, ref_out = reference.attention(name, q, k, v, m, params_of(name, s))
    np.testing.assert_allclose(cap.logits, ref_logits, atol=1e-5, rtol=0)
    np.testing.assert_allclose(cap.weights, ref_w, atol=1e-5, rtol=0)
    np.testing.assert_allclose(out, ref_out, atol=1e-5, rtol=0)
    # The contract: calling the scoring gives the logits.
    np.testing.assert_allclose(jax.jit(lambda q, k: s(q, k))(q, k), ref_logits, atol=1e-5, rtol=0)


@pytest.mark.parametrize("mask_kind", list(MASKS))
@pytest.mark.parametrize("name", FUSED)
def test_fused_equals_explicit_forward_and_grad(name, mask_kind):
    s = make(name)
    q, k, v, valid = inputs(1)
    mask = mask_for(mask_kind, valid, LQ, LK)
    probe = np.random.default_rng(5).standard_normal((B, LQ, H, D)).astype(np.float32)

    def loss(q, k, v, fused):
        out, _ = attend(s, q, k, v, mask, fused=fused)
        return jnp.sum(out * probe), out

    def grads(fused):
        return jax.jit(jax.grad(loss, argnums=(0, 1, 2), has_aux=True), static_argnums=3)(
            q, k, v, fused
        )

    (g_f, out_f), (g_e, out_e) = grads(True), grads(False)
    np.testing.assert_allclose(out_f, out_e, atol=1e-5, rtol=0)
    for a, b in zip(g_f, g_e, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", FUSED)
def test_fused_grad_of_parameters_matches(name):
    s = make(name)
    q, k, v, valid = inputs(2)
    mask = mask_for("padding", valid, LQ, LK)

    def loss(s, fused):
        out, _ = attend(s, q, k, v, mask, fused=fused)
        return jnp.sum(jnp.sin(out))

    g_f = nnx.grad(lambda s: loss(s, True))(s)
    g_e = nnx.grad(lambda s: loss(s, False))(s)
    for a, b in zip(jax.tree.leaves(g_f), jax.tree.leaves(g_e), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ALL)
def test_fully_masked_rows_zero_and_finite_grads(name):
    s = make(name)
    q, k, v, _ = inputs(3)
    valid = np.zeros((B, LK), bool)
    valid[0, :3] = True  # example 1 has no valid key at all
    mask = build_mask(LQ, LK, key_valid=jnp.asarray(valid), window=(0, 0))  # rows 3.. of ex 0 empty
    for fused in (False, True):

        def loss(q, k, v, fused=fused):
            out, _ = attend(s, q, k, v, mask, fused=fused)
            return jnp.sum(out**2), out

        g, out = jax.jit(jax.grad(loss, argnums=(0, 1, 2), has_aux=True))(q, k, v)
        assert np.isfinite(np.asarray(out)).all()
        assert all(np.isfinite(np.asarray(x)).all() for x in g)
        if name != "diff-transformer":  # its RMSNorm of a zero row is zero too, checked below
            np.testing.assert_array_equal(np.asarray(out)[1], 0.0)
            np.testing.assert_array_equal(np.asarray(out)[0, 3:], 0.0)
        else:
            np.testing.assert_allclose(np.asarray(out)[1], 0.0, atol=1e-6)


@pytest.mark.parametrize("name", ALL)
def test_length_one_and_batch_one(name):
    s = make(name)
    r = np.random.default_rng(0)
    q = r.standard_normal((1, 1, H, D)).astype(np.float32)
    k = r.standard_normal((1, 1, H, D)).astype(np.float32)
    v = r.standard_normal((1, 1, H, D)).astype(np.float32)
    out, cap = jax.jit(lambda q, k, v: attend(s, q, k, v, None, fused=False, capture=True))(q, k, v)
    assert out.shape == (1, 1, H, D)
    if name != "diff-transformer":
        np.testing.assert_allclose(cap.weights, 1.0, atol=1e-6)  # one key takes all the weight
        np.testing.assert_allclose(out, v, atol=1e-5)
    else:
        # Both softmaxes are 1 over one key: weight 1 − λ, then RMSNorm × (1 − λ_init).
        p = params_of(name, s)
        lam = reference.diff_lambda(p)
        np.testing.assert_allclose(cap.weights, 1.0 - lam, atol=1e-6)
        head = (1.0 - lam) * v.astype(np.float64)
        rms = np.sqrt(np.mean(head**2, axis=-1, keepdims=True) + 1e-5)
        want = head / rms * p["norm_gain"] * (1 - reference.diff_lambda_init(1))
        np.testing.assert_allclose(out, want, atol=1e-5, rtol=0)


def test_blocked_l1_equals_naive_and_bounds_memory():
    from semalign.attention.scoring._distance import l1_logits, l1_naive

    r = np.random.default_rng(0)
    q = r.standard_normal((2, 37, 2, 16)).astype(np.float32)
    k = r.standard_normal((2, 53, 2, 16)).astype(np.float32)
    for block in (1, 8, 16, 53, 64):
        np.testing.assert_allclose(
            jax.jit(lambda q, k, block=block: l1_logits(q, k, block=block))(q, k),
            l1_naive(q, k),
            atol=1e-5,
            rtol=0,
        )
    # Memory: the naive [b, q, k, h, d] intermediate must not appear in the blocked program.
    L, d = 512, 64
    qs = jax.ShapeDtypeStruct((1, L, 1, d), jnp.float32)

    def temp_bytes(fn):
        return (
            jax.jit(jax.grad(lambda q, k: jnp.sum(fn(q, k)), argnums=(0, 1)))
            .lower(qs, qs)
            .compile()
            .memory_analysis()
            .temp_size_in_bytes
        )

    blocked = temp_bytes(lambda q, k: l1_logits(q, k, block=32))
    naive_volume = L * L * d * 4
    assert blocked < naive_volume / 4, (blocked, naive_volume)


def test_differential_identity():
    """[q_i; q_{i-1}]·[k_j; -k_{j-1}] == q_i·k_j - q_{i-1}·k_{j-1} == Δq·k_j + q_{i-1}·Δk."""
    from semalign.attention.scoring._differential import (
        differential_dot_form,
        differential_logits,
        shift_right,
    )

    q, k, _, _ = inputs(4)
    form = differential_dot_form(q, k)
    via_dot = jnp.einsum("bqhd,bkhd->bhqk", form.q, form.k) * form.scale
    np.testing.assert_allclose(via_dot, differential_logits(q, k), atol=1e-5, rtol=0)
    qp, kp = shift_right(q), shift_right(k)
    product_rule = (
        jnp.einsum("bqhd,bkhd->bhqk", q - qp, k) + jnp.einsum("bqhd,bkhd->bhqk", qp, k - kp)
    ) / math.sqrt(D)
    np.testing.assert_allclose(product_rule, differential_logits(q, k), atol=1e-5, rtol=0)
    # First position: q_{-1} = 0, so row 0 is plain scaled dot.
    np.testing.assert_allclose(
        differential_logits(q, k)[:, :, 0],
        jnp.einsum("bhd,bkhd->bhk", q[:, 0], k) / math.sqrt(D),
        atol=1e-5,
        rtol=0,
    )


@pytest.mark.parametrize("depth", [1, 2, 3, 6, 12])
def test_diff_transformer_lambda_init_by_depth(depth):
    s = make("diff-transformer", layer_index=depth - 1)
    expected = 0.8 - 0.6 * math.exp(-0.3 * (depth - 1))
    assert s.lambda_init == pytest.approx(expected, abs=1e-12)
    assert lambda_init(depth) == pytest.approx(expected, abs=1e-12)
    lq1, lk1, lq2, lk2 = (
        np.asarray(getattr(s, n)[...], np.float64)
        for n in ("lambda_q1", "lambda_k1", "lambda_q2", "lambda_k2")
    )
    lam = math.exp(lq1 @ lk1) - math.exp(lq2 @ lk2) + expected
    assert float(s.lam) == pytest.approx(lam, abs=1e-6)
    # The whole attention at this depth against the float64 reference: (1 − λ_init) scales.
    q, k, v, valid = inputs(depth)
    mask = mask_for("padding", valid, LQ, LK)
    for fused in (False, True):
        out, _ = attend(s, q, k, v, mask, fused=fused)
        _, _, want = reference.attention(
            "diff-transformer", q, k, v, np.asarray(mask), params_of("diff-transformer", s, depth)
        )
        np.testing.assert_allclose(out, want, atol=1e-5, rtol=0)


def test_rms_norm_formula():
    x = np.random.default_rng(0).standard_normal((3, 4, 8)).astype(np.float32)
    g = np.linspace(0.5, 2.0, 8).astype(np.float32)
    ref = x / np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=-1, keepdims=True) + 1e-5) * g
    np.testing.assert_allclose(jax.jit(rms_norm)(x, g), ref, atol=1e-5, rtol=0)


def test_diff_transformer_needs_even_head_dim():
    with pytest.raises(ValueError, match="even head dimension, got 7"):
        make("diff-transformer", head_dim=7)


def test_cosine_tau_is_clamped():
    s = make("cosine")
    s.log_tau[...] = jnp.full((H,), 10.0)
    np.testing.assert_allclose(s.tau, 100.0, rtol=1e-6)
    s.log_tau[...] = jnp.full((H,), 0.5)
    np.testing.assert_allclose(s.tau, math.exp(0.5), rtol=1e-6)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("chunk", [1, 2, 3])  # B = 2: two chunks, one, one padded
def test_chunked_path_equals_batched_forward_capture_and_grad(name, chunk):
    s = make(name)
    q, k, v, valid = inputs(6)
    mask = mask_for("local", valid, LQ, LK)

    def loss(q, k, v, c):
        out, _ = attend(s, q, k, v, mask, fused=False, chunk=c)
        return jnp.sum(jnp.sin(out)), out

    for argnums in ((0, 1, 2),):
        (g1, o1), (g2, o2) = (
            jax.jit(jax.grad(loss, argnums=argnums, has_aux=True), static_argnums=3)(q, k, v, pe)
            for pe in (chunk, 0)
        )
        np.testing.assert_allclose(o1, o2, atol=1e-5, rtol=0)
        for a, b in zip(g1, g2, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    _, c1 = attend(s, q, k, v, mask, fused=False, chunk=chunk, capture=True)
    _, c2 = attend(s, q, k, v, mask, fused=False, chunk=0, capture=True)
    np.testing.assert_allclose(c1.weights, c2.weights, atol=1e-6, rtol=0)
    np.testing.assert_allclose(c1.logits, c2.logits, atol=1e-5, rtol=0)
    g_params = [
        nnx.grad(
            lambda s, pe=pe: jnp.sum(jnp.sin(attend(s, q, k, v, mask, fused=False, chunk=pe)[0]))
        )(s)
        for pe in (chunk, 0)
    ]
    for a, b in zip(*(jax.tree.leaves(g) for g in g_params), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


def _primitives(jaxpr) -> set[str]:
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for sub in jax.core.jaxprs_in_params(eqn.params):
            names |= _primitives(sub)
    return names


@pytest.mark.parametrize("chunk, mapped", [(1, True), (2, False), (3, False)])
def test_one_chunk_stores_its_scores_several_recompute_them(chunk, mapped):
    """B = 2 rows: chunks of 1 run under lax.map + checkpoint; a single chunk runs once."""
    s = make("dot")
    q, k, v, valid = inputs(6)
    mask = mask_for("local", valid, LQ, LK)
    grad = jax.grad(lambda q: jnp.sum(attend(s, q, k, v, mask, fused=False, chunk=chunk)[0]))
    names = _primitives(jax.make_jaxpr(grad)(q).jaxpr)
    # jax.checkpoint's backward is ``remat2`` in a jaxpr (``checkpoint`` before autodiff).
    assert bool(names & {"checkpoint", "remat2"}) is mapped, sorted(names)
    assert bool(names & {"scan", "while"}) is mapped, sorted(names)


def test_l1_export_form_equals_reference():
    """The Min identity the exported graph uses gives the same scores."""
    from semalign.attention.scoring._distance import l1_min_form

    q, k, v, valid = inputs(6)
    want = reference.attention("l1", q, k, v, np.ones((1, 1, LQ, LK), bool), {})[0]
    np.testing.assert_allclose(jax.jit(l1_min_form)(q, k), want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["none", "padding", "causal", "local"])
def test_export_attention_one_example_at_a_time_equals_reference(kind):
    """The exported graph's attention, one example at a time, gives the reference output."""
    from semalign.workflows.export import graph

    s = make("l1")
    q, k, v, valid = inputs(8)
    mask = mask_for(kind, valid, LQ, LK)
    if mask is None:
        mask, bias = np.ones((1, 1, LQ, LK), bool), jnp.zeros((1, 1, 1, LK))
    else:
        bias = jnp.where(mask, 0.0, MASK_VALUE)
    got = jax.jit(partial(graph.softmax_attention, s))(q, k, v, bias)
    _, w, _ = reference.attention("l1", q, k, v, np.asarray(mask), params_of("l1", s))
    np.testing.assert_allclose(got, np.einsum("bhqk,bkhd->bqhd", w, v), atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["none", "padding", "causal", "local"])
def test_export_stacked_softmaxes_equal_reference(kind):
    """diff-transformer's exported form: its two softmaxes as one over stacked heads, the
    projections folded into the loop over examples, gives the reference on x's q, k, v."""
    from semalign.config import AttentionConfig
    from semalign.nn.layers import MultiHeadAttention
    from semalign.workflows.export import graph

    a = MultiHeadAttention(
        H * D, AttentionConfig(scoring="diff-transformer", heads=H), rngs=nnx.Rngs(3)
    )
    r = np.random.default_rng(8)
    x = r.standard_normal((B, LK, H * D)).astype(np.float32)
    valid = np.ones((B, LK), bool)
    valid[1, 4:] = False
    mask = mask_for(kind, valid, LK, LK)
    bias = None if mask is None else jnp.where(mask, 0.0, MASK_VALUE)
    mask = np.ones((1, 1, LK, LK), bool) if mask is None else np.asarray(mask)

    def project(p):  # written out: x W + b, split into heads
        w, b = np.asarray(p.kernel[...]), np.asarray(p.bias[...])
        return (x @ w + b).reshape(B, LK, H, D)

    q, k, v = project(a.query), project(a.key), project(a.value)
    scorer = a.scorers[0]
    got = jax.jit(lambda x, bias: graph.stacked_softmaxes(a, scorer, x, bias, 0, H))(x, bias)
    _, w, _ = reference.attention(
        "diff-transformer", q, k, v, mask, params_of("diff-transformer", scorer)
    )
    want = np.einsum("bhqk,bkhd->bqhd", w, v)
    # Only rows with a key to attend to: a padded query whose local window holds only
    # padding has no defined output (the pooling drops it).
    live = np.broadcast_to(mask.any(-1)[:, 0], (B, LK))
    np.testing.assert_allclose(np.asarray(got)[live], want[live], atol=1e-5, rtol=0)
    assert live.sum() >= B * LK - 2


@pytest.mark.parametrize("kind", ["none", "padding", "causal"])
@pytest.mark.parametrize("name", ["l1", "additive", "dot"])
def test_export_split_logits_one_example_at_a_time_equal_reference(name, kind):
    """The exported per-example attention on a scoring's split logits (additive: the
    projections outside the loop) gives the reference output."""
    from semalign.workflows.export import graph

    s = make(name)
    q, k, v, valid = inputs(9)
    mask = mask_for(kind, valid, LQ, LK)
    if mask is None:
        mask, bias = np.ones((1, 1, LQ, LK), bool), jnp.zeros((1, 1, 1, LK))
    else:
        bias = jnp.where(mask, 0.0, MASK_VALUE)

    def run(q, k, v, bias):
        return graph.softmax_attention(*graph._split_logits(s, q, k), v, bias)

    got = jax.jit(run)(q, k, v, bias)
    _, w, _ = reference.attention(name, q, k, v, np.asarray(mask), params_of(name, s))
    np.testing.assert_allclose(got, np.einsum("bhqk,bkhd->bqhd", w, v), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["dot", "diff-transformer"])
def test_dot_forms_sum_to_the_weights(name):
    """Σ c_m softmax(form_m) is the scoring's own attention weights."""
    s = make(name)
    q, k, _, valid = inputs(7)
    mask = mask_for("padding", valid, LQ, LK)
    total = 0.0
    for form, c in s.dot_forms(jnp.asarray(q), jnp.asarray(k)):
        logits = jnp.einsum("bqhd,bkhd->bhqk", form.q, form.k) * form.scale
        total = total + c * masked_softmax(logits, mask)
    np.testing.assert_allclose(total, s.weights(q, k, mask)[1], atol=1e-6, rtol=0)
