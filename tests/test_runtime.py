"""semalign.runtime: serves an exported model with numpy + onnxruntime + tokenizers, no JAX."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
from flax import nnx

from semalign.config import AttentionConfig, ModelConfig
from semalign.data import encode_texts, train_tokenizer
from semalign.errors import SemalignError
from semalign.runtime import ModelFileError, OnnxClassifier, encode, session_options
from semalign.tasks.classification.model import Classifier
from semalign.tasks.classification.task import output_names
from semalign.testing import BAD, FILL, GOOD
from semalign.workflows.export import metadata, write_model
from semalign.workflows.export.graph import convert, forward_fn

LABELS = ("neg", "neutral", "pos")
TEXTS = ["a great film", "the plot was dull and a mess", "", "fun " * 40]
MAX_LEN = 16


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A random-weight classifier exported with semalign's metadata (no training needed)."""
    folder = tmp_path_factory.mktemp("runtime")
    tokenizer = train_tokenizer([" ".join(GOOD + BAD + FILL)] * 3, vocab_size=64, kind="word")
    cfg = ModelConfig(
        vocab_size=64,
        num_classes=3,
        dim=16,
        mlp_ratio=1,
        max_len=MAX_LEN,
        attention=AttentionConfig(scoring="dot,l1", heads=2, causal=True),
    )
    model = Classifier(cfg, rngs=nnx.Rngs(3))
    model.eval()
    proto = convert(model, embedding=True)
    meta = metadata(
        labels=LABELS,
        tokenizer=tokenizer,
        model_config=cfg,
        max_len=MAX_LEN,
        outputs=output_names(embedding=True),
        task="classification",
    )
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    path = write_model(proto, folder / "model.onnx")
    return path, model, tokenizer


def test_predictions_match_the_jax_model(exported):
    path, model, tokenizer = exported
    clf = OnnxClassifier(path)
    assert clf.labels == LABELS and clf.max_len == MAX_LEN and clf.scoring == "dot,l1"
    assert clf.outputs == ("probabilities", "logits", "embedding")
    preds = clf.predict(TEXTS, batch_size=3)
    ids, mask = encode(tokenizer, TEXTS, MAX_LEN)
    want = np.asarray(forward_fn(model)(ids, mask)[0])
    got = np.array([[p.probabilities[lab] for lab in LABELS] for p in preds])
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert [p.label for p in preds] == [LABELS[i] for i in want.argmax(1)]
    assert preds[2].text == "" and preds[0].to_dict()["label"] == preds[0].label
    assert clf.run(ids[:1])["embedding"].shape == (1, 16)


def test_encode_matches_the_training_encoder(exported):
    _, _, tokenizer = exported
    ids, mask = encode(tokenizer, TEXTS, MAX_LEN)
    rows = encode_texts(tokenizer, TEXTS, max_len=MAX_LEN)
    assert ids.shape == (4, MAX_LEN) and ids.dtype == np.int32
    for i, row in enumerate(rows):
        np.testing.assert_array_equal(ids[i, : len(row)], row)
        assert mask[i].sum() == len(row) and not ids[i, len(row) :].any()


@pytest.mark.parametrize("truncation", ["head", "tail", "head-tail"])
def test_encode_cuts_as_the_run_was_trained(exported, truncation):
    _, _, tokenizer = exported
    texts = [" ".join(FILL[:3] + GOOD[:1] + FILL * 3 + BAD[:1]), "a great film"]
    ids, _ = encode(tokenizer, texts, MAX_LEN, truncation)
    rows = encode_texts(tokenizer, texts, max_len=MAX_LEN, truncation=truncation)
    whole = tokenizer.encode(texts[0]).ids
    assert len(whole) > MAX_LEN  # the first text is cut
    for i, row in enumerate(rows):
        np.testing.assert_array_equal(ids[i, : len(row)], row)
    # By hand: [CLS], then a quarter of the room from the start, the rest from the end.
    keep = {"head": (MAX_LEN, 0), "tail": (1, MAX_LEN - 1), "head-tail": (4, MAX_LEN - 4)}
    first, last = keep[truncation]
    want = whole[:first] + (whole[len(whole) - last :] if last else [])
    assert ids[0].tolist() == want


