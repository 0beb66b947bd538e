"""Time to accuracy: the default ``semalign train`` against the original Keras model on IMDB.

    python benchmarks/time_to_accuracy.py --keras-python ../venv-keras/bin/python
    python benchmarks/time_to_accuracy.py --quick      # smoke run (tests/test_time_to_accuracy.py)

Each side runs end to end in a fresh process, one after the other, and its clock starts
when the parent starts that process (``time.monotonic()`` just before ``Popen``): imports,
data, tokenization and compilation are all inside it. The clock stops at the end of the
first epoch whose **validation** accuracy reaches ``--threshold`` (87.5 %); that epoch's
test accuracy is then taken (not timed) and the process stopped.

* **semalign**: ``python -m semalign.cli train`` with the library's defaults (only
  ``--runs-dir`` and ``--name`` added). The parent polls the run's ``metrics.jsonl``
  (one line per epoch, written after the epoch's checkpoint) every 0.1 s, sends SIGINT
  once an epoch passes (the trainer finishes committing that epoch and exits), and then
  runs ``semalign evaluate --checkpoint last`` on the test split: the passing epoch's
  weights. Every stdout line of the run is timestamped, which splits its time into
  start-up (imports, data, tokenizer), the epoch's steps (compilation included) and
  validation. The run's ``SEMALIGN_CACHE_DIR`` is a new folder of the benchmark's, so
  it is a first run on a new machine: every program compiles. ``--warm`` runs it once
  more on that folder, as any later run on the same machine goes: the compiled programs
  load from JAX's persistent compilation cache (:mod:`semalign.compile_cache`), and the
  tokenizer and encoded splits from the data cache (:mod:`semalign.data.token_cache`).
* **Keras**: the original NeuroTextStudio model (TextVectorization(10,000 tokens,
  length 250) -> Embedding(16) -> MultiHeadAttention(8 heads, key_dim 16) self-attention ->
  GlobalAveragePooling1D -> Dropout(0.2) -> Dense(1, sigmoid), Adam 1e-3, batch 32, early
  stopping with patience 5) in a worker under the Keras interpreter (``--keras-python``,
  else ``SEMALIGN_KERAS_PYTHON``, else this interpreter if it imports TensorFlow). A
  callback reports each epoch's validation accuracy; after the passing epoch it stops
  training and evaluates the test split.

Both sides read identical rows: the parent builds semalign's own split (the
classification task's ``load_splits`` on the default ``DataConfig``: IMDB, 96 duplicates
dropped, stratified 80/10/10 with seed 0) and writes it as JSONL for the Keras worker; the
semalign run's ``data.json`` fingerprint is checked against that split afterwards.

Peak memory is each process's peak resident set (``ru_maxrss`` from ``os.wait4``; the
semalign figure covers training until the interrupt, not the separate evaluation). The
1-minute load average is sampled every 2 s while each side runs.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROTOCOL = "@@"  # Keras worker lines meant for the parent start with this
THRESHOLD = 0.875
# The Keras original's defaults (cpu-baseline.md, "D16 H8").
KERAS = {
    "max_tokens": 10_000,
    "length": 250,
    "dim": 16,
    "heads": 8,
    "key_dim": 16,
    "dropout": 0.2,
    "lr": 1e-3,
    "batch": 32,
    "patience": 5,
    "epochs": 10,
}
# --quick: a few hundred Rotten Tomatoes rows, small models, one epoch, threshold 0.
QUICK_ROWS = 200  # from each end of the file (both labels)
QUICK_SEMALIGN = ["--max-len", "32", "--vocab-size", "500", "--dim", "16", "--epochs", "1"]
QUICK_KERAS = {"max_tokens": 500, "length": 32, "epochs": 1}
# Measured by hand earlier, same machine (issue 15): end of epoch 1, seconds after start.
BY_HAND = {"keras_s": 33, "keras_val_accuracy": 0.884, "semalign_s": 144, "semalign_val": 0.900}
TARGETS = {
    "semalign_over_keras_time": 0.5,
    "semalign_wall_s": 240,
    "semalign_peak_rss_over_keras": 1.0,
}


# ----------------------------------------------------------------------------- Keras worker


def keras_worker(spec: dict) -> None:
    """Train the Keras original on the JSONL splits in ``spec["data"]``; report on stdout."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    hp = spec["hp"]

    def say(**payload) -> None:
        print(PROTOCOL + json.dumps(payload), flush=True)

    def read(split: str):
        rows = [json.loads(x) for x in Path(spec["data"], f"{split}.jsonl").open()]
        # dtype=object: a fixed-width unicode array would pad every review to the longest
        # (~14k characters, 1 GiB for the training split).
        texts = np.array([r["text"] for r in rows], dtype=object)
        return texts, np.array([r["y"] for r in rows], "float32")

    keras.utils.set_random_seed(0)
    (xtr, ytr), (xva, yva), (xte, yte) = (read(s) for s in ("train", "validation", "test"))
    vectorize = keras.layers.TextVectorization(
        max_tokens=hp["max_tokens"], output_sequence_length=hp["length"]
    )
    vectorize.adapt(xtr, batch_size=1024)
    itr, iva, ite = (np.asarray(vectorize(x), "int32") for x in (xtr, xva, xte))
    say(phase="tokenized")

    inp = keras.Input((hp["length"],), dtype="int32")
    x = keras.layers.Embedding(hp["max_tokens"], hp["dim"])(inp)
    x = keras.layers.MultiHeadAttention(num_heads=hp["heads"], key_dim=hp["key_dim"])(x, x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dropout(hp["dropout"])(x)
    out = keras.layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inp, out)
    model.compile(
        optimizer=keras.optimizers.Adam(hp["lr"]),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    threshold = spec["threshold"]

    class Report(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            acc = float(logs["val_accuracy"])
            say(epoch=epoch + 1, val_accuracy=acc, val_loss=float(logs["val_loss"]))
            if acc >= threshold:
                self.model.stop_training = True

    stop = keras.callbacks.EarlyStopping(patience=hp["patience"], restore_best_weights=True)
    model.fit(
        itr,
        ytr,
        validation_data=(iva, yva),
        batch_size=hp["batch"],
        epochs=hp["epochs"],
        callbacks=[Report(), stop],
        verbose=0,
    )
    # EarlyStopping restores the best epoch only when it stops training itself; after our
    # stop the weights are the passing epoch's (the last one trained).
    loss, acc = model.evaluate(ite, yte, batch_size=256, verbose=0)
    say(test_accuracy=float(acc), test_loss=float(loss), params=model.count_params())


def _vm(field: str) -> float:
    """This process's ``VmRSS`` / ``VmHWM`` in MiB (0 where /proc is missing)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _reset_peak() -> None:
    # Linux: writing 5 to clear_refs resets VmHWM, so each piece gets its own peak.
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


def startup_worker() -> None:
    """Time ``semalign train``'s start-up pieces in this fresh process; print them as JSON.

    The pieces and their order are those of ``workflows/train.py`` with the defaults:
    import the CLI, import JAX + Flax, load and split IMDB, train the WordPiece tokenizer,
    encode the three splits. Per piece: wall seconds, CPU seconds (user + system, all
    threads: the figure a loaded machine distorts least) and peak resident MiB.
    """
    import resource

    def cpu() -> float:
        used = resource.getrusage(resource.RUSAGE_SELF)
        return used.ru_utime + used.ru_stime

    t0, c0 = time.perf_counter(), cpu()
    times, cpus, peaks = {}, {}, {}

    def lap(name: str) -> None:
        times[name] = round(time.perf_counter() - t0 - sum(times.values()), 2)
        cpus[name] = round(cpu() - c0 - sum(cpus.values()), 2)
        peaks[name] = round(_vm("VmHWM"), 1)
        _reset_peak()

    import semalign.cli  # noqa: F401

    lap("import semalign.cli")
    import flax.nnx  # noqa: F401
    import jax

    jax.numpy.zeros(1).block_until_ready()
    lap("import jax + flax, first array")
    from semalign.config import DataConfig
    from semalign.data import train_tokenizer
    from semalign.tasks.classification.task import TASK

    data = DataConfig()
    splits = TASK.load_splits(data)
    lap("load + split IMDB")
    data = TASK.prepare_data(data, splits.train)
    tok = train_tokenizer(
        TASK.corpus(splits.train),
        vocab_size=data.vocab_size,
        kind=data.tokenizer,
        lowercase=data.lowercase,
    )
    lap("train WordPiece tokenizer")
    classes = TASK.classes(splits.train)
    for name in ("train", "validation", "test"):
        TASK.encode_with(data, getattr(splits, name), tok, classes)
    lap("encode train + validation + test")
    out = {"seconds": times, "cpu_seconds": cpus, "peak_rss_mib": peaks, "rss_mib": _vm("VmRSS")}
    print(PROTOCOL + json.dumps(out), flush=True)


# ----------------------------------------------------------------------------- parent side


class LoadSampler:
    """The 1-minute load average every ``every`` seconds, in a thread."""

    def __init__(self, every: float = 2.0):
        self.samples: list[float] = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            self.samples.append(os.getloadavg()[0])

    def close(self) -> dict:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])
        s = self.samples
        return {
            "first": s[0],
            "last": s[-1],
            "min": min(s),
            "max": max(s),
            "mean": round(statistics.fmean(s), 2),
        }


def wait_rusage(proc: subprocess.Popen) -> tuple[int, float]:
    """Reap ``proc``; its exit status and peak resident set in GiB (``ru_maxrss``)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, round(usage.ru_maxrss / 2**20, 3)


def write_splits(data_config, folder: Path) -> dict:
    """semalign's own split of ``data_config`` as JSONL (text, label, y) for the Keras side."""
    from semalign.tasks.classification.task import TASK

    splits = TASK.load_splits(data_config)
    labels = sorted(set(splits.train.labels))
    assert len(labels) == 2, labels  # the Keras original is binary: y = index in sorted labels
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("train", "validation", "test"):
        ex = getattr(splits, name)
        with open(folder / f"{name}.jsonl", "w") as f:
            for text, label in zip(ex.texts, ex.labels, strict=True):
                f.write(json.dumps({"text": text, "y": labels.index(label)}) + "\n")
    names = ("train", "validation", "test")
    fp = TASK.fingerprint(data_config, {n: getattr(splits, n) for n in names})
    return {
        "rows": {n: len(getattr(splits, n).texts) for n in names},
        "labels": labels,
        "duplicates_removed": getattr(splits, "duplicates_removed", None),
        "fingerprint": fp,
    }


# The caller's compilation-cache settings (a test session's, say) do not reach the run: its
# cache is the benchmark's own folder (the command line's default, relocated).
_CACHE_VARS = (
    "JAX_COMPILATION_CACHE_DIR",
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
    "SEMALIGN_DATA_CACHE_DIR",
    "SEMALIGN_DATA_CACHE",
)


def run_semalign(
    extra: list[str], runs: Path, threshold: float, *, cache: Path, name: str = "tta"
) -> dict:
    """``semalign train`` from process start to the first epoch at ``threshold``.

    ``cache`` is the run's ``SEMALIGN_CACHE_DIR``: a new folder makes a first run on a new
    machine (everything compiles), the same folder again a later run (compiled programs
    load from the persistent cache).
    """
    cached = sum(1 for f in (cache / "xla").glob("*") if f.is_file()) if cache.is_dir() else 0
    kept = sum(1 for f in (cache / "data").glob("*") if f.is_file()) if cache.is_dir() else 0
    cmd = [sys.executable, "-m", "semalign.cli", "train", "--runs-dir", str(runs), "--name", name]
    cmd += extra
    metrics = runs / name / "metrics.jsonl"
    lines: list[tuple[float, str]] = []
    load = LoadSampler()
    # The stop is a SIGINT: started with `&` from a script this process ignores SIGINT, and
    # so would the trainer (an ignored signal stays ignored across exec): handle it here
    # while the child starts, so that it gets Python's default (a handler resets at exec).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env={  # PYTHONUNBUFFERED: the timestamps of its lines are true
                **{k: v for k, v in os.environ.items() if k not in _CACHE_VARS},
                "PYTHONUNBUFFERED": "1",
                "SEMALIGN_CACHE_DIR": str(cache),
            },
        )
    finally:
        signal.signal(signal.SIGINT, previous)

    def drain() -> None:
        for line in proc.stdout:
            lines.append((round(time.monotonic() - t0, 2), line.rstrip()))

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    epochs: list[dict] = []
    passed = None
    while passed is None and proc.poll() is None:
        time.sleep(0.1)
        if not metrics.is_file():
            continue
        records = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()]
        for r in records[len(epochs) :]:
            if r.get("split") != "validation":
                continue
            r = {**r, "seconds_since_start": round(time.monotonic() - t0, 2)}
            epochs.append(r)
            print(
                f"  semalign epoch {r['epoch']}: val {r['val_accuracy']:.4f} "
                f"at {r['seconds_since_start']:.1f} s",
                flush=True,
            )
            if r["val_accuracy"] >= threshold:
                passed = r
                break
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # the trainer finishes the epoch's commit, then exits
    rc, rss = wait_rusage(proc)
    wall = time.monotonic() - t0
    reader.join(timeout=10)
    out = {
        "command": cmd,
        "compile_cache": {"folder": str(cache / "xla"), "programs_before": cached},
        "data_cache": {"folder": str(cache / "data"), "entries_before": kept},
        "exit_code": rc,
        "process_wall_s": round(wall, 1),
        "peak_rss_gib": rss,
        "load_1min": load.close(),
        "epochs": [
            {
                k: r[k]
                for k in (
                    "epoch",
                    "val_accuracy",
                    "val_loss",
                    "epoch_seconds",
                    "seconds_since_start",
                )
            }
            for r in epochs
        ],
        "output": lines,
    }
    if passed is None:
        out["reached"] = False
        return out
    ev = subprocess.run(
        [sys.executable, "-m", "semalign.cli", "evaluate", "--run", str(runs / name),
         "--split", "test", "--checkpoint", "last", "--json"],
        capture_output=True, text=True, check=False,
        env={**os.environ, "SEMALIGN_CACHE_DIR": str(cache)},
    )  # fmt: skip
    if ev.returncode != 0:
        raise SystemExit(f"semalign evaluate failed:\n{ev.stderr[-2000:]}")
    test = json.loads(ev.stdout)
    out |= {
        "reached": True,
        "epoch": passed["epoch"],
        "val_accuracy": passed["val_accuracy"],
        "seconds_to_threshold": passed["seconds_since_start"],
        "test_accuracy": _accuracy(test),
        "data_json": json.loads((runs / name / "data.json").read_text()),
        "phases": semalign_phases(lines, passed, epochs),
    }
    return out


