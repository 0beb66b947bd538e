"""Tasks as plugins: the registry, the one export pipeline for every task, legacy resume."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pair_data import write_pairs
from typer.testing import CliRunner

from semalign import tasks
from semalign.cli import app
from semalign.tasks.spec import CAPABILITIES, TaskSpec

runner = CliRunner()
FIXTURES = Path(__file__).parent / "fixtures" / "runs-v0.1.0"


def test_registry_lists_the_tasks_with_their_selection_metric():
    assert tasks.names() == (
        "classification",
        "similarity",
        "pair-classification",
        "causal-lm",
        "mlm",
        "rtd",
        "contrastive",
    )
    assert tasks.get("similarity").metric == "spearman"
    assert tasks.get("classification").higher_is_better
    for name in tasks.names():
        spec = tasks.get(name)
        assert set(spec.capabilities) <= set(CAPABILITIES)
        assert spec.load().spec is spec  # the implementation serves its own spec
    with pytest.raises(ValueError, match="unknown task 'similarty'. Did you mean 'similarity'"):
        tasks.get("similarty")
    with pytest.raises(ValueError, match="task 'similarity' is already registered"):
        tasks.register(tasks.get("similarity"))
    with pytest.raises(ValueError, match="unknown capabilities"):
        TaskSpec("x", "", (), "m", True, ("l",), frozenset({"fly"}), dict, dict, "m:x")


def test_tasks_command_and_specs_need_no_jax():
    r = runner.invoke(app, ["tasks", "--json"])
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.output)}
    assert rows["pair-classification"]["columns"] == ["text_a", "text_b", "label"]
    assert rows["similarity"]["losses"] == ["cosent", "cosine-mse"]
    code = "import sys, semalign.tasks, semalign.cli; print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.fixture(scope="module")
def pair_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairclf")
    data = write_pairs(root / "pairs.tsv", n=80)
    args = ["train", "--task", "pair-classification", "--data", str(data), "--name", "pc"]
    args += ["--runs-dir", str(root / "runs"), "--vocab-size", "64", "--max-len", "16"]
    args += ["--dim", "16", "--heads", "2", "--batch-size", "16", "--epochs", "1"]
    args += ["--scoring", "dot,l1", "--no-tensorboard", "--quiet"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    return root / "runs" / "pc"


def test_pair_classification_exports_with_two_inputs(pair_run):
    import onnxruntime as ort

    r = runner.invoke(app, ["export", "onnx", "--run", str(pair_run), "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["ok"] and report["max_abs_diff"] <= 1e-4
    assert report["inputs"] == [
        "input_ids_a",
        "attention_mask_a",
        "input_ids_b",
        "attention_mask_b",
    ]
    sess = ort.InferenceSession(str(pair_run / "model.onnx"), providers=["CPUExecutionProvider"])
    ids = np.array([[2, 9, 12, 0]], np.int32)
    feed = {
        "input_ids_a": ids,
        "attention_mask_a": (ids > 0).astype(np.int32),
        "input_ids_b": ids,
        "attention_mask_b": (ids > 0).astype(np.int32),
    }
    (probs,) = sess.run(["probabilities"], feed)
    assert probs.shape == (1, 2) and abs(float(probs.sum()) - 1) < 1e-5


def test_every_refusal_names_only_what_the_task_can_do():
    from semalign import tasks
    from semalign.tasks.spec import CAPABILITIES, COMMANDS

    assert set(COMMANDS) == set(CAPABILITIES)
    for name in tasks.names():
        spec = tasks.get(name)
        for refused in set(CAPABILITIES) - spec.capabilities:
            line = spec.refusal("r1", refused, "why")
            assert line.startswith(f"run 'r1' is a {name} run: why; ") and "\n" not in line
            for other in CAPABILITIES:
                said = f"`{COMMANDS[other]}`" in line
                assert said == (other != refused and other in spec.capabilities), (name, other)
            assert "`semalign evaluate`" in line and "--init-from r1" in line


def test_one_line_refusals_by_capability(pair_run):
    from semalign.runtime import ModelFileError, OnnxClassifier

    r = runner.invoke(app, ["predict", "a cat", "--run", str(pair_run)])
    assert r.exit_code == 2 and r.output.startswith("error:") and "pair-classification" in r.output
    assert "`semalign embed" in r.output and "--pair" in r.output  # what it can do instead
    r = runner.invoke(app, ["export", "onnx", "--run", str(pair_run), "--with-attention"])
    assert r.exit_code == 2 and "drop --with-attention" in r.output
    assert "Traceback" not in r.output
    if (pair_run / "model.onnx").exists():
        with pytest.raises(ModelFileError, match="input_ids_a"):
            OnnxClassifier(pair_run / "model.onnx")


def test_a_run_written_by_0_1_0_resumes(tmp_path):
    from semalign.testing import write_reviews_csv
    from semalign.workflows.train import TrainRequest, train

    run = tmp_path / "runs" / "classification"
    shutil.copytree(FIXTURES / "classification", run)
    config = json.loads((run / "config.json").read_text())
    # The fixture's data file was written by the same generator; write it again here.
    config["data"]["data"] = str(write_reviews_csv(tmp_path / "classification.csv", n=96))
    (run / "config.json").write_text(json.dumps(config))
    result = train(TrainRequest(resume=str(run), overrides={"epochs": 2}, tensorboard=False))
    assert result.epochs_done == 2 and result.finished and result.task == "classification"
    assert json.loads((run / "config.json").read_text())["version"] != "0.1.0"