def test_an_export_carries_the_runs_truncation(tmp_path, exported):
    path, _, _ = exported
    assert OnnxClassifier(path).truncation == "head"  # as this one was exported
    proto = onnx.load(str(path))
    for entry in proto.metadata_props:
        if entry.key == "semalign.truncation":
            entry.value = "tail"
    moved = write_model(proto, tmp_path / "tail.onnx")
    assert OnnxClassifier(moved).truncation == "tail"
    legacy = onnx.load(str(path))
    kept = [e for e in legacy.metadata_props if e.key != "semalign.truncation"]
    del legacy.metadata_props[:]
    legacy.metadata_props.extend(kept)
    assert OnnxClassifier(write_model(legacy, tmp_path / "old.onnx")).truncation == "head"


def test_serves_where_jax_cannot_be_imported(exported):
    path, _, _ = exported
    code = textwrap.dedent(f"""
        import json, sys
        for name in ("jax", "jaxlib", "flax", "jax2onnx", "optax"):
            sys.modules[name] = None  # any import of them now raises ImportError
        from semalign.runtime import OnnxClassifier
        probs = OnnxClassifier({str(path)!r}).probabilities(["a great film", "dull"])
        from semalign.workflows.predict import predict
        res = predict(["a great film"], model={str(path)!r})
        from semalign.cli import app
        try:
            app(["predict", "--model", {str(path)!r}, "--json", "dull"])
        except SystemExit as e:
            assert e.code in (0, None), e.code
        loaded = [m for m in ("jax", "flax", "jax2onnx") if sys.modules.get(m) is not None]
        print("RESULT", json.dumps({{"shape": list(probs.shape), "loaded": loaded,
                                     "backend": res.backend}}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.split("RESULT", 1)[1])
    assert result == {"shape": [2, 3], "loaded": [], "backend": "onnx"}
    assert '"label"' in out.stdout  # the CLI printed its JSON


def test_runtime_imports_no_jax():
    code = "import sys, semalign.runtime, semalign.workflows.predict; print(sorted(m for m in ('jax', 'flax') if m in sys.modules))"  # noqa: E501
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_corrupted_file_is_one_clear_error(tmp_path, exported):
    path, _, _ = exported
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(path.read_bytes()[:2000] + b"\x00garbage")
    with pytest.raises(ModelFileError, match=r"is not a loadable ONNX model .*re-export") as err:
        OnnxClassifier(bad)
    assert "\n" not in str(err.value) and isinstance(err.value, SemalignError)
    with pytest.raises(ModelFileError, match="no ONNX model at .*no such file"):
        OnnxClassifier(tmp_path / "missing.onnx")
    with pytest.raises(ModelFileError, match="it is a folder"):
        OnnxClassifier(tmp_path)


def test_a_foreign_onnx_model_is_refused(tmp_path):
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, tmp_path / "relu.onnx")
    with pytest.raises(ModelFileError, match="was not exported by semalign .*semalign.labels"):
        OnnxClassifier(tmp_path / "relu.onnx")


def test_input_checks(exported):
    path, _, _ = exported
    clf = OnnxClassifier(path, threads=1)
    with pytest.raises(ValueError, match=r"1 <= seq <= 16, got shape \(1, 17\)"):
        clf.run(np.ones((1, 17), np.int32))
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        clf.predict(["x"], batch_size=0)
    assert clf.probabilities([]).shape == (0, 3)


def test_session_options():
    opts = session_options(3, level="basic")
    assert opts.intra_op_num_threads == 3
    assert opts.get_session_config_entry("session.set_denormal_as_zero") == "1"
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    with pytest.raises(ValueError, match="unknown optimisation level 'max'"):
        session_options(level="max")


def test_the_runtime_keeps_the_residual_add_and_layer_norm_apart(exported, tmp_path):
    """SkipLayerNormFusion is off in the runtime's sessions (it ran slower here)."""
    import onnx
    import onnxruntime as ort

    from semalign.runtime.onnx import DISABLED_OPTIMIZERS, open_session

    path = exported[0]

    def fused_ops(open_fn, name):
        opts = session_options(1)
        opts.optimized_model_filepath = str(tmp_path / name)
        open_fn(opts)
        return {n.op_type for n in onnx.load(str(tmp_path / name)).graph.node}

    assert DISABLED_OPTIMIZERS == ("SkipLayerNormFusion",)
    ours = fused_ops(lambda o: open_session(path, o), "ours.onnx")
    default = fused_ops(
        lambda o: ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"]),
        "default.onnx",
    )
    assert "SkipLayerNormalization" in default  # what onnxruntime does unless told
    assert "SkipLayerNormalization" not in ours and "LayerNormalization" in ours