def _accuracy(report: dict) -> float:
    """``accuracy`` from ``semalign evaluate --json`` (top level or under a split key)."""
    if "accuracy" in report:
        return report["accuracy"]
    for v in report.values():
        if isinstance(v, dict) and "accuracy" in v:
            return v["accuracy"]
    raise SystemExit(f"no accuracy in semalign evaluate's output: {list(report)}")


def semalign_phases(lines: list[tuple[float, str]], passed: dict, epochs: list[dict]) -> dict:
    """Split the time to the passing epoch: start-up, the epochs' steps, the rest.

    The run prints its header (task, data, model with its parameter count, batch shapes)
    once data, tokenizer and model are ready: its time ends start-up (imports, data,
    tokenizer, model). ``epoch_seconds`` of each epoch (compilation of its batch shapes
    included) is the run's own figure; the rest is validation (its compilation included),
    the checkpoint and the logs.
    """
    startup = lines[0][0] if lines else None
    total = passed["seconds_since_start"]
    steps = sum(e["epoch_seconds"] for e in epochs)
    return {
        "startup_s": startup,
        "train_steps_s": round(steps, 2),
        "validation_checkpoint_s": None if startup is None else round(total - startup - steps, 2),
        "to_threshold_s": total,
    }


def run_keras(python: str, data: Path, hp: dict, threshold: float) -> dict:
    """The Keras worker from process start to the first epoch at ``threshold``."""
    spec = json.dumps({"data": str(data), "hp": hp, "threshold": threshold})
    load = LoadSampler()
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [python, str(Path(__file__).resolve()), "--keras-worker", spec],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    epochs, passed, test, tokenized = [], None, None, None
    for line in proc.stdout:
        if not line.startswith(PROTOCOL):
            continue
        msg = json.loads(line[len(PROTOCOL) :])
        now = round(time.monotonic() - t0, 2)
        if msg.get("phase") == "tokenized":
            tokenized = now
        elif "epoch" in msg:
            epochs.append({**msg, "seconds_since_start": now})
            print(f"  keras epoch {msg['epoch']}: val {msg['val_accuracy']:.4f} at {now:.1f} s",
                  flush=True)  # fmt: skip
            if passed is None and msg["val_accuracy"] >= threshold:
                passed = epochs[-1]
        elif "test_accuracy" in msg:
            test = msg
    err = proc.stderr.read()
    rc, rss = wait_rusage(proc)
    if rc != 0:
        raise SystemExit(f"Keras worker failed ({rc}):\n{err[-3000:]}")
    out = {
        "python": python,
        "hyperparameters": hp,
        "exit_code": rc,
        "process_wall_s": round(time.monotonic() - t0, 1),
        "peak_rss_gib": rss,
        "load_1min": load.close(),
        "epochs": epochs,
        "tokenized_at_s": tokenized,
        "reached": passed is not None,
        "params": test and test["params"],
    }
    if passed is not None:
        out |= {
            "epoch": passed["epoch"],
            "val_accuracy": passed["val_accuracy"],
            "seconds_to_threshold": passed["seconds_since_start"],
            "test_accuracy": test["test_accuracy"],
        }
    return out


