"""semalign.workflows.introspect and semalign.render, on models built directly (no training).

The numbers are checked against an independent numpy recomputation from the parameters
(tests/reference.py holds every scoring), the rollout against a hand-written loop.
"""

import io
import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import reference
from flax import nnx
from PIL import Image
from rich.console import Console
from test_scoring import params_of

from semalign import render
from semalign.attention import scoring
from semalign.config import AttentionConfig, ModelConfig
from semalign.data import train_tokenizer
from semalign.errors import DataError, SemalignError
from semalign.render import dump, figures, html, terminal
from semalign.tasks.classification.model import Classifier
from semalign.testing import write_reviews_csv
from semalign.workflows import introspect

ALL = scoring.available()
MIXED = ("dot,cosine", "l1,diff-transformer")
CASES = (*ALL, *MIXED)
TEXTS = ("the movie was great fun and the plot a wonder", "awful scene")
LAYERS, HEADS = 2, 2


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    path = write_reviews_csv(tmp_path_factory.mktemp("tok") / "r.csv", n=80)
    texts = [line.split(",")[0] for line in path.read_text().splitlines()[1:]]
    return train_tokenizer(texts, vocab_size=64, kind="word")


def build(name, **attention):
    cfg = ModelConfig(
        vocab_size=64,
        num_classes=2,
        dim=16,
        layers=LAYERS,
        mlp_ratio=1,
        max_len=64,
        dropout=0.0,
        attention=AttentionConfig(scoring=name, heads=HEADS, **attention),
    )
    return Classifier(cfg, rngs=nnx.Rngs(1))


@pytest.fixture(scope="module", params=CASES)
def case(request, tok):
    model = build(request.param)
    report = introspect.attention(model, TEXTS, tokenizer=tok, rollout=True, labels=("neg", "pos"))
    return request.param, model, report


# ---------------------------------------------------------------- numpy references


def layer_norm(x, ln):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    scale, bias = (np.asarray(p[...], np.float64) for p in (ln.scale, ln.bias))
    return (x - mean) / np.sqrt(var + ln.epsilon) * scale + bias


def linear(x, lin):
    return x @ np.asarray(lin.kernel[...], np.float64) + np.asarray(lin.bias[...], np.float64)


def visible(n, causal=False, window=None):
    m = np.ones((n, n), bool)
    for i in range(n):
        for j in range(n):
            if causal and j > i:
                m[i, j] = False
            if window is not None:
                left, right = window
                if (left is not None and j < i - left) or (right is not None and j > i + right):
                    m[i, j] = False
    return m


def recompute_layer0(model, ids):
    """Layer-0 (logits, weights) ``[heads, L, L]`` from the parameters, in float64."""
    n = len(ids)
    table = np.asarray(model.encoder.embed.embedding[...], np.float64)
    pos = np.asarray(model.encoder.positions.table[...], np.float64)[:n]
    x = table[ids] + pos
    block = model.encoder.blocks[0]
    h = layer_norm(x, block.attn_norm)
    attn = block.attn
    d = attn.head_dim

    def split(y):
        return y.reshape(1, n, attn.heads, d)

    q, k, v = (split(linear(h, lin)) for lin in (attn.query, attn.key, attn.value))
    cfg = attn.config
    mask = visible(n, cfg.causal, cfg.window)[None, None]
    logits, weights = [], []
    for (name, start, count), scorer in zip(attn.groups, attn.scorers, strict=True):
        s = slice(start, start + count)
        lg, w, _ = reference.attention(
            name, q[:, :, s], k[:, :, s], v[:, :, s], mask, params_of(name, scorer)
        )
        logits.append(lg[0])
        weights.append(w[0])
    return np.concatenate(logits), np.concatenate(weights)


