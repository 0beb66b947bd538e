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
