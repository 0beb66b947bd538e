"""Export-graph and session variants against the shipped graph and `jax.jit`, one process.

The forms tried for issue 15, item 3 (`l1` and `diff-transformer` at batch 32 on a 2-core
host), kept runnable so the numbers in benchmarks/README.md ("Batch 32 on the Intel host")
can be re-measured. Each variant is the classifier of `onnx_latency.py` (vocab 20k, dim 64,
4 heads, 1 layer), exported with one piece of the export swapped for the duration of the
conversion; it must match JAX (max |diff| < 1e-4) before it is timed. Variants, JAX and
the shipped graph (`semalign`) run in interleaved rounds; the median of each round's time
over JAX's in the same round is the steadiest figure on a shared machine.

  semalign            the shipped graph and session options (what `semalign.runtime` runs)
  threads=1           the shipped graph, one intra-op thread
  spinning            the shipped graph, intra-op threads busy-wait
  spinning+stop       spinning, and the pool told to stop spinning when a run ends
                      (session.force_spinning_stop)
  spin=Nus            the shipped graph, intra-op threads busy-wait for N µs, then sleep
                      (session.intra_op.spin_duration_us)
  l1/per-coordinate   l1: the Min over [h, d, q, k] as 16 Min [h, q, k] (one Split of q and
                      of k per example) summed with an Add chain: no [h, d, q, k] tensor
  l1/folded-sums      l1: q, k scaled and their sums over d carried as two more coordinates
                      (min(x, BIG) = x), so the loop body is Min + ReduceSum + Softmax +
                      MatMul with no transposes or element-wise passes
  l1/N-heads          l1: N heads of one example per Loop iteration (b·h/N iterations;
                      [N, d, q, k] per Min instead of [h, d, q, k])
  chunk=N             diff-transformer: N examples per Loop iteration (batch padded to a
                      multiple of N, sliced back)
  l1/min-floor        not a model: the bare Min + ReduceSum of l1's [h, d, q, k] over the
                      batch in an ONNX Loop, one example per iteration, the shipped layout

  python benchmarks/onnx_variants.py --scorings l1 --batches 32,1
  python benchmarks/onnx_variants.py --quick --no-save   # tiny model; used by the tests
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save  # noqa: E402
from onnx_latency import _inputs, checked_calls, classifier, interleaved, round_medians  # noqa: E402

#: Spin durations tried (``session.intra_op.spin_duration_us`` with spinning on): idle
#: intra-op threads busy-wait this long for the next parallel section, then sleep.
SPIN_US = (20, 100)

#: Stands in for +inf in the folded l1 form: min(x, BIG) is x for every finite logit.
BIG = 3.0e38


def l1_per_coordinate(q, k):
    """``(fn, q', k')`` for ``Scoring.split_logits``: per-coordinate ``Min`` + ``Add``."""
    import jax.numpy as jnp

    d = q.shape[-1]
    c = 1.0 / math.sqrt(d)
    qt = q.transpose(0, 3, 2, 1)[..., None] * (2.0 * c)  # [b, d, h, q, 1]
    kt = k.transpose(0, 3, 2, 1)[..., None, :] * (2.0 * c)  # [b, d, h, 1, k]
    hq = jnp.sum(qt, axis=1, keepdims=True) * -0.5
    hk = jnp.sum(kt, axis=1, keepdims=True) * -0.5

    def fn(qs, ks):
        qp, kp = jnp.split(qs, d + 1, axis=1), jnp.split(ks, d + 1, axis=1)
        total = qp[-1] + kp[-1]
        for a, b in zip(qp[:-1], kp[:-1], strict=True):
            total = total + jnp.minimum(a, b)
        return total[:, 0]

    return fn, jnp.concatenate([qt, hq], axis=1), jnp.concatenate([kt, hk], axis=1)


def l1_folded_sums(q, k):
    """``(fn, q', k')``: ``Σ_t min(q'_t, k'_t)`` over ``d + 2`` coordinates is the logits."""
    import jax.numpy as jnp

    c = 1.0 / math.sqrt(q.shape[-1])
    hq = jnp.sum(q, axis=-1, keepdims=True) * -c
    hk = jnp.sum(k, axis=-1, keepdims=True) * -c
    qa = jnp.concatenate([q * (2.0 * c), hq, jnp.full_like(hq, BIG)], axis=-1)
    ka = jnp.concatenate([k * (2.0 * c), jnp.full_like(hk, BIG), hk], axis=-1)
    qa, ka = qa.transpose(0, 2, 3, 1)[..., None], ka.transpose(0, 2, 3, 1)[..., None, :]
    return (lambda a, b: jnp.sum(jnp.minimum(a, b), axis=2)), qa, ka


def stacked_chunked(n: int):
    """``graph.stacked_softmaxes`` with ``n`` examples per ``Loop`` iteration (key mask only)."""
    import jax
    import jax.numpy as jnp

    from semalign.workflows.export import graph

    def stacked_softmaxes(a, scorer, x, bias, start, count):
        fq, fkt, wv, coef = graph._folded_projections(a, scorer, start, count, x.dtype)
        b, length = x.shape[0], x.shape[1]
        key_bias = bias is not None and bias.shape[2] == 1 and not graph._shared(bias)
        if not (bias is None or key_bias):
            raise NotImplementedError("chunked variant: padding masks only")
        column = bias[:, 0, 0, :, None] if key_bias else jnp.zeros((b, length, 1), jnp.float32)
        xa = jnp.concatenate([x, jnp.ones_like(x[..., :1]), column.astype(x.dtype)], axis=-1)
        chunks = (b + n - 1) // n
        xc = jnp.pad(xa, ((0, n - 1), (0, 0), (0, 0)))[: chunks * n]
        xc = xc.reshape(chunks, n, length, xa.shape[-1])

        def one(xe, xte):
            logits = jnp.matmul(jnp.matmul(xe[:, None], fq), jnp.matmul(fkt, xte[:, None]))
            w = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)  # [n, M·h, q, k]
            w = jnp.matmul(coef, w.reshape(n, coef.shape[1], -1))
            w = w.reshape(n, count, length, length).astype(x.dtype)
            return jnp.matmul(w, jnp.matmul(xe[:, None], wv))  # [n, h, q, d_v]

        out = jax.lax.map(lambda t: one(*t), (xc, xc.transpose(0, 1, 3, 2)))
        return out.reshape(chunks * n, count, length, -1)[:b].transpose(0, 2, 1, 3)

    return stacked_softmaxes


def heads_per_iteration(n: int):
    """``graph.softmax_attention`` over ``n`` heads of one example per ``Loop`` iteration.

    For scorings whose split is ``(logits, q, k)`` (``l1``): the batch's heads are
    regrouped as ``[b·h/n, L, n, d]`` before the loop and back after it.
    """
    import jax.numpy as jnp

    from semalign.workflows.export import graph

    def softmax_attention(logits_fn, q, k, v, bias):
        b, length, h = q.shape[0], q.shape[1], q.shape[2]
        g = h // n

        def group(t):  # [b, L, h, d] -> [b·g, L, n, d]
            t = t.reshape(b, t.shape[1], g, n, t.shape[-1]).transpose(0, 2, 1, 3, 4)
            return t.reshape(b * g, t.shape[2], n, t.shape[-1])

        if not graph._shared(bias):
            bias = jnp.broadcast_to(bias[:, None], (b, g, *bias.shape[1:]))
            bias = bias.reshape(b * g, *bias.shape[2:])
        out = graph._per_example(
            graph.partial(graph._softmax_matmul, logits_fn),
            bias,
            group(q),
            group(k),
            group(v).transpose(0, 2, 1, 3),
        )  # [b·g, n, L, d_v]
        out = out.reshape(b, g, n, length, out.shape[-1]).transpose(0, 3, 1, 2, 4)
        return out.reshape(b, length, h, out.shape[-1])

    return softmax_attention


@contextlib.contextmanager
def _swapped(owner, name: str, value):
    old = owner.__dict__.get(name, None)
    setattr(owner, name, value)
    try:
        yield
    finally:
        if old is None:
            delattr(owner, name)
        else:
            setattr(owner, name, old)


def graph_variants(scoring: str, quick: bool) -> dict:
    """``name -> context manager factory`` swapping a piece of the export for a variant."""
    from semalign.attention.scoring._base import FunctionScoring
    from semalign.workflows.export import graph

    if scoring == "l1":
        return {
            "l1/per-coordinate": lambda: _swapped(
                FunctionScoring, "split_logits", lambda self, q, k: l1_per_coordinate(q, k)
            ),
            "l1/folded-sums": lambda: _swapped(
                FunctionScoring, "split_logits", lambda self, q, k: l1_folded_sums(q, k)
            ),
            "l1/2-heads": lambda: _swapped(graph, "softmax_attention", heads_per_iteration(2)),
            "l1/1-head": lambda: _swapped(graph, "softmax_attention", heads_per_iteration(1)),
        }
    if scoring == "diff-transformer":
        sizes = (2,) if quick else (2, 4, 8)
        return {
            f"chunk={n}": lambda n=n: _swapped(graph, "stacked_softmaxes", stacked_chunked(n))
            for n in sizes
        }
    return {}


def min_floor(batch: int, heads: int, d: int, seq: int, threads: int | None):
    """A session running only l1's per-example ``Min`` + ``ReduceSum`` in a ``Loop``."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from semalign.runtime import session_options

    def value(name, elem=TensorProto.FLOAT, shape=None):
        return helper.make_tensor_value_info(name, elem, shape)

    def const(name, array):
        return numpy_helper.from_array(np.asarray(array), name)

    body = helper.make_graph(
        [
            helper.make_node("Gather", ["q", "i"], ["qe"], axis=0),
            helper.make_node("Gather", ["k", "i"], ["ke"], axis=0),
            helper.make_node("Min", ["qe", "ke"], ["m"]),  # [h, d, q, k]
            helper.make_node("ReduceSum", ["m", "axis"], ["s"], keepdims=0),
            helper.make_node("Identity", ["cond"], ["cond_out"]),
        ],
        "body",
        [value("i", TensorProto.INT64, []), value("cond", TensorProto.BOOL, [])],
        [value("cond_out", TensorProto.BOOL, []), value("s")],
        initializer=[const("axis", np.array([1], np.int64))],
    )
    nodes = [
        helper.make_node("Shape", ["q"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
        helper.make_node("Loop", ["n", "true"], ["out"], body=body),
    ]
    g = helper.make_graph(
        nodes,
        "l1_min_floor",
        [value("q"), value("k")],
        [value("out")],
        initializer=[const("zero", np.int64(0)), const("true", np.array(True))],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    sess = ort.InferenceSession(
        model.SerializeToString(), session_options(threads), providers=["CPUExecutionProvider"]
    )
    rng = np.random.default_rng(1)
    q = rng.standard_normal((batch, heads, d, seq, 1)).astype(np.float32)
    k = rng.standard_normal((batch, heads, d, 1, seq)).astype(np.float32)
    want = np.minimum(q, k).sum(axis=2)
    if not np.allclose(sess.run(["out"], {"q": q, "k": k})[0], want, atol=1e-4):
        raise SystemExit("l1/min-floor: onnxruntime differs from numpy")
    return lambda: sess.run(["out"], {"q": q, "k": k})


def bench_scoring(scoring: str, args) -> list[dict]:
    import onnxruntime as ort

    from semalign.runtime import session_options
    from semalign.runtime.onnx import DISABLED_OPTIMIZERS
    from semalign.workflows.export.graph import convert

    model, jax_probs = classifier(scoring, args)

    def wanted(name: str) -> bool:
        return args.only is None or name in args.only

    protos = {"semalign": convert(model)}
    for name, swap in graph_variants(scoring, args.quick).items():
        if wanted(name):
            with swap():
                protos[name] = convert(model)

    def session(proto, threads=args.threads, spinning=False, spin_us=None, stop=False):
        opts = session_options(threads, spinning=spinning)
        if spin_us is not None:
            opts.add_session_config_entry("session.intra_op.spin_duration_us", str(spin_us))
        if stop:
            opts.add_session_config_entry("session.force_spinning_stop", "1")
        return ort.InferenceSession(
            proto.SerializeToString(),
            opts,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=list(DISABLED_OPTIMIZERS),
        )

    sessions = {name: session(p) for name, p in protos.items()}
    if wanted("threads=1"):
        sessions["threads=1"] = session(protos["semalign"], threads=1)
    if wanted("spinning"):
        sessions["spinning"] = session(protos["semalign"], spinning=True)
    if wanted("spinning+stop"):
        sessions["spinning+stop"] = session(protos["semalign"], spinning=True, stop=True)
    for us in SPIN_US:
        if wanted(f"spin={us}us"):
            sessions[f"spin={us}us"] = session(protos["semalign"], spinning=True, spin_us=us)
    rng = np.random.default_rng(0)
    rows = []
    for batch in args.batches:
        ids, mask = _inputs(batch, args.seq, args.vocab, rng)
        fns = checked_calls(scoring, sessions, ids, mask, jax_probs)
        if scoring == "l1" and wanted("l1/min-floor"):
            fns["l1/min-floor"] = min_floor(
                batch, args.heads, args.dim // args.heads, args.seq, args.threads
            )
        rows.append(_timed(scoring, batch, fns, args))
    return rows


def _timed(scoring: str, batch: int, fns: dict, args) -> dict:
    times, load, utc = interleaved(fns, args)
    jax_rounds = round_medians(times["jax"], args.reps)
    jax_med, jax_best = statistics.median(times["jax"]), min(times["jax"])
    row: dict = {"scoring": scoring, "batch": batch, "seq": args.seq, "load": load, "utc": utc}
    row["ms"] = {
        n: {"median": statistics.median(t) * 1e3, "best": min(t) * 1e3} for n, t in times.items()
    }
    row["ratio"] = {
        n: {
            "median": statistics.median(t) / jax_med,
            "best": min(t) / jax_best,
            "per_round": statistics.median(
                [a / b for a, b in zip(round_medians(t, args.reps), jax_rounds, strict=True)]
            ),
        }
        for n, t in times.items()
    }
    print(
        f"{scoring} batch {batch} x seq {args.seq}, load {load[0]:.1f}-{load[1]:.1f}, "
        f"{utc[0]}-{utc[1]} UTC"
    )
    for n in times:
        ms, r = row["ms"][n], row["ratio"][n]
        print(
            f"  {n:<20} median {ms['median']:8.3f} ms  best {ms['best']:8.3f} ms  "
            f"/ jax: median {r['median']:.2f}x  best {r['best']:.2f}x  "
            f"per round {r['per_round']:.2f}x"
        )
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny model, few repetitions")
    p.add_argument("--scorings", default="l1,diff-transformer")
    p.add_argument("--batches", default="32,1")
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--threads", type=int, default=None, help="intra-op threads of `semalign`")
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--only", default=None, help="comma-separated variants (default: all)")
    p.add_argument("--no-save", action="store_true", help="print only")
    p.add_argument("--out", default="onnx_variants", help="result name")
    args = p.parse_args()
    args.batches = [int(b) for b in args.batches.split(",")]
    args.only = None if args.only is None else set(args.only.split(","))
    if args.quick:
        args.batches, args.seq = [3], 16
        args.vocab, args.dim, args.heads, args.layers, args.max_len = 200, 16, 2, 1, 32
        args.warmup, args.rounds, args.reps = 1, 2, 2
    else:
        args.vocab, args.dim, args.heads, args.layers, args.max_len = 20_000, 64, 4, 1, 512
        args.warmup = 5
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    logging.getLogger("onnx_ir").setLevel(logging.ERROR)
    rows = [row for s in args.scorings.split(",") for row in bench_scoring(s, args)]
    if not args.no_save:
        config = {k: getattr(args, k) for k in ("quick", "batches", "seq", "rounds", "reps")}
        config["threads"] = args.threads or os.cpu_count()
        print("saved", save(args.out, {"config": config, "rows": rows}))


if __name__ == "__main__":
    main()
