"""The micro-batched train step: the plain step's loss and update, dropout keys as documented.

The references are the plain whole-batch ``Steps`` (without dropout) and, with dropout, a
plain Python loop over the micro-batches that calls the task's loss with the keys
:mod:`semalign.workflows.microbatch` documents (``fold_in(key, g)`` for micro-batch ``g``).
"""

import json
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from test_cli_train import one_line_error
from typer.testing import CliRunner

from semalign import tasks
from semalign.cli import app
from semalign.config import AttentionConfig, ModelConfig, TrainConfig
from semalign.data import Batch
from semalign.data.pair_batches import PairBatch
from semalign.data.pairs import PairDataConfig
from semalign.tasks.classification.model import Classifier
from semalign.tasks.classification.task import TASK
from semalign.testing import tiny_args, tiny_request, write_reviews_csv
from semalign.workflows.microbatch import fold_keys, plan_micro_batch
from semalign.workflows.steps import Steps
from semalign.workflows.train import TrainRequest, train

B, L = 8, 12


def _cfg(dropout: float) -> ModelConfig:
    return ModelConfig(
        vocab_size=64,
        num_classes=3,
        dim=16,
        max_len=L,
        dropout=dropout,
        attention=AttentionConfig(scoring="dot,l2", heads=2),
    )


def _batches(n=3, filler=2):
    r = np.random.default_rng(0)
    weights = np.ones(B, np.float32)
    weights[B - filler :] = 0.0  # filler rows, as the last batch of an epoch has
    return [
        Batch(
            r.integers(1, 64, (B, L)).astype(np.int32),
            r.integers(0, 3, B).astype(np.int32),
            weights,
        )
        for _ in range(n)
    ]


def _params(model):
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param))]


def _run(rows, *, dropout=0.0, tx=None, l1=0.0, l2=0.0, n=3):
    model = Classifier(_cfg(dropout), rngs=nnx.Rngs(params=0, dropout=1))
    opt = nnx.Optimizer(model, tx or optax.sgd(0.5, momentum=0.9), wrt=nnx.Param)
    steps = Steps.for_task(TASK, model, opt, micro_batch=rows, l1=l1, l2=l2)
    metrics = [{k: float(v) for k, v in steps.train(b).items()} for b in _batches(n)]
    steps.sync(model, opt)
    return model, metrics


def test_same_losses_gradients_and_updates_as_the_plain_step():
    plain, want = _run(0, l1=1e-4, l2=1e-3)
    for rows in (1, 2):
        micro, got = _run(rows, l1=1e-4, l2=1e-3)
        for w, g in zip(want, got, strict=True):
            assert g.keys() == w.keys()
            for k in w:  # loss_sum, correct, count, grad_norm (of the whole objective)
                assert g[k] == pytest.approx(w[k], rel=1e-5, abs=1e-6), (rows, k)
        for w, g in zip(_params(plain), _params(micro), strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_eval_outputs_by_micro_batch_equal_the_whole_batch_s():
    """Logits by row, the NLL sum and count added over micro-batches; compiled once."""
    model = Classifier(_cfg(0.3), rngs=nnx.Rngs(params=0, dropout=1))
    micro = Steps.for_task(TASK, model, None, micro_batch=2)
    whole = Steps.for_task(TASK, model, None, micro_batch=0)
    assert (micro.eval_micro_batch, whole.eval_micro_batch) == (2, 0)
    for batch in _batches(2):
        got, want = micro.evaluate(batch), whole.evaluate(batch)
        assert [np.shape(x) for x in got] == [np.shape(x) for x in want]
        np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)  # logits [B, C]
        assert float(got[1]) == pytest.approx(float(want[1]), rel=1e-5)  # NLL sum
        assert float(got[2]) == float(want[2]) == B - 2  # weighted rows
    assert micro._eval._cache_size() == 1
    # A task that does not declare its outputs by rows keeps the whole batch.
    assert "cosine-mse" not in tasks.get("similarity").row_outputs
    sim = Steps(model, None, outputs=TASK.outputs("cross-entropy", None), micro_batch=2)
    assert sim.eval_micro_batch == 0  # not asked for


