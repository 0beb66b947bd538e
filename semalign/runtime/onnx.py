"""Serve an exported model with onnxruntime: numpy, onnxruntime and tokenizers only.

This module never imports JAX (nor any part of semalign that does), so a model exported
by ``semalign export onnx`` runs where only ``numpy``, ``onnxruntime`` and ``tokenizers``
are installed. Everything it needs travels inside the ``.onnx`` file's metadata: the
labels, the longest sequence, the tokenizer.

>>> from semalign.runtime import OnnxClassifier                    # doctest: +SKIP
>>> clf = OnnxClassifier("runs/imdb-dot-20261122-001530/model.onnx")  # doctest: +SKIP
>>> clf.predict(["a wonderful film"])[0].label                      # doctest: +SKIP
'pos'
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from semalign.data.tokenizer import cut
from semalign.errors import SemalignError

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

#: Metadata keys written by :mod:`semalign.workflows.export.onnx` and read here.
META_KEYS = (
    "semalign.version",
    "semalign.labels",
    "semalign.max_len",
    "semalign.scoring",
    "semalign.outputs",
    "semalign.tokenizer",
)
PAD_ID = 0


class ModelFileError(SemalignError):
    """An ``.onnx`` file is missing, unreadable, or was not exported by semalign."""


@dataclass(frozen=True)
class Prediction:
    """The class of one text.

    Attributes:
      text: the input text.
      label: the most probable class.
      score: its probability.
      probabilities: every class's probability, in label order.
    """

    text: str
    label: str
    score: float
    probabilities: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {
            "text": self.text,
            "label": self.label,
            "score": self.score,
            "probabilities": dict(self.probabilities),
        }


def predictions(texts: Sequence[str], probs: np.ndarray, labels: Sequence[str]) -> list[Prediction]:
    """Turn ``[N, classes]`` probabilities into :class:`Prediction` objects."""
    out = []
    for text, p in zip(texts, probs, strict=True):
        best = int(np.argmax(p))
        out.append(
            Prediction(
                text=text,
                label=labels[best],
                score=float(p[best]),
                probabilities={lab: float(x) for lab, x in zip(labels, p, strict=True)},
            )
        )
    return out


def session_options(
    threads: int | None = None,
    *,
    level: str = "all",
    denormal_as_zero: bool = True,
    spinning: bool = False,
) -> ort.SessionOptions:
    """Session options for fast CPU inference in onnxruntime.

    Args:
      threads: intra-op threads; None = every core of this machine.
      level: graph optimisation: ``disable``, ``basic``, ``extended`` or ``all``.
      denormal_as_zero: flush denormals to zero. A masked softmax drives exp into the
        denormal range, where x86 CPUs slow down ~20x (measured: a ``Softmax`` over
        ``[32, 4, 128, 128]`` with masked keys took 14.6 ms, 0.7 ms with this on).
      spinning: let idle intra-op threads busy-wait for work. On a machine shared with
        other processes spinning threads starve each other (measured at batch 32: median
        63 ms with, 40 ms without, same best time), so it is off unless asked for.

    Returns:
      The options for :class:`onnxruntime.InferenceSession`.

    Raises:
      ValueError: an unknown level.
    """
    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    if level not in levels:
        raise ValueError(f"unknown optimisation level {level!r}; choose one of {', '.join(levels)}")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = levels[level]
    opts.intra_op_num_threads = threads or os.cpu_count() or 1
    opts.log_severity_level = 3  # errors only
    if denormal_as_zero:
        opts.add_session_config_entry("session.set_denormal_as_zero", "1")
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return opts


#: onnxruntime graph rewrites the runtime turns off. SkipLayerNormFusion folds the encoder's
#: residual Add + LayerNormalization into one SkipLayerNormalization, which ran 3-4x slower
#: than the two nodes on this CPU (benchmarks/README.md, "ONNX vs JAX").
DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)


def open_session(
    path: str | os.PathLike[str], options: ort.SessionOptions | None = None
) -> ort.InferenceSession:
    """An onnxruntime session on ``path`` (CPU).

    Raises:
      ModelFileError: the file is missing or is not a loadable ONNX model.
    """
    path = Path(path)
    if not path.is_file():
        what = "it is a folder" if path.is_dir() else "no such file"
        raise ModelFileError(
            f"no ONNX model at '{path}' ({what}): export one with `semalign export onnx`"
        )
    try:
        return ort.InferenceSession(
            str(path),
            options or session_options(),
            providers=["CPUExecutionProvider"],
            disabled_optimizers=list(DISABLED_OPTIMIZERS),
        )
    except Exception as err:  # onnxruntime raises its own Fail / InvalidProtobuf types
        reason = " ".join(str(err).split())
        reason = reason[:160] + ("..." if len(reason) > 160 else "")
        raise ModelFileError(
            f"'{path}' is not a loadable ONNX model ({reason}); "
            "re-export it with `semalign export onnx --overwrite`"
        ) from None


def encode(
    tokenizer: Tokenizer, texts: Sequence[str], max_len: int, truncation: str = "head"
) -> tuple[np.ndarray, np.ndarray]:
    """Token ids ``[N, L]`` (``[CLS]`` first, cut to ``max_len``, right-padded with 0) and mask.

    A text longer than ``max_len`` is cut as ``truncation`` says (``head``, ``tail`` or
    ``head-tail``: :func:`semalign.data.tokenizer.cut`, as in training).

    Returns:
      ``(input_ids, attention_mask)``, both int32 ``[N, L]`` with ``L`` the longest text.
    """
    rows = [cut(e.ids, max_len, truncation) for e in tokenizer.encode_batch(list(texts))]
    length = max((len(r) for r in rows), default=1) or 1
    ids = np.full((len(rows), length), PAD_ID, np.int32)
    mask = np.zeros((len(rows), length), np.int32)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return ids, mask


class OnnxModel:
    """A model exported by ``semalign export onnx``, run by onnxruntime.

    Reads what every export carries (tokenizer, longest sequence, scoring, task) and runs
    the graph on token ids; :class:`OnnxClassifier` and :class:`OnnxEncoder` add what
    their task returns.

    Args:
      path: the ``.onnx`` file.
      threads: intra-op threads; None = every core.
      options: full session options (overrides ``threads``).

    Attributes:
      labels: class names in output order (empty for a similarity model).
      max_len: longest token sequence the model takes.
      scoring: the attention scoring it was trained with.
      task: the run's task (``classification``, ``similarity``); files exported before
        the key existed are classifiers.
      metadata: every metadata entry of the file.
      outputs: the graph's output names.

    Raises:
      ModelFileError: the file is missing, corrupt, or lacks semalign's metadata.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        threads: int | None = None,
        options: ort.SessionOptions | None = None,
    ):
        self.path = Path(path)
        self.session = open_session(self.path, options or session_options(threads))
        self.metadata: Mapping[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        missing = [k for k in META_KEYS if k not in self.metadata]
        if missing:
            raise ModelFileError(
                f"'{self.path}' was not exported by semalign (metadata lacks "
                f"{', '.join(missing)}): export it with `semalign export onnx`"
            )
        try:
            self.labels: tuple[str, ...] = tuple(json.loads(self.metadata["semalign.labels"]))
            self.max_len = int(self.metadata["semalign.max_len"])
            # Older exports carry no truncation: their runtime kept the beginning.
            self.truncation = self.metadata.get("semalign.truncation", "head")
            self.tokenizer = Tokenizer.from_str(self.metadata["semalign.tokenizer"])
        except Exception as err:  # bad JSON, bad int, bad tokenizer
            raise ModelFileError(
                f"'{self.path}' has unreadable semalign metadata ({type(err).__name__}): "
                "re-export it with `semalign export onnx --overwrite`"
            ) from None
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.scoring = self.metadata["semalign.scoring"]
        self.task = self.metadata.get("semalign.task", "classification")
        self.outputs = tuple(o.name for o in self.session.get_outputs())
        self.inputs = tuple(i.name for i in self.session.get_inputs())

    def run(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray | None = None,
        *,
        outputs: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Run the graph on token ids.

        Args:
          input_ids: int ``[B, S]`` with ``S <= max_len``, 0 = padding.
          attention_mask: int ``[B, S]``, 1 for real tokens; default ``input_ids != 0``.
          outputs: names to compute; None = every output of the graph.

        Returns:
          The outputs by name (a classifier: ``probabilities``, ``logits``, and
          ``embedding`` and ``attention`` when exported with them; a similarity model:
          ``embedding``).
        """
        ids = np.asarray(input_ids, np.int32)
        if ids.ndim != 2 or ids.shape[1] > self.max_len or ids.shape[1] < 1:
            raise ValueError(
                f"input_ids must be [batch, seq] with 1 <= seq <= {self.max_len}, "
                f"got shape {ids.shape}"
            )
        mask = (ids != PAD_ID) if attention_mask is None else np.asarray(attention_mask)
        feed = {"input_ids": ids, "attention_mask": mask.astype(np.int32)}
        names = list(self.outputs if outputs is None else outputs)
        return dict(zip(names, self.session.run(names, feed), strict=True))

    def _batched(self, texts: Sequence[str], output: str, batch_size: int) -> np.ndarray:
        """``output`` of every text, ``batch_size`` texts a run, rows in text order."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        texts = list(texts)
        out = []
        for i in range(0, len(texts), batch_size):
            part = texts[i : i + batch_size]
            ids, mask = encode(self.tokenizer, part, self.max_len, self.truncation)
            out.append(self.run(ids, mask, outputs=[output])[output])
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _single_text(model: OnnxModel) -> None:
    # Graphs of two texts (pair classification) take input_ids_a ... input_ids_b.
    if "input_ids" not in model.inputs:
        raise ModelFileError(
            f"'{model.path}' is a {model.task} model taking {', '.join(model.inputs)}: feed "
            "it with OnnxModel(...).session.run"
        )


class OnnxClassifier(OnnxModel):
    """A classifier exported by ``semalign export onnx``: labels and probabilities.

    Raises:
      ModelFileError: as :class:`OnnxModel`, or the file is not a classifier.
    """

    def __init__(self, path: str | os.PathLike[str], **kwargs):
        super().__init__(path, **kwargs)
        _single_text(self)
        if "probabilities" not in self.outputs:
            raise ModelFileError(
                f"'{self.path}' is a {self.task} model without class probabilities: embed "
                "texts with it (`semalign embed --backend onnx`, OnnxEncoder)"
            )

    def probabilities(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """Class probabilities ``[N, classes]`` of ``texts``, ``batch_size`` at a time."""
        probs = self._batched(texts, "probabilities", batch_size)
        return probs.reshape(len(list(texts)), len(self.labels)).astype(np.float32)

    def predict(self, texts: Sequence[str], *, batch_size: int = 32) -> list[Prediction]:
        """The most probable label of each text, with every class's probability."""
        texts = list(texts)
        return predictions(texts, self.probabilities(texts, batch_size=batch_size), self.labels)


class OnnxEncoder(OnnxModel):
    """Sentence embeddings from an exported model.

    A similarity run's encoder, or a classifier exported with ``--embedding``.

    Attributes:
      normalized: the graph's embedding already has unit L2 norm (similarity exports).

    Raises:
      ModelFileError: as :class:`OnnxModel`, or the graph has no ``embedding`` output.
    """

    def __init__(self, path: str | os.PathLike[str], **kwargs):
        super().__init__(path, **kwargs)
        _single_text(self)
        if "embedding" not in self.outputs:
            raise ModelFileError(
                f"'{self.path}' has no embedding output: re-export the run with "
                "`semalign export onnx --embedding --overwrite`"
            )
        self.normalized = json.loads(self.metadata.get("semalign.normalized", "false"))

    def embed(
        self, texts: Sequence[str], *, normalize: bool = True, batch_size: int = 32
    ) -> np.ndarray:
        """``[N, dim]`` float32 embeddings of ``texts``.

        Args:
          texts: the texts.
          normalize: unit L2 rows (the cosine is then a dot product).
          batch_size: texts per run.

        Raises:
          ValueError: ``normalize=False`` on a graph that normalises inside.
        """
        if not normalize and self.normalized:
            raise ValueError(
                f"'{self.path}' outputs the normalised embedding; the raw pooled state needs "
                "the run itself (--backend jax)"
            )
        vectors = self._batched(texts, "embedding", batch_size).astype(np.float32)
        if normalize and not self.normalized:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def similarity(
        self, texts_a: Sequence[str], texts_b: Sequence[str], *, batch_size: int = 32
    ) -> np.ndarray:
        """Cosine similarity ``[N]`` of each pair ``(texts_a[i], texts_b[i])``."""
        texts_a, texts_b = list(texts_a), list(texts_b)
        if len(texts_a) != len(texts_b):
            raise ValueError(f"need pairs: got {len(texts_a)} and {len(texts_b)} texts")
        a = self.embed(texts_a, batch_size=batch_size)
        b = self.embed(texts_b, batch_size=batch_size)
        return np.sum(a * b, axis=1)
