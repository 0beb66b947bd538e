"""`semalign inspect` from the command line, on one tiny trained run: every format, bad input."""

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image
from test_introspect import recompute_layer0
from typer.testing import CliRunner

from semalign.cli import app
from semalign.testing import tiny_run
from semalign.workflows.loading import load_run

runner = CliRunner()
TEXT = "the movie was great"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("inspect")
    run = tiny_run(root, "mix", scoring="dot,cosine", model={"layers": 2}, train={"epochs": 1})
    return root, run


def ok(args):
    r = runner.invoke(app, ["inspect", *args])
    assert r.exit_code == 0, r.output
    assert "Traceback" not in r.output
    return r.output


def one_line_error(args, *needles):
    r = runner.invoke(app, ["inspect", *args])
    assert r.exit_code != 0, r.output
    assert "Traceback" not in r.output
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1, r.output
    assert lines[0].startswith("error:"), lines[0]
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def test_inspect_help_does_not_import_jax_or_matplotlib():
    code = (
        "import sys\n"
        "from semalign.cli import app\n"
        "try:\n    app(['inspect', '--help'])\nexcept SystemExit:\n    pass\n"
        "for name in ('jax', 'flax', 'matplotlib'):\n"
        "    assert name not in sys.modules, name\n"
        "print('OK')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "OK" in out.stdout and "--rollout" in out.stdout


def test_terminal_defaults_to_the_newest_run_and_last_layer(trained, monkeypatch):
    root, run = trained
    monkeypatch.chdir(root)  # ./runs holds the run
    out = ok([TEXT])
    tokens = load_run(run).tokenizer.encode(TEXT).tokens
    for token in tokens:
        assert token in out
    assert "\x1b[" not in out  # not a terminal: plain text
    assert "mix (" in out and "scoring dot,cosine" in out
    assert "layer 1 · head 0 (dot)" in out and "layer 1 · head 1 (cosine)" in out
    assert "layer 0 ·" not in out
    assert "prediction:" in out and "top-3 attended tokens" in out


def test_terminal_options(trained, tmp_path):
    _, run = trained
    texts = tmp_path / "texts.txt"
    texts.write_text("a great film\n\nan awful plot\n", encoding="utf-8")
    out = ok([TEXT, "--run", str(run), "--file", str(texts), "--layer", "all", "--head", "1"])
    assert out.count("prediction:") == 3
    assert "layer 0 · head 1 (cosine)" in out and "layer 1 · head 1 (cosine)" in out
    assert "head 0" not in out
    out = ok([TEXT, "--run", str(run), "--rollout", "--no-color"])
    assert "rollout · 2 layers × 2 heads" in out and "\x1b[" not in out


def test_json_to_stdout_equals_recomputation_from_the_run_parameters(trained):
    _, run = trained
    out = ok([TEXT, "awful plot", "--run", str(run), "--format", "json", "--rollout"])
    doc = json.loads(out)
    assert doc["run"] == "mix" and doc["checkpoint"].startswith("epoch-")
    assert doc["head_scorings"] == ["dot", "cosine"] and doc["layers"] == [0, 1]
    loaded = load_run(run)
    assert doc["labels"] == list(loaded.labels)
    for t in doc["texts"]:
        weights = np.asarray(t["weights"], np.float32)
        logits = np.asarray(t["logits"], np.float32)
        assert weights.shape == (2, 2, len(t["ids"]), len(t["ids"]))
        ref_logits, ref_weights = recompute_layer0(loaded.model, np.asarray(t["ids"]))
        np.testing.assert_allclose(weights[0], ref_weights, atol=1e-5, rtol=0)
        np.testing.assert_allclose(logits[0], ref_logits, atol=1e-5, rtol=0)
        np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
        np.testing.assert_allclose(np.asarray(t["rollout"]).sum(-1), 1.0, atol=1e-5)
        probs = t["prediction"]["probabilities"]
        assert t["prediction"]["label"] == max(probs, key=probs.get)


def test_file_formats_and_no_clobber(trained, tmp_path):
    _, run = trained
    base = ["--run", str(run)]
    out = ok([TEXT, *base, "--out", str(tmp_path / "a.npz"), "--layer", "0", "--head", "1"])
    assert f"wrote {tmp_path / 'a.npz'}" in out
    with np.load(tmp_path / "a.npz", allow_pickle=False) as z:
        assert z["text0/weights"].shape[:2] == (1, 1)
        assert z["layers"].tolist() == [0] and z["heads"].tolist() == [1]
        _, ref = recompute_layer0(load_run(run).model, z["text0/ids"])
        np.testing.assert_allclose(z["text0/weights"][0, 0], ref[1], atol=1e-5, rtol=0)

    ok([TEXT, "awful plot", *base, "--format", "png", "--out", str(tmp_path / "p.png")])
    for name in ("p-1.png", "p-2.png"):
        with Image.open(tmp_path / name) as img:
            assert img.format == "PNG" and img.size[0] > 100 and img.size[1] > 100

    ok([TEXT, *base, "-o", str(tmp_path / "s.svg")])
    assert ET.parse(tmp_path / "s.svg").getroot().tag.endswith("svg")

    ok(["see https://x.org/a", *base, "-f", "html", "-o", str(tmp_path / "h.html")])
    page = (tmp_path / "h.html").read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page and 'id="head"' in page

    before = (tmp_path / "h.html").read_bytes()
    one_line_error(
        ["awful", *base, "-o", str(tmp_path / "h.html")], "already exists", "--overwrite"
    )
    assert (tmp_path / "h.html").read_bytes() == before
    ok(["awful", *base, "-o", str(tmp_path / "h.html"), "--overwrite"])
    assert (tmp_path / "h.html").read_bytes() != before


def test_default_out_file_in_the_current_folder(trained, tmp_path, monkeypatch):
    _, run = trained
    monkeypatch.chdir(tmp_path)
    ok([TEXT, "--run", str(run), "--format", "html"])
    assert (tmp_path / "attention.html").is_file()
    one_line_error([TEXT, "--run", str(run), "--format", "html"], "attention.html' already exists")


def test_bad_input_is_one_line(trained, tmp_path):
    root, run = trained
    base = ["--run", str(run)]
    one_line_error(["", *base], "text 1 is empty")
    one_line_error([*base], "nothing to inspect")
    one_line_error(["zzz qqq", *base], "only unknown tokens")
    one_line_error([TEXT, *base, "--layer", "2"], "layer 2 is out of range", "valid: 0 to 1")
    one_line_error([TEXT, *base, "--head", "7"], "head 7 is out of range", "valid: 0 to 1")
    one_line_error([TEXT, *base, "--layer", "first"], "--layer takes a layer number")
    one_line_error(
        [TEXT, *base, "-o", str(tmp_path / "missing" / "a.png")],
        "folder",
        "does not exist",
    )
    one_line_error([TEXT, *base, "-o", str(tmp_path / "a.gif")], "suffix '.gif'")
    one_line_error([TEXT, *base, "-f", "png", "-o", str(tmp_path / "a.svg")], "writes .png")
    one_line_error([TEXT, *base, "-f", "terminal", "-o", str(tmp_path / "a.txt")], "--out is")
    one_line_error([*base, "--file", str(tmp_path / "none.txt")], "does not exist")

    broken = tmp_path / "runs" / "broken"
    shutil.copytree(run, broken)
    (broken / "tokenizer.json").unlink()
    one_line_error([TEXT, "--run", str(broken)], "incomplete", "tokenizer.json")
    shutil.rmtree(broken / "checkpoints")
    one_line_error([TEXT, "--run", str(broken)], "incomplete", "checkpoints/")
    one_line_error([TEXT, "--runs-dir", str(tmp_path / "empty")], "semalign train")
    one_line_error([TEXT, "--run", str(tmp_path / "nope")], "no run at")
