"""onnxruntime vs JAX latency of the exported classifier, same process, same inputs.

For each scoring a classifier the size of `semalign train`'s default (vocab 20k, dim 64,
4 heads, 1 layer, max_len 512) is built with random weights, and its forward pass (ids +
mask -> probabilities) is timed under `jax.jit` (the model as trained: on a CPU the
explicit, chunked attention) and in onnxruntime, step by step:

  model-graph/basic  the model's own forward exported as is, ORT_ENABLE_BASIC
  model-graph/all    + ORT_ENABLE_ALL (onnxruntime's fusions)
  model-graph/daz    + denormals flushed to zero (session.set_denormal_as_zero)
  semalign/opset21   + the export graph (MatMul/Softmax attention, additive mask, native
                     LayerNormalization), no fused Attention op
  semalign           + opset 23: fused ONNX Attention op, onnxruntime's SkipLayerNormFusion
                     off. This is what `semalign export onnx` writes and `semalign.runtime`
                     runs (its DISABLED_OPTIMIZERS).
  +onnxsim           + onnx-simplifier, when it is installed (it is not a dependency)
  semalign/skipln    the shipped graph with SkipLayerNormFusion on (onnxruntime's default;
                     its fused residual Add + LayerNorm ran slower here than the two nodes)
  semalign@REV       with --against REV: the export graph as written at git revision REV,
                     timed in the same rounds (before/after a change to the graph)

Every variant is first checked against JAX (max |diff| < 1e-4). Warm-up runs are separate
from timing; JAX results are blocked on before each clock stop; variants are timed in
interleaved rounds (the machine may be shared). The median is reported, and the best
time too: on a machine busy with other work the median measures the load as much as the
model, the best time what the model costs when it gets the cores.

  python benchmarks/onnx_latency.py            # dot, l2, l1, differential, diff-transformer
  python benchmarks/onnx_latency.py --quick    # tiny model, seconds; used by the tests
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save  # noqa: E402


def _inputs(batch: int, seq: int, vocab: int, rng: np.random.Generator):
    lengths = rng.integers(max(1, seq // 2), seq + 1, batch)
    lengths[0] = seq
    ids = rng.integers(5, vocab, (batch, seq)).astype(np.int32)
    ids[:, 0] = 2
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int32)
    return ids * mask, mask


def _simplify(proto):
    try:
        import onnxsim
    except ImportError:
        return None
    simplified, ok = onnxsim.simplify(proto)
    return simplified if ok else None


def _graph_at(rev: str):
    """``semalign/workflows/export/graph.py`` as it was at git revision ``rev``, imported."""
    import importlib.util
    import subprocess
    import tempfile

    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "show", f"{rev}:semalign/workflows/export/graph.py"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "graph_at_rev.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("graph_at_rev", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def classifier(scoring: str, args):
    """The benchmarked classifier of ``scoring`` (eval mode) and its jitted probabilities."""
    import jax
    from flax import nnx

    from semalign.config import AttentionConfig, ModelConfig
    from semalign.tasks.classification.model import Classifier

    cfg = ModelConfig(
        vocab_size=args.vocab,
        num_classes=2,
        dim=args.dim,
        layers=args.layers,
        max_len=args.max_len,
        attention=AttentionConfig(scoring=scoring, heads=args.heads),
    )
    model = Classifier(cfg, rngs=nnx.Rngs(0))
    model.eval()

    @jax.jit
    def jax_probs(ids, mask):
        return jax.nn.softmax(model(ids, mask > 0).logits, axis=-1)

    return model, jax_probs


def checked_calls(scoring: str, sessions: dict, ids, mask, jax_probs) -> dict:
    """``{"jax": ..., name: ...}``: one call of JAX's probabilities and of each session.

    Each session's probabilities are checked against JAX's first; a difference of 1e-4 or
    more stops the script with one line.
    """
    feed = {"input_ids": ids, "attention_mask": mask}
    ref = np.asarray(jax_probs(ids, mask))
    fns = {"jax": lambda: jax_probs(ids, mask).block_until_ready()}
    for name, sess in sessions.items():
        diff = float(np.max(np.abs(sess.run(["probabilities"], feed)[0] - ref)))
        if not diff < 1e-4:
            raise SystemExit(f"{scoring} {name}: onnxruntime differs from JAX by {diff:.3g}")
        fns[name] = lambda sess=sess: sess.run(["probabilities"], feed)
    return fns


def interleaved(fns: dict, args) -> tuple[dict[str, list[float]], list[float], list[str]]:
    """Warm every call up, then time ``args.rounds`` rounds of ``args.reps`` calls each.

    Rounds interleave the calls, so a load spike hits every one of them. Returns the
    seconds of each call by name, and the 1-minute load and UTC time before and after.
    """
    for fn in fns.values():  # warm-up, not timed
        for _ in range(args.warmup):
            fn()
    load, utc = [os.getloadavg()[0]], [time.strftime("%H:%M:%S", time.gmtime())]
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(args.rounds):
        for name, fn in fns.items():
            for _ in range(args.reps):
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
    load.append(os.getloadavg()[0])
    utc.append(time.strftime("%H:%M:%S", time.gmtime()))
    return times, load, utc


def round_medians(ts: list[float], reps: int) -> list[float]:
    """The median of each round's ``reps`` calls."""
    return [statistics.median(ts[i : i + reps]) for i in range(0, len(ts), reps)]


