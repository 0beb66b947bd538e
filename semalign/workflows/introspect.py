"""Attention of a run on given texts: the data ``semalign inspect`` renders.

:func:`attention` tokenizes texts the way the run was trained, runs the model once with
attention capture and returns an :class:`AttentionReport`
(:mod:`semalign.workflows.attention_report`): frozen dataclasses of numpy arrays, padding
already removed, nothing printed. Renderers (:mod:`semalign.render`) turn a report into a
terminal heat map, PNG / SVG, HTML, JSON or NPZ. Attention rollout (Abnar & Zuidema 2020)
is :func:`rollout`.

JAX and Flax are imported inside the functions that run the model, so importing this
module (for the dataclasses or :func:`rollout`) stays cheap.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from semalign.data.tokenizer import MASK_ID, UNK_ID
from semalign.errors import DataError, SemalignError
from semalign.workflows.attention_report import (
    ROLLOUT_RULE,
    AttentionReport,
    MaskFill,
    TextAttention,
    frozen,
    is_signed,
    rollout,
)

if TYPE_CHECKING:
    from semalign.config import AttentionConfig

__all__ = [
    "ROLLOUT_RULE",
    "AttentionReport",
    "MaskFill",
    "TextAttention",
    "attention",
    "capture_batch",
    "check_texts",
    "is_signed",
    "pick",
    "read_texts",
    "rollout",
]


def pick(spec: int | str | None, count: int, what: str) -> tuple[int, ...]:
    """Indices chosen by a ``--layer`` / ``--head`` value.

    Args:
      spec: an index (int or digits), ``"all"`` / None for all, ``"last"`` for the last.
      count: how many there are.
      what: ``"layer"`` or ``"head"``, for the message.

    Returns:
      The chosen 0-based indices, in order.

    Raises:
      SemalignError: naming the value and the valid range.

    >>> pick("all", 3, "layer"), pick("last", 3, "layer"), pick("1", 3, "layer")
    ((0, 1, 2), (2,), (1,))
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return tuple(range(count))
    if isinstance(spec, str) and spec.strip().lower() == "last":
        return (count - 1,)
    valid = f"valid: 0 to {count - 1}, or all" if count > 1 else "valid: 0, or all"
    try:
        index = int(spec)
    except (TypeError, ValueError):
        raise SemalignError(
            f"--{what} takes a {what} number or 'all', got {spec!r} ({valid})"
        ) from None
    if not 0 <= index < count:
        plural = what if count == 1 else f"{what}s"
        raise SemalignError(
            f"{what} {index} is out of range: the model has {count} {plural} ({valid})"
        )
    return (index,)


def read_texts(path: str | Path) -> list[str]:
    """Texts of a UTF-8 file, one a line; blank lines are skipped.

    Raises:
      DataError: when the file is missing, unreadable, not UTF-8 or holds no text.
    """
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"text file '{path}' does not exist: check the --file path") from None
    except IsADirectoryError:
        raise DataError(f"'{path}' is a folder: --file takes a file, one text a line") from None
    except UnicodeDecodeError as e:
        raise DataError(f"'{path}' is not UTF-8 text (byte {e.start}): save it as UTF-8") from None
    except OSError as e:
        raise DataError(f"cannot read '{path}' ({e.strerror}): check its permissions") from None
    texts = [line.strip() for line in raw.splitlines() if line.strip()]
    if not texts:
        raise DataError(f"'{path}' holds no text: write one text a line")
    return texts