def rollout_reference(weights, n):
    """Abnar & Zuidema rollout by explicit loops over the first ``n`` (unmasked) tokens."""
    layers, heads = weights.shape[:2]
    result = np.eye(n)
    for layer in range(layers):
        a = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                a[i, j] = sum(abs(float(weights[layer, hh, i, j])) for hh in range(heads)) / heads
            a[i] /= a[i].sum()
        b = 0.5 * a + 0.5 * np.eye(n)
        for i in range(n):
            b[i] /= b[i].sum()
        result = b @ result
    return result


def lambdas(model, layer):
    """λ per head of one layer (nan for heads whose scoring is not diff-transformer)."""
    attn = model.encoder.blocks[layer].attn
    out = np.full(attn.heads, np.nan)
    for (name, start, count), scorer in zip(attn.groups, attn.scorers, strict=True):
        if name == "diff-transformer":
            out[start : start + count] = float(scorer.lam)
    return out


# ---------------------------------------------------------------- numbers


def test_weights_and_logits_equal_numpy_recomputation_from_parameters(case):
    name, model, report = case
    for t in report.texts:
        ref_logits, ref_weights = recompute_layer0(model, t.ids)
        np.testing.assert_allclose(t.weights[0], ref_weights, atol=1e-5, rtol=0)
        np.testing.assert_allclose(t.logits[0], ref_logits, atol=1e-5, rtol=0)


def test_rows_sum_to_one_over_unmasked_keys(case):
    name, model, report = case
    for t in report.texts:
        sums = t.weights.sum(-1)  # [layers, heads, L]
        for layer in range(LAYERS):
            lam = lambdas(model, layer)
            for head in range(HEADS):
                expected = 1.0 if np.isnan(lam[head]) else 1.0 - lam[head]
                np.testing.assert_allclose(sums[layer, head], expected, atol=1e-5, rtol=0)


def test_padded_keys_carry_zero_weight_and_padding_changes_nothing(case):
    name, model, report = case
    n = [t.length for t in report.texts]
    batch = np.zeros((2, max(n) + 3), np.int32)  # extra padding beyond the longest text
    for b, t in enumerate(report.texts):
        batch[b, : n[b]] = t.ids
    probs, logits, weights = introspect.capture_batch(model, batch)
    for b in range(2):
        assert np.all(weights[b, :, :, :, n[b] :] == 0.0)
        np.testing.assert_allclose(
            weights[b, :, :, : n[b], : n[b]], report.texts[b].weights, atol=1e-5, rtol=0
        )
        np.testing.assert_allclose(probs[b], report.texts[b].probabilities, atol=1e-5, rtol=0)


def test_rollout_matches_hand_written_reference(case):
    name, model, report = case
    n = [t.length for t in report.texts]
    batch = np.zeros((2, max(n)), np.int32)
    for b, t in enumerate(report.texts):
        batch[b, : n[b]] = t.ids
    _, _, padded = introspect.capture_batch(model, batch)
    for b, t in enumerate(report.texts):
        ref = rollout_reference(padded[b], n[b])
        np.testing.assert_allclose(t.rollout, ref, atol=1e-5, rtol=0)
        np.testing.assert_allclose(t.rollout.sum(-1), 1.0, atol=1e-5)
        assert t.rollout.shape == (n[b], n[b])


def test_report_fields(case):
    name, model, report = case
    assert report.run == "model" and report.checkpoint is None
    assert report.labels == ("neg", "pos")
    assert report.head_scorings == model.config.attention.head_scorings
    assert report.scoring == name
    assert report.layers == (0, 1) and report.heads == (0, 1)
    for t, text in zip(report.texts, TEXTS, strict=True):
        assert t.text == text and t.tokens[0] == "[CLS]" and len(t.tokens) == len(t.ids)
        assert t.logits.shape == t.weights.shape == (LAYERS, HEADS, t.length, t.length)
        assert t.logits.dtype == t.weights.dtype == np.float32
        assert t.label == report.labels[int(np.argmax(t.probabilities))]
        assert math.isclose(float(t.probabilities.sum()), 1.0, abs_tol=1e-5)
        assert not t.weights.flags.writeable  # frozen arrays in a frozen dataclass
    assert "the" in report.texts[0].tokens and "awful" in report.texts[1].tokens


