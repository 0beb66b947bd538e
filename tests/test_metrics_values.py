"""Accuracy, macro-F1 and the confusion matrix against a count written out by hand."""

import numpy as np
import pytest

from semalign.metrics.classification import classification_report, confusion_matrix


def by_hand(y_true, y_pred, k):
    """Counts, then P/R/F1 per class, one example at a time (0 where undefined)."""
    cm = [[0] * k for _ in range(k)]
    for t, p in zip(y_true, y_pred, strict=True):
        cm[t][p] += 1
    rows = []
    for c in range(k):
        tp = cm[c][c]
        predicted = sum(cm[r][c] for r in range(k))
        actual = sum(cm[c])
        p = tp / predicted if predicted else 0.0
        r = tp / actual if actual else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        rows.append((p, r, f, actual))
    correct = sum(1 for t, p in zip(y_true, y_pred, strict=True) if t == p)
    return cm, correct / len(y_true), sum(f for _, _, f, _ in rows) / k, rows


def test_a_small_case_worked_out_on_paper():
    # true:  a a a b b c ; predicted: a b a b c c
    report = classification_report(
        np.array([0, 0, 0, 1, 1, 2]), np.array([0, 1, 0, 1, 2, 2]), ("a", "b", "c")
    )
    assert report.confusion == ((2, 1, 0), (0, 1, 1), (0, 0, 1))
    assert report.accuracy == pytest.approx(4 / 6, abs=1e-15)
    # a: P 2/2, R 2/3 -> F1 0.8; b: P 1/2, R 1/2 -> 0.5; c: P 1/2, R 1 -> 2/3.
    assert [c.f1 for c in report.per_class] == pytest.approx([0.8, 0.5, 2 / 3], abs=1e-15)
    assert report.macro_f1 == pytest.approx((0.8 + 0.5 + 2 / 3) / 3, abs=1e-15)
    assert [c.support for c in report.per_class] == [3, 2, 1]
    assert report.count == 6


@pytest.mark.parametrize("seed", range(6))
def test_random_labels_match_the_hand_count(seed):
    r = np.random.default_rng(seed)
    k = int(r.integers(2, 6))
    n = int(r.integers(1, 60))
    y_true = r.integers(0, k, n)
    # Skewed predictions: some classes never predicted, some never present.
    y_pred = np.minimum(r.integers(0, k, n), r.integers(0, k, n))
    labels = tuple(f"c{i}" for i in range(k))
    report = classification_report(y_true, y_pred, labels)
    cm, accuracy, macro, rows = by_hand(y_true.tolist(), y_pred.tolist(), k)
    assert [list(row) for row in report.confusion] == cm
    assert confusion_matrix(y_true, y_pred, k).tolist() == cm
    assert report.accuracy == pytest.approx(accuracy, abs=1e-15)
    assert report.macro_f1 == pytest.approx(macro, abs=1e-15)
    for got, (p, rc, f, support) in zip(report.per_class, rows, strict=True):
        assert (got.precision, got.recall, got.f1) == pytest.approx((p, rc, f), abs=1e-15)
        assert got.support == support


def test_a_class_never_predicted_nor_present_counts_zero_in_the_macro_mean():
    report = classification_report(np.array([0, 0, 1]), np.array([0, 1, 1]), ("a", "b", "c"))
    assert report.per_class[2].f1 == 0.0 and report.per_class[2].support == 0
    # a: P 1, R 1/2 -> 2/3; b: P 1/2, R 1 -> 2/3; c: 0.
    assert report.macro_f1 == pytest.approx((2 / 3 + 2 / 3 + 0) / 3, abs=1e-15)