def _short(text: str, n: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def check_texts(texts: str | Sequence[str]) -> list[str]:
    """The texts as a list, after the checks that need no tokenizer.

    Raises:
      DataError: no text, a text that is not a string, or an empty one.
    """
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        raise DataError(
            'nothing to inspect: give a text, e.g. semalign inspect "a fine film", or --file'
        )
    for i, text in enumerate(texts, 1):
        if not isinstance(text, str):
            raise DataError(f"text {i} is not a string: got {type(text).__name__}")
        if not text.strip():
            raise DataError(f"text {i} is empty: give some words to inspect")
    return texts


def _tokenize(tokenizer, texts: list[str], max_len: int):
    from semalign.data import encode_texts

    encodings = tokenizer.encode_batch(texts)
    ids = encode_texts(tokenizer, texts, max_len=max_len)
    out = []
    for i, (text, enc, row) in enumerate(zip(texts, encodings, ids, strict=True), 1):
        tokens = tuple(enc.tokens[:max_len])
        if len(row) < 2:
            raise DataError(
                f"text {i} ({_short(text)!r}) has no tokens after normalisation: "
                "give some words to inspect"
            )
        if np.all(row[1:] == UNK_ID):
            raise DataError(
                f"text {i} ({_short(text)!r}) has only unknown tokens ({len(row) - 1} × [UNK]) "
                "for this run's vocabulary: try words like those it was trained on"
            )
        out.append((tokens, row, len(enc.ids) - len(row)))
    return out


#: Predictions shown per ``[MASK]`` of a masked language model.
TOP_FILLS = 5


def mask_fills(
    probs: np.ndarray, row: np.ndarray, labels: Sequence[str], text: str, k: int = TOP_FILLS
) -> tuple[MaskFill, ...]:
    """The ``k`` most probable tokens at each ``[MASK]`` of one text.

    Args:
      probs: ``[len, vocab]`` token probabilities at every position.
      row: ``[len]`` the text's ids.
      labels: the vocabulary in id order.
      text: the text, for the message.
      k: predictions per ``[MASK]``.

    Raises:
      DataError: the text holds no ``[MASK]``.
    """
    where = np.flatnonzero(row == MASK_ID)
    if where.size == 0:
        raise DataError(
            f"{_short(text)!r} holds no [MASK]: a masked language model predicts masked "
            'tokens; write [MASK] where a word goes, e.g. "the movie was [MASK]."'
        )
    fills = []
    for i in where:
        top = np.argsort(-probs[i], kind="stable")[:k]
        fills.append(
            MaskFill(
                int(i),
                tuple(labels[j] for j in top),
                frozen(top.astype(np.int32)),
                frozen(probs[i, top].astype(np.float32)),
            )
        )
    return tuple(fills)


def capture_batch(model, ids: np.ndarray, task=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run ``model`` on a padded batch and capture every layer's attention.

    Args:
      model: a model of ``task`` (in eval mode).
      ids: ``[batch, len]`` int token ids, 0 = padding.
      task: the model's task (:class:`semalign.tasks.base.Task`); None: classification.

    Returns:
      ``(probabilities [batch, classes], logits [batch, layers, heads, len, len],
      weights [batch, layers, heads, len, len])``, float32 numpy arrays, padding kept
      (padded keys carry zero weight); a masked language model gives probabilities
      ``[batch, len, vocab]``, one distribution per position.
    """
    import jax.numpy as jnp

    if task is None:
        from semalign import tasks

        task = tasks.get(tasks.DEFAULT_TASK).load()
    probs, logits, weights = _jitted_capture(task.inspect)(model, jnp.asarray(ids, jnp.int32))
    return (
        np.asarray(probs, np.float32),
        np.asarray(logits, np.float32),
        np.asarray(weights, np.float32),
    )


@functools.cache
def _jitted_capture(inspect_fn):
    # Built on first use, so that JAX loads only then; it compiles once per batch shape.
    import jax.numpy as jnp
    from flax import nnx

    @nnx.jit
    def run(model, ids):
        probs, caps = inspect_fn(model, ids)
        return (
            probs,
            jnp.stack([c.logits.astype(jnp.float32) for c in caps], axis=1),
            jnp.stack([c.weights.astype(jnp.float32) for c in caps], axis=1),
        )

    return run


_rollout = rollout  # `attention` has a parameter of that name


def _visible(config: AttentionConfig, length: int) -> np.ndarray:
    from semalign.attention import build_mask

    m = build_mask(length, length, causal=config.causal, window=config.window)
    return np.ones((length, length), bool) if m is None else np.asarray(m[0, 0], bool)


def _source(source: Any, tokenizer, labels, runs_dir, which, name):
    """``(model, task, tokenizer, labels, run name, checkpoint, max_len)`` from any source."""
    from flax import nnx

    from semalign import tasks
    from semalign.workflows.loading import LoadedRun, load_run

    if source is None or isinstance(source, str | Path):
        source = load_run(source, runs_dir=runs_dir, which=which)
    if isinstance(source, LoadedRun) and not source.spec.supports("inspect"):
        raise SemalignError(
            source.spec.refusal(source.paths.name, "inspect", "it has no attention to show")
        )
    if isinstance(source, LoadedRun):
        return (
            source.model,
            source.task_impl,
            tokenizer or source.tokenizer,
            tuple(labels or source.task_impl.output_labels(source)),
            name or source.paths.name,
            source.checkpoint,
            source.max_len,
        )
    if isinstance(source, nnx.Module) and hasattr(source, "config"):
        if tokenizer is None:
            raise SemalignError("a bare model needs its tokenizer: pass tokenizer=...")
        classes = source.config.num_classes
        labels = (
            tuple(labels) if labels is not None else tuple(f"class {i}" for i in range(classes))
        )
        if len(labels) != classes:
            raise SemalignError(f"the model has {classes} classes but {len(labels)} labels given")
        source.eval()
        task = tasks.get(tasks.DEFAULT_TASK).load()
        return source, task, tokenizer, labels, name or "model", None, source.config.max_len
    raise SemalignError(
        f"cannot inspect a {type(source).__name__}: give a run folder, a LoadedRun or a Classifier"
    )


def attention(
    source: Any,
    texts: str | Sequence[str],
    *,
    layer: int | str | None = "all",
    head: int | str | None = "all",
    rollout: bool = False,
    tokenizer=None,
    labels: Sequence[str] | None = None,
    runs_dir: str | Path = "runs",
    which: str = "served",
    name: str | None = None,
    batch_size: int = 32,
) -> AttentionReport:
    """Attention of a run (or a model) on texts: the data ``semalign inspect`` renders.

    The texts go through the model in padded batches; every array of the result is cut
    back to the text's own tokens. The result holds ``2 × layers × heads × L²`` floats
    per text, so inspect a few texts at a time, not a corpus.

    Args:
      source: a run folder, None for the newest run under ``runs_dir``, a
        :class:`semalign.workflows.loading.LoadedRun`, or a
        :class:`~semalign.tasks.classification.model.Classifier` (then ``tokenizer`` is needed; the
        model is switched to eval mode).
      texts: one text or several.
      layer: a 0-based layer index, ``"last"``, or ``"all"`` / None.
      head: a 0-based head index, ``"last"``, or ``"all"`` / None.
      rollout: also compute attention rollout (over all layers and heads, whatever
        ``layer`` and ``head`` select).
      tokenizer: overrides the run's tokenizer; required for a bare model.
      labels: class names for a bare model (default ``class 0``, ``class 1``…).
      runs_dir: where to look for the newest run.
      which: ``served`` (what training reported), ``best`` or ``last`` checkpoint.
      name: the name to show for the run.
      batch_size: texts per forward pass (each batch is padded to its longest text).

    Returns:
      An :class:`AttentionReport`.

    Raises:
      DataError: no text, an empty text, or a text of only unknown tokens.
      SemalignError: a layer or head out of range (the message gives the range).
      RunError: no run, or an incomplete one.
    """
    texts = check_texts(texts)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise SemalignError(f"batch_size must be a positive integer, got {batch_size!r}")
    model, task, tok, labels, run_name, checkpoint, max_len = _source(
        source, tokenizer, labels, runs_dir, which, name
    )
    cfg = model.config
    layers = pick(layer, cfg.layers, "layer")
    heads = pick(head, cfg.attention.heads, "head")
    encoded = _tokenize(tok, texts, max_len)
    li, hi = np.asarray(layers), np.asarray(heads)
    out = []
    for start in range(0, len(texts), batch_size):
        chunk = encoded[start : start + batch_size]
        batch = np.zeros((len(chunk), max(len(row) for _, row, _ in chunk)), np.int32)
        for b, (_, row, _) in enumerate(chunk):
            batch[b, : len(row)] = row
        probs, logits, weights = capture_batch(model, batch, task)
        for b, (tokens, row, dropped) in enumerate(chunk):
            n = len(row)
            w = weights[b, :, :, :n, :n]
            p, fills = probs[b], ()
            if p.ndim == 2:  # a distribution per position: what fills each [MASK]
                fills = mask_fills(p[:n], row, labels, texts[start + b])
                p = p[fills[0].position]
            out.append(
                TextAttention(
                    text=texts[start + b],
                    tokens=tokens,
                    ids=frozen(row.astype(np.int32)),
                    dropped=dropped,
                    probabilities=frozen(p),
                    label=labels[int(np.argmax(p))],
                    logits=frozen(logits[b, :, :, :n, :n][li][:, hi]),
                    weights=frozen(w[li][:, hi]),
                    mask=frozen(_visible(cfg.attention, n)),
                    rollout=frozen(_rollout(w)) if rollout else None,
                    fills=fills,
                )
            )
    return AttentionReport(
        run=run_name,
        checkpoint=checkpoint,
        labels=labels,
        head_scorings=tuple(cfg.attention.head_scorings),
        attention_config=cfg.attention,
        num_layers=cfg.layers,
        layers=layers,
        heads=heads,
        texts=tuple(out),
    )
