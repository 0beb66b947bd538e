"""Ground layer: TensorBoard events, ``metrics.jsonl`` and figures of attention."""

from semalign.tracking.log import (
    MetricsLog,
    NoopTracker,
    TensorBoardTracker,
    Tracker,
    make_tracker,
    read_metrics,
)

__all__ = [
    "MetricsLog",
    "NoopTracker",
    "TensorBoardTracker",
    "Tracker",
    "make_tracker",
    "read_metrics",
]