def test_rollout_closed_forms():
    # One layer of uniform attention over 2 tokens: 0.5·U + 0.5·I.
    w = np.full((1, 3, 2, 2), 0.5)
    np.testing.assert_allclose(introspect.rollout(w), [[0.75, 0.25], [0.25, 0.75]], atol=1e-7)
    # Identity attention stays identity through any number of layers.
    eye = np.broadcast_to(np.eye(4), (3, 2, 4, 4))
    np.testing.assert_allclose(introspect.rollout(eye), np.eye(4), atol=1e-7)
    # Signed (DIFF-Transformer) weights enter as magnitudes.
    signed = np.array([[[[0.9, -0.1], [-0.2, 0.4]]]])
    np.testing.assert_allclose(
        introspect.rollout(signed), introspect.rollout(np.abs(signed)), atol=1e-7
    )
    with pytest.raises(ValueError, match=r"\[layers, heads, L, L\].*\(2, 2\)"):
        introspect.rollout(np.eye(2))


def test_causal_and_window_masks_are_reported_and_respected(tok):
    model = build("dot,l2", causal=True, window=(2, None))
    report = introspect.attention(model, TEXTS[:1], tokenizer=tok)
    t = report.texts[0]
    expected = visible(t.length, causal=True, window=(2, None))
    np.testing.assert_array_equal(t.mask, expected)
    assert np.all(t.weights[..., ~expected] == 0.0)
    np.testing.assert_allclose(t.weights.sum(-1), 1.0, atol=1e-5)
    _, ref = recompute_layer0(model, t.ids)
    np.testing.assert_allclose(t.weights[0], ref, atol=1e-5, rtol=0)


def test_layer_and_head_selection(tok):
    model = build("dot,cosine")
    full = introspect.attention(model, TEXTS, tokenizer=tok)
    one = introspect.attention(model, TEXTS, tokenizer=tok, layer="1", head=0)
    last = introspect.attention(model, TEXTS, tokenizer=tok, layer="last", head="all")
    assert one.layers == (1,) and one.heads == (0,)
    assert last.layers == (1,) and last.heads == (0, 1)
    for a, b, c in zip(full.texts, one.texts, last.texts, strict=True):
        np.testing.assert_array_equal(b.weights, a.weights[1:2, 0:1])
        np.testing.assert_array_equal(b.logits, a.logits[1:2, 0:1])
        np.testing.assert_array_equal(c.weights, a.weights[1:])
    # One text per forward pass gives the same numbers as one padded batch.
    single = introspect.attention(model, TEXTS, tokenizer=tok, batch_size=1)
    for a, b in zip(full.texts, single.texts, strict=True):
        np.testing.assert_allclose(b.weights, a.weights, atol=1e-5, rtol=0)
        np.testing.assert_allclose(b.probabilities, a.probabilities, atol=1e-5, rtol=0)
    with pytest.raises(SemalignError, match="batch_size must be a positive integer, got 0"):
        introspect.attention(model, TEXTS, tokenizer=tok, batch_size=0)


# ---------------------------------------------------------------- bad input


def test_pick_names_the_valid_range():
    assert introspect.pick(None, 3, "layer") == (0, 1, 2)
    assert introspect.pick(" ALL ", 2, "head") == (0, 1)
    with pytest.raises(
        SemalignError, match=r"layer 2 is out of range: .* 2 layers \(valid: 0 to 1"
    ):
        introspect.pick(2, 2, "layer")
    with pytest.raises(SemalignError, match=r"head -1 is out of range.*valid: 0 to 3"):
        introspect.pick("-1", 4, "head")
    with pytest.raises(SemalignError, match=r"--head takes a head number or 'all', got 'x'"):
        introspect.pick("x", 4, "head")
    with pytest.raises(SemalignError, match=r"1 layer \(valid: 0, or all\)"):
        introspect.pick(1, 1, "layer")


