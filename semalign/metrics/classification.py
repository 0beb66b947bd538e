"""Classification metrics in numpy (no JAX): accuracy, per-class P/R/F1, macro-F1, confusion."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class ClassReport:
    """Precision, recall, F1 and support of one class."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class ClassificationReport:
    """All metrics of one evaluation.

    Attributes:
      accuracy: fraction correct.
      macro_f1: unweighted mean of per-class F1.
      loss: mean cross-entropy (nats) or NaN when not computed.
      confusion: ``[true, predicted]`` counts, rows and columns in ``labels`` order.
      per_class: one :class:`ClassReport` per label.
      labels: class names.
      count: examples evaluated.
    """

    accuracy: float
    macro_f1: float
    loss: float
    confusion: tuple[tuple[int, ...], ...]
    per_class: tuple[ClassReport, ...]
    labels: tuple[str, ...]
    count: int

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)

    def scalars(self) -> dict[str, float]:
        """Flat numbers for ``metrics.jsonl`` and TensorBoard."""
        return {
            "loss": self.loss,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "count": self.count,
        }


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``[num_classes, num_classes]`` int64 counts, rows true, columns predicted."""
    out = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(out, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return out


def classification_report(
    y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], *, loss: float = float("nan")
) -> ClassificationReport:
    """Metrics from integer labels and predictions.

    Precision (recall) of a class never predicted (never present) is 0, as in scikit-learn
    with ``zero_division=0``.
    """
    cm = confusion_matrix(y_true, y_pred, len(labels))
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0)
    actual = cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    total = int(cm.sum())
    return ClassificationReport(
        accuracy=float(tp.sum() / total) if total else float("nan"),
        macro_f1=float(f1.mean()),
        loss=float(loss),
        confusion=tuple(tuple(int(c) for c in row) for row in cm),
        per_class=tuple(
            ClassReport(str(lab), float(p), float(r), float(f), int(s))
            for lab, p, r, f, s in zip(labels, precision, recall, f1, actual, strict=True)
        ),
        labels=tuple(str(x) for x in labels),
        count=total,
    )
