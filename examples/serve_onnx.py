"""Serve an exported classifier over HTTP with the standard library and onnxruntime, no JAX.

``semalign.runtime`` reads the ``.onnx`` file (graph, labels, tokenizer and max length are
all inside it) and runs it with onnxruntime; ``http.server`` does the rest. This process
never imports JAX: ``GET /health`` reports the JAX modules loaded (none).

    POST /predict  {"texts": ["a fine film", ...]}  ->  {"predictions": [{label, score, ...}]}
    GET  /health                                    ->  {"model", "labels", "jax_modules"}

Run:
    semalign export onnx --run runs/my-run                         # once, with JAX
    python examples/serve_onnx.py --model runs/my-run/model.onnx --port 8000
    curl -s localhost:8000/predict -d '{"texts": ["a wonderful film"]}'
    python examples/serve_onnx.py --quick   # train + export a tiny run (CLI subprocesses),
                                            # serve it, send two requests, stop
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from semalign.runtime import OnnxClassifier

HEAVY = ("jax", "jaxlib", "flax", "optax", "orbax", "jax2onnx")


def jax_modules() -> list[str]:
    """Top-level JAX-family modules loaded in this process."""
    return sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))


def handler_for(clf: OnnxClassifier) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to one model."""

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path != "/health":
                return self._send(404, {"error": "GET /health or POST /predict"})
            info = {"model": str(clf.path), "labels": list(clf.labels)}
            self._send(200, {**info, "jax_modules": jax_modules()})

        def do_POST(self) -> None:
            if self.path != "/predict":
                return self._send(404, {"error": "POST /predict"})
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                texts = body["texts"]
                if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                return self._send(400, {"error": 'send JSON {"texts": ["a text", ...]}'})
            preds = clf.predict(texts) if texts else []
            self._send(200, {"predictions": [p.to_dict() for p in preds]})

        def log_message(self, *args) -> None:  # quiet: one line per request is noise here
            pass

    return Handler


def tiny_model(work: Path) -> Path:
    """Train and export a tiny classifier with the CLI in subprocesses (JAX lives there)."""
    from semalign.testing import write_reviews_csv

    data = write_reviews_csv(work / "reviews.csv", n=64)
    cli = [sys.executable, "-m", "semalign.cli"]
    tiny = "--vocab-size 64 --max-len 32 --dim 16 --heads 2 --batch-size 16 --epochs 1"
    for args in (
        ["train", "--data", str(data), "--runs-dir", str(work), "--name", "tiny", "--quiet"],
        ["export", "onnx", "--run", str(work / "tiny")],
    ):
        subprocess.run(cli + args + (tiny.split() if args[0] == "train" else []), check=True)
    return work / "tiny" / "model.onnx"


def ask(url: str, body: dict | None = None) -> dict:
    """GET (no body) or POST JSON; the decoded JSON answer."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=30) as r:
        return json.loads(r.read())


def main() -> None:
    """Serve forever, or (``--quick``) serve, ask twice, print and stop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="an exported .onnx classifier")
    parser.add_argument("--port", type=int, default=8000, help="0: any free port")
    parser.add_argument("--quick", action="store_true", help="serve, send requests, stop")
    args = parser.parse_args()
    if args.model is None:
        if not args.quick:
            parser.error("give --model FILE.onnx (or --quick to make a tiny one)")
        args.model = tiny_model(Path(tempfile.mkdtemp(prefix="semalign-serve-")))
    clf = OnnxClassifier(args.model)
    server = ThreadingHTTPServer(("127.0.0.1", 0 if args.quick else args.port), handler_for(clf))
    url = f"http://127.0.0.1:{server.server_address[1]}"
    print(f"serving {args.model} on {url}", flush=True)
    if not args.quick:
        server.serve_forever()
        return
    threading.Thread(target=server.serve_forever, daemon=True).start()
    texts = ["a great and wonderful film", "boring and dull"]
    print("predict:", json.dumps(ask(url + "/predict", {"texts": texts})))
    print("health:", json.dumps(ask(url + "/health")))
    server.shutdown()


if __name__ == "__main__":
    main()
