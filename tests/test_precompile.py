"""Background compilation: the same programs as jit, used when ready, the jit path otherwise."""

import subprocess
import sys
import textwrap
import threading

import jax
import numpy as np
import optax
import pytest
from flax import nnx

from semalign.config import AttentionConfig, ModelConfig
from semalign.data import Batch
from semalign.tasks.classification.model import Classifier
from semalign.tasks.classification.task import TASK
from semalign.workflows.precompile import Precompiler, signature
from semalign.workflows.steps import Steps


def _batch(seed: int, length: int, rows: int = 4) -> Batch:
    r = np.random.default_rng(seed)
    return Batch(
        r.integers(1, 64, (rows, length)).astype(np.int32),
        r.integers(0, 3, rows).astype(np.int32),
        np.ones(rows, np.float32),
    )


def _steps(micro_batch: int) -> tuple[Steps, nnx.Module, nnx.Optimizer]:
    cfg = ModelConfig(
        vocab_size=64,
        num_classes=3,
        dim=16,
        max_len=16,
        dropout=0.2,
        attention=AttentionConfig(heads=2),
    )
    model = Classifier(cfg, rngs=nnx.Rngs(params=0, dropout=1))
    opt = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
    steps = Steps.for_task(TASK, model, opt, micro_batch=micro_batch, compile_aside=True)
    return steps, model, opt


def _arrays(tree) -> list[np.ndarray]:
    def host(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        return np.asarray(x)

    return [host(x) for x in jax.tree.leaves(tree)]


def test_precompiled_steps_train_and_evaluate_as_the_jitted_ones():
    batches = [_batch(0, 8), _batch(1, 12), _batch(2, 8)]  # length 12 is not precompiled
    plain, pre = _steps(2)[0], _steps(2)[0]
    want = [jax.device_get(plain.train(b)) for b in batches]
    pre.precompile(batches[0])
    pre.precompile(batches[2])  # a shape already submitted is not compiled again
    assert list(pre._compiled._jobs) == [
        ("train", signature(batches[0])),
        ("eval", signature(batches[0])),
    ]
    got = [jax.device_get(pre.train(b)) for b in batches]
    for g, w in zip(got, want, strict=True):
        assert g.keys() == w.keys()
        for k in w:
            np.testing.assert_array_equal(g[k], w[k])  # the same program on the same numbers
    for a, b in zip(_arrays(pre.state), _arrays(plain.state), strict=True):
        np.testing.assert_array_equal(a, b)
    for b in batches[:2]:
        for g, w in zip(pre.evaluate(b), plain.evaluate(b), strict=True):
            np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
    # The precompiled shape never reached jit; the other one compiled there, once.
    assert pre._train._cache_size() == 1 and pre._eval._cache_size() == 1
    assert plain._train._cache_size() == 2 and plain._eval._cache_size() == 2


def test_evaluation_only_steps_precompile_their_eval_step():
    steps, model, _ = _steps(2)
    only_eval = Steps.for_task(TASK, model, None, micro_batch=2, compile_aside=True)
    b = _batch(0, 8)
    only_eval.precompile(b)
    assert list(only_eval._compiled._jobs) == [("eval", signature(b))]
    for g, w in zip(only_eval.evaluate(b), steps.evaluate(b), strict=True):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
    assert only_eval._eval._cache_size() == 0


def test_on_a_cpu_steps_compile_when_a_shape_first_comes():
    # The step keeps every core busy there: compiling aside measured no faster.
    model = _steps(2)[1]
    steps = Steps.for_task(TASK, model, None, micro_batch=2)
    assert jax.default_backend() == "cpu" and not steps.compile_aside
    b = _batch(0, 8)
    steps.precompile(b)
    assert steps._compiled is None
    steps.evaluate(b)
    assert steps._eval._cache_size() == 1


class _Lowered:
    def __init__(self, name, log, error=None, gate=None):
        self.name, self.log, self.error, self.gate = name, log, error, gate

    def compile(self):
        if self.gate is not None:
            self.gate.wait(10)
        self.log.append(self.name)
        if self.error:
            raise self.error
        return f"compiled {self.name}"


def test_priority_then_submission_order_and_failures_fall_back_to_none():
    log, gate = [], threading.Event()
    pre = Precompiler()
    pre.submit("first", lambda: _Lowered("first", log, gate=gate))  # holds the thread
    pre.submit("eval", lambda: _Lowered("eval", log), priority=1)
    pre.submit("a", lambda: _Lowered("a", log))
    pre.submit("bad", lambda: _Lowered("bad", log, error=RuntimeError("no")))
    pre.submit("b", lambda: _Lowered("b", log))
    pre.submit("a", lambda: _Lowered("a again", log))  # once per key
    gate.set()
    assert pre.get("eval") == "compiled eval"  # waits for the queue to reach it
    assert log == ["first", "a", "bad", "b", "eval"]
    assert pre.get("a") == "compiled a" and pre.get("bad") is None and pre.get("never") is None
    assert "b" in pre and "never" not in pre


def test_workers_compile_side_by_side():
    started, gate, log = threading.Barrier(3, timeout=10), threading.Event(), []

    class Meeting(_Lowered):
        def compile(self):
            started.wait()  # both workers are inside a compilation at once
            return super().compile()

    pre = Precompiler(workers=2)
    pre.submit("a", lambda: Meeting("a", log, gate=gate))
    pre.submit("b", lambda: Meeting("b", log, gate=gate))
    pre.submit("c", lambda: _Lowered("c", log))
    started.wait()
    gate.set()
    assert [pre.get(k) for k in "abc"] == ["compiled a", "compiled b", "compiled c"]
    assert sorted(log) == ["a", "b", "c"]  # the barrier above: "a" and "b" ran at once
    with pytest.raises(ValueError, match="workers must be >= 1"):
        Precompiler(workers=0)


def test_a_failing_lowering_is_left_to_the_caller():
    pre = Precompiler()

    def lower():
        raise ValueError("shapes do not fit")

    pre.submit("k", lower)
    assert pre.get("k") is None


ENDING = textwrap.dedent(
    """
    import threading, time
    from semalign.workflows.precompile import Precompiler

    class Slow:
        def __init__(self, i):
            self.i = i
        def compile(self):
            time.sleep(1.0)
            print("compiled", self.i, flush=True)

    pre = Precompiler()
    for i in range(6):
        pre.submit(i, lambda i=i: Slow(i))
    time.sleep(0.2)  # the thread is in the first compilation when the program ends
    print("main done", flush=True)
    """
)


def test_a_program_that_ends_waits_for_one_compilation_at_most():
    p = subprocess.run([sys.executable, "-c", ENDING], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    lines = p.stdout.splitlines()
    assert lines[0] == "main done"
    assert lines[1:] == ["compiled 0"]  # not the five queued behind it
