"""Token-to-token alignment of two texts under a run's scoring: ``inspect --pair``.

Row ``i`` of the alignment matrix says how text A's token ``i`` distributes its attention
over text B's tokens when A's tokens are the queries and B's the keys of one attention
layer, with that layer's projections and scoring:

* a pair classifier: its own cross-attention layer (what the model uses);
* a similarity encoder or a classifier: the last encoder block's attention applied
  across the two texts, on their final token states.

For softmax scorings every row is a distribution over B's tokens (it sums to 1);
DIFF-Transformer rows are ``softmax₁ − λ·softmax₂`` and can be negative.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semalign.data.tokenizer import SPECIAL_TOKENS
from semalign.errors import DataError, SemalignError

__all__ = ["AlignedPair", "AlignmentReport", "align"]


@dataclass(frozen=True)
class AlignedPair:
    """A token of A and the token of B it aligns with best."""

    a_index: int
    a_token: str
    b_index: int
    b_token: str
    weight: float


@dataclass(frozen=True, eq=False)
class AlignmentReport:
    """What :func:`align` returns and the ``--pair`` renderers draw.

    Attributes:
      run: the run's name.
      checkpoint: the checkpoint loaded.
      task: the run's task.
      layer: which attention layer aligned the texts, in words.
      text_a: the first text.
      text_b: the second text.
      tokens_a: ``La`` tokens of A, ``[CLS]`` first.
      tokens_b: ``Lb`` tokens of B.
      head_scorings: the scoring of every head of that layer.
      heads: the heads held, 0-based.
      logits: ``[heads, La, Lb]`` float32 raw scores.
      weights: ``[heads, La, Lb]`` float32 alignment weights.
      similarity: cosine similarity of the two texts' embeddings (encoders), or None.
      probabilities: class name -> probability (pair classifiers), or None.
    """

    run: str
    checkpoint: str
    task: str
    layer: str
    text_a: str
    text_b: str
    tokens_a: tuple[str, ...]
    tokens_b: tuple[str, ...]
    head_scorings: tuple[str, ...]
    heads: tuple[int, ...]
    logits: np.ndarray
    weights: np.ndarray
    similarity: float | None
    probabilities: dict[str, float] | None

    @property
    def matrix(self) -> np.ndarray:
        """``[La, Lb]`` mean of the held heads' weights."""
        return self.weights.mean(axis=0)

    def best_pairs(self, n: int | None = None) -> list[AlignedPair]:
        """For every word-piece of A (special tokens skipped), its best B token.

        Returns:
          Pairs sorted by weight, strongest first; at most ``n`` when given.
        """
        m = self.matrix
        cols = [j for j, t in enumerate(self.tokens_b) if t not in SPECIAL_TOKENS]
        if not cols:
            return []
        out = []
        for i, tok in enumerate(self.tokens_a):
            if tok in SPECIAL_TOKENS:
                continue
            j = cols[int(np.argmax(m[i, cols]))]
            out.append(AlignedPair(i, tok, j, self.tokens_b[j], float(m[i, j])))
        out.sort(key=lambda p: -p.weight)
        return out[:n] if n is not None else out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "run": self.run,
            "checkpoint": self.checkpoint,
            "task": self.task,
            "layer": self.layer,
            "text_a": self.text_a,
            "text_b": self.text_b,
            "tokens_a": list(self.tokens_a),
            "tokens_b": list(self.tokens_b),
            "head_scorings": list(self.head_scorings),
            "heads": list(self.heads),
            "similarity": self.similarity,
            "probabilities": self.probabilities,
            "weights": self.weights.tolist(),
            "logits": self.logits.tolist(),
            "mean": self.matrix.tolist(),
            "best_pairs": [p.__dict__ for p in self.best_pairs()],
        }


def _ids(tokenizer, text: str, max_len: int, which: str) -> tuple[np.ndarray, tuple[str, ...]]:
    from semalign.data import encode_texts, tokens_of

    if not isinstance(text, str) or not text.strip():
        raise DataError(f"text {which} is empty: give some words to align")
    ids = encode_texts(tokenizer, [text], max_len=max_len)[0]
    if len(ids) < 2:
        raise DataError(f"text {which} has no tokens after normalisation: give some words")
    return ids, tuple(tokens_of(tokenizer, text, max_len))


