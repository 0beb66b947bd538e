"""The library face: ``semalign.load`` / ``semalign.train`` give what the workflows give."""

import inspect
import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import semalign
from semalign.errors import RunError
from semalign.testing import write_reviews_csv

TINY = dict(
    vocab_size=64,
    max_len=16,
    dim=16,
    heads=2,
    batch_size=16,
    epochs=1,
    tensorboard=False,
    mlp_ratio=1,
)
TEXTS = ["a great and wonderful film", "the plot was dull", "boring mess"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("face")
    data = write_reviews_csv(root / "r.csv", n=64)
    run = semalign.train(data=data, scoring="cosine", runs_dir=root / "runs", name="r", **TINY)
    return root, data, run


def test_import_semalign_does_not_import_jax():
    code = (
        "import sys, semalign\n"
        "semalign.load, semalign.train, semalign.Model, semalign.Run\n"
        "bad = sorted(m for m in ('jax', 'flax', 'optax', 'orbax') if m in sys.modules)\n"
        "print(bad)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'lod'"):
        semalign.lod  # noqa: B018
    assert {"load", "train"} <= set(dir(semalign))


def test_train_returns_a_finished_run(trained):
    _, _, run = trained
    assert run.path.is_dir() and run.name == "r"
    assert run.result.finished and run.test is run.result.test
    saved = json.loads((run.path / "config.json").read_text())
    assert saved["task"] == "classification"
    assert saved["model"]["attention"]["scoring"] == "cosine"
    assert saved["model"]["dim"] == 16 and saved["data"]["max_len"] == 16


def test_predict_embed_attention_are_the_workflows(trained):
    from semalign.workflows import introspect
    from semalign.workflows.embed import embed
    from semalign.workflows.predict import predict

    _, _, run = trained
    model = semalign.load(run)
    assert model.path == run.path and model.task == "classification"

    ours = model.predict(TEXTS)
    theirs = predict(TEXTS, run=str(run.path))
    assert [p.label for p in ours.predictions] == [p.label for p in theirs.predictions]
    for a, b in zip(ours.predictions, theirs.predictions, strict=True):
        assert a.probabilities == b.probabilities

    np.testing.assert_array_equal(model.embed(TEXTS).vectors, embed(run.path, TEXTS).vectors)

    a = model.attention(TEXTS[0], rollout=True).texts[0]
    b = introspect.attention(str(run.path), [TEXTS[0]], rollout=True).texts[0]
    assert a.tokens == b.tokens and a.label == b.label
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(a.rollout, b.rollout)


def test_evaluate_is_the_training_test_report(trained):
    _, _, run = trained
    report = semalign.load(run.path).evaluate().report
    assert report.accuracy == pytest.approx(run.test.accuracy, abs=1e-9)
    assert report.count == run.test.count


def test_an_unsupported_method_names_the_task_and_what_it_supports(trained):
    _, _, run = trained
    model = run.load()
    assert "generate" not in model.methods and "predict" in model.methods
    with pytest.raises(semalign.Unsupported) as err:
        model.generate("The movie")
    msg = str(err.value)
    assert "classification run" in msg and "no generate()" in msg
    for method in model.methods:
        assert f"{method}()" in msg


def test_the_library_takes_the_cli_options_with_the_cli_defaults():
    from semalign.cli.train import train as cli_train

    cli = inspect.signature(cli_train).parameters
    lib = inspect.signature(semalign.train).parameters
    cli_only = {"ctx", "resume", "quiet", "as_json"}
    assert set(cli) - cli_only == set(lib) - {"reporter"}
    for name in set(lib) - {"reporter"}:
        assert lib[name].default == cli[name].default, name


class Captured(Exception):
    pass


def test_cli_and_library_build_the_same_request(monkeypatch, tmp_path):
    from semalign.cli import app
    from semalign.workflows import train as workflow

    seen = []

    def capture(req, reporter=None):
        seen.append(req)
        raise Captured

    monkeypatch.setattr(workflow, "train", capture)
    data = write_reviews_csv(tmp_path / "r.csv", n=16)
    options = dict(TINY, window="3", scoring="dot,cosine", positions="sinusoidal", lr=0.01)
    args = ["train", "--data", str(data), "--name", "c", "--runs-dir", str(tmp_path)]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        args += (
            [flag, str(value)]
            if not isinstance(value, bool)
            else [flag if value else "--no-" + flag[2:]]
        )
    r = CliRunner().invoke(app, args)
    assert isinstance(r.exception, Captured), r.output
    with pytest.raises(Captured):
        semalign.train(
            data=str(data),
            name="c",
            runs_dir=str(tmp_path),
            **dict(options, scoring=["dot", "cosine"], window=3),
        )
    cli_req, lib_req = seen
    assert lib_req == cli_req
    assert lib_req.model["attention"]["window"] == (3, 3)


def test_bad_options_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown task"):
        semalign.train("clasification", runs_dir=tmp_path)
    with pytest.raises(RunError, match="nothing"):
        semalign.load(tmp_path / "nothing")