@pytest.mark.parametrize(
    "texts,message",
    [
        ([], "nothing to inspect"),
        ([""], "text 1 is empty"),
        (["fine", "   "], "text 2 is empty"),
        (
            ["zzzz qqqq xxxx"],
            r"text 1 \('zzzz qqqq xxxx'\) has only unknown tokens \(3 × \[UNK\]\)",
        ),
        (["!!!"], "only unknown tokens"),
        ([3], "text 1 is not a string"),
    ],
)
def test_bad_texts_are_one_line_errors(tok, texts, message):
    model = build("dot")
    with pytest.raises(DataError, match=message) as err:
        introspect.attention(model, texts, tokenizer=tok)
    assert "\n" not in str(err.value)


def test_out_of_range_layer_and_bad_sources(tok):
    model = build("dot")
    with pytest.raises(SemalignError, match=r"layer 5 is out of range.*valid: 0 to 1"):
        introspect.attention(model, ["great"], tokenizer=tok, layer=5)
    with pytest.raises(SemalignError, match="needs its tokenizer"):
        introspect.attention(model, ["great"])
    with pytest.raises(SemalignError, match="2 classes but 3 labels"):
        introspect.attention(model, ["great"], tokenizer=tok, labels=("a", "b", "c"))
    with pytest.raises(SemalignError, match="cannot inspect a int"):
        introspect.attention(3, ["great"])


def test_read_texts(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("a fine film\n\n  dull mess  \n", encoding="utf-8")
    assert introspect.read_texts(path) == ["a fine film", "dull mess"]
    with pytest.raises(DataError, match="does not exist"):
        introspect.read_texts(tmp_path / "nope.txt")
    (tmp_path / "blank.txt").write_text("\n \n", encoding="utf-8")
    with pytest.raises(DataError, match="holds no text"):
        introspect.read_texts(tmp_path / "blank.txt")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DataError, match="not UTF-8"):
        introspect.read_texts(tmp_path / "bin.txt")


# ---------------------------------------------------------------- renderers


def draw(report, *, color, width=160, **kw):
    buf = io.StringIO()
    console = Console(
        file=buf,
        width=width,
        force_terminal=color,
        color_system="truecolor" if color else None,
        legacy_windows=False,
    )
    terminal.draw(report, console, **kw)
    return buf.getvalue()


def test_every_format_for_every_scoring(case, tok):
    name, model, report = case
    head_only = introspect.attention(model, TEXTS, tokenizer=tok, layer="last")
    plain = draw(head_only, color=False)
    for t in report.texts:
        for token in t.tokens:
            assert token in plain
    assert "prediction: " in plain and "top-3 attended tokens" in plain
    assert "\x1b[" not in plain
    colored = draw(head_only, color=True)
    assert "\x1b[" in colored and "48;2;" in colored  # truecolor cell backgrounds
    negative = any((t.weights < 0).any() for t in head_only.texts)
    assert head_only.signed == ("diff-transformer" in name)
    assert ("diverging" in colored) == (negative or head_only.signed)
    if negative:
        assert head_only.signed  # only DIFF-Transformer weights go below 0

    page = html.page(report)
    assert "http://" not in page and "https://" not in page
    doc = json.loads(dump.json_text(report))
    assert doc["head_scorings"] == list(report.head_scorings)
    np.testing.assert_array_equal(
        np.asarray(doc["texts"][1]["weights"], np.float32), report.texts[1].weights
    )


