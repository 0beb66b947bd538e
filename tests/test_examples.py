"""Every script in examples/ runs in its --quick mode and prints / writes what it promises.

One subprocess per example (as a user runs them). Compiling dominates these tiny runs: the
processes share the session's JAX compilation cache and XLA flags (tests/conftest.py);
every number compared across processes is compared within a tolerance, or between two
processes with the same flags.
"""

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import semalign
from semalign.testing import write_reviews_csv

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TINY = dict(epochs=1, vocab_size=64, max_len=32, dim=16, heads=2, batch_size=16)
#: Modules the ONNX server must never import (the guard below makes importing them fail).
HEAVY = ("jax", "jaxlib", "flax", "optax", "orbax", "jax2onnx")


@pytest.fixture(scope="module")
def env():
    # conftest.py gives every subprocess the session's compilation cache and XLA flags.
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "JAX_PLATFORMS": "cpu",
    }


def run_example(name, *args, env, cwd, timeout=900):  # a guard against a hang only
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def line(out, prefix):
    found = [x for x in out.splitlines() if x.startswith(prefix)]
    assert len(found) == 1, (prefix, out)
    return found[0][len(prefix) :].strip()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, env):
    """A tiny classifier and its ONNX export, made with the CLI (sharing the compile cache)."""
    root = tmp_path_factory.mktemp("examples")
    data = write_reviews_csv(root / "reviews.csv", n=64)
    cli = [sys.executable, "-m", "semalign.cli"]
    options = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    train = ["train", "--data", str(data), "--runs-dir", str(root), "--name", "tiny"]
    for args in (
        train + options + ["--quiet", "--no-tensorboard"],
        ["export", "onnx", "--run", str(root / "tiny")],
    ):
        done = subprocess.run(cli + args, capture_output=True, text=True, env=env, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
    return root / "tiny"


def test_every_example_is_tested_and_documented():
    tested = set(re.findall(r'"(\w+\.py)"', Path(__file__).read_text()))
    for path in EXAMPLES.glob("*.py"):
        assert path.name in tested, f"{path.name} has no test here"
        doc = path.read_text().split('"""')[1]
        assert "Run:" in doc and "--quick" in doc, f"{path.name}: say what it shows and how to run"


def test_custom_scoring_trains_from_python_and_from_the_cli(env, tmp_path):
    out = run_example("custom_scoring.py", "--quick", "--runs-dir", tmp_path, env=env, cwd=tmp_path)
    assert float(line(out, "contract: softmax(logits) vs dot form, max gap")) < 1e-5
    for who in ("lib", "cli"):
        saved = json.loads((tmp_path / who / "config.json").read_text())
        assert saved["model"]["attention"]["scoring"] == "gaussian"
        test = [json.loads(x) for x in (tmp_path / who / "metrics.jsonl").read_text().splitlines()]
        accuracy = [r["accuracy"] for r in test if r.get("split") == "test"][-1]
        name = {"lib": "library", "cli": "cli"}[who]
        assert f"{name} run: {tmp_path / who} test accuracy {accuracy:.3f}" in out
    lib = json.loads(line(out, "library sigma:").split(" (init")[0])
    cli = json.loads(line(out, "cli sigma:"))
    # Same options and seed through both faces: the same trained widths, moved from 2.0.
    assert len(lib) == 2 and lib == pytest.approx(cli, abs=1e-6)
    assert all(abs(s - 2.0) > 1e-6 for s in lib)


def test_attention_in_your_own_model_learns(env, tmp_path):
    out = run_example("attention_in_your_model.py", "--quick", env=env, cwd=tmp_path)
    first, last = map(float, re.findall(r"first ([\d.]+) last ([\d.]+)", out)[0])
    assert last < first / 4
    assert float(line(out, "held-out accuracy:")) >= 0.9
    assert line(out, "attention weights [batch, heads, q, k]:") == "(4, 2, 16, 16)"
    assert json.loads(line(out, "attention row sums:")) == pytest.approx([1.0, 1.0], abs=1e-5)


def test_scoring_study_writes_results_and_a_plot(env, tmp_path):
    out = run_example("scoring_study.py", "--quick", "--out", tmp_path, env=env, cwd=tmp_path)
    with open(tmp_path / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["scoring"] for r in rows] == ["dot", "cosine"]
    for r in rows:
        saved = json.loads((Path(r["run"]) / "config.json").read_text())
        assert saved["model"]["attention"]["scoring"] == r["scoring"]
        lines = (Path(r["run"]) / "metrics.jsonl").read_text().splitlines()
        records = [json.loads(x) for x in lines]
        test = [x for x in records if x.get("split") == "test"][-1]
        assert float(r["test_accuracy"]) == test["accuracy"]
        assert f"test {test['accuracy']:.3f}" in out
    png = (tmp_path / "study.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000


def test_serving_never_imports_jax(env, tmp_path, tiny_run):
    from semalign.runtime import OnnxClassifier

    model = tiny_run / "model.onnx"
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(
        "import sys\n"
        "class Refuse:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {HEAVY!r}:\n"
        "            raise ImportError(f'the server imported {name}')\n"
        "sys.meta_path.insert(0, Refuse())\n"
    )
    guarded = {**env, "PYTHONPATH": os.pathsep.join([str(guard), env["PYTHONPATH"]])}
    out = run_example("serve_onnx.py", "--quick", "--model", model, env=guarded, cwd=tmp_path)
    served = json.loads(line(out, "predict:"))["predictions"]
    health = json.loads(line(out, "health:"))
    assert health["jax_modules"] == [] and health["labels"] == ["neg", "pos"]
    texts = [p["text"] for p in served]
    assert texts == ["a great and wonderful film", "boring and dull"]
    expected = OnnxClassifier(model).predict(texts)
    assert [p["label"] for p in served] == [p.label for p in expected]
    for got, want in zip(served, expected, strict=True):
        assert got["probabilities"] == pytest.approx(want.probabilities, abs=1e-6)


def test_attention_figures_png_and_svg(env, tmp_path, tiny_run):
    out_dir = tmp_path / "figs"
    out = run_example(
        "attention_figures.py",
        "--quick",
        "--run",
        tiny_run,
        "--out",
        out_dir,
        env=env,
        cwd=tmp_path,
    )
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == sorted(
        f"{k}-{i}.{s}" for k in ("attention", "rollout") for i in (0, 1) for s in ("png", "svg")
    )
    for name in names:
        data = (out_dir / name).read_bytes()
        assert data.startswith(b"\x89PNG") if name.endswith("png") else b"<svg" in data
    report = semalign.load(tiny_run).attention(["a great and wonderful film"])
    t = report.texts[0]
    assert f"text 0: 'a great and wonderful film' -> {t.label} tokens {list(t.tokens)}" in out
    # Refuses to replace the figures unless asked.
    again = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "attention_figures.py"),
            "--run",
            str(tiny_run),
            "--out",
            str(out_dir),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
    )
    assert again.returncode == 2 and "--overwrite" in again.stderr


def test_semantic_search_ranks_by_cosine(env, tmp_path):
    out = run_example("semantic_search.py", "--quick", env=env, cwd=tmp_path)
    run = line(out, "run:").split(" (")[0]
    model = semalign.load(run)
    assert model.task == "similarity"
    blocks = out.split("query: ")[1:]
    assert len(blocks) == 2
    for block in blocks:
        query, *hits = block.strip().splitlines()
        scores = [float(h.split()[0]) for h in hits]
        texts = [h.strip().split(None, 1)[1] for h in hits]
        assert len(hits) == 3 and scores == sorted(scores, reverse=True)
        q = model.embed([query]).vectors
        d = model.embed(texts).vectors
        np.testing.assert_allclose(scores, (q @ d.T)[0], atol=1e-4)
