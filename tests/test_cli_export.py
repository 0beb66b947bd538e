"""`semalign export onnx` and `semalign predict`: end to end on a tiny run, and every bad input."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from semalign.cli import app
from semalign.testing import tiny_run

runner = CliRunner()
TEXTS = ["a great and fun film", "the plot was dull, a mess", "movie"]
ROOT = Path(__file__).resolve().parents[1]


def one_line_error(result, *needles):
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = [x for x in result.output.splitlines() if x.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:"), lines[0]
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A trained tiny run with model.onnx (+ embedding and attention outputs) exported."""
    run = tiny_run(tmp_path_factory.mktemp("export"), "tiny", scoring="differential")
    r = runner.invoke(
        app, ["export", "onnx", "--run", str(run), "--embedding", "--with-attention", "--json"]
    )
    assert r.exit_code == 0, r.output
    return run, json.loads(r.output)


def predict_json(*args):
    r = runner.invoke(app, ["predict", *args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def probs(result):
    return np.array([list(p["probabilities"].values()) for p in result["predictions"]])


def test_export_writes_a_verified_model_and_report(run):
    path, report = run
    assert report["ok"] and report["max_abs_diff"] <= 1e-4
    assert report["outputs"] == ["probabilities", "logits", "embedding", "attention"]
    shapes = {(c["batch"], c["seq"]) for c in report["checks"]}
    assert len(shapes) >= 4
    assert {b for b, _ in shapes} == {1, 7, 32} and {s for _, s in shapes} == {1, 8, 16}
    assert json.loads((path / "export.json").read_text())["checks"] == report["checks"]
    model = onnx.load(str(path / "model.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["semalign.labels"]) == ["neg", "pos"]
    assert meta["semalign.scoring"] == "differential" and meta["semalign.max_len"] == "16"
    assert meta["semalign.version"] and '"[CLS]"' in meta["semalign.tokenizer"]
    dims = [
        [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
        for i in model.graph.input
    ]
    assert dims == [["B", "S"], ["B", "S"]]


def test_predict_backends_agree(run, tmp_path):
    path, _ = run
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS[1:]) + "\n\n")
    by_jax = predict_json(TEXTS[0], "--file", str(texts), "--run", str(path))
    by_onnx = predict_json(TEXTS[0], "--file", str(texts), "--run", str(path), "--backend", "onnx")
    assert by_jax["backend"] == "jax" and by_onnx["backend"] == "onnx"
    assert [p["text"] for p in by_onnx["predictions"]] == TEXTS
    np.testing.assert_allclose(probs(by_onnx), probs(by_jax), atol=1e-4)
    assert [p["label"] for p in by_onnx["predictions"]] == [
        p["label"] for p in by_jax["predictions"]
    ]
    table = runner.invoke(app, ["predict", TEXTS[0], "--model", str(path / "model.onnx")])
    assert table.exit_code == 0 and "onnx" in table.output, table.output


def test_existing_output_is_refused_unless_overwrite(run, tmp_path):
    path, _ = run
    r = runner.invoke(app, ["export", "onnx", "--run", str(path)])
    one_line_error(r, "model.onnx' already exists", "--overwrite")
    out = tmp_path / "served" / "classifier.onnx"
    out.parent.mkdir()
    out.write_bytes(b"old")
    one_line_error(runner.invoke(app, ["export", "onnx", "--run", str(path), "--out", str(out)]))
    r = runner.invoke(app, ["export", "onnx", "--run", str(path), "--out", str(out), "--overwrite"])
    assert r.exit_code == 0, r.output
    assert "wrote" in r.output and "max |Δ|" in r.output
    assert onnx.load(str(out)).graph.output[0].name == "probabilities"
    assert sorted(p.name for p in out.parent.iterdir()) == ["classifier.onnx"]  # no leftovers
    served = predict_json(TEXTS[0], "--model", str(out))
    assert served["source"] == str(out)


def test_failed_parity_check_exits_non_zero_and_says_by_how_much(run, tmp_path):
    path, _ = run
    out = tmp_path / "strict.onnx"
    r = runner.invoke(
        app, ["export", "onnx", "--run", str(path), "--out", str(out), "--tolerance", "0"]
    )
    line = one_line_error(r, "parity check failed: onnxruntime differs from JAX by", "export.json")
    assert "tolerance 0" in line and "at batch" in line
    assert not out.exists() and not list(tmp_path.iterdir())
    assert json.loads((path / "export.json").read_text())["ok"] is False


def test_unwritable_output_paths(run, tmp_path):
    path, _ = run
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    r = runner.invoke(app, ["export", "onnx", "--run", str(path), "--out", str(blocker / "m.onnx")])
    one_line_error(r, "cannot write", "cannot create folder")
    r = runner.invoke(app, ["export", "onnx", "--run", str(path), "--out", str(tmp_path)])
    one_line_error(r, "it is a folder")


def test_no_run_and_run_without_checkpoint(run, tmp_path):
    path, _ = run
    r = runner.invoke(app, ["export", "onnx", "--runs-dir", str(tmp_path / "nothing")])
    one_line_error(r, "no run found under")
    broken = tmp_path / "broken"
    shutil.copytree(path, broken, ignore=shutil.ignore_patterns("checkpoints"))
    r = runner.invoke(app, ["export", "onnx", "--run", str(broken)])
    one_line_error(r, "is incomplete", "checkpoints/")
    r = runner.invoke(app, ["predict", "hi", "--run", str(broken)])
    one_line_error(r, "is incomplete", "checkpoints/")
    one_line_error(runner.invoke(app, ["export", "onnx", "--opset", "12"]), "opset must be in")


def test_predict_bad_input(run, tmp_path):
    path, _ = run
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes((path / "model.onnx").read_bytes()[:4096])
    one_line_error(
        runner.invoke(app, ["predict", "hi", "--model", str(bad)]), "is not a loadable ONNX model"
    )
    bare = tmp_path / "bare"
    shutil.copytree(path, bare, ignore=shutil.ignore_patterns("model.onnx"))
    r = runner.invoke(app, ["predict", "hi", "--run", str(bare), "--backend", "onnx"])
    one_line_error(r, "has no model.onnx", "semalign export onnx")
    one_line_error(runner.invoke(app, ["predict", "--run", str(path)]), "no text to classify")
    r = runner.invoke(app, ["predict", "--file", str(tmp_path / "none.txt"), "--run", str(path)])
    one_line_error(r, "no text file at")


def quick_run(script: str) -> str:
    """``benchmarks/<script> --quick --no-save``: its stdout, once it exited 0."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick", "--no-save"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_benchmark_quick_runs():
    stdout = quick_run("onnx_latency.py")
    assert "onnxruntime / JAX latency ratio (median)" in stdout
    assert "batch   4" in stdout and "model-graph/daz" in stdout


def test_variants_benchmark_quick_runs():
    """benchmarks/onnx_variants.py: every variant converts and matches JAX before timing."""
    stdout = quick_run("onnx_variants.py")
    for name in ("l1/per-coordinate", "l1/folded-sums", "l1/2-heads", "l1/min-floor", "chunk=2"):
        assert f"  {name} " in stdout


def test_embed_backends_agree_on_a_classifier_exported_with_its_embedding(run):
    path, _ = run
    r = runner.invoke(app, ["embed", *TEXTS, "--run", str(path)])
    assert r.exit_code == 0, r.output
    by_jax = json.loads(r.output)
    r = runner.invoke(app, ["embed", *TEXTS, "--run", str(path), "--backend", "onnx"])
    assert r.exit_code == 0, r.output
    by_onnx = json.loads(r.output)
    assert by_onnx["task"] == "classification" and by_onnx["normalized"]
    np.testing.assert_allclose(by_onnx["embeddings"], by_jax["embeddings"], atol=1e-5)
    r = runner.invoke(app, ["embed", *TEXTS, "--run", str(path), "--backend", "onnx", "--raw"])
    assert r.exit_code == 0, r.output
    raw = np.asarray(json.loads(r.output)["embeddings"])
    np.testing.assert_allclose(
        raw / np.linalg.norm(raw, axis=1, keepdims=True), by_jax["embeddings"], atol=1e-5
    )
