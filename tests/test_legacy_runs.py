"""Run folders written by semalign 0.1.0 keep loading and give the numbers they gave then."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "runs-v0.1.0"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


@pytest.fixture
def runs(tmp_path) -> Path:
    # A copy: loading must not need write access, and must not change the fixture.
    dest = tmp_path / "runs"
    shutil.copytree(FIXTURES, dest)
    return dest


def test_classification_run_predicts_as_before(runs):
    from semalign.workflows.predict import predict

    want = EXPECTED["classification"]
    got = predict(want["texts"], run=runs / "classification")
    assert list(got.labels) == want["labels"]
    for pred, probs in zip(got.predictions, want["probabilities"], strict=True):
        for label in want["labels"]:
            assert pred.probabilities[label] == pytest.approx(probs[label], abs=1e-5)


def test_similarity_run_embeds_as_before(runs):
    from semalign.workflows.embed import embed

    want = EXPECTED["similarity"]
    got = embed(str(runs / "similarity"), want["texts"])
    np.testing.assert_allclose(got.vectors, np.asarray(want["embeddings"]), atol=1e-5)


def test_pair_classification_run_aligns_as_before(runs):
    from semalign.workflows.align import align

    want = EXPECTED["pair-classification"]
    got = align(str(runs / "pair-classification"), want["text_a"], want["text_b"])
    for label, p in want["probabilities"].items():
        assert got.probabilities[label] == pytest.approx(p, abs=1e-5)
    np.testing.assert_allclose(got.weights, np.asarray(want["weights"]), atol=1e-5)
