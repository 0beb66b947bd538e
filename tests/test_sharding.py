"""Sharded training on 8 fake CPU devices (each check runs in a fresh subprocess)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from semalign.sharding import MeshError, MeshSpec, check_fits, parse_mesh

WORKER = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np, optax
    from flax import nnx
    from semalign import sharding
    from semalign.runs import checkpoints
    from semalign.config import AttentionConfig, ModelConfig, TrainConfig
    from semalign.data import Batch
    from semalign.tasks.classification.model import Classifier
    from semalign.workflows.optim import optimizer
    from semalign.workflows.steps import Steps
    from semalign.tasks.classification.task import TASK

    assert jax.device_count() == 8, jax.devices()
    CFG = ModelConfig(vocab_size=64, num_classes=3, dim=16, max_len=12, dropout=0.1,
                      attention=AttentionConfig(scoring="dot,cosine,l2,differential", heads=4))
    r = np.random.default_rng(0)
    BATCHES = [Batch(r.integers(1, 64, (8, 12)).astype(np.int32),
                     r.integers(0, 3, 8).astype(np.int32),
                     np.ones(8, np.float32)) for _ in range(6)]

    def build(mesh_shape, tx=None):
        model = Classifier(CFG, rngs=nnx.Rngs(params=0, dropout=1))
        opt = nnx.Optimizer(model, tx or optimizer(TrainConfig(), 10), wrt=nnx.Param)
        mesh = None if mesh_shape is None else sharding.make_mesh(sharding.MeshSpec(*mesh_shape))
        return model, opt, mesh

    def params(model):
        return [np.asarray(x).tolist() for x in jax.tree.leaves(nnx.state(model, nnx.Param))]

    def run(mesh_shape, steps=3, tx=None):
        model, opt, mesh = build(mesh_shape, tx)
        s = Steps.for_task(TASK, model, opt, mesh=mesh)
        losses = [float(s.train(b)["loss_sum"]) for b in BATCHES[:steps]]
        s.sync(model, opt)
        return model, opt, s, losses

    mode = sys.argv[1]
    out = {}
    if mode == "equivalence":
        # Plain SGD: Adam divides by sqrt(v), which turns the round-off of a near-zero
        # gradient (summed in another order on another mesh) into a full-size step.
        for shape in [(1, 1), (8, 1), (4, 2), (2, 4)]:
            model, _, _, losses = run(shape, tx=optax.sgd(0.5, momentum=0.9))
            out[str(shape)] = {"losses": losses, "params": params(model)}
    elif mode == "specs":
        model, opt, s, _ = run((4, 2), steps=1)
        st = s.state[0]
        blocks = st["encoder"]["blocks"]
        out["q"] = str(blocks[0]["attn"]["query"]["kernel"][...].sharding.spec)
        out["o"] = str(blocks[0]["attn"]["out"]["kernel"][...].sharding.spec)
        out["up"] = str(blocks[0]["mlp"]["up"]["kernel"][...].sharding.spec)
        out["emb"] = str(st["encoder"]["embed"]["embedding"][...].sharding.spec)
        mu = s.state[1]["opt_state"][1][0].mu
        out["mu_q"] = str(mu["encoder"]["blocks"][0]["attn"]["query"]["kernel"][...].sharding.spec)
        out["q_shards"] = len(blocks[0]["attn"]["query"]["kernel"][...].addressable_shards)
    elif mode == "pairs":
        # The pair tasks on the same meshes: Steps' shardings follow any batch structure.
        from semalign import tasks
        from semalign.data.pair_batches import PairBatch
        from semalign.data.pairs import PairDataConfig

        data = PairDataConfig(data="pairs.tsv", score_range=(0.0, 5.0))
        for name in ("similarity", "pair-classification"):
            task = tasks.get(name).load()
            targets = (r.uniform(0, 5, 8).astype(np.float32) if name == "similarity"
                       else r.integers(0, 3, 8).astype(np.int32))
            pairs = [PairBatch(r.integers(1, 64, (8, 12)).astype(np.int32),
                               r.integers(1, 64, (8, 12)).astype(np.int32),
                               targets, np.ones(8, np.float32)) for _ in range(3)]
            # (4, 2) splits the pairs over 4 devices and the heads over 2: both axes at once
            # (data-only and model-only meshes are covered by the classifier above).
            for shape in [(1, 1), (4, 2)]:
                model = task.build(CFG, rngs=nnx.Rngs(params=0, dropout=1))
                # A smaller step than above: at 0.5 CoSENT's exp(20·Δcos) amplified the
                # round-off of a reduction summed in another order to 2e-4 in 3 steps.
                opt = nnx.Optimizer(model, optax.sgd(0.01), wrt=nnx.Param)
                mesh = None if shape == (1, 1) else sharding.make_mesh(sharding.MeshSpec(*shape))
                s = Steps.for_task(task, model, opt, data=data, mesh=mesh)
                losses = [float(s.train(b)["loss_sum"]) for b in pairs]
                s.sync(model, opt)
                out[f"{name} {shape}"] = {"losses": losses, "params": params(model)}
    elif mode == "restore":
        folder = sys.argv[2]
        model, opt, s, _ = run((4, 2), steps=3)
        checkpoints.save(folder, "epoch-0001", {"model": model, "optimizer": opt}, best=True)
        s.train(BATCHES[3]); s.sync(model, opt)
        out["ref"] = params(model)
        for shape in [(1, 1), (2, 4)]:
            m2, o2, mesh = build(shape)
            checkpoints.restore(folder, {"model": m2, "optimizer": o2}, "last")
            s2 = Steps.for_task(TASK, m2, o2, mesh=mesh)
            s2.train(BATCHES[3]); s2.sync(m2, o2)
            out[str(shape)] = params(m2)
    print("JSON" + json.dumps(out))
    """
)


