"""``--distributed`` with two real processes on this machine: one writer, one result.

Two CPU processes (2 devices each) join through a local coordinator
(``jax.distributed.initialize``; JAX's CPU collectives are gloo) and train through the
CLI. Their run must be written once and end on the parameters of one process training
on 4 devices.
"""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from flax import nnx

from semalign.testing import tiny_args, write_reviews_csv
from semalign.workflows.loading import load_run

SMALL = tiny_args(batch_size=8, epochs=2, more=("--json",))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _env(devices: int, **extra) -> dict:
    return {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": " ".join(
            [os.environ.get("XLA_FLAGS", ""), f"--xla_force_host_platform_device_count={devices}"]
        ),
        **extra,
    }


def _train(args, env):
    cmd = [sys.executable, "-m", "semalign.cli", "train", *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc, timeout=600):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out[out.index("{") :]) if "{" in out else out


def _params(run) -> dict:
    loaded = load_run(str(run), which="last")
    pure = nnx.to_pure_dict(nnx.state(loaded.model, nnx.Param))
    return {jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree.leaves_with_path(pure)}


#: A key bias adds q·b_k to every logit of a query: the softmax ignores it, so its true
#: gradient is 0 and what it gets is round-off, which Adam scales to steps of size lr. Its
#: value is noise that differs with the order of any sum, so it is not compared.
NOISE = "['key']['bias']"


def test_two_processes_write_one_run_and_train_as_one(tmp_path):
    data = write_reviews_csv(tmp_path / "d.csv", n=64)
    runs = tmp_path / "runs"
    args = ["--data", str(data), "--runs-dir", str(runs), *SMALL]
    port = _free_port()
    procs = [
        _train(
            [*args, "--name", "two", "--distributed"],
            _env(
                2,
                JAX_COORDINATOR_ADDRESS=f"localhost:{port}",
                JAX_NUM_PROCESSES="2",
                JAX_PROCESS_ID=str(rank),
            ),
        )
        for rank in (0, 1)
    ]
    single = _train([*args, "--name", "one"], _env(4))
    try:
        two = [_finish(p) for p in procs]
        one = _finish(single)
    finally:
        for p in [*procs, single]:
            if p.poll() is None:
                p.kill()
    assert sorted(x.name for x in runs.iterdir()) == ["one", "two"]
    run = runs / "two"
    # Written once: one tokenizer (process 1 read process 0's), one log line per evaluation.
    assert (run / "tokenizer.json").read_text() == (runs / "one" / "tokenizer.json").read_text()
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(x["split"], x["epoch"]) for x in lines] == [
        ("validation", 1),
        ("validation", 2),
        ("test", lines[-1]["epoch"]),
    ]
    assert len(list((run / "events").glob("events.out.tfevents.*"))) == 1
    assert not list(run.rglob("*.tmp"))
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["epochs"] == 2
    # Process 0 reports the result, the one of a single 4-device process; process 1 prints
    # no result (every process used to), only the collectives library's connection lines,
    # which its threads may interleave.
    assert two[0]["lead"] is True
    assert isinstance(two[1], str) and "{" not in two[1] and "accuracy" not in two[1], two[1]
    assert two[0]["test"]["accuracy"] == pytest.approx(one["test"]["accuracy"], abs=1e-12)
    got, want = _params(run), _params(runs / "one")
    assert got.keys() == want.keys()
    far = {k: float(np.max(np.abs(got[k] - want[k]))) for k in got if NOISE not in k}
    assert max(far.values()) <= 1e-5, {k: v for k, v in far.items() if v > 1e-5}
    assert len(far) >= len(got) - 2  # only the key bias of each layer is left out
    assert two[0]["best_epoch"] == one["best_epoch"]


def test_a_failure_on_process_0_is_raised_on_every_process(monkeypatch):
    from semalign.errors import RunError
    from semalign.workflows import hosts

    sent = []
    monkeypatch.setattr(hosts, "_processes", lambda: 2)
    monkeypatch.setattr(hosts, "_share", lambda text: sent.append(text) or sent[0])

    def exists():
        raise RunError("run 'runs/x' already exists: pass --overwrite to replace it")

    monkeypatch.setattr(hosts, "is_lead", lambda: True)
    with pytest.raises(RunError, match="already exists"):
        hosts.from_lead(exists)
    called = []
    monkeypatch.setattr(hosts, "is_lead", lambda: False)  # receives what process 0 sent
    with pytest.raises(RunError, match=r"^run 'runs/x' already exists: pass --overwrite"):
        hosts.from_lead(lambda: called.append(1) or "never")
    assert not called  # only process 0 runs it
    sent.clear()
    monkeypatch.setattr(hosts, "is_lead", lambda: True)
    assert hosts.from_lead(lambda: "runs/x") == "runs/x"
    monkeypatch.setattr(hosts, "is_lead", lambda: False)
    assert hosts.from_lead(lambda: "other") == "runs/x"
