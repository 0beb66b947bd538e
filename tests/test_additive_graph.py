"""The exported graph's form of the additive score (``_graph_scores``, symbolic lengths)."""

import jax
import numpy as np
import pytest
from flax import nnx

from semalign.attention.scoring._additive import Additive, _graph_scores, additive_scores


def numpy_additive(a, c, v):
    """Independent reference: ``s[b, h, i, j] = Σ_a v[h, a] tanh(a[b, i, h] + c[b, j, h])``."""
    hidden = np.tanh(a[:, :, None].astype(np.float64) + c[:, None])  # [b, q, k, h, a]
    return np.einsum("bqkha,ha->bhqk", hidden, v)


@pytest.mark.parametrize("shape", [(2, 5, 7, 3, 4), (1, 1, 9, 2, 16)])
def test_graph_form_equals_the_definition(shape):
    b, lq, lk, h, w = shape
    r = np.random.default_rng(0)
    a, c = (r.standard_normal((b, n, h, w)).astype(np.float32) for n in (lq, lk))
    v = r.standard_normal((h, w)).astype(np.float32)
    got = np.asarray(jax.jit(_graph_scores)(a, c, v))
    assert got.shape == (b, h, lq, lk)
    np.testing.assert_allclose(got, numpy_additive(a, c, v), atol=1e-5, rtol=1e-5)


def test_symbolic_key_length_takes_the_graph_form():
    """Symbolic lengths (as the ONNX export traces): no key blocks, no custom backward."""
    shapes = jax.export.symbolic_shape("B, S")
    a = jax.ShapeDtypeStruct((shapes[0], shapes[1], 2, 4), np.float32)
    v = jax.ShapeDtypeStruct((2, 4), np.float32)
    jaxpr = jax.make_jaxpr(lambda a, c, v: additive_scores(a, c, v, block=4))(a, a, v)
    prims = {e.primitive.name for e in jaxpr.jaxpr.eqns}
    assert "tanh" in prims and "dot_general" in prims
    assert not any(p in prims for p in ("scan", "while", "custom_vjp_call"))


def test_split_logits_equal_the_definition():
    """The export's split: projections once per position, then outer_scores on pairs."""
    b, lq, lk, h, d = 2, 5, 6, 3, 4
    s = Additive(heads=h, head_dim=d, key_block=4, rngs=nnx.Rngs(1))
    r = np.random.default_rng(2)
    q, k = (r.standard_normal((b, n, h, d)).astype(np.float32) for n in (lq, lk))

    def run(q, k):
        fn, qs, ks = s.split_logits(q, k)
        assert qs.shape == (b, h, d, lq, 1) and ks.shape == (b, h, d, 1, lk)
        return fn(qs, ks)

    w_q, w_k, v = (np.asarray(getattr(s, n)[...], np.float64) for n in ("w_q", "w_k", "v"))
    a = np.einsum("bqhd,hda->bqha", q, w_q)
    c = np.einsum("bkhd,hda->bkha", k, w_k)
    got = np.asarray(jax.jit(run)(q, k))
    np.testing.assert_allclose(got, numpy_additive(a, c, v), atol=1e-5, rtol=1e-5)
