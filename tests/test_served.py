"""The reported number is the served model's: the ``served`` checkpoint pointer."""

import json

import numpy as np
import pytest

from semalign.errors import RunError
from semalign.testing import tiny_request, write_reviews_csv
from semalign.workflows.evaluate import EvaluationRequest, evaluate
from semalign.workflows.predict import predict
from semalign.workflows.train import train

TEXTS = ["a great film", "boring and dull plot", "the actor was superb"]


def test_no_restore_best_reports_and_serves_the_last_weights(tmp_path):
    data = write_reviews_csv(tmp_path / "d.csv", n=96)
    req = tiny_request(
        data, tmp_path / "runs", name="last", train={"epochs": 3, "restore_best": False}
    )
    result = train(req)
    assert result.served == "last" and result.served_epoch == 3
    pointers = json.loads((result.run / "checkpoints" / "pointers.json").read_text())
    assert pointers["served"] == pointers["last"] == "epoch-0003"
    ev = evaluate(EvaluationRequest(run=str(result.run)))  # the default: served
    assert ev.checkpoint == "epoch-0003"
    assert ev.report.accuracy == pytest.approx(result.test.accuracy, abs=1e-12)
    assert ev.report.confusion == result.test.confusion
    served = predict(TEXTS, run=result.run)
    last = predict(TEXTS, run=result.run, checkpoint="last")
    np.testing.assert_allclose(
        [list(p.probabilities.values()) for p in served.predictions],
        [list(p.probabilities.values()) for p in last.predictions],
        atol=0,
    )
    test_line = json.loads((result.run / "metrics.jsonl").read_text().splitlines()[-1])
    assert test_line["split"] == "test" and test_line["checkpoint"] == "last"
    assert test_line["epoch"] == 3
    with pytest.raises(RunError, match="checkpoint must be one of served, best, last"):
        evaluate(EvaluationRequest(run=str(result.run), checkpoint="newest"))


@pytest.mark.parametrize("restore_best", [True, False])
def test_the_final_validation_is_the_served_epoch_s_own_report(tmp_path, monkeypatch, restore_best):
    """Validation runs once per epoch; the final report is the served epoch's, and equal to
    evaluating the served checkpoint afresh."""
    from semalign.workflows import evaluate as evaluate_module

    calls = []
    real = evaluate_module.evaluate_batches

    def counted(task, steps, batches, classes=()):
        calls.append(len(batches))
        return real(task, steps, batches, classes)

    monkeypatch.setattr(evaluate_module, "evaluate_batches", counted)
    data = write_reviews_csv(tmp_path / "d.csv", n=96)
    train_cfg = {"epochs": 3, "restore_best": restore_best}
    result = train(tiny_request(data, tmp_path / "runs", name="v", train=train_cfg))
    assert len(calls) == 3 + 1  # three epochs' validations, then the test split
    lines = [json.loads(x) for x in (result.run / "metrics.jsonl").read_text().splitlines()]
    served = next(x for x in lines if x.get("epoch") == result.served_epoch)
    assert result.validation.accuracy == served["val_accuracy"]
    monkeypatch.setattr(evaluate_module, "evaluate_batches", real)
    fresh = evaluate(EvaluationRequest(run=str(result.run), split="validation"))
    assert fresh.checkpoint == f"epoch-{result.served_epoch:04d}"
    assert fresh.report.accuracy == pytest.approx(result.validation.accuracy, abs=1e-12)
    assert fresh.report.loss == pytest.approx(result.validation.loss, rel=1e-6)
    assert fresh.report.confusion == result.validation.confusion


def test_evaluate_on_the_host_s_devices_reports_what_training_reported(tmp_path):
    """``semalign evaluate`` splits batches over one device per core, by micro-batches, as
    training's eval step does: the same report as the run's own test line."""
    import os
    import subprocess
    import sys

    data = write_reviews_csv(tmp_path / "d.csv", n=96)
    result = train(tiny_request(data, tmp_path / "runs", name="dev"))
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    env["JAX_NUM_CPU_DEVICES"] = "2"
    code = (
        "import json, jax; from semalign.workflows.evaluate import EvaluationRequest, evaluate; "
        "from semalign.workflows import evaluate as m; seen = []; real = m._eval_steps; "
        "m._eval_steps = lambda *a: seen.append(real(*a)) or seen[-1]; "
        f"r = evaluate(EvaluationRequest(run={str(result.run)!r})).report; "
        "s = seen[0]; print('@@' + json.dumps({'accuracy': r.accuracy, 'loss': r.loss, "
        "'confusion': r.confusion, 'devices': jax.device_count(), "
        "'mesh': dict(s.mesh.shape), 'rows': s.eval_micro_batch}))"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600
    )
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout[p.stdout.index("@@") + 2 :])
    assert out["devices"] == 2 and out["mesh"] == {"data": 2, "model": 1} and out["rows"] == 2
    assert out["accuracy"] == pytest.approx(result.test.accuracy, abs=1e-12)
    assert out["loss"] == pytest.approx(result.test.loss, rel=1e-5)
    assert [list(r) for r in out["confusion"]] == [list(r) for r in result.test.confusion]