def test_pair_classification_eval_by_micro_batch_equals_the_whole_batch_s():
    """Each pair's logits depend on that pair alone (cross-attention within the pair)."""
    spec = tasks.get("pair-classification")
    assert "cross-entropy" in spec.row_outputs
    task = spec.load()
    cfg = ModelConfig(
        vocab_size=64, num_classes=3, dim=16, max_len=L, attention=AttentionConfig(heads=2)
    )
    model = task.build(cfg, rngs=nnx.Rngs(params=0, dropout=1))
    r = np.random.default_rng(2)
    batch = PairBatch(
        r.integers(1, 64, (B, L)).astype(np.int32),
        r.integers(1, 64, (B, L - 4)).astype(np.int32),
        r.integers(0, 3, B).astype(np.int32),
        np.array([1, 1, 1, 1, 1, 1, 0, 0], np.float32),
    )
    micro = Steps.for_task(task, model, None, micro_batch=2)
    whole = Steps.for_task(task, model, None, micro_batch=0)
    assert (micro.eval_micro_batch, whole.eval_micro_batch) == (2, 0)
    got, want = micro.evaluate(batch), whole.evaluate(batch)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)  # logits [B, C]
    assert float(got[1]) == pytest.approx(float(want[1]), rel=1e-5)  # NLL sum
    assert float(got[2]) == float(want[2]) == B - 2  # weighted pairs


def _rng_state(model):
    return [
        np.asarray(jax.random.key_data(x))
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key)
        else np.asarray(x)
        for x in jax.tree.leaves(nnx.state(model, nnx.RngState))
    ]


