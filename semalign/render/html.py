"""One self-contained HTML page: a model view of every layer × head, one head large.

Everything is inline (CSS, JavaScript, the numbers as JSON): no CDN, no font, no
network, so the file opens offline and can be mailed around. The script and the style
live beside this module (``assets/attention.js``, ``assets/attention.css``, shipped as
package data) and are read and inlined when a page is written.

The page shows, for the chosen text:

* a **model view**: every layer × head of the report as a small heat map; a click opens
  that head large;
* the **heat map** of the selected layer / head (or the mean of the heads, or the
  rollout): its cell size follows the token count and the window, labels keep a
  readable font and the map scrolls when the text is long; hovering a cell shows the
  query, the key and the value;
* the **head view** (as bertviz's): the tokens in two columns, a line from each query
  to each key whose opacity is the weight; hovering a token keeps only its lines.

Every string from the report lives in the embedded JSON, where ``<``, ``>``, ``&`` and
``/`` are escaped, and the script writes it with ``textContent`` only, so no text a
user typed can become markup or a link.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from semalign.render._files import write_bytes
from semalign.workflows.introspect import is_signed

if TYPE_CHECKING:
    from semalign.workflows.introspect import AttentionReport

__all__ = ["MAX_SHOWN_LABELS", "asset", "inlinable", "page", "page_data", "write"]

_DIGITS = 5  # decimals kept for display; JSON / NPZ hold the exact values

#: A prediction over more outcomes (a language model's vocabulary) ships its top ones.
MAX_SHOWN_LABELS = 8


def _round(a: np.ndarray) -> list:
    return np.round(np.asarray(a, np.float64), _DIGITS).tolist()


def _prediction(labels: Sequence[str], probabilities: np.ndarray) -> list[list]:
    """``[[label, p], …]``: every label in order, or the most probable first when many."""
    p = np.asarray(probabilities, np.float64)
    if len(labels) <= MAX_SHOWN_LABELS:
        order = range(len(labels))
    else:
        order = np.argsort(-p, kind="stable")[:MAX_SHOWN_LABELS]
    return [[labels[i], float(p[i])] for i in order]


def page_data(report: AttentionReport) -> dict[str, Any]:
    """What the page's script draws from.

    Per text: ``weights`` and ``logits`` are ``[layers, heads, L, L]`` nested lists
    (the report's held layers and heads), ``mask`` ``[L, L]`` of 0/1, ``rollout``
    ``[L, L]`` or None.
    """
    return {
        "run": report.run,
        "checkpoint": report.checkpoint,
        "scoring": report.scoring,
        "num_layers": report.num_layers,
        "num_heads": report.num_heads,
        "num_labels": len(report.labels),
        "layers": list(report.layers),
        "heads": [[h, report.head_scorings[h]] for h in report.heads],
        "signed": [is_signed(report.head_scorings[h]) for h in report.heads],
        "causal": bool(report.attention_config.causal),
        "texts": [
            {
                "text": t.text,
                "tokens": list(t.tokens),
                "label": t.label,
                "prediction": _prediction(report.labels, t.probabilities),
                "dropped": t.dropped,
                "mask": t.mask.astype(int).tolist(),
                "weights": _round(t.weights),
                "logits": _round(t.logits),
                "rollout": None if t.rollout is None else _round(t.rollout),
            }
            for t in report.texts
        ],
    }


def _embed(data: dict[str, Any]) -> str:
    # Safe inside <script>: no "</script>", no "<!--"; "/" escaped so no URL appears.
    text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("/", "\\/")):
        text = text.replace(ch, esc)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


@functools.cache
def asset(name: str) -> str:
    """The text of ``assets/<name>``, checked safe to inline in ``<script>`` / ``<style>``.

    Raises:
      RuntimeError: the file holds a closing tag or a network reference (see
        :func:`inlinable`): a bug in the package, the page must stay one offline file.
    """
    text = resources.files("semalign.render").joinpath("assets", name).read_text("utf-8")
    return inlinable(f"semalign/render/assets/{name}", text)


def inlinable(name: str, text: str) -> str:
    """``text`` unchanged if it can go inside ``<script>`` / ``<style>`` of an offline page.

    Raises:
      RuntimeError: it holds a closing tag or a network reference.
    """
    lowered = text.lower()
    for bad in ("<script", "</script", "</style", "<!--", "http://", "https://", "@import", "url("):
        if bad in lowered:
            raise RuntimeError(f"{name} holds {bad!r}: it cannot be inlined in an offline page")
    return text


def page(report: AttentionReport) -> str:
    """The whole HTML document."""
    parts = {
        "CSS": asset("attention.css"),
        "JS": asset("attention.js"),
        "DATA": _embed(page_data(report)),
    }
    # One pass: what is put in is never searched for placeholders again.
    return re.sub(r"/\*(CSS|JS|DATA)\*/", lambda m: parts[m[1]], _TEMPLATE)


def write(report: AttentionReport, paths: Sequence[Path]) -> None:
    """Write :func:`page` to the one path."""
    (path,) = paths
    write_bytes(path, page(report).encode("utf-8"))


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>semalign attention</title>
<style>
/*CSS*/
</style>
</head>
<body>
<h1>attention</h1>
<p class="meta" id="meta"></p>
<div class="controls">
  <label>text <select id="text"></select></label>
  <label>layer <select id="layer"></select></label>
  <label>head <select id="head"></select></label>
  <label>values <select id="values">
    <option value="weights">weights</option><option value="logits">raw scores</option>
  </select></label>
</div>
<p id="sentence"></p>
<p id="prediction"></p>
<p class="note" id="note"></p>
<section id="model">
  <h2>model view <span class="note">every layer × head; click one to open it</span></h2>
  <div id="grid"></div>
</section>
<section id="detail">
  <h2 id="title"></h2>
  <div id="info">hover a cell: query → key = value</div>
  <div id="map"></div>
  <div id="legend"><span id="lo"></span><div class="bar" id="bar"></div><span id="hi"></span>
  <span class="note" id="scale"></span></div>
  <h3>head view <span class="note" id="linesnote"></span></h3>
  <div id="lines"></div>
</section>
<script id="data" type="application/json">/*DATA*/</script>
<script>
/*JS*/
</script>
</body>
</html>
"""
