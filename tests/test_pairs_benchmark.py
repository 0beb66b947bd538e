"""The STS-B benchmark script runs end to end on a slice of the shared STS-B files."""

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def stsb_module(shared_datasets):
    if not (shared_datasets / "stsb").is_dir():
        pytest.skip(f"STS-B not found at {shared_datasets / 'stsb'} (shared datasets checkout)")
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import stsb
    finally:
        sys.path.remove(str(BENCHMARKS))
    return stsb, shared_datasets / "stsb"


def test_stsb_quick_run_and_lexical_baseline(stsb_module, tmp_path):
    stsb, data = stsb_module
    small = stsb.subset(data, 200, tmp_path / "data")
    row = stsb.run_one(small, "dot", stsb.QUICK, tmp_path / "runs")
    assert set(row["test_spearman"]) == {"cosine", "l2", "l1", "dot"}
    assert row["test_pairs"] == 200 and row["epochs"] == 1
    baseline = stsb.lexical_baseline(small)
    assert 0 < baseline["test_spearman"] <= 100
