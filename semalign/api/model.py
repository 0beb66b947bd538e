"""A trained run as a Python object: the methods its task supports, and one error for the rest.

``Model`` wraps a :class:`~semalign.workflows.loading.LoadedRun` (the checkpoint is loaded
once) and hands it to the workflows the commands use, so ``model.predict(texts)`` gives
exactly what ``semalign predict`` computes. Which methods work is the task's
``capabilities`` (:class:`~semalign.tasks.TaskSpec`); asking for another raises
:class:`Unsupported` naming the task and what it supports.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from semalign.errors import SemalignError

__all__ = ["METHODS", "Model", "Unsupported"]

#: Method of :class:`Model` -> the task capability it needs (None: every task).
METHODS: dict[str, str | None] = {
    "predict": "predict",
    "embed": "embed",
    "attention": "inspect",
    "align": "align",
    "generate": "generate",
    "export": "export",
    "evaluate": None,
}


class Unsupported(SemalignError):
    """A method the run's task does not support."""


class Model:
    """A loaded run (see :func:`semalign.load`).

    Args:
      loaded: the run, loaded by :func:`semalign.workflows.loading.load_run`.
      which: the checkpoint it was loaded from (``served``, ``best`` or ``last``).
    """

    def __init__(self, loaded: Any, which: str = "served"):
        self.loaded = loaded
        self.which = which

    def __repr__(self) -> str:
        return f"<semalign.Model {self.task} run '{self.path}' ({self.loaded.checkpoint})>"

    @property
    def path(self) -> Path:
        """The run folder."""
        return self.loaded.paths.root

    @property
    def task(self) -> str:
        """The run's task name."""
        return self.loaded.task

    @property
    def labels(self) -> tuple[str, ...]:
        """Class names, index order (empty for tasks without classes)."""
        return self.loaded.labels

    @property
    def config(self) -> Any:
        """The architecture (:class:`~semalign.config.ModelConfig`)."""
        return self.loaded.model_config

    @property
    def module(self) -> Any:
        """The Flax NNX module itself, in eval mode."""
        return self.loaded.model

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods this run supports."""
        spec = self.loaded.spec
        return tuple(m for m, cap in METHODS.items() if cap is None or spec.supports(cap))

    def _require(self, method: str) -> None:
        if method not in self.methods:
            raise Unsupported(
                f"run '{self.path.name}' is a {self.task} run: it has no {method}(); "
                f"a {self.task} model supports {', '.join(m + '()' for m in self.methods)}"
            )

    def predict(self, texts: Sequence[str], *, batch_size: int = 32, long_texts: str = "cut"):
        """Labels and probabilities of ``texts`` (``semalign predict``, JAX backend).

        Returns:
          A :class:`~semalign.workflows.predict.PredictResult`; ``.predictions[i].label``.
        """
        from semalign.workflows.predict import predict

        self._require("predict")
        return predict(list(texts), run=self.loaded, batch_size=batch_size, long_texts=long_texts)

    def embed(self, texts: Sequence[str], *, normalize: bool = True, batch_size: int = 64):
        """Sentence embeddings (``semalign embed``).

        Returns:
          :class:`~semalign.workflows.embed.Embeddings`; ``.vectors`` is ``[N, dim]``.
        """
        from semalign.workflows.embed import embed

        self._require("embed")
        return embed(self.loaded, list(texts), normalize=normalize, batch_size=batch_size)

    def attention(
        self,
        texts: str | Sequence[str],
        *,
        layer: int | str | None = "all",
        head: int | str | None = "all",
        rollout: bool = False,
        batch_size: int = 32,
    ):
        """The attention report ``semalign inspect`` renders.

        Returns:
          :class:`~semalign.workflows.attention_report.AttentionReport` (render it with
          :mod:`semalign.render.figures`).
        """
        from semalign.workflows.introspect import attention

        self._require("attention")
        return attention(
            self.loaded, texts, layer=layer, head=head, rollout=rollout, batch_size=batch_size
        )

    def align(self, text_a: str, text_b: str, *, head: int | str | None = "all"):
        """How ``text_a``'s tokens attend over ``text_b``'s (``semalign inspect --pair``).

        Returns:
          :class:`~semalign.workflows.align.AlignmentReport`, with the pair's
          ``similarity`` (similarity runs) or ``probabilities`` (pair classifiers).
        """
        from semalign.workflows.align import align

        self._require("align")
        return align(self.loaded, text_a, text_b, head=head)

    def generate(self, prompt: str, *, use_cache: bool = True, on_token=None, **sampling: Any):
        """Continue ``prompt`` (``semalign generate``; causal-lm runs).

        Args:
          prompt: the start of the text.
          use_cache: decode with the KV cache.
          on_token: called with each new token's text.
          **sampling: fields of :class:`~semalign.workflows.generate.SamplingConfig`
            (``max_new_tokens``, ``temperature``, ``top_k``, ``top_p``, ``greedy``, ``seed``).

        Returns:
          :class:`~semalign.workflows.generate.Generation`; ``.text``.
        """
        from semalign.workflows.generate import SamplingConfig, generate

        self._require("generate")
        return generate(
            prompt,
            run=self.loaded,
            sampling=SamplingConfig(**sampling),
            use_cache=use_cache,
            on_token=on_token,
        )

    def evaluate(
        self,
        data: str | Path | None = None,
        *,
        dataset: str | None = None,
        split: str | None = None,
        batch_size: int | None = None,
        **columns: str,
    ):
        """The task's metrics (``semalign evaluate``): the run's test split by default.

        Args:
          data: a data file or folder instead of the run's own data (all its rows).
          dataset: a built-in dataset instead.
          split: ``train``, ``validation``, ``test`` or ``all``.
          batch_size: None: the run's training batch size.
          **columns: ``text_column``, ``label_column``, ``text_a_column``, ...

        Returns:
          :class:`~semalign.workflows.evaluate.EvaluationResult`; ``.report``.
        """
        from semalign.workflows.evaluate import EvaluationRequest, evaluate

        return evaluate(
            EvaluationRequest(
                run=str(self.path),
                dataset=dataset,
                data=None if data is None else str(data),
                split=split,
                batch_size=batch_size,
                checkpoint=self.which,
                **columns,
            )
        )

    def export(self, out: str | Path | None = None, **options: Any):
        """Write the ONNX graph, parity-checked against JAX (``semalign export onnx``).

        Args:
          out: the ``.onnx`` file; default ``<run>/model.onnx``.
          **options: ``embedding``, ``attention``, ``overwrite``, ``opset``, ``tolerance``.

        Returns:
          :class:`~semalign.workflows.export.ExportReport`.
        """
        from semalign.workflows.export import export_onnx

        self._require("export")
        return export_onnx(self.path, out=out, checkpoint=self.which, **options)
