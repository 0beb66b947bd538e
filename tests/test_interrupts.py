"""Kill -9, Ctrl-C and a full disk: a run keeps a usable checkpoint and resumes exactly."""

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest
from flax import nnx
from typer.testing import CliRunner

from semalign.cli import app
from semalign.errors import RunError
from semalign.runs import checkpoints
from semalign.testing import tiny_request, write_reviews_csv
from semalign.workflows.evaluate import EvaluationRequest, evaluate
from semalign.workflows.loading import load_run
from semalign.workflows.resume import shielded
from semalign.workflows.train import train

PLAN = {"epochs": 3, "schedule": "constant", "warmup_steps": 0}

TRAIN = textwrap.dedent(
    """
    import sys
    from semalign.testing import tiny_request
    from semalign.workflows.train import train
    data, runs, name = sys.argv[1:4]
    train(tiny_request(data, runs, name=name, tensorboard=False,
                       train={"epochs": 3, "schedule": "constant", "warmup_steps": 0}))
    """
)


def _params(run, which="last"):
    loaded = load_run(str(run), which=which)
    return jax.tree.leaves(nnx.to_pure_dict(nnx.state(loaded.model, nnx.Param)))


def _same(a, b):
    for x, y in zip(_params(a), _params(b), strict=True):
        np.testing.assert_allclose(x, y, atol=1e-6, rtol=0)


def _epochs(run):
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [(x["split"], x["epoch"]) for x in lines]


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """An uninterrupted run: what every interrupted one must end as."""
    root = tmp_path_factory.mktemp("interrupts")
    data = write_reviews_csv(root / "d.csv", n=64)
    result = train(tiny_request(data, root / "runs", name="full", tensorboard=False, train=PLAN))
    return result, data, root


POINTS = ("mid-epoch@2", "mid-checkpoint@epoch-0002", "before-commit@2", "before-pointers@2")


