"""Ground layer: metric functions in numpy (no JAX)."""

from semalign.metrics.classification import (
    ClassificationReport,
    ClassReport,
    classification_report,
    confusion_matrix,
)

__all__ = ["ClassReport", "ClassificationReport", "classification_report", "confusion_matrix"]