def test_terminal_grid_of_heads_when_they_fit(tok):
    report = introspect.attention(build("dot,cosine"), ["awful scene"], tokenizer=tok, layer=0)
    wide = draw(report, color=False, width=160).splitlines()
    narrow = draw(report, color=False, width=50).splitlines()
    assert any("head 0 (dot)" in line and "head 1 (cosine)" in line for line in wide)
    assert not any("head 0 (dot)" in line and "head 1 (cosine)" in line for line in narrow)
    assert all(len(line) <= 50 for line in narrow)


def test_terminal_truncates_long_texts_with_a_note(tok):
    words = " ".join(["the movie was great fun"] * 12)  # 60 words
    report = introspect.attention(build("dot"), [words], tokenizer=tok, layer=0, head=0)
    total = report.texts[0].length
    assert total > 40
    out = draw(report, color=False, width=400)
    assert f"showing first 40 of {total} tokens; use --format html for all" in out
    narrow = draw(report, color=False, width=80)
    assert "use --format html for all" in narrow
    assert all(len(line) <= 80 for line in narrow.splitlines())


def test_terminal_rollout_map(tok):
    report = introspect.attention(build("dot"), ["awful scene"], tokenizer=tok, rollout=True)
    out = draw(report, color=False)
    assert "rollout · 2 layers × 2 heads" in out and "top-3 attended tokens (rollout)" in out


def test_markup_in_tokens_is_shown_literally(tok):
    report = introspect.attention(build("dot"), ["[bold]great[/bold]"], tokenizer=tok)
    out = draw(report, color=True)
    assert "[CLS]" in out and "[bold]great[/bold]" in out


def test_png_and_svg(tok, tmp_path):
    report = introspect.attention(build("l1,diff-transformer"), TEXTS, tokenizer=tok)
    paths = render.output_paths("png", tmp_path / "a.png", 2)
    assert [p.name for p in paths] == ["a-1.png", "a-2.png"]
    render.render(report, "png", console=Console(), paths=paths)
    for i, path in enumerate(paths):
        fig = figures.figure(report, i)
        w, h = (round(v) for v in fig.get_size_inches() * fig.dpi)
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:
            assert img.format == "PNG" and img.size == (w, h)
    title = figures.title(report, 0)
    assert "model" in title and "l1,diff-transformer" in title
    assert "layer all (2)" in title and "head all (2)" in title
    (svg,) = render.output_paths("svg", tmp_path / "b.svg", 1)
    render.render(
        introspect.attention(build("dot"), ["awful"], tokenizer=tok, layer=1, head=0),
        "svg",
        console=Console(),
        paths=(svg,),
    )
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert "layer 1 · head 0" in svg.read_text()


def test_html_is_self_contained_even_with_links_in_the_text(tok, tmp_path):
    text = "great https://example.com/x http://a.b </script><script>alert(1)</script>"
    report = introspect.attention(build("dot"), [text, "awful"], tokenizer=tok, rollout=True)
    (path,) = render.output_paths("html", tmp_path / "a.html", 2)
    render.render(report, "html", console=Console(), paths=(path,))
    page = path.read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page
    assert page.count("<script") == 2 and page.count("</script>") == 2
    assert "<link" not in page and " src=" not in page and "@import" not in page
    for needed in ('id="layer"', 'id="head"', 'id="text"', "mouseenter", "rollout"):
        assert needed in page
    data = page.split('type="application/json">', 1)[1].split("</script>", 1)[0]
    parsed = json.loads(data)
    assert parsed["texts"][0]["text"] == text
    np.testing.assert_allclose(parsed["texts"][1]["weights"], report.texts[1].weights, atol=1e-5)


