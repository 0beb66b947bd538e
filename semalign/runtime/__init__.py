"""JAX-free serving of exported models: numpy, onnxruntime and tokenizers only."""

from semalign.runtime.onnx import (
    META_KEYS,
    ModelFileError,
    OnnxClassifier,
    OnnxEncoder,
    OnnxModel,
    Prediction,
    encode,
    open_session,
    predictions,
    session_options,
)

__all__ = [
    "META_KEYS",
    "ModelFileError",
    "OnnxClassifier",
    "OnnxEncoder",
    "OnnxModel",
    "Prediction",
    "encode",
    "open_session",
    "predictions",
    "session_options",
]
