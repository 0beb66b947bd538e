"""ONNX export: every scoring x mask converts with symbolic axes and matches JAX in onnxruntime."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from flax import nnx

from semalign.attention import scoring
from semalign.config import AttentionConfig, ModelConfig
from semalign.tasks.classification.model import Classifier
from semalign.tasks.classification.task import output_names
from semalign.workflows.export import check_shapes
from semalign.workflows.export.graph import OnnxAttention, convert, export_model, forward_fn

MAX_LEN = 12
MASKS = {"padding": {}, "causal": {"causal": True}, "local": {"window": (2, 1)}}
SEQS = (1, 5, MAX_LEN)
ATOL = 1e-4


def tiny_model(
    scoring_name: str, *, positions="learned", pooling="mean", bigram_buckets=0, **attention
):
    # batch_chunk=0: the reference runs eagerly without lax.map, so the matrix stays fast;
    # the chunked default is checked end to end in test_cli_export.
    cfg = ModelConfig(
        vocab_size=50,
        num_classes=3,
        dim=16,
        layers=2,
        mlp_ratio=1,
        max_len=MAX_LEN,
        positions=positions,
        pooling=pooling,
        bigram_buckets=bigram_buckets,
        attention=AttentionConfig(
            scoring=scoring_name, heads=2, key_block=4, batch_chunk=0, **attention
        ),
    )
    model = Classifier(cfg, rngs=nnx.Rngs(0))
    model.eval()
    return model


def batch_of_three(seq: int, rng: np.random.Generator):
    """Row 0 full, row 1 half padded, row 2 all padding (every key masked)."""
    ids = rng.integers(5, 50, (3, seq)).astype(np.int32)
    ids[:, 0] = 2
    lengths = np.array([seq, max(1, seq // 2), 0])
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int32)
    return ids * mask, mask


def max_diffs(model, proto, *, embedding=False, attention=False):
    """Largest |onnxruntime - JAX| per output over batch {1, 3} x seq {1, 5, max}.

    Rows are independent, so the JAX reference at batch 3 also gives batch 1 (row 0).
    """
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = output_names(embedding=embedding, attention=attention)
    ref = forward_fn(model, embedding=embedding, attention=attention)
    rng = np.random.default_rng(0)
    seen = {name: [] for name in names}
    for seq in SEQS:
        ids, mask = batch_of_three(seq, rng)
        want = [np.asarray(w) for w in ref(ids, mask)]
        for rows in (slice(0, 3), slice(0, 1)):
            feed = {"input_ids": ids[rows], "attention_mask": mask[rows]}
            got = sess.run(list(names), feed)
            for name, g, w in zip(names, got, want, strict=True):
                assert g.shape == w[rows].shape, (name, g.shape, w[rows].shape)
                seen[name].append(np.max(np.abs(g - w[rows])))
    return {name: float(np.max(ds)) for name, ds in seen.items()}  # NaN propagates


def symbolic_dims(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


@pytest.mark.parametrize("mask", list(MASKS))
@pytest.mark.parametrize("name", scoring.available())
def test_every_scoring_and_mask_matches_jax(name, mask):
    model = tiny_model(name, **MASKS[mask])
    proto = convert(model)
    assert [symbolic_dims(i) for i in proto.graph.input] == [["B", "S"], ["B", "S"]]
    assert [o.name for o in proto.graph.output] == ["probabilities", "logits"]
    assert symbolic_dims(proto.graph.output[0]) == ["B", 3]
    diffs = max_diffs(model, proto)
    assert all(d <= ATOL for d in diffs.values()), diffs


@pytest.mark.parametrize(
    ("name", "mask"), [("dot,l1", "local"), ("diff-transformer,cosine", "causal")]
)
def test_mixed_heads_with_every_output(name, mask):
    model = tiny_model(name, **MASKS[mask])
    proto = convert(model, embedding=True, attention=True)
    shapes = {o.name: symbolic_dims(o) for o in proto.graph.output}
    assert shapes["embedding"] == ["B", 16]
    assert shapes["attention"] == ["B", 2, 2, "S", "S"]
    diffs = max_diffs(model, proto, embedding=True, attention=True)
    assert all(d <= ATOL for d in diffs.values()), diffs


@pytest.mark.parametrize(
    ("positions", "pooling"),
    [
        ("sinusoidal", "cls"),
        ("none", "attention"),
        ("learned", "max"),
    ],
)
def test_positions_and_poolings(positions, pooling):
    model = tiny_model("cosine", positions=positions, pooling=pooling, window=(1, 0))
    assert max(max_diffs(model, convert(model, embedding=True), embedding=True).values()) <= ATOL


@pytest.mark.parametrize("name", ["dot", "differential"])
def test_hashed_bigram_features_export(name):
    model = tiny_model(name, bigram_buckets=37)
    assert max(max_diffs(model, convert(model, embedding=True), embedding=True).values()) <= ATOL


def test_dot_form_scorings_use_the_fused_attention_operator():
    ops = {n.op_type for n in convert(tiny_model("differential")).graph.node}
    assert "Attention" in ops and "Einsum" not in ops
    # Below opset 23 there is no Attention operator: MatMul + Softmax, same numbers.
    model = tiny_model("l2", causal=True)
    proto = convert(model, opset=18)
    assert "Attention" not in {n.op_type for n in proto.graph.node}
    assert max(max_diffs(model, proto).values()) <= ATOL


def loop_bodies(proto) -> list[list[str]]:
    return [
        [x.op_type for x in n.attribute[0].g.node] for n in proto.graph.node if n.op_type == "Loop"
    ]


def test_explicit_attention_runs_one_example_at_a_time():
    """l1, additive and diff-transformer attend inside a Loop (one softmax for
    diff-transformer's two); the fused Attention operator stays outside any Loop."""
    protos = {n: convert(tiny_model(n)) for n in ("l1", "additive", "dot", "diff-transformer")}
    ops = {n: {x.op_type for x in p.graph.node} for n, p in protos.items()}
    assert "Loop" in ops["l1"] and "Attention" not in ops["l1"]
    assert "Loop" not in ops["dot"] and "Attention" in ops["dot"]
    assert "Attention" not in ops["diff-transformer"]
    for name in ("additive", "diff-transformer"):
        onnx.checker.check_model(protos[name], full_check=True)
        assert len(loop_bodies(protos[name])) == 2  # one per layer
    for body in loop_bodies(protos["additive"]):
        # The projections run once on the batch, outside the loop.
        assert body.count("Tanh") == 1 and body.count("Softmax") == 1, body
        assert "Einsum" not in body, body
    for body in loop_bodies(protos["diff-transformer"]):
        # q and k of the stacked forms from x (projections, scales and the padding bias
        # folded into the weights: no Add, no Transpose), logits, Σ c_m weights, the
        # values, weights · V.
        assert body.count("Softmax") == 1 and body.count("MatMul") == 6, body
        assert "Add" not in body and "Transpose" not in body, body


def test_a_query_dependent_mask_is_added_in_the_loop():
    """A causal mask cannot fold into the logits MatMul: one Add per loop body."""
    model = tiny_model("diff-transformer", causal=True)
    for body in loop_bodies(convert(model)):
        assert body.count("Add") == 1 and body.count("MatMul") == 6, body


@pytest.mark.parametrize("name", ["dot", "differential"])
def test_the_model_graph_as_written_also_exports(name):
    model = tiny_model(name, window=(1, 1))
    proto = convert(model, kernel="model")
    assert "Attention" not in {n.op_type for n in proto.graph.node}
    assert max(max_diffs(model, proto).values()) <= ATOL


def test_export_model_is_a_copy_with_the_same_state():
    model = tiny_model("additive")
    copy = export_model(model)
    assert all(isinstance(b.attn, OnnxAttention) for b in copy.encoder.blocks)
    assert copy.encoder.blocks[0].attn.inner.config.batch_chunk == 0
    assert not copy.encoder.blocks[0].attn.inner.fused
    assert not isinstance(model.encoder.blocks[0].attn, OnnxAttention)  # the model is untouched
    a = nnx.state(model, nnx.Param)["head"]["kernel"][...]
    b = nnx.state(copy, nnx.Param)["head"]["kernel"][...]
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(ValueError, match="unknown kernel 'tf'"):
        export_model(model, kernel="tf")


def test_check_shapes_cover_batch_1_7_32_and_seq_1_short_max():
    shapes = check_shapes(512)
    assert {b for b, _ in shapes} == {1, 7, 32}
    assert {s for _, s in shapes} == {1, 8, 512}
    assert len(shapes) >= 4
    assert all(s <= 2 for _, s in check_shapes(2))


def test_graph_is_valid_onnx():
    onnx.checker.check_model(convert(tiny_model("dot")), full_check=True)
