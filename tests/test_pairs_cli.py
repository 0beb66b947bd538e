"""`semalign train --task similarity`, `evaluate`, `embed`, `inspect --pair`; bad input."""

import json

import numpy as np
import pytest
from pair_data import write_pairs, write_stsb
from typer.testing import CliRunner

from semalign.cli import app
from semalign.testing import tiny_args

runner = CliRunner()
SMALL = tiny_args(epochs=2, more=("--lr", "0.01", "--no-tensorboard"))


def one_line_error(result, *needles):
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = result.output.rstrip("\n").splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:"), lines[0]
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs-cli")
    data = write_pairs(root / "pairs.tsv", n=160)
    r = invoke("train", "--task", "similarity", "--data", data, "--name", "sim",
               "--runs-dir", root / "runs", "--json", *SMALL)  # fmt: skip
    assert r.exit_code == 0, r.output
    return root, data, json.loads(r.output)


def test_train_json_and_evaluate(workdir):
    root, data, result = workdir
    assert result["task"] == "similarity" and result["loss"] == "cosent"
    assert set(result["test"]["correlations"]) == {"cosine", "l2", "l1", "dot"}
    run = root / "runs" / "sim"
    r = invoke("evaluate", "--run", run, "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)["report"]
    assert report["correlations"]["cosine"] == pytest.approx(
        result["test"]["correlations"]["cosine"], abs=1e-9
    )
    r = invoke("evaluate", "--run", run)
    assert r.exit_code == 0 and "Spearman × 100" in r.output and "−L1 (manhattan)" in r.output


def test_embed_prints_and_saves(workdir, tmp_path):
    root, _, _ = workdir
    run = root / "runs" / "sim"
    r = invoke("embed", "red cat small", "blue dog", "--run", run)
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    vectors = np.asarray(out["embeddings"])
    assert out["texts"] == ["red cat small", "blue dog"] and vectors.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    npy = tmp_path / "e.npy"
    r = invoke("embed", "red cat small", "blue dog", "--run", run, "--out", npy)
    assert r.exit_code == 0, r.output
    np.testing.assert_allclose(np.load(npy), vectors, atol=1e-6)
    one_line_error(
        invoke("embed", "a", "--run", run, "--out", npy), "already exists", "--overwrite"
    )
    texts = tmp_path / "texts.txt"
    texts.write_text("red cat small\n\nblue dog\n", encoding="utf-8")
    r = invoke("embed", "--file", texts, "--run", run, "--out", tmp_path / "e.json")
    assert r.exit_code == 0, r.output
    saved = json.loads((tmp_path / "e.json").read_text())
    np.testing.assert_allclose(saved["embeddings"], vectors, atol=1e-6)
    one_line_error(invoke("embed", "a", "--run", run, "--out", tmp_path / "e.txt"), ".npy or .json")
    one_line_error(invoke("embed", "  ", "--run", run), "text 1 is empty")


def test_inspect_pair(workdir, tmp_path):
    root, _, _ = workdir
    run = root / "runs" / "sim"
    r = invoke("inspect", "red cat small dog", "--pair", "a small red dog", "--run", run,
               "--no-color")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "cosine similarity" in r.output and "best-aligned tokens" in r.output
    r = invoke("inspect", "red cat", "--pair", "red dog", "--run", run, "--format", "json")
    rep = json.loads(r.output)
    np.testing.assert_allclose(np.sum(rep["weights"], axis=-1), 1.0, atol=1e-5)
    png = tmp_path / "a.png"
    r = invoke("inspect", "red cat", "--pair", "red dog", "--run", run, "--out", png)
    assert r.exit_code == 0 and png.stat().st_size > 1000, r.output
    one_line_error(invoke("inspect", "a", "b", "--pair", "c", "--run", run), "exactly one TEXT")
    one_line_error(invoke("inspect", "a", "--pair", "c", "--rollout", "--run", run), "--rollout")
    one_line_error(
        invoke("inspect", "a", "--pair", "c", "--format", "html", "--run", run), "--format html"
    )
    one_line_error(invoke("inspect", "red cat", "--pair", " ", "--run", run), "text B is empty")
    one_line_error(invoke("inspect", "red cat", "--run", run), "similarity run", "--pair")


@pytest.mark.parametrize(
    "body, needles",
    [
        ("sentence1\tsentence2\tscore\nred cat\tblue dog\n", ("line 2", "2 fields", "has 3")),
        ("sentence1\tsentence2\tscore\nred cat\tblue dog\tfive\n", ("line 2", "not a number")),
        ("sentence1\tsentence2\tscore\nred cat\t \t1.5\n", ("line 2", "sentence2 is empty")),
    ],
)
def test_bad_pair_files_give_one_line(tmp_path, body, needles):
    bad = tmp_path / "bad.tsv"
    bad.write_text(body, encoding="utf-8")
    r = invoke("train", "--task", "similarity", "--data", bad, "--runs-dir", tmp_path / "runs")
    one_line_error(r, str(bad), *needles)
    assert not (tmp_path / "runs").exists()


def test_bad_stsb_row_and_options(tmp_path):
    stsb = write_stsb(tmp_path / "sts.csv", n=12)
    lines = stsb.read_text().splitlines()
    lines[4] = "\t".join(lines[4].split("\t")[:6])
    stsb.write_text("\n".join(lines) + "\n")
    r = invoke("train", "--task", "similarity", "--data", stsb, "--runs-dir", tmp_path / "r")
    one_line_error(r, "line 5", "6 tab-separated fields")
    one_line_error(invoke("train", "--task", "similarity"), "needs --data")
    good = write_pairs(tmp_path / "p.tsv", n=20)
    r = invoke("train", "--task", "similarity", "--data", good, "--loss", "hinge",
               "--runs-dir", tmp_path / "r")  # fmt: skip
    one_line_error(r, "--loss 'hinge'", "cosent, cosine-mse")
    r = invoke("train", "--task", "similarity", "--data", good, "--text-a-column", "q1",
               "--runs-dir", tmp_path / "r")  # fmt: skip
    one_line_error(r, "no column 'q1'", "--text-a-column")


def test_export_onnx_of_a_similarity_run_and_embed_with_it(workdir, tmp_path):
    root, _, _ = workdir
    run = root / "runs" / "sim"
    out = tmp_path / "enc.onnx"
    one_line_error(
        invoke("export", "onnx", "--run", run, "--out", out, "--with-attention"),
        "similarity run",
        "--with-attention",
    )
    assert not out.exists()
    r = invoke("export", "onnx", "--run", run, "--out", out, "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["ok"] and report["outputs"] == ["embedding"] and out.is_file()
    assert report["max_abs_diff"] <= 1e-4 and len(report["checks"]) >= 3

    texts = ["red cat small", "blue dog", "a loud red frog"]
    by_jax = json.loads(invoke("embed", *texts, "--run", run).output)
    r = invoke("embed", *texts, "--model", out)
    assert r.exit_code == 0, r.output
    by_onnx = json.loads(r.output)
    assert by_onnx["task"] == "similarity" and by_onnx["texts"] == texts
    np.testing.assert_allclose(by_onnx["embeddings"], by_jax["embeddings"], atol=1e-5)

    from semalign.runtime import OnnxEncoder

    enc = OnnxEncoder(out)
    a, b = np.asarray(by_jax["embeddings"][:2]), np.asarray(by_jax["embeddings"][1:])
    np.testing.assert_allclose(enc.similarity(texts[:2], texts[1:]), np.sum(a * b, 1), atol=1e-5)

    one_line_error(invoke("embed", "a", "--model", out, "--raw"), "normalised", "--backend jax")
    one_line_error(invoke("predict", "a", "--model", out), "similarity", "embed")
    one_line_error(invoke("embed", "a", "--run", run, "--backend", "onnx"), "no model.onnx")
