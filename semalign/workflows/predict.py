"""Classify texts with a run's model: in JAX, or the exported ONNX graph in onnxruntime.

Both backends tokenize the same way, cut at the run's ``max_len`` and return the same
:class:`~semalign.runtime.Prediction` objects. The ONNX backend goes through
:mod:`semalign.runtime` only and never imports JAX.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semalign.errors import DataError, RunError
from semalign.runtime import OnnxClassifier, Prediction, predictions

BACKENDS = ("jax", "onnx")

__all__ = ["BACKENDS", "PredictResult", "predict", "read_texts"]


@dataclass(frozen=True)
class PredictResult:
    """Predictions and where they came from.

    Attributes:
      backend: ``jax`` or ``onnx``.
      source: the run folder (jax) or the ``.onnx`` file (onnx).
      labels: class names.
      predictions: one per input text, in order.
    """

    backend: str
    source: Path
    labels: tuple[str, ...]
    predictions: tuple[Prediction, ...]

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {
            "backend": self.backend,
            "source": str(self.source),
            "labels": list(self.labels),
            "predictions": [p.to_dict() for p in self.predictions],
        }


def read_texts(path: str | os.PathLike[str]) -> list[str]:
    """Non-empty lines of a UTF-8 text file, one text per line.

    Raises:
      DataError: the file is missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no text file at '{path}': pass --file with one text per line")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read '{path}' as UTF-8 text ({err})") from None
    return [line for line in lines if line.strip()]


@functools.cache
def _jitted(probabilities):
    from flax import nnx

    @nnx.jit
    def probs(model, ids, mask):
        return probabilities(model, ids, mask > 0)

    return probs


def _jax_probabilities(loaded, texts: Sequence[str], batch_size: int) -> np.ndarray:
    from semalign.runtime import encode

    probs = _jitted(loaded.task_impl.probabilities)
    out = [np.zeros((0, len(loaded.labels)), np.float32)]
    for i in range(0, len(texts), batch_size):
        ids, mask = encode(loaded.tokenizer, texts[i : i + batch_size], loaded.max_len)
        out.append(np.asarray(probs(loaded.model, ids, mask)))
    return np.concatenate(out)


def predict(
    texts: Sequence[str],
    *,
    run: str | os.PathLike[str] | None = None,
    runs_dir: str | os.PathLike[str] = "runs",
    backend: str = "jax",
    model: str | os.PathLike[str] | None = None,
    batch_size: int = 32,
    checkpoint: str = "best",
) -> PredictResult:
    """Classify ``texts``.

    Args:
      texts: the texts.
      run: the run folder; None = the newest under ``runs_dir``.
      runs_dir: where runs live.
      backend: ``jax`` (the checkpoint) or ``onnx`` (the run's ``model.onnx``).
      model: an ``.onnx`` file to use instead of a run's (implies ``onnx``).
      batch_size: texts per forward pass.
      checkpoint: ``best`` or ``last`` (jax backend).

    Returns:
      One prediction per text.

    Raises:
      ValueError: an unknown backend, no text, a bad batch size.
      RunError: no run, an incomplete run, no ``model.onnx`` in the run.
      ModelFileError: an ``.onnx`` file that is corrupt or not semalign's.
    """
    from semalign.runs import exported_model, resolve_run

    texts = list(texts)
    if not texts:
        raise ValueError("no text to classify: pass TEXT arguments or --file")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if model is not None or backend == "onnx":
        model = model if model is not None else exported_model(run, runs_dir)
        clf = OnnxClassifier(model)
        preds = clf.predict(texts, batch_size=batch_size)
        return PredictResult("onnx", Path(model), clf.labels, tuple(preds))

    from semalign.workflows.loading import load_run, run_spec

    paths = resolve_run(run, runs_dir=runs_dir)
    spec = run_spec(paths)
    if not spec.supports("predict"):
        raise RunError(
            f"run '{paths.root}' is a {spec.name} run: predict labels single texts; "
            "use `semalign embed` or `semalign inspect --pair` with it"
        )
    loaded = load_run(paths.root, which=checkpoint)
    probs = _jax_probabilities(loaded, texts, batch_size)
    preds = predictions(texts, probs, loaded.labels)
    return PredictResult("jax", loaded.paths.root, loaded.labels, tuple(preds))
