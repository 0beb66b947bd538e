"""semalign.render.html without a browser: one offline file, safe escaping, what it ships.

The page in a real browser is tests/test_html_browser.py.
"""

import fnmatch
import json
import shutil
import subprocess
import tomllib
from importlib import resources
from pathlib import Path

import html_reports
import numpy as np
import pytest

from semalign.render import html

ROOT = Path(__file__).resolve().parents[1]


def embedded(page):
    return json.loads(page.split('type="application/json">', 1)[1].split("</script>", 1)[0])


@pytest.fixture(scope="module")
def nasty():
    return html_reports.report(
        [(html_reports.NASTY, html_reports.NASTY_TOKENS), ("awful", ("[CLS]", "awful"))]
    )


def test_one_offline_file_whatever_the_text(nasty):
    page = html.page(nasty)
    lowered = page.lower()
    for ref in ("http://", "https://", " src=", " href=", "<link", "@import", "url(", "<iframe"):
        assert ref not in lowered, ref
    # The page's own two scripts and one style, nothing the text brought.
    assert page.count("<script") == 2 and page.count("</script>") == 2
    assert lowered.count("<style") == 1 and lowered.count("</style>") == 1
    assert "<!--" not in page and "\u2028" not in page
    for placeholder in ("/*CSS*/", "/*JS*/", "/*DATA*/"):
        assert placeholder not in page
    assert html.asset("attention.js") in page and html.asset("attention.css") in page
    data = embedded(page)
    assert data["texts"][0]["text"] == html_reports.NASTY
    assert data["texts"][0]["tokens"] == list(html_reports.NASTY_TOKENS)


def test_the_numbers_are_the_reports(nasty):
    data = embedded(html.page(nasty))
    assert data["layers"] == [0, 1] and [h for h, _ in data["heads"]] == [0, 1, 2]
    assert data["signed"] == [False, False, True] and data["causal"] is False
    assert (data["num_layers"], data["num_heads"]) == (2, 3)
    for got, t in zip(data["texts"], nasty.texts, strict=True):
        # Five decimals are kept: within 5e-6 of the float32 values.
        np.testing.assert_allclose(got["weights"], t.weights, atol=5e-6, rtol=0)
        np.testing.assert_allclose(got["logits"], t.logits, atol=5e-6, rtol=0)
        np.testing.assert_allclose(got["rollout"], t.rollout, atol=5e-6, rtol=0)
        np.testing.assert_array_equal(np.asarray(got["mask"], bool), t.mask)
        assert got["label"] == t.label
        assert [name for name, _ in got["prediction"]] == list(nasty.labels)
        np.testing.assert_allclose([p for _, p in got["prediction"]], t.probabilities, atol=1e-7)
    assert (nasty.texts[0].weights < 0).any()  # the signed head is exercised


def test_a_vocabulary_ships_its_most_probable_tokens():
    report = html_reports.report(
        [("the movie was", ("[CLS]", "the", "movie", "was"))], causal=True, labels=50, roll=False
    )
    data = embedded(html.page(report))
    (t,) = report.texts
    ranked = sorted(zip(report.labels, t.probabilities.tolist(), strict=True), key=lambda x: -x[1])
    want = ranked[: html.MAX_SHOWN_LABELS]
    got = data["texts"][0]["prediction"]
    assert [n for n, _ in got] == [n for n, _ in want]
    np.testing.assert_allclose([p for _, p in got], [p for _, p in want], atol=1e-7)
    assert data["num_labels"] == 50 and data["causal"] is True
    assert data["texts"][0]["rollout"] is None


@pytest.mark.parametrize(
    "bad",
    [
        "x</script>",
        "<script>",
        "a </STYLE> b",
        "<!-- c",
        "see http://x",
        "https://y",
        "@import 'a'",
    ],
)
def test_an_asset_that_cannot_be_inlined_is_refused(bad):
    with pytest.raises(RuntimeError, match="cannot be inlined"):
        html.inlinable("assets/x.js", "const a = 1;\n" + bad)
    assert html.inlinable("assets/x.js", "const a = 1;") == "const a = 1;"


def test_the_assets_are_package_data():
    # `pip install .` (not editable) ships only what [tool.setuptools.package-data] names.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = config["tool"]["setuptools"]["package-data"]["semalign.render"]
    folder = resources.files("semalign.render").joinpath("assets")
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    assert {"attention.js", "attention.css"} <= set(names)
    for name in names:
        assert any(fnmatch.fnmatch(f"assets/{name}", g) for g in globs), name


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to parse the page script")
def test_the_inline_script_parses(nasty, tmp_path):
    page = html.page(nasty)
    script = page.split("<script>", 1)[1].split("</script>", 1)[0]
    (tmp_path / "page.js").write_text(script, encoding="utf-8")
    run = subprocess.run(
        ["node", "--check", str(tmp_path / "page.js")], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