@functools.cache
def _jitted(align_fn: Callable, summary_fn: Callable) -> Callable:
    from flax import nnx

    @nnx.jit
    def run(model, ids_a, ids_b):
        cap = align_fn(model, ids_a, ids_b)
        return cap.logits[0], cap.weights[0], summary_fn(model, ids_a, ids_b)

    return run


def align(
    source: Any,
    text_a: str,
    text_b: str,
    *,
    head: int | str | None = "all",
    runs_dir: str | Path = "runs",
    which: str = "served",
) -> AlignmentReport:
    """Alignment matrix of ``text_a``'s tokens over ``text_b``'s tokens.

    Args:
      source: a run folder, None for the newest under ``runs_dir``, or a
        :class:`~semalign.workflows.loading.LoadedRun`.
      text_a: the first text (queries).
      text_b: the second text (keys).
      head: a 0-based head index, ``"last"``, or ``"all"`` / None.
      runs_dir: where to look for the newest run.
      which: ``served`` (what training reported), ``best`` or ``last`` checkpoint.

    Returns:
      An :class:`AlignmentReport`.

    Raises:
      DataError: an empty text, or one without tokens.
      SemalignError: a head out of range, or a model that cannot align texts.
      RunError: no run, or an incomplete one.
    """
    import jax.numpy as jnp

    from semalign.data import bucket_boundaries
    from semalign.workflows.introspect import pick
    from semalign.workflows.loading import LoadedRun, load_run

    loaded = (
        source
        if isinstance(source, LoadedRun)
        else load_run(source, runs_dir=runs_dir, which=which)
    )
    model = loaded.model
    if not loaded.spec.supports("align"):
        raise SemalignError(
            loaded.spec.refusal(loaded.paths.name, "align", "it cannot align two texts")
        )
    aligner = loaded.task_impl.aligner()
    layer, align_fn, summary_fn = aligner.layer, aligner.align, aligner.summary
    max_len = loaded.max_len
    ids_a, tokens_a = _ids(loaded.tokenizer, text_a, max_len, "A")
    ids_b, tokens_b = _ids(loaded.tokenizer, text_b, max_len, "B")
    cfg = loaded.model_config.attention
    heads = pick(head, cfg.heads, "head")
    # Both texts are padded to a bucket length (padded keys are masked, padded query rows
    # cut off below), so that texts of similar length share one compilation.
    bounds = np.asarray(bucket_boundaries(max_len, max_buckets=loaded.data_config.max_buckets))
    length = int(bounds[np.searchsorted(bounds, max(len(ids_a), len(ids_b)))])
    padded = np.zeros((2, 1, length), np.int32)
    padded[0, 0, : len(ids_a)], padded[1, 0, : len(ids_b)] = ids_a, ids_b
    logits, weights, summary = _jitted(align_fn, summary_fn)(
        model, jnp.asarray(padded[0]), jnp.asarray(padded[1])
    )
    la, lb = len(ids_a), len(ids_b)
    summary = np.asarray(summary, np.float64)
    similarity = float(summary) if summary.ndim == 0 else None
    probabilities = (
        {str(c): float(p) for c, p in zip(loaded.labels, summary, strict=True)}
        if summary.ndim == 1
        else None
    )
    hi = np.asarray(heads)
    return AlignmentReport(
        run=loaded.paths.name,
        checkpoint=loaded.checkpoint,
        task=loaded.task,
        layer=layer,
        text_a=text_a,
        text_b=text_b,
        tokens_a=tokens_a,
        tokens_b=tokens_b,
        head_scorings=tuple(cfg.head_scorings),
        heads=heads,
        logits=np.asarray(logits, np.float32)[hi, :la, :lb],
        weights=np.asarray(weights, np.float32)[hi, :la, :lb],
        similarity=similarity,
        probabilities=probabilities,
    )