def test_json_and_npz_hold_everything(tok, tmp_path):
    model = build("dot,cosine", causal=True)
    report = introspect.attention(model, TEXTS, tokenizer=tok, rollout=True, labels=("n", "p"))
    (jpath,) = render.output_paths("json", tmp_path / "a.json", 2)
    (npath,) = render.output_paths("npz", tmp_path / "a.npz", 2)
    render.render(report, "json", console=Console(), paths=(jpath,))
    render.render(report, "npz", console=Console(), paths=(npath,))
    doc = json.loads(jpath.read_text(encoding="utf-8"))
    assert doc["format"] == dump.FORMAT and doc["scoring"] == "dot,cosine"
    assert doc["attention_config"]["causal"] is True
    assert doc["attention_config"]["scoring"] == ["dot", "cosine"]
    assert doc["layers"] == [0, 1] and doc["heads"] == [0, 1] and doc["rollout_rule"]
    with np.load(npath, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        assert meta["labels"] == ["n", "p"]
        assert list(z["head_scorings"]) == ["dot", "cosine"]
        for i, t in enumerate(report.texts):
            jt = doc["texts"][i]
            assert jt["tokens"] == list(t.tokens) == list(z[f"text{i}/tokens"])
            assert jt["ids"] == t.ids.tolist() == z[f"text{i}/ids"].tolist()
            assert jt["prediction"]["label"] == t.label
            for key in ("logits", "weights", "rollout", "mask"):
                want = getattr(t, key)
                np.testing.assert_array_equal(np.asarray(jt[key], want.dtype), want)
                np.testing.assert_array_equal(z[f"text{i}/{key}"], want)
            np.testing.assert_array_equal(z[f"text{i}/probabilities"], t.probabilities)
            # The dump alone is enough to recompute-check the weights.
            _, ref = recompute_layer0(model, np.asarray(jt["ids"]))
            np.testing.assert_allclose(z[f"text{i}/weights"][0], ref, atol=1e-5, rtol=0)


def test_json_prints_without_out(tok):
    report = introspect.attention(build("dot"), ["awful"], tokenizer=tok, layer=0, head=1)
    assert render.output_paths("json", None, 1) == ()
    buf = io.StringIO()
    render.render(report, "json", console=Console(file=buf), paths=())
    doc = json.loads(buf.getvalue())
    assert doc["layers"] == [0] and doc["heads"] == [1]
    assert np.asarray(doc["texts"][0]["weights"]).shape == (1, 1, 2, 2)


def test_output_paths_refuse_bad_targets(tmp_path):
    existing = tmp_path / "a.png"
    existing.write_bytes(b"mine")
    with pytest.raises(SemalignError, match=r"already exists: pass --overwrite"):
        render.output_paths("png", existing, 1)
    assert render.output_paths("png", existing, 1, overwrite=True) == (existing,)
    (tmp_path / "b-2.png").write_bytes(b"mine")
    with pytest.raises(SemalignError, match=r"b-2.png' already exists"):
        render.output_paths("png", tmp_path / "b.png", 3)
    with pytest.raises(SemalignError, match=r"folder '.*nope' does not exist"):
        render.output_paths("html", tmp_path / "nope" / "a.html", 1)
    with pytest.raises(SemalignError, match=r"has '.svg' but --format png writes .png"):
        render.output_paths("png", tmp_path / "a.svg", 1)
    with pytest.raises(SemalignError, match="--out is for file formats"):
        render.output_paths("terminal", tmp_path / "a.txt", 1)
    with pytest.raises(SemalignError, match="unknown format 'gif'"):
        render.output_paths("gif", None, 1)
    (tmp_path / "d.html").mkdir()
    with pytest.raises(SemalignError, match="it is a folder"):
        render.output_paths("html", tmp_path / "d.html", 1)
    assert existing.read_bytes() == b"mine"
    assert render.format_for("x.SVG") == "svg" and render.format_for(None) == "terminal"
    with pytest.raises(SemalignError, match=r"has suffix '.gif': end it in one of .png"):
        render.format_for("x.gif")


def test_registry_refuses_duplicates():
    assert list(render.RENDERERS) == ["terminal", "png", "svg", "html", "json", "npz"]
    with pytest.raises(ValueError, match="already registered"):
        render.register(render.RENDERERS["png"])
