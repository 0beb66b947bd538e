"""``benchmarks/time_to_accuracy.py --quick``: both sides end to end on 400 short rows.

One subprocess runs the script (``semalign train`` and, where an interpreter with
TensorFlow is configured, the Keras worker); it writes its JSON into a temporary folder.
Slow for a unit test (three trainings with their compilations, ~1.5 min) but the script's
whole path: process clocks, the threshold, the interrupt, the test evaluation.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "time_to_accuracy.py"


def keras_python() -> str | None:
    return os.environ.get("SEMALIGN_KERAS_PYTHON")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("tta")
    cmd = [sys.executable, str(SCRIPT), "--quick", "--results-dir", str(out_dir)]
    cmd += ["--work-dir", str(out_dir / "work"), "--warm"]
    if keras_python() is None:
        cmd.append("--no-keras")
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=400, check=False)
    assert out.returncode == 0, f"{cmd} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return json.loads((out_dir / "time_to_accuracy_quick.json").read_text()), out.stdout


def test_semalign_side(quick):
    result, stdout = quick
    s = result["semalign"]
    assert s["reached"] and s["epoch"] == 1  # threshold 0: the first epoch passes
    # The clock covers start-up and the epoch; the process ran at least that long.
    phases = s["phases"]
    assert 0 < phases["startup_s"] < s["seconds_to_threshold"] <= s["process_wall_s"]
    assert phases["train_steps_s"] == pytest.approx(s["epochs"][0]["epoch_seconds"], abs=0.01)
    assert 0.0 <= s["test_accuracy"] <= 1.0 and s["peak_rss_gib"] > 0.1
    # The Keras side's rows are the run's own split: data.json matched the written one.
    assert result["same_rows_as_semalign_run"] is True
    rows = result["split"]["rows"]
    assert rows == {k: v["rows"] for k, v in s["data_json"]["splits"].items()}
    assert sum(rows.values()) == 400
    assert "semalign" in stdout
    # A first run on a new cache folder, then a second one that finds its programs there.
    warm = result["semalign_warm"]
    assert s["compile_cache"]["programs_before"] == 0
    assert warm["compile_cache"]["programs_before"] > 0
    assert warm["compile_cache"]["folder"] == s["compile_cache"]["folder"]
    assert warm["reached"] and warm["data_json"]["splits"] == s["data_json"]["splits"]


def test_keras_side(quick):
    if keras_python() is None:
        pytest.skip("no Keras interpreter: set SEMALIGN_KERAS_PYTHON (see benchmarks/README.md)")
    result, _ = quick
    k = result["keras"]
    assert k["reached"] and k["epoch"] == 1
    assert 0 < k["tokenized_at_s"] < k["seconds_to_threshold"] <= k["process_wall_s"]
    assert 0.0 <= k["test_accuracy"] <= 1.0 and k["peak_rss_gib"] > 0.1
    ratio = result["ratio"]["semalign_over_keras_time"]
    expected = result["semalign"]["seconds_to_threshold"] / k["seconds_to_threshold"]
    assert ratio == pytest.approx(expected, abs=0.01)