def run_worker(*args, timeout=900):  # a guard against a hang, generous for a loaded machine
    env = {
        **os.environ,
        "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=8",
        "JAX_PLATFORMS": "cpu",
    }
    p = subprocess.run(
        [sys.executable, "-c", WORKER, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    line = next(x for x in p.stdout.splitlines() if x.startswith("JSON"))
    return json.loads(line[4:])


def _close(a, b, atol, rtol=0.0):
    import numpy as np

    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol, rtol=rtol)


def test_same_losses_and_params_on_every_mesh():
    out = run_worker("equivalence")
    ref = out["(1, 1)"]
    for shape in ["(8, 1)", "(4, 2)", "(2, 4)"]:
        _close(out[shape]["losses"], ref["losses"], 1e-5)
        _close(out[shape]["params"], ref["params"], 1e-5)


def test_pair_tasks_train_alike_on_every_mesh():
    out = run_worker("pairs")
    for task in ("similarity", "pair-classification"):
        ref = out[f"{task} (1, 1)"]
        for shape in ["(4, 2)"]:
            # Summed CoSENT losses are ~60, a logsumexp over 8 x 8 pairs: float32 round-off
            # of a reduction split over devices is ~1e-6 of that (measured up to 1e-6).
            _close(out[f"{task} {shape}"]["losses"], ref["losses"], 0.0, rtol=3e-6)
            _close(out[f"{task} {shape}"]["params"], ref["params"], 1e-5)


def test_parameter_shardings_follow_the_rules():
    out = run_worker("specs")
    assert out["q"] == "P(None, 'model')"
    assert out["o"] == "P('model', None)"
    assert out["up"] == "P(None, 'model')"
    assert out["emb"] == "P(None, None)"
    assert out["mu_q"] == out["q"]  # optimizer moments shard like their parameter
    assert out["q_shards"] == 8


def test_checkpoint_from_one_mesh_restores_on_others(tmp_path):
    out = run_worker("restore", str(tmp_path / "ckpt"))
    _close(out["(1, 1)"], out["ref"], 1e-5)
    _close(out["(2, 4)"], out["ref"], 1e-5)


def test_mesh_parsing_and_refusals():
    assert parse_mesh("auto", 8) == MeshSpec(8, 1)
    assert parse_mesh("data=4,model=2", 8) == MeshSpec(4, 2)
    assert parse_mesh(" model=2 ", 8) == MeshSpec(1, 2)
    with pytest.raises(MeshError, match="'data=4;model=2'"):
        parse_mesh("data=4;model=2", 8)
    with pytest.raises(MeshError, match="batch size 6 does not divide over the data axis of 4"):
        check_fits(MeshSpec(4, 2), batch_size=6, heads=4)
    with pytest.raises(MeshError, match="3 heads do not split over the model axis of 2"):
        check_fits(MeshSpec(4, 2), batch_size=8, heads=3)


CLI = textwrap.dedent(
    """
    import sys
    from semalign.cli import main
    sys.argv = ["semalign", *sys.argv[1:]]
    main()
    """
)


def run_cli(*args):
    env = {
        **os.environ,
        "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=8",
        "JAX_PLATFORMS": "cpu",
    }
    return subprocess.run(
        [sys.executable, "-c", CLI, *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_train_end_to_end_on_a_4x2_mesh(tmp_path):
    from semalign.testing import tiny_args, write_reviews_csv

    data = write_reviews_csv(tmp_path / "d.csv", n=64)
    small = [
        *("--data", str(data), "--runs-dir", str(tmp_path / "runs")),
        *tiny_args(batch_size=8, epochs=1, more=("--no-tensorboard",)),
    ]
    p = run_cli("train", *small, "--mesh", "data=4,model=2", "--name", "m", "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    result = json.loads(p.stdout)
    assert result["finished"]
    # The reported figure is the served checkpoint's, as one device computes it here.
    from semalign.workflows.evaluate import EvaluationRequest, evaluate

    again = evaluate(EvaluationRequest(run=result["run"]))
    assert again.checkpoint == f"epoch-{result['served_epoch']:04d}"
    assert again.report.count == result["test"]["count"] > 0
    assert result["test"]["accuracy"] == pytest.approx(again.report.accuracy, abs=1e-12)
    assert result["test"]["confusion"] == [list(row) for row in again.report.confusion]
    assert result["test"]["loss"] == pytest.approx(again.report.loss, abs=1e-5)
    p = run_cli("train", *small, "--mesh", "data=16", "--name", "big")
    assert p.returncode == 2
    assert "needs 16 devices but only 8 are available" in p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "runs" / "big").exists()
    p = run_cli(
        "train",
        *small[:-5],
        "--batch-size",
        "6",
        "--epochs",
        "1",
        "--no-tensorboard",
        "--mesh",
        "data=4,model=2",
        "--name",
        "odd",
    )
    assert p.returncode == 2 and "batch size 6 does not divide" in p.stderr
    p = run_cli("devices", "--mesh", "data=4,model=2")
    assert p.returncode == 0, p.stderr
    assert "cpu" in p.stdout.lower() and "data=4" in p.stdout
