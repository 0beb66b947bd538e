"""Causal language models: the KV cache matches the full pass for every scoring, the task
trains, evaluates (perplexity), generates and exports; bad input is one line."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from typer.testing import CliRunner

from semalign.attention import scoring
from semalign.cli import app
from semalign.config import AttentionConfig, ModelConfig
from semalign.tasks.causal_lm.model import CausalLM
from semalign.workflows.generate import SamplingConfig, sample

runner = CliRunner()
MAX_LEN = 12


def tiny_lm(name: str, **kw) -> CausalLM:
    attention = {"scoring": name, "heads": 2, "key_block": 4, **kw.pop("attention", {})}
    cfg = ModelConfig(
        vocab_size=40,
        dim=16,
        layers=2,
        mlp_ratio=1,
        max_len=MAX_LEN,
        dropout=0.0,
        attention=AttentionConfig(**attention),
        **kw,
    )
    model = CausalLM(cfg, rngs=nnx.Rngs(0))
    model.eval()
    return model


def cached_logits(model: CausalLM, ids: np.ndarray) -> np.ndarray:
    step = nnx.jit(lambda m, w, c, t: m.decode(w, c, t))
    cache = model.init_cache(ids.shape[0])
    rows = []
    for t in range(ids.shape[1]):
        prev = ids[:, t - 1] if t else np.zeros(ids.shape[0], np.int32)
        window = jnp.asarray(np.stack([prev, ids[:, t]], axis=1))
        logits, cache = step(model, window, cache, jnp.int32(t))
        rows.append(np.asarray(logits))
    return np.stack(rows, axis=1)


CASES = [(n, {}) for n in scoring.available()] + [
    ("dot,differential", {}),
    ("differential", {"bigram_buckets": 32}),
    ("l1", {"attention": {"window": (3, 0)}}),
    ("diff-transformer", {"positions": "sinusoidal"}),
]


@pytest.mark.parametrize(("name", "kw"), CASES, ids=[f"{n}{'+' if k else ''}" for n, k in CASES])
def test_kv_cache_gives_the_logits_of_the_full_pass(name, kw):
    model = tiny_lm(name, **kw)
    ids = np.random.default_rng(1).integers(5, 40, (2, MAX_LEN)).astype(np.int32)
    full = np.asarray(jax.jit(lambda x: nnx.merge(*nnx.split(model))(x).logits)(ids))
    np.testing.assert_allclose(cached_logits(model, ids), full, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", scoring.available())
def test_greedy_with_the_cache_gives_the_tokens_of_the_full_pass(name):
    from semalign.workflows.generate import Decoder

    model = tiny_lm(name)
    prompt = [2, 7, 11]
    outs = []
    for use_cache in (True, False):
        step = Decoder(model, use_cache=use_cache)
        ids = list(prompt)
        for t in range(len(ids) - 1):
            if use_cache:
                step(np.asarray(ids), t)
        while len(ids) < MAX_LEN:
            logits = step(np.asarray(ids), len(ids) - 1)
            ids.append(sample(logits, SamplingConfig(greedy=True), np.random.default_rng(0)))
        outs.append(ids)
    assert outs[0] == outs[1]


def test_sampling_keeps_to_top_k_and_top_p():
    logits = np.log(np.array([0, 0, 0, 0, 0, 0.5, 0.3, 0.15, 0.05]) + 1e-12)
    rng = np.random.default_rng(0)
    drawn = {sample(logits, SamplingConfig(top_k=2), rng) for _ in range(200)}
    assert drawn == {5, 6}
    drawn = {sample(logits, SamplingConfig(top_p=0.75), rng) for _ in range(200)}
    assert drawn == {5, 6}  # 0.5 + 0.3 reaches 0.75; 0.15 is not needed
    assert sample(logits, SamplingConfig(greedy=True), rng) == 5
    for bad, match in [
        ({"top_p": 0.0}, "--top-p must be in"),
        ({"temperature": 0.0}, "--temperature must be > 0"),
        ({"top_k": 0}, "--top-k must be >= 1"),
        ({"max_new_tokens": 0}, "--max-new-tokens must be >= 1"),
    ]:
        with pytest.raises(Exception, match=match):
            SamplingConfig(**bad)


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    from semalign.testing import write_reviews_csv

    root = tmp_path_factory.mktemp("lm")
    csv_path = write_reviews_csv(root / "r.csv", n=120)
    lines = [row.split(",")[0] for row in csv_path.read_text().splitlines()[1:]]
    text = root / "corpus.txt"
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ["train", "--task", "causal-lm", "--data", str(text), "--runs-dir", str(root / "runs")]
    args += ["--name", "lm", "--vocab-size", "64", "--max-len", "16", "--dim", "16"]
    args += ["--heads", "2", "--epochs", "3", "--batch-size", "16", "--lr", "0.01"]
    args += ["--scoring", "dot,differential", "--no-tensorboard", "--json"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    return root, json.loads(r.output)


def test_lm_trains_selects_on_perplexity_and_evaluates(lm_run):
    root, result = lm_run
    assert result["task"] == "causal-lm"
    test = result["test"]
    assert test["perplexity"] == pytest.approx(np.exp(test["loss"]), rel=1e-6)
    assert test["perplexity"] < 64  # far below a uniform guess over the vocabulary
    cfg = json.loads((root / "runs" / "lm" / "config.json").read_text())
    assert cfg["model"]["attention"]["causal"] is True
    r = runner.invoke(app, ["evaluate", "--run", str(root / "runs" / "lm"), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["report"]["perplexity"] == pytest.approx(test["perplexity"])


def test_generate_streams_and_is_reproducible(lm_run):
    root, _ = lm_run
    run = str(root / "runs" / "lm")
    args = ["generate", "the movie", "--run", run, "--max-new-tokens", "8", "--seed", "3"]
    a = json.loads(runner.invoke(app, [*args, "--json"]).output)
    b = json.loads(runner.invoke(app, [*args, "--json"]).output)
    assert a["ids"] == b["ids"] and 1 <= len(a["ids"]) <= 8 or a["stopped"] == "eos"
    c = json.loads(runner.invoke(app, [*args, "--json", "--no-cache"]).output)
    assert c["ids"] == a["ids"]  # same seed, same logits: the same tokens without the cache
    shown = runner.invoke(app, args)
    assert shown.exit_code == 0 and shown.output.startswith("the movie")


def test_generate_bad_input_is_one_line(lm_run, tmp_path):
    from semalign.testing import tiny_run

    root, _ = lm_run
    run = str(root / "runs" / "lm")
    cases = [
        (["generate", "  ", "--run", run], "the prompt is empty"),
        (["generate", "the movie " * 20, "--run", run], "shorten it"),
        (["generate", "the movie", "--run", run, "--top-p", "0"], "--top-p must be in"),
        (
            ["generate", "x", "--run", str(tiny_run(tmp_path, train={"epochs": 1}))],
            "needs a causal-lm run",
        ),
    ]
    for args, needle in cases:
        r = runner.invoke(app, args)
        assert r.exit_code == 2, r.output
        assert "Traceback" not in r.output
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], r.output


def test_lm_exports_its_logits_graph(lm_run):
    root, _ = lm_run
    r = runner.invoke(app, ["export", "onnx", "--run", str(root / "runs" / "lm"), "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["ok"] and report["outputs"] == ["logits"] and report["max_abs_diff"] <= 1e-4


def test_inspect_shows_the_causal_map_and_the_next_token(lm_run):
    from semalign.workflows import introspect

    root, _ = lm_run
    report = introspect.attention(str(root / "runs" / "lm"), ["the movie was"])
    t = report.texts[0]
    n = t.length
    upper = np.triu(np.ones((n, n), bool), 1)
    assert np.all(t.weights[..., upper] == 0)  # nothing attends to a later token
    assert not t.mask[upper].any() and t.mask[~upper].all()
    assert len(report.labels) == t.probabilities.size == 64  # the vocabulary
    assert abs(float(t.probabilities.sum()) - 1) < 1e-4
    r = runner.invoke(app, ["inspect", "the movie was", "--run", str(root / "runs" / "lm")])
    assert r.exit_code == 0, r.output
    assert "prediction" in r.output
    # The HTML page carries the causal map and the vocabulary's most probable tokens.
    page_path = root / "lm.html"
    args = ["inspect", "the movie was", "--run", str(root / "runs" / "lm"), "-o", str(page_path)]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    page = page_path.read_text(encoding="utf-8")
    data = json.loads(page.split('type="application/json">', 1)[1].split("</script>", 1)[0])
    assert data["causal"] is True and data["num_labels"] == 64
    (shown,) = data["texts"]
    np.testing.assert_array_equal(np.asarray(shown["mask"], bool), t.mask)
    np.testing.assert_allclose(shown["weights"], t.weights, atol=5e-6, rtol=0)
    top = np.argsort(-t.probabilities, kind="stable")[:8]
    assert [name for name, _ in shown["prediction"]] == [report.labels[i] for i in top]
