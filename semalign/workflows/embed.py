"""Sentence embeddings of a run: the data ``semalign embed`` prints or saves.

Any run whose task supports it gives embeddings (the task's ``embed``): a similarity run's
encoder is trained for them; a classifier or a pair classifier gives its pooled encoder
state. The embedding is the pooled state, L2-normalised unless asked otherwise.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semalign.errors import SemalignError

__all__ = ["BACKENDS", "EMBEDDING_FORMATS", "Embeddings", "embed", "write_embeddings"]

#: Where the forward pass runs.
BACKENDS = ("jax", "onnx")


@dataclass(frozen=True, eq=False)
class Embeddings:
    """Embeddings of some texts.

    Attributes:
      run: the run's name.
      checkpoint: which checkpoint was loaded.
      task: the run's task.
      texts: the texts, ``N`` of them.
      vectors: ``[N, dim]`` float32, one row per text.
      normalized: rows have unit L2 norm.
    """

    run: str
    checkpoint: str
    task: str
    texts: tuple[str, ...]
    vectors: np.ndarray
    normalized: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (vectors as lists)."""
        return {
            "run": self.run,
            "checkpoint": self.checkpoint,
            "task": self.task,
            "normalized": self.normalized,
            "dim": int(self.vectors.shape[1]),
            "texts": list(self.texts),
            "embeddings": np.asarray(self.vectors, np.float32).tolist(),
        }


@functools.cache
def _pooled_fn(embed_fn):
    from flax import nnx

    @nnx.jit
    def pooled(model, ids):
        return embed_fn(model, ids)

    return pooled


def embed(
    source: Any,
    texts: Sequence[str],
    *,
    runs_dir: str | Path = "runs",
    which: str = "served",
    normalize: bool = True,
    batch_size: int = 64,
    backend: str = "jax",
    model: str | Path | None = None,
) -> Embeddings:
    """Embed texts with a run, or with its exported ONNX model.

    Args:
      source: a run folder, None for the newest under ``runs_dir``, or a
        :class:`~semalign.workflows.loading.LoadedRun`.
      texts: the texts.
      runs_dir: where to look for the newest run.
      which: ``served`` (what training reported), ``best`` or ``last`` (jax backend).
      normalize: L2-normalise the pooled state (what a similarity run compares).
      batch_size: texts per forward pass.
      backend: ``jax`` (the checkpoint) or ``onnx`` (the run's ``model.onnx`` in
        onnxruntime: a similarity export, or a classifier exported with ``--embedding``).
      model: an ``.onnx`` file instead of the run's (implies ``onnx``).

    Returns:
      The :class:`Embeddings`.

    Raises:
      DataError: no text or an empty one.
      RunError: no run, or an incomplete one, or no ``model.onnx`` for ``onnx``.
      ModelFileError: an ``.onnx`` file that is corrupt, not semalign's, or without an
        embedding output.
    """
    from semalign.workflows.introspect import check_texts  # no JAX: the onnx path stays JAX-free

    if backend not in BACKENDS:
        raise SemalignError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    texts = check_texts(texts)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise SemalignError(f"batch_size must be a positive integer, got {batch_size!r}")
    if model is not None or backend == "onnx":
        return _embed_onnx(source, texts, runs_dir, model, normalize, batch_size)
    import jax.numpy as jnp

    from semalign.data import bucket_boundaries, encode_texts
    from semalign.workflows.loading import LoadedRun, load_run

    loaded = (
        source
        if isinstance(source, LoadedRun)
        else load_run(source, runs_dir=runs_dir, which=which)
    )
    if not loaded.spec.supports("embed"):
        raise SemalignError(loaded.spec.refusal(loaded.paths.name, "embed", "it has no embeddings"))
    max_len = loaded.max_len
    pooled = _pooled_fn(loaded.task_impl.embed)
    seqs = encode_texts(loaded.tokenizer, texts, max_len=max_len)
    bounds = np.asarray(bucket_boundaries(max_len, max_buckets=loaded.data_config.max_buckets))
    rows = []
    for start in range(0, len(seqs), batch_size):
        chunk = seqs[start : start + batch_size]
        length = int(bounds[np.searchsorted(bounds, max(len(s) for s in chunk))])
        ids = np.zeros((batch_size, length), np.int32)  # a fixed batch shape: few compilations
        for i, s in enumerate(chunk):
            ids[i, : len(s)] = s
        rows.append(np.asarray(pooled(loaded.model, jnp.asarray(ids)), np.float32)[: len(chunk)])
    vectors = np.concatenate(rows)
    if normalize:
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return Embeddings(
        loaded.paths.name,
        loaded.checkpoint,
        loaded.task,
        tuple(texts),
        vectors.astype(np.float32),
        normalize,
    )


def _embed_onnx(source, texts, runs_dir, model, normalize: bool, batch_size: int) -> Embeddings:
    from semalign.runs import exported_model
    from semalign.runtime import OnnxEncoder

    encoder = OnnxEncoder(model if model is not None else exported_model(source, runs_dir))
    try:
        vectors = encoder.embed(texts, normalize=normalize, batch_size=batch_size)
    except ValueError as err:  # --raw on a graph that normalises inside
        raise SemalignError(str(err)) from None
    return Embeddings(
        encoder.metadata.get("semalign.run", encoder.path.stem),
        encoder.metadata.get("semalign.checkpoint", ""),
        encoder.task,
        tuple(texts),
        vectors,
        normalize,
    )


def _write_npy(emb: Embeddings, path: Path) -> None:
    with open(path, "wb") as f:
        np.save(f, emb.vectors)


def _write_json(emb: Embeddings, path: Path) -> None:
    path.write_text(json.dumps(emb.to_dict()) + "\n", encoding="utf-8")


EMBEDDING_FORMATS = {".npy": _write_npy, ".json": _write_json}
"""File suffix -> writer of :func:`write_embeddings`."""


def check_output(path: str | Path, *, overwrite: bool = False) -> Path:
    """Check an output path before any work: known suffix, folder exists, no clobbering.

    Raises:
      SemalignError: naming the path and what to do.
    """
    path = Path(path)
    if path.suffix.lower() not in EMBEDDING_FORMATS:
        raise SemalignError(
            f"cannot write embeddings to '{path}': use a {' or '.join(EMBEDDING_FORMATS)} file"
        )
    if not path.parent.is_dir():
        raise SemalignError(f"cannot write '{path}': folder '{path.parent}' does not exist")
    if path.exists() and not overwrite:
        raise SemalignError(f"'{path}' already exists: pass --overwrite to replace it")
    return path


def write_embeddings(emb: Embeddings, path: str | Path, *, overwrite: bool = False) -> Path:
    """Save as ``.npy`` (the ``[N, dim]`` matrix) or ``.json`` (texts and vectors).

    Raises:
      SemalignError: unknown suffix, missing folder, or an existing file without
        ``overwrite``.
    """
    path = check_output(path, overwrite=overwrite)
    EMBEDDING_FORMATS[path.suffix.lower()](emb, path)
    return path
