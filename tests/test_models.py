"""NNX modules: padding invariance, per-head scorings, configs, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from semalign.attention import scoring
from semalign.config import AttentionConfig, ModelConfig
from semalign.nn.layers import MultiHeadAttention, head_groups
from semalign.tasks.classification.model import Classifier


def model(scoring_name="dot", **kw):
    att = kw.pop("attention", {})
    cfg = ModelConfig(
        vocab_size=50,
        num_classes=3,
        dim=16,
        layers=2,
        max_len=32,
        attention=AttentionConfig(scoring=scoring_name, heads=4, **att),
        **kw,
    )
    m = Classifier(cfg, rngs=nnx.Rngs(0))
    m.eval()
    return m


IDS = np.array([[2, 5, 9, 11, 7, 0], [2, 13, 4, 0, 0, 0]], np.int32)

VARIANTS = [(n, {}) for n in scoring.available()] + [
    ("dot,cosine,l1,differential", {}),
    ("l2", {"attention": {"tie_qk": True}}),
    ("dot", {"attention": {"causal": True}}),
    ("cosine", {"attention": {"window": (1, 1)}}),
    ("dot", {"positions": "sinusoidal", "pooling": "cls"}),
    ("dot", {"positions": "none", "pooling": "max"}),
    ("differential", {"pooling": "attention"}),
]


@pytest.mark.parametrize("name,kw", VARIANTS, ids=[f"{n}-{k}" for n, k in VARIANTS])
def test_appending_pads_does_not_change_logits(name, kw):
    m = model(name, **kw)
    fwd = nnx.jit(lambda m, ids: m(ids).logits)
    a = fwd(m, IDS)
    b = fwd(m, np.pad(IDS, ((0, 0), (0, 7))))
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    assert np.isfinite(np.asarray(a)).all()


@pytest.mark.parametrize("name", scoring.available())
def test_batch_one_length_one_and_grads_finite(name):
    m = model(name)
    ids = np.array([[2]], np.int32)
    out = nnx.jit(lambda m, ids: m(ids, capture=True))(m, ids)
    assert out.logits.shape == (1, 3)
    assert out.attention[0].weights.shape == (1, 4, 1, 1)

    def loss(m):
        return jnp.mean(m(IDS).logits ** 2)

    grads = nnx.jit(nnx.grad(loss))(m)
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))


@pytest.mark.parametrize("name", [*scoring.available(), "dot,cosine,l2,differential"])
def test_no_parameter_is_weakly_typed(name):
    """A weak type turns strong at the first update, which compiles the train step again."""
    params = nnx.state(model(name, positions="sinusoidal", pooling="attention"), nnx.Param)
    weak = [jax.tree_util.keystr(p) for p, x in jax.tree.leaves_with_path(params) if x.weak_type]
    assert weak == []


@pytest.mark.parametrize("name", scoring.available())
def test_gradients_match_central_differences(name):
    """∇f·u against (f(θ + εu) − f(θ − εu)) / 2ε along unit directions u of all parameters."""
    graph, params, rest = nnx.split(model(name), nnx.Param, ...)
    probe = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)

    @jax.jit
    def f(p):
        return jnp.sum(nnx.merge(graph, p, rest)(IDS).logits * probe)

    grad = jax.tree.leaves(jax.grad(f)(params))
    leaves, tree = jax.tree.flatten(params)
    r = np.random.default_rng(0)
    eps = 1e-2
    for _ in range(3):
        u = [r.standard_normal(x.shape) for x in leaves]
        norm = np.sqrt(sum(float(np.sum(x**2)) for x in u))
        u = [(x / norm).astype(np.float32) for x in u]
        along = sum(float(np.vdot(g, d)) for g, d in zip(grad, u, strict=True))
        up = f(jax.tree.unflatten(tree, [x + eps * d for x, d in zip(leaves, u, strict=True)]))
        down = f(jax.tree.unflatten(tree, [x - eps * d for x, d in zip(leaves, u, strict=True)]))
        central = float(up - down) / (2 * eps)
        assert abs(central - along) <= 1e-2 * max(1.0, abs(along)), (central, along)


def test_fused_and_explicit_models_agree():
    a = model("dot,cosine,l2,differential", attention={"fused": True})
    b = model("dot,cosine,l2,differential", attention={"fused": False})
    fwd = nnx.jit(lambda m, ids: m(ids).logits)
    np.testing.assert_allclose(fwd(a, IDS), fwd(b, IDS), atol=1e-5, rtol=0)


def test_vmap_over_examples_matches_batch():
    m = model("differential")
    batched = nnx.jit(lambda m, ids: m(ids).logits)(m, IDS)
    per_row = nnx.jit(nnx.vmap(lambda m, ids: m(ids[None]).logits[0], in_axes=(None, 0)))(m, IDS)
    np.testing.assert_allclose(per_row, batched, atol=1e-5, rtol=0)


def test_per_head_scorings_grouped():
    assert head_groups(("dot", "dot", "l1", "dot")) == (("dot", 0, 2), ("l1", 2, 1), ("dot", 3, 1))
    m = model("dot,cosine,l1,differential")
    mha = m.encoder.blocks[0].attn
    assert [type(s).__name__ for s in mha.scorers] == [
        "FunctionScoring",
        "Cosine",
        "FunctionScoring",
        "FunctionScoring",
    ]


def test_tie_qk_shares_projection():
    m = model("l2", attention={"tie_qk": True})
    assert m.encoder.blocks[0].attn.key is m.encoder.blocks[0].attn.query


def test_dropout_active_in_train_mode_only():
    cfg = ModelConfig(
        vocab_size=50, num_classes=2, dim=16, dropout=0.5, attention=AttentionConfig(dropout=0.3)
    )
    m = Classifier(cfg, rngs=nnx.Rngs(0))
    a, b = m(IDS).logits, m(IDS).logits
    assert not np.allclose(a, b)
    m.eval()
    np.testing.assert_array_equal(m(IDS).logits, m(IDS).logits)


def test_config_round_trips_through_json():
    import json

    cfg = ModelConfig(
        vocab_size=50,
        num_classes=2,
        attention=AttentionConfig(scoring="dot,l1", heads=2, window=(2, None)),
    )
    again = ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: model("dott"), r"unknown scoring 'dott'.*Did you mean 'dot'"),
        (
            lambda: ModelConfig(
                vocab_size=10, num_classes=2, dim=18, attention=AttentionConfig(heads=4)
            ),
            r"dim=18 is not divisible by heads=4",
        ),
        (
            lambda: AttentionConfig(scoring="dot,l1,l2", heads=4),
            r"got 3 names \(dot,l1,l2\) for 4 heads",
        ),
        (lambda: AttentionConfig(window=(-1, 2)), r"got \(-1, 2\)"),
        (lambda: ModelConfig(vocab_size=10, num_classes=1), r"or >= 2, got 1"),
        (lambda: model(positions="rotary"), r"unknown positions 'rotary'"),
        (lambda: model(pooling="sum"), r"unknown pooling 'sum'"),
        (
            lambda: MultiHeadAttention(10, AttentionConfig(heads=4), rngs=nnx.Rngs(0)),
            r"dim=10 is not divisible by heads=4",
        ),
    ],
)
def test_bad_input_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_sinusoidal_table_closed_form():
    from semalign.nn.positions import sinusoidal_table

    length, dim = 7, 10
    ref = np.zeros((length, dim))
    for i in range(length):
        for j in range(0, dim, 2):
            angle = i / 10000 ** (j / dim)
            ref[i, j] = np.sin(angle)
            ref[i, j + 1] = np.cos(angle)
    np.testing.assert_allclose(
        jax.jit(sinusoidal_table, static_argnums=(0, 1))(length, dim), ref, atol=1e-5, rtol=0
    )
