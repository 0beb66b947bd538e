"""One self-contained HTML page: every text, layer and head, weight on hover.

Everything is inline (CSS, JavaScript, the numbers as JSON): no CDN, no font, no
network, so the file opens offline and can be mailed around. Selectors pick the text,
the layer (or the rollout), the head (or the mean of the heads) and whether cells show
weights or raw scores; hovering a cell shows the query, the key and the value.
Every string from the report lives in the embedded JSON, where ``/`` and ``<`` are
escaped, so no text a user typed can become markup or a link.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from semalign.render._files import write_bytes
from semalign.workflows.introspect import is_signed

if TYPE_CHECKING:
    from semalign.workflows.introspect import AttentionReport

_DIGITS = 5  # decimals kept for display; JSON / NPZ hold the exact values


def _round(a: np.ndarray) -> list:
    return np.round(np.asarray(a, np.float64), _DIGITS).tolist()


def page_data(report: AttentionReport) -> dict[str, Any]:
    """What the page's script draws from."""
    return {
        "run": report.run,
        "checkpoint": report.checkpoint,
        "scoring": report.scoring,
        "labels": list(report.labels),
        "layers": list(report.layers),
        "heads": [[h, report.head_scorings[h]] for h in report.heads],
        "signed": [is_signed(report.head_scorings[h]) for h in report.heads],
        "texts": [
            {
                "text": t.text,
                "tokens": list(t.tokens),
                "label": t.label,
                "probabilities": [float(p) for p in t.probabilities],
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


def page(report: AttentionReport) -> str:
    """The whole HTML document."""
    return _TEMPLATE.replace("/*DATA*/", _embed(page_data(report)))


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
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; background: #fff; }
h1 { font-size: 1.3em; margin: 0 0 .2em; }
.meta, .note { color: #666; }
.controls { display: flex; flex-wrap: wrap; gap: 1em; margin: 1em 0; }
.controls label { display: flex; gap: .4em; align-items: center; }
#sentence { font-size: 1.1em; margin: .4em 0; }
#prediction span { display: inline-block; margin-right: 1em; }
#prediction b { color: #000; }
#info { font-family: ui-monospace, monospace; min-height: 1.4em; margin: .6em 0;
        padding: .3em .5em; background: #f4f4f4; border-radius: 4px; }
#map { overflow: auto; max-width: 100%; }
table.map { border-collapse: collapse; font-family: ui-monospace, monospace; font-size: 12px; }
table.map td.c { width: 18px; height: 18px; min-width: 18px; padding: 0; cursor: crosshair; }
table.map td.c:hover { outline: 2px solid #000; }
table.map td.c.hidden { background: repeating-linear-gradient(45deg, #eee, #eee 3px,
        #fff 3px, #fff 6px); }
table.map th { font-weight: normal; white-space: nowrap; padding: 0 .4em; }
table.map th.k { writing-mode: vertical-rl; transform: rotate(180deg); text-align: left;
        padding: .4em 0; }
table.map th.q { text-align: right; }
table.map th.on { background: #ffe58a; }
#legend { display: flex; align-items: center; gap: .5em; margin-top: .8em; }
#legend .bar { width: 220px; height: 12px; border: 1px solid #ccc; }
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
<div id="info">hover a cell: query → key = value</div>
<div id="map"></div>
<div id="legend"><span id="lo"></span><div class="bar" id="bar"></div><span id="hi"></span>
<span class="note" id="scale"></span></div>
<script id="data" type="application/json">/*DATA*/</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const SEQ = [[68,1,84],[59,82,139],[33,145,140],[94,201,98],[253,231,37]];
const DIV = [[5,48,97],[67,147,195],[247,247,247],[214,96,77],[103,0,31]];
const $ = (id) => document.getElementById(id);
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}
function lerp(stops, t) {
  t = Math.min(1, Math.max(0, t));
  const x = t * (stops.length - 1), i = Math.min(stops.length - 2, Math.floor(x)), f = x - i;
  const c = stops[i].map((v, k) => Math.round(v + f * (stops[i + 1][k] - v)));
  return "rgb(" + c.join(",") + ")";
}
function gradient(stops) {
  return "linear-gradient(to right," + stops.map((s) => "rgb(" + s.join(",") + ")").join(",") + ")";
}
function addOptions(sel, items) {
  sel.textContent = "";
  items.forEach(([value, label]) => {
    const o = el("option", label);
    o.value = value;
    sel.appendChild(o);
  });
}
$("meta").textContent = "run " + D.run + (D.checkpoint ? " (" + D.checkpoint + ")" : "") +
  " · scoring " + D.scoring;
document.title = "semalign attention · " + D.run;
addOptions($("text"), D.texts.map((t, i) => [i, (i + 1) + ": " + (t.text.length > 50 ?
  t.text.slice(0, 49) + "…" : t.text)]));
function layerOptions(t) {
  const items = D.layers.map((l, i) => [i, "layer " + l]);
  if (t.rollout) items.push(["rollout", "rollout (all layers)"]);
  addOptions($("layer"), items);
}
addOptions($("head"), D.heads.map(([h, s], i) => [i, "head " + h + " (" + s + ")"])
  .concat(D.heads.length > 1 ? [["mean", "mean of heads"]] : []));
function matrix(t) {
  const layer = $("layer").value, head = $("head").value, kind = $("values").value;
  if (layer === "rollout") return { m: t.rollout, what: "rollout", signed: false };
  const per = t[kind][+layer];
  if (head !== "mean") return { m: per[+head], what: kind, signed: D.signed[+head] };
  const n = t.tokens.length;
  const m = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) =>
    per.reduce((s, h) => s + h[i][j], 0) / per.length));
  return { m, what: kind + " (mean of heads)", signed: D.signed.some((x) => x) };
}
function draw() {
  const t = D.texts[+$("text").value];
  const { m, what, signed } = matrix(t);
  $("head").disabled = $("values").disabled = $("layer").value === "rollout";
  $("sentence").textContent = "“" + t.text + "”";
  const pred = $("prediction");
  pred.textContent = "";
  // The most probable first; a language model's vocabulary is cut to the top 8.
  const order = D.labels.map((_, i) => i).sort((a, b) => t.probabilities[b] - t.probabilities[a]);
  (D.labels.length <= 8 ? D.labels.map((_, i) => i) : order.slice(0, 8)).forEach((i) => {
    const name = D.labels[i];
    const s = el("span");
    const b = el(name === t.label ? "b" : "span", name + " " + t.probabilities[i].toFixed(3));
    s.appendChild(b);
    pred.appendChild(s);
  });
  $("note").textContent = t.dropped ? t.dropped + " tokens beyond the model's length were cut" : "";
  let lo = Infinity, hi = -Infinity;
  m.forEach((row, i) => row.forEach((v, j) => {
    if (t.mask[i][j]) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  }));
  const diverging = lo < 0 || signed;
  let vmin = diverging ? -Math.max(-lo, hi) : (what.startsWith("logits") ? lo : 0);
  let vmax = diverging ? -vmin : hi;
  if (!(vmax > vmin)) vmax = vmin + 1;
  const stops = diverging ? DIV : SEQ;
  const table = el("table", undefined, "map");
  const head = el("tr");
  head.appendChild(el("th"));
  const keyCells = t.tokens.map((tok) => {
    const th = el("th", tok, "k");
    head.appendChild(th);
    return th;
  });
  table.appendChild(head);
  const info = $("info");
  t.tokens.forEach((qt, i) => {
    const tr = el("tr");
    const qh = el("th", qt, "q");
    tr.appendChild(qh);
    m[i].forEach((v, j) => {
      const td = el("td", undefined, "c");
      const text = qt + " → " + t.tokens[j] + " = " + (t.mask[i][j] ? v.toFixed(4) : "masked");
      if (t.mask[i][j]) td.style.background = lerp(stops, (v - vmin) / (vmax - vmin));
      else td.classList.add("hidden");
      td.title = text;
      td.addEventListener("mouseenter", () => {
        info.textContent = "#" + i + " " + text + "   (" + what + ")";
        qh.classList.add("on"); keyCells[j].classList.add("on");
      });
      td.addEventListener("mouseleave", () => {
        qh.classList.remove("on"); keyCells[j].classList.remove("on");
      });
      tr.appendChild(td);
    });
    table.appendChild(tr);
  });
  $("map").textContent = "";
  $("map").appendChild(table);
  $("lo").textContent = vmin.toFixed(3);
  $("hi").textContent = vmax.toFixed(3);
  $("bar").style.background = gradient(stops);
  const why = what.startsWith("logits") ? ", centred at 0"
    : ", diverging: weights can be negative";
  $("scale").textContent = what + (diverging ? why : "");
}
$("text").addEventListener("change", () => { layerOptions(D.texts[+$("text").value]); draw(); });
["layer", "head", "values"].forEach((id) => $(id).addEventListener("change", draw));
layerOptions(D.texts[0]);
draw();
</script>
</body>
</html>
"""
