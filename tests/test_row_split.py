"""The row-split update on host devices: the same step, each device updating its rows.

On a micro-batched ``data`` mesh a large parameter's gradient is reduce-scattered by rows
and its optimizer moments are held split (``sharding.splits_rows``). The reference is the
same micro-batched step on one device; a run that stops and resumes on two devices must
end where the uninterrupted one does. The threshold is lowered so the tiny test model's
matrices split too.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from semalign import sharding

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from semalign import sharding
    assert sharding.use_cpu_cores(2) == 2
    import jax, numpy as np, optax
    from flax import nnx
    from jax.sharding import PartitionSpec
    from test_microbatch import Classifier, TASK, Steps, _batches, _cfg, _params
    from semalign.testing import tiny_request, write_reviews_csv
    from semalign.workflows.train import TrainRequest, train

    sharding.ROW_SPLIT_MIN_SIZE = 1  # the tiny model's matrices split too
    root = sys.argv[1]
    out = {}
    for name, devices in (("one", 1), ("two", 2)):
        model = Classifier(_cfg(0.3), rngs=nnx.Rngs(params=0, dropout=1))
        # Momentum: one moment per parameter, and no Adam normalisation of the key bias's
        # gradient, which is zero up to rounding (softmax ignores a per-query constant).
        opt = nnx.Optimizer(model, optax.sgd(0.5, momentum=0.9), wrt=nnx.Param)
        mesh = sharding.make_mesh(sharding.MeshSpec(data=devices)) if devices > 1 else None
        s = Steps.for_task(TASK, model, opt, mesh=mesh, micro_batch=2)
        out[name] = {"losses": [float(s.train(b)["loss_sum"]) for b in _batches(3)]}
        def spec(x):
            return getattr(x.sharding, "spec", PartitionSpec())

        specs = [spec(x) for x in jax.tree.leaves(s.state[1])]
        out[name]["split_moments"] = sum(sp == PartitionSpec("data") for sp in specs)
        out[name]["split_params"] = sum("data" in spec(x) for x in jax.tree.leaves(s.state[0]))
        s.sync(model, opt)
        out[name]["params"] = [p.tolist() for p in _params(model)]
        moments = nnx.state(opt, nnx.optimizer.OptArray)
        out[name]["moments"] = [np.asarray(m).tolist() for m in jax.tree.leaves(moments)]
    data = write_reviews_csv(root + "/d.csv", n=96)
    whole = train(tiny_request(data, root + "/runs", name="whole", train={"epochs": 2}))
    part = train(tiny_request(data, root + "/runs", name="part", train={"epochs": 2}, stop_after=1))
    again = train(TrainRequest(resume=str(part.run), tensorboard=False))
    config = json.loads((part.run / "config.json").read_text())
    out["resume"] = {
        "devices": jax.device_count(),
        "micro_batch": config["train"]["micro_batch"],
        "whole": [json.loads(x) for x in (whole.run / "metrics.jsonl").read_text().splitlines()],
        "again": [json.loads(x) for x in (again.run / "metrics.jsonl").read_text().splitlines()],
    }
    print("@@" + json.dumps(out))
    """
)


def test_splits_only_large_arrays_whose_rows_divide():
    big = sharding.ROW_SPLIT_MIN_SIZE
    assert sharding.splits_rows((20_000, 64), 2)
    assert not sharding.splits_rows((20_000, 64), 1)  # one device: nothing to split
    assert not sharding.splits_rows((20_001, 64), 2)  # rows that do not divide
    assert not sharding.splits_rows((64, 64), 2)  # small: the all-reduce is cheap
    assert sharding.splits_rows((big,), 2) and not sharding.splits_rows((big - 2,), 2)
    assert not sharding.splits_rows((), 2)


def test_two_devices_row_split_equal_one_device_and_resume_exactly(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(__file__), env.get("PYTHONPATH", "")])
    p = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout[p.stdout.index("@@") + 2 :])
    one, two = out["one"], out["two"]
    # Split for real: the momentum of every parameter whose rows divide; parameters whole.
    assert one["split_moments"] == 0 and two["split_moments"] >= 4
    assert two["split_params"] == 0
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=1e-5)
    for key in ("params", "moments"):
        assert len(one[key]) == len(two[key])
        for a, b in zip(one[key], two[key], strict=True):
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
    resume = out["resume"]
    assert resume["devices"] == 2 and resume["micro_batch"] >= 1
    whole, again = resume["whole"], resume["again"]
    assert len(whole) == len(again)
    for w, a in zip(whole, again, strict=True):
        for k, v in w.items():
            if isinstance(v, float) and not any(t in k for t in ("second", "time", "wall")):
                assert a[k] == pytest.approx(v, rel=1e-6, abs=1e-9), k