def test_a_run_killed_at_any_point_resumes_to_the_uninterrupted_result(full):
    reference, data, root = full
    runs = root / "killed"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    procs = {
        point: subprocess.Popen(
            [sys.executable, "-c", TRAIN, str(data), str(runs), point.split("@")[0]],
            env={**env, "SEMALIGN_CRASH_AT": point},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for point in POINTS
    }
    for point, proc in procs.items():
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == -signal.SIGKILL, f"{point}: {err[-2000:]}"
    for point in POINTS:
        run = runs / point.split("@")[0]
        state = json.loads((run / "train_state.json").read_text())
        assert state["epoch"] == (2 if point.startswith("before-pointers") else 1), point
        again = train(tiny_request(data, runs, resume=str(run), tensorboard=False))
        assert again.finished and again.epochs_done == 3, point
        _same(run, reference.run)
        assert again.test.accuracy == pytest.approx(reference.test.accuracy, abs=1e-12), point
        # Each epoch logged once, whatever the kill left in the log.
        assert _epochs(run) == _epochs(reference.run), point
        pointers = json.loads((run / "checkpoints" / "pointers.json").read_text())
        left = {p.name for p in (run / "checkpoints").iterdir() if p.is_dir()}
        assert left == set(pointers.values()), point


class _FullDisk:
    """Orbax's checkpointer whose write of one item fails as on a full disk."""

    def __init__(self, real, fail_at, error):
        self.real, self.fail_at, self.error = real, fail_at, error

    def save(self, path, *args, **kw):
        if f"{path.parent.name}/{path.name}" == self.fail_at:
            (path.parent / "optimizer.orbax-checkpoint-tmp").mkdir(parents=True, exist_ok=True)
            raise self.error
        return self.real.save(path, *args, **kw)

    def __getattr__(self, name):
        return getattr(self.real, name)


ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
# What orbax raises when tensorstore cannot write (seen with RLIMIT_FSIZE; a full disk
# gives os_error_code 28).
TENSORSTORE = ValueError(
    'OUT_OF_RANGE: Error writing "opt_state" in OCDBT database at local file "/x/": Failed '
    "writing: \"/x/d/5f.__lock\": No space left on device [os_error_code='28']"
)


@pytest.mark.parametrize("error", [ENOSPC, TENSORSTORE], ids=["oserror", "tensorstore"])
def test_a_checkpoint_write_that_fails_leaves_the_previous_one_usable(full, monkeypatch, error):
    reference, data, root = full
    runs = root / f"disk-{type(error).__name__}"
    real = checkpoints._checkpointer
    monkeypatch.setattr(
        checkpoints, "_checkpointer", lambda: _FullDisk(real(), "epoch-0002/optimizer", error)
    )
    with pytest.raises(RunError) as caught:
        train(tiny_request(data, runs, name="disk", tensorboard=False, train=PLAN))
    message = str(caught.value)
    assert "\n" not in message
    assert "could not write the checkpoint of epoch 2" in message
    assert "No space left on device" in message
    assert "the checkpoint of epoch 1 is still good" in message
    assert f"semalign train --resume --name disk --runs-dir {runs}" in message
    run = runs / "disk"
    assert not (run / "checkpoints" / "epoch-0002").exists()  # the partial write is gone
    pointers = json.loads((run / "checkpoints" / "pointers.json").read_text())
    assert pointers == {"last": "epoch-0001", "best": "epoch-0001"}
    assert evaluate(EvaluationRequest(run=str(run), checkpoint="last")).checkpoint == "epoch-0001"
    monkeypatch.setattr(checkpoints, "_checkpointer", real)
    again = train(tiny_request(data, runs, resume=str(run), tensorboard=False))
    assert again.finished
    _same(run, reference.run)
    assert _epochs(run) == _epochs(reference.run)


def test_cli_says_in_one_line_that_the_disk_is_full(full, monkeypatch):
    _, data, root = full
    real = checkpoints._checkpointer
    monkeypatch.setattr(
        checkpoints, "_checkpointer", lambda: _FullDisk(real(), "epoch-0001/model", ENOSPC)
    )
    args = ["train", "--data", str(data), "--runs-dir", str(root / "cli-disk"), "--name", "x"]
    small = ["--vocab-size", "64", "--max-len", "16", "--dim", "16", "--heads", "2"]
    result = CliRunner().invoke(app, [*args, *small, "--epochs", "1", "--no-tensorboard", "-q"])
    assert result.exit_code == 2
    text = result.output.strip()
    assert len(text.splitlines()) == 1 and "Traceback" not in text, text
    assert "No space left on device" in text and "no epoch is saved yet" in text


def test_ctrl_c_keeps_the_last_epoch_and_prints_the_command_that_resumes(full):
    reference, data, root = full
    runs = root / "ctrl-c"
    small = ["--vocab-size", "64", "--max-len", "16", "--dim", "16", "--heads", "2"]
    plan = ["--batch-size", "16", "--lr", "0.003", "--patience", "0", "--dropout", "0.1"]
    plan += ["--mlp-ratio", "1", "--schedule", "constant", "--warmup-steps", "0"]
    cmd = [sys.executable, "-m", "semalign.cli", "train", "--data", str(data)]
    cmd += ["--runs-dir", str(runs), "--name", "c", *small, *plan, "--epochs", "1000"]
    cmd += ["--no-tensorboard", "-q"]
    # A terminal's Ctrl-C reaches a process whose SIGINT is Python's default. A test run
    # started with `&` from a script ignores SIGINT, and an ignored signal stays ignored
    # across exec: handle it here while the child starts (a handler resets to the default).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(
            cmd,
            # One device, as the reference trained in this process below: the CLI would
            # split the host into one device per core, and Adam turns the other summation
            # order of two devices into 1e-4 differences in a few epochs.
            env={**os.environ, "JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    state = runs / "c" / "train_state.json"
    try:
        deadline = time.monotonic() + 600
        while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:  # never leak a training process into the next test
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in out + err
    kept = json.loads(state.read_text())["epoch"]
    assert kept >= 1
    line = err.strip().splitlines()[-1]
    assert f"the checkpoint of epoch {kept} is kept" in line
    assert line.endswith(f"semalign train --resume --name c --runs-dir {runs}")
    pointers = json.loads((runs / "c" / "checkpoints" / "pointers.json").read_text())
    assert pointers["last"] == f"epoch-{kept:04d}"
    # The resumed run ends exactly as one that ran kept + 1 epochs without a stop.
    again = CliRunner().invoke(
        app,
        ["train", "--resume", "--name", "c", "--runs-dir", str(runs), "--epochs", str(kept + 1)],
    )
    assert again.exit_code == 0, again.output
    ref = [
        "train",
        "--data",
        str(data),
        "--runs-dir",
        str(runs),
        "--name",
        "r",
        *small,
        *plan,
        "--no-tensorboard",
    ]
    fresh = CliRunner().invoke(app, [*ref, "--epochs", str(kept + 1), "-q"])
    assert fresh.exit_code == 0, fresh.output
    _same(runs / "c", runs / "r")
    assert [e for s, e in _epochs(runs / "c") if s == "validation"] == list(range(1, kept + 2))


def _sigint_inside_shield(disposition):
    """Send SIGINT inside a shielded block under ``disposition``; what the block saw."""
    seen = []
    previous = signal.signal(signal.SIGINT, disposition)
    try:
        with shielded():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs here; the block must go on
            seen.append("block finished")
    except KeyboardInterrupt:
        seen.append("interrupted after")
    finally:
        signal.signal(signal.SIGINT, previous)
    return seen


def test_the_shield_delays_ctrl_c_to_the_end_of_the_block():
    assert _sigint_inside_shield(signal.default_int_handler) == [
        "block finished",
        "interrupted after",
    ]


def test_the_shield_keeps_an_ignored_sigint_ignored():
    # A run started with `&` from a script inherits SIG_IGN: a SIGINT that lands during an
    # epoch commit must not stop it when every other SIGINT is ignored.
    assert _sigint_inside_shield(signal.SIG_IGN) == ["block finished"]