def bench_scoring(scoring: str, args) -> dict:
    import onnxruntime as ort

    from semalign.runtime import session_options
    from semalign.runtime.onnx import DISABLED_OPTIMIZERS
    from semalign.workflows.export.graph import convert

    model, jax_probs = classifier(scoring, args)
    t0 = time.perf_counter()
    graphs = {"model": convert(model, kernel="model"), "semalign": convert(model)}
    if not args.quick:
        graphs["semalign/opset21"] = convert(model, opset=21)
        if args.against:
            graphs[f"semalign@{args.against}"] = _graph_at(args.against).convert(model)
        simplified = _simplify(graphs["semalign"])
        if simplified is not None:
            graphs["+onnxsim"] = simplified
    convert_s = time.perf_counter() - t0

    def session(graph: str, level: str, daz: bool, disabled: tuple[str, ...] = ()):
        opts = session_options(
            args.threads, level=level, denormal_as_zero=daz, spinning=args.spinning
        )
        return ort.InferenceSession(
            graphs[graph].SerializeToString(),
            opts,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=list(disabled),
        )

    steps = [
        ("model-graph/basic", "model", "basic", False),
        ("model-graph/all", "model", "all", False),
        ("model-graph/daz", "model", "all", True),
        ("semalign/opset21", "semalign/opset21", "all", True),
        ("semalign", "semalign", "all", True, DISABLED_OPTIMIZERS),
        ("+onnxsim", "+onnxsim", "all", True),
    ]
    if not args.quick:
        steps.append(("semalign/skipln", "semalign", "all", True))
        if args.against:
            steps.append(
                (
                    f"semalign@{args.against}",
                    f"semalign@{args.against}",
                    "all",
                    True,
                    DISABLED_OPTIMIZERS,
                )
            )
    variants = {name: session(g, *rest) for name, g, *rest in steps if g in graphs}
    rng = np.random.default_rng(0)
    rows = []
    for batch in args.batches:
        ids, mask = _inputs(batch, args.seq, args.vocab, rng)
        fns = checked_calls(scoring, variants, ids, mask, jax_probs)
        times, load, _ = interleaved(fns, args)
        med = {name: statistics.median(ts) * 1e3 for name, ts in times.items()}
        best = {name: min(ts) * 1e3 for name, ts in times.items()}
        # Each round's median over JAX's in the same round: the steadiest figure under load.
        jax_rounds = round_medians(times["jax"], args.reps)
        per_round = {
            n: statistics.median(
                [a / b for a, b in zip(round_medians(times[n], args.reps), jax_rounds, strict=True)]
            )
            for n in variants
        }
        row = {
            "scoring": scoring,
            "batch": batch,
            "seq": args.seq,
            "load": load,
            "jax_ms": {"median": med["jax"], "best": best["jax"]},
            "onnxruntime_ms": {n: {"median": med[n], "best": best[n]} for n in variants},
            "ratio": {n: med[n] / med["jax"] for n in variants},
            "ratio_best": {n: best[n] / best["jax"] for n in variants},
            "ratio_per_round": per_round,
        }
        rows.append(row)
        print(
            f"{scoring:>16} batch {batch:>3} x seq {args.seq}: jax median {med['jax']:8.3f} ms"
            f"  best {best['jax']:8.3f} ms  (load {load[0]:.1f}-{load[1]:.1f})"
        )
        for n in variants:
            print(
                f"{'':>18}{n:<18} median {med[n]:8.3f} ms {med[n] / med['jax']:5.2f}x jax"
                f"  best {best[n]:8.3f} ms {best[n] / best['jax']:5.2f}x jax"
                f"  per round {per_round[n]:5.2f}x"
            )
    return {"rows": rows, "convert_seconds": convert_s}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny model, few repetitions")
    p.add_argument("--scorings", default="dot,l2,l1,differential,diff-transformer")
    p.add_argument("--batches", default="1,32")
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    p.add_argument("--spinning", action="store_true", help="onnxruntime threads busy-wait")
    p.add_argument("--no-save", action="store_true", help="print only")
    p.add_argument("--out", default=None, help="result name (default onnx_latency[-quick])")
    p.add_argument(
        "--against",
        default=None,
        metavar="REV",
        help="also time the export graph as written at git revision REV (same process)",
    )
    args = p.parse_args()
    args.batches = [int(b) for b in args.batches.split(",")]
    if args.quick:
        args.scorings, args.batches, args.seq = "dot", [1, 4], 16
        args.vocab, args.dim, args.heads, args.layers, args.max_len = 200, 16, 2, 1, 32
        args.warmup, args.rounds, args.reps = 2, 2, 3
    else:
        args.vocab, args.dim, args.heads, args.layers, args.max_len = 20_000, 64, 4, 1, 512
        args.warmup, args.rounds, args.reps = 10, 8, 10
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    logging.getLogger("onnx_ir").setLevel(logging.ERROR)
    results = {s: bench_scoring(s, args) for s in args.scorings.split(",")}
    for key, what in (("ratio", "median"), ("ratio_best", "best")):
        ratios = [r[key]["semalign"] for res in results.values() for r in res["rows"]]
        print(
            f"semalign export: onnxruntime / JAX latency ratio ({what}) "
            f"{min(ratios):.2f}-{max(ratios):.2f}"
        )
    if not args.no_save:
        payload = {
            "config": {
                k: getattr(args, k)
                for k in ("quick", "batches", "seq", "vocab", "dim", "heads", "layers", "max_len")
            }
            | {"threads": args.threads or os.cpu_count(), "spinning": args.spinning},
            "results": results,
        }
        name = args.out or ("onnx_latency-quick" if args.quick else "onnx_latency")
        print("saved", save(name, payload))


if __name__ == "__main__":
    main()