def test_with_dropout_each_micro_batch_draws_from_its_folded_key():
    rows, lr = 2, 1.0
    model, _ = _run(rows, dropout=0.3, tx=optax.sgd(lr), n=1)
    # Reference: the task's plain loss per micro-batch g, keys folded with g, in a loop.
    ref = Classifier(_cfg(0.3), rngs=nnx.Rngs(params=0, dropout=1))
    ref.train()
    graph, params, rest = nnx.split(ref, nnx.Param, ...)
    before = _params(ref)
    batch = _batches(1)[0]
    loss = TASK.loss("cross-entropy", None)
    total, count = None, 0.0
    for g in range(B // rows):
        part = Batch(*(np.asarray(x)[g * rows : (g + 1) * rows] for x in batch))

        def summed(p, part=part, g=g):
            _, sums = loss(nnx.merge(graph, p, fold_keys(rest, g)), part)
            return sums["loss_sum"]

        grads = jax.grad(summed)(params)
        total = grads if total is None else jax.tree.map(jnp.add, total, grads)
        count += float(part.weights.sum())
    want = [
        b - lr * np.asarray(x) / count for b, x in zip(before, jax.tree.leaves(total), strict=True)
    ]
    for w, g in zip(want, _params(model), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    # The random streams after the step: the plain step's (counters advanced once, keys kept).
    plain, _ = _run(0, dropout=0.3, tx=optax.sgd(lr), n=1)
    for a, b in zip(_rng_state(plain), _rng_state(model), strict=True):
        np.testing.assert_array_equal(a, b)
    # Dropout does draw: without the fold every micro-batch would reuse the step's masks.
    assert any(not np.allclose(a, b) for a, b in zip(_params(plain), _params(model), strict=True))


def test_similarity_cosine_mse_accumulates_like_the_plain_step():
    spec = tasks.get("similarity")
    task = spec.load()
    cfg = ModelConfig(
        vocab_size=64,
        dim=16,
        max_len=L,
        dropout=0.0,
        attention=AttentionConfig(scoring="dot", heads=2),
    )
    r = np.random.default_rng(1)
    batch = PairBatch(
        r.integers(1, 64, (B, L)).astype(np.int32),
        r.integers(1, 64, (B, L)).astype(np.int32),
        r.uniform(0, 5, B).astype(np.float32),
        np.array([1, 1, 1, 1, 1, 1, 0, 0], np.float32),
    )
    data = PairDataConfig(data="pairs.csv", score_range=(0.0, 5.0))  # no file is read
    out = []
    for rows in (0, 2):
        model = task.build(cfg, rngs=nnx.Rngs(params=0, dropout=1))
        opt = nnx.Optimizer(model, optax.sgd(0.5), wrt=nnx.Param)
        steps = Steps.for_task(task, model, opt, loss="cosine-mse", data=data, micro_batch=rows)
        metrics = steps.train(batch)
        steps.sync(model, opt)
        out.append((float(metrics["loss_sum"]), _params(model)))
    assert out[1][0] == pytest.approx(out[0][0], rel=1e-5)
    for w, g in zip(out[0][1], out[1][1], strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_which_losses_sum_over_rows_is_each_task_s_declaration():
    assert not tasks.get("similarity").sums_over_rows("cosent")  # ranks rows against rows
    assert tasks.get("similarity").sums_over_rows("cosine-mse")
    for name in ("classification", "pair-classification", "causal-lm", "mlm"):
        spec = tasks.get(name)
        assert all(spec.sums_over_rows(loss) for loss in spec.losses), name


def _mesh(data, model=1):
    return SimpleNamespace(shape={"data": data, "model": model})


def test_plan_automatic_and_explicit():
    plan = dict(sums_over_rows=True, what="x", batch_size=32)
    assert plan_micro_batch(None, backend="cpu", **plan) == 2
    assert plan_micro_batch(None, backend="cpu", mesh=_mesh(2), **plan) == 2
    assert plan_micro_batch(None, backend="cpu", **{**plan, "batch_size": 15}) == 1
    assert plan_micro_batch(None, backend="gpu", **plan) == 0  # GPU and TPU unchanged
    assert plan_micro_batch(None, backend="cpu", mesh=_mesh(2, 2), **plan) == 0
    assert plan_micro_batch(None, backend="cpu", **{**plan, "sums_over_rows": False}) == 0
    assert plan_micro_batch(0, backend="cpu", **plan) == 0
    assert plan_micro_batch(8, backend="gpu", mesh=_mesh(4), **plan) == 8
    with pytest.raises(ValueError, match="does not divide the 16 rows"):
        plan_micro_batch(3, mesh=_mesh(2), **plan)
    with pytest.raises(ValueError, match="compares rows within a batch"):
        plan_micro_batch(2, **{**plan, "sums_over_rows": False})
    with pytest.raises(ValueError, match="model axis"):
        plan_micro_batch(2, mesh=_mesh(1, 2), **plan)
    with pytest.raises(ValueError, match="micro_batch must be 0"):
        TrainConfig(micro_batch=-1)


runner = CliRunner()


def test_cli_refuses_bad_micro_batches_in_one_line(tmp_path):
    data = write_reviews_csv(tmp_path / "d.csv", n=32)
    base = ["train", "--data", str(data), *tiny_args(), "--runs-dir", str(tmp_path / "runs")]
    one_line_error(runner.invoke(app, [*base, "--micro-batch", "3"]), "does not divide")
    one_line_error(runner.invoke(app, [*base, "--micro-batch", "-1"]), "micro_batch must be 0")
    assert not (tmp_path / "runs").exists()  # refused before any run folder


def test_config_records_the_micro_batch_and_resume_keeps_it(tmp_path):
    data = write_reviews_csv(tmp_path / "d.csv", n=48)
    runs = tmp_path / "runs"
    part = train(tiny_request(data, runs, name="mb", train={"micro_batch": 4}, stop_after=1))
    config = json.loads((part.run / "config.json").read_text())
    assert config["train"]["micro_batch"] == 4
    auto = train(tiny_request(data, runs, name="auto", train={"epochs": 1}))
    assert json.loads((auto.run / "config.json").read_text())["train"]["micro_batch"] == 2
    again = train(TrainRequest(resume=str(part.run), tensorboard=False))
    assert again.epochs_done == 2
    assert json.loads((part.run / "config.json").read_text())["train"]["micro_batch"] == 4


DEVICES = textwrap.dedent(
    """
    import json, os, sys
    from semalign import sharding
    from semalign.sharding import MeshError
    assert sharding.use_cpu_cores(2) == 2
    import jax, numpy as np, optax
    from flax import nnx
    from test_microbatch import Classifier, TASK, Steps, _batches, _cfg, _params
    assert jax.device_count() == 2, jax.devices()
    out = {}
    for name, devices in (("one", 1), ("two", 2), ("two_precompiled", 2)):
        model = Classifier(_cfg(0.3), rngs=nnx.Rngs(params=0, dropout=1))
        opt = nnx.Optimizer(model, optax.sgd(0.5, momentum=0.9), wrt=nnx.Param)
        mesh = sharding.make_mesh(sharding.MeshSpec(data=devices)) if devices > 1 else None
        aside = name == "two_precompiled"
        s = Steps.for_task(TASK, model, opt, mesh=mesh, micro_batch=2, compile_aside=aside)
        if aside:  # the mesh's programs, compiled in the background
            s.precompile(_batches(1)[0])
        out[name] = {"losses": [float(s.train(b)["loss_sum"]) for b in _batches(3)]}
        s.sync(model, opt)
        out[name]["params"] = [p.tolist() for p in _params(model)]
        # The eval step by micro-batches on the mesh against the whole batch on one device.
        whole = Steps.for_task(TASK, model, None, micro_batch=0)
        for got, want in zip(s.evaluate(_batches(1)[0]), whole.evaluate(_batches(1)[0])):
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)
        out[name]["eval_micro_batch"] = s.eval_micro_batch
        out[name]["jit_compiled"] = [s._train._cache_size(), s._eval._cache_size()]
    from semalign.workflows.hosts import training_mesh
    # No --mesh: as many devices as divide the batch (an odd batch trains on one device).
    out["mesh_odd"] = training_mesh(None, False, batch_size=3, heads=2)
    out["mesh_even"] = dict(training_mesh(None, False, batch_size=4, heads=2).shape)
    try:
        sharding.use_cpu_cores(3)
    except MeshError as err:
        out["late"] = str(err)
    os.environ.pop("XLA_FLAGS", None)
    os.environ.pop("JAX_NUM_CPU_DEVICES")  # use_cpu_cores(2) set it
    sharding.cli_host_devices()
    out["cli_flag"] = os.environ.get("XLA_FLAGS")
    os.environ["XLA_FLAGS"] = "--xla_cpu_enable_fast_math=false"
    sharding.cli_host_devices()
    out["user_flags"] = os.environ["XLA_FLAGS"]
    print("@@" + json.dumps(out))
    """
)


def test_two_host_devices_train_as_one_and_the_device_count_is_set_before_jax():
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(__file__), env.get("PYTHONPATH", "")])
    p = subprocess.run(
        [sys.executable, "-c", DEVICES], capture_output=True, text=True, env=env, timeout=600
    )
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout[p.stdout.index("@@") + 2 :])
    # Same dropout draws on one device and on two (micro-batch g is counted over the batch).
    np.testing.assert_allclose(out["two"]["losses"], out["one"]["losses"], rtol=1e-5)
    for a, b in zip(out["one"]["params"], out["two"]["params"], strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
    assert out["one"]["eval_micro_batch"] == out["two"]["eval_micro_batch"] == 2
    # Precompiled on the mesh: the same program (the same numbers), and jit never compiled.
    assert out["two_precompiled"]["losses"] == out["two"]["losses"]
    assert out["two_precompiled"]["params"] == out["two"]["params"]
    assert out["two_precompiled"]["jit_compiled"] == [0, 0]
    assert min(out["two"]["jit_compiled"]) >= 1
    assert out["mesh_odd"] is None and out["mesh_even"] == {"data": 2, "model": 1}
    assert "came too late" in out["late"] and "\n" not in out["late"]
    assert (
        out["cli_flag"] == f"--xla_force_host_platform_device_count={len(os.sched_getaffinity(0))}"
    )
    assert out["user_flags"] == "--xla_cpu_enable_fast_math=false"  # the user's, untouched
