"""Export a trained run of any task: ONNX through jax2onnx, checked against JAX in onnxruntime.

Layer 4 (workflow). Importing this package is cheap; JAX and jax2onnx load when an export
runs. Serving the result needs only :mod:`semalign.runtime` (numpy, onnxruntime,
tokenizers).
"""

from semalign.workflows.export.onnx import (
    DEFAULT_OPSET,
    DEFAULT_TOLERANCE,
    ExportError,
    ExportReport,
    ParityCheck,
    check_shapes,
    export_onnx,
    metadata,
    verify,
    write_model,
)

__all__ = [
    "DEFAULT_OPSET",
    "DEFAULT_TOLERANCE",
    "ExportError",
    "ExportReport",
    "ParityCheck",
    "check_shapes",
    "export_onnx",
    "metadata",
    "verify",
    "write_model",
]
