// semalign inspect --format html: the page's script, inlined at write time.
// It reads the report from the embedded JSON (the element with id "data") and writes
// every string with textContent, never as markup. No network, no library.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("data").textContent);
  const SEQ = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const DIV = [[5, 48, 97], [67, 147, 195], [247, 247, 247], [214, 96, 77], [103, 0, 31]];
  const MASKED = [226, 226, 226];
  const MIN_CELL = 12, MAX_CELL = 36; // heat-map cell, px: the text decides within these
  const MIN_FONT = 10, MAX_FONT = 13; // token labels never go below MIN_FONT
  const MIN_THUMB = 48, MAX_THUMB = 140; // model-view heat maps, px
  const ROW = 20, LINES_W = 200; // head view: row height (as the CSS), width of the lines
  const MIN_LINE = 0.01; // a weight below this draws no line (it would be invisible)
  const LINE = [31, 95, 168]; // lines of weights that cannot be negative
  const rgb = (c) => "rgb(" + c.join(",") + ")";
  const $ = (id) => document.getElementById(id);
  const probe = document.createElement("div");
  probe.innerHTML = "<svg></svg>"; // the HTML parser knows the SVG namespace; no URI here
  const SVG_NS = probe.firstChild.namespaceURI;
  const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function svg(tag, attrs) {
    const e = document.createElementNS(SVG_NS, tag);
    Object.entries(attrs).forEach(([k, v]) => e.setAttribute(k, String(v)));
    return e;
  }
  function lerp(stops, t) {
    t = clamp(t, 0, 1);
    const x = t * (stops.length - 1), i = Math.min(stops.length - 2, Math.floor(x)), f = x - i;
    return stops[i].map((v, k) => Math.round(v + f * (stops[i + 1][k] - v)));
  }
  function gradient(stops) {
    return "linear-gradient(to right," + stops.map(rgb).join(",") + ")";
  }
  function addOptions(sel, items) {
    const keep = sel.value;
    sel.textContent = "";
    items.forEach(([value, label]) => {
      const o = el("option", label);
      o.value = String(value);
      sel.appendChild(o);
    });
    if (items.some(([value]) => String(value) === keep)) sel.value = keep;
  }

  // ------------------------------------------------------------------ the numbers
  function headName(h) {
    return "head " + D.heads[h][0] + " (" + D.heads[h][1] + ")";
  }
  // layer / head: indices into the report's held layers / heads, or "rollout" / "mean".
  function matrix(t, layer, head, kind) {
    if (layer === "rollout") return { m: t.rollout, what: "rollout", signed: false };
    const per = t[kind][layer];
    if (head !== "mean") return { m: per[head], what: kind, signed: D.signed[head] };
    const n = t.tokens.length;
    const m = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) =>
      per.reduce((s, h) => s + h[i][j], 0) / per.length));
    return { m, what: kind + " (mean of heads)", signed: D.signed.some((x) => x) };
  }
  function scale(mat, mask) {
    let lo = Infinity, hi = -Infinity;
    mat.m.forEach((row, i) => row.forEach((v, j) => {
      if (mask[i][j]) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    }));
    if (lo === Infinity) { lo = 0; hi = 1; }
    const diverging = lo < 0 || mat.signed;
    const vmin = diverging ? -Math.max(-lo, hi) : (mat.what.startsWith("logits") ? lo : 0);
    let vmax = diverging ? -vmin : hi;
    if (!(vmax > vmin)) vmax = vmin + 1;
    return { vmin, vmax, diverging, stops: diverging ? DIV : SEQ };
  }
  // One pixel a cell; CSS scales the canvas up with image-rendering: pixelated.
  function paint(canvas, mat, mask, sc) {
    const n = mat.m.length;
    canvas.width = n;
    canvas.height = n;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(n, n), px = img.data;
    const lut = Array.from({ length: 256 }, (_, k) => lerp(sc.stops, k / 255));
    const span = sc.vmax - sc.vmin;
    for (let i = 0; i < n; i++) {
      const row = mat.m[i], seen = mask[i];
      for (let j = 0; j < n; j++) {
        const c = seen[j] ? lut[Math.round(clamp((row[j] - sc.vmin) / span, 0, 1) * 255)] : MASKED;
        const o = (i * n + j) * 4;
        px[o] = c[0]; px[o + 1] = c[1]; px[o + 2] = c[2]; px[o + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
  }

  // ------------------------------------------------------------------ the state
  function state() {
    const layer = $("layer").value, head = $("head").value;
    return {
      i: +$("text").value,
      t: D.texts[+$("text").value],
      layer: layer === "rollout" ? "rollout" : +layer,
      head: head === "mean" ? "mean" : +head,
      kind: $("values").value,
    };
  }
  function select(layer, head) {
    $("layer").value = String(layer);
    $("head").value = String(head);
    draw();
    $("detail").scrollIntoView({ block: "start" });
  }

  // ------------------------------------------------------------------ header
  function drawHeader(t) {
    $("sentence").textContent = "“" + t.text + "”";
    const pred = $("prediction");
    pred.textContent = "";
    t.prediction.forEach(([name, p]) => {
      const s = el("span");
      s.appendChild(el(name === t.label ? "b" : "span", name + " " + p.toFixed(3)));
      pred.appendChild(s);
    });
    if (D.num_labels > t.prediction.length) {
      const top = "(top " + t.prediction.length + " of " + D.num_labels + ")";
      pred.appendChild(el("span", top, "note"));
    }
    $("note").textContent =
      t.dropped ? t.dropped + " tokens beyond the model's length were cut" : "";
  }

  // ------------------------------------------------------------------ model view
  let gridKey = "";
  function drawGrid(s) {
    const g = $("grid");
    const key = [s.i, s.kind, g.clientWidth].join(" ");
    if (key === gridKey) { // same maps: only the selection moves
      g.querySelectorAll(".thumb").forEach((c) => c.classList.toggle("sel",
        s.layer === +c.dataset.layer && s.head === +c.dataset.head));
      return;
    }
    gridKey = key;
    g.textContent = "";
    const H = D.heads.length;
    const size = clamp(Math.floor((g.clientWidth - 80) / H) - 10, MIN_THUMB, MAX_THUMB);
    g.style.gridTemplateColumns = "auto repeat(" + H + ", " + (size + 4) + "px)";
    g.appendChild(el("span"));
    D.heads.forEach((_, h) => g.appendChild(el("span", headName(h), "lab colhead")));
    D.layers.forEach((l, li) => {
      g.appendChild(el("span", "layer " + l, "lab"));
      D.heads.forEach((_, h) => {
        const c = el("canvas", undefined, "thumb");
        c.style.width = c.style.height = size + "px";
        c.tabIndex = 0;
        c.setAttribute("role", "button");
        c.dataset.layer = String(li);
        c.dataset.head = String(h);
        c.title = "layer " + l + " · " + headName(h) + ": click to open";
        c.setAttribute("aria-label", c.title);
        if (s.layer === li && s.head === h) c.classList.add("sel");
        const mat = matrix(s.t, li, h, s.kind);
        paint(c, mat, s.t.mask, scale(mat, s.t.mask));
        c.addEventListener("click", () => select(li, h));
        c.addEventListener("keydown", (e) => {
          if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(li, h); }
        });
        g.appendChild(c);
      });
    });
  }

  // ------------------------------------------------------------------ one head large
  function label(tok, cls) {
    const e = el("div", tok, "tok " + cls);
    e.title = tok;
    return e;
  }
  function title(s) {
    if (s.layer === "rollout") {
      return "rollout · all " + D.num_layers + " layers × " + D.num_heads + " heads";
    }
    const head = s.head === "mean" ? "mean of heads" : headName(s.head);
    return "layer " + D.layers[s.layer] + " · " + head + " · " +
      (s.kind === "logits" ? "raw scores" : "weights");
  }
  function drawMap(s, mat) {
    const t = s.t, n = t.tokens.length, sc = scale(mat, t.mask);
    const box = $("map");
    box.textContent = "";
    const hm = el("div", undefined, "hm");
    const keys = el("div", undefined, "keys"), queries = el("div", undefined, "queries");
    const canvas = el("canvas");
    canvas.id = "heat";
    hm.append(el("div"), keys, queries, canvas);
    box.appendChild(hm);
    const ks = t.tokens.map((tok) => keys.appendChild(label(tok, "k")));
    const qs = t.tokens.map((tok) => queries.appendChild(label(tok, "q")));
    // The cell follows the token count and what the window leaves beside the labels.
    const wide = box.clientWidth - queries.offsetWidth - 8;
    const tall = Math.max(240, window.innerHeight - 160);
    const cell = clamp(Math.floor(Math.min(wide, tall) / n), MIN_CELL, MAX_CELL);
    const font = clamp(cell - 2, MIN_FONT, MAX_FONT) + "px";
    ks.forEach((e) => {
      e.style.width = e.style.lineHeight = cell + "px";
      e.style.fontSize = font;
    });
    qs.forEach((e) => {
      e.style.height = e.style.lineHeight = cell + "px";
      e.style.fontSize = font;
    });
    canvas.style.width = canvas.style.height = n * cell + "px";
    canvas.dataset.cell = String(cell);
    paint(canvas, mat, t.mask, sc);
    let on = null;
    const off = () => { if (on) on.forEach((e) => e.classList.remove("on")); on = null; };
    canvas.addEventListener("mousemove", (e) => {
      const r = canvas.getBoundingClientRect();
      const i = clamp(Math.floor((e.clientY - r.top) / cell), 0, n - 1);
      const j = clamp(Math.floor((e.clientX - r.left) / cell), 0, n - 1);
      const v = t.mask[i][j] ? mat.m[i][j].toFixed(4) : "masked";
      $("info").textContent = "#" + i + " " + t.tokens[i] + " → " + t.tokens[j] + " = " + v +
        "   (" + mat.what + ")";
      off();
      on = [qs[i], ks[j]];
      on.forEach((x) => x.classList.add("on"));
    });
    canvas.addEventListener("mouseleave", off);
    $("lo").textContent = sc.vmin.toFixed(3);
    $("hi").textContent = sc.vmax.toFixed(3);
    $("bar").style.background = gradient(sc.stops);
    const why = mat.what.startsWith("logits")
      ? ", centred at 0" : ", diverging: weights can be negative";
    $("scale").textContent = mat.what + (sc.diverging ? why : "") +
      (D.causal ? "; grey: masked (a token sees only those before it)" : "");
  }

  // ------------------------------------------------------------------ head view
  function drawLines(s) {
    const t = s.t, n = t.tokens.length;
    const mat = matrix(t, s.layer, s.head, "weights");
    const box = $("lines");
    box.textContent = "";
    const hv = el("div", undefined, "hv");
    const left = el("div", undefined, "col q"), right = el("div", undefined, "col k");
    const pic = svg("svg", {
      id: "linesvg", width: LINES_W, height: n * ROW, "data-min": MIN_LINE,
    });
    hv.append(left, pic, right);
    box.appendChild(hv);
    const byQ = t.tokens.map(() => []), byK = t.tokens.map(() => []);
    // Signed weights take the heat map's diverging ends: red above 0, blue below.
    const pos = mat.signed ? DIV[DIV.length - 1] : LINE, neg = DIV[0];
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const w = mat.m[i][j];
        if (!t.mask[i][j] || !(Math.abs(w) >= MIN_LINE)) continue;
        const line = svg("line", {
          x1: 0, y1: (i + 0.5) * ROW, x2: LINES_W, y2: (j + 0.5) * ROW,
          stroke: rgb(w >= 0 ? pos : neg), "stroke-opacity": Math.min(1, Math.abs(w)),
          "data-i": i, "data-j": j,
        });
        pic.appendChild(line);
        byQ[i].push(line);
        byK[j].push(line);
      }
    }
    const qs = t.tokens.map((tok) => left.appendChild(label(tok, "q")));
    const ks = t.tokens.map((tok) => right.appendChild(label(tok, "k")));
    const tint = (e, w) => {
      // The line's colour, as strong as the weight; at most 0.6 so the token stays legible.
      const alpha = 0.6 * Math.min(1, Math.abs(w));
      e.style.background = "rgba(" + (w >= 0 ? pos : neg).join(",") + "," + alpha.toFixed(3) + ")";
    };
    function focus(lines, others, weight) {
      pic.classList.add("focus");
      lines.forEach((l) => l.classList.add("on"));
      others.forEach((e, k) => { if (weight(k) !== null) tint(e, weight(k)); });
    }
    function blur(lines, others) {
      pic.classList.remove("focus");
      lines.forEach((l) => l.classList.remove("on"));
      others.forEach((e) => { e.style.background = ""; });
    }
    qs.forEach((e, i) => {
      const weight = (j) => (t.mask[i][j] ? mat.m[i][j] : null);
      e.addEventListener("mouseenter", () => focus(byQ[i], ks, weight));
      e.addEventListener("mouseleave", () => blur(byQ[i], ks));
    });
    ks.forEach((e, j) => {
      const weight = (i) => (t.mask[i][j] ? mat.m[i][j] : null);
      e.addEventListener("mouseenter", () => focus(byK[j], qs, weight));
      e.addEventListener("mouseleave", () => blur(byK[j], qs));
    });
    const what = s.layer === "rollout" ? "rollout" : "weights" +
      (s.head === "mean" ? " (mean of heads)" : "");
    $("linesnote").textContent = "queries left, keys right; line opacity = " + what +
      (mat.signed ? " (red ≥ 0, blue < 0, as the heat map)" : "") + "; hover a token to keep only its lines";
  }

  // ------------------------------------------------------------------ wiring
  function draw() {
    const s = state();
    const mat = matrix(s.t, s.layer, s.head, s.kind);
    $("head").disabled = $("values").disabled = s.layer === "rollout";
    drawHeader(s.t);
    drawGrid(s);
    $("title").textContent = title(s);
    drawMap(s, mat);
    drawLines(s);
  }
  function layerOptions(t) {
    const items = D.layers.map((l, i) => [i, "layer " + l]);
    if (t.rollout) items.push(["rollout", "rollout (all layers)"]);
    addOptions($("layer"), items);
  }
  $("meta").textContent = "run " + D.run + (D.checkpoint ? " (" + D.checkpoint + ")" : "") +
    " · scoring " + D.scoring + " · " + D.num_layers + " layers × " + D.num_heads + " heads";
  document.title = "semalign attention · " + D.run;
  addOptions($("text"), D.texts.map((t, i) => [i, (i + 1) + ": " + (t.text.length > 50 ?
    t.text.slice(0, 49) + "…" : t.text)]));
  addOptions($("head"), D.heads.map((_, h) => [h, headName(h)])
    .concat(D.heads.length > 1 ? [["mean", "mean of heads"]] : []));
  $("text").addEventListener("change", () => { layerOptions(D.texts[+$("text").value]); draw(); });
  ["layer", "head", "values"].forEach((id) => $(id).addEventListener("change", draw));
  let pending = 0;
  window.addEventListener("resize", () => {
    clearTimeout(pending);
    pending = setTimeout(draw, 150);
  });
  layerOptions(D.texts[0]);
  draw();
})();