def keras_python(explicit: str | None) -> tuple[str | None, str]:
    """The interpreter for the Keras side and how it was found (or why there is none)."""
    if explicit:
        return explicit, "--keras-python"
    env = os.environ.get("SEMALIGN_KERAS_PYTHON")
    if env:
        return env, "SEMALIGN_KERAS_PYTHON"
    if all(importlib.util.find_spec(m) for m in ("tensorflow", "keras")):
        return sys.executable, "this interpreter imports tensorflow and keras"
    return None, (
        "no interpreter with TensorFlow + Keras: this one cannot import them, and neither "
        "--keras-python nor SEMALIGN_KERAS_PYTHON is set (see benchmarks/README.md)"
    )


def quick_csv(path: Path) -> None:
    """A few hundred Rotten Tomatoes rows (both labels) as a CSV ``semalign --data`` reads."""
    from semalign.data.builtin import load_builtin

    ex = load_builtin("rotten-tomatoes")
    rows = list(zip(ex.texts, ex.labels, strict=True))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(rows[:QUICK_ROWS] + rows[-QUICK_ROWS:])


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def summary(result: dict) -> None:
    print(f"\n{'side':13s} {'to threshold s':>15s} {'epoch':>6s} {'val acc':>8s} "
          f"{'test acc':>9s} {'peak RSS GiB':>13s} {'load (mean, max)':>17s}")  # fmt: skip
    for side in ("keras", "semalign", "semalign_warm"):
        r = result.get(side)
        if not r:
            continue
        load = f"{r['load_1min']['mean']:.1f}, {r['load_1min']['max']:.1f}"
        if r["reached"]:
            print(f"{side:13s} {r['seconds_to_threshold']:15.1f} {r['epoch']:6d} "
                  f"{r['val_accuracy']:8.4f} {r['test_accuracy']:9.4f} {r['peak_rss_gib']:13.2f} "
                  f"{load:>17s}")  # fmt: skip
        else:
            print(f"{side:13s} {'not reached':>15s} {'':6s} {'':8s} {'':9s} "
                  f"{r['peak_rss_gib']:13.2f} {load:>17s}")  # fmt: skip
    if "ratio" in result:
        for name, value in result["ratio"].items():
            print(f"{name}: {value}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: 400 short rows, 1 epoch")
    p.add_argument("--keras-python", help="interpreter with tensorflow + keras installed")
    p.add_argument("--no-keras", action="store_true", help="semalign side only")
    p.add_argument("--no-semalign", action="store_true", help="Keras side only")
    p.add_argument("--threshold", type=float, help="validation accuracy (default 0.875)")
    p.add_argument(
        "--warm",
        action="store_true",
        help="run semalign a second time on the first run's compilation cache",
    )
    p.add_argument(
        "--semalign-args",
        default="",
        help="options added to the semalign command line (a candidate default), e.g. "
        "'--max-len 256 --truncation head-tail'",
    )
    p.add_argument("--work-dir", help="splits and runs go here (default: a new /tmp folder)")
    p.add_argument("--out", default=None, help="result name (default time_to_accuracy[_quick])")
    p.add_argument("--results-dir", help="write the JSON here instead of benchmarks/results")
    p.add_argument(
        "--startup-profile",
        action="store_true",
        help="only time semalign's start-up pieces (imports, data, tokenizer, encoding)",
    )
    p.add_argument("--keras-worker", help=argparse.SUPPRESS)
    p.add_argument("--startup-worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.keras_worker:
        keras_worker(json.loads(a.keras_worker))
        return
    if a.startup_worker:
        startup_worker()
        return

    import _common

    from semalign.config import DataConfig

    if a.results_dir:
        _common.RESULTS = Path(a.results_dir)
    if a.startup_profile:
        load = LoadSampler()
        cmd = [sys.executable, str(Path(__file__).resolve()), "--startup-worker"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        pieces = json.loads(out.split(PROTOCOL)[-1])
        path = _common.save(
            a.out or "time_to_accuracy_startup", {**pieces, "load_1min": load.close()}
        )
        print(json.dumps(pieces, indent=1), f"\nwrote {path}")
        return
    threshold = a.threshold if a.threshold is not None else (0.0 if a.quick else THRESHOLD)
    work = Path(a.work_dir or tempfile.mkdtemp(prefix="semalign-tta-"))
    work.mkdir(parents=True, exist_ok=True)
    hp, extra, data_config = dict(KERAS), [], DataConfig()
    if a.quick:
        quick_csv(work / "quick.csv")
        data_config = DataConfig(dataset=None, data=str(work / "quick.csv"))
        hp |= QUICK_KERAS
        extra = ["--data", str(work / "quick.csv"), *QUICK_SEMALIGN]
    extra += shlex.split(a.semalign_args)
    kpy, how = (None, "--no-keras") if a.no_keras else keras_python(a.keras_python)
    print(f"Keras side: {kpy} ({how})" if kpy else f"Keras side skipped: {how}", flush=True)

    split = write_splits(data_config, work / "splits")
    print(f"split {split['rows']} written to {work / 'splits'}", flush=True)
    result = {
        "threshold": threshold,
        "split": {k: v for k, v in split.items() if k != "fingerprint"},
        "keras_found_by": how,
        "uptime_before": uptime(),
        "by_hand_earlier": BY_HAND,
        "targets": TARGETS,
        "semalign_args": a.semalign_args,
    }
    if kpy:
        print("Keras original ...", flush=True)
        result["keras"] = run_keras(kpy, work / "splits", hp, threshold)
    if not a.no_semalign:
        print(f"semalign train {a.semalign_args or '(defaults)'} ...", flush=True)
        cache = work / "cache"  # new: the first run on this machine compiles everything
        result["semalign"] = run_semalign(extra, work / "runs", threshold, cache=cache)
        if a.warm:
            print("semalign train again (compilation cache warm) ...", flush=True)
            result["semalign_warm"] = run_semalign(
                extra, work / "runs", threshold, cache=cache, name="tta-warm"
            )
        seen = result["semalign"].get("data_json")
        if seen is not None:
            same = seen["splits"] == split["fingerprint"]["splits"]
            result["same_rows_as_semalign_run"] = same
            if not same:
                raise SystemExit("the run's data.json split differs from the one written")
    result["uptime_after"] = uptime()
    k, s, w = result.get("keras"), result.get("semalign"), result.get("semalign_warm")
    if k and s and k["reached"] and s["reached"]:
        result["ratio"] = {
            "semalign_over_keras_time": round(
                s["seconds_to_threshold"] / k["seconds_to_threshold"], 2
            ),
            "semalign_over_keras_peak_rss": round(s["peak_rss_gib"] / k["peak_rss_gib"], 2),
        }
        if w and w["reached"]:
            result["ratio"]["semalign_warm_over_keras_time"] = round(
                w["seconds_to_threshold"] / k["seconds_to_threshold"], 2
            )
    path = _common.save(
        a.out or ("time_to_accuracy_quick" if a.quick else "time_to_accuracy"), result
    )
    summary(result)
    print(f"\n{result['uptime_before']}\n{result['uptime_after']}\nwrote {path}")


if __name__ == "__main__":
    main()
