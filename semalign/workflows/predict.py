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
from typing import Any

import numpy as np

from semalign.config import TRUNCATIONS
from semalign.errors import DataError, RunError
from semalign.runtime import OnnxClassifier, Prediction, predictions

BACKENDS = ("jax", "onnx")
#: What predict does with a text longer than the run's max_len: cut it, or average windows.
LONG_TEXTS = ("cut", "chunks")

__all__ = [
    "BACKENDS",
    "LONG_TEXTS",
    "PredictResult",
    "predict",
    "read_texts",
    "text_probabilities",
]


@dataclass(frozen=True)
class PredictResult:
    """Predictions and where they came from.

    Attributes:
      backend: ``jax`` or ``onnx``.
      source: the run folder (jax) or the ``.onnx`` file (onnx).
      labels: class names.
      predictions: one per input text, in order.
      truncated: texts longer than ``max_len`` tokens, so cut (the run's ``truncation``
        with the jax backend; the ONNX runtime cuts as the export says, the run's way).
      max_len: the longest token sequence the model reads.
    """

    backend: str
    source: Path
    labels: tuple[str, ...]
    predictions: tuple[Prediction, ...]
    truncated: int = 0
    max_len: int = 0

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {
            "backend": self.backend,
            "source": str(self.source),
            "labels": list(self.labels),
            "predictions": [p.to_dict() for p in self.predictions],
            "truncated": self.truncated,
            "max_len": self.max_len,
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


def _windows(ids: Sequence[int], max_len: int) -> list[list[int]]:
    # [CLS] + consecutive, non-overlapping pieces of the text's tokens, max_len each.
    body, width = list(ids[1:]), max(max_len - 1, 1)
    return [list(ids[:1]) + body[i : i + width] for i in range(0, max(len(body), 1), width)]


def text_probabilities(
    loaded,
    texts: Sequence[str],
    batch_size: int,
    long_texts: str = "cut",
    truncation: str | None = None,
) -> tuple[np.ndarray, int]:
    """``[N, classes]`` probabilities and how many texts were longer than ``max_len``.

    ``long_texts="cut"`` cuts them as ``truncation`` says (None: the run's); ``"chunks"``
    averages the probabilities of their ``max_len`` windows.
    """
    from semalign.data import PAD_ID
    from semalign.data.tokenizer import cut, token_ids

    truncation = truncation or getattr(loaded.data_config, "truncation", "head")
    full = token_ids(loaded.tokenizer, texts)
    if long_texts == "chunks":
        pieces = [_windows(ids, loaded.max_len) for ids in full]
    else:
        pieces = [[cut(ids, loaded.max_len, truncation)] for ids in full]
    owner = np.repeat(np.arange(len(texts)), [len(p) for p in pieces])
    seqs = [w for p in pieces for w in p]
    probs = _jitted(loaded.task_impl.probabilities)
    out = [np.zeros((0, len(loaded.labels)), np.float32)]
    for i in range(0, len(seqs), batch_size):
        rows = seqs[i : i + batch_size]
        ids = np.full((len(rows), max(len(r) for r in rows)), PAD_ID, np.int32)
        for j, r in enumerate(rows):
            ids[j, : len(r)] = r
        out.append(np.asarray(probs(loaded.model, ids, (ids != PAD_ID).astype(np.int32))))
    windows = np.concatenate(out)
    mean = np.zeros((len(texts), windows.shape[1]), np.float64)
    np.add.at(mean, owner, windows)
    mean /= np.bincount(owner, minlength=len(texts))[:, None]
    return mean.astype(np.float32), sum(len(ids) > loaded.max_len for ids in full)


def _count_cut(tokenizer, texts: Sequence[str], max_len: int) -> int:
    from semalign.data.tokenizer import token_ids

    return sum(len(ids) > max_len for ids in token_ids(tokenizer, texts))


def predict(
    texts: Sequence[str],
    *,
    run: str | os.PathLike[str] | Any | None = None,
    runs_dir: str | os.PathLike[str] = "runs",
    backend: str = "jax",
    model: str | os.PathLike[str] | None = None,
    batch_size: int = 32,
    checkpoint: str = "served",
    long_texts: str = "cut",
    truncation: str | None = None,
) -> PredictResult:
    """Classify ``texts``.

    Args:
      texts: the texts.
      run: the run folder; None = the newest under ``runs_dir``; or a loaded
        :class:`~semalign.workflows.loading.LoadedRun` (jax; ``checkpoint`` is then its own).
      runs_dir: where runs live.
      backend: ``jax`` (the checkpoint) or ``onnx`` (the run's ``model.onnx``).
      model: an ``.onnx`` file to use instead of a run's (implies ``onnx``).
      batch_size: texts per forward pass.
      checkpoint: ``served`` (the one training reported), ``best`` or ``last`` (jax).
      long_texts: ``cut`` (the run's truncation) or ``chunks``: a text longer than
        ``max_len`` gets the mean probabilities of its ``max_len`` windows (jax).
      truncation: with ``cut``, ``head``, ``tail`` or ``head-tail`` instead of the run's
        own (jax).

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
    if long_texts not in LONG_TEXTS:
        raise ValueError(f"long_texts must be one of {', '.join(LONG_TEXTS)}, got {long_texts!r}")
    if truncation is not None and truncation not in TRUNCATIONS:
        raise ValueError(f"truncation must be one of {', '.join(TRUNCATIONS)}, got {truncation!r}")
    if model is not None or backend == "onnx":
        if long_texts != "cut" or truncation is not None:
            raise ValueError("--long-texts and --truncation run with the jax backend only")
        model = model if model is not None else exported_model(run, runs_dir)
        clf = OnnxClassifier(model)
        preds = clf.predict(texts, batch_size=batch_size)
        cut = _count_cut(clf.tokenizer, texts, clf.max_len)
        return PredictResult("onnx", Path(model), clf.labels, tuple(preds), cut, clf.max_len)

    from semalign.workflows.loading import LoadedRun, load_run, run_spec

    given = run if isinstance(run, LoadedRun) else None
    paths = given.paths if given is not None else resolve_run(run, runs_dir=runs_dir)
    spec = run_spec(paths)
    if not spec.supports("predict"):
        raise RunError(spec.refusal(str(paths.root), "predict", "it labels no single texts"))
    loaded = given if given is not None else load_run(paths.root, which=checkpoint)
    probs, cut = text_probabilities(loaded, texts, batch_size, long_texts, truncation)
    preds = predictions(texts, probs, loaded.labels)
    return PredictResult("jax", loaded.paths.root, loaded.labels, tuple(preds), cut, loaded.max_len)
