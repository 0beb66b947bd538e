"""Train-step throughput: semalign against the original Keras model, measured in turn.

    python benchmarks/train_throughput.py                  # both sizes, variants, every scoring
    python benchmarks/train_throughput.py --quick          # smoke run (the test suite runs it)
    python benchmarks/train_throughput.py --keras-python /path/to/venv-keras/bin/python

The Keras side is the original NeuroTextStudio model (Embedding -> MultiHeadAttention ->
GlobalAveragePooling1D -> Dropout(0.2) -> Dense(1), Adam 1e-3) in Keras 3 on TensorFlow;
the semalign side is one ``Steps.train`` call of a classifier (``tasks/classification``),
built as ``semalign train`` builds it by default (``semalign {size}``: one host device per
core via ``semalign.use_cpu_cores()``, the mesh ``training_mesh`` picks and the
micro-batched step ``--micro-batch`` picks), configured as close to Keras as the library
allows (1 block, no MLP, no positions, mean pooling, dropout 0.2, the library's AdamW).
Both get the same shapes (batch 32, length 250, vocabulary 10,000, seeded random ids with
no padding).

Every measured thing ("arm") lives in a worker process that compiles and warms it up first
(timed separately) and then waits. The parent asks the arms in turn, one at a time, for a
round of ``--steps`` steps (semalign round, Keras round, ..., order rotated every round), so
load from other processes falls on all of them alike; it reports medians over the rounds and
the load average around each round. Keras runs under its own interpreter (TensorFlow and
JAX pin different versions of shared packages), found by ``--keras-python``, else the
``SEMALIGN_KERAS_PYTHON`` environment variable, else this interpreter if it can import
TensorFlow and Keras; without one the Keras side is skipped and the reason printed.

Tokens per second count ``batch x length`` (padded) tokens for both sides.

Besides the library's defaults the script times variants: attention settings (batch chunk,
fused kernel), dropout and its random bits, bfloat16, XLA CPU flags in fresh processes, and
the plain whole-batch step on one device (the library's step before micro-batching),
and the benchmark's own micro-batch step (:func:`_microbatch_train`, the proposal the
library's ``semalign.workflows.microbatch`` grew from).

``--default-model`` times instead the model ``semalign train`` builds by default (vocabulary
20,000, dim 64, 4 heads, MLP ratio 2, learned positions, max length 512, dropout 0.3) at the
lengths ``--lengths`` (default buckets 256 and 512; rows padded to a length drawn in
``(L/2, L]``), the library's step against the step before issue 15's attention change (a
micro-batch of one attention chunk recomputed its scores under ``jax.checkpoint``), and the
eval step micro-batch by micro-batch against the whole batch, paired round by round in one
process; no Keras.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

BATCH, LENGTH, VOCAB = 32, 250, 10_000
SIZES = {"D64H4": (64, 4), "D16H8": (16, 8)}
SCORINGS = ("dot", "general", "cosine", "l2", "l1", "differential", "diff-transformer", "additive")
PROTOCOL = "@@"  # worker lines meant for the parent start with this
PROPOSAL = "benchmark's micro-batch step: micro-batches of 2, attention unchunked"
LIBRARY = "the library's default step: host devices per core, micro-batches as planned"
# cpu-baseline.md, same machine, quiet: Keras epoch times and the straightforward Flax port.
BASELINE = {
    "keras_tokens_per_s": {"D64H4": 133_459, "D16H8": 101_000},
    "plain_flax_over_keras": 0.34,
}


@dataclass(frozen=True)
class Arm:
    """One thing to time: a Keras model or a semalign configuration.

    Attributes:
      name: label in tables.
      kind: ``keras`` or ``semalign``.
      size: key of :data:`SIZES`.
      scoring: semalign scoring name.
      fused: ``AttentionConfig.fused`` (None: the library's backend default).
      chunk: ``AttentionConfig.batch_chunk`` (None: the library's backend default).
      dropout: dropout rate (semalign applies it to embeddings, the attention branch and
        before the head; Keras only before the head, as the original).
      dtype: semalign computation dtype.
      rng_impl: PRNG implementation of the dropout key (``threefry2x32``, ``rbg``, ...).
      microbatch: if > 0, a proposed step (not the library's yet): the batch's gradient
        accumulated over micro-batches of this many rows under ``lax.scan`` inside the
        jitted step, then one optimizer update (same loss, same update).
      devices: with ``microbatch``: host devices (``--xla_force_host_platform_device_count``
        set in the worker's environment) the rows are split over, one per core.
      jit_compile: Keras ``compile(jit_compile=...)``; ``auto`` is off on a CPU-only host.
      env: extra environment of the worker process (XLA flags, threads).
      library: built as ``semalign train`` builds it by default: the worker calls
        ``semalign.use_cpu_cores()`` first, the mesh is ``hosts.training_mesh``'s and
        the micro-batch ``microbatch.with_micro_batch``'s (``microbatch`` and
        ``devices`` are ignored).
      note: what the arm tests.
      length: the batch's padded length.
      default_model: the model ``semalign train`` builds by default (:func:`_default_config`)
        on padded rows (:func:`_padded_batch`) instead of the Keras-like one.
      recompute_one_chunk: the attention as before issue 15's change: a batch of one
        chunk still under ``lax.map`` + ``jax.checkpoint`` (:func:`_explicit_chunked_before`).
      compare_to: another arm's name; the row gets this arm's paired speed-up over it.
      evaluate: time ``Steps.evaluate`` (the eval step) instead of ``Steps.train``.
      eval_whole_batch: the eval step on the whole batch, as before issue 15's change
        (``eval_micro_batch=0``), instead of micro-batch by micro-batch.

    """

    name: str
    kind: str
    size: str = "D64H4"
    scoring: str = "dot"
    fused: bool | None = None
    chunk: int | None = None
    dropout: float = 0.2
    dtype: str = "float32"
    rng_impl: str | None = None
    microbatch: int = 0
    devices: int = 1
    jit_compile: str | bool = "auto"
    env: dict = field(default_factory=dict)
    library: bool = False
    note: str = ""
    length: int = LENGTH
    default_model: bool = False
    recompute_one_chunk: bool = False
    compare_to: str = ""
    evaluate: bool = False
    eval_whole_batch: bool = False


# ----------------------------------------------------------------------------- worker side


def _batch():
    import numpy as np

    rng = np.random.default_rng(0)
    ids = rng.integers(1, VOCAB, (BATCH, LENGTH), dtype=np.int32)
    labels = rng.integers(0, 2, BATCH, dtype=np.int32)
    return ids, labels


def _padded_batch(length: int, vocab: int):
    """``(ids, labels)``: seeded rows of real lengths drawn in ``(length/2, length]``."""
    import numpy as np

    rng = np.random.default_rng(0)
    real = rng.integers(length // 2 + 1, length + 1, BATCH)
    ids = rng.integers(1, vocab, (BATCH, length), dtype=np.int32)
    ids[np.arange(length)[None] >= real[:, None]] = 0
    return ids, rng.integers(0, 2, BATCH, dtype=np.int32)


def _default_config(arm: Arm):
    """The classifier ``semalign train`` builds by default (its vocabulary: 20,000)."""
    from semalign.config import AttentionConfig, DataConfig, ModelConfig

    return ModelConfig(
        vocab_size=DataConfig().vocab_size,
        num_classes=2,
        attention=AttentionConfig(scoring=arm.scoring, fused=arm.fused, batch_chunk=arm.chunk),
    )


def _explicit_chunked_before(scorer, q, k, v, mask, dropout_rate, dropout_rng, capture, chunk):
    """``semalign.attention.core._explicit_chunked`` before issue 15's change (f5e0bd3)."""
    import jax
    import jax.numpy as jnp

    from semalign.attention import Capture
    from semalign.attention.core import _explicit

    b = q.shape[0]
    n = -(-b // chunk)
    pad = n * chunk - b
    masks = None if mask is None else jnp.broadcast_to(mask, (b, *mask.shape[1:]))

    def split(x):
        if x is None:
            return None
        x = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)) if pad else x
        return x.reshape(n, chunk, *x.shape[1:])

    rngs = None if dropout_rng is None else jax.random.split(dropout_rng, n)

    def one(xs):
        q1, k1, v1, m1, r1 = xs
        return _explicit(scorer, q1, k1, v1, m1, dropout_rate, r1, capture)

    fn = one if capture else jax.checkpoint(one)
    out, cap = jax.lax.map(fn, (split(q), split(k), split(v), split(masks), rngs))

    def merge(x):
        return x.reshape(n * chunk, *x.shape[2:])[:b]

    return merge(out), None if cap is None else Capture(merge(cap.logits), merge(cap.weights))


def _build_semalign(arm: Arm):
    import jax
    import numpy as np
    from flax import nnx

    from semalign.config import AttentionConfig, ModelConfig, TrainConfig
    from semalign.data import Batch
    from semalign.tasks.classification.model import Classifier
    from semalign.tasks.classification.task import TASK
    from semalign.workflows.optim import optimizer
    from semalign.workflows.steps import Steps

    dim, heads = SIZES[arm.size]
    cfg = (
        _default_config(arm)
        if arm.default_model
        else ModelConfig(
            vocab_size=VOCAB,
            num_classes=2,
            dim=dim,
            layers=1,
            mlp_ratio=0,
            max_len=LENGTH,
            positions="none",
            pooling="mean",
            dropout=arm.dropout,
            dtype=arm.dtype,
            attention=AttentionConfig(
                scoring=arm.scoring, heads=heads, fused=arm.fused, batch_chunk=arm.chunk
            ),
        )
    )
    dropout_key = jax.random.key(1, impl=arm.rng_impl) if arm.rng_impl else 1
    model = Classifier(cfg, rngs=nnx.Rngs(params=0, dropout=dropout_key))
    tx = optimizer(TrainConfig(), 20_000 // BATCH)
    opt = nnx.Optimizer(model, tx, wrt=nnx.Param)
    extra = {"micro_batch": arm.microbatch, "devices": arm.devices}
    if arm.library:
        from semalign import tasks
        from semalign.workflows.hosts import training_mesh
        from semalign.workflows.microbatch import with_micro_batch

        mesh = training_mesh(None, False, batch_size=BATCH, heads=heads)
        plan = with_micro_batch(
            TrainConfig(batch_size=BATCH), tasks.get("classification"), "cross-entropy", mesh
        )
        whole = {"eval_micro_batch": 0} if arm.eval_whole_batch else {}
        steps = Steps.for_task(TASK, model, opt, mesh=mesh, micro_batch=plan.micro_batch, **whole)
        train = steps.evaluate if arm.evaluate else steps.train
        extra = {
            "micro_batch": plan.micro_batch,
            "devices": jax.device_count(),
            "mesh": None if mesh is None else dict(mesh.shape),
        }
    elif arm.microbatch:
        train = _microbatch_train(model, opt, arm.microbatch, arm.devices)
    else:
        train = Steps.for_task(TASK, model, opt).train
    ids, labels = _padded_batch(arm.length, cfg.vocab_size) if arm.default_model else _batch()
    batch = Batch(ids, labels, np.ones(BATCH, np.float32))
    params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(nnx.state(model, nnx.Param)))

    def run(n: int) -> float:
        t = time.perf_counter()
        for _ in range(n):
            metrics = train(batch)
        jax.block_until_ready(metrics)
        return time.perf_counter() - t

    return run, params, extra


def _microbatch_train(model, optimizer, rows: int, devices: int = 1):
    """``Steps.train`` with the gradient accumulated over micro-batches of ``rows`` rows.

    On a CPU the activations of a few examples stay in cache through the whole forward and
    backward pass; the summed gradient is divided by the batch's weight once, so the loss
    and the update are those of ``Steps`` (up to float rounding and the
    dropout draws). With ``devices > 1`` (host devices, one per core) each device runs the
    micro-batch loop on its share of the rows under ``shard_map`` (dropout keys folded with
    the device index) and the gradients are summed across devices (``psum``).
    """
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx
    from jax.sharding import PartitionSpec

    from semalign import sharding
    from semalign.nn.losses import weighted_cross_entropy

    model.train()
    graph, params, rest = nnx.split(model, nnx.Param, ...)
    opt_graph, opt_state = nnx.split(optimizer)

    def loss(m, ids, labels, weights):
        logits = m(ids).logits
        total, count = weighted_cross_entropy(logits, labels, weights)
        correct = jnp.sum((jnp.argmax(logits, -1) == labels) * weights)
        return total, (total, count, correct)

    def body(carry, xs):
        params, rest, grads, sums = carry  # params ride along unchanged
        m = nnx.merge(graph, params, rest)
        g, out = nnx.grad(lambda m: loss(m, *xs), has_aux=True)(m)
        grads = jax.tree.map(jnp.add, grads, g)
        rest = nnx.split(m, nnx.Param, ...)[2]
        return (params, rest, grads, tuple(a + b for a, b in zip(sums, out, strict=True))), None

    def is_key(x):
        return jnp.issubdtype(x.dtype, jax.dtypes.prng_key)

    def local(params, rest, ids, labels, weights):
        n = ids.shape[0] // rows
        keys = rest
        if devices > 1:  # independent dropout per device
            index = jax.lax.axis_index(sharding.DATA)
            keys = jax.tree.map(lambda x: jax.random.fold_in(x, index) if is_key(x) else x, rest)
        split = [x.reshape(n, rows, *x.shape[1:]) for x in (ids, labels, weights)]
        zeros = jax.tree.map(jnp.zeros_like, params)
        carry = (params, keys, zeros, (jnp.zeros(()),) * 3)
        (_, after, grads, sums), _ = jax.lax.scan(body, carry, split)
        after = jax.tree.map(lambda old, new: old if is_key(old) else new, rest, after)
        if devices > 1:
            grads, sums = jax.lax.psum((grads, sums), sharding.DATA)
        return grads, after, sums

    if devices > 1:
        mesh = sharding.make_mesh(sharding.MeshSpec(data=devices))
        rep, rows_spec = PartitionSpec(), PartitionSpec(sharding.DATA)
        local = jax.shard_map(
            local,
            mesh=mesh,
            in_specs=(rep, rep, rows_spec, rows_spec, rows_spec),
            out_specs=(rep, rep, rep),
            check_vma=False,
        )

    def step(state, ids, labels, weights):
        params, rest, opt_state = state
        grads, rest, (total, count, correct) = local(params, rest, ids, labels, weights)
        grads = jax.tree.map(lambda g: g / jnp.maximum(count, 1.0), grads)
        m = nnx.merge(graph, params, rest)
        opt = nnx.merge(opt_graph, opt_state)
        opt.update(m, grads)
        _, params, rest = nnx.split(m, nnx.Param, ...)
        metrics = {
            "loss_sum": total,
            "correct": correct,
            "count": count,
            "grad_norm": optax.global_norm(grads),
        }
        return (params, rest, nnx.state(opt)), metrics

    jitted = jax.jit(step, donate_argnums=0)
    state = [(params, rest, opt_state)]

    def train(batch):
        state[0], metrics = jitted(state[0], batch.ids, batch.labels, batch.weights)
        return metrics

    return train


def _build_keras(arm: Arm):
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np
    import tensorflow as tf

    dim, heads = SIZES[arm.size]
    keras.utils.set_random_seed(0)
    inp = keras.Input((LENGTH,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, dim)(inp)
    x = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=dim // heads)(x, x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dropout(arm.dropout)(x)
    out = keras.layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inp, out)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="binary_crossentropy",
        metrics=["accuracy"],
        jit_compile=arm.jit_compile,
    )
    ids, labels = _batch()
    xs, ys = tf.constant(ids), tf.constant(labels.astype(np.float32))

    def run(n: int) -> float:
        t = time.perf_counter()
        for _ in range(n):
            logs = model.train_on_batch(xs, ys)  # returns Python floats: synchronous
        float(logs[0])
        return time.perf_counter() - t

    return run, model.count_params(), {}


def _say(**payload) -> None:
    print(PROTOCOL + json.dumps(payload), flush=True)


def worker(arms: list[Arm], warmup: int) -> None:
    """Build, compile and warm up every arm, then answer ``run`` requests on stdin."""
    runners = {}
    if any(arm.library for arm in arms):
        from semalign import use_cpu_cores

        use_cpu_cores()  # before JAX starts, as the CLI does
    for arm in arms:
        build = _build_keras if arm.kind == "keras" else _build_semalign
        if arm.recompute_one_chunk:  # only while this arm is traced (a semalign arm)
            from semalign.attention import core

            library_path, core._explicit_chunked = core._explicit_chunked, _explicit_chunked_before
        t = time.perf_counter()
        run, params, extra = build(arm)
        built = time.perf_counter() - t
        first = run(1)  # tracing + compilation + one step
        if arm.recompute_one_chunk:
            core._explicit_chunked = library_path
        warm = run(warmup) / warmup if warmup else float("nan")
        runners[arm.name] = run
        _say(
            ready=arm.name,
            build_s=built,
            first_step_s=first,
            warmup_step_s=warm,
            params=params,
            **extra,
        )
    _say(all_ready=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "quit":
            return
        before = os.getloadavg()[0]
        seconds = runners[cmd["arm"]](cmd["steps"])
        _say(seconds=seconds, load_before=before, load_after=os.getloadavg()[0])


# ----------------------------------------------------------------------------- parent side


class Worker:
    """A worker process holding some arms; asked for one round at a time."""

    def __init__(self, python: str, arms: list[Arm], warmup: int, env: dict):
        spec = json.dumps({"arms": [asdict(a) for a in arms], "warmup": warmup})
        self.arms = arms
        self.proc = subprocess.Popen(
            [python, str(Path(__file__).resolve()), "--worker", spec],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
        )
        self.info: dict[str, dict] = {}

    def _read(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith(PROTOCOL):
                return json.loads(line[len(PROTOCOL) :])
        err = self.proc.stderr.read()[-3000:]
        raise RuntimeError(f"worker for {[a.name for a in self.arms]} died:\n{err}")

    def wait_ready(self) -> None:
        while True:
            msg = self._read()
            if msg.get("all_ready"):
                return
            self.info[msg.pop("ready")] = msg

    def run(self, arm: str, steps: int) -> dict:
        self.proc.stdin.write(json.dumps({"op": "run", "arm": arm, "steps": steps}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=60)


def keras_python(explicit: str | None) -> tuple[str | None, str]:
    """The interpreter for the Keras side and how it was found (or why there is none)."""
    if explicit:
        return explicit, "--keras-python"
    if all(importlib.util.find_spec(m) for m in ("tensorflow", "keras")):
        return sys.executable, "this interpreter imports tensorflow and keras"
    env = os.environ.get("SEMALIGN_KERAS_PYTHON")
    if env:
        return env, "SEMALIGN_KERAS_PYTHON"
    return None, (
        "no interpreter with TensorFlow + Keras: this one cannot import them, and neither "
        "--keras-python nor SEMALIGN_KERAS_PYTHON is set (see benchmarks/README.md)"
    )


def keras_versions(python: str) -> dict:
    code = (
        "import json, importlib.metadata as m; "
        "names = ('tensorflow', 'tensorflow-cpu', 'keras'); "
        "print(json.dumps({p: m.version(p) for p in names if list(m.distributions(name=p))}))"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def phase(
    name: str, groups: list[tuple[str, list[Arm], dict]], a: argparse.Namespace
) -> list[dict]:
    """Measure the arms of several workers in turn; returns one row per arm."""
    print(f"\n[{name}] starting {len(groups)} worker(s) ...", flush=True)
    workers = []
    try:
        for py, arms, env in groups:  # one at a time: compilations do not overlap
            workers.append(Worker(py, arms, a.warmup, env))
            workers[-1].wait_ready()
        order = [(w, arm) for w in workers for arm in w.arms]
        seconds: dict[str, list[float]] = {arm.name: [] for _, arm in order}
        loads: dict[str, list[tuple[float, float]]] = {arm.name: [] for _, arm in order}
        for r in range(a.rounds):
            k = r % len(order)
            for w, arm in order[k:] + order[:k]:
                # Let the previous arm's thread pools (TensorFlow's and XLA's spin before
                # they sleep) go idle, so no arm runs beside another's spinning threads.
                time.sleep(a.settle)
                res = w.run(arm.name, a.steps)
                seconds[arm.name].append(res["seconds"] / a.steps)
                loads[arm.name].append((res["load_before"], res["load_after"]))
            print(f"  round {r + 1}/{a.rounds} done (load {os.getloadavg()[0]:.1f})", flush=True)
    finally:
        for w in workers:
            w.close()
    keras = next((arm.name for _, arm in order if arm.kind == "keras"), None)
    rows = []
    for w, arm in order:
        s = seconds[arm.name]
        step = statistics.median(s)
        row = {
            "arm": arm.name,
            **{k: v for k, v in asdict(arm).items() if k != "name"},
            **w.info[arm.name],
            "rounds": a.rounds,
            "steps_per_round": a.steps,
            "step_ms_rounds": [round(x * 1e3, 2) for x in s],
            "step_ms": round(step * 1e3, 2),
            "tokens_per_s": round(BATCH * arm.length / step),
            "load_before_after": loads[arm.name],
        }
        if keras is not None:
            ks = seconds[keras]
            # Paired: each round's Keras time over this arm's time (same load), then median.
            row["x_keras"] = round(
                statistics.median(k_ / x for k_, x in zip(ks, s, strict=True)), 3
            )
        if arm.compare_to:
            base = seconds[arm.compare_to]
            row["speedup_vs_" + arm.compare_to] = round(
                statistics.median(b_ / x for b_, x in zip(base, s, strict=True)), 3
            )
        rows.append(row)
    return rows


def table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print(f"{'arm':34s} {'step ms':>8s} {'tokens/s':>9s} {'x Keras':>8s} {'compile s':>9s}")
    for r in rows:
        xk = f"{r['x_keras']:.2f}" if "x_keras" in r else "-"
        first = r["first_step_s"]
        print(f"{r['arm']:34s} {r['step_ms']:8.1f} {r['tokens_per_s']:9d} {xk:>8s} {first:9.1f}")


def plan(
    a: argparse.Namespace, kpy: str | None
) -> list[tuple[str, list[tuple[str, list[Arm], dict]]]]:
    """The phases: per size, Keras + semalign (+ variants); then every scoring."""
    py = sys.executable
    if a.default_model:
        return [("the default model: the library's step before and after", default_arms(a))]
    phases = []
    for size in ["D64H4"] if a.quick else [s for s in a.sizes.split(",") if s]:
        library = Arm(f"semalign {size}", "semalign", size, library=True, note=LIBRARY)
        plain = "plain step, 1 device"
        arms = [Arm(plain, "semalign", size, note="the whole-batch step, one device")]
        groups = [(py, [library], {})]
        if a.quick:
            arms.append(Arm("microbatch=2 chunk=0", "semalign", size, chunk=0, microbatch=2))
        elif not a.no_variants:
            full = size == "D64H4"
            arms += variants(size, full=full)
            if full:
                groups += env_variants(size, py)
        groups.insert(0, (py, arms, {}))
        if a.quick or not a.no_variants:
            groups.append(two_devices(size, py))
        if kpy:
            groups.insert(0, (kpy, [Arm(f"keras {size}", "keras", size)], {}))
            if a.keras_xla:
                xla = Arm(f"keras {size} jit_compile=True", "keras", size, jit_compile=True)
                groups.append((kpy, [xla], {}))
        phases.append((f"{size}: semalign vs Keras", groups))
    if not a.quick and not a.no_scorings:
        names = [s for s in a.scorings.split(",") if s]
        arms = [Arm(f"{s} plain step", "semalign", "D64H4", scoring=s) for s in names]
        library = [Arm(f"{s} library", "semalign", "D64H4", scoring=s, library=True) for s in names]
        py2, _, env = two_devices("D64H4", py)
        proposed = [
            Arm(f"{s} proposed", "semalign", "D64H4", scoring=s, chunk=0, microbatch=2, devices=2)
            for s in names
        ]
        groups = [(py, arms, {}), (py, library, {}), (py2, proposed, env)]
        if kpy:
            groups.insert(0, (kpy, [Arm("keras D64H4", "keras", "D64H4")], {}))
        title = "per scoring (D64H4): the plain step, the library's default and the proposal"
        phases.append((title, groups))
    return phases


def variants(size: str, full: bool) -> list[Arm]:
    """In-process variants of the semalign step: library settings and the proposed step."""
    s = "semalign"
    proposed = [
        Arm("microbatch=2 chunk=0", s, size, chunk=0, microbatch=2, note=PROPOSAL),
        Arm("microbatch=4 chunk=0", s, size, chunk=0, microbatch=4),
        Arm("microbatch=2 chunk=0 rbg", s, size, chunk=0, microbatch=2, rng_impl="rbg"),
        Arm("microbatch=2 chunk=0 dropout=0", s, size, chunk=0, microbatch=2, dropout=0.0),
    ]
    if not full:
        return proposed
    return [
        Arm("chunk=0 (whole-batch explicit)", s, size, chunk=0),
        Arm("chunk=4", s, size, chunk=4),
        Arm("chunk=8", s, size, chunk=8),
        Arm("fused (dot_product_attention)", s, size, fused=True, chunk=0),
        Arm("dropout=0 (no random bits)", s, size, dropout=0.0),
        Arm("dropout key rbg", s, size, rng_impl="rbg"),
        Arm("bfloat16 compute", s, size, dtype="bfloat16"),
        *proposed,
    ]


def default_arms(a: argparse.Namespace) -> list[tuple[str, list[Arm], dict]]:
    """``--default-model``: per length, the train and eval steps before issue 15 and now."""
    arms = []
    for length in (int(x) for x in a.lengths.split(",") if x):
        before = f"before L={length}"
        note = "one attention chunk recomputed under jax.checkpoint"
        kw = {"library": True, "default_model": True, "length": length}
        arms.append(Arm(before, "semalign", recompute_one_chunk=True, note=note, **kw))
        arms.append(Arm(f"library L={length}", "semalign", compare_to=before, note=LIBRARY, **kw))
        whole, note = f"eval whole batch L={length}", "the eval step before: the whole batch"
        kw["evaluate"] = True
        arms.append(Arm(whole, "semalign", eval_whole_batch=True, note=note, **kw))
        note = "the library's eval step: micro-batch by micro-batch"
        arms.append(Arm(f"eval library L={length}", "semalign", compare_to=whole, note=note, **kw))
    return [(sys.executable, arms, {})]


def two_devices(size: str, py: str) -> tuple[str, list[Arm], dict]:
    """The proposed step data-parallel over two host devices, one per core."""
    flag = "--xla_force_host_platform_device_count=2"
    env = {"XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " " + flag).strip()}
    name = "microbatch=2 chunk=0 on 2 devices"
    arm = Arm(name, "semalign", size, chunk=0, microbatch=2, devices=2, env=env, note=PROPOSAL)
    return py, [arm], env


def env_variants(size: str, py: str) -> list[tuple[str, list[Arm], dict]]:
    """Variants that need a fresh process: XLA CPU flags (threads, vectors, libraries)."""
    flags = {
        "XLA: single-threaded Eigen": "--xla_cpu_multi_thread_eigen=false",
        "XLA: prefer 512-bit vectors": "--xla_cpu_prefer_vector_width=512",
        "XLA: fast math": "--xla_cpu_enable_fast_math=true",
        "XLA: oneDNN": "--xla_cpu_use_onednn=true",
        "XLA: no YNNPACK fusions": "--xla_cpu_experimental_ynn_fusion_type=",
    }
    out = []
    for name, flag in flags.items():
        env = {"XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " " + flag).strip()}
        out.append((py, [Arm(name, "semalign", size, env=env)], env))
    return out


def padding() -> dict:
    """Padding of IMDB's training split: Keras's fixed length 250 vs semalign's buckets.

    Keras's TextVectorization (lower-case, strip punctuation, split on whitespace) is
    emulated in Python; semalign's side is its own pipeline with the defaults of
    ``semalign train`` (WordPiece 20,000, max length 512, 8 buckets, batch 32).
    """
    import string

    import numpy as np

    from semalign.config import DataConfig
    from semalign.data import batch_stats, train_tokenizer
    from semalign.tasks.classification.data import batches, encode, load_splits

    t = time.perf_counter()
    data = DataConfig()
    train = load_splits(data).train
    strip = str.maketrans("", "", string.punctuation)
    words = np.array([len(x.lower().translate(strip).split()) for x in train.texts])
    kept = np.minimum(words, LENGTH)
    tok = train_tokenizer(train.texts, vocab_size=data.vocab_size, kind=data.tokenizer)
    enc = encode(train, tok, tuple(sorted(set(train.labels))), data.max_len)
    stats = batch_stats(batches(enc, data, batch_size=BATCH, shuffle=True, seed=0))
    return {
        "examples": len(train),
        "keras_fixed_250": {
            "slots_per_epoch": int(len(words) * LENGTH),
            "real_tokens": int(kept.sum()),
            "padding_fraction": round(1 - kept.sum() / (len(words) * LENGTH), 4),
            "truncated_reviews_fraction": round(float(np.mean(words > LENGTH)), 4),
        },
        "semalign_buckets": {
            "slots_per_epoch": stats.padded_tokens,
            "real_tokens": stats.real_tokens,
            "padding_fraction": round(stats.padding_fraction, 4),
            "shapes": stats.shapes,
            "max_len": data.max_len,
        },
        "seconds": round(time.perf_counter() - t, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: D64H4 only, 2 rounds of 2")
    p.add_argument("--keras-python", help="interpreter with tensorflow + keras installed")
    p.add_argument("--no-keras", action="store_true", help="semalign side only")
    p.add_argument("--keras-xla", action="store_true", help="also Keras with jit_compile=True")
    p.add_argument(
        "--no-variants",
        action="store_true",
        help="only Keras, the library's default step and the plain step",
    )
    p.add_argument("--no-scorings", action="store_true", help="skip the per-scoring phase")
    p.add_argument("--scorings", default=",".join(SCORINGS), help="per-scoring phase: these")
    p.add_argument("--no-padding", action="store_true", help="skip the IMDB padding count")
    p.add_argument("--padding-only", action="store_true", help="only count the IMDB padding")
    p.add_argument("--sizes", default=",".join(SIZES), help="keys of SIZES, comma-separated")
    p.add_argument(
        "--default-model",
        action="store_true",
        help="the default `semalign train` model at --lengths: before vs after (no Keras)",
    )
    p.add_argument("--lengths", default="256,512", help="--default-model: padded lengths")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=10, help="steps per round")
    p.add_argument("--warmup", type=int, default=5, help="steps after compilation, untimed")
    p.add_argument(
        "--settle",
        type=float,
        default=0.0,
        help="seconds of idle before each arm's round (every arm alike; default 0)",
    )
    p.add_argument("--out", default=None, help="result name (default train_throughput[_quick])")
    p.add_argument("--results-dir", help="write the JSON here instead of benchmarks/results")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        spec = json.loads(a.worker)
        worker([Arm(**arm) for arm in spec["arms"]], spec["warmup"])
        return
    if a.quick:
        a.rounds, a.steps, a.warmup = 2, 2, 1

    import _common

    if a.results_dir:
        _common.RESULTS = Path(a.results_dir)

    if a.padding_only:
        path = _common.save(a.out or "train_throughput_padding", {"imdb_padding": padding()})
        print(f"wrote {path}")
        return
    no_keras = a.no_keras or a.default_model
    kpy, how = (None, "--no-keras") if no_keras else keras_python(a.keras_python)
    kinfo = {"python": kpy, "found_by": how}
    if kpy:
        kinfo["versions"] = keras_versions(kpy)
        print(f"Keras side: {kpy} ({how}) {kinfo['versions']}")
    else:
        print(f"Keras side skipped: {how}")
    t0 = time.perf_counter()
    pad = None
    if not (a.quick or a.no_padding or a.default_model):
        print("counting IMDB padding (trains the default tokenizer, ~1 min) ...", flush=True)
        pad = padding()
        print(json.dumps(pad, indent=1))
    results = {}
    for title, groups in plan(a, kpy):
        # every scoring twice (l1 and additive are 5-15x slower): shorter rounds there
        short = argparse.Namespace(**{**vars(a), "rounds": min(a.rounds, 5), "steps": 5})
        rows = phase(title, groups, short if title.startswith("per scoring") else a)
        results[title] = rows
        table(title, rows)
    payload = {
        "settings": {
            "batch": BATCH,
            "length": a.lengths if a.default_model else LENGTH,
            "vocab": "default model's 20,000" if a.default_model else VOCAB,
            "rounds": a.rounds,
            "steps_per_round": a.steps,
            "warmup_steps": a.warmup,
            "settle_s": a.settle,
            "tokens_counted": "batch x length (padded) for both sides",
        },
        "keras": kinfo,
        "baseline": BASELINE,
        "phases": results,
        "imdb_padding": pad,
        "wall_s": round(time.perf_counter() - t0, 1),
        "load_end": os.getloadavg(),
    }
    path = _common.save(
        a.out or ("train_throughput_quick" if a.quick else "train_throughput"), payload
    )
    print(f"\nwrote {path} ({payload['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
